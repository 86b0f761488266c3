//! Connection time limits that hyper does not tell apart.
//!
//! hyper's `header_read_timeout` starts whenever it waits for a request head, including on an
//! idle keep-alive connection, so "how long may a connection idle" and "how long may a request
//! head take to arrive" (the slowloris guard) would have to be one number. This wrapper around
//! the socket enforces both: with no request in flight and no response still going out, the
//! connection may stay silent for `idle` and is then closed as if the client had hung up; once bytes of a new request start
//! arriving, its head must be complete (the service called) within `head`. Upgraded
//! connections (WebSocket tunnels) are exempt: their silence belongs to the application.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::body::{Body, BoxError};

/// What the connection's requests are doing, shared between the socket wrapper and the service.
#[derive(Debug)]
pub struct Activity {
    base: Instant,
    /// Milliseconds since `base` of the last request's end or response bytes sent after it.
    last_ms: AtomicU64,
    inflight: AtomicUsize,
    started: AtomicU64,
    upgraded: AtomicBool,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            inflight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            upgraded: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// A request's head has been read; the guard lives until its response body is done.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        self.started.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// The connection now carries a tunnel: no more deadlines.
    pub fn upgraded(&self) {
        self.upgraded.store(true, Ordering::SeqCst);
    }
}

/// Marks one request in flight on its connection.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight until it has been sent.
    /// It is the server's response body type itself, so wrapping costs no second allocation.
    pub struct Guarded {
        #[pin]
        inner: Body,
        guard: InFlight,
    }
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `body`, holding `guard` until hyper has finished sending (or dropped) it.
pub fn guarded(body: Body, guard: InFlight) -> Guarded {
    Guarded { inner: body, guard }
}

pin_project_lite::pin_project! {
    /// The socket, with the idle and request-head deadlines applied to its reads.
    pub struct TimedIo<T> {
        #[pin]
        inner: T,
        activity: Arc<Activity>,
        idle: Duration,
        head: Duration,
        // When the current request head began to arrive, and the request count at that time.
        head_started: Option<(Instant, u64)>,
        // Since when writes have found the socket full: a response is still going out.
        blocked_since: Option<Instant>,
        // Boxed so the wrapper stays Unpin, as hyper's upgrade machinery requires.
        timer: Pin<Box<Sleep>>,
    }
}

impl<T> TimedIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>, idle: Duration, head: Duration) -> Self {
        Self {
            inner,
            activity,
            idle,
            head,
            head_started: None,
            blocked_since: None,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl<T: AsyncRead> AsyncRead for TimedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let activity = this.activity.as_ref();
        let before = buf.filled().len();
        match this.inner.poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                // No clock read per read: a request's end (`InFlight`) and the response bytes
                // sent after it mark activity, and bytes read with no request in flight start
                // the head clock.
                if buf.filled().len() > before
                    && activity.inflight.load(Ordering::SeqCst) == 0
                    && this.head_started.is_none()
                {
                    *this.head_started =
                        Some((Instant::now(), activity.started.load(Ordering::SeqCst)));
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        if let Some((_, count)) = *this.head_started
            && activity.started.load(Ordering::SeqCst) != count
        {
            // The head it was timing has been read and served.
            *this.head_started = None;
        }
        if activity.upgraded.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        if let Some(since) = *this.blocked_since {
            // A response is going out to a client that reads slowly, or not at all. As with
            // nginx's send_timeout, it must take something within `send_timeout(idle)`, or
            // it could hold its connection (and slot) forever for the price of not reading.
            let deadline = since + send_timeout(*this.idle);
            if Instant::now() >= deadline {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client stopped reading the response",
                )));
            }
            // Looked at again at least every `idle`: hyper may not poll the read side when the
            // write goes through, and from then on the idle deadline applies.
            if this.timer.is_elapsed() || this.timer.deadline() > deadline {
                this.timer
                    .as_mut()
                    .reset(deadline.min(Instant::now() + *this.idle));
            }
            if this.timer.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
        if activity.inflight.load(Ordering::SeqCst) > 0 {
            // No idle deadline while a request is in flight. hyper may not poll the read
            // side again when it ends (its read was already blocked), so the timer stays
            // armed: when it goes off, this poll looks again, and from then on counts from
            // the request's end.
            if this.timer.is_elapsed() {
                this.timer.as_mut().reset(Instant::now() + *this.idle);
            }
            if this.timer.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
        let (deadline, slow_head) = match *this.head_started {
            Some((at, _)) => (at + *this.head, true),
            None => (activity.last() + *this.idle, false),
        };
        if Instant::now() >= deadline {
            return if slow_head {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request head not received in time",
                )))
            } else {
                // Idle: end the connection the way a client hanging up would.
                Poll::Ready(Ok(()))
            };
        }
        // The timer is re-armed only when the deadline came closer or the timer went off
        // early (the deadline moved later since): not once per request.
        if deadline != this.timer.deadline()
            && (deadline < this.timer.deadline() || this.timer.is_elapsed())
        {
            this.timer.as_mut().reset(deadline);
        }
        if this.timer.as_mut().poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// How long a blocked response may wait for the client to take any of it: the idle timeout,
/// but never less than nginx's default send_timeout, since the kernel wakes a blocked writer
/// only once a good part of a send buffer of up to 4 MiB has drained, which for a slow but
/// steady reader can take far longer than a short idle timeout.
fn send_timeout(idle: Duration) -> Duration {
    idle.max(Duration::from_secs(60))
}

/// Notes whether a write or flush had to wait. hyper takes a response's whole body (and so
/// ends its request) before a slow client has read it, then sends the tail from its own
/// buffer; the connection is busy, not idle, until that is done, or the idle deadline would
/// cut the response short. The clock is read only when a write first waits and when one goes
/// through after waiting: a write that did not wait follows the request's end, which marked
/// the time, by microseconds.
fn progress(activity: &Activity, blocked_since: &mut Option<Instant>, waited: bool) {
    if waited {
        if blocked_since.is_none() {
            *blocked_since = Some(Instant::now());
        }
    } else if blocked_since.take().is_some() && activity.inflight.load(Ordering::SeqCst) == 0 {
        activity.touch();
    }
}

impl<T: AsyncWrite> AsyncWrite for TimedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let written = this.inner.poll_write(cx, buf);
        progress(this.activity, this.blocked_since, written.is_pending());
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let written = this.inner.poll_write_vectored(cx, bufs);
        progress(this.activity, this.blocked_since, written.is_pending());
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // TLS holds written bytes until the flush: a flush that waits is a blocked response.
        let this = self.project();
        let flushed = this.inner.poll_flush(cx);
        progress(this.activity, this.blocked_since, flushed.is_pending());
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    const IDLE: Duration = Duration::from_secs(60);
    const HEAD: Duration = Duration::from_secs(10);

    /// A connection whose request head has been read and whose request is now in flight.
    struct InFlightConn {
        io: TimedIo<DuplexStream>,
        activity: Arc<Activity>,
        guard: InFlight,
        // The client's half, held open so the server's never reads EOF.
        _client: DuplexStream,
    }

    async fn request_in_flight() -> InFlightConn {
        let (server, mut client) = duplex(64);
        let activity = Activity::new();
        let mut io = TimedIo::new(server, activity.clone(), IDLE, HEAD);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(io.read(&mut buf).await.unwrap() > 0);
        let guard = activity.request_started();
        InFlightConn {
            io,
            activity,
            guard,
            _client: client,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_end_after_the_idle_timeout() {
        let (server, _client) = duplex(64);
        let activity = Activity::new();
        let mut io = TimedIo::new(server, activity, IDLE, HEAD);
        let started = Instant::now();
        let mut buf = [0u8; 8];
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(n, 0, "EOF, as if the client hung up");
        assert!(started.elapsed() >= IDLE && started.elapsed() < IDLE + Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_started_head_must_finish_within_the_head_timeout() {
        let (server, mut client) = duplex(64);
        let activity = Activity::new();
        let mut io = TimedIo::new(server, activity, IDLE, HEAD);
        client.write_all(b"GET / HT").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf).await.unwrap(), 8);
        let started = Instant::now();
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= HEAD && started.elapsed() < IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_and_tunnels_have_no_deadline() {
        let mut conn = request_in_flight().await;
        let mut buf = [0u8; 64];
        // Far past both deadlines, still waiting (a slow upstream).
        let waited = tokio::time::timeout(IDLE * 3, conn.io.read(&mut buf)).await;
        assert!(waited.is_err(), "no deadline while a request is in flight");
        drop(conn.guard);
        conn.activity.upgraded();
        let waited = tokio::time::timeout(IDLE * 3, conn.io.read(&mut buf)).await;
        assert!(waited.is_err(), "no deadline on an upgraded tunnel");
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_armed_for_an_earlier_deadline_is_moved_not_obeyed() {
        let (server, mut client) = duplex(64);
        let activity = Activity::new();
        let mut io = TimedIo::new(server, activity.clone(), IDLE, HEAD);
        // The timer starts armed for IDLE; a request halfway there moves the deadline later.
        tokio::time::sleep(IDLE / 2).await;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(io.read(&mut buf).await.unwrap() > 0);
        drop(activity.request_started());
        let finished = Instant::now();
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        assert!(
            finished.elapsed() >= IDLE && finished.elapsed() < IDLE + Duration::from_secs(1),
            "idle for IDLE after the request, not closed when the first timer went off ({:?})",
            finished.elapsed()
        );
    }

    /// A connection whose request is over and whose response's tail now waits in a full socket.
    async fn blocked_response(idle: Duration) -> (TimedIo<DuplexStream>, DuplexStream) {
        let (server, client) = duplex(64);
        let mut io = TimedIo::new(server, Activity::new(), idle, HEAD);
        assert_eq!(io.write(&[7u8; 128]).await.unwrap(), 64);
        let waker = std::task::Waker::noop();
        let blocked = Pin::new(&mut io).poll_write(&mut Context::from_waker(waker), &[7u8; 64]);
        assert!(blocked.is_pending());
        (io, client)
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_the_client_is_slow_to_take_is_not_cut_as_idle() {
        let idle = Duration::from_secs(1);
        let (mut io, mut client) = blocked_response(idle).await;
        let mut buf = [0u8; 64];
        let waited = tokio::time::timeout(idle * 3, io.read(&mut buf)).await;
        assert!(
            waited.is_err(),
            "not idle while a write waits for the client"
        );
        // The client takes it; idle counts from the last byte sent.
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(io.write(&[7u8; 64]).await.unwrap(), 64);
        let sent = Instant::now();
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        assert!(sent.elapsed() >= idle && sent.elapsed() < idle * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_closed_after_the_send_timeout() {
        let idle = Duration::from_secs(1);
        let (mut io, _client) = blocked_response(idle).await;
        let blocked = Instant::now();
        let mut buf = [0u8; 64];
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(blocked.elapsed() >= send_timeout(idle));
        assert!(blocked.elapsed() < send_timeout(idle) + idle);
        assert_eq!(send_timeout(idle), Duration::from_secs(60));
        assert_eq!(send_timeout(IDLE * 2), IDLE * 2);
    }

    /// Records whether it was woken: stands in for hyper's task, which polls the socket's
    /// read side again only when woken.
    struct Flag(AtomicBool);

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_blocked_during_a_request_is_woken_to_time_out_after_it() {
        let mut conn = request_in_flight().await;
        let mut buf = [0u8; 64];
        // hyper's read poll while the request is in flight may be its last until woken.
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = std::task::Waker::from(flag.clone());
        let mut read_buf = ReadBuf::new(&mut buf);
        let polled =
            Pin::new(&mut conn.io).poll_read(&mut Context::from_waker(&waker), &mut read_buf);
        assert!(polled.is_pending());
        tokio::time::sleep(IDLE / 2).await;
        drop(conn.guard);
        let finished = Instant::now();
        tokio::time::sleep(IDLE * 2).await;
        assert!(
            flag.0.load(Ordering::SeqCst),
            "the blocked read was woken to look at its deadline again"
        );
        assert_eq!(
            conn.io.read(&mut buf).await.unwrap(),
            0,
            "then closed as idle"
        );
        assert!(finished.elapsed() >= IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn finishing_a_request_restarts_the_idle_clock() {
        let mut conn = request_in_flight().await;
        let mut buf = [0u8; 64];
        tokio::time::sleep(IDLE * 2).await;
        drop(conn.guard);
        let finished = Instant::now();
        assert_eq!(conn.io.read(&mut buf).await.unwrap(), 0);
        assert!(
            finished.elapsed() >= IDLE,
            "idle counted from the end of the request"
        );
    }
}

//! The client's request body on its way upstream: when it has been sent, and whether a
//! failure was the client's (a stall, broken framing) rather than the upstream's.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::body::BoxError;

/// What went wrong with a client's request body, if anything, as [`SentSignal`] saw it.
pub(super) const BODY_OK: u8 = 0;
/// The client paused longer than the allowed gap.
pub(super) const BODY_STALLED: u8 = 1;
/// The client's body failed to parse or ended early.
pub(super) const BODY_BROKEN: u8 = 2;

pin_project_lite::pin_project! {
    /// A request body that reports when it has been sent completely (or dropped), gives up
    /// when the client pauses longer than `gap` between two pieces of it (if a gap is set:
    /// a gRPC stream may rightly idle for as long as its call lasts), and records in `fault`
    /// whether a failure was the client's.
    pub(super) struct SentSignal<B> {
        #[pin]
        inner: B,
        sent: Option<oneshot::Sender<()>>,
        gap: Option<Duration>,
        timer: Option<Pin<Box<Sleep>>>,
        fault: Arc<AtomicU8>,
    }
}

impl<B: hyper::body::Body> SentSignal<B> {
    pub(super) fn wrap(
        inner: B,
        gap: Option<Duration>,
        fault: Arc<AtomicU8>,
    ) -> (oneshot::Receiver<()>, SentSignal<B>) {
        let (tx, rx) = oneshot::channel();
        let sent = if inner.is_end_stream() {
            let _ = tx.send(());
            None
        } else {
            Some(tx)
        };
        let body = SentSignal {
            inner,
            sent,
            gap,
            timer: None,
            fault,
        };
        (rx, body)
    }
}

impl<B> hyper::body::Body for SentSignal<B>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let frame = this
            .inner
            .as_mut()
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(Into::into)));
        if let Poll::Ready(Some(Err(_))) = &frame {
            this.fault.store(BODY_BROKEN, Ordering::SeqCst);
        }
        // hyper stops polling a sized body after its last frame, so check for the end then too.
        let done = match &frame {
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Pending => false,
        };
        if done && let Some(tx) = this.sent.take() {
            let _ = tx.send(());
        }
        let Some(gap) = *this.gap else {
            return frame;
        };
        let deadline = Instant::now() + gap;
        match (&frame, this.timer.as_mut()) {
            (Poll::Ready(_), Some(timer)) => timer.as_mut().reset(deadline),
            (Poll::Pending, None) => {
                *this.timer = Some(Box::pin(tokio::time::sleep_until(deadline)))
            }
            _ => {}
        }
        if frame.is_pending()
            && let Some(timer) = this.timer.as_mut()
            && timer.as_mut().poll(cx).is_ready()
        {
            this.fault.store(BODY_STALLED, Ordering::SeqCst);
            return Poll::Ready(Some(Err("request body stalled".into())));
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

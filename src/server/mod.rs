//! Listening, serving connections (HTTP/1.1 and h2c, or both over TLS), and shutting down
//! gracefully: fail `/ready` first, keep serving for `shutdown_delay`, then drain within `shutdown_timeout`.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

#[cfg(unix)]
pub mod fdlimit;
mod timeouts;

use http::StatusCode;

use crate::app::App;
pub use crate::context::ConnInfo;
use crate::endpoints::health;
use crate::live::Live;
use crate::pipeline;
use crate::tls::ServerTls;
use timeouts::{Activity, TimedIo};

/// Serves `listener` (plain HTTP/1.1 and h2c) until `shutdown` resolves, then drains as
/// configured and returns. Each request is served with the state `live` holds when it
/// arrives; listener settings (limits, timeouts) are the ones it held at the start.
pub async fn serve(live: Arc<Live>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    serve_with(live, listener, None, shutdown).await;
}

/// Like [`serve`], but every connection is TLS first (`[tls]`), with HTTP/1.1 or h2 inside.
pub async fn serve_tls(
    live: Arc<Live>,
    listener: TcpListener,
    tls: ServerTls,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(live, listener, Some(tls), shutdown).await;
}

async fn serve_with(
    live: Arc<Live>,
    listener: TcpListener,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()>,
) {
    // Restart-only settings: the same in every state a reload can install.
    let app = live.app();
    let limits = app.config.limits;
    let builder = Arc::new(builder(&app));
    // Over TLS, ALPN has already said which protocol the client speaks: the connection is
    // served as that alone, so a broken HTTP/2 preface is a protocol error, not an
    // HTTP/1.1 request to answer with a 400 (RFC 9113 §3.4).
    let h2_only = Arc::new(builder.as_ref().clone().http2_only());
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(app.config.limits.max_connections));
    let proto = if tls.is_some() { "https" } else { "http" };

    tokio::pin!(shutdown);
    let mut deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown, if deadline.is_none() => {
                app.start_draining();
                tracing::info!(delay = ?app.config.shutdown_delay, "shutting down: /ready now fails, still serving");
                deadline = Some(Box::pin(tokio::time::sleep(app.config.shutdown_delay)));
                continue;
            }
            () = async { if let Some(d) = deadline.as_mut() { d.await } }, if deadline.is_some() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!("connection limit reached; closing new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = ConnInfo { peer, proto };
        // Taken here, not in the task, so a shutdown that starts during a TLS handshake
        // still reaches the connection once it is being served.
        let watcher = graceful.watcher();
        let live = live.clone();
        let builder = builder.clone();
        let h2_only = h2_only.clone();
        let slot = Slot {
            metrics: app.metrics.clone(),
            _permit: permit,
        };
        slot.metrics.connection_opened();
        // Plain and TLS connections are separate tasks so that a plain one does not carry
        // room for a TLS stream and its handshake: a task is as large as its largest state.
        match tls.as_ref().map(ServerTls::acceptor) {
            None => tokio::spawn(async move {
                serve_connection(&builder, live, stream, conn, watcher, Speaks::Either).await;
                drop(slot);
            }),
            Some(acceptor) => tokio::spawn(async move {
                // The handshake gets the same bound as a request head: a client that connects
                // and never finishes its ClientHello must not hold a connection slot.
                match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
                        serve_connection(&h2_only, live, stream, conn, watcher, Speaks::H2).await
                    }
                    Ok(Ok(stream)) => {
                        serve_connection(&builder, live, stream, conn, watcher, Speaks::Either)
                            .await
                    }
                    // Scanners, plain HTTP sent to the TLS port, clients that distrust our
                    // certificate: the client's problem, not ours; debug only.
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
                drop(slot);
            }),
        };
    }
    drop(listener);
    drop(tls);
    tracing::info!(timeout = ?app.config.shutdown_timeout, "draining in-flight requests");
    if tokio::time::timeout(app.config.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout reached; closing remaining connections");
    }
}

/// The connection builder: HTTP/1.1 and h2 with the configured limits.
fn builder(app: &App) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let limits = app.config.limits;
    // Header and idle deadlines are enforced by `TimedIo`, which can tell them apart.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(limits.idle_timeout))
        .keep_alive_timeout(limits.header_read_timeout);
    builder
}

/// A connection's place under `limits.max_connections`: counted open while it lives, and
/// given back (with the metric) however the connection's task ends.
struct Slot {
    metrics: Arc<crate::metrics::Metrics>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.connection_closed();
    }
}

/// How a connection's protocol is known.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Speaks {
    /// From its first bytes: the HTTP/2 preface, or HTTP/1.1.
    Either,
    /// From ALPN: HTTP/2 alone (`builder` must be HTTP/2-only), so anything but the
    /// preface ends the connection.
    H2,
}

/// Serves one established connection (plain or TLS) until it ends.
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    live: Arc<Live>,
    io: I,
    conn: ConnInfo,
    watcher: Watcher,
    speaks: Speaks,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = live.app().config.limits;
    let activity = Activity::new();
    let io = TokioIo::new(TimedIo::new(
        io,
        activity.clone(),
        limits.idle_timeout,
        limits.header_read_timeout,
    ));
    let service = service_fn(move |req| {
        let app = live.app();
        let activity = activity.clone();
        async move {
            let guard = activity.request_started();
            let response = pipeline::handle(app, req, conn).await;
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                activity.upgraded();
            }
            Ok::<_, std::convert::Infallible>(response.map(|body| timeouts::guarded(body, guard)))
        }
    });
    let ended = match speaks {
        // The upgrade path always sniffs the version, whatever the builder says.
        Speaks::Either => {
            watcher
                .watch(
                    builder
                        .serve_connection_with_upgrades(io, service)
                        .into_owned(),
                )
                .await
        }
        Speaks::H2 => {
            watcher
                .watch(builder.serve_connection(io, service).into_owned())
                .await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Serves one already-established connection (any byte stream) as if it had been accepted
/// from `peer` on a plain listener, until it ends: for in-process tests and fuzzing of the
/// whole request path, with the same limits and timeouts as [`serve`].
pub async fn serve_io<I>(app: Arc<App>, io: I, peer: SocketAddr)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let builder = builder(&app);
    let graceful = GracefulShutdown::new();
    let conn = ConnInfo {
        peer,
        proto: "http",
    };
    let live = Live::new(app);
    serve_connection(&builder, live, io, conn, graceful.watcher(), Speaks::Either).await;
}

/// Serves `/metrics` (and `/ping`) alone on `listener`, for `metrics_listen`: scrapers then
/// need no route through the proxy and the app keeps its own `/metrics`.
pub async fn serve_metrics(live: Arc<Live>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let live = live.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let app = live.app();
                let response = match req.uri().path() {
                    "/metrics" => health::metrics(&app),
                    "/ping" => http::Response::new(crate::body::full("OK")),
                    _ => {
                        let mut r = http::Response::new(crate::body::full("not found"));
                        *r.status_mut() = StatusCode::NOT_FOUND;
                        r
                    }
                };
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

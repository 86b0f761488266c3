//! Everything `rocketgate demo` and the integration tests need to run without a
//! Rocketpunch account: a stand-in for the Rocketpunch OAuth provider, a small upstream app
//! to put behind the gate, and the configuration that joins them to a proxy.
//!
//! A crate of its own, depending on nothing of rocketgate's, so the library that proxies
//! ships without it; the `rocketgate` binary links it for `rocketgate demo`.

mod body;
mod config;
mod page;
pub mod provider;
pub mod upstream;

pub use body::{Body, empty, full};
pub use config::{proxy_config, proxy_config_without_upstream, random_secret};
pub use provider::{DemoUser, Fault, FaultEndpoint, StandIn, StandInOptions, Stats};
pub use upstream::{Upstream, handle_upstream, spawn_upstream};

use std::future::Future;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Errors of the demo servers.
///
/// Only the connection-level plumbing needs an error type: request handlers
/// always turn failures into proper HTTP responses.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A handler asked for the connection to be dropped without an answer
    /// (see [`CloseConnection`]); hyper closes the connection when a service fails.
    #[error("connection closed on purpose without a response")]
    ConnectionClosed,
    /// A request body was larger than the handler is willing to buffer.
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The client's request body could not be read (reset, bad framing...).
    #[error("reading the request body failed: {0}")]
    BodyRead(String),
}

/// Response extension: when [`serve`] finds it on a response, it drops the
/// connection instead of sending anything.
///
/// Handlers return plain `Response`s (so they are easy to call from tests), and
/// this marker is how one of them says "hang up on the client" — the stand-in's
/// [`Fault::Refuse`] uses it to imitate a provider that resets connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloseConnection;

/// Request extension set by [`serve`]: the client's socket address, so
/// handlers can keep test-only routes to loopback clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Serves `handler` on every connection accepted from `listener`.
///
/// Uses hyper-util's auto builder so clients may speak HTTP/1.1 or h2c, and
/// enables upgrades so the upstream's WebSocket echo works. Each connection
/// gets its own task, so one slow client never blocks another.
pub fn serve<F, Fut>(listener: TcpListener, handler: F) -> JoinHandle<()>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Usually EMFILE or a connection reset before accept: back
                    // off briefly instead of spinning, then keep serving.
                    tracing::warn!(%err, "demo server: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(PeerAddr(peer));
                    let fut = handler(req);
                    async move {
                        let resp = fut.await;
                        if resp.extensions().get::<CloseConnection>().is_some() {
                            Err(DemoError::ConnectionClosed)
                        } else {
                            Ok::<_, DemoError>(resp)
                        }
                    }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                if let Err(err) = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%err, "demo server: connection ended with an error");
                }
            });
        }
    })
}

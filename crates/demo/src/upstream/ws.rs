//! `/_upstream/ws`: a WebSocket echo, to prove the gate relays upgrades.

use futures_util::{SinkExt as _, StreamExt as _};
use http::header::{
    CONNECTION, HeaderMap, HeaderName, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::{Body, empty};

/// Validates the handshake, answers 101 and echoes on the upgraded
/// connection in a task of its own (the upgrade only completes after hyper has
/// sent the 101, so it cannot be awaited here).
pub(super) fn upgrade(req: Request<Incoming>) -> Response<Body> {
    let headers = req.headers();
    let key = headers.get(SEC_WEBSOCKET_KEY);
    let valid = has_token(headers, &UPGRADE, "websocket")
        && has_token(headers, &CONNECTION, "upgrade")
        && headers
            .get(SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = key.filter(|_| valid) else {
        return super::text(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade (version 13)",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    let Ok(accept) = HeaderValue::from_str(&accept) else {
        return super::text(StatusCode::INTERNAL_SERVER_ERROR, "bad accept key");
    };
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                echo(ws).await;
            }
            Err(err) => tracing::debug!(%err, "demo upstream: WebSocket upgrade failed"),
        }
    });
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    resp
}

/// Echoes text and binary messages. Pings are answered and close frames
/// acknowledged by tungstenite itself; the stream ends once the close
/// handshake is done or the peer vanishes.
async fn echo<S>(mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(msg).await.is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(err) => {
                tracing::debug!(%err, "demo upstream: WebSocket ended");
                break;
            }
        }
    }
}

/// Whether a comma-separated header (`Connection: keep-alive, Upgrade`)
/// contains `token`, case-insensitively.
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        String::from_utf8_lossy(value.as_bytes())
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

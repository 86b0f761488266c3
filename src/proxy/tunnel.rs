//! `Upgrade` (WebSocket) requests: which ones are tunnelled, and the tunnel itself.

use http::Response;
use http::header::{self, HeaderMap, HeaderValue};
use hyper_util::rt::TokioIo;

use crate::body::{self, Body};

/// The `Upgrade` protocol a request asks for, if it really asks for one we tunnel. Only
/// WebSocket: an `h2c` upgrade would hand the client a raw HTTP/2 connection to the upstream
/// on which it could send further requests past rocketgate (request smuggling).
pub(super) fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
        .filter(|protocol| {
            protocol
                .to_str()
                .is_ok_and(|p| p.trim().eq_ignore_ascii_case("websocket"))
        })
}

/// Answers the client's upgrade with the upstream's 101 and splices the two connections.
pub(super) fn tunnel(
    mut upstream: Response<hyper::body::Incoming>,
    client: hyper::upgrade::OnUpgrade,
) -> Response<Body> {
    let upstream_upgrade = hyper::upgrade::on(&mut upstream);
    tokio::spawn(async move {
        let (Ok(client), Ok(server)) = tokio::join!(client, upstream_upgrade) else {
            tracing::debug!("upgrade abandoned by one side");
            return;
        };
        let mut client = TokioIo::new(client);
        let mut server = TokioIo::new(server);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
            tracing::debug!(error = %e, "upgraded connection ended");
        }
    });
    let (parts, _) = upstream.into_parts();
    Response::from_parts(parts, body::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_needs_both_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        assert!(requested_upgrade(&h).is_none());
        h.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert_eq!(requested_upgrade(&h).unwrap(), "websocket");
        h.insert(header::UPGRADE, "h2c".parse().unwrap());
        assert!(requested_upgrade(&h).is_none(), "h2c is never tunnelled");
    }
}

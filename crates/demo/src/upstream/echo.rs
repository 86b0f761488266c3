//! The JSON echo: exactly what reached the upstream, so tests can assert
//! what the gate forwarded (raw URI, every header line, body digest).

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::Body;

#[derive(Serialize)]
struct Echo {
    method: String,
    /// Path and query as received: not decoded, not re-encoded.
    uri: String,
    version: String,
    /// Every header line, repeated names kept. Names are lowercase (hyper
    /// normalizes them) and lines with one name are grouped together.
    headers: Vec<(String, String)>,
    body_bytes: u64,
    body_sha256: String,
}

/// Consumes the body frame by frame, so a multi-gigabyte upload is counted
/// and hashed in constant memory.
pub(super) async fn echo(req: Request<Incoming>) -> Response<Body> {
    let (parts, mut body) = req.into_parts();
    let uri = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_owned());
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut hasher = Sha256::new();
    let mut body_bytes: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    body_bytes += data.len() as u64;
                    hasher.update(data);
                }
            }
            Err(err) => {
                return super::text(
                    StatusCode::BAD_REQUEST,
                    &format!("reading the request body failed: {err}"),
                );
            }
        }
    }
    let echo = Echo {
        method: parts.method.to_string(),
        uri,
        version: format!("{:?}", parts.version),
        headers,
        body_bytes,
        body_sha256: hex(&hasher.finalize()),
    };
    match serde_json::to_vec_pretty(&echo) {
        Ok(json) => {
            let mut resp = Response::new(crate::full(json));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(err) => super::text(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_two_digits() {
        assert_eq!(super::hex(&[0, 1, 0xab, 0xff]), "0001abff");
    }
}

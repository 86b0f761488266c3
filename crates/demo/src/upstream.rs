//! The demo upstream app: what `rocketgate demo` puts behind the gate, and
//! what integration tests proxy to.
//!
//! Browsers get a page showing the identity the gate asserted; everything else
//! gets a byte-exact JSON echo, so tests can check what the gate forwarded.
//! `/_upstream/*` holds helpers for streaming, slowness, statuses, WebSockets
//! and multiple `Set-Cookie` headers.

mod echo;
mod page;
mod pattern;
mod ws;

#[cfg(test)]
mod tests;

use std::time::Duration;

use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, SET_COOKIE};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Body, empty, full};

/// `/_upstream/slow` never waits longer than this.
const MAX_SLOW_MS: u64 = 60_000;

/// Handle for the (stateless) demo upstream; the free functions do the work.
#[derive(Clone, Copy, Debug, Default)]
pub struct Upstream;

impl Upstream {
    /// Same as [`spawn_upstream`].
    pub fn spawn(listener: TcpListener) -> JoinHandle<()> {
        spawn_upstream(listener)
    }
}

/// Serves the demo upstream on `listener` until the task is aborted.
pub fn spawn_upstream(listener: TcpListener) -> JoinHandle<()> {
    super::serve(listener, handle_upstream)
}

/// Answers one request; never panics on client input.
pub async fn handle_upstream(req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/_upstream/") {
        let rest = rest.to_owned();
        return helper(req, &rest).await;
    }
    if req.method() == Method::GET && wants_html(&req) {
        return page::signed_in(&req);
    }
    echo::echo(req).await
}

/// Browsers send `Accept: text/html,...`; API clients and tests usually do not.
fn wants_html(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(ACCEPT)
        .iter()
        .any(|v| String::from_utf8_lossy(v.as_bytes()).contains("text/html"))
}

async fn helper(req: Request<Incoming>, route: &str) -> Response<Body> {
    if let Some(code) = route.strip_prefix("status/") {
        return status(code);
    }
    match (req.method(), route) {
        (&Method::GET, "download") => match query_u64(&req, "bytes") {
            Ok(Some(n)) => pattern::download(n),
            _ => text(StatusCode::BAD_REQUEST, "bytes=N is required"),
        },
        // Any method: the request body, if any, is read to its end first, so the request
        // stays open until then (h2spec's malformed bodies need an open stream to fault).
        (_, "slow") => match query_u64(&req, "ms") {
            Ok(ms) => {
                let ms = ms.unwrap_or(0).min(MAX_SLOW_MS);
                if http_body_util::BodyExt::collect(req.into_body())
                    .await
                    .is_err()
                {
                    return text(StatusCode::BAD_REQUEST, "request body broken");
                }
                tokio::time::sleep(Duration::from_millis(ms)).await;
                text(StatusCode::OK, "slow done")
            }
            Err(()) => text(StatusCode::BAD_REQUEST, "ms must be a whole number"),
        },
        (&Method::GET, "ws") => ws::upgrade(req),
        (&Method::GET, "set-cookie") => {
            let mut resp = text(StatusCode::OK, "two cookies set");
            let headers = resp.headers_mut();
            headers.append(SET_COOKIE, HeaderValue::from_static("app_a=1; Path=/"));
            headers.append(SET_COOKIE, HeaderValue::from_static("app_b=2; Path=/"));
            resp
        }
        _ => text(StatusCode::NOT_FOUND, "no such upstream helper"),
    }
}

/// `/_upstream/status/NNN`: any final status, so tests can see how the gate
/// relays upstream errors. 1xx cannot be a final response, hence 400.
fn status(code: &str) -> Response<Body> {
    let status = code
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .filter(|s| (200..=599).contains(&s.as_u16()));
    let Some(status) = status else {
        return text(StatusCode::BAD_REQUEST, "status must be 200-599");
    };
    // 204 and 304 must not have a body.
    let mut resp = if matches!(status.as_u16(), 204 | 304) {
        let mut resp = Response::new(empty());
        *resp.status_mut() = status;
        resp
    } else {
        text(status, &format!("upstream answered {}", status.as_u16()))
    };
    resp.headers_mut().insert(
        HeaderName::from_static("x-upstream-status"),
        HeaderValue::from(status.as_u16()),
    );
    resp
}

/// Reads an optional whole-number query parameter; `Err` when malformed.
fn query_u64(req: &Request<Incoming>, name: &str) -> Result<Option<u64>, ()> {
    let query = req.uri().query().unwrap_or("");
    match form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) => v.parse::<u64>().map(Some).map_err(|_| ()),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let body = body.to_owned();
    let len = body.len();
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

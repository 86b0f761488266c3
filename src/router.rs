//! Which request goes where: health, metrics, the `/oauth2` endpoints, or the protected
//! upstream. Also the one place every request is given an id, counted and logged.

use std::sync::Arc;
use std::time::Instant;

use http::header::HeaderValue;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::app::App;
use crate::body::{self, Body};
use crate::endpoints::{self, wants_html};
use crate::forwarded::{self, Origin};
use crate::gate::{self, LoggedUser};
use crate::metrics::RouteKind;
use crate::proxy::X_REQUEST_ID;
use crate::respond::RequestError;
use crate::server::ConnInfo;

/// A request id we pass on: 1 to 128 characters of letters, digits and `-_.:`.
fn is_sane_request_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

/// Keeps a client's or load balancer's request id when it is a sane token, so one id follows
/// the request through every hop; otherwise makes one.
fn request_id(req: &Request<Incoming>) -> HeaderValue {
    if let Some(id) = req
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| is_sane_request_id(v.as_bytes()))
    {
        return id.clone();
    }
    let bytes: [u8; 16] = rand::random();
    let mut hex = [0u8; 32];
    for (i, b) in bytes.into_iter().enumerate() {
        hex[2 * i] = b"0123456789abcdef"[usize::from(b >> 4)];
        hex[2 * i + 1] = b"0123456789abcdef"[usize::from(b & 15)];
    }
    HeaderValue::from_bytes(&hex).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn route_kind(app: &App, path: &str) -> RouteKind {
    match path {
        "/ping" | "/ready" => RouteKind::Health,
        "/metrics" if app.config.metrics_listen.is_none() => RouteKind::Metrics,
        "/oauth2/start" | "/oauth2/callback" | "/oauth2/sign_out" => RouteKind::Login,
        "/oauth2/userinfo" => RouteKind::Userinfo,
        "/oauth2/jwks.json" => RouteKind::Jwks,
        p if p == "/oauth2/auth" || p.starts_with("/oauth2/auth/") => RouteKind::Auth,
        "/oauth2/admin/revoke" => RouteKind::Admin,
        p if p.starts_with("/oauth2/") => RouteKind::Other,
        _ => RouteKind::Proxy,
    }
}

pub async fn handle(app: Arc<App>, mut req: Request<Incoming>, conn: ConnInfo) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    // Cheap clones (shared bytes), kept for the log line after the request has moved on.
    let uri = req.uri().clone();
    let kind = route_kind(&app, uri.path());
    let html = wants_html(req.headers());
    let id = request_id(&req);
    req.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
    let origin = forwarded::origin(
        req.headers(),
        conn.peer,
        conn.proto,
        &app.config.trusted_proxies,
    );
    let answer = match host_framing(&req) {
        Ok(()) => route(&app, req, kind, &origin).await,
        Err(e) => Err(e),
    };
    let mut response = match answer {
        Ok(response) => response,
        Err(error) => {
            if error.status().is_server_error() {
                tracing::warn!(%error, request_id = ?id, "request failed");
            }
            error.render(&app.pages, html)
        }
    };
    if kind == RouteKind::Auth {
        // Whatever the answer (200, 401, 403, 302, 5xx), it is about one browser's cookies
        // at one moment: a cache in front of rocketgate must never replay it to another.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let user = response.extensions_mut().remove::<LoggedUser>();
    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), id.clone());
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    app.metrics.request(status, kind, elapsed.as_secs_f64());
    crate::logging::log_request(&crate::logging::RequestLine {
        method: method.as_str(),
        path: uri.path(),
        status,
        latency: elapsed,
        client: origin.client_ip,
        user: user.as_ref().map(|u| u.0.as_str()),
        request_id: id.to_str().unwrap_or("-"),
    });
    response
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or any request with more than one,
/// is refused with 400. Proxying it would let the upstream and rocketgate disagree about
/// which site the request is for. HTTP/2 names the host in `:authority` instead.
fn host_framing(req: &Request<Incoming>) -> Result<(), RequestError> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err(RequestError::Malformed("more than one Host header")),
        (None, _) if req.version() == http::Version::HTTP_11 => {
            Err(RequestError::Malformed("no Host header"))
        }
        _ => Ok(()),
    }
}

fn text(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(body::full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The Prometheus exposition, for the main listener or `metrics_listen`.
pub fn metrics(app: &App) -> Response<Body> {
    let mut response = Response::new(body::full(app.metrics.encode()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// Routing looks at the path alone: no header (`User-Agent`, `X-Forwarded-Uri`, ...) can
/// turn a protected request into a health check or an auth endpoint.
async fn route(
    app: &App,
    req: Request<Incoming>,
    kind: RouteKind,
    origin: &Origin,
) -> Result<Response<Body>, RequestError> {
    let path = req.uri().path();
    match kind {
        RouteKind::Health if path == "/ready" && app.is_draining() => {
            Ok(text(StatusCode::SERVICE_UNAVAILABLE, "draining"))
        }
        RouteKind::Health if path == "/ready" && !app.is_ready() => Ok(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "session store unavailable",
        )),
        RouteKind::Health => Ok(text(StatusCode::OK, "OK")),
        RouteKind::Metrics => Ok(metrics(app)),
        // Sign-in, sign-out and the admin API are boxed: their futures (token exchange,
        // Redis writes) are ~7 KiB, and hyper keeps room for this whole future in every open
        // connection, for paths a user takes once per session.
        RouteKind::Login => match path {
            "/oauth2/start" => Ok(endpoints::start(app, &req, origin)),
            "/oauth2/callback" => Box::pin(endpoints::callback(app, &req)).await,
            _ => Box::pin(endpoints::sign_out(app, &req)).await,
        },
        RouteKind::Userinfo => endpoints::userinfo(app, &req).await,
        RouteKind::Auth => endpoints::auth(app, &req, origin).await,
        RouteKind::Jwks => app
            .assertion
            .as_ref()
            .map(|signer| signer.jwks_response())
            .ok_or(RequestError::NotFound),
        RouteKind::Admin => Box::pin(crate::admin::revoke(app, &req)).await,
        RouteKind::Other => Err(RequestError::NotFound),
        RouteKind::Proxy if req.method() == Method::CONNECT => Err(RequestError::NotFound),
        RouteKind::Proxy => gate::protected(app, req, origin).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_tokens() {
        assert!(is_sane_request_id(b"5f0c6c1e-1b2a-4c3d-9e8f-0a1b2c3d4e5f"));
        assert!(is_sane_request_id(b"trace:01.a_b"));
        assert!(!is_sane_request_id(b""));
        assert!(!is_sane_request_id(b"a b"));
        assert!(!is_sane_request_id(b"<script>"));
        assert!(!is_sane_request_id("x".repeat(129).as_bytes()));
    }

    fn future_size<F: Future>(_: &impl FnOnce() -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// hyper reserves room for the service's future in every open connection, busy or idle,
    /// so the paths few requests take are boxed. Inline, sign-in, sign-out, the admin API and
    /// the Redis read made this future 9.4 KiB instead of 3.8 KiB (release build).
    #[test]
    fn the_request_future_carries_no_rare_path_inline() {
        // Futures are built, never polled: no App is needed to know their types.
        fn never<T>() -> T {
            unreachable!("only the type is used")
        }
        let handle = future_size(&|| handle(never(), never(), never()));
        let rare = [
            (
                "callback",
                future_size(&|| async {
                    endpoints::callback(never::<&App>(), never::<&Request<Incoming>>()).await
                }),
            ),
            (
                "sign_out",
                future_size(&|| async {
                    endpoints::sign_out(never::<&App>(), never::<&Request<Incoming>>()).await
                }),
            ),
            (
                "admin",
                future_size(&|| async {
                    crate::admin::revoke(never::<&App>(), never::<&Request<Incoming>>()).await
                }),
            ),
            (
                "Redis delete",
                future_size(&|| async {
                    never::<&crate::session::Sessions>().delete(never()).await
                }),
            ),
        ];
        for (name, size) in rare {
            assert!(
                handle < size,
                "the request future ({handle} bytes) is not smaller than {name}'s ({size} bytes): \
                 box the slow path that grew it"
            );
        }
    }
}

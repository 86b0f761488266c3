//! Which request goes where: health, metrics, the `/oauth2` endpoints, or the protected
//! upstream. Also the one place every request is counted and logged.

use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::app::App;
use crate::body::{self, Body};
use crate::endpoints::{self, wants_html};
use crate::forwarded::{self, Origin};
use crate::gate::{self, LoggedUser};
use crate::respond::RequestError;
use crate::server::ConnInfo;

pub async fn handle(app: Arc<App>, req: Request<Incoming>, conn: ConnInfo) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let html = wants_html(req.headers());
    let origin = forwarded::origin(
        req.headers(),
        conn.peer,
        conn.proto,
        &app.config.trusted_proxies,
    );
    let mut response = match route(&app, req, &origin).await {
        Ok(response) => response,
        Err(error) => {
            if error.status().is_server_error() {
                tracing::warn!(%error, "request failed");
            }
            error.render(html)
        }
    };
    let user = response.extensions_mut().remove::<LoggedUser>();
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    app.metrics.request(status, elapsed.as_secs_f64());
    tracing::info!(
        target: "rocketgate::request",
        method = %method,
        path = %path,
        client = %origin.client_ip,
        status,
        latency_ms = elapsed.as_micros() as f64 / 1000.0,
        user = %user.as_ref().map_or("-", |u| u.0.as_str()),
    );
    response
}

fn text(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(body::full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Routing looks at the path alone: no header (`User-Agent`, `X-Forwarded-Uri`, ...) can
/// turn a protected request into a health check or an auth endpoint.
async fn route(
    app: &App,
    req: Request<Incoming>,
    origin: &Origin,
) -> Result<Response<Body>, RequestError> {
    let path = req.uri().path();
    match path {
        "/ping" => Ok(text(StatusCode::OK, "OK")),
        "/ready" if app.is_draining() => Ok(text(StatusCode::SERVICE_UNAVAILABLE, "draining")),
        "/ready" => Ok(text(StatusCode::OK, "OK")),
        "/metrics" => {
            let mut response = Response::new(body::full(app.metrics.encode()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            Ok(response)
        }
        "/oauth2/start" => Ok(endpoints::start(app, &req, origin)),
        "/oauth2/callback" => endpoints::callback(app, &req).await,
        "/oauth2/sign_out" => Ok(endpoints::sign_out(app, &req)),
        "/oauth2/userinfo" => endpoints::userinfo(app, &req).await,
        p if p == "/oauth2/auth" || p.starts_with("/oauth2/auth/") => {
            endpoints::auth(app, &req).await
        }
        "/oauth2/jwks.json" => app
            .assertion
            .as_ref()
            .map(|signer| signer.jwks_response())
            .ok_or(RequestError::NotFound),
        p if p.starts_with("/oauth2/") => Err(RequestError::NotFound),
        _ if req.method() == Method::CONNECT => Err(RequestError::NotFound),
        _ => gate::protected(app, req, origin).await,
    }
}

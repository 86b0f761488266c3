//! `/ping`, `/ready`, `/robots.txt` and `/metrics`: answered from the path alone, with no
//! session.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::app::App;
use crate::body::{self, Body};

/// `/ping` always; `/ready` while not draining and the session store answers;
/// `/robots.txt` asks crawlers to stay out, as oauth2-proxy's does: everything behind the
/// gate needs a sign-in, so a crawler would index only sign-in redirects.
pub fn health(app: &App, path: &str) -> Response<Body> {
    match path {
        "/robots.txt" => text(StatusCode::OK, "User-agent: *\nDisallow: /\n"),
        "/ready" if app.is_draining() => text(StatusCode::SERVICE_UNAVAILABLE, "draining"),
        "/ready" if !app.is_ready() => {
            text(StatusCode::SERVICE_UNAVAILABLE, "session store unavailable")
        }
        _ => text(StatusCode::OK, "OK"),
    }
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

/// A short plain-text answer.
pub fn text(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(body::full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

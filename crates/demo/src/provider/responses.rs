//! Response builders for the provider's two error dialects.
//!
//! `/oauth/*` is league/oauth2-server and answers
//! `{"error","error_description","hint","message"}`; `/api/v1/*` is
//! Rocketpunch's own API and answers `{"error":{"code","message","status"}}`.
//! The gate parses both, so the stand-in must reproduce both exactly.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::{Body, empty, full};

/// Requests per window the fake rate limiter advertises.
pub(super) const RATE_LIMIT: u64 = 1000;
/// Seconds a client is told to wait after a 429.
pub(super) const RETRY_AFTER_SECS: u64 = 30;

/// An OAuth error in league/oauth2-server's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    hint: Option<String>,
}

#[derive(Serialize)]
struct OAuthErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    message: &'a str,
}

const INVALID_REQUEST: &str = "The request is missing a required parameter, includes an invalid \
     parameter value, includes a parameter more than once, or is otherwise malformed.";
const INVALID_GRANT: &str = "The provided authorization grant (e.g., authorization code, resource \
     owner credentials) or refresh token is invalid, expired, revoked, does not match the \
     redirection URI used in the authorization request, or was issued to another client.";

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: &str, hint: Option<&str>) -> Self {
        Self {
            status,
            error,
            description: description.to_owned(),
            hint: hint.map(str::to_owned),
        }
    }

    /// A required parameter is missing or malformed; names it like league does.
    pub(super) fn invalid_request(param: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            INVALID_REQUEST,
            Some(&format!("Check the `{param}` parameter")),
        )
    }

    pub(super) fn invalid_request_hint(hint: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            INVALID_REQUEST,
            Some(hint),
        )
    }

    /// The body did not fit the 64 KiB cap.
    pub(super) fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            INVALID_REQUEST,
            Some("The request body is too large"),
        )
    }

    pub(super) fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
            None,
        )
    }

    pub(super) fn invalid_grant(hint: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            INVALID_GRANT,
            Some(hint),
        )
    }

    /// league's `invalidRefreshToken`: still `invalid_grant`, shorter text.
    pub(super) fn invalid_refresh_token(hint: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The refresh token is invalid.",
            Some(hint),
        )
    }

    pub(super) fn unsupported_grant_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
            Some("Check that all required parameters have been provided"),
        )
    }

    /// What the token endpoint says for an injected status fault.
    pub(super) fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::invalid_request_hint("Injected fault"),
            401 => Self::invalid_client(),
            429 => Self::too_many_requests(),
            503 => Self::new(
                status,
                "temporarily_unavailable",
                "The authorization server is temporarily unable to handle the request due to \
                 a temporary overloading or maintenance of the server.",
                None,
            ),
            _ => Self::new(
                status,
                "server_error",
                "The authorization server encountered an unexpected condition which prevented \
                 it from fulfilling the request.",
                None,
            ),
        }
    }

    pub(super) fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests. Please retry later.",
            None,
        )
    }

    /// Renders the JSON response. `basic_auth` adds the `WWW-Authenticate`
    /// challenge league sends when a client tried HTTP Basic and failed.
    pub(super) fn into_response(self, basic_auth: bool) -> Response<Body> {
        let body = OAuthErrorBody {
            error: self.error,
            error_description: &self.description,
            hint: self.hint.as_deref(),
            message: &self.description,
        };
        let mut resp = json(self.status, &body);
        no_store(&mut resp);
        if basic_auth && self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"OAuth\""),
            );
        }
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            rate_limited(&mut resp);
        }
        resp
    }
}

#[derive(Serialize)]
struct ApiErrorBody<'a> {
    error: ApiErrorInner<'a>,
}

#[derive(Serialize)]
struct ApiErrorInner<'a> {
    code: String,
    message: &'a str,
    status: u16,
}

/// Rocketpunch API error: `code` is the status name in SCREAMING_SNAKE_CASE
/// (`UNAUTHORIZED`, `TOO_MANY_REQUESTS`, `INTERNAL_SERVER_ERROR`...).
pub(super) fn api_error(status: StatusCode, message: &str) -> Response<Body> {
    json(
        status,
        &ApiErrorBody {
            error: ApiErrorInner {
                code: api_code(status),
                message,
                status: status.as_u16(),
            },
        },
    )
}

fn api_code(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("ERROR")
        .to_ascii_uppercase()
        .replace([' ', '-'], "_")
        .replace('\'', "")
}

/// A JSON response. Serializing these plain structs cannot fail; if it ever
/// did, answer 500 rather than panic.
pub(super) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_type(status, "application/json", full(bytes)),
        Err(_) => with_type(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            full(r#"{"error":"server_error"}"#),
        ),
    }
}

pub(super) fn html(status: StatusCode, page: String) -> Response<Body> {
    let mut resp = with_type(status, "text/html; charset=utf-8", full(page));
    no_store(&mut resp);
    resp
}

/// A 302 to `location`, which must be a valid header value (it is built from
/// the registered redirect URI plus an encoded query, so it always is).
pub(super) fn redirect(location: &str) -> Response<Body> {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut resp = Response::new(empty());
            *resp.status_mut() = StatusCode::FOUND;
            resp.headers_mut().insert(LOCATION, value);
            no_store(&mut resp);
            resp
        }
        Err(_) => with_type(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            full("the registered redirect URI is not a valid header value"),
        ),
    }
}

fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Token responses and consent pages must never be cached (RFC 6749 §5.1).
pub(super) fn no_store(resp: &mut Response<Body>) {
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Adds `X-RateLimit-*` headers like Rocketpunch's API; `remaining` is how many
/// calls are left in the current window.
pub(super) fn rate_limit_headers(resp: &mut Response<Body>, remaining: u64) {
    let reset = SystemTime::now()
        .checked_add(Duration::from_secs(60))
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let headers = resp.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", RATE_LIMIT),
        ("x-ratelimit-remaining", remaining),
        ("x-ratelimit-reset", reset),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

/// Marks a response as rate limited: exhausted window plus `Retry-After`.
pub(super) fn rate_limited(resp: &mut Response<Body>) {
    rate_limit_headers(resp, 0);
    resp.headers_mut().insert(
        http::header::RETRY_AFTER,
        HeaderValue::from(RETRY_AFTER_SECS),
    );
}

/// The "provider is down for maintenance" answer of [`super::Fault::NonJson`].
pub(super) fn maintenance_page() -> Response<Body> {
    with_type(
        StatusCode::OK,
        "text/html; charset=utf-8",
        full("<html>maintenance</html>"),
    )
}

/// The status an injected [`super::Fault::Status`] answers with. Codes hyper
/// cannot send as a final response (1xx, out of range) become 500.
pub(super) fn fault_status(code: u16) -> StatusCode {
    match StatusCode::from_u16(code) {
        Ok(status) if !status.is_informational() => status,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A response that [`crate::serve`] turns into a dropped connection.
pub(super) fn refuse() -> Response<Body> {
    let mut resp = api_error(StatusCode::SERVICE_UNAVAILABLE, "Connection refused.");
    resp.extensions_mut().insert(crate::CloseConnection);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_codes_are_screaming_snake_case() {
        for (status, code) in [
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS"),
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR"),
            (StatusCode::IM_A_TEAPOT, "IM_A_TEAPOT"),
            (
                StatusCode::NON_AUTHORITATIVE_INFORMATION,
                "NON_AUTHORITATIVE_INFORMATION",
            ),
        ] {
            assert_eq!(api_code(status), code);
        }
    }
}

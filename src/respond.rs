//! The one place where errors become HTTP answers and where every answer gets what the
//! request context says it must carry: pending `Set-Cookie` values, the request id.

use http::{Response, header};

use crate::bearer::BearerError;
use crate::body::Body;
use crate::context::Format;
use crate::error::RequestError;
use crate::oauth::ProviderError;
use crate::pages::{self, ErrorPage, Pages};
use crate::proxy::grpc::{self, Code, GrpcKind};
use crate::session::{RefreshError, StoreError};

/// Who reads an error answer, and what its page can say about the request.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    pub format: Format,
    /// Shown on 5xx pages, to quote when asking for help.
    pub request_id: Option<&'a str>,
    /// The signed-in account, shown on pages that refuse it.
    pub account: Option<&'a str>,
    /// Where a 5xx page's "Try again" leads (the request's own URL).
    pub retry: Option<&'a str>,
}

impl Reader<'_> {
    /// A script or API client.
    pub fn json() -> Reader<'static> {
        Reader {
            format: Format::Json,
            request_id: None,
            account: None,
            retry: None,
        }
    }

    /// A browser, with nothing more known about the request.
    pub fn html() -> Reader<'static> {
        Reader {
            format: Format::Html,
            ..Reader::json()
        }
    }
}

/// The answer to `error`: an HTML page for browsers, a small JSON body for everything else.
/// A page that refuses a signed-in user names the account; a 5xx page shows the request id
/// and a "Try again" link.
pub fn render(error: &RequestError, pages: &Pages, to: &Reader<'_>) -> Response<Body> {
    let status = error.status();
    let (code, title, message) = error.words();
    let mut response = match to.format {
        Format::Html => {
            let failed = status.is_server_error();
            let retry = to.retry.filter(|_| failed).map(|href| pages::Action {
                href,
                label: "Try again",
            });
            pages.error(&ErrorPage {
                status,
                title,
                message,
                action: error.action().or(retry),
                account: to.account.filter(|_| status == http::StatusCode::FORBIDDEN),
                request_id: to.request_id.filter(|_| failed),
            })
        }
        Format::Json => pages::json_error(status, code, message),
        Format::Grpc(kind) => trailers_only(kind, Code::for_status(status), message),
    };
    // RFC 6750 §3: tell a bearer client why its token was refused.
    if let RequestError::Bearer(BearerError::Invalid(_)) = error {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    if let RequestError::AdminUnauthorized = error {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"rocketgate-admin\""),
        );
    }
    if let RequestError::Store(StoreError::Unavailable(_))
    | RequestError::Refresh(RefreshError::StoreUnavailable(_)) = error
    {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    if let RequestError::Provider(ProviderError::RateLimited { retry_after }) = error {
        let seconds = retry_after.unwrap_or(30).min(3600);
        if let Ok(v) = header::HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    response
}

/// A gRPC "trailers-only" answer: HTTP 200 with the status in the headers and no body,
/// which HTTP/2 sends as one HEADERS frame ending the stream. `grpc-web` clients read it
/// the same way over HTTP/1.1.
fn trailers_only(kind: GrpcKind, code: Code, message: &str) -> Response<Body> {
    let mut response = Response::new(crate::body::empty());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, kind.content_type());
    headers.insert(GRPC_STATUS.clone(), code.header());
    headers.insert(GRPC_MESSAGE.clone(), grpc::message(message));
    response
}

static GRPC_STATUS: header::HeaderName = header::HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: header::HeaderName = header::HeaderName::from_static("grpc-message");

/// Adds `cookies` to `response` as `Set-Cookie` headers.
pub fn add_cookies(response: &mut Response<Body>, cookies: Vec<String>) {
    for c in cookies {
        if let Ok(v) = header::HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::tests::every_error;

    fn pages() -> Pages {
        Pages::new(&crate::pages::PageSettings::default())
    }

    #[test]
    fn every_error_renders_its_status_both_ways() {
        for (error, status) in every_error() {
            assert_eq!(
                render(&error, &pages(), &Reader::json()).status().as_u16(),
                status
            );
            assert_eq!(
                render(&error, &pages(), &Reader::html()).status().as_u16(),
                status
            );
        }
    }

    #[test]
    fn grpc_clients_get_trailers_only_answers() {
        for (error, status) in every_error() {
            let to = Reader {
                format: Format::Grpc(GrpcKind::Grpc),
                ..Reader::json()
            };
            let r = render(&error, &pages(), &to);
            assert_eq!(r.status(), 200, "{error:?}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], "application/grpc");
            let code = Code::for_status(http::StatusCode::from_u16(status).unwrap());
            assert_eq!(r.headers()["grpc-status"], code.header(), "{error:?}");
            assert!(!r.headers()["grpc-message"].is_empty());
            assert!(hyper::body::Body::is_end_stream(r.body()), "{error:?}");
        }
    }

    #[test]
    fn invalid_bearer_tokens_carry_www_authenticate() {
        for html in [false, true] {
            let to = if html { Reader::html() } else { Reader::json() };
            let r = render(
                &RequestError::from(BearerError::Invalid("kid")),
                &pages(),
                &to,
            );
            assert_eq!(
                r.headers()[header::WWW_AUTHENTICATE],
                "Bearer error=\"invalid_token\""
            );
        }
        let r = render(
            &RequestError::from(BearerError::KeysUnavailable("x".into())),
            &pages(),
            &Reader::json(),
        );
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let error = RequestError::from(ProviderError::RateLimited {
            retry_after: Some(12),
        });
        let r = render(&error, &pages(), &Reader::html());
        assert_eq!(r.headers()[header::RETRY_AFTER], "12");
    }
}

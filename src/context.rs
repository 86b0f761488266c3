//! What one request carries through the pipeline: who asked (connection, origin, id), what
//! kind of answer they can read, the cookies they sent, the `Set-Cookie` values every answer
//! must carry, and the user once known. Phases read and add to it; the respond phase is the
//! only one that turns it into response headers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Uri};

use crate::access::Denied;
use crate::forwarded::Origin;
use crate::metrics::RouteKind;
use crate::proxy::grpc::GrpcKind;
use crate::session::{RequestCookies, Session};
use crate::trace::RequestTrace;

/// What the proxy knows about the connection a request came on.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// `http` or `https`, for `X-Forwarded-Proto`.
    pub proto: &'static str,
}

/// How a refusal must be written for this client to read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A browser navigation: pages and redirects.
    Html,
    /// Scripts, API clients, and the endpoints that only ever answer JSON.
    Json,
    /// gRPC and gRPC-Web clients, which read only a status and a message in trailers
    /// (or in headers, "trailers-only"), never a body of ours and never a redirect.
    Grpc(GrpcKind),
}

static X_REQUESTED_WITH: http::HeaderName = http::HeaderName::from_static("x-requested-with");

impl Format {
    /// Browsers navigating get redirects and pages; gRPC clients, by their `content-type`,
    /// get gRPC statuses; scripts and API clients get JSON.
    pub fn of(headers: &HeaderMap) -> Format {
        if let Some(kind) = crate::proxy::grpc::kind(headers) {
            return Format::Grpc(kind);
        }
        let xhr = headers
            .get(&X_REQUESTED_WITH)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"xmlhttprequest"));
        let html = !xhr
            && headers
                .get_all(header::ACCEPT)
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")));
        if html { Format::Html } else { Format::Json }
    }
}

/// The signed-in user a response was made for: the id for the request log, the name the
/// pages show. A shared handle on the session, so knowing it costs no copy per request.
#[derive(Clone, Debug)]
pub struct Account(pub Arc<Session>);

impl Account {
    /// The stable user id.
    pub fn user(&self) -> &str {
        &self.0.identity.user
    }

    /// What the pages call the account: the email, else the username, else the id.
    pub fn name(&self) -> &str {
        let id = &self.0.identity;
        id.email
            .as_deref()
            .or(id.preferred_username.as_deref())
            .unwrap_or(&id.user)
    }
}

/// One request's state, from accept to log.
pub struct Context {
    /// The request id (the client's when sane, else a fresh one), sent upstream and back.
    pub id: HeaderValue,
    pub started: Instant,
    pub method: Method,
    /// The request target as received, for the log line and "Try again" links.
    pub uri: Uri,
    pub kind: RouteKind,
    pub format: Format,
    pub origin: Origin,
    /// The request's cookies, parsed once (empty on routes that never read them).
    pub cookies: RequestCookies,
    /// `Set-Cookie` values for whatever answer this request gets, error pages included: a
    /// refreshed session must reach the browser even when the upstream then fails.
    pub set_cookies: Vec<String>,
    /// The signed-in user, once authenticated.
    pub account: Option<Account>,
    /// The status of rocketgate's own refusal, for the log and the metrics: a gRPC client's
    /// refusal travels as HTTP 200 with a `grpc-status`, yet is a 401 or a 503 all the same.
    pub refused: Option<StatusCode>,
    /// The route a proxied request (or a forward-auth check) was for.
    pub route: Option<Arc<str>>,
    /// The rule that refused the user, for the log line.
    pub denied: Option<Denied>,
    /// Why a 5xx happened (`upstream_error`, `refused`), for the log line and the span.
    pub reason: Option<(&'static str, Box<str>)>,
    /// The request's place in its trace.
    pub trace: RequestTrace,
}

impl Context {
    /// Remembers `cookies` for the answer.
    pub fn set(&mut self, cookies: Vec<String>) {
        if self.set_cookies.is_empty() {
            self.set_cookies = cookies;
        } else {
            self.set_cookies.extend(cookies);
        }
    }

    /// Where "Try again" leads: the request's own path and query, unless a browser could
    /// read it as another host (`//evil.com`, `/\evil.com`), then `/`.
    pub fn return_path(&self) -> String {
        return_path(&self.uri)
    }
}

/// The request's own path and query, byte for byte, or `/` when it could be read as
/// another host.
pub fn return_path(uri: &Uri) -> String {
    let path = uri.path();
    let b = path.as_bytes();
    let ambiguous = b.first() != Some(&b'/')
        || matches!(b.get(1), Some(b'/' | b'\\'))
        || path.contains('\\')
        || path.to_ascii_lowercase().starts_with("/%2f")
        || path.to_ascii_lowercase().starts_with("/%5c");
    if ambiguous {
        return "/".to_owned();
    }
    uri.path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_for_navigations_only() {
        let mut h = HeaderMap::new();
        assert_eq!(Format::of(&h), Format::Json);
        h.insert(
            header::ACCEPT,
            "text/html,application/xhtml+xml".parse().unwrap(),
        );
        assert_eq!(Format::of(&h), Format::Html);
        h.insert("x-requested-with", "XMLHttpRequest".parse().unwrap());
        assert_eq!(Format::of(&h), Format::Json);
        let mut json = HeaderMap::new();
        json.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert_eq!(Format::of(&json), Format::Json);
        // A gRPC-Web call from a page may well accept text/html: its content-type decides.
        let mut grpc = h.clone();
        grpc.insert(
            header::CONTENT_TYPE,
            "application/grpc-web+proto".parse().unwrap(),
        );
        assert_eq!(Format::of(&grpc), Format::Grpc(GrpcKind::Web));
    }

    #[test]
    fn return_path_keeps_deep_links_and_refuses_other_hosts() {
        for (uri, expected) in [
            ("/a/b?q=a%20b&u=http://x", "/a/b?q=a%20b&u=http://x"),
            ("/", "/"),
            ("//evil.com/x", "/"),
            ("/%2fevil.com", "/"),
            ("/%5Cevil.com", "/"),
        ] {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(return_path(&uri), expected, "{uri}");
        }
    }
}

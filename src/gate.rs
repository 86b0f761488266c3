//! The protected path: authenticate, authorize, add identity, forward. Skip routes bypass
//! authentication but never the header clean-up.

use http::{Request, Response};
use hyper::body::Incoming;

use crate::access::RequestPath;
use crate::app::App;
use crate::body::{self, Body};
use crate::endpoints::{begin_login, wants_html, with_cookies};
use crate::identity;
use crate::respond::RequestError;
use crate::server::ConnInfo;
use crate::session::{Opened, RequestCookies, strip_cookies, unix_now};

/// The user a response was made for, read by the request log.
#[derive(Clone, Debug)]
pub struct LoggedUser(pub String);

/// The session the request carries, if it is valid and within its absolute lifetime.
pub fn authenticate(app: &App, cookies: &RequestCookies) -> Option<Opened> {
    app.codec
        .open(cookies)
        .filter(|o| !o.session.is_expired(unix_now(), app.config.cookie.expire))
}

pub async fn protected(
    app: &App,
    mut req: Request<Incoming>,
    conn: ConnInfo,
) -> Result<Response<Body>, RequestError> {
    identity::strip_client_identity(req.headers_mut());
    let skip_routes = &app.config.access.skip_routes;
    if !skip_routes.is_empty() {
        let path = RequestPath::parse(req.uri().path())?;
        if skip_routes.matches(req.method(), &path) {
            strip_cookies(req.headers_mut(), |n| app.codec.is_ours(n));
            return forward(app, req, conn).await;
        }
    }

    let cookies = RequestCookies::from_headers(req.headers());
    let Some(opened) = authenticate(app, &cookies) else {
        let stale = cookies.names().any(|n| app.codec.is_ours(n));
        let clear = if stale {
            app.codec.clear(&cookies)
        } else {
            Vec::new()
        };
        if !wants_html(req.headers()) {
            return Ok(with_cookies(
                RequestError::Unauthenticated.render(false),
                clear,
            ));
        }
        let rd = return_path(req.uri());
        return Ok(with_cookies(begin_login(app, &rd), clear));
    };
    let session = &opened.session;
    if !app
        .config
        .access
        .emails
        .allows(session.identity.email.as_deref())
    {
        return Err(RequestError::Forbidden);
    }

    identity::add_upstream_identity(req.headers_mut(), session, app.config.headers);
    strip_cookies(req.headers_mut(), |n| app.codec.is_ours(n));
    let mut response = forward(app, req, conn).await?;
    if opened.reseal {
        response = with_cookies(response, app.codec.write(session, &cookies));
    }
    response
        .extensions_mut()
        .insert(LoggedUser(session.identity.user.clone()));
    Ok(response)
}

/// Where to return after a login this request started: the request's own path and query,
/// byte for byte, unless a browser could read it as another host (`//evil.com`, `/\\evil.com`).
fn return_path(uri: &http::Uri) -> String {
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

async fn forward(
    app: &App,
    req: Request<Incoming>,
    conn: ConnInfo,
) -> Result<Response<Body>, RequestError> {
    let req = req.map(body::stream);
    Ok(app.upstream.forward(req, conn.peer, conn.proto).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_path_keeps_deep_links_and_refuses_other_hosts() {
        for (uri, expected) in [
            ("/a/b?q=a%20b&u=http://x", "/a/b?q=a%20b&u=http://x"),
            ("/", "/"),
            ("//evil.com/x", "/"),
            ("/%2fevil.com", "/"),
            ("/%5Cevil.com", "/"),
        ] {
            let uri: http::Uri = uri.parse().unwrap();
            assert_eq!(return_path(&uri), expected, "{uri}");
        }
    }
}

//! The protected path: authenticate, authorize, add identity, forward. Skip routes bypass
//! authentication but never the header clean-up.

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::access::RequestPath;
use crate::app::App;
use crate::assertion::X_ROCKETGATE_ASSERTION;
use crate::bearer;
use crate::body::{self, Body};
use crate::endpoints::{begin_login, wants_html, with_cookies};
use crate::forwarded::Origin;
use crate::identity;
use crate::refresh::{Freshness, RefreshError};
use crate::respond::RequestError;
use crate::session::{Opened, RequestCookies, Session, strip_cookies, unix_now};

/// The user a response was made for, read by the request log.
#[derive(Clone, Debug)]
pub struct LoggedUser(pub String);

/// The session the request carries, if it is valid and within its absolute lifetime.
pub fn authenticate(app: &App, cookies: &RequestCookies) -> Option<Opened> {
    app.codec
        .open(cookies)
        .filter(|o| !o.session.is_expired(unix_now(), app.config.cookie.expire))
}

/// A signed-in request's session, refreshed when its access token was due.
pub struct Current {
    pub session: Arc<Session>,
    /// The cookie must be written again: new tokens, or sealed with an old key.
    pub rewrite: bool,
}

/// The session for this request, refreshing it first when its access token expires within
/// `session.refresh_before`. `None` means "not signed in", including a session whose refresh
/// Rocketpunch refused; an unavailable Rocketpunch with an expired token is an error (503)
/// that keeps the session.
pub async fn current(app: &App, cookies: &RequestCookies) -> Result<Option<Current>, RequestError> {
    let Some(opened) = authenticate(app, cookies) else {
        return Ok(None);
    };
    match app
        .refresher
        .ensure_fresh(&opened.session, unix_now())
        .await
    {
        Ok(Freshness::Unchanged | Freshness::Stale) => Ok(Some(Current {
            session: Arc::new(opened.session),
            rewrite: opened.reseal,
        })),
        Ok(Freshness::Refreshed(session)) => Ok(Some(Current {
            session,
            rewrite: true,
        })),
        Err(RefreshError::Ended(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `Set-Cookie` values that remove whatever session cookies the request carried.
pub fn clear_stale(app: &App, cookies: &RequestCookies) -> Vec<String> {
    if app.codec.has_session_cookie(cookies) {
        app.codec.clear(cookies)
    } else {
        Vec::new()
    }
}

pub async fn protected(
    app: &App,
    mut req: Request<Incoming>,
    origin: &Origin,
) -> Result<Response<Body>, RequestError> {
    identity::strip_client_identity(req.headers_mut());
    let skip_routes = &app.config.access.skip_routes;
    if !skip_routes.is_empty() {
        let path = RequestPath::parse(req.uri().path())?;
        if skip_routes.matches(req.method(), &path) {
            strip_cookies(req.headers_mut(), |n| app.codec.is_ours(n));
            return forward(app, req, origin).await;
        }
    }

    let cookies = RequestCookies::from_headers(req.headers());
    let (session, set) = match current(app, &cookies).await? {
        Some(current) => {
            let set = if current.rewrite {
                app.codec.write(&current.session, &cookies)
            } else {
                Vec::new()
            };
            (current.session, set)
        }
        // No session: an API client may still present a Rocketpunch access token.
        None => match bearer::authenticate(app, req.headers()).await? {
            Some(session) => (Arc::new(session), Vec::new()),
            None => {
                let clear = clear_stale(app, &cookies);
                if !wants_html(req.headers()) {
                    return Ok(with_cookies(
                        RequestError::Unauthenticated.render(false),
                        clear,
                    ));
                }
                let rd = return_path(req.uri());
                return Ok(with_cookies(begin_login(app, &rd, &cookies), clear));
            }
        },
    };
    let session = &session;
    if !app
        .config
        .access
        .emails
        .allows(session.identity.email.as_deref())
    {
        let html = wants_html(req.headers());
        return Ok(with_cookies(RequestError::Forbidden.render(html), set));
    }

    identity::add_upstream_identity(req.headers_mut(), session, app.config.headers);
    if let Some(signer) = &app.assertion {
        let assertion = signer.for_session(session).await?;
        req.headers_mut()
            .insert(X_ROCKETGATE_ASSERTION.clone(), assertion);
    }
    strip_cookies(req.headers_mut(), |n| app.codec.is_ours(n));
    let mut response = with_cookies(forward(app, req, origin).await?, set);
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
    origin: &Origin,
) -> Result<Response<Body>, RequestError> {
    let req = req.map(body::stream);
    Ok(app.upstream.forward(req, origin).await?)
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

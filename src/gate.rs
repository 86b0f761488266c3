//! The protected path: authenticate, authorize, add identity, forward. Skip routes bypass
//! authentication but never the header clean-up.

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::access::RequestPath;
use crate::app::App;
use crate::assertion::X_ROCKETGATE_ASSERTION;
use crate::bearer;
use crate::body::Body;
use crate::endpoints::{begin_login, wants_html, with_cookies};
use crate::forwarded::Origin;
use crate::identity;
use crate::refresh::{Freshness, RefreshError};
use crate::respond::RequestError;
use crate::session::{Loaded, RequestCookies, Session, Ticket, strip_cookies, unix_now};

/// The user a response was made for, read by the request log.
#[derive(Clone, Debug)]
pub struct LoggedUser(pub String);

/// The session the request carries, if it is valid and within its absolute lifetime. An
/// unreachable session store is an error (503), never "not signed in".
pub async fn authenticate(
    app: &App,
    cookies: &RequestCookies,
) -> Result<Option<Loaded>, RequestError> {
    let loaded = app.sessions.load(cookies).await?;
    if let Some(l) = &loaded {
        app.metrics.session_cache(l.cached);
    } else if app.codec.has_session_cookie(cookies) {
        app.metrics.session_cache(false);
    }
    Ok(loaded.filter(|l| !l.session.is_expired(unix_now(), app.config.cookie.expire)))
}

/// A signed-in request's session, refreshed when its access token was due.
pub struct Current {
    pub session: Arc<Session>,
    /// The Redis ticket the cookie holds (`None` for cookie sessions and bearer tokens).
    pub ticket: Option<Ticket>,
    /// The cookie must be written again: new tokens in a cookie session, or a cookie sealed
    /// with an old key.
    pub rewrite: bool,
}

impl Current {
    /// The `Set-Cookie` values the response must carry: the session re-sealed when it changed.
    pub fn set_cookies(&self, app: &App, cookies: &RequestCookies) -> Vec<String> {
        if self.rewrite {
            app.sessions
                .rewrite(&self.session, self.ticket.as_ref(), cookies)
        } else {
            Vec::new()
        }
    }

    /// Whether `access.allowed_emails` / `allowed_email_domains` let this user in, checked on
    /// every request so a refreshed profile or a changed policy takes effect at once.
    pub fn allowed(&self, app: &App) -> bool {
        app.config
            .access
            .emails
            .allows(self.session.identity.email.as_deref())
    }
}

/// The session for this request, refreshing it first when its access token expires within
/// `session.refresh_before`. `None` means "not signed in", including a session whose refresh
/// Rocketpunch refused; an unavailable Rocketpunch with an expired token, or an unreachable
/// session store, is an error (503) that keeps the session.
pub async fn current(app: &App, cookies: &RequestCookies) -> Result<Option<Current>, RequestError> {
    let Some(loaded) = authenticate(app, cookies).await? else {
        return Ok(None);
    };
    match app
        .refresher
        .ensure_fresh(&loaded.session, loaded.ticket.as_ref(), unix_now())
        .await
    {
        Ok(Freshness::Unchanged | Freshness::Stale) => Ok(Some(Current {
            session: loaded.session,
            ticket: loaded.ticket,
            rewrite: loaded.reseal,
        })),
        Ok(Freshness::Refreshed(session)) => Ok(Some(Current {
            session,
            rewrite: loaded.reseal || app.sessions.refresh_rewrites_cookie(),
            ticket: loaded.ticket,
        })),
        Err(RefreshError::Ended(_) | RefreshError::SignedOut) => Ok(None),
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
    let current = match current(app, &cookies).await? {
        Some(current) => current,
        // No session: an API client may still present a Rocketpunch access token.
        None => match bearer::authenticate(app, req.headers()).await? {
            Some(session) => Current {
                session: Arc::new(session),
                ticket: None,
                rewrite: false,
            },
            None => {
                let clear = clear_stale(app, &cookies);
                if !wants_html(req.headers()) {
                    return Ok(with_cookies(
                        RequestError::Unauthenticated.render(&app.pages, false),
                        clear,
                    ));
                }
                let rd = return_path(req.uri());
                if app.pages.sign_in_enabled() {
                    let start = format!(
                        "/oauth2/start?rd={}",
                        form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
                    );
                    return Ok(with_cookies(app.pages.sign_in(&start), clear));
                }
                return Ok(with_cookies(begin_login(app, &rd, &cookies), clear));
            }
        },
    };
    let set = current.set_cookies(app, &cookies);
    if !current.allowed(app) {
        let html = wants_html(req.headers());
        return Ok(with_cookies(
            RequestError::Forbidden.render(&app.pages, html),
            set,
        ));
    }
    let session = &current.session;

    identity::add_upstream_identity(req.headers_mut(), session, app.config.headers);
    if let Some(signer) = &app.assertion {
        match signer.for_session(session).await {
            Ok(assertion) => {
                req.headers_mut()
                    .insert(X_ROCKETGATE_ASSERTION.clone(), assertion);
            }
            Err(error) => {
                let html = wants_html(req.headers());
                let error = RequestError::from(error);
                return Ok(with_cookies(error.render(&app.pages, html), set));
            }
        }
    }
    strip_cookies(req.headers_mut(), |n| app.codec.is_ours(n));
    let html = wants_html(req.headers());
    // A refreshed cookie must reach the browser even when the upstream fails: its old
    // refresh token is already revoked.
    let mut response = match forward(app, req, origin).await {
        Ok(response) => with_cookies(response, set),
        Err(error) => with_cookies(error.render(&app.pages, html), set),
    };
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
    let started = std::time::Instant::now();
    let response = app.upstream.forward(req, origin).await;
    app.metrics.upstream(started.elapsed().as_secs_f64());
    Ok(response?)
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

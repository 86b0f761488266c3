//! Who is asking, and may they: the session the request carries (refreshed first when its
//! access token is due) or, for API clients, a Rocketpunch bearer token; then the access
//! policy. The proxied path, userinfo and forward-auth all go through here, so "not signed
//! in" and "not allowed" mean the same everywhere.

use std::sync::Arc;

use http::HeaderMap;

use crate::access::{Member, Rules, policy};
use crate::app::App;
use crate::bearer::bearer_token;
use crate::context::{Account, Context};
use crate::error::RequestError;
use crate::metrics::RouteKind;
use crate::refresh::{Freshness, RefreshError};
use crate::routes::{self, Route};
use crate::session::{Loaded, RequestCookies, Session, unix_now};
use crate::trace::{Kind, Span};

/// Which credentials a route accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// The session cookie only (userinfo, forward-auth).
    Session,
    /// The session cookie, else `Authorization: Bearer` when `access.accept_bearer_tokens`.
    SessionOrBearer,
}

/// A signed-in request's user.
pub struct User {
    pub session: Arc<Session>,
}

/// The session the request carries, if it is valid and within its absolute lifetime. An
/// unreachable session store is an error (503), never "not signed in".
pub async fn load(app: &App, cookies: &RequestCookies) -> Result<Option<Loaded>, RequestError> {
    let loaded = app.sessions.load(cookies).await?;
    if let Some(l) = &loaded {
        app.metrics.session_cache(l.cached);
    } else if app.codec.has_session_cookie(cookies) {
        app.metrics.session_cache(false);
    }
    Ok(loaded.filter(|l| !l.session.is_expired(unix_now(), app.config.cookie.expire)))
}

/// The request's user, or `None` for "not signed in" (no session, a broken or expired one,
/// one whose refresh Rocketpunch refused, and no acceptable bearer token). Adds to `cx` the
/// `Set-Cookie` values the answer must carry: the re-sealed or refreshed session, or the
/// removal of a session cookie that no longer opens. An unavailable Rocketpunch with an
/// expired token, or an unreachable session store, is an error (503) that keeps the session.
pub async fn authenticate(
    app: &App,
    cx: &mut Context,
    headers: &HeaderMap,
    accepted: Credentials,
) -> Result<Option<User>, RequestError> {
    if let Some(user) = session(app, cx).await? {
        return Ok(Some(user));
    }
    if accepted == Credentials::SessionOrBearer
        && let Some(session) = bearer(app, headers).await?
    {
        let session = Arc::new(session);
        cx.account = Some(Account(session.clone()));
        return Ok(Some(User { session }));
    }
    if app.codec.has_session_cookie(&cx.cookies) {
        let clear = app.codec.clear(&cx.cookies);
        cx.set(clear);
    }
    Ok(None)
}

/// Whether the access policy lets `user` in: the baseline `[access]` lists, then the
/// route's, then any narrower lists the caller adds (forward-auth's query). Checked on every
/// request so a refreshed profile or a changed policy takes effect at once. On success, the
/// user's groups (named `[groups]` they match, then those Rocketpunch reported), for the
/// identity headers; on refusal, the rule that refused is kept in `cx` for the log line.
pub fn authorize(
    app: &App,
    cx: &mut Context,
    user: &User,
    route: Option<&Route<impl Sized>>,
    narrower: Option<&Rules>,
) -> Result<Vec<String>, RequestError> {
    let identity = &user.session.identity;
    let member = Member {
        user: &identity.user,
        email: identity.email.as_deref(),
        reported: &identity.groups,
    };
    let groups = app.config.groups.of(&member);
    let layers = routes::layers(&app.config.access.emails, route, narrower);
    match policy::check(layers, &member, &groups) {
        Ok(()) => Ok(groups),
        Err(denied) => {
            let rule = denied.to_string();
            crate::audit::record(crate::audit::Event::Denied {
                user: &identity.user,
                route: cx.route.as_deref(),
                rule: &rule,
            });
            cx.denied = Some(denied);
            Err(RequestError::Forbidden)
        }
    }
}

/// The session for this request, refreshed first when its access token expires within
/// `session.refresh_before`.
async fn session(app: &App, cx: &mut Context) -> Result<Option<User>, RequestError> {
    let span = Span::start("session.open", Kind::Internal);
    let Some(loaded) = span.run(load(app, &cx.cookies)).await? else {
        return Ok(None);
    };
    drop(span);
    // A browser whose front proxy dropped a refreshed cookie carries on with the newest
    // tokens, and is sent the cookie again.
    let (current, reseal) = match app.refresher.newest(&loaded.session).await {
        Some(newest) => (newest, true),
        None => (loaded.session, loaded.reseal),
    };
    let (session, rewrite) = match app
        .refresher
        .ensure_fresh(&current, &loaded.handle, unix_now())
        .await
    {
        Ok(Freshness::Unchanged | Freshness::Stale) => (current, reseal),
        Ok(Freshness::Refreshed(session)) => {
            if cx.kind == RouteKind::Auth {
                app.refresher.remember(&session).await;
            }
            (session, reseal || app.sessions.refresh_rewrites_cookie())
        }
        Err(RefreshError::Ended(_) | RefreshError::SignedOut) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if rewrite {
        // A forward-auth answer's cookies may reach the browser only in part (see
        // `Sessions::rewrite_whole`); a split session is carried on by the newest tokens.
        let set = if cx.kind == RouteKind::Auth {
            app.sessions
                .rewrite_whole(&session, &loaded.handle, &cx.cookies)
        } else {
            Some(app.sessions.rewrite(&session, &loaded.handle, &cx.cookies))
        };
        if let Some(set) = set {
            cx.set(set);
        }
    }
    cx.account = Some(Account(session.clone()));
    Ok(Some(User { session }))
}

/// The bearer token's session: `None` when bearer tokens are off or the request carries
/// none, an error (401 or 503) when it carries a bad one.
async fn bearer(app: &App, headers: &HeaderMap) -> Result<Option<Session>, RequestError> {
    let (Some(verifier), Some(token)) = (&app.bearer, bearer_token(headers)) else {
        return Ok(None);
    };
    // Boxed: the JWKS fetch makes this future large, and most requests never present a token.
    Ok(Some(Box::pin(verifier.verify(token)).await?))
}

//! Signing in: `/oauth2/start`, Rocketpunch's return to `/oauth2/callback`, and what a
//! request that is not signed in gets (a redirect to Rocketpunch, the sign-in page, or 401).

use std::time::Duration;

use http::{Request, Response};
use subtle::ConstantTimeEq;

use super::{query, redirect, start_link};
use crate::app::{App, LOGIN_TTL};
use crate::audit;
use crate::body::Body;
use crate::context::{Account, Context, Format, return_path};
use crate::error::RequestError;
use crate::metrics::LoginOutcome;
use crate::oauth::{
    LoginError, LoginState, ProviderError, code_challenge, csrf_cookie_name, random_token,
};
use crate::session::{RequestCookies, Session, unix_now};

/// The longest return URL remembered across a login (the sealed CSRF cookie stays < 4 KiB).
const MAX_RD: usize = 2048;

/// What a request to a protected path gets when it is not signed in: a browser navigation
/// goes to Rocketpunch (or to the sign-in page when it is on), returning to this exact URL
/// afterwards; anything else gets 401.
pub fn challenge(app: &App, cx: &mut Context) -> Result<Response<Body>, RequestError> {
    if cx.format != Format::Html {
        return Err(RequestError::Unauthenticated);
    }
    let rd = return_path(&cx.uri);
    // On another route's host the login must start (and its CSRF cookie live) on
    // `public_url`, where Rocketpunch sends the browser back; the deep link goes along whole.
    let elsewhere = other_host_return(app, cx, &rd);
    if app.pages.sign_in_enabled() {
        let link = match &elsewhere {
            Some(url) => public_start_link(app, url),
            None => start_link(&rd),
        };
        return Ok(app.pages.sign_in(&link));
    }
    match elsewhere {
        Some(url) => Ok(redirect(&public_start_link(app, &url))),
        None => Ok(begin_login(app, cx, &rd)),
    }
}

/// The absolute URL of this request when its host is not `public_url`'s and the redirect
/// policy allows going back to it (every route host is allowed).
fn other_host_return(app: &App, cx: &Context, rd: &str) -> Option<String> {
    let host = cx.origin.host_str()?;
    let public = app.config.public_url.host_str()?;
    if crate::routes::request_host(host)? == public.to_ascii_lowercase() {
        return None;
    }
    let proto = cx.origin.proto.to_str().ok()?;
    app.config
        .access
        .redirects
        .check(&format!("{proto}://{host}{rd}"))
}

/// `public_url`'s `/oauth2/start`, returning to `url` (percent-encoded whole).
pub fn public_start_link(app: &App, url: &str) -> String {
    format!(
        "{}{}",
        app.config.public_url.as_str().trim_end_matches('/'),
        start_link(url)
    )
}

/// Sends the browser to Rocketpunch, remembering `rd` (already validated) and the PKCE
/// verifier in a CSRF cookie of this login's own, so parallel logins in several tabs all
/// complete. A browser already holding `limits.max_logins_per_client` unfinished logins has
/// them cleared first, so no client can grow its cookie jar without bound.
pub fn begin_login(app: &App, cx: &mut Context, rd: &str) -> Response<Body> {
    // The return URL rides in the CSRF cookie, which must stay one cookie under 4 KiB: a
    // longer one is cut back to its path, or to `/`.
    let rd = if rd.len() <= MAX_RD {
        rd
    } else {
        rd.split('?')
            .next()
            .filter(|p| p.len() <= MAX_RD)
            .unwrap_or("/")
    };
    let state = random_token();
    let name = csrf_cookie_name(app.codec.name(), &state);
    let verifier = app.config.provider.pkce.then(random_token);
    let login = LoginState {
        state: state.clone(),
        rd: rd.to_owned(),
        iat: unix_now(),
        verifier,
    };
    let json = serde_json::to_string(&login).unwrap_or_default();
    let sealed = app.codec.sealer().seal(&name, &json);
    let csrf_prefix = format!("{}_csrf_", app.codec.name());
    let pending: Vec<&str> = cx
        .cookies
        .names()
        .filter(|n| n.starts_with(&csrf_prefix))
        .collect();
    let mut set: Vec<String> = if pending.len() >= app.config.limits.max_logins_per_client {
        tracing::info!(
            pending = pending.len(),
            "too many logins in progress; clearing them"
        );
        pending
            .iter()
            .map(|n| app.codec.set_login(n, "", Duration::ZERO))
            .collect()
    } else {
        Vec::new()
    };
    set.push(app.codec.set_login(&name, &sealed, LOGIN_TTL));
    cx.set(set);
    let challenge = login.verifier.as_deref().map(code_challenge);
    redirect(&app.oauth.authorize_url(&state, challenge.as_deref()))
}

/// `rd` if it is a safe place to send the browser, else the root.
pub(super) fn safe_rd(app: &App, rd: Option<&str>) -> String {
    rd.and_then(|rd| app.config.access.redirects.check(rd))
        .unwrap_or_else(|| "/".to_owned())
}

/// Starts a login. Without `rd`, a trusted proxy's `X-Forwarded-Uri` / `X-Original-URL`
/// (forward-auth setups) says where to return; from anyone else it is ignored.
pub fn start(app: &App, cx: &mut Context, req: &Request<impl Sized>) -> Response<Body> {
    let rd = requested_return(app, cx, req);
    begin_login(app, cx, &rd)
}

/// `/oauth2/sign_in`, oauth2-proxy's sign-in URL, so its nginx snippet
/// (`error_page 401 = /oauth2/sign_in`) works unchanged: the sign-in page when
/// `pages.sign_in_page` is on, else straight to Rocketpunch as `/oauth2/start` would. The
/// return URL comes from `rd`, else from what a trusted proxy reports
/// (`X-Auth-Request-Redirect` in that snippet). Scripts get 401 as on a protected path:
/// that snippet sends them here too, and they never receive a login page.
pub fn sign_in(
    app: &App,
    cx: &mut Context,
    req: &Request<impl Sized>,
) -> Result<Response<Body>, RequestError> {
    if cx.format != Format::Html {
        return Err(RequestError::Unauthenticated);
    }
    let rd = requested_return(app, cx, req);
    if app.pages.sign_in_enabled() {
        let mut page = app.pages.sign_in(&start_link(&rd));
        // Asked for by name, not in place of a protected page: the page itself is the answer.
        *page.status_mut() = http::StatusCode::OK;
        return Ok(page);
    }
    Ok(begin_login(app, cx, &rd))
}

/// Where a sign-in started at `/oauth2/start` or `/oauth2/sign_in` returns to: `?rd=`, else
/// the original URI a trusted proxy reports, through the redirect policy.
fn requested_return(app: &App, cx: &Context, req: &Request<impl Sized>) -> String {
    let q = query(req);
    let rd = q
        .get("rd")
        .map(String::as_str)
        .or(cx.origin.original_uri.as_deref());
    safe_rd(app, rd)
}

/// The login this callback belongs to, checked against the browser's CSRF cookie.
fn verify_state(
    app: &App,
    cookies: &RequestCookies,
    state: &str,
    now: u64,
) -> Result<LoginState, LoginError> {
    let name = csrf_cookie_name(app.codec.name(), state);
    let sealed = cookies.get(&name).ok_or(LoginError::InvalidState)?;
    let (json, _) = app
        .codec
        .sealer()
        .open(&name, sealed)
        .ok_or(LoginError::InvalidState)?;
    let login: LoginState = serde_json::from_str(&json).map_err(|_| LoginError::InvalidState)?;
    let same: bool = login.state.as_bytes().ct_eq(state.as_bytes()).into();
    let fresh = now.saturating_sub(login.iat) <= LOGIN_TTL.as_secs();
    if same && fresh {
        Ok(login)
    } else {
        Err(LoginError::InvalidState)
    }
}

/// Rocketpunch's return: the state checked against this browser's login cookie and used
/// once, the code exchanged, the profile read, the access policy applied, the session
/// stored, and the browser sent back to where it started.
pub async fn callback(
    app: &App,
    cx: &mut Context,
    req: &Request<impl Sized>,
) -> Result<Response<Body>, RequestError> {
    let q = query(req);
    let now = unix_now();
    let state = q.get("state").map(String::as_str).unwrap_or("");
    let csrf_clear = || {
        let name = csrf_cookie_name(app.codec.name(), state);
        vec![app.codec.set_login(&name, "", Duration::ZERO)]
    };

    if let Some(error) = q.get("error") {
        tracing::info!(provider_error = %sanitize(error), "sign-in not granted at Rocketpunch");
        login_ended(app, LoginOutcome::Denied, None);
        let rd = verify_state(app, &cx.cookies, state, now)
            .map(|l| l.rd)
            .unwrap_or_else(|_| "/".into());
        cx.set(csrf_clear());
        // Always a page: this is a browser coming back from Rocketpunch's consent screen.
        cx.format = Format::Html;
        return Err(LoginError::Denied {
            retry: start_link(&rd),
        }
        .into());
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        login_ended(app, LoginOutcome::InvalidState, None);
        return Err(LoginError::MissingCode.into());
    };
    let login = match verify_state(app, &cx.cookies, state, now) {
        Ok(login) => login,
        Err(e) => {
            login_ended(app, LoginOutcome::InvalidState, None);
            return Err(e.into());
        }
    };
    if !app
        .used_states
        .entry(login.state.clone())
        .or_insert(())
        .await
        .is_fresh()
    {
        login_ended(app, LoginOutcome::InvalidState, None);
        return Err(LoginError::InvalidState.into());
    }

    let identity = async {
        let tokens = app
            .oauth
            .exchange_code(code, login.verifier.as_deref(), now)
            .await?;
        let identity = app.oauth.identity(&tokens.access_token).await?;
        Ok::<_, ProviderError>((tokens, identity))
    };
    let (tokens, identity) = match identity.await {
        Ok(found) => found,
        Err(ProviderError::Rejected { code, .. }) if code == "invalid_grant" => {
            tracing::info!("Rocketpunch refused the authorization code (expired or reused)");
            login_ended(app, LoginOutcome::InvalidCode, None);
            return Err(LoginError::CodeRejected {
                retry: start_link(&login.rd),
            }
            .into());
        }
        Err(e) => {
            tracing::warn!(provider_error = e.code(), error = %e, "sign-in failed at Rocketpunch");
            login_ended(app, LoginOutcome::ProviderError, None);
            return Err(e.into());
        }
    };
    if !app.config.access.emails.allows(identity.email.as_deref()) {
        login_ended(app, LoginOutcome::Forbidden, Some(&identity.user));
        return Err(RequestError::Forbidden);
    }
    login_ended(app, LoginOutcome::Success, Some(&identity.user));
    let session = Session::signed_in(identity, tokens, now);
    let set = match app.sessions.create(&session, &cx.cookies).await {
        Ok(set) => set,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in could not be stored");
            login_ended(app, LoginOutcome::StoreUnavailable, None);
            return Err(e.into());
        }
    };
    cx.set(set);
    cx.set(csrf_clear());
    let session = std::sync::Arc::new(session);
    cx.account = Some(Account(session.clone()));
    // A Strict session cookie is withheld on the redirect chain that began at Rocketpunch,
    // so the last hop is a same-site navigation from our own page instead of a 302.
    Ok(if app.codec.is_strict() {
        app.pages.continue_to(&login.rd)
    } else {
        redirect(&login.rd)
    })
}

/// Counts a sign-in's outcome and records it in the audit trail.
fn login_ended(app: &App, outcome: LoginOutcome, user: Option<&str>) {
    app.metrics.login(outcome);
    audit::record(audit::Event::SignIn {
        user,
        outcome: outcome.as_str(),
    });
}

/// Provider-sent text reduced to something safe to log.
fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

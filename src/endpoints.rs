//! The `/oauth2/*` endpoints: starting a login, the callback, sign-out, userinfo and the
//! forward-auth check.

use std::collections::HashMap;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use subtle::ConstantTimeEq;

use crate::app::{App, LOGIN_TTL};
use crate::body::{self, Body};
use crate::forwarded::Origin;
use crate::gate::{LoggedUser, clear_stale, current};
use crate::identity;
use crate::metrics::LoginOutcome;
use crate::oauth::{LoginState, ProviderError, code_challenge, csrf_cookie_name, random_token};
use crate::respond::RequestError;
use crate::session::{RequestCookies, Session, unix_now};

/// Ways a callback can be refused before Rocketpunch is even asked.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("callback without a code")]
    MissingCode,
    #[error("unknown, expired or replayed state")]
    InvalidState,
    #[error("the user did not grant access")]
    Denied { retry: String },
    /// Rocketpunch refused the code (`invalid_grant`: expired, already used, or made up):
    /// a sign-in to start again, not an outage.
    #[error("Rocketpunch refused the authorization code")]
    CodeRejected { retry: String },
    /// A sign-out that another site started (`<img src=…/sign_out>`, a cross-site form).
    #[error("cross-site sign-out refused")]
    CrossSiteSignOut,
}

/// The longest return URL remembered across a login (the sealed CSRF cookie stays < 4 KiB).
const MAX_RD: usize = 2048;

static X_REQUESTED_WITH: http::HeaderName = http::HeaderName::from_static("x-requested-with");

/// Browsers navigating get redirects and pages; scripts and API clients get JSON.
pub fn wants_html(headers: &HeaderMap) -> bool {
    let xhr = headers
        .get(&X_REQUESTED_WITH)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"xmlhttprequest"));
    !xhr && headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")))
}

fn query(req: &Request<impl Sized>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

/// A redirect that is never cached.
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Adds `Set-Cookie` headers to a response.
pub fn with_cookies(mut response: Response<Body>, cookies: Vec<String>) -> Response<Body> {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// Sends the browser to Rocketpunch, remembering `rd` (already validated) and the PKCE
/// verifier in a CSRF cookie of this login's own, so parallel logins in several tabs all
/// complete. A browser already holding `limits.max_logins_per_client` unfinished logins has
/// them cleared first, so no client can grow its cookie jar without bound.
pub fn begin_login(app: &App, rd: &str, cookies: &RequestCookies) -> Response<Body> {
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
    let pending: Vec<&str> = cookies
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
            .map(|n| app.codec.set_login(n, "", std::time::Duration::ZERO))
            .collect()
    } else {
        Vec::new()
    };
    set.push(app.codec.set_login(&name, &sealed, LOGIN_TTL));
    let challenge = login.verifier.as_deref().map(code_challenge);
    let location = app.oauth.authorize_url(&state, challenge.as_deref());
    with_cookies(redirect(&location), set)
}

/// `rd` if it is a safe place to send the browser, else the root.
fn safe_rd(app: &App, rd: Option<&str>) -> String {
    rd.and_then(|rd| app.config.access.redirects.check(rd))
        .unwrap_or_else(|| "/".to_owned())
}

/// Starts a login. Without `rd`, a trusted proxy's `X-Forwarded-Uri` / `X-Original-URL`
/// (forward-auth setups) says where to return; from anyone else it is ignored.
pub fn start(app: &App, req: &Request<impl Sized>, origin: &Origin) -> Response<Body> {
    let q = query(req);
    let rd = q
        .get("rd")
        .map(String::as_str)
        .or(origin.original_uri.as_deref());
    let cookies = RequestCookies::from_headers(req.headers());
    begin_login(app, &safe_rd(app, rd), &cookies)
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

pub async fn callback(
    app: &App,
    req: &Request<impl Sized>,
) -> Result<Response<Body>, RequestError> {
    let q = query(req);
    let cookies = RequestCookies::from_headers(req.headers());
    let now = unix_now();
    let state = q.get("state").map(String::as_str).unwrap_or("");
    let csrf_clear = || {
        let name = csrf_cookie_name(app.codec.name(), state);
        vec![app.codec.set_login(&name, "", std::time::Duration::ZERO)]
    };

    if let Some(error) = q.get("error") {
        tracing::info!(provider_error = %sanitize(error), "sign-in not granted at Rocketpunch");
        app.metrics.login(LoginOutcome::Denied);
        let rd = verify_state(app, &cookies, state, now)
            .map(|l| l.rd)
            .unwrap_or_else(|_| "/".into());
        let retry = start_link(&rd);
        let page = RequestError::from(LoginError::Denied { retry }).render(&app.pages, true);
        return Ok(with_cookies(page, csrf_clear()));
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        app.metrics.login(LoginOutcome::InvalidState);
        return Err(LoginError::MissingCode.into());
    };
    let login = match verify_state(app, &cookies, state, now) {
        Ok(login) => login,
        Err(e) => {
            app.metrics.login(LoginOutcome::InvalidState);
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
        app.metrics.login(LoginOutcome::InvalidState);
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
            app.metrics.login(LoginOutcome::InvalidCode);
            let retry = start_link(&login.rd);
            return Err(LoginError::CodeRejected { retry }.into());
        }
        Err(e) => {
            tracing::warn!(provider_error = e.code(), error = %e, "sign-in failed at Rocketpunch");
            app.metrics.login(LoginOutcome::ProviderError);
            return Err(e.into());
        }
    };
    if !app.config.access.emails.allows(identity.email.as_deref()) {
        tracing::info!(user = %identity.user, "signed in but not allowed");
        app.metrics.login(LoginOutcome::Forbidden);
        return Err(RequestError::Forbidden);
    }
    tracing::info!(user = %identity.user, "signed in");
    app.metrics.login(LoginOutcome::Success);
    let session = Session::new(identity, tokens, now);
    let mut set = match app.sessions.create(&session, &cookies).await {
        Ok(set) => set,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in could not be stored");
            app.metrics.login(LoginOutcome::StoreUnavailable);
            return Err(e.into());
        }
    };
    set.extend(csrf_clear());
    // A Strict session cookie is withheld on the redirect chain that began at Rocketpunch,
    // so the last hop is a same-site navigation from our own page instead of a 302.
    let onward = if app.codec.is_strict() {
        app.pages.continue_to(&login.rd)
    } else {
        redirect(&login.rd)
    };
    let mut response = with_cookies(onward, set);
    response
        .extensions_mut()
        .insert(LoggedUser(session.identity.user));
    Ok(response)
}

/// `/oauth2/start?rd=…`: a link that begins a fresh login returning to `rd`.
fn start_link(rd: &str) -> String {
    format!(
        "/oauth2/start?rd={}",
        form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
    )
}

/// Clears the session (every chunk) and, with Redis, deletes it server-side so a copied
/// cookie is dead at once. If Redis cannot be reached the answer is 503 and the cookie is
/// kept: a cleared cookie over a live server-side session would only look signed out.
///
/// Another site must not be able to sign the user out (an `<img>` pointing here, a hidden
/// form): a cross-site GET gets a page with a "Sign out" button instead, and a cross-site
/// POST is refused with 403. Either way the session is kept.
pub async fn sign_out(
    app: &App,
    req: &Request<impl Sized>,
) -> Result<Response<Body>, RequestError> {
    let q = query(req);
    let cookies = RequestCookies::from_headers(req.headers());
    let rd = safe_rd(app, q.get("rd").map(String::as_str));
    if started_elsewhere(app, req.headers()) {
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            tracing::info!("cross-site sign-out refused");
            return Err(LoginError::CrossSiteSignOut.into());
        }
        let account = crate::gate::authenticate(app, &cookies)
            .await
            .ok()
            .flatten()
            .map(|loaded| account_name(&loaded.session));
        let action = format!(
            "/oauth2/sign_out?rd={}",
            form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        );
        return Ok(app.pages.sign_out(&action, account.as_deref()));
    }
    let clear = app.sessions.delete(&cookies).await?;
    Ok(with_cookies(redirect(&rd), clear))
}

/// What the pages call the signed-in account: the email, else the username, else the id.
pub fn account_name(session: &Session) -> String {
    let id = &session.identity;
    id.email
        .clone()
        .or_else(|| id.preferred_username.clone())
        .unwrap_or_else(|| id.user.clone())
}

/// Whether a browser says this request was started by another site: `Sec-Fetch-Site:
/// cross-site`, or an `Origin` that is neither `public_url`'s nor one of the app hosts the
/// redirect policy allows. Requests without these headers (curl, old browsers) and
/// same-origin or same-site ones count as ours.
fn started_elsewhere(app: &App, headers: &HeaderMap) -> bool {
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    cross_site
        || headers
            .get(header::ORIGIN)
            .is_some_and(|origin| !allowed_origin(app, origin))
}

fn allowed_origin(app: &App, origin: &HeaderValue) -> bool {
    let Some(url) = origin.to_str().ok().and_then(|o| url::Url::parse(o).ok()) else {
        // `Origin: null` (sandboxed frames, some redirects) or garbage: not ours.
        return false;
    };
    if url.origin() == app.config.public_url.origin() {
        return true;
    }
    let root = format!("{}/", url.origin().ascii_serialization());
    app.config.access.redirects.check(&root).is_some()
}

pub async fn userinfo(
    app: &App,
    req: &Request<impl Sized>,
) -> Result<Response<Body>, RequestError> {
    let cookies = RequestCookies::from_headers(req.headers());
    let Some(current) = current(app, &cookies).await? else {
        return Ok(with_cookies(
            RequestError::Unauthenticated.render(&app.pages, false),
            clear_stale(app, &cookies),
        ));
    };
    if !current.allowed(app) {
        return Ok(with_cookies(
            RequestError::Forbidden.render(&app.pages, false),
            current.set_cookies(app, &cookies),
        ));
    }
    let id = &current.session.identity;
    let mut response = crate::pages::json(&serde_json::json!({
        "user": id.user,
        "email": id.email,
        "preferred_username": id.preferred_username,
    }));
    response
        .extensions_mut()
        .insert(LoggedUser(id.user.clone()));
    Ok(with_cookies(response, current.set_cookies(app, &cookies)))
}

/// For nginx `auth_request`, Traefik forwardAuth and Envoy ext_authz: exactly 200 with the
/// identity headers (and the new `Set-Cookie` when it refreshed), 401 when not signed in,
/// 403 when not allowed.
///
/// With `?mode=redirect` a browser navigation that is not signed in gets a 302 to the login
/// instead of 401: Traefik hands any non-2xx forward-auth answer to the browser as it is, and
/// has no `error_page` to turn a 401 into a login. Requests that are not navigations still
/// get 401, as on the protected path, so scripts never receive a login page.
pub async fn auth(
    app: &App,
    req: &Request<impl Sized>,
    origin: &Origin,
) -> Result<Response<Body>, RequestError> {
    let cookies = RequestCookies::from_headers(req.headers());
    let redirect_mode = query(req).get("mode").is_some_and(|m| m == "redirect");
    let html = redirect_mode && wants_html(req.headers());
    let Some(current) = current(app, &cookies).await? else {
        let denial = if html {
            redirect(&forward_auth_login(app, origin))
        } else {
            RequestError::Unauthenticated.render(&app.pages, false)
        };
        return Ok(with_cookies(denial, clear_stale(app, &cookies)));
    };
    let set = current.set_cookies(app, &cookies);
    if !current.allowed(app) {
        return Ok(with_cookies(
            RequestError::Forbidden.render(&app.pages, html),
            set,
        ));
    }
    let session = &current.session;
    let mut response = Response::new(body::empty());
    identity::add_auth_request_identity(response.headers_mut(), session, app.config.headers);
    response
        .extensions_mut()
        .insert(LoggedUser(session.identity.user.clone()));
    Ok(with_cookies(response, set))
}

/// The login a `?mode=redirect` forward-auth check sends a browser to: `/oauth2/start` at
/// `public_url` (not a relative path: behind Traefik the browser is on the app's host, which
/// may not route `/oauth2/` here, and the login cookie must be set on the host that receives
/// the callback), carrying the return URL percent-encoded so a deep link's whole query
/// survives.
fn forward_auth_login(app: &App, origin: &Origin) -> String {
    let start = format!(
        "{}/oauth2/start",
        app.config.public_url.as_str().trim_end_matches('/')
    );
    match forward_auth_return(app, origin) {
        Some(rd) => format!(
            "{start}?rd={}",
            form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        ),
        None => start,
    }
}

/// Where the browser should come back to after a forward-auth login, or `None` (then `start`
/// falls back to `/`). Only a trusted proxy's `X-Forwarded-Uri` / `X-Original-URL` counts
/// (`Origin` never carries one from anyone else), so a client cannot pick its return URL
/// here. A path is made absolute with the trusted `X-Forwarded-Proto`/`-Host` only when that
/// URL passes the redirect policy and names another origin than `public_url` (an app on a
/// sibling host in `access.redirect_domains`); on `public_url`'s own origin the path is kept
/// byte for byte. Anything the policy refuses is dropped, never passed on.
fn forward_auth_return(app: &App, origin: &Origin) -> Option<String> {
    let uri = origin.original_uri.as_deref()?;
    let policy = &app.config.access.redirects;
    if !uri.starts_with('/') {
        // ingress-nginx sends the whole URL in `X-Original-URL`.
        return policy.check(uri);
    }
    let absolute = origin
        .host
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .zip(origin.proto.to_str().ok())
        .and_then(|(host, proto)| policy.check(&format!("{proto}://{host}{uri}")))
        .filter(|url| {
            url::Url::parse(url).is_ok_and(|url| url.origin() != app.config.public_url.origin())
        });
    absolute.or_else(|| policy.check(uri))
}

/// Provider-sent text reduced to something safe to log.
fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_for_navigations_only() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(
            header::ACCEPT,
            "text/html,application/xhtml+xml".parse().unwrap(),
        );
        assert!(wants_html(&h));
        h.insert("x-requested-with", "XMLHttpRequest".parse().unwrap());
        assert!(!wants_html(&h));
        let mut json = HeaderMap::new();
        json.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert!(!wants_html(&json));
    }
}

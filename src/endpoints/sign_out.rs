//! `/oauth2/sign_out`: ends the session, unless another site asked.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response};

use super::login::safe_rd;
use super::{query, redirect};
use crate::app::App;
use crate::body::Body;
use crate::context::{Account, Context};
use crate::error::RequestError;

/// Clears the session (every chunk) and, with Redis, deletes it server-side so a copied
/// cookie is dead at once. If Redis cannot be reached the answer is 503 and the cookie is
/// kept: a cleared cookie over a live server-side session would only look signed out.
///
/// Another site must not be able to sign the user out (an `<img>` pointing here, a hidden
/// form): a cross-site GET gets a page with a "Sign out" button instead, and a cross-site
/// POST is refused with 403. Either way the session is kept.
pub async fn sign_out(
    app: &App,
    cx: &mut Context,
    req: &Request<impl Sized>,
) -> Result<Response<Body>, RequestError> {
    let rd = safe_rd(app, query(req).get("rd").map(String::as_str));
    if started_elsewhere(app, req.headers()) {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            tracing::info!("cross-site sign-out refused");
            return Err(RequestError::CrossSiteSignOut);
        }
        let account = crate::gate::load(app, &cx.cookies)
            .await
            .ok()
            .flatten()
            .map(|loaded| Account(loaded.session).name().to_owned());
        let action = format!(
            "/oauth2/sign_out?rd={}",
            form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        );
        return Ok(app.pages.sign_out(&action, account.as_deref()));
    }
    let loaded = crate::gate::load(app, &cx.cookies).await.ok().flatten();
    // Cookie sessions only: the newest tokens of a Redis session live in Redis, which the
    // delete below removes.
    if let Some(loaded) = &loaded
        && app.sessions.refresh_rewrites_cookie()
    {
        app.refresher.forget(&loaded.session).await;
    }
    let clear = app.sessions.delete(&cx.cookies).await?;
    crate::audit::record(crate::audit::Event::SignOut {
        user: loaded.as_ref().map(|l| l.session.identity.user.as_str()),
    });
    cx.set(clear);
    Ok(redirect(&rd))
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

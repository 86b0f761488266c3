//! `/oauth2/auth`: the check a front proxy (nginx `auth_request`, Traefik forwardAuth, Caddy
//! `forward_auth`, Envoy ext_authz) makes before it lets a request through to the app.

use http::{Request, Response};

use super::{query, redirect};
use crate::app::App;
use crate::body::{self, Body};
use crate::context::{Context, Format};
use crate::error::RequestError;
use crate::gate::{self, Credentials};
use crate::identity;

/// Exactly 200 with the identity headers (and the new `Set-Cookie` when it refreshed), 401
/// when not signed in, 403 when not allowed.
///
/// With `?mode=redirect` a browser navigation that is not signed in gets a 302 to the login
/// instead of 401: Traefik hands any non-2xx forward-auth answer to the browser as it is, and
/// has no `error_page` to turn a 401 into a login. Requests that are not navigations still
/// get 401, as on the protected path, so scripts never receive a login page.
pub async fn auth(
    app: &App,
    cx: &mut Context,
    req: &Request<impl Sized>,
) -> Result<Response<Body>, RequestError> {
    let redirect_mode = query(req).get("mode").is_some_and(|m| m == "redirect");
    // The front proxy reads only the status: a gRPC-shaped refusal (HTTP 200 with a
    // `grpc-status`) would read as "allowed", so gRPC calls are refused as JSON here.
    if !(redirect_mode && cx.format == Format::Html) {
        cx.format = Format::Json;
    }
    let Some(user) = gate::authenticate(app, cx, req.headers(), Credentials::Session).await? else {
        return match cx.format {
            Format::Html => Ok(redirect(&login_url(app, cx))),
            Format::Json | Format::Grpc(_) => Err(RequestError::Unauthenticated),
        };
    };
    gate::authorize(app, &user)?;
    let mut response = Response::new(body::empty());
    identity::add_auth_request_identity(response.headers_mut(), &user.session, app.config.headers);
    Ok(response)
}

/// The login a `?mode=redirect` check sends a browser to: `/oauth2/start` at `public_url`
/// (not a relative path: behind Traefik the browser is on the app's host, which may not
/// route `/oauth2/` here, and the login cookie must be set on the host that receives the
/// callback), carrying the return URL percent-encoded so a deep link's whole query survives.
fn login_url(app: &App, cx: &Context) -> String {
    let start = format!(
        "{}/oauth2/start",
        app.config.public_url.as_str().trim_end_matches('/')
    );
    match return_url(app, cx) {
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
fn return_url(app: &App, cx: &Context) -> Option<String> {
    let origin = &cx.origin;
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

//! `/oauth2/auth`: the check a front proxy (nginx `auth_request`, Traefik forwardAuth, Caddy
//! `forward_auth`, Envoy ext_authz) makes before it lets a request through to the app.

use http::{Request, Response};

use super::{login, query, redirect};
use crate::access::{Denied, EmailPolicy, RequestPath, Rules};
use crate::app::App;
use crate::body::{self, Body};
use crate::context::{Context, Format};
use crate::error::RequestError;
use crate::forwarded::Origin;
use crate::gate::{self, Credentials};
use crate::identity::{self, Audience};
use crate::proxy::Upstream;
use crate::routes::{Route, request_host};

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
    let narrower = narrower(req)?;
    let route = route(app, cx)?;
    if route.is_some_and(|r| r.public) && narrower.is_none() {
        return Ok(Response::new(body::empty()));
    }
    let Some(user) = gate::authenticate(app, cx, req.headers(), Credentials::Session).await? else {
        return match cx.format {
            Format::Html => Ok(redirect(&login_url(app, cx))),
            Format::Json | Format::Grpc(_) => Err(RequestError::Unauthenticated),
        };
    };
    let Some(route) = route else {
        cx.denied = Some(Denied {
            scope: "routes".into(),
            rule: "no_route_matches",
        });
        return Err(RequestError::Forbidden);
    };
    // A public route adds no rule of its own: the baseline and any narrowing lists apply.
    let route = (!route.public).then_some(route);
    let groups = gate::authorize(app, cx, &user, route, narrower.as_ref())?;
    let mut response = Response::new(body::empty());
    let headers = response.headers_mut();
    identity::add_auth_request_identity(headers, &user.session, app.config.headers);
    identity::add_groups_and_claims(
        headers,
        &groups,
        &user.session,
        &app.config.claim_headers,
        Audience::AuthRequest,
    );
    Ok(response)
}

/// The route the checked request is for, from what a trusted front proxy reports: the host
/// in `X-Forwarded-Host`, the path in `X-Forwarded-Uri` or `X-Original-URL` (a whole URL,
/// from ingress-nginx). Without a report the check is for `/` on the reported host. `Ok(None)`:
/// no route serves it.
fn route<'a>(app: &'a App, cx: &mut Context) -> Result<Option<&'a Route<Upstream>>, RequestError> {
    if app.routes.is_single_default() {
        // One route for every host and path: what the proxy reports cannot change it, and a
        // path this gate would refuse to proxy is the front proxy's to judge.
        let route = app.routes.iter().next();
        cx.route = route.map(|r| r.name.clone());
        return Ok(route);
    }
    match reported_route(app, &cx.origin) {
        Some(route) => {
            cx.route = route.map(|r| r.name.clone());
            Ok(route)
        }
        None => Err(unroutable(cx)),
    }
}

/// The route for the reported host and path; `None` when the report names no path a route
/// could be chosen for, `Some(None)` when no route serves it.
fn reported_route<'a>(app: &'a App, origin: &Origin) -> Option<Option<&'a Route<Upstream>>> {
    let reported = origin.original_uri.as_deref().unwrap_or("/");
    let (url_host, raw_path) = if reported.starts_with('/') {
        (None, reported)
    } else {
        let rest = reported.split_once("://")?.1;
        match rest.find('/') {
            Some(at) => (Some(&rest[..at]), &rest[at..]),
            None => (Some(rest), "/"),
        }
    };
    let raw_path = raw_path.split(['?', '#']).next().unwrap_or("/");
    let path = RequestPath::parse(raw_path).ok()?;
    let host = url_host
        .or_else(|| origin.host_str())
        .and_then(request_host);
    Some(app.routes.pick(host.as_deref(), path.as_str()))
}

/// A reported URL no route can be chosen for (dot segments, an encoded `/`, no scheme) is
/// refused with 403, not 400: nginx's `auth_request` turns any answer but 2xx, 401 and 403
/// into a 500, which would blame the server for the client's request.
fn unroutable(cx: &mut Context) -> RequestError {
    cx.denied = Some(Denied {
        scope: "routes".into(),
        rule: "unroutable_path",
    });
    RequestError::Forbidden
}

/// `allowed_groups`, `allowed_emails`, `allowed_email_domains` in the check's query
/// (comma-separated, as oauth2-proxy takes them): lists that narrow the route's policy for
/// this check, never widen it. `None` when the query names none.
fn narrower(req: &Request<impl Sized>) -> Result<Option<Rules>, RequestError> {
    let query = query(req);
    let list = |name: &str| -> Vec<String> {
        query
            .get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (groups, emails, domains) = (
        list("allowed_groups"),
        list("allowed_emails"),
        list("allowed_email_domains"),
    );
    if groups.is_empty() && emails.is_empty() && domains.is_empty() {
        return Ok(None);
    }
    let emails = EmailPolicy::new(emails, domains).map_err(|_| {
        RequestError::Malformed("allowed_emails or allowed_email_domains in the query")
    })?;
    Ok(Some(Rules { emails, groups }))
}

/// The login a `?mode=redirect` check sends a browser to: `/oauth2/start` at `public_url`
/// (not a relative path: behind Traefik the browser is on the app's host, which may not
/// route `/oauth2/` here, and the login cookie must be set on the host that receives the
/// callback), carrying the return URL percent-encoded so a deep link's whole query survives.
fn login_url(app: &App, cx: &Context) -> String {
    match return_url(app, cx) {
        Some(rd) => login::public_start_link(app, &rd),
        None => format!(
            "{}/oauth2/start",
            app.config.public_url.as_str().trim_end_matches('/')
        ),
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

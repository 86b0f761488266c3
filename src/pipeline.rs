//! The request pipeline, one phase after another, in the order every request meets them:
//!
//! 1. [`accept`]: give the request an id, work out where it really comes from and what kind of
//!    answer it can read, parse its cookies once.
//! 2. [`route`]: the path alone picks rocketgate's own endpoint or the protected upstream;
//!    requests that break HTTP's framing rules stop here.
//! 3. authenticate ([`gate::authenticate`]): the session, refreshed when due, or a bearer
//!    token; not signed in ends in [`login::challenge`].
//! 4. authorize ([`gate::authorize`]): the access policy.
//! 5. [`prepare`]: the upstream request gets rocketgate's identity headers and assertion,
//!    and loses the client's copies and rocketgate's own cookies.
//! 6. [`forward`]: the upstream answers, streamed back.
//! 7. [`respond`]: an error becomes its page or JSON, in one place; every answer gets the
//!    pending `Set-Cookie` values and the request id.
//! 8. [`log`]: one metric and one log line per request.
//!
//! Each phase returns `Result<_, RequestError>`; `?` carries a refusal straight to phase 7.

use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, Uri};
use hyper::body::Incoming;

use crate::access::RequestPath;
use crate::app::App;
use crate::assertion::X_ROCKETGATE_ASSERTION;
use crate::body::Body;
use crate::context::{Account, ConnInfo, Context, Format};
use crate::endpoints::{admin, forward_auth, health, login, sign_out, userinfo};
use crate::error::RequestError;
use crate::gate::{self, Credentials, User};
use crate::identity::{self, Audience};
use crate::metrics::RouteKind;
use crate::proxy::{Upstream, X_REQUEST_ID};
use crate::respond::{self, Reader};
use crate::routes::{Route, request_host};
use crate::session::{RequestCookies, strip_cookies};

/// Serves one request through every phase. Never fails: whatever happens becomes an answer.
pub async fn handle(app: Arc<App>, req: Request<Incoming>, conn: ConnInfo) -> Response<Body> {
    let (mut cx, req) = accept(&app, req, conn);
    let result = match framing(&req) {
        Ok(()) => cx.trace.scope().run(route(&app, &mut cx, req)).await,
        Err(e) => Err(e),
    };
    let response = respond(&app, &mut cx, result);
    log(&app, &cx, &response);
    response
}

// === 1. accept ===

/// The request's context: id, origin, route kind, the format its refusals take, its cookies.
fn accept(app: &App, mut req: Request<Incoming>, conn: ConnInfo) -> (Context, Request<Incoming>) {
    let kind = route_kind(app, req.uri().path());
    let id = request_id(&req);
    req.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
    let origin = crate::forwarded::origin(
        req.headers(),
        conn.peer,
        conn.proto,
        &app.config.trusted_proxies,
    );
    let trace = app
        .tracer
        .start_request(req.headers(), origin.peer_trusted, &id);
    let cookies = match kind {
        RouteKind::Proxy | RouteKind::Login | RouteKind::Userinfo | RouteKind::Auth => {
            RequestCookies::from_headers(req.headers())
        }
        _ => RequestCookies::default(),
    };
    let format = match kind {
        // A JSON API: its refusals are JSON whatever the client accepts.
        RouteKind::Userinfo => Format::Json,
        _ => Format::of(req.headers()),
    };
    let cx = Context {
        id,
        started: Instant::now(),
        method: req.method().clone(),
        // A cheap clone (shared bytes), kept for the log line and "Try again" links.
        uri: req.uri().clone(),
        kind,
        format,
        origin,
        cookies,
        set_cookies: Vec::new(),
        account: None,
        refused: None,
        route: None,
        denied: None,
        reason: None,
        trace,
    };
    (cx, req)
}

/// A request id we pass on: 1 to 128 characters of letters, digits and `-_.:`.
fn is_sane_request_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

/// Keeps a client's or load balancer's request id when it is a sane token, so one id follows
/// the request through every hop; otherwise makes one.
fn request_id(req: &Request<Incoming>) -> HeaderValue {
    if let Some(id) = req
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| is_sane_request_id(v.as_bytes()))
    {
        return id.clone();
    }
    let bytes: [u8; 16] = rand::random();
    let mut hex = [0u8; 32];
    for (i, b) in bytes.into_iter().enumerate() {
        hex[2 * i] = b"0123456789abcdef"[usize::from(b >> 4)];
        hex[2 * i + 1] = b"0123456789abcdef"[usize::from(b & 15)];
    }
    HeaderValue::from_bytes(&hex).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

// === 2. route ===

/// Which part of rocketgate answers, from the path alone: no header (`User-Agent`,
/// `X-Forwarded-Uri`, ...) can turn a protected request into a health check or an endpoint.
fn route_kind(app: &App, path: &str) -> RouteKind {
    match path {
        "/ping" | "/ready" | "/robots.txt" => RouteKind::Health,
        "/metrics" if app.config.metrics_listen.is_none() => RouteKind::Metrics,
        "/oauth2/start" | "/oauth2/sign_in" | "/oauth2/callback" | "/oauth2/sign_out" => {
            RouteKind::Login
        }
        "/oauth2/userinfo" => RouteKind::Userinfo,
        "/oauth2/jwks.json" => RouteKind::Jwks,
        p if p == "/oauth2/auth" || p.starts_with("/oauth2/auth/") => RouteKind::Auth,
        "/oauth2/admin/revoke" => RouteKind::Admin,
        p if p.starts_with("/oauth2/") => RouteKind::Other,
        _ => RouteKind::Proxy,
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or any request with more than one,
/// is refused with 400. Proxying it would let the upstream and rocketgate disagree about
/// which site the request is for. HTTP/2 names the host in `:authority` instead.
fn framing(req: &Request<Incoming>) -> Result<(), RequestError> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err(RequestError::Malformed("more than one Host header")),
        (None, _) if req.version() == http::Version::HTTP_11 => {
            Err(RequestError::Malformed("no Host header"))
        }
        _ => Ok(()),
    }
}

async fn route(
    app: &App,
    cx: &mut Context,
    req: Request<Incoming>,
) -> Result<Response<Body>, RequestError> {
    match cx.kind {
        RouteKind::Health => Ok(health::health(app, req.uri().path())),
        RouteKind::Metrics => Ok(health::metrics(app)),
        // Sign-in, sign-out and the admin API are boxed: their futures (token exchange,
        // Redis writes) are large, and hyper keeps room for this whole future in every open
        // connection, for paths a user takes once per session.
        RouteKind::Login => match req.uri().path() {
            "/oauth2/start" => Ok(login::start(app, cx, &req)),
            "/oauth2/sign_in" => login::sign_in(app, cx, &req),
            "/oauth2/callback" => Box::pin(login::callback(app, cx, &req)).await,
            _ => Box::pin(sign_out::sign_out(app, cx, &req)).await,
        },
        RouteKind::Userinfo => userinfo::userinfo(app, cx, &req).await,
        RouteKind::Auth => forward_auth::auth(app, cx, &req).await,
        RouteKind::Jwks => app
            .assertion
            .as_ref()
            .map(|signer| signer.jwks_response())
            .ok_or(RequestError::NotFound),
        RouteKind::Admin => Box::pin(admin::revoke(app, &req)).await,
        RouteKind::Other => Err(RequestError::NotFound),
        RouteKind::Proxy if req.method() == Method::CONNECT => Err(RequestError::NotFound),
        RouteKind::Proxy => protected(app, cx, req).await,
    }
}

/// The protected upstream: phases 3 to 6. Public routes and skip routes bypass
/// authentication, never the removal of client-sent identity headers and of rocketgate's
/// own cookies.
async fn protected(
    app: &App,
    cx: &mut Context,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, RequestError> {
    identity::strip_client_identity(req.headers_mut(), &app.config.claim_headers);
    let (route, path) = pick_route(app, cx, &req)?;
    let skip_routes = &app.config.access.skip_routes;
    let skipped = route.public
        || path
            .as_ref()
            .is_some_and(|path| skip_routes.matches(req.method(), path));
    if skipped {
        strip_cookies(req.headers_mut(), |n| app.codec.is_ours(n));
        strip_prefix(route, &mut req)?;
        return forward(app, cx, &route.target, req).await;
    }
    // 3. authenticate
    let Some(user) =
        gate::authenticate(app, cx, req.headers(), Credentials::SessionOrBearer).await?
    else {
        return login::challenge(app, cx);
    };
    // 4. authorize
    let groups = gate::authorize(app, cx, &user, Some(route), None)?;
    // 5. prepare the upstream request
    prepare(app, &user, &groups, &mut req).await?;
    strip_prefix(route, &mut req)?;
    // 6. forward
    forward(app, cx, &route.target, req).await
}

/// The route for a proxied request, by its host and decoded path (also returned, for skip
/// routes); with only the top-level upstream and no skip routes, the path is not even
/// decoded. No route: 404.
fn pick_route<'a>(
    app: &'a App,
    cx: &mut Context,
    req: &Request<Incoming>,
) -> Result<(&'a Route<Upstream>, Option<RequestPath>), RequestError> {
    let routes = &app.routes;
    let path = if routes.is_single_default() && app.config.access.skip_routes.is_empty() {
        None
    } else {
        Some(RequestPath::parse(req.uri().path())?)
    };
    let route = match &path {
        None => routes.iter().next(),
        Some(path) => {
            let host = cx
                .origin
                .host_str()
                .or_else(|| req.uri().authority().map(|a| a.as_str()))
                .and_then(request_host);
            routes.pick(host.as_deref(), path.as_str())
        }
    }
    .ok_or(RequestError::NotFound)?;
    cx.route = Some(route.name.clone());
    Ok((route, path))
}

static X_FORWARDED_PREFIX: http::HeaderName = http::HeaderName::from_static("x-forwarded-prefix");

/// `strip_prefix = true`: the upstream sees the path without the route's prefix, and the
/// prefix in `X-Forwarded-Prefix` so it can still build its own links.
fn strip_prefix(route: &Route<Upstream>, req: &mut Request<Incoming>) -> Result<(), RequestError> {
    if !route.strip_prefix {
        return Ok(());
    }
    let path = route.path.strip(req.uri().path());
    let path_and_query = match req.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(
        PathAndQuery::try_from(path_and_query)
            .map_err(|_| RequestError::Malformed("request path"))?,
    );
    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| RequestError::Malformed("request path"))?;
    if let Ok(prefix) = HeaderValue::from_str(route.path.as_str()) {
        req.headers_mut().insert(X_FORWARDED_PREFIX.clone(), prefix);
    }
    Ok(())
}

// === 5. prepare ===

/// Adds what the upstream may trust (identity headers, groups and claims, the signed
/// assertion) and removes rocketgate's own cookies from the `Cookie` header.
async fn prepare(
    app: &App,
    user: &User,
    groups: &[String],
    req: &mut Request<Incoming>,
) -> Result<(), RequestError> {
    identity::add_upstream_identity(req.headers_mut(), &user.session, app.config.headers);
    identity::add_groups_and_claims(
        req.headers_mut(),
        groups,
        &user.session,
        &app.config.claim_headers,
        Audience::Upstream,
    );
    if let Some(signer) = &app.assertion {
        let assertion = signer.for_session(&user.session).await?;
        req.headers_mut()
            .insert(X_ROCKETGATE_ASSERTION.clone(), assertion);
    }
    strip_cookies(req.headers_mut(), |n| app.codec.is_ours(n));
    Ok(())
}

// === 6. forward ===

async fn forward(
    app: &App,
    cx: &Context,
    upstream: &Upstream,
    req: Request<Incoming>,
) -> Result<Response<Body>, RequestError> {
    let started = Instant::now();
    let response = upstream.forward(req, &cx.origin).await;
    app.metrics.upstream(started.elapsed().as_secs_f64());
    Ok(response?)
}

// === 7. respond ===

/// The answer as the client gets it: a refusal rendered for this reader, then on every
/// answer the pending `Set-Cookie` values and the request id; forward-auth answers are
/// never cached.
fn respond(
    app: &App,
    cx: &mut Context,
    result: Result<Response<Body>, RequestError>,
) -> Response<Body> {
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            if error.status().is_server_error() {
                tracing::warn!(%error, "request failed");
                cx.reason = error.reason().map(|(field, value)| (field, value.into()));
            }
            if let RequestError::Proxy(e) = &error
                && let Some(kind) = e.upstream_kind()
            {
                app.metrics.upstream_error(kind);
            }
            cx.refused = Some(error.status());
            let retry = cx.return_path();
            let reader = Reader {
                format: cx.format,
                request_id: cx.id.to_str().ok(),
                account: cx.account.as_ref().map(Account::name),
                retry: Some(&retry),
            };
            respond::render(&error, &app.pages, &reader)
        }
    };
    respond::add_cookies(&mut response, std::mem::take(&mut cx.set_cookies));
    if cx.kind == RouteKind::Auth {
        // Whatever the answer (200, 401, 403, 302, 5xx), it is about one browser's cookies
        // at one moment: a cache in front of rocketgate must never replay it to another.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), cx.id.clone());
    response
}

// === 8. log ===

fn log(app: &App, cx: &Context, response: &Response<Body>) {
    let status = cx.refused.unwrap_or(response.status()).as_u16();
    let elapsed = cx.started.elapsed();
    app.metrics
        .request(status, &cx.method, cx.kind, elapsed.as_secs_f64());
    // A 5xx rocketgate did not make itself is the upstream's own answer.
    let reason = match &cx.reason {
        Some((field, value)) => Some((*field, &**value)),
        None if status >= 500 && cx.kind == RouteKind::Proxy => Some(("error_source", "upstream")),
        None => None,
    };
    if cx.trace.is_recording() {
        finish_server_span(cx, status, reason);
    }
    let trace_id = cx.trace.trace_id().hex();
    crate::logging::log_request(&crate::logging::RequestLine {
        method: cx.method.as_str(),
        path: cx.uri.path(),
        status,
        latency: elapsed,
        client: cx.origin.client_ip,
        user: cx.account.as_ref().map(Account::user),
        request_id: cx.id.to_str().unwrap_or("-"),
        route: cx.route.as_deref(),
        denied: cx.denied.as_ref().map(ToString::to_string).as_deref(),
        reason,
        trace_id: std::str::from_utf8(&trace_id).ok(),
    });
}

/// The server span, with OpenTelemetry's HTTP server attributes; never the query (it can
/// hold an authorization code), a cookie or the user.
fn finish_server_span(cx: &Context, status: u16, reason: Option<(&'static str, &str)>) {
    use crate::trace::Value;
    let mut attributes: Vec<(&'static str, Value)> = vec![
        (
            "http.request.method",
            Value::from(cx.method.as_str().to_owned()),
        ),
        ("url.path", Value::from(cx.uri.path().to_owned())),
        (
            "url.scheme",
            Value::from(cx.origin.proto.to_str().unwrap_or("http").to_owned()),
        ),
        (
            "client.address",
            Value::from(cx.origin.client_ip.to_string()),
        ),
        ("http.response.status_code", Value::from(status)),
        // The `route` label of rocketgate_requests_total, so a trace and a graph agree.
        ("rocketgate.endpoint", Value::from(cx.kind.as_str())),
        (
            "rocketgate.request_id",
            Value::from(cx.id.to_str().unwrap_or("-").to_owned()),
        ),
    ];
    if let Some(host) = cx.origin.host_str() {
        let host = host.rsplit_once(':').map_or(host, |(name, _)| name);
        attributes.push(("server.address", Value::from(host.to_owned())));
    }
    if let Some(route) = &cx.route {
        attributes.push(("rocketgate.route", Value::from(route.to_string())));
    }
    if let Some(denied) = &cx.denied {
        attributes.push(("rocketgate.denied", Value::from(denied.to_string())));
    }
    let error = (status >= 500).then(|| {
        let kind = reason.map_or_else(|| status.to_string(), |(_, value)| value.to_owned());
        attributes.push(("error.type", Value::from(kind.clone())));
        std::borrow::Cow::Owned(kind)
    });
    cx.trace
        .finish(cx.method.as_str().to_owned(), attributes, error);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_tokens() {
        assert!(is_sane_request_id(b"5f0c6c1e-1b2a-4c3d-9e8f-0a1b2c3d4e5f"));
        assert!(is_sane_request_id(b"trace:01.a_b"));
        assert!(!is_sane_request_id(b""));
        assert!(!is_sane_request_id(b"a b"));
        assert!(!is_sane_request_id(b"<script>"));
        assert!(!is_sane_request_id("x".repeat(129).as_bytes()));
    }

    fn future_size<F: Future>(_: &impl FnOnce() -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// hyper reserves room for the service's future in every open connection, busy or idle,
    /// so the paths few requests take are boxed.
    #[test]
    fn the_request_future_carries_no_rare_path_inline() {
        // Futures are built, never polled: no App is needed to know their types.
        fn never<T>() -> T {
            unreachable!("only the type is used")
        }
        let handle = future_size(&|| handle(never(), never(), never()));
        let rare = [
            (
                "callback",
                future_size(&|| async {
                    login::callback(
                        never::<&App>(),
                        never::<&mut Context>(),
                        never::<&Request<Incoming>>(),
                    )
                    .await
                }),
            ),
            (
                "sign_out",
                future_size(&|| async {
                    sign_out::sign_out(
                        never::<&App>(),
                        never::<&mut Context>(),
                        never::<&Request<Incoming>>(),
                    )
                    .await
                }),
            ),
            (
                "admin",
                future_size(&|| async {
                    admin::revoke(never::<&App>(), never::<&Request<Incoming>>()).await
                }),
            ),
            (
                "Redis delete",
                future_size(&|| async {
                    never::<&crate::session::Sessions>().delete(never()).await
                }),
            ),
        ];
        for (name, size) in rare {
            assert!(
                handle < size,
                "the request future ({handle} bytes) is not smaller than {name}'s ({size} bytes): \
                 box the slow path that grew it"
            );
        }
    }
}

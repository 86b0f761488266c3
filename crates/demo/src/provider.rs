//! A stand-in for the Rocketpunch OAuth provider.
//!
//! It speaks the same paths, parameters and error shapes as the real service
//! (Rocketpunch runs league/oauth2-server for `/oauth/*` and its own JSON API
//! for `/api/v1/*`), so a rocketgate config only has to change the host to point
//! at it. Tests drive it through [`StandIn`]'s methods or the loopback-only
//! `/_standin/*` control routes, and can inject [`Fault`]s to exercise the
//! gate's error handling.

mod authorize;
mod control;
mod jwt;
mod pages;
mod params;
mod profile;
mod responses;
mod token;
mod tokens;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::Body;
use responses::api_error;
use tokens::{Minting, Store};

/// How the stand-in is registered and how it mints tokens.
#[derive(Clone, Debug)]
pub struct StandInOptions {
    /// The only client the stand-in knows.
    pub client_id: String,
    /// That client's secret, checked in constant time.
    pub client_secret: String,
    /// The one registered redirect URI; requests must match it exactly, as on
    /// Rocketpunch, so a gate that mangles it fails here too.
    pub redirect_uri: String,
    /// Lifetime of access tokens (`expires_in`).
    pub access_token_ttl: Duration,
    /// Lifetime of authorization codes.
    pub code_ttl: Duration,
    /// Exact length of minted access tokens; tests raise it to force session
    /// cookies past browser size limits.
    pub access_token_len: usize,
    /// Whether `/api/v1/profiles/me` wraps the profile in `{"data": ...}`. The
    /// real shape is undocumented, so the gate must cope with both.
    pub wrap_profile_in_data: bool,
    /// Issue access tokens as RS256 JWTs (`sub`, `aud` = client id, `iss`, `exp`, `email`,
    /// `preferred_username`, header `kid`) instead of opaque strings, signed with an RSA key
    /// generated at start and published at `/.well-known/jwks.json`. JWTs have the length
    /// their claims give them, so `access_token_len` only applies to opaque tokens.
    pub jwt_access_tokens: bool,
}

impl Default for StandInOptions {
    fn default() -> Self {
        Self {
            client_id: "demo-client".to_owned(),
            client_secret: "demo-secret".to_owned(),
            redirect_uri: "http://127.0.0.1:4180/oauth2/callback".to_owned(),
            access_token_ttl: Duration::from_secs(3600),
            code_ttl: Duration::from_secs(60),
            access_token_len: 40,
            wrap_profile_in_data: true,
            jwt_access_tokens: false,
        }
    }
}

/// Request counters, so tests can assert how often the gate talked to the provider.
///
/// Grant counters count well-formed grant requests (all required parameters
/// present) from an authenticated client, whether or not the grant then succeeds: a test that expects "exactly one refresh" must
/// also catch a second, failing one.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// Well-formed `grant_type=authorization_code` requests from the client.
    pub authorization_code_grants: u64,
    /// Well-formed `grant_type=refresh_token` requests from the client.
    pub refresh_token_grants: u64,
    /// Every request to `GET /api/v1/profiles/me`, faulted or not.
    pub profile_calls: u64,
    /// Every `POST /oauth/token`, faulted, malformed or not.
    pub token_calls: u64,
    /// Every `GET /.well-known/jwks.json`.
    pub jwks_calls: u64,
}

/// Which provider endpoint a [`Fault`] applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultEndpoint {
    /// `POST /oauth/token`
    Token,
    /// `GET /api/v1/profiles/me`
    Profile,
}

/// A misbehaviour to inject, so tests can see how the gate copes with an
/// unhealthy provider. Faults stay in place until cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with the endpoint's own JSON error shape.
    Status(u16),
    /// 429 with `Retry-After: 30`, `X-RateLimit-*` headers and a JSON error.
    TooManyRequests,
    /// 200 with an HTML maintenance page instead of JSON.
    NonJson,
    /// Sleep this long, then answer normally (for client timeouts).
    Hang(Duration),
    /// Drop the connection without answering.
    Refuse,
}

/// A built-in account a demo visitor can "log in" as on the consent page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoUser {
    /// Numeric string, as Rocketpunch ids are numbers.
    pub id: &'static str,
    pub username: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    /// Not part of Rocketpunch's documented profile: teams the stand-in reports so that
    /// `provider.claims.groups` can be tried and tested.
    pub teams: &'static [&'static str],
}

const USERS: &[DemoUser] = &[
    DemoUser {
        id: "1001",
        username: "ada",
        name: "Ada Lovelace",
        email: "ada@example.com",
        teams: &["engineering"],
    },
    DemoUser {
        id: "1002",
        username: "grace",
        name: "Grace Hopper",
        email: "grace@example.org",
        teams: &["navy", "ops"],
    },
    DemoUser {
        id: "1003",
        username: "linus",
        name: "Linus Torvalds",
        email: "linus@kernel.example",
        teams: &[],
    },
];

/// Mutable provider state. Lives behind a std mutex that is never held across
/// an `.await`, so handlers stay simple and the lock is never contended long.
#[derive(Default)]
struct State {
    stats: Stats,
    token_fault: Option<Fault>,
    profile_fault: Option<Fault>,
    store: Store,
    /// Signing keys for JWT access tokens, newest first; the previous one stays published
    /// after a rotation so tokens it signed keep verifying, as with a real provider.
    jwt_keys: Vec<jwt::SigningKey>,
}

/// The provider stand-in. Create with [`StandIn::new`], serve with [`StandIn::spawn`].
pub struct StandIn {
    opts: StandInOptions,
    state: Mutex<State>,
    /// `iss` of JWT access tokens: `http://<address spawn listened on>`.
    issuer: OnceLock<String>,
}

impl StandIn {
    pub fn new(opts: StandInOptions) -> Arc<StandIn> {
        let jwt_keys = if opts.jwt_access_tokens {
            jwt::SigningKey::generate().into_iter().collect()
        } else {
            Vec::new()
        };
        Arc::new(StandIn {
            opts,
            state: Mutex::new(State {
                jwt_keys,
                ..State::default()
            }),
            issuer: OnceLock::new(),
        })
    }

    /// Serves the provider routes on `listener` until the task is aborted.
    pub fn spawn(self: &Arc<Self>, listener: TcpListener) -> JoinHandle<()> {
        if let Ok(addr) = listener.local_addr() {
            let _ = self.issuer.set(format!("http://{addr}"));
        }
        let this = Arc::clone(self);
        super::serve(listener, move |req| Arc::clone(&this).handle(req))
    }

    /// Answers one request. Never panics on client input; a [`Fault::Refuse`]
    /// comes back as a 503 carrying [`super::CloseConnection`], which
    /// [`super::serve`] turns into a dropped connection.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path();
        match (req.method(), path) {
            (&Method::GET, "/oauth/authorize") => authorize::show(&self, &req),
            (&Method::POST, "/oauth/authorize") => authorize::decide(&self, req).await,
            (&Method::POST, "/oauth/token") => token::handle(&self, req).await,
            (&Method::GET, "/api/v1/profiles/me") => profile::handle(&self, req).await,
            (&Method::GET, "/.well-known/jwks.json") => self.jwks(),
            (_, "/oauth/authorize" | "/oauth/token" | "/api/v1/profiles/me") => api_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "The HTTP method is not allowed for this endpoint.",
            ),
            (_, p) if p.starts_with("/_standin/") => control::handle(&self, &req),
            _ => api_error(
                StatusCode::NOT_FOUND,
                "The requested resource was not found.",
            ),
        }
    }

    pub fn stats(&self) -> Stats {
        self.state().stats
    }

    pub fn reset_stats(&self) {
        self.state().stats = Stats::default();
    }

    /// Clears counters and faults: what an e2e test wants between cases.
    /// Issued tokens survive, so signed-in sessions keep working.
    pub fn reset(&self) {
        let mut state = self.state();
        state.stats = Stats::default();
        state.token_fault = None;
        state.profile_fault = None;
    }

    /// Installs (`Some`) or clears (`None`) a fault on one endpoint.
    pub fn set_fault(&self, endpoint: FaultEndpoint, fault: Option<Fault>) {
        let mut state = self.state();
        match endpoint {
            FaultEndpoint::Token => state.token_fault = fault,
            FaultEndpoint::Profile => state.profile_fault = fault,
        }
    }

    /// Revokes every access and refresh token of `user_id`, as if the user
    /// disconnected the app on Rocketpunch: the gate must notice on its next
    /// profile check or refresh.
    pub fn revoke_user(&self, user_id: &str) {
        self.state().store.revoke_user(user_id);
    }

    /// Every authorization code, access token and refresh token issued so far, revoked or
    /// not: tests use it to prove none of them reaches a log line.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.state().store.issued()
    }

    /// `iss` of the JWT access tokens: the address [`StandIn::spawn`] listens on.
    pub fn issuer(&self) -> String {
        self.issuer
            .get()
            .cloned()
            .unwrap_or_else(|| "http://rocketpunch.standin".to_owned())
    }

    /// Replaces the JWT signing key with a new one (new kid); the previous key stays in the
    /// JWKS. Tests use it to make the gate meet a kid it has not fetched yet.
    pub fn rotate_signing_key(&self) {
        let Some(key) = jwt::SigningKey::generate() else {
            return;
        };
        let mut state = self.state();
        state.jwt_keys.insert(0, key);
        state.jwt_keys.truncate(2);
    }

    /// The kid new JWT access tokens are signed with, if JWTs are on.
    pub fn signing_kid(&self) -> Option<String> {
        self.state().jwt_keys.first().map(|k| k.kid().to_owned())
    }

    /// Signs arbitrary `claims` with the current key: tests forge expired, wrong-audience
    /// or otherwise bad tokens that are still validly signed.
    pub fn sign_jwt(&self, claims: &serde_json::Value) -> Option<String> {
        self.state().jwt_keys.first()?.sign(claims)
    }

    /// Issues an access token for `user_id` to the registered client directly, as if a
    /// login had just completed (no code, no browser): for API-client tests.
    pub fn issue_access_token(&self, user_id: &str) -> Option<String> {
        let user = Self::user(user_id)?;
        let issuer = self.issuer();
        let mut guard = self.state();
        let state = &mut *guard;
        let minting = self.minting(state.jwt_keys.first(), &issuer);
        Some(
            state
                .store
                .issue_direct(&self.opts.client_id, user.id, minting)
                .access_token,
        )
    }

    /// How tokens are minted right now.
    fn minting<'a>(&'a self, key: Option<&'a jwt::SigningKey>, issuer: &'a str) -> Minting<'a> {
        Minting {
            access_ttl: self.opts.access_token_ttl,
            access_len: self.opts.access_token_len,
            jwt: key.map(|key| tokens::JwtMinting {
                key,
                issuer,
                audience: &self.opts.client_id,
            }),
        }
    }

    fn jwks(&self) -> Response<Body> {
        let mut state = self.state();
        state.stats.jwks_calls += 1;
        let keys: Vec<&serde_json::Value> =
            state.jwt_keys.iter().map(jwt::SigningKey::jwk).collect();
        let mut resp = responses::json(StatusCode::OK, &serde_json::json!({ "keys": keys }));
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("public, max-age=300"),
        );
        resp
    }

    pub fn users() -> &'static [DemoUser] {
        USERS
    }

    fn user(id: &str) -> Option<&'static DemoUser> {
        USERS.iter().find(|u| u.id == id)
    }

    /// Locks the state. A poisoned lock only means some thread panicked while
    /// holding it; the counters and maps are still usable, so carry on.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

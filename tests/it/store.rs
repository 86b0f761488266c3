//! The session store conformance suite: every behaviour here runs twice, once against the
//! cookie store and once against the Redis store (a real `redis-server`), so both keep the
//! same contract. What only Redis can do (server-side sign-out, revocation, replicas, faults)
//! is in `tests/redis.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::support::redis::RedisServer;
use crate::support::{Options, Stack, location, token_seen};
use reqwest::header::{ACCEPT, COOKIE, HeaderMap, HeaderValue};
use rocketgate::app::App;
use rocketgate::session::{RequestCookies, Session, unix_now};
use rocketgate_demo::StandInOptions;

const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const K2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

#[derive(Clone, Copy, Debug)]
enum Store {
    Cookie,
    Redis,
}

/// A store under test: the Redis server (if any) lives as long as the fixture.
struct Fixture {
    redis: Option<RedisServer>,
}

impl Fixture {
    async fn new(store: Store) -> Fixture {
        let redis = match store {
            Store::Cookie => None,
            Store::Redis => Some(RedisServer::start().await),
        };
        Fixture { redis }
    }

    /// Config overrides that select this store.
    fn env(&self) -> Vec<(&'static str, String)> {
        match &self.redis {
            None => vec![],
            Some(r) => vec![
                ("ROCKETGATE_SESSION__STORE", "redis".into()),
                ("ROCKETGATE_SESSION__REDIS_URL", r.url()),
            ],
        }
    }

    /// An `App` (no listener) with these cookie keys: the first seals, all open.
    fn app(&self, secret: &str, old: Option<&str>) -> Arc<App> {
        crate::support::init_crypto();
        let toml = rocketgate_demo::proxy_config(
            "127.0.0.1:9".parse().unwrap(),
            "127.0.0.1:9".parse().unwrap(),
            "127.0.0.1:9".parse().unwrap(),
            "client-secret",
        );
        let mut env: HashMap<String, String> = self
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        env.insert("ROCKETGATE_COOKIE__SECRET".into(), secret.into());
        if let Some(old) = old {
            env.insert("ROCKETGATE_COOKIE__SECRETS".into(), old.into());
        }
        let config = rocketgate::config::load_from_str(&toml, &env).expect("valid config");
        App::new(config).expect("app")
    }

    async fn stack(&self, options: Options) -> Stack {
        let mut options = options;
        options.env.extend(self.env());
        Stack::with(options).await
    }
}

fn session(token_len: usize) -> Session {
    let now = unix_now();
    let mut s = rocketgate::testkit::session_with(token_len, Some(now + 3600), now);
    s.tokens.refresh_token = Some("refresh-1".into());
    s.tokens.issued_at = Some(now);
    s
}

/// What a browser sends back after `set_cookie` (cleared cookies dropped).
fn jar(set_cookie: &[String]) -> RequestCookies {
    let pairs: Vec<&str> = set_cookie
        .iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap())
        .collect();
    let mut headers = HeaderMap::new();
    if !pairs.is_empty() {
        headers.insert(COOKIE, HeaderValue::from_str(&pairs.join("; ")).unwrap());
    }
    RequestCookies::from_headers(&headers)
}

fn raw_jar(header: &str) -> RequestCookies {
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, HeaderValue::from_str(header).unwrap());
    RequestCookies::from_headers(&headers)
}

async fn a_created_session_loads_back_unchanged(store: Store) {
    let f = Fixture::new(store).await;
    let app = f.app(K1, None);
    let s = session(20);
    let set = app
        .sessions
        .create(&s, &RequestCookies::default())
        .await
        .unwrap();
    assert!(!set.is_empty());
    for c in &set {
        for attr in ["HttpOnly", "Path=/", "SameSite=Lax"] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
    }
    let loaded = app
        .sessions
        .load(&jar(&set))
        .await
        .unwrap()
        .expect("session");
    assert_eq!(*loaded.session, s);
    assert!(!loaded.reseal);
    // A second read is served without decryption or a round trip.
    let again = app.sessions.load(&jar(&set)).await.unwrap().unwrap();
    assert!(again.cached);
    assert_eq!(again.session, loaded.session);
}

async fn missing_garbage_and_tampered_cookies_are_no_session(store: Store) {
    let f = Fixture::new(store).await;
    let app = f.app(K1, None);
    let set = app
        .sessions
        .create(&session(20), &RequestCookies::default())
        .await
        .unwrap();
    let value = set[0].split(';').next().unwrap().to_owned();
    let (name, sealed) = value.split_once('=').unwrap();
    let mut flipped = sealed.as_bytes().to_vec();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for header in [
        "other=1".to_owned(),
        format!("{name}="),
        format!("{name}=garbage"),
        format!("{name}={}", &sealed[..sealed.len() / 2]),
        format!("{name}={flipped}"),
        format!("{name}_0=abc; {name}_1=def"),
    ] {
        let loaded = app.sessions.load(&raw_jar(&header)).await;
        assert!(
            matches!(loaded, Ok(None)),
            "{header:?} must be no session, got {loaded:?}"
        );
    }
}

async fn another_secret_cannot_open_it(store: Store) {
    let f = Fixture::new(store).await;
    let set = f
        .app(K1, None)
        .sessions
        .create(&session(20), &RequestCookies::default())
        .await
        .unwrap();
    let stranger = f.app(K2, None);
    assert!(stranger.sessions.load(&jar(&set)).await.unwrap().is_none());
}

async fn an_old_key_still_opens_and_the_cookie_is_resealed(store: Store) {
    let f = Fixture::new(store).await;
    let s = session(20);
    let old_set = f
        .app(K1, None)
        .sessions
        .create(&s, &RequestCookies::default())
        .await
        .unwrap();
    let rotated = f.app(K2, Some(K1));
    let loaded = rotated
        .sessions
        .load(&jar(&old_set))
        .await
        .unwrap()
        .unwrap();
    assert!(loaded.reseal, "sealed with the old key");
    assert_eq!(*loaded.session, s);
    let resealed = rotated
        .sessions
        .rewrite(&loaded.session, &loaded.handle, &jar(&old_set));
    let only_new = f.app(K2, None);
    let reread = only_new
        .sessions
        .load(&jar(&resealed))
        .await
        .unwrap()
        .unwrap();
    assert!(!reread.reseal);
    assert_eq!(*reread.session, s);
}

async fn sign_out_clears_every_cookie_it_set(store: Store) {
    let f = Fixture::new(store).await;
    let app = f.app(K1, None);
    let set = app
        .sessions
        .create(&session(9000), &RequestCookies::default())
        .await
        .unwrap();
    let cookies = jar(&set);
    let cleared = app.sessions.delete(&cookies).await.unwrap();
    for c in &set {
        let name = c.split('=').next().unwrap();
        assert!(
            cleared
                .iter()
                .any(|d| d.starts_with(&format!("{name}=")) && d.contains("Max-Age=0")),
            "{name} not cleared: {cleared:?}"
        );
    }
    assert!(app.sessions.load(&jar(&cleared)).await.unwrap().is_none());
    // The cookie as it was before sign-out (a copy someone kept): Redis deleted the session,
    // a cookie session cannot be recalled (it lives on until cookie.expire).
    let copy = app.sessions.load(&cookies).await.unwrap();
    match store {
        Store::Redis => assert!(copy.is_none(), "deleted server-side"),
        Store::Cookie => assert!(copy.is_some(), "stateless: documented in SECURITY.md"),
    }
}

async fn large_sessions_round_trip_in_cookies_browsers_accept(store: Store) {
    let f = Fixture::new(store).await;
    let app = f.app(K1, None);
    let s = session(12_000);
    let set = app
        .sessions
        .create(&s, &RequestCookies::default())
        .await
        .unwrap();
    assert!(
        set.iter().all(|c| c.len() < 4096),
        "every cookie under 4 KiB"
    );
    let loaded = app.sessions.load(&jar(&set)).await.unwrap().unwrap();
    assert_eq!(*loaded.session, s);
}

/// Tokens of 6 s, so the refresh window (half the lifetime) opens 3 s after issue, and a
/// refreshed session is not due again for 3 s, well past any burst below.
fn short_tokens() -> Options {
    Options {
        standin: StandInOptions {
            access_token_ttl: Duration::from_secs(6),
            ..Default::default()
        },
        ..Options::default()
    }
    .env("ROCKETGATE_HEADERS__PASS_ACCESS_TOKEN", "true")
}

const DUE: Duration = Duration::from_millis(3100);

async fn sign_in_refresh_and_sign_out_over_http(store: Store) {
    let f = Fixture::new(store).await;
    let stack = f.stack(short_tokens()).await;
    let browser = stack.browser();
    browser.login("/").await;
    let json = |url: String| {
        let client = browser.client.clone();
        async move {
            client
                .get(url)
                .header(ACCEPT, "application/json")
                .send()
                .await
                .unwrap()
        }
    };
    let first = token_seen(json(stack.url("/api")).await).await;
    stack.standin.reset_stats();
    tokio::time::sleep(DUE).await;
    let second = token_seen(json(stack.url("/api")).await).await;
    assert_ne!(first, second, "refreshed");
    assert_eq!(stack.standin.stats().refresh_token_grants, 1);
    let third = token_seen(json(stack.url("/api")).await).await;
    assert_eq!(
        second, third,
        "the refreshed tokens are what the session holds now"
    );
    assert_eq!(stack.standin.stats().refresh_token_grants, 1);

    let out = browser.get(&stack.url("/oauth2/sign_out")).await;
    assert_eq!(out.status(), 302);
    let next = browser.get(&stack.url("/api")).await;
    assert_eq!(next.status(), 302, "signed out: back to sign-in");
    assert!(location(&next).contains("/oauth/authorize"));
}

async fn sixty_four_concurrent_requests_make_one_token_call(store: Store) {
    let f = Fixture::new(store).await;
    let stack = f.stack(short_tokens()).await;
    let browser = stack.browser();
    browser.login("/").await;
    let cookie = browser.cookie_header();
    stack.standin.reset_stats();
    tokio::time::sleep(DUE).await;
    // One client for all: building 64 (root certificates and all) would take longer than
    // the refreshed token's own refresh window in a debug build.
    let client = stack.client();
    let requests = (0..64).map(|_| {
        let request = client
            .get(stack.url("/api"))
            .header(ACCEPT, "application/json")
            .header(COOKIE, &cookie);
        async move { token_seen(request.send().await.unwrap()).await }
    });
    let started = std::time::Instant::now();
    let tokens = futures_util::future::join_all(requests).await;
    assert_eq!(
        stack.standin.stats().refresh_token_grants,
        1,
        "after {:?}: {}",
        started.elapsed(),
        stack
            .metrics()
            .await
            .lines()
            .filter(|l| l.contains("refresh"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "one new token for all"
    );
}

async fn a_refused_refresh_ends_the_session(store: Store) {
    let f = Fixture::new(store).await;
    let stack = f.stack(short_tokens()).await;
    let browser = stack.browser();
    browser.login("/").await;
    let cookie = browser.cookie_header();
    stack.standin.revoke_user("1001");
    tokio::time::sleep(DUE).await;
    let refused = stack.api(&cookie).await;
    assert_eq!(refused.status(), 401);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized", "{body}");
    // The same cookie again: still over, and no second token call replaying a dead grant.
    let grants = stack.standin.stats().refresh_token_grants;
    assert_eq!(stack.api(&cookie).await.status(), 401);
    assert_eq!(stack.standin.stats().refresh_token_grants, grants);
}

/// Each behaviour as a test against each store.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod cookie_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Store::Cookie).await;
                }
            )*
        }
        mod redis_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Store::Redis).await;
                }
            )*
        }
    };
}

conformance!(
    a_created_session_loads_back_unchanged,
    missing_garbage_and_tampered_cookies_are_no_session,
    another_secret_cannot_open_it,
    an_old_key_still_opens_and_the_cookie_is_resealed,
    sign_out_clears_every_cookie_it_set,
    large_sessions_round_trip_in_cookies_browsers_accept,
    sign_in_refresh_and_sign_out_over_http,
    sixty_four_concurrent_requests_make_one_token_call,
    a_refused_refresh_ends_the_session,
);

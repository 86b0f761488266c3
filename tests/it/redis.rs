//! What only the Redis session store does, against real `redis-server` processes: tickets
//! instead of tokens in cookies, nothing readable in Redis, server-side sign-out and
//! revocation (CLI and admin endpoint), two proxy processes refreshing one session once,
//! Redis lost and back without a logout or a restart, and cluster and sentinel modes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::process::{
    Finished, TempFile, command, command_on_one_core, drain, free_port, plain_client, run,
    wait_for_status,
};
use crate::support::redis::{RedisCluster, RedisSentinel, RedisServer, with_redis_sessions};
use crate::support::{Browser, Echo, Options, Stack, api_get, init_crypto};
use reqwest::header::{ACCEPT, AUTHORIZATION, COOKIE, SET_COOKIE};
use rocketgate_demo::{StandIn, StandInOptions, spawn_upstream};
use tokio::net::TcpListener;

const REDIS_PASSWORD: &str = "hunter2-redis-password";
const ADMIN_TOKEN: &str = "admin-token-0123456789abcdefghijklmnop";

fn redis_options(redis: &RedisServer) -> Options {
    Options::default()
        .env("ROCKETGATE_SESSION__STORE", "redis")
        .env("ROCKETGATE_SESSION__REDIS_URL", redis.url())
}

async fn user_seen(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200, "signed-in request");
    let echo: Echo = response.json().await.unwrap();
    echo.header("x-forwarded-user").unwrap().to_owned()
}

/// Polls until `cookie` no longer opens a session at `url` (401), within `bound`.
async fn wait_until_signed_out(client: &reqwest::Client, url: &str, cookie: &str, bound: Duration) {
    let deadline = Instant::now() + bound;
    loop {
        let status = api_get(client, url.to_owned(), cookie).await.status();
        if status == 401 {
            return;
        }
        assert_eq!(status, 200, "only signed in or signed out");
        assert!(Instant::now() < deadline, "still signed in after {bound:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_holds_a_ticket_and_redis_holds_no_readable_token() {
    let redis = RedisServer::start().await;
    let stack = Stack::with(redis_options(&redis)).await;
    let browser = stack.browser();
    browser.login("/").await;
    let cookie = browser.cookie("_rocketgate").expect("session cookie");
    assert!(
        cookie.len() < 300,
        "a ticket, not a session: {} bytes",
        cookie.len()
    );

    let keys = redis.session_keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let secrets = stack.standin.issued_secrets();
    assert!(!secrets.is_empty());
    for (key, value) in redis.dump() {
        for secret in &secrets {
            assert!(
                !key.contains(secret.as_str()) && !value.contains(secret.as_str()),
                "{key} reveals a token"
            );
        }
        assert!(
            !value.contains("ada@example.com"),
            "{key} reveals the profile"
        );
    }
    // The entry expires with the session (cookie.expire, 7 days by default).
    let ttl = match redis.command(&["PTTL", &keys[0]]) {
        redis::Value::Int(ms) => ms,
        other => panic!("PTTL: {other:?}"),
    };
    let week = 7 * 24 * 3600 * 1000;
    assert!((week - 60_000..=week).contains(&ttl), "PTTL {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_kills_a_copied_cookie_at_once() {
    let redis = RedisServer::start().await;
    let stack = Stack::with(redis_options(&redis)).await;
    let browser = stack.browser();
    browser.login("/").await;
    let stolen = browser.cookie_header();
    let client = stack.client();
    assert_eq!(
        user_seen(api_get(&client, stack.url("/api"), &stolen).await).await,
        "1001"
    );

    let out = browser.get(&stack.url("/oauth2/sign_out")).await;
    assert_eq!(out.status(), 302);
    assert!(redis.session_keys().is_empty(), "deleted server-side");
    assert_eq!(
        api_get(&client, stack.url("/api"), &stolen).await.status(),
        401
    );
}

/// `rocketgate sessions revoke --user USER` with `config`, as an operator would run it.
async fn revoke_with_cli(config: &TempFile, user: &str) -> Finished {
    let args = [
        "--config",
        config.0.to_str().unwrap(),
        "sessions",
        "revoke",
        "--user",
        user,
    ];
    run(command(&args), Duration::from_secs(20)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_revoke_cli_ends_every_session_of_one_user() {
    let redis = RedisServer::start().await;
    let stack =
        Stack::with(redis_options(&redis).env("ROCKETGATE_SESSION__CACHE_TTL", "200ms")).await;
    let (laptop, phone, other) = (stack.browser(), stack.browser(), stack.browser());
    laptop.login_as("/", "1001").await;
    phone.login_as("/", "1001").await;
    other.login_as("/", "1002").await;
    assert_eq!(redis.session_keys().len(), 3);

    // The CLI is another process with the same configuration (and so the same Redis).
    let config = TempFile::new(
        "revoke",
        &with_redis_sessions(
            &rocketgate_demo::proxy_config(stack.proxy, stack.upstream, stack.provider, "x"),
            &redis.url(),
        ),
    );
    let done = revoke_with_cli(&config, "1001").await;
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stdout.contains("revoked 2 session(s) of user 1001"),
        "{}",
        done.stdout
    );

    let client = stack.client();
    let url = stack.url("/api");
    // Revoked in Redis; this replica's cache forgets within session.cache_ttl.
    wait_until_signed_out(
        &client,
        &url,
        &laptop.cookie_header(),
        Duration::from_secs(5),
    )
    .await;
    wait_until_signed_out(
        &client,
        &url,
        &phone.cookie_header(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        user_seen(api_get(&client, url.clone(), &other.cookie_header()).await).await,
        "1002"
    );
    assert_eq!(redis.session_keys().len(), 1);

    // With cookie sessions there is nothing to revoke, and the CLI says so.
    let cookie_config = TempFile::new(
        "revoke-cookie",
        &rocketgate_demo::proxy_config(stack.proxy, stack.upstream, stack.provider, "x"),
    );
    let refused = revoke_with_cli(&cookie_config, "1001").await;
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("cannot be revoked"),
        "{}",
        refused.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_revokes_with_the_right_token_only() {
    let redis = RedisServer::start().await;
    let stack =
        Stack::with(redis_options(&redis).env("ROCKETGATE_ADMIN__TOKEN", ADMIN_TOKEN)).await;
    let browser = stack.browser();
    browser.login_as("/", "1001").await;
    let cookie = browser.cookie_header();
    let client = stack.client();
    let url = stack.url("/oauth2/admin/revoke?user=1001");

    for auth in [
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Basic {ADMIN_TOKEN}")),
    ] {
        let mut request = client.post(&url);
        if let Some(a) = &auth {
            request = request.header(AUTHORIZATION, a);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), 401, "{auth:?}");
        assert!(refused.headers().contains_key("www-authenticate"));
    }
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let get = client
        .get(&url)
        .header(AUTHORIZATION, &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let no_user = client
        .post(stack.url("/oauth2/admin/revoke"))
        .header(AUTHORIZATION, &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(no_user.status(), 400);
    assert_eq!(
        user_seen(api_get(&client, stack.url("/api"), &cookie).await).await,
        "1001"
    );

    let done = client
        .post(&url)
        .header(AUTHORIZATION, &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let body: serde_json::Value = done.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"user": "1001", "revoked": 1}));
    assert_eq!(
        api_get(&client, stack.url("/api"), &cookie).await.status(),
        401
    );

    // Without admin.token the path does not exist.
    let plain = Stack::with(redis_options(&redis)).await;
    let absent = plain
        .client()
        .post(plain.url("/oauth2/admin/revoke?user=1001"))
        .header(AUTHORIZATION, &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(absent.status(), 404);
}

/// A stand-in and an echo upstream in this process, for proxies running as child processes.
struct Backends {
    provider: SocketAddr,
    upstream: SocketAddr,
    standin: std::sync::Arc<StandIn>,
}

async fn backends(public: SocketAddr, token_ttl: Duration) -> Backends {
    init_crypto();
    let provider_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let provider = provider_listener.local_addr().unwrap();
    let upstream = upstream_listener.local_addr().unwrap();
    let standin = StandIn::new(StandInOptions {
        client_id: "demo-client".into(),
        client_secret: "replica-secret".into(),
        redirect_uri: format!("http://{public}/oauth2/callback"),
        access_token_ttl: token_ttl,
        ..StandInOptions::default()
    });
    standin.spawn(provider_listener);
    spawn_upstream(upstream_listener);
    Backends {
        provider,
        upstream,
        standin,
    }
}

/// A proxy process listening on `listen`, configured by `config`; waits for `/ping`.
/// `one_core`: pinned to one CPU, so it runs the single-threaded runtime.
async fn replica(config: &TempFile, listen: SocketAddr, one_core: bool) -> tokio::process::Child {
    let args = ["--config", config.0.to_str().unwrap()];
    let mut command = if one_core {
        command_on_one_core(&args)
    } else {
        command(&args)
    };
    let mut child = command
        .env("ROCKETGATE_LISTEN", listen.to_string())
        .env("ROCKETGATE_SHUTDOWN_DELAY", "0s")
        .spawn()
        .expect("spawn rocketgate");
    let client = plain_client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("rocketgate exited: {status}");
        }
        if client
            .get(format!("http://{listen}/ping"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return child;
        }
        assert!(
            Instant::now() < deadline,
            "replica on {listen} never answered"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The shared config of replicas behind `public` using `backends` and sessions in `redis`;
/// `session` is appended to its `[session]` table, `rest` after it.
fn replicas_config(
    label: &str,
    public: SocketAddr,
    backends: &Backends,
    redis: &RedisServer,
    session: &str,
    rest: &str,
) -> TempFile {
    let proxy = rocketgate_demo::proxy_config(
        public,
        backends.upstream,
        backends.provider,
        "replica-secret",
    );
    let text = format!(
        "{}{session}{rest}",
        with_redis_sessions(&proxy, &redis.url())
    );
    TempFile::new(label, &text)
}

/// [`replica`], then waits until it is ready (its Redis answers).
async fn ready_replica(
    config: &TempFile,
    listen: SocketAddr,
    one_core: bool,
) -> tokio::process::Child {
    let child = replica(config, listen, one_core).await;
    let ready = format!("http://{listen}/ready");
    wait_for_status(&plain_client(), &ready, 200, Duration::from_secs(10)).await;
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_sessions_and_refresh_each_once() {
    let redis = RedisServer::start().await;
    let (a, b) = (free_port(), free_port());
    // 10 s tokens: due 5 s after issue, and not due again for 5 s after the refresh, however
    // long 64 requests take on two debug-build processes sharing two cores.
    let backends = backends(a, Duration::from_secs(10)).await;
    let config = replicas_config(
        "replicas",
        a,
        &backends,
        &redis,
        "",
        "[headers]\npass_access_token = true\n",
    );
    // One multi-threaded process and one on a single core (the single-threaded runtime).
    let mut first = ready_replica(&config, a, false).await;
    let mut second = ready_replica(&config, b, true).await;
    let (out_a, err_a) = (drain(first.stdout.take()), drain(first.stderr.take()));
    let (out_b, err_b) = (drain(second.stdout.take()), drain(second.stderr.take()));
    let client = plain_client();

    // Signed in through A, the same cookie works on B: the session is in Redis, not in A.
    let browser = Browser::new(a);
    browser.login("/").await;
    let cookie = browser.cookie_header();
    assert_eq!(
        user_seen(api_get(&client, format!("http://{b}/api"), &cookie).await).await,
        "1001"
    );

    // Both replicas see the token due at once: 64 requests, half on each, one token call.
    backends.standin.reset_stats();
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let shared = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let requests = (0..64).map(|i| {
        let proxy = if i % 2 == 0 { a } else { b };
        let request = shared
            .get(format!("http://{proxy}/api"))
            .header(ACCEPT, "application/json")
            .header(COOKIE, &cookie);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            let echo: Echo = response.json().await.unwrap();
            echo.header("x-forwarded-access-token").unwrap().to_owned()
        }
    });
    let tokens = futures_util::future::join_all(requests).await;
    let stats = backends.standin.stats();
    assert_eq!(
        stats.refresh_token_grants, 1,
        "exactly one token call across both processes"
    );
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "one new token everywhere"
    );

    for child in [&mut first, &mut second] {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    for log in [out_a, err_a, out_b, err_b] {
        let log = log.await.unwrap();
        assert!(!log.contains("panicked"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_at_start_is_not_ready_then_recovers_without_a_restart() {
    let redis_addr = free_port();
    let proxy = free_port();
    let backends = backends(proxy, Duration::from_secs(3600)).await;
    let config = TempFile::new(
        "redis-later",
        &format!(
            "{}redis_timeout = \"500ms\"\n",
            with_redis_sessions(
                &rocketgate_demo::proxy_config(
                    proxy,
                    backends.upstream,
                    backends.provider,
                    "replica-secret"
                ),
                &format!("redis://:{REDIS_PASSWORD}@{redis_addr}/0"),
            )
        ),
    );
    let mut child = replica(&config, proxy, true).await;
    let stderr = drain(child.stderr.take());
    let stdout = drain(child.stdout.take());
    let client = plain_client();
    // Alive, but not ready, and it keeps running.
    assert_eq!(
        client
            .get(format!("http://{proxy}/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(
        client
            .get(format!("http://{proxy}/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    // A browser meanwhile: 503 page, not a login loop and not a crash.
    let browser = Browser::new(proxy);
    let early = browser.get(&format!("http://{proxy}/")).await;
    assert_eq!(
        early.status(),
        302,
        "no session yet: sign-in starts (it needs no Redis)"
    );

    let redis = RedisServer::start_on(redis_addr, &["--requirepass", REDIS_PASSWORD]).await;
    wait_for_status(
        &client,
        &format!("http://{proxy}/ready"),
        200,
        Duration::from_secs(10),
    )
    .await;
    let page = browser.login("/").await;
    assert_eq!(page.status(), 200);
    assert_eq!(redis.session_keys().len(), 1);

    // SIGTERM, not SIGKILL: log lines are written in batches, and only a normal exit flushes
    // the last one.
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let exited = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    assert!(
        exited.is_ok_and(|s| s.is_ok_and(|s| s.success())),
        "clean exit"
    );
    let log = format!("{}{}", stdout.await.unwrap(), stderr.await.unwrap());
    assert!(
        log.contains("Redis session store unreachable"),
        "a clear log line: {log}"
    );
    assert!(log.contains("Redis session store reachable"), "{log}");
    assert!(
        !log.contains(REDIS_PASSWORD),
        "the URL's password is never logged: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_while_serving_is_503_never_a_logout_and_it_recovers() {
    let mut redis = RedisServer::start().await;
    let stack = Stack::with(
        redis_options(&redis)
            .env("ROCKETGATE_SESSION__CACHE_TTL", "100ms")
            .env("ROCKETGATE_SESSION__REDIS_TIMEOUT", "500ms"),
    )
    .await;
    let browser = stack.browser();
    browser.login("/").await;
    let cookie = browser.cookie_header();
    let client = stack.client();
    let url = stack.url("/api");
    assert_eq!(
        user_seen(api_get(&client, url.clone(), &cookie).await).await,
        "1001"
    );

    redis.kill();
    tokio::time::sleep(Duration::from_millis(200)).await; // past session.cache_ttl
    let during = api_get(&client, url.clone(), &cookie).await;
    assert_eq!(during.status(), 503);
    assert!(
        during.headers().get_all(SET_COOKIE).iter().next().is_none(),
        "the cookie is kept"
    );
    let body: serde_json::Value = during.json().await.unwrap();
    assert_eq!(body["error"], "session_store_unavailable");
    let page = browser.get(&stack.url("/")).await;
    assert_eq!(page.status(), 503);
    let html = page.text().await.unwrap();
    assert!(html.contains("Your session is safe"), "{html}");
    assert!(
        !html.contains("redis://") && !html.contains("127.0.0.1"),
        "no internals"
    );
    // Sign-out cannot delete the session now: it says so and keeps the cookie for a retry.
    let out = browser.get(&stack.url("/oauth2/sign_out")).await;
    assert_eq!(out.status(), 503);
    assert!(out.headers().get_all(SET_COOKIE).iter().next().is_none());
    wait_for_status(&client, &stack.url("/ready"), 503, Duration::from_secs(5)).await;

    redis.restart().await;
    wait_for_status(&client, &stack.url("/ready"), 200, Duration::from_secs(10)).await;
    assert_eq!(
        user_seen(api_get(&client, url, &cookie).await).await,
        "1001",
        "same session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_mode_signs_in_refreshes_and_signs_out() {
    let cluster = RedisCluster::start().await;
    let stack = Stack::with(
        Options {
            standin: StandInOptions {
                access_token_ttl: Duration::from_secs(4),
                ..Default::default()
            },
            ..Options::default()
        }
        .env("ROCKETGATE_SESSION__STORE", "redis")
        .env("ROCKETGATE_SESSION__REDIS_CLUSTER_NODES", cluster.urls())
        .env("ROCKETGATE_ADMIN__TOKEN", ADMIN_TOKEN),
    )
    .await;
    let client = stack.client();
    let url = stack.url("/api");
    let mut cookies = Vec::new();
    for _ in 0..4 {
        let browser = stack.browser();
        browser.login("/").await;
        cookies.push(browser.cookie_header());
    }
    assert_eq!(cluster.session_keys().len(), 4);
    stack.standin.reset_stats();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    for cookie in &cookies {
        assert_eq!(
            user_seen(api_get(&client, url.clone(), cookie).await).await,
            "1001"
        );
    }
    assert_eq!(
        stack.standin.stats().refresh_token_grants,
        4,
        "one per session"
    );
    let revoked = client
        .post(stack.url("/oauth2/admin/revoke?user=1001"))
        .header(AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = revoked.json().await.unwrap();
    assert_eq!(body["revoked"], 4);
    assert!(cluster.session_keys().is_empty());
    assert_eq!(api_get(&client, url, &cookies[0]).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_mode_finds_the_master_and_keeps_sessions_there() {
    let sentinel = RedisSentinel::start().await;
    let stack = Stack::with(
        Options::default()
            .env("ROCKETGATE_SESSION__STORE", "redis")
            .env(
                "ROCKETGATE_SESSION__REDIS_SENTINELS",
                format!("redis://{}", sentinel.sentinel_addr),
            )
            .env("ROCKETGATE_SESSION__REDIS_SENTINEL_MASTER", "mymaster")
            // This master has no replica to wait for (tests/it/redis_failover.rs has them).
            .env("ROCKETGATE_SESSION__REDIS_MIN_REPLICAS", "0"),
    )
    .await;
    let browser = stack.browser();
    browser.login("/").await;
    assert_eq!(sentinel.master.session_keys().len(), 1);
    let client = stack.client();
    let cookie = browser.cookie_header();
    assert_eq!(
        user_seen(api_get(&client, stack.url("/api"), &cookie).await).await,
        "1001"
    );
    wait_for_status(&client, &stack.url("/ready"), 200, Duration::from_secs(5)).await;
    browser.get(&stack.url("/oauth2/sign_out")).await;
    assert!(sentinel.master.session_keys().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_with_the_right_id_but_another_key_reads_nothing_even_cached() {
    use base64::Engine as _;
    let redis = RedisServer::start().await;
    let stack = Stack::with(redis_options(&redis)).await;
    let store = stack.app.sessions.redis().expect("redis store").clone();
    let mut session = rocketgate::testkit::session_with(1, None, rocketgate::session::unix_now());
    session.identity.email = None;
    session.identity.preferred_username = None;
    session.tokens.access_token = "secret-access-token".into();
    session.tokens.refresh_token = None;
    let ticket = store.create(&session).await.unwrap();
    let (found, cached) = store.read(&ticket).await.unwrap();
    assert!(
        found.is_some() && cached,
        "the owner's ticket reads it from the cache"
    );
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let forged = rocketgate::session::Ticket::decode(&format!(
        "t1.{}.{}",
        b64.encode(ticket.id()),
        b64.encode([7u8; 32])
    ))
    .unwrap();
    let (found, _) = store.read(&forged).await.unwrap();
    assert!(found.is_none(), "an id alone never reads a session");
}

/// Redis refuses writes between the token call and storing its result (a failover, a full
/// disk): the refresh must not be lost or replayed. The replica that refreshed keeps the lock
/// and stores the tokens once Redis takes writes again; another replica never calls
/// Rocketpunch with the revoked refresh token, and nobody is signed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshed_tokens_redis_will_not_store_are_kept_not_replayed() {
    let redis = RedisServer::start().await;
    let shared = |options: Options| {
        options
            .env("ROCKETGATE_SESSION__STORE", "redis")
            .env("ROCKETGATE_SESSION__REDIS_URL", redis.url())
            .env("ROCKETGATE_SESSION__REDIS_TIMEOUT", "500ms")
            .env(
                "ROCKETGATE_COOKIE__SECRET",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            )
            .env("ROCKETGATE_HEADERS__PASS_ACCESS_TOKEN", "true")
    };
    let a = Stack::with(shared(Options {
        standin: StandInOptions {
            access_token_ttl: Duration::from_secs(8),
            ..Default::default()
        },
        ..Options::default()
    }))
    .await;
    // Replica B: same Redis, same cookie secret, same Rocketpunch (A's stand-in).
    let provider = a.provider;
    let b = Stack::with(
        shared(Options::default())
            .env(
                "ROCKETGATE_PROVIDER__TOKEN_URL",
                format!("http://{provider}/oauth/token"),
            )
            .env(
                "ROCKETGATE_PROVIDER__PROFILE_URL",
                format!("http://{provider}/api/v1/profiles/me"),
            ),
    )
    .await;
    let browser = a.browser();
    browser.login("/").await;
    let cookie = browser.cookie_header();
    let client = a.client();
    let token = |response: reqwest::Response| async move {
        let status = response.status();
        assert_eq!(
            status,
            200,
            "never signed out: {}",
            response.text().await.unwrap()
        );
        let echo: Echo = response.json().await.unwrap();
        echo.header("x-forwarded-access-token").unwrap().to_owned()
    };
    let before = token(api_get(&client, a.url("/api"), &cookie).await).await;
    a.standin.reset_stats();
    tokio::time::sleep(Duration::from_millis(4100)).await; // due (half of 8 s)

    // The profile read after the token call hangs a moment: Redis stops taking writes then.
    a.standin.set_fault(
        rocketgate_demo::FaultEndpoint::Profile,
        Some(rocketgate_demo::Fault::Hang(Duration::from_millis(1500))),
    );
    let refreshing = tokio::spawn(
        client
            .get(a.url("/api"))
            .header(ACCEPT, "application/json")
            .header(COOKIE, &cookie)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    redis.command(&["CONFIG", "SET", "min-replicas-to-write", "1"]);
    let fresh = token(refreshing.await.unwrap().unwrap()).await;
    assert_ne!(fresh, before, "A refreshed and serves the new token");
    a.standin
        .set_fault(rocketgate_demo::FaultEndpoint::Profile, None);
    assert_eq!(a.standin.stats().refresh_token_grants, 1);

    // Meanwhile on B: the old token is still valid, so it is served (or 503): never 401.
    let during = api_get(&b.client(), b.url("/api"), &cookie).await;
    assert!(
        matches!(during.status().as_u16(), 200 | 503),
        "{}",
        during.status()
    );

    redis.command(&["CONFIG", "SET", "min-replicas-to-write", "0"]);
    // A's background task stores the tokens and lets go of the lock.
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.dump().iter().any(|(k, _)| k.ends_with(":lock")) {
        assert!(Instant::now() < deadline, "the lock was never released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // B now reads the stored tokens (after its short back-off from the failed attempt, in
    // which it serves the old token while valid, then 503: never a sign-out).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = api_get(&b.client(), b.url("/api"), &cookie).await;
        if response.status() == 503 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        if token(response).await != before {
            // A's stored tokens (or, if they came due meanwhile, their own refresh).
            break;
        }
        assert!(Instant::now() < deadline, "B never saw the stored refresh");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stats = a.standin.stats();
    assert_eq!(
        stats.token_calls, stats.refresh_token_grants,
        "every token call was granted: the revoked refresh token was never replayed"
    );
}

/// A front proxy that never passes an auth answer's cookie on, in Redis mode: the browser
/// presents its sign-in cookie forever while checks alternate between two replicas, one of
/// which is then replaced by a new process. Rotating refresh tokens, a 1 s rotation grace:
/// every check is 200, nobody signs in again, and each refresh is one token call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_sessions_survive_refreshes_across_replicas_and_a_restart() {
    let redis = RedisServer::start().await;
    let (a, b, c) = (free_port(), free_port(), free_port());
    let backends = backends(a, Duration::from_secs(2)).await;
    let config = replicas_config(
        "replicas-auth",
        a,
        &backends,
        &redis,
        "rotation_grace = \"1s\"\n",
        "",
    );
    let mut first = ready_replica(&config, a, false).await;
    let mut second = ready_replica(&config, b, true).await;
    let client = plain_client();
    let browser = Browser::new(a);
    browser.login("/").await;
    let cookie = browser.cookie_header();
    let check = |proxy: SocketAddr| {
        client
            .get(format!("http://{proxy}/oauth2/auth"))
            .header(ACCEPT, "application/json")
            .header(COOKIE, &cookie)
            .send()
    };
    let refreshes_ok = |metrics: String| {
        metrics
            .lines()
            .find(|l| l.starts_with("rocketgate_refreshes_total{outcome=\"ok\"} "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let metrics = |proxy: SocketAddr| {
        let client = client.clone();
        async move {
            let r = client.get(format!("http://{proxy}/metrics")).send().await;
            r.unwrap().text().await.unwrap()
        }
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut turn = 0usize;
    while backends.standin.stats().refresh_token_grants < 3 {
        let proxy = if turn.is_multiple_of(2) { a } else { b };
        let answer = check(proxy).await.unwrap();
        assert_eq!(answer.status(), 200, "check {turn} at {proxy}");
        assert!(
            answer.headers().get("set-cookie").is_none(),
            "a ticket cookie does not change on refresh"
        );
        turn += 1;
        assert!(Instant::now() < deadline, "three refreshes never happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A restart: the first replica goes, a new process takes its place.
    let mut refreshed = refreshes_ok(metrics(a).await);
    let _ = first.start_kill();
    let _ = first.wait().await;
    let mut third = ready_replica(&config, c, false).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for proxy in [c, b, c] {
        assert_eq!(
            check(proxy).await.unwrap().status(),
            200,
            "after the restart at {proxy}"
        );
    }
    refreshed += refreshes_ok(metrics(b).await) + refreshes_ok(metrics(c).await);
    let stats = backends.standin.stats();
    assert_eq!(stats.authorization_code_grants, 1, "no second sign-in");
    assert_eq!(
        stats.refresh_token_grants as f64, refreshed,
        "one token call per refresh across the replicas"
    );
    for child in [&mut second, &mut third] {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

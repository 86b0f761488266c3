//! Issue-4 hardening through the real server: trusted proxies, key rotation, PKCE, connection
//! and login limits, and no secrets in logs even at trace level.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, COOKIE};
use rocketgate::demo::{StandIn, StandInOptions};
use support::process::{
    TempFile, command, command_under_ulimit, drain, free_port, plain_client, wait_until_ready,
};
use support::redis::{RedisServer, with_redis_sessions};
use support::{Browser, Echo, Options, Stack, location, set_cookies};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;
use tokio::task::JoinHandle;

async fn echo(stack: &Stack, browser: &Browser, headers: &[(&str, &str)]) -> Echo {
    let mut request = browser
        .client
        .get(stack.url("/who"))
        .header(ACCEPT, "application/json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let spoof: &[(&str, &str)] = &[
        ("X-Forwarded-For", "6.6.6.6, 1.2.3.4"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "app.example.com"),
        ("X-Real-IP", "9.9.9.9"),
    ];
    let untrusted =
        Stack::with(Options::default().env("ROCKETGATE_TRUSTED_PROXIES", "10.0.0.0/8")).await;
    let browser = untrusted.browser();
    browser.login("/").await;
    let seen = echo(&untrusted, &browser, spoof).await;
    assert_eq!(seen.all("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(seen.all("x-real-ip"), vec!["127.0.0.1"]);
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        seen.header("x-forwarded-host"),
        Some(untrusted.proxy.to_string().as_str())
    );

    let trusted = Stack::with(
        Options::default().env("ROCKETGATE_TRUSTED_PROXIES", "127.0.0.1/32, 1.2.3.0/24"),
    )
    .await;
    let browser = trusted.browser();
    browser.login("/").await;
    let seen = echo(&trusted, &browser, spoof).await;
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("6.6.6.6, 1.2.3.4, 127.0.0.1")
    );
    assert_eq!(
        seen.header("x-real-ip"),
        Some("6.6.6.6"),
        "rightmost address not in the list"
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-host"), Some("app.example.com"));
}

#[tokio::test]
async fn original_url_headers_never_change_the_route_and_only_trusted_ones_the_return_url() {
    let untrusted = Stack::start().await;
    let client = untrusted.client();
    for (name, value) in [
        ("X-Original-URL", "/ping"),
        ("X-Forwarded-Uri", "/ping"),
        ("X-Rewrite-URL", "/oauth2/userinfo"),
    ] {
        let r = client
            .get(untrusted.url("/private"))
            .header(ACCEPT, "application/json")
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{name} must not reroute");
    }
    let browser = untrusted.browser();
    let start = browser
        .client
        .get(untrusted.url("/oauth2/start"))
        .header("X-Forwarded-Uri", "/from-header")
        .send()
        .await
        .unwrap();
    let back = browser.consent(&location(&start), "1001", true).await;
    assert_eq!(
        location(&browser.get(&location(&back)).await),
        "/",
        "untrusted X-Forwarded-Uri ignored"
    );

    let trusted =
        Stack::with(Options::default().env("ROCKETGATE_TRUSTED_PROXIES", "127.0.0.1")).await;
    let browser = trusted.browser();
    for (header, value, expected) in [
        ("X-Forwarded-Uri", "/from-header?x=1", "/from-header?x=1"),
        ("X-Original-URL", "/original", "/original"),
        ("X-Forwarded-Uri", "//evil.com/", "/"),
    ] {
        let start = browser
            .client
            .get(trusted.url("/oauth2/start"))
            .header(header, value)
            .send()
            .await
            .unwrap();
        let back = browser.consent(&location(&start), "1001", true).await;
        assert_eq!(
            location(&browser.get(&location(&back)).await),
            expected,
            "{header}: {value}"
        );
    }
}

const KEY_OLD: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const KEY_NEW: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

async fn api_status(stack: &Stack, cookie: &str) -> reqwest::Response {
    stack
        .client()
        .get(stack.url("/x"))
        .header(ACCEPT, "application/json")
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rotating_the_cookie_secret_logs_nobody_out() {
    let before = Stack::with(Options::default().env("ROCKETGATE_COOKIE__SECRET", KEY_OLD)).await;
    let browser = before.browser();
    browser.login("/").await;
    let old_cookie = browser.cookie_header();

    let rotated = Stack::with(
        Options::default()
            .env("ROCKETGATE_COOKIE__SECRET", KEY_NEW)
            .env("ROCKETGATE_COOKIE__SECRETS", KEY_OLD),
    )
    .await;
    let response = api_status(&rotated, &old_cookie).await;
    assert_eq!(
        response.status(),
        200,
        "a session sealed with the old key still works"
    );
    let resealed = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("_rocketgate=") && !c.contains("Max-Age=0"))
        .expect("re-issued with the new key");
    let new_cookie = resealed.split(';').next().unwrap().to_owned();
    assert!(
        set_cookies(&api_status(&rotated, &new_cookie).await).is_empty(),
        "no second re-issue"
    );

    let only_new = Stack::with(Options::default().env("ROCKETGATE_COOKIE__SECRET", KEY_NEW)).await;
    assert_eq!(api_status(&only_new, &new_cookie).await.status(), 200);
    assert_eq!(
        api_status(&only_new, &old_cookie).await.status(),
        401,
        "old key retired"
    );
}

#[tokio::test]
async fn pkce_is_on_by_default_and_binds_the_code_to_this_browser() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    let first = browser.get(&stack.url("/")).await;
    let authorize = location(&first);
    let url = reqwest::Url::parse(&authorize).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);

    // A code intercepted on its way back is useless without the verifier in our CSRF cookie.
    let back = browser.consent(&authorize, "1001", true).await;
    let callback = reqwest::Url::parse(&location(&back)).unwrap();
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let stolen = stack
        .client()
        .post(format!("http://{}/oauth/token", stack.provider))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", "demo-client"),
            ("client_secret", "stack-client-secret"),
            ("redirect_uri", &stack.url("/oauth2/callback")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 400);
    let done = browser.get(callback.as_str()).await;
    assert_eq!(done.status(), 302, "the real browser still completes");

    let off = Stack::with(Options::default().env("ROCKETGATE_PROVIDER__PKCE", "false")).await;
    let browser = off.browser();
    let first = browser.get(&off.url("/")).await;
    assert!(!location(&first).contains("code_challenge"));
    assert_eq!(browser.login("/").await.status(), 200);
}

#[tokio::test]
async fn an_oversized_cookie_header_gets_431_and_the_server_stays_up() {
    let stack = Stack::start().await;
    let mut stream = TcpStream::connect(stack.proxy).await.unwrap();
    let big = "a".repeat(64 * 1024);
    let request = format!("GET /x HTTP/1.1\r\nHost: x\r\nCookie: _rocketgate={big}\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&answer[..n]);
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    assert_eq!(
        stack
            .client()
            .get(stack.url("/ping"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Just under the limit still works (and is simply not a session).
    let ok = stack
        .client()
        .get(stack.url("/x"))
        .header(ACCEPT, "application/json")
        .header(COOKIE, format!("_rocketgate={}", "a".repeat(20 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 401);
}

/// Reads until the peer closes the connection; returns how long that took.
async fn time_to_close(stream: &mut TcpStream, bound: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(bound, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("connection still open after {bound:?}"),
        }
    }
}

#[tokio::test]
async fn slow_heads_and_idle_connections_are_closed_separately() {
    let stack = Stack::with(
        Options::default()
            .env("ROCKETGATE_LIMITS__HEADER_READ_TIMEOUT", "400ms")
            .env("ROCKETGATE_LIMITS__IDLE_TIMEOUT", "1500ms"),
    )
    .await;
    // Slowloris: a head that never finishes is cut after header_read_timeout.
    let mut slow = TcpStream::connect(stack.proxy).await.unwrap();
    slow.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let took = time_to_close(&mut slow, Duration::from_secs(5)).await;
    assert!(
        took < Duration::from_millis(1400),
        "slow head closed after {took:?}"
    );

    // A keep-alive connection may idle longer than the head timeout...
    let mut idle = TcpStream::connect(stack.proxy).await.unwrap();
    let ping = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
    idle.write_all(ping).await.unwrap();
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    idle.write_all(ping).await.unwrap();
    let n = idle.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "reused after 800 ms idle"
    );
    // ...and is closed once idle_timeout passes.
    let took = time_to_close(&mut idle, Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(1300) && took < Duration::from_millis(3000),
        "idle closed after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_gets_the_whole_response_before_the_idle_timeout_applies() {
    const IDLE_MS: u64 = 300;
    const BYTES: usize = 8 << 20;
    let stack = Stack::with(
        Options::default().env("ROCKETGATE_LIMITS__IDLE_TIMEOUT", format!("{IDLE_MS}ms")),
    )
    .await;
    let browser = stack.browser();
    browser.login("/").await;
    let mut stream = TcpStream::connect(stack.proxy).await.unwrap();
    let request = format!(
        "GET /_upstream/download?bytes={BYTES} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\n\r\n",
        stack.proxy,
        browser.cookie_header()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // About 3 MiB/s: the proxy has taken the whole body from the upstream (its request is
    // over) well before the client has read it all. The tail left in its buffer waits for
    // the kernel's full send buffer, which wakes a blocked writer only once a good part of
    // it has drained: longer than the idle timeout, while the client reads all along.
    let mut received = Vec::with_capacity(BYTES + 1024);
    let mut buf = vec![0u8; 16 * 1024];
    let started = Instant::now();
    loop {
        // Once the response is sent, the idle connection must be closed, not left hanging.
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("nothing sent, not closed, after {} bytes", received.len()))
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let head_end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&received[..head_end]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        received.len() - head_end,
        BYTES,
        "body bytes received before the proxy closed the connection ({:?} after the request)",
        started.elapsed()
    );
    assert!(started.elapsed() > Duration::from_millis(3 * IDLE_MS));
}

/// `rocketgate demo` started under `ulimit {limit}`, ready; with its address and its log.
async fn demo_under_ulimit(limit: &str) -> (Child, SocketAddr, JoinHandle<String>) {
    let proxy = free_port();
    let mut child = command_under_ulimit(limit, &["demo", "--listen", &proxy.to_string()])
        .spawn()
        .expect("spawn rocketgate");
    let stdout = drain(child.stdout.take());
    drop(drain(child.stderr.take()));
    wait_until_ready(&mut child, &plain_client(), proxy).await;
    (child, proxy, stdout)
}

/// Stops `child` and returns what it logged.
async fn stop(mut child: Child, log: JoinHandle<String>) -> String {
    child.start_kill().unwrap();
    let _ = child.wait().await;
    log.await.unwrap()
}

// Reads /proc/<pid>/limits.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_open_file_soft_limit_is_raised_at_start() {
    // 128 descriptors would cap the proxy at about a hundred connections; the hard limit
    // (20,000 here, 524,288 under systemd) allows far more, and rocketgate takes it.
    const SOFT: u32 = 128;
    const CONNECTIONS: usize = 200;
    let (child, proxy, stdout) = demo_under_ulimit(&format!("-Sn {SOFT}")).await;

    let pid = child.id().expect("running");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files")
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect();
    assert_eq!(
        open_files[0], open_files[1],
        "soft raised to hard: {limits}"
    );
    assert_ne!(open_files[0], SOFT.to_string());

    // More connections held open at once than the old soft limit had descriptors.
    let mut held = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        held.push(TcpStream::connect(proxy).await.unwrap());
    }
    for (i, stream) in held.iter_mut().enumerate() {
        stream
            .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 128];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("connection {i} not served within 10 s"))
            .unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "connection {i}: {}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    let log = stop(child, stdout).await;
    assert!(log.contains("open-file limit raised from=128"), "{log}");

    // When the hard limit itself cannot cover max_connections, it says so at start.
    let (child, _, stdout) = demo_under_ulimit(&format!("-n {SOFT}")).await;
    let log = stop(child, stdout).await;
    assert!(
        log.contains("the open-file limit is too low for limits.max_connections"),
        "{log}"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let stack =
        Stack::with(Options::default().env("ROCKETGATE_LIMITS__MAX_CONNECTIONS", "2")).await;
    let ping = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(stack.proxy).await.unwrap();
        s.write_all(ping).await.unwrap();
        let mut buf = [0u8; 128];
        assert!(s.read(&mut buf).await.unwrap() > 0);
        held.push(s);
    }
    let mut third = TcpStream::connect(stack.proxy).await.unwrap();
    let _ = third.write_all(ping).await;
    let mut buf = [0u8; 128];
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "third connection closed without an answer");
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut s = TcpStream::connect(stack.proxy).await.unwrap();
        let _ = s.write_all(ping).await;
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        if n > 0 {
            again = Some(n);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a freed slot is usable again");
}

#[tokio::test]
async fn one_browser_cannot_pile_up_unbounded_logins() {
    let stack =
        Stack::with(Options::default().env("ROCKETGATE_LIMITS__MAX_LOGINS_PER_CLIENT", "3")).await;
    let browser = stack.browser();
    for _ in 0..3 {
        let r = browser.get(&stack.url("/")).await;
        assert_eq!(set_cookies(&r).len(), 1);
    }
    let fourth = browser.get(&stack.url("/")).await;
    let cookies = set_cookies(&fourth);
    let cleared = cookies
        .iter()
        .filter(|c| c.contains("_csrf_") && c.contains("Max-Age=0"))
        .count();
    assert_eq!(cleared, 3, "{cookies:?}");
    assert_eq!(cookies.len(), 4);
    let jar = browser.cookie_header();
    let pending = jar.matches("_csrf_").count();
    assert_eq!(pending, 1, "{jar}\n{cookies:#?}");
    // The newest login still completes.
    let back = browser.consent(&location(&fourth), "1001", true).await;
    assert_eq!(browser.get(&location(&back)).await.status(), 302);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_carry_no_secret_token_code_or_cookie() {
    trace_logs_carry_no_secret(None).await;
}

/// The same with sessions in a password-protected Redis: neither the password (sent in
/// `AUTH`) nor anything else secret reaches the logs, the Redis client's included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_carry_no_secret_with_redis_sessions() {
    let redis = RedisServer::start_with(&["--requirepass", REDIS_PASSWORD]).await;
    trace_logs_carry_no_secret(Some(&redis)).await;
}

const REDIS_PASSWORD: &str = "log-test-redis-password-5d1e";

async fn trace_logs_carry_no_secret(redis: Option<&RedisServer>) {
    support::init_crypto();
    let proxy = free_port();
    let provider_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let provider = provider_listener.local_addr().unwrap();
    let upstream = upstream_listener.local_addr().unwrap();
    let client_secret = "log-test-client-secret-7f3a9c";
    let standin = StandIn::new(StandInOptions {
        client_id: "demo-client".into(),
        client_secret: client_secret.into(),
        redirect_uri: format!("http://{proxy}/oauth2/callback"),
        access_token_ttl: Duration::from_secs(4),
        ..StandInOptions::default()
    });
    standin.spawn(provider_listener);
    rocketgate::demo::spawn_upstream(upstream_listener);
    let toml = rocketgate::cli::demo_config(proxy, upstream, provider, client_secret);
    let cookie_secret = toml
        .lines()
        .find_map(|l| l.strip_prefix("secret = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    let toml = match redis {
        None => toml,
        Some(redis) => with_redis_sessions(
            &toml,
            &format!("redis://:{REDIS_PASSWORD}@{}/0", redis.addr),
        ),
    };
    let config = TempFile::new("logs", &toml);
    let mut child = command(&["--config", config.0.to_str().unwrap()])
        .env("RUST_LOG", "trace")
        .env("ROCKETGATE_PROVIDER__TIMEOUT", "5s")
        .spawn()
        .unwrap();
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    wait_until_ready(&mut child, &plain_client(), proxy).await;

    let browser = Browser::new(proxy);
    let first = browser.get(&format!("http://{proxy}/start-here")).await;
    let authorize = location(&first);
    let state = reqwest::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let csrf_cookie = browser.cookie_header();
    let back = browser.consent(&authorize, "1001", true).await;
    let done = browser.get(&location(&back)).await;
    assert_eq!(done.status(), 302);
    let mut cookie_values: Vec<String> = Vec::new();
    cookie_values.push(browser.cookie("_rocketgate").expect("session cookie"));
    // Refresh: tokens are due 2-3 s after issue.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let refreshed = browser.get(&format!("http://{proxy}/after-refresh")).await;
    assert_eq!(refreshed.status(), 200);
    assert!(
        standin.stats().refresh_token_grants >= 1,
        "a refresh happened"
    );
    cookie_values.push(browser.cookie("_rocketgate").expect("refreshed cookie"));
    let out = browser
        .get(&format!("http://{proxy}/oauth2/sign_out"))
        .await;
    assert_eq!(out.status(), 302);

    std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let logs = format!("{}{}", stdout.await.unwrap(), stderr.await.unwrap());
    assert!(logs.contains("signed in"), "logs were captured:\n{logs}");
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "trace level was on"
    );

    let mut secrets: Vec<(String, String)> = vec![
        ("client secret".into(), client_secret.into()),
        ("cookie secret".into(), cookie_secret),
        ("state".into(), state),
    ];
    for value in csrf_cookie
        .split("; ")
        .filter_map(|p| p.split_once('=').map(|(_, v)| v.to_owned()))
    {
        secrets.push(("csrf cookie".into(), value));
    }
    for value in cookie_values {
        secrets.push(("session cookie".into(), value));
    }
    for token in standin.issued_secrets() {
        secrets.push(("issued code or token".into(), token));
    }
    if redis.is_some() {
        secrets.push(("redis password".into(), REDIS_PASSWORD.into()));
        assert!(logs.contains("Redis session store reachable"), "{logs}");
    }
    assert!(secrets.len() >= 8, "{secrets:?}");
    for (what, secret) in secrets {
        // Long secrets are checked by a distinctive slice too, in case a log line cut them.
        let probe = &secret[..secret.len().min(24)];
        assert!(!logs.contains(probe), "{what} appears in the logs");
    }
}

//! Even at trace level, the logs carry no secret, token, code, state or cookie value, with cookie
//! or Redis sessions.

use std::time::Duration;

use crate::support::process::{
    TempFile, command, drain, free_port, plain_client, wait_until_ready,
};
use crate::support::redis::{RedisServer, with_redis_sessions};
use crate::support::{Browser, location};
use rocketgate_demo::{StandIn, StandInOptions};

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
    crate::support::init_crypto();
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
    rocketgate_demo::spawn_upstream(upstream_listener);
    let toml = rocketgate_demo::proxy_config(proxy, upstream, provider, client_secret);
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
    assert!(
        logs.contains("event=\"sign_in\""),
        "logs were captured:\n{logs}"
    );
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

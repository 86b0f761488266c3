//! The real binary: graceful shutdown on SIGTERM (fail `/ready`, keep serving for
//! `shutdown_delay`, drain in-flight requests, exit 0), refusing a bad configuration at
//! start-up, `check-config` and `generate-secret`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::process::{
    TempFile, command, drain, free_port, plain_client, run, wait_for_status, wait_until_ready,
};
use crate::support::{Browser, init_crypto};
use base64::Engine as _;
use reqwest::header::ACCEPT;
use rocketgate_demo::{StandIn, StandInOptions, handle_upstream, serve};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::Notify;

const CLIENT_SECRET: &str = "shutdown-client-secret";

/// The stand-in provider and the demo upstream, in this process, for a proxy at `proxy`.
/// The upstream signals `slow_started` whenever a `/_upstream/slow` request reaches it.
struct Backends {
    provider: SocketAddr,
    upstream: SocketAddr,
    slow_started: Arc<Notify>,
    _standin: Arc<StandIn>,
}

async fn backends(proxy: SocketAddr) -> Backends {
    init_crypto();
    let provider_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let provider = provider_listener.local_addr().unwrap();
    let upstream = upstream_listener.local_addr().unwrap();
    let standin = StandIn::new(StandInOptions {
        client_id: "demo-client".into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uri: format!("http://{proxy}/oauth2/callback"),
        ..StandInOptions::default()
    });
    standin.spawn(provider_listener);
    let slow_started = Arc::new(Notify::new());
    let notify = slow_started.clone();
    // The demo upstream (`spawn_upstream` serves exactly `handle_upstream`), with a hook so
    // the test knows when the slow request is in flight instead of sleeping.
    serve(upstream_listener, move |req| {
        if req.uri().path() == "/_upstream/slow" {
            notify.notify_one();
        }
        handle_upstream(req)
    });
    Backends {
        provider,
        upstream,
        slow_started,
        _standin: standin,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_fails_ready_keeps_serving_drains_and_exits_zero() {
    let proxy = free_port();
    let backends = backends(proxy).await;
    let config = TempFile::new(
        "shutdown",
        &rocketgate_demo::proxy_config(proxy, backends.upstream, backends.provider, CLIENT_SECRET),
    );
    let mut child = command(&["--config", config.0.to_str().unwrap()])
        .env("ROCKETGATE_SHUTDOWN_DELAY", "1s")
        .env("ROCKETGATE_SHUTDOWN_TIMEOUT", "10s")
        .spawn()
        .expect("spawn rocketgate");
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let client = plain_client();
    wait_until_ready(&mut child, &client, proxy).await;

    let signed_in = Browser::new(proxy);
    assert_eq!(
        signed_in.login("/dash").await.status(),
        200,
        "signed-in page"
    );
    let cookie = signed_in.cookie_header();
    assert!(cookie.contains("_rocketgate="), "{cookie}");
    let browser = signed_in.client.clone();
    let slow_url = format!("http://{proxy}/_upstream/slow?ms=2500");
    let slow_browser = browser.clone();
    let slow = tokio::spawn(async move {
        let started = Instant::now();
        let response = slow_browser
            .get(slow_url)
            .header(ACCEPT, "application/json")
            .send()
            .await;
        let response = response.expect("slow request got an answer");
        let status = response.status();
        let body = response.text().await.expect("slow body");
        (status, body, started.elapsed())
    });
    tokio::time::timeout(Duration::from_secs(10), backends.slow_started.notified())
        .await
        .expect("slow request reached the upstream");

    let pid = child.id().expect("child pid").to_string();
    let sent = Instant::now();
    let kill = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(&pid)
        .status()
        .expect("run kill");
    assert!(kill.success(), "kill -TERM {pid} failed");

    // During the delay: not ready, but alive and still serving, on new connections too.
    wait_for_status(
        &client,
        &format!("http://{proxy}/ready"),
        503,
        Duration::from_millis(800),
    )
    .await;
    let ping = client
        .get(format!("http://{proxy}/ping"))
        .send()
        .await
        .expect("/ping during the delay");
    assert_eq!(ping.status(), 200, "/ping during the delay");
    let fresh = plain_client();
    let served = fresh
        .get(format!("http://{proxy}/after-sigterm?n=1"))
        .header(ACCEPT, "application/json")
        // The signed-in browser's cookie, sent on a brand-new connection.
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .expect("new request during the delay");
    assert_eq!(served.status(), 200, "new request during the delay");
    let echo: crate::support::Echo = served.json().await.unwrap();
    assert_eq!(echo.uri, "/after-sigterm?n=1");
    assert_eq!(echo.header("x-forwarded-user"), Some("1001"));
    assert!(
        sent.elapsed() < Duration::from_millis(1000),
        "checks ran past the 1 s delay ({:?}); they prove nothing about the delay",
        sent.elapsed()
    );

    // After the delay the listener closes while the slow request is still draining.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if tokio::net::TcpStream::connect(proxy).await.is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "listener still open {:?} after SIGTERM",
            sent.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !slow.is_finished(),
        "listener closed only after the in-flight request ended; drain not observed"
    );
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "listener closed {:?} after SIGTERM, before the 1 s shutdown_delay",
        sent.elapsed()
    );

    let (status, body, took) = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .expect("slow request finished")
        .unwrap();
    assert_eq!(status, 200, "in-flight request during shutdown: {body}");
    assert_eq!(body, "slow done");
    assert!(took >= Duration::from_millis(2500), "{took:?}");

    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("rocketgate exits after draining")
        .unwrap();
    let stdout = stdout.await.unwrap();
    let stderr = stderr.await.unwrap();
    assert!(
        exit.success(),
        "exit status {exit}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "exit took {:?} after SIGTERM",
        sent.elapsed()
    );
}

fn config_with_secret(proxy: SocketAddr, secret: &str) -> String {
    let toml = rocketgate_demo::proxy_config(proxy, free_port(), free_port(), CLIENT_SECRET);
    let mut replaced = 0;
    let lines: Vec<String> = toml
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("secret = ") {
                replaced += 1;
                format!("secret = \"{secret}\"")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert_eq!(
        replaced, 1,
        "demo config has one cookie secret line:\n{toml}"
    );
    lines.join("\n")
}

fn check_config(path: &Path) -> Command {
    command(&["check-config", "--config", path.to_str().unwrap()])
}

#[tokio::test]
async fn bad_config_is_refused_and_the_cli_helpers_work() {
    const PROBLEM: &str = "cookie.secret: must decode to 32 bytes, got 5";
    let bound = Duration::from_secs(20);

    // The proxy with a 5-byte secret: refuses to start, names the problem, never listens.
    let proxy = free_port();
    let bad = TempFile::new("bad", &config_with_secret(proxy, "aGVsbG8="));
    let started = run(command(&["--config", bad.0.to_str().unwrap()]), bound).await;
    assert!(
        !started.status.success(),
        "started with a bad secret: {}",
        started.status
    );
    assert!(
        started.stderr.contains(PROBLEM),
        "stderr: {}",
        started.stderr
    );
    assert!(
        tokio::net::TcpStream::connect(proxy).await.is_err(),
        "something listens on {proxy}"
    );

    // check-config: 1 and the problem for the bad file, 0 for a good one.
    let checked = run(check_config(&bad.0), bound).await;
    assert_eq!(checked.status.code(), Some(1), "{}", checked.stderr);
    assert!(
        checked.stderr.contains(PROBLEM),
        "stderr: {}",
        checked.stderr
    );

    let good = TempFile::new(
        "good",
        &rocketgate_demo::proxy_config(proxy, free_port(), free_port(), CLIENT_SECRET),
    );
    let checked = run(check_config(&good.0), bound).await;
    assert_eq!(
        checked.status.code(),
        Some(0),
        "valid config refused: {}",
        checked.stderr
    );

    // generate-secret: base64 of 32 fresh bytes that check-config accepts as cookie.secret.
    let first = run(command(&["generate-secret"]), bound).await;
    let second = run(command(&["generate-secret"]), bound).await;
    assert!(first.status.success() && second.status.success());
    let secret = first.stdout.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .unwrap_or_else(|e| panic!("not base64: {secret:?}: {e}"));
    assert_eq!(bytes.len(), 32);
    assert_ne!(secret, second.stdout.trim(), "secrets must be random");
    let generated = TempFile::new("generated", &config_with_secret(proxy, secret));
    let checked = run(check_config(&generated.0), bound).await;
    assert_eq!(
        checked.status.code(),
        Some(0),
        "generated secret refused: {}",
        checked.stderr
    );
}

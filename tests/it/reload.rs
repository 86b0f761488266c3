//! Live reload of the real binary: by a change to the file (valid, invalid, restart-only) and
//! by SIGHUP (cookie secret rotation), while a steady load runs over a browser's pooled
//! connections and one kept-alive connection. No request may fail and no session may end
//! but by the rotation that is meant to end it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rocketgate_demo::{StandIn, StandInOptions, random_secret, spawn_upstream};
use tokio::process::Child;

use crate::support::process::{Tail, TempFile, command, free_port, plain_client, wait_until_ready};
use crate::support::{Browser, Echo, location};

/// A rocketgate child process reading `file`, with its log, in front of one echo upstream
/// that routes tell apart by the base path of their upstream URL.
struct Gate {
    child: Child,
    proxy: SocketAddr,
    provider: SocketAddr,
    upstream: SocketAddr,
    log: Tail,
    file: TempFile,
}

const CLIENT_SECRET: &str = "reload-test-client-secret";

impl Gate {
    async fn start(interval: &str, secrets: &[&str], body: &str) -> Gate {
        crate::support::init_crypto();
        let proxy = free_port();
        let provider_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let provider = provider_listener.local_addr().unwrap();
        let upstream = upstream_listener.local_addr().unwrap();
        StandIn::new(StandInOptions {
            client_id: "demo-client".into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uri: format!("http://{proxy}/oauth2/callback"),
            ..StandInOptions::default()
        })
        .spawn(provider_listener);
        spawn_upstream(upstream_listener);
        let file = TempFile::new(
            "reload",
            &text(proxy, provider, upstream, interval, proxy, secrets, body),
        );
        let mut child = command(&["--config", file.0.to_str().unwrap()])
            .spawn()
            .unwrap();
        let log = Tail::new(child.stdout.take());
        let _stderr = crate::support::process::drain(child.stderr.take());
        wait_until_ready(&mut child, &plain_client(), proxy).await;
        Gate {
            child,
            proxy,
            provider,
            upstream,
            log,
            file,
        }
    }

    /// Rewrites the file; `listen` stays unless given.
    fn write(&self, interval: &str, listen: Option<SocketAddr>, secrets: &[&str], body: &str) {
        let text = text(
            listen.unwrap_or(self.proxy),
            self.provider,
            self.upstream,
            interval,
            self.proxy,
            secrets,
            body,
        );
        // Written whole and renamed, as editors and ConfigMap updates do, so a check never
        // reads half a file.
        let tmp = self.file.0.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.file.0).unwrap();
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }

    fn hang_up(&self) {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &self.child.id().unwrap().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits until the `n`th occurrence of `needle` in the log (bounded), so a test
    /// continues once a reload has been handled, not after a guessed pause.
    async fn wait_for_log(&self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.log.text();
            if text.matches(needle).count() >= n {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not appear {n} time(s) in:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn metric(&self, line_start: &str) -> String {
        let text = plain_client()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("{line_start} not in\n{text}"))
            .to_owned()
    }
}

fn text(
    listen: SocketAddr,
    provider: SocketAddr,
    upstream: SocketAddr,
    interval: &str,
    public: SocketAddr,
    secrets: &[&str],
    body: &str,
) -> String {
    let secrets = secrets
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let body = body.replace("{upstream}", &upstream.to_string());
    format!(
        r#"
listen = "{listen}"
public_url = "http://{public}"
config_reload_interval = "{interval}"

[provider]
client_id = "demo-client"
client_secret = "{CLIENT_SECRET}"
authorize_url = "http://{provider}/oauth/authorize"
token_url = "http://{provider}/oauth/token"
profile_url = "http://{provider}/api/v1/profiles/me"

[cookie]
secrets = [{secrets}]
secure = false

{body}
"#
    )
}

/// `/a` to the app at `base`, and `/b` for the group `ops`, whose members are `ops`.
fn routes(base: &str, ops: &str) -> String {
    format!(
        r#"
[[routes]]
path = "/a"
upstream = "http://{{upstream}}/{base}"

[[routes]]
path = "/b"
upstream = "http://{{upstream}}/b"
allowed_groups = ["ops"]

[groups]
ops = {{ users = ["{ops}"] }}
"#
    )
}

async fn echo(browser: &Browser, url: &str) -> (u16, Option<Echo>) {
    let r = browser
        .client
        .get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status != 200 {
        return (status, None);
    }
    let text = r.text().await.unwrap();
    let seen = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
    (status, Some(seen))
}

/// Which app `/a` reaches now.
async fn base_of_a(gate: &Gate, browser: &Browser) -> String {
    match echo(browser, &gate.url("/a/which")).await {
        (200, Some(seen)) => seen.uri.trim_end_matches("/a/which").to_owned(),
        (status, _) => panic!("/a answered {status}"),
    }
}

async fn wait_for_base(gate: &Gate, browser: &Browser, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while base_of_a(gate, browser).await != base {
        assert!(Instant::now() < deadline, "/a never reached {base}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Requests `/a/load` until stopped: from `browsers` over their pooled connections, and over
/// one HTTP/1.1 connection kept alive throughout. Every answer must be a 200 from one of the
/// apps `/a` is ever routed to.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    async fn start(gate: &Gate, browser: &Browser) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let (client, url) = (browser.client.clone(), gate.url("/a/load"));
            let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let answer = client
                        .get(&url)
                        .header("Accept", "application/json")
                        .send()
                        .await;
                    let verdict = match answer {
                        Ok(r) if r.status() == 200 => match r.json::<Echo>().await {
                            Ok(seen) if seen.uri.ends_with("/a/load") => None,
                            Ok(seen) => Some(format!("unexpected uri {}", seen.uri)),
                            Err(e) => Some(format!("body: {e}")),
                        },
                        Ok(r) => Some(format!("status {}", r.status())),
                        Err(e) => Some(format!("transport: {e}")),
                    };
                    match verdict {
                        None => done.fetch_add(1, Ordering::Relaxed),
                        Some(why) => {
                            failures.lock().unwrap().push(why);
                            0
                        }
                    };
                }
            }));
        }
        // One connection for the whole test: a reload must not close it.
        let stream = tokio::net::TcpStream::connect(gate.proxy).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let cookie = browser.cookie_header();
        let host = gate.proxy.to_string();
        let (stop2, done2, failures2) = (stop.clone(), done.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            while !stop2.load(Ordering::Relaxed) {
                let req = http::Request::get("/a/kept")
                    .header("host", &host)
                    .header("cookie", &cookie)
                    .header("accept", "application/json")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let outcome = match sender.send_request(req).await {
                    Ok(r) if r.status() == 200 => r
                        .into_body()
                        .collect()
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Ok(r) => Err(format!("kept connection: status {}", r.status())),
                    Err(e) => Err(format!("kept connection: {e}")),
                };
                match outcome {
                    Ok(()) => {
                        done2.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(why) => {
                        failures2.lock().unwrap().push(why);
                        return;
                    }
                }
            }
        }));
        Load {
            stop,
            done,
            failures,
            tasks,
        }
    }

    /// Stops the load; returns how many requests succeeded, failing on any that did not.
    async fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let failures = self.failures.lock().unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:?}");
        self.done.load(Ordering::Relaxed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_applies_invalid_is_refused_and_restart_only_keys_wait() {
    let secret = random_secret();
    let secrets = [secret.as_str()];
    let gate = Gate::start("100ms", &secrets, &routes("one", "1002")).await;
    let ada = Browser::new(gate.proxy);
    assert_eq!(ada.login("/a/start").await.status(), 200);
    assert_eq!(base_of_a(&gate, &ada).await, "/one");
    assert_eq!(
        echo(&ada, &gate.url("/b/x")).await.0,
        403,
        "ada is not in ops"
    );
    assert_eq!(
        echo(&ada, &gate.url("/c")).await.0,
        404,
        "no route, no default"
    );
    let load = Load::start(&gate, &ada).await;

    // A valid change: a new app for /a, ada in ops, a new route.
    let body = format!(
        "{}\n[[routes]]\npath = \"/c\"\nupstream = \"http://{{upstream}}/c\"\n",
        routes("two", "1001")
    );
    gate.write("100ms", None, &secrets, &body);
    wait_for_base(&gate, &ada, "/two").await;
    assert_eq!(echo(&ada, &gate.url("/b/x")).await.0, 200, "ada now in ops");
    assert_eq!(echo(&ada, &gate.url("/c")).await.0, 200, "the new route");
    gate.wait_for_log("configuration reloaded", 1).await;
    assert_eq!(
        gate.metric("rocketgate_config_reloads_total{result=\"applied\"}")
            .await,
        "rocketgate_config_reloads_total{result=\"applied\"} 1"
    );

    // An invalid file: refused with each problem by key; the previous one keeps serving.
    let broken = routes("three", "1001").replace("http://{upstream}/three", "ftp://nowhere");
    let broken = format!("{broken}\n[access]\nallowed_email_domains = [\"not a domain\"]\n");
    gate.write("100ms", None, &secrets, &broken);
    let log = gate.wait_for_log("configuration reload refused", 1).await;
    assert!(log.contains("routes[0].upstream"), "{log}");
    assert!(log.contains("access.allowed_email_domains"), "{log}");
    assert_eq!(base_of_a(&gate, &ada).await, "/two");
    assert_eq!(echo(&ada, &gate.url("/c")).await.0, 200);
    assert_eq!(
        gate.metric("rocketgate_config_reloads_total{result=\"refused\"}")
            .await,
        "rocketgate_config_reloads_total{result=\"refused\"} 1"
    );

    // A restart-only key beside a valid change: the change applies, the key waits.
    let elsewhere = free_port();
    gate.write("100ms", Some(elsewhere), &secrets, &routes("three", "1001"));
    wait_for_base(&gate, &ada, "/three").await;
    let log = gate
        .wait_for_log("listen changed but needs a restart", 1)
        .await;
    assert!(
        tokio::net::TcpStream::connect(elsewhere).await.is_err(),
        "the new listen address is not bound: {log}"
    );
    assert_eq!(echo(&ada, &gate.url("/c")).await.0, 404, "route removed");
    let hash = rocketgate::reload::content_hash(&std::fs::read(&gate.file.0).unwrap());
    assert_eq!(
        gate.metric("rocketgate_config_info").await,
        format!("rocketgate_config_info{{hash=\"{hash}\"}} 1")
    );

    let served = load.finish().await;
    assert!(served > 50, "the load ran: {served} requests");
    // The session lived through every reload.
    assert_eq!(echo(&ada, &gate.url("/a/end")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_rotates_cookie_secrets_without_a_file_check() {
    let (old, new) = (random_secret(), random_secret());
    let gate = Gate::start("0s", &[&old], &routes("one", "1001")).await;
    let ada = Browser::new(gate.proxy);
    assert_eq!(ada.login("/a/start").await.status(), 200);
    let sealed_with_old = ada.cookie("_rocketgate").expect("session cookie");
    let load = Load::start(&gate, &ada).await;

    // With checks off, an edit alone changes nothing (checked after a pause: an absence
    // has no event to wait for).
    gate.write("0s", None, &[&new, &old], &routes("two", "1001"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(base_of_a(&gate, &ada).await, "/one");
    gate.hang_up();
    gate.wait_for_log("configuration reloaded", 1).await;
    assert_eq!(base_of_a(&gate, &ada).await, "/two");
    // ada's cookie, sealed with the old key, still opens, and comes back sealed with the new.
    assert_eq!(echo(&ada, &gate.url("/a/x")).await.0, 200);
    assert_ne!(ada.cookie("_rocketgate").unwrap(), sealed_with_old);
    let grace = Browser::new(gate.proxy);
    assert_eq!(grace.login_as("/a/start", "1002").await.status(), 200);

    let served = load.finish().await;
    assert!(served > 10, "the load ran: {served} requests");

    // The old key retired: a cookie still sealed with it no longer opens (the point of
    // rotating); sessions in use were re-sealed and stay.
    gate.write("0s", None, &[&new], &routes("two", "1001"));
    gate.hang_up();
    gate.wait_for_log("configuration reloaded", 2).await;
    let stale = plain_client()
        .get(gate.url("/a/x"))
        .header("cookie", format!("_rocketgate={sealed_with_old}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        stale.status(),
        302,
        "a cookie under the retired key signs in again"
    );
    assert!(location(&stale).contains("/oauth/authorize"));
    assert_eq!(echo(&ada, &gate.url("/a/x")).await.0, 200);
    assert_eq!(echo(&grace, &gate.url("/a/x")).await.0, 200);
}

/// `access.allowed_emails_file` is read at start and again whenever its contents change,
/// with the config file itself unchanged: an edited list takes effect at the next check. A
/// line that is not an address is refused by its line number, and the previous list keeps
/// serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_allowed_emails_file_takes_effect_without_a_restart() {
    let list = TempFile::new("allowed-emails", "# the team\nada@example.com\n");
    let body = format!(
        "[access]\nallowed_emails_file = {:?}\n\n[[routes]]\npath = \"/\"\nupstream = \"http://{{upstream}}\"\n",
        list.0.display().to_string()
    );
    let gate = Gate::start("100ms", &[&random_secret()], &body).await;
    let ada = Browser::new(gate.proxy);
    assert_eq!(ada.login("/").await.status(), 200);
    assert_eq!(echo(&ada, &gate.url("/x")).await.0, 200);

    let rewrite = |text: &str| {
        let tmp = list.0.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &list.0).unwrap();
    };
    rewrite("grace@example.org\n");
    gate.wait_for_log("configuration reloaded", 1).await;
    assert_eq!(
        echo(&ada, &gate.url("/x")).await.0,
        403,
        "ada left the list"
    );

    rewrite("grace@example.org\nada@example.com, bob@example.com\n");
    let log = gate.wait_for_log("configuration reload refused", 1).await;
    assert!(
        log.contains(":2: `ada@example.com, bob@example.com` is not one email address"),
        "{log}"
    );
    assert_eq!(
        echo(&ada, &gate.url("/x")).await.0,
        403,
        "the previous list still serves"
    );

    rewrite("ada@example.com\n");
    gate.wait_for_log("configuration reloaded", 2).await;
    assert_eq!(echo(&ada, &gate.url("/x")).await.0, 200);
}

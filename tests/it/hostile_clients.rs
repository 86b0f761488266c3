//! What a hostile client must not be able to do: fake an upstream outage with a broken body,
//! lock a user out or sign them out from another site, slip a request past Host framing, or
//! strip the request id; and what a bad or reused sign-in code looks like to the user.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::process::{Tail, command, drain, free_port, plain_client, wait_until_ready};
use crate::support::redis::RedisServer;
use crate::support::{Browser, Echo, HTML, Options, Stack, location, set_cookies};
use reqwest::header::{ACCEPT, COOKIE, ORIGIN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Broken request bodies, each framed as chunked (the last one ends early on purpose).
const BROKEN_CHUNKED: &[(&str, &str)] = &[
    ("a chunk size that is not hex", "zz\r\nhello\r\n0\r\n\r\n"),
    ("a negative chunk size", "-5\r\nhello\r\n0\r\n\r\n"),
    ("a 0x-prefixed chunk size", "0x5\r\nhello\r\n0\r\n\r\n"),
    (
        "a 20-digit chunk size",
        "ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    ),
    (
        "more data than the chunk declares",
        "5\r\nhello, world\r\n0\r\n\r\n",
    ),
    ("no CRLF after the chunk data", "5\r\nhelloX0\r\n\r\n"),
    ("LF-only chunk lines", "5\nhello\n0\n\n"),
];

/// Sends `head` + `body` on a fresh connection, half-closes it when `hang_up`, and returns
/// what came back before the proxy closed the connection (bounded).
async fn raw_exchange(proxy: SocketAddr, head: &str, body: &str, hang_up: bool) -> String {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    if hang_up {
        stream.shutdown().await.unwrap();
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the proxy answers and closes in time");
    String::from_utf8_lossy(&answer).into_owned()
}

fn chunked_head(proxy: SocketAddr, path: &str, cookie: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {proxy}\r\nAccept: application/json\r\nCookie: {cookie}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

/// Every broken body on `path` (signed in with `cookie`, or a skip route) gets 400 in JSON,
/// never a 502, and the metrics count client errors only.
async fn broken_bodies_are_400(stack: &Stack, path: &str, cookie: &str) {
    for (what, body) in BROKEN_CHUNKED {
        let answer = raw_exchange(
            stack.proxy,
            &chunked_head(stack.proxy, path, cookie),
            body,
            false,
        )
        .await;
        assert_eq!(status_of(&answer), 400, "{what}: {answer}");
        assert!(answer.contains("\"bad_request\""), "{what}: {answer}");
        assert!(!answer.contains("upstream"), "{what}: {answer}");
    }
    // A client that declares 100 bytes, sends 10 and hangs up.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nCookie: {cookie}\r\n\
         Content-Length: 100\r\n\r\n",
        stack.proxy
    );
    let answer = raw_exchange(stack.proxy, &head, "0123456789", true).await;
    if !answer.is_empty() {
        assert_eq!(status_of(&answer), 400, "closed mid-body: {answer}");
    }
    let metrics = stack.metrics().await;
    assert!(
        !metrics.contains("class=\"5xx\""),
        "no broken body may count as a server error:\n{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("class=\"4xx\"") && l.contains("route=\"proxy\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn broken_request_bodies_are_the_clients_fault_on_every_path() {
    let stack =
        Stack::with(Options::default().env("ROCKETGATE_ACCESS__SKIP_AUTH_ROUTES", "^/public/"))
            .await;
    let browser = stack.browser();
    assert_eq!(browser.login("/").await.status(), 200);
    broken_bodies_are_400(&stack, "/upload", &browser.cookie_header()).await;
    broken_bodies_are_400(&stack, "/public/upload", "").await;
    // A sound body still goes through afterwards.
    let ok = browser
        .client
        .post(stack.url("/upload"))
        .header(ACCEPT, "application/json")
        .body("fine")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn broken_request_bodies_are_the_clients_fault_with_redis_sessions() {
    let redis = RedisServer::start().await;
    let stack = Stack::with(
        Options::default()
            .env("ROCKETGATE_SESSION__STORE", "redis")
            .env("ROCKETGATE_SESSION__REDIS_URL", redis.url()),
    )
    .await;
    let browser = stack.browser();
    assert_eq!(browser.login("/").await.status(), 200);
    broken_bodies_are_400(&stack, "/upload", &browser.cookie_header()).await;
}

/// An upstream that never answers and counts connections opened and closed by the proxy.
async fn silent_upstream() -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (opened, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (o, c) = (opened.clone(), closed.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            o.fetch_add(1, Ordering::SeqCst);
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (addr, opened, closed)
}

#[tokio::test]
async fn an_upstream_connection_that_carried_half_a_body_is_closed_not_reused() {
    let (upstream, opened, closed) = silent_upstream().await;
    let stack = Stack::with(Options {
        upstream: Some(upstream),
        ..Options::default().env("ROCKETGATE_ACCESS__SKIP_AUTH_ROUTES", "^/public/")
    })
    .await;
    // A body whose second chunk is broken: the head and the first chunk reach the upstream.
    let body = "5\r\nhello\r\nzz\r\n";
    let answer = raw_exchange(
        stack.proxy,
        &chunked_head(stack.proxy, "/public/x", ""),
        body,
        false,
    )
    .await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    for _ in 0..200 {
        if closed.load(Ordering::SeqCst) == opened.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(opened.load(Ordering::SeqCst), 1);
    assert_eq!(
        closed.load(Ordering::SeqCst),
        1,
        "the connection with the half-sent body was closed"
    );
}

#[tokio::test]
async fn a_broken_body_is_logged_as_a_client_error_not_an_upstream_failure() {
    let proxy = free_port();
    let mut child = command(&["demo", "--listen", &proxy.to_string()])
        .spawn()
        .expect("spawn rocketgate demo");
    let log = Tail::new(child.stdout.take());
    drop(drain(child.stderr.take()));
    wait_until_ready(&mut child, &plain_client(), proxy).await;
    let browser = Browser::new(proxy);
    assert_eq!(browser.login("/").await.status(), 200);
    let answer = raw_exchange(
        proxy,
        &chunked_head(proxy, "/upload", &browser.cookie_header()),
        "zz\r\n",
        false,
    )
    .await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    let logs = log
        .wait_for("path=/upload status=400", Duration::from_secs(10))
        .await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
    assert!(logs.contains("path=/upload status=400"), "{logs}");
    assert!(!logs.contains("upstream unreachable"), "{logs}");
    assert!(
        !logs
            .lines()
            .any(|l| l.contains("WARN") && l.contains("request failed")),
        "{logs}"
    );
}

/// A session cookie value for demo user `user` on `stack`.
async fn session_of(stack: &Stack, user: &str) -> String {
    let browser = stack.browser();
    assert_eq!(browser.login_as("/", user).await.status(), 200);
    browser.cookie("_rocketgate").expect("session cookie")
}

async fn who(stack: &Stack, cookie: &str) -> (u16, Vec<String>, Option<String>) {
    let r = stack
        .client()
        .get(stack.url("/who"))
        .header(ACCEPT, "application/json")
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let set = set_cookies(&r);
    let user = if status == 200 {
        r.json::<Echo>()
            .await
            .unwrap()
            .header("x-forwarded-user")
            .map(str::to_owned)
    } else {
        None
    };
    (status, set, user)
}

#[tokio::test]
async fn a_planted_cookie_of_our_name_neither_hides_nor_clears_the_real_one() {
    let stack = Stack::start().await;
    let real = session_of(&stack, "1001").await;
    for jar in [
        format!("_rocketgate=junk; _rocketgate={real}"),
        format!("_rocketgate={real}; _rocketgate=junk"),
        format!("_rocketgate=; _rocketgate={real}; _rocketgate=a.b.c"),
    ] {
        let (status, set, user) = who(&stack, &jar).await;
        assert_eq!(status, 200, "{jar}");
        assert_eq!(user.as_deref(), Some("1001"));
        assert!(set.is_empty(), "nothing is cleared or rewritten: {set:?}");
    }
    // Junk alone is still "not signed in", and only then is the cookie cleared.
    let (status, set, _) = who(&stack, "_rocketgate=junk; _rocketgate=more-junk").await;
    assert_eq!(status, 401);
    assert!(
        set.iter().any(|c| c.starts_with("_rocketgate=;")),
        "{set:?}"
    );

    // Two sessions that both open: the newer sign-in wins, whatever the order.
    let older = session_of(&stack, "1002").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let newer = session_of(&stack, "1001").await;
    for jar in [
        format!("_rocketgate={older}; _rocketgate={newer}"),
        format!("_rocketgate={newer}; _rocketgate={older}"),
    ] {
        let (status, _, user) = who(&stack, &jar).await;
        assert_eq!((status, user.as_deref()), (200, Some("1001")), "{jar}");
    }
}

#[tokio::test]
async fn a_planted_chunk_does_not_break_a_split_session() {
    let stack = Stack::with(Options {
        standin: rocketgate_demo::StandInOptions {
            access_token_len: 6000,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let browser = stack.browser();
    assert_eq!(browser.login("/").await.status(), 200);
    let real = browser.cookie_header();
    assert!(real.contains("_rocketgate_1="), "a split session: {real}");
    for jar in [
        format!("_rocketgate_0=junk; {real}"),
        format!("{real}; _rocketgate_1=junk"),
        format!("_rocketgate=junk; {real}"),
    ] {
        let (status, set, user) = who(&stack, &jar).await;
        assert_eq!((status, user.as_deref()), (200, Some("1001")), "{jar}");
        assert!(set.is_empty(), "{set:?}");
    }
}

#[tokio::test]
async fn a_planted_ticket_cookie_does_not_lock_out_a_redis_session() {
    let redis = RedisServer::start().await;
    let stack = Stack::with(
        Options::default()
            .env("ROCKETGATE_SESSION__STORE", "redis")
            .env("ROCKETGATE_SESSION__REDIS_URL", redis.url()),
    )
    .await;
    let real = session_of(&stack, "1001").await;
    let (status, set, user) = who(&stack, &format!("_rocketgate=junk; _rocketgate={real}")).await;
    assert_eq!((status, user.as_deref()), (200, Some("1001")));
    assert!(set.is_empty(), "{set:?}");
}

/// Signs in without a cookie jar (Secure cookies over plain http in a test), following
/// each hop by hand; returns the session's `name=value` pairs.
async fn manual_login(stack: &Stack) -> Vec<String> {
    let client = stack.client();
    let pairs = |set: &[String]| -> Vec<String> {
        set.iter()
            .filter(|c| !c.contains("Max-Age=0"))
            .map(|c| c.split(';').next().unwrap().to_owned())
            .collect()
    };
    let first = client
        .get(stack.url("/"))
        .header(ACCEPT, HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 302);
    let csrf = pairs(&set_cookies(&first));
    assert!(
        csrf.iter()
            .all(|c| c.starts_with("__Host-rocketgate_csrf_")),
        "{csrf:?}"
    );
    let back = stack
        .browser()
        .consent(&location(&first), "1001", true)
        .await;
    let callback = client
        .get(location(&back))
        .header(ACCEPT, HTML)
        .header(COOKIE, csrf.join("; "))
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), 302);
    let set = set_cookies(&callback);
    for c in set.iter().filter(|c| c.starts_with("__Host-rocketgate=")) {
        assert!(
            c.contains("Secure") && c.contains("Path=/") && !c.contains("Domain"),
            "{c}"
        );
    }
    pairs(&set)
        .into_iter()
        .filter(|c| c.starts_with("__Host-rocketgate="))
        .collect()
}

#[tokio::test]
async fn host_prefixed_cookies_sign_in_and_chunk_under_their_prefix() {
    let stack = Stack::with(
        Options::default()
            .env("ROCKETGATE_COOKIE__NAME", "__Host-rocketgate")
            .env("ROCKETGATE_COOKIE__SECURE", "true"),
    )
    .await;
    let session = manual_login(&stack).await;
    assert_eq!(session.len(), 1, "{session:?}");
    let (status, _, user) = who(&stack, &format!("__Host-rocketgate=junk; {}", session[0])).await;
    assert_eq!((status, user.as_deref()), (200, Some("1001")));
    let echo: Echo = stack
        .client()
        .get(stack.url("/who"))
        .header(ACCEPT, "application/json")
        .header(COOKIE, format!("app=1; {}", session[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        echo.header("cookie"),
        Some("app=1"),
        "our cookie stays ours"
    );

    let big = Stack::with(Options {
        standin: rocketgate_demo::StandInOptions {
            access_token_len: 6000,
            ..Default::default()
        },
        ..Options::default()
            .env("ROCKETGATE_COOKIE__NAME", "__Host-rocketgate")
            .env("ROCKETGATE_COOKIE__SECURE", "true")
    })
    .await;
    let client = big.client();
    let first = client
        .get(big.url("/"))
        .header(ACCEPT, HTML)
        .send()
        .await
        .unwrap();
    let csrf: Vec<String> = set_cookies(&first)
        .iter()
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect();
    let back = big.browser().consent(&location(&first), "1001", true).await;
    let callback = client
        .get(location(&back))
        .header(COOKIE, csrf.join("; "))
        .send()
        .await
        .unwrap();
    let set = set_cookies(&callback);
    assert!(
        set.iter().any(|c| c.starts_with("__Host-rocketgate_0=")),
        "{set:?}"
    );
    assert!(
        set.iter().any(|c| c.starts_with("__Host-rocketgate_1=")),
        "{set:?}"
    );
}

/// A raw request head, answered on a fresh connection.
async fn raw_head(proxy: SocketAddr, head: &str) -> String {
    raw_exchange(proxy, head, "", false).await
}

#[tokio::test]
async fn requests_without_exactly_one_host_are_refused() {
    let stack = Stack::start().await;
    let p = stack.proxy;
    for (what, head) in [
        (
            "no Host",
            "GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n".to_owned(),
        ),
        (
            "two Hosts",
            format!(
                "GET /x HTTP/1.1\r\nHost: {p}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
            ),
        ),
        (
            "two Hosts on HTTP/1.0",
            format!("GET /x HTTP/1.0\r\nHost: {p}\r\nHost: evil.example\r\n\r\n"),
        ),
    ] {
        let answer = raw_head(p, &head).await;
        assert_eq!(status_of(&answer), 400, "{what}: {answer}");
    }
    // HTTP/1.0 needs no Host; one Host is fine.
    let answer = raw_head(p, "GET /ping HTTP/1.0\r\n\r\n").await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    let answer = raw_head(
        p,
        &format!("GET /ping HTTP/1.1\r\nHost: {p}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status_of(&answer), 200, "{answer}");
}

const SHARED_SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[tokio::test]
async fn every_forward_auth_answer_says_no_store() {
    let stack =
        Stack::with(Options::default().env("ROCKETGATE_COOKIE__SECRET", SHARED_SECRET)).await;
    let client = stack.client();
    let no_store = |r: &reqwest::Response| {
        assert_eq!(
            r.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{} lacks Cache-Control: no-store",
            r.status()
        );
    };
    let anonymous = client.get(stack.url("/oauth2/auth")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    no_store(&anonymous);
    let redirect = client
        .get(stack.url("/oauth2/auth?mode=redirect"))
        .header(ACCEPT, HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 302);
    no_store(&redirect);
    let ada = session_of(&stack, "1001").await;
    let ok = client
        .get(stack.url("/oauth2/auth"))
        .header(COOKIE, format!("_rocketgate={ada}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    no_store(&ok);
    // The same cookie at a gate whose allow-list leaves ada out: 403.
    let narrow = Stack::with(
        Options::default()
            .env("ROCKETGATE_COOKIE__SECRET", SHARED_SECRET)
            .env("ROCKETGATE_ACCESS__ALLOWED_EMAILS", "nobody@example.com"),
    )
    .await;
    let denied = narrow
        .client()
        .get(narrow.url("/oauth2/auth"))
        .header(COOKIE, format!("_rocketgate={ada}"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    no_store(&denied);
}

async fn sign_out(
    stack: &Stack,
    browser: &Browser,
    post: bool,
    headers: &[(&str, String)],
) -> reqwest::Response {
    let url = stack.url("/oauth2/sign_out?rd=%2Fbye");
    let mut request = if post {
        browser.client.post(url)
    } else {
        browser.client.get(url)
    };
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    request.send().await.unwrap()
}

async fn still_signed_in(stack: &Stack, browser: &Browser) -> bool {
    browser
        .client
        .get(stack.url("/oauth2/userinfo"))
        .send()
        .await
        .unwrap()
        .status()
        == 200
}

#[tokio::test]
async fn another_site_cannot_sign_the_user_out() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    assert_eq!(browser.login("/").await.status(), 200);
    let ours = format!("http://{}", stack.proxy);
    let cross = ("sec-fetch-site", "cross-site".to_owned());

    // <img src=…/sign_out> or a link from elsewhere: a question, not a sign-out.
    let asked = sign_out(&stack, &browser, false, std::slice::from_ref(&cross)).await;
    assert_eq!(asked.status(), 200);
    assert!(set_cookies(&asked).is_empty(), "the session is kept");
    let html = asked.text().await.unwrap();
    assert!(
        html.contains("ada@example.com"),
        "it names the account: {html}"
    );
    assert!(
        html.contains("method=\"post\" action=\"/oauth2/sign_out?rd=%2Fbye\""),
        "{html}"
    );
    assert!(still_signed_in(&stack, &browser).await);

    // Cross-site form posts, by Sec-Fetch-Site or by a foreign Origin.
    for headers in [
        vec![cross.clone()],
        vec![(ORIGIN.as_str(), "https://evil.example".to_owned())],
        vec![(ORIGIN.as_str(), "null".to_owned())],
        vec![
            ("sec-fetch-site", "same-site".to_owned()),
            (ORIGIN.as_str(), "http://evil.example".to_owned()),
        ],
    ] {
        let refused = sign_out(&stack, &browser, true, &headers).await;
        assert_eq!(refused.status(), 403, "{headers:?}");
        assert!(set_cookies(&refused).is_empty(), "{headers:?}");
        assert!(still_signed_in(&stack, &browser).await, "{headers:?}");
    }

    // The button on the question page: a same-origin POST signs out.
    let out = sign_out(
        &stack,
        &browser,
        true,
        &[
            ("sec-fetch-site", "same-origin".to_owned()),
            (ORIGIN.as_str(), ours),
        ],
    )
    .await;
    assert_eq!(out.status(), 302);
    assert_eq!(location(&out), "/bye");
    assert!(!still_signed_in(&stack, &browser).await);
}

#[tokio::test]
async fn same_site_and_header_less_sign_outs_work_as_before() {
    let stack = Stack::start().await;
    for headers in [
        vec![],
        vec![("sec-fetch-site", "same-site".to_owned())],
        vec![("sec-fetch-site", "none".to_owned())],
        vec![("sec-fetch-site", "same-origin".to_owned())],
    ] {
        let browser = stack.browser();
        assert_eq!(browser.login("/").await.status(), 200);
        let out = sign_out(&stack, &browser, false, &headers).await;
        assert_eq!(out.status(), 302, "{headers:?}");
        assert!(!still_signed_in(&stack, &browser).await, "{headers:?}");
    }
}

fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_bad_or_reused_code_is_a_sign_in_to_retry_not_an_outage() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    let first = browser.get(&stack.url("/deep/link?q=1")).await;
    let back = browser.consent(&location(&first), "1001", true).await;
    let callback = reqwest::Url::parse(&location(&back)).unwrap();
    let state = callback
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let junk = format!(
        "{}?code=made-up-code&state={}",
        callback.as_str().split('?').next().unwrap(),
        state
    );
    let answer = browser.get(&junk).await;
    assert_eq!(answer.status(), 400);
    let html = answer.text().await.unwrap();
    assert!(html.contains("Sign-in expired"), "{html}");
    assert!(
        html.contains("href=\"/oauth2/start?rd=%2Fdeep%2Flink%3Fq%3D1\""),
        "a fresh login back to the deep link: {html}"
    );
    assert!(!html.contains("invalid_grant"), "{html}");
    let metrics = stack.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "rocketgate_logins_total{outcome=\"invalid_code\"}"
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "rocketgate_logins_total{outcome=\"provider_error\"}"
        ),
        0.0
    );
    // The retry link works.
    let retry = browser
        .get(&stack.url("/oauth2/start?rd=%2Fdeep%2Flink%3Fq%3D1"))
        .await;
    let back = browser.consent(&location(&retry), "1001", true).await;
    let done = browser.get(&location(&back)).await;
    assert_eq!(location(&done), "/deep/link?q=1");
}

#[tokio::test]
async fn the_request_id_survives_a_connection_header_naming_it() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    assert_eq!(browser.login("/").await.status(), 200);
    let r = browser
        .client
        .get(stack.url("/who"))
        .header(ACCEPT, "application/json")
        .header("X-Request-Id", "lb-42")
        .header("Connection", "X-Request-Id, keep-alive")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "lb-42");
    let echo: Echo = r.json().await.unwrap();
    assert_eq!(echo.all("x-request-id"), vec!["lb-42"]);
}

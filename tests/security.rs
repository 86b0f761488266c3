//! Attacks this class of proxy has shipped advisories for: spoofed identity headers, forged
//! or swapped cookies, open redirects, skip-route bypasses.

mod support;

use std::time::Duration;

use reqwest::header::{ACCEPT, COOKIE};
use support::{Echo, Options, Stack, location, set_cookies};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SPOOFS: &[(&str, &str)] = &[
    ("X-Forwarded-User", "evil"),
    ("x-forwarded-user", "evil2"),
    ("X_Forwarded_Email", "evil@evil.com"),
    ("x-forwarded-email", "evil@evil.com"),
    ("X-Forwarded-Preferred-Username", "root"),
    ("X_FORWARDED_PREFERRED_USERNAME", "root"),
    ("X-Forwarded-Access-Token", "stolen"),
    ("X-Auth-Request-User", "evil"),
    ("x_auth_request_email", "evil@evil.com"),
    ("X-Forwarded-For", "1.2.3.4"),
    ("X-Forwarded-Host", "evil.com"),
    ("X-Forwarded-Proto", "https"),
];

fn spoofed(mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    for (name, value) in SPOOFS {
        request = request.header(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            *value,
        );
    }
    request
}

fn assert_no_spoof(echo: &Echo) {
    for (name, value) in &echo.headers {
        assert!(
            !SPOOFS.iter().any(|(_, v)| v == value),
            "spoofed header reached the upstream: {name}: {value}"
        );
    }
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let stack =
        Stack::with(Options::default().env("ROCKETGATE_ACCESS__SKIP_AUTH_ROUTES", "^/public/"))
            .await;
    let browser = stack.browser();
    browser.login("/").await;
    let echo: Echo = spoofed(
        browser
            .client
            .get(stack.url("/private"))
            .header(ACCEPT, "application/json"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_no_spoof(&echo);
    assert_eq!(echo.all("x-forwarded-user"), vec!["1001"]);
    assert_eq!(echo.all("x-forwarded-email"), vec!["ada@example.com"]);
    assert_eq!(echo.all("x-forwarded-for"), vec!["127.0.0.1"]);

    // Skipped routes bypass authentication, never the clean-up.
    let anonymous: Echo = spoofed(stack.client().get(stack.url("/public/x")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_no_spoof(&anonymous);
    assert!(anonymous.header("x-forwarded-user").is_none());
}

#[tokio::test]
async fn tampered_truncated_and_foreign_cookies_mean_no_session() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    browser.login("/").await;
    let good = browser.cookie("_rocketgate").expect("session cookie");
    let mut flipped = good.clone().into_bytes();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let other = Stack::start().await;
    let other_browser = other.browser();
    other_browser.login("/").await;
    let foreign = other_browser.cookie("_rocketgate").unwrap();

    let client = stack.client();
    let ok = client
        .get(stack.url("/x"))
        .header(ACCEPT, "application/json")
        .header(COOKIE, format!("_rocketgate={good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "the untouched cookie works");
    for bad in [
        flipped.as_str(),
        &good[..good.len() - 10],
        &good[10..],
        "",
        "garbage",
        foreign.as_str(),
        &"A".repeat(5000),
    ] {
        let api = client
            .get(stack.url("/x"))
            .header(ACCEPT, "application/json")
            .header(COOKIE, format!("_rocketgate={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), 401);
        let nav = client
            .get(stack.url("/x"))
            .header(ACCEPT, support::HTML)
            .header(COOKIE, format!("_rocketgate={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(nav.status(), 302);
        assert!(
            set_cookies(&nav)
                .iter()
                .any(|c| c.starts_with("_rocketgate=") && c.contains("Max-Age=0")),
            "a bad session cookie is cleared"
        );
    }
}

#[tokio::test]
async fn a_csrf_cookie_is_not_a_session_cookie() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    let start = browser.get(&stack.url("/")).await;
    let csrf = set_cookies(&start)[0].split(';').next().unwrap().to_owned();
    let value = csrf.split_once('=').unwrap().1;
    let response = stack
        .client()
        .get(stack.url("/x"))
        .header(ACCEPT, "application/json")
        .header(COOKIE, format!("_rocketgate={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn big_tokens_are_chunked_and_signing_out_clears_every_chunk() {
    let stack = Stack::with(Options {
        standin: rocketgate::demo::StandInOptions {
            access_token_len: 6000,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let browser = stack.browser();
    let first = browser.get(&stack.url("/")).await;
    let back = browser.consent(&location(&first), "1001", true).await;
    let callback = browser.get(&location(&back)).await;
    let cookies = set_cookies(&callback);
    let chunks: Vec<&String> = cookies
        .iter()
        .filter(|c| c.starts_with("_rocketgate_") && !c.contains("_csrf_"))
        .collect();
    assert!(chunks.len() >= 2, "{cookies:?}");
    assert!(chunks.iter().all(|c| c.len() < 4096));

    let echo: Echo = browser
        .client
        .get(stack.url("/x"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo.header("x-forwarded-user"), Some("1001"));
    assert!(!echo.all("cookie").join(";").contains("_rocketgate"));

    let out = browser.get(&stack.url("/oauth2/sign_out")).await;
    let cleared = set_cookies(&out);
    for i in 0..chunks.len() {
        assert!(
            cleared
                .iter()
                .any(|c| c.starts_with(&format!("_rocketgate_{i}=")) && c.contains("Max-Age=0")),
            "chunk {i} not cleared: {cleared:?}"
        );
    }
    assert_eq!(browser.get(&stack.url("/")).await.status(), 302);
}

/// The README's allowed domains for the corpus, as oauth2-proxy's own test uses them.
const CORPUS_DOMAINS: &str = "foo.bar,.bar.foo,port.bar:8080,.sub.port.bar:8080,anyport.bar:*,.sub.anyport.bar:*,www.whitelisteddomain.tld,*.wildcard.sub.port.bar:8080,*.wildcard.sub.anyport.bar:*,*.wildcard.bar,*.wildcard.proxy.foo.bar";

fn corpus() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/testdata/openredirects.txt"
    ))
    .expect("../shared/testdata/openredirects.txt");
    text.lines()
        .map(|line| {
            url::form_urlencoded::parse(format!("x={}", line.replace('&', "%26")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn all_open_redirect_payloads_are_refused_by_sign_out_and_start() {
    let stack =
        Stack::with(Options::default().env("ROCKETGATE_ACCESS__REDIRECT_DOMAINS", CORPUS_DOMAINS))
            .await;
    let payloads = corpus();
    assert_eq!(payloads.len(), 559);
    let client = stack.client();
    let mut accepted = Vec::new();
    for payload in &payloads {
        let out = client
            .get(stack.url(&format!("/oauth2/sign_out?rd={}", encode(payload))))
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), 302);
        if location(&out) != "/" {
            accepted.push(payload.clone());
        }
    }
    assert!(
        accepted.is_empty(),
        "open redirects accepted: {accepted:#?}"
    );

    // The login path shares the validator; walk a sample of the corpus through a whole login.
    let browser = stack.browser();
    for payload in payloads.iter().step_by(37) {
        let start = browser
            .get(&stack.url(&format!("/oauth2/start?rd={}", encode(payload))))
            .await;
        let back = browser.consent(&location(&start), "1001", true).await;
        let done = browser.get(&location(&back)).await;
        assert_eq!(location(&done), "/", "payload {payload:?}");
    }
    // Allowed targets still work.
    for rd in ["/app?x=1", "https://foo.bar/x", "http://port.bar:8080/"] {
        let out = client
            .get(stack.url(&format!("/oauth2/sign_out?rd={}", encode(rd))))
            .send()
            .await
            .unwrap();
        assert_eq!(location(&out), rd);
    }
}

/// Sends a raw HTTP/1.1 request (clients normalise `..` away) and returns the status code.
async fn raw_status(stack: &Stack, target: &str, method: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(stack.proxy).await.unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        stack.proxy
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test]
async fn skip_routes_match_the_normalised_path_and_method_only() {
    let stack = Stack::with(Options::default().env(
        "ROCKETGATE_ACCESS__SKIP_AUTH_ROUTES",
        "GET=^/public/,^/status$",
    ))
    .await;
    let cases: &[(&str, &str, u16)] = &[
        ("GET", "/public/page", 200),
        ("GET", "/public/a%20b", 200),
        ("HEAD", "/status", 200),
        ("POST", "/status", 200),
        ("POST", "/public/page", 401),
        ("GET", "/private?path=/public/", 401),
        ("GET", "/private?x=/status", 401),
        ("GET", "/private%23/public/", 401),
        ("GET", "/status%23", 401),
        ("GET", "/public/../private", 400),
        ("GET", "/public/%2e%2e/private", 400),
        ("GET", "/public/%2E%2e/private", 400),
        ("GET", "/public/.%2e/private", 400),
        ("GET", "/public%2Fx", 400),
        ("GET", "/public/..%2Fprivate", 400),
        ("GET", "/public/..;/private", 400),
        ("GET", "/public/..%3B/private", 400),
        ("GET", "/public/..;jsessionid=x/private", 400),
        ("GET", "/public/.;x/page", 400),
        ("GET", "/public/a;b/page", 200),
        ("GET", "/public/x%5C..%5Cprivate", 400),
        ("GET", "/public/%252e%252e/x", 200),
        ("GET", "//public/x", 401),
    ];
    let mut wrong = Vec::new();
    for (method, target, expected) in cases {
        let got = raw_status(&stack, target, method).await;
        if got != *expected {
            wrong.push(format!("{method} {target}: {got}, want {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn health_checks_match_the_path_alone() {
    let stack = Stack::start().await;
    let client = stack.client();
    for ua in ["kube-probe/1.29", "ELB-HealthChecker/2.0", "GoogleHC/1.0"] {
        let r = client
            .get(stack.url("/private"))
            .header("User-Agent", ua)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{ua}");
    }
    assert_eq!(
        client
            .get(stack.url("/ping"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(stack.url("/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(stack.url("/ping/x"))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(stack.url("/oauth2/nothing"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn an_email_with_two_at_signs_does_not_pass_a_domain_check() {
    use rocketgate::access::EmailPolicy;
    let policy = EmailPolicy::new(vec![], vec!["company.com".into()]).unwrap();
    assert!(policy.allows(Some("ada@company.com")));
    assert!(!policy.allows(Some("a@evil.com@company.com")));
    assert!(!policy.allows(Some("ada@badcompany.com")));
    assert!(!policy.allows(None));
}

/// oauth2-proxy's redirect advisories, one input per trick, through the real endpoints.
#[tokio::test]
async fn redirect_tricks_and_domain_confusion_are_refused() {
    let stack = Stack::with(Options::default().env(
        "ROCKETGATE_ACCESS__REDIRECT_DOMAINS",
        ".example.com,port.example.org:8443",
    ))
    .await;
    let refused = [
        "/\\evil.com",
        "/%09/evil.com",
        "/%0a/evil.com",
        "/%0b/evil.com",
        "/%0d/evil.com",
        "/\t/evil.com",
        "/./\\evil.com",
        "\\\\evil.com",
        "/\\/evil.com",
        "//evil.com",
        "///evil.com",
        "https://app@evil.com",
        "https://a.example.com@evil.com/",
        "https://user:pass@a.example.com/",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "HtTpS://evil.com",
        "https:evil.com",
        "http:/evil.com",
        "https://badexample.com/",
        "https://example.com.evil.com/",
        "https://a.example.com.evil.com/",
        "https://port.example.org/",
        "https://port.example.org:9443/",
        "ftp://a.example.com/",
    ];
    let allowed = [
        ("/dashboard?tab=1", "/dashboard?tab=1"),
        ("https://example.com/x", "https://example.com/x"),
        (
            "https://deep.sub.example.com/",
            "https://deep.sub.example.com/",
        ),
        ("HTTPS://A.Example.COM/p", "https://a.example.com/p"),
        (
            "https://port.example.org:8443/",
            "https://port.example.org:8443/",
        ),
    ];
    let client = stack.client();
    let sign_out = |rd: &str| {
        let url = stack.url(&format!("/oauth2/sign_out?rd={}", encode(rd)));
        let client = client.clone();
        async move { location(&client.get(url).send().await.unwrap()) }
    };
    for rd in refused {
        assert_eq!(sign_out(rd).await, "/", "{rd:?} must be refused");
    }
    for (rd, expected) in allowed {
        assert_eq!(sign_out(rd).await, expected, "{rd:?} must be allowed");
    }
}

/// A client must not use `Connection` to delete identity headers rocketgate adds, nor smuggle
/// an h2c upgrade past it, nor get `Forwarded` / `X-Original-*` claims to the upstream.
#[tokio::test]
async fn connection_tricks_and_forwarding_claims_do_not_reach_the_upstream() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    browser.login("/").await;
    let echo: Echo = browser
        .client
        .get(stack.url("/x"))
        .header(ACCEPT, "application/json")
        .header(
            "Connection",
            "X-Forwarded-User, X-Forwarded-Email, X-Forwarded-For",
        )
        .header("Forwarded", "for=6.6.6.6;proto=https;host=evil.com")
        .header("X-Original-Host", "evil.com")
        .header("X-Forwarded-Prefix", "/admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo.header("x-forwarded-user"), Some("1001"));
    assert_eq!(echo.header("x-forwarded-email"), Some("ada@example.com"));
    assert_eq!(echo.header("x-forwarded-for"), Some("127.0.0.1"));
    for name in ["forwarded", "x-original-host", "x-forwarded-prefix"] {
        assert!(echo.header(name).is_none(), "{name} reached the upstream");
    }

    // An h2c upgrade is not tunnelled: the upstream sees a plain request without Upgrade.
    let echo: Echo = browser
        .client
        .get(stack.url("/x"))
        .header(ACCEPT, "application/json")
        .header("Connection", "Upgrade, HTTP2-Settings")
        .header("Upgrade", "h2c")
        .header("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(echo.header("upgrade").is_none());
    assert!(echo.header("http2-settings").is_none());
}

#[tokio::test]
async fn userinfo_honours_the_allow_list() {
    let stack = Stack::with(
        Options::default().env("ROCKETGATE_ACCESS__ALLOWED_EMAILS", "grace@example.org"),
    )
    .await;
    let grace = stack.browser();
    grace.login_as("/", "1002").await;
    assert_eq!(
        grace.get(&stack.url("/oauth2/userinfo")).await.status(),
        200
    );
    // A session minted for ada before the policy existed is refused everywhere.
    let open = Stack::with(Options::default().env(
        "ROCKETGATE_COOKIE__SECRET",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ))
    .await;
    let ada = open.browser();
    ada.login("/").await;
    let cookie = ada.cookie_header();
    let strict = Stack::with(
        Options::default()
            .env(
                "ROCKETGATE_COOKIE__SECRET",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            )
            .env("ROCKETGATE_ACCESS__ALLOWED_EMAILS", "grace@example.org"),
    )
    .await;
    for path in ["/oauth2/userinfo", "/oauth2/auth", "/x"] {
        let r = strict
            .client()
            .get(strict.url(path))
            .header(ACCEPT, "application/json")
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
}

#[tokio::test]
async fn strict_session_cookies_still_complete_a_login() {
    let stack = Stack::with(Options::default().env("ROCKETGATE_COOKIE__SAME_SITE", "strict")).await;
    let browser = stack.browser();
    let first = browser.get(&stack.url("/deep?x=1")).await;
    let csrf = set_cookies(&first);
    assert!(
        csrf[0].contains("SameSite=Lax"),
        "the login cookie must survive the cross-site callback: {csrf:?}"
    );
    let back = browser.consent(&location(&first), "1001", true).await;
    let callback = browser.get(&location(&back)).await;
    assert_eq!(
        callback.status(),
        200,
        "a same-site hop instead of a cross-site 302"
    );
    assert!(
        set_cookies(&callback)
            .iter()
            .any(|c| c.starts_with("_rocketgate=") && c.contains("SameSite=Strict"))
    );
    let html = callback.text().await.unwrap();
    assert!(
        html.contains("http-equiv=\"refresh\" content=\"0;url=/deep?x=1\""),
        "{html}"
    );
    assert_eq!(browser.get(&stack.url("/deep?x=1")).await.status(), 200);
}

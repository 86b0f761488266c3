//! Forwarded headers (`X-Forwarded-*`, `X-Original-*`) count only from `trusted_proxies`, and never
//! change where a request is routed.

use crate::support::{Browser, Echo, Options, Stack, location};
use reqwest::header::ACCEPT;

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

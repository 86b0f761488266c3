//! Identity and forwarding headers a client sends never reach the upstream, however they are
//! spelled or listed in `Connection`.

use crate::support::{Echo, Options, Stack};
use reqwest::header::ACCEPT;

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

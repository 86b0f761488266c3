//! Session cookies: tampered, truncated or foreign ones mean no session, CSRF cookies are not
//! sessions, big sessions are chunked and fully cleared, and `SameSite=Strict` still completes a
//! login.

use crate::support::{Echo, Options, Stack, location, set_cookies};
use reqwest::header::{ACCEPT, COOKIE};

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
            .header(ACCEPT, crate::support::HTML)
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
        standin: rocketgate_demo::StandInOptions {
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

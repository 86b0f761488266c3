//! Rotating the cookie secret (`cookie.secrets = [new, old]`) signs nobody out.

use crate::support::{Options, Stack, set_cookies};
use reqwest::header::{ACCEPT, COOKIE};

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

//! Every way Rocketpunch can fail during a login ends in a clean page with the right status,
//! no session, and no internal detail.

use std::time::Duration;

use crate::support::{Options, Stack, location, set_cookies};
use reqwest::header::ACCEPT;
use rocketgate_demo::{Fault, FaultEndpoint};

const INTERNALS: &[&str] = &[
    "invalid_grant",
    "server_error",
    "UNAUTHORIZED",
    "127.0.0.1",
    "hyper",
    "connection",
    "error sending",
    "maintenance",
    "Rocketpunch sent",
];

async fn login_with_fault(
    stack: &Stack,
    endpoint: FaultEndpoint,
    fault: Fault,
) -> (u16, String, Vec<String>) {
    let browser = stack.browser();
    let first = browser.get(&stack.url("/")).await;
    let back = browser.consent(&location(&first), "1001", true).await;
    stack.standin.set_fault(endpoint, Some(fault));
    let callback = browser.get(&location(&back)).await;
    stack.standin.set_fault(endpoint, None);
    let status = callback.status().as_u16();
    let cookies = set_cookies(&callback);
    (status, callback.text().await.unwrap(), cookies)
}

#[tokio::test]
async fn provider_failures_become_clean_502_and_503_pages() {
    let stack = Stack::with(Options::default().env("ROCKETGATE_PROVIDER__TIMEOUT", "500ms")).await;
    let cases = [
        (FaultEndpoint::Token, Fault::Status(400), 502),
        (FaultEndpoint::Token, Fault::Status(401), 502),
        (FaultEndpoint::Token, Fault::Status(500), 502),
        (FaultEndpoint::Token, Fault::Status(503), 503),
        (FaultEndpoint::Token, Fault::TooManyRequests, 503),
        (FaultEndpoint::Token, Fault::NonJson, 502),
        (
            FaultEndpoint::Token,
            Fault::Hang(Duration::from_secs(3)),
            503,
        ),
        (FaultEndpoint::Token, Fault::Refuse, 502),
        (FaultEndpoint::Profile, Fault::Status(401), 502),
        (FaultEndpoint::Profile, Fault::Status(500), 502),
        (FaultEndpoint::Profile, Fault::TooManyRequests, 503),
        (FaultEndpoint::Profile, Fault::NonJson, 502),
        (
            FaultEndpoint::Profile,
            Fault::Hang(Duration::from_secs(3)),
            503,
        ),
    ];
    for (endpoint, fault, expected) in cases {
        let label = format!("{endpoint:?} {fault:?}");
        let (status, html, cookies) = login_with_fault(&stack, endpoint, fault).await;
        assert_eq!(status, expected, "{label}");
        assert!(html.contains("<!doctype html>"), "{label}: an HTML page");
        for word in INTERNALS {
            assert!(!html.contains(word), "{label}: page leaks {word:?}");
        }
        assert!(
            !cookies
                .iter()
                .any(|c| c.starts_with("_rocketgate=") && !c.contains("Max-Age=0")),
            "{label}: no session on failure"
        );
    }
    // After the faults, a login works again.
    assert_eq!(stack.browser().login("/").await.status(), 200);
}

#[tokio::test]
async fn rate_limited_pages_say_when_to_retry_and_api_clients_get_json() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    let first = browser.get(&stack.url("/")).await;
    let back = browser.consent(&location(&first), "1001", true).await;
    stack
        .standin
        .set_fault(FaultEndpoint::Token, Some(Fault::TooManyRequests));
    let callback = browser
        .client
        .get(location(&back))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), 503);
    assert!(callback.headers().get("retry-after").is_some());
    let body: serde_json::Value = callback.json().await.unwrap();
    assert_eq!(body["error"], "provider_unavailable");
}

#[tokio::test]
async fn a_profile_without_the_user_claim_is_refused() {
    let stack =
        Stack::with(Options::default().env("ROCKETGATE_PROVIDER__CLAIMS__USER", "/no_such_claim"))
            .await;
    let browser = stack.browser();
    let first = browser.get(&stack.url("/")).await;
    let back = browser.consent(&location(&first), "1001", true).await;
    let callback = browser.get(&location(&back)).await;
    assert_eq!(callback.status(), 502);
}

#[tokio::test]
async fn custom_claim_pointers_and_unwrapped_profiles() {
    let stack = Stack::with(
        Options {
            standin: rocketgate_demo::StandInOptions {
                wrap_profile_in_data: false,
                ..Default::default()
            },
            ..Options::default()
        }
        .env("ROCKETGATE_PROVIDER__CLAIMS__PREFERRED_USERNAME", "/name"),
    )
    .await;
    let browser = stack.browser();
    browser.login("/").await;
    let info: serde_json::Value = browser
        .get(&stack.url("/oauth2/userinfo"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["user"], "1001");
    assert_eq!(info["preferred_username"], "Ada Lovelace");
}

//! Proactive refresh through the real server against the stand-in, whose refresh tokens
//! rotate and whose reused tokens are `invalid_grant`, like Rocketpunch's.

use std::time::Duration;

use crate::support::{DUE, Options, Stack, location, set_cookies, short_tokens, token_seen};
use reqwest::header::{ACCEPT, COOKIE};
use rocketgate_demo::{Fault, FaultEndpoint, StandInOptions};

/// The session cookie a response set, as a `Cookie` header value.
fn session_cookie(response: &reqwest::Response) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|c| c.starts_with("_rocketgate=") && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// Signs in and returns the session `Cookie` header and the access token the upstream saw.
async fn signed_in(stack: &Stack) -> (String, String) {
    let browser = stack.browser();
    browser.login("/").await;
    let cookie = browser.cookie_header();
    let token = token_seen(stack.api(&cookie).await).await;
    (cookie, token)
}

#[tokio::test]
async fn no_refresh_outside_the_window() {
    let stack =
        Stack::with(Options::default().env("ROCKETGATE_HEADERS__PASS_ACCESS_TOKEN", "true")).await;
    let (cookie, token) = signed_in(&stack).await;
    for _ in 0..5 {
        let response = stack.api(&cookie).await;
        assert!(session_cookie(&response).is_none(), "no cookie re-issued");
        assert_eq!(token_seen(response).await, token);
    }
    assert_eq!(stack.standin.stats().refresh_token_grants, 0);
}

#[tokio::test]
async fn refresh_inside_the_window_reissues_the_cookie_and_rereads_the_profile() {
    let stack = Stack::with(short_tokens()).await;
    let (cookie, old_token) = signed_in(&stack).await;
    assert_eq!(stack.standin.stats().refresh_token_grants, 0);
    tokio::time::sleep(DUE).await;

    let response = stack.api(&cookie).await;
    assert_eq!(response.status(), 200);
    let new_cookie = session_cookie(&response).expect("refreshed cookie");
    let new_token = token_seen(response).await;
    assert_ne!(
        new_token, old_token,
        "the upstream gets the new access token"
    );
    let stats = stack.standin.stats();
    assert_eq!(stats.refresh_token_grants, 1);
    assert_eq!(stats.profile_calls, 2, "profile re-read on refresh");

    let again = stack.api(&new_cookie).await;
    assert!(session_cookie(&again).is_none());
    assert_eq!(token_seen(again).await, new_token);
    assert_eq!(stack.standin.stats().refresh_token_grants, 1);
}

#[tokio::test]
async fn refresh_profile_can_be_turned_off() {
    let stack =
        Stack::with(short_tokens().env("ROCKETGATE_SESSION__REFRESH_PROFILE", "false")).await;
    let (cookie, _) = signed_in(&stack).await;
    tokio::time::sleep(DUE).await;
    assert_eq!(stack.api(&cookie).await.status(), 200);
    let stats = stack.standin.stats();
    assert_eq!((stats.refresh_token_grants, stats.profile_calls), (1, 1));
}

#[tokio::test]
async fn sixty_four_concurrent_requests_make_one_token_call() {
    let stack = Stack::with(short_tokens()).await;
    let (cookie, old_token) = signed_in(&stack).await;
    tokio::time::sleep(DUE).await;
    stack.standin.set_fault(
        FaultEndpoint::Token,
        Some(Fault::Hang(Duration::from_millis(300))),
    );

    let mut requests = Vec::new();
    for _ in 0..64 {
        let client = stack.client();
        let url = stack.url("/api");
        let cookie = cookie.clone();
        requests.push(tokio::spawn(async move {
            client
                .get(url)
                .header(ACCEPT, "application/json")
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap()
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for request in requests {
        let response = request.await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            session_cookie(&response).is_some(),
            "every response carries the new cookie"
        );
        tokens.insert(token_seen(response).await);
    }
    assert_eq!(tokens.len(), 1, "all 64 served with the same new token");
    assert!(!tokens.contains(&old_token));
    let stats = stack.standin.stats();
    assert_eq!(
        stats.token_calls, 2,
        "one code exchange + one refresh: {stats:?}"
    );
    assert_eq!(stats.refresh_token_grants, 1);

    let metrics = stack.metrics().await;
    assert!(
        metrics.contains("rocketgate_refreshes_total{outcome=\"ok\"} 1"),
        "{metrics}"
    );
    let joins: u64 = metrics
        .lines()
        .find(|l| l.starts_with("rocketgate_refresh_joins_total"))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(joins >= 1, "{metrics}");
}

#[tokio::test]
async fn a_client_disconnecting_mid_refresh_does_not_cause_a_second_call() {
    let stack = Stack::with(short_tokens()).await;
    let (cookie, _) = signed_in(&stack).await;
    tokio::time::sleep(DUE).await;
    stack.standin.set_fault(
        FaultEndpoint::Token,
        Some(Fault::Hang(Duration::from_millis(800))),
    );

    let impatient = stack
        .client()
        .get(stack.url("/api"))
        .header(ACCEPT, "application/json")
        .header(COOKIE, &cookie)
        .timeout(Duration::from_millis(150))
        .send()
        .await;
    assert!(impatient.is_err(), "the first client gave up");
    let patient = stack.api(&cookie).await;
    assert_eq!(patient.status(), 200);
    assert!(session_cookie(&patient).is_some());
    let stats = stack.standin.stats();
    assert_eq!(
        (stats.token_calls, stats.refresh_token_grants),
        (2, 1),
        "{stats:?}"
    );
}

#[tokio::test]
async fn the_old_cookie_works_in_the_grace_window_then_the_session_ends() {
    let stack = Stack::with(short_tokens().env("ROCKETGATE_SESSION__ROTATION_GRACE", "2s")).await;
    let (old_cookie, _) = signed_in(&stack).await;
    tokio::time::sleep(DUE).await;
    let first = stack.api(&old_cookie).await;
    let new_token = token_seen(first).await;

    // A second tab still sends the old cookie: served with the new tokens, given the new cookie.
    let late = stack.api(&old_cookie).await;
    assert_eq!(late.status(), 200);
    assert!(session_cookie(&late).is_some());
    assert_eq!(token_seen(late).await, new_token);
    assert_eq!(
        stack.standin.stats().refresh_token_grants,
        1,
        "no second token call"
    );
    let metrics = stack.metrics().await;
    assert!(
        metrics.contains("rocketgate_refresh_grace_hits_total 1"),
        "{metrics}"
    );

    // After the grace window the old cookie's refresh token is revoked: the session is over.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let api_after = stack.api(&old_cookie).await;
    assert_eq!(api_after.status(), 401);
    assert!(
        set_cookies(&api_after)
            .iter()
            .any(|c| c.starts_with("_rocketgate=") && c.contains("Max-Age=0"))
    );
}

#[tokio::test]
async fn a_revoked_refresh_token_sends_browsers_to_login_and_apis_get_401() {
    let stack = Stack::with(short_tokens()).await;
    let (cookie, _) = signed_in(&stack).await;
    stack.standin.revoke_user("1001");
    tokio::time::sleep(DUE).await;
    let nav = stack
        .client()
        .get(stack.url("/page"))
        .header(ACCEPT, crate::support::HTML)
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(nav.status(), 302);
    assert!(location(&nav).contains("/oauth/authorize?"));
    assert!(
        set_cookies(&nav)
            .iter()
            .any(|c| c.starts_with("_rocketgate=") && c.contains("Max-Age=0"))
    );
    let json = stack.api(&cookie).await;
    assert_eq!(json.status(), 401);
    assert!(
        set_cookies(&json)
            .iter()
            .any(|c| c.starts_with("_rocketgate=") && c.contains("Max-Age=0"))
    );
}

#[tokio::test]
async fn an_outage_never_logs_anyone_out() {
    // 6 s tokens: due from 3 s after issue (whole seconds), valid until 6 s. Sleeping 3.5 s
    // lands inside "due but valid" whatever the sub-second phase; 2.6 s more is past expiry.
    let stack = Stack::with(
        Options {
            standin: StandInOptions {
                access_token_ttl: Duration::from_secs(6),
                ..Default::default()
            },
            ..Options::default()
        }
        .env("ROCKETGATE_HEADERS__PASS_ACCESS_TOKEN", "true"),
    )
    .await;
    let (cookie, old_token) = signed_in(&stack).await;
    stack
        .standin
        .set_fault(FaultEndpoint::Token, Some(Fault::Status(503)));
    tokio::time::sleep(Duration::from_millis(3500)).await;

    // Due but still valid: served with the old token, no cookie change.
    let served = stack.api(&cookie).await;
    assert_eq!(served.status(), 200);
    assert!(set_cookies(&served).is_empty());
    assert_eq!(token_seen(served).await, old_token);
    // Not retried on every request: the failure is remembered for a backoff.
    assert_eq!(stack.api(&cookie).await.status(), 200);
    assert_eq!(
        stack.standin.stats().token_calls,
        2,
        "code exchange + one refresh attempt"
    );

    // Expired and Rocketpunch still down: 503, the session is kept.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let down = stack.api(&cookie).await;
    assert_eq!(down.status(), 503);
    assert!(
        set_cookies(&down).is_empty(),
        "the session cookie is not cleared"
    );
    let body: serde_json::Value = down.json().await.unwrap();
    assert_eq!(body["error"], "provider_unavailable");
    let page = stack
        .client()
        .get(stack.url("/page"))
        .header(ACCEPT, crate::support::HTML)
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().contains("Your session is safe"));

    // Rocketpunch is back: after the backoff, the same cookie refreshes and works.
    stack.standin.set_fault(FaultEndpoint::Token, None);
    let mut recovered = None;
    for _ in 0..40 {
        let response = stack.api(&cookie).await;
        if response.status() == 200 {
            recovered = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let recovered = recovered.expect("the session recovers once Rocketpunch is back");
    assert!(session_cookie(&recovered).is_some());
    assert_ne!(token_seen(recovered).await, old_token);
}

#[tokio::test]
async fn the_auth_endpoint_refreshes_and_returns_the_new_cookie() {
    let stack = Stack::with(short_tokens()).await;
    let (cookie, _) = signed_in(&stack).await;
    tokio::time::sleep(DUE).await;
    let auth = stack
        .client()
        .get(stack.url("/oauth2/auth"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(auth.status(), 200);
    assert_eq!(auth.headers()["x-auth-request-user"], "1001");
    assert!(session_cookie(&auth).is_some());
    assert_eq!(stack.standin.stats().refresh_token_grants, 1);
}

#[tokio::test]
async fn the_absolute_lifetime_ends_a_session_that_could_still_refresh() {
    let stack = Stack::with(
        Options::default()
            .env("ROCKETGATE_COOKIE__EXPIRE", "2s")
            .env("ROCKETGATE_HEADERS__PASS_ACCESS_TOKEN", "true"),
    )
    .await;
    let (cookie, _) = signed_in(&stack).await;
    assert_eq!(stack.api(&cookie).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // A client that ignores Max-Age and keeps sending the cookie is still refused.
    let after = stack.api(&cookie).await;
    assert_eq!(after.status(), 401);
    assert!(
        set_cookies(&after)
            .iter()
            .any(|c| c.starts_with("_rocketgate=") && c.contains("Max-Age=0"))
    );
}

#[tokio::test]
async fn a_refreshed_cookie_reaches_the_browser_even_when_the_upstream_fails() {
    let dead = crate::support::process::free_port();
    let stack = Stack::with(Options {
        upstream: Some(dead),
        ..short_tokens()
    })
    .await;
    // Sign in against the dead upstream: the landing page is a 502, the session is real.
    let browser = stack.browser();
    let landing = browser.login("/").await;
    assert_eq!(landing.status(), 502);
    let cookie = browser.cookie_header();
    tokio::time::sleep(DUE).await;
    let failed = stack.api(&cookie).await;
    assert_eq!(failed.status(), 502);
    assert!(
        session_cookie(&failed).is_some(),
        "the rotated session must not be lost"
    );
    assert_eq!(stack.standin.stats().refresh_token_grants, 1);
}

#[tokio::test]
async fn a_refresh_slower_than_the_grace_window_is_still_joined_not_replayed() {
    let stack = Stack::with(short_tokens().env("ROCKETGATE_SESSION__ROTATION_GRACE", "1s")).await;
    let (cookie, _) = signed_in(&stack).await;
    tokio::time::sleep(DUE).await;
    stack.standin.set_fault(
        FaultEndpoint::Token,
        Some(Fault::Hang(Duration::from_millis(2500))),
    );
    let first = {
        let client = stack.client();
        let url = stack.url("/api");
        let cookie = cookie.clone();
        tokio::spawn(async move {
            client
                .get(url)
                .header(ACCEPT, "application/json")
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap()
        })
    };
    // Well past rotation_grace, while the first refresh is still waiting on Rocketpunch.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let second = stack.api(&cookie).await;
    assert_eq!(second.status(), 200);
    assert_eq!(first.await.unwrap().status(), 200);
    let stats = stack.standin.stats();
    assert_eq!(
        stats.refresh_token_grants, 1,
        "one refresh, joined: {stats:?}"
    );
}

/// A front proxy that never passes the `Set-Cookie` of an auth answer on (Caddy's
/// `forward_auth`; nginx for all but the first cookie of a split session): the browser
/// presents the cookie of its sign-in forever. With rotating refresh tokens and a short
/// rotation grace, the user must still stay signed in across refreshes, with exactly one
/// token call each, and sign-out must end it.
#[tokio::test]
async fn a_front_proxy_that_drops_refreshed_cookies_signs_nobody_out() {
    let stack = Stack::with(
        Options {
            standin: StandInOptions {
                access_token_ttl: Duration::from_secs(2),
                ..Default::default()
            },
            ..Options::default()
        }
        .env("ROCKETGATE_SESSION__ROTATION_GRACE", "1s"),
    )
    .await;
    let browser = stack.browser();
    assert_eq!(browser.login("/").await.status(), 200);
    let first_cookie = browser.cookie_header();
    let client = stack.client();
    let check = || {
        client
            .get(stack.url("/oauth2/auth"))
            .header(COOKIE, &first_cookie)
            .header(ACCEPT, "application/json")
            .send()
    };
    // Each access token is due 1 s before it expires; three refreshes take about 4 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut checks = 0;
    while stack.standin.stats().refresh_token_grants < 3 {
        let answer = check().await.unwrap();
        assert_eq!(
            answer.status(),
            200,
            "check {checks} after {} refreshes",
            stack.standin.stats().refresh_token_grants
        );
        checks += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "three refreshes never happened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Past the rotation grace, the sign-in cookie still works, from the newest tokens.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(check().await.unwrap().status(), 200);
    let stats = stack.standin.stats();
    assert!(
        (3..=4).contains(&stats.refresh_token_grants),
        "one token call per refresh: {} for {checks} checks",
        stats.refresh_token_grants
    );
    assert_eq!(stats.authorization_code_grants, 1, "no second sign-in");

    // Sign-out forgets the newest tokens: the old cookie cannot bring the session back.
    let out = client
        .get(stack.url("/oauth2/sign_out"))
        .header(COOKIE, &first_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 302);
    assert_eq!(check().await.unwrap().status(), 401);
}

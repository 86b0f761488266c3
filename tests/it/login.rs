//! The login journey end to end: redirect, consent, callback, session, identity upstream.

use crate::support::{Echo, Options, Stack, location, set_cookies};
use reqwest::header::{ACCEPT, COOKIE};

#[tokio::test]
async fn full_login_returns_to_the_deep_link_with_identity_upstream() {
    let stack = Stack::start().await;
    let browser = stack.browser();

    let first = browser
        .get(&stack.url("/reports/q3?year=2026&x=%20y"))
        .await;
    assert_eq!(first.status(), 302);
    let authorize = location(&first);
    let url = reqwest::Url::parse(&authorize).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(url.path(), "/oauth/authorize");
    assert_eq!(q["client_id"], "demo-client");
    assert_eq!(q["redirect_uri"], stack.url("/oauth2/callback"));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "profile:read profile:email");
    assert!(q["state"].len() >= 22, "state carries >= 128 bits");
    let csrf = set_cookies(&first);
    assert_eq!(csrf.len(), 1);
    assert!(csrf[0].starts_with("_rocketgate_csrf_"), "{csrf:?}");
    assert!(csrf[0].contains("HttpOnly") && csrf[0].contains("Max-Age=600"));

    let back = browser.consent(&authorize, "1001", true).await;
    assert_eq!(back.status(), 302);
    let callback = browser.get(&location(&back)).await;
    assert_eq!(callback.status(), 302);
    assert_eq!(location(&callback), "/reports/q3?year=2026&x=%20y");
    let cookies = set_cookies(&callback);
    assert!(
        cookies.iter().any(|c| c.starts_with("_rocketgate=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")
            && c.contains("Max-Age=604800")),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("_rocketgate_csrf_") && c.contains("Max-Age=0")),
        "CSRF cookie cleared: {cookies:?}"
    );

    let echo: Echo = browser
        .client
        .get(stack.url("/reports/q3?year=2026&x=%20y"))
        .header(ACCEPT, "application/json")
        .header(
            COOKIE,
            format!("app_pref=dark; {}", browser.cookie_header()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo.uri, "/reports/q3?year=2026&x=%20y");
    assert_eq!(echo.header("x-forwarded-user"), Some("1001"));
    assert_eq!(echo.header("x-forwarded-email"), Some("ada@example.com"));
    assert_eq!(echo.header("x-forwarded-preferred-username"), Some("ada"));
    assert_eq!(echo.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(echo.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        echo.header("x-forwarded-host"),
        Some(stack.proxy.to_string().as_str())
    );
    assert!(echo.header("x-forwarded-access-token").is_none());
    assert!(echo.header("authorization").is_none());
    let cookie_upstream = echo.all("cookie").join("; ");
    assert!(
        cookie_upstream.contains("app_pref=dark"),
        "{cookie_upstream}"
    );
    assert!(
        !cookie_upstream.contains("_rocketgate"),
        "own cookie forwarded: {cookie_upstream}"
    );

    let html = browser.get(&stack.url("/")).await;
    assert_eq!(html.status(), 200);
    assert!(html.text().await.unwrap().contains("ada@example.com"));
    assert_eq!(stack.standin.stats().authorization_code_grants, 1);
    assert_eq!(
        stack.standin.stats().profile_calls,
        1,
        "profile read once at login, not per request"
    );
}

#[tokio::test]
async fn unauthenticated_api_calls_get_401_json_and_navigations_302() {
    let stack = Stack::start().await;
    let client = stack.client();
    for (accept, xhr) in [
        ("application/json", false),
        ("*/*", false),
        ("text/html", true),
    ] {
        let mut request = client.get(stack.url("/api/data")).header(ACCEPT, accept);
        if xhr {
            request = request.header("X-Requested-With", "XMLHttpRequest");
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{accept} xhr={xhr}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }
    let nav = client
        .get(stack.url("/api/data"))
        .header(ACCEPT, crate::support::HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(nav.status(), 302);
    assert!(location(&nav).starts_with(&format!("http://{}/oauth/authorize?", stack.provider)));
}

#[tokio::test]
async fn userinfo_and_auth_endpoints() {
    let stack = Stack::start().await;
    let client = stack.client();
    assert_eq!(
        client
            .get(stack.url("/oauth2/userinfo"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(stack.url("/oauth2/auth"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let browser = stack.browser();
    assert_eq!(browser.login("/").await.status(), 200);

    let info: serde_json::Value = browser
        .get(&stack.url("/oauth2/userinfo"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        info,
        serde_json::json!({"user": "1001", "email": "ada@example.com", "preferred_username": "ada"})
    );

    for path in ["/oauth2/auth", "/oauth2/auth/envoy/prefix"] {
        let auth = browser.get(&stack.url(path)).await;
        assert_eq!(auth.status(), 200, "{path}");
        assert_eq!(auth.headers()["x-auth-request-user"], "1001");
        assert_eq!(auth.headers()["x-auth-request-email"], "ada@example.com");
        assert_eq!(auth.headers()["x-auth-request-preferred-username"], "ada");
    }
}

#[tokio::test]
async fn not_allowed_users_get_403_everywhere() {
    let stack = Stack::with(
        crate::support::Options::default()
            .env("ROCKETGATE_ACCESS__ALLOWED_EMAIL_DOMAINS", "example.org"),
    )
    .await;
    // ada@example.com is refused at the callback and gets no session.
    let ada = stack.browser();
    let first = ada.get(&stack.url("/")).await;
    let back = ada.consent(&location(&first), "1001", true).await;
    let callback = ada.get(&location(&back)).await;
    assert_eq!(callback.status(), 403);
    assert!(
        !set_cookies(&callback)
            .iter()
            .any(|c| c.starts_with("_rocketgate="))
    );
    assert!(callback.text().await.unwrap().contains("not allowed"));
    // grace@example.org passes.
    let grace = stack.browser();
    assert_eq!(grace.login_as("/", "1002").await.status(), 200);
    assert_eq!(grace.get(&stack.url("/oauth2/auth")).await.status(), 200);
}

#[tokio::test]
async fn denied_consent_shows_a_page_with_a_working_try_again_link() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    let first = browser.get(&stack.url("/deep?x=1")).await;
    let back = browser.consent(&location(&first), "1001", false).await;
    assert!(location(&back).contains("error=access_denied"));
    let denied = browser.get(&location(&back)).await;
    assert_eq!(denied.status(), 403);
    assert!(
        !set_cookies(&denied)
            .iter()
            .any(|c| c.starts_with("_rocketgate="))
    );
    let html = denied.text().await.unwrap();
    assert!(html.contains("Try again"));
    let href = html
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert_eq!(href, "/oauth2/start?rd=%2Fdeep%3Fx%3D1");
    let again = browser.get(&stack.url(&href)).await;
    assert_eq!(again.status(), 302);
    let back = browser.consent(&location(&again), "1001", true).await;
    let done = browser.get(&location(&back)).await;
    assert_eq!(location(&done), "/deep?x=1");
}

#[tokio::test]
async fn callback_errors_missing_code_bad_state_and_replay() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    let missing = browser.get(&stack.url("/oauth2/callback?state=abc")).await;
    assert_eq!(missing.status(), 400);
    let unknown = browser
        .get(&stack.url("/oauth2/callback?code=x&state=unknown"))
        .await;
    assert_eq!(unknown.status(), 403);
    let no_state = browser.get(&stack.url("/oauth2/callback?code=x")).await;
    assert_eq!(no_state.status(), 403);

    let first = browser.get(&stack.url("/")).await;
    let back = browser.consent(&location(&first), "1001", true).await;
    let callback_url = location(&back);
    // A state from another browser (no CSRF cookie) is refused.
    let other = stack.browser();
    assert_eq!(other.get(&callback_url).await.status(), 403);
    // The real browser completes, once.
    let cookie_header = browser.cookie_header();
    assert_eq!(browser.get(&callback_url).await.status(), 302);
    // Replaying the same callback with the CSRF cookie it had is refused too.
    let replay = stack
        .client()
        .get(&callback_url)
        .header(COOKIE, cookie_header)
        .header(ACCEPT, crate::support::HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 403);
    assert_eq!(stack.standin.stats().authorization_code_grants, 1);
}

#[tokio::test]
async fn two_tabs_logging_in_at_once_both_complete() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    let tab1 = browser.get(&stack.url("/one")).await;
    let tab2 = browser.get(&stack.url("/two")).await;
    let back1 = browser.consent(&location(&tab1), "1001", true).await;
    let back2 = browser.consent(&location(&tab2), "1001", true).await;
    let done2 = browser.get(&location(&back2)).await;
    let done1 = browser.get(&location(&back1)).await;
    assert_eq!(
        (done1.status().as_u16(), done2.status().as_u16()),
        (302, 302)
    );
    assert_eq!(location(&done1), "/one");
    assert_eq!(location(&done2), "/two");
}

#[tokio::test]
async fn sign_out_clears_the_session() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    assert_eq!(browser.login("/").await.status(), 200);
    let out = browser.get(&stack.url("/oauth2/sign_out?rd=/bye")).await;
    assert_eq!(out.status(), 302);
    assert_eq!(location(&out), "/bye");
    assert!(
        set_cookies(&out)
            .iter()
            .any(|c| c.starts_with("_rocketgate=") && c.contains("Max-Age=0"))
    );
    assert_eq!(
        browser.get(&stack.url("/")).await.status(),
        302,
        "signed out: login again"
    );
    let evil = browser
        .get(&stack.url("/oauth2/sign_out?rd=//evil.com"))
        .await;
    assert_eq!(location(&evil), "/");
}

#[tokio::test]
async fn start_validates_rd() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    for (rd, expected) in [
        ("/ok?a=b", "/ok?a=b"),
        ("https://evil.com/", "/"),
        ("/\\evil.com", "/"),
    ] {
        let start = browser
            .get(&stack.url(&format!("/oauth2/start?rd={}", urlencode(rd))))
            .await;
        let back = browser.consent(&location(&start), "1001", true).await;
        let done = browser.get(&location(&back)).await;
        assert_eq!(location(&done), expected, "rd={rd}");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_very_long_deep_link_still_logs_in_and_keeps_its_path() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    let long = format!("/dash/board?q={}", "x".repeat(3000));
    let first = browser.get(&stack.url(&long)).await;
    let csrf = set_cookies(&first);
    assert!(
        csrf[0].len() < 4096,
        "the login cookie stays one cookie: {} bytes",
        csrf[0].len()
    );
    let back = browser.consent(&location(&first), "1001", true).await;
    let done = browser.get(&location(&back)).await;
    assert_eq!(done.status(), 302);
    assert_eq!(
        location(&done),
        "/dash/board",
        "an over-long query is dropped, the path kept"
    );
}

#[tokio::test]
async fn pkce_is_on_by_default_and_binds_the_code_to_this_browser() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    let first = browser.get(&stack.url("/")).await;
    let authorize = location(&first);
    let url = reqwest::Url::parse(&authorize).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);

    // A code intercepted on its way back is useless without the verifier in our CSRF cookie.
    let back = browser.consent(&authorize, "1001", true).await;
    let callback = reqwest::Url::parse(&location(&back)).unwrap();
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let stolen = stack
        .client()
        .post(format!("http://{}/oauth/token", stack.provider))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", "demo-client"),
            ("client_secret", "stack-client-secret"),
            ("redirect_uri", &stack.url("/oauth2/callback")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 400);
    let done = browser.get(callback.as_str()).await;
    assert_eq!(done.status(), 302, "the real browser still completes");

    let off = Stack::with(Options::default().env("ROCKETGATE_PROVIDER__PKCE", "false")).await;
    let browser = off.browser();
    let first = browser.get(&off.url("/")).await;
    assert!(!location(&first).contains("code_challenge"));
    assert_eq!(browser.login("/").await.status(), 200);
}

/// `/oauth2/sign_in`, oauth2-proxy's sign-in URL: the sign-in page (200) when it is on, its
/// button returning to `rd`, else the same redirect as `/oauth2/start`. A return URL in
/// `X-Auth-Request-Redirect` counts only from a trusted proxy.
#[tokio::test]
async fn sign_in_is_the_page_or_the_login_and_trusts_the_redirect_header_only_from_proxies() {
    let with_page =
        Stack::with(Options::default().env("ROCKETGATE_PAGES__SIGN_IN_PAGE", "true")).await;
    let browser = with_page.browser();
    let page = browser
        .get(&with_page.url("/oauth2/sign_in?rd=%2Fdeep%3Fa%3D1"))
        .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("href=\"/oauth2/start?rd=%2Fdeep%3Fa%3D1\""),
        "{html}"
    );
    // Not from a trusted proxy: the header is ignored, the button returns to `/`.
    let untrusted = browser
        .client
        .get(with_page.url("/oauth2/sign_in"))
        .header("x-auth-request-redirect", "/deep")
        .send()
        .await
        .unwrap();
    let html = untrusted.text().await.unwrap();
    assert!(html.contains("href=\"/oauth2/start?rd=%2F\""), "{html}");

    let trusting =
        Stack::with(Options::default().env("ROCKETGATE_TRUSTED_PROXIES", "127.0.0.1")).await;
    let browser = trusting.browser();
    let to_provider = browser
        .client
        .get(trusting.url("/oauth2/sign_in"))
        .header("x-auth-request-redirect", "/deep?a=1&b=2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        to_provider.status(),
        302,
        "no page: straight to Rocketpunch"
    );
    let back = browser.consent(&location(&to_provider), "1001", true).await;
    let callback = browser.get(&location(&back)).await;
    assert_eq!(location(&callback), "/deep?a=1&b=2");

    let robots = trusting
        .client()
        .get(trusting.url("/robots.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(robots.status(), 200);
    assert_eq!(
        robots.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(robots.text().await.unwrap(), "User-agent: *\nDisallow: /\n");
}

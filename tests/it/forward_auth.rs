//! `/oauth2/auth` as Traefik's forwardAuth and Envoy's ext_authz call it, without a proxy in
//! front: the plain mode (200/401/403) and `?mode=redirect` (302 to the login for browsers),
//! with trusted and untrusted peers. `front_proxies.rs` runs it behind real nginx, Caddy and Traefik; `mesh_shapes.rs` replays Envoy, Istio and ingress-nginx.

use crate::support::{HTML, Options, Stack, location};
use reqwest::header::ACCEPT;

/// The login URL `?mode=redirect` should point at, returning to `rd` (None: no `rd`).
fn start_url(stack: &Stack, rd: Option<&str>) -> String {
    match rd {
        Some(rd) => format!(
            "{}?rd={}",
            stack.url("/oauth2/start"),
            form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        ),
        None => stack.url("/oauth2/start"),
    }
}

async fn check(stack: &Stack, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = stack.client().get(stack.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn trusted() -> Options {
    Options::default()
        .env("ROCKETGATE_TRUSTED_PROXIES", "127.0.0.1")
        .env("ROCKETGATE_ACCESS__REDIRECT_DOMAINS", "app.example.com")
}

#[tokio::test]
async fn plain_mode_answers_401_even_to_browsers() {
    let stack = Stack::with(trusted()).await;
    for accept in [HTML, "application/json"] {
        let r = check(
            &stack,
            "/oauth2/auth",
            &[(ACCEPT.as_str(), accept), ("x-forwarded-uri", "/deep")],
        )
        .await;
        assert_eq!(r.status(), 401, "{accept}");
        assert!(r.headers().get("location").is_none());
    }
}

#[tokio::test]
async fn redirect_mode_sends_browsers_to_the_login_and_others_get_401() {
    let stack = Stack::with(trusted()).await;
    let deep = "/deep/link?a=1&b=x%2Cy";
    for path in [
        "/oauth2/auth?mode=redirect",
        "/oauth2/auth/traefik?mode=redirect",
    ] {
        let r = check(
            &stack,
            path,
            &[(ACCEPT.as_str(), HTML), ("x-forwarded-uri", deep)],
        )
        .await;
        assert_eq!(r.status(), 302, "{path}");
        assert_eq!(location(&r), start_url(&stack, Some(deep)), "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    for headers in [
        [
            (ACCEPT.as_str(), "application/json"),
            ("x-forwarded-uri", deep),
        ],
        [
            (ACCEPT.as_str(), HTML),
            ("x-requested-with", "XMLHttpRequest"),
        ],
    ] {
        let r = check(&stack, "/oauth2/auth?mode=redirect", &headers).await;
        assert_eq!(r.status(), 401, "{headers:?}");
    }
    // Any other mode is the plain one.
    let r = check(
        &stack,
        "/oauth2/auth?mode=Redirect",
        &[(ACCEPT.as_str(), HTML)],
    )
    .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_return_url_comes_only_from_a_trusted_proxy_and_passes_the_redirect_policy() {
    let stack = Stack::with(trusted()).await;
    let public_host = stack.proxy.to_string();
    for (headers, rd) in [
        // On public_url's own origin the path is kept as it was sent.
        (
            vec![
                ("x-forwarded-uri", "/p?x=1"),
                ("x-forwarded-host", public_host.as_str()),
                ("x-forwarded-proto", "http"),
            ],
            Some("/p?x=1"),
        ),
        // Traefik style: an app on another allowed host comes back to that host.
        (
            vec![
                ("x-forwarded-uri", "/p?x=1"),
                ("x-forwarded-host", "app.example.com"),
                ("x-forwarded-proto", "https"),
            ],
            Some("https://app.example.com/p?x=1"),
        ),
        // A host the policy refuses is dropped; the path alone remains.
        (
            vec![
                ("x-forwarded-uri", "/p"),
                ("x-forwarded-host", "evil.com"),
                ("x-forwarded-proto", "https"),
            ],
            Some("/p"),
        ),
        (vec![("x-forwarded-uri", "//evil.com/")], None),
        (vec![("x-forwarded-uri", "/\\evil.com")], None),
        // ingress-nginx sends the whole URL in X-Original-URL.
        (
            vec![("x-original-url", "https://app.example.com/q")],
            Some("https://app.example.com/q"),
        ),
        (vec![("x-original-url", "https://evil.com/q")], None),
        (vec![], None),
    ] {
        let mut all = vec![(ACCEPT.as_str(), HTML)];
        all.extend(headers.iter().copied());
        let r = check(&stack, "/oauth2/auth?mode=redirect", &all).await;
        assert_eq!(r.status(), 302, "{headers:?}");
        assert_eq!(location(&r), start_url(&stack, rd), "{headers:?}");
    }

    // The same headers from a peer that is not trusted are ignored altogether.
    let untrusted = Stack::with(
        Options::default().env("ROCKETGATE_ACCESS__REDIRECT_DOMAINS", "app.example.com"),
    )
    .await;
    for headers in [
        [
            ("x-forwarded-uri", "/p?x=1"),
            ("x-forwarded-host", "app.example.com"),
        ],
        [
            ("x-original-url", "https://app.example.com/q"),
            ("x-forwarded-proto", "https"),
        ],
    ] {
        let mut all = vec![(ACCEPT.as_str(), HTML)];
        all.extend(headers.iter().copied());
        let r = check(&untrusted, "/oauth2/auth?mode=redirect", &all).await;
        assert_eq!(r.status(), 302, "{headers:?}");
        assert_eq!(location(&r), start_url(&untrusted, None), "{headers:?}");
    }
}

#[tokio::test]
async fn following_the_redirect_signs_in_and_returns_to_the_deep_link() {
    let stack = Stack::with(trusted()).await;
    let browser = stack.browser();
    let deep = "/deep/link?a=1&b=2";
    let denied = browser
        .client
        .get(stack.url("/oauth2/auth?mode=redirect"))
        .header("x-forwarded-uri", deep)
        .send()
        .await
        .unwrap();
    let start = browser.get(&location(&denied)).await;
    let back = browser.consent(&location(&start), "1001", true).await;
    let callback = browser.get(&location(&back)).await;
    assert_eq!(location(&callback), deep);

    // Signed in, both modes answer exactly 200 with the identity.
    for path in ["/oauth2/auth", "/oauth2/auth?mode=redirect"] {
        let ok = browser.get(&stack.url(path)).await;
        assert_eq!(ok.status(), 200, "{path}");
        assert_eq!(ok.headers()["x-auth-request-user"], "1001");
        assert_eq!(ok.headers()["x-auth-request-email"], "ada@example.com");
    }
}

#[tokio::test]
async fn signed_in_but_not_allowed_is_403_in_both_modes() {
    const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let open = Stack::with(trusted().env("ROCKETGATE_COOKIE__SECRET", SECRET)).await;
    let restricted = Stack::with(
        trusted()
            .env("ROCKETGATE_COOKIE__SECRET", SECRET)
            .env("ROCKETGATE_ACCESS__ALLOWED_EMAIL_DOMAINS", "example.org"),
    )
    .await;
    let browser = open.browser();
    browser.login("/").await;
    let cookie = browser.cookie_header();
    for (path, accept, html) in [
        ("/oauth2/auth", HTML, false),
        ("/oauth2/auth?mode=redirect", "application/json", false),
        ("/oauth2/auth?mode=redirect", HTML, true),
    ] {
        let r = check(
            &restricted,
            path,
            &[(ACCEPT.as_str(), accept), ("cookie", &cookie)],
        )
        .await;
        assert_eq!(r.status(), 403, "{path} {accept}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(
            content_type.starts_with("text/html"),
            html,
            "{path} {accept}: {content_type}"
        );
    }
}

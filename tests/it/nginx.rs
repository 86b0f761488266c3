//! Forward-auth mode behind a real nginx (`auth_request`): rocketgate decides, nginx proxies
//! to the app. The nginx config here is the one `docs/integrations.md` documents; if it has
//! to change, change the docs with it.

use std::time::Duration;

use crate::support::nginx::Nginx;
use crate::support::process::free_port;
use crate::support::{Browser, Echo, Options, Stack, location, set_cookies};
use reqwest::header::{ACCEPT, SET_COOKIE};
use rocketgate_demo::StandInOptions;

/// The `http {}` part of the tested config: where rocketgate and the app listen.
fn nginx_http(stack: &Stack) -> String {
    format!(
        r#"
    upstream rocketgate    {{ server {proxy}; }}
    upstream echo_upstream {{ server {upstream}; }}
"#,
        proxy = stack.proxy,
        upstream = stack.upstream,
    )
}

/// The `server {}` part of the tested config, as documented in `docs/integrations.md`.
const NGINX_SERVER: &str = r#"
        # The check nginx runs before every protected request: a body-less subrequest.
        location = /oauth2/auth {
            internal;
            proxy_pass http://rocketgate/oauth2/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }

        # rocketgate's own pages: start, callback, sign_out, userinfo.
        location /oauth2/ {
            proxy_pass http://rocketgate;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Uri "";
            proxy_set_header X-Original-URL "";
            proxy_set_header X-Original-URI "";
        }

        # The protected app.
        location / {
            auth_request /oauth2/auth;
            auth_request_set $user     $upstream_http_x_auth_request_user;
            auth_request_set $email    $upstream_http_x_auth_request_email;
            auth_request_set $username $upstream_http_x_auth_request_preferred_username;
            auth_request_set $groups   $upstream_http_x_auth_request_groups;
            auth_request_set $auth_cookie $upstream_http_set_cookie;
            add_header Set-Cookie $auth_cookie;
            # The identity the app reads, from the check alone: each line replaces the client's
            # own header of that name, and an empty value sends none.
            proxy_set_header X-Forwarded-User $user;
            proxy_set_header X-Forwarded-Email $email;
            proxy_set_header X-Forwarded-Preferred-Username $username;
            proxy_set_header X-Forwarded-Groups $groups;
            proxy_set_header X-Auth-Request-User "";
            proxy_set_header X-Auth-Request-Email "";
            proxy_set_header X-Auth-Request-Preferred-Username "";
            proxy_set_header X-Auth-Request-Groups "";
            error_page 401 = @login;
            proxy_pass http://echo_upstream;
        }

        # Not signed in: rocketgate answers browsers with a 302 to /oauth2/start carrying the
        # percent-encoded deep link, everything else with 401 JSON.
        location @login {
            rewrite ^ /oauth2/auth?mode=redirect? break;
            proxy_pass http://rocketgate;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
"#;

/// rocketgate (trusting 127.0.0.1, where nginx connects from) with its stand-in provider and
/// the echo app, behind a real nginx whose address is rocketgate's `public_url`.
struct Gateway {
    stack: Stack,
    nginx: Nginx,
}

impl Gateway {
    /// `options` is called again if nginx's port was taken before nginx could bind it, since
    /// the port is part of rocketgate's configuration.
    async fn start(options: impl Fn() -> Options) -> Gateway {
        for attempt in 1..=3 {
            let addr = free_port();
            let stack = Stack::with(
                Options {
                    public_url: Some(format!("http://{addr}")),
                    ..options()
                }
                .env("ROCKETGATE_TRUSTED_PROXIES", "127.0.0.1"),
            )
            .await;
            match Nginx::start(addr, &nginx_http(&stack), NGINX_SERVER).await {
                Ok(nginx) => return Gateway { stack, nginx },
                Err(e) if e.port_taken() && attempt < 3 => stack.stop().await,
                Err(e) => panic!("nginx did not start:\n{}", e.stderr),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn browser(&self) -> Browser {
        Browser::new(self.nginx.addr)
    }

    fn url(&self, path: &str) -> String {
        self.nginx.url(path)
    }

    /// Signs `user` in through nginx from `deep_link`, checking every hop; returns the
    /// final response (the app's page at the deep link).
    async fn login(&self, browser: &Browser, deep_link: &str, user: &str) -> reqwest::Response {
        let first = browser.get(&self.url(deep_link)).await;
        assert_eq!(
            first.status(),
            302,
            "protected navigation goes to the login"
        );
        let start = location(&first);
        let expected = format!(
            "{}?rd={}",
            self.url("/oauth2/start"),
            form_urlencoded::byte_serialize(deep_link.as_bytes()).collect::<String>()
        );
        assert_eq!(start, expected, "the whole deep link, percent-encoded");

        let to_provider = browser.get(&start).await;
        assert_eq!(to_provider.status(), 302, "/oauth2/start through nginx");
        let authorize = location(&to_provider);
        assert!(
            authorize.starts_with(&format!("http://{}/oauth/authorize?", self.stack.provider)),
            "{authorize}"
        );
        let url = reqwest::Url::parse(&authorize).unwrap();
        let redirect_uri = url
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned());
        assert_eq!(redirect_uri, Some(self.url("/oauth2/callback")));

        let back = browser.consent(&authorize, user, true).await;
        assert_eq!(back.status(), 302, "stand-in redirects back");
        let callback_url = location(&back);
        assert!(callback_url.starts_with(&self.url("/oauth2/callback?")));
        let callback = browser.get(&callback_url).await;
        assert_eq!(callback.status(), 302, "callback through nginx");
        assert_eq!(
            location(&callback),
            deep_link,
            "back on the exact deep link"
        );
        browser.get(&self.url(deep_link)).await
    }
}

/// What the app saw for a signed-in API request through nginx.
async fn echo(browser: &Browser, url: &str) -> Echo {
    let response = browser
        .client
        .get(url)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

/// Several parameters (nginx cannot percent-encode `$request_uri` for an `rd=`, so they would
/// be cut at the first `&` there), a `+` and an encoded comma. (`%20` would be refused: the
/// redirect policy refuses whitespace in the once-decoded target.)
const DEEP_LINK: &str = "/reports/q3?region=eu&sort=-date&q=a+b&tags=x%2Cy";

#[tokio::test]
async fn a_browser_signs_in_through_nginx_and_lands_on_the_exact_deep_link() {
    let gw = Gateway::start(Options::default).await;
    let browser = gw.browser();

    let page = gw.login(&browser, DEEP_LINK, "1001").await;
    assert_eq!(page.status(), 200);

    let seen = echo(&browser, &gw.url(DEEP_LINK)).await;
    assert_eq!(seen.uri, DEEP_LINK);
    assert_eq!(seen.header("x-forwarded-user"), Some("1001"));
    assert_eq!(seen.header("x-forwarded-email"), Some("ada@example.com"));
    assert_eq!(gw.stack.standin.stats().authorization_code_grants, 1);

    // A signed-in client's own identity headers, in any spelling, never reach the app.
    let spoofed = browser
        .client
        .get(gw.url("/spoof"))
        .header(ACCEPT, "application/json")
        .header("X-Forwarded-User", "root")
        .header("x-forwarded-email", "root@evil.example")
        .header("X-FORWARDED-PREFERRED-USERNAME", "root")
        .header("X-Forwarded-Groups", "admins")
        .header("X-Auth-Request-User", "root")
        .header("x-auth-request-email", "root@evil.example")
        .header("X_Forwarded_User", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 200);
    let seen: Echo = spoofed.json().await.unwrap();
    assert_eq!(seen.header("x-forwarded-user"), Some("1001"));
    assert_eq!(seen.header("x-forwarded-email"), Some("ada@example.com"));
    assert_eq!(seen.header("x-forwarded-preferred-username"), Some("ada"));
    for name in [
        "x-forwarded-groups",
        "x-auth-request-user",
        "x-auth-request-email",
        "x_forwarded_user",
    ] {
        assert_eq!(seen.header(name), None, "{name} reached the app: {seen:?}");
    }
    let all: Vec<&str> = seen.headers.iter().map(|(_, v)| v.as_str()).collect();
    assert!(
        !all.iter().any(|v| v.contains("root")),
        "a forged value reached the app: {all:?}"
    );
}

#[tokio::test]
async fn requests_without_a_session_get_401_through_nginx_and_cannot_choose_the_return_url() {
    let gw = Gateway::start(Options::default).await;
    let client = gw.stack.client();

    for (name, value) in [
        ("accept", "application/json"),
        ("x-requested-with", "XMLHttpRequest"),
    ] {
        let r = client
            .get(gw.url("/api/orders?page=2"))
            .header(name, value)
            .header("x-user", "forged")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{name}: {value}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "rocketgate's JSON 401 reaches the client"
        );
    }

    // The auth check is internal: clients cannot call it through nginx.
    let direct = client.get(gw.url("/oauth2/auth")).send().await.unwrap();
    assert_eq!(direct.status(), 404);

    // A client's own X-Forwarded-Uri never becomes the return URL: nginx overwrites it
    // in @login and removes it on /oauth2/.
    let browser = gw.browser();
    let first = browser
        .client
        .get(gw.url("/mine"))
        .header("x-forwarded-uri", "/theirs")
        .send()
        .await
        .unwrap();
    assert_eq!(location(&first), gw.url("/oauth2/start?rd=%2Fmine"));
    let start = browser
        .client
        .get(gw.url("/oauth2/start"))
        .header("x-forwarded-uri", "/theirs")
        .send()
        .await
        .unwrap();
    let back = browser.consent(&location(&start), "1001", true).await;
    assert_eq!(location(&browser.get(&location(&back)).await), "/");
}

#[tokio::test]
async fn the_refreshed_cookie_reaches_the_browser_through_auth_request_set() {
    // 4 s access tokens: due for refresh after 2-3 s (see tests/refresh.rs).
    let gw = Gateway::start(|| Options {
        standin: StandInOptions {
            access_token_ttl: Duration::from_secs(4),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let browser = gw.browser();
    gw.login(&browser, "/", "1001").await;
    let before = browser.cookie("_rocketgate").expect("session cookie");

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let response = browser
        .client
        .get(gw.url("/after-refresh"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let set: Vec<String> = set_cookies(&response);
    assert!(
        set.iter()
            .any(|c| c.starts_with("_rocketgate=") && c.contains("HttpOnly")),
        "the refreshed session cookie passes through nginx: {set:?}"
    );
    assert_eq!(gw.stack.standin.stats().refresh_token_grants, 1);
    let after = browser.cookie("_rocketgate").expect("session cookie");
    assert_ne!(before, after, "the browser holds the new cookie");

    // The new cookie works and is not due again: no second refresh, no new cookie.
    let again = browser
        .client
        .get(gw.url("/after-refresh"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert!(again.headers().get(SET_COOKIE).is_none());
    let seen: Echo = again.json().await.unwrap();
    assert_eq!(seen.header("x-forwarded-user"), Some("1001"));
    assert_eq!(gw.stack.standin.stats().refresh_token_grants, 1);
}

#[tokio::test]
async fn sign_out_through_nginx_ends_the_session() {
    let gw = Gateway::start(Options::default).await;
    let browser = gw.browser();
    gw.login(&browser, "/", "1001").await;
    assert!(browser.cookie("_rocketgate").is_some());

    let out = browser.get(&gw.url("/oauth2/sign_out?rd=%2Fbye")).await;
    assert_eq!(out.status(), 302);
    assert_eq!(location(&out), "/bye");
    assert!(
        set_cookies(&out)
            .iter()
            .any(|c| c.starts_with("_rocketgate=;") && c.contains("Max-Age=0")),
        "{:?}",
        set_cookies(&out)
    );
    assert!(browser.cookie("_rocketgate").is_none());

    let api = browser
        .client
        .get(gw.url("/bye"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    let page = browser.get(&gw.url("/bye")).await;
    assert_eq!(location(&page), gw.url("/oauth2/start?rd=%2Fbye"));
}

#[tokio::test]
async fn a_user_who_is_not_allowed_gets_403_through_nginx() {
    // Two gateways sharing a cookie secret: one lets anyone in, the other only example.org.
    const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let open = Gateway::start(|| Options::default().env("ROCKETGATE_COOKIE__SECRET", SECRET)).await;
    let restricted = Gateway::start(|| {
        Options::default()
            .env("ROCKETGATE_COOKIE__SECRET", SECRET)
            .env("ROCKETGATE_ACCESS__ALLOWED_EMAIL_DOMAINS", "example.org")
    })
    .await;

    // Signing in at the restricted gateway: refused at the callback, no session.
    let ada = restricted.browser();
    let first = ada.get(&restricted.url("/")).await;
    let to_provider = ada.get(&location(&first)).await;
    let back = ada.consent(&location(&to_provider), "1001", true).await;
    let callback = ada.get(&location(&back)).await;
    assert_eq!(callback.status(), 403);
    assert!(ada.cookie("_rocketgate").is_none());

    // A valid session of a user the restricted gateway does not allow: auth_request says
    // 403 and nginx refuses the request; the app never sees it.
    let ada = open.browser();
    open.login(&ada, "/", "1001").await;
    let cookie = ada.cookie_header();
    let refused = open
        .stack
        .client()
        .get(restricted.url("/private"))
        .header(ACCEPT, "application/json")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    // grace@example.org is let in.
    let grace = restricted.browser();
    assert_eq!(restricted.login(&grace, "/", "1002").await.status(), 200);
    let seen = echo(&grace, &restricted.url("/private")).await;
    assert_eq!(seen.header("x-forwarded-email"), Some("grace@example.org"));
}

//! nginx specifics, beyond the journeys every front proxy runs in `front_proxies.rs` with the
//! configuration `docs/integrations.md` documents (`support::front::NGINX_SERVER`).

use crate::support::Options;
use crate::support::front::{Front, Gateway};

#[tokio::test]
async fn the_check_is_internal_and_xhr_calls_get_401_not_the_login() {
    let gw = Gateway::start(Front::Nginx, Options::default).await;
    let client = gw.stack.client();

    // The auth check is `internal`: clients cannot call it through nginx.
    let direct = client.get(gw.url("/oauth2/auth")).send().await.unwrap();
    assert_eq!(direct.status(), 404);

    // `@login` asks rocketgate again: an XMLHttpRequest is a script, not a navigation.
    let xhr = client
        .get(gw.url("/api/orders?page=2"))
        .header("accept", crate::support::HTML)
        .header("x-requested-with", "XMLHttpRequest")
        .send()
        .await
        .unwrap();
    assert_eq!(xhr.status(), 401);
    assert!(
        xhr.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

/// oauth2-proxy's documented nginx snippet (its 7.9-7.13 docs), unchanged but for the
/// upstream names: the sign-in page on 401 (served as 403), the return URL in
/// `X-Auth-Request-Redirect`, the identity as `X-User` and `X-Email`.
const OAUTH2_PROXY_SNIPPET: &str = r#"
        location /oauth2/ {
            proxy_pass http://rocketgate;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Auth-Request-Redirect $request_uri;
        }
        location = /oauth2/auth {
            proxy_pass http://rocketgate;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header Content-Length "";
            proxy_pass_request_body off;
        }
        location / {
            auth_request /oauth2/auth;
            error_page 401 =403 /oauth2/sign_in;
            auth_request_set $user   $upstream_http_x_auth_request_user;
            auth_request_set $email  $upstream_http_x_auth_request_email;
            proxy_set_header X-User  $user;
            proxy_set_header X-Email $email;
            auth_request_set $auth_cookie $upstream_http_set_cookie;
            add_header Set-Cookie $auth_cookie;
            proxy_pass http://echo_upstream;
        }
"#;

/// oauth2-proxy's newer snippet (7.10 and later): a named location that redirects to
/// `/oauth2/sign_in?rd=` with the whole URL (not encoded, so only deep links without `&`
/// survive it whole).
const OAUTH2_PROXY_REDIRECT_SNIPPET: &str = r#"
        location /oauth2/ {
            proxy_pass http://rocketgate;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Auth-Request-Redirect $request_uri;
        }
        location = /oauth2/auth {
            proxy_pass http://rocketgate;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header Content-Length "";
            proxy_pass_request_body off;
        }
        location @oauth2_signin {
            return 302 /oauth2/sign_in?rd=$scheme://$http_host$request_uri;
        }
        location / {
            auth_request /oauth2/auth;
            error_page 401 = @oauth2_signin;
            auth_request_set $user   $upstream_http_x_auth_request_user;
            auth_request_set $email  $upstream_http_x_auth_request_email;
            proxy_set_header X-User  $user;
            proxy_set_header X-Email $email;
            proxy_pass http://echo_upstream;
        }
"#;

/// The `href` of the sign-in page's button.
fn button_link(html: &str) -> String {
    let at = html
        .find("href=\"/oauth2/start")
        .expect("a link to /oauth2/start");
    let rest = &html[at + "href=\"".len()..];
    rest[..rest.find('"').unwrap()].replace("&amp;", "&")
}

#[tokio::test]
async fn oauth2_proxys_nginx_snippet_works_unchanged_with_the_sign_in_page() {
    let gw = Gateway::start(Front::NginxWith(OAUTH2_PROXY_SNIPPET), || {
        Options::default().env("ROCKETGATE_PAGES__SIGN_IN_PAGE", "true")
    })
    .await;
    let browser = gw.browser();
    let deep = "/reports/q3?region=eu&sort=-date";
    let page = browser.get(&gw.url(deep)).await;
    assert_eq!(
        page.status(),
        403,
        "the snippet serves the sign-in page as 403"
    );
    let link = button_link(&page.text().await.unwrap());
    assert_eq!(
        link,
        format!(
            "/oauth2/start?rd={}",
            form_urlencoded::byte_serialize(deep.as_bytes()).collect::<String>()
        ),
        "the whole deep link, from X-Auth-Request-Redirect"
    );
    let to_provider = browser.get(&gw.url(&link)).await;
    assert_eq!(to_provider.status(), 302);
    let back = browser
        .consent(&crate::support::location(&to_provider), "1001", true)
        .await;
    let callback = browser.get(&crate::support::location(&back)).await;
    assert_eq!(crate::support::location(&callback), deep);
    let seen = gw.echo(&browser, deep).await;
    assert_eq!(seen.header("x-user"), Some("1001"));
    assert_eq!(seen.header("x-email"), Some("ada@example.com"));

    // `/robots.txt` through the snippet is the app's business (nginx sends it there); at
    // rocketgate itself it keeps crawlers out.
    let robots = gw
        .stack
        .client()
        .get(gw.stack.url("/robots.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(robots.status(), 200);
    assert_eq!(robots.text().await.unwrap(), "User-agent: *\nDisallow: /\n");
}

#[tokio::test]
async fn oauth2_proxys_newer_nginx_snippet_signs_in_without_the_sign_in_page() {
    let gw = Gateway::start(
        Front::NginxWith(OAUTH2_PROXY_REDIRECT_SNIPPET),
        Options::default,
    )
    .await;
    let browser = gw.browser();
    let deep = "/reports/q3?region=eu";
    let first = browser.get(&gw.url(deep)).await;
    assert_eq!(first.status(), 302);
    let sign_in = crate::support::location(&first);
    // nginx makes the snippet's relative Location absolute.
    assert_eq!(
        sign_in,
        gw.url(&format!("/oauth2/sign_in?rd={}", gw.url(deep)))
    );
    // Without the sign-in page, /oauth2/sign_in goes straight to Rocketpunch.
    let to_provider = browser.get(&sign_in).await;
    assert_eq!(to_provider.status(), 302);
    let authorize = crate::support::location(&to_provider);
    assert!(authorize.contains("/oauth/authorize?"), "{authorize}");
    let back = browser.consent(&authorize, "1001", true).await;
    let callback = browser.get(&crate::support::location(&back)).await;
    assert_eq!(crate::support::location(&callback), gw.url(deep));
    let seen = gw.echo(&browser, deep).await;
    assert_eq!(seen.header("x-user"), Some("1001"));

    // A script sent to /oauth2/sign_in gets 401, never a login page.
    let script = gw
        .stack
        .client()
        .get(gw.url("/oauth2/sign_in?rd=%2Fapi"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 401);
}

//! One gate in front of several apps: routes by host and path, per-route policy with groups
//! from the configuration and from Rocketpunch's profile, claim headers, `strip_prefix`,
//! `preserve_host`, public routes, single sign-on across hosts with `cookie.domain`, and
//! forward-auth checks that pick their route from the front proxy's report.

use std::net::SocketAddr;

use reqwest::StatusCode;
use rocketgate_demo::spawn_upstream;

use crate::support::{Browser, Echo, Options, Stack, location, set_cookies};

const HOSTS: &[&str] = &[
    "auth.example.test",
    "grafana.example.test",
    "x.apps.example.test",
    "a.example.test",
    "other.example.test",
];

async fn echo_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    spawn_upstream(listener);
    addr
}

/// Three upstreams (the stack's own one and two more), told apart by the base path each
/// route's upstream URL adds; no top-level upstream, so an unrouted request is 404.
async fn gateway() -> (Stack, SocketAddr) {
    let b = echo_upstream().await;
    let c = echo_upstream().await;
    let toml = format!(
        r#"
[[routes]]
host = "grafana.example.test"
upstream = "http://{b}/grafana"
allowed_groups = ["ops"]

[[routes]]
host = "grafana.example.test"
path = "/api"
upstream = "http://{c}/grafana-api"
strip_prefix = true
preserve_host = false

[[routes]]
path = "/docs"
upstream = "http://{c}/docs"
public = true

[[routes]]
host = "*.apps.example.test"
upstream = "http://{b}/apps"
allowed_groups = ["navy"]

[[routes]]
host = "auth.example.test"
path = "/team"
upstream = "http://{c}/team"
allowed_email_domains = ["example.org"]

[[routes]]
host = "a.example.test"
upstream = "http://{{upstream}}/a"

[groups]
ops = {{ emails = ["ada@example.com"] }}

[provider.claims]
groups = "/teams"

[headers.claims]
"X-Forwarded-Name" = "/name"
"#
    );
    // The stack's own upstream is only known inside `Stack::with`: route it via a fourth
    // echo instead, so every route's address is fixed here.
    let a = echo_upstream().await;
    let toml = toml.replace("{upstream}", &a.to_string());
    let stack = Stack::with(
        Options {
            public_url: Some("http://auth.example.test:{port}".into()),
            extra_toml: toml,
            no_default_upstream: true,
            ..Options::default()
        }
        .env("ROCKETGATE_COOKIE__DOMAIN", "example.test")
        .env("ROCKETGATE_TRUSTED_PROXIES", "127.0.0.1/32"),
    )
    .await;
    (stack, c)
}

fn at(stack: &Stack, host: &str, path: &str) -> String {
    format!("http://{host}:{}{path}", stack.proxy.port())
}

async fn echo(response: reqwest::Response) -> Echo {
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    response.json().await.unwrap()
}

/// What the app behind `url` saw, asked as a script would (the demo app answers browsers
/// with its page and scripts with the echo).
async fn seen(browser: &Browser, url: &str) -> Echo {
    echo(
        browser
            .client
            .get(url)
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Signs in from a deep link on `host` as `user`, through `public_url`, and returns the
/// deep link the browser was sent back to.
async fn sign_in(stack: &Stack, browser: &Browser, host: &str, path: &str, user: &str) -> String {
    let deep = at(stack, host, path);
    let first = browser.get(&deep).await;
    assert_eq!(first.status(), 302, "a navigation that is not signed in");
    let start = location(&first);
    let expected_start = format!(
        "{}?rd={}",
        at(stack, "auth.example.test", "/oauth2/start"),
        form_urlencoded::byte_serialize(deep.as_bytes()).collect::<String>()
    );
    assert_eq!(start, expected_start, "the login starts at public_url");
    let to_provider = browser.get(&start).await;
    assert_eq!(to_provider.status(), 302);
    let back = browser.consent(&location(&to_provider), user, true).await;
    let callback = browser.get(&location(&back)).await;
    assert_eq!(callback.status(), 302, "{:?}", callback.headers());
    assert!(
        set_cookies(&callback)
            .iter()
            .any(|c| c.starts_with("_rocketgate=") && c.contains("Domain=example.test")),
        "{:?}",
        set_cookies(&callback)
    );
    location(&callback)
}

#[tokio::test]
async fn each_host_and_path_reaches_its_own_app_under_its_own_policy() {
    let (stack, c) = gateway().await;
    let browser = Browser::resolving(stack.proxy, HOSTS);

    // A public route: no sign-in, and clients' identity headers never pass, claim ones too.
    let docs = browser
        .client
        .get(at(&stack, "other.example.test", "/docs/intro?x=1"))
        .header("Accept", "application/json")
        .header("X-Forwarded-User", "root")
        .header("X_Forwarded_Name", "root")
        .header("X-Forwarded-Groups", "ops")
        .send()
        .await
        .unwrap();
    let docs = echo(docs).await;
    assert_eq!(docs.uri, "/docs/docs/intro?x=1");
    for name in [
        "x-forwarded-user",
        "x-forwarded-name",
        "x-forwarded-groups",
        "x_forwarded_name",
    ] {
        assert!(docs.header(name).is_none(), "{name} reached a public app");
    }
    // No route for this host and path: 404, not some other app.
    let none = browser.get(&at(&stack, "other.example.test", "/x")).await;
    assert_eq!(none.status(), 404);
    // Scripts get 401, not a login.
    let script = stack
        .client()
        .get(stack.url("/"))
        .header("Host", "grafana.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 401);

    // Ada signs in on grafana's host and comes back to the exact deep link there.
    let back = sign_in(
        &stack,
        &browser,
        "grafana.example.test",
        "/d/1?x=%20y",
        "1001",
    )
    .await;
    assert_eq!(back, at(&stack, "grafana.example.test", "/d/1?x=%20y"));
    let grafana = seen(&browser, &back).await;
    assert_eq!(grafana.uri, "/grafana/d/1?x=%20y");
    assert_eq!(
        grafana.header("host"),
        Some(format!("grafana.example.test:{}", stack.proxy.port()).as_str()),
        "preserve_host defaults to the client's Host"
    );
    assert_eq!(grafana.header("x-forwarded-user"), Some("1001"));
    assert_eq!(
        grafana.header("x-forwarded-groups"),
        Some("ops,engineering"),
        "named groups first, then Rocketpunch's"
    );
    assert_eq!(grafana.header("x-forwarded-name"), Some("Ada Lovelace"));

    // A longer path on the same host: another app, the prefix stripped, its own Host.
    let api = seen(
        &browser,
        &at(&stack, "grafana.example.test", "/api/v1/q?a=1"),
    )
    .await;
    assert_eq!(api.uri, "/grafana-api/v1/q?a=1");
    assert_eq!(api.header("host"), Some(c.to_string().as_str()));
    assert_eq!(api.header("x-forwarded-prefix"), Some("/api"));
    let bare = seen(&browser, &at(&stack, "grafana.example.test", "/api")).await;
    assert_eq!(bare.uri, "/grafana-api/");
    // `/apix` is not under `/api`: grafana itself.
    let apix = seen(&browser, &at(&stack, "grafana.example.test", "/apix")).await;
    assert_eq!(apix.uri, "/grafana/apix");

    // The same session on every host under cookie.domain; each route's own rules apply.
    let apps = browser.get(&at(&stack, "x.apps.example.test", "/")).await;
    assert_eq!(apps.status(), 403, "ada is not in navy");
    let team = browser.get(&at(&stack, "auth.example.test", "/team")).await;
    assert_eq!(team.status(), 403, "ada's domain is not example.org");
    let a = seen(&browser, &at(&stack, "a.example.test", "/z")).await;
    assert_eq!(a.uri, "/a/z");

    // Grace: navy and ops by Rocketpunch's report, example.org by email.
    let grace = Browser::resolving(stack.proxy, HOSTS);
    let back = sign_in(&stack, &grace, "x.apps.example.test", "/deep", "1002").await;
    let apps = seen(&grace, &back).await;
    assert_eq!(apps.uri, "/apps/deep");
    assert_eq!(apps.header("x-forwarded-groups"), Some("navy,ops"));
    assert_eq!(apps.header("x-forwarded-name"), Some("Grace Hopper"));
    let team = seen(&grace, &at(&stack, "auth.example.test", "/team/x")).await;
    assert_eq!(team.uri, "/team/team/x");
    let grafana = seen(&grace, &at(&stack, "grafana.example.test", "/")).await;
    assert_eq!(grafana.uri, "/grafana/");
    let info = grace
        .get(&at(&stack, "a.example.test", "/oauth2/userinfo"))
        .await;
    let info: serde_json::Value = info.json().await.unwrap();
    assert_eq!(info["groups"], serde_json::json!(["navy", "ops"]));

    // Linus: in no group, so grafana refuses him while the default-open route lets him in.
    let linus = Browser::resolving(stack.proxy, HOSTS);
    let back = sign_in(&stack, &linus, "a.example.test", "/", "1003").await;
    assert_eq!(linus.get(&back).await.status(), 200);
    let grafana = linus.get(&at(&stack, "grafana.example.test", "/")).await;
    assert_eq!(grafana.status(), StatusCode::FORBIDDEN);
    let info = linus
        .get(&at(&stack, "a.example.test", "/oauth2/userinfo"))
        .await;
    let info: serde_json::Value = info.json().await.unwrap();
    assert_eq!(info.get("groups"), None, "no groups, no field: {info}");

    let metrics = stack.metrics().await;
    assert!(metrics.contains("rocketgate_requests_total"), "{metrics}");
}

#[tokio::test]
async fn forward_auth_picks_the_route_from_the_front_proxy_and_the_query_only_narrows() {
    let (stack, _) = gateway().await;
    let browser = Browser::resolving(stack.proxy, HOSTS);
    sign_in(&stack, &browser, "grafana.example.test", "/", "1001").await;
    let client = stack.client();
    let check = |host: &'static str, uri: &'static str, query: &'static str| {
        let cookie = browser.cookie_header_for(&at(&stack, "auth.example.test", "/"));
        let url = stack.url(&format!("/oauth2/auth{query}"));
        let client = client.clone();
        async move {
            client
                .get(url)
                .header("Cookie", cookie)
                .header("X-Forwarded-Host", host)
                .header("X-Forwarded-Uri", uri)
                .send()
                .await
                .unwrap()
        }
    };
    let ok = check("grafana.example.test", "/d/1?x=1", "").await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-auth-request-user"], "1001");
    assert_eq!(ok.headers()["x-auth-request-groups"], "ops,engineering");
    assert_eq!(ok.headers()["x-auth-request-name"], "Ada Lovelace");
    assert_eq!(ok.headers()["cache-control"], "no-store");
    // Another host's route: its own policy.
    assert_eq!(check("x.apps.example.test", "/", "").await.status(), 403);
    // The query narrows...
    let narrowed = check("grafana.example.test", "/", "?allowed_groups=navy,billing").await;
    assert_eq!(narrowed.status(), 403);
    let by_email = check(
        "grafana.example.test",
        "/",
        "?allowed_emails=ada@example.com",
    )
    .await;
    assert_eq!(by_email.status(), 200);
    let by_domain = check(
        "grafana.example.test",
        "/",
        "?allowed_email_domains=example.org",
    )
    .await;
    assert_eq!(by_domain.status(), 403);
    // ...and never widens: a group ada is in does not open a route that needs navy.
    let widened = check("x.apps.example.test", "/", "?allowed_groups=ops").await;
    assert_eq!(widened.status(), 403);
    // A public route passes anyone; no route refuses; a bad list is the caller's error.
    let public = stack
        .client()
        .get(stack.url("/oauth2/auth"))
        .header("X-Forwarded-Host", "other.example.test")
        .header("X-Forwarded-Uri", "/docs/x")
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 200);
    assert_eq!(check("other.example.test", "/x", "").await.status(), 403);
    assert_eq!(
        check("grafana.example.test", "/", "?allowed_emails=not-an-email")
            .await
            .status(),
        400
    );
    // ingress-nginx's whole URL in X-Original-URL picks the route too.
    let cookie = browser.cookie_header_for(&at(&stack, "auth.example.test", "/"));
    let original = stack
        .client()
        .get(stack.url("/oauth2/auth"))
        .header("Cookie", cookie)
        .header("X-Original-URL", "https://x.apps.example.test/deep")
        .send()
        .await
        .unwrap();
    assert_eq!(original.status(), 403);
    // A reported path no route can be chosen for is refused with 403, signed in or not:
    // nginx would turn a 400 from its auth subrequest into a 500.
    for uri in ["/docs/../api/x", "/api%2Fx", "/a\\b"] {
        assert_eq!(
            check("grafana.example.test", uri, "").await.status(),
            403,
            "{uri}"
        );
        let anonymous = stack
            .client()
            .get(stack.url("/oauth2/auth"))
            .header("X-Forwarded-Host", "grafana.example.test")
            .header("X-Forwarded-Uri", uri)
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 403, "{uri}");
    }
}

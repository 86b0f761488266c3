//! Forward-auth with `[[routes]]` behind a real nginx: two virtual hosts (`server_name`) in
//! front of their apps, one rocketgate deciding for both from what nginx reports in
//! `X-Forwarded-Host` and `X-Forwarded-Uri`, and a stricter check for one location with the
//! query form `docs/routes.md` documents (nginx's `auth_request` cannot carry a query).

use std::net::SocketAddr;

use reqwest::header::ACCEPT;
use rocketgate_demo::spawn_upstream;

use crate::support::nginx::{self, Nginx};
use crate::support::process::free_port;
use crate::support::{Browser, Echo, Options, Stack, location, set_cookies};

const AUTH: &str = "auth.example.test";
const GRAFANA: &str = "grafana.example.test";
const APPS: &str = "apps.example.test";

/// rocketgate's routes: grafana for `ops` only, apps open to anyone signed in, `/admin` on
/// apps for ada only. Groups come from the stand-in's `teams` (ada: engineering; grace: navy,
/// ops; linus: none). The upstreams are the apps nginx proxies to; rocketgate only decides.
fn routes(app: SocketAddr) -> String {
    format!(
        r#"
[[routes]]
host = "{GRAFANA}"
upstream = "http://{app}"
allowed_groups = ["ops"]

[[routes]]
host = "{APPS}"
upstream = "http://{app}"

[[routes]]
host = "{APPS}"
path = "/admin"
upstream = "http://{app}"
allowed_emails = ["ada@example.com"]

[provider.claims]
groups = "/teams"
"#
    )
}

/// The forward-auth subrequest's headers, as `docs/integrations.md` documents them but for
/// one: the host reported for the check is `$host`, the name nginx chose this `server {}`
/// by, not `$http_host`. For `GET http://grafana.example.test/ HTTP/1.1` with
/// `Host: apps.example.test` nginx serves grafana's server (a request line's host beats the
/// header) while `$http_host` is apps', whose open route would then decide for grafana.
/// rocketgate ignores the port when it picks a route, so `$host` losing it costs nothing.
const CHECK_HEADERS: &str = r#"
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"#;

/// `@login`'s headers: as documented, with `$http_host`, since the return URL needs the
/// port. (Whatever host it names, the redirect policy confines the return URL, and this
/// check only ever answers 302 or 401.)
const LOGIN_HEADERS: &str = r#"
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"#;

/// rocketgate's own pages, as documented: the return-URL headers blanked.
const OAUTH2_PAGES: &str = r#"
        location /oauth2/ {
            proxy_pass http://rocketgate;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Uri "";
            proxy_set_header X-Original-URL "";
            proxy_set_header X-Original-URI "";
        }"#;

/// A protected location: the check `check` decides, its identity headers (groups included)
/// replace whatever the client sent, a 401 becomes the login, and the app sees the path
/// under `/{app}`.
fn protected(prefix: &str, check: &str, app: &str) -> String {
    format!(
        r#"
        location {prefix} {{
            auth_request {check};
            auth_request_set $user   $upstream_http_x_auth_request_user;
            auth_request_set $email  $upstream_http_x_auth_request_email;
            auth_request_set $groups $upstream_http_x_auth_request_groups;
            auth_request_set $auth_cookie $upstream_http_set_cookie;
            add_header Set-Cookie $auth_cookie;
            proxy_set_header X-User  $user;
            proxy_set_header X-Email $email;
            proxy_set_header X-Forwarded-Groups $groups;
            error_page 401 = @login;
            proxy_pass http://app/{app}{prefix};
        }}"#
    )
}

/// One app's virtual host: the route check of `integrations.md`, the stricter
/// `engineering` check of `routes.md` (the query on `proxy_pass`) for `/eng/`, the login
/// pages, and `@login`.
fn app_host(app: &str) -> String {
    format!(
        r#"
        location = /oauth2/auth {{
            internal;
            proxy_pass http://rocketgate/oauth2/auth;{CHECK_HEADERS}
        }}

        location = /oauth2/auth-engineering {{
            internal;
            proxy_pass http://rocketgate/oauth2/auth?allowed_groups=engineering;{CHECK_HEADERS}
        }}
{OAUTH2_PAGES}
{root}
{eng}

        location @login {{
            rewrite ^ /oauth2/auth?mode=redirect? break;
            proxy_pass http://rocketgate;{LOGIN_HEADERS}
        }}"#,
        root = protected("/", "/oauth2/auth", app),
        eng = protected("/eng/", "/oauth2/auth-engineering", app),
    )
}

/// rocketgate (public_url on `auth.example.test`, the session cookie for all of
/// `example.test`, trusting nginx on 127.0.0.1) behind nginx serving three names.
struct Gateway {
    stack: Stack,
    nginx: Nginx,
}

impl Gateway {
    async fn start() -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = listener.local_addr().unwrap();
        spawn_upstream(listener);
        for attempt in 1..=3 {
            let addr = free_port();
            let stack = Stack::with(
                Options {
                    upstream: Some(app),
                    public_url: Some(format!("http://{AUTH}:{}", addr.port())),
                    extra_toml: routes(app),
                    no_default_upstream: true,
                    ..Options::default()
                }
                .env("ROCKETGATE_TRUSTED_PROXIES", "127.0.0.1")
                .env("ROCKETGATE_COOKIE__DOMAIN", "example.test"),
            )
            .await;
            let http = format!(
                r#"
    upstream rocketgate {{ server {proxy}; }}
    upstream app        {{ server {app}; }}
"#,
                proxy = stack.proxy,
            );
            let (grafana, apps) = (app_host("grafana"), app_host("apps"));
            let hosts = [(AUTH, OAUTH2_PAGES), (GRAFANA, &*grafana), (APPS, &*apps)];
            // The default server (any other Host) has no app at all.
            let default = "        location / { return 404; }";
            match nginx::start_hosts(addr, &http, default, &hosts).await {
                Ok(nginx) => return Gateway { stack, nginx },
                Err(e) if e.port_taken() && attempt < 3 => stack.stop().await,
                Err(e) => panic!("nginx did not start:\n{}", e.stderr),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// `http://host:port/path` on nginx.
    fn at(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.nginx.addr.port())
    }

    /// A browser for which every name resolves to nginx.
    fn browser(&self) -> Browser {
        Browser::resolving(self.nginx.addr, &[AUTH, GRAFANA, APPS])
    }

    /// Signs `user` in through nginx from `path` on `host`: nginx's `@login` sends the
    /// browser to `public_url`'s start with the whole deep link, the callback comes back
    /// to it, and the page there opens.
    async fn sign_in(&self, browser: &Browser, host: &str, path: &str, user: &str) {
        let deep = self.at(host, path);
        let first = browser.get(&deep).await;
        assert_eq!(first.status(), 302, "{deep}: not signed in, a navigation");
        let start = location(&first);
        let expected = format!(
            "{}?rd={}",
            self.at(AUTH, "/oauth2/start"),
            form_urlencoded::byte_serialize(deep.as_bytes()).collect::<String>()
        );
        assert_eq!(start, expected, "the login starts at public_url");
        let to_provider = browser.get(&start).await;
        assert_eq!(to_provider.status(), 302, "/oauth2/start through nginx");
        let back = browser.consent(&location(&to_provider), user, true).await;
        assert_eq!(back.status(), 302, "the stand-in redirects back");
        let callback_url = location(&back);
        assert!(
            callback_url.starts_with(&self.at(AUTH, "/oauth2/callback?")),
            "{callback_url}"
        );
        let callback = browser.get(&callback_url).await;
        assert_eq!(callback.status(), 302, "callback through nginx");
        assert!(
            set_cookies(&callback)
                .iter()
                .any(|c| c.starts_with("_rocketgate=") && c.contains("Domain=example.test")),
            "{:?}",
            set_cookies(&callback)
        );
        assert_eq!(location(&callback), deep, "back on the exact deep link");
        let page = browser.get(&deep).await;
        assert_eq!(page.status(), 200, "{deep} after signing in");
    }
}

/// The status nginx answers a script's request for `url`, and what the app saw when it let
/// it through. `headers` are the client's own.
async fn fetch(
    browser: &Browser,
    url: &str,
    headers: &[(&str, &str)],
) -> (reqwest::StatusCode, Option<Echo>) {
    let mut request = browser.client.get(url).header(ACCEPT, "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let echo = if status == 200 {
        Some(response.json().await.unwrap())
    } else {
        None
    };
    (status, echo)
}

/// The status line nginx answers a request whose request line names `line_host` (absolute
/// form) while its `Host` header names `host_header`, with `cookie`.
async fn absolute_form(gw: &Gateway, line_host: &str, host_header: &str, cookie: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let port = gw.nginx.addr.port();
    let mut stream = tokio::net::TcpStream::connect(gw.nginx.addr).await.unwrap();
    let request = format!(
        "GET http://{line_host}:{port}/d/1 HTTP/1.1\r\nHost: {host_header}:{port}\r\n\
         Accept: application/json\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

/// The status alone.
async fn status(browser: &Browser, url: &str) -> u16 {
    fetch(browser, url, &[]).await.0.as_u16()
}

#[tokio::test]
async fn nginx_virtual_hosts_get_each_routes_policy_and_a_query_check_only_narrows() {
    let gw = Gateway::start().await;

    // Not signed in: scripts get rocketgate's 401 through nginx on every host and check,
    // browsers the login (here for /eng/, and in each sign-in below on both hosts).
    let anonymous = gw.browser();
    for url in [
        gw.at(GRAFANA, "/d/1"),
        gw.at(APPS, "/x"),
        gw.at(APPS, "/eng/x"),
    ] {
        assert_eq!(status(&anonymous, &url).await, 401, "{url}");
    }
    let first = anonymous.get(&gw.at(APPS, "/eng/x?a=1&b=2")).await;
    assert_eq!(
        first.status(),
        302,
        "the narrowing check's 401 is a login too"
    );
    assert!(
        location(&first).ends_with(&format!(
            "?rd={}",
            form_urlencoded::byte_serialize(gw.at(APPS, "/eng/x?a=1&b=2").as_bytes())
                .collect::<String>()
        )),
        "{}",
        location(&first)
    );

    // Ada (engineering): apps and her /admin, not grafana (ops).
    let ada = gw.browser();
    gw.sign_in(&ada, APPS, "/reports/q3?region=eu&sort=-date", "1001")
        .await;
    let forged = [("X-Forwarded-Groups", "ops"), ("X-User", "root")];
    let (code, seen) = fetch(&ada, &gw.at(APPS, "/reports/q3?x=1"), &forged).await;
    assert_eq!(code, 200);
    let seen = seen.unwrap();
    assert_eq!(seen.uri, "/apps/reports/q3?x=1", "nginx's apps location");
    assert_eq!(seen.header("x-user"), Some("1001"));
    assert_eq!(seen.header("x-email"), Some("ada@example.com"));
    assert_eq!(
        seen.all("x-forwarded-groups"),
        ["engineering"],
        "X-Auth-Request-Groups, never the client's copy"
    );
    assert_eq!(
        status(&ada, &gw.at(GRAFANA, "/d/1")).await,
        403,
        "grafana's route needs ops"
    );
    assert_eq!(status(&ada, &gw.at(APPS, "/admin/users")).await, 200);
    assert_eq!(status(&ada, &gw.at(APPS, "/admin")).await, 200);
    // The engineering check: on apps she passes it; on grafana her engineering group does
    // not open a route that needs ops (the query never widens).
    let (code, seen) = fetch(&ada, &gw.at(APPS, "/eng/build"), &[]).await;
    assert_eq!(code, 200);
    assert_eq!(seen.unwrap().uri, "/apps/eng/build");
    assert_eq!(status(&ada, &gw.at(GRAFANA, "/eng/build")).await, 403);

    // Grace (navy, ops): grafana, not ada's /admin, not the engineering check anywhere.
    let grace = gw.browser();
    gw.sign_in(&grace, GRAFANA, "/d/abc?orgId=1&from=now-6h", "1002")
        .await;
    let (code, seen) = fetch(&grace, &gw.at(GRAFANA, "/d/abc?orgId=1"), &forged).await;
    assert_eq!(code, 200);
    let seen = seen.unwrap();
    assert_eq!(
        seen.uri, "/grafana/d/abc?orgId=1",
        "nginx's grafana location"
    );
    assert_eq!(seen.header("x-user"), Some("1002"));
    assert_eq!(seen.all("x-forwarded-groups"), ["navy,ops"]);
    assert_eq!(status(&grace, &gw.at(APPS, "/")).await, 200);
    assert_eq!(
        status(&grace, &gw.at(APPS, "/admin/users")).await,
        403,
        "the /admin path route, from X-Forwarded-Uri"
    );
    assert_eq!(
        status(&grace, &gw.at(APPS, "/administrator")).await,
        200,
        "not under /admin"
    );
    // She passes both routes' policies, but not the query's group: it narrows.
    assert_eq!(status(&grace, &gw.at(APPS, "/eng/build")).await, 403);
    assert_eq!(status(&grace, &gw.at(GRAFANA, "/eng/build")).await, 403);

    // Linus (no groups): apps only. A client's X-Forwarded-Groups does not reach the app
    // even when the check reports none, and what he claims to be asking for does not pick
    // the route: nginx reports the request it serves.
    let linus = gw.browser();
    gw.sign_in(&linus, APPS, "/", "1003").await;
    let (code, seen) = fetch(&linus, &gw.at(APPS, "/x"), &forged).await;
    assert_eq!(code, 200);
    let seen = seen.unwrap();
    assert_eq!(seen.header("x-user"), Some("1003"));
    assert_eq!(seen.all("x-forwarded-groups"), Vec::<&str>::new());
    assert_eq!(status(&linus, &gw.at(GRAFANA, "/")).await, 403);
    let spoofed = [
        ("X-Forwarded-Host", APPS),
        ("X-Forwarded-Uri", "/"),
        ("X-Original-URL", "http://apps.example.test/"),
        ("X-Original-URI", "/"),
    ];
    let (code, _) = fetch(&linus, &gw.at(GRAFANA, "/"), &spoofed).await;
    assert_eq!(code, 403);
    // Nor can a Host header that disagrees with the request line's host (see CHECK_HEADERS).
    let cookie = linus.cookie_header_for(&gw.at(APPS, "/"));
    assert_eq!(
        absolute_form(&gw, GRAFANA, APPS, &cookie).await,
        "HTTP/1.1 403 Forbidden"
    );
    assert_eq!(
        absolute_form(&gw, APPS, GRAFANA, &cookie).await,
        "HTTP/1.1 200 OK",
        "the request line's host is the one nginx serves and reports"
    );
    assert_eq!(status(&linus, &gw.at(APPS, "/eng/x")).await, 403);

    assert_eq!(gw.stack.standin.stats().authorization_code_grants, 3);
}

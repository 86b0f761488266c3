//! Forward-auth behind each real front proxy, in the configuration the docs give for it
//! (`support::front`): the same journeys for nginx, both Caddy forms and both Traefik
//! setups. A browser signs in from a deep link, the app sees the identity and never a
//! client's forged copy, scripts get 401, a user the route does not allow gets 403, sign-out
//! ends the session, and three refreshes with rotating refresh tokens sign nobody out (cookie
//! sessions, split cookie sessions, Redis sessions), one token call each.

use std::time::{Duration, Instant};

use reqwest::header::ACCEPT;
use rocketgate_demo::StandInOptions;

use crate::support::front::{Front, Gateway};
use crate::support::{Echo, Options, admin_routes, location, set_cookies};

/// Several parameters (which nginx's `$request_uri` in an `rd=` would cut at the first `&`),
/// a `+` and an encoded comma.
const DEEP_LINK: &str = "/reports/q3?region=eu&sort=-date&q=a+b&tags=x%2Cy";

/// Every spelling of every identity header a client might forge.
const FORGED: &[(&str, &str)] = &[
    ("X-Forwarded-User", "root"),
    ("x-forwarded-email", "root@evil.example"),
    ("X-FORWARDED-PREFERRED-USERNAME", "root"),
    ("X-Forwarded-Groups", "root-admins"),
    ("X-Auth-Request-User", "root"),
    ("x-auth-request-email", "root@evil.example"),
    ("X-Auth-Request-Preferred-Username", "root"),
    ("X-Auth-Request-Groups", "root-admins"),
    ("X_Forwarded_User", "root"),
    ("x_forwarded_email", "root@evil.example"),
    ("X_Auth_Request_User", "root"),
];

/// Sign-in from a deep link, the identity at the app and never a forged copy, return-URL
/// headers a client sends ignored, 401 for scripts, 403 for a user the route refuses, and
/// sign-out.
async fn journey(front: Front) {
    let gw = Gateway::start(front, admin_routes).await;
    let names = front.identity();

    // Not signed in: a script gets rocketgate's 401 JSON, whatever it claims to be.
    let anonymous = gw.stack.client();
    let mut script = anonymous
        .get(gw.url("/api/orders?page=2"))
        .header(ACCEPT, "application/json");
    for (name, value) in FORGED {
        script = script.header(*name, *value);
    }
    let refused = script.send().await.unwrap();
    assert_eq!(
        refused.status(),
        401,
        "{front:?}: a script without a session"
    );
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{front:?}: rocketgate's JSON 401 reaches the script"
    );

    // A browser signs in from the deep link and lands on it exactly.
    let ada = gw.browser();
    assert_eq!(gw.login(&ada, DEEP_LINK, "1001").await.status(), 200);
    let seen = gw.echo(&ada, DEEP_LINK).await;
    assert_eq!(seen.uri, DEEP_LINK);
    assert_eq!(seen.header(names.user), Some("1001"), "{front:?}: {seen:?}");
    assert_eq!(seen.header(names.email), Some("ada@example.com"));
    assert_eq!(seen.header(names.username), Some("ada"));
    assert_eq!(gw.stack.standin.stats().authorization_code_grants, 1);

    // A signed-in client's forged identity headers, in any spelling, never reach the app.
    let mut forged = ada
        .client
        .get(gw.url("/spoof"))
        .header(ACCEPT, "application/json");
    for (name, value) in FORGED {
        forged = forged.header(*name, *value);
    }
    let forged = forged.send().await.unwrap();
    assert_eq!(forged.status(), 200, "{front:?}");
    let seen: Echo = forged.json().await.unwrap();
    assert_eq!(seen.header(names.user), Some("1001"), "{front:?}: {seen:?}");
    assert_eq!(seen.header(names.email), Some("ada@example.com"));
    let leaked: Vec<&(String, String)> = seen
        .headers
        .iter()
        .filter(|(_, v)| v.contains("root"))
        .collect();
    assert!(
        leaked.is_empty(),
        "{front:?}: forged headers reached the app: {leaked:?}"
    );

    // A user the route does not allow: 403, and the app never sees the request.
    let admin = gw.api(&ada, "/admin/users").await;
    assert_eq!(admin.status(), 403, "{front:?}: ada on /admin");
    let grace = gw.browser();
    assert_eq!(gw.login(&grace, "/admin", "1002").await.status(), 200);
    let seen = gw.echo(&grace, "/admin/users").await;
    assert_eq!(seen.header(names.email), Some("grace@example.org"));

    // A client cannot choose where sign-in returns to: its own X-Forwarded-Uri,
    // X-Original-URL and X-Forwarded-Host are not what the front proxy reports.
    let linus = gw.browser();
    let first = linus
        .client
        .get(gw.url("/mine"))
        .header("x-forwarded-uri", "/theirs")
        .header("x-original-url", "/theirs")
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&first),
        gw.url("/oauth2/start?rd=%2Fmine"),
        "{front:?}"
    );
    let start = linus
        .client
        .get(gw.url("/oauth2/start"))
        .header("x-forwarded-uri", "/theirs")
        .header("x-original-url", "/theirs")
        .header("x-original-uri", "/theirs")
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302, "{front:?}: /oauth2/start");
    let back = linus.consent(&location(&start), "1003", true).await;
    assert_eq!(
        location(&linus.get(&location(&back)).await),
        "/",
        "{front:?}: a client's return-URL headers on /oauth2/start"
    );

    // Sign-out ends the session: scripts get 401 again, browsers the sign-in.
    let out = ada.get(&gw.url("/oauth2/sign_out?rd=%2Fbye")).await;
    assert_eq!(out.status(), 302, "{front:?}: sign-out");
    assert_eq!(location(&out), "/bye");
    assert!(
        set_cookies(&out)
            .iter()
            .any(|c| c.starts_with("_rocketgate=;") && c.contains("Max-Age=0")),
        "{:?}",
        set_cookies(&out)
    );
    assert_eq!(
        gw.api(&ada, "/bye").await.status(),
        401,
        "{front:?}: after sign-out"
    );
    let page = ada.get(&gw.url("/bye")).await;
    assert_eq!(location(&page), gw.url("/oauth2/start?rd=%2Fbye"));
}

/// Where the sessions live in a refresh test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sessions {
    /// Sealed in one cookie.
    Cookie,
    /// Sealed in a cookie split into `_rocketgate_0`, `_1`, ... (a 6,000-byte access token).
    SplitCookie,
    /// In Redis, the cookie a ticket.
    Redis,
}

/// Signed in through the front proxy with 2 s access tokens (due 1 s before they expire),
/// rotating refresh tokens and a 1 s rotation grace, the browser keeps calling the app until
/// three refreshes have happened, then waits out the grace: every call answered by the app,
/// no second sign-in, one token call per refresh, and sign-out still ends it.
async fn refreshes(front: Front, sessions: Sessions) {
    let redis = match sessions {
        Sessions::Redis => Some(crate::support::redis::RedisServer::start().await),
        _ => None,
    };
    let redis_url = redis.as_ref().map(|r| r.url());
    let gw = Gateway::start(front, || {
        let mut options = Options {
            standin: StandInOptions {
                access_token_ttl: Duration::from_secs(2),
                access_token_len: if sessions == Sessions::SplitCookie {
                    6000
                } else {
                    StandInOptions::default().access_token_len
                },
                ..Default::default()
            },
            ..Options::default()
        }
        .env("ROCKETGATE_SESSION__ROTATION_GRACE", "1s");
        if let Some(url) = &redis_url {
            options = options
                .env("ROCKETGATE_SESSION__STORE", "redis")
                .env("ROCKETGATE_SESSION__REDIS_URL", url.clone());
        }
        options
    })
    .await;
    let names = front.identity();
    let browser = gw.browser();
    assert_eq!(gw.login(&browser, "/", "1001").await.status(), 200);
    if sessions == Sessions::SplitCookie {
        assert!(
            browser.cookie("_rocketgate_1").is_some(),
            "the session is split"
        );
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut calls = 0;
    let mut cookies_received = 0;
    while gw.stack.standin.stats().refresh_token_grants < 3 {
        let answer = gw.api(&browser, "/work").await;
        let grants = gw.stack.standin.stats().refresh_token_grants;
        assert_eq!(
            answer.status(),
            200,
            "{front:?} {sessions:?}: call {calls} after {grants} refreshes"
        );
        if set_cookies(&answer)
            .iter()
            .any(|c| c.starts_with("_rocketgate"))
        {
            cookies_received += 1;
        }
        let seen: Echo = answer.json().await.unwrap();
        assert_eq!(
            seen.header(names.user),
            Some("1001"),
            "{front:?} {sessions:?}"
        );
        calls += 1;
        assert!(
            Instant::now() < deadline,
            "{front:?}: three refreshes never happened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Past the rotation grace: whatever cookie the browser holds still works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let last = gw.echo(&browser, "/work").await;
    assert_eq!(
        last.header(names.user),
        Some("1001"),
        "{front:?} {sessions:?}"
    );

    let stats = gw.stack.standin.stats();
    let metrics = gw.stack.metrics().await;
    let refreshed = counter(&metrics, "rocketgate_refreshes_total{outcome=\"ok\"}");
    let failed = counter(&metrics, "rocketgate_refreshes_total{outcome=\"fatal\"}")
        + counter(
            &metrics,
            "rocketgate_refreshes_total{outcome=\"transient\"}",
        );
    assert_eq!(
        stats.authorization_code_grants, 1,
        "{front:?} {sessions:?}: no second sign-in"
    );
    assert_eq!(failed, 0.0, "{front:?} {sessions:?}: no refresh failed");
    assert!(refreshed >= 3.0, "{front:?}: {refreshed} refreshes");
    assert_eq!(
        stats.refresh_token_grants as f64, refreshed,
        "{front:?} {sessions:?}: one token call per refresh"
    );
    if front.passes_refreshed_cookie() && sessions == Sessions::Cookie {
        assert!(
            cookies_received >= 3,
            "{front:?}: {cookies_received} refreshed cookies"
        );
    }
    if !front.passes_refreshed_cookie() || sessions == Sessions::Redis {
        assert_eq!(
            cookies_received, 0,
            "{front:?} {sessions:?}: no cookie to pass on"
        );
    }
    // The figures for the closing note (shown with --nocapture).
    println!(
        "front-proxy refreshes: {front:?} {sessions:?}: {refreshed} refreshes survived, {} \
         refresh token calls, {calls} calls, {cookies_received} refreshed cookies reached the browser",
        stats.refresh_token_grants
    );

    let out = browser.get(&gw.url("/oauth2/sign_out")).await;
    assert_eq!(out.status(), 302, "{front:?}: sign-out");
    assert_eq!(
        gw.api(&browser, "/work").await.status(),
        401,
        "{front:?} {sessions:?}"
    );
}

fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The docs show each tested configuration exactly, with example addresses.
fn documented_as_tested(front: Front, doc: &str) {
    let text = std::fs::read_to_string(format!("{}/{doc}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{doc}: {e}"));
    let shown = front
        .documented()
        .replace("{rocketgate}", "127.0.0.1:4180")
        .replace("{app}", "127.0.0.1:8080")
        .replace("{host}", "app.example.com");
    let normalize = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let want = normalize(&shown);
    let have = normalize(&text);
    let found = have.windows(want.len()).any(|w| w == want.as_slice());
    assert!(
        found,
        "{doc} does not show the {front:?} configuration the tests run:\n{shown}"
    );
}

macro_rules! front_proxy_tests {
    ($($name:ident: $front:expr;)*) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn signs_in_keeps_forged_identity_out_refuses_and_signs_out() {
                journey($front).await;
            }

            #[tokio::test]
            async fn three_refreshes_sign_nobody_out_with_cookie_sessions() {
                refreshes($front, Sessions::Cookie).await;
            }

            #[tokio::test]
            async fn three_refreshes_sign_nobody_out_with_split_cookie_sessions() {
                refreshes($front, Sessions::SplitCookie).await;
            }

            #[tokio::test]
            async fn three_refreshes_sign_nobody_out_with_redis_sessions() {
                refreshes($front, Sessions::Redis).await;
            }
        }
    )*};
}

front_proxy_tests! {
    nginx: Front::Nginx;
    caddy: Front::CaddyShort;
    caddy_expanded: Front::CaddyExpanded;
    traefik: Front::Traefik;
    traefik_trusting_without_cookies: Front::TraefikTrustingNoCookies;
}

#[test]
fn the_docs_show_each_tested_configuration() {
    for front in [
        Front::Nginx,
        Front::CaddyShort,
        Front::CaddyExpanded,
        Front::Traefik,
    ] {
        documented_as_tested(front, "docs/integrations.md");
    }
}

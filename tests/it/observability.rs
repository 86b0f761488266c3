//! Request ids, metrics on the main listener or `metrics_listen`, and what they count.

use crate::support::{Echo, Options, Stack};
use reqwest::header::ACCEPT;

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
}

/// `rocketgate_requests_total` over every code and method of one class and route.
fn requests(text: &str, class: &str, route: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with("rocketgate_requests_total{")
                && l.contains(&format!("class=\"{class}\""))
                && l.contains(&format!("route=\"{route}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn request_ids_are_kept_when_sane_made_otherwise_and_passed_upstream() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    browser.login("/").await;
    let send = |id: Option<&'static str>| {
        let mut request = browser
            .client
            .get(stack.url("/x"))
            .header(ACCEPT, "application/json");
        if let Some(id) = id {
            request = request.header("X-Request-Id", id);
        }
        request.send()
    };
    let kept = send(Some("lb-1234.abc")).await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "lb-1234.abc");
    let echo: Echo = kept.json().await.unwrap();
    assert_eq!(echo.all("x-request-id"), vec!["lb-1234.abc"]);

    for bad in [None, Some("has space"), Some("<script>")] {
        let made = send(bad).await.unwrap();
        let id = made.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 32, "{bad:?} -> {id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        let echo: Echo = made.json().await.unwrap();
        assert_eq!(
            echo.all("x-request-id"),
            vec![id.as_str()],
            "the upstream sees the same id"
        );
    }
    // Pages rocketgate answers itself carry one too.
    let ping = stack.client().get(stack.url("/ping")).send().await.unwrap();
    assert!(ping.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn metrics_count_routes_sessions_upstream_and_connections() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    browser.login("/").await;
    for _ in 0..3 {
        let r = browser
            .client
            .get(stack.url("/x"))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let text = stack.metrics().await;
    assert!(requests(&text, "2xx", "proxy") >= 4.0, "{text}");
    assert_eq!(
        metric(
            &text,
            "rocketgate_requests_total{class=\"2xx\",code=\"200\",method=\"GET\",route=\"proxy\"}"
        ),
        requests(&text, "2xx", "proxy"),
        "by code and method"
    );
    let redirects = |route: &str| requests(&text, "3xx", route);
    assert_eq!(redirects("proxy"), 1.0, "the redirect to sign in");
    assert_eq!(redirects("login"), 1.0, "the callback");
    assert_eq!(
        metric(&text, "rocketgate_logins_total{outcome=\"success\"}"),
        1.0
    );
    assert!(
        metric(
            &text,
            "rocketgate_session_cache_lookups_total{result=\"hit\"}"
        ) >= 3.0
    );
    assert_eq!(
        metric(
            &text,
            "rocketgate_session_cache_lookups_total{result=\"miss\"}"
        ),
        1.0,
        "opened once"
    );
    assert!(metric(&text, "rocketgate_upstream_duration_seconds_count") >= 4.0);
    assert!(metric(&text, "rocketgate_open_connections") >= 1.0);
}

#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_main_listener() {
    let metrics_addr = crate::support::process::free_port();
    let stack =
        Stack::with(Options::default().env("ROCKETGATE_METRICS_LISTEN", metrics_addr.to_string()))
            .await;
    // The in-process stack does not bind metrics_listen (the CLI does); serve it like the CLI.
    let app = stack.app.clone();
    let listener = tokio::net::TcpListener::bind(metrics_addr).await.unwrap();
    tokio::spawn(rocketgate::server::serve_metrics(
        rocketgate::live::Live::new(app),
        listener,
    ));
    stack.client().get(stack.url("/ping")).send().await.unwrap();
    let text = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("rocketgate_requests_total"));
    // On the main listener /metrics is now just another protected path.
    let main = stack
        .client()
        .get(stack.url("/metrics"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 401);
}

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

/// Every series in a scrape, without its value: the name and label set.
fn series(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(key, _)| key.to_owned()))
        .collect()
}

/// One request no earlier one looked like: its own path, query, method and Host, signed in
/// or not.
async fn odd_request(stack: &Stack, signed_in: &reqwest::Client, n: usize) {
    let method = match n % 4 {
        0 => reqwest::Method::GET,
        1 => reqwest::Method::from_bytes(format!("M{n}").as_bytes()).unwrap(),
        2 => reqwest::Method::POST,
        _ => reqwest::Method::from_bytes(format!("PROPFIND{n}").as_bytes()).unwrap(),
    };
    let client = if n.is_multiple_of(3) {
        stack.client()
    } else {
        signed_in.clone()
    };
    let path = format!("/p{n}/{}/x%2F{n}?q{n}={n}", "seg".repeat(n % 7));
    let response = client
        .request(method, stack.url(&path))
        .header("host", format!("h{n}.example.test"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert!(
        response.status().as_u16() < 500,
        "{path}: {}",
        response.status()
    );
}

#[tokio::test]
async fn a_thousand_distinct_paths_methods_and_hosts_add_no_series() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    browser.login("/").await;
    let signed_in = browser.client.clone();
    let send_round = |from: usize| {
        let (stack, signed_in) = (&stack, &signed_in);
        async move {
            for chunk in (from..from + 1_000).collect::<Vec<_>>().chunks(50) {
                futures_util::future::join_all(
                    chunk.iter().map(|&n| odd_request(stack, signed_in, n)),
                )
                .await;
            }
        }
    };
    // The first round (and a scrape) shows every status and label a request of these shapes
    // can produce.
    stack.metrics().await;
    send_round(0).await;
    let before = stack.metrics().await;
    send_round(1_000).await;
    let after = stack.metrics().await;
    let (before, after) = (series(&before), series(&after));
    assert_eq!(
        before.symmetric_difference(&after).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "1,000 new paths, methods and hosts changed the series"
    );
    let requests: Vec<_> = after
        .iter()
        .filter(|s| s.starts_with("rocketgate_requests_total"))
        .collect();
    assert!(
        requests.iter().any(|s| s.contains("method=\"other\"")),
        "unknown methods share one label: {requests:?}"
    );
    assert!(requests.len() < 20, "{requests:#?}");
    assert!(
        after.len() < 200,
        "{} series after 2,000 odd requests",
        after.len()
    );
}

#[tokio::test]
async fn process_metrics_describe_this_process() {
    let stack = Stack::start().await;
    let text = stack.metrics().await;
    let rss = metric(&text, "process_resident_memory_bytes");
    assert!(rss > 1_000_000.0, "resident memory {rss}");
    assert!(metric(&text, "process_open_fds") >= 3.0);
    assert!(metric(&text, "process_max_fds") >= metric(&text, "process_open_fds"));
    assert!(metric(&text, "process_cpu_seconds_total") > 0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = metric(&text, "process_start_time_seconds");
    assert!(
        started <= now && started > now - 3_600.0,
        "start {started}, now {now}"
    );
}

/// The metric names a file under deploy/monitoring/ uses.
fn metric_names(file: &str) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(format!(
        "{}/deploy/monitoring/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut names = std::collections::BTreeSet::new();
    for prefix in ["rocketgate_", "process_"] {
        let mut rest = text.as_str();
        while let Some(at) = rest.find(prefix) {
            let before = text.len() - rest.len() + at;
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            // Only whole names: not the tail of `prometheus_...` or a word like `rocketgate_x`
            // inside another identifier.
            let preceded = text[..before]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if !preceded {
                names.insert(name);
            }
        }
    }
    names
}

#[tokio::test]
async fn dashboards_and_alerts_use_only_metrics_rocketgate_exports() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    browser.login("/").await;
    // The CLI reports the configuration file's hash (tests/it/reload.rs); this stack has no file.
    stack.app.metrics.config_in_effect("0123456789abcdef");
    let exported: std::collections::BTreeSet<String> = series(&stack.metrics().await)
        .into_iter()
        .map(|s| s.split('{').next().unwrap_or_default().to_owned())
        .collect();
    for file in ["rocketgate.rules.yaml", "grafana-dashboard.json"] {
        let used = metric_names(file);
        assert!(used.len() >= 5, "{file} names {used:?}");
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses metrics rocketgate does not export: {unknown:?}"
        );
    }
}

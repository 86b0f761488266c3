//! OpenTelemetry traces through a real collector: one trace per request with the expected
//! parent/child chain, W3C trace context continued and passed to the upstream (exporter or
//! not), nothing secret in any span, and a collector that is down or stuck costs requests
//! nothing.

use std::time::Duration;

use reqwest::header::{ACCEPT, COOKIE};

use crate::support::otel::{Collector, Span};
use crate::support::{Browser, DUE, Echo, Options, Stack, short_tokens};

/// Traces to `endpoint`, with a service name and a resource attribute of the test's own.
fn traced(endpoint: &str, options: Options) -> Options {
    Options {
        extra_toml: format!(
            "{}\n[tracing]\notlp_endpoint = \"{endpoint}\"\nservice_name = \"gate-under-test\"\n\
             [tracing.resource_attributes]\n\"deployment.environment.name\" = \"it\"\n",
            options.extra_toml
        ),
        ..options
    }
}

/// What the upstream received for a signed-in GET of `path` with these extra headers.
async fn echo_with(browser: &Browser, stack: &Stack, path: &str, headers: &[(&str, &str)]) -> Echo {
    let mut request = browser
        .client
        .get(stack.url(path))
        .header(ACCEPT, "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().json().await.unwrap()
}

fn one<'a>(spans: &'a [Span], what: &str, pick: impl Fn(&Span) -> bool) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "one {what} span in {spans:#?}");
    found[0]
}

/// A `traceparent` as a client would send it: version 00, ids, flags.
fn parts(traceparent: &str) -> (String, String, String) {
    let p: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(p.len(), 4, "{traceparent}");
    assert_eq!(p[0], "00");
    assert_eq!(p[1].len(), 32);
    assert_eq!(p[2].len(), 16);
    (p[1].to_owned(), p[2].to_owned(), p[3].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_through_a_due_refresh_is_one_trace_from_browser_to_rocketpunch_and_upstream() {
    let collector = Collector::start().await;
    let stack = Stack::with(traced(&collector.endpoint, short_tokens())).await;
    let browser = stack.browser();
    browser.login("/").await;
    let cookie = browser.cookie_header();
    tokio::time::sleep(DUE).await;

    // A client (a browser's instrumented page, another service) that started a trace; its
    // "not sampled" flag is not rocketgate's to obey from an untrusted peer (sample_ratio 1).
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let response = stack
        .client()
        .get(stack.url("/api/orders"))
        .header(COOKIE, &cookie)
        .header(ACCEPT, "application/json")
        .header("traceparent", format!("00-{client_trace}-{client_span}-00"))
        .header("tracestate", "vendor=opaque-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: Echo = response.json().await.unwrap();
    let access_token = echo
        .header("x-forwarded-access-token")
        .expect("the upstream got the access token")
        .to_owned();
    let email = echo
        .header("x-forwarded-email")
        .expect("the upstream got the email")
        .to_owned();
    assert_eq!(stack.standin.stats().refresh_token_grants, 1, "refreshed");

    let spans = collector
        .trace(
            client_trace,
            &["GET", "session.open", "session.refresh", "POST"],
        )
        .await;
    let server = one(&spans, "server", |s| s.kind() == 2);
    assert_eq!(
        server.parent(),
        client_span,
        "the client's trace is continued"
    );
    assert_eq!(server.name(), "GET");
    assert_eq!(server.attr("http.request.method").as_deref(), Some("GET"));
    assert_eq!(server.attr("url.path").as_deref(), Some("/api/orders"));
    assert_eq!(server.attr("url.scheme").as_deref(), Some("http"));
    assert_eq!(
        server.attr("http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(server.attr("client.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        server.attr("rocketgate.route").as_deref(),
        Some("upstream"),
        "the default route"
    );
    assert_eq!(server.attr("rocketgate.endpoint").as_deref(), Some("proxy"));
    assert!(server.attr("rocketgate.request_id").is_some());
    assert_eq!(
        server.resource_attr("service.name").as_deref(),
        Some("gate-under-test")
    );
    assert_eq!(
        server
            .resource_attr("deployment.environment.name")
            .as_deref(),
        Some("it")
    );

    let open = one(&spans, "session.open", |s| s.name() == "session.open");
    assert_eq!(open.parent(), server.span_id());
    let refresh = one(&spans, "session.refresh", |s| s.name() == "session.refresh");
    assert_eq!(refresh.parent(), server.span_id());
    assert_eq!(
        refresh.attr("rocketgate.refresh.joined").as_deref(),
        Some("false")
    );
    assert_eq!(
        refresh.attr("rocketgate.refresh.outcome").as_deref(),
        Some("ok")
    );
    let token = one(&spans, "token call", |s| {
        s.attr("rocketgate.provider.call").as_deref() == Some("token")
    });
    assert_eq!(
        token.parent(),
        refresh.span_id(),
        "the token call is the refresh's"
    );
    assert_eq!(token.kind(), 3);
    assert_eq!(token.name(), "POST");
    assert_eq!(
        token.attr("url.full"),
        Some(format!("http://{}/oauth/token", stack.provider))
    );
    assert_eq!(token.attr("server.address").as_deref(), Some("127.0.0.1"));
    let profile = one(&spans, "profile call", |s| {
        s.attr("rocketgate.provider.call").as_deref() == Some("profile")
    });
    assert_eq!(profile.parent(), refresh.span_id());

    let upstream = one(&spans, "upstream", |s| {
        s.kind() == 3 && s.attr("rocketgate.provider.call").is_none()
    });
    assert_eq!(upstream.parent(), server.span_id());
    assert_eq!(upstream.name(), "GET");
    assert_eq!(
        upstream.attr("url.full"),
        Some(format!("http://{}/api/orders", stack.upstream))
    );
    assert_eq!(
        upstream.attr("server.port"),
        Some(stack.upstream.port().to_string())
    );
    assert_eq!(
        upstream.attr("http.response.status_code").as_deref(),
        Some("200")
    );
    assert!(
        upstream.json["startTimeUnixNano"].as_str().unwrap_or("0")
            >= refresh.json["endTimeUnixNano"].as_str().unwrap_or("0"),
        "the upstream was called after the refresh"
    );

    // The upstream got the upstream span's context, sampled, and the client's tracestate.
    assert_eq!(
        echo.header("traceparent"),
        Some(format!("00-{client_trace}-{}-01", upstream.span_id()).as_str())
    );
    assert_eq!(echo.header("tracestate"), Some("vendor=opaque-1"));
    // Rocketpunch got the token call's.
    let exported = collector.raw();
    for (what, secret) in [
        ("cookie", cookie.split_once('=').unwrap().1),
        ("access token", access_token.as_str()),
        ("email", email.as_str()),
        ("client secret", "stack-client-secret"),
    ] {
        assert!(!exported.contains(secret), "the {what} is in a span");
    }
    assert!(!exported.contains("code="), "no authorization code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_traced_without_its_code_or_state() {
    let collector = Collector::start().await;
    let stack = Stack::with(traced(&collector.endpoint, Options::default())).await;
    let browser = stack.browser();
    browser.login("/after").await;
    let callback = collector
        .wait_for("callback", |s| {
            s.attr("url.path").as_deref() == Some("/oauth2/callback")
        })
        .await;
    assert_eq!(
        callback.attr("rocketgate.endpoint").as_deref(),
        Some("login")
    );
    let spans = collector.trace(callback.trace_id(), &["POST"]).await;
    let token = one(&spans, "token call", |s| {
        s.attr("rocketgate.provider.call").as_deref() == Some("token")
    });
    assert_eq!(token.parent(), callback.span_id());
    let exported = collector.raw();
    assert!(!exported.contains("code="), "no authorization code");
    assert!(!exported.contains("state="), "no state");
    assert!(!exported.contains("ada@"), "no email");
}

#[tokio::test]
async fn trace_context_reaches_the_upstream_without_an_exporter() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    browser.login("/").await;

    // No traceparent: a fresh trace, rocketgate's span as the parent, sampled (ratio 1).
    let first = browser.echo("/fresh").await;
    let (trace, parent, flags) = parts(first.header("traceparent").expect("traceparent"));
    assert_ne!(trace, "0".repeat(32));
    assert_ne!(parent, "0".repeat(16));
    assert_eq!(flags, "01");
    let second = browser.echo("/fresh").await;
    let (other, _, _) = parts(second.header("traceparent").unwrap());
    assert_ne!(other, trace, "each request its own trace");
    assert!(second.header("tracestate").is_none());

    // A client's trace is continued with a span of rocketgate's own; its flags are kept
    // when nothing is exported, so an upstream that samples by them sees the same answer.
    let continued = echo_with(
        &browser,
        &stack,
        "/continued",
        &[
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            ),
            ("tracestate", "congo=t61rcWkgMzE"),
        ],
    )
    .await;
    let (trace, parent, flags) = parts(continued.header("traceparent").unwrap());
    assert_eq!(trace, "0af7651916cd43dd8448eb211c80319c");
    assert_ne!(parent, "b7ad6b7169203331", "a span of rocketgate's own");
    assert_eq!(flags, "00");
    assert_eq!(continued.all("traceparent").len(), 1, "replaced, not added");
    assert_eq!(continued.header("tracestate"), Some("congo=t61rcWkgMzE"));

    // A malformed one starts a fresh trace (and its tracestate goes with it).
    for bad in [
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "garbage",
    ] {
        let echo = echo_with(
            &browser,
            &stack,
            "/bad",
            &[("traceparent", bad), ("tracestate", "congo=t61rcWkgMzE")],
        )
        .await;
        let (trace, _, _) = parts(echo.header("traceparent").unwrap());
        assert_ne!(trace, "0af7651916cd43dd8448eb211c80319c", "{bad}");
        assert_ne!(trace, "0".repeat(32), "{bad}");
        assert!(echo.header("tracestate").is_none(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_ratio_zero_records_nothing_but_still_propagates() {
    let collector = Collector::start().await;
    let stack = Stack::with(
        traced(&collector.endpoint, Options::default())
            .env("ROCKETGATE_TRACING__SAMPLE_RATIO", "0"),
    )
    .await;
    let browser = stack.browser();
    browser.login("/").await;
    // Sampled by an untrusted client: rocketgate decides for itself.
    let echo = echo_with(
        &browser,
        &stack,
        "/x",
        &[(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )],
    )
    .await;
    let (trace, parent, flags) = parts(echo.header("traceparent").unwrap());
    assert_eq!(trace, "0af7651916cd43dd8448eb211c80319c");
    assert_ne!(parent, "b7ad6b7169203331");
    assert_eq!(flags, "00", "not recorded here, so not sampled downstream");
    // A request that is recorded would be exported within the batch wait; give it time, then
    // check with one that is (a new stack at ratio 1 to the same collector).
    let marker = Stack::with(traced(&collector.endpoint, Options::default())).await;
    marker
        .client()
        .get(marker.url("/ping"))
        .send()
        .await
        .unwrap();
    collector
        .wait_for("marker", |s| s.attr("url.path").as_deref() == Some("/ping"))
        .await;
    assert!(
        collector
            .spans()
            .iter()
            .all(|s| s.attr("url.path").as_deref() == Some("/ping")),
        "nothing of the unsampled stack: {:#?}",
        collector.spans()
    );
}

/// Requests sent `count` at a time, `total` in all; each must be answered 200.
async fn load(stack: &Stack, cookie: &str, total: usize) {
    use futures_util::StreamExt as _;
    let client = stack.client();
    futures_util::stream::iter(0..total)
        .map(|i| {
            let client = client.clone();
            let url = stack.url(&format!("/load/{i}"));
            let cookie = cookie.to_owned();
            async move {
                client
                    .get(url)
                    .header(COOKIE, cookie)
                    .header(ACCEPT, "application/json")
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        })
        .buffer_unordered(16)
        .for_each(|status| async move {
            assert_eq!(status.ok(), Some(200));
        })
        .await;
}

fn dropped(metrics: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("rocketgate_trace_spans_dropped_total "))
        .and_then(|v| v.parse().ok())
        .expect("rocketgate_trace_spans_dropped_total")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_requests_nothing_and_drops_are_counted() {
    let mut collector = Collector::start().await;
    let endpoint = collector.endpoint.clone();
    collector.stop();
    let stack = Stack::with(traced(&endpoint, Options::default())).await;
    assert_eq!(dropped(&stack.metrics().await), 0.0, "exported at 0");
    let browser = stack.browser();
    browser.login("/").await;
    load(&stack, &browser.cookie_header(), 100).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while dropped(&stack.metrics().await) < 100.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "failed exports are counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_never_answers_fills_the_queue_not_the_requests() {
    // Accepts connections and reads nothing: the export waits on it, the queue fills.
    let stuck = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = stuck.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = stuck.accept().await {
            held.push(stream);
        }
    });
    let stack = Stack::with(traced(&format!("http://{addr}"), Options::default())).await;
    let browser = stack.browser();
    browser.login("/").await;
    let started = std::time::Instant::now();
    // About three spans a request (server, session open, upstream): well past the queue.
    load(&stack, &browser.cookie_header(), 1500).await;
    let text = stack.metrics().await;
    assert!(
        dropped(&text) > 0.0,
        "a full queue drops and counts (took {:?})",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_refreshes_link_to_the_one_that_called_rocketpunch_and_redis_calls_are_spans() {
    let collector = Collector::start().await;
    let redis = crate::support::redis::RedisServer::start().await;
    let stack = Stack::with(traced(
        &collector.endpoint,
        short_tokens()
            .env("ROCKETGATE_SESSION__STORE", "redis")
            .env("ROCKETGATE_SESSION__REDIS_URL", redis.url()),
    ))
    .await;
    let browser = stack.browser();
    browser.login("/").await;
    let cookie = browser.cookie_header();
    tokio::time::sleep(DUE).await;

    let requests = (0..6).map(|_| {
        stack
            .client()
            .get(stack.url("/together"))
            .header(COOKIE, &cookie)
            .header(ACCEPT, "application/json")
            .send()
    });
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(
        stack.standin.stats().refresh_token_grants,
        1,
        "one token call"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let refreshes = loop {
        let refreshes: Vec<Span> = collector
            .spans()
            .into_iter()
            .filter(|s| s.name() == "session.refresh")
            .collect();
        if refreshes.len() == 6 {
            break refreshes;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "six refresh spans: {refreshes:#?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let caller = one(&refreshes, "calling refresh", |s| {
        s.attr("rocketgate.refresh.joined").as_deref() == Some("false")
    });
    let spans = collector.spans();
    let token = one(&spans, "token call", |s| {
        s.attr("rocketgate.provider.call").as_deref() == Some("token")
            && s.trace_id() == caller.trace_id()
    });
    assert_eq!(token.parent(), caller.span_id());
    for joined in refreshes.iter().filter(|s| s.span_id() != caller.span_id()) {
        assert_eq!(
            joined.attr("rocketgate.refresh.joined").as_deref(),
            Some("true")
        );
        assert_eq!(
            joined.links(),
            vec![caller.span_id().to_owned()],
            "{joined:#?}"
        );
        assert_ne!(
            joined.trace_id(),
            caller.trace_id(),
            "each request its own trace"
        );
    }

    let redis_spans: Vec<&Span> = spans
        .iter()
        .filter(|s| s.attr("db.system.name").as_deref() == Some("redis"))
        .collect();
    assert!(!redis_spans.is_empty(), "Redis commands are spans");
    for span in &redis_spans {
        assert_eq!(span.kind(), 3);
        assert_eq!(span.attr("db.operation.name").as_deref(), Some(span.name()));
        assert_ne!(span.parent(), "", "inside a request or a refresh");
    }
    let exported = collector.raw();
    assert!(!exported.contains(cookie.split_once('=').unwrap().1));
}

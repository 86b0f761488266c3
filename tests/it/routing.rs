//! Routing: skip routes match the normalised path and method only, and health checks the path
//! alone.

use std::time::Duration;

use crate::support::{Options, Stack};
use reqwest::header::ACCEPT;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends a raw HTTP/1.1 request (clients normalise `..` away) and returns the status code.
async fn raw_status(stack: &Stack, target: &str, method: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(stack.proxy).await.unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        stack.proxy
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test]
async fn skip_routes_match_the_normalised_path_and_method_only() {
    let stack = Stack::with(Options::default().env(
        "ROCKETGATE_ACCESS__SKIP_AUTH_ROUTES",
        "GET=^/public/,^/status$",
    ))
    .await;
    let cases: &[(&str, &str, u16)] = &[
        ("GET", "/public/page", 200),
        ("GET", "/public/a%20b", 200),
        ("HEAD", "/status", 200),
        ("POST", "/status", 200),
        ("POST", "/public/page", 401),
        ("GET", "/private?path=/public/", 401),
        ("GET", "/private?x=/status", 401),
        ("GET", "/private%23/public/", 401),
        ("GET", "/status%23", 401),
        ("GET", "/public/../private", 400),
        ("GET", "/public/%2e%2e/private", 400),
        ("GET", "/public/%2E%2e/private", 400),
        ("GET", "/public/.%2e/private", 400),
        ("GET", "/public%2Fx", 400),
        ("GET", "/public/..%2Fprivate", 400),
        ("GET", "/public/..;/private", 400),
        ("GET", "/public/..%3B/private", 400),
        ("GET", "/public/..;jsessionid=x/private", 400),
        ("GET", "/public/.;x/page", 400),
        ("GET", "/public/a;b/page", 200),
        ("GET", "/public/x%5C..%5Cprivate", 400),
        ("GET", "/public/%252e%252e/x", 200),
        ("GET", "//public/x", 401),
    ];
    let mut wrong = Vec::new();
    for (method, target, expected) in cases {
        let got = raw_status(&stack, target, method).await;
        if got != *expected {
            wrong.push(format!("{method} {target}: {got}, want {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn health_checks_match_the_path_alone() {
    let stack = Stack::start().await;
    let client = stack.client();
    for ua in ["kube-probe/1.29", "ELB-HealthChecker/2.0", "GoogleHC/1.0"] {
        let r = client
            .get(stack.url("/private"))
            .header("User-Agent", ua)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{ua}");
    }
    assert_eq!(
        client
            .get(stack.url("/ping"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(stack.url("/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(stack.url("/ping/x"))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(stack.url("/oauth2/nothing"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

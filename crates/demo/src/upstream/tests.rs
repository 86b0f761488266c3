//! Tests of the demo upstream over real HTTP on loopback.

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::spawn_upstream;

struct Harness {
    addr: String,
    client: reqwest::Client,
    task: JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> Harness {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = spawn_upstream(listener);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    Harness { addr, client, task }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends `request` byte for byte and returns (head, body) of the answer.
    async fn raw(&self, request: &str) -> (String, Vec<u8>) {
        let mut stream = TcpStream::connect(&self.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete head");
        let head = String::from_utf8(response[..split].to_vec()).unwrap();
        (head, response[split + 4..].to_vec())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn echo_keeps_raw_uri_and_every_header_line() {
    let h = start().await;
    let (head, body) = h
        .raw(
            "POST /a%2Fb?x=1&y=%20 HTTP/1.1\r\nHost: example.test\r\nX-Dup: one\r\n\
             X-Other: z\r\nX-Dup: two\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        )
        .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let echo: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["uri"], "/a%2Fb?x=1&y=%20");
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["body_bytes"], 5);
    assert_eq!(echo["body_sha256"], hex(&Sha256::digest(b"hello")));
    let headers: Vec<(String, String)> = serde_json::from_value(echo["headers"].clone()).unwrap();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("host", "example.test"),
            ("x-dup", "one"),
            ("x-dup", "two"),
            ("x-other", "z"),
            ("content-length", "5"),
            ("connection", "close"),
        ]
    );
}

#[tokio::test]
async fn echo_counts_a_streamed_upload() {
    let h = start().await;
    const CHUNKS: usize = 256;
    let chunk = vec![7u8; 64 * 1024];
    let mut expected = Sha256::new();
    for _ in 0..CHUNKS {
        expected.update(&chunk);
    }
    let stream = futures_util::stream::iter(
        (0..CHUNKS).map(move |_| Ok::<_, std::io::Error>(bytes::Bytes::from(chunk.clone()))),
    );
    let echo: Value = h
        .client
        .put(h.url("/upload"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["body_bytes"], (CHUNKS * 64 * 1024) as u64);
    assert_eq!(echo["body_sha256"], hex(&expected.finalize()));
    let headers = echo["headers"].as_array().unwrap();
    assert!(
        headers
            .iter()
            .any(|h| h[0] == "transfer-encoding" && h[1] == "chunked")
    );
}

#[tokio::test]
async fn download_streams_exactly_n_bytes() {
    let h = start().await;
    let n: usize = 3 * 64 * 1024 + 17;
    let resp = h
        .client
        .get(h.url(&format!("/_upstream/download?bytes={n}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-length"], n.to_string().as_str());
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), n);
    assert!(
        body.iter()
            .enumerate()
            .all(|(i, &b)| b == ((i % (64 * 1024)) % 251) as u8)
    );

    let resp = h
        .client
        .get(h.url("/_upstream/download?bytes=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-length"], "0");
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = h
        .client
        .get(h.url("/_upstream/download?bytes=-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn status_route() {
    let h = start().await;
    let resp = h
        .client
        .get(h.url("/_upstream/status/418"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(resp.headers()["x-upstream-status"], "418");
    assert_eq!(resp.text().await.unwrap(), "upstream answered 418");
    let resp = h
        .client
        .get(h.url("/_upstream/status/204"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(resp.headers()["x-upstream-status"], "204");
    for bad in ["101", "600", "abc", "99"] {
        let resp = h
            .client
            .get(h.url(&format!("/_upstream/status/{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn slow_route_waits() {
    let h = start().await;
    let started = Instant::now();
    let resp = h
        .client
        .get(h.url("/_upstream/slow?ms=80"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "slow done");
    assert!(started.elapsed() >= Duration::from_millis(80));
}

#[tokio::test]
async fn set_cookie_route_sends_two_cookies() {
    let h = start().await;
    let resp = h
        .client
        .get(h.url("/_upstream/set-cookie"))
        .send()
        .await
        .unwrap();
    let cookies: Vec<_> = resp.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["app_a=1; Path=/", "app_b=2; Path=/"]);
}

#[tokio::test]
async fn websocket_echo() {
    let h = start().await;
    let stream = TcpStream::connect(&h.addr).await.unwrap();
    let (mut ws, resp) =
        tokio_tungstenite::client_async(format!("ws://{}/_upstream/ws", h.addr), stream)
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![0u8, 1, 2, 255])
    );
    ws.close(None).await.unwrap();
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Close(_)) => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => break,
        }
    }
}

#[tokio::test]
async fn websocket_route_rejects_plain_requests() {
    let h = start().await;
    let resp = h.client.get(h.url("/_upstream/ws")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn html_page_shows_identity_and_escapes_headers() {
    let h = start().await;
    let resp = h
        .client
        .get(h.url("/dash?q=<b>"))
        .header("accept", "text/html,application/xhtml+xml")
        .header("x-forwarded-user", "1001")
        .header("x-forwarded-email", "ada@example.com")
        .header("x-forwarded-preferred-username", "ada")
        .header("x-evil", "<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("Signed in as ada"));
    assert!(page.contains("ada@example.com"));
    assert!(page.contains("Demo app behind rocketgate"));
    assert!(page.contains("href=\"/oauth2/sign_out\""));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<script>"));
    assert!(page.contains("/dash?q=%3Cb%3E") || page.contains("/dash?q=&lt;b&gt;"));
    assert!(!page.contains("<code>x-forwarded-groups</code></th><td>"));

    let page = h
        .client
        .get(h.url("/"))
        .header("accept", "text/html")
        .header("x-forwarded-user", "<i>1002</i>")
        .header("x-forwarded-groups", "navy,ops")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Signed in as &lt;i&gt;1002&lt;/i&gt;"));
    assert!(page.contains("<code>x-forwarded-groups</code></th><td>navy,ops</td>"));
}

#[tokio::test]
async fn non_html_get_is_echoed() {
    let h = start().await;
    let echo: Value = h
        .client
        .get(h.url("/api/thing"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo["uri"], "/api/thing");
    assert_eq!(echo["body_bytes"], 0);
}

#[tokio::test]
async fn serves_h2c_too() {
    let h = start().await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let echo: Value = client
        .get(h.url("/h2?x=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["uri"], "/h2?x=1");
}

/// Resident set size of this process, in KiB (Linux only).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Slow in debug builds, hence ignored; run with
/// `cargo test --release --lib large_upload -- --ignored`.
#[tokio::test]
#[ignore]
async fn large_upload_in_flat_memory() {
    let h = start().await;
    const CHUNK: usize = 1024 * 1024;
    const CHUNKS: usize = 1024; // 1 GiB
    let chunk = bytes::Bytes::from(vec![1u8; CHUNK]);
    let before = rss_kib().unwrap_or(0);
    let stream = futures_util::stream::iter(
        (0..CHUNKS).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let echo: Value = h
        .client
        .post(h.url("/big"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo["body_bytes"], (CHUNK * CHUNKS) as u64);
    let grown_mib = rss_kib().unwrap_or(0).saturating_sub(before) / 1024;
    assert!(grown_mib < 64, "RSS grew by {grown_mib} MiB");
}

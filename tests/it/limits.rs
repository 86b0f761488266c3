//! The bounds a client cannot push past: header size (431), slow heads and idle connections, slow
//! readers, open files, connections, logins in progress.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::process::{
    Tail, command_under_ulimit, drain, free_port, plain_client, wait_until_ready,
};
use crate::support::{Options, Stack, location, set_cookies};
use reqwest::header::{ACCEPT, COOKIE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;

#[tokio::test]
async fn an_oversized_cookie_header_gets_431_and_the_server_stays_up() {
    let stack = Stack::start().await;
    let mut stream = TcpStream::connect(stack.proxy).await.unwrap();
    let big = "a".repeat(64 * 1024);
    let request = format!("GET /x HTTP/1.1\r\nHost: x\r\nCookie: _rocketgate={big}\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&answer[..n]);
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    assert_eq!(
        stack
            .client()
            .get(stack.url("/ping"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Just under the limit still works (and is simply not a session).
    let ok = stack
        .client()
        .get(stack.url("/x"))
        .header(ACCEPT, "application/json")
        .header(COOKIE, format!("_rocketgate={}", "a".repeat(20 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 401);
}

/// Reads until the peer closes the connection; returns how long that took.
async fn time_to_close(stream: &mut TcpStream, bound: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(bound, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("connection still open after {bound:?}"),
        }
    }
}

#[tokio::test]
async fn slow_heads_and_idle_connections_are_closed_separately() {
    let stack = Stack::with(
        Options::default()
            .env("ROCKETGATE_LIMITS__HEADER_READ_TIMEOUT", "400ms")
            .env("ROCKETGATE_LIMITS__IDLE_TIMEOUT", "1500ms"),
    )
    .await;
    // Slowloris: a head that never finishes is cut after header_read_timeout.
    let mut slow = TcpStream::connect(stack.proxy).await.unwrap();
    slow.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let took = time_to_close(&mut slow, Duration::from_secs(5)).await;
    assert!(
        took < Duration::from_millis(1400),
        "slow head closed after {took:?}"
    );

    // A keep-alive connection may idle longer than the head timeout...
    let mut idle = TcpStream::connect(stack.proxy).await.unwrap();
    let ping = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
    idle.write_all(ping).await.unwrap();
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    idle.write_all(ping).await.unwrap();
    let n = idle.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "reused after 800 ms idle"
    );
    // ...and is closed once idle_timeout passes.
    let took = time_to_close(&mut idle, Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(1300) && took < Duration::from_millis(3000),
        "idle closed after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_gets_the_whole_response_before_the_idle_timeout_applies() {
    const IDLE_MS: u64 = 300;
    const BYTES: usize = 8 << 20;
    let stack = Stack::with(
        Options::default().env("ROCKETGATE_LIMITS__IDLE_TIMEOUT", format!("{IDLE_MS}ms")),
    )
    .await;
    let browser = stack.browser();
    browser.login("/").await;
    let mut stream = TcpStream::connect(stack.proxy).await.unwrap();
    let request = format!(
        "GET /_upstream/download?bytes={BYTES} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\n\r\n",
        stack.proxy,
        browser.cookie_header()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // About 3 MiB/s: the proxy has taken the whole body from the upstream (its request is
    // over) well before the client has read it all. The tail left in its buffer waits for
    // the kernel's full send buffer, which wakes a blocked writer only once a good part of
    // it has drained: longer than the idle timeout, while the client reads all along.
    let mut received = Vec::with_capacity(BYTES + 1024);
    let mut buf = vec![0u8; 16 * 1024];
    let started = Instant::now();
    loop {
        // Once the response is sent, the idle connection must be closed, not left hanging.
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("nothing sent, not closed, after {} bytes", received.len()))
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let head_end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&received[..head_end]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        received.len() - head_end,
        BYTES,
        "body bytes received before the proxy closed the connection ({:?} after the request)",
        started.elapsed()
    );
    assert!(started.elapsed() > Duration::from_millis(3 * IDLE_MS));
}

/// `rocketgate demo` started under `ulimit {limit}`, ready; with its address and its log.
async fn demo_under_ulimit(limit: &str) -> (Child, SocketAddr, Tail) {
    let proxy = free_port();
    let mut child = command_under_ulimit(limit, &["demo", "--listen", &proxy.to_string()])
        .spawn()
        .expect("spawn rocketgate");
    let stdout = Tail::new(child.stdout.take());
    drop(drain(child.stderr.take()));
    wait_until_ready(&mut child, &plain_client(), proxy).await;
    (child, proxy, stdout)
}

/// Waits (bounded) for `line` in `child`'s log, then stops it; returns what it logged.
async fn stop_after(mut child: Child, log: Tail, line: &str) -> String {
    let text = log.wait_for(line, Duration::from_secs(10)).await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
    text
}

// Reads /proc/<pid>/limits.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_open_file_soft_limit_is_raised_at_start() {
    // 128 descriptors would cap the proxy at about a hundred connections; the hard limit
    // (20,000 here, 524,288 under systemd) allows far more, and rocketgate takes it.
    const SOFT: u32 = 128;
    const CONNECTIONS: usize = 200;
    let (child, proxy, stdout) = demo_under_ulimit(&format!("-Sn {SOFT}")).await;

    let pid = child.id().expect("running");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files")
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect();
    assert_eq!(
        open_files[0], open_files[1],
        "soft raised to hard: {limits}"
    );
    assert_ne!(open_files[0], SOFT.to_string());

    // More connections held open at once than the old soft limit had descriptors.
    let mut held = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        held.push(TcpStream::connect(proxy).await.unwrap());
    }
    for (i, stream) in held.iter_mut().enumerate() {
        stream
            .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 128];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("connection {i} not served within 10 s"))
            .unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "connection {i}: {}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    let log = stop_after(child, stdout, "open-file limit raised").await;
    assert!(log.contains("open-file limit raised from=128"), "{log}");

    // When the hard limit itself cannot cover max_connections, it says so at start.
    let (child, _, stdout) = demo_under_ulimit(&format!("-n {SOFT}")).await;
    let log = stop_after(child, stdout, "the open-file limit is too low").await;
    assert!(
        log.contains("the open-file limit is too low for limits.max_connections"),
        "{log}"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let stack =
        Stack::with(Options::default().env("ROCKETGATE_LIMITS__MAX_CONNECTIONS", "2")).await;
    let ping = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(stack.proxy).await.unwrap();
        s.write_all(ping).await.unwrap();
        let mut buf = [0u8; 128];
        assert!(s.read(&mut buf).await.unwrap() > 0);
        held.push(s);
    }
    let mut third = TcpStream::connect(stack.proxy).await.unwrap();
    let _ = third.write_all(ping).await;
    let mut buf = [0u8; 128];
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "third connection closed without an answer");
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut s = TcpStream::connect(stack.proxy).await.unwrap();
        let _ = s.write_all(ping).await;
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        if n > 0 {
            again = Some(n);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a freed slot is usable again");
}

#[tokio::test]
async fn one_browser_cannot_pile_up_unbounded_logins() {
    let stack =
        Stack::with(Options::default().env("ROCKETGATE_LIMITS__MAX_LOGINS_PER_CLIENT", "3")).await;
    let browser = stack.browser();
    for _ in 0..3 {
        let r = browser.get(&stack.url("/")).await;
        assert_eq!(set_cookies(&r).len(), 1);
    }
    let fourth = browser.get(&stack.url("/")).await;
    let cookies = set_cookies(&fourth);
    let cleared = cookies
        .iter()
        .filter(|c| c.contains("_csrf_") && c.contains("Max-Age=0"))
        .count();
    assert_eq!(cleared, 3, "{cookies:?}");
    assert_eq!(cookies.len(), 4);
    let jar = browser.cookie_header();
    let pending = jar.matches("_csrf_").count();
    assert_eq!(pending, 1, "{jar}\n{cookies:#?}");
    // The newest login still completes.
    let back = browser.consent(&location(&fourth), "1001", true).await;
    assert_eq!(browser.get(&location(&back)).await.status(), 302);
}

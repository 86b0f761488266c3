//! gRPC through rocketgate: tonic clients (and tonic-health) on one side, the hand-written
//! gRPC upstream on the other, over `http://` (gRPC goes h2c by itself), `h2c://` and
//! `https://` (ALPN) upstreams. Every call type with its trailers, deadlines, a 16 MiB
//! message, refusals as gRPC statuses, bearer and cookie metadata, gRPC-Web, an upstream
//! that restarts mid-stream and one that goes silent under an open connection.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use rocketgate_demo::{Fault, FaultEndpoint, StandInOptions};
use serde_json::Value;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::support::grpc::{GrpcUpstream, Messages, frame};
use crate::support::pki::Pki;
use crate::support::process::TempFile;
use crate::support::relay::Relay;
use crate::support::{HTML, Options, Stack, bearer_options};

/// Messages as raw bytes: the upstream echoes whatever it is sent.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

type Client = tonic::client::Grpc<Channel>;

/// A gRPC client of the proxy over h2c, taking messages up to 64 MiB.
async fn client(stack: &Stack) -> Client {
    let channel = Endpoint::from_shared(format!("http://{}", stack.proxy))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("h2c to the proxy");
    tonic::client::Grpc::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

fn path(method: &str) -> PathAndQuery {
    PathAndQuery::try_from(format!("/test.Echo/{method}")).unwrap()
}

/// `message` with `authorization: Bearer token` metadata.
fn with_bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    request
}

async fn unary(
    client: &mut Client,
    method: &str,
    request: Request<Bytes>,
) -> Result<Bytes, Status> {
    client.ready().await.unwrap();
    Ok(client.unary(request, path(method), Raw).await?.into_inner())
}

/// What the upstream saw of a call: version, URI, headers.
async fn seen(client: &mut Client, request: Request<Bytes>) -> Value {
    let body = unary(client, "Headers", request)
        .await
        .expect("Headers call");
    serde_json::from_slice(&body).unwrap()
}

fn header<'a>(seen: &'a Value, name: &str) -> Vec<&'a str> {
    seen["headers"][name]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The stack for gRPC: bearer tokens accepted (the stand-in signs JWTs), the gRPC
/// upstream at `upstream` (`http://` unless `ROCKETGATE_UPSTREAM` says otherwise).
fn grpc_options(upstream: &GrpcUpstream) -> Options {
    Options {
        upstream: Some(upstream.addr),
        ..bearer_options()
    }
}

/// Every call type, with identity metadata in and trailers out, against one upstream.
async fn every_call_type(stack: &Stack) {
    let token = stack.standin.issue_access_token("1001").unwrap();
    let mut client = client(stack).await;

    // Unary: the message back, the upstream's trailers merged into the metadata.
    client.ready().await.unwrap();
    let response = client
        .unary(
            with_bearer(Bytes::from_static(b"hello"), &token),
            path("Unary"),
            Raw,
        )
        .await
        .expect("unary call");
    assert_eq!(response.metadata().get("x-trailer").unwrap(), "kept");
    assert_eq!(
        response.metadata().get("x-upstream-version").unwrap(),
        "HTTP/2.0"
    );
    assert_eq!(response.into_inner(), "hello");

    // Identity headers arrive as metadata; a client's own copies do not.
    let mut spoofed = with_bearer(Bytes::new(), &token);
    spoofed
        .metadata_mut()
        .insert("x-forwarded-user", MetadataValue::from_static("root"));
    let seen = seen(&mut client, spoofed).await;
    assert_eq!(header(&seen, "x-forwarded-user"), ["1001"]);
    assert_eq!(header(&seen, "x-forwarded-email"), ["ada@example.com"]);
    assert_eq!(header(&seen, "te"), ["trailers"]);
    assert_eq!(header(&seen, "content-type"), ["application/grpc"]);
    assert_eq!(seen["version"], "HTTP/2.0");

    // Server streaming: five messages, then the trailers.
    client.ready().await.unwrap();
    let mut stream = client
        .server_streaming(
            with_bearer(Bytes::from_static(b"5,10"), &token),
            path("ServerStream"),
            Raw,
        )
        .await
        .expect("server-streaming call")
        .into_inner();
    let mut got = Vec::new();
    while let Some(m) = stream.message().await.expect("stream message") {
        got.push(String::from_utf8(m.to_vec()).unwrap());
    }
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    let trailers = stream.trailers().await.unwrap().expect("trailers");
    assert_eq!(trailers.get("x-trailer").unwrap(), "kept");

    // Client streaming: four messages in, one answer.
    let messages =
        futures_util::stream::iter([&b"a"[..], b"bb", b"ccc", b"dddd"].map(Bytes::from_static));
    client.ready().await.unwrap();
    let answer = client
        .client_streaming(with_bearer(messages, &token), path("ClientStream"), Raw)
        .await
        .expect("client-streaming call")
        .into_inner();
    assert_eq!(answer, "4,10");

    // Bidirectional: each answer arrives before the next message is sent, so both
    // directions really stream through the proxy.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let outgoing =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    client.ready().await.unwrap();
    tx.send(Bytes::from_static(b"ping 0")).await.unwrap();
    let mut incoming = client
        .streaming(with_bearer(outgoing, &token), path("Bidi"), Raw)
        .await
        .expect("bidi call")
        .into_inner();
    for i in 0..5 {
        if i > 0 {
            tx.send(Bytes::from(format!("ping {i}"))).await.unwrap();
        }
        let echoed = tokio::time::timeout(Duration::from_secs(5), incoming.message())
            .await
            .expect("echo while the request stream is still open")
            .unwrap()
            .unwrap();
        assert_eq!(echoed, format!("ping {i}"));
    }
    drop(tx);
    assert!(incoming.message().await.unwrap().is_none());

    // An application error keeps its status, message and custom trailing metadata.
    let failed = unary(&mut client, "Fail", with_bearer(Bytes::new(), &token))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::FailedPrecondition);
    assert_eq!(failed.message(), "not now");
    assert_eq!(failed.metadata().get("x-detail").unwrap(), "42");
    assert_eq!(
        failed
            .metadata()
            .get_bin("x-detail-bin")
            .unwrap()
            .to_bytes()
            .unwrap(),
        &[1u8, 2, 3][..]
    );
}

#[tokio::test]
async fn every_call_type_passes_to_an_http_upstream_over_h2c_by_itself() {
    let upstream = GrpcUpstream::start().await;
    let stack = Stack::with(grpc_options(&upstream)).await;
    every_call_type(&stack).await;

    // Ordinary requests to the same http:// upstream stay HTTP/1.1.
    let version = stack
        .client()
        .get(stack.url("/version"))
        .bearer_auth(stack.standin.issue_access_token("1001").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(version.status(), 200);
    assert_eq!(version.text().await.unwrap(), "HTTP/1.1");
    stack.stop().await;
}

#[tokio::test]
async fn an_h2c_upstream_gets_every_request_over_http2_multiplexed() {
    let upstream = GrpcUpstream::start().await;
    let stack = Stack::with(
        grpc_options(&upstream).env("ROCKETGATE_UPSTREAM", format!("h2c://{}", upstream.addr)),
    )
    .await;
    every_call_type(&stack).await;

    let token = stack.standin.issue_access_token("1001").unwrap();
    let http = stack.client();
    let version = http
        .get(stack.url("/version"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        version.text().await.unwrap(),
        "HTTP/2.0",
        "ordinary requests too"
    );

    // Forty calls at once share the pooled HTTP/2 connection rather than open forty.
    let before = upstream.connections.load(Ordering::SeqCst);
    let calls = (0..40).map(|i| {
        let token = token.clone();
        let stack = &stack;
        async move {
            let mut client = client(stack).await;
            unary(
                &mut client,
                "Unary",
                with_bearer(Bytes::from(format!("m{i}")), &token),
            )
            .await
            .unwrap()
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    assert_eq!(answers.len(), 40);
    let opened = upstream.connections.load(Ordering::SeqCst) - before;
    assert!(
        opened <= 2,
        "{opened} new upstream connections for 40 concurrent calls"
    );
    stack.stop().await;
}

#[tokio::test]
async fn an_https_upstream_is_spoken_to_in_the_protocol_alpn_picks() {
    let pki = Pki::new();
    let leaf = pki.leaf();
    let ca = TempFile::new("grpc-upstream-ca", &pki.ca_pem());
    for (alpn, version) in [
        (&[&b"h2"[..], b"http/1.1"][..], "HTTP/2.0"),
        (&[&b"http/1.1"[..]][..], "HTTP/1.1"),
    ] {
        let upstream = GrpcUpstream::start_tls(leaf.server_config(alpn)).await;
        let stack = Stack::with(
            grpc_options(&upstream)
                .env(
                    "ROCKETGATE_UPSTREAM",
                    format!("https://localhost:{}", upstream.addr.port()),
                )
                .env("ROCKETGATE_UPSTREAM_CA_FILE", ca.0.display().to_string()),
        )
        .await;
        let token = stack.standin.issue_access_token("1001").unwrap();
        // HTTP/1.1 and HTTP/2 clients alike, whatever the upstream picked.
        let h2 = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap();
        for client in [stack.client(), h2] {
            let answer = client
                .get(stack.url("/version"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200, "{version}");
            assert_eq!(answer.text().await.unwrap(), version);
        }
        // The upstream is named by its own host (its certificate's), the client's host
        // travels as X-Forwarded-Host.
        let seen = grpc_web_seen(&stack, &token).await;
        let authority = format!("localhost:{}", upstream.addr.port());
        let named = if version == "HTTP/2.0" {
            seen["uri"].as_str().unwrap().contains(&authority)
        } else {
            header(&seen, "host") == [authority.as_str()]
        };
        assert!(named, "{seen}");
        assert_eq!(
            header(&seen, "x-forwarded-host"),
            [stack.proxy.to_string().as_str()]
        );
        if version == "HTTP/2.0" {
            every_call_type(&stack).await;
        }
        stack.stop().await;
    }
}

#[tokio::test]
async fn tonic_health_checks_pass_with_a_bearer_token() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let upstream = GrpcUpstream::start().await;
    let stack = Stack::with(grpc_options(&upstream)).await;
    let token = stack.standin.issue_access_token("1001").unwrap();
    let channel = Endpoint::from_shared(format!("http://{}", stack.proxy))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let answer = health
        .check(with_bearer(HealthCheckRequest::default(), &token))
        .await
        .expect("health check through rocketgate");
    assert_eq!(answer.into_inner().status(), ServingStatus::Serving);

    let refused = health
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    stack.stop().await;
}

#[tokio::test]
async fn refusals_are_grpc_statuses_never_pages_or_redirects() {
    let mut upstream = GrpcUpstream::start().await;
    let stack = Stack::with(
        grpc_options(&upstream).env("ROCKETGATE_ACCESS__ALLOWED_EMAILS", "ada@example.com"),
    )
    .await;
    let mut client = client(&stack).await;
    let ada = stack.standin.issue_access_token("1001").unwrap();

    // Not signed in, even from a "browser" that accepts HTML: 16, not a login redirect.
    let mut anonymous = Request::new(Bytes::new());
    anonymous
        .metadata_mut()
        .insert("accept", MetadataValue::from_static(HTML));
    let refused = unary(&mut client, "Unary", anonymous).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(refused.message(), "You need to sign in to continue.");

    let forged = unary(&mut client, "Unary", with_bearer(Bytes::new(), "not.a.jwt"))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated);

    let grace = stack.standin.issue_access_token("1002").unwrap();
    let denied = unary(&mut client, "Unary", with_bearer(Bytes::new(), &grace))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // A deadline shorter than upstream_timeout wins, and the answer is rocketgate's.
    let mut hurried = with_bearer(Bytes::from_static(b"x"), &ada);
    hurried.set_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let late = unary(&mut client, "Slow", hurried).await.unwrap_err();
    assert_eq!(late.code(), Code::DeadlineExceeded, "{late:?}");
    assert!(started.elapsed() < Duration::from_millis(2500));
    // An upstream that has not even sent its head by the deadline: rocketgate's own answer.
    // Sent by hand with only the `grpc-timeout` header: tonic's own timer for the same
    // deadline would race rocketgate's and cancel the call first.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let started = Instant::now();
    let late = h2
        .post(stack.url("/test.Echo/SlowHead"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "400m")
        .bearer_auth(&ada)
        .body(frame(b"x"))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(late.status(), 200);
    assert_eq!(late.headers()["grpc-status"], "4", "{:?}", late.headers());
    assert_eq!(
        late.headers()["grpc-message"],
        "The application did not answer in time. Please try again."
    );

    upstream.stop();
    let down = unary(&mut client, "Unary", with_bearer(Bytes::new(), &ada))
        .await
        .unwrap_err();
    assert_eq!(down.code(), Code::Unavailable);
    assert_eq!(
        down.message(),
        "The application behind this sign-in cannot be reached right now."
    );

    // Logged and counted by what they are, not as the HTTP 200 they travel in.
    let metrics = stack.metrics().await;
    let count = |class: &str| {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("rocketgate_requests_total{")
                    && l.contains(&format!("class=\"{class}\""))
                    && l.contains("route=\"proxy\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    assert_eq!(count("4xx"), 3.0, "{metrics}");
    assert_eq!(count("5xx"), 2.0, "{metrics}");
    // The deadline cut a call whose head the upstream had already sent: that head is what
    // the request line and the counter record.
    assert_eq!(count("2xx"), 1.0, "{metrics}");
    stack.stop().await;
}

#[tokio::test]
async fn a_refresh_rocketpunch_cannot_serve_is_unavailable_and_keeps_the_session() {
    let upstream = GrpcUpstream::start().await;
    let stack = Stack::with(Options {
        upstream: Some(upstream.addr),
        standin: StandInOptions {
            access_token_ttl: Duration::from_secs(2),
            ..StandInOptions::default()
        },
        ..Options::default()
    })
    .await;
    let browser = stack.browser();
    browser.login("/").await;
    let cookie = browser.cookie_header();
    let mut client = client(&stack).await;
    let with_cookie = |m: &'static [u8]| {
        let mut r = Request::new(Bytes::from_static(m));
        r.metadata_mut()
            .insert("cookie", MetadataValue::try_from(cookie.as_str()).unwrap());
        r
    };
    assert_eq!(
        unary(&mut client, "Unary", with_cookie(b"a"))
            .await
            .unwrap(),
        "a"
    );

    // The access token has expired, so the refresh is needed, and Rocketpunch's token
    // endpoint is down.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    stack
        .standin
        .set_fault(FaultEndpoint::Token, Some(Fault::Status(503)));
    let unavailable = unary(&mut client, "Unary", with_cookie(b"b"))
        .await
        .unwrap_err();
    assert_eq!(unavailable.code(), Code::Unavailable, "{unavailable:?}");

    // Back up: after the refresh backoff, the same cookie works again.
    stack.standin.set_fault(FaultEndpoint::Token, None);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match unary(&mut client, "Unary", with_cookie(b"c")).await {
            Ok(answer) => break assert_eq!(answer, "c"),
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(Instant::now() < deadline, "the session never recovered");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    stack.stop().await;
}

#[tokio::test]
async fn a_split_cookie_header_is_joined_to_find_the_session_and_ours_never_reaches_the_app() {
    let upstream = GrpcUpstream::start().await;
    let stack = Stack::with(grpc_options(&upstream)).await;
    let browser = stack.browser();
    browser.login("/").await;
    let session = browser.cookie_header();
    let mut client = client(&stack).await;

    // HTTP/2 lets a client send each cookie as its own `cookie` field (RFC 9113 §8.2.3).
    let mut request = Request::new(Bytes::new());
    let metadata = request.metadata_mut();
    metadata.append("cookie", MetadataValue::from_static("theme=dark"));
    for pair in session.split("; ") {
        metadata.append("cookie", MetadataValue::try_from(pair).unwrap());
    }
    metadata.append("cookie", MetadataValue::from_static("lang=en"));
    let seen = seen(&mut client, request).await;
    assert_eq!(header(&seen, "x-forwarded-user"), ["1001"]);
    let cookies = header(&seen, "cookie").join("; ");
    assert_eq!(cookies, "theme=dark; lang=en");
    stack.stop().await;
}

#[tokio::test]
async fn a_sixteen_mib_message_streams_through_both_ways() {
    let upstream = GrpcUpstream::start().await;
    let stack = Stack::with(grpc_options(&upstream)).await;
    let token = stack.standin.issue_access_token("1001").unwrap();
    let mut client = client(&stack).await;
    let big: Bytes = (0..16 << 20)
        .map(|i: u32| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let echoed = unary(&mut client, "Unary", with_bearer(big.clone(), &token))
        .await
        .expect("16 MiB echo");
    assert_eq!(echoed.len(), big.len());
    assert!(echoed == big, "the same bytes came back");
    stack.stop().await;
}

#[tokio::test]
async fn an_upstream_restarted_mid_stream_ends_the_call_and_the_next_one_works() {
    let mut upstream = GrpcUpstream::start().await;
    let stack = Stack::with(grpc_options(&upstream)).await;
    let token = stack.standin.issue_access_token("1001").unwrap();
    let mut client = client(&stack).await;
    client.ready().await.unwrap();
    let mut stream = client
        .server_streaming(
            with_bearer(Bytes::from_static(b"200,20"), &token),
            path("ServerStream"),
            Raw,
        )
        .await
        .unwrap()
        .into_inner();
    for _ in 0..3 {
        stream.message().await.unwrap().unwrap();
    }
    upstream.restart().await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the broken stream ends, it does not hang");
    assert!(
        ended.is_err(),
        "a cut stream is an error, not a clean end: {ended:?}"
    );

    let again = unary(
        &mut client,
        "Unary",
        with_bearer(Bytes::from_static(b"again"), &token),
    )
    .await
    .expect("a fresh connection to the restarted upstream");
    assert_eq!(again, "again");
    stack.stop().await;
}

#[tokio::test]
async fn a_silent_h2_upstream_connection_is_found_by_ping_and_replaced() {
    let upstream = GrpcUpstream::start().await;
    let relay = Relay::start(upstream.addr).await;
    let stack = Stack::with(
        grpc_options(&upstream)
            .env("ROCKETGATE_UPSTREAM", format!("h2c://{}", relay.addr))
            .env("ROCKETGATE_LIMITS__IDLE_TIMEOUT", "1s"),
    )
    .await;
    let token = stack.standin.issue_access_token("1001").unwrap();
    let mut client = client(&stack).await;
    let call = |m: &'static [u8]| with_bearer(Bytes::from_static(m), &token);
    assert_eq!(unary(&mut client, "Unary", call(b"1")).await.unwrap(), "1");

    // The pooled connection goes silent: rocketgate's PING gets no answer, so it closes it.
    relay.freeze();
    let deadline = Instant::now() + Duration::from_secs(10);
    while relay.closed_by_client.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the silent connection was never closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    assert_eq!(unary(&mut client, "Unary", call(b"2")).await.unwrap(), "2");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served on a new connection, not after a timeout"
    );
    stack.stop().await;
}

/// What the upstream saw of a gRPC-Web `Headers` call over HTTP/1.1 (which any upstream
/// protocol carries).
async fn grpc_web_seen(stack: &Stack, token: &str) -> Value {
    let answer = grpc_web(
        &stack.client(),
        stack.url("/test.Echo/Headers"),
        Some(token),
    )
    .await;
    let body = answer.bytes().await.unwrap();
    let (_, message) = Messages::new(http_body_util::Full::new(body))
        .next()
        .await
        .expect("a message");
    serde_json::from_slice(&message).unwrap()
}

/// A gRPC-Web call over the given HTTP version: frames in, frames (message, then trailer
/// frame) out.
async fn grpc_web(http: &reqwest::Client, url: String, auth: Option<&str>) -> reqwest::Response {
    let mut request = http
        .post(url)
        .header("content-type", "application/grpc-web+proto")
        .header("accept", HTML)
        .header("x-grpc-web", "1")
        .body(frame(b"web"));
    if let Some(token) = auth {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn grpc_web_passes_over_http1_and_http2_and_is_refused_in_grpc_web_terms() {
    let upstream = GrpcUpstream::start().await;
    let stack = Stack::with(grpc_options(&upstream)).await;
    let token = stack.standin.issue_access_token("1001").unwrap();
    let h1 = reqwest::Client::builder().http1_only().build().unwrap();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for (http, version) in [(&h1, "HTTP/1.1"), (&h2, "HTTP/2.0")] {
        let answer = grpc_web(http, stack.url("/test.Echo/Unary"), Some(&token)).await;
        assert_eq!(answer.status(), 200, "{version}");
        assert_eq!(
            answer.version(),
            if version == "HTTP/1.1" {
                reqwest::Version::HTTP_11
            } else {
                reqwest::Version::HTTP_2
            }
        );
        assert_eq!(
            answer.headers()["content-type"],
            "application/grpc-web+proto"
        );
        let body = answer.bytes().await.unwrap();
        let mut frames = Messages::new(http_body_util::Full::new(body));
        assert_eq!(frames.next().await, Some((0, Bytes::from_static(b"web"))));
        let (flag, trailers) = frames.next().await.expect("trailer frame");
        assert_eq!(flag, 0x80);
        let trailers = String::from_utf8(trailers.to_vec()).unwrap();
        assert!(trailers.contains("grpc-status:0\r\n"), "{trailers}");

        let refused = grpc_web(http, stack.url("/test.Echo/Unary"), None).await;
        assert_eq!(refused.status(), 200, "trailers-only, not a redirect");
        assert_eq!(refused.headers()["content-type"], "application/grpc-web");
        assert_eq!(refused.headers()["grpc-status"], "16");
        assert_eq!(
            refused.headers()["grpc-message"],
            "You need to sign in to continue."
        );
        assert!(refused.bytes().await.unwrap().is_empty());
    }
    stack.stop().await;
}

#[tokio::test]
async fn forward_auth_never_answers_a_grpc_check_with_a_grpc_status() {
    let upstream = GrpcUpstream::start().await;
    let stack = Stack::with(grpc_options(&upstream)).await;
    // A front proxy reads only the status: HTTP 200 with grpc-status 16 would let it through.
    for query in ["", "?mode=redirect"] {
        let answer = stack
            .client()
            .get(stack.url(&format!("/oauth2/auth{query}")))
            .header("content-type", "application/grpc")
            .header("accept", HTML)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{query}");
        assert!(answer.headers().get("grpc-status").is_none());
    }
    stack.stop().await;
}

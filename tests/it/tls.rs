//! TLS: the HTTPS listener (login, X-Forwarded-Proto, ALPN h2), certificate rotation
//! without dropping connections, private CAs for the upstream and the provider, start-up
//! refusal of bad files, and hostile clients on the TLS port.
//!
//! Every certificate is generated here with rcgen: a private CA, leaves for 127.0.0.1 and
//! localhost signed by it, and a second leaf for rotation.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::pki::{Leaf, Pki};
use crate::support::process::{TempFile, command, free_port, run};
use crate::support::{Browser, Echo, Options, Stack, location};
use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use reqwest::header::ACCEPT;
use rocketgate_demo::{Body, PeerAddr, handle_upstream};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The leaf's files, kept for the test's lifetime (the proxy re-reads them).
struct Files {
    cert: TempFile,
    key: TempFile,
}

impl Files {
    fn new(leaf: &Leaf) -> Files {
        Files {
            cert: TempFile::new("tls-cert", &leaf.cert_pem),
            key: TempFile::new("tls-key", &leaf.key_pem),
        }
    }

    fn path(file: &TempFile) -> String {
        file.0.display().to_string()
    }

    /// Rewrites both files in place, as cert-manager does with a mounted Secret.
    fn rotate_to(&self, leaf: &Leaf) {
        std::fs::write(&self.cert.0, &leaf.cert_pem).unwrap();
        std::fs::write(&self.key.0, &leaf.key_pem).unwrap();
    }

    fn options(&self) -> Options {
        Options::default()
            .env("ROCKETGATE_TLS__CERT_FILE", Files::path(&self.cert))
            .env("ROCKETGATE_TLS__KEY_FILE", Files::path(&self.key))
    }
}

/// A rustls client trusting only `ca_pem`, offering `alpn`.
fn client_tls(ca_pem: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn tls_connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        TlsConnector::from(config).connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("handshake in time")
    .expect("handshake")
}

fn presented(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn get(uri: &str) -> Request<Empty<Bytes>> {
    Request::get(uri)
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap()
}

/// Serves `handler` over TLS with `leaf` on `listener`, like `rocketgate_demo::serve` does
/// in plain HTTP: a stand-in for an upstream or a provider with a private CA.
fn serve_tls<F, Fut>(listener: TcpListener, leaf: &Leaf, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let acceptor = TlsAcceptor::from(leaf.server_config(&[b"h2", b"http/1.1"]));
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(PeerAddr(peer));
                    let answer = handler(req);
                    async move { Ok::<_, std::convert::Infallible>(answer.await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

#[tokio::test]
async fn a_full_login_over_https_tells_the_upstream_it_was_https() {
    let pki = Pki::new();
    let files = Files::new(&pki.leaf());
    let stack = Stack::with(files.options()).await;
    assert_eq!(stack.scheme, "https");
    let browser = Browser::https(stack.proxy, &pki.ca_pem());
    let landed = browser.login("/").await;
    assert_eq!(landed.status(), 200);

    let seen: Echo = browser
        .client
        .get(stack.url("/who"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-user"), Some("1001"));

    // A client that distrusts the CA gets no answer at all, not a downgrade.
    let stranger = Browser::https(stack.proxy, &Pki::new().ca_pem());
    assert!(
        stranger
            .client
            .get(stack.url("/ping"))
            .send()
            .await
            .is_err()
    );
    stack.stop().await;
}

#[tokio::test]
async fn alpn_offers_h2_and_http_1_1() {
    let pki = Pki::new();
    let files = Files::new(&pki.leaf());
    let stack = Stack::with(files.options()).await;

    let h2 = tls_connect(
        stack.proxy,
        client_tls(&pki.ca_pem(), &[b"h2", b"http/1.1"]),
    )
    .await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(h2))
            .await
            .unwrap();
    tokio::spawn(conn);
    let response = sender
        .send_request(get(&format!(
            "https://localhost:{}/ping",
            stack.proxy.port()
        )))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_2);

    let h1 = tls_connect(stack.proxy, client_tls(&pki.ca_pem(), &[b"http/1.1"])).await;
    assert_eq!(h1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(h1))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(get("/ping")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // No ALPN at all still works (HTTP/1.1).
    let bare = tls_connect(stack.proxy, client_tls(&pki.ca_pem(), &[])).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(bare))
        .await
        .unwrap();
    tokio::spawn(conn);
    assert_eq!(
        sender.send_request(get("/ping")).await.unwrap().status(),
        200
    );
    stack.stop().await;
}

/// Opens new connections until one presents `der` (bounded).
async fn wait_for_certificate(addr: SocketAddr, config: &Arc<rustls::ClientConfig>, der: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if presented(&tls_connect(addr, config.clone()).await) == der {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "new certificate never served on new connections"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rotated_certificates_reach_new_connections_without_dropping_open_ones() {
    let pki = Pki::new();
    let first = pki.leaf();
    let second = pki.leaf();
    let files = Files::new(&first);
    let stack = Stack::with(
        files
            .options()
            .env("ROCKETGATE_TLS__RELOAD_INTERVAL", "100ms"),
    )
    .await;
    let config = client_tls(&pki.ca_pem(), &[b"http/1.1"]);

    // A keep-alive connection made with the first certificate.
    let open = tls_connect(stack.proxy, config.clone()).await;
    assert_eq!(presented(&open), first.der);
    let (mut kept, conn) = hyper::client::conn::http1::handshake(TokioIo::new(open))
        .await
        .unwrap();
    tokio::spawn(conn);
    assert_eq!(kept.send_request(get("/ping")).await.unwrap().status(), 200);

    files.rotate_to(&second);
    wait_for_certificate(stack.proxy, &config, &second.der).await;
    assert_eq!(
        kept.send_request(get("/ping")).await.unwrap().status(),
        200,
        "the connection opened before the rotation still works"
    );

    // A broken pair (the second certificate with the first key, then garbage) is ignored.
    std::fs::write(&files.key.0, &first.key_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        presented(&tls_connect(stack.proxy, config.clone()).await),
        second.der
    );
    std::fs::write(&files.cert.0, "garbage").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        presented(&tls_connect(stack.proxy, config.clone()).await),
        second.der
    );
    assert_eq!(kept.send_request(get("/ping")).await.unwrap().status(), 200);

    // Repaired with a valid pair: picked up again.
    files.rotate_to(&first);
    wait_for_certificate(stack.proxy, &config, &first.der).await;
    stack.stop().await;
}

#[tokio::test]
async fn an_https_upstream_with_a_private_ca_needs_upstream_ca_file() {
    let pki = Pki::new();
    let leaf = pki.leaf();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    serve_tls(listener, &leaf, handle_upstream);
    let ca = TempFile::new("upstream-ca", &pki.ca_pem());

    let options = || {
        Options {
            upstream: Some(upstream),
            ..Options::default()
        }
        .env("ROCKETGATE_UPSTREAM", format!("https://{upstream}"))
        .env("ROCKETGATE_ACCESS__SKIP_AUTH_ROUTES", "^/public")
    };
    let without = Stack::with(options()).await;
    let answer = without
        .client()
        .get(without.url("/public"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 502, "an unknown CA is refused");
    without.stop().await;

    let with = Stack::with(options().env("ROCKETGATE_UPSTREAM_CA_FILE", Files::path(&ca))).await;
    let answer = with
        .client()
        .get(with.url("/public/x"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let seen: Echo = answer.json().await.unwrap();
    assert_eq!(seen.uri, "/public/x");
    with.stop().await;
}

#[tokio::test]
async fn a_provider_with_a_private_ca_needs_provider_ca_file() {
    let pki = Pki::new();
    let leaf = pki.leaf();
    let ca = TempFile::new("provider-ca", &pki.ca_pem());

    // Token and profile calls go to the stand-in over TLS; the browser-facing authorize
    // page stays on the stand-in's plain port.
    let start = |trust: bool| {
        let leaf = &leaf;
        let ca = &ca;
        async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let api = listener.local_addr().unwrap();
            let mut options = Options::default()
                .env(
                    "ROCKETGATE_PROVIDER__TOKEN_URL",
                    format!("https://{api}/oauth/token"),
                )
                .env(
                    "ROCKETGATE_PROVIDER__PROFILE_URL",
                    format!("https://{api}/api/v1/profiles/me"),
                );
            if trust {
                options = options.env("ROCKETGATE_PROVIDER__CA_FILE", Files::path(ca));
            }
            let stack = Stack::with(options).await;
            let standin = stack.standin.clone();
            serve_tls(listener, leaf, move |req| standin.clone().handle(req));
            stack
        }
    };

    let untrusted = start(false).await;
    let browser = untrusted.browser();
    let first = browser.get(&untrusted.url("/")).await;
    let back = browser.consent(&location(&first), "1001", true).await;
    let callback = browser.get(&location(&back)).await;
    assert_eq!(
        callback.status(),
        502,
        "the provider's unknown CA is refused"
    );
    untrusted.stop().await;

    let trusted = start(true).await;
    let landed = trusted.browser().login("/").await;
    assert_eq!(landed.status(), 200);
    assert!(trusted.standin.stats().token_calls >= 1);
    trusted.stop().await;
}

/// The binary with `extra` appended to a valid configuration must refuse to start and say
/// `expected` on stderr.
async fn refuses_to_start(extra: &str, expected: &str) {
    let dead: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let base = rocketgate_demo::proxy_config(free_port(), dead, dead, "secret");
    // Sections go after the base configuration, top-level keys before its first section.
    let toml = if extra.starts_with('[') {
        format!("{base}\n{extra}\n")
    } else {
        format!("{extra}\n{base}")
    };
    let file = TempFile::new("tls-config", &toml);
    for args in [
        vec!["--config", file.0.to_str().unwrap()],
        vec!["check-config", "--config", file.0.to_str().unwrap()],
    ] {
        let out = run(command(&args), Duration::from_secs(20)).await;
        assert!(!out.status.success(), "{args:?} must fail for {extra}");
        assert!(
            out.stderr.contains(expected),
            "{args:?}: expected {expected:?} in {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

#[tokio::test]
async fn bad_tls_files_stop_the_process_with_a_key_named_problem() {
    let pki = Pki::new();
    let leaf = pki.leaf();
    let files = Files::new(&leaf);
    let cert = Files::path(&files.cert);
    let key = Files::path(&files.key);
    let garbage = TempFile::new("garbage", "not PEM\n");
    let other_key = TempFile::new("other-key", &pki.leaf().key_pem);

    refuses_to_start(
        &format!("[tls]\ncert_file = {cert:?}\n"),
        "tls.key_file: is required when tls.cert_file is set",
    )
    .await;
    refuses_to_start(
        &format!("[tls]\ncert_file = \"/nonexistent/tls.crt\"\nkey_file = {key:?}\n"),
        "tls.cert_file: cannot read \"/nonexistent/tls.crt\"",
    )
    .await;
    refuses_to_start(
        &format!(
            "[tls]\ncert_file = {:?}\nkey_file = {key:?}\n",
            Files::path(&garbage)
        ),
        "tls.cert_file: ",
    )
    .await;
    refuses_to_start(
        &format!(
            "[tls]\ncert_file = {cert:?}\nkey_file = {:?}\n",
            Files::path(&garbage)
        ),
        "tls.key_file: ",
    )
    .await;
    refuses_to_start(
        &format!(
            "[tls]\ncert_file = {cert:?}\nkey_file = {:?}\n",
            Files::path(&other_key)
        ),
        "tls.key_file: the private key in",
    )
    .await;
    refuses_to_start(
        &format!("upstream_ca_file = {:?}\n", Files::path(&garbage)),
        "upstream_ca_file: ",
    )
    .await;
}

/// Log lines written by this test's thread (the current-thread runtime runs the server here).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn silent_and_plain_http_clients_on_the_tls_port_are_dropped_quietly() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let pki = Pki::new();
    let files = Files::new(&pki.leaf());
    let stack = Stack::with(
        files
            .options()
            .env("ROCKETGATE_LIMITS__HEADER_READ_TIMEOUT", "1s"),
    )
    .await;

    // Connects and never says hello: dropped after the header timeout.
    let mut silent = TcpStream::connect(stack.proxy).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let ended = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf))
        .await
        .expect("the silent client is disconnected");
    assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // Plain HTTP to the TLS port: refused by TLS, no HTTP error status, no panic.
    let mut plain = TcpStream::connect(stack.proxy).await.unwrap();
    plain
        .write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut answer))
        .await
        .expect("the plain client is disconnected");
    assert!(!answer.starts_with(b"HTTP/1.1 5"), "{answer:?}");

    // Still serving.
    let browser = Browser::https(stack.proxy, &pki.ca_pem());
    let ping = browser.client.get(stack.url("/ping")).send().await.unwrap();
    assert_eq!(ping.status(), 200);
    stack.stop().await;

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("TLS handshake timed out"), "{logs}");
    assert!(logs.contains("TLS handshake failed"), "{logs}");
    assert!(!logs.contains(" ERROR "), "{logs}");
}

//! A gRPC upstream written against hyper directly (no generated code, no protoc): messages
//! are opaque bytes in gRPC's length-prefixed framing, so every call type, trailer and
//! fault can be served exactly as a test needs. It speaks HTTP/1.1 and h2c on one port
//! (or TLS offering `h2` and `http/1.1`), and gRPC-Web when asked for it.
//!
//! Methods (`/test.Echo/…`): `Unary` echoes the message; `Headers` answers the request's
//! version, URI and headers as JSON; `ServerStream` takes `count,delay_ms` and sends that
//! many messages; `ClientStream` answers `messages,bytes`; `Bidi` echoes each message as it
//! arrives; `Slow` sends its head, waits 3 s, then echoes; `SlowHead` waits 3 s before its
//! head; `Fail` ends with status 9 and custom trailers.
//! `/grpc.health.v1.Health/Check` answers SERVING. Every other request gets its HTTP
//! version as text, so ordinary requests show which protocol carried them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// A response body fed from a channel, so the server can stream while it reads.
pub struct Channel(mpsc::Receiver<Frame<Bytes>>);

impl hyper::body::Body for Channel {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

/// `message` in gRPC's framing: flag 0 (uncompressed), a 4-byte length, the bytes.
pub fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

/// Reads gRPC messages (or gRPC-Web frames, flag and all) out of a byte stream.
pub struct Messages<B> {
    body: B,
    buf: BytesMut,
}

impl<B> Messages<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    pub fn new(body: B) -> Self {
        Messages {
            body,
            buf: BytesMut::new(),
        }
    }

    /// The next frame's flag and payload; `None` at the end of the body.
    pub async fn next(&mut self) -> Option<(u8, Bytes)> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if self.buf.len() >= 5 + len {
                    let flag = self.buf[0];
                    self.buf.advance(5);
                    return Some((flag, self.buf.split_to(len).freeze()));
                }
            }
            let frame = self.body.frame().await?.ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }
}

/// The running upstream; [`GrpcUpstream::stop`] drops every connection at once, as a
/// crashed or redeployed server would.
pub struct GrpcUpstream {
    pub addr: SocketAddr,
    /// Connections accepted so far, over every start.
    pub connections: Arc<AtomicUsize>,
    tls: Option<TlsAcceptor>,
    task: Option<JoinHandle<()>>,
}

impl GrpcUpstream {
    /// HTTP/1.1 and h2c on a fresh 127.0.0.1 port.
    pub async fn start() -> GrpcUpstream {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap(), None)
    }

    /// TLS with ALPN `h2` and `http/1.1` (the client picks), presenting `config`'s leaf.
    pub async fn start_tls(config: Arc<rustls::ServerConfig>) -> GrpcUpstream {
        Self::on(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            Some(TlsAcceptor::from(config)),
        )
    }

    fn on(listener: TcpListener, tls: Option<TlsAcceptor>) -> GrpcUpstream {
        let mut upstream = GrpcUpstream {
            addr: listener.local_addr().unwrap(),
            connections: Arc::new(AtomicUsize::new(0)),
            tls,
            task: None,
        };
        upstream.serve(listener);
        upstream
    }

    fn serve(&mut self, listener: TcpListener) {
        let connections = self.connections.clone();
        let tls = self.tls.clone();
        self.task = Some(tokio::spawn(async move {
            // Owned by this task: aborting it drops the set, which aborts every connection.
            let mut open = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let tls = tls.clone();
                open.spawn(async move {
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let service = service_fn(|req| async { Ok::<_, Infallible>(call(req).await) });
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
                while open.try_join_next().is_some() {}
            }
        }));
    }

    /// Closes the port and every open connection mid-call.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens on the same port again.
    pub async fn restart(&mut self) {
        self.stop();
        for _ in 0..100 {
            if let Ok(listener) = TcpListener::bind(self.addr).await {
                self.serve(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("port {} did not come free", self.addr);
    }
}

impl Drop for GrpcUpstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends gRPC answers down a streamed body: messages, then the trailers.
struct Reply {
    tx: mpsc::Sender<Frame<Bytes>>,
    web: bool,
}

impl Reply {
    async fn message(&self, message: &[u8]) {
        let _ = self.tx.send(Frame::data(frame(message))).await;
    }

    async fn end(self, trailers: HeaderMap) {
        if self.web {
            // gRPC-Web: the trailers are the last frame of the body, flag 0x80.
            let mut text = String::new();
            for (name, value) in &trailers {
                text.push_str(&format!("{}:{}\r\n", name, value.to_str().unwrap()));
            }
            let mut out = BytesMut::new();
            out.put_u8(0x80);
            out.put_u32(text.len() as u32);
            out.put_slice(text.as_bytes());
            let _ = self.tx.send(Frame::data(out.freeze())).await;
        } else {
            let _ = self.tx.send(Frame::trailers(trailers)).await;
        }
    }
}

fn ok_trailers() -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from_static("0"));
    t.insert("x-trailer", HeaderValue::from_static("kept"));
    t
}

async fn call(req: Request<Incoming>) -> Response<Channel> {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let (tx, rx) = mpsc::channel(16);
    let version = format!("{:?}", req.version());
    if !content_type.starts_with("application/grpc") {
        tokio::spawn(async move {
            let _ = tx.send(Frame::data(Bytes::from(version))).await;
        });
        return Response::new(Channel(rx));
    }
    let web = content_type.starts_with("application/grpc-web");
    let path = req.uri().path().to_owned();
    if path == "/test.Echo/SlowHead" {
        // Thinks before it answers at all: not even the response head for 3 s.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let headers_json = serde_json::json!({
        "version": version,
        "uri": req.uri().to_string(),
        "headers": headers_as_json(req.headers()),
    });
    let mut response = Response::new(Channel(rx));
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static(if web {
            "application/grpc-web+proto"
        } else {
            "application/grpc"
        }),
    );
    response.headers_mut().insert(
        "x-upstream-version",
        HeaderValue::from_str(&version).unwrap(),
    );
    let reply = Reply { tx, web };
    tokio::spawn(async move {
        let mut messages = Messages::new(req.into_body());
        match path.as_str() {
            "/test.Echo/Unary" => {
                let (_, m) = messages.next().await.unwrap_or_default();
                reply.message(&m).await;
            }
            "/test.Echo/Headers" => {
                let _ = messages.next().await;
                reply.message(headers_json.to_string().as_bytes()).await;
            }
            "/test.Echo/ServerStream" => {
                let (_, m) = messages.next().await.unwrap_or_default();
                let text = String::from_utf8_lossy(&m).to_string();
                let (count, delay) = text.split_once(',').unwrap_or(("1", "0"));
                let delay = Duration::from_millis(delay.parse().unwrap_or(0));
                for i in 0..count.parse::<usize>().unwrap_or(1) {
                    if i > 0 {
                        tokio::time::sleep(delay).await;
                    }
                    reply.message(i.to_string().as_bytes()).await;
                }
            }
            "/test.Echo/ClientStream" => {
                let (mut count, mut bytes) = (0, 0);
                while let Some((_, m)) = messages.next().await {
                    count += 1;
                    bytes += m.len();
                }
                reply.message(format!("{count},{bytes}").as_bytes()).await;
            }
            "/test.Echo/Bidi" => {
                while let Some((_, m)) = messages.next().await {
                    reply.message(&m).await;
                }
            }
            "/test.Echo/Slow" | "/test.Echo/SlowHead" => {
                let (_, m) = messages.next().await.unwrap_or_default();
                tokio::time::sleep(Duration::from_secs(3)).await;
                reply.message(&m).await;
            }
            "/test.Echo/Fail" => {
                let _ = messages.next().await;
                let mut t = HeaderMap::new();
                t.insert("grpc-status", HeaderValue::from_static("9"));
                t.insert("grpc-message", HeaderValue::from_static("not%20now"));
                t.insert("x-detail", HeaderValue::from_static("42"));
                t.insert("x-detail-bin", HeaderValue::from_static("AQID"));
                reply.end(t).await;
                return;
            }
            "/grpc.health.v1.Health/Check" => {
                let _ = messages.next().await;
                // HealthCheckResponse { status: SERVING }
                reply.message(&[0x08, 0x01]).await;
            }
            _ => {
                let mut t = HeaderMap::new();
                t.insert("grpc-status", HeaderValue::from_static("12"));
                reply.end(t).await;
                return;
            }
        }
        reply.end(ok_trailers()).await;
    });
    response
}

fn headers_as_json(headers: &HeaderMap) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for name in headers.keys() {
        let values: Vec<serde_json::Value> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into())
            .collect();
        map.insert(name.as_str().to_owned(), values.into());
    }
    map.into()
}

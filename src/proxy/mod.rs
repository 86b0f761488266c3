//! Forwarding to the upstream with hyper-util's pooled clients: bodies streamed both ways,
//! hop-by-hop headers dropped, `X-Forwarded-*` set, `Upgrade` tunnelled, timeouts bounded;
//! HTTP/1.1, or HTTP/2 (cleartext with prior knowledge, or by ALPN over TLS) where the
//! upstream or the request asks for it.

mod body;
pub mod grpc;
mod hop;
mod tunnel;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, ResponseFuture, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use url::Url;

use crate::body::{self as bodies, Body, BoxError};
use crate::forwarded::Origin;
use crate::metrics::UpstreamErrorKind;
use crate::tls::CaBundle;
use crate::trace::{Kind, Span};
use body::{BODY_BROKEN, BODY_OK, BODY_STALLED, SentSignal};
use grpc::GrpcKind;
use hop::remove_hop_by_hop;
use tunnel::{requested_upgrade, tunnel};

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("upstream unreachable ({})", .0.as_str())]
    Unreachable(UpstreamErrorKind),
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("request cannot be forwarded: {0}")]
    BadRequest(String),
    #[error("the client stopped sending its request body for {0:?}")]
    ClientStalled(Duration),
    /// The client's body broke its own framing (a bad chunk size, data past a chunk, a
    /// missing CRLF) or ended early: the client's fault, so never counted against the app.
    #[error("the client's request body was malformed or cut short")]
    ClientBody,
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
/// The id one request carries through every hop; set by rocketgate on every request.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn unreachable(e: &hyper_util::client::legacy::Error) -> ProxyError {
    ProxyError::Unreachable(error_kind(e))
}

impl ProxyError {
    /// What the metrics and the request line call this failure, when it is the upstream's.
    pub fn upstream_kind(&self) -> Option<UpstreamErrorKind> {
        match self {
            ProxyError::Unreachable(kind) => Some(*kind),
            ProxyError::Timeout(_) => Some(UpstreamErrorKind::Timeout),
            _ => None,
        }
    }
}

/// Names a failed exchange by the first cause in its chain that says what happened.
fn error_kind(e: &hyper_util::client::legacy::Error) -> UpstreamErrorKind {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.is::<rustls::Error>() {
            return UpstreamErrorKind::Tls;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as Io;
            match io.kind() {
                Io::ConnectionReset
                | Io::ConnectionAborted
                | Io::BrokenPipe
                | Io::UnexpectedEof => {
                    return UpstreamErrorKind::Reset;
                }
                Io::TimedOut => return UpstreamErrorKind::Timeout,
                Io::ConnectionRefused => return UpstreamErrorKind::Refused,
                // hyper-rustls reports a failed handshake as an io::Error around rustls's.
                _ if io
                    .get_ref()
                    .is_some_and(|inner| inner.is::<rustls::Error>()) =>
                {
                    return UpstreamErrorKind::Tls;
                }
                _ => {}
            }
        }
        if let Some(http) = cause.downcast_ref::<hyper::Error>() {
            if http.is_parse() || http.is_parse_status() || http.is_user() {
                return UpstreamErrorKind::Protocol;
            }
            if http.is_timeout() {
                return UpstreamErrorKind::Timeout;
            }
            if http.is_incomplete_message() || http.is_closed() || http.is_canceled() {
                return UpstreamErrorKind::Reset;
            }
        }
        source = cause.source();
    }
    if e.is_connect() {
        UpstreamErrorKind::Refused
    } else {
        // An HTTP/2 stream or connection error (RST_STREAM, GOAWAY with an error).
        UpstreamErrorKind::Protocol
    }
}

/// How the upstream is spoken to, from its URL's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `http://`: HTTP/1.1, and HTTP/2 with prior knowledge for gRPC requests.
    Http,
    /// `h2c://`: every request over cleartext HTTP/2 with prior knowledge.
    H2c,
    /// `https://`: TLS, offering `h2` and `http/1.1` by ALPN; the server picks.
    Https,
}

impl Protocol {
    /// The protocol an upstream URL's scheme names; `None` for a scheme rocketgate cannot
    /// speak upstream.
    pub fn of(url: &Url) -> Option<Protocol> {
        match url.scheme() {
            "http" => Some(Protocol::Http),
            "h2c" => Some(Protocol::H2c),
            "https" => Some(Protocol::Https),
            _ => None,
        }
    }
}

/// Where and how to reach the upstream, and the bounds on each request.
#[derive(Clone, Debug)]
pub struct UpstreamSettings {
    pub url: Url,
    /// How long the upstream may think before its response head (504 past it).
    pub timeout: Duration,
    /// Extra roots for an https upstream signed by a private CA.
    pub roots: CaBundle,
    /// Idle connections kept per upstream. rocketgate passes `limits.max_connections`: a
    /// pool smaller than the requests in flight makes every burst close the surplus and
    /// open it again. Idle connections are closed after 90 s either way.
    pub max_idle: usize,
    /// Longest pause between two pieces of a request body before giving up (408).
    pub body_gap: Duration,
    /// An HTTP/2 connection silent this long is sent a PING; one that does not answer it
    /// within [`H2_PING_TIMEOUT`] (or this, if shorter) is closed and replaced.
    pub h2_keepalive: Duration,
}

impl UpstreamSettings {
    /// `url` with the defaults: 30 s, no extra roots, 256 idle connections, 60 s.
    pub fn new(url: Url) -> Self {
        Self {
            url,
            timeout: Duration::from_secs(30),
            roots: CaBundle::default(),
            max_idle: 256,
            body_gap: Duration::from_secs(60),
            h2_keepalive: Duration::from_secs(60),
        }
    }
}

/// The longest wait for a PING's answer on an HTTP/2 upstream connection.
pub const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Which pooled client carries a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// HTTP/1.1, plain or TLS: ordinary requests to `http://`, and every upgrade.
    Http1,
    /// TLS with ALPN `h2` / `http/1.1`.
    Alpn,
    /// Cleartext HTTP/2 with prior knowledge.
    H2c,
}

/// One upstream URL and the pooled clients that reach it (shared by every upstream built
/// from the same one with [`Upstream::to`], so many routes share one set of pools).
#[derive(Clone)]
pub struct Upstream {
    protocol: Protocol,
    authority: Authority,
    /// A path prefix from the upstream URL (`http://app:8080/base`), without trailing `/`.
    prefix: String,
    /// Send the client's `Host` (else the upstream's own authority) over HTTP/1.1.
    preserve_host: bool,
    timeout: Duration,
    body_gap: Duration,
    clients: Arc<Clients>,
}

/// One pooled client per way of speaking to an upstream.
struct Clients {
    http1: Client<HttpsConnector<HttpConnector>, Body>,
    alpn: Client<HttpsConnector<HttpConnector>, Body>,
    h2c: Client<HttpConnector, Body>,
}

/// The scheme, authority and path prefix of an upstream URL.
fn target(url: &Url) -> Result<(Protocol, Authority, String), ProxyError> {
    let protocol = Protocol::of(url).ok_or_else(|| {
        ProxyError::BadRequest(format!("unsupported upstream scheme {:?}", url.scheme()))
    })?;
    let host = url
        .host_str()
        .ok_or_else(|| ProxyError::BadRequest("upstream has no host".into()))?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let authority = Authority::try_from(authority.as_str())
        .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    Ok((
        protocol,
        authority,
        url.path().trim_end_matches('/').to_owned(),
    ))
}

impl Upstream {
    pub fn new(settings: &UpstreamSettings) -> Result<Self, ProxyError> {
        let (protocol, authority, prefix) = target(&settings.url)?;
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(settings.timeout));
        let tls = crate::tls::client_config(&settings.roots);
        let http1_connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp.clone());
        let alpn_connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp.clone());
        let ping = settings.h2_keepalive.max(Duration::from_millis(100));
        let pooled = || {
            let mut builder = Client::builder(TokioExecutor::new());
            // The timer makes the pool close idle connections when they expire, not only
            // when a checkout happens to find them; HTTP/2 PINGs need it too.
            builder
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(settings.max_idle)
                .http2_keep_alive_interval(ping)
                .http2_keep_alive_timeout(ping.min(H2_PING_TIMEOUT))
                .http2_keep_alive_while_idle(true);
            builder
        };
        Ok(Self {
            protocol,
            authority,
            prefix,
            preserve_host: true,
            timeout: settings.timeout,
            body_gap: settings.body_gap,
            clients: Arc::new(Clients {
                http1: pooled().build(http1_connector),
                alpn: pooled().build(alpn_connector),
                h2c: pooled().http2_only(true).build(tcp),
            }),
        })
    }

    /// Another upstream (a route's) over the same pooled clients and timeouts.
    pub fn to(&self, url: &Url, preserve_host: bool) -> Result<Upstream, ProxyError> {
        let (protocol, authority, prefix) = target(url)?;
        Ok(Upstream {
            protocol,
            authority,
            prefix,
            preserve_host,
            timeout: self.timeout,
            body_gap: self.body_gap,
            clients: self.clients.clone(),
        })
    }

    /// The client for a request: upgrades always over HTTP/1.1 (HTTP/2 has no `Upgrade`),
    /// gRPC over HTTP/2 whatever the upstream's scheme, the rest as the scheme says.
    fn via(&self, upgrade: bool, grpc: Option<GrpcKind>) -> Via {
        match (self.protocol, upgrade) {
            (_, true) => Via::Http1,
            (Protocol::Https, false) => Via::Alpn,
            (Protocol::H2c, false) => Via::H2c,
            (Protocol::Http, false) if grpc == Some(GrpcKind::Grpc) => Via::H2c,
            (Protocol::Http, false) => Via::Http1,
        }
    }

    fn send(&self, via: Via, request: Request<Body>) -> ResponseFuture {
        match via {
            Via::Http1 => self.clients.http1.request(request),
            Via::Alpn => self.clients.alpn.request(request),
            Via::H2c => self.clients.h2c.request(request),
        }
    }

    /// Forwards `req` (headers already cleaned of identity spoofs) and returns the upstream's
    /// answer unchanged but for hop-by-hop headers. A gRPC request's `grpc-timeout` bounds
    /// the wait when it is shorter than `upstream_timeout`.
    pub async fn forward<B>(
        &self,
        req: Request<B>,
        origin: &Origin,
    ) -> Result<Response<Body>, ProxyError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let mut span = Span::start(req.method().as_str(), Kind::Client);
        if span.is_recording() {
            span.set("http.request.method", req.method().as_str().to_owned());
            span.set("server.address", self.authority.host().to_owned());
            if let Some(port) = self.authority.port_u16() {
                span.set("server.port", i64::from(port));
            }
            span.set(
                "url.full",
                format!(
                    "{}://{}{}{}",
                    if self.protocol == Protocol::Https {
                        "https"
                    } else {
                        "http"
                    },
                    self.authority,
                    self.prefix.trim_end_matches('/'),
                    req.uri().path()
                ),
            );
        }
        let result = self.exchange(req, origin, &span).await;
        match &result {
            Ok(response) => {
                let status = response.status().as_u16();
                span.set("http.response.status_code", status);
                if status >= 500 {
                    span.fail(status.to_string());
                }
            }
            Err(e) => span.fail(
                e.upstream_kind()
                    .map_or("client", UpstreamErrorKind::as_str),
            ),
        }
        result
    }

    async fn exchange<B>(
        &self,
        mut req: Request<B>,
        origin: &Origin,
        span: &Span,
    ) -> Result<Response<Body>, ProxyError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let upgrade = requested_upgrade(req.headers());
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let grpc = grpc::kind(req.headers());
        let via = self.via(upgrade.is_some(), grpc);
        let deadline = grpc.and_then(|_| grpc::timeout(req.headers()));
        let call_ends = deadline.map(|d| tokio::time::Instant::now() + d);
        let timeout = deadline.map_or(self.timeout, |d| d.min(self.timeout));

        let (mut parts, body) = req.into_parts();
        let host = parts.headers.get(header::HOST).cloned().or_else(|| {
            // HTTP/2 carries the host in the URI's authority; HTTP/1.1 upstreams need Host.
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let trailers_accepted = accepts_trailers(&parts.headers);
        parts.uri = self.upstream_uri(&parts.uri, via)?;
        remove_hop_by_hop(&mut parts.headers);
        if let Some(forwarded_host) = origin.host.clone().or_else(|| host.clone()) {
            parts
                .headers
                .insert(X_FORWARDED_HOST.clone(), forwarded_host);
        }
        match via {
            Via::Http1 => {
                parts.version = Version::HTTP_11;
                let host = if self.preserve_host {
                    host
                } else {
                    HeaderValue::from_str(self.authority.as_str()).ok()
                };
                if let Some(host) = host {
                    parts.headers.insert(header::HOST, host);
                }
            }
            Via::Alpn | Via::H2c => {
                // Over HTTP/2 the URI's authority (the upstream) becomes `:authority`; a `Host`
                // naming the client's host beside it would make the request malformed (RFC
                // 9113 §8.3.1). Over TLS the upstream's own name is also what its certificate
                // and SNI say, whichever protocol ALPN picks, so it is the Host there too.
                // The client's host still goes as `X-Forwarded-Host`.
                parts.headers.remove(header::HOST);
                // HTTP/1.1 lets the pooled connection decide: hyper refuses to send a request
                // marked HTTP/2 on a connection where the server picked http/1.1.
                parts.version = if via == Via::H2c {
                    Version::HTTP_2
                } else {
                    Version::HTTP_11
                };
                // Over h2 `TE` may only say `trailers`, which gRPC servers expect.
                if trailers_accepted {
                    parts
                        .headers
                        .insert(header::TE, HeaderValue::from_static("trailers"));
                }
            }
        }
        if let Ok(chain) = HeaderValue::from_str(&origin.forwarded_for) {
            parts.headers.insert(X_FORWARDED_FOR.clone(), chain);
        }
        crate::trace::propagate(&mut parts.headers, span);
        parts
            .headers
            .insert(X_REAL_IP.clone(), origin.real_ip.clone());
        parts
            .headers
            .insert(X_FORWARDED_PROTO.clone(), origin.proto.clone());
        if let Some(protocol) = &upgrade {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, protocol.clone());
        }

        // The timeout bounds the upstream's thinking time, not the client's upload: it starts
        // once the request body has been sent (at once for bodiless requests, which need no
        // watching and take the short path).
        let response = if body.is_end_stream() {
            let request = Request::from_parts(parts, bodies::stream(body));
            tokio::time::timeout(timeout, self.send(via, request))
                .await
                .map_err(|_| ProxyError::Timeout(timeout))?
                .map_err(|e| unreachable(&e))?
        } else {
            let fault = Arc::new(AtomicU8::new(BODY_OK));
            // A gRPC stream's client may be quiet between messages for as long as the call
            // lasts; a dead client is found by the HTTP/2 PINGs on its connection instead.
            let gap = (grpc != Some(GrpcKind::Grpc)).then_some(self.body_gap);
            let (sent, body) = SentSignal::wrap(body, gap, fault.clone());
            let request = Request::from_parts(parts, bodies::stream(body));
            let exchange = self.send(via, request);
            tokio::pin!(exchange);
            let answered = tokio::select! {
                answered = &mut exchange => answered,
                _ = sent => tokio::time::timeout(timeout, &mut exchange)
                    .await
                    .map_err(|_| ProxyError::Timeout(timeout))?,
            };
            // hyper does not put a connection whose request body failed half-way back in
            // the pool, so the upstream never sees the rest of a broken body on another request.
            answered.map_err(|e| match fault.load(Ordering::SeqCst) {
                BODY_STALLED => ProxyError::ClientStalled(self.body_gap),
                BODY_BROKEN => ProxyError::ClientBody,
                _ => unreachable(&e),
            })?
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_upgrade) = client_upgrade
        {
            return Ok(tunnel(response, client_upgrade));
        }
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        let body = bodies::stream(body);
        Ok(match call_ends {
            // Over HTTP/2 a gRPC call's deadline covers its last message too.
            Some(at) if grpc == Some(GrpcKind::Grpc) => {
                Response::from_parts(parts, bodies::stream(grpc::Deadline::new(body, at)))
            }
            _ => Response::from_parts(parts, body),
        })
    }

    /// The upstream URI: the scheme the client speaks, the authority, the configured prefix,
    /// and the client's path and query byte for byte.
    fn upstream_uri(&self, uri: &Uri, via: Via) -> Result<Uri, ProxyError> {
        let pq = match uri.path_and_query() {
            // Shares the request's bytes: no copy.
            Some(pq) if self.prefix.is_empty() => pq.clone(),
            pq => {
                let pq = pq.map_or("/", PathAndQuery::as_str);
                PathAndQuery::try_from(format!("{}{pq}", self.prefix))
                    .map_err(|e| ProxyError::BadRequest(e.to_string()))?
            }
        };
        let scheme = match (via, self.protocol) {
            (Via::Alpn, _) | (Via::Http1, Protocol::Https) => Scheme::HTTPS,
            _ => Scheme::HTTP,
        };
        Uri::builder()
            .scheme(scheme)
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| ProxyError::BadRequest(e.to_string()))
    }
}

/// Whether the client's `TE` lists `trailers` (gRPC clients always send `TE: trailers`).
fn accepts_trailers(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn uri_keeps_path_and_query_bytes() {
        let up = Upstream::new(&UpstreamSettings::new(
            Url::parse("http://127.0.0.1:9/base/").unwrap(),
        ))
        .unwrap();
        let uri: Uri = "/a%2Fb/../c?x=%20&y=1+2".parse().unwrap();
        assert_eq!(
            up.upstream_uri(&uri, Via::Http1).unwrap().to_string(),
            "http://127.0.0.1:9/base/a%2Fb/../c?x=%20&y=1+2"
        );
        let root =
            Upstream::new(&UpstreamSettings::new(Url::parse("http://app").unwrap())).unwrap();
        assert_eq!(
            root.upstream_uri(&"/".parse().unwrap(), Via::Http1)
                .unwrap()
                .to_string(),
            "http://app/"
        );
    }
}

//! Forwarding to the upstream with hyper-util's pooled client: bodies streamed both ways,
//! hop-by-hop headers dropped, `X-Forwarded-*` set, `Upgrade` tunnelled, timeouts bounded.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use url::Url;

use crate::body::{self, Body, BoxError};
use crate::forwarded::Origin;
use crate::tls::CaBundle;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
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

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy `Keep-Alive` and `Proxy-Connection`):
/// they describe one connection and must not be forwarded.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
/// The id one request carries through every hop; set by rocketgate on every request.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Removes hop-by-hop headers, including every header the `Connection` header names, except
/// rocketgate's own identity headers, the request id and `Authorization`: a client listing
/// `X-Forwarded-User` or `X-Request-Id` in `Connection` must not be able to delete what
/// rocketgate sets.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names, no hashing: most messages carry at most `Connection`.
    let mut doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|n| HOP_BY_HOP.contains(n))
        .cloned()
        .collect();
    if doomed.is_empty() {
        return;
    }
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            // `keep-alive` and `upgrade` name headers removed already; `close` names one only
            // in a crafted message. None of them is worth building a header name for.
            if token.eq_ignore_ascii_case("keep-alive")
                || token.eq_ignore_ascii_case("upgrade")
                || (token.eq_ignore_ascii_case("close") && !headers.contains_key("close"))
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes())
                && name != header::AUTHORIZATION
                && name != X_REQUEST_ID
                && !crate::identity::is_protected(&name)
            {
                doomed.push(name);
            }
        }
    }
    for name in &doomed {
        headers.remove(name);
    }
}

fn unreachable(e: &hyper_util::client::legacy::Error) -> ProxyError {
    ProxyError::Unreachable(if e.is_connect() {
        "connection failed".into()
    } else {
        "connection closed before a response".into()
    })
}

/// The `Upgrade` protocol a request asks for, if it really asks for one we tunnel. Only
/// WebSocket: an `h2c` upgrade would hand the client a raw HTTP/2 connection to the upstream
/// on which it could send further requests past rocketgate (request smuggling).
fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
        .filter(|protocol| {
            protocol
                .to_str()
                .is_ok_and(|p| p.trim().eq_ignore_ascii_case("websocket"))
        })
}

/// The configured upstream and the pooled client that reaches it.
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// A path prefix from the upstream URL (`http://app:8080/base`), without trailing `/`.
    prefix: String,
    timeout: Duration,
    /// Longest pause allowed between two pieces of a request body before giving up (408).
    body_gap: Duration,
    client: Client<HttpsConnector<HttpConnector>, Body>,
}

impl Upstream {
    pub fn new(url: &Url, timeout: Duration) -> Result<Self, ProxyError> {
        Self::with_roots(url, timeout, &CaBundle::default(), 256)
    }

    /// Like [`Upstream::new`], also trusting `roots` for an https upstream (`upstream_ca_file`),
    /// and keeping up to `max_idle` idle connections. rocketgate passes
    /// `limits.max_connections`: a smaller pool than the number of requests in flight makes
    /// every burst close the surplus and open it again, so that many requests pay for a new
    /// upstream connection. Idle connections are closed after 90 s either way.
    pub fn with_roots(
        url: &Url,
        timeout: Duration,
        roots: &CaBundle,
        max_idle: usize,
    ) -> Result<Self, ProxyError> {
        let scheme = if url.scheme() == "https" {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let host = url
            .host_str()
            .ok_or_else(|| ProxyError::BadRequest("upstream has no host".into()))?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let authority = Authority::try_from(authority.as_str())
            .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::tls::client_config(roots))
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            // The timer makes the pool close idle connections when they expire, not only
            // when a checkout happens to find them.
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(max_idle)
            .build(connector);
        Ok(Self {
            scheme,
            authority,
            prefix: url.path().trim_end_matches('/').to_owned(),
            timeout,
            body_gap: Duration::from_secs(60),
            client,
        })
    }

    /// Sets the longest pause between two pieces of a request body (`limits.idle_timeout`):
    /// a client that stalls mid-upload must not hold a connection here and one upstream.
    pub fn with_body_gap(mut self, gap: Duration) -> Self {
        self.body_gap = gap;
        self
    }

    /// Forwards `req` (headers already cleaned of identity spoofs) and returns the upstream's
    /// answer unchanged but for hop-by-hop headers.
    pub async fn forward<B>(
        &self,
        mut req: Request<B>,
        origin: &Origin,
    ) -> Result<Response<Body>, ProxyError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let upgrade = requested_upgrade(req.headers());
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));

        let (mut parts, body) = req.into_parts();
        let host = parts.headers.get(header::HOST).cloned().or_else(|| {
            // HTTP/2 carries the host in the URI's authority; HTTP/1.1 upstreams need Host.
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        parts.uri = self.upstream_uri(&parts.uri)?;
        parts.version = Version::HTTP_11;
        remove_hop_by_hop(&mut parts.headers);
        if let Some(forwarded_host) = origin.host.clone().or_else(|| host.clone()) {
            parts
                .headers
                .insert(X_FORWARDED_HOST.clone(), forwarded_host);
        }
        if let Some(host) = host {
            parts.headers.insert(header::HOST, host);
        }
        if let Ok(chain) = HeaderValue::from_str(&origin.forwarded_for) {
            parts.headers.insert(X_FORWARDED_FOR.clone(), chain);
        }
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
            let request = Request::from_parts(parts, body::stream(body));
            tokio::time::timeout(self.timeout, self.client.request(request))
                .await
                .map_err(|_| ProxyError::Timeout(self.timeout))?
                .map_err(|e| unreachable(&e))?
        } else {
            let fault = Arc::new(AtomicU8::new(BODY_OK));
            let (sent, body) = SentSignal::wrap(body, self.body_gap, fault.clone());
            let request = Request::from_parts(parts, body::stream(body));
            let exchange = self.client.request(request);
            tokio::pin!(exchange);
            let answered = tokio::select! {
                answered = &mut exchange => answered,
                _ = sent => tokio::time::timeout(self.timeout, &mut exchange)
                    .await
                    .map_err(|_| ProxyError::Timeout(self.timeout))?,
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
        Ok(Response::from_parts(parts, body::stream(body)))
    }

    /// The upstream URI: its scheme and authority, the configured prefix, and the client's
    /// path and query byte for byte.
    fn upstream_uri(&self, uri: &Uri) -> Result<Uri, ProxyError> {
        let pq = match uri.path_and_query() {
            // Shares the request's bytes: no copy.
            Some(pq) if self.prefix.is_empty() => pq.clone(),
            pq => {
                let pq = pq.map_or("/", PathAndQuery::as_str);
                PathAndQuery::try_from(format!("{}{pq}", self.prefix))
                    .map_err(|e| ProxyError::BadRequest(e.to_string()))?
            }
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| ProxyError::BadRequest(e.to_string()))
    }
}

/// What went wrong with a client's request body, if anything, as [`SentSignal`] saw it.
const BODY_OK: u8 = 0;
/// The client paused longer than the allowed gap.
const BODY_STALLED: u8 = 1;
/// The client's body failed to parse or ended early.
const BODY_BROKEN: u8 = 2;

pin_project_lite::pin_project! {
    /// A request body that reports when it has been sent completely (or dropped), gives up
    /// when the client pauses longer than `gap` between two pieces of it, and records in
    /// `fault` whether a failure was the client's.
    struct SentSignal<B> {
        #[pin]
        inner: B,
        sent: Option<oneshot::Sender<()>>,
        gap: Duration,
        timer: Option<Pin<Box<Sleep>>>,
        fault: Arc<AtomicU8>,
    }
}

impl<B: hyper::body::Body> SentSignal<B> {
    fn wrap(
        inner: B,
        gap: Duration,
        fault: Arc<AtomicU8>,
    ) -> (oneshot::Receiver<()>, SentSignal<B>) {
        let (tx, rx) = oneshot::channel();
        let sent = if inner.is_end_stream() {
            let _ = tx.send(());
            None
        } else {
            Some(tx)
        };
        let body = SentSignal {
            inner,
            sent,
            gap,
            timer: None,
            fault,
        };
        (rx, body)
    }
}

impl<B> hyper::body::Body for SentSignal<B>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let frame = this
            .inner
            .as_mut()
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(Into::into)));
        if let Poll::Ready(Some(Err(_))) = &frame {
            this.fault.store(BODY_BROKEN, Ordering::SeqCst);
        }
        // hyper stops polling a sized body after its last frame, so check for the end then too.
        let done = match &frame {
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Pending => false,
        };
        if done && let Some(tx) = this.sent.take() {
            let _ = tx.send(());
        }
        let deadline = Instant::now() + *this.gap;
        match (&frame, this.timer.as_mut()) {
            (Poll::Ready(_), Some(timer)) => timer.as_mut().reset(deadline),
            (Poll::Pending, None) => {
                *this.timer = Some(Box::pin(tokio::time::sleep_until(deadline)))
            }
            _ => {}
        }
        if frame.is_pending()
            && let Some(timer) = this.timer.as_mut()
            && timer.as_mut().poll(cx).is_ready()
        {
            this.fault.store(BODY_STALLED, Ordering::SeqCst);
            return Poll::Ready(Some(Err("request body stalled".into())));
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Answers the client's upgrade with the upstream's 101 and splices the two connections.
fn tunnel(
    mut upstream: Response<hyper::body::Incoming>,
    client: hyper::upgrade::OnUpgrade,
) -> Response<Body> {
    let upstream_upgrade = hyper::upgrade::on(&mut upstream);
    tokio::spawn(async move {
        let (Ok(client), Ok(server)) = tokio::join!(client, upstream_upgrade) else {
            tracing::debug!("upgrade abandoned by one side");
            return;
        };
        let mut client = TokioIo::new(client);
        let mut server = TokioIo::new(server);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
            tracing::debug!(error = %e, "upgraded connection ended");
        }
    });
    let (parts, _) = upstream.into_parts();
    Response::from_parts(parts, body::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            "keep-alive, x-secret-hop".parse().unwrap(),
        );
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert(header::TE, "trailers".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("x-app", "kept".parse().unwrap());
        remove_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, vec!["x-app"]);
    }

    #[test]
    fn a_header_named_close_goes_when_connection_names_it() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "Close".parse().unwrap());
        h.insert("close", "smuggled".parse().unwrap());
        h.insert("x-app", "kept".parse().unwrap());
        remove_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, vec!["x-app"]);
    }

    #[test]
    fn upgrade_needs_both_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        assert!(requested_upgrade(&h).is_none());
        h.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert_eq!(requested_upgrade(&h).unwrap(), "websocket");
        h.insert(header::UPGRADE, "h2c".parse().unwrap());
        assert!(requested_upgrade(&h).is_none(), "h2c is never tunnelled");
    }

    #[tokio::test]
    async fn uri_keeps_path_and_query_bytes() {
        let up = Upstream::new(
            &Url::parse("http://127.0.0.1:9/base/").unwrap(),
            Duration::from_secs(1),
        )
        .unwrap();
        let uri: Uri = "/a%2Fb/../c?x=%20&y=1+2".parse().unwrap();
        assert_eq!(
            up.upstream_uri(&uri).unwrap().to_string(),
            "http://127.0.0.1:9/base/a%2Fb/../c?x=%20&y=1+2"
        );
        let root =
            Upstream::new(&Url::parse("http://app").unwrap(), Duration::from_secs(1)).unwrap();
        assert_eq!(
            root.upstream_uri(&"/".parse().unwrap())
                .unwrap()
                .to_string(),
            "http://app/"
        );
    }
}

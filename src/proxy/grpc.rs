//! What rocketgate must know about gRPC: which requests are gRPC (they need HTTP/2 to the
//! upstream, and trailers), the deadline a client sets with `grpc-timeout`, and how a
//! refusal is said so that a gRPC client can read it (a status code and a percent-encoded
//! message in a "trailers-only" answer).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::body::{Body, BoxError};
use http::{HeaderMap, HeaderValue, StatusCode};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// The request's `content-type` as far as gRPC is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrpcKind {
    /// `application/grpc`, `application/grpc+proto`, ...: HTTP/2 with trailers.
    Grpc,
    /// `application/grpc-web`, `application/grpc-web+proto`, ...: trailers ride in the
    /// body, so any HTTP version carries it.
    Web,
    /// `application/grpc-web-text`: gRPC-Web with a base64 body.
    WebText,
}

impl GrpcKind {
    /// The `content-type` of an answer this kind of client reads.
    pub fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            GrpcKind::Grpc => "application/grpc",
            GrpcKind::Web => "application/grpc-web",
            GrpcKind::WebText => "application/grpc-web-text",
        })
    }
}

/// Which kind of gRPC request this is, if any.
pub fn kind(headers: &HeaderMap) -> Option<GrpcKind> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let rest = essence.strip_prefix("application/grpc")?;
    match rest {
        "" => Some(GrpcKind::Grpc),
        r if r.starts_with('+') => Some(GrpcKind::Grpc),
        r if r.starts_with("-web-text") => {
            let after = &r["-web-text".len()..];
            (after.is_empty() || after.starts_with('+')).then_some(GrpcKind::WebText)
        }
        r if r.starts_with("-web") => {
            let after = &r["-web".len()..];
            (after.is_empty() || after.starts_with('+')).then_some(GrpcKind::Web)
        }
        _ => None,
    }
}

/// gRPC status codes rocketgate answers with
/// (<https://grpc.github.io/grpc/core/md_doc_statuscodes.html>).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    PermissionDenied = 7,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl Code {
    /// The code for a refusal rocketgate would otherwise answer with `status`: what a gRPC
    /// client must do next follows from it (sign in, give up, retry later).
    pub fn for_status(status: StatusCode) -> Code {
        match status.as_u16() {
            400 => Code::InvalidArgument,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 | 405 | 501 => Code::Unimplemented,
            408 | 504 => Code::DeadlineExceeded,
            429 | 502 | 503 => Code::Unavailable,
            _ => Code::Internal,
        }
    }

    /// The `grpc-status` value.
    pub fn header(self) -> HeaderValue {
        HeaderValue::from(u16::from(self as u8))
    }
}

/// What gRPC's `grpc-message` may carry unescaped: printable ASCII but `%`.
const MESSAGE_ESCAPES: &AsciiSet = &CONTROLS.add(b'%');

/// `message` as a `grpc-message` value: UTF-8, percent-encoded outside printable ASCII.
pub fn message(message: &str) -> HeaderValue {
    let encoded = utf8_percent_encode(message, MESSAGE_ESCAPES).to_string();
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The client's deadline from `grpc-timeout` (1 to 8 digits and a unit: `H`ours, `M`inutes,
/// `S`econds, `m`illi-, `u` micro-, `n`anoseconds), if it sent a valid one.
pub fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?.trim();
    if !(2..=9).contains(&value.len()) || !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A gRPC response cut off at the client's deadline. Past it, the upstream's stream is
/// dropped (HTTP/2 resets it, so the upstream stops working on it) and the client gets the
/// trailers a gRPC server would have sent: `DEADLINE_EXCEEDED`. The upstream's own head
/// may arrive long before its last message, so bounding the wait for the head is not enough.
pub struct Deadline {
    inner: Option<Body>,
    timer: Pin<Box<Sleep>>,
}

impl Deadline {
    pub fn new(inner: Body, at: Instant) -> Deadline {
        Deadline {
            inner: Some(inner),
            timer: Box::pin(tokio::time::sleep_until(at)),
        }
    }
}

impl hyper::body::Body for Deadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(None) => {
                self.inner = None;
                Poll::Ready(None)
            }
            Poll::Ready(frame) => Poll::Ready(frame),
            Poll::Pending => {
                if self.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.inner = None;
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", Code::DeadlineExceeded.header());
                trailers.insert("grpc-message", message("Deadline exceeded"));
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(hyper::body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), hyper::body::Body::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn grpc_and_grpc_web_are_told_apart_by_content_type() {
        let of = |ct: &str| kind(&headers(&[("content-type", ct)]));
        assert_eq!(of("application/grpc"), Some(GrpcKind::Grpc));
        assert_eq!(of("application/grpc+proto"), Some(GrpcKind::Grpc));
        assert_eq!(
            of("Application/GRPC+json; charset=utf-8"),
            Some(GrpcKind::Grpc)
        );
        assert_eq!(of("application/grpc-web"), Some(GrpcKind::Web));
        assert_eq!(of("application/grpc-web+proto"), Some(GrpcKind::Web));
        assert_eq!(of("application/grpc-web-text"), Some(GrpcKind::WebText));
        assert_eq!(
            of("application/grpc-web-text+proto"),
            Some(GrpcKind::WebText)
        );
        assert_eq!(of("application/grpc-web-textx"), None);
        assert_eq!(of("application/grpcx"), None);
        assert_eq!(of("application/grpc-webx"), None);
        assert_eq!(of("application/json"), None);
        assert_eq!(kind(&HeaderMap::new()), None);
    }

    #[test]
    fn grpc_timeouts_parse_every_unit_and_refuse_the_rest() {
        let of = |t: &str| timeout(&headers(&[("grpc-timeout", t)]));
        assert_eq!(of("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(of("2M"), Some(Duration::from_secs(120)));
        assert_eq!(of("3S"), Some(Duration::from_secs(3)));
        assert_eq!(of("250m"), Some(Duration::from_millis(250)));
        assert_eq!(of("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(of("5n"), Some(Duration::from_nanos(5)));
        for bad in ["", "S", "123456789S", "10s", "-1S", "1.5S", "1 S", "１S"] {
            assert_eq!(of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn refusals_map_to_the_codes_clients_act_on() {
        let code = |s: u16| Code::for_status(StatusCode::from_u16(s).unwrap()) as u8;
        assert_eq!(code(401), 16);
        assert_eq!(code(403), 7);
        assert_eq!(code(502), 14);
        assert_eq!(code(503), 14);
        assert_eq!(code(504), 4);
        assert_eq!(code(400), 3);
        assert_eq!(code(404), 12);
        assert_eq!(code(500), 13);
        assert_eq!(Code::Unauthenticated.header(), "16");
    }

    #[tokio::test]
    async fn a_stream_past_its_deadline_ends_in_deadline_exceeded() {
        use http_body_util::BodyExt;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(4);
        let upstream = crate::body::stream(http_body_util::StreamBody::new(
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
            ),
        ));
        let mut body = Deadline::new(upstream, Instant::now() + Duration::from_millis(50));
        tx.send(Ok(Frame::data(Bytes::from_static(b"first"))))
            .await
            .unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "first");
        let last = body.frame().await.unwrap().unwrap();
        let trailers = last.into_trailers().unwrap();
        assert_eq!(trailers["grpc-status"], "4");
        assert!(body.frame().await.is_none());
        assert!(tx.is_closed(), "the upstream's stream was dropped");
    }

    #[test]
    fn messages_are_percent_encoded_outside_printable_ascii() {
        assert_eq!(message("Sign-in required"), "Sign-in required");
        assert_eq!(message("50% done\n"), "50%25 done%0A");
        assert_eq!(message("caf\u{e9}"), "caf%C3%A9");
    }
}

//! `/_upstream/download`: a body of any size without allocating it.

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http_body_util::BodyExt as _;
use hyper::Response;
use hyper::body::{Frame, SizeHint};

use crate::Body;

const CHUNK: usize = 64 * 1024;

/// One shared 64 KiB chunk; every frame is a cheap refcounted slice of it.
fn chunk() -> Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    PATTERN
        .get_or_init(|| {
            (0..CHUNK)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<u8>>()
                .into()
        })
        .clone()
}

/// Yields `remaining` bytes of the repeating pattern. Always ready: hyper only
/// polls for more when its write buffer has room, so memory stays flat.
struct PatternBody {
    remaining: u64,
    chunk: Bytes,
}

impl hyper::body::Body for PatternBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = usize::try_from(this.remaining).map_or(CHUNK, |r| r.min(CHUNK));
        this.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(this.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// 200 with exactly `n` bytes and a matching `Content-Length`.
pub(super) fn download(n: u64) -> Response<Body> {
    let mut resp = Response::new(
        PatternBody {
            remaining: n,
            chunk: chunk(),
        }
        .boxed(),
    );
    let headers = resp.headers_mut();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

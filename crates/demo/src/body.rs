//! The one response body type shared by the demo servers.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};

/// Boxed response body: lets buffered pages and streamed downloads share one
/// handler signature. `io::Error` because streamed bodies may fail mid-way.
pub type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// A complete in-memory body.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body (redirects, 204s).
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Buffers a request body of at most `limit` bytes.
///
/// The stand-in only reads small forms; capping the read keeps a hostile or
/// buggy client from making it allocate without bound.
pub(crate) async fn read_capped<B>(body: B, limit: usize) -> Result<Bytes, super::DemoError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(super::DemoError::BodyTooLarge { limit })
        }
        Err(err) => Err(super::DemoError::BodyRead(err.to_string())),
    }
}

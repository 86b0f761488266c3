//! The OTLP trace export request (opentelemetry-proto's `trace/v1` and `common/v1`), only the
//! fields rocketgate fills, with their field numbers from the published `.proto` files.

use super::record::{Kind, SpanRecord, Value};

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTraceServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceSpans {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeSpans {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<Span>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InstrumentationScope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(string, tag = "3")]
    pub trace_state: String,
    #[prost(bytes = "vec", tag = "4")]
    pub parent_span_id: Vec<u8>,
    #[prost(string, tag = "5")]
    pub name: String,
    /// `SpanKind`: 1 internal, 2 server, 3 client.
    #[prost(int32, tag = "6")]
    pub kind: i32,
    #[prost(fixed64, tag = "7")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "8")]
    pub end_time_unix_nano: u64,
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    #[prost(message, repeated, tag = "13")]
    pub links: Vec<Link>,
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
    /// Bit 8 (0x100): the parent's remoteness is known; bit 9 (0x200): the parent is remote.
    #[prost(fixed32, tag = "16")]
    pub flags: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Link {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(string, tag = "2")]
    pub message: String,
    /// `StatusCode`: 0 unset, 1 ok, 2 error.
    #[prost(int32, tag = "3")]
    pub code: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    #[prost(oneof = "AnyValueKind", tags = "1, 2, 3")]
    pub value: Option<AnyValueKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AnyValueKind {
    #[prost(string, tag = "1")]
    String(String),
    #[prost(bool, tag = "2")]
    Bool(bool),
    #[prost(int64, tag = "3")]
    Int(i64),
}

pub fn key_value(key: &str, value: &Value) -> KeyValue {
    let value = match value {
        Value::Str(s) => AnyValueKind::String(s.to_string()),
        Value::Int(i) => AnyValueKind::Int(*i),
        Value::Bool(b) => AnyValueKind::Bool(*b),
    };
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn span(record: SpanRecord) -> Span {
    let kind = match record.kind {
        Kind::Internal => 1,
        Kind::Server => 2,
        Kind::Client => 3,
    };
    let flags = match (record.kind, record.parent_remote) {
        (_, Some(true)) => 0x300,
        (_, Some(false)) => 0x100,
        (_, None) => 0,
    } | u32::from(record.cx.sampled);
    Span {
        trace_id: record.cx.trace_id.0.to_vec(),
        span_id: record.cx.span_id.0.to_vec(),
        trace_state: String::new(),
        parent_span_id: record.parent.map(|p| p.0.to_vec()).unwrap_or_default(),
        name: record.name.into_owned(),
        kind,
        start_time_unix_nano: record.start,
        end_time_unix_nano: record.end,
        attributes: record
            .attributes
            .iter()
            .map(|(key, value)| key_value(key, value))
            .collect(),
        links: record
            .links
            .iter()
            .map(|link| Link {
                trace_id: link.trace_id.0.to_vec(),
                span_id: link.span_id.0.to_vec(),
                attributes: Vec::new(),
            })
            .collect(),
        status: record.error.map(|message| Status {
            message: message.into_owned(),
            code: 2,
        }),
        flags,
    }
}

/// One export request for a batch of finished spans.
pub fn request(resource: &[KeyValue], spans: Vec<SpanRecord>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource.to_vec(),
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "rocketgate".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                }),
                spans: spans.into_iter().map(span).collect(),
            }],
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::context::{SpanContext, SpanId, TraceId};
    use prost::Message as _;

    #[test]
    fn a_span_encodes_with_the_published_field_numbers() {
        let cx = SpanContext {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([2; 8]),
            sampled: true,
        };
        let record = SpanRecord {
            cx,
            parent: Some(SpanId([3; 8])),
            parent_remote: Some(true),
            name: "GET".into(),
            kind: Kind::Server,
            start: 5,
            end: 9,
            attributes: vec![("http.response.status_code", Value::Int(200))],
            links: vec![],
            error: None,
        };
        let bytes = request(&[], vec![record]).encode_to_vec();
        let decoded = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        let span = &decoded.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id, vec![1; 16]);
        assert_eq!(span.parent_span_id, vec![3; 8]);
        assert_eq!(span.kind, 2);
        assert_eq!(span.flags, 0x301);
        // Field 7, wire type 1 (fixed64): tag byte 0x39, then 5 little-endian.
        let at = bytes
            .windows(9)
            .position(|w| w == [0x39, 5, 0, 0, 0, 0, 0, 0, 0]);
        assert!(at.is_some(), "start time not encoded as fixed64 field 7");
    }
}

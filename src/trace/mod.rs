//! Distributed tracing: W3C trace context on every request (continued from the client's
//! `traceparent` or started here) and sent to every upstream, and, with an OTLP endpoint,
//! spans for the request, its session, refresh, Rocketpunch and Redis calls and the upstream
//! call, exported in the background.
//!
//! Nothing here touches the `tracing` crate's spans: those cost on every request whether
//! sampled or not. A request that is not recorded pays for its ids and a task-local, no more.

mod context;
mod export;
mod otlp;
mod record;

use std::sync::Arc;

use http::{HeaderMap, HeaderName, Uri};

pub use context::{Ratio, SpanContext, SpanId, TraceId, parse_traceparent};
pub use record::{Kind, Scope, Span, SpanRecord, Value};

use crate::metrics::Metrics;

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// `[tracing]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TracingSettings {
    /// Where spans go: the collector's OTLP/HTTP traces URL (`…/v1/traces`); `None`
    /// records nothing, but trace context is still propagated.
    pub endpoint: Option<Uri>,
    /// The share of new traces recorded (0 to 1).
    pub sample_ratio: f64,
    pub service_name: String,
    /// Extra resource attributes (`deployment.environment.name`, `service.namespace`, …).
    pub resource_attributes: Vec<(String, String)>,
}

impl Default for TracingSettings {
    fn default() -> Self {
        Self {
            endpoint: None,
            sample_ratio: 1.0,
            service_name: "rocketgate".into(),
            resource_attributes: Vec::new(),
        }
    }
}

/// Decides which traces are recorded and sends their spans to the exporter.
pub struct Tracer {
    ratio: Ratio,
    exporter: Option<export::Exporter>,
}

impl Tracer {
    /// A tracer for `settings`; with an endpoint, starts the export task (so it must be
    /// called on a Tokio runtime).
    pub fn new(settings: &TracingSettings, metrics: Arc<Metrics>) -> Arc<Tracer> {
        let exporter = settings.endpoint.clone().map(|endpoint| {
            let mut resource = vec![
                otlp::key_value(
                    "service.name",
                    &Value::Str(settings.service_name.clone().into()),
                ),
                otlp::key_value(
                    "service.version",
                    &Value::Str(env!("CARGO_PKG_VERSION").into()),
                ),
                otlp::key_value("telemetry.sdk.name", &Value::Str("rocketgate".into())),
                otlp::key_value("telemetry.sdk.language", &Value::Str("rust".into())),
            ];
            for (key, value) in &settings.resource_attributes {
                resource.retain(|kv| &kv.key != key);
                resource.push(otlp::key_value(key, &Value::Str(value.clone().into())));
            }
            export::Exporter::start(endpoint, resource, metrics)
        });
        Arc::new(Tracer {
            ratio: Ratio::new(settings.sample_ratio),
            exporter,
        })
    }

    /// Propagates trace context and records nothing.
    pub fn off() -> Arc<Tracer> {
        Arc::new(Tracer {
            ratio: Ratio::new(1.0),
            exporter: None,
        })
    }

    pub fn exports(&self) -> bool {
        self.exporter.is_some()
    }

    fn export(&self, span: SpanRecord) {
        if let Some(exporter) = &self.exporter {
            exporter.send(span);
        }
    }

    /// The server span for a request with these headers. A valid `traceparent` is
    /// continued (its trace id, its span as the parent); its sampled flag is followed when
    /// `trusted_peer` (a configured trusted proxy sent it), otherwise the trace is sampled
    /// by `sample_ratio` like a new one, so no client can make rocketgate record more.
    pub fn start_request(
        self: &Arc<Self>,
        headers: &HeaderMap,
        trusted_peer: bool,
        request_id: &http::HeaderValue,
    ) -> RequestTrace {
        let parent = headers
            .get(&TRACEPARENT)
            .and_then(|v| parse_traceparent(v.as_bytes()));
        let (trace_id, sampled) = match parent {
            Some(parent) if trusted_peer || self.exporter.is_none() => {
                (parent.trace_id, parent.sampled)
            }
            Some(parent) => (parent.trace_id, self.ratio.samples(&parent.trace_id)),
            None => {
                let id = TraceId::random();
                (id, self.ratio.samples(&id))
            }
        };
        let tracestate = parent
            .and(headers.get(&TRACESTATE))
            .filter(|v| v.len() <= 512)
            .cloned();
        let cx = SpanContext {
            trace_id,
            span_id: SpanId::random(),
            sampled,
        };
        let recording = sampled && self.exporter.is_some();
        RequestTrace {
            scope: Scope {
                tracer: recording.then(|| self.clone()),
                cx,
                tracestate,
                request_id: Some(request_id.clone()),
            },
            parent: parent.map(|p| p.span_id),
            start: if recording { record::now_nanos() } else { 0 },
        }
    }
}

/// One request's place in its trace: its server span, recorded or not.
pub struct RequestTrace {
    scope: Scope,
    parent: Option<SpanId>,
    /// When the server span started (Unix nanoseconds), if it is recorded.
    start: u64,
}

impl RequestTrace {
    pub fn trace_id(&self) -> TraceId {
        self.scope.cx.trace_id
    }

    pub fn is_recording(&self) -> bool {
        self.scope.tracer.is_some()
    }

    /// The scope the request's work runs in.
    pub fn scope(&self) -> Scope {
        self.scope.clone()
    }

    /// Records the server span, if the trace is recorded.
    pub fn finish(
        &self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        attributes: Vec<(&'static str, Value)>,
        error: Option<std::borrow::Cow<'static, str>>,
    ) {
        if let Some(tracer) = &self.scope.tracer {
            tracer.export(SpanRecord {
                cx: self.scope.cx,
                parent: self.parent,
                parent_remote: self.parent.map(|_| true),
                name: name.into(),
                kind: Kind::Server,
                start: self.start,
                end: record::now_nanos(),
                attributes,
                links: Vec::new(),
                error,
            });
        }
    }
}

/// Replaces `traceparent` (and `tracestate`) on a request leaving for the next hop with
/// `span`'s, or removes a client's when there is no trace to continue.
pub fn propagate(headers: &mut HeaderMap, span: &Span) {
    match span.propagation() {
        Some((parent, state)) => {
            headers.insert(TRACEPARENT.clone(), parent);
            match state {
                Some(state) => headers.insert(TRACESTATE.clone(), state.clone()),
                None => headers.remove(&TRACESTATE),
            };
        }
        None => {
            headers.remove(&TRACEPARENT);
            headers.remove(&TRACESTATE);
        }
    }
}

/// The trace id of the running task's request, for log lines.
pub fn current_trace_id() -> Option<TraceId> {
    Scope::current().map(|s| s.trace_id())
}

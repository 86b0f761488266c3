//! Spans as they are recorded: started from the span current in the request's task, made
//! current for the work they cover, and handed to the exporter when dropped.

use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::Either;
use http::HeaderValue;

use super::Tracer;
use super::context::{SpanContext, SpanId};

/// OpenTelemetry's span kinds, those rocketgate makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Internal,
    Server,
    Client,
}

/// An attribute's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(Cow<'static, str>),
    Int(i64),
    Bool(bool),
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<u16> for Value {
    fn from(i: u16) -> Self {
        Value::Int(i64::from(i))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// A finished span, as the exporter sends it.
#[derive(Debug)]
pub struct SpanRecord {
    pub cx: SpanContext,
    pub parent: Option<SpanId>,
    /// Whether the parent came from another process (`traceparent`); `None` for a root.
    pub parent_remote: Option<bool>,
    pub name: Cow<'static, str>,
    pub kind: Kind,
    /// Unix nanoseconds.
    pub start: u64,
    pub end: u64,
    pub attributes: Vec<(&'static str, Value)>,
    /// Spans this one waited for (a refresh another request ran).
    pub links: Vec<SpanContext>,
    /// Set on failure: the span's status is then Error, with this as its message.
    pub error: Option<Cow<'static, str>>,
}

pub(super) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What the running task is part of: its request's id, its trace's current span, the
/// `tracestate` it came with, and the tracer when the trace is recorded.
#[derive(Clone)]
pub struct Scope {
    pub(super) tracer: Option<Arc<Tracer>>,
    pub(super) cx: SpanContext,
    pub(super) tracestate: Option<HeaderValue>,
    pub(super) request_id: Option<HeaderValue>,
}

struct Current {
    scope: Scope,
    /// The span the task's work belongs to now (a child scope replaces it for its future).
    cx: Cell<SpanContext>,
}

tokio::task_local! {
    static CURRENT: Current;
}

impl Scope {
    /// The scope the running task is in, to carry into a task it spawns.
    pub fn current() -> Option<Scope> {
        CURRENT
            .try_with(|current| Scope {
                cx: current.cx.get(),
                ..current.scope.clone()
            })
            .ok()
    }

    /// Runs `work` in this scope: spans it starts are children of this scope's span.
    /// (A plain function, not `async`: an async wrapper would hold `work` twice, and the
    /// request future, which every open connection reserves room for, would double.)
    pub fn run<F: Future>(self, work: F) -> impl Future<Output = F::Output> {
        let cx = Cell::new(self.cx);
        CURRENT.scope(Current { scope: self, cx }, work)
    }

    /// Runs `work` in `scope` when there is one (a task spawned outside any request has
    /// none).
    pub fn maybe_run<F: Future>(scope: Option<Scope>, work: F) -> impl Future<Output = F::Output> {
        match scope {
            Some(scope) => Either::Left(scope.run(work)),
            None => Either::Right(work),
        }
    }

    /// The trace id, for log lines.
    pub fn trace_id(&self) -> super::TraceId {
        self.cx.trace_id
    }

    /// The request id, for log lines.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_ref().and_then(|id| id.to_str().ok())
    }
}

/// A span being recorded, or a stand-in that records nothing (the trace is not sampled, or
/// there is no exporter); client spans get ids either way, for the `traceparent` they send.
pub struct Span {
    cx: Option<SpanContext>,
    tracestate: Option<HeaderValue>,
    recording: Option<Box<Recording>>,
}

struct Recording {
    tracer: Arc<Tracer>,
    record: SpanRecord,
}

impl Span {
    /// A child of the task's current span; outside any request's scope, nothing.
    pub fn start(name: &str, kind: Kind) -> Span {
        CURRENT
            .try_with(|current| {
                let parent = current.cx.get();
                match &current.scope.tracer {
                    Some(tracer) => {
                        let cx = parent.child();
                        Span {
                            cx: Some(cx),
                            tracestate: current.scope.tracestate.clone(),
                            recording: Some(Box::new(Recording {
                                tracer: tracer.clone(),
                                record: SpanRecord {
                                    cx,
                                    parent: Some(parent.span_id),
                                    parent_remote: Some(false),
                                    name: Cow::Owned(name.to_owned()),
                                    kind,
                                    start: now_nanos(),
                                    end: 0,
                                    attributes: Vec::new(),
                                    links: Vec::new(),
                                    error: None,
                                },
                            })),
                        }
                    }
                    None if kind == Kind::Client => Span {
                        cx: Some(parent.child()),
                        tracestate: current.scope.tracestate.clone(),
                        recording: None,
                    },
                    None => Span::none(),
                }
            })
            .unwrap_or_else(|_| Span::none())
    }

    fn none() -> Span {
        Span {
            cx: None,
            tracestate: None,
            recording: None,
        }
    }

    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    pub fn context(&self) -> Option<SpanContext> {
        self.cx
    }

    /// The `traceparent` and `tracestate` for a request this span sends.
    pub fn propagation(&self) -> Option<(HeaderValue, Option<&HeaderValue>)> {
        self.cx
            .map(|cx| (cx.traceparent(), self.tracestate.as_ref()))
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        if let Some(recording) = &mut self.recording {
            recording.record.attributes.push((key, value.into()));
        }
    }

    pub fn link(&mut self, to: SpanContext) {
        if let Some(recording) = &mut self.recording {
            recording.record.links.push(to);
        }
    }

    /// Marks the span failed; `error_type` is also its `error.type` attribute.
    pub fn fail(&mut self, error_type: impl Into<Cow<'static, str>>) {
        if let Some(recording) = &mut self.recording {
            let error_type = error_type.into();
            recording
                .record
                .attributes
                .push(("error.type", Value::Str(error_type.clone())));
            recording.record.error = Some(error_type);
        }
    }

    /// The task's scope with this span current, when it is recorded (to carry into a task
    /// whose spans are this one's children); else the task's scope as it is.
    pub fn scope(&self) -> Option<Scope> {
        let mut scope = Scope::current()?;
        if let (Some(recording), Some(cx)) = (&self.recording, self.cx) {
            scope.tracer = Some(recording.tracer.clone());
            scope.cx = cx;
        }
        Some(scope)
    }

    /// Runs `work` with this span current, so the spans it starts are this one's children.
    pub async fn run<F: Future>(&self, work: F) -> F::Output {
        let scope = if self.recording.is_some() {
            self.scope()
        } else {
            None
        };
        Scope::maybe_run(scope, work).await
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(recording) = self.recording.take() {
            let Recording { tracer, mut record } = *recording;
            record.end = now_nanos();
            tracer.export(record);
        }
    }
}

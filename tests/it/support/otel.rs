//! A real OpenTelemetry Collector between rocketgate and the test: `rocketgate-otelcol`
//! (scripts/otelcol, built by scripts/test) receives OTLP/HTTP protobuf on a 127.0.0.1 port,
//! the way a deployment's collector would, and re-exports every span as OTLP JSON to a sink
//! in this process, where the test reads them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use super::process::{Tail, TempFile, find_binary, free_port};

/// One span as the collector exported it, with the resource it came from.
#[derive(Debug, Clone)]
pub struct Span {
    pub json: Value,
    pub resource: Value,
}

impl Span {
    pub fn name(&self) -> &str {
        self.json["name"].as_str().unwrap_or("")
    }

    pub fn trace_id(&self) -> &str {
        self.json["traceId"].as_str().unwrap_or("")
    }

    pub fn span_id(&self) -> &str {
        self.json["spanId"].as_str().unwrap_or("")
    }

    /// The parent's span id, "" for a root.
    pub fn parent(&self) -> &str {
        self.json["parentSpanId"].as_str().unwrap_or("")
    }

    /// OTLP's SpanKind: 1 internal, 2 server, 3 client.
    pub fn kind(&self) -> i64 {
        self.json["kind"].as_i64().unwrap_or(0)
    }

    /// An attribute's value as text (OTLP JSON writes integers as strings).
    pub fn attr(&self, key: &str) -> Option<String> {
        attribute(&self.json["attributes"], key)
    }

    /// `status.code`: 0 unset, 1 ok, 2 error.
    pub fn status_code(&self) -> i64 {
        self.json["status"]["code"].as_i64().unwrap_or(0)
    }

    /// The span ids this span links to.
    pub fn links(&self) -> Vec<String> {
        self.json["links"]
            .as_array()
            .map(|links| {
                links
                    .iter()
                    .filter_map(|l| l["spanId"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn resource_attr(&self, key: &str) -> Option<String> {
        attribute(&self.resource["attributes"], key)
    }
}

fn attribute(list: &Value, key: &str) -> Option<String> {
    let value = &list.as_array()?.iter().find(|a| a["key"] == key)?["value"];
    let (_, v) = value.as_object()?.iter().next()?;
    Some(match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// The collector process and the sink it exports to.
pub struct Collector {
    /// Where rocketgate sends OTLP/HTTP (`[tracing] otlp_endpoint`).
    pub endpoint: String,
    received: Arc<Mutex<Vec<Value>>>,
    child: Child,
    log: Tail,
    _config: TempFile,
}

pub fn binary() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    find_binary(
        "ROCKETGATE_OTELCOL",
        "rocketgate-otelcol",
        &[home.join("go/bin/rocketgate-otelcol")],
    )
    .expect("rocketgate-otelcol is installed (scripts/test builds it from scripts/otelcol)")
}

impl Collector {
    pub async fn start() -> Collector {
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = sink(received.clone()).await;
        let receiver = free_port();
        // No telemetry of its own: its default metrics listener (:8888) would clash between
        // tests running at once. No retries or queue delay: what arrives, arrives once.
        let config = TempFile::new(
            "otelcol",
            &format!(
                "receivers:
  otlp:
    protocols:
      http:
        endpoint: {receiver}
exporters:
  otlp_http:
    traces_endpoint: http://{sink}/v1/traces
    encoding: json
    compression: none
    retry_on_failure:
      enabled: false
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp_http]
"
            ),
        );
        let mut child = Command::new(binary())
            .args(["--config", config.0.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start rocketgate-otelcol");
        let log = Tail::new(child.stderr.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(receiver).await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the collector exited ({status}):\n{}", log.text());
            }
            assert!(
                Instant::now() < deadline,
                "the collector never listened:\n{}",
                log.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Collector {
            endpoint: format!("http://{receiver}"),
            received,
            child,
            log,
            _config: config,
        }
    }

    /// Every span exported so far.
    pub fn spans(&self) -> Vec<Span> {
        let received = self.received.lock().unwrap();
        let mut spans = Vec::new();
        for request in received.iter() {
            for resource_spans in request["resourceSpans"].as_array().into_iter().flatten() {
                for scope in resource_spans["scopeSpans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    for span in scope["spans"].as_array().into_iter().flatten() {
                        spans.push(Span {
                            json: span.clone(),
                            resource: resource_spans["resource"].clone(),
                        });
                    }
                }
            }
        }
        spans
    }

    /// The raw JSON the collector exported, for checks on everything at once.
    pub fn raw(&self) -> String {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits (bounded) until the spans of `trace_id` include every name in `names`.
    pub async fn trace(&self, trace_id: &str, names: &[&str]) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans: Vec<Span> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id() == trace_id)
                .collect();
            if names.iter().all(|n| spans.iter().any(|s| s.name() == *n)) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "trace {trace_id} lacks some of {names:?}; it has {:?}\ncollector log:\n{}",
                spans.iter().map(Span::name).collect::<Vec<_>>(),
                self.log.text()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits (bounded) for the first exported span that `pick` accepts.
    pub async fn wait_for(&self, what: &str, pick: impl Fn(&Span) -> bool) -> Span {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(span) = self.spans().into_iter().find(|s| pick(s)) {
                return span;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} span arrived\ncollector log:\n{}",
                self.log.text()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// An OTLP/HTTP JSON receiver standing in for the collector's next hop.
async fn sink(received: Arc<Mutex<Vec<Value>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let received = received.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let received = received.clone();
                    async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        if let Ok(json) = body
                            .as_deref()
                            .map_err(|_| ())
                            .and_then(|b| serde_json::from_slice::<Value>(b).map_err(|_| ()))
                        {
                            received.lock().unwrap().push(json);
                        }
                        Ok::<_, Infallible>(
                            http::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(b"{}")))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

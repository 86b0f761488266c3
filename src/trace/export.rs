//! Sending finished spans to the collector: a bounded queue that a request only ever
//! `try_send`s into, and one task that batches it and POSTs OTLP/HTTP protobuf. A full queue
//! or a failed export drops spans and counts them; nothing waits on the collector.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Uri, header};
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use prost::Message as _;
use tokio::sync::mpsc;

use super::otlp::{self, KeyValue};
use super::record::SpanRecord;
use crate::metrics::Metrics;

/// Spans waiting for export; past this, new ones are dropped.
pub const QUEUE_CAPACITY: usize = 2048;
/// Spans per export request.
const MAX_BATCH: usize = 512;
/// How long a span may wait for its batch to fill.
const BATCH_WAIT: Duration = Duration::from_millis(200);
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one warning about failed exports this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub(super) struct Exporter {
    queue: mpsc::Sender<SpanRecord>,
    metrics: Arc<Metrics>,
}

impl Exporter {
    /// Starts the export task on the current Tokio runtime.
    pub(super) fn start(endpoint: Uri, resource: Vec<KeyValue>, metrics: Arc<Metrics>) -> Self {
        let (queue, spans) = mpsc::channel(QUEUE_CAPACITY);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::tls::client_config(&crate::tls::CaBundle::default()))
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        tokio::spawn(run(spans, client, endpoint, resource, metrics.clone()));
        Self { queue, metrics }
    }

    pub(super) fn send(&self, span: SpanRecord) {
        if self.queue.try_send(span).is_err() {
            self.metrics.trace_spans_dropped(1);
        }
    }
}

async fn run(
    mut spans: mpsc::Receiver<SpanRecord>,
    client: HttpsClient,
    endpoint: Uri,
    resource: Vec<KeyValue>,
    metrics: Arc<Metrics>,
) {
    let mut warned: Option<Instant> = None;
    while let Some(first) = spans.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + BATCH_WAIT;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, spans.recv()).await {
                Ok(Some(span)) => batch.push(span),
                Ok(None) | Err(_) => break,
            }
        }
        let count = batch.len() as u64;
        let body = otlp::request(&resource, batch).encode_to_vec();
        if let Err(reason) = post(&client, &endpoint, body).await {
            metrics.trace_spans_dropped(count);
            if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                warned = Some(Instant::now());
                tracing::warn!(%endpoint, reason, spans = count, "trace export failed; spans dropped");
            }
        }
    }
}

async fn post(client: &HttpsClient, endpoint: &Uri, body: Vec<u8>) -> Result<(), String> {
    let request = Request::builder()
        .method(Method::POST)
        .uri(endpoint.clone())
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            if e.is_connect() {
                "connection failed".to_owned()
            } else {
                "connection closed".to_owned()
            }
        })?;
        let status = response.status();
        // Read the (small) answer so the connection goes back to the pool.
        let _ = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("collector answered {status}"))
        }
    };
    tokio::time::timeout(EXPORT_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {EXPORT_TIMEOUT:?}"))?
}

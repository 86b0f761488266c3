//! `[tracing]`: where spans go and how many traces are recorded.

use std::collections::BTreeMap;

use super::problems::{Problems, http_url};
use super::raw::RawTracing;
use crate::trace::TracingSettings;

/// The OTLP/HTTP path for traces, added to an endpoint given as the collector's base URL.
const TRACES_PATH: &str = "/v1/traces";
pub const DEFAULT_SAMPLE_RATIO: f64 = 1.0;
pub const DEFAULT_SERVICE_NAME: &str = "rocketgate";

pub(super) fn validate(p: &mut Problems, raw: &RawTracing) -> TracingSettings {
    let endpoint = raw.otlp_endpoint.as_deref().and_then(|value| {
        let mut url = p.take("tracing.otlp_endpoint", http_url(value))?;
        // As OTEL_EXPORTER_OTLP_ENDPOINT: a base URL gets the signal's path; a URL with a
        // path of its own is used as it is.
        if url.path() == "/" || url.path().is_empty() {
            url.set_path(TRACES_PATH);
        }
        if url.query().is_some() || url.fragment().is_some() {
            p.add("tracing.otlp_endpoint", "must not have a query or fragment");
            return None;
        }
        p.take(
            "tracing.otlp_endpoint",
            url.as_str().parse::<http::Uri>().map_err(|e| e.to_string()),
        )
    });
    let sample_ratio = raw.sample_ratio.unwrap_or(DEFAULT_SAMPLE_RATIO);
    if !(0.0..=1.0).contains(&sample_ratio) {
        p.add(
            "tracing.sample_ratio",
            format!(
                "must be between 0 and 1 (0.01 records one trace in a hundred), got {sample_ratio}"
            ),
        );
    }
    let service_name = raw
        .service_name
        .clone()
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
    if service_name.trim().is_empty() {
        p.add("tracing.service_name", "must not be empty");
    }
    TracingSettings {
        endpoint,
        sample_ratio,
        service_name,
        resource_attributes: resource_attributes(p, &raw.resource_attributes),
    }
}

fn resource_attributes(p: &mut Problems, raw: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(raw.len());
    for (key, value) in raw {
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            p.add(
                &format!("tracing.resource_attributes.{key}"),
                "names are letters, digits and . _ - (deployment.environment.name)",
            );
            continue;
        }
        if key == "service.name" {
            p.add(
                "tracing.resource_attributes.service.name",
                "set tracing.service_name instead",
            );
            continue;
        }
        out.push((key.clone(), value.clone()));
    }
    out
}

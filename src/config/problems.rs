//! Collecting configuration problems by key, and the checks every section shares
//! (durations, URLs, secret files, CA bundles).

use std::path::Path;
use std::time::Duration;

use url::Url;

use super::{ConfigError, ConfigProblem};
use crate::tls::{CaBundle, TlsError};

/// Collects problems so that one run of `check-config` shows all of them.
#[derive(Default)]
pub(super) struct Problems(Vec<ConfigProblem>);

impl Problems {
    pub(super) fn add(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            key: key.to_string(),
            message: message.into(),
            at: None,
        });
    }

    /// Records `result`'s error under `key` and returns its value, if any.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The refusal: every problem found. A section that produced nothing always recorded
    /// why, so the list is never empty; the fallback only keeps that promise explicit.
    pub(super) fn into_error(self) -> ConfigError {
        if self.0.is_empty() {
            return ConfigError::Invalid(vec![ConfigProblem {
                key: "(config)".into(),
                message: "incomplete configuration".into(),
                at: None,
            }]);
        }
        ConfigError::Invalid(self.0)
    }

    pub(super) fn take<T, E: std::fmt::Display>(
        &mut self,
        key: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        result.map_err(|e| self.add(key, e.to_string())).ok()
    }
}

/// Records a TLS file problem under the key the error names.
pub(super) fn tls_problem(p: &mut Problems, e: &TlsError) {
    p.add(e.key(), e.to_string());
}

/// Reads an optional CA bundle; `None` only when it was set and is unusable (a problem).
pub(super) fn ca_bundle(
    p: &mut Problems,
    key: &'static str,
    path: Option<&str>,
) -> Option<CaBundle> {
    match path.map(str::trim) {
        None | Some("") => Some(CaBundle::default()),
        Some(path) => CaBundle::read(key, Path::new(path))
            .map_err(|e| tls_problem(p, &e))
            .ok(),
    }
}

pub(super) fn required<'a>(p: &mut Problems, key: &str, value: Option<&'a str>) -> Option<&'a str> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Some(v),
        _ => {
            p.add(key, "is required");
            None
        }
    }
}

pub(super) fn http_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("must be an http:// or https:// URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http:// or https:// URL, got scheme {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    Ok(url)
}

pub(super) fn duration(
    p: &mut Problems,
    key: &str,
    value: &Option<String>,
    default: &str,
) -> Option<Duration> {
    let text = value.as_deref().unwrap_or(default);
    // Beyond ten years a deadline computed from now can overflow the clock; nobody needs it.
    const MAX: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
    p.take(
        key,
        humantime::parse_duration(text.trim())
            .map_err(|e| format!("must be a duration like \"30s\" or \"5m\" ({e}), got {text:?}"))
            .and_then(|d| {
                if d > MAX {
                    Err(format!("must be at most 10 years, got {text:?}"))
                } else {
                    Ok(d)
                }
            }),
    )
}

pub(super) fn read_secret_file(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{path:?} is empty"));
    }
    Ok(text.to_owned())
}

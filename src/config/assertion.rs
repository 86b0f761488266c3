//! `[assertion]`: the signed `X-Rocketgate-Assertion` JWT for the upstream.

use std::time::Duration;

use url::Url;

use super::problems::{Problems, duration};
use super::raw::RawAssertion;
use crate::assertion::{AssertionSettings, SigningKey};

pub const DEFAULT_ALGORITHM: &str = "ES256";
pub const DEFAULT_LIFETIME: &str = "5m";

pub(super) fn validate(
    p: &mut Problems,
    raw: RawAssertion,
    upstream: Option<&Url>,
) -> Option<AssertionSettings> {
    let enabled = raw.enabled.unwrap_or(false);
    let algorithm = raw.algorithm.as_deref().unwrap_or(DEFAULT_ALGORITHM);
    if algorithm != "ES256" {
        p.add(
            "assertion.algorithm",
            format!("only \"ES256\" is supported, got {algorithm:?}"),
        );
    }
    let lifetime = duration(p, "assertion.lifetime", &raw.lifetime, DEFAULT_LIFETIME);
    if let Some(l) = lifetime
        && !(crate::assertion::MIN_LIFETIME..=Duration::from_secs(86_400)).contains(&l)
    {
        p.add(
            "assertion.lifetime",
            "must be between 1m and 24h (cached assertions keep at least 30s of life)",
        );
    }
    let audience = match raw.audience {
        Some(a) if a.trim().is_empty() => {
            p.add("assertion.audience", "must not be empty when set");
            None
        }
        Some(a) => Some(a.trim().to_owned()),
        None => upstream.and_then(Url::host_str).map(str::to_owned),
    };
    // A key file is checked even while assertions are off, so turning them on cannot fail.
    let key = match raw.key_file {
        Some(path) => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {path:?}: {e}"))
            .and_then(|text| SigningKey::from_pem(&text).map_err(|e| e.to_string()))
            .map_err(|e| p.add("assertion.key_file", e))
            .ok()
            .map(|key| (key, false)),
        None if enabled => p
            .take("assertion.key_file", SigningKey::generate())
            .map(|key| (key, true)),
        None => None,
    };
    if !enabled {
        return None;
    }
    let (key, generated_key) = key?;
    Some(AssertionSettings {
        lifetime: lifetime?,
        audience: audience?,
        key,
        generated_key,
    })
}

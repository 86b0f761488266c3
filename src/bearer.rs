//! Rocketpunch access tokens from API clients: `Authorization: Bearer <JWT>` instead of a
//! session cookie.
//!
//! Scripts and services cannot follow a browser login, but they can hold a Rocketpunch access
//! token. When `access.accept_bearer_tokens` is on, a request without a valid session whose
//! bearer token is an RS256 JWT signed by one of Rocketpunch's keys (`provider.jwks_url`),
//! issued to our `client_id` and unexpired, is let through as the token's `sub`. The token is
//! checked locally: no call to Rocketpunch per request, only a cached JWKS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::HeaderMap;
use http::header::AUTHORIZATION;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::metrics::{BearerOutcome, FetchOutcome, Metrics};
use crate::oauth::OAuthClient;
use crate::oauth::ProviderSettings;
use crate::session::{Identity, Session, Tokens, unix_now};

/// How long fetched keys are used before asking Rocketpunch again.
const KEYS_TTL: Duration = Duration::from_secs(3600);
/// A token naming a kid we do not know re-fetches the keys at most this often, so a flood
/// of made-up kids cannot turn rocketgate into a JWKS hammer.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// Clock skew tolerated on `exp` (and `nbf`).
const LEEWAY_SECS: u64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// Malformed, badly signed, expired, for another audience or issuer, or an unknown kid.
    /// The reason is for logs only; the client just learns `invalid_token`.
    #[error("invalid bearer token ({0})")]
    Invalid(&'static str),
    /// Rocketpunch's keys could not be fetched and none are cached.
    #[error("Rocketpunch signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

type KeySet = HashMap<String, Arc<DecodingKey>>;

#[derive(Deserialize)]
struct Claims {
    sub: Value,
    exp: u64,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
}

/// Verifies bearer tokens against Rocketpunch's cached JWKS.
pub struct BearerVerifier {
    oauth: Arc<OAuthClient>,
    jwks_url: Url,
    validation: Validation,
    metrics: Arc<Metrics>,
    keys: moka::future::Cache<(), Arc<KeySet>>,
    /// The last keys fetched, for when a routine re-fetch fails: an outage at Rocketpunch
    /// should not lock out API clients whose tokens we can still check.
    last_good: Mutex<Option<Arc<KeySet>>>,
    /// When an unknown kid last caused a re-fetch.
    refetched: tokio::sync::Mutex<Option<Instant>>,
}

impl BearerVerifier {
    /// Verifies tokens issued to `provider.client_id` (and by `provider.issuer`, when set)
    /// against the keys at `provider.jwks_url`; `None` without a JWKS URL.
    pub fn new(
        provider: &ProviderSettings,
        oauth: Arc<OAuthClient>,
        metrics: Arc<Metrics>,
    ) -> Option<Self> {
        let jwks_url = provider.jwks_url.clone()?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_audience(&[&provider.client_id]);
        let mut required = vec!["exp", "aud", "sub"];
        if let Some(issuer) = &provider.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Some(Self {
            oauth,
            jwks_url,
            validation,
            metrics,
            keys: moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(KEYS_TTL)
                .build(),
            last_good: Mutex::new(None),
            refetched: tokio::sync::Mutex::new(None),
        })
    }

    /// The session-like view of a valid token: the user from `sub`, email and username from
    /// the token's claims, and the token itself as the access token (it is what the upstream
    /// would get with `headers.pass_access_token`).
    pub async fn verify(&self, token: &str) -> Result<Session, BearerError> {
        let result = self.check(token).await;
        self.metrics.bearer(match &result {
            Ok(_) => BearerOutcome::Accepted,
            Err(BearerError::Invalid(reason)) => {
                tracing::debug!(reason, "bearer token refused");
                BearerOutcome::Invalid
            }
            Err(BearerError::KeysUnavailable(_)) => BearerOutcome::Unavailable,
        });
        result
    }

    async fn check(&self, token: &str) -> Result<Session, BearerError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| BearerError::Invalid("malformed header"))?;
        // Checked before any key is looked up: `none`, HS256 with the public key as the
        // secret and every other algorithm swap end here.
        if header.alg != Algorithm::RS256 {
            return Err(BearerError::Invalid("algorithm"));
        }
        let kid = header.kid.ok_or(BearerError::Invalid("no kid"))?;
        let key = self.key(&kid).await?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map_err(|e| {
            BearerError::Invalid(match e.kind() {
                ErrorKind::ExpiredSignature => "expired",
                ErrorKind::ImmatureSignature => "not yet valid",
                ErrorKind::InvalidAudience => "audience",
                ErrorKind::InvalidIssuer => "issuer",
                ErrorKind::InvalidSignature => "signature",
                ErrorKind::MissingRequiredClaim(_) => "missing claim",
                _ => "malformed",
            })
        })?;
        let claims = data.claims;
        let user = match claims.sub {
            Value::String(s) if !s.is_empty() => s,
            Value::Number(n) => n.to_string(),
            _ => return Err(BearerError::Invalid("sub")),
        };
        Ok(Session::new(
            Identity {
                user,
                email: claims.email.filter(|e| !e.is_empty()),
                preferred_username: claims.preferred_username.filter(|u| !u.is_empty()),
                ..Identity::default()
            },
            Tokens {
                access_token: token.to_owned(),
                refresh_token: None,
                expires_at: Some(claims.exp),
                issued_at: None,
            },
            unix_now(),
        ))
    }

    /// The key for `kid`: from the cached set, or after one re-fetch per
    /// [`REFETCH_INTERVAL`] when the kid is new (Rocketpunch rotated its keys).
    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, BearerError> {
        let set = match self.keys.try_get_with((), self.fetch()).await {
            Ok(set) => set,
            Err(e) => self
                .last_good
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .ok_or_else(|| BearerError::KeysUnavailable(e.to_string()))?,
        };
        if let Some(key) = set.get(kid) {
            return Ok(key.clone());
        }
        let mut last = self.refetched.lock().await;
        // Someone else may have re-fetched while this request waited for the lock.
        if let Some(set) = self.keys.get(&()).await
            && let Some(key) = set.get(kid)
        {
            return Ok(key.clone());
        }
        if last.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            return Err(BearerError::Invalid("unknown kid"));
        }
        *last = Some(Instant::now());
        let set = self
            .fetch()
            .await
            .map_err(|_| BearerError::Invalid("unknown kid"))?;
        self.keys.insert((), set.clone()).await;
        set.get(kid)
            .cloned()
            .ok_or(BearerError::Invalid("unknown kid"))
    }

    async fn fetch(&self) -> Result<Arc<KeySet>, BearerError> {
        let result = self
            .oauth
            .get_json(&self.jwks_url)
            .await
            .map_err(|e| BearerError::KeysUnavailable(e.to_string()))
            .and_then(|body| parse_jwks(&body));
        match &result {
            Ok(set) => {
                self.metrics.jwks_fetch(FetchOutcome::Ok);
                *self
                    .last_good
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(set.clone());
            }
            Err(e) => {
                self.metrics.jwks_fetch(FetchOutcome::Failed);
                tracing::warn!(error = %e, "fetching Rocketpunch's JWKS failed");
            }
        }
        result
    }
}

/// The RSA signing keys of a JWKS, by kid. Keys without a kid, for encryption, for another
/// algorithm, or that do not parse are skipped rather than failing the whole set.
fn parse_jwks(body: &Value) -> Result<Arc<KeySet>, BearerError> {
    let keys = body
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| BearerError::KeysUnavailable("JWKS without a keys array".into()))?;
    let mut set = KeySet::new();
    for key in keys {
        if key.get("kty").and_then(Value::as_str) != Some("RSA")
            || key
                .get("use")
                .and_then(Value::as_str)
                .is_some_and(|u| u != "sig")
            || key
                .get("alg")
                .and_then(Value::as_str)
                .is_some_and(|a| a != "RS256")
        {
            continue;
        }
        let Ok(jwk) = serde_json::from_value::<Jwk>(key.clone()) else {
            continue;
        };
        let (Some(kid), Ok(decoding)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(&jwk))
        else {
            continue;
        };
        set.insert(kid, Arc::new(decoding));
    }
    Ok(Arc::new(set))
}

/// The token of an `Authorization: Bearer <token>` header, scheme matched case-insensitively.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_bearer_tokens_only() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, "Bearer abc.def".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("abc.def"));
        h.insert(AUTHORIZATION, "bearer  x ".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("x"));
        h.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
    }

    #[test]
    fn jwks_keeps_rsa_signing_keys_with_a_kid() {
        let n = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
        let body = json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": n, "e": "AQAB", "alg": "RS256", "use": "sig"},
            {"kty": "RSA", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "n": n, "e": "AQAB", "use": "enc"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "x", "y": "y"},
            {"kty": "RSA", "kid": "broken"},
        ]});
        let set = parse_jwks(&body).unwrap();
        let mut kids: Vec<&str> = set.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, vec!["a"]);
        assert!(parse_jwks(&json!({"nope": 1})).is_err());
    }
}

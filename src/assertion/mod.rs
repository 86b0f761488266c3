//! Signed identity for upstreams: `X-Rocketgate-Assertion`, an ES256 JWT naming the user.
//!
//! `X-Forwarded-User` is only as trustworthy as the network: an upstream reachable by anyone
//! but rocketgate believes whoever sends it. An assertion can be verified by the upstream
//! against `/oauth2/jwks.json`, so a misconfigured network policy no longer means forged
//! identities. Signing costs an ECDSA operation, so assertions are cached per session and
//! reused until shortly before they expire.

mod key;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Response;
use http::header::{self, HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

pub use key::{SigningKey, kid_of};

use crate::body::{self, Body};
use crate::metrics::{CacheResult, Metrics};
use crate::session::{Session, unix_now};

/// `[assertion]`: how the `X-Rocketgate-Assertion` JWT is made.
#[derive(Debug)]
pub struct AssertionSettings {
    pub lifetime: Duration,
    /// `aud`; defaults to the upstream URL's host.
    pub audience: String,
    pub key: SigningKey,
    /// No `key_file`: the key was generated at start, so replicas will not agree.
    pub generated_key: bool,
}

pub static X_ROCKETGATE_ASSERTION: HeaderName = HeaderName::from_static("x-rocketgate-assertion");

/// A cached assertion is served only with at least this much life left, so an upstream with
/// a little clock skew or a slow request never sees it expire in flight.
pub const MIN_REMAINING: Duration = Duration::from_secs(30);

/// The shortest `assertion.lifetime` accepted: anything shorter leaves the cache nothing to do.
pub const MIN_LIFETIME: Duration = Duration::from_secs(60);

/// How many sessions' assertions are kept; beyond it the least used are signed again.
const CACHE_CAPACITY: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error(
        "must be a PEM file holding a PKCS#8 private key (-----BEGIN PRIVATE KEY-----); \
         convert a SEC1 key with `openssl pkcs8 -topk8 -nocrypt`"
    )]
    NotPkcs8Pem,
    #[error("must hold an EC P-256 (prime256v1) private key")]
    NotP256,
    #[error("generating a P-256 key failed")]
    Generate,
    #[error("signing the assertion failed: {0}")]
    Sign(String),
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    iat: u64,
    exp: u64,
    jti: String,
}

/// Whose assertion: the user and a digest of the access token (never the token itself), so
/// a refresh (new token, maybe a new email) gets a new assertion.
#[derive(Clone, Hash, PartialEq, Eq)]
struct CacheKey {
    user: String,
    token: [u8; 32],
}

struct Minted {
    value: HeaderValue,
    exp: u64,
}

/// Signs and caches assertions; built once at start from validated settings.
pub struct Signer {
    key: EncodingKey,
    header: Header,
    jwks: String,
    issuer: String,
    audience: String,
    lifetime: Duration,
    cache: moka::future::Cache<CacheKey, Arc<Minted>>,
    metrics: Arc<Metrics>,
}

impl Signer {
    pub fn new(settings: &AssertionSettings, issuer: &url::Url, metrics: Arc<Metrics>) -> Self {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(settings.key.kid().to_owned());
        let jwks = serde_json::json!({ "keys": [settings.key.jwk()] }).to_string();
        Self {
            key: EncodingKey::from_ec_der(settings.key.pkcs8()),
            header,
            jwks,
            issuer: issuer.as_str().trim_end_matches('/').to_owned(),
            audience: settings.audience.clone(),
            lifetime: settings.lifetime,
            cache: moka::future::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(settings.lifetime.saturating_sub(MIN_REMAINING))
                .build(),
            metrics,
        }
    }

    /// The `X-Rocketgate-Assertion` value for this session: cached while it has at least
    /// [`MIN_REMAINING`] left, signed afresh otherwise.
    pub async fn for_session(&self, session: &Session) -> Result<HeaderValue, AssertionError> {
        let key = CacheKey {
            user: session.identity.user.clone(),
            token: Sha256::digest(session.tokens.access_token.as_bytes()).into(),
        };
        let now = unix_now();
        if let Some(minted) = self.cache.get(&key).await
            && minted.exp >= now.saturating_add(MIN_REMAINING.as_secs())
        {
            self.metrics.assertion_cache(CacheResult::Hit);
            return Ok(minted.value.clone());
        }
        self.metrics.assertion_cache(CacheResult::Miss);
        let minted = Arc::new(self.sign(session, now)?);
        self.cache.insert(key, minted.clone()).await;
        Ok(minted.value.clone())
    }

    fn sign(&self, session: &Session, now: u64) -> Result<Minted, AssertionError> {
        let id = &session.identity;
        let exp = now.saturating_add(self.lifetime.as_secs());
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: &id.user,
            email: id.email.as_deref(),
            preferred_username: id.preferred_username.as_deref(),
            iat: now,
            exp,
            jti: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
        };
        let jwt = jsonwebtoken::encode(&self.header, &claims, &self.key)
            .map_err(|e| AssertionError::Sign(e.to_string()))?;
        let value = HeaderValue::from_str(&jwt).map_err(|e| AssertionError::Sign(e.to_string()))?;
        Ok(Minted { value, exp })
    }

    /// `GET /oauth2/jwks.json`: the public key, cacheable for five minutes.
    pub fn jwks_response(&self) -> Response<Body> {
        let mut response = Response::new(body::full(self.jwks.clone()));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, jwk::Jwk};

    fn settings() -> AssertionSettings {
        AssertionSettings {
            lifetime: Duration::from_secs(300),
            audience: "app.internal".into(),
            key: SigningKey::generate().unwrap(),
            generated_key: true,
        }
    }

    fn session(user: &str, token: &str) -> Session {
        let mut s = crate::testkit::sample_session();
        s.identity.user = user.into();
        s.identity.preferred_username = None;
        s.tokens.access_token = token.into();
        s
    }

    /// Also the first use of jsonwebtoken in the crate's tests: it panics at first use when
    /// no crypto backend feature (or two) is selected, and this would catch it.
    #[tokio::test]
    async fn signs_verifiable_assertions_and_caches_them_per_session() {
        let metrics = Arc::new(Metrics::new());
        let settings = settings();
        let issuer = url::Url::parse("https://gate.example.com").unwrap();
        let signer = Signer::new(&settings, &issuer, metrics.clone());

        let first = signer.for_session(&session("1001", "t1")).await.unwrap();
        let again = signer.for_session(&session("1001", "t1")).await.unwrap();
        let other = signer.for_session(&session("1002", "t1")).await.unwrap();
        let refreshed = signer.for_session(&session("1001", "t2")).await.unwrap();
        assert_eq!(first, again);
        assert_ne!(first, other);
        assert_ne!(first, refreshed);
        let text = metrics.encode();
        assert!(text.contains("result=\"hit\"} 1"), "{text}");
        assert!(text.contains("result=\"miss\"} 3"), "{text}");

        let jwks: serde_json::Value = serde_json::from_str(&signer.jwks).unwrap();
        let jwk: Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["app.internal"]);
        validation.set_issuer(&["https://gate.example.com"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            first.to_str().unwrap(),
            &DecodingKey::from_jwk(&jwk).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(data.header.kid.as_deref(), Some(settings.key.kid()));
        assert_eq!(data.claims["sub"], "1001");
        assert_eq!(data.claims["email"], "ada@example.com");
        assert!(data.claims.get("preferred_username").is_none());
        assert_eq!(
            data.claims["exp"].as_u64().unwrap() - data.claims["iat"].as_u64().unwrap(),
            300
        );
    }

    #[test]
    fn jwks_is_public_and_cacheable() {
        let signer = Signer::new(
            &settings(),
            &url::Url::parse("https://gate.example.com").unwrap(),
            Arc::new(Metrics::new()),
        );
        let response = signer.jwks_response();
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=300"
        );
    }
}

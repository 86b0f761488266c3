//! Typed, validated settings.
//!
//! The user's TOML (plus environment overrides) is read into [`raw::RawConfig`], then
//! [`validate`] turns it into a [`Config`] or into *every* problem it found, each named by
//! its key. Nothing downstream re-checks a value: if a `Config` exists, it is usable.

mod load;
mod pages;
pub mod raw;
mod store;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::access::{EmailPolicy, RedirectPolicy, SkipRoutes};
use crate::assertion::SigningKey;
use crate::forwarded::TrustedProxies;
use crate::tls::CaBundle;

pub use load::{load, load_from_str};

/// Rocketpunch's production endpoints, the defaults for `[provider]`.
pub const DEFAULT_AUTHORIZE_URL: &str = "https://www.rocketpunch.com/oauth/authorize";
pub const DEFAULT_TOKEN_URL: &str = "https://www.rocketpunch.com/oauth/token";
pub const DEFAULT_PROFILE_URL: &str = "https://openapi.rocketpunch.com/api/v1/profiles/me";

/// A validated configuration: the only way to get one is [`load`] or [`load_from_str`].
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub upstream: Url,
    /// How long to wait for the upstream's response headers before answering 504.
    pub upstream_timeout: Duration,
    pub public_url: Url,
    pub shutdown_delay: Duration,
    pub shutdown_timeout: Duration,
    pub log_format: LogFormat,
    /// A separate listener for `/metrics`; when set, the main listener proxies `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: TrustedProxies,
    pub provider: ProviderSettings,
    pub cookie: CookieSettings,
    pub session: SessionSettings,
    pub access: AccessSettings,
    pub headers: HeaderSettings,
    pub limits: Limits,
    /// Extra roots for an https upstream signed by a private CA (`upstream_ca_file`).
    pub upstream_ca: CaBundle,
    /// `[tls]`: serve HTTPS on `listen` instead of plain HTTP.
    pub tls: Option<TlsSettings>,
    pub pages: crate::pages::PageSettings,
    /// Signed identity for the upstream; `None` when `assertion.enabled = false`.
    pub assertion: Option<AssertionSettings>,
    pub admin: AdminSettings,
}

impl Config {
    /// `public_url` + `/oauth2/callback`: what Rocketpunch must have registered.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/oauth2/callback",
            self.public_url.as_str().trim_end_matches('/')
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub client_id: String,
    pub client_secret: Secret,
    pub authorize_url: Url,
    pub token_url: Url,
    pub profile_url: Url,
    pub scopes: Vec<String>,
    /// Bound on every call to Rocketpunch; a slow provider must not hold a login forever.
    pub timeout: Duration,
    /// PKCE (S256) on every login; only for providers that reject it.
    pub pkce: bool,
    /// Extra roots for a provider (or a proxy in front of it) with a private CA.
    pub ca: CaBundle,
    /// Rocketpunch's signing keys, for verifying access tokens that API clients present.
    pub jwks_url: Option<Url>,
    /// When set, a presented access token's `iss` must equal it.
    pub issuer: Option<String>,
    pub claims: ClaimPointers,
}

/// RFC 6901 JSON pointers into the profile response, already checked to be well formed.
#[derive(Debug, Clone)]
pub struct ClaimPointers {
    pub user: String,
    pub email: String,
    pub preferred_username: String,
}

#[derive(Debug)]
pub struct CookieSettings {
    pub name: String,
    /// Sealing keys: the first encrypts, all decrypt (rotation without logging anyone out).
    pub keys: Vec<cookie::Key>,
    pub secure: bool,
    pub same_site: cookie::SameSite,
    /// Max-Age of the session cookie and the absolute lifetime of a session.
    pub expire: Duration,
    /// `Domain` of every cookie (lower case, no leading dot); `None`: host-only cookies.
    pub domain: Option<String>,
}

/// Where sessions live.
#[derive(Debug)]
pub enum SessionStoreKind {
    /// The whole session, sealed, in the browser's cookie: no server state at all.
    Cookie,
    /// The cookie holds a ticket; the session, encrypted with the ticket's key, is in Redis.
    Redis(RedisSettings),
}

/// `session.redis_*`: how to reach Redis and how sessions are kept there.
#[derive(Debug)]
pub struct RedisSettings {
    pub target: RedisTarget,
    /// From `redis_password_file`; applies to every Redis server (sentinels are reached with
    /// the credentials in their own URLs).
    pub password: Option<Secret>,
    /// Prefix of every key rocketgate writes, so one Redis can serve several deployments.
    pub prefix: String,
    /// Bound on one Redis round trip; past it the request gets 503 and keeps its session.
    pub timeout: Duration,
    /// How long a session read from Redis is reused by this process without asking again.
    /// Sign-out and revocation on another replica take effect here within this time.
    pub cache_ttl: Duration,
}

/// One server, a cluster, or a master found through sentinels. URLs may carry credentials,
/// so they are kept as secrets and never logged whole.
#[derive(Debug)]
pub enum RedisTarget {
    Standalone(Secret),
    Cluster(Vec<Secret>),
    Sentinel {
        sentinels: Vec<Secret>,
        master: String,
    },
}

impl RedisTarget {
    /// What to log about the target: mode and host:port pairs, never credentials.
    pub fn describe(&self) -> String {
        let hosts = |urls: &[Secret]| {
            urls.iter()
                .map(|u| redis_host(u.expose()))
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            RedisTarget::Standalone(url) => format!("redis {}", redis_host(url.expose())),
            RedisTarget::Cluster(nodes) => format!("redis cluster {}", hosts(nodes)),
            RedisTarget::Sentinel { sentinels, master } => {
                format!("redis sentinel {} master {master}", hosts(sentinels))
            }
        }
    }
}

fn redis_host(url: &str) -> String {
    Url::parse(url).map_or_else(
        |_| "(unparsable)".to_owned(),
        |u| {
            format!(
                "{}://{}:{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port().unwrap_or(6379)
            )
        },
    )
}

/// `[admin]`: the bearer token that guards `/oauth2/admin/*`; `None` turns the path off.
#[derive(Debug, Default)]
pub struct AdminSettings {
    pub token: Option<Secret>,
}

#[derive(Debug)]
pub struct SessionSettings {
    pub store: SessionStoreKind,
    pub refresh_before: Duration,
    /// Re-read the profile on refresh so a changed email or lost permission takes effect.
    pub refresh_profile: bool,
    /// How long a just-rotated cookie is still served from the refresh it caused.
    pub rotation_grace: Duration,
}

impl SessionSettings {
    pub fn redis(&self) -> Option<&RedisSettings> {
        match &self.store {
            SessionStoreKind::Redis(settings) => Some(settings),
            SessionStoreKind::Cookie => None,
        }
    }
}

#[derive(Debug)]
pub struct AccessSettings {
    pub emails: EmailPolicy,
    pub skip_routes: SkipRoutes,
    pub redirects: RedirectPolicy,
    /// Requests without a session may authenticate with `Authorization: Bearer <Rocketpunch
    /// JWT access token>`, verified against `provider.jwks_url`.
    pub accept_bearer_tokens: bool,
}

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

#[derive(Debug, Clone, Copy)]
pub struct HeaderSettings {
    pub pass_access_token: bool,
    pub pass_authorization_header: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Slowloris guard: once a request starts arriving, its headers must be complete within this.
    pub header_read_timeout: Duration,
    /// A keep-alive connection is closed once this long has passed since its last response
    /// was sent with no new request.
    pub idle_timeout: Duration,
    /// Largest request head (request line + headers) accepted; larger gets 431.
    pub max_header_bytes: usize,
    pub max_connections: usize,
    /// Logins one browser may have in progress at once (each holds a CSRF cookie).
    pub max_logins_per_client: usize,
}

/// The listener's certificate files. The pair was read and checked when the configuration
/// was validated; the files themselves stay the source of truth so rotations are picked up.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// How often the files are checked for a new certificate.
    pub reload_interval: Duration,
}

/// A secret string that never prints itself.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One problem in the configuration, named by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a configuration was refused: every problem found, not just the first.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Read(String),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigProblem>),
}

impl ConfigError {
    /// The problems, one per key, for tests and `check-config`.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        match self {
            ConfigError::Read(message) => vec![ConfigProblem {
                key: "(file)".into(),
                message: message.clone(),
            }],
            ConfigError::Invalid(problems) => problems.clone(),
        }
    }
}

#[cfg(test)]
mod tests;

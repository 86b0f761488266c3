//! Typed, validated settings.
//!
//! The user's TOML (plus environment overrides) is read into [`raw::RawConfig`], then
//! [`validate`] turns it into a [`Config`] or into *every* problem it found, each named by
//! its key. Nothing downstream re-checks a value: if a `Config` exists, it is usable.

mod access;
mod admin;
mod assertion;
mod cookie;
mod keys;
mod load;
mod pages;
mod problems;
mod provider;
pub mod raw;
pub mod reload;
mod routes;
mod schema;
mod tracing;

pub use schema::OAUTH2_PROXY_NAMES;
mod server;
mod session;
mod validate;

use std::fmt;
use std::net::SocketAddr;

use std::time::Duration;

use url::Url;

use crate::access::{EmailPolicy, Groups, RedirectPolicy, SkipRoutes};
pub use crate::assertion::AssertionSettings;
use crate::forwarded::TrustedProxies;
pub use crate::identity::ClaimHeaders;
use crate::routes::Routes;
use crate::tls::CaBundle;
pub use crate::tls::TlsSettings;

pub use crate::identity::HeaderSettings;
pub use crate::logging::LogFormat;
pub use crate::oauth::{ClaimPointers, ProviderSettings};
pub use crate::secret::Secret;
pub use crate::session::redis::{RedisSettings, RedisTarget};
pub use load::{
    from_raw, key_problems, load, load_from_str, load_raw, load_raw_from_file_text,
    load_raw_from_str,
};
pub use provider::{DEFAULT_AUTHORIZE_URL, DEFAULT_PROFILE_URL, DEFAULT_TOKEN_URL};
pub use routes::DEFAULT_ROUTE_NAME;

/// A validated configuration: the only way to get one is [`load`] or [`load_from_str`].
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// The top-level `upstream`: the default route, optional once `[[routes]]` exist.
    pub upstream: Option<Url>,
    /// `[[routes]]` in order, then the default route (the top-level `upstream`).
    pub routes: Routes<Url>,
    /// `[groups]`.
    pub groups: Groups,
    /// `[headers.claims]`.
    pub claim_headers: ClaimHeaders,
    /// How often the file is checked for changes; zero: only on SIGHUP.
    pub config_reload_interval: Duration,
    /// Valid but suspicious settings (a route that never matches), for `check-config` and
    /// the start-up log.
    pub warnings: Vec<ConfigProblem>,
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
    /// `[tracing]`: trace context is always propagated; spans are exported with an endpoint.
    pub tracing: crate::trace::TracingSettings,
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

#[derive(Debug)]
pub struct CookieSettings {
    pub name: String,
    /// Sealing keys: the first encrypts, all decrypt (rotation without logging anyone out).
    pub keys: Vec<::cookie::Key>,
    pub secure: bool,
    pub same_site: ::cookie::SameSite,
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

/// One problem in the configuration, named by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
    /// Where in the file (`rocketgate.toml:12:5`), for syntax errors and unknown keys.
    pub at: Option<String>,
}

impl ConfigProblem {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            message: message.into(),
            at: None,
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
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
            ConfigError::Read(message) => vec![ConfigProblem::new("(file)", message.clone())],
            ConfigError::Invalid(problems) => problems.clone(),
        }
    }
}

#[cfg(test)]
mod tests;

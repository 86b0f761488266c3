//! The configuration as written by the user, before validation.
//!
//! Every field is optional or defaulted here so that *all* problems can be
//! found in one pass by `validate` instead of stopping at the first missing key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub upstream_timeout: Option<String>,
    pub public_url: Option<String>,
    pub shutdown_delay: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub log_format: Option<String>,
    pub trusted_proxies: Vec<String>,
    pub upstream_ca_file: Option<String>,
    pub metrics_listen: Option<String>,
    pub config_reload_interval: Option<String>,
    pub routes: Vec<RawRoute>,
    pub groups: BTreeMap<String, RawGroup>,
    pub provider: RawProvider,
    pub cookie: RawCookie,
    pub session: RawSession,
    pub access: RawAccess,
    pub headers: RawHeaders,
    pub limits: RawLimits,
    pub tls: RawTls,
    pub pages: RawPages,
    pub assertion: RawAssertion,
    pub admin: RawAdmin,
    pub tracing: RawTracing,
}

/// One `[[routes]]` entry.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRoute {
    pub host: Option<String>,
    pub path: Option<String>,
    pub upstream: Option<String>,
    pub allowed_groups: Vec<String>,
    pub allowed_emails: Vec<String>,
    pub allowed_email_domains: Vec<String>,
    pub public: Option<bool>,
    pub strip_prefix: Option<bool>,
    pub preserve_host: Option<bool>,
}

/// One `[groups]` entry.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawGroup {
    pub emails: Vec<String>,
    pub email_domains: Vec<String>,
    pub users: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawProvider {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub profile_url: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub timeout: Option<String>,
    pub pkce: Option<bool>,
    pub ca_file: Option<String>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub claims: RawClaims,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawClaims {
    pub user: Option<String>,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    pub groups: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawCookie {
    pub name: Option<String>,
    pub secret: Option<String>,
    pub secret_file: Option<String>,
    pub secrets: Option<Vec<String>>,
    pub secure: Option<bool>,
    pub same_site: Option<String>,
    pub expire: Option<String>,
    pub domain: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSession {
    pub store: Option<String>,
    pub refresh_before: Option<String>,
    pub refresh_profile: Option<bool>,
    pub rotation_grace: Option<String>,
    pub redis_url: Option<String>,
    pub redis_url_file: Option<String>,
    pub redis_password_file: Option<String>,
    pub redis_cluster_nodes: Vec<String>,
    pub redis_sentinels: Vec<String>,
    pub redis_sentinel_master: Option<String>,
    pub redis_prefix: Option<String>,
    pub redis_timeout: Option<String>,
    pub redis_min_replicas: Option<u32>,
    pub cache_ttl: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawTracing {
    pub otlp_endpoint: Option<String>,
    pub sample_ratio: Option<f64>,
    pub service_name: Option<String>,
    pub resource_attributes: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAdmin {
    pub token: Option<String>,
    pub token_file: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAccess {
    pub allowed_emails: Vec<String>,
    pub allowed_emails_file: Option<String>,
    pub allowed_email_domains: Vec<String>,
    pub skip_auth_routes: Vec<String>,
    pub redirect_domains: Vec<String>,
    pub accept_bearer_tokens: Option<bool>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawHeaders {
    pub pass_access_token: Option<bool>,
    pub pass_authorization_header: Option<bool>,
    pub claims: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLimits {
    pub header_read_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_header_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_logins_per_client: Option<usize>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawTls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub reload_interval: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawPages {
    pub sign_in_page: Option<bool>,
    pub app_name: Option<String>,
    pub footer: Option<String>,
    pub logo_file: Option<String>,
    pub templates_dir: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAssertion {
    pub enabled: Option<bool>,
    pub lifetime: Option<String>,
    pub audience: Option<String>,
    pub key_file: Option<String>,
    pub algorithm: Option<String>,
}

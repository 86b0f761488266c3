//! `[provider]` as the client uses it, validated by `config`.

use std::time::Duration;

use url::Url;

use crate::secret::Secret;
use crate::tls::CaBundle;

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
    /// `provider.claims.groups`: a list of strings (or one string) naming the user's groups.
    pub groups: Option<String>,
    /// The pointers `[headers.claims]` reads, kept in the session so refreshes update them.
    pub extra: Vec<String>,
}

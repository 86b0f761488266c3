//! `[provider]`: Rocketpunch's endpoints, the client, claims, and what calls to it may take.

use super::problems::{Problems, ca_bundle, duration, http_url, read_secret_file, required};
use super::raw::RawProvider;
use super::{ClaimPointers, ProviderSettings, Secret};

/// Rocketpunch's production endpoints.
pub const DEFAULT_AUTHORIZE_URL: &str = "https://www.rocketpunch.com/oauth/authorize";
pub const DEFAULT_TOKEN_URL: &str = "https://www.rocketpunch.com/oauth/token";
pub const DEFAULT_PROFILE_URL: &str = "https://openapi.rocketpunch.com/api/v1/profiles/me";
/// The scopes the guide lists: the profile and its email.
pub const DEFAULT_SCOPES: [&str; 2] = ["profile:read", "profile:email"];
pub const DEFAULT_TIMEOUT: &str = "10s";
/// Where the profile keeps each claim (tried under `/data` too when it is wrapped).
pub const DEFAULT_USER_CLAIM: &str = "/id";
pub const DEFAULT_EMAIL_CLAIM: &str = "/email";
pub const DEFAULT_USERNAME_CLAIM: &str = "/username";

pub(super) fn validate(p: &mut Problems, raw: RawProvider) -> Option<ProviderSettings> {
    let client_id = required(p, "provider.client_id", raw.client_id.as_deref()).map(str::to_owned);
    let client_secret = match (raw.client_secret, raw.client_secret_file) {
        (Some(_), Some(_)) => {
            p.add(
                "provider.client_secret",
                "set either client_secret or client_secret_file, not both",
            );
            None
        }
        (Some(s), None) if !s.trim().is_empty() => Some(Secret::new(s.trim().to_owned())),
        (None, Some(path)) => p
            .take("provider.client_secret_file", read_secret_file(&path))
            .map(Secret::new),
        _ => {
            p.add(
                "provider.client_secret",
                "is required (or provider.client_secret_file, or RP_CLIENT_SECRET)",
            );
            None
        }
    };
    let mut url = |key: &str, value: Option<String>, default: &str| {
        let text = value.unwrap_or_else(|| default.to_owned());
        p.take(key, http_url(&text))
    };
    let authorize_url = url(
        "provider.authorize_url",
        raw.authorize_url,
        DEFAULT_AUTHORIZE_URL,
    );
    let token_url = url("provider.token_url", raw.token_url, DEFAULT_TOKEN_URL);
    let profile_url = url("provider.profile_url", raw.profile_url, DEFAULT_PROFILE_URL);
    let scopes = raw
        .scopes
        .unwrap_or_else(|| DEFAULT_SCOPES.map(str::to_owned).to_vec());
    if scopes.iter().any(|s| {
        s.is_empty()
            || s.chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    }) {
        p.add(
            "provider.scopes",
            "each scope must be a non-empty word without spaces, quotes or backslashes",
        );
    }
    let timeout = duration(p, "provider.timeout", &raw.timeout, DEFAULT_TIMEOUT);
    let ca = ca_bundle(p, "provider.ca_file", raw.ca_file.as_deref());
    let jwks_url = raw
        .jwks_url
        .and_then(|u| p.take("provider.jwks_url", http_url(&u)));
    let issuer = match raw.issuer {
        Some(i) if i.trim().is_empty() => {
            p.add("provider.issuer", "must not be empty when set");
            None
        }
        other => other.map(|i| i.trim().to_owned()),
    };
    let mut pointer = |key: &str, value: Option<String>, default: &str| {
        let text = value.unwrap_or_else(|| default.to_owned());
        if text.starts_with('/') {
            Some(text)
        } else {
            p.add(
                key,
                format!("must be a JSON pointer starting with '/', like \"/id\", got {text:?}"),
            );
            None
        }
    };
    let claims = ClaimPointers {
        user: pointer("provider.claims.user", raw.claims.user, DEFAULT_USER_CLAIM)?,
        email: pointer(
            "provider.claims.email",
            raw.claims.email,
            DEFAULT_EMAIL_CLAIM,
        )?,
        preferred_username: pointer(
            "provider.claims.preferred_username",
            raw.claims.preferred_username,
            DEFAULT_USERNAME_CLAIM,
        )?,
        groups: match raw.claims.groups {
            Some(text) => Some(pointer("provider.claims.groups", Some(text), "")?),
            None => None,
        },
        extra: Vec::new(),
    };
    Some(ProviderSettings {
        client_id: client_id?,
        client_secret: client_secret?,
        authorize_url: authorize_url?,
        token_url: token_url?,
        profile_url: profile_url?,
        scopes,
        timeout: timeout?,
        pkce: raw.pkce.unwrap_or(true),
        ca: ca?,
        jwks_url,
        issuer,
        claims,
    })
}

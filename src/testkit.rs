//! Fixtures shared by unit tests, integration tests, benches and fuzz targets, so that a
//! session or a codec means the same thing in each: one sample session, one codec builder.
//! Compiled for tests and with the `testkit` feature only; never in what ships.

use std::time::Duration;

use cookie::{Key, SameSite};

use crate::session::{CookieCodec, Identity, Sealer, Session, Tokens};

/// The cookie name the fixtures use.
pub const COOKIE_NAME: &str = "_rocketgate";

/// Ada, signed in at `created_at`, with an access token of `token_len` bytes that expires at
/// `expires_at`, and a refresh token.
pub fn session_with(token_len: usize, expires_at: Option<u64>, created_at: u64) -> Session {
    Session::new(
        Identity {
            user: "1001".into(),
            email: Some("ada@example.com".into()),
            preferred_username: Some("ada".into()),
            ..Identity::default()
        },
        Tokens {
            access_token: "a".repeat(token_len),
            refresh_token: Some("r".into()),
            expires_at,
            issued_at: None,
        },
        created_at,
    )
}

/// The sample session: Ada, a short access token, a refresh token, no expiry in sight.
pub fn sample_session() -> Session {
    session_with(10, Some(1_700_003_600), 1_700_000_000)
}

/// A codec for `name` sealing with the first of `keys` (all of them open), Secure, Lax,
/// one hour.
pub fn codec_with(name: &str, keys: Vec<Key>) -> CookieCodec {
    CookieCodec::new(
        name.to_owned(),
        Sealer::new(keys),
        true,
        SameSite::Lax,
        Duration::from_secs(3600),
    )
}

/// The usual codec: [`COOKIE_NAME`], one fixed key.
pub fn codec() -> CookieCodec {
    codec_with(COOKIE_NAME, vec![Key::derive_from(&[1; 32])])
}

/// Provider settings for a stand-in at `base` (`http://host:port`): the demo's client, the
/// stand-in's paths, default claims, PKCE on, a 5 s timeout.
pub fn provider_settings(base: &str) -> crate::config::ProviderSettings {
    let url = |path: &str| {
        url::Url::parse(&format!("{base}{path}")).unwrap_or_else(|_| {
            url::Url::parse("http://127.0.0.1:9/").expect("a literal URL parses")
        })
    };
    crate::config::ProviderSettings {
        client_id: "demo-client".into(),
        client_secret: crate::config::Secret::new("demo-secret".into()),
        authorize_url: url("/oauth/authorize"),
        token_url: url("/oauth/token"),
        profile_url: url("/api/v1/profiles/me"),
        scopes: vec!["profile:read".into(), "profile:email".into()],
        timeout: Duration::from_secs(5),
        pkce: true,
        ca: crate::tls::CaBundle::default(),
        jwks_url: None,
        issuer: None,
        claims: crate::config::ClaimPointers {
            user: "/id".into(),
            email: "/email".into(),
            preferred_username: "/username".into(),
            groups: None,
            extra: Vec::new(),
        },
    }
}

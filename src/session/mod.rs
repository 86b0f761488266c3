//! The signed-in user's session and how it travels in cookies.
//!
//! A [`Session`] cannot exist without an [`Identity`]; tokens and timestamps ride along so
//! the proxy can refresh before expiry and enforce an absolute lifetime.

mod codec;
mod cookies;
mod prehashed;
pub mod redis;
mod refresh_error;
mod seal;
mod store;
mod ticket;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use codec::{CookieCodec, Opened};
pub use cookies::{RequestCookies, strip_cookies};
pub(crate) use prehashed::PrehashedKeys;
pub use refresh_error::RefreshError;
pub use seal::{KeyAge, Sealer};
pub use store::{Handle, Loaded, Sessions, StoreError};
pub use ticket::Ticket;

/// Who the user is, as Rocketpunch's profile said at sign-in (or at the last refresh).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The stable user id; never empty.
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Groups Rocketpunch reported (`provider.claims.groups`); the named `[groups]` are
    /// decided per request, not stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Profile values that `[headers.claims]` sends upstream, by JSON pointer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
}

/// Rocketpunch's tokens for this user.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix seconds at which the access token expires, from `expires_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Unix seconds at which these tokens were issued, to know the access token's lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<u64>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .field("issued_at", &self.issued_at)
            .finish()
    }
}

/// The current format of a sealed session; older or newer payloads are treated as no session.
pub const SESSION_FORMAT: u8 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "v")]
    version: u8,
    #[serde(rename = "id")]
    pub identity: Identity,
    #[serde(rename = "tk")]
    pub tokens: Tokens,
    /// Unix seconds of sign-in: the start of the absolute lifetime.
    #[serde(rename = "ct")]
    pub created_at: u64,
    /// A random name for this sign-in, the same across refreshes: what the refresher keeps a
    /// cookie session's newest tokens under when a front proxy may not pass the rewritten
    /// cookie on. Empty for sessions sealed before it existed, and for bearer tokens.
    #[serde(rename = "sid", default, skip_serializing_if = "String::is_empty")]
    pub sid: String,
}

impl Session {
    pub fn new(identity: Identity, tokens: Tokens, created_at: u64) -> Self {
        Self {
            version: SESSION_FORMAT,
            identity,
            tokens,
            created_at,
            sid: String::new(),
        }
    }

    /// A session for a new sign-in, with a fresh [`Session::sid`].
    pub fn signed_in(identity: Identity, tokens: Tokens, created_at: u64) -> Self {
        let id: [u8; 16] = rand::random();
        Self {
            sid: id.iter().map(|b| format!("{b:02x}")).collect(),
            ..Self::new(identity, tokens, created_at)
        }
    }

    /// The same sign-in with new tokens (and identity): sign-in time and `sid` kept.
    pub fn renewed(&self, identity: Identity, tokens: Tokens) -> Self {
        Self {
            identity,
            tokens,
            ..self.clone()
        }
    }

    /// A session past `lifetime` since sign-in is over, whatever its tokens say.
    pub fn is_expired(&self, now: u64, lifetime: Duration) -> bool {
        now >= self.created_at.saturating_add(lifetime.as_secs())
    }

    pub(crate) fn from_json(bytes: &[u8]) -> Option<Self> {
        let session: Session = serde_json::from_slice(bytes).ok()?;
        (session.version == SESSION_FORMAT && !session.identity.user.is_empty()).then_some(session)
    }
}

/// Seconds since the Unix epoch; a clock before 1970 reads as 0 rather than failing.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let mut s = crate::testkit::session_with(2, Some(10), 100);
        s.tokens.access_token = "at".into();
        s.tokens.refresh_token = Some("rt".into());
        s
    }

    #[test]
    fn absolute_lifetime_counts_from_sign_in() {
        let s = session();
        assert!(!s.is_expired(100 + 59, Duration::from_secs(60)));
        assert!(s.is_expired(100 + 60, Duration::from_secs(60)));
    }

    #[test]
    fn json_round_trip_and_refusals() {
        let s = session();
        let json = serde_json::to_vec(&s).unwrap();
        assert_eq!(Session::from_json(&json), Some(s.clone()));
        let other_version = String::from_utf8(json.clone())
            .unwrap()
            .replace("\"v\":1", "\"v\":2");
        assert_eq!(Session::from_json(other_version.as_bytes()), None);
        let no_user = String::from_utf8(json)
            .unwrap()
            .replace("\"user\":\"1001\"", "\"user\":\"\"");
        assert_eq!(Session::from_json(no_user.as_bytes()), None);
        assert_eq!(Session::from_json(b"not json"), None);
    }

    #[test]
    fn tokens_never_print() {
        let printed = format!("{:?}", session());
        assert!(
            !printed.contains("\"at\"") && !printed.contains("rt\""),
            "{printed}"
        );
    }
}

//! Login state: the `state` parameter and the CSRF cookie that binds it to one browser.
//!
//! Each login gets its own cookie, named after a hash of its state, so logins started in
//! several tabs at once do not overwrite each other.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Ways a sign-in fails at the callback, before or at the code exchange, that are the
/// browser's to retry rather than an outage.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("callback without a code")]
    MissingCode,
    #[error("unknown, expired or replayed state")]
    InvalidState,
    #[error("the user did not grant access")]
    Denied { retry: String },
    /// Rocketpunch refused the code (`invalid_grant`: expired, already used, or made up):
    /// a sign-in to start again, not an outage.
    #[error("Rocketpunch refused the authorization code")]
    CodeRejected { retry: String },
}

/// What the CSRF cookie holds (sealed): the state to compare and where to go afterwards.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginState {
    pub state: String,
    pub rd: String,
    /// Unix seconds when the login started.
    pub iat: u64,
    /// The PKCE code verifier, when PKCE is on: only this browser's cookie knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
}

/// The S256 code challenge for `verifier` (RFC 7636 §4.2).
pub fn code_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// 256 random bits, URL-safe: for `state` and anything else that must be unguessable.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `<cookie>_csrf_<16 hex of sha256(state)>`: unique per login, reveals nothing of the state.
pub fn csrf_cookie_name(cookie_name: &str, state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    let mut name = format!("{cookie_name}_csrf_");
    for byte in &digest[..8] {
        name.push_str(&format!("{byte:02x}"));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
    }

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn csrf_names_differ_per_state() {
        let a = csrf_cookie_name("_rg", "one");
        assert!(a.starts_with("_rg_csrf_") && a.len() == "_rg_csrf_".len() + 16);
        assert_ne!(a, csrf_cookie_name("_rg", "two"));
    }
}

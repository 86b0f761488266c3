//! Authorization codes, access tokens and refresh tokens.
//!
//! All opaque random strings kept in memory. Every token belongs to a
//! *family* (everything descended from one authorization code through refresh
//! rotation), so replaying a used code can revoke what that code produced.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::responses::OAuthError;

/// The 64 URL-safe characters; a random byte masked to 6 bits picks one
/// uniformly, so tokens of any exact length are easy to mint.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// 32 chars × 6 bits = 192 bits of entropy for codes.
const CODE_LEN: usize = 32;
/// Refresh tokens are long opaque strings on Rocketpunch too.
const REFRESH_LEN: usize = 80;
/// Used codes are kept this long after expiry so a replay is still recognised
/// (and punished) rather than reported as unknown.
const USED_CODE_RETENTION: Duration = Duration::from_secs(600);

/// `now + ttl`, saturating instead of panicking on absurd TTLs.
fn later(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

/// A random URL-safe string of exactly `len` characters from the OS-seeded CSPRNG.
pub(super) fn random_token(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect()
}

/// PKCE transformation requested at authorization time (RFC 7636 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChallengeMethod {
    Plain,
    S256,
}

impl ChallengeMethod {
    /// Parses `code_challenge_method`; absent means `plain` per RFC 7636.
    pub(super) fn parse(value: Option<&str>) -> Option<Self> {
        match value {
            None | Some("plain") => Some(Self::Plain),
            Some("S256") => Some(Self::S256),
            Some(_) => None,
        }
    }

    fn verify(self, challenge: &str, verifier: &str) -> bool {
        let expected = match self {
            Self::Plain => verifier.to_owned(),
            Self::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        };
        bool::from(expected.as_bytes().ct_eq(challenge.as_bytes()))
    }
}

/// What the consent step approved; becomes a code.
#[derive(Clone, Debug)]
pub(super) struct Approval {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: &'static str,
    pub scope: String,
    pub challenge: Option<(String, ChallengeMethod)>,
}

#[derive(Debug)]
struct CodeRecord {
    approval: Approval,
    expires_at: Instant,
    /// Set on first successful exchange; holds the family it started.
    redeemed_family: Option<u64>,
}

#[derive(Debug)]
pub(super) struct AccessRecord {
    pub user_id: &'static str,
    pub scope: String,
    expires_at: Instant,
    family: u64,
}

#[derive(Debug)]
struct RefreshRecord {
    client_id: String,
    user_id: &'static str,
    scope: String,
    access_token: String,
    family: u64,
}

/// A freshly minted token pair, ready for the token response.
#[derive(Debug, Clone)]
pub(super) struct TokenSet {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub scope: String,
}

/// How tokens are minted, copied from the stand-in's options.
#[derive(Clone, Copy)]
pub(super) struct Minting<'a> {
    pub access_ttl: Duration,
    pub access_len: usize,
    /// Set: access tokens are JWTs signed with this key (`access_len` does not apply).
    pub jwt: Option<JwtMinting<'a>>,
}

/// What a JWT access token needs besides the user.
#[derive(Clone, Copy)]
pub(super) struct JwtMinting<'a> {
    pub key: &'a super::jwt::SigningKey,
    pub issuer: &'a str,
    pub audience: &'a str,
}

impl JwtMinting<'_> {
    /// The token league/oauth2-server would issue, plus the profile claims API clients want.
    fn token(&self, user_id: &str, scope: &str, ttl: Duration) -> Option<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let user = super::StandIn::user(user_id);
        let claims = serde_json::json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(ttl.as_secs()),
            "jti": random_token(32),
            "scope": scope,
            "email": user.map(|u| u.email),
            "preferred_username": user.map(|u| u.username),
        });
        self.key.sign(&claims)
    }
}

/// What the token endpoint received for `grant_type=authorization_code`.
#[derive(Debug)]
pub(super) struct CodeExchange<'a> {
    pub client_id: &'a str,
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub code_verifier: Option<&'a str>,
}

/// Revoked tokens are simply forgotten: to a client, "revoked" and "unknown"
/// look the same on every endpoint.
#[derive(Debug, Default)]
pub(super) struct Store {
    codes: HashMap<String, CodeRecord>,
    access: HashMap<String, AccessRecord>,
    refresh: HashMap<String, RefreshRecord>,
    next_family: u64,
    /// Every code and token ever issued, for tests that check none of them leaks (logs).
    issued: Vec<String>,
}

impl Store {
    pub(super) fn issued(&self) -> Vec<String> {
        self.issued.clone()
    }

    /// Stores a new single-use code valid for `ttl` and returns it.
    pub(super) fn issue_code(&mut self, approval: Approval, ttl: Duration) -> String {
        let now = Instant::now();
        self.codes
            .retain(|_, c| later(c.expires_at, USED_CODE_RETENTION) > now);
        self.access.retain(|_, a| a.expires_at > now);
        let code = random_token(CODE_LEN);
        self.issued.push(code.clone());
        self.codes.insert(
            code.clone(),
            CodeRecord {
                approval,
                expires_at: later(now, ttl),
                redeemed_family: None,
            },
        );
        code
    }

    /// The authorization-code grant, with league's checks and hints.
    pub(super) fn redeem_code(
        &mut self,
        req: &CodeExchange<'_>,
        minting: Minting<'_>,
    ) -> Result<TokenSet, OAuthError> {
        let record = self
            .codes
            .get(req.code)
            .ok_or_else(|| OAuthError::invalid_grant("Cannot decrypt the authorization code"))?;
        if let Some(family) = record.redeemed_family {
            // A replayed code means it leaked: kill what it issued (RFC 6749 §4.1.2).
            self.revoke_family(family);
            return Err(OAuthError::invalid_grant(
                "Authorization code has been revoked",
            ));
        }
        if Instant::now() >= record.expires_at {
            return Err(OAuthError::invalid_grant("Authorization code has expired"));
        }
        let approval = &record.approval;
        if approval.client_id != req.client_id {
            return Err(OAuthError::invalid_grant(
                "Authorization code was not issued to this client",
            ));
        }
        if approval.redirect_uri != req.redirect_uri {
            return Err(OAuthError::invalid_grant("Invalid redirect URI"));
        }
        if let Some((challenge, method)) = &approval.challenge {
            let ok = req
                .code_verifier
                .is_some_and(|verifier| method.verify(challenge, verifier));
            if !ok {
                return Err(OAuthError::invalid_grant(
                    "Failed to verify `code_verifier`.",
                ));
            }
        }
        let (client_id, user_id, scope) = (
            approval.client_id.clone(),
            approval.user_id,
            approval.scope.clone(),
        );
        let family = self.new_family();
        if let Some(record) = self.codes.get_mut(req.code) {
            record.redeemed_family = Some(family);
        }
        Ok(self.mint(client_id, user_id, scope, family, minting))
    }

    /// The refresh-token grant. Rotation: the presented refresh token and its
    /// access token die, a new pair is returned.
    pub(super) fn refresh(
        &mut self,
        client_id: &str,
        refresh_token: &str,
        minting: Minting<'_>,
    ) -> Result<TokenSet, OAuthError> {
        let owned_by_client = match self.refresh.get(refresh_token) {
            None => return Err(OAuthError::invalid_refresh_token("Token has been revoked")),
            Some(record) => record.client_id == client_id,
        };
        if !owned_by_client {
            return Err(OAuthError::invalid_refresh_token(
                "Token is not linked to client",
            ));
        }
        let Some(old) = self.refresh.remove(refresh_token) else {
            return Err(OAuthError::invalid_refresh_token("Token has been revoked"));
        };
        self.access.remove(&old.access_token);
        Ok(self.mint(old.client_id, old.user_id, old.scope, old.family, minting))
    }

    /// A live (known, unexpired, unrevoked) access token.
    pub(super) fn access_token(&self, token: &str) -> Option<&AccessRecord> {
        self.access
            .get(token)
            .filter(|record| Instant::now() < record.expires_at)
    }

    /// A new token family for `user_id`, without a code: the stand-in's test back door.
    pub(super) fn issue_direct(
        &mut self,
        client_id: &str,
        user_id: &'static str,
        minting: Minting<'_>,
    ) -> TokenSet {
        let family = self.new_family();
        let scope = "profile:read profile:email".to_owned();
        self.mint(client_id.to_owned(), user_id, scope, family, minting)
    }

    pub(super) fn revoke_user(&mut self, user_id: &str) {
        self.access.retain(|_, a| a.user_id != user_id);
        self.refresh.retain(|_, r| r.user_id != user_id);
    }

    fn revoke_family(&mut self, family: u64) {
        self.access.retain(|_, a| a.family != family);
        self.refresh.retain(|_, r| r.family != family);
    }

    fn new_family(&mut self) -> u64 {
        self.next_family += 1;
        self.next_family
    }

    fn mint(
        &mut self,
        client_id: String,
        user_id: &'static str,
        scope: String,
        family: u64,
        minting: Minting<'_>,
    ) -> TokenSet {
        let access_token = minting
            .jwt
            .and_then(|jwt| jwt.token(user_id, &scope, minting.access_ttl))
            .unwrap_or_else(|| random_token(minting.access_len));
        let refresh_token = random_token(REFRESH_LEN);
        self.issued.push(access_token.clone());
        self.issued.push(refresh_token.clone());
        self.access.insert(
            access_token.clone(),
            AccessRecord {
                user_id,
                scope: scope.clone(),
                expires_at: later(Instant::now(), minting.access_ttl),
                family,
            },
        );
        self.refresh.insert(
            refresh_token.clone(),
            RefreshRecord {
                client_id,
                user_id,
                scope: scope.clone(),
                access_token: access_token.clone(),
                family,
            },
        );
        TokenSet {
            access_token,
            refresh_token,
            expires_in: minting.access_ttl.as_secs(),
            scope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_exact_length_and_url_safe_chars() {
        for len in [0, 1, 40, 6000] {
            let t = random_token(len);
            assert_eq!(t.len(), len);
            assert!(t.bytes().all(|b| ALPHABET.contains(&b)));
        }
        assert_ne!(random_token(32), random_token(32));
    }

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(ChallengeMethod::S256.verify(challenge, verifier));
        assert!(!ChallengeMethod::S256.verify(challenge, "wrong"));
        assert!(ChallengeMethod::Plain.verify("abc", "abc"));
        assert!(!ChallengeMethod::Plain.verify("abc", "abd"));
    }
}

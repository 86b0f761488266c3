//! JWT access tokens, as Rocketpunch's league/oauth2-server issues them: RS256, with a `kid`
//! naming the key in `/.well-known/jwks.json`.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// One RSA signing key. The private half never leaves this struct.
pub(super) struct SigningKey {
    encoding: EncodingKey,
    kid: String,
    jwk: Value,
}

impl SigningKey {
    /// A fresh 2048-bit key; `None` only if the crypto library fails.
    pub(super) fn generate() -> Option<Self> {
        let pair = KeyPair::generate(KeySize::Rsa2048).ok()?;
        let pkcs8 = pair.as_der().ok()?;
        // jsonwebtoken's aws-lc backend wants PKCS#1; its PEM reader unwraps PKCS#8 for us.
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pkcs8.as_ref())
        );
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).ok()?;
        let spki = pair.public_key().as_der().ok()?;
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(spki.as_ref())[..16]);
        let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let jwk = json!({
            "kty": "RSA",
            "kid": kid,
            "use": "sig",
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&components.n),
            "e": URL_SAFE_NO_PAD.encode(&components.e),
        });
        Some(Self { encoding, kid, jwk })
    }

    pub(super) fn kid(&self) -> &str {
        &self.kid
    }

    pub(super) fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// `claims` signed RS256 with this key's kid in the header.
    pub(super) fn sign(&self, claims: &Value) -> Option<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, jwk::Jwk};

    #[test]
    fn signs_tokens_its_jwk_verifies() {
        let key = SigningKey::generate().unwrap();
        let token = key
            .sign(&json!({"sub": "1001", "aud": "c", "exp": 4_000_000_000u64}))
            .unwrap();
        let jwk: Jwk = serde_json::from_value(key.jwk().clone()).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["c"]);
        let data = jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_jwk(&jwk).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "1001");
        assert_eq!(data.header.kid.as_deref(), Some(key.kid()));
    }
}

//! The EC P-256 key assertions are signed with: loaded from a PKCS#8 PEM file or generated.

use std::fmt;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};

use super::AssertionError;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// A validated P-256 private key with what the JWKS needs precomputed. Never prints itself.
#[derive(Clone)]
pub struct SigningKey {
    pkcs8: Vec<u8>,
    x: Vec<u8>,
    y: Vec<u8>,
    kid: String,
}

impl SigningKey {
    /// Parses `-----BEGIN PRIVATE KEY-----` (PKCS#8) text holding a P-256 key. SEC1
    /// (`BEGIN EC PRIVATE KEY`) is refused with a hint rather than guessed at.
    pub fn from_pem(text: &str) -> Result<Self, AssertionError> {
        let start = text.find(PEM_BEGIN).ok_or(AssertionError::NotPkcs8Pem)?;
        let body = &text[start + PEM_BEGIN.len()..];
        let end = body.find(PEM_END).ok_or(AssertionError::NotPkcs8Pem)?;
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD
            .decode(b64)
            .map_err(|_| AssertionError::NotPkcs8Pem)?;
        Self::from_pkcs8(der)
    }

    /// A fresh key, for deployments without `assertion.key_file`.
    pub fn generate() -> Result<Self, AssertionError> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| AssertionError::Generate)?;
        let der = pair.to_pkcs8v1().map_err(|_| AssertionError::Generate)?;
        Self::from_pkcs8(der.as_ref().to_vec())
    }

    fn from_pkcs8(pkcs8: Vec<u8>) -> Result<Self, AssertionError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .map_err(|_| AssertionError::NotP256)?;
        let point = pair.public_key().as_ref();
        // An uncompressed P-256 point: 0x04 || x (32) || y (32).
        if point.len() != 65 || point[0] != 4 {
            return Err(AssertionError::NotP256);
        }
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| AssertionError::NotP256)?;
        Ok(Self {
            x: point[1..33].to_vec(),
            y: point[33..].to_vec(),
            kid: kid_of(spki.as_ref()),
            pkcs8,
        })
    }

    pub(super) fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// Derived from the public key, so every replica with the same key announces the same kid.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK (RFC 7517/7518).
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&self.x),
            "y": URL_SAFE_NO_PAD.encode(&self.y),
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
        })
    }
}

/// base64url of the first 16 bytes of sha256(SubjectPublicKeyInfo DER): short, stable, and
/// computable by anyone holding the public key.
pub fn kid_of(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(spki_der)[..16])
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(der: &[u8]) -> String {
        format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", STANDARD.encode(der))
    }

    #[test]
    fn pem_round_trip_keeps_the_kid() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&pem(key.pkcs8())).unwrap();
        assert_eq!(key.kid(), again.kid());
        assert_eq!(key.jwk(), again.jwk());
        assert_ne!(key.kid(), SigningKey::generate().unwrap().kid());
        assert!(!format!("{key:?}").contains(&STANDARD.encode(key.pkcs8())));
    }

    #[test]
    fn refuses_other_pem_and_other_curves() {
        assert!(matches!(
            SigningKey::from_pem(
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----"
            ),
            Err(AssertionError::NotPkcs8Pem)
        ));
        assert!(matches!(
            SigningKey::from_pem("garbage"),
            Err(AssertionError::NotPkcs8Pem)
        ));
        let p384 = EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED_SIGNING)
            .unwrap()
            .to_pkcs8v1()
            .unwrap();
        assert!(matches!(
            SigningKey::from_pem(&pem(p384.as_ref())),
            Err(AssertionError::NotP256)
        ));
    }
}

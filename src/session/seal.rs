//! Authenticated encryption of cookie values (AES-256-GCM via the cookie crate's private jar).
//!
//! The cookie's name is the associated data, so a value sealed as one cookie (say the CSRF
//! cookie) cannot be replayed as another (the session cookie).

use cookie::{Cookie, CookieJar, Key};

/// Seals with the first key and opens with any, so secrets can rotate without logouts.
#[derive(Clone)]
pub struct Sealer {
    keys: std::sync::Arc<[Key]>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({} keys)", self.keys.len())
    }
}

/// Which key opened a value: anything but the first means the value should be re-sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAge {
    Current,
    Old,
}

impl Sealer {
    /// `keys` must not be empty: `Config` guarantees at least one.
    pub fn new(keys: Vec<Key>) -> Self {
        Self { keys: keys.into() }
    }

    /// The length of [`Self::seal`]'s output for a plaintext of `len` bytes: base64 of the
    /// 12-byte nonce, the ciphertext and the 16-byte tag. Lets a caller that may not use a
    /// value past some size skip the sealing.
    pub fn sealed_len(len: usize) -> usize {
        4 * (12 + len + 16).div_ceil(3)
    }

    pub fn seal(&self, name: &str, plaintext: &str) -> String {
        let Some(key) = self.keys.first() else {
            return String::new();
        };
        let mut jar = CookieJar::new();
        jar.private_mut(key)
            .add(Cookie::new(name.to_owned(), plaintext.to_owned()));
        jar.get(name)
            .map(|c| c.value().to_owned())
            .unwrap_or_default()
    }

    pub fn open(&self, name: &str, sealed: &str) -> Option<(String, KeyAge)> {
        let jar = CookieJar::new();
        self.keys.iter().enumerate().find_map(|(i, key)| {
            let cookie = Cookie::new(name.to_owned(), sealed.to_owned());
            jar.private(key).decrypt(cookie).map(|c| {
                let age = if i == 0 { KeyAge::Current } else { KeyAge::Old };
                (c.value().to_owned(), age)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_len_predicts_the_sealed_length() {
        let sealer = Sealer::new(vec![Key::derive_from(&[7; 32])]);
        for len in [0, 1, 2, 3, 100, 2821, 2822, 3000] {
            let plaintext = "x".repeat(len);
            assert_eq!(
                sealer.seal("_rg", &plaintext).len(),
                Sealer::sealed_len(len),
                "{len}"
            );
        }
    }

    fn key(byte: u8) -> Key {
        Key::derive_from(&[byte; 32])
    }

    #[test]
    fn round_trip_and_name_binding() {
        let sealer = Sealer::new(vec![key(1)]);
        let sealed = sealer.seal("_rocketgate", "hello");
        assert!(!sealed.contains("hello"));
        assert_eq!(
            sealer.open("_rocketgate", &sealed),
            Some(("hello".into(), KeyAge::Current))
        );
        assert_eq!(sealer.open("_rocketgate_csrf_x", &sealed), None);
    }

    #[test]
    fn old_keys_open_new_key_seals() {
        let old = Sealer::new(vec![key(1)]);
        let rotated = Sealer::new(vec![key(2), key(1)]);
        let sealed = old.seal("c", "v");
        assert_eq!(rotated.open("c", &sealed), Some(("v".into(), KeyAge::Old)));
        let resealed = rotated.seal("c", "v");
        assert_eq!(old.open("c", &resealed), None);
    }

    #[test]
    fn tampering_is_refused() {
        let sealer = Sealer::new(vec![key(1)]);
        let sealed = sealer.seal("c", "value");
        for i in 0..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered != sealed {
                assert_eq!(sealer.open("c", &tampered), None, "byte {i}");
            }
        }
        assert_eq!(sealer.open("c", &sealed[..sealed.len() - 4]), None);
        assert_eq!(sealer.open("c", ""), None);
    }
}

//! What the cookie holds when sessions live in Redis: a session id and that session's own key.
//!
//! The Redis entry is sealed with the per-session key, which exists only in the user's
//! (itself sealed) cookie: a Redis dump or a replica snapshot reveals no token, and knowing a
//! session id is not enough to read or forge its entry.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::Key;
use sha2::{Digest, Sha256};

use super::seal::Sealer;

/// Version tag of the encoded ticket, so a future format can be told apart.
const PREFIX: &str = "t1.";

#[derive(Clone)]
pub struct Ticket {
    id: [u8; 16],
    key: [u8; 32],
    /// SHA-256 of the key, computed once: every cached read compares it.
    fingerprint: [u8; 32],
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The id is printed shortened; the key never.
        write!(f, "Ticket({}…)", &self.id_hex()[..8])
    }
}

impl Ticket {
    /// A new session id and key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self::new(rand::random(), rand::random())
    }

    /// The session id as it appears in Redis keys.
    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }

    /// The session id: the key of this process's session cache.
    pub fn id(&self) -> [u8; 16] {
        self.id
    }

    /// A digest of the session key: a cached session is only served to a ticket whose key
    /// matches the one that opened it, so an id alone never reads a session, cached or not.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    fn new(id: [u8; 16], key: [u8; 32]) -> Self {
        Self {
            id,
            key,
            fingerprint: Sha256::digest(key).into(),
        }
    }

    /// The cookie's plaintext (sealed again by the cookie codec before it leaves).
    pub fn encode(&self) -> String {
        format!(
            "{PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(self.id),
            URL_SAFE_NO_PAD.encode(self.key)
        )
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (id, key) = text.strip_prefix(PREFIX)?.split_once('.')?;
        Some(Self::new(
            URL_SAFE_NO_PAD.decode(id).ok()?.try_into().ok()?,
            URL_SAFE_NO_PAD.decode(key).ok()?.try_into().ok()?,
        ))
    }

    /// AES-256-GCM under this session's key, with the session id as associated data so an
    /// entry copied under another id does not open.
    pub fn seal(&self, plaintext: &str) -> String {
        self.sealer().seal(&self.id_hex(), plaintext)
    }

    pub fn open(&self, sealed: &str) -> Option<String> {
        self.sealer()
            .open(&self.id_hex(), sealed)
            .map(|(plain, _)| plain)
    }

    fn sealer(&self) -> Sealer {
        Sealer::new(vec![Key::derive_from(&self.key)])
    }
}

/// Lowercase hex of a user id's SHA-256, so user ids of any shape make safe Redis keys.
pub fn user_digest(user: &str) -> String {
    hex(&Sha256::digest(user.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes() {
        let t = Ticket::generate();
        let back = Ticket::decode(&t.encode()).unwrap();
        assert_eq!(back.id, t.id);
        assert_eq!(back.key, t.key);
        assert_eq!(t.id_hex().len(), 32);
        for bad in [
            "",
            "t1.",
            "t2.AAAA.BBBB",
            "t1.AAAA",
            "t1.AAAA.BBBB",
            "t1.!!.??",
        ] {
            assert!(Ticket::decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn entries_open_only_with_their_own_ticket() {
        let t = Ticket::generate();
        let sealed = t.seal("{\"secret\":1}");
        assert!(!sealed.contains("secret"));
        assert_eq!(t.open(&sealed).as_deref(), Some("{\"secret\":1}"));
        let other = Ticket::generate();
        assert!(other.open(&sealed).is_none());
        // Same key, other id: the associated data differs, so it does not open.
        let moved = Ticket::new(other.id, t.key);
        assert!(moved.open(&sealed).is_none());
    }

    #[test]
    fn debug_hides_the_key() {
        let t = Ticket::generate();
        let printed = format!("{t:?}");
        assert!(!printed.contains(&URL_SAFE_NO_PAD.encode(t.key)));
        assert!(!printed.contains(&t.id_hex()));
    }
}

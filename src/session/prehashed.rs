//! A hasher for cache keys that are already uniformly random: SHA-256 digests of cookies and
//! random session ids. Their first eight bytes are as good a hash as any, so the caches skip
//! SipHash, which would otherwise be paid on every request. Keys are never chosen
//! by a client: a digest cannot be steered without a SHA-256 preimage, and only sessions that
//! opened (or ids we generated) are ever inserted.

use std::hash::{BuildHasher, Hasher};

/// Builds [`Prehashed`] hashers for moka caches keyed by digests or random ids.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrehashedKeys;

impl BuildHasher for PrehashedKeys {
    type Hasher = Prehashed;

    fn build_hasher(&self) -> Prehashed {
        Prehashed(0)
    }
}

/// Takes the key's leading bytes as the hash (folding in any later writes, such as a slice
/// length prefix, so it is still a function of the whole input).
#[derive(Clone, Copy, Debug)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut head = [0u8; 8];
        let n = bytes.len().min(8);
        head[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_hash_to_their_leading_bytes_and_differ() {
        let a = [7u8; 32];
        let mut b = a;
        b[0] = 8;
        let hash = |k: &[u8; 32]| PrehashedKeys.hash_one(k);
        assert_eq!(hash(&a), hash(&[7u8; 32]), "a function of the key alone");
        assert_ne!(hash(&a), hash(&b));
        assert_ne!(
            PrehashedKeys.hash_one([1u8; 16]),
            PrehashedKeys.hash_one([2u8; 16])
        );
    }
}

//! `[admin]`: the token that guards `/oauth2/admin/*`.

use super::problems::{Problems, read_secret_file};
use super::raw::RawAdmin;
use super::{AdminSettings, Secret, SessionStoreKind};

/// Shorter tokens can be guessed.
pub const MIN_TOKEN_LEN: usize = 32;

/// `admin.token` / `admin.token_file`: long enough to resist guessing, and only with a store
/// that can revoke sessions.
pub(super) fn validate(
    p: &mut Problems,
    raw: RawAdmin,
    store: Option<&SessionStoreKind>,
) -> AdminSettings {
    let token = match (raw.token, raw.token_file) {
        (Some(_), Some(_)) => {
            p.add("admin.token", "set either token or token_file, not both");
            None
        }
        (Some(t), None) => Some(t.trim().to_owned()),
        (None, Some(path)) => p.take("admin.token_file", read_secret_file(&path)),
        (None, None) => None,
    };
    if let Some(t) = &token {
        if t.len() < MIN_TOKEN_LEN {
            p.add(
                "admin.token",
                format!(
                    "must be at least 32 characters (use `rocketgate generate-secret`), got {}",
                    t.len()
                ),
            );
        }
        if matches!(store, Some(SessionStoreKind::Cookie)) {
            p.add(
                "admin.token",
                "needs session.store = \"redis\": cookie sessions cannot be revoked server-side",
            );
        }
    }
    AdminSettings {
        token: token.map(Secret::new),
    }
}

//! Why a session could not be renewed, told apart by what it means for the session: over,
//! or kept and tried again later.

use super::redis::LinkError;

/// Why a refresh did not produce new tokens.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RefreshError {
    /// Rocketpunch refused the grant (`invalid_grant`, `invalid_client`, 401, ...): the
    /// session is over and the user must sign in again.
    #[error("Rocketpunch refused the refresh ({0})")]
    Ended(String),
    /// Rocketpunch could not answer (timeout, 5xx, 429, refused connection, garbage): the
    /// session is kept and the refresh is tried again later.
    #[error("Rocketpunch is unavailable for refresh ({0})")]
    Unavailable(String),
    /// The Redis session store could not be read, written or locked (or another replica's
    /// refresh did not finish in time): the session is kept and the refresh tried again.
    #[error("the session store is unavailable for refresh ({0})")]
    StoreUnavailable(LinkError),
    /// The session was signed out or revoked while it was being refreshed.
    #[error("the session was signed out")]
    SignedOut,
}

impl RefreshError {
    /// What went wrong, from a closed set, for spans and audit events.
    pub fn kind(&self) -> &'static str {
        match self {
            RefreshError::Ended(_) => "ended",
            RefreshError::Unavailable(_) => "provider_unavailable",
            RefreshError::StoreUnavailable(_) => "store_unavailable",
            RefreshError::SignedOut => "signed_out",
        }
    }

    /// Whether the session survives this failure and the refresh should be tried again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RefreshError::Unavailable(_) | RefreshError::StoreUnavailable(_)
        )
    }
}

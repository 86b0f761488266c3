//! Every way a call to Rocketpunch can fail, typed so the caller can tell a transient outage
//! (try again later) from a refusal (the grant is gone).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("could not reach Rocketpunch ({0})")]
    Unreachable(String),
    #[error("Rocketpunch did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Rocketpunch is rate-limiting us (429)")]
    RateLimited { retry_after: Option<u64> },
    #[error("Rocketpunch refused the request: {status} {code}")]
    Rejected { status: u16, code: String },
    #[error("Rocketpunch failed: {status} {code}")]
    Unavailable { status: u16, code: String },
    #[error("Rocketpunch sent an unexpected answer: {0}")]
    Malformed(String),
    #[error("the profile has no value at {0}")]
    MissingUser(String),
}

impl ProviderError {
    /// Transient failures say nothing about the user's grant: keep their session and retry.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Unreachable(_)
                | ProviderError::Timeout(_)
                | ProviderError::RateLimited { .. }
                | ProviderError::Unavailable { .. }
                | ProviderError::Malformed(_)
        )
    }

    /// What went wrong, from a closed set, for the request line's `provider_error=`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Unreachable(_) => "unreachable",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Rejected { .. } => "rejected",
            ProviderError::Unavailable { .. } => "unavailable",
            ProviderError::Malformed(_) => "malformed",
            ProviderError::MissingUser(_) => "missing_user",
        }
    }

    /// The provider's own error code, for logs (never a token).
    pub fn code(&self) -> &str {
        match self {
            ProviderError::Rejected { code, .. } | ProviderError::Unavailable { code, .. } => code,
            ProviderError::Unreachable(_) => "unreachable",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Malformed(_) => "malformed",
            ProviderError::MissingUser(_) => "missing_user",
        }
    }
}

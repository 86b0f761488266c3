//! Everything that can end a request early, and the status and words each one gets:
//! status codes are decided here and nowhere else (`respond` writes them out).

use http::StatusCode;

use crate::access::PathError;
use crate::assertion::AssertionError;
use crate::bearer::BearerError;
use crate::oauth::{LoginError, ProviderError};
use crate::pages::Action;
use crate::proxy::ProxyError;
use crate::session::{RefreshError, StoreError};

/// Anything that can end a request early.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    #[error(transparent)]
    Bearer(#[from] BearerError),
    #[error(transparent)]
    Assertion(#[from] AssertionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("admin token missing or wrong")]
    AdminUnauthorized,
    #[error("bad admin request: {0}")]
    AdminBadRequest(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request itself breaks HTTP's rules (RFC 9112), whatever it asks for.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// A sign-out that another site started (`<img src=…/sign_out>`, a cross-site form).
    #[error("cross-site sign-out refused")]
    CrossSiteSignOut,
    #[error("not signed in")]
    Unauthenticated,
    #[error("signed in but not allowed")]
    Forbidden,
    #[error("no such endpoint")]
    NotFound,
}

impl RequestError {
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::Provider(e) => match e {
                ProviderError::Timeout(_)
                | ProviderError::RateLimited { .. }
                | ProviderError::Unavailable { status: 503, .. } => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            },
            RequestError::Proxy(ProxyError::Unreachable(_)) => StatusCode::BAD_GATEWAY,
            RequestError::Proxy(ProxyError::Timeout(_)) => StatusCode::GATEWAY_TIMEOUT,
            RequestError::Proxy(ProxyError::ClientStalled(_)) => StatusCode::REQUEST_TIMEOUT,
            RequestError::Proxy(ProxyError::BadRequest(_) | ProxyError::ClientBody)
            | RequestError::Path(_) => StatusCode::BAD_REQUEST,
            RequestError::Login(LoginError::MissingCode) => StatusCode::BAD_REQUEST,
            RequestError::Login(LoginError::InvalidState | LoginError::Denied { .. })
            | RequestError::CrossSiteSignOut => StatusCode::FORBIDDEN,
            RequestError::Login(LoginError::CodeRejected { .. }) => StatusCode::BAD_REQUEST,
            RequestError::Refresh(
                RefreshError::Unavailable(_) | RefreshError::StoreUnavailable(_),
            ) => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::Refresh(RefreshError::Ended(_) | RefreshError::SignedOut)
            | RequestError::Unauthenticated => StatusCode::UNAUTHORIZED,
            RequestError::Bearer(BearerError::Invalid(_)) => StatusCode::UNAUTHORIZED,
            RequestError::Bearer(BearerError::KeysUnavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            RequestError::Assertion(_) => StatusCode::INTERNAL_SERVER_ERROR,
            RequestError::Forbidden => StatusCode::FORBIDDEN,
            RequestError::NotFound => StatusCode::NOT_FOUND,
            RequestError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::Store(StoreError::NotRevocable) => StatusCode::NOT_IMPLEMENTED,
            RequestError::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            RequestError::AdminBadRequest(_) | RequestError::Malformed(_) => {
                StatusCode::BAD_REQUEST
            }
            RequestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// Why a request failed on our side or a dependency's, for the request line of every
    /// 5xx: the field (`upstream_error`, `provider_error`, `store_error`, `internal_error`)
    /// and a short code (never a message, which could hold a detail or a secret).
    pub fn reason(&self) -> Option<(&'static str, &str)> {
        match self {
            RequestError::Provider(e) => Some(("provider_error", e.kind())),
            RequestError::Proxy(e) => e
                .upstream_kind()
                .map(|kind| ("upstream_error", kind.as_str())),
            RequestError::Refresh(RefreshError::Unavailable(code)) => {
                Some(("provider_error", code.as_str()))
            }
            RequestError::Refresh(RefreshError::StoreUnavailable(link))
            | RequestError::Store(StoreError::Unavailable(link)) => {
                Some(("store_error", link.kind()))
            }
            RequestError::Store(StoreError::NotRevocable) => Some(("store_error", "not_revocable")),
            RequestError::Bearer(BearerError::KeysUnavailable(_)) => {
                Some(("provider_error", "keys_unavailable"))
            }
            RequestError::Assertion(_) => Some(("internal_error", "assertion")),
            _ => None,
        }
    }

    /// What the user reads: the JSON code, the page title and the message; plain words,
    /// never an internal detail.
    pub fn words(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            RequestError::Provider(_) if self.status() == StatusCode::SERVICE_UNAVAILABLE => (
                "provider_unavailable",
                "Rocketpunch is not answering",
                "Signing in with Rocketpunch is not possible right now. Please try again in a moment.",
            ),
            RequestError::Provider(_) => (
                "provider_error",
                "Sign-in could not be completed",
                "Rocketpunch did not complete the sign-in. Please try again.",
            ),
            RequestError::Proxy(ProxyError::Timeout(_)) => (
                "upstream_timeout",
                "The application is taking too long",
                "The application did not answer in time. Please try again.",
            ),
            RequestError::Proxy(ProxyError::ClientStalled(_)) => (
                "request_timeout",
                "The request did not arrive in time",
                "Sending the request took too long. Please try again.",
            ),
            RequestError::Proxy(ProxyError::Unreachable(_)) => (
                "upstream_unavailable",
                "The application is unavailable",
                "The application behind this sign-in cannot be reached right now.",
            ),
            RequestError::Proxy(ProxyError::ClientBody) => (
                "bad_request",
                "The request could not be read",
                "The request body was malformed or incomplete. Please try again.",
            ),
            RequestError::Proxy(ProxyError::BadRequest(_)) | RequestError::Path(_) => (
                "bad_request",
                "This address cannot be used",
                "The address of this request is not allowed.",
            ),
            RequestError::Login(LoginError::MissingCode) => (
                "bad_request",
                "Sign-in answer incomplete",
                "The answer from Rocketpunch had no authorization code. Please start again.",
            ),
            RequestError::Login(LoginError::InvalidState) => (
                "invalid_state",
                "Sign-in expired",
                "This sign-in link is no longer valid. Please start again.",
            ),
            RequestError::Login(LoginError::CodeRejected { .. }) => (
                "sign_in_expired",
                "Sign-in expired",
                "This sign-in took too long or was already used. Please try again.",
            ),
            RequestError::CrossSiteSignOut => (
                "cross_site_sign_out",
                "Sign-out not allowed from another site",
                "Another website tried to sign you out. You are still signed in; to sign out, use the application's own sign-out link.",
            ),
            RequestError::Login(LoginError::Denied { .. }) => (
                "access_denied",
                "Sign-in cancelled",
                "Access was not granted on Rocketpunch, so you are not signed in.",
            ),
            RequestError::Refresh(RefreshError::Unavailable(_)) => (
                "provider_unavailable",
                "Rocketpunch is not answering",
                "Your session is safe, but it cannot be renewed right now. Please try again in a moment.",
            ),
            RequestError::Refresh(RefreshError::StoreUnavailable(_))
            | RequestError::Store(StoreError::Unavailable(_)) => (
                "session_store_unavailable",
                "Sessions are unavailable",
                "Your session is safe, but it cannot be read right now. Please try again in a moment.",
            ),
            RequestError::Refresh(RefreshError::Ended(_) | RefreshError::SignedOut)
            | RequestError::Unauthenticated => (
                "unauthorized",
                "Sign-in required",
                "You need to sign in to continue.",
            ),
            RequestError::Forbidden => (
                "forbidden",
                "Access denied",
                "You are signed in, but your account is not allowed to use this application.",
            ),
            RequestError::Bearer(BearerError::Invalid(_)) => (
                "invalid_token",
                "Sign-in required",
                "The access token is not valid. Sign in again or use a fresh token.",
            ),
            RequestError::Bearer(BearerError::KeysUnavailable(_)) => (
                "provider_unavailable",
                "Rocketpunch is not answering",
                "Access tokens cannot be checked right now. Please try again in a moment.",
            ),
            RequestError::Assertion(_) => (
                "internal_error",
                "Something went wrong",
                "The request could not be forwarded. Please try again.",
            ),
            RequestError::NotFound => ("not_found", "Not found", "There is nothing here."),
            RequestError::Store(StoreError::NotRevocable) => (
                "not_revocable",
                "Not available",
                "Sessions kept in cookies cannot be revoked; use the Redis session store.",
            ),
            RequestError::AdminUnauthorized => (
                "unauthorized",
                "Admin token required",
                "Send the admin token as Authorization: Bearer.",
            ),
            RequestError::AdminBadRequest(why) => ("bad_request", "Bad request", why),
            RequestError::Malformed(_) => (
                "bad_request",
                "Bad request",
                "This request is not valid HTTP and cannot be served.",
            ),
            RequestError::MethodNotAllowed => (
                "method_not_allowed",
                "Method not allowed",
                "This endpoint does not accept this method.",
            ),
        }
    }

    /// The link a page offers to get on: a fresh sign-in, or a way out of a refusal.
    pub fn action(&self) -> Option<Action<'_>> {
        match self {
            RequestError::Login(
                LoginError::Denied { retry } | LoginError::CodeRejected { retry },
            ) => Some(Action {
                href: retry,
                label: "Try again",
            }),
            RequestError::Login(LoginError::InvalidState | LoginError::MissingCode) => {
                Some(Action {
                    href: "/oauth2/start",
                    label: "Sign in again",
                })
            }
            RequestError::Forbidden => Some(Action {
                href: "/oauth2/sign_out",
                label: "Sign out",
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    /// Every error with its status; `respond`'s tests render each of them both ways.
    pub(crate) fn every_error() -> Vec<(RequestError, u16)> {
        vec![
            (ProviderError::Timeout(Duration::from_secs(1)).into(), 503),
            (ProviderError::RateLimited { retry_after: None }.into(), 503),
            (
                ProviderError::Unavailable {
                    status: 503,
                    code: "x".into(),
                }
                .into(),
                503,
            ),
            (
                ProviderError::Unavailable {
                    status: 500,
                    code: "x".into(),
                }
                .into(),
                502,
            ),
            (
                ProviderError::Rejected {
                    status: 400,
                    code: "invalid_grant".into(),
                }
                .into(),
                502,
            ),
            (ProviderError::Malformed("x".into()).into(), 502),
            (ProviderError::Unreachable("x".into()).into(), 502),
            (ProviderError::MissingUser("/id".into()).into(), 502),
            (
                ProxyError::Unreachable(crate::metrics::UpstreamErrorKind::Refused).into(),
                502,
            ),
            (ProxyError::Timeout(Duration::from_secs(1)).into(), 504),
            (
                ProxyError::ClientStalled(Duration::from_secs(1)).into(),
                408,
            ),
            (ProxyError::ClientBody.into(), 400),
            (LoginError::MissingCode.into(), 400),
            (LoginError::InvalidState.into(), 403),
            (LoginError::Denied { retry: "/".into() }.into(), 403),
            (LoginError::CodeRejected { retry: "/".into() }.into(), 400),
            (RequestError::CrossSiteSignOut, 403),
            (RequestError::Unauthenticated, 401),
            (RefreshError::Unavailable("timeout".into()).into(), 503),
            (RefreshError::Ended("invalid_grant".into()).into(), 401),
            (RefreshError::SignedOut.into(), 401),
            (
                RefreshError::StoreUnavailable(crate::session::redis::LinkError::Timeout(
                    Duration::from_secs(2),
                ))
                .into(),
                503,
            ),
            (RequestError::Forbidden, 403),
            (RequestError::NotFound, 404),
            (BearerError::Invalid("expired").into(), 401),
            (BearerError::KeysUnavailable("x".into()).into(), 503),
            (AssertionError::Sign("x".into()).into(), 500),
            (
                StoreError::Unavailable(crate::session::redis::LinkError::Timeout(
                    Duration::from_secs(2),
                ))
                .into(),
                503,
            ),
            (StoreError::NotRevocable.into(), 501),
            (RequestError::AdminUnauthorized, 401),
            (RequestError::AdminBadRequest("user is required"), 400),
            (RequestError::MethodNotAllowed, 405),
            (RequestError::Malformed("no Host header"), 400),
        ]
    }

    #[test]
    fn statuses_are_pinned() {
        for (error, status) in every_error() {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
        }
    }

    #[test]
    fn every_server_error_says_why() {
        for (error, status) in every_error() {
            if status >= 500 {
                let (field, value) = error.reason().unwrap_or_else(|| panic!("{error:?}"));
                assert!(field.ends_with("_error") && !value.is_empty(), "{error:?}");
            }
        }
        let refused: RequestError =
            ProxyError::Unreachable(crate::metrics::UpstreamErrorKind::Refused).into();
        assert_eq!(refused.reason(), Some(("upstream_error", "refused")));
        let slow: RequestError = ProviderError::Timeout(Duration::from_secs(1)).into();
        assert_eq!(slow.reason(), Some(("provider_error", "timeout")));
    }
}

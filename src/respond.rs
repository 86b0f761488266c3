//! The one place where errors become HTTP answers: status codes here, nowhere else.

use http::{Response, StatusCode, header};

use crate::access::PathError;
use crate::assertion::AssertionError;
use crate::bearer::BearerError;
use crate::body::Body;
use crate::endpoints::LoginError;
use crate::oauth::ProviderError;
use crate::pages::{self, Action, Pages};
use crate::proxy::ProxyError;
use crate::refresh::RefreshError;
use crate::session::StoreError;

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
            RequestError::Login(
                LoginError::InvalidState | LoginError::Denied { .. } | LoginError::CrossSiteSignOut,
            ) => StatusCode::FORBIDDEN,
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

    /// What the user reads: plain words, never an internal detail.
    fn words(&self) -> (&'static str, &'static str, &'static str) {
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
            RequestError::Login(LoginError::CrossSiteSignOut) => (
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

    /// The answer: an HTML page for browsers, a small JSON body for everything else.
    pub fn render(&self, pages: &Pages, html: bool) -> Response<Body> {
        let status = self.status();
        let (code, title, message) = self.words();
        let mut response = if html {
            let action = match self {
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
            };
            pages.error(status, title, message, action)
        } else {
            pages::json_error(status, code, message)
        };
        // RFC 6750 §3: tell a bearer client why its token was refused.
        if let RequestError::Bearer(BearerError::Invalid(_)) = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        if let RequestError::AdminUnauthorized = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"rocketgate-admin\""),
            );
        }
        if let RequestError::Store(StoreError::Unavailable(_))
        | RequestError::Refresh(RefreshError::StoreUnavailable(_)) = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        if let RequestError::Provider(ProviderError::RateLimited { retry_after }) = self {
            let seconds = retry_after.unwrap_or(30).min(3600);
            if let Ok(v) = header::HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn statuses_are_pinned() {
        let cases: Vec<(RequestError, u16)> = vec![
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
            (ProxyError::Unreachable("x".into()).into(), 502),
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
            (LoginError::CrossSiteSignOut.into(), 403),
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
        ];
        let pages = Pages::new(&crate::pages::PageSettings::default());
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.render(&pages, false).status().as_u16(), status);
            assert_eq!(error.render(&pages, true).status().as_u16(), status);
        }
    }

    #[test]
    fn invalid_bearer_tokens_carry_www_authenticate() {
        for html in [false, true] {
            let r = RequestError::from(BearerError::Invalid("kid"))
                .render(&Pages::new(&crate::pages::PageSettings::default()), html);
            assert_eq!(
                r.headers()[header::WWW_AUTHENTICATE],
                "Bearer error=\"invalid_token\""
            );
        }
        let r = RequestError::from(BearerError::KeysUnavailable("x".into()))
            .render(&Pages::new(&crate::pages::PageSettings::default()), false);
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let r = RequestError::from(ProviderError::RateLimited {
            retry_after: Some(12),
        })
        .render(&Pages::new(&crate::pages::PageSettings::default()), true);
        assert_eq!(r.headers()[header::RETRY_AFTER], "12");
    }
}

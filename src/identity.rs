//! Identity headers: removing every client-sent copy, and adding the real ones for the
//! upstream (`X-Forwarded-*`) and for auth-request callers (`X-Auth-Request-*`).

use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};

use crate::session::Session;

/// `[headers]`: which of the user's tokens the upstream also gets.
#[derive(Debug, Clone, Copy)]
pub struct HeaderSettings {
    /// `X-Forwarded-Access-Token`.
    pub pass_access_token: bool,
    /// `Authorization: Bearer <access token>`.
    pub pass_authorization_header: bool,
}

pub static X_FORWARDED_USER: HeaderName = HeaderName::from_static("x-forwarded-user");
pub static X_FORWARDED_EMAIL: HeaderName = HeaderName::from_static("x-forwarded-email");
pub static X_FORWARDED_PREFERRED_USERNAME: HeaderName =
    HeaderName::from_static("x-forwarded-preferred-username");
pub static X_FORWARDED_ACCESS_TOKEN: HeaderName =
    HeaderName::from_static("x-forwarded-access-token");
pub static X_AUTH_REQUEST_USER: HeaderName = HeaderName::from_static("x-auth-request-user");
pub static X_AUTH_REQUEST_EMAIL: HeaderName = HeaderName::from_static("x-auth-request-email");
pub static X_AUTH_REQUEST_PREFERRED_USERNAME: HeaderName =
    HeaderName::from_static("x-auth-request-preferred-username");
pub static X_AUTH_REQUEST_ACCESS_TOKEN: HeaderName =
    HeaderName::from_static("x-auth-request-access-token");

/// Names the upstream trusts as ours, compared after lower-casing and mapping `_` to `-`
/// (many app servers fold both to the same variable, so `X_Forwarded_Email` is a spoof too).
const PROTECTED: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
    "x-forwarded-groups",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-preferred-username",
    "x-auth-request-access-token",
    "x-auth-request-groups",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-uri",
    "x-real-ip",
    "x-forwarded-prefix",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-forwarded-server",
    "x-forwarded-path",
    "x-rocketgate-assertion",
];

pub(crate) fn is_protected(name: &HeaderName) -> bool {
    let name = name.as_str();
    // RFC 7239 `Forwarded` carries the same claims as `X-Forwarded-*`; rocketgate never
    // believes or sets it, so no client copy may reach the upstream either.
    if name == "forwarded" {
        return true;
    }
    if !name.starts_with("x-") && !name.starts_with("x_") {
        return false;
    }
    let same = |p: &str, n: &str| {
        p.len() == n.len()
            && p.bytes()
                .zip(n.bytes())
                .all(|(a, b)| a == b || (a == b'-' && b == b'_'))
    };
    // Every `X-Original-*` (URL, URI, Host, Method, ...) is a claim about the request only a
    // trusted proxy may make.
    (name.len() > "x-original-".len() && same("x-original-", &name[.."x-original-".len()]))
        || PROTECTED.iter().any(|p| same(p, name))
}

/// Removes every client-sent identity or forwarding header, whatever its spelling.
pub fn strip_client_identity(headers: &mut HeaderMap) {
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_protected(n))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(name);
    }
}

fn value(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(text).ok()
}

/// Adds the signed-in user's identity for the upstream.
pub fn add_upstream_identity(headers: &mut HeaderMap, session: &Session, settings: HeaderSettings) {
    let id = &session.identity;
    if let Some(v) = value(&id.user) {
        headers.insert(X_FORWARDED_USER.clone(), v);
    }
    if let Some(v) = id.email.as_deref().and_then(value) {
        headers.insert(X_FORWARDED_EMAIL.clone(), v);
    }
    if let Some(v) = id.preferred_username.as_deref().and_then(value) {
        headers.insert(X_FORWARDED_PREFERRED_USERNAME.clone(), v);
    }
    if settings.pass_access_token
        && let Some(v) = value(&session.tokens.access_token)
    {
        headers.insert(X_FORWARDED_ACCESS_TOKEN.clone(), v);
    }
    if settings.pass_authorization_header
        && let Some(v) = value(&format!("Bearer {}", session.tokens.access_token))
    {
        headers.insert(AUTHORIZATION, v);
    }
}

/// The `X-Auth-Request-*` headers `/oauth2/auth` answers with, for nginx `auth_request`,
/// Traefik forwardAuth and Envoy ext_authz.
pub fn add_auth_request_identity(
    headers: &mut HeaderMap,
    session: &Session,
    settings: HeaderSettings,
) {
    let id = &session.identity;
    if let Some(v) = value(&id.user) {
        headers.insert(X_AUTH_REQUEST_USER.clone(), v);
    }
    if let Some(v) = id.email.as_deref().and_then(value) {
        headers.insert(X_AUTH_REQUEST_EMAIL.clone(), v);
    }
    if let Some(v) = id.preferred_username.as_deref().and_then(value) {
        headers.insert(X_AUTH_REQUEST_PREFERRED_USERNAME.clone(), v);
    }
    if settings.pass_access_token
        && let Some(v) = value(&session.tokens.access_token)
    {
        headers.insert(X_AUTH_REQUEST_ACCESS_TOKEN.clone(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let mut s = crate::testkit::sample_session();
        s.identity.preferred_username = None;
        s.tokens.access_token = "tok".into();
        s
    }

    #[test]
    fn strips_every_spelling() {
        let mut h = HeaderMap::new();
        for name in [
            "X-Forwarded-Email",
            "x_forwarded_email",
            "X_Forwarded-User",
            "x-auth-request-user",
            "X_AUTH_REQUEST_EMAIL",
            "x-forwarded-for",
            "X-Original-URL",
            "x_original_host",
            "X-Original-Method",
            "Forwarded",
            "X-Forwarded-Prefix",
            "X-Real-Ip",
        ] {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                "evil".parse().unwrap(),
            );
        }
        h.append("x-forwarded-email", "twice".parse().unwrap());
        h.insert("x-app-header", "kept".parse().unwrap());
        h.insert("x-forwarded-emailx", "kept".parse().unwrap());
        strip_client_identity(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["x-app-header", "x-forwarded-emailx"]);
    }

    #[test]
    fn adds_identity_and_optional_tokens() {
        let mut h = HeaderMap::new();
        let off = HeaderSettings {
            pass_access_token: false,
            pass_authorization_header: false,
        };
        add_upstream_identity(&mut h, &session(), off);
        assert_eq!(h[&X_FORWARDED_USER], "1001");
        assert_eq!(h[&X_FORWARDED_EMAIL], "ada@example.com");
        assert!(h.get(&X_FORWARDED_PREFERRED_USERNAME).is_none());
        assert!(h.get(&X_FORWARDED_ACCESS_TOKEN).is_none());
        assert!(h.get(AUTHORIZATION).is_none());
        let on = HeaderSettings {
            pass_access_token: true,
            pass_authorization_header: true,
        };
        add_upstream_identity(&mut h, &session(), on);
        assert_eq!(h[&X_FORWARDED_ACCESS_TOKEN], "tok");
        assert_eq!(h[AUTHORIZATION], "Bearer tok");
    }
}

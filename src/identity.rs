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
pub static X_FORWARDED_GROUPS: HeaderName = HeaderName::from_static("x-forwarded-groups");
pub static X_AUTH_REQUEST_GROUPS: HeaderName = HeaderName::from_static("x-auth-request-groups");

/// Why a `[headers.claims]` entry was refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimHeaderError {
    #[error("`{0}` is not a header name starting with `X-`")]
    BadName(String),
    #[error("`{0}` is one of rocketgate's own identity or forwarding headers")]
    Reserved(String),
    #[error("`{0}` is not a JSON pointer starting with '/'")]
    BadPointer(String),
}

/// One `[headers.claims]` entry: a profile value by JSON pointer, sent upstream under
/// `upstream` and answered by `/oauth2/auth` under `auth`.
#[derive(Debug, Clone)]
pub struct ClaimHeader {
    pub upstream: HeaderName,
    /// `X-Auth-Request-` + the name without its `X-Forwarded-`, `X-Auth-Request-` or `X-` prefix.
    pub auth: HeaderName,
    pub pointer: String,
}

/// `[headers.claims]`: extra identity headers from the profile. Clients' copies of these
/// names are stripped like the built-in ones.
#[derive(Debug, Clone, Default)]
pub struct ClaimHeaders(Vec<ClaimHeader>);

impl ClaimHeaders {
    pub fn new(
        entries: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, (String, ClaimHeaderError)> {
        let mut headers = Vec::new();
        for (name, pointer) in entries {
            let fail = |e| (name.clone(), e);
            let lower = name.trim().to_ascii_lowercase();
            let upstream = HeaderName::from_bytes(lower.as_bytes())
                .ok()
                .filter(|_| lower.len() > 2 && lower.starts_with("x-"))
                .ok_or_else(|| fail(ClaimHeaderError::BadName(name.clone())))?;
            if is_protected(&upstream) || PROTECTED.contains(&lower.as_str()) {
                return Err(fail(ClaimHeaderError::Reserved(name.clone())));
            }
            let bare = lower
                .strip_prefix("x-forwarded-")
                .or_else(|| lower.strip_prefix("x-auth-request-"))
                .or_else(|| lower.strip_prefix("x-"))
                .unwrap_or(&lower);
            let auth = HeaderName::from_bytes(format!("x-auth-request-{bare}").as_bytes())
                .map_err(|_| fail(ClaimHeaderError::BadName(name.clone())))?;
            if is_protected(&auth) {
                return Err(fail(ClaimHeaderError::Reserved(name.clone())));
            }
            if !pointer.starts_with('/') {
                return Err(fail(ClaimHeaderError::BadPointer(pointer)));
            }
            headers.push(ClaimHeader {
                upstream,
                auth,
                pointer,
            });
        }
        Ok(ClaimHeaders(headers))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ClaimHeader> {
        self.0.iter()
    }

    /// The pointers the session must keep values for.
    pub fn pointers(&self) -> Vec<String> {
        self.0.iter().map(|h| h.pointer.clone()).collect()
    }

    fn is_ours(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|h| same_name(h.upstream.as_str(), name) || same_name(h.auth.as_str(), name))
    }
}

/// Which side identity headers are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The upstream app: `X-Forwarded-*`.
    Upstream,
    /// A front proxy's auth check: `X-Auth-Request-*`.
    AuthRequest,
}

/// Adds `X-Forwarded-Groups` (or `X-Auth-Request-Groups`), comma-separated, when the user
/// has groups, and each `[headers.claims]` header the session has a value for.
pub fn add_groups_and_claims(
    headers: &mut HeaderMap,
    groups: &[String],
    session: &Session,
    claim_headers: &ClaimHeaders,
    audience: Audience,
) {
    if !groups.is_empty()
        && let Some(v) = value(&groups.join(","))
    {
        let name = match audience {
            Audience::Upstream => &X_FORWARDED_GROUPS,
            Audience::AuthRequest => &X_AUTH_REQUEST_GROUPS,
        };
        headers.insert(name.clone(), v);
    }
    for header in claim_headers.iter() {
        if let Some(v) = session
            .identity
            .claims
            .get(&header.pointer)
            .and_then(|text| value(text))
        {
            let name = match audience {
                Audience::Upstream => &header.upstream,
                Audience::AuthRequest => &header.auth,
            };
            headers.insert(name.clone(), v);
        }
    }
}

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
    // Every `X-Original-*` (URL, URI, Host, Method, ...) is a claim about the request only a
    // trusted proxy may make.
    (name.len() > "x-original-".len() && same_name("x-original-", &name[.."x-original-".len()]))
        || PROTECTED.iter().any(|p| same_name(p, name))
}

/// `n` (a request's header name, lower case) is `p` with any of its `-` written as `_`.
fn same_name(p: &str, n: &str) -> bool {
    p.len() == n.len()
        && p.bytes()
            .zip(n.bytes())
            .all(|(a, b)| a == b || (a == b'-' && b == b'_'))
}

/// Removes every client-sent identity or forwarding header, whatever its spelling, and the
/// client's copies of the `[headers.claims]` names.
pub fn strip_client_identity(headers: &mut HeaderMap, claim_headers: &ClaimHeaders) {
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_protected(n) || claim_headers.is_ours(n.as_str()))
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
        h.insert("x_forwarded_name", "evil".parse().unwrap());
        h.insert("x-auth-request-name", "evil".parse().unwrap());
        let claims =
            ClaimHeaders::new([("X-Forwarded-Name".to_owned(), "/name".to_owned())]).unwrap();
        strip_client_identity(&mut h, &claims);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["x-app-header", "x-forwarded-emailx"]);
    }

    #[test]
    fn claim_header_names_are_checked_and_paired() {
        let ok = ClaimHeaders::new([
            ("X-Forwarded-Name".to_owned(), "/data/name".to_owned()),
            ("X-Team".to_owned(), "/team".to_owned()),
            ("X-Auth-Request-Desk".to_owned(), "/desk".to_owned()),
        ])
        .unwrap();
        let names: Vec<(&str, &str)> = ok
            .iter()
            .map(|h| (h.upstream.as_str(), h.auth.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("x-forwarded-name", "x-auth-request-name"),
                ("x-team", "x-auth-request-team"),
                ("x-auth-request-desk", "x-auth-request-desk")
            ]
        );
        for (name, pointer) in [
            ("Authorization", "/a"),
            ("X-Forwarded-Email", "/a"),
            ("X-Forwarded-Groups", "/a"),
            ("X-Auth-Request-User", "/a"),
            ("X-Forwarded-Name", "name"),
            ("X-Bad Name", "/a"),
        ] {
            assert!(
                ClaimHeaders::new([(name.to_owned(), pointer.to_owned())]).is_err(),
                "{name}"
            );
        }
    }

    #[test]
    fn groups_and_claims_go_to_the_side_asked_for() {
        let mut s = session();
        s.identity.claims.insert("/name".into(), "Ada L".into());
        let claims =
            ClaimHeaders::new([("X-Forwarded-Name".to_owned(), "/name".to_owned())]).unwrap();
        let groups = ["ops".to_owned(), "staff".to_owned()];
        let mut up = HeaderMap::new();
        add_groups_and_claims(&mut up, &groups, &s, &claims, Audience::Upstream);
        assert_eq!(up[&X_FORWARDED_GROUPS], "ops,staff");
        assert_eq!(up["x-forwarded-name"], "Ada L");
        let mut auth = HeaderMap::new();
        add_groups_and_claims(&mut auth, &[], &s, &claims, Audience::AuthRequest);
        assert!(auth.get(&X_AUTH_REQUEST_GROUPS).is_none());
        assert_eq!(auth["x-auth-request-name"], "Ada L");
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

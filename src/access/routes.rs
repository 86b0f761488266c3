//! Skip-auth routes (`access.skip_auth_routes`), matched on a normalised request path.
//!
//! oauth2-proxy's skip-route bypasses all come from matching a different string than the
//! one the upstream acts on: the whole request URI (so `?path=/public` matched
//! `^/public`), the raw path (so `%2F`, `..` or `%23` tricks changed meaning after the
//! upstream decoded them). Here matching happens only on a [`RequestPath`]: the path
//! without query, percent-decoded exactly once, and refused outright (the proxy answers
//! 400) when decoding could make it mean a different path to some upstream — encoded
//! separators, dot segments, control characters, invalid UTF-8.
//!
//! Decoding once is what standard servers do, so the matched string is what the upstream
//! routes on. An upstream that decodes *twice* (so `%252e%252e` becomes `..`) has a
//! double-decoding bug of its own; for it, `/public/%252e%252e/` is a literal segment named
//! `%2e%2e` as far as every standards-following component is concerned.

use std::str::FromStr;

use regex::Regex;

/// Why a request path was refused. The proxy answers 400 for every variant: a browser
/// never produces these, and no legitimate app needs them on a protected origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The request target's path must be absolute (`*` and authority forms are not paths).
    #[error("request path must start with `/`")]
    NotAbsolute,
    /// A raw or decoded `\`: many servers treat it as `/`, so it could split segments
    /// differently for the upstream than for us.
    #[error("request path contains a backslash")]
    Backslash,
    /// `%2F` would be a segment separator after a second decoding step only, so the path's
    /// structure differs between components.
    #[error("request path contains an encoded `/`")]
    EncodedSlash,
    /// `.` or `..` segments (raw or encoded) are resolved by some components and not by
    /// others; `/public/../admin` must not be "public".
    #[error("request path contains a `.` or `..` segment")]
    DotSegment,
    /// NUL and other control characters truncate or split strings in some upstreams.
    #[error("request path contains a control character")]
    ControlCharacter,
    /// `%` not followed by two hex digits: components disagree on what it means.
    #[error("request path contains a malformed percent-escape")]
    MalformedEscape,
    /// A path that does not decode to UTF-8 cannot be matched by a text regex reliably.
    #[error("request path is not valid UTF-8 after decoding")]
    InvalidUtf8,
    /// A raw `?` or `#`: the caller must pass the path alone, never the query or fragment.
    #[error("request path contains a raw `?` or `#`")]
    QueryOrFragment,
}

/// A request path that is safe to match skip routes against: no query, percent-decoded
/// once, with every ambiguous form refused (see [`PathError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath(String);

impl RequestPath {
    /// `raw_path` is the request-target path only (`http::Uri::path()`), never the query.
    pub fn parse(raw_path: &str) -> Result<RequestPath, PathError> {
        if !raw_path.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        let raw = raw_path.as_bytes();
        let mut decoded = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            let byte = match b {
                b'%' => {
                    let hi = raw.get(i + 1).and_then(|c| hex(*c));
                    let lo = raw.get(i + 2).and_then(|c| hex(*c));
                    let (Some(hi), Some(lo)) = (hi, lo) else {
                        return Err(PathError::MalformedEscape);
                    };
                    i += 3;
                    match (hi << 4) | lo {
                        b'/' => return Err(PathError::EncodedSlash),
                        b'\\' => return Err(PathError::Backslash),
                        d => d,
                    }
                }
                b'?' | b'#' => return Err(PathError::QueryOrFragment),
                b'\\' => return Err(PathError::Backslash),
                _ => {
                    i += 1;
                    b
                }
            };
            // Raw controls cannot come from a valid request line; encoded ones are refused
            // for the reasons given on the variant.
            if byte.is_ascii_control() {
                return Err(PathError::ControlCharacter);
            }
            decoded.push(byte);
        }
        let decoded = String::from_utf8(decoded).map_err(|_| PathError::InvalidUtf8)?;
        // Encoded slashes were refused above, so these segments are exactly the raw ones.
        // Servlet containers (Tomcat, Jetty) drop `;parameters` from a segment before
        // resolving dot segments, so `/public/..;/admin` is `/admin` to them: a segment is a
        // dot segment when the part before its first `;` is.
        if decoded.split('/').any(|seg| {
            let name = seg.split(';').next().unwrap_or(seg);
            name == "." || name == ".."
        }) {
            return Err(PathError::DotSegment);
        }
        Ok(RequestPath(decoded))
    }

    /// The decoded path that skip routes are matched against.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why a `skip_auth_routes` entry was refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipRouteError {
    /// An empty regex matches every path, which would silently disable authentication.
    #[error("skip route `{0}`: the regex is empty (it would match every path)")]
    EmptyRegex(String),
    /// The regex did not compile.
    #[error("skip route `{route}`: invalid regex: {reason}")]
    BadRegex {
        /// The whole entry.
        route: String,
        /// The regex crate's explanation.
        reason: String,
    },
    /// An uppercase method prefix that is not an HTTP method we know: almost certainly a
    /// typo (`GTE=`) that would make the route never match.
    #[error("skip route `{route}`: unknown HTTP method `{method}`")]
    UnknownMethod {
        /// The whole entry.
        route: String,
        /// The method text.
        method: String,
    },
    /// `get=^/x` would otherwise be read as the regex `get=^/x`, which never matches.
    #[error("skip route `{route}`: method `{method}` must be written in uppercase")]
    LowercaseMethod {
        /// The whole entry.
        route: String,
        /// The method text as written.
        method: String,
    },
}

/// Methods accepted as a `METHOD=` prefix: RFC 9110, PATCH, and WebDAV/CalDAV.
const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
    "MKCALENDAR",
    "QUERY",
];

/// One `skip_auth_routes` entry: `"METHOD=regex"` or `"regex"`.
///
/// The text before the first `=` is a method only when it is a run of uppercase ASCII
/// letters, so regexes containing `=` work unchanged. The regex is unanchored, as in
/// oauth2-proxy: write `^/public/` to mean a prefix.
#[derive(Debug, Clone)]
pub struct SkipRoute {
    method: Option<http::Method>,
    regex: Regex,
}

impl FromStr for SkipRoute {
    type Err = SkipRouteError;

    fn from_str(route: &str) -> Result<Self, Self::Err> {
        let (method, pattern) = match route.split_once('=') {
            Some((m, rest)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
                if !KNOWN_METHODS.contains(&m) {
                    return Err(SkipRouteError::UnknownMethod {
                        route: route.to_owned(),
                        method: m.to_owned(),
                    });
                }
                let method = http::Method::from_bytes(m.as_bytes()).map_err(|_| {
                    SkipRouteError::UnknownMethod {
                        route: route.to_owned(),
                        method: m.to_owned(),
                    }
                })?;
                (Some(method), rest)
            }
            Some((m, _))
                if m.bytes().all(|b| b.is_ascii_alphabetic())
                    && KNOWN_METHODS.contains(&m.to_ascii_uppercase().as_str()) =>
            {
                return Err(SkipRouteError::LowercaseMethod {
                    route: route.to_owned(),
                    method: m.to_owned(),
                });
            }
            _ => (None, route),
        };
        if pattern.is_empty() {
            return Err(SkipRouteError::EmptyRegex(route.to_owned()));
        }
        let regex = Regex::new(pattern).map_err(|e| SkipRouteError::BadRegex {
            route: route.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(SkipRoute { method, regex })
    }
}

impl SkipRoute {
    fn matches(&self, method: &http::Method, path: &RequestPath) -> bool {
        self.method.as_ref().is_none_or(|m| m == method) && self.regex.is_match(path.as_str())
    }
}

/// All configured skip routes; a request skips authentication when any route matches.
#[derive(Debug, Clone, Default)]
pub struct SkipRoutes(Vec<SkipRoute>);

impl SkipRoutes {
    /// Wraps the parsed routes.
    pub fn new(routes: Vec<SkipRoute>) -> Self {
        SkipRoutes(routes)
    }

    /// True when no route is configured, so the proxy can skip path parsing entirely.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the request may bypass authentication. Methods compare exactly (a
    /// `GET=` route does not cover HEAD), as in oauth2-proxy.
    pub fn matches(&self, method: &http::Method, path: &RequestPath) -> bool {
        self.0.iter().any(|r| r.matches(method, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn routes(list: &[&str]) -> SkipRoutes {
        SkipRoutes::new(list.iter().map(|r| r.parse().unwrap()).collect())
    }

    fn path(raw: &str) -> RequestPath {
        RequestPath::parse(raw).unwrap()
    }

    /// What the proxy does with a request target: split off the query, then parse.
    fn target_path(target: &str) -> Result<RequestPath, PathError> {
        let uri: http::Uri = target.parse().unwrap();
        RequestPath::parse(uri.path())
    }

    #[test]
    fn prefix_route_matches_decoded_path_only() {
        let r = routes(&["^/public/"]);
        assert!(r.matches(&Method::GET, &path("/public/x")));
        assert!(!r.matches(&Method::GET, &target_path("/admin?path=/public/").unwrap()));
        let hash = path("/admin%23/public/");
        assert_eq!(hash.as_str(), "/admin#/public/");
        assert!(!r.matches(&Method::GET, &hash));
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        use PathError as E;
        for (raw, want) in [
            ("/public/%2e%2e/admin", E::DotSegment),
            ("/public/%2E%2e/admin", E::DotSegment),
            ("/public/.%2e/admin", E::DotSegment),
            ("/public/..;/admin", E::DotSegment),
            ("/public/..%3b/admin", E::DotSegment),
            ("/public/.;x/admin", E::DotSegment),
            ("/public/../admin", E::DotSegment),
            ("/public/./admin", E::DotSegment),
            ("/public/%2e/admin", E::DotSegment),
            ("/public/..", E::DotSegment),
            ("/public%2Fx", E::EncodedSlash),
            ("/public%2fx", E::EncodedSlash),
            ("/public%5Cx", E::Backslash),
            ("/public\\x", E::Backslash),
            ("/public%00x", E::ControlCharacter),
            ("/public%0ax", E::ControlCharacter),
            ("/public%7f", E::ControlCharacter),
            ("/public%ff", E::InvalidUtf8),
            ("/public%zz", E::MalformedEscape),
            ("/public%2", E::MalformedEscape),
            ("public", E::NotAbsolute),
            ("", E::NotAbsolute),
            ("*", E::NotAbsolute),
            ("/a?b", E::QueryOrFragment),
            ("/a#b", E::QueryOrFragment),
        ] {
            assert_eq!(RequestPath::parse(raw), Err(want), "{raw}");
        }
    }

    #[test]
    fn dots_inside_segments_are_fine() {
        assert_eq!(
            path("/a.b/...x/..../.well-known").as_str(),
            "/a.b/...x/..../.well-known"
        );
        assert_eq!(path("/v1.%2e").as_str(), "/v1..");
    }

    #[test]
    fn decodes_exactly_once() {
        // The upstream also decodes once and sees a literal segment named `%2e%2e`; only a
        // double-decoding upstream would see `..`, and that is its own bug.
        let p = path("/public/%252e%252e/");
        assert_eq!(p.as_str(), "/public/%2e%2e/");
        assert!(routes(&["^/public/"]).matches(&Method::GET, &p));
        assert_eq!(path("/a%252Fb").as_str(), "/a%2Fb");
    }

    #[test]
    fn method_prefix() {
        let r = routes(&["GET=^/public/"]);
        assert!(r.matches(&Method::GET, &path("/public/x")));
        assert!(!r.matches(&Method::POST, &path("/public/x")));
        assert!(!r.matches(&Method::HEAD, &path("/public/x")));
        let any = routes(&["^/public/"]);
        assert!(any.matches(&Method::POST, &path("/public/x")));
    }

    #[test]
    fn regex_may_contain_equals() {
        let r = routes(&["^/a=b$", "POST=^/x=y"]);
        assert!(r.matches(&Method::PUT, &path("/a=b")));
        assert!(r.matches(&Method::POST, &path("/x=y/z")));
        assert!(!r.matches(&Method::GET, &path("/x=y/z")));
        // Not an uppercase run before `=`: the whole entry is the regex.
        let r = routes(&["(?i)^/Q=1"]);
        assert!(r.matches(&Method::GET, &path("/q=1")));
    }

    #[test]
    fn unanchored_like_oauth2_proxy() {
        let r = routes(&["/health"]);
        assert!(r.matches(&Method::GET, &path("/api/health")));
    }

    #[test]
    fn unicode_paths() {
        let r = routes(&["^/café/", "^/日本$"]);
        assert!(r.matches(&Method::GET, &path("/caf%C3%A9/menu")));
        assert!(r.matches(&Method::GET, &path("/café/menu")));
        assert!(r.matches(&Method::GET, &path("/%E6%97%A5%E6%9C%AC")));
        assert!(!r.matches(&Method::GET, &path("/cafe/menu")));
    }

    #[test]
    fn empty_routes() {
        let r = SkipRoutes::new(Vec::new());
        assert!(r.is_empty());
        assert!(!r.matches(&Method::GET, &path("/")));
        assert!(!routes(&["^/"]).is_empty());
    }

    #[test]
    fn route_parse_errors() {
        let err = |s: &str| s.parse::<SkipRoute>().unwrap_err();
        assert!(matches!(err(""), SkipRouteError::EmptyRegex(_)));
        assert!(matches!(err("GET="), SkipRouteError::EmptyRegex(_)));
        assert!(matches!(
            err("^/(unclosed"),
            SkipRouteError::BadRegex { .. }
        ));
        assert!(matches!(err("POST=[z-a]"), SkipRouteError::BadRegex { .. }));
        assert!(matches!(
            err("GTE=^/x"),
            SkipRouteError::UnknownMethod { .. }
        ));
        assert!(matches!(
            err("get=^/x"),
            SkipRouteError::LowercaseMethod { .. }
        ));
        assert!(err("GTE=^/x").to_string().contains("`GTE`"));
        assert!(err("^/(unclosed").to_string().contains("invalid regex"));
    }
}

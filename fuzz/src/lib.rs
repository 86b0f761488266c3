//! Fixtures and oracles shared by the fuzz targets and by `examples/gen_seeds.rs`.
//!
//! Everything here is deterministic except the AES-GCM nonces the codec draws when it
//! seals; that is fine because every invariant below is about what *opens*, not about the
//! exact bytes of a sealed value.

use std::sync::OnceLock;

use cookie::Key;
use http::HeaderMap;
use http::header::COOKIE;
use percent_encoding::percent_decode_str;
use rocketgate::access::{DomainRule, RedirectPolicy, SkipRoute, SkipRoutes};
use rocketgate::session::{CookieCodec, RequestCookies, Session};
use url::{Host, Url};

/// The session cookie name every target uses.
pub const COOKIE_NAME: &str = "_rocketgate";

/// Fixed key material: the current key seals, the old one only opens (rotation).
pub fn current_key() -> Key {
    Key::derive_from(&[7; 32])
}

pub fn old_key() -> Key {
    Key::derive_from(&[3; 32])
}

pub fn codec() -> &'static CookieCodec {
    static CODEC: OnceLock<CookieCodec> = OnceLock::new();
    CODEC.get_or_init(|| codec_with(vec![current_key(), old_key()]))
}

pub fn codec_with(keys: Vec<Key>) -> CookieCodec {
    rocketgate::testkit::codec_with(COOKIE_NAME, keys)
}

/// A session whose access token is `token_len` bytes long (the seeds were sealed from these
/// exact values: changing them makes every seed a foreign session).
pub fn session(token_len: usize) -> Session {
    let mut s = rocketgate::testkit::session_with(token_len, Some(1_700_000_000), 1_699_999_000);
    s.tokens.issued_at = Some(1_699_999_000);
    s
}

/// The only sessions ever sealed under the fixture keys: a one-cookie session and one
/// that the codec splits into chunks (a 6000-byte access token).
pub fn fixtures() -> &'static [Session; 2] {
    static F: OnceLock<[Session; 2]> = OnceLock::new();
    F.get_or_init(|| [session(10), session(6000)])
}

/// `name=value` pairs a browser keeps after receiving `set_cookies` (on an empty jar).
pub fn browser_pairs(set_cookies: &[String]) -> Vec<(String, String)> {
    apply_set_cookies(Vec::new(), set_cookies)
}

/// A browser's jar (one path, one domain: names are unique) after `set_cookies`.
pub fn apply_set_cookies(
    mut jar: Vec<(String, String)>,
    set_cookies: &[String],
) -> Vec<(String, String)> {
    for set in set_cookies {
        let c = cookie::Cookie::parse(set.as_str()).expect("codec writes parseable cookies");
        jar.retain(|(n, _)| n != c.name());
        let deleted = c.max_age().is_some_and(|a| a.is_zero());
        if !deleted {
            jar.push((c.name().to_owned(), c.value().to_owned()));
        }
    }
    jar
}

/// The `Cookie` header a browser would send for `pairs`.
pub fn cookie_header(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `RequestCookies` for one `Cookie` header value, or None if it is not a valid header value.
pub fn request_cookies(header: &[u8]) -> Option<RequestCookies> {
    let value = http::HeaderValue::from_bytes(header).ok()?;
    let mut h = HeaderMap::new();
    h.insert(COOKIE, value);
    Some(RequestCookies::from_headers(&h))
}

/// The public URL of the proxy used by the redirect fixtures.
pub const PUBLIC_URL: &str = "https://rocketgate.internal";

/// The redirect rules of the fixture: `.bar.foo` (apex and subdomains, default port) and
/// `port.bar:8080` (that host, port 8080 only).
pub const RULES: &[&str] = &[".bar.foo", "port.bar:8080"];

pub fn policy() -> &'static RedirectPolicy {
    static P: OnceLock<RedirectPolicy> = OnceLock::new();
    P.get_or_init(|| {
        let rules: Vec<DomainRule> = RULES.iter().map(|r| r.parse().unwrap()).collect();
        RedirectPolicy::new(&Url::parse(PUBLIC_URL).unwrap(), rules)
    })
}

/// An independent oracle for "this absolute URL is somewhere we may send the browser".
pub fn absolute_allowed(url: &Url) -> bool {
    let public = Url::parse(PUBLIC_URL).unwrap();
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return false;
    }
    let port = url.port_or_known_default();
    match url.host() {
        Some(Host::Domain(d)) => {
            (d == public.host_str().unwrap() && port == public.port_or_known_default())
                || ((d == "bar.foo" || d.ends_with(".bar.foo")) && url.port().is_none())
                || (d == "port.bar" && port == Some(8080))
        }
        _ => false,
    }
}

fn forbidden_char(c: char) -> bool {
    c.is_control() || c == '\\'
}

/// Panics unless `accepted` (what `check(rd)` returned) is a harmless redirect target.
pub fn assert_redirect_safe(rd: &str, accepted: &str) {
    assert!(
        !rd.chars().any(forbidden_char),
        "accepted input with a control character or backslash: {rd:?}"
    );
    let decoded: Vec<u8> = percent_decode_str(rd).collect();
    assert!(
        !decoded.iter().any(|b| b.is_ascii_control() || *b == b'\\'),
        "accepted input whose decoded form has a control byte or backslash: {rd:?}"
    );
    if accepted.starts_with('/') {
        assert_eq!(accepted, rd, "relative targets are returned unchanged");
        assert!(
            !accepted.starts_with("//") && !accepted.starts_with("/\\"),
            "accepted a scheme-relative target: {rd:?}"
        );
        assert!(!accepted.chars().any(forbidden_char), "{rd:?}");
        let decoded = String::from_utf8_lossy(&decoded);
        assert!(
            !decoded.starts_with("//") && !decoded.starts_with("/\\"),
            "accepted a target that decodes to a scheme-relative one: {rd:?}"
        );
        // What a browser does with it: it must stay on the proxy's origin.
        let public = Url::parse(PUBLIC_URL).unwrap();
        let joined = public
            .join(accepted)
            .expect("accepted relative target joins");
        assert_eq!(
            (
                joined.scheme(),
                joined.host_str(),
                joined.port_or_known_default()
            ),
            (
                public.scheme(),
                public.host_str(),
                public.port_or_known_default()
            ),
            "relative target leaves the origin: {rd:?} -> {joined}"
        );
        assert!(joined.username().is_empty() && joined.password().is_none());
    } else {
        let url = Url::parse(accepted)
            .unwrap_or_else(|e| panic!("accepted {rd:?} as {accepted:?}, not a URL: {e}"));
        assert!(
            absolute_allowed(&url),
            "accepted {rd:?} as {accepted:?}: host not allowed"
        );
        assert_eq!(
            Url::parse(rd).ok().as_ref(),
            Some(&url),
            "accepted form differs from the input: {rd:?}"
        );
    }
}

/// The fixture skip routes and what each should match, as an oracle.
pub const ROUTES: &[&str] = &["^/public/", "GET=^/health$", "POST=^/api/v[0-9]+/hook"];

pub fn routes() -> &'static SkipRoutes {
    static R: OnceLock<SkipRoutes> = OnceLock::new();
    R.get_or_init(|| {
        SkipRoutes::new(
            ROUTES
                .iter()
                .map(|r| r.parse::<SkipRoute>().unwrap())
                .collect(),
        )
    })
}

/// Whether [`ROUTES`] should let `method` on the decoded path `path` skip authentication.
pub fn routes_expect(method: &http::Method, path: &str) -> bool {
    let hook = || {
        let Some(rest) = path.strip_prefix("/api/v") else {
            return false;
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with("/hook")
    };
    path.starts_with("/public/")
        || (method == http::Method::GET && path == "/health")
        || (method == http::Method::POST && hook())
}

/// A gate in front of the demo's echo upstream on a loopback port, with every path a skip
/// route (no sign-in): the whole request path, for the `request_body` target. Short
/// timeouts keep a stuck input from looking like a hang for long.
pub async fn echo_gate() -> std::sync::Arc<rocketgate::app::App> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let upstream = listener.local_addr().expect("local address");
    rocketgate_demo::spawn_upstream(listener);
    let toml = format!(
        r#"
upstream = "http://{upstream}"
upstream_timeout = "3s"
public_url = "http://127.0.0.1:4180"
[provider]
client_id = "fuzz"
client_secret = "fuzz"
[cookie]
secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
[access]
skip_auth_routes = ["^/"]
[limits]
idle_timeout = "2s"
header_read_timeout = "2s"
"#
    );
    let config = rocketgate::config::load_from_str(&toml, &Default::default())
        .expect("the fuzz config is valid");
    rocketgate::app::App::new(config).expect("the gate starts")
}

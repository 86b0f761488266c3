//! Microbenchmarks of the per-request hot path, through the crate's public API only:
//! `cargo bench --bench hot_path` (bench/run runs it and puts the figures in the results).
//!
//! Numbers are per call. `open_cold` is what a request pays the first time a cookie value is
//! seen (AES-256-GCM + JSON); `open_cached` is the steady state (SHA-256 of the value and a
//! cache hit). The issue's target for opening a session is 5 µs.

use cookie::Key;
use divan::{Bencher, black_box};
use http::header::{ACCEPT, COOKIE, HOST, HeaderMap, HeaderValue, USER_AGENT};
use rocketgate::access::{DomainRule, RedirectPolicy, RequestPath, SkipRoute, SkipRoutes};
use rocketgate::config::HeaderSettings;
use rocketgate::identity::{add_upstream_identity, strip_client_identity};
use rocketgate::session::{CookieCodec, RequestCookies, Session};

fn main() {
    divan::main();
}

const NAME: &str = "_rocketgate";

fn codec() -> CookieCodec {
    rocketgate::testkit::codec_with(
        NAME,
        vec![Key::derive_from(b"0123456789abcdef0123456789abcdef")],
    )
}

/// A session like the stand-in's: a 40-character opaque access token and a refresh token.
fn session() -> Session {
    let now = 1_800_000_000;
    let mut s = rocketgate::testkit::session_with(40, Some(now + 3600), now);
    s.tokens.refresh_token = Some("r".repeat(40));
    s.tokens.issued_at = Some(now);
    s
}

/// The request's `Cookie` header as a browser sends it: the session beside an app cookie.
fn cookie_header(codec: &CookieCodec) -> HeaderValue {
    let set = codec.write(&session(), &RequestCookies::default());
    let pair = set[0].split(';').next().unwrap().to_owned();
    HeaderValue::from_str(&format!("theme=dark; {pair}; _ga=GA1.2.3")).unwrap()
}

fn cookies(codec: &CookieCodec) -> RequestCookies {
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, cookie_header(codec));
    RequestCookies::from_headers(&headers)
}

mod session_cookie {
    use super::*;

    /// Decrypt and parse, as for a cookie value not seen before (the cache is bypassed).
    #[divan::bench]
    fn open_cold(bencher: Bencher) {
        let codec = codec();
        let sealed = codec
            .sealed_values(&cookies(&codec))
            .swap_remove(0)
            .into_owned();
        bencher.bench_local(|| {
            let (json, _age) = codec.open_value(black_box(&sealed)).unwrap();
            serde_json::from_str::<Session>(&json).unwrap()
        });
    }

    /// The steady state: the same cookie again, served from the opened-session cache.
    #[divan::bench]
    fn open_cached(bencher: Bencher) {
        let codec = codec();
        let jar = cookies(&codec);
        assert!(!codec.open(&jar).unwrap().cached);
        bencher.bench_local(|| {
            let opened = codec.open(black_box(&jar)).unwrap();
            debug_assert!(opened.cached);
            opened
        });
    }

    /// Parsing the request's `Cookie` header, which every request pays before opening.
    #[divan::bench]
    fn parse_cookie_header(bencher: Bencher) {
        let codec = codec();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, cookie_header(&codec));
        bencher.bench_local(|| RequestCookies::from_headers(black_box(&headers)));
    }

    /// JSON + AES-GCM + the `Set-Cookie` values (sign-in and refresh only).
    #[divan::bench]
    fn seal(bencher: Bencher) {
        let codec = codec();
        let session = session();
        let none = RequestCookies::default();
        bencher.bench_local(|| codec.write(black_box(&session), &none));
    }
}

mod identity_headers {
    use super::*;

    fn request_headers(spoofed: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("app.example.com"));
        h.insert(
            USER_AGENT,
            HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64)"),
        );
        h.insert(
            ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml"),
        );
        h.insert(
            "accept-language",
            HeaderValue::from_static("en-GB,en;q=0.9"),
        );
        h.insert(
            "accept-encoding",
            HeaderValue::from_static("gzip, deflate, br"),
        );
        h.insert(COOKIE, HeaderValue::from_static("theme=dark; _ga=GA1.2.3"));
        if spoofed {
            h.insert("x-forwarded-user", HeaderValue::from_static("admin"));
            h.insert(
                "x_forwarded_email",
                HeaderValue::from_static("admin@example.com"),
            );
        }
        h
    }

    /// Stripping client copies and adding `X-Forwarded-User/-Email/-Preferred-Username`.
    #[divan::bench(args = [false, true])]
    fn strip_and_add(bencher: Bencher, spoofed: bool) {
        let session = session();
        let settings = HeaderSettings {
            pass_access_token: false,
            pass_authorization_header: false,
        };
        let headers = request_headers(spoofed);
        bencher
            .with_inputs(|| headers.clone())
            .bench_local_refs(|h| {
                strip_client_identity(h, &Default::default());
                add_upstream_identity(h, black_box(&session), settings);
            });
    }
}

mod redirect {
    use super::*;

    fn policy() -> RedirectPolicy {
        let rules: Vec<DomainRule> = [".example.com", "partner.example.org:8443"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        RedirectPolicy::new(&url::Url::parse("https://app.example.com").unwrap(), rules)
    }

    /// `?rd=` targets: a deep link, an allowed absolute URL, and two refused attacks.
    #[divan::bench(args = [
        "/reports/2024?tab=summary#top",
        "https://billing.example.com/invoices",
        "/\\evil.com",
        "https://badexample.com/",
    ])]
    fn check(bencher: Bencher, rd: &str) {
        let policy = policy();
        bencher.bench_local(|| policy.check(black_box(rd)));
    }
}

mod skip_routes {
    use super::*;

    fn routes() -> SkipRoutes {
        SkipRoutes::new(
            [
                "GET=^/public/",
                "^/healthz$",
                "POST=^/webhooks/[a-z]+$",
                "^/static/.*\\.(css|js)$",
            ]
            .iter()
            .map(|r| r.parse::<SkipRoute>().unwrap())
            .collect(),
        )
    }

    /// Parsing the path and matching it against four routes (the last path matches none,
    /// the common case for an authenticated request).
    #[divan::bench(args = ["/public/logo.png", "/static/app.js", "/reports/2024/q3"])]
    fn parse_and_match(bencher: Bencher, path: &str) {
        let routes = routes();
        let method = http::Method::GET;
        bencher.bench_local(|| {
            let path = RequestPath::parse(black_box(path)).unwrap();
            routes.matches(&method, &path)
        });
    }
}

//! Property tests (proptest) for the security-relevant pure parts of rocketgate: the sealed,
//! chunked session cookie, redirect validation and request-path parsing.
//!
//! Run: `cargo test --release --test properties` (a few seconds); debug works too (slower).
//! More cases: `PROPTEST_CASES=20000 cargo test --release --test properties`.
//!
//! How each property was checked to be able to fail: the crate was copied outside the
//! checkout (never touching `src/`), mutants were planted there behind an environment
//! variable, and this file was run against the copy; each mutant made these fail:
//! * `Sealer` replaced by plain base64 (no authentication): both tamper properties, the
//!   chunk-reordering one and the sealed-under-another-name one;
//! * `Sealer` sealing/opening with a fixed associated data instead of the cookie name:
//!   `value_sealed_under_another_name_never_opens`;
//! * `CookieCodec::write` with 4500-byte chunks, or without clearing stale chunks:
//!   `round_trip_through_a_browser`;
//! * `RedirectPolicy::check` without its character checks, or accepting every relative
//!   target: both redirect rejection properties;
//! * `RequestPath::parse` without the dot-segment check: both path properties.
//!
//! Unmodified, all pass (0.2 s in release).
//!
//! Shrunk failing inputs are kept by proptest in `tests/properties.proptest-regressions`
//! if one is ever found; commit that file so the case is replayed first.

use std::sync::OnceLock;

use cookie::Key;
use http::HeaderMap;
use http::header::COOKIE;
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use proptest::sample::Index;
use rocketgate::access::{DomainRule, RedirectPolicy, RequestPath};
use rocketgate::session::{CookieCodec, Identity, RequestCookies, Session, Tokens};
use url::Url;

const NAME: &str = "_rocketgate";
const CSRF_NAME: &str = "_rocketgate_csrf_0123456789abcdef";

/// `cases` unless `PROPTEST_CASES` is set (an explicit count would otherwise override it).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Sealing a 6000-byte token is slow-ish unoptimised; keep shrinking bounded.
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

fn codec() -> &'static CookieCodec {
    static C: OnceLock<CookieCodec> = OnceLock::new();
    C.get_or_init(|| {
        rocketgate::testkit::codec_with(
            NAME,
            vec![Key::derive_from(&[7; 32]), Key::derive_from(&[3; 32])],
        )
    })
}

fn session_with(token_len: usize) -> Session {
    rocketgate::testkit::session_with(token_len, Some(1_700_000_000), 1_699_999_000)
}

/// A browser's jar (names unique) after receiving `set_cookies` on top of `jar`.
fn browser(mut jar: Vec<(String, String)>, set_cookies: &[String]) -> Vec<(String, String)> {
    for set in set_cookies {
        let c = cookie::Cookie::parse(set.as_str()).expect("codec writes parseable cookies");
        jar.retain(|(n, _)| n != c.name());
        if !c.max_age().is_some_and(|a| a.is_zero()) {
            jar.push((c.name().to_owned(), c.value().to_owned()));
        }
    }
    jar
}

fn request(pairs: &[(String, String)]) -> RequestCookies {
    let header = pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut h = HeaderMap::new();
    if !header.is_empty() {
        h.insert(COOKIE, header.parse().expect("valid Cookie header"));
    }
    RequestCookies::from_headers(&h)
}

fn open(pairs: &[(String, String)]) -> Option<Session> {
    codec().open(&request(pairs)).map(|o| (*o.session).clone())
}

struct Fixture {
    session: Session,
    pairs: Vec<(String, String)>,
}

/// `[one-cookie session, session chunked from a 6000-char access token]`, written once.
fn fixtures() -> &'static [Fixture; 2] {
    static F: OnceLock<[Fixture; 2]> = OnceLock::new();
    F.get_or_init(|| {
        [10, 6000].map(|len| {
            let session = session_with(len);
            let pairs = browser(
                Vec::new(),
                &codec().write(&session, &RequestCookies::default()),
            );
            Fixture { session, pairs }
        })
    })
}

/// Bytes a cookie value may hold (RFC 6265 `cookie-octet`): every mutation stays a
/// well-formed cookie, so a browser could really send it and the header parses into the
/// same pairs (a space or `;` would be trimmed or split away by the parser instead).
const OCTETS: &[u8] =
    b"!#$%&'()*+-./0123456789:<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~";

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, Index, u8),
    Delete(Index, Index),
    Insert(Index, Index, u8),
    Truncate(Index, Index),
}

fn octet() -> impl Strategy<Value = u8> {
    proptest::sample::select(OCTETS)
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<Index>(), octet()).prop_map(|(c, i, b)| Mutation::Replace(c, i, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(c, i)| Mutation::Delete(c, i)),
        (any::<Index>(), any::<Index>(), octet()).prop_map(|(c, i, b)| Mutation::Insert(c, i, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(c, i)| Mutation::Truncate(c, i)),
    ]
}

fn apply(pairs: &mut [(String, String)], m: &Mutation) {
    let pick = |c: &Index| c.index(pairs.len());
    match m {
        Mutation::Replace(c, i, b) => {
            let v = &mut pairs[pick(c)].1;
            if v.is_empty() {
                return;
            }
            let at = i.index(v.len());
            v.replace_range(at..at + 1, &char::from(*b).to_string());
        }
        Mutation::Delete(c, i) => {
            let v = &mut pairs[pick(c)].1;
            if v.is_empty() {
                return;
            }
            v.remove(i.index(v.len()));
        }
        Mutation::Insert(c, i, b) => {
            let v = &mut pairs[pick(c)].1;
            v.insert(i.index(v.len() + 1), char::from(*b));
        }
        Mutation::Truncate(c, i) => {
            let v = &mut pairs[pick(c)].1;
            // Strictly shorter, possibly empty.
            if !v.is_empty() {
                v.truncate(i.index(v.len()));
            }
        }
    }
}

/// Identity strings without control characters (what a profile could plausibly hold,
/// Unicode included).
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("\\PC{{0,{max}}}")).unwrap()
}

fn arb_session() -> impl Strategy<Value = Session> {
    (
        proptest::string::string_regex("\\PC{1,40}").unwrap(),
        proptest::option::of(text(60)),
        proptest::option::of(text(40)),
        1usize..8000,
        proptest::option::of(1usize..2000),
        any::<Option<u64>>(),
        any::<Option<u64>>(),
        any::<u64>(),
        any::<u8>(),
    )
        .prop_map(
            |(user, email, preferred_username, at_len, rt_len, expires_at, issued_at, ct, c)| {
                // Token characters vary so chunk boundaries fall on different content.
                let ch = char::from(b'a' + c % 26);
                Session::new(
                    Identity {
                        user,
                        email,
                        preferred_username,
                        ..Identity::default()
                    },
                    Tokens {
                        access_token: ch.to_string().repeat(at_len),
                        refresh_token: rt_len.map(|n| "r".repeat(n)),
                        expires_at,
                        issued_at,
                    },
                    ct,
                )
            },
        )
}

#[test]
fn unmodified_fixture_cookies_open_to_the_same_session() {
    for f in fixtures() {
        assert_eq!(open(&f.pairs).as_ref(), Some(&f.session));
        // Order of the chunk cookies in the header does not matter, only their names.
        let mut reversed = f.pairs.clone();
        reversed.reverse();
        assert_eq!(open(&reversed).as_ref(), Some(&f.session));
    }
    assert_eq!(fixtures()[0].pairs.len(), 1);
    assert!(fixtures()[1].pairs.len() >= 2, "6000-char token is chunked");
}

proptest! {
    #![proptest_config(config(512))]

    /// One mutation of one cookie value (single-byte replace/delete/insert, truncation),
    /// of the one-cookie or of the chunked session, is never accepted.
    #[test]
    fn tampered_cookie_is_rejected(chunked in any::<bool>(), m in mutation()) {
        let f = &fixtures()[usize::from(chunked)];
        let mut pairs = f.pairs.clone();
        apply(&mut pairs, &m);
        prop_assume!(pairs != f.pairs, "the mutation changed nothing");
        prop_assert_eq!(open(&pairs), None, "{:?} was accepted", m);
        prop_assert_eq!(open(&f.pairs), Some(f.session.clone()));
    }

    /// Several mutations in a row: still rejected.
    #[test]
    fn multiply_tampered_cookie_is_rejected(
        chunked in any::<bool>(),
        ms in proptest::collection::vec(mutation(), 2..6),
    ) {
        let f = &fixtures()[usize::from(chunked)];
        let mut pairs = f.pairs.clone();
        for m in &ms {
            apply(&mut pairs, m);
        }
        prop_assume!(pairs != f.pairs);
        prop_assert_eq!(open(&pairs), None, "{:?} was accepted", ms);
    }

    /// Chunk values put under the wrong names (reordered), or a chunk missing, or the
    /// chunks joined into one plain cookie in the wrong order: rejected.
    #[test]
    fn reordered_or_missing_chunks_are_rejected(
        order in Just((0..fixtures()[1].pairs.len()).collect::<Vec<usize>>()).prop_shuffle(),
        drop in any::<Option<Index>>(),
    ) {
        let f = &fixtures()[1];
        let mut pairs: Vec<(String, String)> = order
            .iter()
            .enumerate()
            .map(|(i, &from)| (f.pairs[i].0.clone(), f.pairs[from].1.clone()))
            .collect();
        if let Some(d) = &drop {
            pairs.remove(d.index(pairs.len()));
        }
        let identity = order.iter().enumerate().all(|(i, &from)| i == from);
        if identity && drop.is_none() {
            // Nothing changed (common with 3 chunks): the untouched cookie must open.
            prop_assert_eq!(open(&pairs), Some(f.session.clone()));
            return Ok(());
        }
        prop_assert_eq!(open(&pairs), None, "order {:?} drop {:?}", order, drop);
        let joined: String = pairs.iter().map(|(_, v)| v.as_str()).collect();
        prop_assert_eq!(open(&[(NAME.to_owned(), joined)]), None);
    }

    /// A value sealed under another cookie name (the CSRF cookie, or any other name) never
    /// opens as the session cookie, even when its plaintext is a valid session.
    #[test]
    fn value_sealed_under_another_name_never_opens(
        session in arb_session(),
        other in proptest::string::string_regex("[A-Za-z0-9_.-]{1,40}").unwrap(),
    ) {
        let json = serde_json::to_string(&session).unwrap();
        for name in [CSRF_NAME, other.as_str()] {
            prop_assume!(name != NAME);
            let sealed = codec().sealer().seal(name, &json);
            // Sanity: it is a valid sealed value for its own name.
            prop_assert!(codec().sealer().open(name, &sealed).is_some());
            prop_assert_eq!(open(&[(NAME.to_owned(), sealed.clone())]), None);
            prop_assert_eq!(open(&[(format!("{NAME}_0"), sealed)]), None);
        }
        // And the honest way still works for the same session.
        let pairs = browser(Vec::new(), &codec().write(&session, &RequestCookies::default()));
        prop_assert_eq!(open(&pairs), Some(session));
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// write → browser → open gives back an equal session; no Set-Cookie reaches 4096
    /// bytes; writing over the jar of a previous (possibly chunked) session leaves no
    /// stale chunk behind.
    #[test]
    fn round_trip_through_a_browser(previous in arb_session(), session in arb_session()) {
        let first = codec().write(&previous, &RequestCookies::default());
        let jar = browser(Vec::new(), &first);
        prop_assert_eq!(open(&jar), Some(previous));

        let set = codec().write(&session, &request(&jar));
        for s in first.iter().chain(&set) {
            prop_assert!(s.len() < 4096, "Set-Cookie of {} bytes", s.len());
            prop_assert!(s.contains("HttpOnly") && s.contains("Secure") && s.contains("Path=/"));
        }
        let fresh = browser(Vec::new(), &set);
        prop_assert_eq!(open(&fresh), Some(session.clone()));
        let updated = browser(jar, &set);
        prop_assert_eq!(open(&updated), Some(session));
        // Only the cookies just written remain: no stale chunk.
        let mut names: Vec<&str> = updated.iter().map(|(n, _)| n.as_str()).collect();
        let mut fresh_names: Vec<&str> = fresh.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        fresh_names.sort_unstable();
        prop_assert_eq!(names, fresh_names);
    }
}

// ---------------------------------------------------------------------------------------
// Redirects and request paths.

fn policy() -> &'static RedirectPolicy {
    static P: OnceLock<RedirectPolicy> = OnceLock::new();
    P.get_or_init(|| {
        let rules: Vec<DomainRule> = [".bar.foo", "port.bar:8080", "anyport.bar:*"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        RedirectPolicy::new(&Url::parse("https://rocketgate.internal").unwrap(), rules)
    })
}

/// Pieces that parser-confusion payloads are made of, so that random concatenations hit
/// the interesting cases far more often than uniformly random strings would.
const PIECES: &[&str] = &[
    "/",
    "//",
    "\\",
    "/\\",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "%25",
    ".",
    "..",
    "%2e",
    "@",
    ":",
    "?",
    "#",
    "http:",
    "https:",
    "https://",
    "HTTPS://",
    "evil.com",
    "bar.foo",
    "x.bar.foo",
    "port.bar:8080",
    "rocketgate.internal",
    "app",
    "a=b",
    "&",
    "\t",
    "\n",
    "\r",
    "\0",
    "\u{7f}",
    "\u{85}",
    "\u{9b}",
    "\u{200b}",
    " ",
    "%09",
    "%0a",
    "%0d",
    "%00",
    "%7f",
    "%C2%85",
    "\u{ff0f}",
    "\u{2215}",
];

fn pieces(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(PIECES), 0..max).prop_map(|v| v.concat())
}

fn redirect_candidate() -> impl Strategy<Value = String> {
    prop_oneof![
        pieces(10),
        (pieces(4), any::<String>(), pieces(4)).prop_map(|(a, b, c)| a + &b + &c),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config(2048))]

    /// Nothing with a backslash or an ASCII control character (raw or once percent-decoded)
    /// is ever accepted, and whatever is accepted does not start with `//` or `/\`.
    #[test]
    fn redirect_never_accepts_backslash_or_control(rd in redirect_candidate()) {
        if let Some(loc) = policy().check(&rd) {
            prop_assert!(!rd.contains('\\'), "{:?} -> {:?}", rd, loc);
            prop_assert!(!rd.chars().any(|c| c.is_ascii_control()), "{:?} -> {:?}", rd, loc);
            let decoded: Vec<u8> = percent_decode_str(&rd).collect();
            prop_assert!(
                !decoded.iter().any(|b| b.is_ascii_control() || *b == b'\\'),
                "{:?} decodes to a control or backslash", rd
            );
            prop_assert!(!loc.starts_with("//") && !loc.starts_with("/\\"), "{:?} -> {:?}", rd, loc);
            if loc.starts_with('/') {
                prop_assert_eq!(&loc, &rd);
            } else {
                let host = Url::parse(&loc).unwrap().host_str().unwrap_or("").to_owned();
                prop_assert!(
                    host == "rocketgate.internal"
                        || host == "bar.foo"
                        || host.ends_with(".bar.foo")
                        || host == "port.bar"
                        || host == "anyport.bar",
                    "{:?} -> {:?}", rd, loc
                );
            }
        }
    }

    /// `//` followed by anything is a scheme-relative URL: never accepted.
    #[test]
    fn redirect_never_accepts_double_slash(rest in prop_oneof![pieces(8), any::<String>()]) {
        let rd = format!("//{rest}");
        prop_assert_eq!(policy().check(&rd), None, "{:?}", rd);
    }

    /// Plain relative paths made of safe characters are accepted unchanged (so the
    /// rejections above are not vacuous).
    #[test]
    fn redirect_accepts_plain_paths(segs in proptest::collection::vec("[a-zA-Z0-9_-]{1,8}", 0..5)) {
        let rd = format!("/{}", segs.join("/"));
        prop_assert_eq!(policy().check(&rd), Some(rd.clone()));
    }
}

/// One path segment, with each `.` possibly percent-encoded in either case.
fn dots(n: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(&[".", "%2e", "%2E"][..]), n)
        .prop_map(|v| v.concat())
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex("[a-zA-Z0-9._~-]{0,6}").unwrap(),
        pieces(3),
        dots(1),
        dots(2),
        dots(3),
        "%[0-9a-fA-F]{2}",
    ]
}

proptest! {
    #![proptest_config(config(2048))]

    /// Whatever path is accepted has no `.` or `..` segment after decoding it once, no
    /// backslash and no control character.
    #[test]
    fn request_path_never_accepts_dot_segments(
        segs in proptest::collection::vec(segment(), 0..8),
    ) {
        let raw = format!("/{}", segs.join("/"));
        if let Ok(p) = RequestPath::parse(&raw) {
            let decoded = percent_decode_str(&raw).decode_utf8_lossy().into_owned();
            prop_assert!(
                !decoded.split('/').any(|s| s == ".." || s == "."),
                "{:?} accepted as {:?}", raw, p
            );
            prop_assert!(!p.as_str().contains('\\'));
            prop_assert!(!p.as_str().chars().any(|c| c.is_ascii_control()));
            prop_assert_eq!(p.as_str(), decoded.as_str());
        }
    }

    /// A `..` segment, however its dots are encoded and wherever it sits, is refused.
    #[test]
    fn request_path_refuses_encoded_dot_dot(
        before in proptest::collection::vec("[a-z0-9]{1,6}", 0..4),
        dotdot in dots(2),
        after in proptest::collection::vec("[a-z0-9]{1,6}", 0..4),
        trailing_slash in any::<bool>(),
    ) {
        let mut segs = before;
        segs.push(dotdot);
        segs.extend(after);
        let raw = format!("/{}{}", segs.join("/"), if trailing_slash { "/" } else { "" });
        prop_assert!(RequestPath::parse(&raw).is_err(), "{:?} accepted", raw);
    }
}

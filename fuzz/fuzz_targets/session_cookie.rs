//! The sealed, chunked session cookie (`CookieCodec::open` / `write`).
//!
//! The first input byte chooses a mode:
//! * `% 4 == 0 | 1`, raw: the rest is a whole `Cookie` header value (skipped if it is not a
//!   valid header value). `open` must not panic; if it opens anything, that can only be one
//!   of the two fixture sessions (nothing else is ever sealed under the fixture keys), and
//!   writing a session on top of whatever the browser held must leave a jar that opens to
//!   exactly that session (no stale chunk survives, every `Set-Cookie` < 4096 bytes).
//! * `% 4 == 2 | 3`, mutate: the small (2) or chunked (3) fixture session is written by the
//!   codec, then the rest of the input is read as edit operations (5 bytes each) on the
//!   cookies the browser would send: replace/delete/insert a byte of a value, truncate a
//!   value, swap/drop chunks, or put a copy of one chunk first under another name.
//!   `open` must succeed iff the sealed value the codec reads (plain cookie, else chunks
//!   `_0`, `_1`, ... up to the first gap; first occurrence of a name wins) is byte-for-byte
//!   the original one, and then it must yield the original session.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rocketgate::session::RequestCookies;

use rocketgate_fuzz::{
    COOKIE_NAME, apply_set_cookies, browser_pairs, codec, cookie_header, fixtures, request_cookies,
};

/// Bytes allowed in a cookie value by RFC 6265 (`cookie-octet`): mutations stay inside
/// this set so that the header parses into the same pairs we model.
const OCTETS: &[u8] =
    b"!#$%&'()*+-./0123456789:<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~";

struct Original {
    pairs: Vec<(String, String)>,
    sealed: String,
}

fn original(i: usize) -> &'static Original {
    static O: OnceLock<[Original; 2]> = OnceLock::new();
    &O.get_or_init(|| {
        [0, 1].map(|i| {
            let set = codec().write(&fixtures()[i], &RequestCookies::default());
            let pairs = browser_pairs(&set);
            let sealed = effective(&pairs).expect("fixture cookie is readable");
            assert_eq!(pairs.len() > 1, i == 1, "fixture 1 is chunked, 0 is not");
            Original { pairs, sealed }
        })
    })[i]
}

/// What `CookieCodec::open` reads from these pairs, modelled independently.
fn effective(pairs: &[(String, String)]) -> Option<String> {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    if let Some(v) = get(COOKIE_NAME) {
        return Some(v);
    }
    let mut joined = String::new();
    for i in 0.. {
        match get(&format!("{COOKIE_NAME}_{i}")) {
            Some(part) => joined.push_str(&part),
            None if i == 0 => return None,
            None => break,
        }
    }
    Some(joined)
}

fn raw(header: &[u8]) {
    let Some(jar) = request_cookies(header) else {
        return;
    };
    if let Some(opened) = codec().open(&jar) {
        assert!(
            fixtures().contains(&*opened.session),
            "opened a session that was never sealed: {:?}",
            opened.session
        );
    }
    // Whatever the browser held, writing a session must leave exactly that session.
    // `RequestCookies` only reads headers that are visible ASCII; model the same.
    let text = http::HeaderValue::from_bytes(header)
        .ok()
        .and_then(|v| v.to_str().ok().map(str::to_owned))
        .unwrap_or_default();
    let mut held: Vec<(String, String)> = Vec::new();
    for pair in text.split(';') {
        if let Some((n, v)) = pair.split_once('=') {
            let n = n.trim();
            if !n.is_empty() && !held.iter().any(|(h, _)| h == n) {
                held.push((n.to_owned(), v.trim().to_owned()));
            }
        }
    }
    for (k, session) in fixtures().iter().enumerate() {
        let set = codec().write(session, &jar);
        assert!(set.iter().all(|s| s.len() < 4096), "oversized Set-Cookie");
        let after = apply_set_cookies(held.clone(), &set);
        let header = cookie_header(&after);
        let reopened = request_cookies(header.as_bytes()).expect("jar is a valid header");
        let got = codec().open(&reopened);
        assert_eq!(
            got.map(|o| (*o.session).clone()).as_ref(),
            Some(session),
            "fixture {k} written over {text:?} does not read back; jar after: {header:?}"
        );
    }
}

fn mutate(which: usize, ops: &[u8]) {
    let orig = original(which);
    let mut pairs = orig.pairs.clone();
    for op in ops.chunks_exact(5).take(8) {
        let n = pairs.len();
        if n == 0 {
            break;
        }
        let part = op[1] as usize % n;
        let pos = u16::from_be_bytes([op[2], op[3]]) as usize;
        let octet = OCTETS[op[4] as usize % OCTETS.len()];
        let value = &mut pairs[part].1;
        match op[0] % 7 {
            0 if !value.is_empty() => {
                let at = pos % value.len();
                value.replace_range(at..at + 1, &(octet as char).to_string());
            }
            1 if !value.is_empty() => {
                value.remove(pos % value.len());
            }
            2 => {
                let at = pos % (value.len() + 1);
                value.insert(at, octet as char);
            }
            3 => {
                let at = pos % (value.len() + 1);
                value.truncate(at);
            }
            4 => {
                let other = op[4] as usize % n;
                let (a, b) = (pairs[part].1.clone(), pairs[other].1.clone());
                pairs[part].1 = b;
                pairs[other].1 = a;
            }
            5 => {
                pairs.remove(part);
            }
            6 => {
                let name = pairs[op[4] as usize % n].0.clone();
                let copy = (name, pairs[part].1.clone());
                pairs.insert(0, copy);
            }
            _ => {}
        }
    }
    let header = cookie_header(&pairs);
    let jar = request_cookies(header.as_bytes()).expect("cookie-octets form a valid header");
    let unchanged = effective(&pairs).as_deref() == Some(orig.sealed.as_str());
    let opened = codec().open(&jar);
    assert_eq!(
        opened.is_some(),
        unchanged,
        "open() disagrees with 'sealed value unchanged' for {header:?}"
    );
    if let Some(o) = opened {
        assert_eq!(*o.session, fixtures()[which]);
        assert!(!o.reseal, "sealed with the current key");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 | 1 => raw(rest),
        m => mutate(usize::from(m - 2), rest),
    }
});

//! `RequestPath::parse` on arbitrary UTF-8, then `SkipRoutes::matches` on a fixed route set.
//!
//! An accepted path must start with `/`, contain no `.`/`..` segment, no `\` and no control
//! character; it must be exactly the once-percent-decoded input with the same segments
//! (no encoded `/`); the raw input must have no `?`, `#` or `\`. For GET, POST and HEAD,
//! `matches` must agree with a hand-written oracle for the fixed routes.
#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use rocketgate::access::RequestPath;
use rocketgate_fuzz::{routes, routes_expect};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = RequestPath::parse(raw) else {
        return;
    };
    let s = path.as_str();
    assert!(s.starts_with('/'), "{raw:?} -> {s:?}");
    assert!(
        !s.split('/').any(|seg| seg == "." || seg == ".."),
        "dot segment accepted: {raw:?} -> {s:?}"
    );
    assert!(!s.contains('\\'), "backslash accepted: {raw:?} -> {s:?}");
    assert!(!s.chars().any(|c| c.is_ascii_control()), "control: {raw:?}");
    assert!(!raw.contains(['?', '#', '\\']), "{raw:?}");
    let once = percent_decode_str(raw).decode_utf8();
    assert_eq!(once.as_deref(), Ok(s), "not decoded exactly once: {raw:?}");
    assert_eq!(
        raw.split('/').count(),
        s.split('/').count(),
        "segments changed by decoding: {raw:?} -> {s:?}"
    );
    for m in [Method::GET, Method::POST, Method::HEAD] {
        assert_eq!(
            routes().matches(&m, &path),
            routes_expect(&m, s),
            "{m} {s:?}"
        );
    }
});

//! `RedirectPolicy::check` on arbitrary UTF-8. Anything accepted must be either a relative
//! path with exactly one leading `/` (not `//`, not `/\`), free of control characters and
//! backslashes (raw and once-decoded), that a WHATWG parser keeps on the proxy's origin; or
//! an http(s) URL with no userinfo whose host is the public host (same port) or allowed by
//! the fixed rules `.bar.foo` / `port.bar:8080` (checked by an independent oracle).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocketgate_fuzz::{assert_redirect_safe, policy};

fuzz_target!(|data: &[u8]| {
    let Ok(rd) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(accepted) = policy().check(rd) {
        assert_redirect_safe(rd, &accepted);
    }
});

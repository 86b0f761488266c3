//! `config::load_from_str` on arbitrary UTF-8 with an empty environment: Ok or Err, never
//! a panic. An Ok config must satisfy what the rest of the proxy relies on without
//! re-checking; an Err must name at least one problem.
//!
//! Inputs that could name a file (`secret_file`, `client_secret_file`) are skipped: the
//! loader reads such paths, and the fuzzer must not open `/dev/zero` or a FIFO and hang.
//! A key could also be spelled with escapes in a quoted key (`"secret_\u0066ile"`), hence
//! the `\u`/`\U`/`\x` filter.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn empty() -> &'static HashMap<String, String> {
    static E: OnceLock<HashMap<String, String>> = OnceLock::new();
    E.get_or_init(HashMap::new)
}

fuzz_target!(|data: &[u8]| {
    let Ok(toml) = std::str::from_utf8(data) else {
        return;
    };
    let lower = toml.to_ascii_lowercase();
    if lower.contains("file")
        || toml.contains("\\u")
        || toml.contains("\\U")
        || toml.contains("\\x")
    {
        return;
    }
    match rocketgate::config::load_from_str(toml, empty()) {
        Ok(c) => {
            assert!(!c.cookie.keys.is_empty(), "no sealing key");
            assert!(c.cookie.expire.as_secs() >= 1);
            assert!(!c.cookie.name.is_empty());
            assert_eq!(c.public_url.path(), "/");
            assert!(c.public_url.query().is_none());
            assert!(matches!(c.public_url.scheme(), "http" | "https"));
            for route in c.routes.iter() {
                assert!(matches!(route.target.scheme(), "http" | "https"));
            }
            assert!(c.provider.claims.user.starts_with('/'));
            assert!(!c.provider.client_secret.expose().trim().is_empty());
            let _ = c.redirect_uri();
            let _ = format!("{c:?}");
        }
        Err(e) => {
            assert!(!e.problems().is_empty(), "error without a problem: {e:?}");
            let _ = e.to_string();
        }
    }
});

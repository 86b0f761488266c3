//! Writes the committed seed corpus under `fuzz/seeds/<target>/`.
//!
//!     cd fuzz && cargo run --example gen_seeds
//!
//! Session cookie seeds carry real values sealed with the fixture keys (fresh nonces on
//! every run, so re-running changes those files; that is harmless).

use std::fs;
use std::path::Path;

use rocketgate::session::RequestCookies;
use rocketgate_fuzz::{browser_pairs, codec, codec_with, cookie_header, fixtures, old_key};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    // session_cookie: mode byte 0 = raw header, 2/3 = mutate the small/chunked fixture.
    let empty = RequestCookies::default();
    let old_only = codec_with(vec![old_key()]);
    for (i, session) in fixtures().iter().enumerate() {
        let header = cookie_header(&browser_pairs(&codec().write(session, &empty)));
        let mut raw = vec![0u8];
        raw.extend_from_slice(format!("theme=dark; {header}; app=1").as_bytes());
        write("session_cookie", &format!("raw_fixture{i}"), &raw);
        let old = cookie_header(&browser_pairs(&old_only.write(session, &empty)));
        let mut raw = vec![0u8];
        raw.extend_from_slice(old.as_bytes());
        write("session_cookie", &format!("raw_fixture{i}_old_key"), &raw);
    }
    write(
        "session_cookie",
        "raw_stale_chunks",
        b"\x00_rocketgate=x; _rocketgate_0=y; _rocketgate_7=z; _rocketgate_=w",
    );
    write("session_cookie", "mutate_small_untouched", &[2]);
    write("session_cookie", "mutate_chunked_untouched", &[3]);
    write("session_cookie", "mutate_small_flip", &[2, 0, 0, 0, 40, 7]);
    write("session_cookie", "mutate_chunked_swap", &[3, 4, 0, 0, 0, 1]);
    write(
        "session_cookie",
        "mutate_chunked_drop_last",
        &[3, 5, 2, 0, 0, 0],
    );
    write(
        "session_cookie",
        "mutate_chunked_truncate",
        &[3, 3, 1, 0, 100, 0],
    );

    // redirect
    for (i, rd) in [
        "/app",
        "/app?x=1#frag",
        "//evil.com",
        "/\\evil.com",
        "/%2F%2Fevil.com",
        "/./\\evil.com",
        "https://foo.bar/x",
        "https://app.bar.foo/x?y=1",
        "http://port.bar:8080/",
        "https://rocketgate.internal/back",
        "https://evil.com/",
        "https%3A%2F%2Fevil.com",
        "https://@evil.com",
        "https:evil.com",
        "/%09/evil.com",
    ]
    .iter()
    .enumerate()
    {
        write("redirect", &format!("seed{i:02}"), rd.as_bytes());
    }

    // skip_route
    for (i, p) in [
        "/public/x",
        "/public/%2e%2e/x",
        "/public/../admin",
        "/public%2Fx",
        "/health",
        "/api/v12/hook",
        "/caf%C3%A9/menu",
        "/public/%252e%252e/",
        "/a.b/...x/..../.well-known",
        "/v1.%2e",
    ]
    .iter()
    .enumerate()
    {
        write("skip_route", &format!("seed{i:02}"), p.as_bytes());
    }

    // config
    let minimal = r#"upstream = "http://127.0.0.1:8080"
public_url = "https://app.example.com"
[provider]
client_id = "id"
client_secret = "secret"
[cookie]
secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
"#;
    write("config", "minimal", minimal.as_bytes());
    let full = format!(
        r#"{minimal}secure = true
same_site = "strict"
expire = "1d"
secrets = ["YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="]
[session]
refresh_before = "5m"
rotation_grace = "60s"
[access]
allowed_emails = ["ada@example.com"]
allowed_email_domains = ["example.com"]
skip_auth_routes = ["GET=^/health$", "^/public/"]
redirect_domains = [".bar.foo", "port.bar:8080", "*.wild.example:*"]
[headers]
pass_access_token = true
[limits]
header_read_timeout = "10s"
max_connections = 100
"#
    );
    write("config", "full", full.as_bytes());
    write("config", "empty", b"");
    write(
        "config",
        "bad_secret",
        minimal.replace("MDEy", "!!").as_bytes(),
    );
}

//! `[cookie]`: the session cookie's name, keys and attributes.

use base64::Engine as _;
use url::Url;

use super::CookieSettings;
use super::problems::{Problems, duration, read_secret_file};
use super::raw::RawCookie;

pub const DEFAULT_NAME: &str = "_rocketgate";
pub const DEFAULT_SAME_SITE: &str = "lax";
/// The cookie's Max-Age and a session's absolute lifetime.
pub const DEFAULT_EXPIRE: &str = "7d";

pub(super) fn validate(
    p: &mut Problems,
    raw: RawCookie,
    public_url: Option<&Url>,
) -> Option<CookieSettings> {
    let name = raw.name.unwrap_or_else(|| DEFAULT_NAME.to_owned());
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !name_ok {
        p.add(
            "cookie.name",
            format!("must be letters, digits, '_', '-' or '.', got {name:?}"),
        );
    }

    let mut encoded: Vec<(String, String)> = Vec::new();
    match (raw.secret, raw.secret_file) {
        (Some(_), Some(_)) => p.add(
            "cookie.secret",
            "set either secret or secret_file, not both",
        ),
        (Some(s), None) => encoded.push(("cookie.secret".into(), s)),
        (None, Some(path)) => {
            if let Some(s) = p.take("cookie.secret_file", read_secret_file(&path)) {
                encoded.push(("cookie.secret_file".into(), s));
            }
        }
        (None, None) => {}
    }
    for (i, s) in raw.secrets.unwrap_or_default().into_iter().enumerate() {
        encoded.push((format!("cookie.secrets[{i}]"), s));
    }
    if encoded.is_empty() {
        p.add(
            "cookie.secret",
            "is required: 32 random bytes in base64 (run `rocketgate generate-secret`)",
        );
    }
    let keys: Vec<cookie::Key> = encoded
        .iter()
        .filter_map(|(key, value)| p.take(key, cookie_key(value)))
        .collect();

    let secure = raw
        .secure
        .unwrap_or_else(|| public_url.is_none_or(|u| u.scheme() == "https"));
    let same_site = match raw
        .same_site
        .as_deref()
        .unwrap_or(DEFAULT_SAME_SITE)
        .to_ascii_lowercase()
        .as_str()
    {
        "lax" => Some(cookie::SameSite::Lax),
        "strict" => Some(cookie::SameSite::Strict),
        "none" => {
            if !secure {
                p.add(
                    "cookie.same_site",
                    "\"none\" requires cookie.secure = true (browsers drop such cookies otherwise)",
                );
            }
            Some(cookie::SameSite::None)
        }
        other => {
            p.add(
                "cookie.same_site",
                format!("must be \"lax\", \"strict\" or \"none\", got {other:?}"),
            );
            None
        }
    };
    let expire = duration(p, "cookie.expire", &raw.expire, DEFAULT_EXPIRE);
    if expire.is_some_and(|d| d.as_secs() == 0) {
        p.add("cookie.expire", "must be at least one second");
    }
    let domain = raw
        .domain
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .and_then(|d| p.take("cookie.domain", cookie_domain(d, public_url)));
    // Browsers refuse prefixed cookies whose attributes break the prefix's promise, so such
    // a name would mean nobody can ever sign in: say so now.
    if has_prefix(&name, "__Host-") {
        if !secure {
            p.add(
                "cookie.name",
                "a \"__Host-\" cookie must be Secure: set cookie.secure = true and serve over https",
            );
        }
        if domain.is_some() {
            p.add(
                "cookie.domain",
                "must not be set with a \"__Host-\" cookie name (such cookies are host-only by definition)",
            );
        }
    } else if has_prefix(&name, "__Secure-") && !secure {
        p.add(
            "cookie.name",
            "a \"__Secure-\" cookie must be Secure: set cookie.secure = true and serve over https",
        );
    }
    if !name_ok || keys.len() != encoded.len() || encoded.is_empty() {
        return None;
    }
    Some(CookieSettings {
        name,
        keys,
        secure,
        same_site: same_site?,
        expire: expire?,
        domain,
    })
}

/// Whether a cookie name starts with one of the prefixes browsers enforce, in any case
/// (browsers compare them case-insensitively).
fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// `cookie.domain`: a host name (a leading dot is dropped, as browsers do) that `public_url`'s
/// host is, or is under; otherwise browsers would drop every cookie we set.
fn cookie_domain(value: &str, public_url: Option<&Url>) -> Result<String, String> {
    let domain = value.trim_start_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.is_empty() || domain.len() > 253 || !domain.split('.').all(label_ok) {
        return Err(format!(
            "must be a host name like \"example.com\", got {value:?}"
        ));
    }
    if domain.parse::<std::net::IpAddr>().is_ok() || !domain.contains('.') {
        return Err(format!(
            "must be a domain with at least two labels (not an IP address), got {value:?}"
        ));
    }
    if let Some(host) = public_url.and_then(Url::host_str) {
        let host = host.to_ascii_lowercase();
        if host != domain && !host.ends_with(&format!(".{domain}")) {
            return Err(format!(
                "public_url's host {host:?} is not {domain:?} or under it, so browsers would drop the cookie"
            ));
        }
    }
    Ok(domain)
}

/// Decodes a cookie secret. The cookie crate panics on short key material, so the length
/// is checked here, before it ever sees the bytes.
fn cookie_key(value: &str) -> Result<cookie::Key, String> {
    let value = value.trim();
    let bytes = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ]
    .iter()
    .find_map(|engine| engine.decode(value).ok())
    .ok_or("must be base64 (run `rocketgate generate-secret`)")?;
    if bytes.len() != 32 {
        return Err(format!(
            "must decode to 32 bytes, got {}: make a new one with `rocketgate generate-secret` \
             (an oauth2-proxy cookie_secret of 16 or 24 bytes cannot be reused; its users sign \
             in once more anyway, since the cookie format differs)",
            bytes.len()
        ));
    }
    Ok(cookie::Key::derive_from(&bytes))
}

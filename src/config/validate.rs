//! Turning a [`RawConfig`] into a [`Config`], collecting every problem by key.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use url::Url;

use super::raw::RawConfig;
use super::*;
use crate::access::{DomainRule, EmailPolicy, RedirectPolicy, SkipRoute, SkipRoutes};
use crate::tls::{CaBundle, TlsError};

/// Collects problems so that one run of `check-config` shows all of them.
#[derive(Default)]
pub(super) struct Problems(Vec<ConfigProblem>);

impl Problems {
    pub(super) fn add(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// Records `result`'s error under `key` and returns its value, if any.
    pub(super) fn take<T, E: std::fmt::Display>(
        &mut self,
        key: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        result.map_err(|e| self.add(key, e.to_string())).ok()
    }
}

pub(super) fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let mut p = Problems::default();

    let listen = p.take(
        "listen",
        raw.listen
            .as_deref()
            .unwrap_or("0.0.0.0:4180")
            .parse::<SocketAddr>()
            .map_err(|_| "must be an address with a port, like \"0.0.0.0:4180\""),
    );
    let metrics_listen = raw.metrics_listen.as_deref().and_then(|v| {
        p.take(
            "metrics_listen",
            v.parse::<SocketAddr>()
                .map_err(|_| "must be an address with a port, like \"127.0.0.1:9100\""),
        )
    });
    let upstream = required(&mut p, "upstream", raw.upstream.as_deref())
        .and_then(|v| p.take("upstream", http_url(v)));
    let public_url = required(&mut p, "public_url", raw.public_url.as_deref())
        .and_then(|v| p.take("public_url", http_url(v)));
    if let Some(url) = &public_url
        && (url.path() != "/" || url.query().is_some())
    {
        p.add(
            "public_url",
            "must be scheme and host only (rocketgate owns /oauth2 at the root)",
        );
    }
    let upstream_timeout = duration(&mut p, "upstream_timeout", &raw.upstream_timeout, "30s");
    let shutdown_delay = duration(&mut p, "shutdown_delay", &raw.shutdown_delay, "5s");
    let shutdown_timeout = duration(&mut p, "shutdown_timeout", &raw.shutdown_timeout, "30s");
    let log_format = match raw.log_format.as_deref().unwrap_or("text") {
        "text" => Some(LogFormat::Text),
        "json" => Some(LogFormat::Json),
        other => {
            p.add(
                "log_format",
                format!("must be \"text\" or \"json\", got {other:?}"),
            );
            None
        }
    };

    let mut nets = Vec::new();
    for (i, entry) in raw.trusted_proxies.iter().enumerate() {
        if let Some(net) = p.take(
            &format!("trusted_proxies[{i}]"),
            crate::forwarded::parse_net(entry),
        ) {
            nets.push(net);
        }
    }
    let upstream_ca = ca_bundle(&mut p, "upstream_ca_file", raw.upstream_ca_file.as_deref());
    let has_jwks_url = raw.provider.jwks_url.is_some();
    let provider = provider(&mut p, raw.provider);
    let cookie = cookie(&mut p, raw.cookie, public_url.as_ref());

    let store = super::store::session_store(&mut p, &raw.session);
    let admin = super::store::admin(&mut p, raw.admin, store.as_ref());
    let refresh_before = duration(
        &mut p,
        "session.refresh_before",
        &raw.session.refresh_before,
        "5m",
    );
    let rotation_grace = duration(
        &mut p,
        "session.rotation_grace",
        &raw.session.rotation_grace,
        "60s",
    );

    let emails = match EmailPolicy::new(raw.access.allowed_emails, raw.access.allowed_email_domains)
    {
        Ok(policy) => Some(policy),
        Err(e) => {
            p.add(&format!("access.{}", e.key()), e.to_string());
            None
        }
    };
    let mut routes = Vec::new();
    for (i, route) in raw.access.skip_auth_routes.iter().enumerate() {
        if let Some(r) = p.take(
            &format!("access.skip_auth_routes[{i}]"),
            route.parse::<SkipRoute>(),
        ) {
            routes.push(r);
        }
    }
    let mut rules = Vec::new();
    for (i, rule) in raw.access.redirect_domains.iter().enumerate() {
        if let Some(r) = p.take(
            &format!("access.redirect_domains[{i}]"),
            rule.parse::<DomainRule>(),
        ) {
            rules.push(r);
        }
    }

    let header_read_timeout = duration(
        &mut p,
        "limits.header_read_timeout",
        &raw.limits.header_read_timeout,
        "10s",
    );
    let idle_timeout = duration(
        &mut p,
        "limits.idle_timeout",
        &raw.limits.idle_timeout,
        "60s",
    );
    let max_connections = raw.limits.max_connections.unwrap_or(10_000);
    if max_connections == 0 {
        p.add("limits.max_connections", "must be at least 1");
    }
    // hyper refuses (panics on) buffers under 8 KiB, so the bound is checked here.
    let max_header_bytes = raw.limits.max_header_bytes.unwrap_or(32 * 1024);
    if !(8192..=16 * 1024 * 1024).contains(&max_header_bytes) {
        p.add(
            "limits.max_header_bytes",
            format!("must be between 8192 and 16777216, got {max_header_bytes}"),
        );
    }
    let max_logins_per_client = raw.limits.max_logins_per_client.unwrap_or(10);
    if max_logins_per_client == 0 {
        p.add("limits.max_logins_per_client", "must be at least 1");
    }

    let tls = tls(&mut p, raw.tls);
    let default_name = public_url
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "this application".to_owned());
    let pages = match super::pages::pages(raw.pages, &default_name) {
        Ok(pages) => Some(pages),
        Err(problems) => {
            for (key, message) in problems {
                p.add(&key, message);
            }
            None
        }
    };
    let accept_bearer_tokens = raw.access.accept_bearer_tokens.unwrap_or(false);
    if accept_bearer_tokens && !has_jwks_url {
        p.add(
            "access.accept_bearer_tokens",
            "requires provider.jwks_url (Rocketpunch's signing keys) to verify tokens",
        );
    }
    let assertion = assertion(&mut p, raw.assertion, upstream.as_ref());

    if !p.0.is_empty() {
        return Err(ConfigError::Invalid(p.0));
    }
    // Every `None` above added a problem, so this is only a formality.
    let (
        Some(listen),
        Some(upstream),
        Some(public_url),
        Some(upstream_timeout),
        Some(shutdown_delay),
        Some(shutdown_timeout),
        Some(log_format),
        Some(provider),
        Some(cookie),
        Some(store),
        Some(refresh_before),
        Some(emails),
        Some(header_read_timeout),
        Some(rotation_grace),
        Some(idle_timeout),
        Some(pages),
    ) = (
        listen,
        upstream,
        public_url,
        upstream_timeout,
        shutdown_delay,
        shutdown_timeout,
        log_format,
        provider,
        cookie,
        store,
        refresh_before,
        emails,
        header_read_timeout,
        rotation_grace,
        idle_timeout,
        pages,
    )
    else {
        return Err(ConfigError::Invalid(vec![ConfigProblem {
            key: "(config)".into(),
            message: "incomplete configuration".into(),
        }]));
    };
    let redirects = RedirectPolicy::new(&public_url, rules);
    Ok(Config {
        listen,
        upstream,
        upstream_timeout,
        public_url,
        shutdown_delay,
        shutdown_timeout,
        log_format,
        metrics_listen,
        trusted_proxies: TrustedProxies::new(nets),
        provider,
        cookie,
        session: SessionSettings {
            store,
            refresh_before,
            refresh_profile: raw.session.refresh_profile.unwrap_or(true),
            rotation_grace,
        },
        access: AccessSettings {
            emails,
            skip_routes: SkipRoutes::new(routes),
            redirects,
            accept_bearer_tokens,
        },
        headers: HeaderSettings {
            pass_access_token: raw.headers.pass_access_token.unwrap_or(false),
            pass_authorization_header: raw.headers.pass_authorization_header.unwrap_or(false),
        },
        limits: Limits {
            header_read_timeout,
            idle_timeout,
            max_header_bytes,
            max_connections,
            max_logins_per_client,
        },
        upstream_ca: upstream_ca.unwrap_or_default(),
        tls,
        pages,
        assertion,
        admin,
    })
}

fn assertion(
    p: &mut Problems,
    raw: raw::RawAssertion,
    upstream: Option<&Url>,
) -> Option<AssertionSettings> {
    let enabled = raw.enabled.unwrap_or(false);
    let algorithm = raw.algorithm.as_deref().unwrap_or("ES256");
    if algorithm != "ES256" {
        p.add(
            "assertion.algorithm",
            format!("only \"ES256\" is supported, got {algorithm:?}"),
        );
    }
    let lifetime = duration(p, "assertion.lifetime", &raw.lifetime, "5m");
    if let Some(l) = lifetime
        && !(crate::assertion::MIN_LIFETIME..=Duration::from_secs(86_400)).contains(&l)
    {
        p.add(
            "assertion.lifetime",
            "must be between 1m and 24h (cached assertions keep at least 30s of life)",
        );
    }
    let audience = match raw.audience {
        Some(a) if a.trim().is_empty() => {
            p.add("assertion.audience", "must not be empty when set");
            None
        }
        Some(a) => Some(a.trim().to_owned()),
        None => upstream.and_then(Url::host_str).map(str::to_owned),
    };
    // A key file is checked even while assertions are off, so turning them on cannot fail.
    let key = match raw.key_file {
        Some(path) => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {path:?}: {e}"))
            .and_then(|text| SigningKey::from_pem(&text).map_err(|e| e.to_string()))
            .map_err(|e| p.add("assertion.key_file", e))
            .ok()
            .map(|key| (key, false)),
        None if enabled => p
            .take("assertion.key_file", SigningKey::generate())
            .map(|key| (key, true)),
        None => None,
    };
    if !enabled {
        return None;
    }
    let (key, generated_key) = key?;
    Some(AssertionSettings {
        lifetime: lifetime?,
        audience: audience?,
        key,
        generated_key,
    })
}

/// Records a TLS file problem under the key the error names.
fn tls_problem(p: &mut Problems, e: &TlsError) {
    p.add(e.key(), e.to_string());
}

/// Reads an optional CA bundle; `None` only when it was set and is unusable (a problem).
fn ca_bundle(p: &mut Problems, key: &'static str, path: Option<&str>) -> Option<CaBundle> {
    match path.map(str::trim) {
        None | Some("") => Some(CaBundle::default()),
        Some(path) => CaBundle::read(key, std::path::Path::new(path))
            .map_err(|e| tls_problem(p, &e))
            .ok(),
    }
}

/// `[tls]`: both files or neither; the pair is loaded and checked now so that a wrong file
/// stops start-up (and `check-config`) instead of failing every handshake later.
fn tls(p: &mut Problems, raw: raw::RawTls) -> Option<TlsSettings> {
    let reload_interval = duration(p, "tls.reload_interval", &raw.reload_interval, "10s");
    if reload_interval.is_some_and(|d| d.is_zero()) {
        p.add("tls.reload_interval", "must be more than zero");
    }
    let nonempty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (cert_file, key_file) = match (nonempty(raw.cert_file), nonempty(raw.key_file)) {
        (None, None) => return None,
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            p.add("tls.key_file", "is required when tls.cert_file is set");
            return None;
        }
        (None, Some(_)) => {
            p.add("tls.cert_file", "is required when tls.key_file is set");
            return None;
        }
    };
    let settings = TlsSettings {
        cert_file: cert_file.into(),
        key_file: key_file.into(),
        reload_interval: reload_interval.filter(|d| !d.is_zero())?,
    };
    match crate::tls::load_pair(&settings) {
        Ok(_) => Some(settings),
        Err(e) => {
            tls_problem(p, &e);
            None
        }
    }
}

fn required<'a>(p: &mut Problems, key: &str, value: Option<&'a str>) -> Option<&'a str> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Some(v),
        _ => {
            p.add(key, "is required");
            None
        }
    }
}

fn http_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("must be an http:// or https:// URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http:// or https:// URL, got scheme {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    Ok(url)
}

pub(super) fn duration(
    p: &mut Problems,
    key: &str,
    value: &Option<String>,
    default: &str,
) -> Option<Duration> {
    let text = value.as_deref().unwrap_or(default);
    // Beyond ten years a deadline computed from now can overflow the clock; nobody needs it.
    const MAX: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
    p.take(
        key,
        humantime::parse_duration(text.trim())
            .map_err(|e| format!("must be a duration like \"30s\" or \"5m\" ({e}), got {text:?}"))
            .and_then(|d| {
                if d > MAX {
                    Err(format!("must be at most 10 years, got {text:?}"))
                } else {
                    Ok(d)
                }
            }),
    )
}

fn provider(p: &mut Problems, raw: raw::RawProvider) -> Option<ProviderSettings> {
    let client_id = required(p, "provider.client_id", raw.client_id.as_deref()).map(str::to_owned);
    let client_secret = match (raw.client_secret, raw.client_secret_file) {
        (Some(_), Some(_)) => {
            p.add(
                "provider.client_secret",
                "set either client_secret or client_secret_file, not both",
            );
            None
        }
        (Some(s), None) if !s.trim().is_empty() => Some(Secret::new(s.trim().to_owned())),
        (None, Some(path)) => p
            .take("provider.client_secret_file", read_secret_file(&path))
            .map(Secret::new),
        _ => {
            p.add(
                "provider.client_secret",
                "is required (or provider.client_secret_file, or RP_CLIENT_SECRET)",
            );
            None
        }
    };
    let mut url = |key: &str, value: Option<String>, default: &str| {
        let text = value.unwrap_or_else(|| default.to_owned());
        p.take(key, http_url(&text))
    };
    let authorize_url = url(
        "provider.authorize_url",
        raw.authorize_url,
        DEFAULT_AUTHORIZE_URL,
    );
    let token_url = url("provider.token_url", raw.token_url, DEFAULT_TOKEN_URL);
    let profile_url = url("provider.profile_url", raw.profile_url, DEFAULT_PROFILE_URL);
    let scopes = raw
        .scopes
        .unwrap_or_else(|| vec!["profile:read".into(), "profile:email".into()]);
    if scopes.iter().any(|s| {
        s.is_empty()
            || s.chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    }) {
        p.add(
            "provider.scopes",
            "each scope must be a non-empty word without spaces, quotes or backslashes",
        );
    }
    let timeout = duration(p, "provider.timeout", &raw.timeout, "10s");
    let ca = ca_bundle(p, "provider.ca_file", raw.ca_file.as_deref());
    let jwks_url = raw
        .jwks_url
        .and_then(|u| p.take("provider.jwks_url", http_url(&u)));
    let issuer = match raw.issuer {
        Some(i) if i.trim().is_empty() => {
            p.add("provider.issuer", "must not be empty when set");
            None
        }
        other => other.map(|i| i.trim().to_owned()),
    };
    let mut pointer = |key: &str, value: Option<String>, default: &str| {
        let text = value.unwrap_or_else(|| default.to_owned());
        if text.starts_with('/') {
            Some(text)
        } else {
            p.add(
                key,
                format!("must be a JSON pointer starting with '/', like \"/id\", got {text:?}"),
            );
            None
        }
    };
    let claims = ClaimPointers {
        user: pointer("provider.claims.user", raw.claims.user, "/id")?,
        email: pointer("provider.claims.email", raw.claims.email, "/email")?,
        preferred_username: pointer(
            "provider.claims.preferred_username",
            raw.claims.preferred_username,
            "/username",
        )?,
    };
    Some(ProviderSettings {
        client_id: client_id?,
        client_secret: client_secret?,
        authorize_url: authorize_url?,
        token_url: token_url?,
        profile_url: profile_url?,
        scopes,
        timeout: timeout?,
        pkce: raw.pkce.unwrap_or(true),
        ca: ca?,
        jwks_url,
        issuer,
        claims,
    })
}

fn cookie(
    p: &mut Problems,
    raw: raw::RawCookie,
    public_url: Option<&Url>,
) -> Option<CookieSettings> {
    let name = raw.name.unwrap_or_else(|| "_rocketgate".to_owned());
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
        .unwrap_or("lax")
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
    let expire = duration(p, "cookie.expire", &raw.expire, "7d");
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
        return Err(format!("must decode to 32 bytes, got {}", bytes.len()));
    }
    Ok(cookie::Key::derive_from(&bytes))
}

pub(super) fn read_secret_file(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{path:?} is empty"));
    }
    Ok(text.to_owned())
}

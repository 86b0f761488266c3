//! The top-level keys (listener, upstream, public URL, shutdown, logging, trusted proxies),
//! `[limits]` and `[tls]`.

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use super::problems::{Problems, ca_bundle, duration, http_url, required, tls_problem};
use super::raw::{RawConfig, RawLimits, RawTls};
use super::{Limits, LogFormat};
use crate::forwarded::TrustedProxies;
use crate::tls::{CaBundle, TlsSettings};

pub const DEFAULT_LISTEN: &str = "0.0.0.0:4180";
pub const DEFAULT_UPSTREAM_TIMEOUT: &str = "30s";
/// How long `/ready` fails before draining starts, so load balancers stop sending first.
pub const DEFAULT_SHUTDOWN_DELAY: &str = "5s";
pub const DEFAULT_SHUTDOWN_TIMEOUT: &str = "30s";
pub const DEFAULT_LOG_FORMAT: &str = "text";
pub const DEFAULT_HEADER_READ_TIMEOUT: &str = "10s";
pub const DEFAULT_IDLE_TIMEOUT: &str = "60s";
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_MAX_LOGINS_PER_CLIENT: usize = 10;
pub const DEFAULT_TLS_RELOAD_INTERVAL: &str = "10s";
/// How often the configuration file is checked for changes; "0s" turns the check off.
pub const DEFAULT_CONFIG_RELOAD_INTERVAL: &str = "10s";

/// The top-level settings, validated.
pub(super) struct TopLevel {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    /// The default route's upstream; optional once `[[routes]]` exist.
    pub upstream: Option<Url>,
    pub upstream_timeout: Duration,
    pub config_reload_interval: Duration,
    pub public_url: Url,
    pub shutdown_delay: Duration,
    pub shutdown_timeout: Duration,
    pub log_format: LogFormat,
    pub trusted_proxies: TrustedProxies,
    pub upstream_ca: CaBundle,
}

/// The top-level keys; `public_url` is also returned on its own (when valid) because other
/// sections check against it even when something else at the top level is wrong.
pub(super) fn top_level(p: &mut Problems, raw: &RawConfig) -> (Option<TopLevel>, Option<Url>) {
    let listen = p.take(
        "listen",
        raw.listen
            .as_deref()
            .unwrap_or(DEFAULT_LISTEN)
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
    let metrics_listen_ok = raw.metrics_listen.is_none() || metrics_listen.is_some();
    let upstream = if raw.routes.is_empty() {
        required(p, "upstream", raw.upstream.as_deref())
    } else {
        raw.upstream.as_deref()
    }
    .map(|v| p.take("upstream", upstream_url(v)));
    let config_reload_interval = duration(
        p,
        "config_reload_interval",
        &raw.config_reload_interval,
        DEFAULT_CONFIG_RELOAD_INTERVAL,
    );
    let public_url = required(p, "public_url", raw.public_url.as_deref())
        .and_then(|v| p.take("public_url", http_url(v)));
    if let Some(url) = &public_url
        && (url.path() != "/" || url.query().is_some())
    {
        p.add(
            "public_url",
            "must be scheme and host only (rocketgate owns /oauth2 at the root)",
        );
    }
    let upstream_timeout = duration(
        p,
        "upstream_timeout",
        &raw.upstream_timeout,
        DEFAULT_UPSTREAM_TIMEOUT,
    );
    let shutdown_delay = duration(
        p,
        "shutdown_delay",
        &raw.shutdown_delay,
        DEFAULT_SHUTDOWN_DELAY,
    );
    let shutdown_timeout = duration(
        p,
        "shutdown_timeout",
        &raw.shutdown_timeout,
        DEFAULT_SHUTDOWN_TIMEOUT,
    );
    let log_format = match raw.log_format.as_deref().unwrap_or(DEFAULT_LOG_FORMAT) {
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
    let upstream_ca = ca_bundle(p, "upstream_ca_file", raw.upstream_ca_file.as_deref());
    let top = (|| {
        metrics_listen_ok.then_some(())?;
        Some(TopLevel {
            listen: listen?,
            metrics_listen,
            upstream: upstream.map(|u| u.ok_or(())).transpose().ok()?,
            upstream_timeout: upstream_timeout?,
            config_reload_interval: config_reload_interval?,
            public_url: public_url.clone()?,
            shutdown_delay: shutdown_delay?,
            shutdown_timeout: shutdown_timeout?,
            log_format: log_format?,
            trusted_proxies: TrustedProxies::new(nets),
            upstream_ca: upstream_ca?,
        })
    })();
    (top, public_url)
}

/// The upstream: `http://` (HTTP/1.1, gRPC over h2c), `h2c://` (HTTP/2 with prior
/// knowledge) or `https://` (ALPN), with a host and no credentials.
pub(super) fn upstream_url(value: &str) -> Result<Url, String> {
    let wrong = || format!("must be an http://, h2c:// or https:// URL, got {value:?}");
    let url = Url::parse(value).map_err(|e| format!("{} ({e})", wrong()))?;
    if crate::proxy::Protocol::of(&url).is_none() {
        return Err(wrong());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    Ok(url)
}

/// `[limits]`: every bound a client could otherwise push on.
pub(super) fn limits(p: &mut Problems, raw: &RawLimits) -> Option<Limits> {
    let header_read_timeout = duration(
        p,
        "limits.header_read_timeout",
        &raw.header_read_timeout,
        DEFAULT_HEADER_READ_TIMEOUT,
    );
    let idle_timeout = duration(
        p,
        "limits.idle_timeout",
        &raw.idle_timeout,
        DEFAULT_IDLE_TIMEOUT,
    );
    let max_connections = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if max_connections == 0 {
        p.add("limits.max_connections", "must be at least 1");
    }
    // hyper refuses (panics on) buffers under 8 KiB, so the bound is checked here.
    let max_header_bytes = raw.max_header_bytes.unwrap_or(DEFAULT_MAX_HEADER_BYTES);
    if !(8192..=16 * 1024 * 1024).contains(&max_header_bytes) {
        p.add(
            "limits.max_header_bytes",
            format!("must be between 8192 and 16777216, got {max_header_bytes}"),
        );
    }
    let max_logins_per_client = raw
        .max_logins_per_client
        .unwrap_or(DEFAULT_MAX_LOGINS_PER_CLIENT);
    if max_logins_per_client == 0 {
        p.add("limits.max_logins_per_client", "must be at least 1");
    }
    Some(Limits {
        header_read_timeout: header_read_timeout?,
        idle_timeout: idle_timeout?,
        max_header_bytes,
        max_connections,
        max_logins_per_client,
    })
}

/// `[tls]`: both files or neither; the pair is loaded and checked now so that a wrong file
/// stops start-up (and `check-config`) instead of failing every handshake later.
pub(super) fn tls(p: &mut Problems, raw: RawTls) -> Option<TlsSettings> {
    let reload_interval = duration(
        p,
        "tls.reload_interval",
        &raw.reload_interval,
        DEFAULT_TLS_RELOAD_INTERVAL,
    );
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

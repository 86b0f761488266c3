//! `[session]`: where sessions live (the cookie, or Redis and how to reach it) and when
//! they are refreshed.

use url::Url;

use super::problems::{Problems, duration, read_secret_file};
use super::raw::RawSession;
use super::{RedisSettings, RedisTarget, Secret, SessionSettings, SessionStoreKind};

pub const DEFAULT_STORE: &str = "cookie";
/// Refresh when the access token expires within this window.
pub const DEFAULT_REFRESH_BEFORE: &str = "5m";
/// How long a just-rotated cookie is still served from the refresh it caused.
pub const DEFAULT_ROTATION_GRACE: &str = "60s";
pub const DEFAULT_REDIS_PREFIX: &str = "rocketgate:";
pub const DEFAULT_REDIS_TIMEOUT: &str = "2s";
/// How long a session read from Redis is reused before asking again.
pub const DEFAULT_CACHE_TTL: &str = "5s";

/// The whole section.
pub(super) fn validate(p: &mut Problems, raw: &RawSession) -> Option<SessionSettings> {
    let store = session_store(p, raw);
    let refresh_before = duration(
        p,
        "session.refresh_before",
        &raw.refresh_before,
        DEFAULT_REFRESH_BEFORE,
    );
    let rotation_grace = duration(
        p,
        "session.rotation_grace",
        &raw.rotation_grace,
        DEFAULT_ROTATION_GRACE,
    );
    Some(SessionSettings {
        store: store?,
        refresh_before: refresh_before?,
        refresh_profile: raw.refresh_profile.unwrap_or(true),
        rotation_grace: rotation_grace?,
    })
}

/// `session.store` and, for `"redis"`, exactly one of `redis_url` / `redis_url_file`,
/// `redis_cluster_nodes` or `redis_sentinels` (+ `redis_sentinel_master`).
fn session_store(p: &mut Problems, raw: &RawSession) -> Option<SessionStoreKind> {
    let redis_keys_set = raw.redis_url.is_some()
        || raw.redis_url_file.is_some()
        || !raw.redis_cluster_nodes.is_empty()
        || !raw.redis_sentinels.is_empty();
    match raw.store.as_deref().unwrap_or(DEFAULT_STORE) {
        "cookie" => {
            if redis_keys_set {
                p.add(
                    "session.store",
                    "is \"cookie\" but Redis settings are present; set store = \"redis\" to use them",
                );
            }
            Some(SessionStoreKind::Cookie)
        }
        "redis" => redis(p, raw).map(SessionStoreKind::Redis),
        other => {
            p.add(
                "session.store",
                format!("must be \"cookie\" or \"redis\", got {other:?}"),
            );
            None
        }
    }
}

fn redis(p: &mut Problems, raw: &RawSession) -> Option<RedisSettings> {
    let url = match (&raw.redis_url, &raw.redis_url_file) {
        (Some(_), Some(_)) => {
            p.add(
                "session.redis_url",
                "set either redis_url or redis_url_file, not both",
            );
            None
        }
        (Some(url), None) => Some(url.trim().to_owned()),
        (None, Some(path)) => p.take("session.redis_url_file", read_secret_file(path)),
        (None, None) => None,
    };
    let modes = [
        url.is_some(),
        !raw.redis_cluster_nodes.is_empty(),
        !raw.redis_sentinels.is_empty(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if modes > 1 {
        p.add(
            "session.store",
            "set only one of redis_url, redis_cluster_nodes or redis_sentinels",
        );
        return None;
    }
    let target = if let Some(url) = url {
        redis_url(p, "session.redis_url", &url).map(RedisTarget::Standalone)
    } else if !raw.redis_cluster_nodes.is_empty() {
        urls(p, "session.redis_cluster_nodes", &raw.redis_cluster_nodes).map(RedisTarget::Cluster)
    } else if !raw.redis_sentinels.is_empty() {
        let sentinels = urls(p, "session.redis_sentinels", &raw.redis_sentinels);
        let master = match raw.redis_sentinel_master.as_deref().map(str::trim) {
            Some(m) if !m.is_empty() => Some(m.to_owned()),
            _ => {
                p.add(
                    "session.redis_sentinel_master",
                    "is required with redis_sentinels (the name sentinels monitor, e.g. \"mymaster\")",
                );
                None
            }
        };
        sentinels
            .zip(master)
            .map(|(sentinels, master)| RedisTarget::Sentinel { sentinels, master })
    } else {
        p.add(
            "session.redis_url",
            "is required with store = \"redis\" (or redis_url_file, redis_cluster_nodes, redis_sentinels)",
        );
        None
    };
    let password = raw.redis_password_file.as_deref().and_then(|path| {
        p.take("session.redis_password_file", read_secret_file(path))
            .map(Secret::new)
    });
    let prefix = raw
        .redis_prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_REDIS_PREFIX.into());
    if prefix.contains(['{', '}']) || prefix.chars().any(char::is_whitespace) {
        p.add(
            "session.redis_prefix",
            "must not contain braces or whitespace (braces would break Redis Cluster hash tags)",
        );
    }
    let timeout = duration(
        p,
        "session.redis_timeout",
        &raw.redis_timeout,
        DEFAULT_REDIS_TIMEOUT,
    );
    let cache_ttl = duration(p, "session.cache_ttl", &raw.cache_ttl, DEFAULT_CACHE_TTL);
    if timeout.is_some_and(|t| t.is_zero()) {
        p.add("session.redis_timeout", "must be more than zero");
    }
    let target = target?;
    // Sentinels exist to fail over to a replica, so there is one to wait for; a lone server
    // has none, and a cluster's WAIT would have to reach each key's own master.
    let min_replicas = match (&target, raw.redis_min_replicas) {
        (RedisTarget::Cluster(_), Some(n)) if n > 0 => {
            p.add(
                "session.redis_min_replicas",
                "is not supported with redis_cluster_nodes (use redis_url or redis_sentinels)",
            );
            0
        }
        (_, Some(n)) => n,
        (RedisTarget::Sentinel { .. }, None) => 1,
        (_, None) => 0,
    };
    Some(RedisSettings {
        target,
        password,
        prefix,
        timeout: timeout?,
        cache_ttl: cache_ttl?,
        min_replicas,
    })
}

fn urls(p: &mut Problems, key: &str, values: &[String]) -> Option<Vec<Secret>> {
    let parsed: Vec<Option<Secret>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| redis_url(p, &format!("{key}[{i}]"), v))
        .collect();
    parsed.into_iter().collect()
}

/// A `redis://` or `rediss://` URL with a host; the message never repeats the URL, which
/// may hold a password.
fn redis_url(p: &mut Problems, key: &str, value: &str) -> Option<Secret> {
    let problem = match Url::parse(value.trim()) {
        Err(e) => Some(format!("must be a redis:// or rediss:// URL ({e})")),
        Ok(url) if !matches!(url.scheme(), "redis" | "rediss") => Some(format!(
            "must start with redis:// or rediss://, got {}://",
            url.scheme()
        )),
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            Some("must name a host, like redis://redis:6379/0".into())
        }
        Ok(url)
            if !matches!(url.path(), "" | "/")
                && url.path().trim_start_matches('/').parse::<u32>().is_err() =>
        {
            Some("the path must be a database number, like /0".into())
        }
        Ok(_) => None,
    };
    match problem {
        Some(message) => {
            p.add(key, message);
            None
        }
        None => Some(Secret::new(value.trim().to_owned())),
    }
}

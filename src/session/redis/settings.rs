//! `session.redis_*` as the store uses it, validated by `config`.

use std::time::Duration;

use url::Url;

use crate::secret::Secret;

/// `session.redis_*`: how to reach Redis and how sessions are kept there.
#[derive(Debug)]
pub struct RedisSettings {
    pub target: RedisTarget,
    /// From `redis_password_file`; applies to every Redis server (sentinels are reached with
    /// the credentials in their own URLs).
    pub password: Option<Secret>,
    /// Prefix of every key rocketgate writes, so one Redis can serve several deployments.
    pub prefix: String,
    /// Bound on one Redis round trip; past it the request gets 503 and keeps its session.
    pub timeout: Duration,
    /// How long a session read from Redis is reused by this process without asking again.
    /// Sign-out and revocation on another replica take effect here within this time.
    pub cache_ttl: Duration,
    /// Replicas that must have a session's creation, a refresh lock and refreshed tokens
    /// (Redis `WAIT`) before they count as stored: with asynchronous replication a failover
    /// can otherwise lose the write, and the next refresh presents a revoked refresh token.
    pub min_replicas: u32,
}

/// One server, a cluster, or a master found through sentinels. URLs may carry credentials,
/// so they are kept as secrets and never logged whole.
#[derive(Debug)]
pub enum RedisTarget {
    Standalone(Secret),
    Cluster(Vec<Secret>),
    Sentinel {
        sentinels: Vec<Secret>,
        master: String,
    },
}

impl RedisTarget {
    /// What to log about the target: mode and host:port pairs, never credentials.
    pub fn describe(&self) -> String {
        let hosts = |urls: &[Secret]| {
            urls.iter()
                .map(|u| redis_host(u.expose()))
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            RedisTarget::Standalone(url) => format!("redis {}", redis_host(url.expose())),
            RedisTarget::Cluster(nodes) => format!("redis cluster {}", hosts(nodes)),
            RedisTarget::Sentinel { sentinels, master } => {
                format!("redis sentinel {} master {master}", hosts(sentinels))
            }
        }
    }
}

fn redis_host(url: &str) -> String {
    Url::parse(url).map_or_else(
        |_| "(unparsable)".to_owned(),
        |u| {
            format!(
                "{}://{}:{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port().unwrap_or(6379)
            )
        },
    )
}

//! The process's one link to Redis, whatever the topology, and how it survives outages.
//!
//! Nothing here connects at construction: rocketgate must start, log clearly and answer
//! `/ready` with 503 while Redis is unreachable, then recover without a restart. Every command
//! is bounded by `session.redis_timeout`, so a hung Redis costs a request one timeout, never a
//! hang.

use std::time::Duration;

use crate::trace::{Kind, Span};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, FromRedisValue, IntoConnectionInfo, RedisError, RedisFuture, Value};
use tokio::sync::Mutex;

use super::{RedisSettings, RedisTarget};

/// Why a Redis operation did not complete. Never carries a URL or a value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis failed: {0}")]
    Failed(String),
    #[error("Redis settings refused: {0}")]
    Settings(String),
    #[error("Redis took the write but only {acked} of {wanted} replicas confirmed it in time")]
    Unreplicated { acked: i64, wanted: u32 },
}

/// A command's name (`GET`, `SET`), for its span: the first argument when it is a plain
/// word, else `COMMAND`.
fn command_name(cmd: &Cmd) -> &str {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => std::str::from_utf8(name)
            .ok()
            .filter(|n| n.len() <= 16 && n.bytes().all(|b| b.is_ascii_alphabetic()))
            .unwrap_or("COMMAND"),
        _ => "COMMAND",
    }
}

impl LinkError {
    /// What went wrong, from a closed set, for the request line's `store_error=`.
    pub fn kind(&self) -> &'static str {
        match self {
            LinkError::Timeout(_) => "timeout",
            LinkError::Failed(_) => "failed",
            LinkError::Settings(_) => "settings",
            LinkError::Unreplicated { .. } => "unreplicated",
        }
    }
}

impl From<RedisError> for LinkError {
    fn from(e: RedisError) -> Self {
        // The error's Display can include the server's reply, never our values: commands'
        // arguments are not part of it.
        LinkError::Failed(format!("{:?}: {}", e.kind(), e.detail().unwrap_or("")))
    }
}

/// A connection ready for one command: clones share one multiplexed socket.
#[derive(Clone)]
pub enum Conn {
    Manager(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Manager(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Manager(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

enum Topology {
    /// The connection manager reconnects by itself, with backoff, after connection errors.
    Standalone {
        client: redis::Client,
        config: ConnectionManagerConfig,
    },
    /// The cluster connection follows slot moves by itself.
    Cluster(ClusterClient),
    /// The master is asked of the sentinels whenever a connection is made, so a failover is
    /// followed once the old connection is given up.
    Sentinel {
        client: Mutex<SentinelClient>,
        config: ConnectionManagerConfig,
    },
}

pub struct Link {
    topology: Topology,
    /// The connection in use; made on first use and made again after a timeout or a lost
    /// connection (a black-holed or failed-over server never sends a reset, so waiting for
    /// the client library to notice could take the kernel's TCP timeout, many minutes).
    slot: Mutex<Option<Conn>>,
    /// A second connection for writes that wait for replicas: `WAIT` holds its connection
    /// until the replicas answer, and reads must not queue behind it while they lag.
    replicated: Mutex<Option<Conn>>,
    timeout: Duration,
    /// `session.redis_min_replicas`.
    min_replicas: u32,
}

impl Link {
    /// Builds the link without touching the network.
    pub fn new(settings: &RedisSettings) -> Result<Self, LinkError> {
        let timeout = settings.timeout;
        let password = settings.password.as_ref().map(|p| p.expose().to_owned());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let with_password = |url: &str| -> Result<redis::ConnectionInfo, LinkError> {
            let info = url
                .into_connection_info()
                .map_err(|e| LinkError::Settings(format!("{:?}", e.kind())))?;
            Ok(match &password {
                Some(p) => {
                    let redis = info.redis_settings().clone().set_password(p);
                    info.set_redis_settings(redis)
                }
                None => info,
            })
        };
        let topology = match &settings.target {
            RedisTarget::Standalone(url) => Topology::Standalone {
                client: redis::Client::open(with_password(url.expose())?)?,
                config,
            },
            RedisTarget::Cluster(nodes) => {
                let infos = nodes
                    .iter()
                    .map(|n| with_password(n.expose()))
                    .collect::<Result<Vec<_>, _>>()?;
                Topology::Cluster(
                    ClusterClient::builder(infos)
                        .connection_timeout(timeout)
                        .response_timeout(timeout)
                        .retries(2)
                        .build()?,
                )
            }
            RedisTarget::Sentinel { sentinels, master } => {
                // Sentinels are reached with the URLs as written (credentials included);
                // the password file is for the Redis servers they point to.
                let urls: Vec<&str> = sentinels.iter().map(|s| s.expose()).collect();
                let mut node = SentinelNodeConnectionInfo::default();
                if let Some(p) = &password {
                    node = node.set_redis_connection_info(
                        redis::RedisConnectionInfo::default().set_password(p),
                    );
                }
                if urls.iter().any(|u| u.starts_with("rediss://")) {
                    node = node.set_tls_mode(redis::TlsMode::Secure);
                }
                let client = SentinelClient::build(
                    urls,
                    master.as_str(),
                    Some(node),
                    SentinelServerType::Master,
                )?;
                Topology::Sentinel {
                    client: Mutex::new(client),
                    config,
                }
            }
        };
        Ok(Self {
            topology,
            slot: Mutex::new(None),
            replicated: Mutex::new(None),
            timeout,
            min_replicas: settings.min_replicas,
        })
    }

    /// Runs one command, bounded by the timeout.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, LinkError> {
        let work = async {
            let mut conn = self.conn().await?;
            let result: Result<T, RedisError> = cmd.query_async(&mut conn).await;
            result.map_err(|e| self.broken(e))
        };
        self.bounded(command_name(cmd), work).await
    }

    /// Runs a write and then `WAIT session.redis_min_replicas` in one round trip on the same
    /// connection, so the write counts as stored only once that many replicas have it. With fewer
    /// acknowledgements the connections are given up (this master may be the one a failover
    /// is leaving) and the caller gets an error to retry on, against the new master once the
    /// sentinels have promoted one. `WAIT` is bounded by half the command timeout and runs on
    /// a connection of its own, used only for the rare writes that must survive a failover.
    pub async fn query_replicated<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, LinkError> {
        let replicas = self.min_replicas;
        if replicas == 0 {
            return self.query(cmd).await;
        }
        let wait_ms = u64::try_from((self.timeout / 2).as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let work = async {
            let mut conn = self.conn_in(&self.replicated).await?;
            let mut pipe = redis::pipe();
            pipe.add_command(cmd.clone())
                .cmd("WAIT")
                .arg(replicas)
                .arg(wait_ms);
            let result: Result<(T, i64), RedisError> = pipe.query_async(&mut conn).await;
            let (value, acked) = result.map_err(|e| self.broken(e))?;
            if acked < i64::from(replicas) {
                self.reset();
                return Err(LinkError::Unreplicated {
                    acked,
                    wanted: replicas,
                });
            }
            Ok(value)
        };
        self.bounded(command_name(cmd), work).await
    }

    /// Runs a Lua script, bounded by the timeout.
    pub async fn invoke<T: FromRedisValue>(
        &self,
        script: &redis::ScriptInvocation<'_>,
    ) -> Result<T, LinkError> {
        let work = async {
            let mut conn = self.conn().await?;
            let result: Result<T, RedisError> = script.invoke_async(&mut conn).await;
            result.map_err(|e| self.broken(e))
        };
        self.bounded("EVALSHA", work).await
    }

    /// Runs `work` within the timeout, in a client span for the command (name only, never
    /// a key or value); on a timeout the connection is given up, so the next command
    /// connects afresh (and, with sentinels, asks for the master again).
    async fn bounded<T>(
        &self,
        command: &str,
        work: impl std::future::Future<Output = Result<T, LinkError>>,
    ) -> Result<T, LinkError> {
        let mut span = Span::start(command, Kind::Client);
        if span.is_recording() {
            span.set("db.system.name", "redis");
            span.set("db.operation.name", command.to_owned());
        }
        let result = match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                self.reset();
                Err(LinkError::Timeout(self.timeout))
            }
        };
        if let Err(e) = &result {
            span.fail(e.kind());
        }
        result
    }

    /// Whether Redis answers `PING` now.
    pub async fn ping(&self) -> Result<(), LinkError> {
        let pong: String = self.query(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(LinkError::Failed("unexpected PING reply".into()))
        }
    }

    async fn conn(&self) -> Result<Conn, LinkError> {
        self.conn_in(&self.slot).await
    }

    async fn conn_in(&self, slot: &Mutex<Option<Conn>>) -> Result<Conn, LinkError> {
        let mut slot = slot.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let fresh = match &self.topology {
            Topology::Standalone { client, config } => Conn::Manager(
                ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?,
            ),
            Topology::Cluster(client) => Conn::Cluster(client.get_async_connection().await?),
            Topology::Sentinel { client, config } => {
                let master = client.lock().await.async_get_client().await?;
                Conn::Manager(ConnectionManager::new_lazy_with_config(
                    master,
                    config.clone(),
                )?)
            }
        };
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// Gives up the current connections (those no command is making right now): both lead
    /// to the same master, so when one is lost or stale, so is the other.
    fn reset(&self) {
        for slot in [&self.slot, &self.replicated] {
            if let Ok(mut slot) = slot.try_lock() {
                *slot = None;
            }
        }
    }

    /// After a connection-level error (or a `READONLY` reply from a demoted master), gives
    /// the connection up so the next command starts over.
    fn broken(&self, error: RedisError) -> LinkError {
        let connection_lost = error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_timeout()
            || error.code() == Some("READONLY");
        if connection_lost {
            self.reset();
        }
        error.into()
    }
}

//! The process's one link to Redis, whatever the topology, and how it survives outages.
//!
//! Nothing here connects at construction: rocketgate must start, log clearly and answer
//! `/ready` with 503 while Redis is unreachable, then recover without a restart. Every command
//! is bounded by `session.redis_timeout`, so a hung Redis costs a request one timeout, never a
//! hang.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, FromRedisValue, IntoConnectionInfo, RedisError, RedisFuture, Value};
use tokio::sync::Mutex;

use crate::config::{RedisSettings, RedisTarget};

/// Why a Redis operation did not complete. Never carries a URL or a value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis failed: {0}")]
    Failed(String),
    #[error("Redis settings refused: {0}")]
    Settings(String),
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
    /// The connection manager reconnects by itself, with backoff.
    Standalone(ConnectionManager),
    /// The cluster connection follows slot moves by itself; it is made on first use.
    Cluster {
        client: ClusterClient,
        conn: Mutex<Option<ClusterConnection>>,
    },
    /// The master is asked of the sentinels on first use and again after any connection
    /// error, so a failover is followed without a restart.
    Sentinel {
        client: Mutex<SentinelClient>,
        conn: Mutex<Option<ConnectionManager>>,
        manager_config: ConnectionManagerConfig,
    },
}

pub struct Link {
    topology: Topology,
    timeout: Duration,
}

impl Link {
    /// Builds the link without touching the network.
    pub fn new(settings: &RedisSettings) -> Result<Self, LinkError> {
        let timeout = settings.timeout;
        let password = settings.password.as_ref().map(|p| p.expose().to_owned());
        let manager_config = ConnectionManagerConfig::new()
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
            RedisTarget::Standalone(url) => {
                let client = redis::Client::open(with_password(url.expose())?)?;
                Topology::Standalone(ConnectionManager::new_lazy_with_config(
                    client,
                    manager_config,
                )?)
            }
            RedisTarget::Cluster(nodes) => {
                let infos = nodes
                    .iter()
                    .map(|n| with_password(n.expose()))
                    .collect::<Result<Vec<_>, _>>()?;
                let client = ClusterClient::builder(infos)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .build()?;
                Topology::Cluster {
                    client,
                    conn: Mutex::new(None),
                }
            }
            RedisTarget::Sentinel { sentinels, master } => {
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
                    conn: Mutex::new(None),
                    manager_config,
                }
            }
        };
        Ok(Self { topology, timeout })
    }

    /// Runs one command, bounded by the timeout.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, LinkError> {
        let work = async {
            let mut conn = self.conn().await?;
            let result: Result<T, RedisError> = cmd.query_async(&mut conn).await;
            result.map_err(|e| self.broken(e))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| LinkError::Timeout(self.timeout))?
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
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| LinkError::Timeout(self.timeout))?
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
        match &self.topology {
            Topology::Standalone(manager) => Ok(Conn::Manager(manager.clone())),
            Topology::Cluster { client, conn } => {
                let mut slot = conn.lock().await;
                if let Some(c) = slot.as_ref() {
                    return Ok(Conn::Cluster(c.clone()));
                }
                let fresh = client.get_async_connection().await?;
                *slot = Some(fresh.clone());
                Ok(Conn::Cluster(fresh))
            }
            Topology::Sentinel {
                client,
                conn,
                manager_config,
            } => {
                let mut slot = conn.lock().await;
                if let Some(c) = slot.as_ref() {
                    return Ok(Conn::Manager(c.clone()));
                }
                let master = client.lock().await.async_get_client().await?;
                let manager =
                    ConnectionManager::new_lazy_with_config(master, manager_config.clone())?;
                *slot = Some(manager.clone());
                Ok(Conn::Manager(manager))
            }
        }
    }

    /// After a connection-level error, forget a sentinel's master (it may have failed over)
    /// or a cluster connection that can no longer recover, so the next command starts over.
    fn broken(&self, error: RedisError) -> LinkError {
        let connection_lost = error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_timeout()
            || matches!(error.kind(), redis::ErrorKind::Server(_))
                && error.code() == Some("READONLY");
        if connection_lost {
            match &self.topology {
                Topology::Standalone(_) => {}
                Topology::Cluster { conn, .. } => {
                    if let Ok(mut slot) = conn.try_lock() {
                        *slot = None;
                    }
                }
                Topology::Sentinel { conn, .. } => {
                    if let Ok(mut slot) = conn.try_lock() {
                        *slot = None;
                    }
                }
            }
        }
        error.into()
    }
}

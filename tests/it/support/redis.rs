//! A real `redis-server` on a free 127.0.0.1 port, in its own temp directory, with an
//! append-only file synced on every write so it can be killed and restarted mid-test without
//! losing sessions (as a production Redis with persistence would).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::process::free_port;

/// Where Debian puts the server; `scripts/test` installs it when missing.
fn binary() -> PathBuf {
    for candidate in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("redis-server"))
            .find(|p| p.exists())
    });
    on_path.unwrap_or_else(|| {
        panic!("redis-server not found: run scripts/test, which installs it (apt-get install redis-server)")
    })
}

/// `toml` (which must end outside any table, as `cli::demo_config` does) with sessions in the
/// Redis at `url`; further `[session]` keys may be appended right after it.
pub fn with_redis_sessions(toml: &str, url: &str) -> String {
    format!("{toml}\n[session]\nstore = \"redis\"\nredis_url = \"{url}\"\n")
}

pub struct RedisServer {
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        RedisServer::start_with(&[]).await
    }

    /// Starts with extra `--option value` arguments (cluster mode, a password, ...).
    pub async fn start_with(extra: &[&str]) -> RedisServer {
        RedisServer::start_on(free_port(), extra).await
    }

    /// Starts on `addr` (for tests where a proxy was pointed at it before it existed).
    pub async fn start_on(addr: SocketAddr, extra: &[&str]) -> RedisServer {
        let dir = std::env::temp_dir().join(format!(
            "rocketgate-redis-{}-{}",
            std::process::id(),
            addr.port()
        ));
        std::fs::create_dir_all(&dir).expect("redis temp dir");
        let mut server = RedisServer {
            addr,
            dir,
            child: None,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.spawn().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://{}/0", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    async fn spawn(&mut self) {
        let child = Command::new(binary())
            .arg("--port")
            .arg(self.addr.port().to_string())
            .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        self.wait_until_answering().await;
    }

    /// Polls `PING` until the server answers (bounded).
    pub async fn wait_until_answering(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.try_command(&["PING"]).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on {} never answered",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: the server vanishes mid-conversation, as in a crash or a node loss.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port from the same directory (its data comes back).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    fn try_command(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let password = self
            .extra
            .iter()
            .position(|a| a == "--requirepass")
            .and_then(|i| self.extra.get(i + 1));
        let url = match password {
            Some(p) => format!("redis://:{p}@{}/0", self.addr),
            None => self.url(),
        };
        let client = redis::Client::open(url)?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(1))?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut conn)
    }

    /// Runs one command and returns its reply (tests inspect what rocketgate stored).
    pub fn command(&self, args: &[&str]) -> redis::Value {
        self.try_command(args)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    /// Every key and its string value (if it is a string), for "what does a dump reveal".
    pub fn dump(&self) -> Vec<(String, String)> {
        let keys = match self.command(&["KEYS", "*"]) {
            redis::Value::Array(keys) => keys,
            other => panic!("KEYS: {other:?}"),
        };
        keys.into_iter()
            .filter_map(|k| match k {
                redis::Value::BulkString(b) => String::from_utf8(b).ok(),
                _ => None,
            })
            .map(|key| {
                let value = match self.try_command(&["GET", &key]) {
                    Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
                    _ => match self.try_command(&["SMEMBERS", &key]) {
                        Ok(v) => format!("{v:?}"),
                        Err(_) => String::new(),
                    },
                };
                (key, value)
            })
            .collect()
    }

    /// Keys holding sessions.
    pub fn session_keys(&self) -> Vec<String> {
        self.dump()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.ends_with(":session"))
            .collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three masters in cluster mode covering all 16384 slots (no replicas), as `redis-cli
/// --cluster create` would set up, done with plain commands so only the server is needed.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub async fn start() -> RedisCluster {
        let mut nodes = Vec::new();
        let mut buses = Vec::new();
        for _ in 0..3 {
            // The bus port would otherwise be the port + 10000: in the kernel's ephemeral
            // range, where an outgoing connection may already hold it.
            let bus = free_port().port().to_string();
            let node = RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "2000",
                "--cluster-port",
                &bus,
            ])
            .await;
            buses.push(bus);
            nodes.push(node);
        }
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        for (node, (from, to)) in nodes.iter().zip(ranges) {
            let mut args = vec!["CLUSTER".to_owned(), "ADDSLOTSRANGE".to_owned()];
            args.push(from.to_string());
            args.push(to.to_string());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            node.command(&args);
        }
        for node in &nodes[1..] {
            let port = nodes[0].port().to_string();
            node.command(&["CLUSTER", "MEET", "127.0.0.1", &port, &buses[0]]);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = nodes.iter().all(|n| match n.command(&["CLUSTER", "INFO"]) {
                redis::Value::BulkString(b) => {
                    String::from_utf8_lossy(&b).contains("cluster_state:ok")
                }
                redis::Value::VerbatimString { text, .. } => text.contains("cluster_state:ok"),
                _ => false,
            });
            if ok {
                return RedisCluster { nodes };
            }
            assert!(Instant::now() < deadline, "the cluster never became ok");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://{}", n.addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Session keys on every node.
    pub fn session_keys(&self) -> Vec<String> {
        self.nodes.iter().flat_map(|n| n.session_keys()).collect()
    }
}

/// `redis-server --sentinel` on `addr` with `monitor` (its `sentinel ...` lines), from a
/// config file of its own (sentinels rewrite theirs); returns the process and the file.
fn spawn_sentinel(addr: SocketAddr, monitor: &str) -> (Child, PathBuf) {
    let config = std::env::temp_dir().join(format!(
        "rocketgate-sentinel-{}-{}.conf",
        std::process::id(),
        addr.port()
    ));
    std::fs::write(
        &config,
        format!(
            "port {}\nbind 127.0.0.1\nprotected-mode no\n{monitor}",
            addr.port()
        ),
    )
    .expect("sentinel config");
    let child = Command::new(binary())
        .arg(&config)
        .arg("--sentinel")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server --sentinel");
    (child, config)
}

/// A master and one sentinel watching it as `mymaster`.
pub struct RedisSentinel {
    pub master: RedisServer,
    sentinel: Child,
    pub sentinel_addr: SocketAddr,
    config: PathBuf,
}

impl RedisSentinel {
    pub async fn start() -> RedisSentinel {
        let master = RedisServer::start().await;
        let sentinel_addr = free_port();
        let (sentinel, config) = spawn_sentinel(
            sentinel_addr,
            &format!("sentinel monitor mymaster 127.0.0.1 {} 1\n", master.port()),
        );
        let probe = format!("redis://{sentinel_addr}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = redis::Client::open(probe.as_str()).and_then(|c| {
                let mut conn = c.get_connection_with_timeout(Duration::from_secs(1))?;
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg("mymaster")
                    .query::<Vec<String>>(&mut conn)
            });
            if answer.is_ok_and(|a| a.len() == 2) {
                break;
            }
            assert!(Instant::now() < deadline, "the sentinel never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        RedisSentinel {
            master,
            sentinel,
            sentinel_addr,
            config,
        }
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.sentinel.kill();
        let _ = self.sentinel.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A master, two replicas and three sentinels (quorum 2) that fail over half a second after
/// the master stops answering: the shape of a production Sentinel set, on 127.0.0.1.
pub struct SentinelGroup {
    /// `servers[0]` is the first master.
    pub servers: Vec<RedisServer>,
    sentinels: Vec<(Child, SocketAddr, PathBuf)>,
}

/// `INFO <section>` of `server` as text, or empty while it does not answer.
fn info(server: &RedisServer, section: &str) -> String {
    match server.try_command(&["INFO", section]) {
        Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(redis::Value::VerbatimString { text, .. }) => text,
        _ => String::new(),
    }
}

fn sentinel_query(addr: SocketAddr, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(format!("redis://{addr}"))?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(1))?;
    let mut cmd = redis::cmd("SENTINEL");
    for a in args {
        cmd.arg(*a);
    }
    cmd.query(&mut conn)
}

fn array_len(value: redis::RedisResult<redis::Value>) -> usize {
    match value {
        Ok(redis::Value::Array(items)) => items.len(),
        _ => 0,
    }
}

/// Polls `ready` every 50 ms until it holds; panics with `what` after 30 s.
async fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl SentinelGroup {
    pub async fn start() -> SentinelGroup {
        let master = RedisServer::start().await;
        let port = master.port().to_string();
        let mut servers = vec![master];
        for _ in 0..2 {
            servers.push(RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]).await);
        }
        wait_until("both replicas in sync", || {
            servers[1..]
                .iter()
                .all(|r| info(r, "replication").contains("master_link_status:up"))
                && info(&servers[0], "replication").contains("connected_slaves:2")
        })
        .await;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let addr = free_port();
            let (child, config) = spawn_sentinel(
                addr,
                &format!(
                    "sentinel monitor mymaster 127.0.0.1 {port} 2\n\
                     sentinel down-after-milliseconds mymaster 500\n\
                     sentinel failover-timeout mymaster 5000\n\
                     sentinel parallel-syncs mymaster 2\n"
                ),
            );
            sentinels.push((child, addr, config));
        }
        let addrs: Vec<SocketAddr> = sentinels.iter().map(|s| s.1).collect();
        wait_until("the sentinels to know both replicas and each other", || {
            addrs.iter().all(|a| {
                array_len(sentinel_query(*a, &["REPLICAS", "mymaster"])) == 2
                    && array_len(sentinel_query(*a, &["SENTINELS", "mymaster"])) == 2
            })
        })
        .await;
        SentinelGroup { servers, sentinels }
    }

    /// The sentinels' URLs, comma-separated (as `ROCKETGATE_SESSION__REDIS_SENTINELS`).
    pub fn sentinel_urls(&self) -> String {
        self.sentinels
            .iter()
            .map(|(_, addr, _)| format!("redis://{addr}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The master's port as the first sentinel reports it now.
    pub fn master_port(&self) -> Option<u16> {
        match sentinel_query(
            self.sentinels[0].1,
            &["get-master-addr-by-name", "mymaster"],
        ) {
            Ok(redis::Value::Array(parts)) => match parts.get(1) {
                Some(redis::Value::BulkString(p)) => std::str::from_utf8(p).ok()?.parse().ok(),
                _ => None,
            },
            _ => None,
        }
    }

    /// Waits until the sentinels have promoted another server than `old` and it has a replica
    /// in sync again (so writes that wait for one can succeed); returns its index.
    pub async fn wait_for_new_master(&self, old: u16) -> usize {
        let mut found = None;
        wait_until("a failover with a replica in sync", || {
            found = self.master_port().filter(|p| *p != old).and_then(|port| {
                let i = self.servers.iter().position(|s| s.port() == port)?;
                let replication = info(&self.servers[i], "replication");
                (replication.contains("role:master") && !replication.contains("connected_slaves:0"))
                    .then_some(i)
            });
            found.is_some()
        })
        .await;
        found.unwrap_or_default()
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) for `servers[i]`: a replica that falls behind
    /// and catches up again.
    pub fn pause(&self, i: usize, paused: bool) {
        let pid = self.servers[i].child.as_ref().expect("running").id();
        let signal = if paused { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for SentinelGroup {
    fn drop(&mut self) {
        for (child, _, config) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(config);
        }
        for i in 0..self.servers.len() {
            if self.servers[i].child.is_some() {
                self.pause(i, false);
            }
        }
    }
}

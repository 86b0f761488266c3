//! A real `nginx` in front of rocketgate, for forward-auth (`auth_request`) tests.
//!
//! Each instance runs from its own temporary prefix with a generated config, in the
//! foreground and as a single process (`master_process off`), so it needs no write access to
//! `/var`, works as root or not, and `kill_on_drop` really stops it: with a master process, a
//! killed master would leave its workers serving the port. `scripts/test` installs nginx when
//! it is missing; these tests never skip for want of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::process::{drain, find_binary, plain_client};

/// How long nginx may take to answer its readiness probe. Includes nginx's own bind retries
/// (five, half a second apart) when the port was taken after we picked it.
const START_BOUND: Duration = Duration::from_secs(15);

/// The nginx binary: `$NGINX` if set, else `nginx` on `PATH`, else Debian's `/usr/sbin/nginx`
/// (`/usr/sbin` is often missing from a non-root `PATH`).
pub fn binary() -> PathBuf {
    let debian = [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/nginx/sbin/nginx",
    ]
    .map(PathBuf::from);
    find_binary("NGINX", "nginx", &debian).unwrap_or_else(|| {
        panic!("nginx not found (PATH, /usr/sbin): run scripts/test, which installs it")
    })
}

/// A directory under the temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "rocketgate-test-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running nginx, killed when dropped.
pub struct Nginx {
    pub addr: SocketAddr,
    child: Child,
    stderr: Option<tokio::task::JoinHandle<String>>,
    _dir: TempDir,
}

/// Why nginx did not come up.
#[derive(Debug)]
pub struct StartError {
    /// nginx's own stderr, which names the problem (`bind() ... failed (98: Address already in use)`).
    pub stderr: String,
}

impl StartError {
    /// The port was taken between picking it and nginx binding it: worth another try.
    pub fn port_taken(&self) -> bool {
        self.stderr.contains("Address already in use")
    }
}

impl Nginx {
    /// Starts nginx with `http` in its `http {}` block (upstreams, maps) and `server` inside
    /// the `server {}` that listens on `addr`, and waits until it answers. Temp paths and the
    /// access log stay inside a fresh prefix directory.
    pub async fn start(addr: SocketAddr, http: &str, server: &str) -> Result<Nginx, StartError> {
        Nginx::start_hosts(addr, http, server, &[]).await
    }

    /// [`Nginx::start`] with name-based virtual hosts: each `(server_name, body)` of `hosts`
    /// becomes a `server {}` of its own on the same `addr`, after the one `start` writes. That
    /// first one stays nginx's default server: it answers a `Host` no `server_name` matches,
    /// the readiness probe's included.
    pub async fn start_hosts(
        addr: SocketAddr,
        http: &str,
        server: &str,
        hosts: &[(&str, &str)],
    ) -> Result<Nginx, StartError> {
        static STARTS: AtomicU64 = AtomicU64::new(0);
        let dir = TempDir::new("nginx");
        let prefix = dir.path();
        for sub in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"] {
            std::fs::create_dir_all(prefix.join(sub)).expect("create nginx temp dir");
        }
        // A token only this instance answers with, so readiness never mistakes another
        // server that took the port for ours.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let token = format!(
            "nginx-{}-{}-{nanos}",
            std::process::id(),
            STARTS.fetch_add(1, Ordering::Relaxed)
        );
        let conf = format!(
            r#"
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

{http}

    server {{
        listen {addr};
        location = /.nginx-ready {{ access_log off; return 200 "{token}"; }}

{server}
    }}
{hosts}}}
"#,
            prefix = prefix.display(),
            hosts = hosts
                .iter()
                .map(|(name, body)| {
                    format!(
                        "\n    server {{\n        listen {addr};\n        server_name {name};\n{body}\n    }}\n"
                    )
                })
                .collect::<String>(),
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let pid = prefix.join("nginx.pid");
        let mut command = Command::new(binary());
        command
            .arg("-e")
            .arg("stderr")
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&conf_path)
            .arg("-g")
            .arg(format!(
                "daemon off; master_process off; pid {}; error_log stderr;",
                pid.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn nginx");
        let stderr = drain(child.stderr.take());
        let mut nginx = Nginx {
            addr,
            child,
            stderr: Some(stderr),
            _dir: dir,
        };
        let client = plain_client();
        let url = format!("http://{addr}/.nginx-ready");
        let deadline = Instant::now() + START_BOUND;
        loop {
            if let Ok(Some(_)) = nginx.child.try_wait() {
                return Err(StartError {
                    stderr: nginx.stderr().await,
                });
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status() == 200
                && r.text().await.is_ok_and(|t| t == token)
            {
                return Ok(nginx);
            }
            if Instant::now() >= deadline {
                let _ = nginx.child.start_kill();
                let _ = nginx.child.wait().await;
                panic!(
                    "nginx on {addr} not ready within {START_BOUND:?}:\n{}",
                    nginx.stderr().await
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    async fn stderr(&mut self) -> String {
        match self.stderr.take() {
            Some(handle) => handle.await.unwrap_or_default(),
            None => String::new(),
        }
    }
}

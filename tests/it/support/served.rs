//! A server in a child process (nginx, Caddy, Traefik) that a test talks to over a 127.0.0.1
//! port: started from its own temporary directory, ready once it answers a probe with a token
//! only this instance knows, killed when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::process::{drain, plain_client};

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

/// A token no other process answers with, for a readiness probe.
pub fn ready_token(label: &str) -> String {
    static STARTS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{label}-{}-{}-{nanos}",
        std::process::id(),
        STARTS.fetch_add(1, Ordering::Relaxed)
    )
}

/// Why a server did not come up.
#[derive(Debug)]
pub struct StartError {
    /// The server's own stderr, which names the problem.
    pub stderr: String,
}

impl StartError {
    /// The port was taken between picking it and the server binding it: worth another try.
    pub fn port_taken(&self) -> bool {
        self.stderr.contains("Address already in use")
            || self.stderr.contains("address already in use")
    }
}

/// A running server, killed when dropped.
pub struct Served {
    pub addr: SocketAddr,
    child: Child,
    stderr: Option<tokio::task::JoinHandle<String>>,
    _dir: TempDir,
}

impl Served {
    /// Spawns `command` (its files in `dir`) and waits, at most `bound`, until
    /// `http://addr{probe}` answers 200 with a body containing `token`. An exit before that is
    /// a [`StartError`]; no answer within `bound` fails the test with the server's stderr.
    pub async fn start(
        mut command: Command,
        dir: TempDir,
        addr: SocketAddr,
        probe: &str,
        token: &str,
        bound: Duration,
    ) -> Result<Served, StartError> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn a front proxy");
        let stderr = drain(child.stderr.take());
        let mut served = Served {
            addr,
            child,
            stderr: Some(stderr),
            _dir: dir,
        };
        let client = plain_client();
        let url = format!("http://{addr}{probe}");
        let deadline = Instant::now() + bound;
        loop {
            if let Ok(Some(_)) = served.child.try_wait() {
                return Err(StartError {
                    stderr: served.stderr().await,
                });
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status() == 200
                && r.text().await.is_ok_and(|t| t.contains(token))
            {
                return Ok(served);
            }
            if Instant::now() >= deadline {
                let _ = served.child.start_kill();
                let _ = served.child.wait().await;
                panic!(
                    "server on {addr} not ready within {bound:?}:\n{}",
                    served.stderr().await
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

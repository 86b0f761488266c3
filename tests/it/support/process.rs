//! Helpers for tests that run the real `rocketgate` binary as a child process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_rocketgate");

/// A file in the temp dir, removed on drop.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(label: &str, contents: &str) -> TempFile {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "rocketgate-test-{label}-{}-{nanos}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).expect("write temp config");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `$env` if set, else the first `name` on `PATH`, else the first of `elsewhere` that exists.
pub fn find_binary(env: &str, name: &str, elsewhere: &[PathBuf]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
        .or_else(|| elsewhere.iter().find(|p| p.is_file()).cloned())
}

/// A port nothing listens on right now, for a server in another process to bind later.
///
/// Taken from below Linux's ephemeral range (32768 up), and each handed out once per test
/// process: a port the kernel picked for `bind(:0)` would be picked again for another
/// test's listener or outgoing connection before the child binds it.
pub fn free_port() -> SocketAddr {
    use std::sync::atomic::AtomicU32;
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // A different start for each run, so a port a previous run left in use is not first.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let port = FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN;
        let addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN)
}

/// The binary with a clean environment for rocketgate: nothing inherited from the test
/// runner's environment can override the config file.
pub fn command(args: &[&str]) -> Command {
    clean(Command::new(BIN), args)
}

/// The binary pinned to one CPU with `taskset`, as in a container limited to one core: it then
/// runs tokio's single-threaded runtime, which the tests must exercise too.
pub fn command_on_one_core(args: &[&str]) -> Command {
    let mut taskset = Command::new("taskset");
    taskset.args(["-c", "0", BIN]);
    clean(taskset, args)
}

/// The binary started under `ulimit {limit}` (e.g. `-Sn 128`: a soft open-file limit of 128,
/// as systemd starts services with 1,024, the hard limit unchanged).
pub fn command_under_ulimit(limit: &str, args: &[&str]) -> Command {
    let mut sh = Command::new("sh");
    sh.args(["-c", &format!(r#"ulimit {limit} && exec "$0" "$@""#), BIN]);
    clean(sh, args)
}

fn clean(mut command: Command, args: &[&str]) -> Command {
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("ROCKETGATE_") || key.starts_with("RP_") {
            command.env_remove(key);
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command that must end on its own within `bound`.
pub async fn run(mut command: Command, bound: Duration) -> Finished {
    let child = command.spawn().expect("spawn rocketgate");
    let output = tokio::time::timeout(bound, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("rocketgate did not exit within {bound:?}"))
        .expect("wait for rocketgate");
    Finished {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        // A new connection per request: checks below are about the listener, not old sockets.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Polls `url` until it answers `status` (bounded).
pub async fn wait_for_status(client: &reqwest::Client, url: &str, status: u16, bound: Duration) {
    let deadline = Instant::now() + bound;
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status() == status
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer {status} within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Collects a child's pipe in the background, for failure messages.
pub fn drain<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    pipe: Option<R>,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out).await;
        }
        String::from_utf8_lossy(&out).into_owned()
    })
}

pub async fn wait_until_ready(child: &mut Child, client: &reqwest::Client, proxy: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("rocketgate exited before becoming ready: {status}");
        }
        // 503 is possible for a moment: with Redis sessions, until the first PING answers.
        if let Ok(r) = client.get(format!("http://{proxy}/ready")).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "rocketgate never became ready");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A child's pipe read in the background, so a test can wait for a line to appear (a
/// readiness wait) instead of guessing how long a log flush takes.
pub struct Tail {
    text: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Tail {
    pub fn new<R: tokio::io::AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> Tail {
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = text.clone();
        tokio::spawn(async move {
            let Some(mut pipe) = pipe else { return };
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Tail { text }
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Waits (at most `bound`) until `needle` has been read; returns the text either way.
    pub async fn wait_for(&self, needle: &str, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            let text = self.text();
            if text.contains(needle) || Instant::now() >= deadline {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

//! A real `nginx` in front of rocketgate, for forward-auth (`auth_request`) tests.
//!
//! Each instance runs from its own temporary prefix with a generated config, in the
//! foreground and as a single process (`master_process off`), so it needs no write access to
//! `/var`, works as root or not, and `kill_on_drop` really stops it: with a master process, a
//! killed master would leave its workers serving the port. `scripts/test` installs nginx when
//! it is missing; these tests never skip for want of it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Command;

use super::process::find_binary;
pub use super::served::StartError;
use super::served::{Served, TempDir, ready_token};

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

/// A running nginx, killed when dropped.
pub type Nginx = Served;

/// Starts nginx with `http` in its `http {}` block (upstreams, maps) and `server` inside
/// the `server {}` that listens on `addr`, and waits until it answers. Temp paths and the
/// access log stay inside a fresh prefix directory.
pub async fn start(addr: SocketAddr, http: &str, server: &str) -> Result<Nginx, StartError> {
    start_hosts(addr, http, server, &[]).await
}

/// [`start`] with name-based virtual hosts: each `(server_name, body)` of `hosts` becomes a
/// `server {}` of its own on the same `addr`, after the one `start` writes. That first one
/// stays nginx's default server: it answers a `Host` no `server_name` matches, the readiness
/// probe's included.
pub async fn start_hosts(
    addr: SocketAddr,
    http: &str,
    server: &str,
    hosts: &[(&str, &str)],
) -> Result<Nginx, StartError> {
    let dir = TempDir::new("nginx");
    let prefix = dir.path();
    for sub in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"] {
        std::fs::create_dir_all(prefix.join(sub)).expect("create nginx temp dir");
    }
    let token = ready_token("nginx");
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
        ));
    Served::start(command, dir, addr, "/.nginx-ready", &token, START_BOUND).await
}

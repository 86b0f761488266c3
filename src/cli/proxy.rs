//! Running the proxy from a validated configuration, and the session CLI.

use std::process::ExitCode;

use std::collections::HashMap;
use std::path::PathBuf;

use rocketgate::app::App;
use rocketgate::config::Config;
use rocketgate::config::raw::RawConfig;
use rocketgate::live::Live;
use rocketgate::reload::{self, Reloader};
use rocketgate::server;
use tokio::net::TcpListener;

/// Where the configuration came from, for reloads: the file, the environment over it, and
/// what was read from them.
pub struct Reloadable {
    pub path: PathBuf,
    pub env: HashMap<String, String>,
    pub raw: RawConfig,
    pub hash: String,
}

/// Logs the effective configuration (never a secret) and serves until SIGTERM/SIGINT,
/// reloading from `source` on SIGHUP and when the file changes.
pub async fn run_proxy(
    config: Config,
    listener: TcpListener,
    source: Option<Reloadable>,
) -> ExitCode {
    let _log_guard = rocketgate::logging::init(config.log_format);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        commit = rocketgate::metrics::BUILD_COMMIT,
        listen = %listener.local_addr().map_or_else(|_| config.listen.to_string(), |a| a.to_string()),
        upstream = %config.upstream.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
        routes = config.routes.iter().count(),
        public_url = %config.public_url,
        authorize_url = %config.provider.authorize_url,
        token_url = %config.provider.token_url,
        profile_url = %config.provider.profile_url,
        client_id = %config.provider.client_id,
        scopes = %config.provider.scopes.join(" "),
        cookie = %config.cookie.name,
        cookie_secure = config.cookie.secure,
        cookie_keys = config.cookie.keys.len(),
        cookie_expire = ?config.cookie.expire,
        refresh_before = ?config.session.refresh_before,
        session_store = %config.session.redis().map_or_else(|| "cookie".to_owned(), |r| r.target.describe()),
        admin_endpoint = config.admin.token.is_some(),
        email_policy_open = config.access.emails.is_open(),
        skip_routes = !config.access.skip_routes.is_empty(),
        tls = config.tls.is_some(),
        traces = %config.tracing.endpoint.as_ref().map_or_else(|| "off".to_owned(), ToString::to_string),
        trace_sample_ratio = config.tracing.sample_ratio,
        "rocketgate starting"
    );
    for warning in &config.warnings {
        tracing::warn!(key = %warning.key, "{}", warning.message);
    }
    #[cfg(unix)]
    server::fdlimit::raise(config.limits.max_connections);
    // Loaded again (validation already checked the pair) because the files, not the
    // configuration, hold the certificate: the reloader keeps following them.
    let tls = match config.tls.as_ref().map(rocketgate::tls::ServerTls::start) {
        None => None,
        Some(Ok(tls)) => Some(tls),
        Some(Err(e)) => {
            eprintln!("{}: {e}", e.key());
            return ExitCode::FAILURE;
        }
    };
    let app = match App::new(config) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let interval = app.config.config_reload_interval;
    let metrics_listen = app.config.metrics_listen;
    let live = Live::new(app);
    match source {
        Some(source) => {
            Reloader::new(
                source.path,
                source.env,
                live.clone(),
                source.raw,
                source.hash,
            )
            .spawn_watch(interval);
        }
        None => reload::spawn_ignore_hangups(),
    }
    if let Some(addr) = metrics_listen {
        match TcpListener::bind(addr).await {
            Ok(metrics) => {
                tokio::spawn(server::serve_metrics(live.clone(), metrics));
            }
            Err(e) => {
                eprintln!("metrics_listen: cannot bind {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    match tls {
        Some(tls) => server::serve_tls(live, listener, tls, server::shutdown_signal()).await,
        None => server::serve(live, listener, server::shutdown_signal()).await,
    }
    tracing::info!("rocketgate stopped");
    ExitCode::SUCCESS
}

/// `rocketgate sessions revoke --user ID`: the same as the admin endpoint, from a shell that
/// has the configuration (and so the Redis credentials).
pub async fn revoke(config: Config, user: &str) -> ExitCode {
    let Some(settings) = config.session.redis() else {
        eprintln!(
            "session.store is \"cookie\": cookie sessions cannot be revoked server-side \
             (rotate cookie.secret to end every session)"
        );
        return ExitCode::FAILURE;
    };
    let metrics = std::sync::Arc::new(rocketgate::metrics::Metrics::new());
    let store = match rocketgate::session::redis::RedisStore::new(
        settings,
        config.cookie.expire,
        std::time::Duration::from_secs(30),
        metrics,
    ) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("session.redis_url: {e}");
            return ExitCode::FAILURE;
        }
    };
    match store.revoke_user(user).await {
        Ok(n) => {
            rocketgate::audit::record(rocketgate::audit::Event::SessionRevoked {
                user,
                by: "cli",
                sessions: n,
            });
            println!("revoked {n} session(s) of user {user}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", store.target());
            ExitCode::FAILURE
        }
    }
}

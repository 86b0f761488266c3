//! The command line: run the proxy, run the demo, check a config, generate a secret.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::app::App;
use crate::config::{self, Config};
use crate::demo::{StandIn, StandInOptions, spawn_upstream};
use crate::server;

#[derive(Debug, Parser)]
#[command(
    name = "rocketgate",
    version,
    about = "Authenticating reverse proxy for Rocketpunch sign-in"
)]
pub struct Cli {
    /// The TOML configuration file.
    #[arg(long, env = "ROCKETGATE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a Rocketpunch stand-in, a demo app and the proxy in front of it, all on this machine.
    Demo {
        /// Where the proxy listens; open this address in a browser.
        #[arg(long, default_value = "127.0.0.1:4180")]
        listen: SocketAddr,
        /// Lifetime of the stand-in's access tokens (`expires_in`), e.g. "20s" or "1h".
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        token_lifetime: Duration,
        /// Show rocketgate's sign-in page (`[pages] sign_in_page = true`) instead of
        /// redirecting straight to the stand-in.
        #[arg(long)]
        sign_in_page: bool,
        /// Proxy to this app (e.g. "http://127.0.0.1:8080") instead of the built-in demo app.
        #[arg(long, value_name = "URL")]
        upstream: Option<url::Url>,
        /// Keep sessions in Redis (`session.store = "redis"`) at this URL, e.g.
        /// "redis://127.0.0.1:6379/0", instead of in the cookie.
        #[arg(long, value_name = "URL")]
        redis_url: Option<String>,
    },
    /// Validate the configuration and exit 0, or print every problem and exit 1.
    CheckConfig,
    /// Print a fresh random cookie secret (base64 of 32 bytes).
    GenerateSecret,
    /// Manage server-side sessions (needs session.store = "redis").
    Sessions {
        #[command(subcommand)]
        action: SessionsAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// Sign a user out everywhere: delete every session of the user from Redis.
    Revoke {
        /// The user's Rocketpunch id (what rocketgate sends as X-Forwarded-User).
        #[arg(long)]
        user: String,
    },
}

pub async fn run(cli: Cli) -> ExitCode {
    let env: HashMap<String, String> = std::env::vars().collect();
    match cli.command {
        Some(Command::GenerateSecret) => {
            println!("{}", generate_secret());
            ExitCode::SUCCESS
        }
        Some(Command::CheckConfig) => match load(cli.config, &env) {
            Ok(_) => {
                println!("configuration is valid");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Some(Command::Sessions {
            action: SessionsAction::Revoke { user },
        }) => match load(cli.config, &env) {
            Ok(config) => revoke(config, &user).await,
            Err(code) => code,
        },
        Some(Command::Demo {
            listen,
            token_lifetime,
            sign_in_page,
            upstream,
            redis_url,
        }) => {
            let overrides = demo_overrides(upstream.as_ref(), redis_url.as_deref());
            demo(listen, token_lifetime, sign_in_page, overrides).await
        }
        None => match load(cli.config, &env) {
            Ok(config) => match TcpListener::bind(config.listen).await {
                Ok(listener) => run_proxy(config, listener).await,
                Err(e) => {
                    eprintln!("listen: cannot bind {}: {e}", config.listen);
                    ExitCode::FAILURE
                }
            },
            Err(code) => code,
        },
    }
}

/// 32 random bytes in standard base64: exactly what `cookie.secret` takes.
pub fn generate_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn load(path: Option<PathBuf>, env: &HashMap<String, String>) -> Result<Config, ExitCode> {
    let Some(path) = path else {
        eprintln!("no configuration: pass --config FILE or set ROCKETGATE_CONFIG");
        return Err(ExitCode::from(2));
    };
    config::load(&path, env).map_err(|e| {
        eprintln!("invalid configuration in {}:", path.display());
        for problem in e.problems() {
            eprintln!("  {problem}");
        }
        ExitCode::FAILURE
    })
}

/// Logs the effective configuration (never a secret) and serves until SIGTERM/SIGINT.
pub async fn run_proxy(config: Config, listener: TcpListener) -> ExitCode {
    let _log_guard = crate::logging::init(config.log_format);
    tracing::info!(
        listen = %listener.local_addr().map_or_else(|_| config.listen.to_string(), |a| a.to_string()),
        upstream = %config.upstream,
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
        "rocketgate starting"
    );
    #[cfg(unix)]
    server::fdlimit::raise(config.limits.max_connections);
    // Loaded again (validation already checked the pair) because the files, not the
    // configuration, hold the certificate: the reloader keeps following them.
    let tls = match config.tls.as_ref().map(crate::tls::ServerTls::start) {
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
    if let Some(addr) = app.config.metrics_listen {
        match TcpListener::bind(addr).await {
            Ok(metrics) => {
                tokio::spawn(server::serve_metrics(app.clone(), metrics));
            }
            Err(e) => {
                eprintln!("metrics_listen: cannot bind {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    match tls {
        Some(tls) => server::serve_tls(app, listener, tls, server::shutdown_signal()).await,
        None => server::serve(app, listener, server::shutdown_signal()).await,
    }
    tracing::info!("rocketgate stopped");
    ExitCode::SUCCESS
}

/// `rocketgate sessions revoke --user ID`: the same as the admin endpoint, from a shell that
/// has the configuration (and so the Redis credentials).
async fn revoke(config: Config, user: &str) -> ExitCode {
    let Some(settings) = config.session.redis() else {
        eprintln!(
            "session.store is \"cookie\": cookie sessions cannot be revoked server-side \
             (rotate cookie.secret to end every session)"
        );
        return ExitCode::FAILURE;
    };
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
    let store = match crate::session::redis::RedisStore::new(
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
            println!("revoked {n} session(s) of user {user}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", store.target());
            ExitCode::FAILURE
        }
    }
}

/// The TOML for a proxy in front of `upstream`, signing in at the stand-in on `provider`.
pub fn demo_config(
    public: SocketAddr,
    upstream: SocketAddr,
    provider: SocketAddr,
    client_secret: &str,
) -> String {
    format!(
        r#"
listen = "{public}"
upstream = "http://{upstream}"
public_url = "http://{public}"

[provider]
client_id = "demo-client"
client_secret = "{client_secret}"
authorize_url = "http://{provider}/oauth/authorize"
token_url = "http://{provider}/oauth/token"
profile_url = "http://{provider}/api/v1/profiles/me"

[cookie]
secret = "{secret}"
secure = false
"#,
        secret = generate_secret(),
    )
}

/// [`demo_config`] plus the demo's own options.
fn demo_toml(
    public: SocketAddr,
    upstream: SocketAddr,
    provider: SocketAddr,
    client_secret: &str,
    sign_in_page: bool,
) -> String {
    let mut toml = demo_config(public, upstream, provider, client_secret);
    if sign_in_page {
        toml.push_str("\n[pages]\nsign_in_page = true\n");
    }
    toml
}

/// `demo --upstream` and `--redis-url` as configuration overrides (the same keys as the
/// `ROCKETGATE_*` environment variables), applied on top of [`demo_toml`].
fn demo_overrides(upstream: Option<&url::Url>, redis_url: Option<&str>) -> HashMap<String, String> {
    let mut env = HashMap::new();
    if let Some(upstream) = upstream {
        env.insert("ROCKETGATE_UPSTREAM".to_owned(), upstream.to_string());
    }
    if let Some(redis_url) = redis_url {
        env.insert("ROCKETGATE_SESSION__STORE".to_owned(), "redis".to_owned());
        env.insert(
            "ROCKETGATE_SESSION__REDIS_URL".to_owned(),
            redis_url.to_owned(),
        );
    }
    env
}

async fn demo(
    listen: SocketAddr,
    token_lifetime: Duration,
    sign_in_page: bool,
    overrides: HashMap<String, String>,
) -> ExitCode {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|e| {
            eprintln!("cannot listen on {addr}: {e}");
            ExitCode::FAILURE
        })
    };
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let (proxy, provider, upstream) = match (
        bind(listen).await,
        bind(loopback).await,
        bind(loopback).await,
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(code), _, _) | (_, Err(code), _) | (_, _, Err(code)) => return code,
    };
    let (Ok(proxy_addr), Ok(provider_addr), Ok(upstream_addr)) = (
        proxy.local_addr(),
        provider.local_addr(),
        upstream.local_addr(),
    ) else {
        eprintln!("cannot read the listening addresses");
        return ExitCode::FAILURE;
    };
    let client_secret = generate_secret();
    let standin = StandIn::new(StandInOptions {
        client_id: "demo-client".into(),
        client_secret: client_secret.clone(),
        redirect_uri: format!("http://{proxy_addr}/oauth2/callback"),
        access_token_ttl: token_lifetime,
        ..StandInOptions::default()
    });
    let _provider_task = standin.spawn(provider);
    // With --upstream the built-in app is not started; its port stays bound but unused.
    let _upstream_task =
        (!overrides.contains_key("ROCKETGATE_UPSTREAM")).then(|| spawn_upstream(upstream));
    let toml = demo_toml(
        proxy_addr,
        upstream_addr,
        provider_addr,
        &client_secret,
        sign_in_page,
    );
    let config = match config::load_from_str(&toml, &overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("demo configuration refused (a bug): {e}");
            return ExitCode::FAILURE;
        }
    };
    println!();
    println!("  rocketgate demo is running.");
    println!();
    println!("    Open  http://{proxy_addr}/  and sign in on the Rocketpunch stand-in.");
    println!();
    println!("    stand-in provider  http://{provider_addr}/oauth/authorize");
    match overrides.get("ROCKETGATE_UPSTREAM") {
        Some(url) => println!("    upstream           {url} (--upstream)"),
        None => println!("    demo upstream      http://{upstream_addr}/ (direct, no sign-in)"),
    }
    if let Some(redis) = config.session.redis() {
        println!(
            "    sessions           {} (--redis-url)",
            redis.target.describe()
        );
    }
    println!(
        "    access tokens      expire after {}",
        humantime::format_duration(token_lifetime)
    );
    if sign_in_page {
        println!("    sign-in page       shown before the stand-in (--sign-in-page)");
    }
    println!();
    println!("  Press Ctrl-C to stop.");
    println!();
    run_proxy(config, proxy).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_sign_in_page_flag_turns_the_page_on() {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let cli = Cli::try_parse_from(["rocketgate", "demo", "--sign-in-page"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Demo {
                sign_in_page: true,
                ..
            })
        ));
        let cli = Cli::try_parse_from(["rocketgate", "demo"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Demo {
                sign_in_page: false,
                ..
            })
        ));
        for on in [false, true] {
            let toml = demo_toml(addr(4180), addr(1), addr(2), "secret", on);
            let config = config::load_from_str(&toml, &HashMap::new()).unwrap();
            assert_eq!(config.pages.sign_in_page, on);
        }
    }

    /// `--upstream` and `--redis-url` as clap parsed them from `rocketgate demo ARGS`.
    fn demo_flags(args: &[&str]) -> (Option<url::Url>, Option<String>) {
        let argv = ["rocketgate", "demo"].iter().chain(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Demo {
                upstream,
                redis_url,
                ..
            }) => (upstream, redis_url),
            _ => panic!("not the demo command"),
        }
    }

    #[test]
    fn demo_upstream_flag_replaces_the_demo_app() {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let (upstream, redis_url) = demo_flags(&["--upstream", "http://127.0.0.1:8081"]);
        assert_eq!(redis_url, None);
        let env = demo_overrides(upstream.as_ref(), None);
        let toml = demo_toml(addr(4180), addr(1), addr(2), "secret", false);
        let config = config::load_from_str(&toml, &env).unwrap();
        assert_eq!(config.upstream.as_str(), "http://127.0.0.1:8081/");
        assert!(config.session.redis().is_none());
        // Without the flag the built-in app's address stays.
        let config = config::load_from_str(&toml, &demo_overrides(None, None)).unwrap();
        assert_eq!(config.upstream.as_str(), "http://127.0.0.1:1/");
        assert!(Cli::try_parse_from(["rocketgate", "demo", "--upstream", "not a url"]).is_err());
    }

    #[test]
    fn demo_redis_url_flag_keeps_sessions_in_redis() {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let (upstream, redis_url) = demo_flags(&["--redis-url", "redis://127.0.0.1:6390/0"]);
        assert_eq!(upstream, None);
        let env = demo_overrides(None, redis_url.as_deref());
        let toml = demo_toml(addr(4180), addr(1), addr(2), "secret", false);
        let config = config::load_from_str(&toml, &env).unwrap();
        let redis = config.session.redis().expect("redis store");
        assert_eq!(redis.target.describe(), "redis redis://127.0.0.1:6390");
    }
}

//! The `rocketgate` command line: run the proxy, run the demo, check a config, generate a
//! secret, revoke sessions. The binary's own modules; the library knows nothing of them.

#[cfg(feature = "demo")]
mod demo;
mod explain;
mod migrate;
mod proxy;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use rocketgate::config::{self, Config};

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
    #[cfg(feature = "demo")]
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
        #[arg(long, value_name = "URL", conflicts_with = "routes_example")]
        upstream: Option<url::Url>,
        /// Keep sessions in Redis (`session.store = "redis"`) at this URL, e.g.
        /// "redis://127.0.0.1:6379/0", instead of in the cookie.
        #[arg(long, value_name = "URL")]
        redis_url: Option<String>,
        /// Two demo apps behind the one address, with path routes, a group rule and a claim
        /// header (`[[routes]]`, `[groups]`, `[provider.claims]`, `[headers.claims]`);
        /// prints what to try and the routes it uses.
        #[arg(long)]
        routes_example: bool,
    },
    /// Validate the configuration and exit 0, or print every problem and exit 1.
    CheckConfig,
    /// Print a fresh random cookie secret (base64 of 32 bytes).
    GenerateSecret,
    /// Print a rocketgate.toml equivalent to an oauth2-proxy configuration: its .cfg file,
    /// and with --env its OAUTH2_PROXY_* variables, with --args its flags (later ones win).
    /// Options without an equivalent become comments; a summary goes to stderr.
    MigrateConfig {
        /// oauth2-proxy's configuration file (TOML, `oauth2-proxy.cfg`).
        file: PathBuf,
        /// Also read OAUTH2_PROXY_* variables from the environment.
        #[arg(long)]
        env: bool,
        /// oauth2-proxy's command-line flags, as one string: "--upstream=http://a:8080 ...".
        #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
        args: Option<String>,
    },
    /// Which route a URL goes to, its final upstream URL, and whether a user may pass and
    /// by which rule. Exit 0 allowed, 1 denied, 2 no route.
    Explain {
        /// The URL as the browser asks for it, e.g. "https://grafana.example.com/d/1".
        #[arg(long)]
        url: String,
        /// The user's email.
        #[arg(long)]
        email: Option<String>,
        /// The user's Rocketpunch id.
        #[arg(long)]
        user: Option<String>,
        /// Groups Rocketpunch reports for the user, comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        #[arg(long, default_value = "GET")]
        method: String,
    },
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
        Some(Command::MigrateConfig {
            file,
            env: use_env,
            args,
        }) => migrate_config(&file, use_env.then_some(&env), args.as_deref()),
        Some(Command::CheckConfig) => match load(cli.config, &env) {
            Ok(config) => {
                for warning in &config.warnings {
                    println!("warning: {warning}");
                }
                println!("configuration is valid");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Some(Command::Explain {
            url,
            email,
            user,
            groups,
            method,
        }) => match load(cli.config, &env) {
            Ok(config) => explain::explain(
                &config,
                &explain::Asking {
                    url,
                    method,
                    email,
                    user,
                    groups,
                },
            ),
            Err(code) => code,
        },
        Some(Command::Sessions {
            action: SessionsAction::Revoke { user },
        }) => match load(cli.config, &env) {
            Ok(config) => proxy::revoke(config, &user).await,
            Err(code) => code,
        },
        #[cfg(feature = "demo")]
        Some(Command::Demo {
            listen,
            token_lifetime,
            sign_in_page,
            upstream,
            redis_url,
            routes_example,
        }) => {
            let overrides = demo::demo_overrides(upstream.as_ref(), redis_url.as_deref());
            let file = match &cli.config {
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(text) => Some((path.display().to_string(), text)),
                    Err(e) => {
                        eprintln!("cannot read configuration {}: {e}", path.display());
                        return ExitCode::FAILURE;
                    }
                },
                None => None,
            };
            let user = demo::UserConfig {
                file,
                env: env
                    .iter()
                    .filter(|(k, _)| {
                        k.starts_with("ROCKETGATE_")
                            && k.as_str() != "ROCKETGATE_CONFIG"
                            && k.as_str() != "ROCKETGATE_LOG"
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            };
            demo::demo(
                listen,
                token_lifetime,
                sign_in_page,
                routes_example,
                overrides,
                user,
            )
            .await
        }
        None => match load_reloadable(cli.config, env) {
            Ok((config, source)) => match TcpListener::bind(config.listen).await {
                Ok(listener) => proxy::run_proxy(config, listener, Some(source)).await,
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

/// The configuration to serve with, and what a reload needs to compare a changed file with.
fn load_reloadable(
    path: Option<PathBuf>,
    env: HashMap<String, String>,
) -> Result<(Config, proxy::Reloadable), ExitCode> {
    let Some(path) = path else {
        eprintln!("no configuration: pass --config FILE or set ROCKETGATE_CONFIG");
        return Err(ExitCode::from(2));
    };
    let refused = |e: config::ConfigError| {
        eprintln!("invalid configuration in {}:", path.display());
        for problem in e.problems() {
            eprintln!("  {problem}");
        }
        ExitCode::FAILURE
    };
    // The bytes are hashed and parsed once, so the hash names exactly what is served.
    let bytes = std::fs::read(&path).map_err(|e| {
        eprintln!("cannot read configuration {}: {e}", path.display());
        ExitCode::FAILURE
    })?;
    let raw = config::load_raw_from_file_text(
        &path.display().to_string(),
        &String::from_utf8_lossy(&bytes),
        &env,
    )
    .map_err(refused)?;
    let config = config::from_raw(raw.clone()).map_err(refused)?;
    let source = proxy::Reloadable {
        hash: rocketgate::reload::config_hash(&bytes, &raw),
        path,
        env,
        raw,
    };
    Ok((config, source))
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

/// `migrate-config`: the converted file on stdout, what was and was not converted on stderr.
fn migrate_config(
    file: &std::path::Path,
    env: Option<&HashMap<String, String>>,
    args: Option<&str>,
) -> ExitCode {
    let mut options = migrate::Options::default();
    let read = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))
        .and_then(|text| {
            options
                .read_cfg(&text)
                .map_err(|e| format!("{}: {e}", file.display()))
        });
    let read = read.and_then(|()| {
        if let Some(env) = env {
            options.read_env(env);
        }
        args.map_or(Ok(()), |a| {
            options.read_args(a).map_err(|e| format!("--args: {e}"))
        })
    });
    if let Err(e) = read {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    let converted = migrate::convert(&options, &generate_secret());
    print!("{}", converted.toml);
    eprintln!(
        "converted {} oauth2-proxy option(s): {}",
        converted.mapped.len(),
        converted.mapped.join(", ")
    );
    if !converted.unmapped.is_empty() {
        eprintln!(
            "not converted, {} (each explained in a comment at the end): {}",
            converted.unmapped.len(),
            converted
                .unmapped
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    eprintln!("next: rocketgate check-config --config <the output>");
    ExitCode::SUCCESS
}

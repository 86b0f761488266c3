//! `rocketgate demo`: the Rocketpunch stand-in, the demo app and the proxy in front of
//! them, all on this machine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use rocketgate::config;
use rocketgate_demo::{StandIn, StandInOptions, proxy_config, random_secret, spawn_upstream};
use tokio::net::TcpListener;

use super::proxy::run_proxy;

/// [`proxy_config`] plus the demo's own options.
fn demo_toml(
    public: SocketAddr,
    upstream: SocketAddr,
    provider: SocketAddr,
    client_secret: &str,
    sign_in_page: bool,
) -> String {
    let mut toml = proxy_config(public, upstream, provider, client_secret);
    if sign_in_page {
        toml.push_str("\n[pages]\nsign_in_page = true\n");
    }
    toml
}

/// `demo --upstream` and `--redis-url` as configuration overrides (the same keys as the
/// `ROCKETGATE_*` environment variables), applied on top of [`demo_toml`].
pub fn demo_overrides(
    upstream: Option<&url::Url>,
    redis_url: Option<&str>,
) -> HashMap<String, String> {
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

pub async fn demo(
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
    let client_secret = random_secret();
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
    run_proxy(config, proxy, None).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

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
        assert_eq!(
            config.upstream.as_ref().unwrap().as_str(),
            "http://127.0.0.1:8081/"
        );
        assert!(config.session.redis().is_none());
        // Without the flag the built-in app's address stays.
        let config = config::load_from_str(&toml, &demo_overrides(None, None)).unwrap();
        assert_eq!(
            config.upstream.as_ref().unwrap().as_str(),
            "http://127.0.0.1:1/"
        );
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

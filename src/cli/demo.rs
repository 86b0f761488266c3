//! `rocketgate demo`: the Rocketpunch stand-in, the demo app and the proxy in front of
//! them, all on this machine. With `--routes-example`, two demo apps behind the one gate,
//! with path routes, a group rule and a claim header.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use rocketgate::config;
use rocketgate_demo::{
    StandIn, StandInOptions, proxy_config, proxy_config_without_upstream, random_secret,
    spawn_upstream,
};
use tokio::net::TcpListener;

use super::proxy::run_proxy;

/// The path each demo app sees in front of every request (the upstream URL's path), so the
/// page's "Request" line shows which app answered.
const APP_ONE_BASE: &str = "/app-one";
const APP_TWO_BASE: &str = "/app-two";

/// [`proxy_config`] plus the demo's own options; with `routes` (from [`routes_example`]),
/// those routes instead of a top-level `upstream`.
fn demo_toml(
    public: SocketAddr,
    upstream: SocketAddr,
    provider: SocketAddr,
    client_secret: &str,
    sign_in_page: bool,
    routes: Option<&str>,
) -> String {
    let mut toml = match routes {
        None => proxy_config(public, upstream, provider, client_secret),
        Some(routes) => {
            let mut toml = proxy_config_without_upstream(public, provider, client_secret);
            toml.push_str(routes);
            toml
        }
    };
    if sign_in_page {
        toml.push_str("\n[pages]\nsign_in_page = true\n");
    }
    toml
}

/// `demo --routes-example`: the routes, groups and claims of two demo apps behind one gate,
/// app one on `app_one` and app two on `app_two`. It holds no secret: the demo prints it for
/// copying, and the running demo's configuration is exactly this plus [`demo_toml`]'s keys.
pub fn routes_example(app_one: SocketAddr, app_two: SocketAddr) -> String {
    format!(
        r#"
# Two apps behind one gate, told apart by path (no DNS needed); see docs/routes.md.

[provider.claims]
groups = "/teams"                           # the groups Rocketpunch reports (the stand-in's teams)

[groups]
engineering-leads = {{ users = ["1001"] }}    # ada, by Rocketpunch user id

[headers.claims]
"X-Forwarded-Name" = "/name"                # the profile's display name, to every app

# App one at /: every signed-in user.
[[routes]]
path = "/"
upstream = "http://{app_one}{APP_ONE_BASE}"

# App two at /ops: team ops only. It gets /ops/x as {APP_TWO_BASE}/x, and X-Forwarded-Prefix: /ops.
[[routes]]
path = "/ops"
upstream = "http://{app_two}{APP_TWO_BASE}"
allowed_groups = ["ops"]
strip_prefix = true

# App two again at /leads: the named group engineering-leads only.
[[routes]]
path = "/leads"
upstream = "http://{app_two}{APP_TWO_BASE}"
allowed_groups = ["engineering-leads"]
strip_prefix = true

# Public pages of app one: no sign-in, and no identity headers even for a signed-in user.
[[routes]]
path = "/docs"
upstream = "http://{app_one}{APP_ONE_BASE}"
public = true
"#
    )
}

/// Settings the demo keeps whatever a `--config` file or `ROCKETGATE_*` variable says: where
/// it listens and how browsers and the stand-in reach it (plain HTTP on this machine), and
/// the stand-in's client credentials.
const DEMO_OWNED: &[&str] = &[
    "listen",
    "public_url",
    "provider.client_id",
    "provider.client_secret",
    "provider.client_secret_file",
    "cookie.secure",
    "cookie.domain",
    "tls",
];

/// The demo's configuration with a user's over it.
pub struct Overlaid {
    pub toml: String,
    /// The `ROCKETGATE_*` variables to apply.
    pub vars: HashMap<String, String>,
    /// The user's settings set aside ([`DEMO_OWNED`]).
    pub ignored: Vec<String>,
}

/// A user's configuration (the text of `--config` and the `ROCKETGATE_*` variables) over the
/// demo's own: the demo's upstream and provider URLs stay unless the user gives theirs, and
/// [`DEMO_OWNED`] keys always stay.
pub fn overlay(
    demo: &str,
    user: Option<&str>,
    env: &HashMap<String, String>,
) -> Result<Overlaid, String> {
    let mut base: toml::Table =
        toml::from_str(demo).map_err(|e| format!("demo configuration (a bug): {e}"))?;
    let mut ignored = Vec::new();
    if let Some(user) = user {
        let mut theirs: toml::Table = toml::from_str(user).map_err(|e| e.to_string())?;
        for key in DEMO_OWNED {
            let path: Vec<&str> = key.split('.').collect();
            if remove_path(&mut theirs, &path) {
                ignored.push((*key).to_owned());
            }
        }
        merge(&mut base, theirs);
    }
    let owned_var = |var: &str| {
        DEMO_OWNED.iter().any(|key| {
            let name = format!("ROCKETGATE_{}", key.replace('.', "__").to_ascii_uppercase());
            var == name || var.starts_with(&format!("{name}__"))
        })
    };
    let mut vars = HashMap::new();
    for (var, value) in env {
        if owned_var(var) {
            ignored.push(var.clone());
        } else {
            vars.insert(var.clone(), value.clone());
        }
    }
    ignored.sort();
    let toml = toml::to_string(&base).map_err(|e| format!("demo configuration (a bug): {e}"))?;
    Ok(Overlaid {
        toml,
        vars,
        ignored,
    })
}

fn remove_path(table: &mut toml::Table, path: &[&str]) -> bool {
    match path {
        [key] => table.remove(*key).is_some(),
        [key, rest @ ..] => match table.get_mut(*key) {
            Some(toml::Value::Table(inner)) => remove_path(inner, rest),
            _ => false,
        },
        [] => false,
    }
}

/// `theirs` over `ours`: tables merged key by key, anything else replaced.
fn merge(ours: &mut toml::Table, theirs: toml::Table) {
    for (key, value) in theirs {
        match (ours.get_mut(&key), value) {
            (Some(toml::Value::Table(mine)), toml::Value::Table(other)) => merge(mine, other),
            (_, value) => {
                ours.insert(key, value);
            }
        }
    }
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

/// The user's configuration for the demo: `--config`'s name and text, and the process's
/// `ROCKETGATE_*` variables.
pub struct UserConfig {
    pub file: Option<(String, String)>,
    pub env: HashMap<String, String>,
}

pub async fn demo(
    listen: SocketAddr,
    token_lifetime: Duration,
    sign_in_page: bool,
    routes: bool,
    overrides: HashMap<String, String>,
    user: UserConfig,
) -> ExitCode {
    // The user's file is checked alone first, so its problems point at its own lines.
    if let Some((name, text)) = &user.file {
        let problems = config::key_problems(name, text, &user.env);
        if !problems.is_empty() {
            eprintln!("invalid configuration in {name}:");
            for problem in problems {
                eprintln!("  {problem}");
            }
            return ExitCode::FAILURE;
        }
    }
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
    // --routes-example: app two, another instance of the demo app on its own port.
    let app_two = if routes {
        match bind(loopback).await {
            Ok(listener) => Some(listener),
            Err(code) => return code,
        }
    } else {
        None
    };
    let (Ok(proxy_addr), Ok(provider_addr), Ok(upstream_addr)) = (
        proxy.local_addr(),
        provider.local_addr(),
        upstream.local_addr(),
    ) else {
        eprintln!("cannot read the listening addresses");
        return ExitCode::FAILURE;
    };
    let app_two_addr = match app_two.as_ref().map(TcpListener::local_addr).transpose() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("cannot read the listening addresses: {e}");
            return ExitCode::FAILURE;
        }
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
    let _app_two_task = app_two.map(spawn_upstream);
    let routes_toml = app_two_addr.map(|two| routes_example(upstream_addr, two));
    let toml = demo_toml(
        proxy_addr,
        upstream_addr,
        provider_addr,
        &client_secret,
        sign_in_page,
        routes_toml.as_deref(),
    );
    let user_text = user.file.as_ref().map(|(_, text)| text.as_str());
    let Overlaid {
        toml,
        mut vars,
        ignored,
    } = match overlay(&toml, user_text, &user.env) {
        Ok(merged) => merged,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // The demo's own flags (--upstream, --redis-url) win over the environment.
    vars.extend(overrides.clone());
    let config = match config::load_from_str(&toml, &vars) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("the demo cannot run with this configuration:");
            for problem in e.problems() {
                eprintln!("  {problem}");
            }
            return ExitCode::FAILURE;
        }
    };
    println!();
    println!(
        "  rocketgate {} ({}) demo is running.",
        env!("CARGO_PKG_VERSION"),
        rocketgate::metrics::BUILD_COMMIT
    );
    println!();
    if let Some((name, _)) = &user.file {
        println!("    configuration      {name}, over the demo's own settings");
    }
    if !ignored.is_empty() {
        println!(
            "    kept the demo's    {} (the demo runs on this machine, over plain HTTP)",
            ignored.join(", ")
        );
    }
    println!("    who may pass       {}", config.access.emails.summary());
    if user.file.is_some() || !user.env.is_empty() {
        let routes = config.routes.iter().count();
        match &config.upstream {
            Some(u) if routes == 0 => println!("    upstream           {u}"),
            _ => println!("    routes             {routes}"),
        }
    }
    println!(
        "    sessions           {}",
        config
            .session
            .redis()
            .map_or_else(|| "in the cookie".to_owned(), |r| r.target.describe())
    );
    println!("    Open  http://{proxy_addr}/  and sign in on the Rocketpunch stand-in.");
    println!();
    println!("    stand-in provider  http://{provider_addr}/oauth/authorize");
    match (overrides.get("ROCKETGATE_UPSTREAM"), app_two_addr) {
        (Some(url), _) => println!("    upstream           {url} (--upstream)"),
        (None, None) => {
            println!("    demo upstream      http://{upstream_addr}/ (direct, no sign-in)");
        }
        (None, Some(two)) => {
            println!(
                "    app one            http://{upstream_addr}{APP_ONE_BASE}/ (direct, no sign-in)"
            );
            println!("    app two            http://{two}{APP_TWO_BASE}/ (direct, no sign-in)");
        }
    }
    println!(
        "    access tokens      expire after {}",
        humantime::format_duration(token_lifetime)
    );
    if sign_in_page {
        println!("    sign-in page       shown before the stand-in (--sign-in-page)");
    }
    if let Some(routes_toml) = &routes_toml {
        print!("{}", routes_guide(proxy_addr, routes_toml));
    }
    println!();
    println!("  Press Ctrl-C to stop.");
    println!();
    run_proxy(config, proxy, None).await
}

/// What `--routes-example` prints after the addresses: what to try, and the routes in use.
fn routes_guide(proxy: SocketAddr, routes_toml: &str) -> String {
    let rows: [(&str, &[&str]); 4] = [
        ("/", &["app one, for every signed-in user"]),
        (
            "/ops",
            &[
                "app two, team ops only: as ada it is 403; as grace it works",
                "and the page shows X-Forwarded-Groups: navy,ops",
            ],
        ),
        (
            "/leads",
            &["app two, group engineering-leads only (ada, by user id)"],
        ),
        (
            "/docs",
            &["app one, public: no sign-in, no identity headers"],
        ),
    ];
    let url = |path: &str| format!("http://{proxy}{path}");
    let width = rows
        .iter()
        .map(|(path, _)| url(path).len())
        .max()
        .unwrap_or(0);
    let mut table = String::new();
    for (path, lines) in rows {
        for (i, line) in lines.iter().enumerate() {
            let left = if i == 0 { url(path) } else { String::new() };
            table.push_str(&format!("    {left:<width$}   {line}\n"));
        }
    }
    format!(
        r#"
  Two apps behind this one address (--routes-example). The demo users: ada (1001, team
  engineering), grace (1002, teams navy and ops), linus (1003, no team).

{table}
    Each page's "Request" line shows which app answered ({APP_ONE_BASE}/... or {APP_TWO_BASE}/...).
    To switch users, sign out (the page's button, or http://{proxy}/oauth2/sign_out).

  The routes in use, to copy next to your own [provider] and [cookie] settings:
{routes_toml}"#
    )
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
            let toml = demo_toml(addr(4180), addr(1), addr(2), "secret", on, None);
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
        let toml = demo_toml(addr(4180), addr(1), addr(2), "secret", false, None);
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
        let toml = demo_toml(addr(4180), addr(1), addr(2), "secret", false, None);
        let config = config::load_from_str(&toml, &env).unwrap();
        let redis = config.session.redis().expect("redis store");
        assert_eq!(redis.target.describe(), "redis redis://127.0.0.1:6390");
    }

    #[test]
    fn demo_routes_example_flag_parses_and_excludes_upstream() {
        let routes_example = |args: &[&str]| {
            let argv = ["rocketgate", "demo"].iter().chain(args);
            match Cli::try_parse_from(argv).unwrap().command {
                Some(Command::Demo { routes_example, .. }) => routes_example,
                _ => panic!("not the demo command"),
            }
        };
        assert!(routes_example(&["--routes-example"]));
        assert!(routes_example(&[
            "--routes-example",
            "--sign-in-page",
            "--redis-url",
            "redis://127.0.0.1:6390/0"
        ]));
        assert!(!routes_example(&[]));
        // The example brings its own apps: another upstream would be silently unused.
        let both = [
            "rocketgate",
            "demo",
            "--routes-example",
            "--upstream",
            "http://127.0.0.1:8081",
        ];
        assert!(Cli::try_parse_from(both).is_err());
    }

    #[test]
    fn the_routes_example_is_a_valid_config_with_two_apps_and_group_rules() {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let routes = routes_example(addr(8001), addr(8002));
        assert!(
            !routes.contains("secret"),
            "printed, so no secrets: {routes}"
        );
        for sign_in_page in [false, true] {
            let toml = demo_toml(
                addr(4180),
                addr(8001),
                addr(2),
                "client-secret",
                sign_in_page,
                Some(&routes),
            );
            let config = config::load_from_str(&toml, &HashMap::new()).unwrap();
            assert!(config.warnings.is_empty(), "{:?}", config.warnings);
            assert_eq!(config.pages.sign_in_page, sign_in_page);
            // No top-level upstream: the four routes are the whole table.
            assert!(config.upstream.is_none());
            let table: Vec<_> = config
                .routes
                .iter()
                .map(|r| {
                    (
                        r.name.to_string(),
                        r.path.to_string(),
                        r.target.to_string(),
                        r.rules.groups.clone(),
                        r.public,
                        r.strip_prefix,
                    )
                })
                .collect();
            let row = |n: usize, path: &str, target: &str, groups: &[&str], public, strip| {
                (
                    format!("routes[{n}]"),
                    path.to_owned(),
                    target.to_owned(),
                    groups.iter().map(|g| (*g).to_owned()).collect::<Vec<_>>(),
                    public,
                    strip,
                )
            };
            assert_eq!(
                table,
                [
                    row(0, "/", "http://127.0.0.1:8001/app-one", &[], false, false),
                    row(
                        1,
                        "/ops",
                        "http://127.0.0.1:8002/app-two",
                        &["ops"],
                        false,
                        true
                    ),
                    row(
                        2,
                        "/leads",
                        "http://127.0.0.1:8002/app-two",
                        &["engineering-leads"],
                        false,
                        true
                    ),
                    row(
                        3,
                        "/docs",
                        "http://127.0.0.1:8001/app-one",
                        &[],
                        true,
                        false
                    ),
                ]
            );
            let pick = |path: &str| config.routes.pick(Some("127.0.0.1"), path).unwrap();
            assert_eq!(&*pick("/ops/status").name, "routes[1]");
            assert_eq!(&*pick("/opsx").name, "routes[0]");
            assert_eq!(&*pick("/docs/intro").name, "routes[3]");
            assert!(config.routes.iter().all(|r| r.rules.emails.is_open()));
            assert_eq!(
                config.groups.names().collect::<Vec<_>>(),
                ["engineering-leads"]
            );
            assert_eq!(config.provider.claims.groups.as_deref(), Some("/teams"));
            let claims: Vec<_> = config
                .claim_headers
                .iter()
                .map(|h| (h.upstream.as_str().to_owned(), h.pointer.clone()))
                .collect();
            assert_eq!(
                claims,
                [("x-forwarded-name".to_owned(), "/name".to_owned())]
            );
        }
    }

    #[test]
    fn the_routes_guide_says_what_to_try_and_prints_the_routes() {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let routes = routes_example(addr(8001), addr(8002));
        let guide = routes_guide(addr(4180), &routes);
        assert!(guide.ends_with(&routes), "{guide}");
        for needle in [
            "http://127.0.0.1:4180/ops",
            "as ada it is 403",
            "X-Forwarded-Groups: navy,ops",
            "http://127.0.0.1:4180/docs",
        ] {
            assert!(guide.contains(needle), "{needle} in {guide}");
        }
    }
}

//! `rocketgate migrate-config` on realistic oauth2-proxy configurations written for these
//! tests: every converted option checked key by key, the output accepted by `check-config`,
//! and a converted proxy run for real enforcing the same email domains, emails file and skip
//! routes as the oauth2-proxy it replaces.

use std::time::Duration;

use reqwest::header::ACCEPT;
use rocketgate_demo::{StandIn, StandInOptions, spawn_upstream};

use crate::support::pki::Pki;
use crate::support::process::{TempFile, command, free_port, plain_client, run, wait_until_ready};
use crate::support::{Browser, location};

const BOUND: Duration = Duration::from_secs(20);

/// Runs `migrate-config` on `cfg` (with `args` after it); the output and stderr.
async fn migrate(cfg: &TempFile, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let mut all = vec!["migrate-config", cfg.0.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut cmd = command(&all);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let done = run(cmd, BOUND).await;
    assert!(
        done.status.success(),
        "migrate-config failed: {}",
        done.stderr
    );
    (done.stdout, done.stderr)
}

/// `out` written to a file that `check-config` accepts.
async fn checked(out: &str) -> TempFile {
    let converted = TempFile::new("migrated", out);
    let check = run(
        command(&["check-config", "--config", converted.0.to_str().unwrap()]),
        BOUND,
    )
    .await;
    assert!(
        check.status.success(),
        "check-config refused:\n{}\n{out}",
        check.stdout + &check.stderr
    );
    converted
}

fn strs(v: &toml::Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .filter_map(toml::Value::as_str)
        .collect()
}

#[tokio::test]
async fn every_mapped_option_converts_key_by_key_and_passes_check_config() {
    let pki = Pki::new();
    let leaf = pki.leaf();
    let cert = TempFile::new("migrate-cert", &leaf.cert_pem);
    let key = TempFile::new("migrate-key", &leaf.key_pem);
    let emails = TempFile::new("migrate-emails", "ada@example.com\n");
    let logo = TempFile(std::env::temp_dir().join(format!(
        "rocketgate-migrate-logo-{}.svg",
        std::process::id()
    )));
    std::fs::write(&logo.0, "<svg xmlns=\"http://www.w3.org/2000/svg\"/>").unwrap();
    let secret_file = TempFile::new("migrate-client-secret", "from-a-file\n");
    let cfg = TempFile::new(
        "oauth2-proxy-cfg",
        &format!(
            r#"
## oauth2-proxy.cfg as a team would have it
http_address = "0.0.0.0:4180"
upstreams = ["http://127.0.0.1:8080/", "http://127.0.0.1:9000/api/"]
redirect_url = "https://app.example.com/oauth2/callback"
provider = "oidc"
client_id = "rp-client"
client_secret_file = "{secret_file}"
login_url = "https://rocketpunch.example/oauth/authorize"
redeem_url = "https://rocketpunch.example/oauth/token"
profile_url = "https://rocketpunch.example/api/v1/profiles/me"
scope = "profile:read profile:email"
cookie_name = "_oauth2_proxy"
cookie_secret = "MDEyMzQ1Njc4OWFiY2RlZg=="
cookie_domains = [".example.com"]
cookie_secure = true
cookie_httponly = true
cookie_samesite = "Lax"
cookie_expire = "168h"
cookie_refresh = "1h"
email_domains = ["example.org"]
authenticated_emails_file = "{emails}"
whitelist_domains = [".example.com"]
skip_auth_routes = ["GET=^/public/"]
skip_auth_regex = ["^/healthz$"]
api_routes = ["^/api/"]
pass_access_token = true
set_xauthrequest = true
pass_authorization_header = true
reverse_proxy = true
metrics_address = "127.0.0.1:9100"
session_store_type = "redis"
redis_connection_url = "redis://127.0.0.1:6379/0"
skip_provider_button = false
custom_sign_in_logo = "{logo}"
footer = "Example Corp"
custom_templates_dir = "/etc/oauth2-proxy/templates"
tls_cert_file = "{cert}"
tls_key_file = "{key}"
"#,
            secret_file = secret_file.0.display(),
            emails = emails.0.display(),
            logo = logo.0.display(),
            cert = cert.0.display(),
            key = key.0.display(),
        ),
    );
    let (out, summary) = migrate(&cfg, &[], &[]).await;
    let t: toml::Table = toml::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));

    assert_eq!(t["listen"].as_str(), Some("0.0.0.0:4180"));
    assert_eq!(t["public_url"].as_str(), Some("https://app.example.com"));
    assert_eq!(strs(&t["trusted_proxies"]), ["127.0.0.1"]);
    assert_eq!(t["metrics_listen"].as_str(), Some("127.0.0.1:9100"));
    let routes = t["routes"].as_array().unwrap();
    assert_eq!(routes[0]["path"].as_str(), Some("/api"));
    assert_eq!(
        routes[0]["upstream"].as_str(),
        Some("http://127.0.0.1:9000")
    );
    assert_eq!(routes[1]["path"].as_str(), Some("/"));
    assert_eq!(
        routes[1]["upstream"].as_str(),
        Some("http://127.0.0.1:8080")
    );
    let p = &t["provider"];
    assert_eq!(p["client_id"].as_str(), Some("rp-client"));
    assert_eq!(
        p["client_secret_file"].as_str(),
        Some(secret_file.0.to_str().unwrap())
    );
    assert_eq!(
        p["authorize_url"].as_str(),
        Some("https://rocketpunch.example/oauth/authorize")
    );
    assert_eq!(
        p["token_url"].as_str(),
        Some("https://rocketpunch.example/oauth/token")
    );
    assert_eq!(
        p["profile_url"].as_str(),
        Some("https://rocketpunch.example/api/v1/profiles/me")
    );
    assert_eq!(strs(&p["scopes"]), ["profile:read", "profile:email"]);
    let c = &t["cookie"];
    assert_eq!(c["name"].as_str(), Some("_oauth2_proxy"));
    assert_eq!(
        c["secret"].as_str().map(str::len),
        Some(44),
        "a fresh 32-byte secret"
    );
    assert_eq!(c["domain"].as_str(), Some("example.com"));
    assert_eq!(c["secure"].as_bool(), Some(true));
    assert_eq!(c["same_site"].as_str(), Some("lax"));
    assert_eq!(c["expire"].as_str(), Some("168h"));
    let a = &t["access"];
    assert_eq!(strs(&a["allowed_email_domains"]), ["example.org"]);
    assert_eq!(
        a["allowed_emails_file"].as_str(),
        Some(emails.0.to_str().unwrap())
    );
    assert_eq!(strs(&a["redirect_domains"]), [".example.com"]);
    assert_eq!(
        strs(&a["skip_auth_routes"]),
        ["GET=^/public/", "^/healthz$"]
    );
    assert_eq!(t["headers"]["pass_access_token"].as_bool(), Some(true));
    assert_eq!(t["session"]["store"].as_str(), Some("redis"));
    assert_eq!(
        t["session"]["redis_url"].as_str(),
        Some("redis://127.0.0.1:6379/0")
    );
    assert_eq!(t["pages"]["sign_in_page"].as_bool(), Some(true));
    assert_eq!(
        t["pages"]["logo_file"].as_str(),
        Some(logo.0.to_str().unwrap())
    );
    assert_eq!(t["pages"]["footer"].as_str(), Some("Example Corp"));
    assert_eq!(
        t["tls"]["cert_file"].as_str(),
        Some(cert.0.to_str().unwrap())
    );
    assert_eq!(t["tls"]["key_file"].as_str(), Some(key.0.to_str().unwrap()));
    for (name, why) in [
        ("provider", "Rocketpunch"),
        ("cookie_httponly", "always HttpOnly"),
        ("cookie_refresh", "refresh_before"),
        ("api_routes", "401 JSON"),
        ("set_xauthrequest", "X-Auth-Request-User"),
        ("pass_authorization_header", "[assertion]"),
        ("custom_templates_dir", "templates_dir"),
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("# - {name}: ")))
            .unwrap_or_else(|| panic!("no comment for {name}:\n{out}"));
        assert!(line.contains(why), "{line}");
    }
    assert!(out.contains("oauth2-proxy's was 16 bytes"), "{out}");
    assert!(
        summary.contains("converted ") && summary.contains("not converted, 7"),
        "{summary}"
    );

    checked(&out).await;
}

#[tokio::test]
async fn the_converted_proxy_enforces_the_same_domains_emails_and_skip_routes() {
    crate::support::init_crypto();
    let port = free_port();
    let provider_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let provider = provider_listener.local_addr().unwrap();
    let upstream = upstream_listener.local_addr().unwrap();
    StandIn::new(StandInOptions {
        client_id: "demo-client".into(),
        client_secret: "migrate-secret".into(),
        redirect_uri: format!("http://{port}/oauth2/callback"),
        ..StandInOptions::default()
    })
    .spawn(provider_listener);
    spawn_upstream(upstream_listener);
    let emails = TempFile::new(
        "migrate-emails",
        "# one outsider let in by name\nlinus@kernel.example\n",
    );
    let cfg = TempFile::new(
        "oauth2-proxy-cfg",
        &format!(
            r#"
http_address = "{port}"
upstreams = ["http://{upstream}/"]
redirect_url = "http://{port}/oauth2/callback"
client_id = "demo-client"
login_url = "http://{provider}/oauth/authorize"
redeem_url = "http://{provider}/oauth/token"
profile_url = "http://{provider}/api/v1/profiles/me"
cookie_secure = false
email_domains = ["example.org"]
authenticated_emails_file = "{emails}"
skip_auth_routes = ["GET=^/public/"]
skip_provider_button = true
"#,
            emails = emails.0.display(),
        ),
    );
    // The secret from the environment and a flag, as a deployment would split them.
    let (out, _) = migrate(
        &cfg,
        &["--env", "--args", "--pass-access-token=true"],
        &[("OAUTH2_PROXY_CLIENT_SECRET", "migrate-secret")],
    )
    .await;
    assert!(out.contains("client_secret = \"migrate-secret\""), "{out}");
    let converted = checked(&out).await;
    let mut child = command(&["--config", converted.0.to_str().unwrap()])
        .spawn()
        .unwrap();
    let _out = crate::support::process::drain(child.stdout.take());
    let _err = crate::support::process::drain(child.stderr.take());
    wait_until_ready(&mut child, &plain_client(), port).await;

    // example.org is let in; the emails file lets linus in; ada (example.com) is not.
    let grace = Browser::new(port);
    assert_eq!(grace.login_as("/", "1002").await.status(), 200);
    let echo = grace.echo("/x").await;
    assert_eq!(echo.header("x-forwarded-email"), Some("grace@example.org"));
    assert!(
        echo.header("x-forwarded-access-token").is_some(),
        "pass_access_token"
    );
    let linus = Browser::new(port);
    assert_eq!(linus.login_as("/", "1003").await.status(), 200);
    let ada = Browser::new(port);
    let first = ada.get(&ada.url("/")).await;
    let back = ada.consent(&location(&first), "1001", true).await;
    assert_eq!(ada.get(&location(&back)).await.status(), 403);

    // The skip route needs no session, for GET only.
    let client = plain_client();
    let public = client
        .get(format!("http://{port}/public/logo.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 200);
    let post = client
        .post(format!("http://{port}/public/logo.png"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 401);
    let _ = child.start_kill();
    let _ = child.wait().await;
}

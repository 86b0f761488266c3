//! `rocketgate demo --config FILE` and `ROCKETGATE_*`: a user's settings over the demo's, so
//! an allow-list (or any README example) can be tried against the stand-in. The demo keeps
//! what it must own to run on this machine, and says so.

use std::time::Duration;

use crate::support::process::{
    Tail, TempFile, command, drain, free_port, plain_client, wait_until_ready,
};
use crate::support::{Browser, location};

#[tokio::test]
async fn the_demo_runs_with_a_users_allow_list_and_environment() {
    let proxy = free_port();
    // A production file: its listen, public_url and secure cookie would break the demo.
    let file = TempFile::new(
        "demo-user",
        "listen = \"0.0.0.0:4180\"\npublic_url = \"https://app.example.com\"\n\n[cookie]\nsecure = true\nname = \"_team\"\n\n[access]\nallowed_email_domains = [\"example.org\"]\n",
    );
    let mut child = command(&[
        "demo",
        "--listen",
        &proxy.to_string(),
        "--config",
        file.0.to_str().unwrap(),
    ])
    .env("ROCKETGATE_HEADERS__PASS_ACCESS_TOKEN", "true")
    .env("ROCKETGATE_PUBLIC_URL", "https://elsewhere.example")
    .spawn()
    .expect("spawn rocketgate demo");
    let out = Tail::new(child.stdout.take());
    let _err = drain(child.stderr.take());
    wait_until_ready(&mut child, &plain_client(), proxy).await;
    let banner = out.wait_for("Press Ctrl-C", Duration::from_secs(10)).await;
    for needle in [
        format!("rocketgate {} (", env!("CARGO_PKG_VERSION")),
        format!("configuration      {}", file.0.display()),
        "kept the demo's    ROCKETGATE_PUBLIC_URL, cookie.secure, listen, public_url".to_owned(),
        "who may pass       email domains example.org".to_owned(),
        "sessions           in the cookie".to_owned(),
    ] {
        assert!(banner.contains(&needle), "{needle:?} in {banner}");
    }
    assert!(!banner.contains("secret"), "{banner}");

    // The file's allow-list: grace (example.org) in, ada (example.com) refused.
    let grace = Browser::new(proxy);
    assert_eq!(grace.login_as("/", "1002").await.status(), 200);
    assert!(grace.cookie("_team").is_some(), "the file's cookie name");
    let echo = grace.echo("/x").await;
    assert!(
        echo.header("x-forwarded-access-token").is_some(),
        "ROCKETGATE_HEADERS__PASS_ACCESS_TOKEN applied"
    );
    let ada = Browser::new(proxy);
    let first = ada.get(&ada.url("/")).await;
    let back = ada.consent(&location(&first), "1001", true).await;
    assert_eq!(ada.get(&location(&back)).await.status(), 403);
    let _ = child.start_kill();
    let _ = child.wait().await;
}

#[tokio::test]
async fn a_mistake_in_the_users_file_is_shown_at_its_line_and_the_demo_does_not_start() {
    let file = TempFile::new("demo-bad", "[access]\nemail_domains = [\"example.org\"]\n");
    let done = crate::support::process::run(
        command(&[
            "demo",
            "--listen",
            &free_port().to_string(),
            "--config",
            file.0.to_str().unwrap(),
        ]),
        Duration::from_secs(20),
    )
    .await;
    assert!(!done.status.success());
    assert!(
        done.stderr.contains(&format!(
            "{}:2:1: access.email_domains: unknown key; `email_domains` is oauth2-proxy's name; rocketgate's is `access.allowed_email_domains`",
            file.0.display()
        )),
        "{}",
        done.stderr
    );
    assert!(
        !done.stderr.contains("is required"),
        "the demo supplies the rest: {}",
        done.stderr
    );
}

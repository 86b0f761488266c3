//! `rocketgate demo --routes-example`: two demo apps behind one address, a route for the
//! ops team and one for a named group, as the banner tells a user to try them.

use std::time::Duration;

use crate::support::process::{Tail, command, drain, free_port, plain_client, wait_until_ready};
use crate::support::{Browser, Echo};
use reqwest::header::ACCEPT;

/// What the app behind `path` received, as its JSON echo (or the status when refused).
async fn echo(browser: &Browser, path: &str) -> Result<Echo, u16> {
    let r = browser
        .client
        .get(browser.url(path))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    match r.status().as_u16() {
        200 => Ok(r.json().await.unwrap()),
        status => Err(status),
    }
}

#[tokio::test]
async fn demo_routes_example_lets_grace_into_ops_and_not_ada() {
    let proxy = free_port();
    let mut child = command(&["demo", "--routes-example", "--listen", &proxy.to_string()])
        .spawn()
        .expect("spawn rocketgate demo");
    let out = Tail::new(child.stdout.take());
    let err = drain(child.stderr.take());
    wait_until_ready(&mut child, &plain_client(), proxy).await;

    // The banner says what to try and prints the routes it runs with, without secrets.
    let banner = out.wait_for("Press Ctrl-C", Duration::from_secs(10)).await;
    for needle in [
        format!("http://{proxy}/ops"),
        "as ada it is 403".to_owned(),
        "X-Forwarded-Groups: navy,ops".to_owned(),
        "[[routes]]".to_owned(),
        "allowed_groups = [\"ops\"]".to_owned(),
    ] {
        assert!(banner.contains(&needle), "{needle} in {banner}");
    }
    assert!(!banner.contains("secret ="), "{banner}");

    // ada (team engineering, and engineering-leads by user id): app one yes, /ops no.
    let ada = Browser::new(proxy);
    let page = ada.login_as("/", "1001").await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("GET /app-one/"), "app one answered: {page}");
    assert!(page.contains("engineering-leads,engineering"), "{page}");
    let one = echo(&ada, "/hello?x=1").await.unwrap();
    assert_eq!(one.uri, "/app-one/hello?x=1");
    assert_eq!(one.header("x-forwarded-user"), Some("1001"));
    assert_eq!(one.header("x-forwarded-name"), Some("Ada Lovelace"));
    assert_eq!(echo(&ada, "/ops").await.unwrap_err(), 403);
    assert_eq!(echo(&ada, "/ops/status").await.unwrap_err(), 403);
    let denied = ada.get(&ada.url("/ops/status")).await;
    assert_eq!(denied.status(), 403, "the browser gets the 403 page");
    let log = out
        .wait_for("denied=routes[1].allowed_groups", Duration::from_secs(10))
        .await;
    assert!(log.contains("denied=routes[1].allowed_groups"), "{log}");
    let leads = echo(&ada, "/leads/board").await.unwrap();
    assert_eq!(leads.uri, "/app-two/board");
    assert_eq!(
        leads.header("x-forwarded-groups"),
        Some("engineering-leads,engineering")
    );

    // grace (teams navy and ops): /ops is app two, prefix stripped, groups forwarded.
    let grace = Browser::new(proxy);
    let page = grace.login_as("/ops/status?q=1", "1002").await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("GET /app-two/status?q=1"),
        "app two answered: {page}"
    );
    assert!(page.contains("navy,ops"), "{page}");
    let two = echo(&grace, "/ops/status?q=1").await.unwrap();
    assert_eq!(two.uri, "/app-two/status?q=1");
    assert_eq!(two.header("x-forwarded-user"), Some("1002"));
    assert_eq!(two.header("x-forwarded-groups"), Some("navy,ops"));
    assert_eq!(two.header("x-forwarded-prefix"), Some("/ops"));
    assert_eq!(two.header("x-forwarded-name"), Some("Grace Hopper"));
    assert_eq!(echo(&grace, "/leads").await.unwrap_err(), 403);
    assert_eq!(echo(&grace, "/").await.unwrap().uri, "/app-one/");

    // The public docs: no sign-in, and no identity headers even for grace.
    let docs = echo(&Browser::new(proxy), "/docs/intro").await.unwrap();
    assert_eq!(docs.uri, "/app-one/docs/intro");
    let docs = echo(&grace, "/docs/intro").await.unwrap();
    assert_eq!(docs.header("x-forwarded-user"), None);
    assert_eq!(docs.header("x-forwarded-groups"), None);

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let stderr = err.await.unwrap();
    assert!(!stderr.contains("refused"), "{stderr}");
}

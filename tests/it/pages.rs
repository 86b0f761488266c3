//! The pages rocketgate shows: opt-in sign-in page, branding, operator templates, and error
//! pages that are self-contained and never carry internal detail.

use std::path::PathBuf;

use crate::support::{Options, Stack, location};
use reqwest::header::ACCEPT;
use rocketgate_demo::{Fault, FaultEndpoint};

/// A fresh directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "rocketgate-pages-{label}-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, contents: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A page makes no request of its own: no absolute URL in any src/href, no script.
fn assert_self_contained(html: &str) {
    for attr in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "<script",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(attr), "page references {attr}: {html}");
    }
    assert!(html.contains("<html lang=\"en\">") && html.contains("name=\"viewport\""));
}

#[tokio::test]
async fn the_opt_in_sign_in_page_leads_through_login_back_to_the_deep_link() {
    let dir = TempDir::new("brand");
    let logo = dir.file("logo.png", &[0x89, b'P', b'N', b'G', 1, 2, 3]);
    let stack = Stack::with(
        Options::default()
            .env("ROCKETGATE_PAGES__SIGN_IN_PAGE", "true")
            .env("ROCKETGATE_PAGES__APP_NAME", "Acme Reports")
            .env("ROCKETGATE_PAGES__FOOTER", "Questions? Ask IT.")
            .env("ROCKETGATE_PAGES__LOGO_FILE", logo),
    )
    .await;
    let browser = stack.browser();
    let page = browser.get(&stack.url("/deep?x=1")).await;
    assert_eq!(page.status(), 401);
    let html = page.text().await.unwrap();
    assert_self_contained(&html);
    assert!(html.contains("Sign in to Acme Reports"));
    assert!(html.contains("Questions? Ask IT."));
    assert!(html.contains("src=\"data:image/png;base64,"));
    let href = html
        .split("class=\"button\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert_eq!(href, "/oauth2/start?rd=%2Fdeep%3Fx%3D1");

    let start = browser.get(&stack.url(&href)).await;
    let back = browser.consent(&location(&start), "1001", true).await;
    let done = browser.get(&location(&back)).await;
    assert_eq!(location(&done), "/deep?x=1");
    // API clients still get JSON, not the page.
    let api = stack
        .client()
        .get(stack.url("/deep"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    assert!(
        api.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn operator_templates_replace_the_built_in_pages() {
    let dir = TempDir::new("templates");
    dir.file(
        "error.html",
        b"<!doctype html><html lang=\"en\"><head><meta name=\"viewport\" content=\"width=device-width\"></head><body>ACME-ERROR {{status}}: {{title}} / {{message}} {{action}}</body></html>",
    );
    dir.file(
        "sign_in.html",
        b"<!doctype html><html lang=\"en\"><head><meta name=\"viewport\" content=\"width=device-width\"></head><body>ACME-SIGN-IN <a href=\"{{sign_in_url}}\">go</a></body></html>",
    );
    let dead = crate::support::process::free_port();
    let stack = Stack::with(Options {
        upstream: Some(dead),
        ..Options::default()
            .env(
                "ROCKETGATE_PAGES__TEMPLATES_DIR",
                dir.0.display().to_string(),
            )
            .env("ROCKETGATE_PAGES__SIGN_IN_PAGE", "true")
    })
    .await;
    let browser = stack.browser();
    let sign_in = browser.get(&stack.url("/")).await.text().await.unwrap();
    assert!(
        sign_in.contains("ACME-SIGN-IN <a href=\"/oauth2/start?rd=%2F\">"),
        "{sign_in}"
    );
    let start = browser.get(&stack.url("/oauth2/start?rd=/")).await;
    let back = browser.consent(&location(&start), "1001", true).await;
    browser.get(&location(&back)).await;
    let error = browser.get(&stack.url("/")).await;
    assert_eq!(error.status(), 502);
    let html = error.text().await.unwrap();
    assert!(
        html.starts_with("<!doctype html>")
            && html.contains("ACME-ERROR 502: The application is unavailable"),
        "{html}"
    );
}

#[tokio::test]
async fn every_error_page_is_self_contained_and_plain_spoken() {
    let dead = crate::support::process::free_port();
    let stack = Stack::with(Options {
        upstream: Some(dead),
        ..Options::default().env("ROCKETGATE_ACCESS__ALLOWED_EMAIL_DOMAINS", "example.org")
    })
    .await;
    let mut pages: Vec<(u16, String)> = Vec::new();

    // Access denied at Rocketpunch.
    let b = stack.browser();
    let first = b.get(&stack.url("/")).await;
    let back = b.consent(&location(&first), "1001", false).await;
    let r = b.get(&location(&back)).await;
    pages.push((r.status().as_u16(), r.text().await.unwrap()));
    // Signed in but not allowed (ada@example.com).
    let first = b.get(&stack.url("/")).await;
    let back = b.consent(&location(&first), "1001", true).await;
    let r = b.get(&location(&back)).await;
    pages.push((r.status().as_u16(), r.text().await.unwrap()));
    // Session (login) expired or replayed.
    let r = b.get(&stack.url("/oauth2/callback?code=x&state=y")).await;
    pages.push((r.status().as_u16(), r.text().await.unwrap()));
    // Provider unavailable.
    let first = b.get(&stack.url("/")).await;
    let back = b.consent(&location(&first), "1002", true).await;
    stack
        .standin
        .set_fault(FaultEndpoint::Token, Some(Fault::Status(503)));
    let r = b.get(&location(&back)).await;
    stack.standin.set_fault(FaultEndpoint::Token, None);
    pages.push((r.status().as_u16(), r.text().await.unwrap()));
    // Upstream unavailable (grace@example.org is allowed).
    let grace = stack.browser();
    let r = grace.login_as("/", "1002").await;
    pages.push((r.status().as_u16(), r.text().await.unwrap()));

    let statuses: Vec<u16> = pages.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, vec![403, 403, 403, 503, 502]);
    for (status, html) in &pages {
        assert_self_contained(html);
        for internal in [
            "127.0.0.1",
            "hyper",
            "invalid_grant",
            "error sending",
            "Connection refused",
            "os error",
        ] {
            assert!(!html.contains(internal), "{status} page leaks {internal:?}");
        }
    }
}

#[tokio::test]
async fn failure_pages_name_the_request_and_refusals_name_the_account() {
    const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let dead = crate::support::process::free_port();
    let stack = Stack::with(Options {
        upstream: Some(dead),
        ..Options::default().env("ROCKETGATE_COOKIE__SECRET", SECRET)
    })
    .await;
    let browser = stack.browser();
    let failed = browser.login("/deep/link?x=1&y=<2>").await;
    assert_eq!(failed.status(), 502);
    let id = failed.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = failed.text().await.unwrap();
    assert!(html.contains(&format!("<code>{id}</code>")), "{html}");
    assert!(
        html.contains("href=\"/deep/link?x=1&amp;y=%3C2%3E\">Try again</a>"),
        "{html}"
    );
    assert!(
        !html.contains("Signed in as"),
        "a failure is not a refusal: {html}"
    );

    // The same session at a gate whose allow-list leaves ada out.
    let narrow = Stack::with(
        Options::default()
            .env("ROCKETGATE_COOKIE__SECRET", SECRET)
            .env("ROCKETGATE_ACCESS__ALLOWED_EMAILS", "nobody@example.com"),
    )
    .await;
    let refused = narrow
        .client()
        .get(narrow.url("/"))
        .header(ACCEPT, crate::support::HTML)
        .header(reqwest::header::COOKIE, browser.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("Signed in as <strong>ada@example.com</strong>"),
        "{html}"
    );
    assert!(html.contains(">Sign out</a>"), "{html}");
    assert!(
        !html.contains("<code>"),
        "no request id on a refusal: {html}"
    );
}

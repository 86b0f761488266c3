//! Return URLs: all 559 open-redirect payloads are refused, and redirect tricks and domain
//! confusion too.

use crate::support::{Options, Stack, location};

/// The README's allowed domains for the corpus, as oauth2-proxy's own test uses them.
const CORPUS_DOMAINS: &str = "foo.bar,.bar.foo,port.bar:8080,.sub.port.bar:8080,anyport.bar:*,.sub.anyport.bar:*,www.whitelisteddomain.tld,*.wildcard.sub.port.bar:8080,*.wildcard.sub.anyport.bar:*,*.wildcard.bar,*.wildcard.proxy.foo.bar";

fn corpus() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/testdata/openredirects.txt"
    ))
    .expect("../shared/testdata/openredirects.txt");
    text.lines()
        .map(|line| {
            url::form_urlencoded::parse(format!("x={}", line.replace('&', "%26")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn all_open_redirect_payloads_are_refused_by_sign_out_and_start() {
    let stack =
        Stack::with(Options::default().env("ROCKETGATE_ACCESS__REDIRECT_DOMAINS", CORPUS_DOMAINS))
            .await;
    let payloads = corpus();
    assert_eq!(payloads.len(), 559);
    let client = stack.client();
    let mut accepted = Vec::new();
    for payload in &payloads {
        let out = client
            .get(stack.url(&format!("/oauth2/sign_out?rd={}", encode(payload))))
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), 302);
        if location(&out) != "/" {
            accepted.push(payload.clone());
        }
    }
    assert!(
        accepted.is_empty(),
        "open redirects accepted: {accepted:#?}"
    );

    // The login path shares the validator; walk a sample of the corpus through a whole login.
    let browser = stack.browser();
    for payload in payloads.iter().step_by(37) {
        let start = browser
            .get(&stack.url(&format!("/oauth2/start?rd={}", encode(payload))))
            .await;
        let back = browser.consent(&location(&start), "1001", true).await;
        let done = browser.get(&location(&back)).await;
        assert_eq!(location(&done), "/", "payload {payload:?}");
    }
    // Allowed targets still work.
    for rd in ["/app?x=1", "https://foo.bar/x", "http://port.bar:8080/"] {
        let out = client
            .get(stack.url(&format!("/oauth2/sign_out?rd={}", encode(rd))))
            .send()
            .await
            .unwrap();
        assert_eq!(location(&out), rd);
    }
}

/// oauth2-proxy's redirect advisories, one input per trick, through the real endpoints.
#[tokio::test]
async fn redirect_tricks_and_domain_confusion_are_refused() {
    let stack = Stack::with(Options::default().env(
        "ROCKETGATE_ACCESS__REDIRECT_DOMAINS",
        ".example.com,port.example.org:8443",
    ))
    .await;
    let refused = [
        "/\\evil.com",
        "/%09/evil.com",
        "/%0a/evil.com",
        "/%0b/evil.com",
        "/%0d/evil.com",
        "/\t/evil.com",
        "/./\\evil.com",
        "\\\\evil.com",
        "/\\/evil.com",
        "//evil.com",
        "///evil.com",
        "https://app@evil.com",
        "https://a.example.com@evil.com/",
        "https://user:pass@a.example.com/",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "HtTpS://evil.com",
        "https:evil.com",
        "http:/evil.com",
        "https://badexample.com/",
        "https://example.com.evil.com/",
        "https://a.example.com.evil.com/",
        "https://port.example.org/",
        "https://port.example.org:9443/",
        "ftp://a.example.com/",
    ];
    let allowed = [
        ("/dashboard?tab=1", "/dashboard?tab=1"),
        ("https://example.com/x", "https://example.com/x"),
        (
            "https://deep.sub.example.com/",
            "https://deep.sub.example.com/",
        ),
        ("HTTPS://A.Example.COM/p", "https://a.example.com/p"),
        (
            "https://port.example.org:8443/",
            "https://port.example.org:8443/",
        ),
    ];
    let client = stack.client();
    let sign_out = |rd: &str| {
        let url = stack.url(&format!("/oauth2/sign_out?rd={}", encode(rd)));
        let client = client.clone();
        async move { location(&client.get(url).send().await.unwrap()) }
    };
    for rd in refused {
        assert_eq!(sign_out(rd).await, "/", "{rd:?} must be refused");
    }
    for (rd, expected) in allowed {
        assert_eq!(sign_out(rd).await, expected, "{rd:?} must be allowed");
    }
}

//! The allow-lists: a two-`@` email does not pass a domain check, and userinfo honours the list.

use crate::support::{Options, Stack};
use reqwest::header::{ACCEPT, COOKIE};

#[tokio::test]
async fn an_email_with_two_at_signs_does_not_pass_a_domain_check() {
    use rocketgate::access::EmailPolicy;
    let policy = EmailPolicy::new(vec![], vec!["company.com".into()]).unwrap();
    assert!(policy.allows(Some("ada@company.com")));
    assert!(!policy.allows(Some("a@evil.com@company.com")));
    assert!(!policy.allows(Some("ada@badcompany.com")));
    assert!(!policy.allows(None));
}

#[tokio::test]
async fn userinfo_honours_the_allow_list() {
    let stack = Stack::with(
        Options::default().env("ROCKETGATE_ACCESS__ALLOWED_EMAILS", "grace@example.org"),
    )
    .await;
    let grace = stack.browser();
    grace.login_as("/", "1002").await;
    assert_eq!(
        grace.get(&stack.url("/oauth2/userinfo")).await.status(),
        200
    );
    // A session minted for ada before the policy existed is refused everywhere.
    let open = Stack::with(Options::default().env(
        "ROCKETGATE_COOKIE__SECRET",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ))
    .await;
    let ada = open.browser();
    ada.login("/").await;
    let cookie = ada.cookie_header();
    let strict = Stack::with(
        Options::default()
            .env(
                "ROCKETGATE_COOKIE__SECRET",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            )
            .env("ROCKETGATE_ACCESS__ALLOWED_EMAILS", "grace@example.org"),
    )
    .await;
    for path in ["/oauth2/userinfo", "/oauth2/auth", "/x"] {
        let r = strict
            .client()
            .get(strict.url(path))
            .header(ACCEPT, "application/json")
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
}

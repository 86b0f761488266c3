//! Rocketpunch JWT access tokens from API clients (`Authorization: Bearer`), verified
//! against the stand-in's JWKS.

use crate::support::{Echo, Options, Stack, bearer_options};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use rocketgate_demo::StandInOptions;
use serde_json::{Value, json};

async fn api(stack: &Stack, token: &str) -> reqwest::Response {
    stack
        .client()
        .get(stack.url("/api/orders"))
        .header(ACCEPT, "application/json")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
}

async fn assert_invalid(stack: &Stack, token: &str, what: &str) {
    let response = api(stack, token).await;
    assert_eq!(response.status(), 401, "{what}");
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        "Bearer error=\"invalid_token\"",
        "{what}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token", "{what}");
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(stack: &Stack) -> Value {
    json!({
        "iss": stack.standin.issuer(),
        "aud": "demo-client",
        "sub": "1001",
        "iat": now(),
        "exp": now() + 600,
        "email": "ada@example.com",
        "preferred_username": "ada",
    })
}

#[tokio::test]
async fn a_token_from_a_login_is_accepted_without_a_cookie() {
    let stack = Stack::with(
        bearer_options()
            .env("ROCKETGATE_HEADERS__PASS_ACCESS_TOKEN", "true")
            .env("ROCKETGATE_ASSERTION__ENABLED", "true"),
    )
    .await;
    let browser = stack.browser();
    assert_eq!(browser.login_as("/", "1002").await.status(), 200);
    let echo: Echo = browser
        .client
        .get(stack.url("/api/x"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = echo
        .header("x-forwarded-access-token")
        .expect("the login's access token")
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "the stand-in issued a JWT");

    for _ in 0..3 {
        let response = api(&stack, &token).await;
        assert_eq!(response.status(), 200);
        let echo: Echo = response.json().await.unwrap();
        assert_eq!(echo.header("x-forwarded-user"), Some("1002"));
        assert_eq!(echo.header("x-forwarded-email"), Some("grace@example.org"));
        assert_eq!(echo.header("x-forwarded-preferred-username"), Some("grace"));
        assert_eq!(
            echo.header("authorization"),
            Some(format!("Bearer {token}").as_str()),
            "the bearer header goes upstream unchanged"
        );
        assert!(echo.header("x-rocketgate-assertion").is_some());
        assert!(echo.all("cookie").is_empty());
    }
    assert_eq!(
        stack.standin.stats().jwks_calls,
        1,
        "keys fetched once, then cached"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_token_from_the_token_endpoint_is_subject_to_access_rules() {
    let stack =
        Stack::with(bearer_options().env("ROCKETGATE_ACCESS__ALLOWED_EMAILS", "ada@example.com"))
            .await;
    let ada = stack.standin.issue_access_token("1001").unwrap();
    let response = api(&stack, &ada).await;
    assert_eq!(response.status(), 200);
    let echo: Echo = response.json().await.unwrap();
    assert_eq!(echo.header("x-forwarded-user"), Some("1001"));

    let grace = stack.standin.issue_access_token("1002").unwrap();
    assert_eq!(api(&stack, &grace).await.status(), 403);
    stack.stop().await;
}

#[tokio::test]
async fn bad_tokens_get_401_invalid_token() {
    let stack = Stack::with(bearer_options()).await;
    let standin = &stack.standin;
    let good = standin.sign_jwt(&claims(&stack)).unwrap();
    assert_eq!(api(&stack, &good).await.status(), 200, "the control case");

    let mut expired = claims(&stack);
    expired["iat"] = json!(now() - 3600);
    expired["exp"] = json!(now() - 120);
    assert_invalid(&stack, &standin.sign_jwt(&expired).unwrap(), "expired").await;

    let mut within_leeway = claims(&stack);
    within_leeway["exp"] = json!(now() - 20);
    assert_eq!(
        api(&stack, &standin.sign_jwt(&within_leeway).unwrap())
            .await
            .status(),
        200,
        "60 s leeway on exp"
    );

    let mut wrong_aud = claims(&stack);
    wrong_aud["aud"] = json!("another-client");
    assert_invalid(&stack, &standin.sign_jwt(&wrong_aud).unwrap(), "aud").await;

    let mut no_aud = claims(&stack);
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_invalid(&stack, &standin.sign_jwt(&no_aud).unwrap(), "no aud").await;

    let mut wrong_iss = claims(&stack);
    wrong_iss["iss"] = json!("https://evil.example");
    assert_invalid(&stack, &standin.sign_jwt(&wrong_iss).unwrap(), "iss").await;

    let parts: Vec<&str> = good.split('.').collect();
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[10] ^= 1;
    let tampered_sig = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(&signature)
    );
    assert_invalid(&stack, &tampered_sig, "tampered signature").await;

    let mut admin = claims(&stack);
    admin["sub"] = json!("1");
    let tampered_payload = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(admin.to_string()),
        parts[2]
    );
    assert_invalid(&stack, &tampered_payload, "tampered payload").await;

    let kid = standin.signing_kid().unwrap();
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string()),
        parts[1]
    );
    assert_invalid(&stack, &none, "alg none").await;

    // HS256 "signed" with the provider's public key as the HMAC secret.
    let jwks: Value = reqwest::get(format!("http://{}/.well-known/jwks.json", stack.provider))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = jwks["keys"][0].to_string();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.clone());
    for secret in [
        public.as_bytes().to_vec(),
        URL_SAFE_NO_PAD
            .decode(jwks["keys"][0]["n"].as_str().unwrap())
            .unwrap(),
    ] {
        let confused = jsonwebtoken::encode(
            &header,
            &claims(&stack),
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_invalid(&stack, &confused, "HS256 with the public key").await;
    }

    let unknown_kid = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD
            .encode(json!({"alg": "RS256", "typ": "JWT", "kid": "not-a-key"}).to_string()),
        parts[1],
        parts[2]
    );
    assert_invalid(&stack, &unknown_kid, "unknown kid").await;
    assert_invalid(&stack, "not-a-jwt", "garbage").await;

    let metrics = stack.metrics().await;
    assert!(
        metrics.contains("rocketgate_bearer_tokens_total{outcome=\"invalid\"}"),
        "{metrics}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn key_rotation_is_picked_up_and_refetches_are_rate_limited() {
    let stack = Stack::with(bearer_options()).await;
    let standin = &stack.standin;
    let first = standin.issue_access_token("1001").unwrap();
    assert_eq!(api(&stack, &first).await.status(), 200);
    assert_eq!(standin.stats().jwks_calls, 1);

    standin.rotate_signing_key();
    let second = standin.issue_access_token("1001").unwrap();
    assert_eq!(
        api(&stack, &second).await.status(),
        200,
        "new kid: keys re-fetched"
    );
    assert_eq!(standin.stats().jwks_calls, 2);
    assert_eq!(
        api(&stack, &first).await.status(),
        200,
        "the previous key is still published"
    );

    // Within the minute, further unknown kids do not reach Rocketpunch again.
    standin.rotate_signing_key();
    let third = standin.issue_access_token("1001").unwrap();
    let response = api(&stack, &third).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        "Bearer error=\"invalid_token\""
    );
    for kid in ["a", "b", "c"] {
        let parts: Vec<&str> = second.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": kid}).to_string()),
            parts[1],
            parts[2]
        );
        assert_eq!(api(&stack, &forged).await.status(), 401);
    }
    assert_eq!(standin.stats().jwks_calls, 2, "re-fetches are rate-limited");
    assert_eq!(api(&stack, &second).await.status(), 200);
    stack.stop().await;
}

#[tokio::test]
async fn bearer_tokens_are_ignored_unless_enabled() {
    let stack = Stack::with(Options {
        standin: StandInOptions {
            jwt_access_tokens: true,
            ..StandInOptions::default()
        },
        ..Options::default()
    })
    .await;
    let token = stack.standin.issue_access_token("1001").unwrap();
    let response = api(&stack, &token).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(stack.standin.stats().jwks_calls, 0);
    stack.stop().await;
}

#[tokio::test]
async fn unreachable_keys_with_nothing_cached_is_503() {
    let stack = Stack::with(bearer_options().env(
        "ROCKETGATE_PROVIDER__JWKS_URL",
        "http://{provider}/no-such-jwks",
    ))
    .await;
    let token = stack.standin.issue_access_token("1001").unwrap();
    let response = api(&stack, &token).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "provider_unavailable");
    stack.stop().await;
}

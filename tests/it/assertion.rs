//! Signed identity for upstreams: `X-Rocketgate-Assertion` and `/oauth2/jwks.json`.

use std::time::Duration;

use crate::support::{Browser, Echo, Options, Stack};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::ACCEPT;
use serde_json::Value;

fn with_assertions() -> Options {
    Options::default().env("ROCKETGATE_ASSERTION__ENABLED", "true")
}

async fn echo(browser: &Browser, stack: &Stack, extra: &[(&str, &str)]) -> Echo {
    let mut request = browser
        .client
        .get(stack.url("/api/whoami"))
        .header(ACCEPT, "application/json");
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn jwks(stack: &Stack) -> JwkSet {
    let response = stack
        .client()
        .get(stack.url("/oauth2/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    response.json().await.unwrap()
}

fn verify(token: &str, jwk: &Jwk, audience: &str, issuer: &str) -> jsonwebtoken::TokenData<Value> {
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("assertion verifies against the published key")
}

#[tokio::test]
async fn proxied_requests_carry_a_verifiable_cached_assertion() {
    let stack = Stack::with(with_assertions()).await;
    let set = jwks(&stack).await;
    assert_eq!(set.keys.len(), 1);
    let jwk = &set.keys[0];
    let raw: Value = stack
        .client()
        .get(stack.url("/oauth2/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &raw["keys"][0];
    for field in ["kty", "crv", "x", "y", "kid", "alg", "use"] {
        assert!(key.get(field).is_some(), "jwks key lacks {field}: {key}");
    }
    assert_eq!(key["alg"], "ES256");

    let ada = stack.browser();
    assert_eq!(ada.login("/").await.status(), 200);
    let first = echo(&ada, &stack, &[]).await;
    let token = first
        .header("x-rocketgate-assertion")
        .expect("assertion sent");
    let data = verify(token, jwk, "127.0.0.1", &format!("http://{}", stack.proxy));
    assert_eq!(data.header.alg, Algorithm::ES256);
    assert_eq!(data.header.kid, jwk.common.key_id);
    let claims = &data.claims;
    assert_eq!(claims["sub"], "1001");
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["preferred_username"], "ada");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        300,
        "default lifetime 5m"
    );
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));

    let second = echo(&ada, &stack, &[]).await;
    assert_eq!(
        second.header("x-rocketgate-assertion"),
        Some(token),
        "cached: same jti"
    );

    let grace = stack.browser();
    assert_eq!(grace.login_as("/", "1002").await.status(), 200);
    let other = echo(&grace, &stack, &[]).await;
    let other_token = other.header("x-rocketgate-assertion").unwrap();
    assert_ne!(other_token, token);
    let other_claims = verify(
        other_token,
        jwk,
        "127.0.0.1",
        &format!("http://{}", stack.proxy),
    )
    .claims;
    assert_eq!(other_claims["sub"], "1002");
    assert_ne!(other_claims["jti"], claims["jti"]);

    let metrics = stack.metrics().await;
    assert!(
        metrics.contains("rocketgate_assertion_cache_lookups_total{result=\"hit\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rocketgate_assertion_cache_lookups_total{result=\"miss\"}"),
        "{metrics}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn client_sent_assertions_never_reach_the_upstream() {
    let stack = Stack::with(
        with_assertions()
            .env("ROCKETGATE_ASSERTION__AUDIENCE", "orders-api")
            .env("ROCKETGATE_ACCESS__SKIP_AUTH_ROUTES", "^/public/"),
    )
    .await;
    let browser = stack.browser();
    assert_eq!(browser.login("/").await.status(), 200);
    let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.";
    let echo_signed = echo(
        &browser,
        &stack,
        &[
            ("X-Rocketgate-Assertion", forged),
            ("x_rocketgate_assertion", forged),
        ],
    )
    .await;
    let sent = echo_signed.all("x-rocketgate-assertion");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_ne!(sent[0], forged);
    assert!(echo_signed.all("x_rocketgate_assertion").is_empty());
    let set = jwks(&stack).await;
    let claims = verify(
        sent[0],
        &set.keys[0],
        "orders-api",
        &format!("http://{}", stack.proxy),
    )
    .claims;
    assert_eq!(claims["aud"], "orders-api");

    // A skipped route has no user, so no assertion, and the forged one is still removed.
    let public: Echo = stack
        .client()
        .get(stack.url("/public/x"))
        .header("X-Rocketgate-Assertion", forged)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(public.header("x-rocketgate-assertion").is_none());
    stack.stop().await;
}

#[tokio::test]
async fn assertions_off_by_default_means_no_header_and_no_jwks() {
    let stack = Stack::start().await;
    let browser = stack.browser();
    assert_eq!(browser.login("/").await.status(), 200);
    let echo = echo(&browser, &stack, &[("X-Rocketgate-Assertion", "forged")]).await;
    assert!(echo.header("x-rocketgate-assertion").is_none());
    let jwks = stack
        .client()
        .get(stack.url("/oauth2/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 404);
    stack.stop().await;
}

#[tokio::test]
async fn a_configured_key_file_is_the_published_key() {
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let pkcs8 = pair.to_pkcs8v1().unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(pkcs8.as_ref())
    );
    let path = std::env::temp_dir().join(format!(
        "rocketgate-assertion-{}-{}.pem",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::write(&path, pem).unwrap();
    let stack = Stack::with(
        with_assertions()
            .env("ROCKETGATE_ASSERTION__KEY_FILE", path.display().to_string())
            .env("ROCKETGATE_ASSERTION__LIFETIME", "2m"),
    )
    .await;
    let _ = std::fs::remove_file(&path);

    let raw: Value = stack
        .client()
        .get(stack.url("/oauth2/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let point = pair.public_key().as_ref();
    assert_eq!(raw["keys"][0]["x"], URL_SAFE_NO_PAD.encode(&point[1..33]));
    assert_eq!(raw["keys"][0]["y"], URL_SAFE_NO_PAD.encode(&point[33..]));
    let spki = pair.public_key().as_der().unwrap();
    assert_eq!(
        raw["keys"][0]["kid"],
        rocketgate::assertion::kid_of(spki.as_ref())
    );

    let browser = stack.browser();
    assert_eq!(browser.login("/").await.status(), 200);
    let echo = echo(&browser, &stack, &[]).await;
    let jwk: Jwk = serde_json::from_value(raw["keys"][0].clone()).unwrap();
    let claims = verify(
        echo.header("x-rocketgate-assertion").unwrap(),
        &jwk,
        "127.0.0.1",
        &format!("http://{}", stack.proxy),
    )
    .claims;
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        120
    );
    stack.stop().await;
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos()
}

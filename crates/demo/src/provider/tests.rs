//! End-to-end tests of the stand-in over real HTTP on loopback.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Fault, FaultEndpoint, StandIn, StandInOptions, Stats};

const REDIRECT: &str = "http://127.0.0.1:4180/oauth2/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Harness {
    standin: Arc<StandIn>,
    base: String,
    client: reqwest::Client,
    task: JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(opts: StandInOptions) -> Harness {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let standin = StandIn::new(opts);
    let task = standin.spawn(listener);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    Harness {
        standin,
        base,
        client,
        task,
    }
}

async fn start_default() -> Harness {
    start(StandInOptions::default()).await
}

fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The query parameters of a redirect's `Location`.
fn location_params(resp: &reqwest::Response) -> HashMap<String, String> {
    let location = resp.headers()[LOCATION].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Harness {
    async fn get_authorize(&self, query: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .get(format!("{}/oauth/authorize?{}", self.base, encode(query)))
            .send()
            .await
            .unwrap()
    }

    async fn post_authorize(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}/oauth/authorize", self.base))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(encode(form))
            .send()
            .await
            .unwrap()
    }

    /// Approves as `user` with the given extra fields; returns the code.
    async fn approve_as(&self, user: &str, extra: &[(&str, &str)]) -> String {
        let mut form = vec![
            ("client_id", "demo-client"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "profile:read profile:email"),
            ("state", "st"),
            ("user", user),
            ("decision", "approve"),
        ];
        form.extend_from_slice(extra);
        let resp = self.post_authorize(&form).await;
        assert_eq!(resp.status(), StatusCode::FOUND);
        let params = location_params(&resp);
        assert_eq!(params["state"], "st");
        params["code"].clone()
    }

    async fn approve(&self, extra: &[(&str, &str)]) -> String {
        self.approve_as("1001", extra).await
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let resp = self.token_raw(form).await;
        let status = resp.status();
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
        (status, resp.json().await.unwrap())
    }

    async fn token_raw(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}/oauth/token", self.base))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(encode(form))
            .send()
            .await
            .unwrap()
    }

    async fn exchange(&self, code: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ];
        form.extend_from_slice(extra);
        self.token(&form).await
    }

    async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ])
        .await
    }

    /// Runs the whole flow and returns the token response.
    async fn sign_in(&self) -> Value {
        let code = self.approve(&[]).await;
        let (status, body) = self.exchange(&code, &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn profile(&self, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/api/v1/profiles/me", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn profile_status(&self, token: &str) -> StatusCode {
        self.profile(token).await.status()
    }
}

fn unauthorized_body() -> Value {
    json!({"error": {"code": "UNAUTHORIZED", "message": "The access token is invalid or has expired.", "status": 401}})
}

fn revoked_refresh_body() -> Value {
    json!({
        "error": "invalid_grant",
        "error_description": "The refresh token is invalid.",
        "hint": "Token has been revoked",
        "message": "The refresh token is invalid."
    })
}

#[tokio::test]
async fn full_code_flow_over_http() {
    let h = start_default().await;
    let resp = h
        .get_authorize(&[
            ("client_id", "demo-client"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "profile:read profile:email"),
            ("state", "<xyz>&\""),
        ])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = resp.text().await.unwrap();
    for needle in [
        "<form method=\"post\" action=\"/oauth/authorize\">",
        "name=\"state\" value=\"&lt;xyz&gt;&amp;&quot;\"",
        "name=\"client_id\" value=\"demo-client\"",
        "name=\"decision\" value=\"approve\"",
        "name=\"decision\" value=\"deny\"",
        "your public profile",
        "your email address",
        "Rocketpunch (demo stand-in)",
        "Ada Lovelace",
        "Grace Hopper",
    ] {
        assert!(page.contains(needle), "missing {needle}");
    }
    assert!(!page.contains("<xyz>"));
    assert!(
        !page.contains("code_challenge"),
        "absent fields are not carried"
    );

    let resp = h
        .post_authorize(&[
            ("client_id", "demo-client"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "profile:read profile:email"),
            ("state", "<xyz>&\""),
            ("user", "1001"),
            ("decision", "approve"),
        ])
        .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let params = location_params(&resp);
    assert_eq!(params["state"], "<xyz>&\"");
    let code = &params["code"];
    assert!(code.len() >= 22, "at least 128 bits");

    let (status, tokens) = h.exchange(code, &[]).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "profile:read profile:email");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(access.len(), 40);
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 40);

    let resp = h.profile(access).await;
    assert_eq!(resp.status(), StatusCode::OK);
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(resp.headers().contains_key(name), "{name}");
    }
    let profile: Value = resp.json().await.unwrap();
    assert_eq!(
        profile,
        json!({"data": {"id": 1001, "username": "ada", "name": "Ada Lovelace", "email": "ada@example.com", "teams": ["engineering"]}})
    );
    assert_eq!(
        h.standin.stats(),
        Stats {
            authorization_code_grants: 1,
            refresh_token_grants: 0,
            profile_calls: 1,
            token_calls: 1,
            jwks_calls: 0,
        }
    );
}

#[tokio::test]
async fn authorize_refuses_unknown_client_and_redirect_uri_without_redirecting() {
    let h = start_default().await;
    for (client, redirect) in [
        ("other", REDIRECT),
        ("demo-client", "http://127.0.0.1:4180/oauth2/callback/"),
        ("demo-client", "http://evil.example/cb"),
        ("demo-client", ""),
    ] {
        let resp = h
            .get_authorize(&[
                ("client_id", client),
                ("redirect_uri", redirect),
                ("response_type", "code"),
            ])
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.headers().get(LOCATION).is_none());
        let resp = h
            .post_authorize(&[
                ("client_id", client),
                ("redirect_uri", redirect),
                ("response_type", "code"),
                ("user", "1001"),
                ("decision", "approve"),
            ])
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.headers().get(LOCATION).is_none());
    }
}

#[tokio::test]
async fn authorize_reports_request_errors_through_the_redirect() {
    let h = start_default().await;
    let resp = h
        .get_authorize(&[
            ("client_id", "demo-client"),
            ("redirect_uri", REDIRECT),
            ("response_type", "token"),
            ("state", "s1"),
        ])
        .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let params = location_params(&resp);
    assert_eq!(params["error"], "unsupported_response_type");
    assert_eq!(params["state"], "s1");

    let resp = h
        .get_authorize(&[
            ("client_id", "demo-client"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "profile:read admin"),
        ])
        .await;
    let params = location_params(&resp);
    assert_eq!(params["error"], "invalid_scope");
    assert!(!params.contains_key("state"));
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let h = start_default().await;
    let resp = h
        .post_authorize(&[
            ("client_id", "demo-client"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("state", "a b"),
            ("user", "1001"),
            ("decision", "deny"),
        ])
        .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(
        resp.headers()[LOCATION],
        "http://127.0.0.1:4180/oauth2/callback?error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request.&state=a+b"
    );
}

#[tokio::test]
async fn approve_with_unknown_user_is_a_400_page() {
    let h = start_default().await;
    let resp = h
        .post_authorize(&[
            ("client_id", "demo-client"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("user", "9999"),
            ("decision", "approve"),
        ])
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get(LOCATION).is_none());
}

#[tokio::test]
async fn redirect_keeps_existing_query_and_omits_absent_state() {
    let redirect = "http://127.0.0.1:4180/cb?tenant=x";
    let h = start(StandInOptions {
        redirect_uri: redirect.to_owned(),
        ..StandInOptions::default()
    })
    .await;
    let resp = h
        .post_authorize(&[
            ("client_id", "demo-client"),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("user", "1002"),
            ("decision", "approve"),
        ])
        .await;
    let location = resp.headers()[LOCATION].to_str().unwrap();
    assert!(
        location.starts_with("http://127.0.0.1:4180/cb?tenant=x&code="),
        "{location}"
    );
    assert!(!location.contains("state"));
}

#[tokio::test]
async fn pkce_s256_success_and_mismatch() {
    let h = start_default().await;
    let challenge = s256(VERIFIER);
    let pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let code = h.approve(&pkce).await;
    let (status, body) = h
        .exchange(&code, &[("code_verifier", "x".repeat(43).as_str())])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["hint"], "Failed to verify `code_verifier`.");
    let (status, body) = h.exchange(&code, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["hint"], "Failed to verify `code_verifier`.");
    // A failed verification does not burn the code.
    let (status, body) = h.exchange(&code, &[("code_verifier", VERIFIER)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let resp = h
        .get_authorize(&[
            ("client_id", "demo-client"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S512"),
        ])
        .await;
    assert_eq!(location_params(&resp)["error"], "invalid_request");
}

#[tokio::test]
async fn code_is_single_use_and_reuse_revokes_its_tokens() {
    let h = start_default().await;
    let code = h.approve(&[]).await;
    let (status, tokens) = h.exchange(&code, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(h.profile_status(access).await, StatusCode::OK);

    let (status, body) = h.exchange(&code, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["hint"], "Authorization code has been revoked");
    assert_eq!(h.profile_status(access).await, StatusCode::UNAUTHORIZED);
    let (status, _) = h.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = h.exchange("no-such-code", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["hint"], "Cannot decrypt the authorization code");
}

#[tokio::test]
async fn code_bound_to_redirect_uri() {
    let h = start_default().await;
    let code = h.approve(&[]).await;
    let (status, body) = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:4180/other"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["hint"], "Check the `redirect_uri` parameter");
}

#[tokio::test]
async fn code_expires() {
    let h = start(StandInOptions {
        code_ttl: Duration::from_millis(50),
        ..StandInOptions::default()
    })
    .await;
    let code = h.approve(&[]).await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    let (status, body) = h.exchange(&code, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["hint"], "Authorization code has expired");
}

#[tokio::test]
async fn access_token_expires() {
    let h = start(StandInOptions {
        access_token_ttl: Duration::ZERO,
        ..StandInOptions::default()
    })
    .await;
    let tokens = h.sign_in().await;
    assert_eq!(tokens["expires_in"], 0);
    let resp = h.profile(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json::<Value>().await.unwrap(), unauthorized_body());
}

#[tokio::test]
async fn refresh_rotates_and_reuse_is_invalid_grant() {
    let h = start_default().await;
    let first = h.sign_in().await;
    let old_refresh = first["refresh_token"].as_str().unwrap();
    let old_access = first["access_token"].as_str().unwrap();

    let (status, second) = h.refresh(old_refresh).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(second["scope"], "profile:read profile:email");
    assert_eq!(second["expires_in"], 3600);
    assert_eq!(h.profile_status(old_access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.profile_status(second["access_token"].as_str().unwrap())
            .await,
        StatusCode::OK
    );

    for token in [old_refresh, "never-issued"] {
        let (status, body) = h.refresh(token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, revoked_refresh_body());
    }
    let (status, body) = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    // The malformed request (no refresh_token) is not a grant attempt.
    assert_eq!(h.standin.stats().refresh_token_grants, 3);
}

#[tokio::test]
async fn client_authentication() {
    let h = start_default().await;
    let invalid_client = json!({
        "error": "invalid_client",
        "error_description": "Client authentication failed",
        "message": "Client authentication failed"
    });
    for creds in [
        vec![("client_id", "demo-client"), ("client_secret", "wrong")],
        vec![("client_id", "demo-client")],
        vec![("client_id", "nope"), ("client_secret", "demo-secret")],
        vec![],
    ] {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", "r")];
        form.extend(creds);
        let (status, body) = h.token(&form).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, invalid_client);
    }

    // HTTP Basic works too...
    let code = h.approve(&[]).await;
    let resp = h
        .client
        .post(format!("{}/oauth/token", h.base))
        .basic_auth("demo-client", Some("demo-secret"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(encode(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // ...and a wrong Basic secret gets the Basic challenge.
    let resp = h
        .client
        .post(format!("{}/oauth/token", h.base))
        .basic_auth("demo-client", Some("nope"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token&refresh_token=r")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"OAuth\"");
    assert_eq!(h.standin.stats().authorization_code_grants, 1);
    assert_eq!(h.standin.stats().refresh_token_grants, 0);
}

#[tokio::test]
async fn token_endpoint_rejects_malformed_requests() {
    let h = start_default().await;
    let (status, body) = h.token(&[("grant_type", "password")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
    let (status, body) = h.token(&[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
    let (status, body) = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["hint"], "Check the `code` parameter");
    let (status, body) = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("grant_type", "refresh_token"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");

    let resp = h
        .client
        .post(format!("{}/oauth/token", h.base))
        .body(vec![b'a'; 64 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let resp = h
        .client
        .post(format!("{}/oauth/token", h.base))
        .body(b"%ff%fe=\xff\xfe&&&==".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(h.standin.stats().token_calls, 6);
}

#[tokio::test]
async fn profile_requires_a_valid_bearer_token() {
    let h = start_default().await;
    let resp = h
        .client
        .get(format!("{}/api/v1/profiles/me", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("x-ratelimit-limit"));
    assert_eq!(resp.json::<Value>().await.unwrap(), unauthorized_body());
    let resp = h.profile("bogus").await;
    assert_eq!(resp.json::<Value>().await.unwrap(), unauthorized_body());
    assert_eq!(h.standin.stats().profile_calls, 2);
}

#[tokio::test]
async fn profile_without_email_scope_or_wrapper() {
    let h = start(StandInOptions {
        wrap_profile_in_data: false,
        ..StandInOptions::default()
    })
    .await;
    let resp = h
        .post_authorize(&[
            ("client_id", "demo-client"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "profile:read"),
            ("user", "1003"),
            ("decision", "approve"),
        ])
        .await;
    let code = location_params(&resp)["code"].clone();
    let (_, tokens) = h.exchange(&code, &[]).await;
    assert_eq!(tokens["scope"], "profile:read");
    let profile: Value = h
        .profile(tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        profile,
        json!({"id": 1003, "username": "linus", "name": "Linus Torvalds"})
    );
}

#[tokio::test]
async fn long_access_tokens() {
    let h = start(StandInOptions {
        access_token_len: 6000,
        ..StandInOptions::default()
    })
    .await;
    let tokens = h.sign_in().await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(access.len(), 6000);
    assert_eq!(h.profile_status(access).await, StatusCode::OK);
}

#[tokio::test]
async fn status_faults_use_each_endpoints_error_shape() {
    let h = start_default().await;
    let tokens = h.sign_in().await;
    let access = tokens["access_token"].as_str().unwrap();

    h.standin
        .set_fault(FaultEndpoint::Token, Some(Fault::Status(500)));
    let (status, body) = h.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"], "server_error");
    assert!(body["message"].is_string());
    h.standin
        .set_fault(FaultEndpoint::Token, Some(Fault::Status(503)));
    let (status, body) = h.token(&[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "temporarily_unavailable");

    h.standin
        .set_fault(FaultEndpoint::Profile, Some(Fault::Status(502)));
    let resp = h.profile(access).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BAD_GATEWAY");
    assert_eq!(body["error"]["status"], 502);

    // Clearing restores normal service; the faulted refresh did not rotate.
    h.standin.set_fault(FaultEndpoint::Token, None);
    h.standin.set_fault(FaultEndpoint::Profile, None);
    assert_eq!(h.profile_status(access).await, StatusCode::OK);
    let (status, _) = h.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn too_many_requests_fault() {
    let h = start_default().await;
    h.standin
        .set_fault(FaultEndpoint::Profile, Some(Fault::TooManyRequests));
    h.standin
        .set_fault(FaultEndpoint::Token, Some(Fault::TooManyRequests));
    let resp = h.profile("x").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "30");
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    assert!(resp.headers().contains_key("x-ratelimit-limit"));
    assert!(resp.headers().contains_key("x-ratelimit-reset"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TOO_MANY_REQUESTS");
    let resp = h.token_raw(&[]).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "30");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
}

#[tokio::test]
async fn non_json_fault() {
    let h = start_default().await;
    for endpoint in [FaultEndpoint::Token, FaultEndpoint::Profile] {
        h.standin.set_fault(endpoint, Some(Fault::NonJson));
    }
    for resp in [h.token_raw(&[]).await, h.profile("x").await] {
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(resp.text().await.unwrap(), "<html>maintenance</html>");
    }
}

#[tokio::test]
async fn hang_fault_delays_then_answers() {
    let h = start_default().await;
    h.standin.set_fault(
        FaultEndpoint::Profile,
        Some(Fault::Hang(Duration::from_millis(400))),
    );
    let err = h
        .client
        .get(format!("{}/api/v1/profiles/me", h.base))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let started = Instant::now();
    assert_eq!(h.profile_status("x").await, StatusCode::UNAUTHORIZED);
    assert!(started.elapsed() >= Duration::from_millis(400));

    h.standin.set_fault(
        FaultEndpoint::Token,
        Some(Fault::Hang(Duration::from_millis(200))),
    );
    let started = Instant::now();
    let (status, _) = h.token(&[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn refuse_fault_drops_the_connection() {
    let h = start_default().await;
    let tokens = h.sign_in().await;
    h.standin
        .set_fault(FaultEndpoint::Token, Some(Fault::Refuse));
    h.standin
        .set_fault(FaultEndpoint::Profile, Some(Fault::Refuse));
    let err = h
        .client
        .post(format!("{}/oauth/token", h.base))
        .body("grant_type=refresh_token")
        .send()
        .await
        .unwrap_err();
    assert!(err.status().is_none(), "no HTTP answer: {err}");
    let err = h
        .client
        .get(format!("{}/api/v1/profiles/me", h.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap_err();
    assert!(err.status().is_none(), "no HTTP answer: {err}");
    assert_eq!(h.standin.stats().token_calls, 2);
    assert_eq!(h.standin.stats().profile_calls, 1);
}

#[tokio::test]
async fn revoke_user_kills_only_that_users_tokens() {
    let h = start_default().await;
    let ada = h.sign_in().await;
    let code = h.approve_as("1002", &[]).await;
    let (_, grace) = h.exchange(&code, &[]).await;

    h.standin.revoke_user("1001");
    let resp = h.profile(ada["access_token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json::<Value>().await.unwrap(), unauthorized_body());
    let (status, body) = h.refresh(ada["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, revoked_refresh_body());

    assert_eq!(
        h.profile_status(grace["access_token"].as_str().unwrap())
            .await,
        StatusCode::OK
    );
    let (status, _) = h.refresh(grace["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn control_routes() {
    let h = start_default().await;
    let tokens = h.sign_in().await;
    let access = tokens["access_token"].as_str().unwrap();
    let post = |path: &str| h.client.post(format!("{}/_standin/{path}", h.base)).send();

    let stats: Value = h
        .client
        .get(format!("{}/_standin/stats", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats,
        json!({"authorization_code_grants": 1, "refresh_token_grants": 0, "profile_calls": 0, "token_calls": 1, "jwks_calls": 0})
    );
    assert_eq!(post("rotate_key").await.unwrap().status(), 200);

    let resp = post("fault?endpoint=profile&kind=500").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        h.profile_status(access).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    post("fault?endpoint=profile&kind=none").await.unwrap();
    assert_eq!(h.profile_status(access).await, StatusCode::OK);
    post("fault?endpoint=profile&kind=html").await.unwrap();
    assert_eq!(h.profile_status(access).await, StatusCode::OK);
    post("reset").await.unwrap();
    assert_eq!(h.standin.stats(), Stats::default());
    let resp = h.profile(access).await;
    assert_eq!(
        resp.headers()[CONTENT_TYPE],
        "application/json",
        "reset clears faults"
    );

    let resp = post("fault?endpoint=moon&kind=500").await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = post("revoke?user=4242").await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = post("revoke?user=1001").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(h.profile_status(access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let h = start_default().await;
    let resp = h
        .client
        .get(format!("{}/nope", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert_eq!(body["error"]["status"], 404);
    let resp = h
        .client
        .get(format!("{}/oauth/token", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn stats_reset_keeps_sessions() {
    let h = start_default().await;
    let tokens = h.sign_in().await;
    h.standin.reset_stats();
    assert_eq!(h.standin.stats(), Stats::default());
    assert_eq!(
        h.profile_status(tokens["access_token"].as_str().unwrap())
            .await,
        StatusCode::OK
    );
    assert_eq!(h.standin.stats().profile_calls, 1);
}

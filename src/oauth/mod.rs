//! The Rocketpunch client: authorize URL, code exchange, refresh, profile.
//!
//! Every answer Rocketpunch can give (its league/oauth2-server token errors, its API error
//! shape, rate limits, outages, HTML maintenance pages) becomes a typed [`ProviderError`].

mod claims;
mod error;
mod settings;
mod state;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

pub use claims::identity;
pub use error::ProviderError;
pub use state::{LoginError, LoginState, code_challenge, csrf_cookie_name, random_token};

use crate::session::{Identity, Tokens};
use crate::trace::{Kind, Span};
pub use settings::{ClaimPointers, ProviderSettings};

/// Answers from Rocketpunch are small; anything larger is not a real answer.
const MAX_BODY: usize = 1 << 20;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A successful token-endpoint answer, whatever the grant.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
}

/// Talks to Rocketpunch for one configured client.
pub struct OAuthClient {
    provider: ProviderSettings,
    redirect_uri: String,
    http: HttpsClient,
}

impl OAuthClient {
    /// A client for `provider`, registered with `redirect_uri` (`public_url` +
    /// `/oauth2/callback`).
    pub fn new(provider: &ProviderSettings, redirect_uri: String) -> Self {
        // System roots (webpki's as fallback) plus `provider.ca_file`, if set.
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::tls::client_config(&provider.ca))
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Self {
            provider: provider.clone(),
            redirect_uri,
            http,
        }
    }

    /// Where to send the browser to sign in; `challenge` is the PKCE S256 challenge, if any.
    pub fn authorize_url(&self, state: &str, challenge: Option<&str>) -> String {
        let mut url: Url = self.provider.authorize_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", &self.provider.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", &self.provider.scopes.join(" "))
                .append_pair("state", state);
            if let Some(challenge) = challenge {
                query
                    .append_pair("code_challenge", challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        url.into()
    }

    /// Exchanges an authorization code for tokens (step 4 of Rocketpunch's guide).
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: Option<&str>,
        now: u64,
    ) -> Result<Tokens, ProviderError> {
        // Built in a block: the serializer is not Send and must not live across the await.
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("client_id", &self.provider.client_id)
                .append_pair("client_secret", self.provider.client_secret.expose())
                .append_pair("redirect_uri", &self.redirect_uri);
            if let Some(verifier) = verifier {
                form.append_pair("code_verifier", verifier);
            }
            form.finish()
        };
        self.token_call(form, None, now).await
    }

    /// Trades a refresh token for new tokens; a response without a refresh token keeps the old one.
    pub async fn refresh(&self, refresh_token: &str, now: u64) -> Result<Tokens, ProviderError> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh_token)
            .append_pair("client_id", &self.provider.client_id)
            .append_pair("client_secret", self.provider.client_secret.expose())
            .finish();
        self.token_call(form, Some(refresh_token), now).await
    }

    /// Reads the profile with the access token and maps it to an identity.
    pub async fn identity(&self, access_token: &str) -> Result<Identity, ProviderError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(self.provider.profile_url.as_str())
            .header(header::AUTHORIZATION, format!("Bearer {access_token}"))
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| ProviderError::Malformed(e.to_string()))?;
        let profile = self.call(request, "profile").await?;
        identity(&profile, &self.provider.claims)
    }

    /// GETs a JSON document from Rocketpunch (its JWKS), with the same timeout, size cap and
    /// error classification as every other provider call.
    pub async fn get_json(&self, url: &Url) -> Result<Value, ProviderError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| ProviderError::Malformed(e.to_string()))?;
        self.call(request, "keys").await
    }

    async fn token_call(
        &self,
        form: String,
        previous_refresh: Option<&str>,
        now: u64,
    ) -> Result<Tokens, ProviderError> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.provider.token_url.as_str())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| ProviderError::Malformed(e.to_string()))?;
        let body = self.call(request, "token").await?;
        let answer: TokenResponse = serde_json::from_value(body)
            .map_err(|_| ProviderError::Malformed("token response without access_token".into()))?;
        if answer.access_token.is_empty() {
            return Err(ProviderError::Malformed("empty access_token".into()));
        }
        Ok(Tokens {
            access_token: answer.access_token,
            refresh_token: answer
                .refresh_token
                .filter(|t| !t.is_empty())
                .or_else(|| previous_refresh.map(str::to_owned)),
            expires_at: answer
                .expires_in
                .as_ref()
                .and_then(seconds)
                .map(|s| now.saturating_add(s)),
            issued_at: Some(now),
        })
    }

    /// Sends `request` within the provider timeout and classifies the answer, in a client
    /// span named for the method with `rocketgate.provider.call` saying which call it was.
    async fn call(
        &self,
        mut request: Request<Full<Bytes>>,
        what: &'static str,
    ) -> Result<Value, ProviderError> {
        let mut span = Span::start(request.method().as_str(), Kind::Client);
        if span.is_recording() {
            span.set("rocketgate.provider.call", what);
            span.set("http.request.method", request.method().as_str().to_owned());
            let uri = request.uri();
            span.set(
                "url.full",
                format!(
                    "{}://{}{}",
                    uri.scheme_str().unwrap_or("https"),
                    uri.authority().map_or("", |a| a.as_str()),
                    uri.path()
                ),
            );
            if let Some(host) = uri.host() {
                span.set("server.address", host.to_owned());
            }
        }
        crate::trace::propagate(request.headers_mut(), &span);
        let result = self.send(request).await;
        match &result {
            Ok(_) => {}
            Err(
                ProviderError::Rejected { status, .. } | ProviderError::Unavailable { status, .. },
            ) => {
                span.set("http.response.status_code", *status);
                span.fail(status.to_string());
            }
            Err(e) => span.fail(e.kind()),
        }
        result
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<Value, ProviderError> {
        let timeout = self.provider.timeout;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| {
                ProviderError::Unreachable(if e.is_connect() {
                    "connection failed".to_owned()
                } else {
                    "connection closed".to_owned()
                })
            })?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|_| ProviderError::Malformed("unreadable or oversized body".into()))?
                .to_bytes();
            Ok::<_, ProviderError>((status, retry_after, body))
        };
        let (status, retry_after, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ProviderError::Timeout(timeout))??;
        classify(status, retry_after, &body)
    }
}

/// Turns a status and body into the JSON value or the matching error.
fn classify(
    status: StatusCode,
    retry_after: Option<u64>,
    body: &[u8],
) -> Result<Value, ProviderError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(ProviderError::RateLimited { retry_after });
    }
    if status.is_success() {
        return json
            .filter(Value::is_object)
            .ok_or_else(|| ProviderError::Malformed(format!("{status} with a non-JSON body")));
    }
    let oauth_code = json.as_ref().and_then(error_code);
    // Only a 400/401 in Rocketpunch's own error shape refuses the grant. Any other error (a
    // WAF's 403 page, a 404 during maintenance, a 408, an HTML 400 from a proxy) says nothing
    // about the user's tokens and must not end sessions.
    match (status.as_u16(), oauth_code) {
        (400 | 401, Some(code)) => Err(ProviderError::Rejected {
            status: status.as_u16(),
            code,
        }),
        (400..=599, code) => Err(ProviderError::Unavailable {
            status: status.as_u16(),
            code: code.unwrap_or_else(|| "non_json".to_owned()),
        }),
        _ => Err(ProviderError::Malformed(format!(
            "unexpected status {status}"
        ))),
    }
}

/// The error code in either of Rocketpunch's shapes: league's `{"error": "invalid_grant"}`
/// or the API's `{"error": {"code": "UNAUTHORIZED"}}`.
fn error_code(body: &Value) -> Option<String> {
    let code = match body.get("error")? {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.get("code")?.as_str()?.to_owned(),
        _ => return None,
    };
    // Only the shape of a code is logged; anything else could carry user data.
    Some(
        code.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .take(64)
            .collect(),
    )
}

/// `expires_in` as seconds, whether sent as a number or a numeric string.
fn seconds(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_every_answer_shape() {
        let ok = classify(StatusCode::OK, None, br#"{"access_token":"x"}"#).unwrap();
        assert_eq!(ok["access_token"], "x");
        let league = br#"{"error":"invalid_grant","error_description":"The refresh token is invalid.","hint":"Token has been revoked","message":"The refresh token is invalid."}"#;
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, None, league),
            Err(ProviderError::Rejected { status: 400, ref code }) if code == "invalid_grant"
        ));
        let api = br#"{"error":{"code":"UNAUTHORIZED","message":"m","status":401}}"#;
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, None, api),
            Err(ProviderError::Rejected { status: 401, ref code }) if code == "UNAUTHORIZED"
        ));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, Some(30), b""),
            Err(ProviderError::RateLimited {
                retry_after: Some(30)
            })
        ));
        assert!(
            matches!(
                classify(StatusCode::FORBIDDEN, None, b"<html>blocked by WAF</html>"),
                Err(ProviderError::Unavailable { status: 403, .. })
            ),
            "a WAF page is not a refusal of the grant"
        );
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, None, br#"{"error":"not_found"}"#),
            Err(ProviderError::Unavailable { status: 404, .. })
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, None, b"<html>bad</html>"),
            Err(ProviderError::Unavailable { status: 400, .. })
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None, b"<html>"),
            Err(ProviderError::Unavailable { status: 502, ref code }) if code == "non_json"
        ));
        assert!(matches!(
            classify(StatusCode::OK, None, b"<html>maintenance</html>"),
            Err(ProviderError::Malformed(_))
        ));
        assert!(matches!(
            classify(StatusCode::OK, None, b"[1]"),
            Err(ProviderError::Malformed(_))
        ));
    }

    #[test]
    fn error_codes_are_sanitised_for_logs() {
        let v = json!({"error": "bad\ncode<script>"});
        assert_eq!(error_code(&v).unwrap(), "badcodescript");
    }

    #[test]
    fn expires_in_in_any_reasonable_shape() {
        assert_eq!(seconds(&json!(3600)), Some(3600));
        assert_eq!(seconds(&json!("3600")), Some(3600));
        assert_eq!(seconds(&json!(3600.5)), Some(3600));
        assert_eq!(seconds(&json!(null)), None);
    }
}

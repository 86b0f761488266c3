//! `POST /oauth/token`: the authorization-code and refresh-token grants.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderValue, PRAGMA};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use subtle::ConstantTimeEq as _;

use crate::{Body, DemoError, body::read_capped};

use super::authorize::MAX_FORM;
use super::params::Params;
use super::responses::{OAuthError, fault_status, json, maintenance_page, no_store, refuse};
use super::tokens::{CodeExchange, TokenSet};
use super::{Fault, StandIn};

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: &'a str,
    scope: &'a str,
}

pub(super) async fn handle(standin: &StandIn, req: Request<Incoming>) -> Response<Body> {
    let fault = {
        let mut state = standin.state();
        state.stats.token_calls += 1;
        state.token_fault
    };
    match fault {
        None => {}
        Some(Fault::Hang(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Status(code)) => {
            return OAuthError::for_status(fault_status(code)).into_response(false);
        }
        Some(Fault::TooManyRequests) => {
            return OAuthError::too_many_requests().into_response(false);
        }
        Some(Fault::NonJson) => return maintenance_page(),
        Some(Fault::Refuse) => return refuse(),
    }
    let basic = basic_credentials(req.headers());
    let used_basic = basic.is_some();
    match grant(standin, req, basic).await {
        Ok(tokens) => success(&tokens),
        Err(err) => err.into_response(used_basic),
    }
}

async fn grant(
    standin: &StandIn,
    req: Request<Incoming>,
    basic: Option<(String, String)>,
) -> Result<TokenSet, OAuthError> {
    let bytes = read_capped(req.into_body(), MAX_FORM)
        .await
        .map_err(|err| match err {
            DemoError::BodyTooLarge { .. } => OAuthError::body_too_large(),
            _ => OAuthError::invalid_request_hint("The request body could not be read"),
        })?;
    let params = Params::parse(&bytes).map_err(|name| OAuthError::invalid_request(&name))?;
    let grant_type = params.get("grant_type");
    if !matches!(grant_type, Some("authorization_code" | "refresh_token")) {
        return Err(OAuthError::unsupported_grant_type());
    }
    // Form fields win over Basic, as in league's getRequestParameter($name, $request, $basicAuthDefault).
    let (basic_id, basic_secret) = basic.unzip();
    let client_id = params.get("client_id").or(basic_id.as_deref());
    let client_secret = params.get("client_secret").or(basic_secret.as_deref());
    let Some(client_id) = client_id.filter(|id| authenticate(standin, id, client_secret)) else {
        return Err(OAuthError::invalid_client());
    };
    let issuer = standin.issuer();
    if grant_type == Some("authorization_code") {
        let code = params
            .get("code")
            .ok_or_else(|| OAuthError::invalid_request("code"))?;
        let redirect_uri = params
            .get("redirect_uri")
            .ok_or_else(|| OAuthError::invalid_request("redirect_uri"))?;
        let exchange = CodeExchange {
            client_id,
            code,
            redirect_uri,
            code_verifier: params.get("code_verifier"),
        };
        let mut guard = standin.state();
        let state = &mut *guard;
        state.stats.authorization_code_grants += 1;
        let minting = standin.minting(state.jwt_keys.first(), &issuer);
        state.store.redeem_code(&exchange, minting)
    } else {
        let refresh_token = params
            .get("refresh_token")
            .ok_or_else(|| OAuthError::invalid_request("refresh_token"))?;
        let mut guard = standin.state();
        let state = &mut *guard;
        state.stats.refresh_token_grants += 1;
        let minting = standin.minting(state.jwt_keys.first(), &issuer);
        state.store.refresh(client_id, refresh_token, minting)
    }
}

/// Checks the client's credentials; the secret comparison is constant-time so
/// the stand-in does not teach anyone a timing oracle by example.
fn authenticate(standin: &StandIn, client_id: &str, secret: Option<&str>) -> bool {
    let id_ok = client_id == standin.opts.client_id;
    let secret_ok = secret.is_some_and(|secret| {
        bool::from(
            secret
                .as_bytes()
                .ct_eq(standin.opts.client_secret.as_bytes()),
        )
    });
    id_ok && secret_ok
}

/// `Authorization: Basic base64(id:secret)`, if present and well-formed.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn success(tokens: &TokenSet) -> Response<Body> {
    let mut resp = json(
        StatusCode::OK,
        &TokenResponse {
            access_token: &tokens.access_token,
            token_type: "Bearer",
            expires_in: tokens.expires_in,
            refresh_token: &tokens.refresh_token,
            scope: &tokens.scope,
        },
    );
    no_store(&mut resp);
    resp.headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_credentials() {
        let mut headers = HeaderMap::new();
        assert_eq!(basic_credentials(&headers), None);
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic ZGVtby1jbGllbnQ6ZGVtbzpzZWNyZXQ="),
        );
        assert_eq!(
            basic_credentials(&headers),
            Some(("demo-client".to_owned(), "demo:secret".to_owned()))
        );
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(basic_credentials(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic_credentials(&headers), None);
    }
}

//! `/oauth2/admin/*`: operations for whoever holds `admin.token`, such as revoking every
//! session of a user (an account that was compromised or offboarded).
//!
//! Off unless `admin.token` is set; the token is compared in constant time and the answer to
//! a wrong token is the same as to a missing one.

use http::header;
use http::{Method, Request, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::body::Body;
use crate::respond::RequestError;

/// `POST /oauth2/admin/revoke?user=ID` with `Authorization: Bearer <admin.token>`: deletes
/// every session of the user and answers `{"user": ID, "revoked": N}`.
pub async fn revoke(app: &App, req: &Request<impl Sized>) -> Result<Response<Body>, RequestError> {
    let Some(token) = &app.config.admin.token else {
        return Err(RequestError::NotFound);
    };
    if !bearer_matches(req, token.expose()) {
        return Err(RequestError::AdminUnauthorized);
    }
    if req.method() != Method::POST {
        return Err(RequestError::MethodNotAllowed);
    }
    let user = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.into_owned())
        .filter(|u| !u.is_empty())
        .ok_or(RequestError::AdminBadRequest(
            "the user query parameter is required",
        ))?;
    let revoked = app.sessions.revoke_user(&user).await?;
    tracing::info!(%user, revoked, "sessions revoked through the admin endpoint");
    Ok(crate::pages::json(
        &serde_json::json!({ "user": user, "revoked": revoked }),
    ))
}

fn bearer_matches(req: &Request<impl Sized>, token: &str) -> bool {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let scheme = v.get(..7)?;
            scheme
                .eq_ignore_ascii_case("bearer ")
                .then(|| v.get(7..).map(str::trim))
                .flatten()
        })
        .unwrap_or("");
    // Digests first, so neither the comparison nor its length reveals anything of the token.
    let digest = |s: &str| -> [u8; 32] { Sha256::digest(s.as_bytes()).into() };
    bool::from(digest(presented).ct_eq(&digest(token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: Option<&str>) -> Request<()> {
        let mut b = Request::post("/oauth2/admin/revoke?user=1");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn only_the_exact_bearer_token_matches() {
        let token = "t".repeat(40);
        assert!(bearer_matches(
            &req(Some(&format!("Bearer {token}"))),
            &token
        ));
        assert!(bearer_matches(
            &req(Some(&format!("bearer  {token}"))),
            &token
        ));
        assert!(!bearer_matches(&req(None), &token));
        assert!(!bearer_matches(&req(Some(&token)), &token));
        assert!(!bearer_matches(
            &req(Some(&format!("Basic {token}"))),
            &token
        ));
        assert!(!bearer_matches(
            &req(Some(&format!("Bearer {token}x"))),
            &token
        ));
        assert!(!bearer_matches(&req(Some("Bearer ")), &token));
        assert!(!bearer_matches(&req(Some("Bé")), &token));
    }
}

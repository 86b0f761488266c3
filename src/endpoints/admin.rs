//! `/oauth2/admin/*`: operations for whoever holds `admin.token`, such as revoking every
//! session of a user (an account that was compromised or offboarded).
//!
//! Off unless `admin.token` is set; the token is compared in constant time and the answer to
//! a wrong token is the same as to a missing one.

use http::{Method, Request, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::bearer::bearer_token;
use crate::body::Body;
use crate::error::RequestError;

/// `POST /oauth2/admin/revoke?user=ID` with `Authorization: Bearer <admin.token>`: deletes
/// every session of the user and answers `{"user": ID, "revoked": N}`.
pub async fn revoke(app: &App, req: &Request<impl Sized>) -> Result<Response<Body>, RequestError> {
    let Some(token) = &app.config.admin.token else {
        return Err(RequestError::NotFound);
    };
    if !bearer_matches(req.headers(), token.expose()) {
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
    crate::audit::record(crate::audit::Event::SessionRevoked {
        user: &user,
        by: "admin_endpoint",
        sessions: revoked,
    });
    Ok(crate::pages::json(
        &serde_json::json!({ "user": user, "revoked": revoked }),
    ))
}

fn bearer_matches(headers: &http::HeaderMap, token: &str) -> bool {
    let presented = bearer_token(headers).unwrap_or("");
    // Digests first, so neither the comparison nor its length reveals anything of the token.
    let digest = |s: &str| -> [u8; 32] { Sha256::digest(s.as_bytes()).into() };
    bool::from(digest(presented).ct_eq(&digest(token)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

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
            req(Some(&format!("Bearer {token}"))).headers(),
            &token
        ));
        assert!(bearer_matches(
            req(Some(&format!("bearer  {token}"))).headers(),
            &token
        ));
        assert!(!bearer_matches(req(None).headers(), &token));
        assert!(!bearer_matches(req(Some(&token)).headers(), &token));
        assert!(!bearer_matches(
            req(Some(&format!("Basic {token}"))).headers(),
            &token
        ));
        assert!(!bearer_matches(
            req(Some(&format!("Bearer {token}x"))).headers(),
            &token
        ));
        assert!(!bearer_matches(req(Some("Bearer ")).headers(), &token));
        assert!(!bearer_matches(req(Some("Bé")).headers(), &token));
    }
}

//! `/oauth2/userinfo`: who is signed in, as JSON, for the app's own scripts.

use http::{Request, Response};

use crate::app::App;
use crate::body::Body;
use crate::context::Context;
use crate::error::RequestError;
use crate::gate::{self, Credentials};

/// `{user, email, preferred_username}`; 401 when not signed in, 403 when not allowed.
pub async fn userinfo(
    app: &App,
    cx: &mut Context,
    req: &Request<impl Sized>,
) -> Result<Response<Body>, RequestError> {
    let user = gate::authenticate(app, cx, req.headers(), Credentials::Session)
        .await?
        .ok_or(RequestError::Unauthenticated)?;
    gate::authorize(app, &user)?;
    let id = &user.session.identity;
    Ok(crate::pages::json(&serde_json::json!({
        "user": id.user,
        "email": id.email,
        "preferred_username": id.preferred_username,
    })))
}

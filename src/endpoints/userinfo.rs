//! `/oauth2/userinfo`: who is signed in, as JSON, for the app's own scripts.

use http::{Request, Response};

use crate::app::App;
use crate::body::Body;
use crate::context::Context;
use crate::error::RequestError;
use crate::gate::{self, Credentials};
use crate::routes::Route;

/// `{user, email, preferred_username, groups}` (groups only when there are any); 401 when not signed in, 403 when not
/// allowed by the baseline policy.
pub async fn userinfo(
    app: &App,
    cx: &mut Context,
    req: &Request<impl Sized>,
) -> Result<Response<Body>, RequestError> {
    let user = gate::authenticate(app, cx, req.headers(), Credentials::Session)
        .await?
        .ok_or(RequestError::Unauthenticated)?;
    let groups = gate::authorize(app, cx, &user, None::<&Route<()>>, None)?;
    let id = &user.session.identity;
    let mut info = serde_json::json!({
        "user": id.user,
        "email": id.email,
        "preferred_username": id.preferred_username,
    });
    // Left out when empty, as oauth2-proxy does, so scripts written for it see the same shape.
    if !groups.is_empty() {
        info["groups"] = serde_json::json!(groups);
    }
    Ok(crate::pages::json(&info))
}

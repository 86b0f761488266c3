//! rocketgate's own endpoints: sign-in (`/oauth2/start`, the callback), sign-out, userinfo,
//! the forward-auth check, the admin API, health and metrics. Each handler reads the request
//! and the context, adds pending cookies to the context, and returns an answer or a typed
//! error; `respond` writes both out.

pub mod admin;
pub mod forward_auth;
pub mod health;
pub mod login;
pub mod sign_out;
pub mod userinfo;

use std::collections::HashMap;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};

use crate::body::{self, Body};

/// The query parameters, first value of each name.
fn query(req: &Request<impl Sized>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

/// A redirect that is never cached.
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `/oauth2/start?rd=…`: a link that begins a fresh login returning to `rd`.
fn start_link(rd: &str) -> String {
    format!(
        "/oauth2/start?rd={}",
        form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
    )
}

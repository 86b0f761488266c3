//! `GET /api/v1/profiles/me`: the signed-in user's profile.

use http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use crate::Body;

use super::responses::{
    RATE_LIMIT, api_error, fault_status, json, maintenance_page, rate_limit_headers, rate_limited,
    refuse,
};
use super::{Fault, StandIn};

#[derive(Serialize)]
struct Profile<'a> {
    /// A JSON number on Rocketpunch, although ids travel as strings elsewhere.
    id: u64,
    username: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    teams: &'a [&'a str],
}

#[derive(Serialize)]
struct Wrapped<'a> {
    data: Profile<'a>,
}

pub(super) async fn handle(standin: &StandIn, req: Request<Incoming>) -> Response<Body> {
    let (fault, calls) = {
        let mut state = standin.state();
        state.stats.profile_calls += 1;
        (state.profile_fault, state.stats.profile_calls)
    };
    let remaining = RATE_LIMIT.saturating_sub(calls % RATE_LIMIT);
    match fault {
        None => {}
        Some(Fault::Hang(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Status(code)) => {
            let status = fault_status(code);
            let mut resp = api_error(status, "Injected fault.");
            if status == StatusCode::TOO_MANY_REQUESTS {
                rate_limited(&mut resp);
            } else {
                rate_limit_headers(&mut resp, remaining);
            }
            return resp;
        }
        Some(Fault::TooManyRequests) => {
            let mut resp = api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests. Please retry after 30 seconds.",
            );
            rate_limited(&mut resp);
            return resp;
        }
        Some(Fault::NonJson) => return maintenance_page(),
        Some(Fault::Refuse) => return refuse(),
    }
    let mut resp = answer(standin, &req);
    rate_limit_headers(&mut resp, remaining);
    resp
}

fn answer(standin: &StandIn, req: &Request<Incoming>) -> Response<Body> {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let found = token.and_then(|token| {
        let state = standin.state();
        let record = state.store.access_token(token)?;
        let email = record.scope.split(' ').any(|s| s == "profile:email");
        Some((record.user_id, email))
    });
    let Some((user, with_email)) = found.and_then(|(id, email)| Some((StandIn::user(id)?, email)))
    else {
        let mut resp = api_error(
            StatusCode::UNAUTHORIZED,
            "The access token is invalid or has expired.",
        );
        resp.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return resp;
    };
    let Ok(id) = user.id.parse::<u64>() else {
        return api_error(StatusCode::INTERNAL_SERVER_ERROR, "Corrupt demo user id.");
    };
    let profile = Profile {
        id,
        username: user.username,
        name: user.name,
        email: with_email.then_some(user.email),
        teams: user.teams,
    };
    if standin.opts.wrap_profile_in_data {
        json(StatusCode::OK, &Wrapped { data: profile })
    } else {
        json(StatusCode::OK, &profile)
    }
}

//! `GET /oauth/authorize` (login + consent page) and `POST /oauth/authorize`
//! (the user's decision).

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::{Body, DemoError, body::read_capped};

use super::StandIn;
use super::pages::{self, CARRIED_FIELDS};
use super::params::Params;
use super::responses::{html, redirect};
use super::tokens::{Approval, ChallengeMethod};

/// Largest form the stand-in will buffer.
pub(super) const MAX_FORM: usize = 64 * 1024;

/// Granted when the client asks for no scope at all, so a bare request still
/// yields a usable token.
const DEFAULT_SCOPE: &str = "profile:read";

/// An authorization request that passed every check.
struct Validated<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    scopes: Vec<&'a str>,
    challenge: Option<(String, ChallengeMethod)>,
}

pub(super) fn show(standin: &StandIn, req: &Request<Incoming>) -> Response<Body> {
    let params = match Params::parse(req.uri().query().unwrap_or("").as_bytes()) {
        Ok(params) => params,
        Err(name) => return duplicate(&name),
    };
    let valid = match validate(standin, &params) {
        Ok(valid) => valid,
        Err(resp) => return *resp,
    };
    let carried: Vec<(&str, &str)> = CARRIED_FIELDS
        .iter()
        .filter_map(|&name| params.get_raw(name).map(|value| (name, value)))
        .collect();
    html(
        StatusCode::OK,
        pages::consent(
            &standin.opts.client_id,
            &valid.scopes,
            &carried,
            StandIn::users(),
        ),
    )
}

pub(super) async fn decide(standin: &StandIn, req: Request<Incoming>) -> Response<Body> {
    let bytes = match read_capped(req.into_body(), MAX_FORM).await {
        Ok(bytes) => bytes,
        Err(DemoError::BodyTooLarge { .. }) => {
            return html(
                StatusCode::PAYLOAD_TOO_LARGE,
                pages::error("Request too large", "The form submission is too large."),
            );
        }
        Err(err) => {
            return html(
                StatusCode::BAD_REQUEST,
                pages::error("Bad request", &err.to_string()),
            );
        }
    };
    let params = match Params::parse(&bytes) {
        Ok(params) => params,
        Err(name) => return duplicate(&name),
    };
    let valid = match validate(standin, &params) {
        Ok(valid) => valid,
        Err(resp) => return *resp,
    };
    match params.get("decision") {
        Some("deny") => redirect_with(
            valid.redirect_uri,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "The resource owner or authorization server denied the request.",
                ),
            ],
            valid.state,
        ),
        Some("approve") => {
            let Some(user) = params.get("user").and_then(StandIn::user) else {
                return html(
                    StatusCode::BAD_REQUEST,
                    pages::error("Unknown user", "Pick one of the listed demo users."),
                );
            };
            let approval = Approval {
                client_id: standin.opts.client_id.clone(),
                redirect_uri: valid.redirect_uri.to_owned(),
                user_id: user.id,
                scope: granted_scope(&valid.scopes),
                challenge: valid.challenge,
            };
            let code = standin
                .state()
                .store
                .issue_code(approval, standin.opts.code_ttl);
            redirect_with(valid.redirect_uri, &[("code", &code)], valid.state)
        }
        _ => html(
            StatusCode::BAD_REQUEST,
            pages::error("Bad request", "The decision must be approve or deny."),
        ),
    }
}

/// Checks an authorization request like league does. Problems with the client
/// or redirect URI get an error page (never a redirect to an unverified URI);
/// everything else is reported to the client through the redirect.
fn validate<'a>(
    standin: &StandIn,
    params: &'a Params,
) -> Result<Validated<'a>, Box<Response<Body>>> {
    if params.get("client_id") != Some(standin.opts.client_id.as_str()) {
        return Err(Box::new(html(
            StatusCode::BAD_REQUEST,
            pages::error(
                "Unknown application",
                "The client_id is missing or not registered with Rocketpunch.",
            ),
        )));
    }
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if uri == standin.opts.redirect_uri => uri,
        _ => {
            return Err(Box::new(html(
                StatusCode::BAD_REQUEST,
                pages::error(
                    "Invalid redirect URI",
                    "The redirect_uri is missing or does not exactly match the one \
                     registered for this application.",
                ),
            )));
        }
    };
    let state = params.get_raw("state");
    let fail = |error: &str, description: &str| {
        redirect_with(
            redirect_uri,
            &[("error", error), ("error_description", description)],
            state,
        )
    };
    if params.get("response_type") != Some("code") {
        return Err(Box::new(fail(
            "unsupported_response_type",
            "The authorization server does not support obtaining an authorization code \
             using this method.",
        )));
    }
    let scopes: Vec<&str> = params
        .get("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if scopes.iter().any(|s| pages::describe_scope(s).is_none()) {
        return Err(Box::new(fail(
            "invalid_scope",
            "The requested scope is invalid, unknown, or malformed",
        )));
    }
    let challenge = match params.get("code_challenge") {
        None => None,
        Some(challenge) => {
            let Some(method) = ChallengeMethod::parse(params.get("code_challenge_method")) else {
                return Err(Box::new(fail(
                    "invalid_request",
                    "Code challenge method must be one of `plain`, `S256`",
                )));
            };
            if !is_valid_challenge(challenge) {
                return Err(Box::new(fail(
                    "invalid_request",
                    "Code challenge must follow the specifications of RFC-7636.",
                )));
            }
            Some((challenge.to_owned(), method))
        }
    };
    Ok(Validated {
        redirect_uri,
        state,
        scopes,
        challenge,
    })
}

/// RFC 7636 §4.2: 43–128 unreserved characters.
fn is_valid_challenge(challenge: &str) -> bool {
    (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn granted_scope(scopes: &[&str]) -> String {
    if scopes.is_empty() {
        DEFAULT_SCOPE.to_owned()
    } else {
        scopes.join(" ")
    }
}

/// 302 to `redirect_uri` with `pairs` (and `state` when the client sent one)
/// form-encoded into its query, keeping any query it already has.
fn redirect_with(
    redirect_uri: &str,
    pairs: &[(&str, &str)],
    state: Option<&str>,
) -> Response<Body> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(pairs);
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    redirect(&format!("{redirect_uri}{separator}{}", query.finish()))
}

fn duplicate(name: &str) -> Response<Body> {
    html(
        StatusCode::BAD_REQUEST,
        pages::error(
            "Bad request",
            &format!("The `{name}` parameter was sent more than once."),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_appends_to_existing_query_and_encodes() {
        let resp = redirect_with("http://h/cb?x=1", &[("code", "a b&c")], Some("s/t"));
        assert_eq!(resp.status(), StatusCode::FOUND);
        assert_eq!(
            resp.headers()[http::header::LOCATION],
            "http://h/cb?x=1&code=a+b%26c&state=s%2Ft"
        );
        let resp = redirect_with("http://h/cb", &[("code", "c")], None);
        assert_eq!(resp.headers()[http::header::LOCATION], "http://h/cb?code=c");
    }

    #[test]
    fn challenge_format() {
        assert!(is_valid_challenge(&"a".repeat(43)));
        assert!(!is_valid_challenge(&"a".repeat(42)));
        assert!(!is_valid_challenge(&"a".repeat(129)));
        assert!(!is_valid_challenge(&format!("{}+", "a".repeat(43))));
    }
}

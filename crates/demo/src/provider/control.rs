//! `/_standin/*`: remote control for e2e tests that run the stand-in in
//! another process. It has no authentication, so it answers loopback clients
//! only, even if someone binds the stand-in to a public address.

use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::{Body, PeerAddr};

use super::params::Params;
use super::responses::json;
use super::{Fault, FaultEndpoint, StandIn};

/// Hang faults longer than this are surely a typo in a test.
const MAX_HANG_MS: u64 = 600_000;
/// Hang when the test does not say how long: longer than any sane client timeout.
const DEFAULT_HANG_MS: u64 = 30_000;

pub(super) fn handle(standin: &StandIn, req: &Request<Incoming>) -> Response<Body> {
    // Requests handed to `StandIn::handle` directly (not via `serve`) carry no
    // peer address; those come from in-process tests and are trusted.
    let remote = req
        .extensions()
        .get::<PeerAddr>()
        .is_some_and(|PeerAddr(peer)| !peer.ip().to_canonical().is_loopback());
    if remote {
        return super::responses::api_error(
            StatusCode::NOT_FOUND,
            "The requested resource was not found.",
        );
    }
    let params = match Params::parse(req.uri().query().unwrap_or("").as_bytes()) {
        Ok(params) => params,
        Err(name) => return bad(&format!("`{name}` given more than once")),
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/_standin/stats") => json(StatusCode::OK, &standin.stats()),
        (&Method::POST, "/_standin/reset") => {
            standin.reset();
            ok()
        }
        (&Method::POST, "/_standin/fault") => match parse_fault(&params) {
            Ok((endpoint, fault)) => {
                standin.set_fault(endpoint, fault);
                ok()
            }
            Err(msg) => bad(&msg),
        },
        (&Method::POST, "/_standin/rotate_key") => {
            standin.rotate_signing_key();
            ok()
        }
        (&Method::POST, "/_standin/revoke") => match params.get("user") {
            Some(user) if StandIn::user(user).is_some() => {
                standin.revoke_user(user);
                ok()
            }
            Some(user) => json(
                StatusCode::NOT_FOUND,
                &json!({"error": format!("no demo user with id {user}")}),
            ),
            None => bad("missing `user`"),
        },
        _ => json(
            StatusCode::NOT_FOUND,
            &json!({"error": "unknown control route or method"}),
        ),
    }
}

/// `endpoint=token|profile&kind=500|429|html|hang|refuse|none[&ms=N]`; any
/// numeric kind other than 429 is a [`Fault::Status`].
fn parse_fault(params: &Params) -> Result<(FaultEndpoint, Option<Fault>), String> {
    let endpoint = match params.get("endpoint") {
        Some("token") => FaultEndpoint::Token,
        Some("profile") => FaultEndpoint::Profile,
        _ => return Err("`endpoint` must be token or profile".to_owned()),
    };
    let fault = match params.get("kind") {
        Some("none") => None,
        Some("429") => Some(Fault::TooManyRequests),
        Some("html") => Some(Fault::NonJson),
        Some("refuse") => Some(Fault::Refuse),
        Some("hang") => {
            let ms = match params.get("ms") {
                None => DEFAULT_HANG_MS,
                Some(ms) => ms
                    .parse::<u64>()
                    .map_err(|_| "`ms` must be a whole number".to_owned())?,
            };
            Some(Fault::Hang(Duration::from_millis(ms.min(MAX_HANG_MS))))
        }
        Some(kind) => match kind.parse::<u16>() {
            Ok(code) if (200..=599).contains(&code) => Some(Fault::Status(code)),
            _ => {
                return Err(
                    "`kind` must be a status 200-599, html, hang, refuse or none".to_owned(),
                );
            }
        },
        None => return Err("missing `kind`".to_owned()),
    };
    Ok((endpoint, fault))
}

fn ok() -> Response<Body> {
    json(StatusCode::OK, &json!({"ok": true}))
}

fn bad(message: &str) -> Response<Body> {
    json(StatusCode::BAD_REQUEST, &json!({"error": message}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(query: &str) -> Result<(FaultEndpoint, Option<Fault>), String> {
        parse_fault(&Params::parse(query.as_bytes()).unwrap())
    }

    #[test]
    fn parses_fault_kinds() {
        assert_eq!(
            fault("endpoint=token&kind=500"),
            Ok((FaultEndpoint::Token, Some(Fault::Status(500))))
        );
        assert_eq!(
            fault("endpoint=profile&kind=429"),
            Ok((FaultEndpoint::Profile, Some(Fault::TooManyRequests)))
        );
        assert_eq!(
            fault("endpoint=profile&kind=hang&ms=25"),
            Ok((
                FaultEndpoint::Profile,
                Some(Fault::Hang(Duration::from_millis(25)))
            ))
        );
        assert_eq!(
            fault("endpoint=token&kind=none"),
            Ok((FaultEndpoint::Token, None))
        );
        assert!(fault("endpoint=token&kind=99").is_err());
        assert!(fault("endpoint=nope&kind=500").is_err());
        assert!(fault("endpoint=token&kind=hang&ms=-1").is_err());
    }
}

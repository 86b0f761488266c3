//! The audit trail: one event per security decision, under the `rocketgate::audit` target,
//! with a fixed set of fields per event (documented as a stable schema in
//! `docs/observability.md`). Events written while a request is handled carry its
//! `request_id` and `trace_id` (`logging`). Users are named by their stable id only; no
//! event ever holds a token, a cookie, a code or an email address.

/// One decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A sign-in came back from Rocketpunch: `outcome` is `success` or why not (the
    /// `rocketgate_logins_total` outcomes).
    SignIn {
        user: Option<&'a str>,
        outcome: &'a str,
    },
    SignOut {
        user: Option<&'a str>,
    },
    /// A signed-in user was refused by the access policy.
    Denied {
        user: &'a str,
        route: Option<&'a str>,
        rule: &'a str,
    },
    /// A request needed its session refreshed; `joined` when another request's refresh did
    /// the token call.
    Refresh {
        user: &'a str,
        outcome: &'a str,
        joined: bool,
    },
    /// Every session of `user` was ended server-side.
    SessionRevoked {
        user: &'a str,
        by: &'a str,
        sessions: u64,
    },
    ConfigReloaded {
        result: &'a str,
        trigger: &'a str,
        hash: Option<&'a str>,
    },
}

/// Writes `event` at INFO.
pub fn record(event: Event<'_>) {
    const T: &str = "rocketgate::audit";
    match event {
        Event::SignIn { user, outcome } => tracing::info!(
            target: T, event = "sign_in", user = user.unwrap_or("-"), outcome, "sign_in"
        ),
        Event::SignOut { user } => {
            tracing::info!(target: T, event = "sign_out", user = user.unwrap_or("-"), "sign_out")
        }
        Event::Denied { user, route, rule } => tracing::info!(
            target: T, event = "denied", user, route = route.unwrap_or("-"), rule, "denied"
        ),
        Event::Refresh {
            user,
            outcome,
            joined,
        } => tracing::info!(target: T, event = "refresh", user, outcome, joined, "refresh"),
        Event::SessionRevoked { user, by, sessions } => tracing::info!(
            target: T, event = "session_revoked", user, by, sessions, "session_revoked"
        ),
        Event::ConfigReloaded {
            result,
            trigger,
            hash,
        } => tracing::info!(
            target: T,
            event = "config_reloaded",
            result,
            trigger,
            hash = hash.unwrap_or("-"),
            "config_reloaded"
        ),
    }
}

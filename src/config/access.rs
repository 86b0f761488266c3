//! `[access]`: who may pass (allow-lists), which paths need no sign-in, where browsers may
//! be sent back to, and whether API clients may present bearer tokens.

use url::Url;

use super::AccessSettings;
use super::problems::Problems;
use super::raw::RawAccess;
use crate::access::{DomainRule, EmailPolicy, RedirectPolicy, SkipRoute, SkipRoutes};

/// `route_hosts`: every `[[routes]]` host, also an allowed redirect target;
/// `has_jwks_url`: whether `provider.jwks_url` is set, which bearer tokens need;
/// `public_url` anchors the redirect policy.
pub(super) fn validate(
    p: &mut Problems,
    raw: RawAccess,
    has_jwks_url: bool,
    public_url: Option<&Url>,
    route_hosts: Vec<DomainRule>,
) -> Option<AccessSettings> {
    let emails = match EmailPolicy::new(raw.allowed_emails, raw.allowed_email_domains) {
        Ok(policy) => Some(policy),
        Err(e) => {
            p.add(&format!("access.{}", e.key()), e.to_string());
            None
        }
    };
    let mut routes = Vec::new();
    for (i, route) in raw.skip_auth_routes.iter().enumerate() {
        if let Some(r) = p.take(
            &format!("access.skip_auth_routes[{i}]"),
            route.parse::<SkipRoute>(),
        ) {
            routes.push(r);
        }
    }
    let mut rules = route_hosts;
    for (i, rule) in raw.redirect_domains.iter().enumerate() {
        if let Some(r) = p.take(
            &format!("access.redirect_domains[{i}]"),
            rule.parse::<DomainRule>(),
        ) {
            rules.push(r);
        }
    }
    let accept_bearer_tokens = raw.accept_bearer_tokens.unwrap_or(false);
    if accept_bearer_tokens && !has_jwks_url {
        p.add(
            "access.accept_bearer_tokens",
            "requires provider.jwks_url (Rocketpunch's signing keys) to verify tokens",
        );
    }
    Some(AccessSettings {
        emails: emails?,
        skip_routes: SkipRoutes::new(routes),
        redirects: RedirectPolicy::new(public_url?, rules),
        accept_bearer_tokens,
    })
}

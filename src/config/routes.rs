//! `[[routes]]`, `[groups]` and `[headers.claims]`: which app a request is for, who may use
//! it, and what the upstream learns about the user beyond the built-in identity headers.

use std::collections::BTreeMap;

use url::Url;

use super::ConfigProblem;
use super::problems::Problems;
use super::raw::{RawGroup, RawRoute};
use super::server::upstream_url;
use crate::access::{DomainRule, EmailPolicy, GroupDefinition, Groups, Rules};
use crate::identity::ClaimHeaders;
use crate::routes::{HostMatch, PathPrefix, Route, Routes};

/// The name logs and `explain` give the route of the top-level `upstream`.
pub const DEFAULT_ROUTE_NAME: &str = "upstream";

/// The route table: each `[[routes]]` entry in order, then the top-level `upstream` (when
/// set) as the route of last resort.
pub(super) fn routes(
    p: &mut Problems,
    raw: &[RawRoute],
    default: Option<&Url>,
) -> Option<Routes<Url>> {
    let mut table = Vec::with_capacity(raw.len() + 1);
    let mut complete = true;
    for (i, route) in raw.iter().enumerate() {
        match route_entry(p, i, route) {
            Some(route) => table.push(route),
            None => complete = false,
        }
    }
    if let Some(url) = default {
        table.push(Route {
            name: DEFAULT_ROUTE_NAME.into(),
            host: HostMatch::Any,
            path: PathPrefix::parse(None).ok()?,
            public: false,
            strip_prefix: false,
            preserve_host: true,
            rules: Rules::default(),
            target: url.clone(),
        });
    }
    complete.then(|| Routes::new(table))
}

fn route_entry(p: &mut Problems, i: usize, raw: &RawRoute) -> Option<Route<Url>> {
    let key = |field: &str| format!("routes[{i}].{field}");
    let host = p.take(&key("host"), HostMatch::parse(raw.host.as_deref()));
    let path = p.take(&key("path"), PathPrefix::parse(raw.path.as_deref()));
    let upstream = match raw.upstream.as_deref() {
        Some(url) => p.take(&key("upstream"), upstream_url(url)),
        None => {
            p.add(
                &key("upstream"),
                "is required: where this route's requests go",
            );
            None
        }
    };
    let emails = match EmailPolicy::new(
        raw.allowed_emails.clone(),
        raw.allowed_email_domains.clone(),
    ) {
        Ok(policy) => Some(policy),
        Err(e) => {
            p.add(&key(e.key()), e.to_string());
            None
        }
    };
    for group in &raw.allowed_groups {
        if !crate::access::policy::is_group_name(group) {
            p.add(
                &key("allowed_groups"),
                format!(
                    "`{group}` is not a group name (letters, digits, `-`, `_`, `.`, `:`, `/`, `@`)"
                ),
            );
        }
    }
    let public = raw.public.unwrap_or(false);
    let has_rules = !raw.allowed_groups.is_empty()
        || !raw.allowed_emails.is_empty()
        || !raw.allowed_email_domains.is_empty();
    if public && has_rules {
        p.add(
            &key("public"),
            "a public route lets everyone in: remove its allowed_groups, allowed_emails and \
             allowed_email_domains, or set public = false",
        );
        return None;
    }
    let strip_prefix = raw.strip_prefix.unwrap_or(false);
    if strip_prefix && path.as_ref().is_some_and(PathPrefix::is_root) {
        p.add(
            &key("strip_prefix"),
            "needs a path other than \"/\" to strip",
        );
    }
    Some(Route {
        name: format!("routes[{i}]").into(),
        host: host?,
        path: path?,
        public,
        strip_prefix,
        preserve_host: raw.preserve_host.unwrap_or(true),
        rules: Rules {
            emails: emails?,
            groups: raw.allowed_groups.clone(),
        },
        target: upstream?,
    })
}

/// `[groups]`, each by emails, email domains and Rocketpunch user ids.
pub(super) fn groups(p: &mut Problems, raw: &BTreeMap<String, RawGroup>) -> Option<Groups> {
    let definitions = raw.iter().map(|(name, g)| {
        (
            name.clone(),
            GroupDefinition {
                emails: g.emails.clone(),
                email_domains: g.email_domains.clone(),
                users: g.users.clone(),
            },
        )
    });
    Groups::new(definitions)
        .map_err(|(name, e)| p.add(&format!("groups.{name}"), e.to_string()))
        .ok()
}

/// `[headers.claims]`: header name to JSON pointer.
pub(super) fn claim_headers(
    p: &mut Problems,
    raw: &BTreeMap<String, String>,
) -> Option<ClaimHeaders> {
    ClaimHeaders::new(raw.iter().map(|(k, v)| (k.clone(), v.clone())))
        .map_err(|(name, e)| p.add(&format!("headers.claims.{name}"), e.to_string()))
        .ok()
}

/// Every route host is somewhere a browser may be sent back to after sign-in.
pub(super) fn redirect_rules(routes: &Routes<Url>) -> Vec<DomainRule> {
    routes
        .iter()
        .filter_map(|route| match &route.host {
            HostMatch::Any => None,
            HostMatch::Exact(name) => format!("{name}:*").parse().ok(),
            HostMatch::Wildcard(suffix) => format!("*{suffix}:*").parse().ok(),
        })
        .collect()
}

/// What is valid but almost certainly not meant: a route that can never be picked, a group
/// rule no user can meet.
pub(super) fn warnings(
    routes: &Routes<Url>,
    groups: &Groups,
    reported_groups: bool,
    public_url: &Url,
    cookie_domain: Option<&str>,
) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    let public_host = public_url.host_str().unwrap_or_default();
    for route in routes.iter() {
        let host = match &route.host {
            HostMatch::Exact(name) => name.as_str(),
            HostMatch::Wildcard(suffix) => &suffix[1..],
            HostMatch::Any => continue,
        };
        let under = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
        if host != public_host && !cookie_domain.is_some_and(under) {
            out.push(ConfigProblem {
                key: format!("{}.host", route.name),
                message: format!(
                    "{} is not public_url's host and not under cookie.domain: sessions made at \
                     public_url cannot reach it (set cookie.domain to a parent of both)",
                    route.host
                ),
                at: None,
            });
        }
    }
    for (later, earlier) in routes.shadowed() {
        out.push(ConfigProblem {
            key: later.name.to_string(),
            message: format!(
                "never matches: {} has the same host ({}) and path ({}) and is defined first",
                earlier.name, later.host, later.path
            ),
            at: None,
        });
    }
    for route in routes.iter() {
        for group in &route.rules.groups {
            if !reported_groups && !groups.names().any(|n| n == group) {
                out.push(ConfigProblem {
                    key: format!("{}.allowed_groups", route.name),
                    message: format!(
                        "group `{group}` is not in [groups] and provider.claims.groups is not set: \
                         no one can be in it"
                    ),
                    at: None,
                });
            }
        }
    }
    out
}

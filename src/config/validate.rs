//! Turning a [`RawConfig`] into a [`Config`]: each section validates into its own settings,
//! every problem is collected under its key, and a `Config` exists only when there is none.

use super::problems::Problems;
use super::raw::RawConfig;
use super::{
    Config, ConfigError, access, admin, assertion, cookie, provider, routes, server, session,
    tracing,
};

pub(super) fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let mut p = Problems::default();
    let (top, public_url) = server::top_level(&mut p, &raw);
    let has_jwks_url = raw.provider.jwks_url.is_some();
    let mut provider = provider::validate(&mut p, raw.provider);
    let default_upstream = top.as_ref().and_then(|t| t.upstream.as_ref());
    let table = routes::routes(&mut p, &raw.routes, default_upstream);
    let groups = routes::groups(&mut p, &raw.groups);
    let claim_headers = routes::claim_headers(&mut p, &raw.headers.claims);
    if let (Some(provider), Some(claim_headers)) = (provider.as_mut(), claim_headers.as_ref()) {
        provider.claims.extra = claim_headers.pointers();
    }
    let route_hosts = table
        .as_ref()
        .map(routes::redirect_rules)
        .unwrap_or_default();
    let cookie = cookie::validate(&mut p, raw.cookie, public_url.as_ref());
    let session = session::validate(&mut p, &raw.session);
    let admin = admin::validate(&mut p, raw.admin, session.as_ref().map(|s| &s.store));
    let tracing = tracing::validate(&mut p, &raw.tracing);
    let access = access::validate(
        &mut p,
        raw.access,
        has_jwks_url,
        public_url.as_ref(),
        route_hosts,
    );
    let limits = server::limits(&mut p, &raw.limits);
    let tls = server::tls(&mut p, raw.tls);
    let default_name = public_url
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "this application".to_owned());
    let pages = match super::pages::pages(raw.pages, &default_name) {
        Ok(pages) => Some(pages),
        Err(problems) => {
            for (key, message) in problems {
                p.add(&key, message);
            }
            None
        }
    };
    // Without a top-level upstream the audience defaults to the first route's upstream.
    let audience_upstream = default_upstream.cloned().or_else(|| {
        table
            .as_ref()
            .and_then(|t| t.iter().next().map(|r| r.target.clone()))
    });
    let assertion = assertion::validate(&mut p, raw.assertion, audience_upstream.as_ref());
    let sections = (table, groups, claim_headers);

    match (
        top, provider, cookie, session, access, limits, pages, sections,
    ) {
        (
            Some(top),
            Some(provider),
            Some(cookie),
            Some(session),
            Some(access),
            Some(limits),
            Some(pages),
            (Some(routes), Some(groups), Some(claim_headers)),
        ) if p.is_empty() => Ok(Config {
            warnings: routes::warnings(
                &routes,
                &groups,
                provider.claims.groups.is_some(),
                &top.public_url,
                cookie.domain.as_deref(),
            ),
            listen: top.listen,
            upstream: top.upstream,
            routes,
            groups,
            claim_headers,
            config_reload_interval: top.config_reload_interval,
            upstream_timeout: top.upstream_timeout,
            public_url: top.public_url,
            shutdown_delay: top.shutdown_delay,
            shutdown_timeout: top.shutdown_timeout,
            log_format: top.log_format,
            metrics_listen: top.metrics_listen,
            trusted_proxies: top.trusted_proxies,
            provider,
            cookie,
            session,
            access,
            headers: super::HeaderSettings {
                pass_access_token: raw.headers.pass_access_token.unwrap_or(false),
                pass_authorization_header: raw.headers.pass_authorization_header.unwrap_or(false),
            },
            limits,
            upstream_ca: top.upstream_ca,
            tls,
            pages,
            assertion,
            admin,
            tracing,
        }),
        _ => Err(p.into_error()),
    }
}

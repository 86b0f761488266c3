//! Turning a [`RawConfig`] into a [`Config`]: each section validates into its own settings,
//! every problem is collected under its key, and a `Config` exists only when there is none.

use super::problems::Problems;
use super::raw::RawConfig;
use super::{Config, ConfigError, access, admin, assertion, cookie, provider, server, session};

pub(super) fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let mut p = Problems::default();
    let (top, public_url) = server::top_level(&mut p, &raw);
    let has_jwks_url = raw.provider.jwks_url.is_some();
    let provider = provider::validate(&mut p, raw.provider);
    let cookie = cookie::validate(&mut p, raw.cookie, public_url.as_ref());
    let session = session::validate(&mut p, &raw.session);
    let admin = admin::validate(&mut p, raw.admin, session.as_ref().map(|s| &s.store));
    let access = access::validate(&mut p, raw.access, has_jwks_url, public_url.as_ref());
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
    let upstream = top.as_ref().map(|t| &t.upstream);
    let assertion = assertion::validate(&mut p, raw.assertion, upstream);

    match (top, provider, cookie, session, access, limits, pages) {
        (
            Some(top),
            Some(provider),
            Some(cookie),
            Some(session),
            Some(access),
            Some(limits),
            Some(pages),
        ) if p.is_empty() => Ok(Config {
            listen: top.listen,
            upstream: top.upstream,
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
        }),
        _ => Err(p.into_error()),
    }
}

//! Which settings a running proxy can take from a changed file, and which need a restart.
//!
//! A reload builds a new request-handling state from the new file but keeps the listeners,
//! the session store, the Rocketpunch client and the upstream connection pools of the old
//! one, so nobody's connection or session is dropped. The settings those are built from
//! cannot change without a restart; [`keep_restart_only`] puts their running values back
//! into the new file's settings and says which ones the file tried to change.

use super::raw::RawConfig;

/// Copies every restart-only setting of `running` into `new`, returning the keys whose value
/// `new` had changed (and which are therefore ignored until a restart).
pub fn keep_restart_only(running: &RawConfig, new: &mut RawConfig) -> Vec<&'static str> {
    let mut ignored = Vec::new();
    macro_rules! keep {
        ($($field:ident).+ => $key:literal) => {
            if running.$($field).+ != new.$($field).+ {
                ignored.push($key);
                new.$($field).+ = running.$($field).+.clone();
            }
        };
    }
    keep!(listen => "listen");
    keep!(public_url => "public_url");
    keep!(shutdown_delay => "shutdown_delay");
    keep!(shutdown_timeout => "shutdown_timeout");
    keep!(log_format => "log_format");
    keep!(upstream_timeout => "upstream_timeout");
    keep!(upstream_ca_file => "upstream_ca_file");
    keep!(metrics_listen => "metrics_listen");
    keep!(config_reload_interval => "config_reload_interval");
    keep!(provider => "provider");
    keep!(session => "session");
    keep!(limits => "limits");
    keep!(tls => "tls");
    keep!(assertion => "assertion");
    keep!(tracing => "tracing");
    keep!(cookie.expire => "cookie.expire");
    keep!(access.accept_bearer_tokens => "access.accept_bearer_tokens");
    ignored
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawRoute;

    fn running() -> RawConfig {
        let mut raw = RawConfig {
            listen: Some("127.0.0.1:4180".into()),
            upstream: Some("http://127.0.0.1:8080".into()),
            ..RawConfig::default()
        };
        raw.session.store = Some("cookie".into());
        raw.cookie.secret = Some("old".into());
        raw
    }

    #[test]
    fn reloadable_changes_pass_and_restart_only_ones_are_named_and_reverted() {
        let old = running();
        let mut new = old.clone();
        new.routes.push(RawRoute {
            path: Some("/api".into()),
            upstream: Some("http://127.0.0.1:9000".into()),
            ..RawRoute::default()
        });
        new.access.allowed_email_domains = vec!["example.com".into()];
        new.cookie.secret = Some("new".into());
        new.listen = Some("0.0.0.0:80".into());
        new.session.store = Some("redis".into());
        new.tls.cert_file = Some("/etc/cert.pem".into());
        new.cookie.expire = Some("1h".into());

        let ignored = keep_restart_only(&old, &mut new);

        assert_eq!(ignored, ["listen", "session", "tls", "cookie.expire"]);
        assert_eq!(new.listen, old.listen);
        assert_eq!(new.session, old.session);
        assert_eq!(new.tls, old.tls);
        assert_eq!(new.cookie.expire, None);
        assert_eq!(new.cookie.secret.as_deref(), Some("new"));
        assert_eq!(new.routes.len(), 1);
        assert_eq!(new.access.allowed_email_domains, ["example.com"]);
    }

    #[test]
    fn an_unchanged_file_ignores_nothing() {
        let old = running();
        let mut new = old.clone();
        assert!(keep_restart_only(&old, &mut new).is_empty());
        assert_eq!(new, old);
    }
}

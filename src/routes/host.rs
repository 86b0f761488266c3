//! The host half of a route: an exact name, a wildcard over its subdomains, or any host.

/// Why a route's `host` was refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("`{0}` is not a host name (letters, digits, `-` and `.`; no scheme, port or path)")]
    NotAHost(String),
    #[error("`{0}`: a wildcard is `*.` followed by a domain, and only as the first label")]
    BadWildcard(String),
}

/// Which hosts a route serves. Ordered by how specific it is, so the route table can prefer
/// an exact name to a wildcard, and a wildcard to no host at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// No `host`: every host.
    Any,
    /// `*.example.com`: one or more labels before `.example.com` (stored with the dot), never
    /// `example.com` itself.
    Wildcard(String),
    /// `grafana.example.com`, lower case.
    Exact(String),
}

impl HostMatch {
    /// `None` or `""` is [`HostMatch::Any`].
    pub fn parse(host: Option<&str>) -> Result<HostMatch, HostError> {
        let Some(host) = host.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(HostMatch::Any);
        };
        let lower = host.trim_end_matches('.').to_ascii_lowercase();
        match lower.strip_prefix("*.") {
            Some(domain) if is_name(domain) => Ok(HostMatch::Wildcard(format!(".{domain}"))),
            Some(_) => Err(HostError::BadWildcard(host.to_owned())),
            None if lower.contains('*') => Err(HostError::BadWildcard(host.to_owned())),
            None if is_name(&lower) => Ok(HostMatch::Exact(lower)),
            None => Err(HostError::NotAHost(host.to_owned())),
        }
    }

    /// Whether the request's host (already normalised by [`request_host`]) is served here.
    pub fn matches(&self, host: Option<&str>) -> bool {
        match (self, host) {
            (HostMatch::Any, _) => true,
            (HostMatch::Exact(name), Some(host)) => name == host,
            (HostMatch::Wildcard(suffix), Some(host)) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
            (_, None) => false,
        }
    }

    /// How specific the match is: an exact name, then a wildcard (the longer its domain, the
    /// more specific: `*.apps.example.com` beats `*.example.com`), then any host.
    pub fn rank(&self) -> (u8, usize) {
        match self {
            HostMatch::Any => (0, 0),
            HostMatch::Wildcard(suffix) => (1, suffix.len()),
            HostMatch::Exact(_) => (2, 0),
        }
    }
}

impl std::fmt::Display for HostMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostMatch::Any => f.write_str("any host"),
            HostMatch::Wildcard(suffix) => write!(f, "*{suffix}"),
            HostMatch::Exact(name) => f.write_str(name),
        }
    }
}

/// Labels of letters, digits, `-` and `_`, separated by single dots (IPv4 literals pass too).
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The host a request names, for matching: lower case, without port or trailing dot.
/// `None` for no host or one that is not a name (an IPv6 literal, junk), which then matches
/// only routes without a `host`.
pub fn request_host(authority: &str) -> Option<String> {
    let authority = authority.trim();
    if authority.starts_with('[') {
        return None;
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return None,
        None => authority,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    is_name(&host).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_wildcard_and_any() {
        assert_eq!(HostMatch::parse(None), Ok(HostMatch::Any));
        assert_eq!(HostMatch::parse(Some(" ")), Ok(HostMatch::Any));
        assert_eq!(
            HostMatch::parse(Some("Grafana.Example.com.")),
            Ok(HostMatch::Exact("grafana.example.com".into()))
        );
        assert_eq!(
            HostMatch::parse(Some("*.example.com")),
            Ok(HostMatch::Wildcard(".example.com".into()))
        );
        for bad in ["a.*.com", "*example.com", "*.", "*.*.com"] {
            assert!(
                matches!(HostMatch::parse(Some(bad)), Err(HostError::BadWildcard(_))),
                "{bad}"
            );
        }
        for bad in ["https://a.com", "a.com:8080", "a..com", "a.com/x", "a b"] {
            assert!(
                matches!(HostMatch::parse(Some(bad)), Err(HostError::NotAHost(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn wildcards_need_at_least_one_label_and_exact_names_match_whole() {
        let wild = HostMatch::parse(Some("*.example.com")).unwrap();
        assert!(wild.matches(Some("a.example.com")));
        assert!(wild.matches(Some("a.b.example.com")));
        assert!(!wild.matches(Some("example.com")));
        assert!(!wild.matches(Some("badexample.com")));
        assert!(!wild.matches(None));
        let exact = HostMatch::parse(Some("a.example.com")).unwrap();
        assert!(exact.matches(Some("a.example.com")));
        assert!(!exact.matches(Some("b.a.example.com")));
        assert!(HostMatch::Any.matches(None));
    }

    #[test]
    fn exact_beats_a_narrower_wildcard_beats_a_wider_one_beats_any() {
        let rank = |h: Option<&str>| HostMatch::parse(h).unwrap().rank();
        assert!(rank(Some("a.apps.example.com")) > rank(Some("*.apps.example.com")));
        assert!(rank(Some("*.apps.example.com")) > rank(Some("*.example.com")));
        assert!(rank(Some("*.example.com")) > rank(None));
    }

    #[test]
    fn request_hosts_lose_port_case_and_trailing_dot() {
        assert_eq!(
            request_host("App.Example.com:8443").as_deref(),
            Some("app.example.com")
        );
        assert_eq!(
            request_host("app.example.com.").as_deref(),
            Some("app.example.com")
        );
        assert_eq!(request_host("127.0.0.1:80").as_deref(), Some("127.0.0.1"));
        assert_eq!(request_host("[::1]:80"), None);
        assert_eq!(request_host("a.com:x"), None);
        assert_eq!(request_host("evil.com/x"), None);
        assert_eq!(request_host(""), None);
    }
}

//! Which app a request is for: `[[routes]]`, each a host and a path prefix with its own
//! upstream and policy, and the top-level `upstream` as the route of last resort.
//!
//! The most specific route wins: an exact host beats a wildcard, a wildcard beats a route
//! without a host; then the longest path prefix; ties go to the route defined first. Paths
//! are compared in their decoded, normalised form (`access::RequestPath`), so no encoding
//! moves a request from one route to another.

mod host;
mod prefix;

pub use host::{HostError, HostMatch, request_host};
pub use prefix::{PathPrefix, PrefixError};

use std::sync::Arc;

use crate::access::{EmailPolicy, Layer, Rules};

/// The layers a user must pass, in order: the baseline `[access]` lists, the route's, and
/// any narrower lists of one check (forward-auth's query). The proxy and `explain` both ask
/// this, so they cannot disagree.
pub fn layers<'a, T>(
    baseline: &'a EmailPolicy,
    route: Option<&'a Route<T>>,
    narrower: Option<&'a Rules>,
) -> impl Iterator<Item = Layer<'a>> {
    let baseline = Layer {
        scope: "access",
        emails: baseline,
        groups: &[],
    };
    [
        Some(baseline),
        route.map(|r| r.rules.layer(&r.name)),
        narrower.map(|rules| rules.layer("query")),
    ]
    .into_iter()
    .flatten()
}

/// One route: where its requests go, and who may send them.
#[derive(Debug, Clone)]
pub struct Route<T> {
    /// `routes[3]`, or `upstream` for the top-level default: what logs and `explain` say.
    pub name: Arc<str>,
    pub host: HostMatch,
    pub path: PathPrefix,
    /// No sign-in; client identity headers are still stripped.
    pub public: bool,
    /// The upstream sees the path without the route's prefix.
    pub strip_prefix: bool,
    /// The upstream sees the client's `Host` (else the upstream URL's host).
    pub preserve_host: bool,
    /// The route's own lists, which narrow the baseline `[access]` policy.
    pub rules: Rules,
    /// The upstream: a URL in the configuration, a pooled client in the running proxy.
    pub target: T,
}

impl<T> Route<T> {
    pub fn matches(&self, host: Option<&str>, path: &str) -> bool {
        self.host.matches(host) && self.path.matches(path)
    }

    /// Beats `other` when both match: host kind first, then path length.
    fn beats(&self, other: &Route<T>) -> bool {
        (self.host.rank(), self.path.specificity()) > (other.host.rank(), other.path.specificity())
    }
}

/// The route table, in the order the configuration defines it, the default last.
#[derive(Debug, Clone)]
pub struct Routes<T> {
    routes: Vec<Route<T>>,
}

impl<T> Routes<T> {
    pub fn new(routes: Vec<Route<T>>) -> Self {
        Routes { routes }
    }

    /// The route for a request: `host` from [`request_host`], `path` the decoded request
    /// path. `None`: no route serves it (404).
    pub fn pick(&self, host: Option<&str>, path: &str) -> Option<&Route<T>> {
        let mut best: Option<&Route<T>> = None;
        for route in &self.routes {
            if route.matches(host, path) && best.is_none_or(|b| route.beats(b)) {
                best = Some(route);
            }
        }
        best
    }

    /// Only the top-level upstream, with no rule of its own: the request path need not be
    /// decoded to know where it goes.
    pub fn is_single_default(&self) -> bool {
        matches!(self.routes.as_slice(), [only] if only.host == HostMatch::Any
            && only.path.is_root() && !only.public && !only.strip_prefix && only.rules.is_empty())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route<T>> {
        self.routes.iter()
    }

    /// The same table with each target replaced, for building clients from URLs.
    pub fn try_map<U, E>(
        &self,
        mut f: impl FnMut(&Route<T>) -> Result<U, E>,
    ) -> Result<Routes<U>, E> {
        let mut routes = Vec::with_capacity(self.routes.len());
        for route in &self.routes {
            routes.push(Route {
                name: route.name.clone(),
                host: route.host.clone(),
                path: route.path.clone(),
                public: route.public,
                strip_prefix: route.strip_prefix,
                preserve_host: route.preserve_host,
                rules: route.rules.clone(),
                target: f(route)?,
            });
        }
        Ok(Routes { routes })
    }

    /// Routes that can never be picked, each with the earlier route that always wins over
    /// it: the same host and the same path prefix, defined before.
    pub fn shadowed(&self) -> Vec<(&Route<T>, &Route<T>)> {
        let mut out = Vec::new();
        for (i, later) in self.routes.iter().enumerate() {
            if let Some(earlier) = self.routes[..i]
                .iter()
                .find(|e| e.host == later.host && e.path == later.path)
            {
                out.push((later, earlier));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, host: Option<&str>, path: &str) -> Route<&'static str> {
        Route {
            name: name.into(),
            host: HostMatch::parse(host).unwrap(),
            path: PathPrefix::parse(Some(path)).unwrap(),
            public: false,
            strip_prefix: false,
            preserve_host: true,
            rules: Rules::default(),
            target: "",
        }
    }

    fn table() -> Routes<&'static str> {
        Routes::new(vec![
            route("any-api", None, "/api"),
            route("wild", Some("*.example.com"), "/"),
            route("grafana", Some("grafana.example.com"), "/"),
            route("grafana-api", Some("grafana.example.com"), "/api"),
            route("wild-again", Some("*.example.com"), "/"),
            route("upstream", None, "/"),
        ])
    }

    fn pick(host: Option<&str>, path: &str) -> Option<String> {
        table().pick(host, path).map(|r| r.name.to_string())
    }

    #[test]
    fn exact_beats_wildcard_beats_any_then_longest_path_then_first() {
        let grafana = Some("grafana.example.com");
        assert_eq!(pick(grafana, "/api/x").as_deref(), Some("grafana-api"));
        assert_eq!(pick(grafana, "/apix").as_deref(), Some("grafana"));
        // An exact host with a short path still beats any host with a longer one.
        assert_eq!(pick(grafana, "/").as_deref(), Some("grafana"));
        assert_eq!(
            pick(Some("docs.example.com"), "/api").as_deref(),
            Some("wild")
        );
        assert_eq!(
            pick(Some("other.org"), "/api/v1").as_deref(),
            Some("any-api")
        );
        assert_eq!(pick(Some("other.org"), "/x").as_deref(), Some("upstream"));
        assert_eq!(pick(None, "/x").as_deref(), Some("upstream"));
    }

    #[test]
    fn no_route_is_none() {
        let table = Routes::new(vec![route("grafana", Some("grafana.example.com"), "/")]);
        assert!(table.pick(Some("other.org"), "/").is_none());
        assert!(table.pick(None, "/").is_none());
    }

    #[test]
    fn a_later_route_with_the_same_host_and_path_is_shadowed() {
        let table = table();
        let shadowed: Vec<(&str, &str)> = table
            .shadowed()
            .into_iter()
            .map(|(later, earlier)| (&*later.name, &*earlier.name))
            .collect();
        assert_eq!(shadowed, [("wild-again", "wild")]);
    }

    #[test]
    fn only_a_plain_default_is_the_fast_path() {
        assert!(Routes::new(vec![route("upstream", None, "/")]).is_single_default());
        assert!(!table().is_single_default());
    }
}

//! Prometheus metrics, named like oauth2-proxy's so existing dashboards translate.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

/// How a login ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum LoginOutcome {
    Success,
    Denied,
    Forbidden,
    InvalidState,
    ProviderError,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: LoginOutcome,
}

/// How a token refresh ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum RefreshOutcome {
    Ok,
    Fatal,
    Transient,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshLabel {
    outcome: RefreshOutcome,
}

/// Whether a signed upstream assertion came from the cache.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum CacheResult {
    Hit,
    Miss,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabel {
    result: CacheResult,
}

/// What became of a Rocketpunch access token presented as `Authorization: Bearer`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum BearerOutcome {
    Accepted,
    Invalid,
    Unavailable,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BearerLabel {
    outcome: BearerOutcome,
}

/// How a fetch of Rocketpunch's JWKS ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum FetchOutcome {
    Ok,
    Failed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabel {
    outcome: FetchOutcome,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<CodeLabel, Counter>,
    latency: Histogram,
    logins: Family<OutcomeLabel, Counter>,
    refreshes: Family<RefreshLabel, Counter>,
    refresh_latency: Histogram,
    refresh_joins: Counter,
    refresh_grace_hits: Counter,
    assertion_cache: Family<CacheLabel, Counter>,
    bearer_tokens: Family<BearerLabel, Counter>,
    jwks_fetches: Family<FetchLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rocketgate");
        let requests = Family::<CodeLabel, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by status code",
            requests.clone(),
        );
        let latency = Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        registry.register(
            "request_duration_seconds",
            "Time to the response head, including the upstream",
            latency.clone(),
        );
        let logins = Family::<OutcomeLabel, Counter>::default();
        registry.register("logins", "Completed logins, by outcome", logins.clone());
        let refreshes = Family::<RefreshLabel, Counter>::default();
        registry.register(
            "refreshes",
            "Token refreshes sent to Rocketpunch, by outcome",
            refreshes.clone(),
        );
        let refresh_latency =
            Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        registry.register(
            "refresh_duration_seconds",
            "Time a refresh took, token call and profile",
            refresh_latency.clone(),
        );
        let refresh_joins = Counter::default();
        registry.register(
            "refresh_joins",
            "Requests that waited for a refresh already running for their session",
            refresh_joins.clone(),
        );
        let refresh_grace_hits = Counter::default();
        registry.register(
            "refresh_grace_hits",
            "Requests with a just-rotated cookie served from the finished refresh",
            refresh_grace_hits.clone(),
        );
        let assertion_cache = Family::<CacheLabel, Counter>::default();
        registry.register(
            "assertion_cache_lookups",
            "Upstream assertions served from the cache (Hit) or signed (Miss)",
            assertion_cache.clone(),
        );
        let bearer_tokens = Family::<BearerLabel, Counter>::default();
        registry.register(
            "bearer_tokens",
            "Bearer access tokens presented without a session, by outcome",
            bearer_tokens.clone(),
        );
        let jwks_fetches = Family::<FetchLabel, Counter>::default();
        registry.register(
            "jwks_fetches",
            "Fetches of Rocketpunch's signing keys, by outcome",
            jwks_fetches.clone(),
        );
        Self {
            registry,
            assertion_cache,
            bearer_tokens,
            jwks_fetches,
            requests,
            latency,
            logins,
            refreshes,
            refresh_latency,
            refresh_joins,
            refresh_grace_hits,
        }
    }

    pub fn request(&self, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&CodeLabel { code: status })
            .inc();
        self.latency.observe(seconds);
    }

    pub fn login(&self, outcome: LoginOutcome) {
        self.logins.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn refresh(&self, outcome: RefreshOutcome, seconds: f64) {
        self.refreshes
            .get_or_create(&RefreshLabel { outcome })
            .inc();
        self.refresh_latency.observe(seconds);
    }

    pub fn refresh_join(&self) {
        self.refresh_joins.inc();
    }

    pub fn refresh_grace_hit(&self) {
        self.refresh_grace_hits.inc();
    }

    pub fn assertion_cache(&self, result: CacheResult) {
        self.assertion_cache
            .get_or_create(&CacheLabel { result })
            .inc();
    }

    pub fn bearer(&self, outcome: BearerOutcome) {
        self.bearer_tokens
            .get_or_create(&BearerLabel { outcome })
            .inc();
    }

    pub fn jwks_fetch(&self, outcome: FetchOutcome) {
        self.jwks_fetches
            .get_or_create(&FetchLabel { outcome })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_counters_by_label() {
        let m = Metrics::new();
        m.request(200, 0.001);
        m.request(200, 0.002);
        m.login(LoginOutcome::Denied);
        let text = m.encode();
        assert!(
            text.contains("rocketgate_requests_total{code=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("rocketgate_logins_total{outcome=\"Denied\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("rocketgate_request_duration_seconds_count 2"),
            "{text}"
        );
    }
}

//! Prometheus metrics, all prefixed `rocketgate_`, with low-cardinality labels (status class,
//! route kind, outcome) so a dashboard stays cheap whatever traffic looks like.

use std::sync::OnceLock;

use http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

mod process;
mod requests;

use requests::Requests;

/// Which part of rocketgate answered a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    Proxy,
    Auth,
    Login,
    Userinfo,
    Health,
    Metrics,
    Jwks,
    Admin,
    Other,
}

impl RouteKind {
    fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Proxy => "proxy",
            RouteKind::Auth => "auth",
            RouteKind::Login => "login",
            RouteKind::Userinfo => "userinfo",
            RouteKind::Health => "health",
            RouteKind::Metrics => "metrics",
            RouteKind::Jwks => "jwks",
            RouteKind::Admin => "admin",
            RouteKind::Other => "other",
        }
    }
}

/// How a login ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    Denied,
    Forbidden,
    InvalidState,
    /// Rocketpunch refused the code (expired, reused): the user just signs in again.
    InvalidCode,
    ProviderError,
    StoreUnavailable,
}

impl LoginOutcome {
    /// Every value, so each series is exported (at 0) from the start.
    const ALL: [LoginOutcome; 7] = [
        LoginOutcome::Success,
        LoginOutcome::Denied,
        LoginOutcome::Forbidden,
        LoginOutcome::InvalidState,
        LoginOutcome::InvalidCode,
        LoginOutcome::ProviderError,
        LoginOutcome::StoreUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Success => "success",
            LoginOutcome::Denied => "denied",
            LoginOutcome::Forbidden => "forbidden",
            LoginOutcome::InvalidState => "invalid_state",
            LoginOutcome::InvalidCode => "invalid_code",
            LoginOutcome::ProviderError => "provider_error",
            LoginOutcome::StoreUnavailable => "store_unavailable",
        }
    }
}

/// How a token refresh ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    Ok,
    Fatal,
    Transient,
}

impl RefreshOutcome {
    /// Every value, so each series is exported (at 0) from the start.
    const ALL: [RefreshOutcome; 3] = [
        RefreshOutcome::Ok,
        RefreshOutcome::Fatal,
        RefreshOutcome::Transient,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefreshOutcome::Ok => "ok",
            RefreshOutcome::Fatal => "fatal",
            RefreshOutcome::Transient => "transient",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

/// The commit this binary was built from: `ROCKETGATE_COMMIT` in the build's environment
/// (the Dockerfile and release builds set it), else `unknown`.
pub const BUILD_COMMIT: &str = match option_env!("ROCKETGATE_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HashLabel {
    hash: String,
}

/// How a configuration reload ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new file is in effect for new requests.
    Applied,
    /// The new file was invalid (or unreadable); the previous one keeps serving.
    Refused,
}

impl ReloadResult {
    const ALL: [ReloadResult; 2] = [ReloadResult::Applied, ReloadResult::Refused];

    fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Applied => "applied",
            ReloadResult::Refused => "refused",
        }
    }
}

const ROUTE_KINDS: usize = 9;
const _: () = assert!(
    RouteKind::Other as usize + 1 == ROUTE_KINDS,
    "RouteKind::Other is last"
);

/// Why a request could not reach its upstream, as `rocketgate_upstream_errors_total` and
/// the request line's `upstream_error=` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// No connection could be made: refused, unresolvable, unreachable.
    Refused,
    /// The connection was reset or closed before the response head.
    Reset,
    /// No response head within `upstream_timeout` (or the connect timeout).
    Timeout,
    /// The TLS handshake failed (certificate, protocol version, ALPN).
    Tls,
    /// The upstream broke HTTP (an unparsable response head, an HTTP/2 protocol error).
    Protocol,
}

impl UpstreamErrorKind {
    /// Every value, so each series is exported (at 0) from the start.
    pub const ALL: [UpstreamErrorKind; 5] = [
        UpstreamErrorKind::Refused,
        UpstreamErrorKind::Reset,
        UpstreamErrorKind::Timeout,
        UpstreamErrorKind::Tls,
        UpstreamErrorKind::Protocol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamErrorKind::Refused => "refused",
            UpstreamErrorKind::Reset => "reset",
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Tls => "tls",
            UpstreamErrorKind::Protocol => "protocol",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// Whether a signed upstream assertion came from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    Miss,
}

impl CacheResult {
    /// Every value, so each series is exported (at 0) from the start.
    const ALL: [CacheResult; 2] = [CacheResult::Hit, CacheResult::Miss];

    fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
        }
    }
}

/// What became of a Rocketpunch access token presented as `Authorization: Bearer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BearerOutcome {
    Accepted,
    Invalid,
    Unavailable,
}

impl BearerOutcome {
    /// Every value, so each series is exported (at 0) from the start.
    const ALL: [BearerOutcome; 3] = [
        BearerOutcome::Accepted,
        BearerOutcome::Invalid,
        BearerOutcome::Unavailable,
    ];

    fn as_str(self) -> &'static str {
        match self {
            BearerOutcome::Accepted => "accepted",
            BearerOutcome::Invalid => "invalid",
            BearerOutcome::Unavailable => "unavailable",
        }
    }
}

/// How a fetch of Rocketpunch's JWKS ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    Ok,
    Failed,
}

impl FetchOutcome {
    /// Every value, so each series is exported (at 0) from the start.
    const ALL: [FetchOutcome; 2] = [FetchOutcome::Ok, FetchOutcome::Failed];

    fn as_str(self) -> &'static str {
        match self {
            FetchOutcome::Ok => "ok",
            FetchOutcome::Failed => "failed",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Requests,
    /// Handles into `session_cache`, taken on first use: counting is then one atomic add,
    /// not a locked, SipHashed family look-up.
    session_cache_counters: [OnceLock<Counter>; 2],
    upstream_errors: Family<KindLabel, Counter>,
    trace_spans_dropped: Counter,
    latency: Histogram,
    upstream_latency: Histogram,
    logins: Family<OutcomeLabel, Counter>,
    refreshes: Family<OutcomeLabel, Counter>,
    refresh_latency: Histogram,
    refresh_joins: Counter,
    refresh_grace_hits: Counter,
    session_cache: Family<ResultLabel, Counter>,
    refresh_remote_joins: Counter,
    store_errors: Counter,
    store_up: Gauge,
    open_connections: Gauge,
    assertion_cache: Family<ResultLabel, Counter>,
    bearer_tokens: Family<OutcomeLabel, Counter>,
    jwks_fetches: Family<OutcomeLabel, Counter>,
    config_reloads: Family<ResultLabel, Counter>,
    config_info: Family<HashLabel, Gauge>,
    /// The hash `config_info` currently reports, so a reload can retire its series.
    config_hash: std::sync::Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Self {
        // The process_* metrics keep the names every Prometheus client gives them; all of
        // rocketgate's own are prefixed.
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("rocketgate");
        let requests = Requests::new();
        registry.register(
            "requests",
            "Requests answered, by status class, status code, method and route kind",
            requests.family(),
        );
        let upstream_errors = Family::<KindLabel, Counter>::default();
        registry.register(
            "upstream_errors",
            "Requests that could not reach their upstream, by kind",
            upstream_errors.clone(),
        );
        for kind in UpstreamErrorKind::ALL {
            let _ = upstream_errors.get_or_create(&KindLabel {
                kind: kind.as_str(),
            });
        }
        let trace_spans_dropped = Counter::default();
        registry.register(
            "trace_spans_dropped",
            "Trace spans dropped because the export queue was full or the collector failed",
            trace_spans_dropped.clone(),
        );
        let latency = Histogram::new(LATENCY_BUCKETS);
        registry.register(
            "request_duration_seconds",
            "Time to the response head, including the upstream",
            latency.clone(),
        );
        let upstream_latency = Histogram::new(LATENCY_BUCKETS);
        registry.register(
            "upstream_duration_seconds",
            "Time from forwarding a request to the upstream's response head",
            upstream_latency.clone(),
        );
        let logins = Family::<OutcomeLabel, Counter>::default();
        registry.register("logins", "Completed logins, by outcome", logins.clone());
        let refreshes = Family::<OutcomeLabel, Counter>::default();
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
        let session_cache = Family::<ResultLabel, Counter>::default();
        registry.register(
            "session_cache_lookups",
            "Session cookie look-ups in the opened-session cache, by result (hit, miss)",
            session_cache.clone(),
        );
        let refresh_remote_joins = Counter::default();
        registry.register(
            "refresh_remote_joins",
            "Refreshes taken from another replica through Redis instead of a token call",
            refresh_remote_joins.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "session_store_errors",
            "Session store (Redis) operations that failed or timed out",
            store_errors.clone(),
        );
        let store_up = Gauge::default();
        registry.register(
            "session_store_up",
            "1 while the session store answers (always 1 for cookie sessions)",
            store_up.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections currently open",
            open_connections.clone(),
        );
        let assertion_cache = Family::<ResultLabel, Counter>::default();
        registry.register(
            "assertion_cache_lookups",
            "Upstream assertions served from the cache (hit) or signed (miss)",
            assertion_cache.clone(),
        );
        let bearer_tokens = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "bearer_tokens",
            "Bearer access tokens presented without a session, by outcome",
            bearer_tokens.clone(),
        );
        let jwks_fetches = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "jwks_fetches",
            "Fetches of Rocketpunch's signing keys, by outcome",
            jwks_fetches.clone(),
        );
        let config_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads (SIGHUP or a changed file), by result",
            config_reloads.clone(),
        );
        // Every labelled series with a known label set from the start, so an alert on
        // refusals or failures sees 0 rather than no data.
        for result in ReloadResult::ALL {
            let _ = config_reloads.get_or_create(&ResultLabel {
                result: result.as_str(),
            });
        }
        for outcome in LoginOutcome::ALL {
            let _ = logins.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        for outcome in RefreshOutcome::ALL {
            let _ = refreshes.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        for outcome in BearerOutcome::ALL {
            let _ = bearer_tokens.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        for outcome in FetchOutcome::ALL {
            let _ = jwks_fetches.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        for result in CacheResult::ALL {
            let _ = assertion_cache.get_or_create(&ResultLabel {
                result: result.as_str(),
            });
            let _ = session_cache.get_or_create(&ResultLabel {
                result: result.as_str(),
            });
        }
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "build_info",
            "1, labelled with the version and the commit this binary was built from",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: BUILD_COMMIT,
            })
            .set(1);
        let config_info = Family::<HashLabel, Gauge>::default();
        registry.register(
            "config_info",
            "1 for the hash of the configuration file in effect",
            config_info.clone(),
        );
        Self {
            registry: root,
            upstream_errors,
            trace_spans_dropped,
            config_reloads,
            config_info,
            config_hash: std::sync::Mutex::new(None),
            session_cache_counters: Default::default(),
            assertion_cache,
            bearer_tokens,
            jwks_fetches,
            requests,
            latency,
            upstream_latency,
            logins,
            refreshes,
            refresh_latency,
            refresh_joins,
            refresh_grace_hits,
            session_cache,
            refresh_remote_joins,
            store_errors,
            store_up,
            open_connections,
        }
    }

    pub fn request(&self, status: u16, method: &Method, route: RouteKind, seconds: f64) {
        self.requests.count(status, method, route);
        self.latency.observe(seconds);
    }

    pub fn upstream_error(&self, kind: UpstreamErrorKind) {
        self.upstream_errors
            .get_or_create(&KindLabel {
                kind: kind.as_str(),
            })
            .inc();
    }

    pub fn trace_spans_dropped(&self, spans: u64) {
        self.trace_spans_dropped.inc_by(spans);
    }

    pub fn upstream(&self, seconds: f64) {
        self.upstream_latency.observe(seconds);
    }

    pub fn login(&self, outcome: LoginOutcome) {
        self.logins
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub fn refresh(&self, outcome: RefreshOutcome, seconds: f64) {
        self.refreshes
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
        self.refresh_latency.observe(seconds);
    }

    pub fn refresh_join(&self) {
        self.refresh_joins.inc();
    }

    pub fn refresh_grace_hit(&self) {
        self.refresh_grace_hits.inc();
    }

    pub fn session_cache(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.session_cache_counters[usize::from(hit)]
            .get_or_init(|| {
                self.session_cache
                    .get_or_create(&ResultLabel { result })
                    .clone()
            })
            .inc();
    }

    pub fn refresh_remote_join(&self) {
        self.refresh_remote_joins.inc();
    }

    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    pub fn store_up(&self, up: bool) {
        self.store_up.set(i64::from(up));
    }

    pub fn connection_opened(&self) {
        self.open_connections.inc();
    }

    pub fn connection_closed(&self) {
        self.open_connections.dec();
    }

    pub fn assertion_cache(&self, result: CacheResult) {
        self.assertion_cache
            .get_or_create(&ResultLabel {
                result: result.as_str(),
            })
            .inc();
    }

    pub fn bearer(&self, outcome: BearerOutcome) {
        self.bearer_tokens
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub fn config_reload(&self, result: ReloadResult) {
        self.config_reloads
            .get_or_create(&ResultLabel {
                result: result.as_str(),
            })
            .inc();
    }

    /// Reports `hash` as the configuration in effect, retiring the previous one's series.
    pub fn config_in_effect(&self, hash: &str) {
        let mut current = self
            .config_hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = current.replace(hash.to_owned()) {
            self.config_info.remove(&HashLabel { hash: old });
        }
        self.config_info
            .get_or_create(&HashLabel {
                hash: hash.to_owned(),
            })
            .set(1);
    }

    pub fn jwks_fetch(&self, outcome: FetchOutcome) {
        self.jwks_fetches
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
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
        m.request(200, &Method::GET, RouteKind::Proxy, 0.001);
        m.request(200, &Method::GET, RouteKind::Proxy, 0.002);
        m.request(502, &Method::POST, RouteKind::Proxy, 0.002);
        m.upstream_error(UpstreamErrorKind::Refused);
        m.login(LoginOutcome::Denied);
        m.refresh(RefreshOutcome::Transient, 0.1);
        m.session_cache(true);
        m.connection_opened();
        let text = m.encode();
        for line in [
            "rocketgate_requests_total{class=\"2xx\",code=\"200\",method=\"GET\",route=\"proxy\"} 2",
            "rocketgate_requests_total{class=\"5xx\",code=\"502\",method=\"POST\",route=\"proxy\"} 1",
            "rocketgate_upstream_errors_total{kind=\"refused\"} 1",
            "rocketgate_logins_total{outcome=\"denied\"} 1",
            "rocketgate_refreshes_total{outcome=\"transient\"} 1",
            "rocketgate_session_cache_lookups_total{result=\"hit\"} 1",
            "rocketgate_open_connections 1",
            "rocketgate_request_duration_seconds_count 3",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn every_known_series_is_exported_at_zero_from_the_start() {
        let text = Metrics::new().encode();
        for series in [
            "rocketgate_logins_total{outcome=\"success\"} 0",
            "rocketgate_logins_total{outcome=\"store_unavailable\"} 0",
            "rocketgate_refreshes_total{outcome=\"ok\"} 0",
            "rocketgate_refreshes_total{outcome=\"fatal\"} 0",
            "rocketgate_refreshes_total{outcome=\"transient\"} 0",
            "rocketgate_bearer_tokens_total{outcome=\"invalid\"} 0",
            "rocketgate_jwks_fetches_total{outcome=\"failed\"} 0",
            "rocketgate_session_cache_lookups_total{result=\"hit\"} 0",
            "rocketgate_assertion_cache_lookups_total{result=\"miss\"} 0",
            "rocketgate_upstream_errors_total{kind=\"refused\"} 0",
            "rocketgate_upstream_errors_total{kind=\"reset\"} 0",
            "rocketgate_upstream_errors_total{kind=\"timeout\"} 0",
            "rocketgate_upstream_errors_total{kind=\"tls\"} 0",
            "rocketgate_upstream_errors_total{kind=\"protocol\"} 0",
            "rocketgate_trace_spans_dropped_total 0",
        ] {
            assert!(text.contains(series), "{series} missing in\n{text}");
        }
        let build = format!(
            "rocketgate_build_info{{version=\"{}\",commit=\"{BUILD_COMMIT}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&build), "{build} missing in\n{text}");
    }

    #[test]
    fn reloads_start_at_zero_and_one_config_hash_is_reported() {
        let m = Metrics::new();
        let text = m.encode();
        assert!(text.contains("rocketgate_config_reloads_total{result=\"applied\"} 0"));
        assert!(text.contains("rocketgate_config_reloads_total{result=\"refused\"} 0"));
        m.config_in_effect("aaaa");
        m.config_in_effect("bbbb");
        m.config_reload(ReloadResult::Applied);
        let text = m.encode();
        assert!(
            text.contains("rocketgate_config_info{hash=\"bbbb\"} 1"),
            "{text}"
        );
        assert!(!text.contains("aaaa"), "{text}");
        assert!(text.contains("rocketgate_config_reloads_total{result=\"applied\"} 1"));
    }
}

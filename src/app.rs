//! What every request handler shares: validated settings and the long-lived clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::assertion::Signer;
use crate::bearer::BearerVerifier;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::oauth::OAuthClient;
use crate::pages::Pages;
use crate::proxy::{ProxyError, Upstream, UpstreamSettings};
use crate::refresh::{RefreshPolicy, Refresher};
use crate::routes::Routes;
use crate::session::redis::{LinkError, RedisStore};
use crate::session::{CookieCodec, Sealer, Sessions};
use crate::trace::Tracer;

/// How long a login may take from `/oauth2/start` to the callback.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);

/// Why the proxy cannot be assembled from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("upstream: {0}")]
    Upstream(#[from] ProxyError),
    #[error("session.redis_url: {0}")]
    Redis(#[from] LinkError),
}

pub struct App {
    pub config: Config,
    /// Cookie names, attributes and sealing: for the session cookie and the login cookies.
    pub codec: CookieCodec,
    /// Where sessions live (in the cookie, or in Redis behind a ticket cookie).
    pub sessions: Sessions,
    pub oauth: Arc<OAuthClient>,
    /// The route table with a pooled upstream per route (all sharing one set of pools).
    pub routes: Routes<Upstream>,
    pub metrics: Arc<Metrics>,
    pub refresher: Arc<Refresher>,
    /// Trace context for every request; spans to the collector when `[tracing]` has one.
    pub tracer: Arc<Tracer>,
    pub pages: Pages,
    /// States already used at the callback: a replayed callback is refused even if the
    /// attacker also kept the CSRF cookie. Entries outlive the login window.
    pub used_states: moka::future::Cache<String, ()>,
    /// Signs `X-Rocketgate-Assertion`; `None` when assertions are off.
    pub assertion: Option<Arc<Signer>>,
    /// Verifies `Authorization: Bearer` tokens; `None` unless `access.accept_bearer_tokens`.
    pub bearer: Option<Arc<BearerVerifier>>,
    /// The connection pools every route's upstream is a view of; a reload keeps them.
    pools: Upstream,
    draining: Arc<AtomicBool>,
}

/// The connection pools, built from the first route's settings (every route shares them).
fn pools(config: &Config) -> Result<Upstream, ProxyError> {
    let url = config
        .routes
        .iter()
        .next()
        .map(|route| route.target.clone())
        // Validation guarantees a route; the public URL only stands in so this cannot panic.
        .unwrap_or_else(|| config.public_url.clone());
    Upstream::new(&UpstreamSettings {
        url,
        timeout: config.upstream_timeout,
        roots: config.upstream_ca.clone(),
        max_idle: config.limits.max_connections,
        body_gap: config.limits.idle_timeout,
        h2_keepalive: config.limits.idle_timeout,
    })
}

fn codec(config: &Config) -> CookieCodec {
    CookieCodec::new(
        config.cookie.name.clone(),
        Sealer::new(config.cookie.keys.clone()),
        config.cookie.secure,
        config.cookie.same_site,
        config.cookie.expire,
    )
    .with_domain(config.cookie.domain.clone())
}

impl App {
    pub fn new(config: Config) -> Result<Arc<Self>, AppError> {
        let codec = codec(&config);
        let pools = pools(&config)?;
        let routes = config
            .routes
            .try_map(|route| pools.to(&route.target, route.preserve_host))?;
        let oauth = Arc::new(OAuthClient::new(&config.provider, config.redirect_uri()));
        let metrics = Arc::new(Metrics::new());
        let tracer = Tracer::new(&config.tracing, metrics.clone());
        // A refresh is a token call and a profile read, each bounded by the provider timeout.
        let refresh_bound = config.provider.timeout * 2 + Duration::from_secs(5);
        let redis = match config.session.redis() {
            Some(settings) => {
                let store = Arc::new(RedisStore::new(
                    settings,
                    config.cookie.expire,
                    refresh_bound,
                    metrics.clone(),
                )?);
                store.watch_health();
                Some(store)
            }
            None => {
                metrics.store_up(true);
                None
            }
        };
        let sessions = match &redis {
            Some(store) => Sessions::in_redis(codec.clone(), store.clone()),
            None => Sessions::in_cookies(codec.clone()),
        };
        let refresher = Arc::new(Refresher::new(
            oauth.clone(),
            metrics.clone(),
            sessions.clone(),
            RefreshPolicy {
                refresh_before: config.session.refresh_before,
                refresh_profile: config.session.refresh_profile,
                rotation_grace: config.session.rotation_grace,
                bound: refresh_bound,
                lifetime: config.cookie.expire,
            },
        ));
        let assertion = config.assertion.as_ref().map(|settings| {
            if settings.generated_key {
                tracing::warn!(
                    kid = settings.key.kid(),
                    "assertion.key_file is not set: signing assertions with a key generated at \
                     start; replicas will each have their own and restarts change it"
                );
            }
            Arc::new(Signer::new(settings, &config.public_url, metrics.clone()))
        });
        let bearer = config
            .access
            .accept_bearer_tokens
            .then(|| BearerVerifier::new(&config.provider, oauth.clone(), metrics.clone()))
            .flatten()
            .map(Arc::new);
        Ok(Arc::new(Self {
            assertion,
            bearer,
            oauth,
            codec,
            sessions,
            routes,
            metrics,
            refresher,
            tracer,
            pages: Pages::new(&config.pages),
            used_states: moka::future::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(LOGIN_TTL + Duration::from_secs(60))
                .build(),
            pools,
            draining: Arc::new(AtomicBool::new(false)),
            config,
        }))
    }

    /// The state for `config`, a reload of this one: routes, policy, headers, pages and
    /// cookie keys from `config`; the session store, Rocketpunch client, refreshes in flight,
    /// used login states, signing keys, connection pools and draining flag shared with
    /// `self`, so requests in flight and sessions carry on. `config`'s restart-only settings
    /// must equal this one's (`config::reload::keep_restart_only`).
    pub fn reload(&self, config: Config) -> Result<Arc<Self>, AppError> {
        let codec = codec(&config);
        let routes = config
            .routes
            .try_map(|route| self.pools.to(&route.target, route.preserve_host))?;
        let sessions = match self.sessions.redis() {
            Some(store) => Sessions::in_redis(codec.clone(), store.clone()),
            None => Sessions::in_cookies(codec.clone()),
        };
        Ok(Arc::new(Self {
            assertion: self.assertion.clone(),
            bearer: self.bearer.clone(),
            oauth: self.oauth.clone(),
            codec,
            sessions,
            routes,
            metrics: self.metrics.clone(),
            refresher: self.refresher.clone(),
            tracer: self.tracer.clone(),
            pages: Pages::new(&config.pages),
            used_states: self.used_states.clone(),
            pools: self.pools.clone(),
            draining: self.draining.clone(),
            config,
        }))
    }

    /// From now on `/ready` fails so load balancers stop sending new traffic.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Whether `/ready` succeeds: not draining, and the session store answers.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.sessions.is_ready()
    }
}

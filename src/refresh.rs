//! Proactive token refresh that never logs a user out by accident.
//!
//! Rocketpunch rotates refresh tokens: each refresh revokes the one it used, and reusing it is
//! `invalid_grant`. So one session must cause exactly one token call however many requests
//! arrive at once, and a browser still holding the previous cookie for a moment (a second tab,
//! a response in flight) must be served from that same call.
//!
//! The design: a moka cache keyed by a hash of the refresh token holds a *shared handle to a
//! spawned task* that performs the refresh. moka's `or_insert_with` runs its init future in
//! whichever request task got there first; if that client disconnects, the init future is
//! dropped and waiters would run their own init, replaying the rotated token. Here the init
//! only spawns the task and returns at once, so nothing a client does can cancel a refresh.
//! While the refresh runs its entry cannot expire (it lives as long as a refresh can take);
//! once settled, the entry lives for `rotation_grace`, which is what serves late requests with
//! the old cookie, or, after a transient failure, for a short backoff, so the next request
//! after it tries again rather than every request hammering the provider.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use sha2::{Digest, Sha256};

use crate::metrics::{Metrics, RefreshOutcome};
use crate::oauth::{OAuthClient, ProviderError};
pub use crate::session::RefreshError;
use crate::session::{Handle, Session, Sessions};
use crate::trace::{Kind, Scope, Span, SpanContext};

/// How long a transient failure is remembered before a later request may try again.
pub const TRANSIENT_BACKOFF: Duration = Duration::from_secs(5);

/// What a request should carry on with.
#[derive(Debug)]
pub enum Freshness {
    /// Nothing to do: the access token is not inside the refresh window.
    Unchanged,
    /// New tokens: serve with this session and write its cookie.
    Refreshed(Arc<Session>),
    /// Refresh failed transiently but the access token is still valid: serve as is.
    Stale,
}

/// A shared handle to one running (or finished) refresh. A plain struct, not a future, so
/// creating one inside moka's init cannot be mistaken for awaiting it.
#[derive(Clone)]
struct Flight {
    result: Shared<BoxFuture<'static, Result<Arc<Session>, RefreshError>>>,
    /// Set by the first request to see the result, which re-inserts the entry so its
    /// lifetime switches from "running" to grace or backoff.
    settled: Arc<AtomicBool>,
    /// The refresh span of the request that started it, for joiners' span links.
    origin: Option<SpanContext>,
}

/// Per-entry lifetimes: long enough to outlive any refresh while it runs, then the rotation
/// grace (or the transient backoff) from the moment it settles.
struct FlightExpiry {
    running: Duration,
    grace: Duration,
}

impl moka::Expiry<[u8; 32], Flight> for FlightExpiry {
    fn expire_after_create(&self, _: &[u8; 32], _: &Flight, _: Instant) -> Option<Duration> {
        Some(self.running)
    }

    fn expire_after_update(
        &self,
        _: &[u8; 32],
        flight: &Flight,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(match flight.result.peek() {
            None => self.running,
            Some(Err(e)) if e.is_transient() => TRANSIENT_BACKOFF,
            Some(_) => self.grace,
        })
    }
}

/// When and how sessions are refreshed (`[session]`).
#[derive(Clone, Copy, Debug)]
pub struct RefreshPolicy {
    /// Refresh when the access token expires within this window (capped at half its life).
    pub refresh_before: Duration,
    /// Re-read the profile on refresh so a changed email or lost permission takes effect.
    pub refresh_profile: bool,
    /// How long a just-rotated cookie is still served from the refresh it caused.
    pub rotation_grace: Duration,
    /// The longest a refresh's calls to Rocketpunch may take.
    pub bound: Duration,
    /// The absolute lifetime of a session (`cookie.expire`): how long the newest tokens of a
    /// cookie session are kept for a browser that never received them.
    pub lifetime: Duration,
}

/// How many cookie sessions' newest tokens are kept at most (a few KB each).
pub const NEWEST_CAPACITY: u64 = 100_000;

pub struct Refresher {
    oauth: Arc<OAuthClient>,
    metrics: Arc<Metrics>,
    flights: moka::future::Cache<[u8; 32], Flight>,
    refresh_before: Duration,
    refresh_profile: bool,
    /// Where the sessions live: Redis sessions are refreshed under their Redis lock, so
    /// replicas never refresh one session twice.
    sessions: Sessions,
    /// The newest session of each cookie sign-in refreshed here in a forward-auth answer, by
    /// [`Session::sid`]. A front proxy may drop the `Set-Cookie` of an auth answer (Caddy does; nginx passes
    /// only the first of a split cookie), and the browser then keeps presenting the rotated,
    /// revoked refresh token; this is where its session carries on instead. Redis sessions
    /// need none: their cookie does not change on refresh.
    newest: moka::future::Cache<String, Arc<Session>>,
}

impl Refresher {
    pub fn new(
        oauth: Arc<OAuthClient>,
        metrics: Arc<Metrics>,
        sessions: Sessions,
        policy: RefreshPolicy,
    ) -> Self {
        Self {
            oauth,
            metrics,
            flights: moka::future::Cache::builder()
                .max_capacity(1_000_000)
                .expire_after(FlightExpiry {
                    // With Redis a refresh may first wait for another replica's lock.
                    running: policy.bound * 2 + Duration::from_secs(1),
                    grace: policy.rotation_grace.max(Duration::from_secs(1)),
                })
                .build(),
            refresh_before: policy.refresh_before,
            refresh_profile: policy.refresh_profile,
            sessions,
            newest: moka::future::Cache::builder()
                .max_capacity(NEWEST_CAPACITY)
                .time_to_live(policy.lifetime.max(Duration::from_secs(1)))
                .build(),
        }
    }

    /// The newest session this process refreshed for `session`'s sign-in, when the browser
    /// still presents older tokens (its front proxy dropped the rewritten cookie).
    pub async fn newest(&self, session: &Session) -> Option<Arc<Session>> {
        if session.sid.is_empty() || !self.sessions.refresh_rewrites_cookie() {
            return None;
        }
        let newest = self.newest.get(&session.sid).await?;
        (newest.tokens.refresh_token != session.tokens.refresh_token
            && newest.tokens.issued_at >= session.tokens.issued_at)
            .then_some(newest)
    }

    /// Keeps `session`, just refreshed in an answer whose `Set-Cookie` a front proxy may not
    /// pass on (forward-auth), as its sign-in's newest. Only there: where rocketgate answers
    /// the browser itself, a cookie that was replaced stops working after the rotation grace.
    pub async fn remember(&self, session: &Arc<Session>) {
        if !session.sid.is_empty() && self.sessions.refresh_rewrites_cookie() {
            self.newest
                .insert(session.sid.clone(), session.clone())
                .await;
        }
    }

    /// Forgets `session`'s sign-in at sign-out, so an old cookie cannot bring it back.
    pub async fn forget(&self, session: &Session) {
        if !session.sid.is_empty() {
            self.newest.invalidate(&session.sid).await;
        }
    }

    /// Whether `session`'s access token expires within the refresh window at `now`.
    ///
    /// The window is `refresh_before`, but never more than half the token's lifetime:
    /// otherwise tokens shorter-lived than the window would be refreshed on every request.
    pub fn is_due(&self, session: &Session, now: u64) -> bool {
        let tokens = &session.tokens;
        let Some(expires_at) = tokens.expires_at else {
            return false;
        };
        let mut window = self.refresh_before.as_secs();
        if let Some(issued_at) = tokens.issued_at {
            window = window.min(expires_at.saturating_sub(issued_at) / 2);
        }
        tokens.refresh_token.is_some() && expires_at <= now.saturating_add(window)
    }

    /// Refreshes `session` if it is due, joining any refresh already running for it.
    pub async fn ensure_fresh(
        &self,
        session: &Session,
        handle: &Handle,
        now: u64,
    ) -> Result<Freshness, RefreshError> {
        let expired = session.tokens.expires_at.is_some_and(|at| at <= now);
        if expired && session.tokens.refresh_token.is_none() {
            // Nothing can renew it: the session ends with its access token.
            return Err(RefreshError::Ended(
                "access token expired, no refresh token".into(),
            ));
        }
        if !self.is_due(session, now) {
            return Ok(Freshness::Unchanged);
        }
        let Some(refresh_token) = session.tokens.refresh_token.as_deref() else {
            return Ok(Freshness::Unchanged);
        };
        // Boxed: the cache's entry API makes this future large, and it would otherwise sit
        // inline in every connection's request future although few requests refresh.
        Box::pin(self.join_or_launch(session, handle, refresh_token, now)).await
    }

    /// Joins the refresh of `refresh_token` already in flight (or just settled), or starts it.
    async fn join_or_launch(
        &self,
        session: &Session,
        handle: &Handle,
        refresh_token: &str,
        now: u64,
    ) -> Result<Freshness, RefreshError> {
        let key: [u8; 32] = Sha256::digest(refresh_token.as_bytes()).into();
        let mut span = Span::start("session.refresh", Kind::Internal);
        let entry = self
            .flights
            .entry(key)
            .or_insert_with(async { self.launch(session.clone(), handle.clone(), now, &span) })
            .await;
        let flight = entry.value().clone();
        let joined = !entry.is_fresh();
        if joined {
            if flight.result.peek().is_some() {
                self.metrics.refresh_grace_hit();
            } else {
                self.metrics.refresh_join();
            }
            if let Some(origin) = flight.origin {
                span.link(origin);
            }
        }
        span.set("rocketgate.refresh.joined", joined);
        let result = flight.result.clone().await;
        let outcome = match &result {
            Ok(_) => RefreshOutcome::Ok,
            Err(e) if e.is_transient() => RefreshOutcome::Transient,
            Err(_) => RefreshOutcome::Fatal,
        };
        span.set("rocketgate.refresh.outcome", outcome.as_str());
        crate::audit::record(crate::audit::Event::Refresh {
            user: &session.identity.user,
            outcome: outcome.as_str(),
            joined,
        });
        if let Err(e) = &result {
            span.fail(e.kind());
        }
        if !flight.settled.swap(true, Ordering::SeqCst) {
            // Restart the entry's clock now that the outcome is known (see FlightExpiry).
            self.flights.insert(key, flight).await;
        }
        match result {
            Ok(session) => Ok(Freshness::Refreshed(session)),
            Err(e) if e.is_transient() && session.tokens.expires_at.is_some_and(|at| at > now) => {
                Ok(Freshness::Stale)
            }
            Err(e) => Err(e),
        }
    }

    /// Spawns the refresh and returns a shared handle to its result; never awaits.
    fn launch(&self, session: Session, handle: Handle, now: u64, span: &Span) -> Flight {
        // The token and profile calls are the launching request's refresh span's children.
        let scope = span.scope();
        let oauth = self.oauth.clone();
        let metrics = self.metrics.clone();
        let refresh_profile = self.refresh_profile;
        let sessions = self.sessions.clone();
        let task = tokio::spawn(Scope::maybe_run(scope, async move {
            let call = |session: Session| async move {
                let started = Instant::now();
                let result = refresh(&oauth, session, now, refresh_profile).await;
                let outcome = match &result {
                    Ok(_) => RefreshOutcome::Ok,
                    Err(e) if e.is_transient() => RefreshOutcome::Transient,
                    Err(_) => RefreshOutcome::Fatal,
                };
                metrics.refresh(outcome, started.elapsed().as_secs_f64());
                result
            };
            let result = sessions.refresh(&handle, session, call).await;
            if let Err(error) = &result {
                tracing::warn!(%error, "token refresh failed");
            }
            result
        }));
        let joined = async move {
            task.await
                .unwrap_or_else(|_| Err(RefreshError::Unavailable("refresh task failed".into())))
        };
        Flight {
            result: joined.boxed().shared(),
            settled: Arc::new(AtomicBool::new(false)),
            origin: span.context().filter(|_| span.is_recording()),
        }
    }
}

/// The token call, then (optionally) the profile, keeping sign-in time and identity when
/// the profile cannot be read: new tokens are never thrown away once Rocketpunch issued them,
/// because the old refresh token is already revoked.
async fn refresh(
    oauth: &OAuthClient,
    session: Session,
    now: u64,
    refresh_profile: bool,
) -> Result<Arc<Session>, RefreshError> {
    let refresh_token = session.tokens.refresh_token.clone().unwrap_or_default();
    let tokens = oauth.refresh(&refresh_token, now).await.map_err(classify)?;
    let mut identity = session.identity.clone();
    if refresh_profile {
        match oauth.identity(&tokens.access_token).await {
            Ok(fresh) => identity = fresh,
            Err(e) => {
                tracing::warn!(error = %e, "profile re-read after refresh failed; keeping the previous identity")
            }
        }
    }
    Ok(Arc::new(session.renewed(identity, tokens)))
}

fn classify(error: ProviderError) -> RefreshError {
    if error.is_transient() {
        RefreshError::Unavailable(error.code().to_owned())
    } else {
        RefreshError::Ended(error.code().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_at: Option<u64>, issued_at: Option<u64>, refresh: bool) -> Session {
        let mut s = crate::testkit::session_with(1, expires_at, 0);
        s.tokens.issued_at = issued_at;
        if !refresh {
            s.tokens.refresh_token = None;
        }
        s
    }

    fn refresher(refresh_before: u64) -> Refresher {
        // is_due does not touch the network; a client pointed nowhere is enough.
        let provider = crate::testkit::provider_settings("http://127.0.0.1:9");
        Refresher::new(
            Arc::new(OAuthClient::new(
                &provider,
                "http://127.0.0.1:9/oauth2/callback".into(),
            )),
            Arc::new(Metrics::new()),
            Sessions::in_cookies(crate::testkit::codec()),
            RefreshPolicy {
                refresh_before: Duration::from_secs(refresh_before),
                refresh_profile: true,
                rotation_grace: Duration::from_secs(60),
                lifetime: Duration::from_secs(3600),
                bound: Duration::from_secs(10),
            },
        )
    }

    #[tokio::test]
    async fn the_newest_tokens_of_a_sign_in_serve_its_older_cookies_until_sign_out() {
        let r = refresher(60);
        let mut first = session(Some(100), Some(50), true);
        first.sid = "s1".into();
        let mut newer = first.renewed(first.identity.clone(), first.tokens.clone());
        newer.tokens.refresh_token = Some("rotated".into());
        newer.tokens.issued_at = Some(90);
        assert_eq!(r.newest(&first).await, None, "nothing kept yet");
        r.remember(&Arc::new(newer.clone())).await;
        assert_eq!(r.newest(&first).await.as_deref(), Some(&newer));
        assert_eq!(
            r.newest(&newer).await,
            None,
            "the cookie is the newest already"
        );
        let mut other = first.clone();
        other.sid = "s2".into();
        assert_eq!(r.newest(&other).await, None, "another sign-in");
        let mut unnamed = first.clone();
        unnamed.sid = String::new();
        assert_eq!(r.newest(&unnamed).await, None, "sealed before sids existed");
        r.forget(&first).await;
        assert_eq!(r.newest(&first).await, None, "signed out");
    }

    fn due(refresh_before: u64, s: &Session, now: u64) -> bool {
        refresher(refresh_before).is_due(s, now)
    }

    #[tokio::test]
    async fn an_expired_token_without_a_refresh_token_ends_the_session() {
        let r = refresher(300);
        let expired = session(Some(100), Some(0), false);
        assert!(matches!(
            r.ensure_fresh(&expired, &Handle::default(), 101).await,
            Err(RefreshError::Ended(_))
        ));
        let valid = session(Some(1_000), Some(0), false);
        assert!(matches!(
            r.ensure_fresh(&valid, &Handle::default(), 101).await,
            Ok(Freshness::Unchanged)
        ));
    }

    #[test]
    fn due_inside_the_window_only() {
        let s = session(Some(10_000), Some(6_400), true);
        assert!(!due(300, &s, 9_699));
        assert!(due(300, &s, 9_700));
        assert!(due(300, &s, 20_000), "expired tokens are due too");
    }

    #[test]
    fn short_lived_tokens_use_half_their_lifetime() {
        // A 60 s token with a 5 min window: due after 30 s, not at once.
        let s = session(Some(1_060), Some(1_000), true);
        assert!(!due(300, &s, 1_029));
        assert!(due(300, &s, 1_030));
    }

    #[test]
    fn nothing_to_refresh_without_expiry_or_refresh_token() {
        assert!(!due(300, &session(None, None, true), 10));
        assert!(!due(300, &session(Some(5), Some(0), false), 10));
    }
}

//! Sessions in Redis: one entry per session, sealed with the session's own key, plus a set of
//! session ids per user (for revocation) and a short-lived lock per session (for refresh).
//!
//! Keys (the session id in a hash tag, so a session's entry and lock share a cluster slot):
//! `{prefix}{<id>}:session`, `{prefix}{<id>}:lock`, `{prefix}user:<sha256(user)>`.

mod link;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use link::Link;
pub use link::LinkError;

use super::ticket::{Ticket, user_digest};
use super::{CookieCodec, KeyAge, Session, unix_now};
use crate::config::RedisSettings;
use crate::metrics::Metrics;
use crate::refresh::RefreshError;

/// How often the health check pings Redis.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// How often a replica waiting for another's refresh looks for its result.
const LOCK_POLL: Duration = Duration::from_millis(50);

/// Compare-and-delete: only the lock's owner releases it, so a refresh that outlived its lock
/// cannot release the next owner's.
const RELEASE: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

pub struct RedisStore {
    link: Link,
    prefix: String,
    target: String,
    /// Sessions read from Redis, by session id; short-lived so other replicas' sign-outs,
    /// revocations and refreshes are seen within `session.cache_ttl`.
    sessions: moka::future::Cache<[u8; 16], Arc<Session>>,
    /// Opened ticket cookies by SHA-256 of their sealed value: no AES-GCM per request.
    tickets: moka::sync::Cache<[u8; 32], (Ticket, bool)>,
    /// `cookie.expire`: the absolute lifetime, and so the entry's TTL in Redis.
    lifetime: Duration,
    /// How long a refresh lock is held at most: a refresh that takes longer loses it.
    lock_ttl: Duration,
    release: redis::Script,
    up: AtomicBool,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisStore({})", self.target)
    }
}

impl RedisStore {
    /// Builds the store without touching the network (see [`Self::watch_health`]).
    pub fn new(
        settings: &RedisSettings,
        lifetime: Duration,
        lock_ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, LinkError> {
        Ok(Self {
            link: Link::new(settings)?,
            prefix: settings.prefix.clone(),
            target: settings.target.describe(),
            sessions: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settings.cache_ttl.max(Duration::from_millis(1)))
                .build(),
            tickets: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
            lifetime,
            lock_ttl,
            release: redis::Script::new(RELEASE),
            up: AtomicBool::new(false),
            metrics,
        })
    }

    /// Host and mode, for logs (never credentials).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether the last health check reached Redis.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Pings Redis now and then every second for as long as the store lives, logging each
    /// change (and the first answer or failure) so operators see outages and recoveries.
    pub fn watch_health(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut first = true;
            loop {
                let Some(store) = weak.upgrade() else { return };
                let result = store.link.ping().await;
                let was_up = store.up.swap(result.is_ok(), Ordering::SeqCst);
                store.metrics.store_up(result.is_ok());
                match result {
                    Ok(()) if first || !was_up => {
                        tracing::info!(target = %store.target, "Redis session store reachable");
                    }
                    Err(error) if first || was_up => {
                        tracing::error!(
                            target = %store.target,
                            %error,
                            "Redis session store unreachable: /ready answers 503 and requests \
                             that need a session get 503 until it answers; sessions are kept"
                        );
                    }
                    _ => {}
                }
                first = false;
                drop(store);
                tokio::time::sleep(HEALTH_INTERVAL).await;
            }
        });
    }

    /// The ticket in a sealed cookie value, and whether it was sealed with an old key.
    pub fn ticket(&self, codec: &CookieCodec, sealed: &str) -> Option<(Ticket, bool)> {
        let digest: [u8; 32] = Sha256::digest(sealed.as_bytes()).into();
        if let Some(found) = self.tickets.get(&digest) {
            return Some(found);
        }
        let (plain, age) = codec.open_value(sealed)?;
        let ticket = Ticket::decode(&plain)?;
        let found = (ticket, age == KeyAge::Old);
        self.tickets.insert(digest, found.clone());
        Some(found)
    }

    /// The session behind `ticket`, from the cache when it is recent. `Ok(None)` means it is
    /// gone (signed out, revoked, expired) or does not open with this ticket's key.
    pub async fn read(&self, ticket: &Ticket) -> Result<(Option<Arc<Session>>, bool), LinkError> {
        if let Some(session) = self.sessions.get(&ticket.id()).await {
            return Ok((Some(session), true));
        }
        Ok((self.read_through(ticket).await?, false))
    }

    /// Reads Redis itself, bypassing (and then updating) the cache.
    async fn read_through(&self, ticket: &Ticket) -> Result<Option<Arc<Session>>, LinkError> {
        let sealed: Option<String> = self.observe(
            self.link
                .query(redis::cmd("GET").arg(self.session_key(ticket)))
                .await,
        )?;
        let session = sealed
            .and_then(|s| ticket.open(&s))
            .and_then(|json| Session::from_json(json.as_bytes()))
            .map(Arc::new);
        match &session {
            Some(s) => self.sessions.insert(ticket.id(), s.clone()).await,
            None => self.sessions.invalidate(&ticket.id()).await,
        }
        Ok(session)
    }

    /// Stores a new session and returns the ticket for its cookie.
    pub async fn create(&self, session: &Session) -> Result<Ticket, LinkError> {
        let ticket = Ticket::generate();
        let ttl = self.remaining_ms(session);
        let sealed = ticket.seal(&json(session));
        self.observe(
            self.link
                .query::<()>(
                    redis::cmd("SET")
                        .arg(self.session_key(&ticket))
                        .arg(sealed)
                        .arg("PX")
                        .arg(ttl),
                )
                .await,
        )?;
        let user_key = self.user_key(&session.identity.user);
        self.observe(
            self.link
                .query::<()>(redis::cmd("SADD").arg(&user_key).arg(ticket.id_hex()))
                .await,
        )?;
        // The index outlives every session it lists: each new session renews it.
        self.observe(
            self.link
                .query::<()>(
                    redis::cmd("PEXPIRE")
                        .arg(&user_key)
                        .arg(self.lifetime.as_millis() as u64),
                )
                .await,
        )?;
        self.sessions
            .insert(ticket.id(), Arc::new(session.clone()))
            .await;
        Ok(ticket)
    }

    /// Deletes the session behind `ticket` (sign-out): its cookie is dead from now on, on
    /// every replica once their caches expire.
    pub async fn delete(&self, ticket: &Ticket) -> Result<(), LinkError> {
        let (session, _) = self.read(ticket).await?;
        self.observe(
            self.link
                .query::<()>(redis::cmd("DEL").arg(self.session_key(ticket)))
                .await,
        )?;
        self.sessions.invalidate(&ticket.id()).await;
        if let Some(session) = session {
            let _ = self
                .link
                .query::<()>(
                    redis::cmd("SREM")
                        .arg(self.user_key(&session.identity.user))
                        .arg(ticket.id_hex()),
                )
                .await;
        }
        Ok(())
    }

    /// Deletes every session of `user`; returns how many existed.
    pub async fn revoke_user(&self, user: &str) -> Result<u64, LinkError> {
        let user_key = self.user_key(user);
        let ids: Vec<String> =
            self.observe(self.link.query(redis::cmd("SMEMBERS").arg(&user_key)).await)?;
        let mut revoked = 0;
        for id in &ids {
            let key = format!("{}{{{id}}}:session", self.prefix);
            let deleted: u64 = self.observe(self.link.query(redis::cmd("DEL").arg(key)).await)?;
            revoked += deleted;
            if let Some(raw) = parse_id(id) {
                self.sessions.invalidate(&raw).await;
            }
        }
        self.observe(
            self.link
                .query::<()>(redis::cmd("DEL").arg(&user_key))
                .await,
        )?;
        Ok(revoked)
    }

    /// Refreshes the session behind `ticket` under its Redis lock, so that however many
    /// replicas see it due at once, exactly one calls Rocketpunch. `seen` is the session the
    /// caller read (perhaps from a cache); `call` performs the token call. A replica that
    /// finds the lock taken waits for the new tokens to appear in Redis and uses them.
    pub async fn refresh_locked<F, Fut>(
        &self,
        ticket: &Ticket,
        seen: Session,
        call: F,
    ) -> Result<Arc<Session>, RefreshError>
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = Result<Arc<Session>, RefreshError>>,
    {
        let unavailable = |_| RefreshError::Unavailable("session store unavailable".into());
        let owner = Ticket::generate().id_hex();
        let lock_key = self.lock_key(ticket);
        let deadline = Instant::now() + self.lock_ttl + Duration::from_secs(1);
        let mut call = Some(call);
        loop {
            let acquired: Option<String> = self
                .observe(
                    self.link
                        .query(
                            redis::cmd("SET")
                                .arg(&lock_key)
                                .arg(&owner)
                                .arg("NX")
                                .arg("PX")
                                .arg(self.lock_ttl.as_millis() as u64),
                        )
                        .await,
                )
                .map_err(unavailable)?;
            if acquired.is_some() {
                let result = match call.take() {
                    Some(call) => self.refresh_holding_lock(ticket, &seen, call).await,
                    None => Err(RefreshError::Unavailable(
                        "refresh already attempted".into(),
                    )),
                };
                let _ = self
                    .link
                    .invoke::<i64>(self.release.key(&lock_key).arg(&owner))
                    .await;
                return result;
            }
            tokio::time::sleep(LOCK_POLL).await;
            match self.read_through(ticket).await {
                Ok(Some(current)) if current.tokens != seen.tokens => {
                    self.metrics.refresh_remote_join();
                    return Ok(current);
                }
                Ok(None) => return Err(RefreshError::Ended("session signed out".into())),
                Ok(Some(_)) | Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(RefreshError::Unavailable(
                    "waited too long for another replica's refresh".into(),
                ));
            }
        }
    }

    async fn refresh_holding_lock<F, Fut>(
        &self,
        ticket: &Ticket,
        seen: &Session,
        call: F,
    ) -> Result<Arc<Session>, RefreshError>
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = Result<Arc<Session>, RefreshError>>,
    {
        let current = self
            .read_through(ticket)
            .await
            .map_err(|_| RefreshError::Unavailable("session store unavailable".into()))?
            .ok_or_else(|| RefreshError::Ended("session signed out".into()))?;
        if current.tokens != seen.tokens {
            // Another replica refreshed between our read and the lock.
            self.metrics.refresh_remote_join();
            return Ok(current);
        }
        match call((*current).clone()).await {
            Ok(fresh) => {
                self.store_refreshed(ticket, &fresh).await?;
                Ok(fresh)
            }
            Err(RefreshError::Ended(reason)) => {
                // The grant is dead, so is the session: no replica should try it again.
                let _ = self.delete(ticket).await;
                Err(RefreshError::Ended(reason))
            }
            Err(e) => Err(e),
        }
    }

    /// Writes refreshed tokens over the entry (keeping its expiry). Rocketpunch has already
    /// revoked the old refresh token, so a failed write is retried; if Redis stays away the
    /// new session is still served from this replica's cache.
    async fn store_refreshed(
        &self,
        ticket: &Ticket,
        fresh: &Arc<Session>,
    ) -> Result<(), RefreshError> {
        let sealed = ticket.seal(&json(fresh));
        self.sessions.insert(ticket.id(), fresh.clone()).await;
        for attempt in 0..3 {
            let written: Result<Option<String>, LinkError> = self
                .link
                .query(
                    redis::cmd("SET")
                        .arg(self.session_key(ticket))
                        .arg(&sealed)
                        .arg("XX")
                        .arg("KEEPTTL"),
                )
                .await;
            match written {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {
                    // Signed out while the refresh ran: do not bring it back.
                    self.sessions.invalidate(&ticket.id()).await;
                    return Err(RefreshError::Ended("session signed out".into()));
                }
                Err(error) => {
                    self.metrics.store_error();
                    tracing::warn!(%error, attempt, "could not store refreshed tokens in Redis");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
        tracing::error!(
            "refreshed tokens not stored in Redis; this replica serves them from its cache"
        );
        Ok(())
    }

    fn remaining_ms(&self, session: &Session) -> u64 {
        let ends = session.created_at.saturating_add(self.lifetime.as_secs());
        ends.saturating_sub(unix_now()).max(1).saturating_mul(1000)
    }

    fn session_key(&self, ticket: &Ticket) -> String {
        format!("{}{{{}}}:session", self.prefix, ticket.id_hex())
    }

    fn lock_key(&self, ticket: &Ticket) -> String {
        format!("{}{{{}}}:lock", self.prefix, ticket.id_hex())
    }

    fn user_key(&self, user: &str) -> String {
        format!("{}user:{}", self.prefix, user_digest(user))
    }

    /// Counts failures for the metrics; passes the result on.
    fn observe<T>(&self, result: Result<T, LinkError>) -> Result<T, LinkError> {
        if result.is_err() {
            self.metrics.store_error();
        }
        result
    }
}

fn json(session: &Session) -> String {
    serde_json::to_string(session).unwrap_or_default()
}

fn parse_id(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

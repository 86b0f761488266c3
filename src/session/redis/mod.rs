//! Sessions in Redis: one entry per session, sealed with the session's own key, a sorted set
//! of session ids per user (for revocation) and a short-lived lock per session (for refresh,
//! see [`lock`]).
//!
//! Keys (the session id in a hash tag, so a session's entry and lock share a cluster slot):
//! `{prefix}{<id>}:session`, `{prefix}{<id>}:lock`, `{prefix}user:<sha256(user)>`.

mod health;
mod link;
mod lock;
mod settings;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use link::Link;
pub use link::LinkError;

use super::ticket::{Ticket, user_digest};
use super::{CookieCodec, KeyAge, PrehashedKeys, Session, unix_now};
use crate::metrics::Metrics;
pub use settings::{RedisSettings, RedisTarget};

/// A session this process read recently, and the fingerprint of the key that opened it.
type Cached = (Arc<Session>, [u8; 32]);

pub struct RedisStore {
    link: Link,
    prefix: String,
    target: String,
    /// Sessions read from Redis, by session id; short-lived so other replicas' sign-outs,
    /// revocations and refreshes are seen within `session.cache_ttl`.
    sessions: moka::future::Cache<[u8; 16], Cached, PrehashedKeys>,
    /// Opened ticket cookies by SHA-256 of their sealed value: no AES-GCM per request.
    tickets: moka::sync::Cache<[u8; 32], (Ticket, bool), PrehashedKeys>,
    /// `cookie.expire`: the absolute lifetime, and so the entry's TTL in Redis.
    lifetime: Duration,
    /// How long a refresh lock is held before it must be extended: the token and profile
    /// calls plus the Redis round trips around them, with a margin.
    lock_ttl: Duration,
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
    /// `refresh_bound` is how long a refresh's calls to Rocketpunch may take.
    pub fn new(
        settings: &RedisSettings,
        lifetime: Duration,
        refresh_bound: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, LinkError> {
        Ok(Self {
            link: Link::new(settings)?,
            prefix: settings.prefix.clone(),
            target: settings.target.describe(),
            sessions: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settings.cache_ttl.max(Duration::from_millis(1)))
                .build_with_hasher(PrehashedKeys),
            tickets: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(600))
                .build_with_hasher(PrehashedKeys),
            lifetime,
            lock_ttl: refresh_bound + settings.timeout * 4 + Duration::from_secs(1),
            up: AtomicBool::new(false),
            metrics,
        })
    }

    /// Host and mode, for logs (never credentials).
    pub fn target(&self) -> &str {
        &self.target
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

    /// The session behind `ticket`, from the cache when it is recent, and whether it came
    /// from the cache. `Ok(None)` means it is gone (signed out, revoked, expired) or does not
    /// open with this ticket's key.
    pub async fn read(&self, ticket: &Ticket) -> Result<(Option<Arc<Session>>, bool), LinkError> {
        if let Some((session, fingerprint)) = self.sessions.get(&ticket.id()).await {
            if bool::from(fingerprint.ct_eq(&ticket.fingerprint())) {
                return Ok((Some(session), true));
            }
            // Right id, wrong key: never served, whatever Redis holds.
            return Ok((None, true));
        }
        // Boxed: Redis's futures are large, and this one would otherwise sit inline in every
        // connection's request future, used or not (see `pipeline::handle`).
        Ok((Box::pin(self.read_through(ticket)).await?, false))
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
            Some(s) => self.remember(ticket, s.clone()).await,
            None => self.sessions.invalidate(&ticket.id()).await,
        }
        Ok(session)
    }

    async fn remember(&self, ticket: &Ticket, session: Arc<Session>) {
        self.sessions
            .insert(ticket.id(), (session, ticket.fingerprint()))
            .await;
    }

    /// Stores a new session and returns the ticket for its cookie.
    pub async fn create(&self, session: &Session) -> Result<Ticket, LinkError> {
        let ticket = Ticket::generate();
        let sealed = ticket.seal(&to_json(session)?);
        // On a replica before the cookie is handed out: a failover must not lose a session
        // whose user was just told they are signed in.
        self.observe(
            self.link
                .query_replicated::<()>(
                    redis::cmd("SET")
                        .arg(self.session_key(&ticket))
                        .arg(sealed)
                        .arg("PX")
                        .arg(self.remaining_ms(session)),
                )
                .await,
        )?;
        // The user's index: session ids scored by when they expire. Expired ids are pruned
        // here, so a user who signs in every day does not grow it forever.
        let user_key = self.user_key(&session.identity.user);
        let now = unix_now();
        let ends = session.created_at.saturating_add(self.lifetime.as_secs());
        self.observe(
            self.link
                .query::<()>(
                    redis::cmd("ZADD")
                        .arg(&user_key)
                        .arg(ends)
                        .arg(ticket.id_hex()),
                )
                .await,
        )?;
        self.observe(
            self.link
                .query::<()>(
                    redis::cmd("ZREMRANGEBYSCORE")
                        .arg(&user_key)
                        .arg("-inf")
                        .arg(now),
                )
                .await,
        )?;
        self.observe(
            self.link
                .query::<()>(
                    redis::cmd("PEXPIRE")
                        .arg(&user_key)
                        .arg(self.lifetime.as_millis() as u64),
                )
                .await,
        )?;
        self.remember(&ticket, Arc::new(session.clone())).await;
        Ok(ticket)
    }

    /// Deletes the session behind `ticket` (sign-out): the cookie is dead from now on, on
    /// this replica at once and on the others once their caches expire.
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
                    redis::cmd("ZREM")
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
        let ids: Vec<String> = self.observe(
            self.link
                .query(redis::cmd("ZRANGE").arg(&user_key).arg(0).arg(-1))
                .await,
        )?;
        let mut revoked = 0;
        for id in &ids {
            let key = format!("{}{{{id}}}:session", self.prefix);
            let deleted: u64 = self.observe(self.link.query(redis::cmd("DEL").arg(key)).await)?;
            revoked += deleted;
            if let Some(raw) = parse_id(id) {
                self.sessions.invalidate(&raw).await;
            }
        }
        // Exactly the ids read: a session created meanwhile keeps its entry in the index,
        // so a second revocation still finds it.
        if !ids.is_empty() {
            self.observe(
                self.link
                    .query::<()>(redis::cmd("ZREM").arg(&user_key).arg(&ids))
                    .await,
            )?;
        }
        Ok(revoked)
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

fn to_json(session: &Session) -> Result<String, LinkError> {
    serde_json::to_string(session)
        .map_err(|e| LinkError::Failed(format!("session not serialisable: {e}")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_hex() {
        let t = Ticket::generate();
        assert_eq!(parse_id(&t.id_hex()), Some(t.id()));
        assert_eq!(parse_id("zz"), None);
        assert_eq!(parse_id(&"g".repeat(32)), None);
    }
}

//! Refreshing a session under its Redis lock, so that however many replicas see it due at
//! once, exactly one calls Rocketpunch, and a rotated refresh token is never replayed.
//!
//! The lock is `SET NX PX` with a random owner value, extended and released only by its owner
//! (compare-and-set scripts). The holder re-reads the session under the lock (another replica
//! may have refreshed it a moment ago) and, once Rocketpunch answered, stores the new tokens
//! before it lets go. If Redis will not take the write, the lock is *kept* (and extended) by a
//! background task that retries: other replicas then answer from the still-valid old token or
//! with 503, but none of them can replay the old refresh token, which Rocketpunch has revoked.
//! With `session.redis_min_replicas`, the lock and the new tokens count as written only once a
//! replica has them (`WAIT`), so a failover to that replica keeps both.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use super::{LinkError, RedisStore, to_json};
use crate::session::{RefreshError, Session, Ticket};

/// How often a replica waiting for another's refresh looks for its result.
const POLL: Duration = Duration::from_millis(50);
/// Attempts to store refreshed tokens before the retrying moves to the background.
const WRITE_ATTEMPTS: u32 = 3;
/// How long the background keeps trying to store refreshed tokens (and holds the lock).
const PERSIST_FOR: Duration = Duration::from_secs(600);

static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#,
    )
});

static EXTEND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end"#,
    )
});

/// One holder's claim on a session's lock.
#[derive(Clone)]
struct Lock {
    key: String,
    owner: String,
}

/// What became of refreshed tokens.
enum Stored {
    Yes,
    /// The session was deleted (signed out, revoked) while it was being refreshed.
    SignedOut,
    /// Redis refused the write; a background task keeps trying and holds the lock.
    Later,
}

impl RedisStore {
    /// Refreshes the session behind `ticket` under its lock. `seen` is the session the caller
    /// read (perhaps from a cache); `call` performs the token call. A replica that finds the
    /// lock taken waits for the new tokens to appear in Redis and uses them.
    pub async fn refresh_locked<F, Fut>(
        self: &Arc<Self>,
        ticket: &Ticket,
        seen: Session,
        call: F,
    ) -> Result<Arc<Session>, RefreshError>
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = Result<Arc<Session>, RefreshError>>,
    {
        let lock = Lock {
            key: self.lock_key(ticket),
            owner: Ticket::generate().id_hex(),
        };
        let deadline = Instant::now() + self.lock_ttl + Duration::from_secs(1);
        loop {
            if self
                .acquire(&lock)
                .await
                .map_err(RefreshError::StoreUnavailable)?
            {
                let (result, keep_lock) = self.refresh_holding(ticket, &seen, call, &lock).await;
                if !keep_lock {
                    self.release(&lock).await;
                }
                return result;
            }
            tokio::time::sleep(POLL).await;
            match self.read_through(ticket).await {
                Ok(Some(current)) if current.tokens != seen.tokens => {
                    self.metrics.refresh_remote_join();
                    return Ok(current);
                }
                Ok(None) => return Err(RefreshError::SignedOut),
                Ok(Some(_)) | Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(RefreshError::StoreUnavailable(LinkError::Failed(
                    "another replica's refresh did not finish in time".into(),
                )));
            }
        }
    }

    /// The refresh proper, lock held. Returns the outcome and whether the lock must stay
    /// held (a background task is still storing the new tokens).
    async fn refresh_holding<F, Fut>(
        self: &Arc<Self>,
        ticket: &Ticket,
        seen: &Session,
        call: F,
        lock: &Lock,
    ) -> (Result<Arc<Session>, RefreshError>, bool)
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = Result<Arc<Session>, RefreshError>>,
    {
        let current = match self.read_through(ticket).await {
            Ok(Some(current)) => current,
            Ok(None) => return (Err(RefreshError::SignedOut), false),
            Err(e) => return (Err(RefreshError::StoreUnavailable(e)), false),
        };
        if current.tokens != seen.tokens {
            // Another replica refreshed between our read and the lock.
            self.metrics.refresh_remote_join();
            return (Ok(current), false);
        }
        match call((*current).clone()).await {
            Ok(fresh) => match self.store_refreshed(ticket, &fresh, lock).await {
                Stored::Yes => {
                    self.remember(ticket, fresh.clone()).await;
                    (Ok(fresh), false)
                }
                Stored::SignedOut => (Err(RefreshError::SignedOut), false),
                Stored::Later => {
                    // Served from this replica's cache until Redis has it.
                    self.remember(ticket, fresh.clone()).await;
                    (Ok(fresh), true)
                }
            },
            Err(RefreshError::Ended(reason)) => {
                // The grant is dead, so is the session: no replica should try it again.
                let _ = self.delete(ticket).await;
                (Err(RefreshError::Ended(reason)), false)
            }
            Err(e) => (Err(e), false),
        }
    }

    /// Writes refreshed tokens over the entry, keeping its expiry. Never gives up silently:
    /// after a few failed attempts a background task keeps trying, holding the lock.
    async fn store_refreshed(
        self: &Arc<Self>,
        ticket: &Ticket,
        fresh: &Arc<Session>,
        lock: &Lock,
    ) -> Stored {
        let sealed = match to_json(fresh) {
            Ok(json) => ticket.seal(&json),
            Err(error) => {
                tracing::error!(%error, "refreshed session cannot be stored");
                return Stored::SignedOut;
            }
        };
        for attempt in 0..WRITE_ATTEMPTS {
            let _ = self.extend(lock).await;
            match self.overwrite(ticket, &sealed).await {
                Ok(true) => return Stored::Yes,
                Ok(false) => {
                    self.sessions.invalidate(&ticket.id()).await;
                    return Stored::SignedOut;
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "could not store refreshed tokens in Redis");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
        let store = Arc::clone(self);
        let ticket = ticket.clone();
        let lock = lock.clone();
        tokio::spawn(async move {
            let until = Instant::now() + PERSIST_FOR;
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = store.extend(&lock).await;
                match store.overwrite(&ticket, &sealed).await {
                    Ok(true) => {
                        tracing::info!("refreshed tokens stored in Redis after a delay");
                        break;
                    }
                    Ok(false) => {
                        store.sessions.invalidate(&ticket.id()).await;
                        break;
                    }
                    Err(_) if Instant::now() < until => {}
                    Err(error) => {
                        tracing::error!(
                            %error,
                            "refreshed tokens could not be stored in Redis for 10 minutes; \
                             the session will end at its next refresh"
                        );
                        break;
                    }
                }
            }
            store.release(&lock).await;
        });
        Stored::Later
    }

    /// `SET XX KEEPTTL`: `Ok(false)` when the entry is gone (signed out meanwhile), which
    /// must not be brought back.
    async fn overwrite(&self, ticket: &Ticket, sealed: &str) -> Result<bool, LinkError> {
        let written: Option<String> = self.observe(
            self.link
                .query_replicated(
                    redis::cmd("SET")
                        .arg(self.session_key(ticket))
                        .arg(sealed)
                        .arg("XX")
                        .arg("KEEPTTL"),
                )
                .await,
        )?;
        Ok(written.is_some())
    }

    /// Takes the lock, on a replica too: a lock only the old master knew would let another
    /// replica refresh from the new master with the refresh token this one is spending.
    /// It is taken for a short while first, and held for the whole refresh only once a
    /// replica has it, so a lock whose taker gave up (its write or `WAIT` timed out while the
    /// replicas lagged) blocks the session's refresh for seconds, not for a refresh's bound.
    async fn acquire(&self, lock: &Lock) -> Result<bool, LinkError> {
        let brief = (self.lock_ttl / 4).max(Duration::from_secs(1));
        let set = |mode: &str, ttl: Duration| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&lock.key)
                .arg(&lock.owner)
                .arg(mode)
                .arg("PX")
                .arg(ttl.as_millis() as u64);
            cmd
        };
        let take = async {
            let taken: Option<String> = self.link.query_replicated(&set("NX", brief)).await?;
            if taken.is_none() {
                return Ok(false);
            }
            // None: expired between the two writes (a very slow Redis); someone may have it.
            let held: Option<String> = self
                .link
                .query_replicated(&set("XX", self.lock_ttl))
                .await?;
            Ok(held.is_some())
        };
        let result = self.observe(take.await);
        if result.is_err() {
            // It may have been taken all the same; let go of it if so.
            self.release(lock).await;
        }
        result
    }

    async fn extend(&self, lock: &Lock) -> Result<bool, LinkError> {
        let extended: i64 = self
            .link
            .invoke(
                EXTEND
                    .key(&lock.key)
                    .arg(&lock.owner)
                    .arg(self.lock_ttl.as_millis() as u64),
            )
            .await?;
        Ok(extended == 1)
    }

    /// Lets go of the lock if it is still ours; if Redis cannot be reached it expires.
    async fn release(&self, lock: &Lock) {
        let _ = self
            .link
            .invoke::<i64>(RELEASE.key(&lock.key).arg(&lock.owner))
            .await;
    }
}

//! Where sessions are kept: whole in the cookie (the default, no server state), or in Redis
//! with only a ticket in the cookie. Callers see one interface; the conformance suite in
//! `tests/it/store.rs` holds both to the same behaviour.

use std::future::Future;
use std::sync::Arc;

use super::redis::{LinkError, RedisStore};
use super::ticket::Ticket;
use super::{CookieCodec, RefreshError, RequestCookies, Session};

/// The session store could not be reached: the request gets 503 and keeps its session.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("session store unavailable: {0}")]
    Unavailable(#[from] LinkError),
    #[error("sessions in cookies cannot be revoked server-side; use session.store = \"redis\"")]
    NotRevocable,
}

/// Which stored session a [`Loaded`] came from, for the store's own later use (rewriting
/// its cookie, refreshing it under a lock). Opaque: callers pass it back, never look inside.
#[derive(Clone, Debug, Default)]
pub struct Handle(Option<Ticket>);

/// A session read from the request.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub session: Arc<Session>,
    /// The cookie was sealed with an old key: write it again with the current one.
    pub reseal: bool,
    /// Served without decryption (cookie) or without a Redis round trip (Redis).
    pub cached: bool,
    pub handle: Handle,
}

/// Where sessions live; only this module looks.
#[derive(Clone, Debug)]
enum Backend {
    /// The whole session, sealed, in the cookie.
    Cookie,
    /// A ticket in the cookie, the session (sealed with the ticket's key) in Redis.
    Redis(Arc<RedisStore>),
}

/// The session store: load, create, rewrite, delete, revoke, and coordinate refreshes, the
/// same calls whatever the backend.
#[derive(Clone, Debug)]
pub struct Sessions {
    codec: CookieCodec,
    backend: Backend,
}

impl Sessions {
    pub fn in_cookies(codec: CookieCodec) -> Self {
        Self {
            codec,
            backend: Backend::Cookie,
        }
    }

    pub fn in_redis(codec: CookieCodec, store: Arc<RedisStore>) -> Self {
        Self {
            codec,
            backend: Backend::Redis(store),
        }
    }

    /// The Redis store behind these sessions, for tests and operations that are Redis's
    /// alone (health, revocation from the command line).
    pub fn redis(&self) -> Option<&Arc<RedisStore>> {
        match &self.backend {
            Backend::Redis(store) => Some(store),
            Backend::Cookie => None,
        }
    }

    /// Whether requests can be served: always for cookies; for Redis, while it answers.
    pub fn is_ready(&self) -> bool {
        self.redis().is_none_or(|r| r.is_up())
    }

    /// The request's session; `Ok(None)` for no cookie or anything that does not open, and an
    /// error only when the store cannot answer (never read as "signed out").
    pub async fn load(&self, cookies: &RequestCookies) -> Result<Option<Loaded>, StoreError> {
        let Backend::Redis(redis) = &self.backend else {
            return Ok(self.codec.open(cookies).map(|o| Loaded {
                session: o.session,
                reseal: o.reseal,
                cached: o.cached,
                handle: Handle(None),
            }));
        };
        // Several tickets only when another host planted a cookie of our name: the most
        // recent sign-in among those that still exist wins, as for cookie sessions.
        let mut best: Option<Loaded> = None;
        for (ticket, reseal) in self.tickets(redis, cookies) {
            let (session, cached) = redis.read(&ticket).await?;
            if let Some(session) = session
                && best
                    .as_ref()
                    .is_none_or(|b| session.created_at > b.session.created_at)
            {
                best = Some(Loaded {
                    session,
                    reseal,
                    cached,
                    handle: Handle(Some(ticket)),
                });
            }
        }
        Ok(best)
    }

    /// The tickets the request's cookies of our name open to (junk opens to none).
    fn tickets(&self, redis: &RedisStore, cookies: &RequestCookies) -> Vec<(Ticket, bool)> {
        self.codec
            .sealed_values(cookies)
            .iter()
            .filter_map(|sealed| redis.ticket(&self.codec, sealed))
            .collect()
    }

    /// Stores a new session (at sign-in) and returns the `Set-Cookie` values for it.
    pub async fn create(
        &self,
        session: &Session,
        cookies: &RequestCookies,
    ) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            Backend::Cookie => Ok(self.codec.write(session, cookies)),
            Backend::Redis(redis) => {
                let ticket = redis.create(session).await?;
                Ok(self.codec.write_value(&ticket.encode(), cookies))
            }
        }
    }

    /// `Set-Cookie` values after a request changed the session (new tokens) or found its
    /// cookie sealed with an old key. In Redis the tokens were already stored by the refresh,
    /// so only a re-sealed ticket is written.
    pub fn rewrite(
        &self,
        session: &Session,
        handle: &Handle,
        cookies: &RequestCookies,
    ) -> Vec<String> {
        match &handle.0 {
            None => self.codec.write(session, cookies),
            Some(ticket) => self.codec.write_value(&ticket.encode(), cookies),
        }
    }

    /// [`Self::rewrite`] for forward-auth answers, whose `Set-Cookie` a front proxy may pass
    /// on only in part: `None` when a cookie session would need more than one cookie (see
    /// [`CookieCodec::write_whole`]); such a browser keeps its cookie and is served from the
    /// refresher's newest tokens instead.
    pub fn rewrite_whole(
        &self,
        session: &Session,
        handle: &Handle,
        cookies: &RequestCookies,
    ) -> Option<Vec<String>> {
        match &handle.0 {
            None => self.codec.write_whole(session, cookies),
            Some(ticket) => Some(self.codec.write_value(&ticket.encode(), cookies)),
        }
    }

    /// Whether a refresh changes what the cookie holds (it does only for cookie sessions).
    pub fn refresh_rewrites_cookie(&self) -> bool {
        matches!(self.backend, Backend::Cookie)
    }

    /// Runs `call` (the token call) to refresh the session behind `handle`, which the caller
    /// saw as `seen`. Cookie sessions just call it; Redis sessions call it under the
    /// session's lock, so however many replicas see it due, one calls Rocketpunch and the
    /// others pick the new tokens up from Redis (see `redis::lock`).
    pub async fn refresh<F, Fut>(
        &self,
        handle: &Handle,
        seen: Session,
        call: F,
    ) -> Result<Arc<Session>, RefreshError>
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = Result<Arc<Session>, RefreshError>>,
    {
        match (&self.backend, &handle.0) {
            (Backend::Redis(redis), Some(ticket)) => redis.refresh_locked(ticket, seen, call).await,
            _ => call(seen).await,
        }
    }

    /// Signs out: deletes the session server-side (Redis) and clears every cookie chunk.
    /// With Redis unreachable this fails and the cookie is kept, so the user can try again
    /// and the session is never left alive behind a cleared cookie.
    pub async fn delete(&self, cookies: &RequestCookies) -> Result<Vec<String>, StoreError> {
        if let Backend::Redis(redis) = &self.backend {
            for (ticket, _) in self.tickets(redis, cookies) {
                redis.delete(&ticket).await?;
            }
        }
        Ok(self.codec.clear(cookies))
    }

    /// Ends every session of `user`; returns how many there were.
    pub async fn revoke_user(&self, user: &str) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Cookie => Err(StoreError::NotRevocable),
            Backend::Redis(redis) => Ok(redis.revoke_user(user).await?),
        }
    }
}

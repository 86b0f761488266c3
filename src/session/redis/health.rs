//! Whether Redis answers: a PING every second, `/ready` and the `session_store_up` metric
//! follow it, and each change is logged once so operators see outages and recoveries.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::RedisStore;

const INTERVAL: Duration = Duration::from_secs(1);

impl RedisStore {
    /// Whether the last health check reached Redis.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Pings Redis now and then every second for as long as the store lives.
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
                tokio::time::sleep(INTERVAL).await;
            }
        });
    }
}

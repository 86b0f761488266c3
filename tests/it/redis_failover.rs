//! A Sentinel failover in the middle of a refresh storm. The replicas fall behind (paused),
//! every session's refresh is due and attempted, then the master dies and a replica takes
//! over. With `session.redis_min_replicas = 1` (the default with sentinels) no session is lost
//! and each session's refresh token is spent exactly once; with 0, the refreshes the dead
//! master took never reached the new one, and those sessions end.

use std::time::{Duration, Instant};

use crate::support::redis::SentinelGroup;
use crate::support::{DUE, Stack, api_get, short_tokens};

const SESSIONS: usize = 6;

/// What became of the sessions after the failover.
struct Outcome {
    /// Sessions still signed in once the new master serves, each with a refreshed token.
    kept: usize,
    /// Sessions answered 401 (signed out by a refused refresh).
    lost: usize,
    /// Sessions served again once past the cache, from what the new master holds.
    settled: usize,
    /// `grant_type=refresh_token` calls the stand-in received.
    refresh_calls: u64,
}

async fn storm(min_replicas: u32) -> Outcome {
    let group = SentinelGroup::start().await;
    let first_master = group.servers[0].port();
    let stack = Stack::with(
        short_tokens()
            .env("ROCKETGATE_SESSION__STORE", "redis")
            .env("ROCKETGATE_SESSION__REDIS_SENTINELS", group.sentinel_urls())
            .env("ROCKETGATE_SESSION__REDIS_SENTINEL_MASTER", "mymaster")
            .env(
                "ROCKETGATE_SESSION__REDIS_MIN_REPLICAS",
                min_replicas.to_string(),
            )
            .env("ROCKETGATE_SESSION__REDIS_TIMEOUT", "1s")
            .env("ROCKETGATE_SESSION__CACHE_TTL", "100ms")
            // This replica keeps a finished refresh for the grace; another replica would not.
            .env("ROCKETGATE_SESSION__ROTATION_GRACE", "1s"),
    )
    .await;
    let client = stack.client();
    let url = stack.url("/api");
    let mut cookies = Vec::new();
    let mut first_tokens = Vec::new();
    for _ in 0..SESSIONS {
        let browser = stack.browser();
        browser.login("/").await;
        let cookie = browser.cookie_header();
        first_tokens.push(crate::support::token_seen(api_get(&client, &url, &cookie).await).await);
        cookies.push(cookie);
    }
    tokio::time::sleep(DUE).await;

    // The replicas stop taking the master's stream; every session's refresh is due.
    // Stopped replicas would still find the master's stream in their sockets' buffers when
    // they resume; cutting the links as well means nothing written from now on reaches them.
    group.pause(1, true);
    group.pause(2, true);
    group.servers[0].command(&["CLIENT", "KILL", "TYPE", "replica"]);
    let during: Vec<u16> = futures_util::future::join_all(
        cookies
            .iter()
            .map(|c| async { api_get(&client, &url, c).await.status().as_u16() }),
    )
    .await;
    assert!(
        during.iter().all(|s| [200, 503].contains(s)),
        "while the replicas lag, requests are served or told to retry: {during:?}"
    );
    // The master dies before its last writes reached anyone; the replicas come back and the
    // sentinels promote one.
    let mut group = group;
    group.servers[0].kill();
    group.pause(1, false);
    group.pause(2, false);
    group.wait_for_new_master(first_master).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let mut outcome = Outcome {
        kept: 0,
        lost: 0,
        settled: 0,
        refresh_calls: 0,
    };
    for (cookie, first) in cookies.iter().zip(&first_tokens) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let response = api_get(&client, &url, cookie).await;
            match response.status().as_u16() {
                200 => {
                    let token = crate::support::token_seen(response).await;
                    assert_ne!(
                        &token, first,
                        "the access token expired: this one is refreshed"
                    );
                    outcome.kept += 1;
                    break;
                }
                401 => {
                    outcome.lost += 1;
                    break;
                }
                503 if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("after the failover: {other}"),
            }
        }
    }
    // Past the cache: what the new master holds is what the sessions have.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for cookie in &cookies {
        match api_get(&client, &url, cookie).await.status().as_u16() {
            200 => outcome.settled += 1,
            401 => {}
            other => panic!("a settled session is served or signed out: {other}"),
        }
    }
    outcome.refresh_calls = stack.standin.stats().refresh_token_grants;
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_during_a_refresh_storm_loses_no_session() {
    let outcome = storm(1).await;
    assert_eq!(outcome.lost, 0, "no session ended");
    assert_eq!(outcome.kept, SESSIONS);
    assert_eq!(
        outcome.settled, SESSIONS,
        "the new master has every refresh"
    );
    assert_eq!(
        outcome.refresh_calls, SESSIONS as u64,
        "exactly one token call per session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_waiting_for_a_replica_the_same_failover_ends_sessions() {
    let outcome = storm(0).await;
    assert!(
        outcome.lost > 0,
        "the refreshes only the dead master had are lost ({} kept, {} settled, {} refresh calls)",
        outcome.kept,
        outcome.settled,
        outcome.refresh_calls
    );
    assert!(
        outcome.refresh_calls > SESSIONS as u64,
        "a lost refresh presents its spent refresh token again"
    );
}

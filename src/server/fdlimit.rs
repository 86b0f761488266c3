//! The open-file limit, raised at start to what the system allows.
//!
//! Every client connection and every upstream connection holds a file descriptor. Service
//! managers commonly start processes with a soft limit of 1,024 and a hard limit far above it
//! (systemd: 1,024 / 524,288), which would cap the proxy at a few hundred proxied connections
//! whatever `limits.max_connections` says: past it, accept() fails with EMFILE. The soft limit
//! exists for old programs that use `select()`; rocketgate does not, so, as Go programs
//! (oauth2-proxy among them) do, it raises the soft limit to the hard one.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Where the soft limit goes when the hard limit is "unlimited": Linux refuses more than
/// `fs.nr_open`, whose default is this.
const CEILING: u64 = 1 << 20;

/// Descriptors one proxied connection may hold at once: the client's and the upstream's.
const PER_CONNECTION: u64 = 2;

/// Listeners, the log, Redis, DNS, certificate files: what the process holds besides.
const BASE: u64 = 64;

/// The soft limit to ask for, if it should change, and what it was. `None` in a limit
/// means unlimited.
fn target(soft: Option<u64>, hard: Option<u64>) -> Option<(u64, u64)> {
    let soft = soft?;
    let want = hard.map_or(CEILING, |h| h);
    (want > soft).then_some((soft, want))
}

/// Descriptors needed to serve `max_connections` proxied connections.
fn needed(max_connections: usize) -> u64 {
    u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_mul(PER_CONNECTION)
        .saturating_add(BASE)
}

/// Raises the soft open-file limit as far as the hard limit allows, and warns when even that
/// is too low for `max_connections`: better said at start than found as refused connections.
pub fn raise(max_connections: usize) {
    let limit = getrlimit(Resource::Nofile);
    let mut soft = limit.current;
    if let Some((from, want)) = target(limit.current, limit.maximum) {
        let raised = Rlimit {
            current: Some(want),
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::info!(from, to = want, "open-file limit raised");
                soft = Some(want);
            }
            Err(e) => tracing::warn!(
                from,
                to = want,
                error = %e,
                "could not raise the open-file limit"
            ),
        }
    }
    let needed = needed(max_connections);
    if let Some(soft) = soft
        && soft < needed
    {
        tracing::warn!(
            open_files = soft,
            needed,
            max_connections,
            "the open-file limit is too low for limits.max_connections (two descriptors per \
             proxied connection): raise the hard limit (systemd LimitNOFILE=, docker \
             --ulimit nofile=, ulimit -Hn) or lower max_connections"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_goes_up_to_the_hard_one() {
        assert_eq!(target(Some(1024), Some(524_288)), Some((1024, 524_288)));
        assert_eq!(target(Some(1024), None), Some((1024, CEILING)));
    }

    #[test]
    fn a_limit_already_at_the_top_or_unlimited_is_left_alone() {
        assert_eq!(target(Some(524_288), Some(524_288)), None);
        assert_eq!(target(None, None), None);
        assert_eq!(target(Some(CEILING * 2), None), None);
    }

    #[test]
    fn each_proxied_connection_needs_two_descriptors() {
        assert_eq!(needed(10_000), 20_064);
        assert_eq!(needed(usize::MAX), u64::MAX);
    }
}

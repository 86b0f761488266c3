//! A property of the whole gate: no request meant for a route that is not public reaches an
//! upstream unless its session passes that route's policy and the baseline, whatever the
//! route table and its order, the Host header's spelling, or the path's encoding (percent
//! escapes, doubled slashes, `;parameters`). And no encoding moves a request to another
//! route than the one its plain path names.
//!
//! Each case runs a real gate (in this process) with a random table in front of one
//! recording upstream, and sends requests over fresh HTTP/1.1 connections with raw request
//! targets, so nothing on the client side normalises the path first.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use rocketgate::session::{Identity, RequestCookies, unix_now};

use crate::support::{Options, Stack};

/// Records the path of every request that reached it, and answers 200.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        log.lock().unwrap().push(req.uri().path().to_owned());
                        async {
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                Empty::<Bytes>::new(),
                            ))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Recorder { addr, seen }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

#[derive(Clone, Debug)]
struct RouteSpec {
    host: Option<&'static str>,
    path: &'static str,
    public: bool,
    groups: Vec<&'static str>,
    emails: Vec<&'static str>,
    domains: Vec<&'static str>,
}

#[derive(Clone, Debug)]
struct User {
    id: &'static str,
    email: &'static str,
    /// What Rocketpunch reports (`provider.claims.groups`).
    reported: Vec<&'static str>,
}

/// `[groups]` of every case: linus is in ops by the configuration.
const NAMED: &str =
    "[groups]\nops = { users = [\"1003\"] }\n\n[provider.claims]\ngroups = \"/teams\"\n";

fn users() -> Vec<Option<User>> {
    vec![
        None,
        Some(User {
            id: "1001",
            email: "ada@example.com",
            reported: vec!["engineering"],
        }),
        Some(User {
            id: "1002",
            email: "grace@example.org",
            reported: vec!["navy", "ops"],
        }),
        Some(User {
            id: "1003",
            email: "linus@example.net",
            reported: vec![],
        }),
    ]
}

fn subset(of: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(of, 0..=of.len())
}

fn route() -> impl Strategy<Value = RouteSpec> {
    (
        prop_oneof![
            Just(None),
            Just(Some("a.test")),
            Just(Some("*.test")),
            Just(Some("*.x.test")),
        ],
        prop_oneof![Just("/"), Just("/admin"), Just("/admin/x"), Just("/api")],
        prop::bool::weighted(0.25),
        subset(&["ops", "navy", "engineering"]),
        subset(&["ada@example.com"]),
        subset(&["example.org"]),
    )
        // A public route with rules is a configuration error; a public route has none.
        .prop_map(|(host, path, public, groups, emails, domains)| RouteSpec {
            host,
            path,
            public,
            groups: if public { Vec::new() } else { groups },
            emails: if public { Vec::new() } else { emails },
            domains: if public { Vec::new() } else { domains },
        })
}

/// A request: the Host header as sent and the host it means; the plain path segments and
/// the raw request target spelling them.
#[derive(Clone, Debug)]
struct Probe {
    host_sent: &'static str,
    host: &'static str,
    segments: Vec<&'static str>,
    target: String,
    user: usize,
}

/// One segment as a client may spell it: plain, one byte percent-escaped (either hex
/// case), with a `;parameter`, or after an empty segment.
fn spelling(segment: &'static str) -> impl Strategy<Value = String> {
    (0..segment.len(), 0..5u8).prop_map(move |(at, how)| {
        let byte = segment.as_bytes()[at];
        match how {
            0 => segment.to_owned(),
            1 => format!("{}%{byte:02X}{}", &segment[..at], &segment[at + 1..]),
            2 => format!("{}%{byte:02x}{}", &segment[..at], &segment[at + 1..]),
            3 => format!("{segment};v=1"),
            _ => format!("/{segment}"),
        }
    })
}

fn probe() -> impl Strategy<Value = Probe> {
    let hosts = prop_oneof![
        Just(("a.test", "a.test")),
        Just(("A.Test:80", "a.test")),
        Just(("a.test.", "a.test")),
        Just(("b.x.test", "b.x.test")),
        Just(("c.test", "c.test")),
        Just(("other.org", "other.org")),
    ];
    let segments = proptest::collection::vec(
        prop_oneof![Just("admin"), Just("x"), Just("api"), Just("docs")],
        0..4,
    );
    (hosts, segments, 0..4usize)
        .prop_flat_map(|((host_sent, host), segments, user)| {
            let spelled: Vec<_> = segments.iter().map(|s| spelling(s)).collect();
            (Just((host_sent, host, segments, user)), spelled)
        })
        .prop_map(|((host_sent, host, segments, user), spelled)| Probe {
            host_sent,
            host,
            target: format!("/{}", spelled.join("/")),
            segments,
            user,
        })
}

/// The route the plain request is for, decided independently of rocketgate's code: exact
/// host, then the longest wildcard domain, then any host; then the most path segments;
/// then the first defined.
fn intended(routes: &[RouteSpec], host: &str, segments: &[&str]) -> Option<usize> {
    let host_rank = |h: Option<&str>| -> Option<(u8, usize)> {
        match h {
            None => Some((0, 0)),
            Some(pattern) => match pattern.strip_prefix('*') {
                Some(suffix) => (host.ends_with(suffix) && host.len() > suffix.len())
                    .then_some((1, suffix.len())),
                None => (pattern == host).then_some((2, 0)),
            },
        }
    };
    let mut best: Option<(usize, (u8, usize), usize)> = None;
    for (i, route) in routes.iter().enumerate() {
        let Some(rank) = host_rank(route.host) else {
            continue;
        };
        let wanted: Vec<&str> = route.path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.len() < wanted.len() || segments[..wanted.len()] != wanted[..] {
            continue;
        }
        let key = (rank, wanted.len());
        if best.is_none_or(|(_, r, n)| key > (r, n)) {
            best = Some((i, rank, wanted.len()));
        }
    }
    best.map(|(i, _, _)| i)
}

fn passes(route: &RouteSpec, user: &User) -> bool {
    let domain = user.email.rsplit('@').next().unwrap_or("");
    let emails_ok = (route.emails.is_empty() && route.domains.is_empty())
        || route.emails.contains(&user.email)
        || route.domains.contains(&domain);
    let mut groups: Vec<&str> = user.reported.clone();
    if user.id == "1003" {
        groups.push("ops");
    }
    let groups_ok = route.groups.is_empty() || route.groups.iter().any(|g| groups.contains(g));
    emails_ok && groups_ok
}

fn table_toml(routes: &[RouteSpec], upstream: SocketAddr, baseline: bool) -> String {
    let quoted = |items: &[&str]| {
        items
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut toml = String::new();
    for (i, r) in routes.iter().enumerate() {
        toml.push_str("[[routes]]\n");
        if let Some(host) = r.host {
            toml.push_str(&format!("host = {host:?}\n"));
        }
        toml.push_str(&format!(
            "path = {:?}\nupstream = \"http://{upstream}/r{i}\"\npublic = {}\n\
             allowed_groups = [{}]\nallowed_emails = [{}]\nallowed_email_domains = [{}]\n\n",
            r.path,
            r.public,
            quoted(&r.groups),
            quoted(&r.emails),
            quoted(&r.domains),
        ));
    }
    toml.push_str(NAMED);
    if baseline {
        toml.push_str("\n[access]\nallowed_email_domains = [\"example.com\", \"example.org\"]\n");
    }
    toml
}

/// A session cookie header for `user`, sealed by the gate's own codec.
fn cookie_for(stack: &Stack, user: &User) -> String {
    let now = unix_now();
    let mut session = rocketgate::testkit::session_with(8, Some(now + 3600), now);
    session.identity = Identity {
        user: user.id.into(),
        email: Some(user.email.into()),
        groups: user.reported.iter().map(|g| (*g).to_owned()).collect(),
        ..Identity::default()
    };
    let empty = RequestCookies::from_headers(&http::HeaderMap::new());
    stack
        .app
        .codec
        .write(&session, &empty)
        .iter()
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Sends `target` raw with `host`; the status, or `None` when the gate closed the connection.
async fn send(proxy: SocketAddr, host: &str, target: &str, cookie: Option<&str>) -> Option<u16> {
    let stream = tokio::net::TcpStream::connect(proxy).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let mut req = http::Request::get(target)
        .header("host", host)
        .header("accept", "application/json");
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let req = req.body(Empty::<Bytes>::new()).ok()?;
    let response = sender.send_request(req).await.ok()?;
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    Some(status)
}

async fn case(
    recorder: &Recorder,
    routes: Vec<RouteSpec>,
    baseline: bool,
    probes: Vec<Probe>,
) -> Result<usize, TestCaseError> {
    let stack = Stack::with(Options {
        extra_toml: table_toml(&routes, recorder.addr, baseline),
        no_default_upstream: true,
        ..Options::default()
    })
    .await;
    let users = users();
    let cookies: Vec<Option<String>> = users
        .iter()
        .map(|u| u.as_ref().map(|u| cookie_for(&stack, u)))
        .collect();
    let mut reached = 0;
    recorder.take();
    for probe in &probes {
        let status = send(
            stack.proxy,
            probe.host_sent,
            &probe.target,
            cookies[probe.user].as_deref(),
        )
        .await;
        let seen = recorder.take();
        let Some(path) = seen.first() else {
            continue;
        };
        reached += 1;
        let served: Option<usize> = path
            .strip_prefix("/r")
            .and_then(|rest| rest.split('/').next())
            .and_then(|n| n.parse().ok());
        let want = intended(&routes, probe.host, &probe.segments);
        prop_assert_eq!(
            served,
            want,
            "{:?} with Host {:?} reached {} ({:?})",
            probe.target,
            probe.host_sent,
            path,
            status
        );
        let Some(i) = want else { continue };
        let route = &routes[i];
        if route.public {
            continue;
        }
        let user = users[probe.user].as_ref();
        let baseline_ok = !baseline
            || user.is_some_and(|u| {
                u.email.ends_with("@example.com") || u.email.ends_with("@example.org")
            });
        prop_assert!(
            user.is_some_and(|u| passes(route, u)) && baseline_ok,
            "{:?} as {:?} reached route {} {:?} ({:?})",
            probe.target,
            user.map(|u| u.id),
            i,
            route,
            status
        );
    }
    Ok(reached)
}

#[test]
fn no_request_reaches_a_protected_app_without_passing_its_policy() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let recorder = rt.block_on(Recorder::start());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    });
    let total = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = total.clone();
    let strategy = (
        proptest::collection::vec(route(), 1..5),
        any::<bool>(),
        proptest::collection::vec(probe(), 12),
    );
    let result = runner.run(&strategy, |(routes, baseline, probes)| {
        let reached = rt.block_on(case(&recorder, routes, baseline, probes))?;
        counted.fetch_add(reached, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The property is about requests that got through: make sure plenty did.
    let reached = total.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        reached >= cases as usize,
        "only {reached} requests reached an upstream"
    );
}

//! `log_format = "json"` as an operator's log pipeline reads it: every line is one JSON
//! object with `message`, `level`, `timestamp` and `target`; request lines and the audit
//! events written inside a request carry `request_id` and `trace_id`; each security decision
//! is one audit event with its documented fields; a 5xx says why.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION};
use rocketgate_demo::{StandIn, StandInOptions};
use serde_json::Value;

use crate::support::process::{Tail, TempFile, command, free_port, plain_client, wait_until_ready};
use crate::support::redis::{RedisServer, with_redis_sessions};
use crate::support::{Browser, Echo};

const ADMIN_TOKEN: &str = "audit-admin-token-0123456789abcdefghij";

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn audit<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["target"] == "rocketgate::audit" && l["event"] == event)
        .collect()
}

/// Waits (bounded) until an audit `event` has been logged, and returns every line so far.
async fn logged(tail: &Tail, event: &str) -> Vec<Value> {
    let text = tail
        .wait_for(&format!("\"event\":\"{event}\""), Duration::from_secs(10))
        .await;
    lines(&text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_ids_and_one_audit_event_per_decision() {
    crate::support::init_crypto();
    let redis = RedisServer::start().await;
    let proxy = free_port();
    let down = free_port();
    let provider_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let provider = provider_listener.local_addr().unwrap();
    let upstream = upstream_listener.local_addr().unwrap();
    let secret = "audit-client-secret-31f9";
    let standin = StandIn::new(StandInOptions {
        client_id: "demo-client".into(),
        client_secret: secret.into(),
        redirect_uri: format!("http://{proxy}/oauth2/callback"),
        access_token_ttl: Duration::from_secs(4),
        ..StandInOptions::default()
    });
    standin.spawn(provider_listener);
    rocketgate_demo::spawn_upstream(upstream_listener);
    let toml = with_redis_sessions(
        &rocketgate_demo::proxy_config_without_upstream(proxy, provider, secret),
        &redis.url(),
    );
    let toml = format!(
        "log_format = \"json\"\n{toml}\n[admin]\ntoken = \"{ADMIN_TOKEN}\"\n\n\
         [[routes]]\npath = \"/staff\"\nupstream = \"http://{upstream}\"\n\
         allowed_email_domains = [\"example.org\"]\n\n\
         [[routes]]\npath = \"/down\"\nupstream = \"http://{down}\"\n\n\
         [[routes]]\npath = \"/\"\nupstream = \"http://{upstream}\"\n"
    );
    let config = TempFile::new("audit", &toml);
    let mut child = command(&["--config", config.0.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .spawn()
        .unwrap();
    let stdout = Tail::new(child.stdout.take());
    let stderr = Tail::new(child.stderr.take());
    let client = plain_client();
    wait_until_ready(&mut child, &client, proxy).await;

    // sign_in, then a request whose access token is due: refresh.
    let ada = Browser::new(proxy);
    ada.login_as("/", "1001").await;
    let seen: Echo = ada.echo("/").await;
    let email = seen.header("x-forwarded-email").unwrap().to_owned();
    // denied: ada is not at example.org.
    let denied = ada
        .client
        .get(ada.url("/staff/pay"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let denied_id = denied.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // 502 from a refused upstream connection.
    let refused = ada
        .client
        .get(ada.url("/down/x"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 502);
    let refused_id = refused.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(ada.echo("/due").await.method, "GET");
    assert_eq!(standin.stats().refresh_token_grants, 1);

    // session_revoked by the admin endpoint, for another user.
    let grace = Browser::new(proxy);
    grace.login_as("/", "1002").await;
    let revoked = client
        .post(format!("http://{proxy}/oauth2/admin/revoke?user=1002"))
        .header(AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    // sign_out, then config_reloaded by SIGHUP.
    let cookie = ada.cookie("_rocketgate").expect("session cookie");
    assert_eq!(
        ada.get(&ada.url("/oauth2/sign_out")).await.status(),
        302,
        "signed out"
    );
    let metrics = client
        .get(format!("http://{proxy}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let all = logged(&stdout, "config_reloaded").await;
    let _ = child.start_kill();
    assert_eq!(stderr.text(), "", "nothing but JSON lines on stdout");

    for line in &all {
        for field in ["message", "level", "timestamp", "target"] {
            assert!(line[field].is_string(), "{field} in {line}");
        }
    }
    let requests: Vec<&Value> = all
        .iter()
        .filter(|l| l["target"] == "rocketgate::request")
        .collect();
    assert!(requests.len() >= 8, "{requests:#?}");
    for line in &requests {
        assert_eq!(line["message"], "request");
        assert_eq!(
            line["request_id"].as_str().map(str::len),
            Some(32),
            "{line}"
        );
        assert_eq!(line["trace_id"].as_str().map(str::len), Some(32), "{line}");
    }
    let line_of = |id: &str| {
        *requests
            .iter()
            .find(|l| l["request_id"] == id)
            .unwrap_or_else(|| panic!("no request line for {id}"))
    };
    let failed = line_of(&refused_id);
    assert_eq!(failed["status"], 502);
    assert_eq!(failed["upstream_error"], "refused", "{failed}");
    assert!(
        metrics.contains("rocketgate_upstream_errors_total{kind=\"refused\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("rocketgate_upstream_errors_total{kind=\"tls\"} 0"));
    assert_eq!(line_of(&denied_id)["status"], 403);

    // Each audit event written inside a request has that request's ids.
    let with_ids = |event: &Value| {
        let id = event["request_id"].as_str().expect("request_id");
        let request = line_of(id);
        assert_eq!(event["trace_id"], request["trace_id"], "{event}");
        request
    };
    let sign_ins = audit(&all, "sign_in");
    assert_eq!(sign_ins.len(), 2, "{sign_ins:#?}");
    assert_eq!(sign_ins[0]["user"], "1001");
    assert_eq!(sign_ins[0]["outcome"], "success");
    assert_eq!(sign_ins[0]["message"], "sign_in");
    assert_eq!(with_ids(sign_ins[0])["path"], "/oauth2/callback");
    let denials = audit(&all, "denied");
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0]["user"], "1001");
    assert_eq!(denials[0]["route"], "routes[0]");
    assert!(denials[0]["rule"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(denials[0]["request_id"], denied_id.as_str());
    with_ids(denials[0]);
    let refreshes = audit(&all, "refresh");
    assert_eq!(refreshes.len(), 1, "{refreshes:#?}");
    assert_eq!(refreshes[0]["user"], "1001");
    assert_eq!(refreshes[0]["outcome"], "ok");
    assert_eq!(refreshes[0]["joined"], false);
    assert_eq!(with_ids(refreshes[0])["path"], "/due");
    let revocations = audit(&all, "session_revoked");
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0]["user"], "1002");
    assert_eq!(revocations[0]["by"], "admin_endpoint");
    assert_eq!(revocations[0]["sessions"], 1);
    with_ids(revocations[0]);
    let sign_outs = audit(&all, "sign_out");
    assert_eq!(sign_outs.len(), 1);
    assert_eq!(sign_outs[0]["user"], "1001");
    with_ids(sign_outs[0]);
    let reloads = audit(&all, "config_reloaded");
    assert_eq!(reloads.len(), 1, "{reloads:#?}");
    assert_eq!(reloads[0]["trigger"], "SIGHUP");
    assert_eq!(reloads[0]["result"], "applied", "{}", reloads[0]);
    assert_eq!(
        reloads[0]["hash"].as_str().map(str::len),
        Some(16),
        "{}",
        reloads[0]
    );

    // No token, cookie or email in any of it.
    let text = stdout.text();
    assert!(!text.contains(&cookie), "the session cookie is logged");
    assert!(!text.contains(&email), "an email is logged");
    assert!(!text.contains(secret));
    assert!(!text.contains(ADMIN_TOKEN));
}

//! One test per configuration problem: each must name its key.

use std::collections::HashMap;
use std::io::Write;

use super::*;

const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes

fn minimal() -> String {
    format!(
        r#"
upstream = "http://127.0.0.1:8080"
public_url = "https://app.example.com"
[provider]
client_id = "id"
client_secret = "secret"
[cookie]
secret = "{SECRET}"
"#
    )
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn problems(toml: &str, vars: &[(&str, &str)]) -> Vec<String> {
    match load_from_str(toml, &env(vars)) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

/// Asserts that loading fails with a problem that starts with `expected`.
fn refused(toml: &str, vars: &[(&str, &str)], expected: &str) {
    let found = problems(toml, vars);
    assert!(
        found.iter().any(|p| p.starts_with(expected)),
        "expected a problem starting with {expected:?}, got {found:#?}"
    );
}

#[test]
fn minimal_config_gets_rocketpunch_defaults() {
    let c = load_from_str(&minimal(), &HashMap::new()).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:4180");
    assert_eq!(c.provider.authorize_url.as_str(), DEFAULT_AUTHORIZE_URL);
    assert_eq!(c.provider.token_url.as_str(), DEFAULT_TOKEN_URL);
    assert_eq!(c.provider.profile_url.as_str(), DEFAULT_PROFILE_URL);
    assert_eq!(c.provider.scopes, vec!["profile:read", "profile:email"]);
    assert_eq!(c.provider.claims.user, "/id");
    assert_eq!(c.cookie.name, "_rocketgate");
    assert!(c.cookie.secure, "https public_url: secure cookies");
    assert_eq!(c.cookie.same_site, ::cookie::SameSite::Lax);
    assert_eq!(c.cookie.expire, Duration::from_secs(7 * 86400));
    assert_eq!(c.session.refresh_before, Duration::from_secs(300));
    assert!(matches!(c.session.store, SessionStoreKind::Cookie));
    assert_eq!(c.shutdown_delay, Duration::from_secs(5));
    assert!(c.access.emails.is_open());
    assert!(c.access.skip_routes.is_empty());
    assert_eq!(c.redirect_uri(), "https://app.example.com/oauth2/callback");
    assert!(
        !format!("{c:?}").contains("\"secret\""),
        "Debug never prints secrets"
    );
}

#[test]
fn missing_required_keys_are_each_named() {
    let found = problems("", &[]);
    for key in [
        "upstream: is required",
        "public_url: is required",
        "provider.client_id: is required",
        "provider.client_secret: is required",
        "cookie.secret: is required",
    ] {
        assert!(
            found.iter().any(|p| p == key || p.starts_with(key)),
            "{key} missing in {found:#?}"
        );
    }
}

#[test]
fn short_cookie_secret_says_how_long_it_was() {
    let toml = minimal().replace(SECRET, "aGVsbG8=");
    let found = problems(&toml, &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("cookie.secret: must decode to 32 bytes, got 5: make a new one with `rocketgate generate-secret`"), "{found:?}");
    // oauth2-proxy's 16-byte secrets (AES-128) get the way forward too.
    let sixteen = minimal().replace(SECRET, "MDEyMzQ1Njc4OWFiY2RlZg==");
    let found = problems(&sixteen, &[]);
    assert!(
        found[0].contains("got 16") && found[0].contains("oauth2-proxy cookie_secret"),
        "{found:?}"
    );
}

#[test]
fn cookie_secret_must_be_base64() {
    refused(
        &minimal().replace(SECRET, "not base64 !!"),
        &[],
        "cookie.secret: must be base64",
    );
}

#[test]
fn upstream_and_public_url_must_be_http_urls() {
    refused(
        &minimal().replace("http://127.0.0.1:8080", "ftp://x"),
        &[],
        "upstream: must be an http://, h2c:// or https:// URL",
    );
    refused(
        &minimal().replace("http://127.0.0.1:8080", "127.0.0.1:8080"),
        &[],
        "upstream: must be an http://, h2c:// or https:// URL",
    );
    let h2c = load_from_str(
        &minimal().replace("http://127.0.0.1:8080", "h2c://127.0.0.1:50051"),
        &HashMap::new(),
    )
    .unwrap();
    assert_eq!(
        h2c.upstream.as_ref().unwrap().as_str(),
        "h2c://127.0.0.1:50051"
    );
    refused(
        &minimal().replace("http://127.0.0.1:8080", "h2c://"),
        &[],
        "upstream:",
    );
    refused(
        &minimal().replace("https://app.example.com", "app.example.com"),
        &[],
        "public_url: must be an http:// or https:// URL",
    );
    refused(
        &minimal().replace("https://app.example.com", "https://app.example.com/sub"),
        &[],
        "public_url: must be scheme and host only",
    );
    refused(
        &minimal().replace("http://127.0.0.1:8080", "http://user:pw@app"),
        &[],
        "upstream: must not contain a user name",
    );
}

#[test]
fn bad_skip_route_regex_names_its_index() {
    let toml = format!(
        "{}\n[access]\nskip_auth_routes = [\"^/ok\", \"GET=^/bad(\"]\n",
        minimal()
    );
    refused(&toml, &[], "access.skip_auth_routes[1]:");
}

#[test]
fn bad_redirect_domain_and_allowed_email_are_named() {
    let toml = format!(
        "{}\n[access]\nredirect_domains = [\"ok.example\", \"bad:port\"]\n",
        minimal()
    );
    refused(&toml, &[], "access.redirect_domains[1]:");
    let toml = format!("{}\n[access]\nallowed_emails = [\"a@b@c\"]\n", minimal());
    refused(&toml, &[], "access.allowed_emails:");
}

#[test]
fn same_site_values() {
    let with = |v: &str| format!("{}same_site = \"{v}\"\n", minimal());
    refused(
        &with("sometimes"),
        &[],
        "cookie.same_site: must be \"lax\", \"strict\" or \"none\"",
    );
    assert!(problems(&with("Strict"), &[]).is_empty());
    let insecure = format!("{}same_site = \"none\"\nsecure = false\n", minimal());
    refused(
        &insecure,
        &[],
        "cookie.same_site: \"none\" requires cookie.secure = true",
    );
}

#[test]
fn host_prefixed_cookie_names_need_secure_and_no_domain() {
    let with = |extra: &str| format!("{}name = \"__Host-rocketgate\"\n{extra}", minimal());
    let c = load_from_str(&with(""), &HashMap::new()).unwrap();
    assert_eq!(c.cookie.name, "__Host-rocketgate");
    assert!(c.cookie.secure && c.cookie.domain.is_none());
    refused(
        &with("secure = false\n"),
        &[],
        "cookie.name: a \"__Host-\" cookie must be Secure",
    );
    refused(
        &with("domain = \"example.com\"\n"),
        &[],
        "cookie.domain: must not be set with a \"__Host-\" cookie name",
    );
    // Browsers match the prefix in any case.
    let lower = format!("{}name = \"__host-rg\"\nsecure = false\n", minimal());
    refused(
        &lower,
        &[],
        "cookie.name: a \"__Host-\" cookie must be Secure",
    );
    let secure_prefix = format!("{}name = \"__Secure-rg\"\nsecure = false\n", minimal());
    refused(
        &secure_prefix,
        &[],
        "cookie.name: a \"__Secure-\" cookie must be Secure",
    );
}

#[test]
fn cookie_domain_must_contain_public_url() {
    let with = |d: &str| format!("{}domain = \"{d}\"\n", minimal());
    let c = load_from_str(&with(".Example.com"), &HashMap::new()).unwrap();
    assert_eq!(c.cookie.domain.as_deref(), Some("example.com"));
    let c = load_from_str(&with("app.example.com"), &HashMap::new()).unwrap();
    assert_eq!(c.cookie.domain.as_deref(), Some("app.example.com"));
    refused(
        &with("other.com"),
        &[],
        "cookie.domain: public_url's host \"app.example.com\" is not \"other.com\"",
    );
    refused(&with("ample.com"), &[], "cookie.domain: public_url's host");
    refused(
        &with("com"),
        &[],
        "cookie.domain: must be a domain with at least two labels",
    );
    refused(
        &with("exa mple.com"),
        &[],
        "cookie.domain: must be a host name",
    );
    assert!(
        load_from_str(&minimal(), &HashMap::new())
            .unwrap()
            .cookie
            .domain
            .is_none()
    );
}

#[test]
fn durations_are_humantime() {
    let toml = format!("shutdown_delay = \"5 parsecs\"\n{}", minimal());
    refused(&toml, &[], "shutdown_delay: must be a duration");
    let toml = format!("{}\n[session]\nrefresh_before = \"90s\"\n", minimal());
    assert_eq!(
        load_from_str(&toml, &HashMap::new())
            .unwrap()
            .session
            .refresh_before,
        Duration::from_secs(90)
    );
    let toml = format!("{}expire = \"500ms\"\n", minimal());
    refused(&toml, &[], "cookie.expire: must be at least one second");
}

#[test]
fn unknown_keys_and_wrong_types_are_refused() {
    let toml = format!("{}\nsecert = \"typo\"\n", minimal());
    let found = problems(&toml, &[]);
    assert!(found.iter().any(|p| p.contains("secert")), "{found:#?}");
    let toml = format!("{}secure = \"maybe\"\n", minimal());
    assert!(!problems(&toml, &[]).is_empty());
}

fn with_session(lines: &str) -> String {
    format!("{}\n[session]\n{lines}\n", minimal())
}

#[test]
fn redis_store_settings_are_typed() {
    let c = load_from_str(
        &with_session("store = \"redis\"\nredis_url = \"rediss://:pw@redis.internal:6380/2\"\ncache_ttl = \"2s\""),
        &HashMap::new(),
    )
    .unwrap();
    let redis = c.session.redis().expect("redis store");
    assert!(
        matches!(&redis.target, RedisTarget::Standalone(url) if url.expose().starts_with("rediss://"))
    );
    assert_eq!(redis.cache_ttl, Duration::from_secs(2));
    assert_eq!(redis.timeout, Duration::from_secs(2));
    assert_eq!(redis.prefix, "rocketgate:");
    let described = redis.target.describe();
    assert_eq!(described, "redis rediss://redis.internal:6380");
    assert!(
        !format!("{c:?}").contains(":pw@"),
        "URLs with passwords never print"
    );

    let cluster = load_from_str(
        &minimal(),
        &env(&[
            ("ROCKETGATE_SESSION__STORE", "redis"),
            (
                "ROCKETGATE_SESSION__REDIS_CLUSTER_NODES",
                "redis://a:7000, redis://b:7001",
            ),
        ]),
    )
    .unwrap();
    assert!(
        matches!(&cluster.session.redis().unwrap().target, RedisTarget::Cluster(n) if n.len() == 2)
    );
    let sentinel = load_from_str(
        &with_session("store = \"redis\"\nredis_sentinels = [\"redis://s1:26379\"]\nredis_sentinel_master = \"mymaster\""),
        &HashMap::new(),
    )
    .unwrap();
    assert!(
        matches!(&sentinel.session.redis().unwrap().target, RedisTarget::Sentinel { master, .. } if master == "mymaster")
    );
}

#[test]
fn refresh_writes_wait_for_a_replica_where_sentinels_say_there_is_one() {
    let min_replicas = |session: &str, vars: &[(&str, &str)]| {
        load_from_str(&with_session(session), &env(vars))
            .unwrap()
            .session
            .redis()
            .unwrap()
            .min_replicas
    };
    let sentinels = "store = \"redis\"\nredis_sentinels = [\"redis://s1:26379\"]\nredis_sentinel_master = \"m\"";
    let single = "store = \"redis\"\nredis_url = \"redis://r:6379\"";
    assert_eq!(min_replicas(sentinels, &[]), 1);
    assert_eq!(min_replicas(single, &[]), 0, "a lone server has no replica");
    assert_eq!(
        min_replicas(&format!("{sentinels}\nredis_min_replicas = 0"), &[]),
        0
    );
    assert_eq!(
        min_replicas(single, &[("ROCKETGATE_SESSION__REDIS_MIN_REPLICAS", "2")]),
        2
    );
    refused(
        &with_session(
            "store = \"redis\"\nredis_cluster_nodes = [\"redis://a:7000\"]\nredis_min_replicas = 1",
        ),
        &[],
        "session.redis_min_replicas: is not supported",
    );
    assert!(
        !problems(
            &with_session(&format!("{single}\nredis_min_replicas = -1")),
            &[]
        )
        .is_empty()
    );
}

#[test]
fn redis_store_problems_name_their_keys() {
    refused(
        &with_session("store = \"redis\""),
        &[],
        "session.redis_url: is required",
    );
    refused(
        &with_session("store = \"memcached\""),
        &[],
        "session.store: must be \"cookie\" or \"redis\"",
    );
    refused(
        &with_session("store = \"redis\"\nredis_url = \"http://x:6379\""),
        &[],
        "session.redis_url: must start with redis://",
    );
    refused(
        &with_session("store = \"redis\"\nredis_url = \"redis://x:6379/db\""),
        &[],
        "session.redis_url: the path must be a database number",
    );
    refused(
        &with_session("store = \"redis\"\nredis_url = \"not a url\""),
        &[],
        "session.redis_url: must be a redis://",
    );
    refused(
        &with_session(
            "store = \"redis\"\nredis_url = \"redis://a\"\nredis_cluster_nodes = [\"redis://b\"]",
        ),
        &[],
        "session.store: set only one of",
    );
    refused(
        &with_session("store = \"redis\"\nredis_sentinels = [\"redis://s:26379\"]"),
        &[],
        "session.redis_sentinel_master: is required",
    );
    refused(
        &with_session("store = \"redis\"\nredis_cluster_nodes = [\"redis://a\", \"ftp://b\"]"),
        &[],
        "session.redis_cluster_nodes[1]: must start with redis://",
    );
    refused(
        &with_session("redis_url = \"redis://a\""),
        &[],
        "session.store: is \"cookie\" but Redis settings",
    );
    refused(
        &with_session("store = \"redis\"\nredis_url = \"redis://a\"\nredis_prefix = \"{x}\""),
        &[],
        "session.redis_prefix: must not contain braces",
    );
    refused(
        &with_session(
            "store = \"redis\"\nredis_url = \"redis://a\"\nredis_password_file = \"/nonexistent/pw\"",
        ),
        &[],
        "session.redis_password_file: cannot read",
    );
    // The message never repeats a URL that may carry a password.
    let found = problems(
        &with_session("store = \"redis\"\nredis_url = \"redis://:secretpw@x:6379/db\""),
        &[],
    );
    assert!(found.iter().all(|p| !p.contains("secretpw")), "{found:?}");
}

#[test]
fn admin_token_needs_redis_and_length() {
    let redis = "store = \"redis\"\nredis_url = \"redis://a\"";
    let long = "a".repeat(40);
    let c = load_from_str(
        &format!("{}\n[admin]\ntoken = \"{long}\"\n", with_session(redis)),
        &HashMap::new(),
    )
    .unwrap();
    assert_eq!(
        c.admin.token.as_ref().map(Secret::expose),
        Some(long.as_str())
    );
    refused(
        &format!("{}\n[admin]\ntoken = \"short\"\n", with_session(redis)),
        &[],
        "admin.token: must be at least 32 characters",
    );
    refused(
        &format!("{}\n[admin]\ntoken = \"{long}\"\n", minimal()),
        &[],
        "admin.token: needs session.store = \"redis\"",
    );
    assert!(
        load_from_str(&minimal(), &HashMap::new())
            .unwrap()
            .admin
            .token
            .is_none()
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let toml = "upstream = \"ftp://x\"\nlog_format = \"xml\"\n[cookie]\nsecret = \"aGVsbG8=\"\nsame_site = \"x\"\n";
    let found = problems(toml, &[]);
    assert!(found.len() >= 5, "{found:#?}");
}

#[test]
fn environment_overrides_the_file() {
    let c = load_from_str(
        &minimal(),
        &env(&[
            ("ROCKETGATE_PROVIDER__CLIENT_SECRET", "0123"),
            ("ROCKETGATE_UPSTREAM", "http://10.0.0.1:9000"),
            (
                "ROCKETGATE_PROVIDER__SCOPES",
                "profile:read, profile:email,extra",
            ),
            ("ROCKETGATE_COOKIE__SECURE", "false"),
            ("ROCKETGATE_CONFIG", "/ignored/path.toml"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(
        c.provider.client_secret.expose(),
        "0123",
        "numeric-looking secrets stay strings"
    );
    assert_eq!(
        c.upstream.as_ref().unwrap().as_str(),
        "http://10.0.0.1:9000/"
    );
    assert_eq!(
        c.provider.scopes,
        vec!["profile:read", "profile:email", "extra"]
    );
    assert!(!c.cookie.secure);
}

#[test]
fn rocketpunch_guide_variables_are_honoured_below_ours() {
    let toml = minimal().replace("client_id = \"id\"\nclient_secret = \"secret\"\n", "");
    let c = load_from_str(
        &toml,
        &env(&[("RP_CLIENT_ID", "rp-id"), ("RP_CLIENT_SECRET", "rp-secret")]),
    )
    .unwrap();
    assert_eq!(c.provider.client_id, "rp-id");
    assert_eq!(c.provider.client_secret.expose(), "rp-secret");
    let c = load_from_str(
        &toml,
        &env(&[
            ("RP_CLIENT_ID", "rp-id"),
            ("ROCKETGATE_PROVIDER__CLIENT_ID", "ours"),
            ("RP_CLIENT_SECRET", "rp-secret"),
        ]),
    )
    .unwrap();
    assert_eq!(c.provider.client_id, "ours");
}

#[test]
fn secrets_can_come_from_files() {
    let dir = std::env::temp_dir().join(format!("rocketgate-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let client = dir.join("client_secret");
    let cookie = dir.join("cookie_secret");
    std::fs::File::create(&client)
        .unwrap()
        .write_all(b"from-file\n")
        .unwrap();
    std::fs::File::create(&cookie)
        .unwrap()
        .write_all(format!("{SECRET}\n").as_bytes())
        .unwrap();
    let toml = minimal()
        .replace(
            "client_secret = \"secret\"",
            &format!("client_secret_file = {:?}", client.display().to_string()),
        )
        .replace(
            &format!("secret = \"{SECRET}\""),
            &format!("secret_file = {:?}", cookie.display().to_string()),
        );
    let c = load_from_str(&toml, &HashMap::new()).unwrap();
    assert_eq!(c.provider.client_secret.expose(), "from-file");
    assert_eq!(c.cookie.keys.len(), 1);

    let missing = toml.replace(
        "client_secret",
        "client_secret_file = \"/nonexistent/x\"\n#",
    );
    refused(&missing, &[], "provider.client_secret_file: cannot read");
    let both = minimal().replace(
        "client_secret = \"secret\"",
        "client_secret = \"a\"\nclient_secret_file = \"/x\"",
    );
    refused(&both, &[], "provider.client_secret: set either");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn secrets_list_rotates_keys() {
    let other = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    let toml = minimal().replace(
        &format!("secret = \"{SECRET}\""),
        &format!("secrets = [\"{other}\", \"{SECRET}\"]"),
    );
    let c = load_from_str(&toml, &HashMap::new()).unwrap();
    assert_eq!(c.cookie.keys.len(), 2);
    let bad = minimal().replace(
        &format!("secret = \"{SECRET}\""),
        &format!("secrets = [\"{other}\", \"aGVsbG8=\"]"),
    );
    refused(
        &bad,
        &[],
        "cookie.secrets[1]: must decode to 32 bytes, got 5",
    );
}

#[test]
fn claim_pointers_must_be_json_pointers() {
    let toml = minimal().replace("[cookie]", "[provider.claims]\nemail = \"email\"\n[cookie]");
    refused(&toml, &[], "provider.claims.email: must be a JSON pointer");
}

#[test]
fn the_shipped_example_config_is_valid() {
    let text = include_str!("../../config/rocketgate.toml");
    let c = load_from_str(
        text,
        &env(&[
            ("ROCKETGATE_PROVIDER__CLIENT_SECRET", "s"),
            ("ROCKETGATE_COOKIE__SECRET", SECRET),
        ]),
    );
    assert!(c.is_ok(), "{:?}", c.err().map(|e| e.to_string()));
    assert!(c.is_ok_and(|c| c.tls.is_none()), "TLS is off by default");

    // The commented-out file keys are real keys: uncommented with real files, they load.
    let dir = std::env::temp_dir().join(format!("rocketgate-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    let cert = cert.display().to_string();
    let uncommented = text
        .replace(
            "# cert_file = \"/var/run/secrets/rocketgate-tls/tls.crt\"",
            &format!("cert_file = {cert:?}"),
        )
        .replace(
            "# key_file = \"/var/run/secrets/rocketgate-tls/tls.key\"",
            &format!("key_file = {:?}", key.display().to_string()),
        )
        .replace(
            "# upstream_ca_file = \"/etc/rocketgate/upstream-ca.pem\"",
            &format!("upstream_ca_file = {cert:?}"),
        )
        .replace(
            "# ca_file = \"/etc/rocketgate/provider-ca.pem\"",
            &format!("ca_file = {cert:?}"),
        );
    let c = load_from_str(
        &uncommented,
        &env(&[
            ("ROCKETGATE_PROVIDER__CLIENT_SECRET", "s"),
            ("ROCKETGATE_COOKIE__SECRET", SECRET),
        ]),
    )
    .unwrap();
    assert!(c.tls.is_some());
    assert_eq!((c.upstream_ca.len(), c.provider.ca.len()), (1, 1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn trusted_proxies_and_limits_are_validated() {
    let toml = format!(
        "trusted_proxies = [\"10.0.0.0/8\", \"nope\"]\n{}",
        minimal()
    );
    refused(&toml, &[], "trusted_proxies[1]: must be a CIDR");
    let c = load_from_str(
        &minimal(),
        &env(&[("ROCKETGATE_TRUSTED_PROXIES", "10.0.0.0/8, ::1")]),
    )
    .unwrap();
    assert!(c.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
    assert!(!c.trusted_proxies.contains("11.0.0.1".parse().unwrap()));
    let toml = format!("{}\n[limits]\nmax_header_bytes = 4096\n", minimal());
    refused(
        &toml,
        &[],
        "limits.max_header_bytes: must be between 8192 and 16777216, got 4096",
    );
    let toml = format!(
        "{}\n[limits]\nmax_logins_per_client = 0\nmax_connections = 0\n",
        minimal()
    );
    refused(
        &toml,
        &[],
        "limits.max_logins_per_client: must be at least 1",
    );
    refused(&toml, &[], "limits.max_connections: must be at least 1");
    let c = load_from_str(&minimal(), &HashMap::new()).unwrap();
    assert!(c.provider.pkce, "PKCE on by default");
    assert_eq!(c.limits.idle_timeout, Duration::from_secs(60));
}

#[test]
fn tls_needs_both_files_and_a_matching_pair() {
    let toml = format!("{}\n[tls]\ncert_file = \"/x.crt\"\n", minimal());
    refused(
        &toml,
        &[],
        "tls.key_file: is required when tls.cert_file is set",
    );
    refused(
        &minimal(),
        &[("ROCKETGATE_TLS__KEY_FILE", "/x.key")],
        "tls.cert_file: is required when tls.key_file is set",
    );
    let toml = format!(
        "{}\n[tls]\ncert_file = \"/nonexistent/x.crt\"\nkey_file = \"/nonexistent/x.key\"\n",
        minimal()
    );
    refused(
        &toml,
        &[],
        "tls.cert_file: cannot read \"/nonexistent/x.crt\"",
    );

    let dir = std::env::temp_dir().join(format!("rocketgate-config-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    let vars = [
        ("ROCKETGATE_TLS__CERT_FILE", cert.to_str().unwrap()),
        ("ROCKETGATE_TLS__KEY_FILE", key.to_str().unwrap()),
    ];
    let c = load_from_str(&minimal(), &env(&vars)).unwrap();
    let tls = c.tls.expect("tls configured");
    assert_eq!(tls.reload_interval, Duration::from_secs(10));
    assert!(
        load_from_str(&minimal(), &HashMap::new())
            .unwrap()
            .tls
            .is_none()
    );

    let mut zero = vars.to_vec();
    zero.push(("ROCKETGATE_TLS__RELOAD_INTERVAL", "0s"));
    refused(
        &minimal(),
        &zero,
        "tls.reload_interval: must be more than zero",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ca_files_must_hold_certificates() {
    let toml = format!("upstream_ca_file = \"/nonexistent/ca.pem\"\n{}", minimal());
    refused(
        &toml,
        &[],
        "upstream_ca_file: cannot read \"/nonexistent/ca.pem\"",
    );
    refused(
        &minimal(),
        &[("ROCKETGATE_PROVIDER__CA_FILE", "/nonexistent/p.pem")],
        "provider.ca_file: cannot read",
    );
    let c = load_from_str(&minimal(), &HashMap::new()).unwrap();
    assert!(c.upstream_ca.is_empty() && c.provider.ca.is_empty());
}

#[test]
fn pages_settings_are_read_and_checked_at_start() {
    let dir = std::env::temp_dir().join(format!("rocketgate-pages-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = load_from_str(&minimal(), &HashMap::new()).unwrap();
    assert_eq!(
        c.pages.app_name, "app.example.com",
        "defaults to public_url's host"
    );
    assert!(!c.pages.sign_in_page);

    let bad_logo = dir.join("logo.bmp");
    std::fs::write(&bad_logo, b"BM").unwrap();
    let vars = [("ROCKETGATE_PAGES__LOGO_FILE", bad_logo.to_str().unwrap())];
    refused(&minimal(), &vars, "pages.logo_file: ");
    refused(
        &minimal(),
        &[("ROCKETGATE_PAGES__LOGO_FILE", "/nonexistent/logo.png")],
        "pages.logo_file: cannot read",
    );

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    refused(
        &minimal(),
        &[("ROCKETGATE_PAGES__TEMPLATES_DIR", empty.to_str().unwrap())],
        "pages.templates_dir: contains neither",
    );
    let typo = dir.join("typo");
    std::fs::create_dir_all(&typo).unwrap();
    std::fs::write(typo.join("error.html"), "{{mesage}}").unwrap();
    refused(
        &minimal(),
        &[("ROCKETGATE_PAGES__TEMPLATES_DIR", typo.to_str().unwrap())],
        "pages.templates_dir: error.html: unknown placeholder {{mesage}}",
    );
    let no_link = dir.join("nolink");
    std::fs::create_dir_all(&no_link).unwrap();
    std::fs::write(no_link.join("sign_in.html"), "{{app_name}}").unwrap();
    refused(
        &minimal(),
        &[("ROCKETGATE_PAGES__TEMPLATES_DIR", no_link.to_str().unwrap())],
        "pages.templates_dir: sign_in.html must use {{sign_in_url}}",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn kubernetes_service_variables_do_not_stop_start_up() {
    let c = load_from_str(
        &minimal(),
        &env(&[
            ("ROCKETGATE_SERVICE_HOST", "10.96.0.12"),
            ("ROCKETGATE_SERVICE_PORT", "4180"),
            ("ROCKETGATE_PORT", "tcp://10.96.0.12:4180"),
            ("ROCKETGATE_PORT_4180_TCP_ADDR", "10.96.0.12"),
            ("ROCKETGATE_LISTEN", "127.0.0.1:9999"),
        ]),
    )
    .unwrap();
    assert_eq!(
        c.listen.to_string(),
        "127.0.0.1:9999",
        "real top-level keys still apply"
    );
    // A typo inside a section is still caught.
    let found = problems(&minimal(), &[("ROCKETGATE_COOKIE__SECERT", "x")]);
    assert!(found.iter().any(|p| p.contains("secert")), "{found:#?}");
}

#[test]
fn email_policy_problems_name_their_own_key_and_durations_are_bounded() {
    let toml = format!(
        "{}\n[access]\nallowed_email_domains = [\"a@b.com\"]\n",
        minimal()
    );
    refused(
        &toml,
        &[],
        "access.allowed_email_domains: `a@b.com` must not contain `@`",
    );
    let toml = format!("{}\n[access]\nallowed_emails = [\"nope\"]\n", minimal());
    refused(
        &toml,
        &[],
        "access.allowed_emails: `nope` must contain exactly one `@`",
    );
    let toml = format!("{}\n[limits]\nidle_timeout = \"1000000000y\"\n", minimal());
    refused(&toml, &[], "limits.idle_timeout: must be at most 10 years");
}

#[test]
fn assertions_are_off_by_default_and_get_defaults_when_on() {
    let c = load_from_str(&minimal(), &HashMap::new()).unwrap();
    assert!(c.assertion.is_none());
    let c = load_from_str(
        &minimal(),
        &env(&[("ROCKETGATE_ASSERTION__ENABLED", "true")]),
    )
    .unwrap();
    let a = c.assertion.expect("enabled");
    assert_eq!(a.lifetime, Duration::from_secs(300));
    assert_eq!(a.audience, "127.0.0.1", "defaults to the upstream host");
    assert!(a.generated_key, "no key_file: generated");
    assert!(!format!("{a:?}").contains("pkcs8"), "Debug hides the key");
}

#[test]
fn assertion_problems_are_each_named() {
    let toml = format!(
        "{}\n[assertion]\nenabled = true\nalgorithm = \"HS256\"\nlifetime = \"10s\"\naudience = \" \"\n",
        minimal()
    );
    refused(
        &toml,
        &[],
        "assertion.algorithm: only \"ES256\" is supported",
    );
    refused(&toml, &[], "assertion.lifetime: must be between 1m and 24h");
    refused(&toml, &[], "assertion.audience: must not be empty");
    refused(
        &minimal(),
        &[("ROCKETGATE_ASSERTION__KEY_FILE", "/no/such/key.pem")],
        "assertion.key_file: cannot read",
    );
    let mut file =
        tempfile_with("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n");
    file.flush().unwrap();
    refused(
        &minimal(),
        &[("ROCKETGATE_ASSERTION__KEY_FILE", file.path_str())],
        "assertion.key_file: must be a PEM file holding a PKCS#8 private key",
    );
}

#[test]
fn bearer_tokens_need_a_jwks_url() {
    refused(
        &minimal(),
        &[("ROCKETGATE_ACCESS__ACCEPT_BEARER_TOKENS", "true")],
        "access.accept_bearer_tokens: requires provider.jwks_url",
    );
    refused(
        &minimal(),
        &[("ROCKETGATE_PROVIDER__JWKS_URL", "ftp://keys")],
        "provider.jwks_url: must be an http:// or https:// URL",
    );
    refused(
        &minimal(),
        &[("ROCKETGATE_PROVIDER__ISSUER", " ")],
        "provider.issuer: must not be empty",
    );
    let c = load_from_str(
        &minimal(),
        &env(&[
            ("ROCKETGATE_ACCESS__ACCEPT_BEARER_TOKENS", "true"),
            (
                "ROCKETGATE_PROVIDER__JWKS_URL",
                "https://www.rocketpunch.com/.well-known/jwks.json",
            ),
        ]),
    )
    .unwrap();
    assert!(c.access.accept_bearer_tokens);
    assert!(c.provider.issuer.is_none());
    let c = load_from_str(&minimal(), &HashMap::new()).unwrap();
    assert!(!c.access.accept_bearer_tokens, "off by default");
}

/// A file in the temp dir, removed on drop.
struct TempFile(std::path::PathBuf, std::fs::File);

impl TempFile {
    fn path_str(&self) -> &str {
        self.0.to_str().unwrap()
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.1.flush()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tempfile_with(text: &str) -> TempFile {
    let path = std::env::temp_dir().join(format!(
        "rocketgate-config-test-{}-{:?}.pem",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    TempFile(path, file)
}

fn with_routes(extra: &str) -> String {
    format!(
        r#"
public_url = "https://auth.example.com"
[provider]
client_id = "id"
client_secret = "secret"
{extra}
"#
    )
}

/// `ROCKETGATE_COOKIE__SECRET` keeps `[cookie]` free for the tests' own keys.
const COOKIE_SECRET: (&str, &str) = ("ROCKETGATE_COOKIE__SECRET", SECRET);

#[test]
fn routes_make_the_top_level_upstream_optional_and_keep_their_order() {
    let c = load_from_str(
        &with_routes(
            r#"
[[routes]]
host = "Grafana.Example.com"
upstream = "http://127.0.0.1:3000"
allowed_groups = ["Ops"]
[[routes]]
path = "/api/"
upstream = "h2c://127.0.0.1:3001/base"
strip_prefix = true
preserve_host = false
allowed_email_domains = ["example.com"]
[[routes]]
host = "*.docs.example.com"
upstream = "http://127.0.0.1:3002"
public = true
[groups]
Ops = { emails = ["ada@example.com"], users = ["1001"] }
[provider.claims]
groups = "/data/groups"
[headers.claims]
"X-Forwarded-Name" = "/data/name"
[cookie]
domain = "example.com"
"#,
        ),
        &env(&[("ROCKETGATE_CONFIG_RELOAD_INTERVAL", "0s"), COOKIE_SECRET]),
    )
    .unwrap();
    assert!(c.upstream.is_none());
    assert_eq!(c.config_reload_interval, Duration::ZERO);
    let routes: Vec<_> = c.routes.iter().collect();
    assert_eq!(routes.len(), 3);
    assert_eq!(&*routes[0].name, "routes[0]");
    assert_eq!(routes[0].host.to_string(), "grafana.example.com");
    assert_eq!(
        routes[0].rules.groups,
        ["Ops"],
        "group names keep their case"
    );
    assert_eq!(routes[1].path.as_str(), "/api");
    assert!(routes[1].strip_prefix && !routes[1].preserve_host);
    assert!(routes[2].public);
    assert_eq!(c.groups.names().collect::<Vec<_>>(), ["Ops"]);
    assert_eq!(c.provider.claims.groups.as_deref(), Some("/data/groups"));
    assert_eq!(c.provider.claims.extra, ["/data/name"]);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // Every route host is a redirect target after sign-in; other hosts are not.
    let redirects = &c.access.redirects;
    assert!(
        redirects
            .check("https://grafana.example.com/d/1?x=1")
            .is_some()
    );
    assert!(
        redirects
            .check("http://a.docs.example.com:8080/x")
            .is_some()
    );
    assert!(redirects.check("https://docs.example.com/").is_none());
    assert!(redirects.check("https://evil.com/").is_none());
}

#[test]
fn without_routes_the_upstream_is_the_default_route() {
    let c = load_from_str(&minimal(), &HashMap::new()).unwrap();
    assert!(c.routes.is_single_default());
    assert_eq!(&*c.routes.iter().next().unwrap().name, DEFAULT_ROUTE_NAME);
    assert_eq!(c.config_reload_interval, Duration::from_secs(10));
    refused(&with_routes(""), &[COOKIE_SECRET], "upstream: is required");
}

#[test]
fn route_problems_name_their_entry() {
    let route = |body: &str| with_routes(&format!("[[routes]]\n{body}"));
    refused(
        &route(r#"host = "a.com""#),
        &[],
        "routes[0].upstream: is required",
    );
    refused(
        &route("upstream = \"ftp://a\""),
        &[COOKIE_SECRET],
        "routes[0].upstream: must be an http://",
    );
    refused(
        &route("upstream = \"http://a\"\nhost = \"a.*.com\""),
        &[COOKIE_SECRET],
        "routes[0].host:",
    );
    refused(
        &route("upstream = \"http://a\"\npath = \"/a/../b\""),
        &[COOKIE_SECRET],
        "routes[0].path:",
    );
    refused(
        &route("upstream = \"http://a\"\npath = \"api\""),
        &[COOKIE_SECRET],
        "routes[0].path:",
    );
    refused(
        &route("upstream = \"http://a\"\nallowed_email_domains = [\"a@b\"]"),
        &[COOKIE_SECRET],
        "routes[0].allowed_email_domains:",
    );
    refused(
        &route("upstream = \"http://a\"\nallowed_groups = [\"a,b\"]"),
        &[COOKIE_SECRET],
        "routes[0].allowed_groups:",
    );
    refused(
        &route("upstream = \"http://a\"\npublic = true\nallowed_groups = [\"ops\"]"),
        &[COOKIE_SECRET],
        "routes[0].public:",
    );
    refused(
        &route("upstream = \"http://a\"\nstrip_prefix = true"),
        &[COOKIE_SECRET],
        "routes[0].strip_prefix:",
    );
    refused(
        &route("upstream = \"http://a\"\nwhatever = 1"),
        &[COOKIE_SECRET],
        "(config):",
    );
    assert!(
        problems(
            &route("upstream = \"http://a\"\nwhatever = 1"),
            &[COOKIE_SECRET]
        )
        .iter()
        .any(|p| p.ends_with(": routes[0].whatever: unknown key")),
    );
}

#[test]
fn unknown_keys_and_validation_problems_are_reported_together() {
    let text = minimal().replace(
        "[cookie]",
        "upstream_timeout = \"soon\"\n[cookie]\nsecrt = 1",
    ) + "\n[access]\nemail_domains = [\"example.com\"]\n";
    let found = problems(&text, &[("ROCKETGATE_ACCESS__ALLOWD_EMAILS", "a@b.c")]);
    let has = |needle: &str| found.iter().any(|p| p.contains(needle));
    assert!(
        has("cookie.secrt: unknown key; did you mean `cookie.secret`?"),
        "{found:#?}"
    );
    assert!(
        has(
            "access.email_domains: unknown key; `email_domains` is oauth2-proxy's name; rocketgate's is `access.allowed_email_domains`"
        ),
        "{found:#?}"
    );
    assert!(
        has(
            "ROCKETGATE_ACCESS__ALLOWD_EMAILS: no setting `access.allowd_emails` is named by this variable; did you mean `ROCKETGATE_ACCESS__ALLOWED_EMAILS`?"
        ),
        "{found:#?}"
    );
    // The rest was still validated: the bad duration is there too, not hidden.
    assert!(
        has("provider.upstream_timeout") || has("upstream_timeout"),
        "{found:#?}"
    );
    assert!(
        found[0].starts_with("(config):"),
        "positions first: {found:#?}"
    );
}

#[test]
fn an_environment_value_wins_over_the_files_other_spelling_of_it() {
    // The file names a secret file that does not exist; the environment gives the secret.
    let file = minimal().replace(
        &format!("secret = \"{SECRET}\""),
        "secret_file = \"/nonexistent/rocketgate-secret\"",
    );
    assert!(
        !problems(&file, &[]).is_empty(),
        "the file alone is refused"
    );
    assert_eq!(problems(&file, &[COOKIE_SECRET]), Vec::<String>::new());
    // And the reverse: the file has the secret, the environment a file.
    let dir = std::env::temp_dir().join(format!("rocketgate-secret-{}", std::process::id()));
    std::fs::write(&dir, SECRET).unwrap();
    let path = dir.display().to_string();
    assert_eq!(
        problems(
            &minimal(),
            &[("ROCKETGATE_COOKIE__SECRET_FILE", path.as_str())]
        ),
        Vec::<String>::new()
    );
    let _ = std::fs::remove_file(&dir);
}

#[test]
fn groups_and_claim_headers_are_checked() {
    let base = "[[routes]]\nupstream = \"http://a\"\n";
    refused(
        &with_routes(&format!(
            "{base}[groups]\nops = {{ emails = [\"not-an-email\"] }}"
        )),
        &[COOKIE_SECRET],
        "groups.ops:",
    );
    refused(
        &with_routes(&format!(
            "{base}[headers.claims]\n\"X-Forwarded-Email\" = \"/e\""
        )),
        &[COOKIE_SECRET],
        "headers.claims.X-Forwarded-Email:",
    );
    refused(
        &with_routes(&format!("{base}[headers.claims]\n\"X-Name\" = \"name\"")),
        &[COOKIE_SECRET],
        "headers.claims.X-Name:",
    );
    refused(
        &with_routes(&format!("{base}[provider.claims]\ngroups = \"groups\"")),
        &[COOKIE_SECRET],
        "provider.claims.groups:",
    );
    refused(
        &with_routes(base),
        &[
            ("ROCKETGATE_CONFIG_RELOAD_INTERVAL", "often"),
            COOKIE_SECRET,
        ],
        "config_reload_interval:",
    );
}

#[test]
fn a_route_that_can_never_match_and_a_group_no_one_is_in_are_warnings() {
    let c = load_from_str(
        &with_routes(
            r#"
[[routes]]
host = "a.example.com"
path = "/x"
upstream = "http://127.0.0.1:1"
[[routes]]
host = "A.example.com"
path = "/x/"
upstream = "http://127.0.0.1:2"
allowed_groups = ["ghosts"]
"#,
        ),
        &env(&[COOKIE_SECRET]),
    )
    .unwrap();
    let warnings: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    assert!(
        warnings[0].starts_with("routes[0].host: a.example.com is not public_url's host"),
        "{warnings:#?}"
    );
    assert!(
        warnings[2].starts_with("routes[1]: never matches: routes[0]"),
        "{warnings:#?}"
    );
    assert!(
        warnings[3].starts_with("routes[1].allowed_groups: group `ghosts`"),
        "{warnings:#?}"
    );
}

#[test]
fn a_single_word_variable_is_reported_when_it_looks_like_a_mistake_and_ignored_otherwise() {
    let found = problems(
        &minimal(),
        &[
            ("ROCKETGATE_LISTN", "0.0.0.0:1"),
            ("ROCKETGATE_SECRET", "x"),
            ("ROCKETGATE_SERVICE_HOST", "10.0.0.1"),
            ("ROCKETGATE_PORT_4180_TCP_ADDR", "10.0.0.1"),
            ("ROCKETGATE_PORT", "tcp://10.0.0.1:4180"),
        ],
    );
    assert_eq!(
        found,
        [
            "ROCKETGATE_LISTN: no setting `listn` is named by this variable; did you mean `ROCKETGATE_LISTEN`?",
            "ROCKETGATE_SECRET: no setting `secret` is named by this variable; did you mean `ROCKETGATE_COOKIE__SECRET`?",
        ]
    );
}

#[test]
fn tracing_is_off_by_default_and_its_settings_are_checked() {
    let c = load_from_str(&minimal(), &HashMap::new()).unwrap();
    assert!(c.tracing.endpoint.is_none(), "no exporter unless asked");
    assert!((c.tracing.sample_ratio - 1.0).abs() < f64::EPSILON);
    assert_eq!(c.tracing.service_name, "rocketgate");

    let toml = format!(
        "{}\n[tracing]\notlp_endpoint = \"http://collector:4318\"\nsample_ratio = 0.01\nservice_name = \"gate\"\n[tracing.resource_attributes]\n\"deployment.environment.name\" = \"prod\"\n",
        minimal()
    );
    let c = load_from_str(&toml, &HashMap::new()).unwrap();
    assert_eq!(
        c.tracing
            .endpoint
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("http://collector:4318/v1/traces"),
        "a base URL gets the traces path"
    );
    assert!((c.tracing.sample_ratio - 0.01).abs() < f64::EPSILON);
    assert_eq!(c.tracing.service_name, "gate");
    assert_eq!(
        c.tracing.resource_attributes,
        vec![("deployment.environment.name".to_owned(), "prod".to_owned())]
    );
    let c = load_from_str(
        &minimal(),
        &env(&[(
            "ROCKETGATE_TRACING__OTLP_ENDPOINT",
            "https://otel.example.com/custom/traces",
        )]),
    )
    .unwrap();
    assert_eq!(
        c.tracing.endpoint.map(|u| u.to_string()).as_deref(),
        Some("https://otel.example.com/custom/traces"),
        "a path of its own is kept"
    );

    refused(
        &minimal(),
        &[("ROCKETGATE_TRACING__OTLP_ENDPOINT", "collector:4317")],
        "tracing.otlp_endpoint:",
    );
    refused(
        &minimal(),
        &[("ROCKETGATE_TRACING__SAMPLE_RATIO", "1.5")],
        "tracing.sample_ratio: must be between 0 and 1",
    );
    refused(
        &minimal(),
        &[("ROCKETGATE_TRACING__SERVICE_NAME", " ")],
        "tracing.service_name: must not be empty",
    );
    refused(
        &format!(
            "{}\n[tracing.resource_attributes]\n\"service.name\" = \"x\"\n\"bad key\" = \"y\"\n",
            minimal()
        ),
        &[],
        "tracing.resource_attributes.service.name: set tracing.service_name instead",
    );
    refused(
        &format!(
            "{}\n[tracing.resource_attributes]\n\"bad key\" = \"y\"\n",
            minimal()
        ),
        &[],
        "tracing.resource_attributes.bad key: names are",
    );
    refused(
        &format!("{}\n[tracing]\nsample_rate = 0.5\n", minimal()),
        &[],
        "(config):11:1: tracing.sample_rate: unknown key; did you mean `tracing.sample_ratio`?",
    );
}

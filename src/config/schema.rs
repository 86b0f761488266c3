//! The keys a configuration may have, derived from [`RawConfig`] itself so a new setting
//! needs no list kept in step, and what a key that is none of them most likely meant: a near
//! spelling in the same table, the same name in another section, or rocketgate's name for an
//! oauth2-proxy option.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::raw::{RawConfig, RawGroup, RawRoute};

/// The shape of one key.
#[derive(Debug)]
pub enum Node {
    /// A value: string, number, boolean or list of them.
    Leaf,
    /// A table with fixed keys (`[cookie]`).
    Table(BTreeMap<String, Node>),
    /// A table whose keys the user names (`[groups.ops]`, `[headers.claims]`).
    Map(Box<Node>),
    /// An array of tables (`[[routes]]`).
    Tables(Box<Node>),
}

/// oauth2-proxy's option names (as in its `.cfg` file and, upper-cased with an
/// `OAUTH2_PROXY_` prefix, its environment) and the rocketgate key that does the same job.
/// What `migrate-config` converts, and what an unknown key is compared with.
pub const OAUTH2_PROXY_NAMES: &[(&str, &str)] = &[
    ("http_address", "listen"),
    ("https_address", "listen"),
    ("upstreams", "upstream"),
    ("redirect_url", "public_url"),
    ("client_id", "provider.client_id"),
    ("client_secret", "provider.client_secret"),
    ("client_secret_file", "provider.client_secret_file"),
    ("login_url", "provider.authorize_url"),
    ("redeem_url", "provider.token_url"),
    ("profile_url", "provider.profile_url"),
    ("scope", "provider.scopes"),
    ("cookie_name", "cookie.name"),
    ("cookie_secret", "cookie.secret"),
    ("cookie_secret_file", "cookie.secret_file"),
    ("cookie_domains", "cookie.domain"),
    ("cookie_secure", "cookie.secure"),
    ("cookie_samesite", "cookie.same_site"),
    ("cookie_expire", "cookie.expire"),
    ("cookie_refresh", "session.refresh_before"),
    ("email_domains", "access.allowed_email_domains"),
    ("authenticated_emails_file", "access.allowed_emails_file"),
    ("whitelist_domains", "access.redirect_domains"),
    ("skip_auth_routes", "access.skip_auth_routes"),
    ("skip_auth_regex", "access.skip_auth_routes"),
    ("skip_jwt_bearer_tokens", "access.accept_bearer_tokens"),
    ("pass_access_token", "headers.pass_access_token"),
    ("reverse_proxy", "trusted_proxies"),
    ("metrics_address", "metrics_listen"),
    ("session_store_type", "session.store"),
    ("redis_connection_url", "session.redis_url"),
    (
        "redis_sentinel_master_name",
        "session.redis_sentinel_master",
    ),
    ("redis_sentinel_connection_urls", "session.redis_sentinels"),
    (
        "redis_cluster_connection_urls",
        "session.redis_cluster_nodes",
    ),
    ("skip_provider_button", "pages.sign_in_page"),
    ("custom_templates_dir", "pages.templates_dir"),
    ("tls_cert_file", "tls.cert_file"),
    ("tls_key_file", "tls.key_file"),
];

/// The schema of the whole file.
pub fn schema() -> &'static Node {
    static SCHEMA: OnceLock<Node> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut root = from_json("", &json(&RawConfig::default()));
        if let Node::Table(keys) = &mut root {
            keys.insert(
                "routes".into(),
                Node::Tables(Box::new(from_json("routes", &json(&RawRoute::default())))),
            );
            keys.insert(
                "groups".into(),
                Node::Map(Box::new(from_json("groups", &json(&RawGroup::default())))),
            );
            if let Some(Node::Table(headers)) = keys.get_mut("headers") {
                headers.insert("claims".into(), Node::Map(Box::new(Node::Leaf)));
            }
            if let Some(Node::Table(tracing)) = keys.get_mut("tracing") {
                tracing.insert(
                    "resource_attributes".into(),
                    Node::Map(Box::new(Node::Leaf)),
                );
            }
        }
        root
    })
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn from_json(path: &str, value: &Value) -> Node {
    match value {
        Value::Object(fields) => Node::Table(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), from_json(&format!("{path}.{k}"), v)))
                .collect(),
        ),
        _ => Node::Leaf,
    }
}

impl Node {
    /// The node under `key`, if this node has such a key.
    pub fn child(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Table(keys) => keys.get(key),
            Node::Map(element) => Some(element),
            Node::Leaf | Node::Tables(_) => None,
        }
    }

    /// The node at the dotted `path` (no array indexes).
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |node, key| node.child(key))
    }

    /// Every fixed key below this node as a dotted path (arrays of tables and maps as
    /// `routes.host`, `groups.*.emails`).
    fn paths(&self, prefix: &str, out: &mut Vec<String>) {
        let join = |k: &str| {
            if prefix.is_empty() {
                k.to_owned()
            } else {
                format!("{prefix}.{k}")
            }
        };
        match self {
            Node::Leaf => out.push(prefix.to_owned()),
            Node::Table(keys) => {
                for (k, node) in keys {
                    node.paths(&join(k), out);
                }
            }
            Node::Map(element) => element.paths(&join("*"), out),
            Node::Tables(element) => element.paths(prefix, out),
        }
    }
}

/// Every key of the file as a dotted path.
fn all_paths() -> &'static [String] {
    static PATHS: OnceLock<Vec<String>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let mut out = Vec::new();
        schema().paths("", &mut out);
        out
    })
}

/// What an unknown key most likely meant, as a sentence to append to "unknown key": `table`
/// is the dotted path of the table it is in (`""` at the top, `routes` in a `[[routes]]`),
/// `key` its own name. `None` when nothing is close.
pub fn suggest(table: &str, key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase().replace('-', "_");
    if let Some((_, ours)) = OAUTH2_PROXY_NAMES
        .iter()
        .find(|(theirs, _)| *theirs == lower)
    {
        return Some(format!(
            "`{key}` is oauth2-proxy's name; rocketgate's is `{ours}`"
        ));
    }
    suggest_key(table, &lower).map(|k| format!("did you mean `{k}`?"))
}

/// The known key `table.key` most likely meant: a close spelling in the same table first,
/// then the same name in another table, then a close spelling anywhere.
pub fn suggest_key(table: &str, key: &str) -> Option<String> {
    let paths = all_paths();
    let split = |p: &String| -> (String, String) {
        match p.rsplit_once('.') {
            Some((t, k)) => (t.to_owned(), k.to_owned()),
            None => (String::new(), p.clone()),
        }
    };
    let normalized_table = normalize_table(table);
    let close = |a: &str, b: &str| distance(a, b) <= (a.len().max(b.len()) / 4).clamp(1, 3);
    let sibling = paths
        .iter()
        .map(split)
        .filter(|(t, k)| *t == normalized_table && close(k, key))
        .min_by_key(|(_, k)| distance(k, key));
    if let Some((t, k)) = sibling {
        return Some(display(&t, &k));
    }
    let same_name = paths.iter().map(split).find(|(_, k)| k == key);
    if let Some((t, k)) = same_name {
        return Some(display(&t, &k));
    }
    paths
        .iter()
        .map(split)
        .filter(|(_, k)| close(k, key))
        .min_by_key(|(_, k)| distance(k, key))
        .map(|(t, k)| display(&t, &k))
}

/// `routes[2]` is `routes` in the schema; a `[groups.ops]` table is `groups.*`.
fn normalize_table(table: &str) -> String {
    let without_index = table.split('[').next().unwrap_or(table);
    let mut parts: Vec<&str> = without_index.split('.').filter(|s| !s.is_empty()).collect();
    if parts.first() == Some(&"groups") && parts.len() >= 2 {
        parts[1] = "*";
    }
    if parts.len() >= 3 && parts[0] == "headers" && parts[1] == "claims" {
        parts.truncate(2);
    }
    parts.join(".")
}

fn display(table: &str, key: &str) -> String {
    match table {
        "" => key.to_owned(),
        "routes" => format!("routes[].{key}"),
        t => format!("{t}.{key}"),
    }
}

/// Levenshtein distance with adjacent transpositions (`sercet` is one edit from `secret`).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_knows_every_section_and_the_user_named_tables() {
        let s = schema();
        assert!(s.at(&["listen"]).is_some());
        assert!(s.at(&["cookie", "secret"]).is_some());
        assert!(s.at(&["provider", "claims", "groups"]).is_some());
        assert!(s.at(&["groups", "ops", "emails"]).is_some());
        assert!(s.at(&["headers", "claims", "X-Team"]).is_some());
        assert!(matches!(s.at(&["routes"]), Some(Node::Tables(_))));
        assert!(s.at(&["cookie", "secrt"]).is_none());
        assert!(s.at(&["email_domains"]).is_none());
    }

    #[test]
    fn suggestions_prefer_the_same_table_then_the_same_name_then_oauth2_proxy() {
        assert_eq!(
            suggest("cookie", "secrt").as_deref(),
            Some("did you mean `cookie.secret`?")
        );
        assert_eq!(
            suggest("", "allowed_email_domains").as_deref(),
            Some("did you mean `access.allowed_email_domains`?")
        );
        assert_eq!(
            suggest("access", "email_domains").as_deref(),
            Some(
                "`email_domains` is oauth2-proxy's name; rocketgate's is `access.allowed_email_domains`"
            )
        );
        assert_eq!(
            suggest("", "cookie_secret").as_deref(),
            Some("`cookie_secret` is oauth2-proxy's name; rocketgate's is `cookie.secret`")
        );
        assert_eq!(
            suggest("routes[3]", "hots").as_deref(),
            Some("did you mean `routes[].host`?")
        );
        assert_eq!(
            suggest("groups.ops", "email").as_deref(),
            Some("did you mean `groups.*.emails`?")
        );
        assert_eq!(suggest("", "completely_unrelated_thing"), None);
    }

    #[test]
    fn transpositions_count_once() {
        assert_eq!(distance("sercet", "secret"), 1);
        assert_eq!(distance("secret", "secret"), 0);
        assert_eq!(distance("", "abc"), 3);
    }
}

//! What the file and the environment set, checked against the [`schema`] before anything is
//! deserialized, so that a mistake is reported where it was made: a TOML syntax error or an
//! unknown key at `file:line:column`, an unknown `ROCKETGATE_*` variable by its own name, each
//! with the key it most likely meant. Unknown keys are then left out, so the rest of the
//! configuration is still validated and every problem is reported in one run.
//!
//! It also settles which of two ways to give one setting wins: an environment value replaces
//! the file's value of the same setting, whichever of its spellings either uses
//! (`ROCKETGATE_COOKIE__SECRET` over a file's `secret_file`, and the reverse).

use std::collections::HashMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::ConfigProblem;
use super::schema::{Node, schema, suggest, suggest_key};

/// Keys that give one setting in different ways: set in the environment, any of them
/// replaces all of them in the file.
const ONE_SETTING: &[&[&str]] = &[
    &["cookie.secret", "cookie.secret_file", "cookie.secrets"],
    &["provider.client_secret", "provider.client_secret_file"],
    &["admin.token", "admin.token_file"],
    &["session.redis_url", "session.redis_url_file"],
];

/// The file and environment with what no key matches taken out, and the problems found.
pub(super) struct Checked {
    /// The file as TOML text, without unknown keys and without settings the environment
    /// replaces.
    pub text: String,
    /// The `ROCKETGATE_*` variables that name a setting.
    pub env: HashMap<String, String>,
    pub problems: Vec<ConfigProblem>,
}

/// Checks `text` (the file `name`) and `env` (`ROCKETGATE_*` variables that name a setting
/// or were meant to). `Err` only when the file is not TOML at all: nothing else can be said.
pub(super) fn check(
    name: &str,
    text: &str,
    mut env: HashMap<String, String>,
) -> Result<Checked, Vec<ConfigProblem>> {
    let parsed = DeTable::parse(text).map_err(|e| {
        let at = e.span().map(|s| position(name, text, s.start));
        vec![ConfigProblem {
            key: "(file)".into(),
            message: format!("not valid TOML: {}", e.message().trim()),
            at,
        }]
    })?;
    let mut problems = Vec::new();
    let mut unknown = Vec::new();
    walk(parsed.get_ref(), schema(), &mut Vec::new(), &mut unknown);
    for found in &unknown {
        let (table, key) = found.table_and_key();
        let hint = suggest(&table, &key).map_or(String::new(), |h| format!("; {h}"));
        problems.push(ConfigProblem {
            key: found.dotted(),
            message: format!("unknown key{hint}"),
            at: Some(position(name, text, found.span.start)),
        });
    }

    let mut table: toml::Table = toml::from_str(text)
        .map_err(|e| vec![ConfigProblem::new("(file)", format!("not valid TOML: {e}"))])?;
    for found in &unknown {
        remove(&mut table, &found.path);
    }

    let mut names: Vec<String> = env.keys().cloned().collect();
    names.sort();
    for var in names {
        let path = env_path(&var);
        let segments: Vec<&str> = path.split('.').collect();
        if matches!(schema().at(&segments), Some(Node::Leaf)) {
            continue;
        }
        env.remove(&var);
        let (table, key) = path.rsplit_once('.').unwrap_or(("", path.as_str()));
        let hint = suggest_key(table, key).map_or(String::new(), |k| {
            format!("; did you mean `{}`?", env_name(&k))
        });
        problems.push(ConfigProblem::new(
            &var,
            format!("no setting `{path}` is named by this variable{hint}"),
        ));
    }

    let from_env: Vec<String> = env.keys().map(|v| env_path(v)).collect();
    for setting in ONE_SETTING {
        if setting.iter().any(|k| from_env.iter().any(|e| e == k)) {
            for key in *setting {
                let segments: Vec<Segment> =
                    key.split('.').map(|s| Segment::Key(s.to_owned())).collect();
                remove(&mut table, &segments);
            }
        }
    }
    let text = toml::to_string(&table).map_err(|e| {
        vec![ConfigProblem::new(
            "(file)",
            format!("cannot re-read the file: {e}"),
        )]
    })?;
    Ok(Checked {
        text,
        env,
        problems,
    })
}

/// `ROCKETGATE_COOKIE__SECRET` is `cookie.secret`.
fn env_path(var: &str) -> String {
    var.strip_prefix("ROCKETGATE_")
        .unwrap_or(var)
        .to_ascii_lowercase()
        .replace("__", ".")
}

/// `cookie.secret` is `ROCKETGATE_COOKIE__SECRET`.
fn env_name(key: &str) -> String {
    format!(
        "ROCKETGATE_{}",
        key.replace("routes[].", "routes.")
            .replace('.', "__")
            .to_ascii_uppercase()
    )
}

/// `name:line:column` of byte `offset` in `text`, both counted from 1.
fn position(name: &str, text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{name}:{line}:{column}")
}

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A key no schema entry matches.
struct Unknown {
    path: Vec<Segment>,
    span: Range<usize>,
}

impl Unknown {
    /// `access.email_domains`, `routes[1].hots`.
    fn dotted(&self) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(k) if out.is_empty() => out.push_str(k),
                Segment::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// The dotted table it is in, and its own name.
    fn table_and_key(&self) -> (String, String) {
        let dotted = self.dotted();
        match dotted.rsplit_once('.') {
            Some((t, k)) => (t.to_owned(), k.to_owned()),
            None => (String::new(), dotted),
        }
    }
}

fn walk(table: &DeTable<'_>, node: &Node, path: &mut Vec<Segment>, out: &mut Vec<Unknown>) {
    for (key, value) in table {
        let name = key.get_ref().to_string();
        path.push(Segment::Key(name.clone()));
        match (node.child(&name), value.get_ref()) {
            (None, _) => out.push(Unknown {
                path: path.clone(),
                span: key.span(),
            }),
            (Some(inner @ (Node::Table(_) | Node::Map(_))), DeValue::Table(t)) => {
                walk(t, inner, path, out);
            }
            (Some(Node::Tables(element)), DeValue::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(t) = item.get_ref() {
                        path.push(Segment::Index(i));
                        walk(t, element, path, out);
                        path.pop();
                    }
                }
            }
            // A value of the wrong shape is deserialization's to report, with its type.
            _ => {}
        }
        path.pop();
    }
}

/// Removes the key at `path` from `table`, if it is there.
fn remove(table: &mut toml::Table, path: &[Segment]) {
    match path {
        [Segment::Key(k)] => {
            table.remove(k);
        }
        [Segment::Key(k), rest @ ..] => {
            if let Some(value) = table.get_mut(k) {
                remove_in(value, rest);
            }
        }
        _ => {}
    }
}

fn remove_in(value: &mut toml::Value, path: &[Segment]) {
    match (value, path) {
        (toml::Value::Table(t), _) => remove(t, path),
        (toml::Value::Array(items), [Segment::Index(i), rest @ ..]) => {
            if let Some(item) = items.get_mut(*i) {
                remove_in(item, rest);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str, env: &[(&str, &str)]) -> Vec<String> {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        match check("rocketgate.toml", text, env) {
            Ok(c) => c.problems.iter().map(ToString::to_string).collect(),
            Err(p) => p.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn unknown_keys_are_named_where_they_are_with_what_they_meant() {
        let text = "listen = \"127.0.0.1:4180\"\n\n[access]\nemail_domains = [\"example.com\"]\n\n[cookie]\n  secrt = \"x\"\n\n[[routes]]\npath = \"/\"\n\n[[routes]]\nhots = \"a.example.com\"\n";
        assert_eq!(
            problems(text, &[]),
            [
                "rocketgate.toml:4:1: access.email_domains: unknown key; `email_domains` is oauth2-proxy's name; rocketgate's is `access.allowed_email_domains`",
                "rocketgate.toml:7:3: cookie.secrt: unknown key; did you mean `cookie.secret`?",
                "rocketgate.toml:13:1: routes[1].hots: unknown key; did you mean `routes[].host`?",
            ]
        );
    }

    #[test]
    fn a_syntax_error_is_one_problem_at_its_place() {
        let got = problems("listen = \"a\"\n[cookie\nsecret = 1\n", &[]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("rocketgate.toml:2:"), "{got:?}");
        assert!(got[0].contains("(file): not valid TOML"), "{got:?}");
    }

    #[test]
    fn unknown_variables_are_named_by_their_own_name() {
        assert_eq!(
            problems(
                "",
                &[
                    ("ROCKETGATE_COOKIE__SECRT", "x"),
                    ("ROCKETGATE_LISTEN", "a")
                ]
            ),
            [
                "ROCKETGATE_COOKIE__SECRT: no setting `cookie.secrt` is named by this variable; did you mean `ROCKETGATE_COOKIE__SECRET`?"
            ]
        );
    }

    #[test]
    fn unknown_keys_are_left_out_and_the_rest_kept() {
        let text = "listen = \"a\"\nbogus = 1\n[cookie]\nsecret = \"s\"\nsecrt = \"x\"\n";
        let checked = check("f", text, HashMap::new()).unwrap();
        let table: toml::Table = toml::from_str(&checked.text).unwrap();
        assert_eq!(table["listen"].as_str(), Some("a"));
        assert!(table.get("bogus").is_none());
        assert_eq!(table["cookie"]["secret"].as_str(), Some("s"));
        assert!(table["cookie"].get("secrt").is_none());
    }

    #[test]
    fn an_environment_value_replaces_every_spelling_of_its_setting_in_the_file() {
        let text = "[cookie]\nsecret_file = \"/run/secret\"\nname = \"_rg\"\n[provider]\nclient_secret = \"from-file\"\n";
        let env = HashMap::from([
            (
                "ROCKETGATE_COOKIE__SECRET".to_owned(),
                "from-env".to_owned(),
            ),
            (
                "ROCKETGATE_PROVIDER__CLIENT_SECRET_FILE".to_owned(),
                "/run/cs".to_owned(),
            ),
        ]);
        let checked = check("f", text, env).unwrap();
        assert!(checked.problems.is_empty());
        let table: toml::Table = toml::from_str(&checked.text).unwrap();
        assert!(
            table["cookie"].get("secret_file").is_none(),
            "{}",
            checked.text
        );
        assert_eq!(table["cookie"]["name"].as_str(), Some("_rg"));
        assert!(table["provider"].get("client_secret").is_none());
    }

    #[test]
    fn columns_count_characters_and_lines_start_at_one() {
        assert_eq!(position("f", "ab\ncé d", 7), "f:2:4");
        assert_eq!(position("f", "x", 0), "f:1:1");
    }
}

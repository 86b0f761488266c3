//! Reading the TOML file and the environment into a [`RawConfig`].
//!
//! The environment is passed in as a map so tests never touch the process environment.

use std::collections::HashMap;
use std::path::Path;

use config::{Environment, File, FileFormat};

use super::keys;
use super::raw::RawConfig;
use super::validate::validate;
use super::{Config, ConfigError, ConfigProblem};

/// Environment variables that are not configuration keys although they carry our prefix.
const NOT_KEYS: &[&str] = &["ROCKETGATE_CONFIG", "ROCKETGATE_LOG"];

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "trusted_proxies",
    "provider.scopes",
    "cookie.secrets",
    "access.allowed_emails",
    "access.allowed_email_domains",
    "access.skip_auth_routes",
    "access.redirect_domains",
    "session.redis_cluster_nodes",
    "session.redis_sentinels",
];

/// The names of top-level settings (not sections). A single-segment `ROCKETGATE_X` variable is
/// a setting only if `x` is one of them: Kubernetes injects `ROCKETGATE_SERVICE_HOST`,
/// `ROCKETGATE_PORT`, ... for a Service named `rocketgate`, and those must not stop start-up.
/// Derived from `RawConfig` itself, so a new setting needs no list kept in step.
fn top_level_keys() -> Vec<String> {
    match serde_json::to_value(RawConfig::default()) {
        Ok(serde_json::Value::Object(fields)) => fields
            .into_iter()
            .filter(|(_, v)| !v.is_object())
            .map(|(k, _)| k)
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a single-segment `ROCKETGATE_<key>` that names no top-level setting looks like a
/// mistake for one (`ROCKETGATE_LISTN`, `ROCKETGATE_SECRET`), and so is reported rather than
/// ignored. Kubernetes' service variables (`ROCKETGATE_SERVICE_HOST`, `ROCKETGATE_PORT_...`)
/// never are.
fn near_miss(key: &str) -> bool {
    !key.starts_with("SERVICE_")
        && !key.starts_with("PORT")
        && super::schema::suggest_key("", &key.to_ascii_lowercase()).is_some()
}

/// Loads and validates the file at `path`, with `env` overriding it.
pub fn load(path: &Path, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    validate(load_raw(path, env)?)
}

/// The file at `path` with `env` over it, not yet validated: what a reload compares with the
/// settings in effect before it validates.
pub fn load_raw(path: &Path, env: &HashMap<String, String>) -> Result<RawConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read(format!("cannot read {}: {e}", path.display())))?;
    read(&path.display().to_string(), &text, env)
}

/// Like [`load_raw`], from TOML text already read (a reload parses exactly the bytes it hashed).
pub fn load_raw_from_str(
    toml: &str,
    env: &HashMap<String, String>,
) -> Result<RawConfig, ConfigError> {
    read("(config)", toml, env)
}

/// Like [`load_raw_from_str`] for the text of the file `name`, which problems then point into
/// (`name:line:column`).
pub fn load_raw_from_file_text(
    name: &str,
    toml: &str,
    env: &HashMap<String, String>,
) -> Result<RawConfig, ConfigError> {
    read(name, toml, env)
}

/// The problems of the file `name` alone that are its own: TOML syntax, unknown keys and
/// unknown variables of `env`, each at its place (the demo checks a user's file this way
/// before laying it over its own settings, which supply what the file leaves out).
pub fn key_problems(name: &str, toml: &str, env: &HashMap<String, String>) -> Vec<ConfigProblem> {
    let ours = env
        .iter()
        .filter(|(k, _)| k.starts_with("ROCKETGATE_") && k.contains("__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match keys::check(name, toml, ours) {
        Ok(checked) => checked.problems,
        Err(problems) => problems,
    }
}

/// Loads and validates TOML text, with `env` overriding it (the demo and tests use this).
pub fn load_from_str(toml: &str, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    validate(read("(config)", toml, env)?)
}

/// Validates settings already read (see [`load_raw`]).
pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
    validate(raw)
}

/// The file `name` (its `text`) with the environment over it. Unknown keys and variables are
/// problems, reported together with everything validation finds in the rest.
fn read(name: &str, text: &str, env: &HashMap<String, String>) -> Result<RawConfig, ConfigError> {
    let top_level = top_level_keys();
    let ours: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| !NOT_KEYS.contains(&k.as_str()))
        .filter(|(k, _)| {
            k.strip_prefix("ROCKETGATE_").is_some_and(|key| {
                key.contains("__")
                    || top_level.iter().any(|t| t.eq_ignore_ascii_case(key))
                    || near_miss(key)
            })
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let checked = keys::check(name, text, ours).map_err(ConfigError::Invalid)?;
    let mut ours = checked.env;
    let source = File::from_str(&checked.text, FileFormat::Toml);
    // Lists are split here rather than by the config crate, whose list parsing would also
    // turn a numeric-looking secret such as "0123" into the number 123.
    let mut builder = config::Config::builder().add_source(source);
    for key in LIST_KEYS {
        let var = format!("ROCKETGATE_{}", key.replace('.', "__").to_ascii_uppercase());
        if let Some(value) = ours.remove(&var) {
            let items: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            builder = builder
                .set_override(*key, items)
                .map_err(|e| ConfigError::Read(e.to_string()))?;
        }
    }
    let explicit_id = ours.contains_key("ROCKETGATE_PROVIDER__CLIENT_ID");
    let explicit_secret = ours.contains_key("ROCKETGATE_PROVIDER__CLIENT_SECRET");
    let environment = Environment::with_prefix("ROCKETGATE")
        .prefix_separator("_")
        .separator("__")
        .source(Some(ours));
    let built = builder
        .add_source(environment)
        .build()
        .and_then(config::Config::try_deserialize::<RawConfig>);
    let mut raw = match built {
        Ok(raw) => raw,
        Err(e) if checked.problems.is_empty() => return Err(ConfigError::Read(e.to_string())),
        Err(e) => {
            let mut problems = checked.problems;
            problems.push(ConfigProblem::new("(file)", e.to_string()));
            return Err(ConfigError::Invalid(problems));
        }
    };

    // Rocketpunch's own guide names these; honour them below our explicit keys.
    if !explicit_id && let Some(id) = env.get("RP_CLIENT_ID") {
        raw.provider.client_id = Some(id.clone());
    }
    if !explicit_secret && let Some(secret) = env.get("RP_CLIENT_SECRET") {
        raw.provider.client_secret = Some(secret.clone());
        raw.provider.client_secret_file = None;
    }
    if checked.problems.is_empty() {
        return Ok(raw);
    }
    // Unknown keys were left out, so the rest can still be checked: every problem at once.
    let mut problems = checked.problems;
    if let Err(e) = validate(raw) {
        problems.extend(e.problems());
    }
    Err(ConfigError::Invalid(problems))
}

//! Reading the TOML file and the environment into a [`RawConfig`].
//!
//! The environment is passed in as a map so tests never touch the process environment.

use std::collections::HashMap;
use std::path::Path;

use config::{Environment, File, FileFormat};

use super::raw::RawConfig;
use super::validate::validate;
use super::{Config, ConfigError};

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

/// Loads and validates the file at `path`, with `env` overriding it.
pub fn load(path: &Path, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    validate(load_raw(path, env)?)
}

/// The file at `path` with `env` over it, not yet validated: what a reload compares with the
/// settings in effect before it validates.
pub fn load_raw(path: &Path, env: &HashMap<String, String>) -> Result<RawConfig, ConfigError> {
    read(
        File::from(path).format(FileFormat::Toml).required(true),
        env,
    )
}

/// Like [`load_raw`], from TOML text already read (a reload parses exactly the bytes it hashed).
pub fn load_raw_from_str(
    toml: &str,
    env: &HashMap<String, String>,
) -> Result<RawConfig, ConfigError> {
    read(File::from_str(toml, FileFormat::Toml), env)
}

/// Loads and validates TOML text, with `env` overriding it (the demo and tests use this).
pub fn load_from_str(toml: &str, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    validate(read(File::from_str(toml, FileFormat::Toml), env)?)
}

/// Validates settings already read (see [`load_raw`]).
pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
    validate(raw)
}

fn read<S>(source: S, env: &HashMap<String, String>) -> Result<RawConfig, ConfigError>
where
    S: config::Source + Send + Sync + 'static,
{
    let top_level = top_level_keys();
    let mut ours: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| !NOT_KEYS.contains(&k.as_str()))
        .filter(|(k, _)| {
            k.strip_prefix("ROCKETGATE_").is_some_and(|key| {
                key.contains("__") || top_level.iter().any(|t| t.eq_ignore_ascii_case(key))
            })
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
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
    let mut raw: RawConfig = builder
        .add_source(environment)
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| ConfigError::Read(e.to_string()))?;

    // Rocketpunch's own guide names these; honour them below our explicit keys.
    if !explicit_id && let Some(id) = env.get("RP_CLIENT_ID") {
        raw.provider.client_id = Some(id.clone());
    }
    if !explicit_secret && let Some(secret) = env.get("RP_CLIENT_SECRET") {
        raw.provider.client_secret = Some(secret.clone());
        raw.provider.client_secret_file = None;
    }
    Ok(raw)
}

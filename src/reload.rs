//! Live reload: on SIGHUP, and when the configuration file's contents change, the whole file
//! is read and validated again and, if valid, serves every request from then on.
//!
//! A file that does not validate is refused with every problem logged by key, and the
//! previous configuration keeps serving. Settings that need a restart (see
//! [`crate::config::reload`]) keep their running values, and the log says which ones the
//! file changed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::raw::RawConfig;
use crate::config::{self, ConfigError, ConfigProblem};
use crate::live::Live;
use crate::metrics::ReloadResult;

/// What set a reload off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP: always re-read, since files the config names (secrets, templates) may have
    /// changed while the config file itself did not.
    Signal,
    /// The periodic check: only when the file's contents changed since the last look.
    Poll,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "SIGHUP",
            Trigger::Poll => "file changed",
        }
    }
}

/// How one reload attempt ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// New requests are served with the new file. The keys are the restart-only settings
    /// the file changed, which keep their running values.
    Applied { ignored: Vec<&'static str> },
    /// The file could not be used; the previous configuration keeps serving.
    Refused(Vec<ConfigProblem>),
    /// A periodic check found the same contents as last time.
    Unchanged,
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Assemble(#[from] crate::app::AppError),
}

impl ReloadError {
    fn problems(&self) -> Vec<ConfigProblem> {
        match self {
            ReloadError::Config(e) => e.problems(),
            other => vec![ConfigProblem {
                key: "(file)".into(),
                message: other.to_string(),
                at: None,
            }],
        }
    }
}

/// A short, stable name for a configuration file's contents (`rocketgate_config_info`).
pub fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// [`content_hash`] of a configuration file's `bytes` together with the files it names that
/// take effect on a reload when only they change (`access.allowed_emails_file`): a periodic
/// check then sees an edited list as a changed configuration. An unreadable file counts as
/// empty here; validation reports it.
pub fn config_hash(bytes: &[u8], raw: &RawConfig) -> String {
    let mut all = bytes.to_vec();
    for path in raw.access.allowed_emails_file.iter() {
        all.push(0);
        all.extend(std::fs::read(path).unwrap_or_default());
    }
    content_hash(&all)
}

/// The settings in effect and the contents last looked at.
struct Seen {
    raw: RawConfig,
    hash: String,
}

pub struct Reloader {
    path: PathBuf,
    env: HashMap<String, String>,
    live: Arc<Live>,
    seen: Mutex<Seen>,
}

impl Reloader {
    /// `raw` is what the running state was validated from, `hash` the [`content_hash`] of
    /// the file it was read from.
    pub fn new(
        path: PathBuf,
        env: HashMap<String, String>,
        live: Arc<Live>,
        raw: RawConfig,
        hash: String,
    ) -> Arc<Self> {
        live.app().metrics.config_in_effect(&hash);
        Arc::new(Self {
            path,
            env,
            live,
            seen: Mutex::new(Seen { raw, hash }),
        })
    }

    /// Reads, validates and (if valid) installs the file now, logging the outcome.
    pub fn reload(&self, trigger: Trigger) -> Outcome {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(source) => {
                let e = ReloadError::Read {
                    path: self.path.display().to_string(),
                    source,
                };
                return self.refused(trigger, &e);
            }
        };
        let hash = config_hash(&bytes, &seen.raw);
        if trigger == Trigger::Poll && hash == seen.hash {
            return Outcome::Unchanged;
        }
        // Remembered even if refused below, so one bad edit is reported once, not per check.
        seen.hash = hash.clone();
        let text = String::from_utf8_lossy(&bytes);
        match self.install(&seen.raw, &text) {
            Ok((raw, ignored, warnings)) => {
                // The new file may name other files to watch.
                seen.hash = config_hash(&bytes, &raw);
                seen.raw = raw;
                let hash = seen.hash.clone();
                let app = self.live.app();
                app.metrics.config_reload(ReloadResult::Applied);
                app.metrics.config_in_effect(&hash);
                tracing::info!(
                    trigger = trigger.as_str(),
                    hash = %hash,
                    routes = app.routes.iter().count(),
                    "configuration reloaded"
                );
                crate::audit::record(crate::audit::Event::ConfigReloaded {
                    result: "applied",
                    trigger: trigger.as_str(),
                    hash: Some(&hash),
                });
                for key in &ignored {
                    tracing::warn!(
                        key = %key,
                        "configuration reload: {key} changed but needs a restart; the running value stays"
                    );
                }
                for warning in &warnings {
                    tracing::warn!(key = %warning.key, "{}", warning.message);
                }
                Outcome::Applied { ignored }
            }
            Err(e) => self.refused(trigger, &e),
        }
    }

    /// The new state from `text`, installed; its settings, the ignored keys and warnings.
    #[allow(clippy::type_complexity)]
    fn install(
        &self,
        running: &RawConfig,
        text: &str,
    ) -> Result<(RawConfig, Vec<&'static str>, Vec<ConfigProblem>), ReloadError> {
        let name = self.path.display().to_string();
        let mut raw = config::load_raw_from_file_text(&name, text, &self.env)?;
        // The file as written must be valid, restart-only keys included: a typo in `listen`
        // is reported now, not at the next restart.
        config::from_raw(raw.clone())?;
        let ignored = config::reload::keep_restart_only(running, &mut raw);
        let config = config::from_raw(raw.clone())?;
        let warnings = config.warnings.clone();
        let app = self.live.app().reload(config)?;
        self.live.replace(app);
        Ok((raw, ignored, warnings))
    }

    fn refused(&self, trigger: Trigger, e: &ReloadError) -> Outcome {
        let problems = e.problems();
        self.live.app().metrics.config_reload(ReloadResult::Refused);
        crate::audit::record(crate::audit::Event::ConfigReloaded {
            result: "refused",
            trigger: trigger.as_str(),
            hash: None,
        });
        for problem in &problems {
            tracing::error!(key = %problem.key, "configuration reload: {}", problem.message);
        }
        tracing::error!(
            trigger = trigger.as_str(),
            problems = problems.len(),
            "configuration reload refused; the previous configuration keeps serving"
        );
        Outcome::Refused(problems)
    }

    /// Reloads on every SIGHUP and, unless `interval` is zero, whenever a check every
    /// `interval` finds the file changed, until the process ends. SIGHUP is caught from the
    /// moment this returns.
    pub fn spawn_watch(self: Arc<Self>, interval: Duration) {
        let hangups = hangups();
        tokio::spawn(self.watch(hangups, interval));
    }

    async fn watch(self: Arc<Self>, mut hangups: Hangups, interval: Duration) {
        let mut ticks = (!interval.is_zero()).then(|| {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });
        loop {
            let trigger = tokio::select! {
                () = next_hangup(&mut hangups) => Trigger::Signal,
                _ = async {
                    match ticks.as_mut() {
                        Some(t) => t.tick().await,
                        None => std::future::pending().await,
                    }
                } => Trigger::Poll,
            };
            let this = self.clone();
            // Reading files and validating is blocking work; keep it off the request threads.
            let _ = tokio::task::spawn_blocking(move || this.reload(trigger)).await;
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangups() -> Hangups {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload only by file change");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangups() -> Hangups {}

#[cfg(unix)]
async fn next_hangup(hangups: &mut Hangups) {
    match hangups {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) {
    std::future::pending().await
}

/// SIGHUP's default action ends the process: where there is nothing to reload (the demo),
/// say so instead, from the moment this returns.
pub fn spawn_ignore_hangups() {
    let mut hangups = hangups();
    tokio::spawn(async move {
        loop {
            next_hangup(&mut hangups).await;
            tracing::info!("SIGHUP: no configuration file to reload");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_names_the_contents() {
        assert_eq!(content_hash(b"a"), content_hash(b"a"));
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
        assert_eq!(content_hash(b"").len(), 16);
    }
}

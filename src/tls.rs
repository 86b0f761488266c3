//! TLS: the HTTPS listener's certificate (loaded, checked and hot-reloaded) and the roots that
//! outbound calls (upstream, Rocketpunch) trust.
//!
//! cert-manager and Kubernetes rotate certificates by rewriting the mounted Secret files in
//! place, so the listener never holds one certificate for its lifetime: a [`ReloadingResolver`]
//! hands every new handshake the current [`CertifiedKey`], and a background task swaps in a new
//! one when the files change and parse as a matching pair. Connections already established keep
//! the keys they negotiated; a broken pair on disk is reported and ignored, so a bad rotation
//! never takes the listener down.
//!
//! Nothing here ever formats key material: errors name files and say what is wrong with them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// The listener's certificate files. The pair was read and checked when the configuration
/// was validated; the files themselves stay the source of truth so rotations are picked up.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// How often the files are checked for a new certificate.
    pub reload_interval: Duration,
}

/// ALPN protocols offered by the listener, preferred first. hyper-util's auto server tells
/// HTTP/1.1 from h2 by the bytes it reads, so ALPN only has to let the client choose.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why a certificate, key or CA bundle could not be used. Every variant carries the
/// configuration key its file came from, so callers can report `key: message`.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path:?}: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path:?} is not valid PEM ({reason})")]
    Pem {
        key: &'static str,
        path: PathBuf,
        reason: &'static str,
    },
    #[error("{path:?} holds no PEM certificate")]
    NoCertificate { key: &'static str, path: PathBuf },
    #[error("{path:?} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { key: &'static str, path: PathBuf },
    #[error("{path:?}: the private key cannot be used ({reason})")]
    BadKey {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("the private key in {path:?} does not match the certificate in {cert:?}")]
    Mismatch {
        key: &'static str,
        path: PathBuf,
        cert: PathBuf,
    },
    #[error("{path:?}: certificate {index} cannot be a trust root ({reason})")]
    BadRoot {
        key: &'static str,
        path: PathBuf,
        index: usize,
        reason: String,
    },
    #[error("cannot set up TLS: {reason}")]
    Setup { reason: String },
}

impl TlsError {
    /// The configuration key whose file is at fault (`tls.cert_file`, `provider.ca_file`, ...).
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. }
            | TlsError::Pem { key, .. }
            | TlsError::NoCertificate { key, .. }
            | TlsError::NoKey { key, .. }
            | TlsError::BadKey { key, .. }
            | TlsError::Mismatch { key, .. }
            | TlsError::BadRoot { key, .. } => key,
            TlsError::Setup { .. } => "tls",
        }
    }
}

/// The one crypto provider rocketgate is built with, named explicitly so TLS set-up does not
/// depend on a process-wide default having been installed first.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

/// A PEM error, described without quoting the input (which may be a private key).
fn pem_reason(error: &pem::Error) -> &'static str {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section is not valid base64",
        _ => "malformed",
    }
}

/// Every certificate in the PEM text `bytes` (other sections, such as a key, are skipped).
fn parse_certificates(
    key: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            key,
            path: path.to_owned(),
            reason: pem_reason(&e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            key,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in the PEM text `bytes`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
fn parse_private_key(
    key: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            key,
            path: path.to_owned(),
        },
        other => TlsError::Pem {
            key,
            path: path.to_owned(),
            reason: pem_reason(&other),
        },
    })
}

/// Checks that `key` signs for the first certificate of `certs` and bundles them.
fn certified_key(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    settings: &TlsSettings,
) -> Result<CertifiedKey, TlsError> {
    CertifiedKey::from_der(certs, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
            key: "tls.key_file",
            path: settings.key_file.clone(),
            cert: settings.cert_file.clone(),
        },
        other => TlsError::BadKey {
            key: "tls.key_file",
            path: settings.key_file.clone(),
            reason: other.to_string(),
        },
    })
}

/// Parses the configured certificate chain and key and checks they belong together.
fn pair_from_bytes(
    settings: &TlsSettings,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let certs = parse_certificates("tls.cert_file", &settings.cert_file, cert_pem)?;
    let key = parse_private_key("tls.key_file", &settings.key_file, key_pem)?;
    certified_key(certs, key, settings)
}

/// Reads and checks the configured pair: what start-up validation and every reload do.
pub fn load_pair(settings: &TlsSettings) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read("tls.cert_file", &settings.cert_file)?;
    let key_pem = read("tls.key_file", &settings.key_file)?;
    pair_from_bytes(settings, &cert_pem, &key_pem)
}

/// Extra trust roots for outbound TLS, read from a PEM bundle (`upstream_ca_file`,
/// `provider.ca_file`). They are added to the system roots, never replace them.
#[derive(Clone, Default)]
pub struct CaBundle {
    certs: Vec<CertificateDer<'static>>,
}

impl CaBundle {
    /// Reads the bundle at `path` for configuration key `key`; every certificate in it must
    /// be usable as a trust root, so a wrong file is caught at start-up, not at first call.
    pub fn read(key: &'static str, path: &Path) -> Result<CaBundle, TlsError> {
        let bytes = read(key, path)?;
        let certs = parse_certificates(key, path, &bytes)?;
        let mut store = RootCertStore::empty();
        for (i, cert) in certs.iter().enumerate() {
            store.add(cert.clone()).map_err(|e| TlsError::BadRoot {
                key,
                path: path.to_owned(),
                index: i + 1,
                reason: e.to_string(),
            })?;
        }
        Ok(CaBundle { certs })
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaBundle({} certificates)", self.certs.len())
    }
}

/// A client TLS configuration trusting the system roots (webpki's when the system has none,
/// as hyper-rustls does) plus `extra`. ALPN is left empty for hyper-rustls to fill in.
pub fn client_config(extra: &CaBundle) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _unusable) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    // Already checked one by one when the bundle was read.
    roots.add_parsable_certificates(extra.certs.iter().cloned());
    ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Hands every handshake the current certificate; swapped atomically on reload.
pub struct ReloadingResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingResolver {
    pub fn new(key: CertifiedKey) -> Self {
        Self {
            current: RwLock::new(Arc::new(key)),
        }
    }

    /// The certificate new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        // A panic while holding the lock cannot leave a half-written Arc behind.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn replace(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
    }
}

impl fmt::Debug for ReloadingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReloadingResolver")
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The listener's TLS: the acceptor for new connections and the task that reloads its
/// certificate. Dropping it stops the reloading.
pub struct ServerTls {
    acceptor: TlsAcceptor,
    resolver: Arc<ReloadingResolver>,
    reloader: JoinHandle<()>,
}

impl ServerTls {
    /// Loads the configured pair and starts watching its files. Must run inside a Tokio
    /// runtime (the reloader is a task on it).
    pub fn start(settings: &TlsSettings) -> Result<ServerTls, TlsError> {
        let resolver = Arc::new(ReloadingResolver::new(load_pair(settings)?));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Setup {
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        let initial = fingerprint(settings);
        let reloader = tokio::spawn(reload_loop(
            settings.clone(),
            Arc::downgrade(&resolver),
            initial,
        ));
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            reloader,
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// The certificate chain new handshakes currently get.
    pub fn current_chain(&self) -> Vec<CertificateDer<'static>> {
        self.resolver.current().cert.clone()
    }
}

impl Drop for ServerTls {
    fn drop(&mut self) {
        self.reloader.abort();
    }
}

/// A digest of both files' contents, so a change is noticed whatever happened to their
/// modification times (Kubernetes swaps a symlink; `cp` may keep the mtime). `None` when
/// either cannot be read.
fn fingerprint(settings: &TlsSettings) -> Option<[u8; 32]> {
    let cert = std::fs::read(&settings.cert_file).ok()?;
    let key = std::fs::read(&settings.key_file).ok()?;
    Some(digest(&cert, &key))
}

fn digest(cert: &[u8], key: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update((cert.len() as u64).to_be_bytes());
    hash.update(cert);
    hash.update(key);
    hash.finalize().into()
}

/// Every `reload_interval`, re-reads the pair; installs it when it changed and is valid.
/// A broken pair is logged once per distinct content and the previous certificate kept, so a
/// rotation caught half-written is picked up whole at a later tick.
async fn reload_loop(
    settings: TlsSettings,
    resolver: Weak<ReloadingResolver>,
    mut seen: Option<[u8; 32]>,
) {
    let mut ticks = tokio::time::interval(settings.reload_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(resolver) = resolver.upgrade() else {
            return;
        };
        let files = tokio::join!(
            tokio::fs::read(&settings.cert_file),
            tokio::fs::read(&settings.key_file)
        );
        let (cert_pem, key_pem) = match files {
            (Ok(cert), Ok(key)) => (cert, key),
            (Err(source), _) | (_, Err(source)) => {
                // Mid-rotation a file may briefly be missing; say so once, keep serving.
                if seen.is_some() {
                    tracing::warn!(
                        error = %source,
                        cert_file = %settings.cert_file.display(),
                        key_file = %settings.key_file.display(),
                        "TLS certificate files unreadable; keeping the current certificate"
                    );
                }
                seen = None;
                continue;
            }
        };
        let now = digest(&cert_pem, &key_pem);
        if seen == Some(now) {
            continue;
        }
        seen = Some(now);
        match pair_from_bytes(&settings, &cert_pem, &key_pem) {
            Ok(key) => {
                resolver.replace(key);
                tracing::info!(
                    cert_file = %settings.cert_file.display(),
                    "TLS certificate reloaded"
                );
            }
            Err(e) => tracing::warn!(
                key = e.key(),
                error = %e,
                "new TLS certificate refused; keeping the current one"
            ),
        }
    }
}

#[cfg(test)]
mod tests;

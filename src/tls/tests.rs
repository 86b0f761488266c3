//! Certificates and keys are generated per test with rcgen; nothing is checked in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, PKCS_RSA_SHA256,
    RsaKeySize,
};

use super::*;

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rocketgate-tls-unit-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf for localhost signed by `ca`, with `key`: (certificate PEM, certificate DER).
fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, key: &KeyPair) -> (String, Vec<u8>) {
    let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(key, ca).unwrap();
    (cert.pem(), cert.der().to_vec())
}

fn settings(cert: PathBuf, key: PathBuf) -> TlsSettings {
    TlsSettings {
        cert_file: cert,
        key_file: key,
        reload_interval: Duration::from_millis(50),
    }
}

/// The content of the first DER element inside the outer SEQUENCE's third field: a PKCS#8
/// `privateKey` OCTET STRING holds the PKCS#1 (RSA) or SEC1 (EC) key.
fn inner_key(pkcs8: &[u8]) -> Vec<u8> {
    fn tlv(b: &[u8], at: usize) -> (usize, usize) {
        let first = b[at + 1] as usize;
        if first < 0x80 {
            (at + 2, at + 2 + first)
        } else {
            let n = first & 0x7f;
            let len = b[at + 2..at + 2 + n]
                .iter()
                .fold(0usize, |acc, x| acc << 8 | *x as usize);
            (at + 2 + n, at + 2 + n + len)
        }
    }
    let (body, _) = tlv(pkcs8, 0);
    let (_, after_version) = tlv(pkcs8, body);
    let (_, after_alg) = tlv(pkcs8, after_version);
    assert_eq!(pkcs8[after_alg], 0x04, "OCTET STRING");
    let (start, end) = tlv(pkcs8, after_alg);
    pkcs8[start..end].to_vec()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[test]
fn pkcs8_pkcs1_and_sec1_keys_all_load() {
    let dir = TempDir::new();
    let ca = ca();
    let ec = KeyPair::generate().unwrap();
    let (ec_cert, _) = leaf(&ca, &ec);
    let cert = dir.write("ec.crt", &ec_cert);
    let pkcs8 = dir.write("ec.pkcs8", &ec.serialize_pem());
    let sec1 = dir.write(
        "ec.sec1",
        &pem("EC PRIVATE KEY", &inner_key(&ec.serialize_der())),
    );
    load_pair(&settings(cert.clone(), pkcs8)).expect("PKCS#8");
    load_pair(&settings(cert, sec1)).expect("SEC1");

    let rsa = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap();
    let (rsa_cert, _) = leaf(&ca, &rsa);
    let cert = dir.write("rsa.crt", &rsa_cert);
    let pkcs1 = dir.write(
        "rsa.pkcs1",
        &pem("RSA PRIVATE KEY", &inner_key(&rsa.serialize_der())),
    );
    load_pair(&settings(cert, pkcs1)).expect("PKCS#1");
}

#[test]
fn a_key_that_does_not_match_is_refused_under_key_file() {
    let dir = TempDir::new();
    let ca = ca();
    let (cert_pem, _) = leaf(&ca, &KeyPair::generate().unwrap());
    let cert = dir.write("a.crt", &cert_pem);
    let other = dir.write("b.key", &KeyPair::generate().unwrap().serialize_pem());
    let e = load_pair(&settings(cert, other)).unwrap_err();
    assert_eq!(e.key(), "tls.key_file");
    assert!(
        e.to_string().contains("does not match the certificate"),
        "{e}"
    );
}

#[test]
fn unreadable_garbage_and_swapped_files_name_their_key() {
    let dir = TempDir::new();
    let ca = ca();
    let key = KeyPair::generate().unwrap();
    let (cert_pem, _) = leaf(&ca, &key);
    let cert = dir.write("c.crt", &cert_pem);
    let key_file = dir.write("c.key", &key.serialize_pem());
    let garbage = dir.write("garbage", "this is not PEM at all\n");

    let e = load_pair(&settings(dir.0.join("missing.crt"), key_file.clone())).unwrap_err();
    assert_eq!(e.key(), "tls.cert_file");
    assert!(e.to_string().starts_with("cannot read \""), "{e}");

    let e = load_pair(&settings(garbage.clone(), key_file.clone())).unwrap_err();
    assert_eq!(e.key(), "tls.cert_file");
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");

    let e = load_pair(&settings(cert.clone(), garbage)).unwrap_err();
    assert_eq!(e.key(), "tls.key_file");
    assert!(e.to_string().contains("holds no PEM private key"), "{e}");

    // The certificate where the key belongs: a key file without a key.
    let e = load_pair(&settings(cert.clone(), cert)).unwrap_err();
    assert_eq!(e.key(), "tls.key_file");
}

#[test]
fn a_broken_key_file_is_described_without_quoting_it() {
    let dir = TempDir::new();
    let ca = ca();
    let key = KeyPair::generate().unwrap();
    let (cert_pem, _) = leaf(&ca, &key);
    let cert = dir.write("d.crt", &cert_pem);
    let key_pem = key.serialize_pem();
    // Cut off before the END line.
    let truncated: String = key_pem.lines().take(2).collect::<Vec<_>>().join("\n");
    let broken = dir.write("d.key", &truncated);
    let e = load_pair(&settings(cert, broken)).unwrap_err();
    assert_eq!(e.key(), "tls.key_file");
    let shown = format!("{e} {e:?}");
    let secret_line = key_pem.lines().nth(1).unwrap();
    assert!(!shown.contains(secret_line), "key material in {shown}");
}

#[test]
fn ca_bundles_need_certificates_and_never_print_them() {
    let dir = TempDir::new();
    let one = ca();
    let two = ca();
    let bundle = dir.write("bundle.pem", &format!("{}{}", one.pem(), two.pem()));
    let b = CaBundle::read("upstream_ca_file", &bundle).unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(format!("{b:?}"), "CaBundle(2 certificates)");

    let empty = dir.write("empty.pem", "");
    let e = CaBundle::read("provider.ca_file", &empty).unwrap_err();
    assert_eq!(e.key(), "provider.ca_file");
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    let e = CaBundle::read("provider.ca_file", &dir.0.join("nope.pem")).unwrap_err();
    assert!(e.to_string().starts_with("cannot read"), "{e}");
    let not_der = dir.write("bad.pem", &pem("CERTIFICATE", b"not a certificate"));
    let e = CaBundle::read("upstream_ca_file", &not_der).unwrap_err();
    assert!(
        e.to_string()
            .contains("certificate 1 cannot be a trust root"),
        "{e}"
    );
    // A bundle with roots still leaves the system roots in place.
    let config = client_config(&b);
    assert!(config.alpn_protocols.is_empty(), "hyper-rustls sets ALPN");
}

#[tokio::test]
async fn the_reloader_swaps_in_a_valid_pair_and_keeps_the_old_one_otherwise() {
    let dir = TempDir::new();
    let ca = ca();
    let first_key = KeyPair::generate().unwrap();
    let (first_pem, first_der) = leaf(&ca, &first_key);
    let cert = dir.write("r.crt", &first_pem);
    let key = dir.write("r.key", &first_key.serialize_pem());
    let tls = ServerTls::start(&settings(cert, key)).unwrap();
    assert_eq!(tls.current_chain()[0].as_ref(), first_der.as_slice());

    let second_key = KeyPair::generate().unwrap();
    let (second_pem, second_der) = leaf(&ca, &second_key);
    dir.write("r.crt", &second_pem);
    dir.write("r.key", &second_key.serialize_pem());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tls.current_chain()[0].as_ref() != second_der.as_slice() {
        assert!(tokio::time::Instant::now() < deadline, "never reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A certificate with someone else's key, then garbage: both ignored.
    dir.write("r.crt", &first_pem);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(tls.current_chain()[0].as_ref(), second_der.as_slice());
    dir.write("r.key", "garbage");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(tls.current_chain()[0].as_ref(), second_der.as_slice());
    // Repaired: picked up again.
    dir.write("r.key", &first_key.serialize_pem());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tls.current_chain()[0].as_ref() != first_der.as_slice() {
        assert!(tokio::time::Instant::now() < deadline, "never reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

//! Certificates made at test time (rcgen, with the `ring` provider the server and client use):
//! a private certificate authority ([`TestCa`]) that signs server certificates ([`CertPair`]),
//! self-signed and expired certificates, a rustls client configuration that trusts only the
//! authority, and [`Pki`]: an authority with a directory of PEM files the server reads (removed
//! when dropped). The one certificate helper of the workspace's tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore};

/// The names a server certificate holds unless a test says otherwise.
pub const LOCAL_NAMES: &[&str] = &["localhost", "127.0.0.1"];

/// A certificate with its private key, in PEM and DER.
#[derive(Debug)]
pub struct CertPair {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key (PKCS#8), PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub der: CertificateDer<'static>,
    /// The private key, PKCS#8 DER.
    key_pkcs8: Vec<u8>,
}

impl CertPair {
    /// The private key as rustls takes it.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()).into()
    }

    /// A self-signed certificate for `names`.
    #[track_caller]
    pub fn self_signed(names: &[&str]) -> CertPair {
        CertPair::self_signed_with(names, false, false)
    }

    /// A self-signed certificate for `names`; `ca` sets CA:TRUE (as `openssl req -x509` does),
    /// `expired` puts its validity in the past (2020-2021).
    #[track_caller]
    pub fn self_signed_with(names: &[&str], ca: bool, expired: bool) -> CertPair {
        let mut params = leaf_params(names, None, expired);
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        CertPair::new(cert.pem(), cert.der().clone(), &key)
    }

    fn new(cert_pem: String, der: CertificateDer<'static>, key: &KeyPair) -> CertPair {
        CertPair {
            cert_pem,
            key_pem: key.serialize_pem(),
            der,
            key_pkcs8: key.serialize_der(),
        }
    }
}

/// Parameters of a server certificate for `names` (DNS names or IP addresses).
fn leaf_params(names: &[&str], cn: Option<&str>, expired: bool) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    params
}

/// A private certificate authority made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new authority named `cn` (it may sign certificates and revocation lists).
    #[track_caller]
    pub fn new(cn: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    /// The authority's certificate, PEM (for `--ca`).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The authority's certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A server certificate for `names`, signed by this authority.
    #[track_caller]
    pub fn leaf(&self, names: &[&str]) -> CertPair {
        self.leaf_with(names, None, false)
    }

    /// A server certificate for `names` with common name `cn` when given; `expired` puts its
    /// validity in the past (2020-2021).
    #[track_caller]
    pub fn leaf_with(&self, names: &[&str], cn: Option<&str>, expired: bool) -> CertPair {
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params(names, cn, expired)
            .signed_by(&key, &self.issuer)
            .unwrap();
        CertPair::new(cert.pem(), cert.der().clone(), &key)
    }

    /// A rustls client configuration (ring provider) that trusts this authority only.
    #[track_caller]
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// An authority and a directory of PEM files for one test (`$TMPDIR/chat-pki-TEST-PID`),
/// removed when dropped. The server reads `cert.pem` and `key.pem` ([`Pki::install`]).
#[derive(Debug)]
pub struct Pki {
    /// The test's authority.
    pub ca: TestCa,
    dir: PathBuf,
}

impl Pki {
    /// A new authority and an empty directory named after `test`.
    #[track_caller]
    pub fn new(test: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("chat-pki-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Pki {
            ca: TestCa::new(&format!("chat test CA {test}")),
            dir,
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1 named `cn`, signed by the authority.
    #[track_caller]
    pub fn leaf(&self, cn: &str) -> CertPair {
        self.ca.leaf_with(LOCAL_NAMES, Some(cn), false)
    }

    /// The path of file `name` in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes file `name` and returns its path.
    #[track_caller]
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Where the server reads its certificate.
    pub fn cert_path(&self) -> PathBuf {
        self.path("cert.pem")
    }

    /// Where the server reads its key.
    pub fn key_path(&self) -> PathBuf {
        self.path("key.pem")
    }

    /// Puts `pair` where the server reads its certificate and key.
    #[track_caller]
    pub fn install(&self, pair: &CertPair) {
        self.write("cert.pem", &pair.cert_pem);
        self.write("key.pem", &pair.key_pem);
    }

    /// A rustls client configuration that trusts the authority only.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.ca.client_config()
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

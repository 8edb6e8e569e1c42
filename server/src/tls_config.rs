//! TLS settings: the certificate chain and private key (PEM files) turned into the rustls
//! `ServerConfig` that new TLS connections are served with.
//!
//! Loading reads two small files and checks that the key belongs to the certificate; it never
//! touches a socket. The reactor keeps the current config and asks for a fresh one on SIGHUP
//! (`reactor/reload.rs`); a failed load leaves the config it already has alone. Crypto is
//! rustls with the `ring` provider: no OpenSSL.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Largest certificate or key file read (a long chain is a few KiB).
const MAX_PEM_FILE: u64 = 1024 * 1024;

/// Where the certificate chain and the private key are (`--tls-cert`, `--tls-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why the certificate and key could not be loaded; each names the file at fault.
#[derive(Debug)]
pub enum TlsConfigError {
    /// A file could not be read.
    Read(PathBuf, io::Error),
    /// A file is larger than any certificate or key.
    TooLarge(PathBuf),
    /// A file is not valid PEM.
    Pem(PathBuf, pem::Error),
    /// The certificate file holds no `CERTIFICATE` section.
    NoCertificate(PathBuf),
    /// The key file holds no private key section.
    NoKey(PathBuf),
    /// rustls refused the pair (unsupported key, or a key that does not match the certificate).
    Rejected(rustls::Error),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Read(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            TlsConfigError::TooLarge(path) => write!(
                f,
                "{} is larger than {MAX_PEM_FILE} bytes: not a certificate or key",
                path.display()
            ),
            TlsConfigError::Pem(path, e) => write!(f, "{} is not valid PEM: {e}", path.display()),
            TlsConfigError::NoCertificate(path) => {
                write!(f, "{} holds no PEM certificate", path.display())
            }
            TlsConfigError::NoKey(path) => write!(f, "{} holds no PEM private key", path.display()),
            TlsConfigError::Rejected(e) => write!(f, "the certificate and key are unusable: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {}

impl TlsFiles {
    /// Reads both files and builds the server config (TLS 1.2 and 1.3, no client certificates).
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsConfigError> {
        let cert_pem = read_capped(&self.cert)?;
        let certs = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsConfigError::Pem(self.cert.clone(), e))?;
        if certs.is_empty() {
            return Err(TlsConfigError::NoCertificate(self.cert.clone()));
        }
        let key_pem = read_capped(&self.key)?;
        let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
            Ok(key) => key,
            Err(pem::Error::NoItemsFound) => return Err(TlsConfigError::NoKey(self.key.clone())),
            Err(e) => return Err(TlsConfigError::Pem(self.key.clone(), e)),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Rejected)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(TlsConfigError::Rejected)?;
        // No session resumption: a member connects once and stays, and the cache of sessions
        // (and the tickets TLS 1.3 sends each new member) would be memory held per connection.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(config))
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    let file = std::fs::File::open(path).map_err(|e| TlsConfigError::Read(path.into(), e))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| TlsConfigError::Read(path.into(), e))?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(TlsConfigError::TooLarge(path.into()));
    }
    Ok(bytes)
}

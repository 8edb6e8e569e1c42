//! The TLS client configuration for `--tls`: rustls with the `ring` provider (as the server and
//! the client use), trusting only the certificates of `--ca FILE`. Reads the file once, before
//! the run; the engine makes one session per member from the configuration returned.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// A client configuration trusting the PEM certificates in `ca` (a CA, or a self-signed server
/// certificate with `CA:FALSE`); the error names the file and what is wrong with it.
pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>, String> {
    let pem = fs::read(ca).map_err(|e| format!("--ca {}: {e}", ca.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("--ca {}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("--ca {}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("--ca {}: no PEM certificate in it", ca.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

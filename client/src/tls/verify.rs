//! The server certificate check: normal web PKI verification against the trusted roots (the
//! system's and `--ca`), and trust on first use for a certificate that fails *only* because
//! no trusted root issued it. Such a certificate must still be within its validity (webpki
//! checks the time before it looks for an issuer) and name the host; then it is accepted when
//! `known_servers` remembers its fingerprint for this `HOST:PORT`, or when the user accepted
//! exactly this fingerprint a moment ago. Anything else fails the handshake, and the reason is
//! kept in the verifier for [`super::connect`] to read, typed: rustls hands back only its own
//! error, and asking the user happens after the handshake, never inside it (the server's login
//! timeout runs during a handshake).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use chat_common::sanitize::sanitize;

use super::error::TlsError;
use super::known::{self, Lookup};

/// Why the verifier refused a certificate.
#[derive(Debug)]
pub(super) enum Refusal {
    /// Not issued by a trusted root, valid otherwise, and not remembered: ask the user.
    FirstUse {
        /// The certificate's fingerprint.
        fingerprint: String,
    },
    /// Refused for good.
    Error(TlsError),
}

/// A [`ServerCertVerifier`] for one connection attempt to one server.
#[derive(Debug)]
pub(super) struct Verifier {
    /// The system's roots and the `--ca` certificates.
    roots: Arc<RootCertStore>,
    /// The `--ca` certificates as given: one presented as the server's own certificate is
    /// trusted even when it says CA:TRUE, which webpki refuses in an end entity.
    ca_certs: Arc<Vec<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
    /// `HOST:PORT`: the key in `known_servers` and the name in errors.
    server: String,
    /// Where remembered fingerprints are; `None` when there is no configuration directory.
    known_servers: Option<PathBuf>,
    /// A fingerprint the user has just accepted for this server.
    accepted: Option<String>,
    /// Why the last certificate was refused; taken by `connect`.
    refusal: Mutex<Option<Refusal>>,
}

impl Verifier {
    pub(super) fn new(
        roots: Arc<RootCertStore>,
        ca_certs: Arc<Vec<CertificateDer<'static>>>,
        provider: Arc<CryptoProvider>,
        server: String,
        known_servers: Option<PathBuf>,
        accepted: Option<String>,
    ) -> Self {
        Verifier {
            roots,
            ca_certs,
            provider,
            server,
            known_servers,
            accepted,
            refusal: Mutex::new(None),
        }
    }

    /// Why the handshake's certificate was refused, if it was.
    pub(super) fn take_refusal(&self) -> Option<Refusal> {
        self.refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Keeps `refusal` for `connect` and fails the handshake with `error`.
    fn refuse(&self, refusal: Refusal, error: Error) -> Result<ServerCertVerified, Error> {
        *self.refusal.lock().unwrap_or_else(PoisonError::into_inner) = Some(refusal);
        Err(error)
    }

    /// Refuses with the typed form of a verification error.
    fn refuse_error(&self, error: Error) -> Result<ServerCertVerified, Error> {
        let typed = classify(&self.server, server_host(&self.server), &error);
        self.refuse(Refusal::Error(typed), error)
    }

    /// The certificate chains to no trusted root but is otherwise valid for the current time.
    fn first_use(
        &self,
        cert: &ParsedCertificate<'_>,
        der: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        chain_error: Error,
    ) -> Result<ServerCertVerified, Error> {
        if let Err(e) = verify_server_name(cert, server_name) {
            return self.refuse_error(e);
        }
        if self.ca_certs.iter().any(|c| c.as_ref() == der.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        let fingerprint = known::fingerprint(der);
        if self.accepted.as_deref() == Some(fingerprint.as_str()) {
            return Ok(ServerCertVerified::assertion());
        }
        let Some(path) = &self.known_servers else {
            return self.refuse(Refusal::FirstUse { fingerprint }, chain_error);
        };
        let entries = match known::load(path) {
            Ok(entries) => entries,
            Err(e) => return self.refuse(Refusal::Error(TlsError::KnownServers(e)), chain_error),
        };
        match known::lookup(&entries, &self.server, &fingerprint) {
            Lookup::Match => Ok(ServerCertVerified::assertion()),
            Lookup::Unknown => self.refuse(Refusal::FirstUse { fingerprint }, chain_error),
            Lookup::Changed(entry) => self.refuse(
                Refusal::Error(TlsError::FingerprintChanged {
                    server: self.server.clone(),
                    known: entry.fingerprint,
                    presented: fingerprint,
                    path: path.clone(),
                    line: entry.line,
                }),
                CertificateError::ApplicationVerificationFailure.into(),
            ),
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let cert = match ParsedCertificate::try_from(end_entity) {
            Ok(cert) => cert,
            Err(e) => return self.refuse_error(e),
        };
        match verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        ) {
            Ok(()) => match verify_server_name(&cert, server_name) {
                Ok(()) => Ok(ServerCertVerified::assertion()),
                Err(e) => self.refuse_error(e),
            },
            Err(e) if only_untrusted(&e) => self.first_use(&cert, end_entity, server_name, e),
            Err(e) => self.refuse_error(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The chain check failed only for lack of a trusted issuer: no root issued it, or it is a
/// self-signed CA certificate serving as its own end entity (`openssl req -x509` makes those),
/// which webpki refuses before it looks for an issuer but after it checked the validity period.
fn only_untrusted(error: &Error) -> bool {
    match error {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => true,
        Error::InvalidCertificate(CertificateError::Other(other)) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

/// The host part of `HOST:PORT` (brackets removed), for messages.
fn server_host(server: &str) -> &str {
    let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// `example.org` from the `DnsName("example.org")` (or `1.2.3.4` from `IpAddress(1.2.3.4)`)
/// that rustls reports as a presented name. The text comes from the peer's certificate, so
/// control and bidi characters are removed before it can reach a terminal.
fn plain_name(presented: &str) -> String {
    let inner = presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map_or(presented, |inner| {
            inner
                .strip_prefix('"')
                .and_then(|i| i.strip_suffix('"'))
                .unwrap_or(inner)
        });
    sanitize(inner).into_owned()
}

/// The typed form of a certificate verification error.
fn classify(server: &str, host: &str, error: &Error) -> TlsError {
    let server = server.to_owned();
    match error {
        Error::InvalidCertificate(e) => match e {
            CertificateError::Expired => TlsError::Expired {
                server,
                not_after: None,
            },
            CertificateError::ExpiredContext { not_after, .. } => TlsError::Expired {
                server,
                not_after: Some(*not_after),
            },
            CertificateError::NotValidYet => TlsError::NotYetValid {
                server,
                not_before: None,
            },
            CertificateError::NotValidYetContext { not_before, .. } => TlsError::NotYetValid {
                server,
                not_before: Some(*not_before),
            },
            CertificateError::NotValidForName => TlsError::WrongHost {
                server,
                host: host.to_owned(),
                names: Vec::new(),
            },
            CertificateError::NotValidForNameContext { presented, .. } => TlsError::WrongHost {
                server,
                host: host.to_owned(),
                names: presented.iter().map(|n| plain_name(n)).collect(),
            },
            _ => TlsError::BadCertificate {
                server,
                reason: sanitize(&error.to_string()).into_owned(),
            },
        },
        _ => TlsError::BadCertificate {
            server,
            reason: sanitize(&error.to_string()).into_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_without_their_wrapping() {
        assert_eq!(plain_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(plain_name("IpAddress(1.2.3.4)"), "1.2.3.4");
        assert_eq!(plain_name("a.example"), "a.example");
        assert_eq!(plain_name("DnsName(\"a\u{1b}[2J\u{202e}b\")"), "a[2Jb");
    }

    #[test]
    fn host_of_server() {
        assert_eq!(server_host("example.org:1"), "example.org");
        assert_eq!(server_host("[::1]:2"), "::1");
    }

    #[test]
    fn only_a_missing_issuer_opens_first_use() {
        assert!(only_untrusted(&CertificateError::UnknownIssuer.into()));
        assert!(!only_untrusted(&CertificateError::Expired.into()));
        assert!(!only_untrusted(&CertificateError::NotValidForName.into()));
        assert!(!only_untrusted(&CertificateError::BadSignature.into()));
    }

    #[test]
    fn errors_are_typed() {
        let c = |e: CertificateError| classify("h:1", "h", &e.into());
        assert!(matches!(
            c(CertificateError::Expired),
            TlsError::Expired { .. }
        ));
        assert!(matches!(
            c(CertificateError::NotValidYet),
            TlsError::NotYetValid { .. }
        ));
        assert!(matches!(
            c(CertificateError::NotValidForName),
            TlsError::WrongHost { .. }
        ));
        assert!(matches!(
            c(CertificateError::Revoked),
            TlsError::BadCertificate { .. }
        ));
    }
}

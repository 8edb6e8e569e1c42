//! The client side of TLS (`docs/PROTOCOL.md`, "TLS"): `chat-client tls://HOST[:PORT]` or
//! `--tls`. This module owns parsing the address, the trusted roots (the system's and `--ca`),
//! the handshake, trust on first use through `known_servers`, and the stream the session
//! reads and writes. It never prompts or prints: the caller passes the question to the user
//! as a callback, and turns a [`TlsError`] into a message and an exit status.
//!
//! # Layout
//! - [`addr`]: `tls://HOST[:PORT]` and `HOST[:PORT]` into a [`Target`].
//! - [`known`]: fingerprints and the `known_servers` file.
//! - `verify`: the certificate check, web PKI first, then first use.
//! - [`stream`]: [`TlsStream`], one connection shared by a reading and a writing thread.
//! - [`error`]: [`TlsError`], one variant per problem.
//!
//! # Use
//! ```no_run
//! use chat_client::tls::{self, TlsOptions};
//! let target = tls::parse_target("tls://chat.example.org", false).expect("address");
//! let options = TlsOptions::default(); // plus `ca_files` from `--ca`
//! let ask = |server: &str, fingerprint: &str| {
//!     eprintln!("{}", tls::first_use_question(server, fingerprint));
//!     false // or read yes/no from the terminal; `--trust-new` answers true
//! };
//! let stream = tls::connect(&target, &options, ask).expect("connected");
//! let writer = stream.try_clone().expect("clone"); // to the keyboard thread
//! // `stream` goes to the network thread's LineReader.
//! # drop((stream, writer));
//! ```
//!
//! # The crypto provider
//! rustls with *ring*, named explicitly (never the process default), so another crate in the
//! build enabling aws-lc-rs changes nothing here.

pub mod addr;
pub mod error;
pub mod known;
pub mod stream;
mod verify;

use std::fs;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::{io, io::ErrorKind};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

pub use addr::{parse_target, AddrError, Target, DEFAULT_PORT};
pub use error::TlsError;
pub use stream::TlsStream;

use verify::{Refusal, Verifier};

/// How long to try each address of the server, as the plain client does.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one socket read or write of the handshake may wait.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a TLS connection trusts and where it remembers servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--ca FILE`, each PEM with one or more certificates, trusted as roots in addition to the
    /// system's.
    pub ca_files: Vec<PathBuf>,
    /// Trust the operating system's roots (always, in the client; off in tests).
    pub system_roots: bool,
    /// The `known_servers` file; `None` means servers accepted on first use are not remembered
    /// (the user is asked on every connection).
    pub known_servers: Option<PathBuf>,
    /// See [`CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// See [`HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
}

impl Default for TlsOptions {
    /// System roots, no `--ca`, `known_servers` where [`known::default_path`] says.
    fn default() -> Self {
        TlsOptions {
            ca_files: Vec::new(),
            system_roots: true,
            known_servers: known::default_path(),
            connect_timeout: CONNECT_TIMEOUT,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }
}

/// The question for an unknown server, SSH-style, for the caller's prompt.
pub fn first_use_question(server: &str, fingerprint: &str) -> String {
    format!(
        "The authenticity of {server} can't be established: its certificate is not signed by \
         a trusted authority.\nCertificate fingerprint: {fingerprint}\n\
         Are you sure you want to connect and remember this server (yes/no)?"
    )
}

/// The roots a connection trusts.
#[derive(Debug)]
struct Trust {
    roots: Arc<RootCertStore>,
    ca_certs: Arc<Vec<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
}

impl Trust {
    fn load(options: &TlsOptions) -> Result<Trust, TlsError> {
        let mut roots = RootCertStore::empty();
        if options.system_roots {
            // Certificates the system store holds but webpki cannot parse are skipped, and an
            // unreadable store leaves `--ca` and first use, as a machine without roots would.
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
        let mut ca_certs = Vec::new();
        for path in &options.ca_files {
            let bad = |reason: String| TlsError::BadCaFile {
                path: path.clone(),
                reason,
            };
            let pem = fs::read(path)
                .map_err(|e| bad(format!("cannot read it: {}", error::describe(&e))))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(bad("no \"BEGIN CERTIFICATE\" block in it".to_owned()));
            }
            for (i, cert) in certs.into_iter().enumerate() {
                roots
                    .add(cert.clone())
                    .map_err(|e| bad(format!("certificate {} is unusable: {e}", i + 1)))?;
                ca_certs.push(cert);
            }
        }
        Ok(Trust {
            roots: Arc::new(roots),
            ca_certs: Arc::new(ca_certs),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }
}

/// Connects to `target` over TLS and completes the handshake.
///
/// A certificate that chains to a trusted root must name the host and be within its validity,
/// or the connection is refused ([`TlsError::WrongHost`], [`TlsError::Expired`], ...). One that
/// chains to no trusted root, but is otherwise valid, is looked up in `known_servers` by
/// `HOST:PORT`: remembered with this fingerprint, it connects; remembered with another, it is
/// refused with [`TlsError::FingerprintChanged`] and nobody is asked; not remembered, `ask` is
/// called with `HOST:PORT` and the fingerprint. On `true` the fingerprint is appended to
/// `known_servers` and the client connects again (the first handshake failed while the user
/// thought, so the server's login timeout does not run meanwhile); on `false` the result is
/// [`TlsError::UnknownIssuer`] and nothing is written.
pub fn connect(
    target: &Target,
    options: &TlsOptions,
    mut ask: impl FnMut(&str, &str) -> bool,
) -> Result<TlsStream, TlsError> {
    let trust = Trust::load(options)?;
    let server = target.server();
    let fingerprint = match attempt(target, options, &trust, None) {
        Ok(stream) => return Ok(stream),
        Err(Refusal::Error(e)) => return Err(e),
        Err(Refusal::FirstUse { fingerprint }) => fingerprint,
    };
    if !ask(&server, &fingerprint) {
        return Err(TlsError::UnknownIssuer {
            server,
            fingerprint,
        });
    }
    if let Some(path) = &options.known_servers {
        known::append(path, &server, &fingerprint)?;
    }
    match attempt(target, options, &trust, Some(fingerprint)) {
        Ok(stream) => Ok(stream),
        Err(Refusal::Error(e)) => Err(e),
        // Only without a known_servers file, and only if the certificate changed in between.
        Err(Refusal::FirstUse { fingerprint }) => Err(TlsError::UnknownIssuer {
            server,
            fingerprint,
        }),
    }
}

/// One TCP connection and handshake.
fn attempt(
    target: &Target,
    options: &TlsOptions,
    trust: &Trust,
    accepted: Option<String>,
) -> Result<TlsStream, Refusal> {
    let server = target.server();
    let handshake = |source: io::Error| {
        Refusal::Error(TlsError::Handshake {
            server: server.clone(),
            source,
        })
    };
    let name = ServerName::try_from(target.host.clone())
        .map_err(|e| handshake(io::Error::new(ErrorKind::InvalidInput, e)))?;
    let verifier = Arc::new(Verifier::new(
        Arc::clone(&trust.roots),
        Arc::clone(&trust.ca_certs),
        Arc::clone(&trust.provider),
        server.clone(),
        options.known_servers.clone(),
        accepted,
    ));
    let config = ClientConfig::builder_with_provider(Arc::clone(&trust.provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| handshake(io::Error::other(e)))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&verifier) as _)
        .with_no_client_auth();
    let mut conn = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| handshake(io::Error::other(e)))?;
    let mut tcp = dial(target, options.connect_timeout).map_err(Refusal::Error)?;
    let timeout = Some(options.handshake_timeout);
    tcp.set_read_timeout(timeout)
        .and_then(|()| tcp.set_write_timeout(timeout))
        .map_err(handshake)?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            return Err(verifier.take_refusal().unwrap_or_else(|| handshake(e)));
        }
    }
    tcp.set_read_timeout(None)
        .and_then(|()| tcp.set_write_timeout(None))
        .map_err(handshake)?;
    Ok(TlsStream::new(tcp, conn, server))
}

/// A TCP connection to the first address of `target` that answers.
fn dial(target: &Target, timeout: Duration) -> Result<TcpStream, TlsError> {
    let server = target.server();
    let fail = |source: io::Error| TlsError::Connect {
        server: server.clone(),
        source,
    };
    let addrs = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(fail)?;
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(fail(last.unwrap_or_else(|| {
        io::Error::new(ErrorKind::NotFound, "the name has no address")
    })))
}

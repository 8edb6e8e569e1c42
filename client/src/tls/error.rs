//! [`TlsError`]: every way a TLS connection can fail, one variant per problem so the caller
//! branches on the variant (and picks the exit status) rather than on words. Each `Display` is one
//! line, except [`TlsError::FingerprintChanged`], which is loud on purpose, as SSH is.

use std::fmt;
use std::io;
use std::path::PathBuf;

use rustls::pki_types::UnixTime;

use super::known::KnownServersError;

/// Why a TLS connection was not made.
#[derive(Debug)]
pub enum TlsError {
    /// A `--ca` file could not be read, holds no certificate, or holds one that cannot be used.
    BadCaFile {
        /// The file as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `known_servers` could not be read, parsed (a malformed line) or written.
    KnownServers(KnownServersError),
    /// No TCP connection to any address of the server.
    Connect {
        /// `HOST:PORT`.
        server: String,
        /// The last connection error (or a name that resolves to nothing).
        source: io::Error,
    },
    /// The TLS handshake failed for a reason other than the certificate: the peer does not speak
    /// TLS, sent an alert, closed the connection, or did not finish in time.
    Handshake {
        /// `HOST:PORT`.
        server: String,
        /// What happened; a rustls error is inside as the source.
        source: io::Error,
    },
    /// The certificate's validity ended.
    Expired {
        /// `HOST:PORT`.
        server: String,
        /// When it ended, when the verifier said.
        not_after: Option<UnixTime>,
    },
    /// The certificate's validity has not begun (or this machine's clock is wrong).
    NotYetValid {
        /// `HOST:PORT`.
        server: String,
        /// When it begins, when the verifier said.
        not_before: Option<UnixTime>,
    },
    /// The certificate does not name the host that was asked for.
    WrongHost {
        /// `HOST:PORT`.
        server: String,
        /// The host asked for.
        host: String,
        /// The names the certificate holds, when the verifier said.
        names: Vec<String>,
    },
    /// The certificate chains to no trusted root and the user (or the lack of a configuration
    /// directory) did not accept it on first use.
    UnknownIssuer {
        /// `HOST:PORT`.
        server: String,
        /// The certificate's fingerprint, so the user can compare it out of band.
        fingerprint: String,
    },
    /// The certificate chains to no trusted root and differs from the one remembered for this
    /// server. Never asked about: the user must edit `known_servers`.
    FingerprintChanged {
        /// `HOST:PORT`.
        server: String,
        /// The remembered fingerprint.
        known: String,
        /// The fingerprint the server presented now.
        presented: String,
        /// The `known_servers` file.
        path: PathBuf,
        /// The line that remembers the old one.
        line: usize,
    },
    /// Any other certificate problem: revoked, bad signature, unusable for a server, malformed.
    BadCertificate {
        /// `HOST:PORT`.
        server: String,
        /// The verifier's words.
        reason: String,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::BadCaFile { path, reason } => {
                write!(f, "bad --ca file {}: {reason}", path.display())
            }
            TlsError::KnownServers(e) => write!(f, "known servers file {e}"),
            TlsError::Connect { server, source } => {
                write!(f, "cannot connect to {server}: {}", describe(source))
            }
            TlsError::Handshake { server, source } => {
                write!(
                    f,
                    "TLS handshake with {server} failed: {}",
                    describe(source)
                )?;
                let not_tls = source
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<rustls::Error>())
                    .is_some_and(|e| matches!(e, rustls::Error::InvalidMessage(_)));
                if not_tls {
                    f.write_str(" (does the server speak TLS on this port?)")?;
                }
                Ok(())
            }
            TlsError::Expired { server, not_after } => {
                write!(f, "the certificate of {server} has expired")?;
                match not_after {
                    Some(t) => write!(f, " (on {})", utc(*t)),
                    None => Ok(()),
                }
            }
            TlsError::NotYetValid { server, not_before } => {
                write!(f, "the certificate of {server} is not valid yet")?;
                match not_before {
                    Some(t) => write!(f, " (from {}; is the clock right?)", utc(*t)),
                    None => write!(f, " (is the clock right?)"),
                }
            }
            TlsError::WrongHost {
                server,
                host,
                names,
            } => {
                write!(f, "the certificate of {server} is not valid for {host}")?;
                if names.is_empty() {
                    Ok(())
                } else {
                    write!(f, " (it names {})", names.join(", "))
                }
            }
            TlsError::UnknownIssuer {
                server,
                fingerprint,
            } => write!(
                f,
                "the certificate of {server} is not signed by a trusted authority and was not \
                 accepted ({fingerprint}); use --ca FILE, or accept it on first use"
            ),
            TlsError::FingerprintChanged {
                server,
                known,
                presented,
                path,
                line,
            } => {
                let bar = "@".repeat(59);
                writeln!(f, "\n{bar}")?;
                writeln!(
                    f,
                    "@    WARNING: SERVER CERTIFICATE HAS CHANGED!             @"
                )?;
                writeln!(f, "{bar}")?;
                writeln!(f, "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!")?;
                writeln!(
                    f,
                    "Someone could be eavesdropping on you right now (man-in-the-middle attack)!"
                )?;
                writeln!(
                    f,
                    "It is also possible that the server's certificate has just been replaced."
                )?;
                writeln!(f, "The certificate of {server} has the fingerprint")?;
                writeln!(f, "    {presented}")?;
                writeln!(f, "but the one remembered for it is")?;
                writeln!(f, "    {known}")?;
                writeln!(f, "Offending entry: {}:{line}", path.display())?;
                writeln!(
                    f,
                    "Remove that line if you trust the new certificate, then connect again."
                )?;
                write!(
                    f,
                    "Connection refused: the certificate of {server} has changed."
                )
            }
            TlsError::BadCertificate { server, reason } => {
                write!(f, "the certificate of {server} was refused: {reason}")
            }
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Connect { source, .. } | TlsError::Handshake { source, .. } => Some(source),
            TlsError::KnownServers(e) => Some(e),
            _ => None,
        }
    }
}

impl From<KnownServersError> for TlsError {
    fn from(e: KnownServersError) -> Self {
        TlsError::KnownServers(e)
    }
}

/// The text of an I/O error without the `(os error N)` suffix: people need the words only.
pub(super) fn describe(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a certificate time.
fn utc(t: UnixTime) -> String {
    let secs = t.as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm,
/// for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            utc(UnixTime::since_unix_epoch(std::time::Duration::ZERO)),
            "1970-01-01 00:00:00 UTC"
        );
        // 2000-02-29 12:34:56 UTC, a leap day.
        assert_eq!(
            utc(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                951_827_696
            ))),
            "2000-02-29 12:34:56 UTC"
        );
        assert_eq!(
            utc(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                1_798_761_599
            ))),
            "2026-12-31 23:59:59 UTC"
        );
    }

    #[test]
    fn one_line_each_but_the_changed_warning() {
        let server = "example.org:55555".to_owned();
        let one_liners = [
            TlsError::Expired {
                server: server.clone(),
                not_after: None,
            },
            TlsError::WrongHost {
                server: server.clone(),
                host: "example.org".into(),
                names: vec!["other.org".into()],
            },
            TlsError::UnknownIssuer {
                server: server.clone(),
                fingerprint: "SHA256:00".into(),
            },
            TlsError::Handshake {
                server: server.clone(),
                source: io::Error::new(io::ErrorKind::TimedOut, "timed out"),
            },
        ];
        for e in one_liners {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        let loud = TlsError::FingerprintChanged {
            server,
            known: "SHA256:old".into(),
            presented: "SHA256:new".into(),
            path: "/k".into(),
            line: 7,
        }
        .to_string();
        for part in [
            "example.org:55555",
            "SHA256:old",
            "SHA256:new",
            "/k:7",
            "WARNING",
        ] {
            assert!(loud.contains(part), "{part} missing from {loud}");
        }
    }
}

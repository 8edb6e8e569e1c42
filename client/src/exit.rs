//! Exit statuses of `chat-client`, all in one place (like fd's `exit_codes.rs`), and
//! [`Outcome`], how a run ended. Scripts may branch on these numbers; they never change meaning.
//!
//! | status | meaning |
//! | --- | --- |
//! | 0 | you left by choice: `/leave` or `/quit` (answered by `BYE`), Ctrl-C or Ctrl-D on an empty input line, end of standard input (line mode), or leaving before admission |
//! | 1 | a local failure: the terminal, standard input or the `known_servers` file could not be used |
//! | 2 | bad command-line arguments (as clap reports them), a bad address or `--ca` file, or no name was given |
//! | 3 | the server could not be reached at start, or the TLS handshake failed for a reason other than the certificate |
//! | 4 | the server refused you: `DENIED`, a refused name that cannot be asked for again (`--name` in line mode, or standard input is not a terminal), or `ERROR server-full` (line mode); full screen: quitting after a `DENIED` |
//! | 5 | the server ended a session you did not choose to end: `BYE` after a kick, a shutdown, or a login timeout (line mode); full screen: quitting after a kick |
//! | 6 | the connection was lost: closed without `BYE`, a read or write error, or the server dropped you; full screen: giving up reconnecting, whatever ended the connection (a drop, a shutdown, a full server) and whether or not the last attempt reached the server |
//! | 7 | TLS: the server's certificate is not trusted (not signed by a trusted authority and not accepted on first use, or refused for another reason: revoked, bad signature, malformed) |
//! | 8 | TLS: the server's certificate differs from the one remembered in `known_servers` (the loud warning is on standard error) |
//! | 9 | TLS: the server's certificate has expired or is not valid yet |
//! | 10 | TLS: the server's certificate does not name the host asked for |
//!
//! Line mode ends at once with 3 to 10; the full-screen interface stays (keeping the draft and
//! the scrollback), reconnects when that makes sense (never after a certificate problem, 7 to
//! 10, which only `/reconnect` tries again), and exits with the status when you quit.
//!
//! Every non-zero status comes with one line on standard error saying why.

use std::fmt;

use crate::tls::TlsError;

/// What the process exit status says; see the module doc for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0: left by choice.
    Success,
    /// 1: the terminal or standard input failed.
    Failure,
    /// 2: bad arguments, or no name.
    Usage,
    /// 3: the server could not be reached.
    Unreachable,
    /// 4: refused by the server.
    Refused,
    /// 5: the server ended the session (kick, shutdown, timeout).
    Removed,
    /// 6: the connection was lost or the server dropped us.
    Lost,
    /// 7: the server's certificate is not trusted.
    Untrusted,
    /// 8: the server's certificate is not the one remembered for it.
    CertificateChanged,
    /// 9: the server's certificate has expired or is not valid yet.
    CertificateExpired,
    /// 10: the server's certificate does not name the host.
    WrongHost,
}

impl ExitCode {
    /// The process exit status.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::Unreachable => 3,
            ExitCode::Refused => 4,
            ExitCode::Removed => 5,
            ExitCode::Lost => 6,
            ExitCode::Untrusted => 7,
            ExitCode::CertificateChanged => 8,
            ExitCode::CertificateExpired => 9,
            ExitCode::WrongHost => 10,
        }
    }

    /// The status for a TLS connection that was not made. Connecting or handshaking again may
    /// help only with [`ExitCode::Unreachable`]; every other status is a problem with the
    /// certificate or the local setup, which trying again cannot fix.
    pub fn of_tls(error: &TlsError) -> ExitCode {
        match error {
            TlsError::Connect { .. } | TlsError::Handshake { .. } => ExitCode::Unreachable,
            TlsError::BadCaFile { .. } => ExitCode::Usage,
            TlsError::KnownServers(_) => ExitCode::Failure,
            TlsError::UnknownIssuer { .. } | TlsError::BadCertificate { .. } => ExitCode::Untrusted,
            TlsError::FingerprintChanged { .. } => ExitCode::CertificateChanged,
            TlsError::Expired { .. } | TlsError::NotYetValid { .. } => ExitCode::CertificateExpired,
            TlsError::WrongHost { .. } => ExitCode::WrongHost,
        }
    }
}

/// How a run ended: the status, and for a failure the one line for standard error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The exit status.
    pub code: ExitCode,
    /// Why, for people; printed as `chat-client: <message>` on standard error.
    pub message: Option<String>,
}

impl Outcome {
    /// A clean exit with nothing to say.
    pub fn success() -> Self {
        Outcome {
            code: ExitCode::Success,
            message: None,
        }
    }

    /// An exit with `code` and a reason.
    pub fn fail(code: ExitCode, message: impl Into<String>) -> Self {
        Outcome {
            code,
            message: Some(message.into()),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "exit status {}", self.code.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_only_success_is_zero() {
        let all = [
            ExitCode::Success,
            ExitCode::Failure,
            ExitCode::Usage,
            ExitCode::Unreachable,
            ExitCode::Refused,
            ExitCode::Removed,
            ExitCode::Lost,
            ExitCode::Untrusted,
            ExitCode::CertificateChanged,
            ExitCode::CertificateExpired,
            ExitCode::WrongHost,
        ];
        let mut codes: Vec<i32> = all.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert_eq!(ExitCode::Success.code(), 0);
    }
}

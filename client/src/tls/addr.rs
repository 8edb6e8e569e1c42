//! The server address on the command line: `tls://HOST[:PORT]` or `HOST[:PORT]`, IPv6 in
//! brackets, into a [`Target`] (host for name verification, port, and whether to speak TLS).
//! Pure string work: nothing here resolves a name or opens a socket.

use std::fmt;
use std::net::Ipv6Addr;

use rustls::pki_types::ServerName;

/// The port used when an address has none, plain or TLS alike.
pub const DEFAULT_PORT: u16 = 55555;

/// The scheme that asks for TLS (case-insensitive).
const TLS_SCHEME: &str = "tls://";

/// Where to connect, as parsed from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A DNS name (lowercased) or an IP address, without brackets: what the certificate must name.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// Speak TLS: `tls://` was given, or `--tls`.
    pub tls: bool,
}

impl Target {
    /// `HOST:PORT`, with an IPv6 host in brackets: the address to dial, the key in
    /// `known_servers`, and how messages name the server.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tls {
            f.write_str(TLS_SCHEME)?;
        }
        f.write_str(&self.server())
    }
}

/// Why an address was refused; each `Display` is one line quoting the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrError {
    /// Nothing was given, or nothing before the port.
    NoHost(String),
    /// A scheme other than `tls://`.
    UnknownScheme(String),
    /// The port is not a number from 1 to 65535.
    BadPort(String),
    /// More than one `:` and no brackets: an IPv6 address must be written `[ADDR]:PORT`.
    Ipv6NeedsBrackets(String),
    /// The host holds characters no host name has, or (for TLS) is not a valid DNS name or IP.
    BadHost(String),
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrError::NoHost(s) => write!(f, "no host in the address {s:?}"),
            AddrError::UnknownScheme(s) => {
                write!(
                    f,
                    "unknown scheme in {s:?}: use tls://HOST[:PORT] or HOST[:PORT]"
                )
            }
            AddrError::BadPort(s) => write!(f, "bad port in {s:?}: expected 1 to 65535"),
            AddrError::Ipv6NeedsBrackets(s) => {
                write!(
                    f,
                    "ambiguous address {s:?}: write an IPv6 address as [ADDR]:PORT"
                )
            }
            AddrError::BadHost(s) => write!(f, "bad host name in {s:?}"),
        }
    }
}

impl std::error::Error for AddrError {}

/// Parses a server address. `tls://HOST[:PORT]` always speaks TLS; a bare `HOST[:PORT]` speaks
/// TLS only when `tls_flag` (`--tls`) is set. The port defaults to [`DEFAULT_PORT`].
pub fn parse_target(input: &str, tls_flag: bool) -> Result<Target, AddrError> {
    let trimmed = input.trim();
    let (rest, tls) = match trimmed.find("://") {
        Some(i) if trimmed[..i + 3].eq_ignore_ascii_case(TLS_SCHEME) => (&trimmed[i + 3..], true),
        Some(_) => return Err(AddrError::UnknownScheme(input.to_owned())),
        None => (trimmed, tls_flag),
    };
    let (host, port) = split_host_port(rest, input)?;
    let port = match port {
        Some(p) => p,
        None => DEFAULT_PORT,
    };
    if tls && ServerName::try_from(host.as_str()).is_err() {
        return Err(AddrError::BadHost(input.to_owned()));
    }
    Ok(Target { host, port, tls })
}

/// Parses `HOST:PORT` with the port required: a key of `known_servers`.
pub(crate) fn parse_server_key(input: &str) -> Result<String, AddrError> {
    match split_host_port(input, input)? {
        (host, Some(port)) => Ok(Target {
            host,
            port,
            tls: true,
        }
        .server()),
        (_, None) => Err(AddrError::BadPort(input.to_owned())),
    }
}

/// Splits `HOST[:PORT]` or `[V6][:PORT]`; `whole` is quoted in errors. The host comes back
/// lowercased (DNS names are case-insensitive) and without brackets.
fn split_host_port(s: &str, whole: &str) -> Result<(String, Option<u16>), AddrError> {
    let (host, port) = if let Some(bracketed) = s.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(AddrError::BadHost(whole.to_owned()));
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(AddrError::BadHost(whole.to_owned()));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(AddrError::BadHost(whole.to_owned())),
            },
        };
        (inside, port)
    } else {
        match s.matches(':').count() {
            0 => (s, None),
            1 => match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            },
            _ => return Err(AddrError::Ipv6NeedsBrackets(whole.to_owned())),
        }
    };
    if host.is_empty() {
        return Err(AddrError::NoHost(whole.to_owned()));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '[' | ']'))
    {
        return Err(AddrError::BadHost(whole.to_owned()));
    }
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p).ok_or_else(|| AddrError::BadPort(whole.to_owned()))?),
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// A port from 1 to 65535, digits only (no sign, no spaces).
fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&n| n != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, tls_flag: bool) -> (String, u16, bool) {
        match parse_target(input, tls_flag) {
            Ok(t) => (t.host, t.port, t.tls),
            Err(e) => panic!("{input:?} was refused: {e}"),
        }
    }

    #[test]
    fn tls_scheme_with_and_without_port() {
        assert_eq!(
            ok("tls://example.org", false),
            ("example.org".into(), 55555, true)
        );
        assert_eq!(
            ok("tls://example.org:6697", false),
            ("example.org".into(), 6697, true)
        );
        assert_eq!(
            ok("TLS://Example.ORG:1", false),
            ("example.org".into(), 1, true)
        );
    }

    #[test]
    fn plain_stays_plain_unless_the_flag_says_tls() {
        assert_eq!(
            ok("example.org:4000", false),
            ("example.org".into(), 4000, false)
        );
        assert_eq!(
            ok("example.org", false),
            ("example.org".into(), 55555, false)
        );
        assert_eq!(ok("example.org", true), ("example.org".into(), 55555, true));
        assert_eq!(ok("127.0.0.1:9", true), ("127.0.0.1".into(), 9, true));
    }

    #[test]
    fn ipv6_in_brackets() {
        assert_eq!(ok("tls://[::1]:4433", false), ("::1".into(), 4433, true));
        assert_eq!(
            ok("tls://[2001:db8::1]", false),
            ("2001:db8::1".into(), 55555, true)
        );
        assert_eq!(ok("[::1]", false), ("::1".into(), 55555, false));
        let t = parse_target("tls://[::1]:4433", false).expect("valid");
        assert_eq!(t.server(), "[::1]:4433");
        assert_eq!(t.to_string(), "tls://[::1]:4433");
    }

    #[test]
    fn refusals_name_the_problem() {
        let err = |s: &str| parse_target(s, false).expect_err(s);
        assert_eq!(err(""), AddrError::NoHost("".into()));
        assert_eq!(err("tls://"), AddrError::NoHost("tls://".into()));
        assert_eq!(err("tls://:4000"), AddrError::NoHost("tls://:4000".into()));
        assert_eq!(err("http://x"), AddrError::UnknownScheme("http://x".into()));
        assert_eq!(err("x:0"), AddrError::BadPort("x:0".into()));
        assert_eq!(err("x:65536"), AddrError::BadPort("x:65536".into()));
        assert_eq!(err("x:+1"), AddrError::BadPort("x:+1".into()));
        assert_eq!(err("x:"), AddrError::BadPort("x:".into()));
        assert_eq!(err("::1"), AddrError::Ipv6NeedsBrackets("::1".into()));
        assert_eq!(err("[::1"), AddrError::BadHost("[::1".into()));
        assert_eq!(err("[nope]:1"), AddrError::BadHost("[nope]:1".into()));
        assert_eq!(err("[::1]4433"), AddrError::BadHost("[::1]4433".into()));
        assert_eq!(err("tls://x/y"), AddrError::BadHost("tls://x/y".into()));
        assert_eq!(err("a b:1"), AddrError::BadHost("a b:1".into()));
        assert_eq!(
            err("tls://bad_name!:1"),
            AddrError::BadHost("tls://bad_name!:1".into())
        );
        assert!(err("x:70000").to_string().contains("\"x:70000\""));
    }

    #[test]
    fn known_server_keys_need_a_port_and_are_normalised() {
        assert_eq!(
            parse_server_key("Example.org:1").as_deref(),
            Ok("example.org:1")
        );
        assert_eq!(parse_server_key("[::1]:2").as_deref(), Ok("[::1]:2"));
        assert!(parse_server_key("example.org").is_err());
    }
}

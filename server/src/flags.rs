//! Value parsers for the command line's flags: each error says what the flag accepts (clap puts
//! the flag's name and the offending value in front: `invalid value '-5' for '--max-clients
//! <N>': expected a whole number, 0 or more`). Checks between flags belong to
//! [`crate::config`]; nothing here starts anything.

use std::net::{SocketAddr, ToSocketAddrs};

/// A whole number of some width: `usize` or `u32` flags.
pub fn whole<T: std::str::FromStr + TryFrom<u64>>(text: &str) -> Result<T, String> {
    let max = match T::try_from(u64::from(u32::MAX) + 1) {
        Ok(_) => "0 or more",
        Err(_) => "0 to 4294967295",
    };
    if text.trim_start().starts_with('-') {
        return Err(format!(
            "expected a whole number, {max}, not a negative one"
        ));
    }
    text.trim()
        .parse::<T>()
        .map_err(|_| format!("expected a whole number, {max}"))
}

/// A number of seconds (fractions allowed): range checks come later, with the flag's meaning.
pub fn seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok(secs),
        _ => Err("expected a number of seconds, such as 60 or 0.5".into()),
    }
}

/// An address to listen on: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT` (resolved now; the first
/// address the name resolves to is used).
pub fn address(text: &str) -> Result<SocketAddr, String> {
    const ACCEPTS: &str = "expected HOST:PORT, such as 127.0.0.1:55555, [::]:55555 or \
                           localhost:55555";
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("{ACCEPTS} (no port)"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(ACCEPTS.into());
    }
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{host} has no address ({ACCEPTS})")),
        Err(e) => Err(format!("cannot resolve {host}: {e} ({ACCEPTS})")),
    }
}

/// Longest `--cluster-name`.
pub const MAX_CLUSTER_NAME: usize = 64;

/// `--cluster-name`: 1 to [`MAX_CLUSTER_NAME`] of `A-Z a-z 0-9 . _ : -` (`~` is kept for the
/// suffix of a rejoin, tabs and spaces for the room's keys).
pub fn cluster_name(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= MAX_CLUSTER_NAME
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "expected 1 to {MAX_CLUSTER_NAME} of A-Z a-z 0-9 . _ : - (such as chat1 or chat1:55555)"
        ))
    }
}

/// The default `--cluster-name`: the host name (its allowed characters) and `port`.
pub fn default_cluster_name(port: u16) -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(MAX_CLUSTER_NAME - 6)
        .collect();
    let host = if host.is_empty() {
        "server".to_owned()
    } else {
        host
    };
    format!("{host}:{port}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_say_what_they_accept() {
        assert_eq!(whole::<usize>("10"), Ok(10));
        assert_eq!(
            whole::<usize>("-5"),
            Err("expected a whole number, 0 or more, not a negative one".into())
        );
        assert_eq!(
            whole::<u32>("5000000000"),
            Err("expected a whole number, 0 to 4294967295".into())
        );
        assert!(whole::<usize>("ten").is_err());
        assert_eq!(seconds("0.5"), Ok(0.5));
        assert!(seconds("-1").unwrap_err().contains("seconds"));
        assert!(seconds("inf").is_err());
    }

    #[test]
    fn cluster_names_are_plain_and_default_to_host_and_port() {
        assert_eq!(cluster_name("chat1:55555"), Ok("chat1:55555".to_owned()));
        for bad in ["", "a b", "a~2", "a\tb", &"x".repeat(65)] {
            assert!(cluster_name(bad).is_err(), "{bad:?}");
        }
        let name = default_cluster_name(55555);
        assert!(name.ends_with(":55555"), "{name}");
        assert!(cluster_name(&name).is_ok(), "{name}");
    }

    #[test]
    fn addresses_take_host_names() {
        assert_eq!(
            address("127.0.0.1:5"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 5)))
        );
        assert!(address("[::]:5").unwrap().is_ipv6());
        assert_eq!(address("localhost:56001").unwrap().port(), 56001);
        assert!(address("localhost:56001").unwrap().ip().is_loopback());
        assert!(address("localhost").unwrap_err().contains("no port"));
        assert!(address("localhost:port").unwrap_err().contains("HOST:PORT"));
        assert!(address("no-such-host.invalid:1").is_err());
    }
}

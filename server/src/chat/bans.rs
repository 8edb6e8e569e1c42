//! The ban list: addresses and CIDR ranges whose connections are refused, each with who banned
//! it, why, since when and until when. A type of its own, with wall-clock times only, so a store
//! can keep it across restarts exactly as it is; it never reads a clock (the caller passes
//! `now`) and never touches a socket.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// Most bans kept at once; `ban` past it is refused (unban or let some expire first).
pub const MAX_BANS: usize = 10_000;
/// Longest ban duration accepted (`ban IP 400d` is refused; no duration bans until `unban`).
pub const MAX_BAN_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
/// Longest ban reason kept, in bytes (a longer one is cut at a character boundary).
pub const MAX_BAN_REASON: usize = 200;

/// An address or a range of them: `192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    /// The range's first address (host bits cleared).
    addr: IpAddr,
    /// Leading bits that must match: 32 or 128 for one address.
    prefix: u8,
}

/// Why a text is not an [`IpNet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadNet(pub String);

impl fmt::Display for BadNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not an IP address or CIDR range: {:?} (such as 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32)",
            chat_common::sanitize::sanitize(&self.0)
        )
    }
}

impl IpNet {
    /// The range of `prefix` leading bits around `addr` (host bits cleared); `None` when the
    /// prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let addr = match addr {
            IpAddr::V4(a) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
            _ => return None,
        };
        Some(IpNet { addr, prefix })
    }

    /// One address.
    pub fn host(addr: IpAddr) -> IpNet {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        IpNet { addr, prefix }
    }

    /// Whether `ip` is in the range (an IPv4 address mapped into IPv6, `::ffff:a.b.c.d`, counts as
    /// the IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        IpNet::new(ip, self.prefix).is_some_and(|net| net.addr == self.addr)
    }

    /// Whether it is one address rather than a range.
    pub fn is_host(&self) -> bool {
        self.prefix == if self.addr.is_ipv4() { 32 } else { 128 }
    }
}

impl FromStr for IpNet {
    type Err = BadNet;

    fn from_str(text: &str) -> Result<IpNet, BadNet> {
        let bad = || BadNet(text.to_owned());
        match text.split_once('/') {
            None => text.parse().map(IpNet::host).map_err(|_| bad()),
            Some((addr, prefix)) => {
                let addr: IpAddr = addr.parse().map_err(|_| bad())?;
                if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let prefix: u8 = prefix.parse().map_err(|_| bad())?;
                IpNet::new(addr, prefix).ok_or_else(bad)
            }
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// One ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// What is banned.
    pub net: IpNet,
    /// Why, as the operator said (sanitized), if they did.
    pub reason: Option<String>,
    /// The console that banned it (`stdin`, `control:3`).
    pub by: String,
    /// When it was made.
    pub since: SystemTime,
    /// When it ends by itself; `None`: at `unban`.
    pub until: Option<SystemTime>,
}

impl Ban {
    /// Whether it has run out at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        self.until.is_some_and(|until| until <= now)
    }
}

/// Why a ban was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanError {
    /// [`MAX_BANS`] are in force.
    Full,
}

impl fmt::Display for BanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanError::Full => write!(
                f,
                "{MAX_BANS} bans are in force (the most kept): unban some first"
            ),
        }
    }
}

/// The bans in force, in the order they were made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BanList {
    bans: Vec<Ban>,
}

impl BanList {
    /// A list with these bans (as a store read them back); beyond [`MAX_BANS`] are dropped.
    pub fn from_bans(mut bans: Vec<Ban>) -> BanList {
        bans.truncate(MAX_BANS);
        BanList { bans }
    }

    /// Adds `ban`, replacing a ban of the same range; the replaced one, if any.
    pub fn add(&mut self, ban: Ban) -> Result<Option<Ban>, BanError> {
        if let Some(old) = self.bans.iter_mut().find(|b| b.net == ban.net) {
            return Ok(Some(std::mem::replace(old, ban)));
        }
        if self.bans.len() >= MAX_BANS {
            return Err(BanError::Full);
        }
        self.bans.push(ban);
        Ok(None)
    }

    /// Lifts the ban of exactly `net`.
    pub fn remove(&mut self, net: IpNet) -> Option<Ban> {
        let at = self.bans.iter().position(|b| b.net == net)?;
        Some(self.bans.remove(at))
    }

    /// The ban in force at `now` that covers `ip`, if any.
    pub fn find(&self, ip: IpAddr, now: SystemTime) -> Option<&Ban> {
        self.bans
            .iter()
            .find(|b| !b.expired(now) && b.net.contains(ip))
    }

    /// Removes and returns the bans that ran out by `now`.
    pub fn expire(&mut self, now: SystemTime) -> Vec<Ban> {
        let (gone, kept) = std::mem::take(&mut self.bans)
            .into_iter()
            .partition(|b| b.expired(now));
        self.bans = kept;
        gone
    }

    /// The bans, in the order they were made.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Ban> + '_ {
        self.bans.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.bans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bans.is_empty()
    }
}

/// Parses a ban duration: a whole number and a unit, `90s`, `30m`, `12h`, `7d`, `2w`; at most
/// [`MAX_BAN_DURATION`].
pub fn parse_duration(text: &str) -> Option<Duration> {
    let digits = text.len().checked_sub(1)?;
    let (number, unit) = text.split_at(digits);
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = number.parse().ok()?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    let d = Duration::from_secs(n.checked_mul(unit)?);
    (d > Duration::ZERO && d <= MAX_BAN_DURATION).then_some(d)
}

/// A duration for people: `45s`, `12m`, `3h05m`, `2d04h`.
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_contain() {
        assert_eq!(net("127.0.0.1/8").to_string(), "127.0.0.0/8");
        assert!(net("127.0.0.1/8").contains("127.9.9.9".parse().unwrap()));
        assert!(!net("127.0.0.0/8").contains("128.0.0.1".parse().unwrap()));
        assert!(net("10.1.2.3").contains("10.1.2.3".parse().unwrap()));
        assert!(!net("10.1.2.3").contains("10.1.2.4".parse().unwrap()));
        assert!(net("0.0.0.0/0").contains("8.8.8.8".parse().unwrap()));
        assert!(net("2001:db8::/32").contains("2001:db8:1::5".parse().unwrap()));
        assert!(net("10.0.0.0/8").contains("::ffff:10.2.3.4".parse().unwrap()));
        assert_eq!(net("::1").to_string(), "::1");
        for bad in [
            "300.1.2.3/40",
            "300.1.2.3",
            "1.2.3.4/33",
            "::/129",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "x",
            "",
        ] {
            let err = bad.parse::<IpNet>().unwrap_err().to_string();
            assert!(
                err.contains("not an IP address or CIDR range"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn bans_expire_replace_and_are_bounded() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ban = |n: &str, until: Option<u64>| Ban {
            net: net(n),
            reason: None,
            by: "stdin".into(),
            since: t0,
            until: until.map(|s| t0 + Duration::from_secs(s)),
        };
        let mut list = BanList::default();
        assert_eq!(list.add(ban("10.0.0.0/8", Some(60))), Ok(None));
        let ip = "10.1.1.1".parse().unwrap();
        assert!(list.find(ip, t0).is_some());
        assert!(list.find(ip, t0 + Duration::from_secs(60)).is_none());
        assert!(list.add(ban("10.0.0.0/8", None)).unwrap().is_some());
        assert_eq!(list.len(), 1);
        assert!(list.find(ip, t0 + Duration::from_secs(600)).is_some());
        list.add(ban("1.2.3.4", Some(1))).unwrap();
        assert_eq!(list.expire(t0 + Duration::from_secs(2)).len(), 1);
        assert_eq!(list.len(), 1);
        assert!(list.remove(net("10.0.0.0/8")).is_some());
        assert!(list.is_empty());
        for i in 0..MAX_BANS {
            let a = IpAddr::V4((i as u32).into());
            list.add(Ban {
                net: IpNet::host(a),
                ..ban("1.1.1.1", None)
            })
            .unwrap();
        }
        assert_eq!(list.add(ban("9.9.9.9", None)), Err(BanError::Full));
    }

    #[test]
    fn durations_have_units_and_a_bound() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1w"), Some(Duration::from_secs(604_800)));
        for bad in [
            "",
            "h",
            "0m",
            "5",
            "5x",
            "-5m",
            "400d",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(span(Duration::from_secs(5)), "5s");
        assert_eq!(span(Duration::from_secs(125)), "2m05s");
        assert_eq!(span(Duration::from_secs(3 * 3600 + 300)), "3h05m");
        assert_eq!(span(Duration::from_secs(2 * 86_400 + 4 * 3600)), "2d04h");
    }
}

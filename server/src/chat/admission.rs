//! Admission: who may connect and who may wait for the operator. It owns the bans, the name
//! cool-downs, the count of waiting joins per address and the number of open consoles, and
//! answers plain questions; the core asks before it acts (`joins.rs`).
//!
//! `--max-clients` and `--max-per-ip` are decided here from the counts the shell keeps of its
//! sockets (the shell only counts); the waiting room is bounded twice, `--max-pending` in all and
//! `--max-pending-per-ip` from one address, so one host cannot lock everyone else out; a join
//! the operator (or the approval timeout) refused leaves a cool-down on its (address, name), so
//! a refused squatter cannot grab the name back at once. Nothing here sends anything.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Instant;

use super::bans::{Ban, BanList};
use crate::config::Config;

/// Size below which the cool-down map is never swept.
const COOLDOWN_SWEEP_MIN: usize = 64;

/// Why a new connection is refused before it gets a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectRefusal {
    /// `--max-clients` connections are open.
    Full,
    /// `--max-per-ip` connections are open from its address.
    PerAddress,
}

impl fmt::Display for ConnectRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectRefusal::Full => "the server is full; try again later",
            ConnectRefusal::PerAddress => "too many connections from your address",
        })
    }
}

/// Why a named join may not wait for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitRefusal {
    /// No console is open (`DENIED`).
    NoOperator,
    /// `--max-pending` joins wait already (`ERROR server-full`).
    Full,
    /// `--max-pending-per-ip` joins from its address wait already (`ERROR server-full`).
    PerAddress,
}

impl fmt::Display for WaitRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitRefusal::NoOperator => "no operator is present to approve joins",
            WaitRefusal::Full => "too many joins are waiting for the operator; try again later",
            WaitRefusal::PerAddress => {
                "too many joins from your address are waiting for the operator; try again later"
            }
        })
    }
}

/// Why an address may not take a name nobody holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameRefusal {
    /// The name left a moment ago and is held for its owner's address for `left` more
    /// (`--name-hold`).
    Held {
        /// The name asked for.
        name: Box<str>,
        /// How long it is still held.
        left: std::time::Duration,
    },
    /// The operator (or the approval timeout) refused this name from this address a moment
    /// ago (`--name-cooldown`).
    CoolingDown {
        /// The name asked for.
        name: Box<str>,
    },
}

impl fmt::Display for NameRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameRefusal::Held { name, left } => write!(
                f,
                "the name {name} was in use a moment ago and is kept for its owner; try again in {} s",
                left.as_secs() + 1
            ),
            NameRefusal::CoolingDown { name } => write!(
                f,
                "the name {name} was refused a moment ago; try again later"
            ),
        }
    }
}

/// The admission rules and their state.
#[derive(Debug)]
pub struct Admission {
    max_clients: usize,
    max_per_ip: usize,
    max_pending: usize,
    max_pending_per_ip: usize,
    name_cooldown: std::time::Duration,
    auto_approve: bool,
    /// Waiting joins per address, for `--max-pending-per-ip`.
    pending_per_ip: HashMap<IpAddr, usize>,
    /// (address, lowercased name) -> until when that address may not wait for that name again.
    cooldowns: HashMap<(IpAddr, Box<str>), Instant>,
    /// Size at which `cooldowns` is next swept of expired entries.
    cooldown_sweep_at: usize,
    /// Addresses and ranges whose connections are refused.
    bans: BanList,
    /// Consoles open (standard input and remote ones); joins wait only while one is.
    consoles: usize,
    /// `--name-hold`: how long a name that left stays its owner's.
    name_hold: std::time::Duration,
    /// Lowercased name -> (its last owner's address, until when it is held for it).
    holds: HashMap<Box<str>, (IpAddr, Instant)>,
    /// Size at which `holds` is next swept of expired entries.
    hold_sweep_at: usize,
}

impl Admission {
    /// The rules of `config`, with `consoles` consoles open.
    pub fn new(config: &Config, consoles: usize) -> Admission {
        Admission {
            max_clients: config.max_clients,
            max_per_ip: config.max_per_ip,
            max_pending: config.max_pending,
            max_pending_per_ip: config.max_pending_per_ip,
            name_cooldown: config.name_cooldown,
            auto_approve: config.auto_approve,
            pending_per_ip: HashMap::new(),
            cooldowns: HashMap::new(),
            cooldown_sweep_at: COOLDOWN_SWEEP_MIN,
            bans: BanList::default(),
            consoles,
            name_hold: config.name_hold,
            holds: HashMap::new(),
            hold_sweep_at: COOLDOWN_SWEEP_MIN,
        }
    }

    /// Whether a new socket from `ip` may be kept, given `open` sockets in all and `from_ip`
    /// from that address (the shell's counts, this one not included).
    pub fn may_connect(&self, open: usize, from_ip: usize) -> Result<(), ConnectRefusal> {
        if open >= self.max_clients {
            Err(ConnectRefusal::Full)
        } else if self.max_per_ip > 0 && from_ip >= self.max_per_ip {
            Err(ConnectRefusal::PerAddress)
        } else {
            Ok(())
        }
    }

    /// The ban in force at `now` that covers `ip`, if any.
    pub fn banned(&self, ip: IpAddr, now: std::time::SystemTime) -> Option<&Ban> {
        self.bans.find(ip, now)
    }

    /// The bans, to add, lift, list or expire.
    pub fn bans_mut(&mut self) -> &mut BanList {
        &mut self.bans
    }

    /// The bans.
    pub fn bans(&self) -> &BanList {
        &self.bans
    }

    /// Whether a named join goes straight in (`--auto-approve`).
    pub fn auto_approve(&self) -> bool {
        self.auto_approve
    }

    /// Whether a join from `ip` may wait for the operator, with `waiting` joins waiting in all.
    pub fn may_wait(&self, ip: IpAddr, waiting: usize) -> Result<(), WaitRefusal> {
        if self.consoles == 0 {
            Err(WaitRefusal::NoOperator)
        } else if waiting >= self.max_pending {
            Err(WaitRefusal::Full)
        } else if self.pending_per_ip.get(&ip).copied().unwrap_or(0) >= self.max_pending_per_ip {
            Err(WaitRefusal::PerAddress)
        } else {
            Ok(())
        }
    }

    /// One more join waits from `ip`.
    pub fn pend(&mut self, ip: IpAddr) {
        *self.pending_per_ip.entry(ip).or_insert(0) += 1;
    }

    /// One fewer join waits from `ip`.
    pub fn unpend(&mut self, ip: IpAddr) {
        if let Some(count) = self.pending_per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.pending_per_ip.remove(&ip);
            }
        }
    }

    /// Whether `ip` may not wait for `name` yet (a refusal of it is cooling down).
    pub fn cooling_down(&mut self, ip: IpAddr, name: &str, now: Instant) -> bool {
        let key = (ip, name.to_ascii_lowercase().into_boxed_str());
        match self.cooldowns.get(&key) {
            Some(&until) if until > now => true,
            Some(_) => {
                self.cooldowns.remove(&key);
                false
            }
            None => false,
        }
    }

    /// The operator (or the approval timeout) refused `name` from `ip`: it cools down.
    pub fn start_cooldown(&mut self, ip: IpAddr, name: &str, now: Instant) {
        if self.name_cooldown.is_zero() {
            return;
        }
        // Expired entries are swept when the map has doubled since the last sweep, so the map
        // stays proportional to the refusals of the last cool-down period.
        if self.cooldowns.len() >= self.cooldown_sweep_at {
            self.cooldowns.retain(|_, until| *until > now);
            self.cooldown_sweep_at = (self.cooldowns.len() * 2).max(COOLDOWN_SWEEP_MIN);
        }
        let key = (ip, name.to_ascii_lowercase().into_boxed_str());
        self.cooldowns.insert(key, now + self.name_cooldown);
    }

    /// A member called `name` from `ip` left or was renamed: nobody else may take the name for
    /// `--name-hold` (IRC's nick delay), so nobody can speak as them in the next moment.
    pub fn hold_name(&mut self, name: &str, ip: IpAddr, now: Instant) {
        if self.name_hold.is_zero() {
            return;
        }
        if self.holds.len() >= self.hold_sweep_at {
            self.holds.retain(|_, (_, until)| *until > now);
            self.hold_sweep_at = (self.holds.len() * 2).max(COOLDOWN_SWEEP_MIN);
        }
        let key = name.to_ascii_lowercase().into_boxed_str();
        self.holds.insert(key, (ip, now + self.name_hold));
    }

    /// How long `name` is still held for someone other than `ip` (`None`: free for `ip`).
    pub fn held_against(
        &self,
        ip: IpAddr,
        name: &str,
        now: Instant,
    ) -> Option<std::time::Duration> {
        let key = name.to_ascii_lowercase();
        match self.holds.get(key.as_str()) {
            Some(&(owner, until)) if owner != ip && until > now => Some(until - now),
            _ => None,
        }
    }

    /// Whether `ip` may take `name` (nobody holds it now): not while it is held for the
    /// address that left it, nor while a refusal of it from `ip` cools down.
    pub fn may_take_name(
        &mut self,
        ip: IpAddr,
        name: &str,
        now: Instant,
    ) -> Result<(), NameRefusal> {
        if let Some(left) = self.held_against(ip, name, now) {
            return Err(NameRefusal::Held {
                name: name.into(),
                left,
            });
        }
        if self.cooling_down(ip, name, now) {
            return Err(NameRefusal::CoolingDown { name: name.into() });
        }
        Ok(())
    }

    /// One more console is open.
    pub fn console_opened(&mut self) {
        self.consoles += 1;
    }

    /// A console closed; true when none is left and joins can no longer wait.
    pub fn console_closed(&mut self) -> bool {
        self.consoles = self.consoles.saturating_sub(1);
        self.consoles == 0 && !self.auto_approve
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_name_that_left_is_held_for_its_owner_s_address_only() {
        let mut a = Admission::new(&Config::default(), 1);
        let t = Instant::now();
        a.hold_name("Alice", ip(2), t);
        assert!(a.held_against(ip(3), "alice", t).is_some());
        assert_eq!(
            a.held_against(ip(2), "ALICE", t),
            None,
            "its owner may come back"
        );
        let later = t + Config::default().name_hold;
        assert_eq!(a.held_against(ip(3), "alice", later), None);
        let off = Config {
            name_hold: Duration::ZERO,
            ..Config::default()
        };
        let mut a = Admission::new(&off, 1);
        a.hold_name("alice", ip(2), t);
        assert_eq!(a.held_against(ip(3), "alice", t), None);
    }

    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn connections_are_bounded_in_all_and_per_address() {
        let config = Config {
            max_clients: 3,
            max_per_ip: 2,
            ..Config::default()
        };
        let a = Admission::new(&config, 1);
        assert_eq!(a.may_connect(2, 1), Ok(()));
        assert_eq!(a.may_connect(3, 0), Err(ConnectRefusal::Full));
        assert_eq!(a.may_connect(1, 2), Err(ConnectRefusal::PerAddress));
        let unlimited = Admission::new(&Config::default(), 1);
        assert_eq!(unlimited.may_connect(1, 5000), Ok(()));
    }

    #[test]
    fn the_waiting_room_is_bounded_in_all_and_per_address_and_needs_a_console() {
        let config = Config {
            max_pending: 3,
            max_pending_per_ip: 2,
            ..Config::default()
        };
        let mut a = Admission::new(&config, 0);
        assert_eq!(a.may_wait(ip(2), 0), Err(WaitRefusal::NoOperator));
        a.console_opened();
        a.pend(ip(2));
        a.pend(ip(2));
        assert_eq!(a.may_wait(ip(2), 2), Err(WaitRefusal::PerAddress));
        assert_eq!(a.may_wait(ip(3), 2), Ok(()));
        assert_eq!(a.may_wait(ip(3), 3), Err(WaitRefusal::Full));
        a.unpend(ip(2));
        assert_eq!(a.may_wait(ip(2), 1), Ok(()));
        assert!(a.console_closed(), "no console left");
    }

    #[test]
    fn a_name_may_not_be_taken_while_held_for_another_or_cooling_down() {
        let mut a = Admission::new(&Config::default(), 1);
        let t = Instant::now();
        assert_eq!(a.may_take_name(ip(3), "bob", t), Ok(()));
        a.hold_name("Bob", ip(2), t);
        let Err(held) = a.may_take_name(ip(3), "BOB", t) else {
            panic!("a held name was free for another address");
        };
        assert!(matches!(held, NameRefusal::Held { .. }));
        assert!(held.to_string().contains("kept for its owner"), "{held}");
        assert_eq!(a.may_take_name(ip(2), "bob", t), Ok(()), "its owner may");
        a.start_cooldown(ip(2), "carol", t);
        let Err(cool) = a.may_take_name(ip(2), "Carol", t) else {
            panic!("a refused name was free at once");
        };
        assert_eq!(
            cool,
            NameRefusal::CoolingDown {
                name: "Carol".into()
            }
        );
        assert_eq!(
            cool.to_string(),
            "the name Carol was refused a moment ago; try again later"
        );
    }

    #[test]
    fn a_refused_name_cools_down_for_its_address_only() {
        let mut a = Admission::new(&Config::default(), 1);
        let t = Instant::now();
        a.start_cooldown(ip(2), "Root", t);
        assert!(a.cooling_down(ip(2), "root", t));
        assert!(!a.cooling_down(ip(3), "root", t));
        assert!(!a.cooling_down(ip(2), "root", t + Duration::from_secs(61)));
    }
}

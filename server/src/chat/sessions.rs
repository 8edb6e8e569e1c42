//! The sessions: what the core knows of each connection, by slab key, and where each is in its
//! life (`AwaitingName -> [Claiming ->] Waiting -> Member`, then gone). Only plain lookups here;
//! an id whose serial does not match (a closed connection's successor) finds nothing.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::ConnId;
use crate::bucket::Bucket;
use crate::config::{NICK_BURST, NICK_INTERVAL};

/// Where a session is in its life. A closed session is simply gone from the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    /// Connected; no valid name offered yet. The login timer runs.
    AwaitingName,
    /// Offered a valid name that is being claimed in the cluster (`--cluster` only); the answer
    /// ([`Core::cluster_input`](super::Core::cluster_input)) admits it, lets it wait, or refuses the name.
    Claiming { name: Rc<str> },
    /// Offered a valid name, reserved; the operator decides. The approval timer runs.
    Waiting { name: Rc<str>, since: Instant },
    /// In the room.
    Member { name: Rc<str> },
}

/// What the core knows of one connection.
#[derive(Debug)]
pub(super) struct Session {
    pub serial: u64,
    pub addr: SocketAddr,
    pub phase: Phase,
    /// Renames allowed (members only; see [`crate::config::NICK_BURST`]).
    pub renames: Bucket,
    /// How it reached the server (the console's `who` shows it).
    pub transport: Transport,
    /// When it entered the room (members only).
    pub joined: Option<Instant>,
}

impl Session {
    /// Takes one rename from the member's allowance at `now` ([`NICK_BURST`] at once, then one
    /// per [`NICK_INTERVAL`]); `Err` says how long until the next one is allowed.
    pub fn take_rename(&mut self, now: Instant) -> Result<(), Duration> {
        let per_second = 1.0 / NICK_INTERVAL.as_secs_f64();
        self.renames.refill(per_second, f64::from(NICK_BURST), now);
        if self.renames.take(1.0) {
            Ok(())
        } else {
            Err(self.renames.wait_for(1.0, per_second))
        }
    }
}

/// How a connection reached the server; the shell says ([`super::Core::set_transport`]). The
/// console's `who` shows it and the metrics count by it (its [`Transport::label`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// The line protocol over plain TCP.
    #[default]
    Tcp,
    /// The line protocol inside TLS.
    Tls,
    /// WebSocket over plain HTTP.
    Ws,
    /// WebSocket over HTTPS.
    Wss,
    /// IRC over plain TCP.
    Irc,
    /// IRC over TLS.
    IrcTls,
}

impl Transport {
    /// Every transport, in the order of their metrics series.
    pub const ALL: [Transport; 6] = [
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
        Transport::Irc,
        Transport::IrcTls,
    ];

    /// Its name, as `who` shows it and as the metrics' `transport` label value.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
            Transport::Irc => "irc",
            Transport::IrcTls => "irc_tls",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Sessions by slab key.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    /// `None` where no session lives. Grows to the highest key used (the shell's slab bounds it
    /// by `--max-clients`).
    slots: Vec<Option<Session>>,
}

impl Sessions {
    /// The session of `id`.
    pub fn get(&self, id: ConnId) -> Option<&Session> {
        self.slots
            .get(id.key)
            .and_then(Option::as_ref)
            .filter(|s| s.serial == id.serial)
    }

    /// The session of `id`, to change.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Session> {
        self.slots
            .get_mut(id.key)
            .and_then(Option::as_mut)
            .filter(|s| s.serial == id.serial)
    }

    /// Starts the session of `id` (replacing whatever was in its slot).
    pub fn insert(&mut self, id: ConnId, session: Session) {
        if self.slots.len() <= id.key {
            self.slots.resize_with(id.key + 1, || None);
        }
        if let Some(slot) = self.slots.get_mut(id.key) {
            *slot = Some(session);
        }
    }

    /// Removes and returns the session of `id`.
    pub fn take(&mut self, id: ConnId) -> Option<Session> {
        let slot = self.slots.get_mut(id.key)?;
        if slot.as_ref().is_some_and(|s| s.serial == id.serial) {
            slot.take()
        } else {
            None
        }
    }

    /// The id of the session in slot `key`.
    pub fn id_at(&self, key: usize) -> Option<ConnId> {
        self.slots
            .get(key)
            .and_then(Option::as_ref)
            .map(|s| ConnId {
                key,
                serial: s.serial,
            })
    }

    /// How many slots there are (every session's key is below).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }
}

/// The name a session holds, if it holds one (waiting or in the room).
pub(super) fn session_name(session: &Session) -> Option<&Rc<str>> {
    match &session.phase {
        Phase::Waiting { name, .. } | Phase::Member { name } => Some(name),
        Phase::AwaitingName | Phase::Claiming { .. } => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renames_are_allowed_in_a_burst_then_one_per_interval() {
        let t = Instant::now();
        let mut s = Session {
            serial: 1,
            addr: SocketAddr::from(([127, 0, 0, 2], 4000)),
            phase: Phase::AwaitingName,
            renames: Bucket::full(f64::from(NICK_BURST), t),
            transport: Transport::Tcp,
            joined: None,
        };
        for _ in 0..NICK_BURST {
            assert_eq!(s.take_rename(t), Ok(()));
        }
        let wait = s.take_rename(t).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= NICK_INTERVAL, "{wait:?}");
        assert_eq!(s.take_rename(t + wait + Duration::from_millis(1)), Ok(()));
    }
}

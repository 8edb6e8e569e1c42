//! Leaving: dooming a connection (cut at the end of the round, no more output) and reaping the
//! doomed, which tells the core they are gone (its departure may doom others, whose queues
//! overflow with the LEAVE line, so reaping repeats until nothing is left).

use chat_common::protocol::LeaveReason;

use super::{Reactor, Shell};
use crate::chat::{ConnId, Now};

impl Shell {
    /// Marks a connection to be cut at the end of the round; it gets nothing more.
    pub(super) fn doom(&mut self, id: ConnId, reason: LeaveReason) {
        if let Some(conn) = self.conns.get_mut(id.key) {
            if conn.id.serial == id.serial && !conn.doomed {
                conn.doomed = true;
                self.queued = self.queued.saturating_sub(conn.out.cost());
                let storage = conn.out.storage();
                conn.out.clear();
                self.freed(storage, std::time::Instant::now());
                self.doomed.push((id, reason));
            }
        }
    }
}

impl Reactor {
    /// Cuts every doomed connection, telling the core each is gone.
    fn reap(&mut self, now: Now) {
        while let Some((id, reason)) = self.shell.doomed.pop() {
            self.core.gone(id, reason, now, &mut self.shell);
            if self
                .shell
                .conns
                .get(id.key)
                .is_some_and(|c| c.id.serial == id.serial)
            {
                let mut conn = self.shell.conns.remove(id.key);
                let _ = self.shell.registry.deregister(&mut conn.stream);
                let ip = conn.addr.ip();
                if conn.stream.counted_handshake() {
                    // A handshake that never finished: its buffers go back with it.
                    self.handshakes.end(ip);
                    self.shell
                        .freed(super::tls::HANDSHAKE_FOOTPRINT, std::time::Instant::now());
                }
                if let Some(count) = self.per_ip.get_mut(&ip) {
                    *count -= 1;
                    if *count == 0 {
                        self.per_ip.remove(&ip);
                    }
                }
                log::debug!("#{} closed", id.serial);
            }
        }
    }

    /// Ends a round: cut the doomed, flush the dirty, until both are done; then act on a quit a
    /// console asked for.
    pub(super) fn settle(&mut self, now: Now) {
        loop {
            while !self.shell.doomed.is_empty()
                || !self.shell.dirty.is_empty()
                || !self.shell.cut_controls.is_empty()
                || !self.shell.irc_bursts.is_empty()
            {
                self.irc_finish_bursts();
                self.reap(now);
                self.shell.flush(now.at);
                while let Some(key) = self.shell.cut_controls.pop() {
                    self.close_control(key, now);
                }
            }
            if !self.shell.quit_requested {
                return;
            }
            self.shell.quit_requested = false;
            self.begin_shutdown("quit by the operator", now);
        }
    }
}

//! The cluster bridge's side of the loop (`--cluster`): its messages are handed to the core, at
//! most [`INBOX_PER_ROUND`] a round so sockets keep their turn, and an overflowing queue to Redis
//! cuts the server off.

use super::Reactor;
use crate::chat::Now;
use crate::cluster::event::FromBridge;
use crate::cluster::INBOX_PER_ROUND;

impl Reactor {
    /// Hands the bridge's waiting messages to the core.
    pub(super) fn drive_cluster(&mut self, now: Now) {
        let Some(link) = self.shell.cluster.as_mut() else {
            return;
        };
        if link.take_overflow() {
            let why = "its queue to Redis overflowed".to_owned();
            self.core
                .cluster_input(FromBridge::Down { why }, now, &mut self.shell);
        }
        if !self.shell.cluster_busy {
            return;
        }
        self.shell.cluster_busy = false;
        for _ in 0..INBOX_PER_ROUND {
            let Some(msg) = self.shell.cluster.as_ref().and_then(|l| l.try_recv()) else {
                return;
            };
            self.core.cluster_input(msg, now, &mut self.shell);
        }
        // There may be more: come back next round without waiting.
        self.shell.cluster_busy = true;
    }
}

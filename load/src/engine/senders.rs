//! The senders: each member that sends keeps a window of messages in flight (a ring of how
//! many receivers each has reached) and, paced, a schedule; `pump` appends what the window,
//! the schedule and the output cap allow and writes it. The text of a message is `text.rs`'s;
//! acknowledgements arrive through `protocol.rs` (`on_delivery`).

use std::time::{Duration, Instant};

use super::members::State;
use super::{Engine, Phase};
use crate::config::{Config, Proto};
use crate::irc;
use crate::procfs;
use crate::text::{self, Stamp};

/// A sender stops appending messages while this many bytes wait in its member's `out` (only
/// reachable with no window, `-w 0`), and resumes once the socket took them.
const OUT_CAP: usize = 1 << 20;

#[derive(Debug)]
pub(super) struct Sender {
    pub(super) member: usize,
    /// Next sequence number to send (= messages sent).
    pub(super) next_seq: u64,
    /// Every message below this has reached all receivers.
    pub(super) acked: u64,
    /// Receivers reached so far by each message of `acked..next_seq`: message `acked + k` is at
    /// `(head + k) % window` (kept without a division: this runs per delivery).
    pub(super) ring: Vec<u32>,
    pub(super) head: usize,
    /// Rate mode: when the next message is due, ns since start. Its text carries this time,
    /// not the time it went out, so a message sent late shows its lateness as latency
    /// (coordinated omission, as wrk2 corrects it).
    pub(super) due_ns: u64,
    /// On the engine's `ready` list.
    pub(super) queued: bool,
    /// Stopped with a message due because its output did not drain (the socket would block,
    /// or [`OUT_CAP`] bytes wait); queued again once the socket took it all (see
    /// `Engine::on_event`).
    pub(super) out_full: bool,
}

impl Engine<'_> {
    /// Appends as many messages of sender `k` as its window, its schedule and [`OUT_CAP`]
    /// allow, and writes them. Returns when its next message is due (rate mode), or `None`
    /// when it cannot send until something else happens: its window closed (an ack queues
    /// it again), its output not drained (the drained socket does), its member gone, or all
    /// sent.
    pub(super) fn pump(&mut self, k: usize, now_ns: u64) -> Option<u64> {
        let cfg = self.cfg;
        let member = self.senders[k].member;
        self.senders[k].queued = false;
        self.senders[k].out_full = false;
        let was_outstanding = self.outstanding();
        let mut wrote = false;
        loop {
            let sender = &mut self.senders[k];
            let m = &mut self.members[member];
            if m.state != State::Member {
                return None;
            }
            let mut appended = false;
            while may_send(cfg, sender, now_ns) && m.out.len() - m.out_pos < OUT_CAP {
                let speaks_irc = cfg.proto.of(member) == Proto::Irc;
                if speaks_irc {
                    irc::privmsg_start(&cfg.channel, &mut m.out);
                }
                // Paced: the time it was due, so lateness counts (see `Sender::due_ns`).
                let sent_ns = if cfg.interval_ns.is_some() {
                    sender.due_ns
                } else {
                    now_ns
                };
                text::encode(
                    Stamp {
                        sender: k as u32,
                        seq: sender.next_seq,
                        sent_ns,
                    },
                    cfg.pad,
                    &mut m.out,
                );
                if speaks_irc {
                    irc::end(&mut m.out);
                } else {
                    m.out.push(b'\n');
                }
                sender.next_seq += 1;
                self.sent += 1;
                appended = true;
                if let Some(iv) = cfg.interval_ns {
                    sender.due_ns = sender.due_ns.saturating_add(iv);
                }
            }
            if !appended {
                break;
            }
            wrote = true;
            self.flush(member);
            // Written out whole: room for more. Otherwise the socket is full (or closed).
            if !self.members[member].out.is_empty() {
                break;
            }
        }
        if wrote && !was_outstanding {
            // Silence before this send was no stall; count from now.
            self.last_progress = self.clock + Duration::from_nanos(now_ns);
        }
        let sender = &mut self.senders[k];
        if self.members[member].state != State::Member || !may_send(cfg, sender, u64::MAX) {
            return None;
        }
        if may_send(cfg, sender, now_ns) {
            // Due, but held back by its output: the socket is full, or OUT_CAP bytes wait.
            sender.out_full = true;
            return None;
        }
        Some(sender.due_ns)
    }

    /// Pumps every sender (those not yet due only report when they are) and sets
    /// `next_due_ns` to the earliest due time of those that can send; those that cannot stay
    /// out of the minimum, so a closed window or a closed member does not keep the poll
    /// timeout at zero.
    pub(super) fn pump_all(&mut self, now_ns: u64) {
        let mut next = u64::MAX;
        for k in 0..self.senders.len() {
            if let Some(due) = self.pump(k, now_ns) {
                next = next.min(due);
            }
        }
        self.next_due_ns = next;
    }

    pub(super) fn start_sending(&mut self) {
        self.phase = Phase::Sending;
        // Before the CPU samples: the scrape's own cost is not the message phase's.
        self.store_start = self.cfg.metrics.and_then(crate::metrics::scrape);
        self.server_send_start = self.cfg.server_pid.and_then(|p| procfs::sample(Some(p)));
        self.gen_send_start = procfs::sample(None);
        let now = Instant::now();
        self.t_first_send = Some(now);
        self.last_progress = now;
        let now_ns = self.now_ns();
        let s = self.cfg.senders as u64;
        let ring = self.cfg.window.map_or(0, |w| w as usize);
        self.senders = (0..self.cfg.senders)
            .map(|k| Sender {
                member: k,
                next_seq: 0,
                acked: 0,
                ring: vec![0; ring],
                head: 0,
                // Stagger the senders over one interval so a paced run is not a burst.
                due_ns: now_ns
                    + self
                        .cfg
                        .interval_ns
                        .map_or(0, |iv| (u128::from(iv) * k as u128 / u128::from(s)) as u64),
                queued: false,
                out_full: false,
            })
            .collect();
        self.pump_all(now_ns);
        if self.expected == 0 {
            self.phase = Phase::Done;
        }
    }
}

/// Whether a sender with `in_flight` unacknowledged messages may send another.
fn window_open(window: Option<u64>, in_flight: u64) -> bool {
    window.is_none_or(|w| in_flight < w)
}

/// Whether `sender` may send its next message at `now_ns`: some left, window open, and (rate
/// mode) due. `now_ns = u64::MAX` asks whether it could send once due.
fn may_send(cfg: &Config, sender: &Sender, now_ns: u64) -> bool {
    sender.next_seq < cfg.messages
        && window_open(cfg.window, sender.next_seq - sender.acked)
        && (cfg.interval_ns.is_none() || sender.due_ns <= now_ns)
}

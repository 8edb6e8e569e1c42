//! The reactor: one thread, one mio poll, every member's socket; it admits the members, drives
//! the senders, checks every delivery and fills the [`Report`]. This file owns the loop, the
//! phases and the engine's state; the rest of the engine is split along its seams:
//! `members` (connections: connect, read, write, close), `protocol` (what a received line
//! means, chat or IRC, and the bookkeeping of deliveries), `senders` (windows, pacing, the
//! messages sent), `pace` (slow readers, `--read-rate`) and `report` (the figures computed at
//! the end).
//!
//! A run goes through phases: `Admitting` (at most `--parallel` connections being opened or
//! admitted at once; one at a time for join-storm), `Settling` (until every JOIN notice of the
//! admissions has arrived, so messages do not race the join flood), then `Sending` (messages),
//! `Holding` (idle and join-storm: the server's memory is read at its end). The overall deadline
//! and the stall bound end any phase. Reads go through one shared 64 KiB buffer; per member only an
//! incomplete line (bounded by a `RawLineFramer`) and unsent bytes are kept, so 10,000 members
//! cost a few MiB. The loop never blocks except in `poll`, and never sleeps; paced, it polls with
//! a zero timeout through the last fraction of a millisecond before a send is due (see
//! `whole_ms_down`).

mod members;
mod pace;
mod protocol;
mod report;
mod senders;
mod stream;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_common::framing::RawLineFramer;
use mio::{Events, Poll};
use rustls::ClientConfig;

use crate::config::{Config, Scenario};
use crate::order::OrderTracker;
use crate::procfs::{self, Sample};
use crate::report::Report;
use crate::stats::Histogram;

use members::{Member, State, MAX_LINE};
use senders::Sender;

/// Size of the one read buffer all members share.
const READ_CHUNK: usize = 64 * 1024;
/// Events handled per poll.
const EVENTS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Admitting,
    Settling,
    Sending,
    Holding,
    Done,
}

/// Runs the scenario `cfg` describes and reports what happened. `Err` only when the run could
/// not start at all (no poll instance, or an unusable --ca file).
pub fn run(cfg: &Config) -> io::Result<Report> {
    let mut engine = Engine::new(cfg)?;
    engine.run()?;
    Ok(engine.finish())
}

struct Engine<'c> {
    cfg: &'c Config,
    /// With --tls: the configuration every member's session is made from.
    tls: Option<Arc<ClientConfig>>,
    poll: Poll,
    clock: Instant,
    deadline: Instant,
    phase: Phase,
    members: Vec<Member>,
    /// One per member in the messages scenario, empty otherwise.
    trackers: Vec<OrderTracker>,
    /// Join-storm: one per member, of the JOIN notices of the members after it (member `j`
    /// tracks member `j + 1 + k` as sequence number `k`); empty otherwise.
    join_trackers: Vec<OrderTracker>,
    senders: Vec<Sender>,
    /// Senders that may send again (window opened), handled after each poll round.
    ready: Vec<usize>,
    /// While admitting: events of members already in, handled after those of members on
    /// their way in (see `run`). Empty between poll rounds.
    later: Vec<(usize, bool, bool)>,
    hist: Histogram,
    buf: Vec<u8>,
    report: Report,

    started: usize,
    admitted: usize,
    failed: usize,
    /// JOIN notices received (join-storm: only those of a later member not seen before).
    joins_total: u64,
    joins_expected: u64,
    /// Join-storm: JOIN notices seen before, or of a member admitted earlier than the receiver.
    joins_duplicated: u64,
    delivered: u64,
    expected: u64,
    sent: u64,
    /// Rate mode: the earliest `due_ns` of the senders that can send when it comes (window
    /// open, member connected, output not full); `u64::MAX` when none can. A sender left out
    /// is folded back in when it is pumped again from the `ready` list.
    next_due_ns: u64,
    /// When something last arrived (or, while sending, when something became outstanding
    /// after nothing was): the stall check counts from here.
    last_progress: Instant,
    hold_until: Option<Instant>,
    /// Slow readers: when the last pacing round ran (`pace.rs`).
    last_pace: Instant,

    t_first_connect: Option<Instant>,
    t_admitted: Option<Instant>,
    /// The latest admission so far: the end of the admission time when not all got in.
    t_last_admit: Option<Instant>,
    t_first_send: Option<Instant>,
    /// When the last new delivery was read, ns since start (0: none yet).
    t_last_delivery_ns: u64,
    server_start: Option<Sample>,
    server_send_start: Option<Sample>,
    /// With `--metrics`: the store's counters when the message phase began.
    store_start: Option<crate::metrics::StoreCounters>,
    gen_start: Option<Sample>,
    gen_send_start: Option<Sample>,
    /// Machine-wide busy CPU seconds at the start.
    machine_start: Option<f64>,
}

impl<'c> Engine<'c> {
    fn new(cfg: &'c Config) -> io::Result<Self> {
        let now = Instant::now();
        let n = cfg.members;
        let members = (0..n)
            .map(|i| Member {
                name: format!("{}{i}", cfg.prefix),
                stream: None,
                state: State::Idle,
                lines: RawLineFramer::new(MAX_LINE),
                out: Vec::new(),
                out_pos: 0,
                allow: 0,
                backlog: false,
            })
            .collect();
        let trackers = if cfg.scenario == Scenario::Messages {
            (0..n)
                .map(|_| OrderTracker::new(cfg.senders, cfg.messages))
                .collect()
        } else {
            Vec::new()
        };
        let join_trackers = if cfg.scenario == Scenario::JoinStorm {
            (0..n)
                .map(|j| OrderTracker::new(1, (n - 1 - j) as u64))
                .collect()
        } else {
            Vec::new()
        };
        let n64 = n as u64;
        if cfg.addrs.is_empty() {
            return Err(io::Error::other("no server address"));
        }
        let tls = match &cfg.tls_ca {
            Some(ca) => Some(crate::tls::client_config(ca).map_err(io::Error::other)?),
            None => None,
        };
        Ok(Engine {
            cfg,
            tls,
            poll: Poll::new()?,
            clock: now,
            deadline: now + cfg.timeout,
            phase: Phase::Admitting,
            members,
            trackers,
            join_trackers,
            senders: Vec::new(),
            ready: Vec::new(),
            later: Vec::new(),
            hist: Histogram::default(),
            buf: vec![0; READ_CHUNK],
            report: Report::new(cfg),
            started: 0,
            admitted: 0,
            failed: 0,
            joins_total: 0,
            joins_expected: n64 * (n64 - 1) / 2,
            joins_duplicated: 0,
            delivered: 0,
            expected: cfg.senders as u64 * cfg.messages * (n64 - 1),
            sent: 0,
            next_due_ns: 0,
            last_progress: now,
            hold_until: None,
            last_pace: now,
            t_first_connect: None,
            t_admitted: None,
            t_last_admit: None,
            t_first_send: None,
            t_last_delivery_ns: 0,
            server_start: None,
            server_send_start: None,
            store_start: None,
            gen_start: None,
            gen_send_start: None,
            machine_start: None,
        })
    }

    fn now_ns(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Whether silence now counts towards a stall: while settling (JOIN notices are owed), and
    /// while sending only when a message sent has not yet reached every receiver. A paced
    /// sender's pause between two messages, with everything delivered, is no stall.
    fn stall_armed(&self) -> bool {
        match self.phase {
            Phase::Settling => true,
            Phase::Sending => self.outstanding(),
            _ => false,
        }
    }

    /// Deliveries owed for the messages sent so far.
    fn outstanding(&self) -> bool {
        self.sent * (self.cfg.members as u64 - 1) > self.delivered
    }

    fn run(&mut self) -> io::Result<()> {
        self.server_start = self.cfg.server_pid.and_then(|p| procfs::sample(Some(p)));
        self.gen_start = procfs::sample(None);
        self.machine_start = procfs::machine_busy_s();
        if self.cfg.server_pid.is_some() && self.server_start.is_none() {
            self.stop(format!(
                "cannot read /proc/{} of the server",
                self.cfg.server_pid.unwrap_or(0)
            ));
            return Ok(());
        }
        let mut events = Events::with_capacity(EVENTS);
        self.start_connects();
        while self.phase != Phase::Done {
            let now = Instant::now();
            if now >= self.deadline {
                self.report.timed_out = true;
                self.stop(format!(
                    "timed out after {:?} in phase {:?}{}",
                    self.cfg.timeout,
                    self.phase,
                    self.stuck_summary()
                ));
                break;
            }
            if self.stall_armed() && now.duration_since(self.last_progress) >= self.cfg.stall {
                self.report.stalled = true;
                self.stop(format!(
                    "nothing arrived for {:?} in phase {:?}",
                    self.cfg.stall, self.phase
                ));
                break;
            }
            let timeout = self.poll_timeout(now);
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // While admitting, members on their way in go first: their next step (a name, a
            // JOIN, the next connect) then overlaps with the server's work instead of waiting
            // behind thousands of JOIN notices to members already in. Join-storm's figure would
            // otherwise measure the generator.
            let admitting = self.phase == Phase::Admitting;
            let mut later = std::mem::take(&mut self.later);
            for event in events.iter() {
                let i = event.token().0;
                let Some(m) = self.members.get(i) else {
                    continue;
                };
                let ev = (
                    i,
                    event.is_read_closed() || event.is_error(),
                    event.is_writable(),
                );
                if admitting && matches!(m.state, State::Member | State::Closed) {
                    later.push(ev);
                } else {
                    self.on_event(ev);
                }
            }
            for &ev in &later {
                self.on_event(ev);
            }
            later.clear();
            self.later = later;
            self.advance();
        }
        Ok(())
    }

    /// Handles one readiness event: member `i`, whether its peer closed (or it failed), whether
    /// it is writable.
    fn on_event(&mut self, (i, to_end, writable): (usize, bool, bool)) {
        if self.members[i].state == State::Connecting && !self.finish_connect(i) {
            return;
        }
        if self.pacing() && self.members[i].state == State::Member {
            // A slow reader: its pacing round reads it (`pace.rs`).
            self.members[i].backlog = true;
            if writable {
                self.flush(i);
            }
            return;
        }
        // Always try to read: a connect that just finished may have data waiting that this
        // (edge-triggered) event reported together with writability.
        self.read(i, to_end);
        if writable {
            self.flush(i);
        }
        // A sender held back by its output goes on once the socket took all of it.
        if let Some(sender) = self.senders.get_mut(i) {
            let m = &self.members[i];
            if sender.out_full && m.out_pos == m.out.len() && !sender.queued {
                sender.queued = true;
                self.ready.push(i);
            }
        }
    }

    /// Where the members that are neither admitted nor gone are, e.g. `; not admitted: 3
    /// AwaitWelcome`, for the message of a timeout.
    fn stuck_summary(&self) -> String {
        let mut counts: Vec<(State, usize)> = Vec::new();
        for m in &self.members {
            if matches!(m.state, State::Member | State::Closed | State::Idle) {
                continue;
            }
            match counts.iter_mut().find(|(s, _)| *s == m.state) {
                Some((_, c)) => *c += 1,
                None => counts.push((m.state, 1)),
            }
        }
        if counts.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = counts.iter().map(|(s, c)| format!("{c} {s:?}")).collect();
        format!("; not admitted: {}", parts.join(", "))
    }

    /// How long poll may wait: until the next due send, the hold's end, the stall check or the
    /// deadline, whichever comes first.
    fn poll_timeout(&self, now: Instant) -> Duration {
        let mut until = self.deadline;
        if self.stall_armed() {
            until = until.min(self.last_progress + self.cfg.stall);
        }
        if let Some(h) = self.hold_until {
            until = until.min(h);
        }
        if let Some(p) = self.next_pace() {
            until = until.min(p);
        }
        if self.phase == Phase::Sending && self.cfg.interval_ns.is_some() {
            if let Some(due) = self
                .clock
                .checked_add(Duration::from_nanos(self.next_due_ns))
            {
                until = until.min(due);
            }
        }
        whole_ms_down(until.saturating_duration_since(now))
    }

    fn stop(&mut self, why: String) {
        if self.report.error.is_none() {
            self.report.error = Some(why);
        }
        self.phase = Phase::Done;
    }

    /// Moves between phases and lets senders send; called after every poll round.
    fn advance(&mut self) {
        if self.phase == Phase::Admitting {
            self.pace_round(Instant::now());
            self.start_connects();
            if self.admitted + self.failed < self.cfg.members {
                return;
            }
            self.t_admitted = Some(Instant::now());
            if self.failed > 0 {
                let why = format!(
                    "{} of {} members could not join",
                    self.failed, self.cfg.members
                );
                self.stop(why);
                return;
            }
            self.phase = Phase::Settling;
            self.end_pacing();
            self.last_progress = Instant::now();
        }
        if self.phase == Phase::Settling {
            if self.joins_total < self.joins_expected {
                return;
            }
            self.report.settle_s = self.t_admitted.map(|t| t.elapsed().as_secs_f64());
            match self.cfg.scenario {
                // (The resume storm runs in `resume.rs`, not here; held like idle if asked.)
                Scenario::JoinStorm | Scenario::Idle | Scenario::ResumeStorm => {
                    self.hold_until = Some(Instant::now() + self.cfg.hold);
                    self.phase = Phase::Holding;
                }
                Scenario::Messages => self.start_sending(),
            }
        }
        if self.phase == Phase::Holding {
            if self.hold_until.is_some_and(|h| Instant::now() >= h) {
                self.phase = Phase::Done;
            }
            return;
        }
        if self.phase == Phase::Sending {
            let now_ns = self.now_ns();
            // Pumps push nothing onto `ready` (only reads do), so nothing is lost here.
            let mut ready = std::mem::take(&mut self.ready);
            for &k in &ready {
                if let Some(due) = self.pump(k, now_ns) {
                    self.next_due_ns = self.next_due_ns.min(due);
                }
            }
            ready.clear();
            self.ready = ready;
            if self.cfg.interval_ns.is_some() && now_ns >= self.next_due_ns {
                self.pump_all(now_ns);
            }
            if self.delivered >= self.expected {
                self.phase = Phase::Done;
            }
        }
    }
}

/// `d` rounded down to whole milliseconds, for `poll`. mio rounds a timeout up to whole
/// milliseconds (epoll counts in ms), so asking for 2.7 ms would wake at 3 ms, 0.3 ms after a
/// send was due, every time. Rounded down, poll wakes at 2 ms and the loop polls with a zero
/// timeout (a short spin) through the last fraction of a millisecond.
fn whole_ms_down(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_timeouts_round_down_to_whole_milliseconds() {
        let ms = Duration::from_millis;
        assert_eq!(whole_ms_down(Duration::from_micros(2_700)), ms(2));
        assert_eq!(whole_ms_down(Duration::from_micros(999)), Duration::ZERO);
        assert_eq!(whole_ms_down(ms(5)), ms(5));
        assert_eq!(whole_ms_down(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            whole_ms_down(Duration::MAX).as_millis(),
            u128::from(u64::MAX)
        );
    }
}

//! The reactor: one thread, one mio poll, every member's socket; it admits the members, drives
//! the senders, checks every delivery and fills the [`Report`].
//!
//! A run goes through phases: `Admitting` (at most `--parallel` connections being opened or
//! admitted at once; one at a time for join-storm), `Settling` (until every JOIN notice of the
//! admissions has arrived, so messages do not race the join flood), then `Sending` (messages),
//! `Holding` (idle) or straight to the end (join-storm). The overall deadline and the stall
//! bound end any phase. Reads go through one shared 64 KiB buffer; per member only an
//! incomplete line (bounded by [`Lines`]) and unsent bytes are kept, so 10,000 members cost a
//! few MiB. The loop never blocks except in `poll`, and never sleeps; paced, it polls with a zero
//! timeout through the last fraction of a millisecond before a send is due (see `whole_ms_down`).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use chat_common::protocol::ServerMsg;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::config::{Config, Proto, Scenario};
use crate::irc::{self, IrcLine, NumericKind};
use crate::lines::{Line, Lines};
use crate::order::{OrderTracker, Outcome};
use crate::procfs::{self, Sample};
use crate::report::Report;
use crate::stats::Histogram;
use crate::text::{self, Stamp};

/// Size of the one read buffer all members share.
const READ_CHUNK: usize = 64 * 1024;
/// Longest line accepted from a server; longer ones are counted as foreign and skipped.
const MAX_LINE: usize = 16 * 1024;
/// An idle member's unsent-bytes buffer is given back above this capacity.
const OUT_KEEP: usize = 16 * 1024;
/// Events handled per poll.
const EVENTS: usize = 1024;
/// A sender stops appending messages while this many bytes wait in its member's `out` (only
/// reachable with no window, `-w 0`), and resumes once the socket took them.
const OUT_CAP: usize = 1 << 20;

/// Where a member's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not opened yet.
    Idle,
    /// `connect` in progress.
    Connecting,
    /// Chat: waiting for `NAME?`.
    AwaitPrompt,
    /// Chat: name sent, waiting for `WELCOME`.
    AwaitWelcome,
    /// IRC: `NICK`/`USER` sent, waiting for 001.
    AwaitRegistered,
    /// IRC: `JOIN` sent, waiting for its echo.
    AwaitJoinEcho,
    /// Admitted.
    Member,
    /// Gone (by the server, an error or a failed connect).
    Closed,
}

#[derive(Debug)]
struct Member {
    name: String,
    stream: Option<TcpStream>,
    state: State,
    /// The incomplete line of this connection (bounded by [`MAX_LINE`]).
    lines: Lines,
    /// Bytes not yet written, from `out_pos`. Emptied whenever fully written; the socket is
    /// registered for WRITABLE from the start (edge-triggered), so a write that would block is
    /// resumed by the next writable event. Senders stop appending at [`OUT_CAP`] unwritten
    /// bytes; the other lines (name, registration, PONG) are a few bytes each.
    out: Vec<u8>,
    out_pos: usize,
}

#[derive(Debug)]
struct Sender {
    member: usize,
    /// Next sequence number to send (= messages sent).
    next_seq: u64,
    /// Every message below this has reached all receivers.
    acked: u64,
    /// Receivers reached so far by each message of `acked..next_seq`: message `acked + k` is at
    /// `(head + k) % window` (kept without a division: this runs per delivery).
    ring: Vec<u32>,
    head: usize,
    /// Rate mode: when the next message is due, ns since start. Its text carries this time,
    /// not the time it went out, so a message sent late shows its lateness as latency
    /// (coordinated omission, as wrk2 corrects it).
    due_ns: u64,
    /// On the engine's `ready` list.
    queued: bool,
    /// Stopped with a message due because its output did not drain (the socket would block,
    /// or [`OUT_CAP`] bytes wait); queued again once the socket took it all (see
    /// `Engine::on_event`).
    out_full: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Admitting,
    Settling,
    Sending,
    Holding,
    Done,
}

/// Runs the scenario `cfg` describes and reports what happened. `Err` only when the run could
/// not start at all (no poll instance).
pub fn run(cfg: &Config) -> io::Result<Report> {
    let mut engine = Engine::new(cfg)?;
    engine.run()?;
    Ok(engine.finish())
}

struct Engine<'c> {
    cfg: &'c Config,
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

    t_first_connect: Option<Instant>,
    t_admitted: Option<Instant>,
    /// The latest admission so far: the end of the admission time when not all got in.
    t_last_admit: Option<Instant>,
    t_first_send: Option<Instant>,
    /// When the last new delivery was read, ns since start (0: none yet).
    t_last_delivery_ns: u64,
    server_start: Option<Sample>,
    server_send_start: Option<Sample>,
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
                lines: Lines::default(),
                out: Vec::new(),
                out_pos: 0,
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
        Ok(Engine {
            cfg,
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
            t_first_connect: None,
            t_admitted: None,
            t_last_admit: None,
            t_first_send: None,
            t_last_delivery_ns: 0,
            server_start: None,
            server_send_start: None,
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

    /// Opens connections until `--parallel` are in progress or all N are started.
    fn start_connects(&mut self) {
        while self.started < self.cfg.members
            && self.started - self.admitted - self.failed < self.cfg.parallel
        {
            let i = self.started;
            self.started += 1;
            self.t_first_connect.get_or_insert_with(Instant::now);
            let addr = self.cfg.addr_for(i);
            let mut stream = match TcpStream::connect(addr) {
                Ok(s) => s,
                Err(e) => {
                    self.fail(i, format!("connect {addr}: {e}"));
                    continue;
                }
            };
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                self.fail(i, format!("register: {e}"));
                continue;
            }
            let m = &mut self.members[i];
            m.stream = Some(stream);
            m.state = State::Connecting;
        }
    }

    /// A connection failed before its member was admitted.
    fn fail(&mut self, i: usize, why: String) {
        let m = &mut self.members[i];
        m.stream = None;
        m.state = State::Closed;
        self.failed += 1;
        if self.report.error.is_none() {
            self.report.error = Some(format!("{}: {why}", m.name));
        }
    }

    /// Member `i`'s connection is gone.
    fn close(&mut self, i: usize, why: &str) {
        match self.members[i].state {
            State::Closed | State::Idle => {}
            State::Member => {
                let m = &mut self.members[i];
                m.stream = None;
                m.state = State::Closed;
                self.report.closed += 1;
                if self.report.error.is_none() {
                    self.report.error = Some(format!("{} was cut off: {why}", m.name));
                }
            }
            _ => self.fail(i, why.to_owned()),
        }
    }

    /// Checks a connect in progress; true when it is done and the member may read and write.
    fn finish_connect(&mut self, i: usize) -> bool {
        let Some(stream) = self.members[i].stream.as_ref() else {
            return false;
        };
        match stream.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => {
                self.fail(i, format!("connect {}: {e}", self.cfg.addr));
                return false;
            }
        }
        match stream.peer_addr() {
            Ok(_) => {}
            // Not connected yet: a spurious event (mio documents these).
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return false,
            Err(e) => {
                self.fail(i, format!("connect {}: {e}", self.cfg.addr));
                return false;
            }
        }
        // Small lines, latency measured: do not let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        match self.cfg.proto {
            Proto::Chat => self.members[i].state = State::AwaitPrompt,
            Proto::Irc => {
                let m = &mut self.members[i];
                irc::register(&m.name, &mut m.out);
                m.state = State::AwaitRegistered;
                self.flush(i);
            }
        }
        true
    }

    /// Reads what the socket holds and handles every complete line. With `to_end` (the peer
    /// closed or the socket failed) reads until end of file or an error.
    fn read(&mut self, i: usize, to_end: bool) {
        let mut buf = std::mem::take(&mut self.buf);
        let mut lines = std::mem::take(&mut self.members[i].lines);
        while let Some(stream) = self.members[i].stream.as_mut() {
            let n = match stream.read(&mut buf) {
                Ok(0) => {
                    self.close(i, "the server closed the connection");
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.close(i, &format!("read: {e}"));
                    break;
                }
            };
            // One clock read per read call serves every line in it: the clock costs as much as
            // handling a line.
            let now = Instant::now();
            self.last_progress = now;
            let now_ns = now.duration_since(self.clock).as_nanos() as u64;
            lines.feed(&buf[..n], MAX_LINE, |line| match line {
                Line::Full(line) => self.on_line(i, line, now_ns),
                Line::TooLong => self.report.foreign += 1,
            });
            if n < buf.len() && !to_end {
                // A short read of a TCP socket took everything it held; bytes that arrive later
                // raise a new edge. Saves the read that would only say WouldBlock, one syscall
                // per wakeup. A FIN that came with the data has its own flag (`to_end`).
                break;
            }
        }
        self.members[i].lines = lines;
        self.buf = buf;
        self.flush(i);
    }

    fn on_line(&mut self, i: usize, line: &[u8], now_ns: u64) {
        if self.cfg.proto == Proto::Chat {
            if let Some(text) = text::chat_msg_text(line) {
                // The hot path: one line in a million is anything else.
                self.on_delivery(i, text, now_ns);
                return;
            }
        }
        // Everything else is parsed as text, so it must be UTF-8 (the framer did not check).
        let Ok(line) = std::str::from_utf8(line) else {
            self.report.foreign += 1;
            return;
        };
        match self.cfg.proto {
            Proto::Chat => self.on_chat_line(i, line, now_ns),
            Proto::Irc => self.on_irc_line(i, line, now_ns),
        }
    }

    fn on_chat_line(&mut self, i: usize, line: &str, now_ns: u64) {
        let Ok(msg) = ServerMsg::parse(line) else {
            self.report.foreign += 1;
            return;
        };
        match msg {
            ServerMsg::Msg { text, .. } => self.on_delivery(i, text.as_bytes(), now_ns),
            ServerMsg::NameQuery { .. } => {
                let m = &mut self.members[i];
                if m.state == State::AwaitPrompt {
                    m.out.extend_from_slice(m.name.as_bytes());
                    m.out.push(b'\n');
                    m.state = State::AwaitWelcome;
                } else {
                    // Our name was refused (taken, or bad): this member cannot get in.
                    self.report.server_errors += 1;
                    self.close(i, "the server asked for a name again");
                }
            }
            ServerMsg::Welcome { .. } => self.on_admitted(i),
            ServerMsg::Join { name } => self.on_join(i, name),
            ServerMsg::Wait { .. } => {
                // Not an auto-approving server: nobody will admit us. Say so rather than
                // waiting for the timeout in silence.
                self.close(i, "the server made us WAIT: run it with --auto-approve");
            }
            ServerMsg::Denied { .. } | ServerMsg::Bye { .. } => self.report.refused += 1,
            ServerMsg::Error { .. } => self.report.server_errors += 1,
            ServerMsg::Leave { .. }
            | ServerMsg::Info { .. }
            | ServerMsg::Priv { .. }
            | ServerMsg::Act { .. }
            | ServerMsg::Nick { .. }
            | ServerMsg::Hist { .. } => {}
        }
    }

    fn on_irc_line(&mut self, i: usize, line: &str, now_ns: u64) {
        let Some(l) = IrcLine::parse(line) else {
            self.report.foreign += 1;
            return;
        };
        match l.command {
            "PRIVMSG" => match l.param(1) {
                Some(text) => self.on_delivery(i, text.as_bytes(), now_ns),
                None => self.report.foreign += 1,
            },
            "PING" => {
                let m = &mut self.members[i];
                irc::pong(l.param(0).unwrap_or(""), &mut m.out);
            }
            "001" => {
                let m = &mut self.members[i];
                if m.state == State::AwaitRegistered {
                    irc::join(&self.cfg.channel, &mut m.out);
                    m.state = State::AwaitJoinEcho;
                }
            }
            "JOIN" => {
                let nick = l.nick().unwrap_or("");
                if nick.eq_ignore_ascii_case(&self.members[i].name) {
                    if self.members[i].state == State::AwaitJoinEcho {
                        self.on_admitted(i);
                    }
                } else {
                    self.on_join(i, nick);
                }
            }
            "ERROR" => self.report.refused += 1,
            c => match irc::classify_numeric(c) {
                NumericKind::Refusal => {
                    self.report.server_errors += 1;
                    if matches!(
                        self.members[i].state,
                        State::AwaitRegistered | State::AwaitJoinEcho
                    ) {
                        self.close(i, &format!("registration refused: {line}"));
                    }
                }
                NumericKind::SendRefused => self.report.server_errors += 1,
                // 422 (no MOTD) after 001, and every other command or numeric.
                NumericKind::Harmless => {}
            },
        }
    }

    fn on_admitted(&mut self, i: usize) {
        let m = &mut self.members[i];
        if m.state == State::Member || m.state == State::Closed {
            return;
        }
        m.state = State::Member;
        m.out.shrink_to(OUT_KEEP);
        self.admitted += 1;
        self.t_last_admit = Some(Instant::now());
        self.start_connects();
    }

    /// Member `i` received the JOIN notice of `name`. Join-storm checks each against the
    /// members admitted after `i`, in order: one skipped counts as missing (unless it comes
    /// later: then out of order), one seen twice or of an earlier member as duplicated, one of
    /// no member of the run as foreign. Only new ones count towards `joins_total`, so a
    /// duplicate cannot stand in for a missing one.
    fn on_join(&mut self, i: usize, name: &str) {
        let Some(tracker) = self.join_trackers.get_mut(i) else {
            self.joins_total += 1;
            return;
        };
        let index = name
            .strip_prefix(self.cfg.prefix.as_str())
            .filter(|n| !n.starts_with('0') || n.len() == 1)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&j| j < self.cfg.members);
        let Some(index) = index else {
            self.report.foreign += 1;
            return;
        };
        if index <= i {
            // Admitted before (or as) `i`: no notice of it is owed to `i`.
            self.joins_duplicated += 1;
            return;
        }
        match tracker.record(0, (index - i - 1) as u64) {
            Outcome::InOrder | Outcome::Reordered => self.joins_total += 1,
            Outcome::Duplicate => self.joins_duplicated += 1,
            Outcome::Invalid => self.report.foreign += 1,
        }
    }

    fn on_delivery(&mut self, i: usize, text: &[u8], now_ns: u64) {
        let (Some(stamp), Some(tracker)) = (text::decode(text), self.trackers.get_mut(i)) else {
            self.report.foreign += 1;
            return;
        };
        let s = stamp.sender as usize;
        match tracker.record(s, stamp.seq) {
            Outcome::InOrder | Outcome::Reordered => {}
            Outcome::Duplicate => return,
            Outcome::Invalid => {
                self.report.foreign += 1;
                return;
            }
        }
        self.hist.record(now_ns.saturating_sub(stamp.sent_ns));
        self.delivered += 1;
        self.t_last_delivery_ns = now_ns;
        let (Some(window), Some(sender)) = (self.cfg.window, self.senders.get_mut(s)) else {
            return;
        };
        if stamp.seq < sender.acked || stamp.seq >= sender.next_seq {
            return;
        }
        let receivers = (self.cfg.members - 1) as u32;
        let w = window as usize;
        // stamp.seq - acked < window (at most a window is in flight), so one wrap at most.
        let mut slot = sender.head + (stamp.seq - sender.acked) as usize;
        if slot >= w {
            slot -= w;
        }
        sender.ring[slot] += 1;
        let mut moved = false;
        while sender.acked < sender.next_seq && sender.ring[sender.head] >= receivers {
            sender.ring[sender.head] = 0;
            sender.head += 1;
            if sender.head == w {
                sender.head = 0;
            }
            sender.acked += 1;
            moved = true;
        }
        if moved && !sender.queued {
            sender.queued = true;
            self.ready.push(s);
        }
    }

    /// Writes what member `i` has pending, until done or the socket would block.
    fn flush(&mut self, i: usize) {
        let m = &mut self.members[i];
        let Some(stream) = m.stream.as_mut() else {
            return;
        };
        while m.out_pos < m.out.len() {
            match stream.write(&m.out[m.out_pos..]) {
                Ok(0) => {
                    self.close(i, "write returned 0");
                    return;
                }
                Ok(n) => m.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close(i, &format!("write: {e}"));
                    return;
                }
            }
        }
        m.out.clear();
        m.out_pos = 0;
        if m.out.capacity() > OUT_KEEP {
            m.out.shrink_to(OUT_KEEP);
        }
    }

    /// Appends as many messages of sender `k` as its window, its schedule and [`OUT_CAP`]
    /// allow, and writes them. Returns when its next message is due (rate mode), or `None`
    /// when it cannot send until something else happens: its window closed (an ack queues
    /// it again), its output not drained (the drained socket does), its member gone, or all
    /// sent.
    fn pump(&mut self, k: usize, now_ns: u64) -> Option<u64> {
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
                if cfg.proto == Proto::Irc {
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
                match cfg.proto {
                    Proto::Chat => m.out.push(b'\n'),
                    Proto::Irc => irc::end(&mut m.out),
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

    /// Moves between phases and lets senders send; called after every poll round.
    fn advance(&mut self) {
        if self.phase == Phase::Admitting {
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
            self.last_progress = Instant::now();
        }
        if self.phase == Phase::Settling {
            if self.joins_total < self.joins_expected {
                return;
            }
            self.report.settle_s = self.t_admitted.map(|t| t.elapsed().as_secs_f64());
            match self.cfg.scenario {
                Scenario::JoinStorm => self.phase = Phase::Done,
                Scenario::Idle => {
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

    /// Pumps every sender (those not yet due only report when they are) and sets
    /// `next_due_ns` to the earliest due time of those that can send; those that cannot stay
    /// out of the minimum, so a closed window or a closed member does not keep the poll
    /// timeout at zero.
    fn pump_all(&mut self, now_ns: u64) {
        let mut next = u64::MAX;
        for k in 0..self.senders.len() {
            if let Some(due) = self.pump(k, now_ns) {
                next = next.min(due);
            }
        }
        self.next_due_ns = next;
    }

    fn start_sending(&mut self) {
        self.phase = Phase::Sending;
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

    /// Computes the figures.
    fn finish(mut self) -> Report {
        let cfg = self.cfg;
        let server_end = cfg.server_pid.and_then(|p| procfs::sample(Some(p)));
        let gen_end = procfs::sample(None);
        let mut r = std::mem::take(&mut self.report);
        r.wall_s = self.clock.elapsed().as_secs_f64();
        r.admitted = self.admitted;
        r.failed = self.failed;
        if let (Some(a), Some(b)) = (self.t_first_connect, self.t_admitted.or(self.t_last_admit)) {
            r.admit_s = b.duration_since(a).as_secs_f64();
        }
        r.joins_expected = self.joins_expected;
        r.joins_received = self.joins_total;
        if cfg.scenario == Scenario::JoinStorm {
            let n = self.members.len();
            let mut missing = 0;
            let mut disorder = 0;
            for (j, t) in self.join_trackers.iter().enumerate() {
                missing += t.missing_from(0, (n - 1 - j) as u64);
                disorder += t.out_of_order;
            }
            r.joins_missing = Some(missing);
            r.joins_out_of_order = Some(disorder);
            r.joins_duplicated = Some(self.joins_duplicated);
        }
        if cfg.scenario == Scenario::Messages {
            r.sent = self.sent;
            r.expected = self.expected;
            r.delivered = self.delivered;
            let mut lost = 0;
            for (i, t) in self.trackers.iter().enumerate() {
                r.duplicated += t.duplicated;
                r.out_of_order += t.out_of_order;
                for (s, sender) in self.senders.iter().enumerate() {
                    if s != i {
                        lost += t.missing_from(s, sender.next_seq);
                    }
                }
            }
            r.lost = lost;
            // What a sender never got to send (window stuck behind a lost message, timeout) is
            // reported apart from what the server lost.
            r.unsent = cfg.senders as u64 * cfg.messages - self.sent;
            if let (Some(a), true) = (self.t_first_send, self.t_last_delivery_ns > 0) {
                let first_ns = a.duration_since(self.clock).as_nanos() as u64;
                let secs = self.t_last_delivery_ns.saturating_sub(first_ns) as f64 / 1e9;
                r.send_s = Some(secs);
                if secs > 0.0 {
                    r.deliveries_per_s = Some(self.delivered as f64 / secs);
                }
            }
            if self.hist.count() > 0 {
                let us = |ns: u64| ns as f64 / 1000.0;
                r.lat_p50_us = Some(us(self.hist.quantile(0.5)));
                r.lat_p99_us = Some(us(self.hist.quantile(0.99)));
                r.lat_p999_us = Some(us(self.hist.quantile(0.999)));
                r.lat_max_us = Some(us(self.hist.max()));
                r.lat_mean_us = Some(us(self.hist.mean()));
            }
            let per_delivery =
                |cpu: f64| (self.delivered > 0).then(|| cpu * 1e9 / self.delivered as f64);
            if let (Some(a), Some(b)) = (self.server_send_start, server_end) {
                let cpu = b.cpu_since(&a);
                r.server_cpu_send_s = Some(cpu);
                r.server_ns_per_delivery = per_delivery(cpu);
            }
            if let (Some(a), Some(b)) = (self.gen_send_start, gen_end) {
                let cpu = b.cpu_since(&a);
                r.gen_cpu_send_s = Some(cpu);
                r.gen_ns_per_delivery = per_delivery(cpu);
                r.gen_busy = r.send_s.filter(|&s| s > 0.0).map(|s| cpu / s);
            }
        }
        if let (Some(a), Some(b)) = (self.server_start, server_end) {
            r.server_cpu_s = Some(b.cpu_since(&a));
            r.server_rss_before_kib = Some(a.rss_kib);
            r.server_rss_after_kib = Some(b.rss_kib);
            r.server_hwm_kib = Some(b.hwm_kib);
            if cfg.scenario == Scenario::Idle {
                r.rss_per_member_b = rss_per_member(a.rss_kib, b.rss_kib, self.admitted);
            }
        }
        if let (Some(a), Some(b)) = (self.gen_start, gen_end) {
            r.gen_cpu_s = Some(b.cpu_since(&a));
        }
        r.gen_hwm_kib = gen_end.map(|b| b.hwm_kib);
        if let (Some(a), Some(b), Some(server), Some(gen)) = (
            self.machine_start,
            procfs::machine_busy_s(),
            r.server_cpu_s,
            r.gen_cpu_s,
        ) {
            r.others_cpu_s = Some((b - a - server - gen).max(0.0));
        }
        r.ok = !r.timed_out
            && !r.stalled
            && r.error.is_none()
            && r.failed == 0
            && r.closed == 0
            && r.refused == 0
            && r.server_errors == 0
            && r.foreign == 0
            && r.lost == 0
            && r.unsent == 0
            && r.duplicated == 0
            && r.out_of_order == 0
            && r.delivered == r.expected
            // Over several servers of a cluster, two members admitted at the same moment on
            // different servers may each get the other's JOIN (each was not yet in the other's
            // view): at least one notice per pair, never one per member twice.
            && (r.joins_received == r.joins_expected
                || (self.cfg.addrs.len() > 1 && r.joins_received >= r.joins_expected))
            && r.joins_missing.unwrap_or(0) == 0
            && r.joins_out_of_order.unwrap_or(0) == 0
            && r.joins_duplicated.unwrap_or(0) == 0;
        r
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

/// `d` rounded down to whole milliseconds, for `poll`. mio rounds a timeout up to whole
/// milliseconds (epoll counts in ms), so asking for 2.7 ms would wake at 3 ms, 0.3 ms after a
/// send was due, every time. Rounded down, poll wakes at 2 ms and the loop polls with a zero
/// timeout (a short spin) through the last fraction of a millisecond.
fn whole_ms_down(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Server memory per admitted member, bytes: the growth of its resident set over the run
/// divided by the members that got in (`None` when none did).
fn rss_per_member(before_kib: u64, after_kib: u64, admitted: usize) -> Option<f64> {
    let grown = after_kib as f64 - before_kib as f64;
    (admitted > 0).then(|| grown * 1024.0 / admitted as f64)
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

    #[test]
    fn rss_is_divided_by_the_members_admitted() {
        assert_eq!(rss_per_member(1000, 1100, 50), Some(2048.0));
        assert_eq!(rss_per_member(1000, 1100, 0), None);
        assert_eq!(rss_per_member(1100, 1000, 100), Some(-1024.0));
    }
}

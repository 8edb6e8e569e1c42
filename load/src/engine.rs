//! The reactor: one thread, one mio poll, every member's socket; it admits the members, drives
//! the senders, checks every delivery and fills the [`Report`].
//!
//! A run goes through phases: `Admitting` (at most `--parallel` connections being opened or
//! admitted at once; one at a time for join-storm), `Settling` (until every JOIN notice of the
//! admissions has arrived, so messages do not race the join flood), then `Sending` (messages),
//! `Holding` (idle) or straight to the end (join-storm). The overall deadline and the stall
//! bound end any phase. Reads go through one shared 64 KiB buffer; per member only an
//! incomplete line (bounded by [`Lines`]) and unsent bytes are kept, so 10,000 members cost a
//! few MiB. The loop never blocks except in `poll`, and never sleeps.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use chat_common::protocol::ServerMsg;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::config::{Config, Proto, Scenario};
use crate::irc::{self, IrcLine};
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
    /// resumed by the next writable event.
    out: Vec<u8>,
    out_pos: usize,
    /// JOIN notices of other members received.
    joins_seen: u64,
    /// Join-storm: the index of the next member whose JOIN should arrive.
    next_join: usize,
    /// Join-storm: JOIN notices that were not the next expected one.
    join_disorder: u64,
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
    /// Rate mode: when the next message is due, ns since start.
    due_ns: u64,
    /// On the engine's `ready` list.
    queued: bool,
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
    joins_total: u64,
    joins_expected: u64,
    delivered: u64,
    expected: u64,
    sent: u64,
    next_due_ns: u64,
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
                joins_seen: 0,
                next_join: i + 1,
                join_disorder: 0,
            })
            .collect();
        let trackers = if cfg.scenario == Scenario::Messages {
            (0..n)
                .map(|_| OrderTracker::new(cfg.senders, cfg.messages))
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
            if matches!(self.phase, Phase::Settling | Phase::Sending)
                && now.duration_since(self.last_progress) >= self.cfg.stall
            {
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
        if matches!(self.phase, Phase::Settling | Phase::Sending) {
            until = until.min(self.last_progress + self.cfg.stall);
        }
        if let Some(h) = self.hold_until {
            until = until.min(h);
        }
        if self.phase == Phase::Sending && self.cfg.interval_ns.is_some() {
            let due = self.clock + Duration::from_nanos(self.next_due_ns);
            until = until.min(due);
        }
        until.saturating_duration_since(now)
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
            let stream = match TcpStream::connect(self.cfg.addr) {
                Ok(s) => s,
                Err(e) => {
                    self.fail(i, format!("connect {}: {e}", self.cfg.addr));
                    continue;
                }
            };
            let mut stream = stream;
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
            ServerMsg::Leave { .. } | ServerMsg::Info { .. } | ServerMsg::Priv { .. } => {}
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
            // Numerics 400-599 are errors (nick in use, cannot join, ...).
            c if c.len() == 3 && (c.starts_with('4') || c.starts_with('5')) => {
                self.report.server_errors += 1;
                if matches!(
                    self.members[i].state,
                    State::AwaitRegistered | State::AwaitJoinEcho
                ) {
                    self.close(i, &format!("registration refused: {line}"));
                }
            }
            _ => {}
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

    fn on_join(&mut self, i: usize, name: &str) {
        self.joins_total += 1;
        let m = &mut self.members[i];
        m.joins_seen += 1;
        let index = name
            .strip_prefix(self.cfg.prefix.as_str())
            .and_then(|n| n.parse::<usize>().ok());
        if index == Some(m.next_join) {
            m.next_join += 1;
        } else {
            m.join_disorder += 1;
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

    /// Appends as many messages of sender `k` as its window and schedule allow, then writes.
    fn pump(&mut self, k: usize, now_ns: u64) {
        let cfg = self.cfg;
        let sender = &mut self.senders[k];
        sender.queued = false;
        let m = &mut self.members[sender.member];
        if m.state != State::Member {
            return;
        }
        let mut wrote = false;
        while sender.next_seq < cfg.messages
            && window_open(cfg.window, sender.next_seq - sender.acked)
            && (cfg.interval_ns.is_none() || sender.due_ns <= now_ns)
        {
            if cfg.proto == Proto::Irc {
                irc::privmsg_start(&cfg.channel, &mut m.out);
            }
            text::encode(
                Stamp {
                    sender: k as u32,
                    seq: sender.next_seq,
                    sent_ns: now_ns,
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
            wrote = true;
            if let Some(iv) = cfg.interval_ns {
                sender.due_ns += iv;
            }
        }
        if wrote {
            let member = sender.member;
            self.flush(member);
        }
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
            let ready = std::mem::take(&mut self.ready);
            for &k in &ready {
                self.pump(k, now_ns);
            }
            self.ready = ready;
            self.ready.clear();
            if self.cfg.interval_ns.is_some() && now_ns >= self.next_due_ns {
                let mut next = u64::MAX;
                for k in 0..self.senders.len() {
                    if self.senders[k].due_ns <= now_ns {
                        self.pump(k, now_ns);
                    }
                    if self.senders[k].next_seq < self.cfg.messages {
                        next = next.min(self.senders[k].due_ns);
                    }
                }
                self.next_due_ns = next;
            }
            if self.delivered >= self.expected {
                self.phase = Phase::Done;
            }
        }
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
                due_ns: now_ns + self.cfg.interval_ns.map_or(0, |iv| iv * k as u64 / s),
                queued: false,
            })
            .collect();
        self.next_due_ns = now_ns;
        for k in 0..self.senders.len() {
            self.pump(k, now_ns);
        }
        self.next_due_ns = self
            .senders
            .iter()
            .map(|s| s.due_ns)
            .min()
            .unwrap_or(u64::MAX);
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
            for (j, m) in self.members.iter().enumerate() {
                missing += (n - 1 - j) as u64 - m.joins_seen.min((n - 1 - j) as u64);
                disorder += m.join_disorder;
            }
            r.joins_missing = Some(missing);
            r.joins_out_of_order = Some(disorder);
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
                r.server_cpu_send_s = Some(b.cpu_s - a.cpu_s);
                r.server_ns_per_delivery = per_delivery(b.cpu_s - a.cpu_s);
            }
            if let (Some(a), Some(b)) = (self.gen_send_start, gen_end) {
                r.gen_cpu_send_s = Some(b.cpu_s - a.cpu_s);
                r.gen_ns_per_delivery = per_delivery(b.cpu_s - a.cpu_s);
                r.gen_busy = r
                    .send_s
                    .filter(|&s| s > 0.0)
                    .map(|s| (b.cpu_s - a.cpu_s) / s);
            }
        }
        if let (Some(a), Some(b)) = (self.server_start, server_end) {
            r.server_cpu_s = Some(b.cpu_s - a.cpu_s);
            r.server_rss_before_kib = Some(a.rss_kib);
            r.server_rss_after_kib = Some(b.rss_kib);
            r.server_hwm_kib = Some(b.hwm_kib);
            if cfg.scenario == Scenario::Idle {
                let grown = b.rss_kib as f64 - a.rss_kib as f64;
                r.rss_per_member_b = Some(grown * 1024.0 / cfg.members as f64);
            }
        }
        if let (Some(a), Some(b)) = (self.gen_start, gen_end) {
            r.gen_cpu_s = Some(b.cpu_s - a.cpu_s);
        }
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
            && r.lost == 0
            && r.unsent == 0
            && r.duplicated == 0
            && r.out_of_order == 0
            && r.delivered == r.expected
            && r.joins_received == r.joins_expected
            && r.joins_missing.unwrap_or(0) == 0
            && r.joins_out_of_order.unwrap_or(0) == 0;
        r
    }
}

/// Whether a sender with `in_flight` unacknowledged messages may send another.
fn window_open(window: Option<u64>, in_flight: u64) -> bool {
    window.is_none_or(|w| in_flight < w)
}

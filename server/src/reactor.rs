//! The event loop: one thread, one `mio::Poll`, every socket, the console and the signals.
//!
//! The reactor owns all state (the slab of connections, the room, the timers, the console) and
//! is the only code that changes a connection's [`State`]. Handlers never block and never remove
//! a connection while the loop is iterating: a connection to be cut is marked *doomed* and
//! reaped at the end of the round, so a fan-out can never see a slab key change under it.
//!
//! One round: wait for events (the timeout comes from the timer heap, or is zero while some
//! connection still has input to process), handle them, fire due timers, give paced or capped
//! connections their turn, then reap doomed connections and flush every connection whose output
//! queue grew, each in one vectored write.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use chat_common::framing::{Frame, LineFramer};
use chat_common::protocol::{
    parse_request, validate_name, ErrorCode, LeaveReason, Request, ServerMsg, HELP_LINES,
};
use chat_common::sanitize::{is_blank, sanitize};
use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::config::{
    Config, CLOSE_LINGER, CONSOLE_MAX_LINE, QUEUE_RELEASE_DELAY, READS_PER_WAKE, READ_CHUNK,
    SHUTDOWN_GRACE, WHO_LINE_BYTES,
};
use crate::conn::{Conn, State, GATHER_BYTES};
use crate::console::{self, Command};
use crate::console_io::{ConsoleInput, ConsoleOut, StdinSource};
use crate::room::Room;
use crate::timers::{TimerKind, Timers};

const LISTENER: Token = Token(0);
const CONSOLE: Token = Token(1);
const SIGNALS: Token = Token(2);
const CONSOLE_OUT: Token = Token(3);
/// Connection tokens are slab keys shifted past the fixed tokens.
const FIRST_CONN: usize = 4;

const NAME_PROMPT: &str = "choose a name: 1-32 of A-Z a-z 0-9 _ -";
const EVENTS_CAPACITY: usize = 1024;
/// Console bytes read per round, so a huge piped script cannot starve the sockets.
const CONSOLE_READ_PER_ROUND: usize = 64 * 1024;

fn token_of(key: usize) -> Token {
    Token(key + FIRST_CONN)
}

/// The whole server.
pub struct Reactor {
    poll: Poll,
    /// `None` once shutdown has begun (no new connections).
    listener: Option<TcpListener>,
    conns: Slab<Conn>,
    room: Room,
    timers: Timers,
    config: Config,
    /// Operator console input; `None` once it reached end of file or failed.
    stdin: Option<StdinSource>,
    console_framer: LineFramer,
    /// Operator console output.
    console_out: ConsoleOut,
    signals: signal_hook_mio::v1_0::Signals,
    /// Shared read buffer for every socket ([`READ_CHUNK`] bytes).
    scratch: Vec<u8>,
    /// Where several queued lines are gathered for one `write` (reused, never shrunk).
    gather: Vec<u8>,
    /// Reused buffer that messages are formatted into before being shared.
    fmt: Vec<u8>,
    /// Connections with input left to process (read cap reached or allowance refilled), with
    /// their serials.
    ready: VecDeque<(usize, u64)>,
    /// Connections whose output queue grew this round (each at most once: `Conn::dirty`).
    dirty: Vec<usize>,
    /// Connections to cut at the end of the round, with the reason members leave for.
    doomed: Vec<(usize, LeaveReason)>,
    per_ip: HashMap<IpAddr, usize>,
    next_serial: u64,
    /// A descriptor kept in reserve: closed to accept-and-refuse when descriptors run out.
    spare_fd: Option<std::fs::File>,
    /// When shutdown gives up waiting for BYE to be flushed.
    shutdown_deadline: Option<Instant>,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("connections", &self.conns.len())
            .field("online", &self.room.online())
            .field("waiting", &self.room.waiting())
            .finish_non_exhaustive()
    }
}

/// Prints one line on the operator's console (stdout) without blocking: `console_out!(self, self,
/// "fmt", args)`. Expands to field accesses so it can be used while connections are borrowed.
macro_rules! console_out {
    ($self:ident, $($arg:tt)*) => {
        $self.console_out.line($self.poll.registry(), format_args!($($arg)*))
    };
}

impl Reactor {
    /// Sets up the poll, registers the listener, the console and the signals.
    pub fn new(
        listener: std::net::TcpListener,
        config: Config,
        console: ConsoleInput,
    ) -> io::Result<Reactor> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut signals = signal_hook_mio::v1_0::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let stdin = match console {
            ConsoleInput::Stdin => StdinSource::open(poll.registry(), CONSOLE),
            ConsoleInput::None => None,
        };
        if stdin.is_none() {
            info!("no operator console: joins will be denied unless --auto-approve");
        }
        Ok(Reactor {
            poll,
            listener: Some(listener),
            conns: Slab::with_capacity(1024.min(config.max_clients)),
            room: Room::default(),
            timers: Timers::default(),
            config,
            stdin,
            console_framer: LineFramer::new(CONSOLE_MAX_LINE),
            console_out: ConsoleOut::open(CONSOLE_OUT),
            signals,
            scratch: vec![0; READ_CHUNK],
            gather: Vec::with_capacity(GATHER_BYTES),
            fmt: Vec::with_capacity(256),
            ready: VecDeque::new(),
            dirty: Vec::new(),
            doomed: Vec::new(),
            per_ip: HashMap::new(),
            next_serial: 0,
            spare_fd: std::fs::File::open("/dev/null").ok(),
            shutdown_deadline: None,
        })
    }

    /// Runs until `quit`, SIGINT or SIGTERM, then returns after saying BYE to everyone.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            let now = Instant::now();
            if let Some(deadline) = self.shutdown_deadline {
                if now >= deadline || self.all_flushed() {
                    self.console_out.flush(self.poll.registry());
                    info!("shutdown complete");
                    return Ok(());
                }
            }
            let timeout = self.poll_timeout(now);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    CONSOLE => self.read_console(),
                    SIGNALS => self.read_signals(),
                    CONSOLE_OUT => self.console_out.flush(self.poll.registry()),
                    Token(t) => {
                        let key = t - FIRST_CONN;
                        if event.is_writable() {
                            self.mark_dirty(key);
                        }
                        let closed = event.is_read_closed() || event.is_error();
                        if event.is_readable() || closed {
                            self.drive_input(key, closed);
                        }
                    }
                }
            }
            if self.stdin.as_ref().is_some_and(StdinSource::always_ready) {
                self.read_console();
            }
            self.fire_timers(Instant::now());
            self.drive_ready();
            self.settle();
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let console_busy = self.stdin.as_ref().is_some_and(StdinSource::always_ready);
        if !self.ready.is_empty() || console_busy {
            return Some(Duration::ZERO);
        }
        let timer = self.timers.next_timeout(now);
        let shutdown = self
            .shutdown_deadline
            .map(|d| d.saturating_duration_since(now));
        match (timer, shutdown) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- accepting -------------------------------------------------------------------------

    fn accept_all(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => self.open_conn(stream, addr),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    // Linux takes the descriptor before it looks at the backlog, so EMFILE
                    // comes even when nobody is waiting: stop unless a connection was refused.
                    if !self.refuse_with_spare_fd() {
                        return;
                    }
                }
                Err(e) => {
                    warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Out of descriptors: frees the spare, accepts one connection to tell it the server is
    /// full, closes it and takes the spare back. Without this the listener would stay readable
    /// and the pending connections would wait forever.
    ///
    /// Returns whether a connection was refused (so the caller may try to accept again).
    fn refuse_with_spare_fd(&mut self) -> bool {
        let Some(spare) = self.spare_fd.take() else {
            warn!("out of file descriptors and no spare descriptor: connections wait");
            return false;
        };
        drop(spare);
        let refused = match self.listener.as_ref().map(TcpListener::accept) {
            Some(Ok((stream, addr))) => {
                debug!("out of file descriptors: refusing {addr}");
                refuse(
                    stream,
                    "the server is out of file descriptors; try again later",
                );
                true
            }
            _ => false,
        };
        self.spare_fd = std::fs::File::open("/dev/null").ok();
        refused && self.spare_fd.is_some()
    }

    fn open_conn(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        if self.conns.len() >= self.config.max_clients {
            debug!("refusing {addr}: {} connections", self.conns.len());
            refuse(stream, "the server is full; try again later");
            return;
        }
        let ip = addr.ip();
        let from_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
        if self.config.max_per_ip > 0 && from_ip >= self.config.max_per_ip {
            debug!("refusing {addr}: {from_ip} connections from {ip}");
            refuse(stream, "too many connections from your address");
            return;
        }
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut stream, token_of(key), Interest::READABLE)
        {
            warn!("cannot register {addr}: {e}");
            return;
        }
        let _ = stream.set_nodelay(true);
        self.next_serial += 1;
        let serial = self.next_serial;
        entry.insert(Conn::new(stream, addr, serial, &self.config));
        *self.per_ip.entry(ip).or_insert(0) += 1;
        debug!("{addr} connected as #{serial}");
        self.send(
            key,
            &ServerMsg::NameQuery {
                prompt: NAME_PROMPT,
            },
        );
        self.timers.arm(
            Instant::now() + self.config.login_timeout,
            key,
            serial,
            TimerKind::Login,
        );
    }

    // ---- input -----------------------------------------------------------------------------

    /// Reads and handles a connection's input until the socket is drained, the read cap is
    /// reached (then it is queued for another turn) or its allowance runs out (then a refill
    /// timer is armed). Nothing is read from a paced connection: TCP slows the sender down.
    ///
    /// `until_block`: keep reading until `WouldBlock` even after a short read. Without it a
    /// read that returns less than the buffer ends the turn, saving the `read` that would only
    /// say `WouldBlock`: with edge-triggered polling any byte that arrives later raises a new
    /// event. It is needed when the peer has closed (the end of file must be read now, no
    /// further event will come) and on turns not started by an event.
    fn drive_input(&mut self, key: usize, until_block: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.doomed {
            return;
        }
        conn.queued_for_input = false;
        // Move the buffers out so that lines can borrow them while handlers change the reactor.
        // Neither move allocates.
        let mut framer = std::mem::replace(&mut conn.framer, LineFramer::new(1));
        let mut inbuf = std::mem::take(&mut conn.inbuf);
        let mut scratch = std::mem::take(&mut self.scratch);
        self.input_loop(key, &mut framer, &mut inbuf, &mut scratch, until_block);
        self.scratch = scratch;
        // Connections are only removed when reaped, so the key still names this connection.
        if let Some(conn) = self.conns.get_mut(key) {
            framer.release_idle();
            conn.framer = framer;
            conn.inbuf = inbuf;
        }
    }

    fn input_loop(
        &mut self,
        key: usize,
        framer: &mut LineFramer,
        inbuf: &mut Vec<u8>,
        scratch: &mut [u8],
        until_block: bool,
    ) {
        let (rate, burst) = (self.config.rate, self.config.burst);
        let mut reads = 0;
        loop {
            // What the allowance earned since last time comes first: bytes held back by pacing
            // are handled with it before anything new is read.
            if rate > 0 {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.allowance.refill(rate, burst, Instant::now());
                }
            }
            if !inbuf.is_empty() {
                let used = self.process_bytes(key, framer, inbuf);
                inbuf.drain(..used);
            }
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if conn.doomed {
                return;
            }
            let closing = conn.state == State::Closing;
            if closing {
                // Nothing more is handled from a leaving connection.
                *inbuf = Vec::new();
            } else if !inbuf.is_empty() {
                // Stopped for want of allowance: wait for a refill, read nothing meanwhile.
                self.pace(key);
                return;
            } else if inbuf.capacity() > 0 {
                *inbuf = Vec::new();
            }
            if !closing && rate > 0 && !conn.allowance.has_one() {
                self.pace(key);
                return;
            }
            if reads >= READS_PER_WAKE {
                self.requeue(key);
                return;
            }
            match conn.stream.read(scratch) {
                Ok(0) => {
                    self.doom(key, LeaveReason::Quit);
                    return;
                }
                Ok(n) => {
                    reads += 1;
                    let drained = n < scratch.len() && !until_block;
                    if !closing {
                        let data = &scratch[..n];
                        let used = self.process_bytes(key, framer, data);
                        if used < n {
                            inbuf.extend_from_slice(&data[used..]);
                        }
                    }
                    if drained && inbuf.is_empty() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("read error on #{}: {e}", conn.serial);
                    self.doom(key, LeaveReason::Quit);
                    return;
                }
            }
        }
    }

    /// Frames and handles lines from `data` while the connection may go on; returns how many
    /// bytes were used. Stops early when the allowance runs out or the connection is leaving.
    fn process_bytes(&mut self, key: usize, framer: &mut LineFramer, data: &[u8]) -> usize {
        let rate = self.config.rate;
        let mut pos = 0;
        while pos < data.len() {
            let Some(conn) = self.conns.get_mut(key) else {
                return pos;
            };
            if conn.doomed || conn.state == State::Closing {
                return pos;
            }
            if rate > 0 && !conn.allowance.try_take() {
                return pos;
            }
            let (used, frame) = framer.feed(&data[pos..]);
            pos += used;
            let Some(frame) = frame else {
                // No line came out: give the allowance back.
                if rate > 0 {
                    conn.allowance.give_back();
                }
                continue;
            };
            match frame {
                Frame::Line(line) => self.handle_line(key, line),
                Frame::TooLong => {
                    let text = format!("line longer than {} bytes discarded", self.config.max_line);
                    self.send_error(key, ErrorCode::LineTooLong, &text);
                }
                Frame::BadUtf8 => {
                    self.send_error(key, ErrorCode::BadUtf8, "line is not valid UTF-8; dropped")
                }
            }
        }
        pos
    }

    fn pace(&mut self, key: usize) {
        let rate = self.config.rate;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.refill_armed {
            return;
        }
        conn.refill_armed = true;
        let at = Instant::now() + conn.allowance.wait_for_one(rate);
        self.timers.arm(at, key, conn.serial, TimerKind::Refill);
    }

    fn requeue(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.queued_for_input {
                conn.queued_for_input = true;
                self.ready.push_back((key, conn.serial));
            }
        }
    }

    fn drive_ready(&mut self) {
        for _ in 0..self.ready.len() {
            let Some((key, serial)) = self.ready.pop_front() else {
                break;
            };
            if self.conns.get(key).is_some_and(|c| c.serial == serial) {
                self.drive_input(key, true);
            }
        }
    }

    // ---- requests --------------------------------------------------------------------------

    fn handle_line(&mut self, key: usize, line: &str) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        match &conn.state {
            State::AwaitingName => self.offer_name(key, line),
            State::Waiting { .. } => self.send_error(
                key,
                ErrorCode::NotAdmitted,
                "wait for the operator to approve you; this line was dropped",
            ),
            State::Member { name } => {
                let name = Rc::clone(name);
                self.member_request(key, &name, line);
            }
            State::Closing => {}
        }
    }

    fn offer_name(&mut self, key: usize, line: &str) {
        let name = match validate_name(line) {
            Ok(name) => name,
            Err(e) => {
                self.send_error(key, ErrorCode::BadName, &e.to_string());
                self.send(
                    key,
                    &ServerMsg::NameQuery {
                        prompt: NAME_PROMPT,
                    },
                );
                return;
            }
        };
        if self.room.holder(name).is_some() {
            let text = format!("the name {name} is taken");
            self.send_error(key, ErrorCode::NameTaken, &text);
            self.send(
                key,
                &ServerMsg::NameQuery {
                    prompt: NAME_PROMPT,
                },
            );
            return;
        }
        if self.config.auto_approve {
            self.admit(key, name);
        } else if self.stdin.is_none() {
            self.deny(key, "no operator is present to approve joins");
        } else if self.room.waiting() >= self.config.max_pending {
            // debug, not warn: a peer can trigger this as often as it likes.
            debug!(
                "waiting room full ({} joins): refusing {name}",
                self.room.waiting()
            );
            self.send_error(
                key,
                ErrorCode::ServerFull,
                "too many joins are waiting for the operator; try again later",
            );
            self.close_politely(key, None, LeaveReason::Quit);
        } else {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let name: Rc<str> = Rc::from(name);
            conn.state = State::Waiting {
                name: Rc::clone(&name),
                since: Instant::now(),
            };
            let (addr, serial) = (conn.addr, conn.serial);
            self.room.add_pending(&name, key);
            let text = format!("waiting for the operator to approve {name}");
            self.send(key, &ServerMsg::Wait { text: &text });
            self.timers.arm(
                Instant::now() + self.config.approval_timeout,
                key,
                serial,
                TimerKind::Approval,
            );
            console_out!(
                self,
                "join request: {name} from {addr} (approve {name} / deny {name})"
            );
        }
    }

    /// Moves a connection into the room: WELCOME to it, JOIN to everyone else.
    fn admit(&mut self, key: usize, name: &str) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let name: Rc<str> = Rc::from(name);
        let was_waiting = matches!(conn.state, State::Waiting { .. });
        conn.state = State::Member {
            name: Rc::clone(&name),
        };
        let addr = conn.addr;
        self.room.admit(&name, key);
        let online = self.room.online();
        self.send(
            key,
            &ServerMsg::Welcome {
                name: &name,
                online,
            },
        );
        self.broadcast(&ServerMsg::Join { name: &name }, Some(key));
        if was_waiting {
            console_out!(self, "approved {name} ({online} online)");
        } else {
            console_out!(self, "joined {name} from {addr} ({online} online)");
        }
    }

    /// Refuses a join (waiting or just named): DENIED, its name freed, then a polite close.
    fn deny(&mut self, key: usize, why: &str) {
        self.send(key, &ServerMsg::Denied { text: why });
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // Leave the room here rather than in close_politely, which would report a waiting
        // join that goes as withdrawn by its owner.
        if let State::Waiting { name, .. } = std::mem::replace(&mut conn.state, State::Closing) {
            self.room.remove(&name, key);
        }
        self.close_politely(key, None, LeaveReason::Quit);
    }

    fn member_request(&mut self, key: usize, name: &str, line: &str) {
        let clean = sanitize(line);
        if is_blank(&clean) {
            return;
        }
        match parse_request(&clean) {
            Err(e) => self.send_error(key, e.code(), &e.to_string()),
            Ok(Request::Say { color, text }) => {
                self.broadcast(
                    &ServerMsg::Msg {
                        from: name,
                        color,
                        text,
                    },
                    Some(key),
                );
            }
            Ok(Request::Private { to, color, text }) => {
                let target = self.room.holder(to).and_then(|k| match self.conns.get(k) {
                    Some(Conn {
                        state: State::Member { name },
                        ..
                    }) => Some((k, Rc::clone(name))),
                    _ => None,
                });
                match target {
                    Some((target, to)) => {
                        let line = self.format(&ServerMsg::Priv {
                            from: name,
                            to: &to,
                            color,
                            text,
                        });
                        self.push(target, &line);
                    }
                    None => {
                        let text = format!("nobody named {to} is in the room");
                        self.send_error(key, ErrorCode::NoSuchUser, &text);
                    }
                }
            }
            Ok(Request::Me { text }) => {
                self.broadcast(&ServerMsg::Act { from: name, text }, Some(key));
            }
            Ok(Request::Nick { .. }) => {
                // Renames arrive with the chat core (issue 13); until then, say so.
                self.send_error(key, ErrorCode::UnknownCommand, "/nick is not available yet");
            }
            Ok(Request::Leave) => {
                self.close_politely(key, Some("goodbye"), LeaveReason::Left);
            }
            Ok(Request::Who) => {
                let mut names: Vec<Rc<str>> = self
                    .room
                    .members()
                    .iter()
                    .filter_map(|&k| self.conns.get(k).and_then(Conn::name).cloned())
                    .collect();
                names.sort_unstable_by_key(|n| n.to_ascii_lowercase());
                let mut text = format!("online ({}):", names.len());
                let mut first = true;
                for n in &names {
                    if text.len() + n.len() + 2 > WHO_LINE_BYTES {
                        self.send(key, &ServerMsg::Info { text: &text });
                        text.clear();
                        first = true;
                    }
                    let sep = if first { " " } else { ", " };
                    let _ = write!(text, "{sep}{n}");
                    first = false;
                }
                self.send(key, &ServerMsg::Info { text: &text });
            }
            Ok(Request::Help) => {
                for line in HELP_LINES {
                    self.send(key, &ServerMsg::Info { text: line });
                }
            }
        }
    }

    // ---- output ----------------------------------------------------------------------------

    /// Formats a message once into a line that any number of queues can share.
    fn format(&mut self, msg: &ServerMsg<'_>) -> Rc<[u8]> {
        self.fmt.clear();
        msg.write_to(&mut self.fmt);
        Rc::from(&self.fmt[..])
    }

    fn send(&mut self, key: usize, msg: &ServerMsg<'_>) {
        let line = self.format(msg);
        self.push(key, &line);
    }

    fn send_error(&mut self, key: usize, code: ErrorCode, text: &str) {
        self.send(key, &ServerMsg::Error { code, text });
    }

    /// Sends to every member but `except`: formatted once, shared by every queue.
    fn broadcast(&mut self, msg: &ServerMsg<'_>, except: Option<usize>) {
        let line = self.format(msg);
        // Indexing instead of iterating: `push` needs `&mut self`, and the member list cannot
        // change during the loop (a member over its queue limit is only doomed, not removed).
        for i in 0..self.room.members().len() {
            let key = self.room.members()[i];
            if Some(key) != except {
                self.push(key, &line);
            }
        }
    }

    /// Queues a line for one connection; a connection whose queue would pass `--max-queue` is
    /// doomed instead (a slow reader must not make the server hold unbounded memory).
    fn push(&mut self, key: usize, line: &Rc<[u8]>) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.doomed {
            return;
        }
        if conn.out.bytes() + line.len() > self.config.max_queue {
            debug!(
                "#{} is {} bytes behind: dropping",
                conn.serial,
                conn.out.bytes()
            );
            self.doom(key, LeaveReason::Dropped);
            return;
        }
        conn.out.push(Rc::clone(line));
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(key);
        }
    }

    fn mark_dirty(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// Writes every dirty queue; keeps WRITABLE interest exactly while bytes remain.
    fn flush(&mut self) {
        while let Some(key) = self.dirty.pop() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            if conn.doomed {
                continue;
            }
            match conn.out.write_to(&mut conn.stream, &mut self.gather) {
                Ok(true) => {
                    if conn.out.drained() && !conn.release_armed {
                        conn.release_armed = true;
                        let at = Instant::now() + QUEUE_RELEASE_DELAY;
                        self.timers.arm(at, key, conn.serial, TimerKind::Release);
                    }
                    if conn.wants_write {
                        conn.wants_write = false;
                        let _ = self.poll.registry().reregister(
                            &mut conn.stream,
                            token_of(key),
                            Interest::READABLE,
                        );
                    }
                    if conn.state == State::Closing && !conn.write_shut {
                        conn.write_shut = true;
                        let _ = conn.stream.shutdown(Shutdown::Write);
                        if self.shutdown_deadline.is_some() {
                            self.doom(key, LeaveReason::Quit);
                        }
                    }
                }
                Ok(false) => {
                    if !conn.wants_write {
                        conn.wants_write = true;
                        let _ = self.poll.registry().reregister(
                            &mut conn.stream,
                            token_of(key),
                            Interest::READABLE | Interest::WRITABLE,
                        );
                    }
                }
                Err(e) => {
                    debug!("write error on #{}: {e}", conn.serial);
                    self.doom(key, LeaveReason::Quit);
                }
            }
        }
    }

    // ---- leaving ---------------------------------------------------------------------------

    /// Takes a connection out of the room (LEAVE to the others when it was a member) and lets
    /// it leave politely: `bye` is its last line, then its write half is shut and it is closed
    /// when the peer closes too or the linger timer fires.
    fn close_politely(&mut self, key: usize, bye: Option<&str>, reason: LeaveReason) {
        if let Some(text) = bye {
            self.send(key, &ServerMsg::Bye { text });
        }
        self.leave_room(key, reason);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.state = State::Closing;
        let serial = conn.serial;
        self.timers.arm(
            Instant::now() + CLOSE_LINGER,
            key,
            serial,
            TimerKind::Linger,
        );
        self.mark_dirty(key);
    }

    /// Marks a connection to be cut at the end of the round; it gets nothing more.
    fn doom(&mut self, key: usize, reason: LeaveReason) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.doomed {
                conn.doomed = true;
                conn.out.clear();
                self.doomed.push((key, reason));
            }
        }
    }

    /// Removes a member or waiting join from the room; members' departure is announced.
    fn leave_room(&mut self, key: usize, reason: LeaveReason) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        match &conn.state {
            State::Member { name } => {
                let name = Rc::clone(name);
                self.room.remove(&name, key);
                if self.shutdown_deadline.is_none() {
                    self.broadcast(
                        &ServerMsg::Leave {
                            name: &name,
                            reason,
                        },
                        None,
                    );
                    console_out!(self, "left {name} ({})", reason.as_str());
                }
            }
            State::Waiting { name, .. } => {
                let name = Rc::clone(name);
                self.room.remove(&name, key);
                if reason == LeaveReason::Quit && self.shutdown_deadline.is_none() {
                    console_out!(self, "join request withdrawn: {name}");
                }
            }
            State::AwaitingName | State::Closing => {}
        }
    }

    /// Cuts every doomed connection. Announcing a departure may doom others (their queues
    /// overflow), so this runs until nothing is left.
    fn reap(&mut self) {
        while let Some((key, reason)) = self.doomed.pop() {
            self.leave_room(key, reason);
            if self.conns.contains(key) {
                let mut conn = self.conns.remove(key);
                let _ = self.poll.registry().deregister(&mut conn.stream);
                let ip = conn.addr.ip();
                if let Some(count) = self.per_ip.get_mut(&ip) {
                    *count -= 1;
                    if *count == 0 {
                        self.per_ip.remove(&ip);
                    }
                }
                debug!("#{} closed", conn.serial);
            }
        }
    }

    /// Ends a round: cut the doomed, flush the dirty, until both are done.
    fn settle(&mut self) {
        while !self.doomed.is_empty() || !self.dirty.is_empty() {
            self.reap();
            self.flush();
        }
    }

    // ---- timers ----------------------------------------------------------------------------

    fn fire_timers(&mut self, now: Instant) {
        while let Some(t) = self.timers.pop_due(now) {
            let Some(conn) = self.conns.get_mut(t.key) else {
                continue;
            };
            if conn.serial != t.serial || conn.doomed {
                continue;
            }
            match (t.kind, &conn.state) {
                (TimerKind::Login, State::AwaitingName) => {
                    debug!("#{} gave no name in time", conn.serial);
                    self.close_politely(t.key, Some("no name given in time"), LeaveReason::Quit);
                }
                (TimerKind::Approval, State::Waiting { name, .. }) => {
                    console_out!(self, "join request of {name} timed out: denied");
                    self.deny(t.key, "no operator approved you in time");
                }
                (TimerKind::Refill, _) => {
                    conn.refill_armed = false;
                    self.requeue(t.key);
                }
                (TimerKind::Linger, State::Closing) => self.doom(t.key, LeaveReason::Quit),
                (TimerKind::Release, _) => {
                    conn.release_armed = false;
                    if conn.out.is_empty() {
                        conn.out.clear();
                    }
                }
                _ => {}
            }
        }
    }

    // ---- console ---------------------------------------------------------------------------

    fn read_console(&mut self) {
        let mut buf = [0u8; 4096];
        let mut total = 0;
        loop {
            let Some(stdin) = self.stdin.as_mut() else {
                return;
            };
            if total >= CONSOLE_READ_PER_ROUND {
                return;
            }
            match stdin.read(&mut buf) {
                Ok(0) => {
                    self.console_closed();
                    return;
                }
                Ok(n) => {
                    total += n;
                    let mut framer =
                        std::mem::replace(&mut self.console_framer, LineFramer::new(1));
                    let mut rest = &buf[..n];
                    while !rest.is_empty() {
                        let (used, frame) = framer.feed(rest);
                        rest = &rest[used..];
                        match frame {
                            Some(Frame::Line(line)) => self.console_line(line),
                            Some(Frame::TooLong) => {
                                console_out!(self, "error: command line too long")
                            }
                            Some(Frame::BadUtf8) => {
                                console_out!(self, "error: command is not UTF-8")
                            }
                            None => {}
                        }
                    }
                    self.console_framer = framer;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("console read failed: {e}");
                    self.console_closed();
                    return;
                }
            }
        }
    }

    fn console_closed(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            stdin.deregister(self.poll.registry());
        }
        console_out!(self, "console closed");
        if !self.config.auto_approve {
            info!("console closed: joins are now denied");
            let waiting: Vec<usize> = self.room.pending().collect();
            for key in waiting {
                self.deny(key, "no operator is present to approve joins");
            }
        }
    }

    fn console_line(&mut self, line: &str) {
        let command = match console::parse(line) {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                console_out!(self, "error: {e}");
                return;
            }
        };
        match command {
            Command::Approve(name) | Command::Deny(name) => {
                let approve = matches!(command, Command::Approve(_));
                let key = match name {
                    None => self.room.oldest_pending(),
                    Some(n) => self.room.holder(n).filter(|&k| {
                        matches!(
                            self.conns.get(k).map(|c| &c.state),
                            Some(State::Waiting { .. })
                        )
                    }),
                };
                let Some(key) = key else {
                    match name {
                        None => console_out!(self, "error: nobody is waiting"),
                        Some(n) => {
                            console_out!(self, "error: nobody named {} is waiting", sanitize(n))
                        }
                    }
                    return;
                };
                let Some(name) = self.conns.get(key).and_then(Conn::name).cloned() else {
                    return;
                };
                if approve {
                    self.admit(key, &name);
                } else {
                    self.deny(key, "the operator refused you");
                    console_out!(self, "denied {name}");
                }
            }
            Command::Pending => {
                let now = Instant::now();
                console_out!(self, "pending: {} waiting", self.room.waiting());
                for key in self.room.pending() {
                    if let Some(Conn {
                        state: State::Waiting { name, since },
                        addr,
                        ..
                    }) = self.conns.get(key)
                    {
                        let secs = now.saturating_duration_since(*since).as_secs();
                        console_out!(self, "  {name} from {addr}, waiting {secs}s");
                    }
                }
            }
            Command::Who => {
                console_out!(self, "online: {}", self.room.online());
                for &key in self.room.members() {
                    if let Some(Conn {
                        state: State::Member { name },
                        addr,
                        ..
                    }) = self.conns.get(key)
                    {
                        console_out!(self, "  {name} from {addr}");
                    }
                }
            }
            Command::Kick(name) => {
                let key = self.room.holder(name).filter(|&k| {
                    matches!(
                        self.conns.get(k).map(|c| &c.state),
                        Some(State::Member { .. })
                    )
                });
                match key.and_then(|k| {
                    self.conns
                        .get(k)
                        .and_then(Conn::name)
                        .cloned()
                        .map(|n| (k, n))
                }) {
                    Some((key, name)) => {
                        self.close_politely(
                            key,
                            Some("kicked by the operator"),
                            LeaveReason::Kicked,
                        );
                        console_out!(self, "kicked {name}");
                    }
                    None => console_out!(self, "error: no member named {}", sanitize(name)),
                }
            }
            Command::Say(text) => {
                let text = format!("operator: {}", sanitize(text));
                self.broadcast(&ServerMsg::Info { text: &text }, None);
                console_out!(self, "said to {} members", self.room.online());
            }
            Command::Quit => self.begin_shutdown("quit by the operator"),
            Command::Help => {
                for line in console::HELP {
                    console_out!(self, "{line}");
                }
            }
        }
    }

    // ---- shutdown --------------------------------------------------------------------------

    fn read_signals(&mut self) {
        let mut got = false;
        for signal in self.signals.pending() {
            info!("signal {signal}");
            got = true;
        }
        if got {
            self.begin_shutdown("signal");
        }
    }

    /// Stops accepting, says BYE to every connection and arms the grace deadline. The loop
    /// exits once every BYE is flushed or the deadline passes.
    fn begin_shutdown(&mut self, why: &str) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        info!("shutting down ({why})");
        console_out!(self, "shutting down");
        self.shutdown_deadline = Some(Instant::now() + SHUTDOWN_GRACE);
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let bye = self.format(&ServerMsg::Bye {
            text: "server shutting down",
        });
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if self
                .conns
                .get(key)
                .is_some_and(|c| c.state != State::Closing)
            {
                self.push(key, &bye);
                self.close_politely(key, None, LeaveReason::Quit);
            }
        }
    }

    fn all_flushed(&self) -> bool {
        self.conns.iter().all(|(_, c)| c.out.is_empty())
    }
}

/// Best-effort refusal of a connection that is not kept: one ERROR line, then close.
fn refuse(stream: TcpStream, why: &str) {
    let line = ServerMsg::Error {
        code: ErrorCode::ServerFull,
        text: why,
    }
    .to_line();
    let _ = (&stream).write(&line);
}

//! The I/O shell: one thread, one `mio::Poll`, every socket, the consoles and the signals.
//!
//! The shell moves bytes and keeps deadlines; the rules of the room are the core's
//! ([`crate::chat::Core`]). It reads and frames input and hands each line to the core as an
//! event; the core answers through the [`Shell`], which implements its
//! [`Outbox`](crate::chat::Outbox): lines are queued (a line formatted once is shared by every
//! queue), connections closed, consoles written, timers armed. Handlers never block and never
//! remove a connection while the loop is iterating: a connection to be cut is marked *doomed*
//! and reaped at the end of the round, so a fan-out can never see a slab key change under it.
//!
//! One round: wait for events (the timeout comes from the timer heap, or is zero while some
//! connection still has input to process), handle them, fire due timers, give paced or capped
//! connections their turn, then reap doomed connections and flush every connection whose output
//! queue grew, each in one write of its gathered lines.
//!
//! # Layout
//! - `accept`: new connections (plain and TLS), the descriptor limit.
//! - `input`: reading, pacing, framing, and handing lines to the core.
//! - `output`: the [`Outbox`](crate::chat::Outbox) the core writes to, queues, flushing,
//!   stalls.
//! - `leave`: closing politely, dooming, reaping.
//! - `console`: the operator consoles' input and output.
//! - `shutdown`: signals and the goodbye round.
//! - `reload`: SIGHUP, the TLS certificate and key reloaded for new connections.
//! - `cluster`: the cluster bridge's messages (`--cluster`), woken by the loop's one waker
//!   (`WAKER`).
//! - `store`: the durable store's answers and writes (`--data-dir`), woken by the same waker.
//! - [`irc`]: the IRC dialect (`--irc-listen`, `--irc-tls-listen`): IRC lines in, the core's
//!   messages out as IRC, registration, the channel's queries and idle pings.
//! - [`conn`], [`stream`], [`tls`]: one connection's state, its byte stream, the TLS engine.

mod accept;
mod cluster;
pub mod conn;
mod console;
mod input;
pub mod irc;
mod leave;
mod output;
mod reload;
mod shutdown;
mod store;
pub mod stream;
pub mod tls;
mod web;
pub mod websocket;

pub use web::{HTTP_HEAD_TIMEOUT, MAX_HTTP_CONNECTIONS, MAX_HTTP_PER_IP, MAX_HTTP_REQUESTS};

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_common::framing::LineFramer;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;

use crate::chat::{ConnId, Core, Now};
use crate::config::{Config, CATCHUP_RECHECK, CONSOLE_MAX_LINE, READ_CHUNK, SHUTDOWN_GRACE};
use crate::console::control::{ControlConn, ControlListener};
use crate::console::io::{ConsoleInput, ConsoleOut, StdinSource};
use crate::timers::{TimerKind, Timers};
use crate::tls_config::TlsFiles;
use crate::Listeners;
use accept::Via;
use conn::{Conn, GATHER_BYTES};

const LISTENER: Token = Token(0);
const CONSOLE: Token = Token(1);
const SIGNALS: Token = Token(2);
const CONSOLE_OUT: Token = Token(3);
const TLS_LISTENER: Token = Token(4);
const CONTROL_LISTENER: Token = Token(5);
const IRC_LISTENER: Token = Token(6);
const IRC_TLS_LISTENER: Token = Token(7);
/// Connection tokens are slab keys shifted past the fixed tokens.
const FIRST_CONN: usize = 8;
/// Control console tokens are their slab keys shifted this far, past any connection's token.
const FIRST_CONTROL: usize = usize::MAX / 2;
/// The loop's one waker, just below the control consoles, past any connection's token: mio
/// allows one `Waker` per `Poll`, so the cluster's threads and the store's disk thread share it,
/// and a wake-up makes the loop look at both inboxes (an empty one costs a `try_recv`).
const WAKER: Token = Token(FIRST_CONTROL - 1);
/// The web listeners: below the waker (HTTP connections are `web::FIRST_HTTP` + key, between
/// the members' tokens and these).
const WEB_PAGE: Token = Token(FIRST_CONTROL - 2);
const WEB_PAGE_TLS: Token = Token(FIRST_CONTROL - 3);
const WEB_METRICS: Token = Token(FIRST_CONTROL - 4);

const EVENTS_CAPACITY: usize = 1024;

fn token_of(key: usize) -> Token {
    Token(key + FIRST_CONN)
}

fn register_listener(
    poll: &Poll,
    listener: Option<std::net::TcpListener>,
    token: Token,
) -> io::Result<Option<TcpListener>> {
    let Some(listener) = listener else {
        return Ok(None);
    };
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    poll.registry()
        .register(&mut listener, token, Interest::READABLE)?;
    Ok(Some(listener))
}

/// The connections and everything the core's effects touch: the [`crate::chat::Outbox`].
pub struct Shell {
    registry: Registry,
    conns: Slab<Conn>,
    timers: Timers,
    config: Config,
    /// Operator console output (standard output).
    console_out: ConsoleOut,
    /// Remote operator consoles (`--control`); console id = slab key + 1 (0 is standard input).
    controls: Slab<ControlConn>,
    /// Control consoles to close at the end of the round (they stopped reading or failed, or
    /// their input ended and everything they were owed is written).
    cut_controls: Vec<usize>,
    /// The console whose command the core is running (a quiet console hears only those).
    running: Option<crate::chat::ConsoleId>,
    /// Standard input's console typed `exit` (acted on once the core call returns).
    stdin_exit: bool,
    /// Where several queued lines are gathered for one `write` (reused, never shrunk).
    gather: Vec<u8>,
    /// Connections whose output queue grew this round (each at most once: `Conn::dirty`).
    dirty: Vec<usize>,
    /// Connections to cut at the end of the round, with the reason members leave for.
    doomed: Vec<(ConnId, chat_common::protocol::LeaveReason)>,
    /// What every output queue holds, as `--max-queue` counts it.
    queued: usize,
    /// Queue storage freed since memory was last given back to the system.
    freed: usize,
    /// Whether a [`TimerKind::Trim`] is armed.
    trim_armed: bool,
    /// Whether a console asked to quit (acted on once the core call returns).
    quit_requested: bool,
    /// Whether shutdown has begun.
    shutting_down: bool,
    /// The cluster bridge (`--cluster`).
    cluster: Option<crate::cluster::Link>,
    /// Whether the bridge may have more messages than one round took.
    cluster_busy: bool,
    /// The durable store (`--data-dir`), when the binary attached one.
    store: Option<store::Attached>,
    /// The counters behind `/metrics`.
    metrics: crate::metrics::Metrics,
    /// The last message counted as relayed (its address and time), so a fan-out counts once.
    last_sent: (usize, Option<std::time::SystemTime>),
    /// The IRC dialect's encoders, one per variant of tags (made once, for the server's life).
    irc_encoders: [&'static irc::IrcEncoder; 4],
    /// `config.irc_channel`, shared by refcount with each IRC command that reads it.
    irc_channel: Rc<str>,
    /// IRC members admitted this round, whose names burst is written at its end.
    irc_bursts: Vec<ConnId>,
}

/// The whole server.
pub struct Reactor {
    poll: Poll,
    /// The loop's one waker ([`WAKER`]), shared by the cluster's and the store's threads.
    waker: Arc<mio::Waker>,
    /// `None` with `--listen off` or once shutdown has begun (no new connections).
    listener: Option<TcpListener>,
    /// Other servers' entries being handed to the core a slice at a time (`reactor/cluster.rs`).
    cluster_held: Option<cluster::HeldEntries>,
    /// The TLS listener: `None` without `--tls-listen` or once shutdown has begun.
    tls_listener: Option<TcpListener>,
    /// The IRC listeners (`--irc-listen`, `--irc-tls-listen`); `None` without them or once
    /// shutdown has begun.
    irc_listener: Option<TcpListener>,
    irc_tls_listener: Option<TcpListener>,
    /// What new TLS connections are served with, and where it is reloaded from on SIGHUP
    /// (`None` without TLS). Open connections keep the config they started with.
    tls: Option<(TlsFiles, std::sync::Arc<rustls::ServerConfig>)>,
    core: Core,
    shell: Shell,
    /// The web listeners and their HTTP connections (not yet members).
    web: web::Web,
    /// Operator console input; `None` once it reached end of file or failed.
    stdin: Option<StdinSource>,
    /// The control socket (`--control`), if any.
    control: Option<ControlListener>,
    console_framer: LineFramer,
    signals: signal_hook_mio::v1_0::Signals,
    /// Shared read buffer for every socket ([`READ_CHUNK`] bytes).
    scratch: Vec<u8>,
    /// An IRC member's request as the line a native member would send (reused: reactor/irc.rs).
    irc_line: String,
    /// Connections with input left to process (read cap reached or allowance refilled).
    ready: VecDeque<ConnId>,
    /// Open connections per address, for `--max-per-ip`.
    per_ip: HashMap<IpAddr, usize>,
    /// TLS handshakes under way per address, for [`tls::MAX_HANDSHAKES_PER_IP`].
    handshakes: tls::PendingHandshakes,
    next_serial: u64,
    /// A descriptor kept in reserve: closed to accept-and-refuse when descriptors run out.
    spare_fd: Option<std::fs::File>,
    /// When shutdown gives up waiting for BYE to be flushed.
    shutdown_deadline: Option<Instant>,
    /// Whether standard input was a terminal that hung up (handled once).
    terminal_gone: bool,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("connections", &self.conns.len())
            .field("queued", &self.queued)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("shell", &self.shell)
            .field("online", &self.core.online())
            .field("waiting", &self.core.waiting())
            .finish_non_exhaustive()
    }
}

impl Reactor {
    /// Sets up the poll, registers the listeners, the console and the signals.
    pub fn new(
        listeners: impl Into<Listeners>,
        config: Config,
        console: ConsoleInput,
    ) -> io::Result<Reactor> {
        let Listeners {
            plain,
            tls,
            web: web_listeners,
            irc,
            irc_tls,
        } = listeners.into();
        let poll = Poll::new()?;
        let listener = register_listener(&poll, plain, LISTENER)?;
        let web = web::Web::new(
            register_listener(&poll, web_listeners.page, WEB_PAGE)?,
            register_listener(&poll, web_listeners.page_tls, WEB_PAGE_TLS)?,
            register_listener(&poll, web_listeners.metrics, WEB_METRICS)?,
            web_listeners.origins,
        );
        let (tls_listener, tls) = match tls {
            Some(t) => (
                register_listener(&poll, t.listener, TLS_LISTENER)?,
                Some((t.files, t.config)),
            ),
            None => (None, web_listeners.tls),
        };
        let irc_listener = register_listener(&poll, irc, IRC_LISTENER)?;
        let irc_tls_listener = match tls {
            Some(_) => register_listener(&poll, irc_tls, IRC_TLS_LISTENER)?,
            None => None,
        };
        // SIGHUP reloads the TLS certificate (registering it also keeps it from killing us).
        let mut signals = signal_hook_mio::v1_0::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        // A write past the file size limit (`ulimit -f`, systemd's LimitFSIZE=) raises SIGXFSZ,
        // whose default action killed the server mid-conversation; with a handler the write
        // fails with EFBIG instead, and the store reports it like a full disk (ERROR
        // unavailable, then recovery). Round 4 in docs/SECURITY.md.
        signal_hook::flag::register(
            signal_hook::consts::SIGXFSZ,
            std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        )?;
        let stdin = match console {
            ConsoleInput::Stdin => StdinSource::open(poll.registry(), CONSOLE),
            ConsoleInput::None => None,
        };
        if stdin.is_none() {
            log::info!("no operator console: joins will be denied unless --auto-approve");
        }
        let consoles = usize::from(stdin.is_some());
        let control = match &config.control {
            Some(path) => {
                let mut control =
                    ControlListener::bind(path, config.control_access).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("cannot open the control socket {}: {e}", path.display()),
                        )
                    })?;
                poll.registry().register(
                    control.listener(),
                    CONTROL_LISTENER,
                    Interest::READABLE,
                )?;
                Some(control)
            }
            None => None,
        };
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        let cluster = match &config.cluster {
            Some(c) => Some(crate::cluster::Link::start(c.clone(), Arc::clone(&waker))?),
            None => None,
        };
        Ok(Reactor {
            waker,
            listener,
            tls_listener,
            irc_listener,
            irc_tls_listener,
            tls,
            core: Core::new(config.clone(), consoles),
            shell: Shell {
                registry: poll.registry().try_clone()?,
                conns: Slab::with_capacity(1024.min(config.max_clients)),
                timers: Timers::default(),
                console_out: ConsoleOut::open(CONSOLE_OUT),
                controls: Slab::new(),
                cut_controls: Vec::new(),
                running: None,
                stdin_exit: false,
                gather: Vec::with_capacity(GATHER_BYTES),
                dirty: Vec::new(),
                doomed: Vec::new(),
                queued: 0,
                freed: 0,
                trim_armed: false,
                quit_requested: false,
                shutting_down: false,
                cluster,
                cluster_busy: false,
                store: None,
                metrics: crate::metrics::Metrics::default(),
                last_sent: (0, None),
                irc_encoders: irc::IrcEncoder::all(&config.irc_channel, config.irc_styles),
                irc_channel: Rc::from(config.irc_channel.as_str()),
                irc_bursts: Vec::new(),
                config,
            },
            poll,
            web,
            stdin,
            control,
            console_framer: LineFramer::new(CONSOLE_MAX_LINE),
            signals,
            scratch: vec![0; READ_CHUNK],
            irc_line: String::new(),
            ready: VecDeque::new(),
            per_ip: HashMap::new(),
            handshakes: tls::PendingHandshakes::default(),
            next_serial: 0,
            spare_fd: std::fs::File::open("/dev/null").ok(),
            cluster_held: None,
            shutdown_deadline: None,
            terminal_gone: false,
        })
    }

    /// Runs until `quit`, SIGINT or SIGTERM, then returns after saying BYE to everyone.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            let now = Instant::now();
            if let Some(deadline) = self.shutdown_deadline {
                if now >= deadline || self.shell.all_flushed() {
                    self.shell.console_out.flush(&self.shell.registry);
                    if let Some(link) = self.shell.cluster.as_mut() {
                        link.wait_left(SHUTDOWN_GRACE);
                    }
                    self.close_store(SHUTDOWN_GRACE);
                    log::info!("shutdown complete");
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
            let now = Now::read();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(Via::PLAIN, now),
                    TLS_LISTENER => self.accept_all(Via::TLS, now),
                    IRC_LISTENER => self.accept_all(Via::IRC, now),
                    IRC_TLS_LISTENER => self.accept_all(Via::IRC_TLS, now),
                    CONSOLE => self.read_console(now),
                    SIGNALS => self.read_signals(now),
                    CONSOLE_OUT => self.shell.console_out.flush(&self.shell.registry),
                    CONTROL_LISTENER => self.accept_controls(now),
                    WAKER => {
                        // Only a part that exists may be marked busy: a flag nobody clears
                        // (no cluster to drain) would make every later round poll without
                        // waiting, spinning a core for the server's life.
                        self.shell.cluster_busy = self.shell.cluster.is_some();
                        if let Some(s) = self.shell.store.as_mut() {
                            s.busy = true;
                        }
                    }
                    WEB_PAGE => self.accept_web(web::WebListener::Page, now),
                    WEB_PAGE_TLS => self.accept_web(web::WebListener::PageTls, now),
                    WEB_METRICS => self.accept_web(web::WebListener::Metrics, now),
                    Token(t) if t >= FIRST_CONTROL => {
                        let key = t - FIRST_CONTROL;
                        if event.is_writable() {
                            self.shell.flush_control(key);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read_control(key, now);
                        }
                    }
                    Token(t) if t >= web::FIRST_HTTP => self.http_event(t - web::FIRST_HTTP, now),
                    Token(t) => {
                        let key = t - FIRST_CONN;
                        if event.is_writable() {
                            self.shell.mark_dirty(key);
                        }
                        let closed = event.is_read_closed() || event.is_error();
                        if event.is_readable() || closed {
                            self.drive_input(key, closed, now);
                        }
                    }
                }
            }
            if self.stdin.as_ref().is_some_and(StdinSource::always_ready) {
                self.read_console(now);
            }
            let now = Now::read();
            self.drive_cluster(now);
            self.drive_store(now);
            self.fire_timers(now);
            self.expire_http(now.at);
            self.drive_ready(now);
            self.settle(now);
            self.core.share_records(now, &mut self.shell);
            self.hand_to_store(now);
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let console_busy = self.stdin.as_ref().is_some_and(StdinSource::always_ready);
        if !self.ready.is_empty() || console_busy || self.shell.cluster_busy || self.store_busy() {
            return Some(Duration::ZERO);
        }
        let mut timer = self.shell.timers.next_timeout(now);
        if self.cluster_held.is_some() {
            // Held entries wait for readers to drain: look again soon even without an event.
            timer = Some(timer.map_or(CATCHUP_RECHECK, |t| t.min(CATCHUP_RECHECK)));
        }
        if let Some(web) = self.web.next_deadline() {
            let web = web.saturating_duration_since(now);
            timer = Some(timer.map_or(web, |t| t.min(web)));
        }
        let shutdown = self
            .shutdown_deadline
            .map(|d| d.saturating_duration_since(now));
        match (timer, shutdown) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires every due timer: the core's go to the core, the shell's are handled here.
    fn fire_timers(&mut self, now: Now) {
        while let Some(t) = self.shell.timers.pop_due(now.at) {
            if t.kind == TimerKind::Trim {
                self.shell.trim();
                continue;
            }
            if let TimerKind::Core(
                timer @ (crate::chat::CoreTimer::Announce | crate::chat::CoreTimer::Sweep),
            ) = t.kind
            {
                let id = ConnId { key: 0, serial: 0 };
                self.core.timer(id, timer, now, &mut self.shell);
                continue;
            }
            let Some(conn) = self.shell.conns.get_mut(t.key) else {
                continue;
            };
            if conn.id.serial != t.serial || conn.doomed {
                continue;
            }
            let id = conn.id;
            match t.kind {
                TimerKind::Core(timer) => self.core.timer(id, timer, now, &mut self.shell),
                TimerKind::Refill => {
                    conn.refill_armed = false;
                    self.requeue(id);
                }
                TimerKind::Linger => {
                    if conn.closing {
                        self.shell
                            .doom(id, chat_common::protocol::LeaveReason::Quit);
                    }
                }
                TimerKind::Release => {
                    conn.release_armed = false;
                    if conn.out.is_empty() {
                        let storage = conn.out.storage();
                        conn.out.clear();
                        self.shell.freed(storage, now.at);
                    }
                }
                TimerKind::Stall => self.shell.check_stall(t.key, now.at),
                TimerKind::IrcPing => self.irc_ping(id, now),
                TimerKind::Trim => {}
            }
        }
        let conns = &self.shell.conns;
        self.shell.timers.sweep(conns.len(), |key, serial| {
            conns.get(key).is_some_and(|c| c.id.serial == serial)
        });
    }
}

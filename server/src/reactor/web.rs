//! The web listeners' connections before they are members: `--http-listen` (and its TLS twin)
//! serving the page and upgrading `/ws` to WebSocket, and `--metrics-listen` serving
//! `/metrics`, `/healthz` and `/readyz`.
//!
//! An HTTP connection lives in its own slab, never in the core: it reads one request head at a
//! time (at most [`http::MAX_HEAD`] bytes, within [`HTTP_HEAD_TIMEOUT`] of the connection or of the
//! last answer, else `408` and close: slowloris costs a slot for that long and no more), answers
//! it whole, and serves up to [`MAX_HTTP_REQUESTS`] requests on one connection; an idle
//! kept-alive connection is closed [`HTTP_HEAD_TIMEOUT`] after its last answer. A valid upgrade
//! is answered `101`; once that is written the socket leaves this slab and becomes a member's
//! connection ([`super::websocket::WsStream`] over it), announced to the core like any other
//! accepted connection, within `--max-clients` and `--max-per-ip`. At most
//! [`MAX_HTTP_CONNECTIONS`] wait here, [`MAX_HTTP_PER_IP`] from one address; the one beyond
//! is closed at once.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_common::protocol::{ErrorCode, ServerMsg};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};
use slab::Slab;

use super::stream::Stream;
use super::tls::TlsStream;
use super::websocket::WsStream;
use super::Reactor;
use crate::chat::Now;
use crate::metrics::{Gauges, Transport, CONTENT_TYPE};
use crate::web::http::{self, OriginPolicy, Parsed, Role, Route, Status};
use crate::web::page;

/// How long a client has to send a whole request head (from connecting, or from the last
/// answer on a kept-alive connection).
pub const HTTP_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Most HTTP connections open at once (not yet members); one more is closed at once.
pub const MAX_HTTP_CONNECTIONS: usize = 512;
/// Most HTTP connections open at once from one address (so one host cannot take every slot of
/// [`MAX_HTTP_CONNECTIONS`] with slow heads); one more is closed at once. A quarter of them: room
/// for a reverse proxy's or a load generator's burst of handshakes from one address.
pub const MAX_HTTP_PER_IP: usize = 128;
/// Most requests answered on one connection before it is closed.
pub const MAX_HTTP_REQUESTS: u32 = 100;

/// Tokens of HTTP connections: their slab key plus this, past any member's token and below the
/// control consoles' and the fixed tokens near them.
pub(super) const FIRST_HTTP: usize = usize::MAX / 4;

/// The web side of the reactor: listeners, the connections not yet members, their deadlines.
///
/// Invariant: every HTTP connection with a head deadline has an entry in `deadlines`.
#[derive(Debug, Default)]
pub struct Web {
    /// `--http-listen`, `--http-tls-listen`, `--metrics-listen`.
    pub(super) page: Option<TcpListener>,
    pub(super) page_tls: Option<TcpListener>,
    pub(super) metrics_listener: Option<TcpListener>,
    /// Which origins may open a WebSocket.
    pub(super) origins: OriginPolicy,
    conns: Slab<HttpConn>,
    /// Head deadlines in the order they were set (all are [`HTTP_HEAD_TIMEOUT`] long, so this
    /// is sorted); an entry whose connection has gone or moved on is skipped.
    deadlines: VecDeque<(Instant, usize, u64)>,
    next_serial: u64,
    /// Open HTTP connections per address, for [`MAX_HTTP_PER_IP`].
    per_ip: std::collections::HashMap<std::net::IpAddr, usize>,
}

/// Which listener a connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WebListener {
    Page,
    PageTls,
    Metrics,
}

/// One HTTP connection.
#[derive(Debug)]
struct HttpConn {
    stream: Stream,
    addr: SocketAddr,
    serial: u64,
    role: Role,
    tls: bool,
    /// Request bytes not yet answered. Invariant: at most [`http::MAX_HEAD`] plus one read.
    buf: Vec<u8>,
    /// The answer not yet written, from `sent` on.
    out: Vec<u8>,
    sent: usize,
    /// Close once `out` is written.
    close_after: bool,
    /// Become a WebSocket member once `out` (the `101`) is written; the bytes after the head
    /// are its first frames.
    upgrade: bool,
    requests: u32,
    /// When the head being read must be complete (`None` while an answer is being written).
    deadline: Option<Instant>,
    /// Whether WRITABLE interest is registered.
    writable: bool,
}

/// What to do with a connection after handling it.
enum Next {
    Keep,
    Close,
    Upgrade,
}

impl Web {
    /// The web side with these listeners, registered by the caller.
    pub(super) fn new(
        page: Option<TcpListener>,
        page_tls: Option<TcpListener>,
        metrics_listener: Option<TcpListener>,
        origins: OriginPolicy,
    ) -> Self {
        Web {
            page,
            page_tls,
            metrics_listener,
            origins,
            ..Web::default()
        }
    }

    /// The earliest head deadline, for the poll timeout.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|d| d.0)
    }
}

impl Reactor {
    pub(super) fn web_listener(&self, which: WebListener) -> Option<&TcpListener> {
        match which {
            WebListener::Page => self.web.page.as_ref(),
            WebListener::PageTls => self.web.page_tls.as_ref(),
            WebListener::Metrics => self.web.metrics_listener.as_ref(),
        }
    }

    /// Accepts every waiting connection of a web listener.
    pub(super) fn accept_web(&mut self, which: WebListener, now: Now) {
        loop {
            let Some(listener) = self.web_listener(which) else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => self.open_http(stream, addr, which, now.at),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // Out of descriptors included: the head deadlines free slots soon.
                    log::warn!("web accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn open_http(&mut self, stream: TcpStream, addr: SocketAddr, which: WebListener, now: Instant) {
        if self.web.conns.len() >= MAX_HTTP_CONNECTIONS {
            log::debug!("refusing web connection from {addr}: {MAX_HTTP_CONNECTIONS} open");
            return;
        }
        let from_ip = self.web.per_ip.get(&addr.ip()).copied().unwrap_or(0);
        if from_ip >= MAX_HTTP_PER_IP {
            log::debug!("refusing web connection from {addr}: {from_ip} open from there");
            return;
        }
        let _ = stream.set_nodelay(true);
        let tls = which == WebListener::PageTls;
        let mut stream = match (tls, &self.tls) {
            (false, _) => Stream::Tcp(stream),
            (true, Some((_, config))) => match TlsStream::new(stream, Arc::clone(config)) {
                Ok(s) => Stream::Tls(Box::new(s)),
                Err(e) => {
                    log::warn!("cannot start TLS with {addr}: {e}");
                    return;
                }
            },
            (true, None) => return,
        };
        let entry = self.web.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut stream, Token(FIRST_HTTP + key), Interest::READABLE)
        {
            log::warn!("cannot register web connection {addr}: {e}");
            return;
        }
        self.web.next_serial += 1;
        let serial = self.web.next_serial;
        let deadline = now + HTTP_HEAD_TIMEOUT;
        entry.insert(HttpConn {
            stream,
            addr,
            serial,
            role: if which == WebListener::Metrics {
                Role::Metrics
            } else {
                Role::Page
            },
            tls,
            buf: Vec::new(),
            out: Vec::new(),
            sent: 0,
            close_after: false,
            upgrade: false,
            requests: 0,
            deadline: Some(deadline),
            writable: false,
        });
        self.web.deadlines.push_back((deadline, key, serial));
        *self.web.per_ip.entry(addr.ip()).or_insert(0) += 1;
    }

    /// An event on an HTTP connection.
    pub(super) fn http_event(&mut self, key: usize, now: Now) {
        let next = self.http_drive(key, now);
        self.http_next(key, next, now);
    }

    fn http_next(&mut self, key: usize, next: Next, now: Now) {
        match next {
            Next::Keep => {}
            Next::Close => self.http_close(key),
            Next::Upgrade => self.http_upgrade(key, now),
        }
    }

    /// Writes what is pending, then reads and answers requests while the answers go out whole.
    fn http_drive(&mut self, key: usize, now: Now) -> Next {
        loop {
            let Some(conn) = self.web.conns.get_mut(key) else {
                return Next::Keep;
            };
            match conn.flush() {
                Ok(true) => {}
                Ok(false) => return self.http_want_write(key, true),
                Err(_) => return Next::Close,
            }
            if conn.writable {
                self.http_want_write(key, false);
            }
            let Some(conn) = self.web.conns.get_mut(key) else {
                return Next::Keep;
            };
            if conn.upgrade {
                return Next::Upgrade;
            }
            if conn.close_after {
                return Next::Close;
            }
            if conn.deadline.is_none() {
                // The answer is out: the next head (or the connection's end) is due within the
                // deadline, so an idle kept-alive connection does not hold its slot forever.
                let deadline = now.at + HTTP_HEAD_TIMEOUT;
                conn.deadline = Some(deadline);
                let serial = conn.serial;
                self.web.deadlines.push_back((deadline, key, serial));
            }
            // A whole head already buffered (pipelined) is answered before reading more.
            if let Some(next) = self.http_answer(key) {
                if matches!(next, Next::Keep) {
                    continue;
                }
                return next;
            }
            let Some(conn) = self.web.conns.get_mut(key) else {
                return Next::Keep;
            };
            let mut chunk = [0u8; 4096];
            match conn.stream.read(&mut chunk) {
                Ok(0) => return Next::Close,
                Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // A TLS handshake reply may wait in the engine.
                    return match conn.stream.flush_pending() {
                        Ok(true) => Next::Keep,
                        Ok(false) => self.http_want_write(key, true),
                        Err(_) => Next::Close,
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
    }

    /// Answers the head at the start of the buffer, if it is whole; `None` when it is not yet.
    fn http_answer(&mut self, key: usize) -> Option<Next> {
        let conn = self.web.conns.get(key)?;
        if conn.buf.is_empty() {
            return None;
        }
        let parsed = http::parse(&conn.buf, conn.role, &self.web.origins);
        let Parsed::Request { len, route, close } = parsed else {
            return None;
        };
        let requests = conn.requests + 1;
        let close = close || requests >= MAX_HTTP_REQUESTS || self.shell.shutting_down;
        let mut upgrade = false;
        let mut close_after = close;
        let answer = match route {
            Route::Asset {
                path,
                head_only,
                if_none_match,
            } => page::respond(&path, head_only, if_none_match.as_deref(), close),
            Route::Metrics { head_only } => {
                let body = self.render_metrics();
                let extra = format!("Content-Type: {CONTENT_TYPE}\r\nCache-Control: no-store\r\n");
                let mut out = http::head(Status::Ok, &extra, Some(body.len()), close);
                if !head_only {
                    out.extend_from_slice(body.as_bytes());
                }
                out
            }
            Route::Health => http::text(Status::Ok, "", "ok\n", false, close),
            Route::Ready => match self.not_ready() {
                None => http::text(Status::Ok, "", "ready\n", false, close),
                Some(why) => http::text(Status::Unavailable, "", &format!("{why}\n"), false, close),
            },
            Route::Upgrade { accept } => {
                upgrade = true;
                close_after = false;
                http::switching(&accept)
            }
            Route::Refuse(status) => {
                close_after = true;
                http::refusal(status)
            }
        };
        self.shell.metrics.http_requests += 1;
        let conn = self.web.conns.get_mut(key)?;
        conn.requests = requests;
        let len = len.min(conn.buf.len());
        if upgrade {
            // The bytes after the head are frames: kept for the WebSocket stream.
            conn.buf.drain(..len);
        } else if close_after {
            conn.buf = Vec::new();
        } else {
            conn.buf.drain(..len);
        }
        conn.out = answer;
        conn.sent = 0;
        conn.upgrade = upgrade;
        conn.close_after = close_after;
        // The next head's clock starts once this answer is out (`http_drive`).
        conn.deadline = None;
        Some(Next::Keep)
    }

    fn http_want_write(&mut self, key: usize, on: bool) -> Next {
        let Some(conn) = self.web.conns.get_mut(key) else {
            return Next::Keep;
        };
        if conn.writable == on {
            return Next::Keep;
        }
        conn.writable = on;
        let interest = if on {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        match self
            .poll
            .registry()
            .reregister(&mut conn.stream, Token(FIRST_HTTP + key), interest)
        {
            Ok(()) => Next::Keep,
            Err(_) => Next::Close,
        }
    }

    fn http_close(&mut self, key: usize) {
        if let Some(mut conn) = self.http_remove(key) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            log::debug!("web connection from {} closed", conn.addr);
        }
    }

    /// Takes a connection out of the slab (and its address's count).
    fn http_remove(&mut self, key: usize) -> Option<HttpConn> {
        let conn = self.web.conns.try_remove(key)?;
        let ip = conn.addr.ip();
        if let Some(n) = self.web.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.web.per_ip.remove(&ip);
            }
        }
        Some(conn)
    }

    /// The `101` is out: the connection becomes a member's.
    fn http_upgrade(&mut self, key: usize, now: Now) {
        let Some(mut conn) = self.http_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.shell.metrics.ws_upgrades += 1;
        let mut ws = WsStream::new(conn.stream, self.shell.config.max_line, &conn.buf);
        let transport = if conn.tls {
            Transport::Wss
        } else {
            Transport::Ws
        };
        if let Some(why) = self.over_limits(conn.addr) {
            // As on the plain port: one ERROR line, then the close (1013: try again later).
            let line = ServerMsg::Error {
                code: ErrorCode::ServerFull,
                text: &why,
            }
            .to_line();
            let _ = ws.write(&line);
            ws.close_with(1013);
            return;
        }
        self.register_conn(Stream::Ws(Box::new(ws)), conn.addr, transport, now);
    }

    /// Closes every HTTP connection whose head deadline has passed (with a best-effort `408`).
    pub(super) fn expire_http(&mut self, now: Instant) {
        while let Some(&(at, key, serial)) = self.web.deadlines.front() {
            if at > now {
                return;
            }
            self.web.deadlines.pop_front();
            let Some(conn) = self.web.conns.get_mut(key) else {
                continue;
            };
            if conn.serial != serial || conn.deadline != Some(at) {
                continue;
            }
            if !conn.buf.is_empty() || conn.requests == 0 {
                // A head begun (or never sent) and not finished: say why (best effort). An
                // idle kept-alive connection is closed without a word, as browsers expect.
                log::debug!(
                    "web connection from {} sent no whole head in time",
                    conn.addr
                );
                let answer = http::refusal(Status::RequestTimeout);
                let _ = conn.stream.write(&answer);
                let _ = conn.stream.flush_pending();
            }
            self.http_close(key);
        }
    }

    /// Why the server is not ready to take members, if it is not.
    fn not_ready(&self) -> Option<&'static str> {
        if self.shell.shutting_down {
            return Some("shutting down");
        }
        if self.core.cut_off_from_cluster() {
            return Some("cut off from the cluster");
        }
        None
    }

    /// The exposition of every metric.
    fn render_metrics(&self) -> String {
        let mut gauges = Gauges {
            members: self.core.online(),
            waiting: self.core.waiting(),
            queued_bytes: self.shell.queued,
            store: self.store_counters(),
            ..Gauges::default()
        };
        for (_, conn) in self.shell.conns.iter() {
            gauges.count(conn.transport);
        }
        self.shell.metrics.render(&gauges)
    }

    /// Closes the web listeners (shutdown).
    pub(super) fn close_web_listeners(&mut self) {
        for listener in [
            self.web.page.take(),
            self.web.page_tls.take(),
            self.web.metrics_listener.take(),
        ]
        .into_iter()
        .flatten()
        {
            let mut listener = listener;
            let _ = self.poll.registry().deregister(&mut listener);
        }
    }
}

impl HttpConn {
    /// Writes the pending answer: `Ok(true)` when all of it (and any TLS record) is out.
    fn flush(&mut self) -> io::Result<bool> {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.out.is_empty() {
            self.out = Vec::new();
            self.sent = 0;
        }
        self.stream.flush_pending()
    }
}

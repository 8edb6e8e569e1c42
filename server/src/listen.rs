//! The listening sockets as the operating system needs them set up: the accept backlog, the
//! send buffer every accepted connection inherits, and the open-file limit `--max-clients`
//! needs, and the [`Plan`] of every listener the flags ask for, bound in one place. Called by
//! the binary before the reactor starts; decides nothing about members.

use std::io;
use std::net::{SocketAddr, TcpListener};

use crate::config::LISTEN_BACKLOG;
use crate::tls_config::TlsFiles;
use crate::web::http::OriginPolicy;
use crate::{Listeners, TlsListener, WebListeners};

/// Binds the listener with [`LISTEN_BACKLOG`] (socket2: std has no way to set the backlog) and,
/// unless `send_buffer` is 0, that send buffer size, which Linux gives every accepted connection.
pub fn bind(addr: SocketAddr, send_buffer: usize) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // `[::]:PORT` serves IPv4 too, whatever net.ipv6.bindv6only says.
        socket.set_only_v6(false)?;
    }
    if send_buffer > 0 {
        socket.set_send_buffer_size(send_buffer)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Raises the open-file soft limit as far as `--max-clients` needs, up to the hard limit.
pub fn raise_fd_limit(max_clients: usize) {
    // Connections plus the listener, stdin, stdout, stderr, epoll, signal pipe, spare, log.
    let want = max_clients as u64 + 32;
    match rlimit::increase_nofile_limit(want) {
        Ok(got) if got < want => log::warn!(
            "open-file limit is {got}, below the {want} that --max-clients {max_clients} needs; \
             connections past it are refused"
        ),
        Ok(_) => {}
        Err(e) => log::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// Where the server listens, as the flags ask: every address, the origins whose pages may open
/// a WebSocket, and the certificate files of the TLS listeners.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// `--listen` (`None`: `--listen off`).
    pub plain: Option<SocketAddr>,
    /// `--tls-listen`.
    pub tls: Option<SocketAddr>,
    /// `--irc-listen`.
    pub irc: Option<SocketAddr>,
    /// `--irc-tls-listen`.
    pub irc_tls: Option<SocketAddr>,
    /// `--http-listen`.
    pub http: Option<SocketAddr>,
    /// `--http-tls-listen`.
    pub http_tls: Option<SocketAddr>,
    /// `--metrics-listen`.
    pub metrics: Option<SocketAddr>,
    /// `--http-origin` (empty: the page's own host).
    pub origins: Vec<String>,
    /// `--tls-cert` and `--tls-key`.
    pub tls_files: Option<TlsFiles>,
}

/// Why the listeners could not be set up.
#[derive(Debug)]
pub enum PlanError {
    /// The flags ask for something impossible (a usage error).
    Usage(String),
    /// A certificate could not be loaded (a usage error: the files are the operator's).
    Certificate(String),
    /// An address could not be bound.
    Bind(String),
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::Usage(s) | PlanError::Certificate(s) | PlanError::Bind(s) => f.write_str(s),
        }
    }
}

impl Plan {
    /// Checks what no single flag can: that some listener serves the chat (`--listen off` needs
    /// another). TLS files without a TLS listener are refused by `Config::validate`.
    pub fn check(&self) -> Result<(), PlanError> {
        let any_tls = self.tls.is_some() || self.http_tls.is_some() || self.irc_tls.is_some();
        // The metrics listener alone serves nobody a chat.
        if self.plain.is_none() && !(any_tls || self.http.is_some() || self.irc.is_some()) {
            return Err(PlanError::Usage(
                "--listen off needs --tls-listen, --http-listen, --http-tls-listen, --irc-listen \
                 or --irc-tls-listen: at least one listener"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Loads the certificate and binds every listener (all of them before any is announced, so
    /// a printed address always works), giving the `listening on ...` lines to print.
    pub fn bind_all(&self, send_buffer: usize) -> Result<(Listeners, Vec<String>), PlanError> {
        self.check()?;
        let tls_files = match &self.tls_files {
            Some(files) => Some((
                files.clone(),
                files
                    .load()
                    .map_err(|e| PlanError::Certificate(e.to_string()))?,
            )),
            None => None,
        };
        let mut listeners = Listeners {
            plain: None,
            tls: None,
            web: WebListeners::default(),
            irc: None,
            irc_tls: None,
        };
        let mut announce = Vec::new();
        let mut bind_one = |addr: Option<SocketAddr>, what: &str| -> Result<_, PlanError> {
            let Some(addr) = addr else { return Ok(None) };
            let listener = bind(addr, send_buffer)
                .map_err(|e| PlanError::Bind(format!("cannot listen on {addr}: {e}")))?;
            let local = listener
                .local_addr()
                .map_err(|e| PlanError::Bind(format!("cannot read the listening address: {e}")))?;
            announce.push(match what {
                "" => format!("listening on {local}"),
                _ => format!("listening on {local} ({what})"),
            });
            Ok(Some(listener))
        };
        listeners.plain = bind_one(self.plain, "")?;
        // The line protocol's and IRC's TLS listeners share `Listeners::tls`'s certificate.
        let tls_listener = bind_one(self.tls, "TLS")?;
        listeners.irc = bind_one(self.irc, "IRC")?;
        listeners.irc_tls = bind_one(self.irc_tls, "IRC, TLS")?;
        listeners.web.page = bind_one(self.http, "HTTP")?;
        listeners.web.page_tls = bind_one(self.http_tls, "HTTPS")?;
        listeners.web.metrics = bind_one(self.metrics, "metrics")?;
        if !self.origins.is_empty() {
            listeners.web.origins = OriginPolicy::List(self.origins.clone());
        }
        if let Some((files, config)) = tls_files {
            if self.tls.is_some() || self.irc_tls.is_some() {
                listeners.tls = Some(TlsListener {
                    listener: tls_listener,
                    files,
                    config,
                });
            } else {
                listeners.web.tls = Some((files, config));
            }
        }
        Ok((listeners, announce))
    }
}

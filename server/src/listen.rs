//! The listening sockets as the operating system needs them set up: the accept backlog, the
//! send buffer every accepted connection inherits, and the open-file limit `--max-clients`
//! needs. Called by the binary before the reactor starts; decides nothing about members.

use std::io;
use std::net::{SocketAddr, TcpListener};

use crate::config::LISTEN_BACKLOG;

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

//! Test helpers shared by the workspace's integration tests: start the real `chat-server`,
//! talk to it over real sockets with deadlines, read its resource use from `/proc`, and make
//! sure a test that needs many descriptors gets them. A dev-only crate (`publish = false`):
//! test crates list it under `[dev-dependencies]` and nothing else links it.
//!
//! Every wait is a read or a poll with a deadline, never a bare sleep, so a broken server makes a
//! test fail with a message instead of hanging. Helpers that assert are `#[track_caller]`, so a
//! failure points at the test's line. Nothing here talks to anything but loopback addresses, and
//! nothing starts anything but the binaries under test (and the `kill`, `ss` or `prlimit` a test
//! asks for).
//!
//! # Layout
//! - [`server`]: [`Server`], the real binary on port 0 with a piped console, killed and waited
//!   for on drop; [`ServerBuilder`] for flags, console, wrappers; [`server_bin`] and
//!   [`target_bin`] find the binaries.
//! - [`client`]: [`Client`], a line connection with deadline reads that checks every line
//!   against the wire grammar (optionally from a chosen loopback source, `127.0.0.2`, to act as
//!   another host); [`Peer`], a raw socket2 connection (small receive buffer, reset on close).
//! - [`member`]: a member over any byte stream, TLS (rustls, handshake finished) or plain.
//! - [`proc`]: the server's descriptors, memory, CPU and signal mask from `/proc`, and waiting
//!   for the descriptor count to settle.
//! - [`limits`]: raising the open-file limit; tests that need many descriptors fail unless
//!   [`limits::ALLOW_SKIP`] is set.
//! - [`room`](mod@room): a room of members logged in at once, marker messages that prove
//!   nothing else arrived, `/who`, and joins from other loopback hosts.
//! - [`healthy`]: members that chat in the background and check they get everything in order.
//! - [`pipe`]: a child's output (console, client screen) as lines awaited with a deadline.
//! - [`ws`]: a hand-made WebSocket member (raw handshake, frames masked or not, deadline
//!   reads) and raw HTTP requests, for the web listener's tests.
//! - [`pki`]: certificates made at test time: a private authority, server certificates it
//!   signs, self-signed and expired ones, and a rustls client configuration trusting it.
//! - [`redis`]: a `redis-server` of a test's own, for the cluster's tests.
//! - [`misc`]: a lock between heavy and light tests, a seeded random generator, a failure
//!   collector for many threads, filler text, a temporary directory removed on drop.
// Test helpers fail the test by panicking: an unwrap here is an assertion.
#![allow(clippy::unwrap_used)]

pub mod client;
pub mod healthy;
pub mod limits;
pub mod member;
pub mod misc;
pub mod pipe;
pub mod pki;
pub mod proc;
pub mod redis;
pub mod room;
pub mod server;
pub mod ws;

use std::time::Duration;

pub use client::{check_grammar, collect_leaves, has_control, skip_to, Client, End, Peer};
pub use healthy::{HealthReport, Healthy};
pub use limits::{ensure_nofile, nofile_limits, raise_nofile, require_nofile, ALLOW_SKIP};
pub use member::{
    plain, relay, tcp, tcp_from, tls, tls_over, try_tls_over, Member, MemberEnd, TlsMember,
};
pub use misc::{filler, heavy, light, Failures, Rng, TempDir, TestLock};
pub use pipe::{pipe_lines, PipeLines};
pub use pki::{CertPair, Pki, TestCa, LOCAL_NAMES};
pub use proc::{
    await_fds, expect_alive, expect_fds_back, expect_memory_bounded, fd_baseline, fd_count,
    fd_list, ignores_sigpipe, listen_backlog, listening_ports, peak_rss_kib, rss_bytes, rss_kib,
    status_kib, FAULT_RSS_BUDGET_KIB, SETTLE,
};
pub use room::{
    churn_once, expect_online, host, join_from, login_v3, marker, marker_as, offer_from, room,
    send_tiny_and_sync, send_tiny_and_sync_v3,
};
pub use server::{server_bin, target_bin, Console, Output, Server, ServerBuilder};

/// How long a test waits for one expected line (from a socket or the console). Generous because
/// two cores are shared with builds; a correct server answers in milliseconds.
pub const TIMEOUT: Duration = Duration::from_secs(5);

//! `chat-load`: a load generator for `chat-server` and for IRC servers, the instrument our
//! performance figures (docs/PERFORMANCE.md) come from.
//!
//! One thread drives every connection through one mio poll, so the generator's own cost per
//! delivery is a read, a parse and a few counters; its CPU time is reported beside the server's
//! so a reader can tell which of the two was the limit.
//!
//! # Layout
//! - [`config`]: the command line and the validated [`config::Config`].
//! - [`engine`]: the reactor: connects, admits, sends, receives, checks, measures.
//! - [`text`]: the load message text (sender, sequence number, send time).
//! - [`irc`]: the client side of IRC: line parsing and the few lines sent.
//! - [`order`]: per-receiver loss, duplicate and order bookkeeping.
//! - [`stats`]: the latency histogram and its percentiles.
//! - [`procfs`]: CPU seconds and memory of a process from `/proc`.
//! - [`tls`]: the TLS client configuration of `--tls` members.
//! - [`ws`]: the client side of WebSocket for `--ws` members (upgrade, frames).
//! - [`report`]: the figures, as a table or one JSON object.
//! - [`metrics`]: the server's store counters, read from its metrics endpoint.
//! - [`resume`]: the resume storm (`--scenario resume-storm`), a loop of its own.

pub mod config;
pub mod engine;
pub mod irc;
pub mod metrics;
pub mod order;
pub mod procfs;
pub mod report;
pub mod resume;
pub mod stats;
pub mod text;
pub mod tls;
pub mod ws;

/// Raises this process's open-file soft limit to its hard limit, so N members fit; returns the
/// limit now in force.
///
/// Uses the `rlimit` crate: a safe wrapper over `setrlimit`, since the workspace denies
/// `unsafe_code` and calling `libc::setrlimit` directly would need it.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

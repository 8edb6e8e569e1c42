//! The resume storm (`--scenario resume-storm`): N members join with `HELLO 3` and keep the
//! `TOKEN` each is given; once the room has been quiet for [`QUIET`], every socket is cut at
//! once (closed unread, so the kernel resets most of them, as a network cut does), and every
//! member reconnects and sends `RESUME <name> <token> <last-id>`. A member is back when its
//! `WELCOME` came and its replay ended (the `INFO online` line). Reported: the time from the cut
//! until the last member was back (`resume_s`), the server's CPU over the storm, and the `JOIN`
//! or `LEAVE` lines members saw meanwhile (the contract says none: a resumed member never left).
//!
//! A loop of its own beside the engine's (whose phases are about messages): one mio poll, at
//! most `--parallel` connections being opened or resumed at once, one shared read buffer, no
//! sleeps. Chat protocol over plain TCP only.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_common::framing::{RawFrame, RawLineFramer};
use chat_common::protocol::v3::split_tags;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::config::Config;
use crate::procfs::{self, Sample};
use crate::report::Report;

/// Longest line accepted from the server; longer ones are counted as foreign and skipped.
const MAX_LINE: usize = 16 * 1024;
/// Size of the one read buffer all members share.
const READ_CHUNK: usize = 64 * 1024;
/// Events handled per poll.
const EVENTS: usize = 1024;
/// How long nothing must arrive, once every member holds its token, before the cut: the JOIN
/// notices of the joins are all read, so the storm measures resumes only.
pub const QUIET: Duration = Duration::from_millis(300);

/// Where one member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// No connection (before the join, and right after the cut).
    Idle,
    /// `connect` in progress.
    Connecting,
    /// `HELLO 3` and the name sent: waiting for `WELCOME`.
    Joining,
    /// Welcomed: waiting for `TOKEN`.
    AwaitToken,
    /// In the room with a token.
    In,
    /// `HELLO 3` and `RESUME` sent: waiting for `WELCOME`.
    Resuming,
    /// Welcomed again: reading the replay until `INFO online`.
    Replaying,
    /// Back in the room.
    Back,
    /// Refused, cut by the server or failed to connect.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Join,
    Quiet,
    Storm,
    Done,
}

struct Member {
    name: String,
    stream: Option<TcpStream>,
    st: St,
    lines: RawLineFramer,
    /// Bytes not yet written (a few dozen: the hello and the name or `RESUME`).
    out: Vec<u8>,
    token: Option<String>,
    /// The id of the last tagged line received (`-` in `RESUME` when none).
    last_id: Option<String>,
}

/// The counters a line can change.
#[derive(Default)]
struct Counts {
    joined: usize,
    back: usize,
    failed: usize,
    refused: u64,
    server_errors: u64,
    foreign: u64,
    notices: u64,
    /// Members whose connect or resume is under way (bounded by `--parallel`).
    in_flight: usize,
}

/// Runs the storm that `cfg` describes.
pub fn run(cfg: &Config) -> io::Result<Report> {
    let mut report = Report::new(cfg);
    let clock = Instant::now();
    let deadline = clock + cfg.timeout;
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(EVENTS);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut members: Vec<Member> = (0..cfg.members)
        .map(|i| Member {
            name: format!("{}{i}", cfg.prefix),
            stream: None,
            st: St::Idle,
            lines: RawLineFramer::new(MAX_LINE),
            out: Vec::new(),
            token: None,
            last_id: None,
        })
        .collect();
    let server_start = cfg.server_pid.and_then(|p| procfs::sample(Some(p)));
    if cfg.server_pid.is_some() && server_start.is_none() {
        report.error = Some("cannot read /proc of the server".into());
        return Ok(report);
    }
    let mut c = Counts::default();
    let mut phase = Phase::Join;
    let mut next = 0usize;
    let mut last_byte = Instant::now();
    let mut t_joined = None;
    let mut t_cut = None;
    let mut t_last_back = None;
    let mut storm_server: Option<Sample> = None;
    let mut storm_store = None;
    let mut error: Option<String> = None;

    while phase != Phase::Done {
        // Open connections up to --parallel in flight: joins, then (after the cut) resumes.
        if matches!(phase, Phase::Join | Phase::Storm) {
            while next < members.len() && c.in_flight < cfg.parallel {
                let addr = cfg.addrs[next % cfg.addrs.len()];
                open(&mut poll, &mut members[next], next, addr, &mut c);
                next += 1;
            }
        }
        let now = Instant::now();
        if now >= deadline {
            report.timed_out = true;
            error = Some(format!(
                "timed out after {:?} in phase {phase:?}",
                cfg.timeout
            ));
            break;
        }
        if c.failed > 0 {
            error = Some(format!("{} members failed or were refused", c.failed));
            break;
        }
        if now.duration_since(last_byte) >= cfg.stall && phase != Phase::Quiet {
            report.stalled = true;
            error = Some(format!(
                "nothing arrived for {:?} in phase {phase:?}",
                cfg.stall
            ));
            break;
        }
        match phase {
            Phase::Join if c.joined == members.len() => {
                t_joined = Some(now);
                phase = Phase::Quiet;
            }
            Phase::Quiet if now.duration_since(last_byte) >= QUIET => {
                // The cut: every socket closed at once, then every member resumes.
                storm_store = cfg.metrics.and_then(crate::metrics::scrape);
                storm_server = cfg.server_pid.and_then(|p| procfs::sample(Some(p)));
                for m in &mut members {
                    m.stream = None;
                    m.st = St::Idle;
                    m.lines = RawLineFramer::new(MAX_LINE);
                    m.out.clear();
                }
                t_cut = Some(Instant::now());
                last_byte = Instant::now();
                next = 0;
                phase = Phase::Storm;
                continue;
            }
            Phase::Storm if c.back == members.len() => {
                phase = Phase::Done;
                continue;
            }
            _ => {}
        }
        let wait = match phase {
            Phase::Quiet => QUIET.saturating_sub(now.duration_since(last_byte)),
            _ => cfg.stall.saturating_sub(now.duration_since(last_byte)),
        }
        .min(deadline.saturating_duration_since(now))
        .max(Duration::from_millis(1));
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(m) = members.get_mut(i) else {
                continue;
            };
            if m.stream.is_none() {
                continue;
            }
            if m.st == St::Connecting {
                match connected(m) {
                    Ok(true) => {
                        let hello = match (phase, &m.token) {
                            (Phase::Storm, Some(token)) => format!(
                                "HELLO 3\nRESUME {} {token} {}\n",
                                m.name,
                                m.last_id.as_deref().unwrap_or("-")
                            ),
                            _ => format!("HELLO 3\n{}\n", m.name),
                        };
                        m.out.extend_from_slice(hello.as_bytes());
                        m.st = if phase == Phase::Storm {
                            St::Resuming
                        } else {
                            St::Joining
                        };
                    }
                    Ok(false) => continue,
                    Err(_) => {
                        fail(m, &mut c);
                        continue;
                    }
                }
            }
            if !m.out.is_empty() && flush(m).is_err() {
                fail(m, &mut c);
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() {
                let got = read(m, &mut buf, &mut c);
                if got > 0 {
                    last_byte = Instant::now();
                }
            }
        }
        // The last member is back in this round: the storm ends now.
        if phase == Phase::Storm && c.back == members.len() && t_last_back.is_none() {
            t_last_back = Some(Instant::now());
        }
    }

    let server_end = cfg.server_pid.and_then(|p| procfs::sample(Some(p)));
    if storm_store.is_some() {
        let end = cfg.metrics.and_then(crate::metrics::scrape);
        crate::metrics::fill(&mut report, storm_store, end);
    }
    report.wall_s = clock.elapsed().as_secs_f64();
    report.admitted = c.joined;
    report.failed = c.failed;
    report.refused = c.refused;
    report.server_errors = c.server_errors;
    report.foreign = c.foreign;
    if let Some(t) = t_joined {
        report.admit_s = t.duration_since(clock).as_secs_f64();
    }
    report.resumed = Some(c.back as u64);
    report.resume_notices = Some(c.notices);
    if let (Some(cut), Some(back)) = (t_cut, t_last_back) {
        if c.back == members.len() {
            report.resume_s = Some(back.duration_since(cut).as_secs_f64());
        }
    }
    if let (Some(a), Some(b)) = (server_start, server_end) {
        report.server_cpu_s = Some(b.cpu_since(&a));
        report.server_rss_before_kib = Some(a.rss_kib);
        report.server_rss_after_kib = Some(b.rss_kib);
        report.server_hwm_kib = Some(b.hwm_kib);
    }
    if let (Some(a), Some(b)) = (storm_server, server_end) {
        report.server_cpu_send_s = Some(b.cpu_since(&a));
    }
    if error.is_none() && c.notices > 0 {
        error = Some(format!(
            "members saw {} JOIN/LEAVE lines during the storm (a resumed member never left)",
            c.notices
        ));
    }
    report.ok = error.is_none() && report.resume_s.is_some() && c.foreign == 0;
    report.error = error;
    Ok(report)
}

/// Starts member `i`'s connection.
fn open(poll: &mut Poll, m: &mut Member, i: usize, addr: SocketAddr, c: &mut Counts) {
    let mut stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(_) => return fail(m, c),
    };
    if poll
        .registry()
        .register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )
        .is_err()
    {
        return fail(m, c);
    }
    m.stream = Some(stream);
    m.st = St::Connecting;
    c.in_flight += 1;
}

/// Whether a non-blocking connect has finished (`Err`: it failed).
fn connected(m: &mut Member) -> io::Result<bool> {
    let Some(s) = m.stream.as_mut() else {
        return Err(io::ErrorKind::NotConnected.into());
    };
    if let Some(e) = s.take_error()? {
        return Err(e);
    }
    match s.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes what waits, until the socket would block.
fn flush(m: &mut Member) -> io::Result<()> {
    let Some(s) = m.stream.as_mut() else {
        return Ok(());
    };
    while !m.out.is_empty() {
        match s.write(&m.out) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                m.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads until the socket would block, handling each line; the bytes read.
fn read(m: &mut Member, buf: &mut [u8], c: &mut Counts) -> usize {
    let mut total = 0;
    loop {
        let Some(s) = m.stream.as_mut() else {
            return total;
        };
        let n = match s.read(buf) {
            Ok(0) => {
                fail(m, c);
                return total;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                fail(m, c);
                return total;
            }
        };
        total += n;
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let Member {
                lines,
                st,
                token,
                last_id,
                ..
            } = m;
            let (used, frame) = lines.feed(rest);
            match frame {
                Some(RawFrame::Line(line)) => match std::str::from_utf8(line) {
                    Ok(line) => on_line(line, st, token, last_id, c),
                    Err(_) => c.foreign += 1,
                },
                Some(RawFrame::TooLong) => c.foreign += 1,
                None => {}
            }
            rest = &rest[used..];
        }
        if m.st == St::Failed {
            m.stream = None;
            return total;
        }
    }
}

/// What one line from the server means for its member.
fn on_line(
    line: &str,
    st: &mut St,
    token: &mut Option<String>,
    last_id: &mut Option<String>,
    c: &mut Counts,
) {
    let (tags, body) = split_tags(line);
    if let Some(id) = tags.as_ref().and_then(|t| t.id()) {
        *last_id = Some(id.to_owned());
    }
    let refused = body.starts_with("DENIED") || body.starts_with("BYE");
    let error = body.starts_with("ERROR");
    if refused || error {
        if refused {
            c.refused += 1;
        } else {
            c.server_errors += 1;
        }
        if *st != St::Failed {
            c.failed += 1;
            if matches!(*st, St::Connecting | St::Joining | St::Resuming) {
                c.in_flight = c.in_flight.saturating_sub(1);
            }
        }
        *st = St::Failed;
        return;
    }
    let notice = body.starts_with("JOIN ") || body.starts_with("LEAVE ");
    match *st {
        St::Joining if body.starts_with("WELCOME ") => {
            *st = St::AwaitToken;
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        St::AwaitToken if body.starts_with("TOKEN ") => {
            *token = Some(body["TOKEN ".len()..].to_owned());
            *st = St::In;
            c.joined += 1;
        }
        St::Resuming if body.starts_with("WELCOME ") => {
            *st = St::Replaying;
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        St::Resuming if notice => c.notices += 1,
        St::Replaying if body.starts_with("TOKEN ") => {
            *token = Some(body["TOKEN ".len()..].to_owned());
        }
        St::Replaying if body.starts_with("INFO online") => {
            *st = St::Back;
            c.back += 1;
        }
        St::Replaying | St::Back if notice => c.notices += 1,
        _ => {}
    }
}

/// A member's connection failed or was closed by the server.
fn fail(m: &mut Member, c: &mut Counts) {
    if m.st != St::Failed {
        if matches!(m.st, St::Connecting | St::Joining | St::Resuming) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        c.failed += 1;
    }
    m.st = St::Failed;
    m.stream = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_goes_from_join_to_back_and_counts_notices() {
        let mut c = Counts::default();
        let (mut st, mut token, mut last) = (St::Joining, None, None);
        c.in_flight = 1;
        for line in ["NAME? ", "HELLO 3", "WELCOME u0 1", "TOKEN abc"] {
            on_line(line, &mut st, &mut token, &mut last, &mut c);
        }
        assert_eq!(
            (st, token.as_deref(), c.joined, c.in_flight),
            (St::In, Some("abc"), 1, 0)
        );
        on_line(
            "@id=e-7;time=2026-12-06T00:00:00.000Z MSG u1 - hi",
            &mut st,
            &mut token,
            &mut last,
            &mut c,
        );
        assert_eq!(last.as_deref(), Some("e-7"));
        st = St::Resuming;
        for line in ["WELCOME u0 2", "TOKEN def", "GAP some were missed"] {
            on_line(line, &mut st, &mut token, &mut last, &mut c);
        }
        assert_eq!((st, token.as_deref()), (St::Replaying, Some("def")));
        on_line(
            "INFO online (2): u0, u1",
            &mut st,
            &mut token,
            &mut last,
            &mut c,
        );
        assert_eq!((st, c.back), (St::Back, 1));
        on_line("LEAVE u1 quit", &mut st, &mut token, &mut last, &mut c);
        assert_eq!(c.notices, 1);
        on_line(
            "ERROR bad-token no such token",
            &mut st,
            &mut token,
            &mut last,
            &mut c,
        );
        assert_eq!((st, c.failed, c.server_errors), (St::Failed, 1, 1));
    }
}

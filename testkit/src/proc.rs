//! What `/proc` says about a process under test (the server), read with the `procfs` crate as
//! chat-load does: open descriptors and what they point at, resident memory now and at its
//! peak, CPU time, the ignored-signal mask; and waiting, with a deadline, for the descriptor
//! count to settle after closes (the server notices a peer's close asynchronously).

use std::thread;
use std::time::{Duration, Instant};

use procfs::process::{FDTarget, Process};

use crate::server::Server;
use crate::TIMEOUT;

/// The process `pid`, or a failed test.
#[track_caller]
fn process(pid: u32) -> Process {
    i32::try_from(pid)
        .ok()
        .and_then(|p| Process::new(p).ok())
        .unwrap_or_else(|| panic!("process {pid} is gone"))
}

/// Number of open descriptors of process `pid` (entries of `/proc/PID/fd`).
#[track_caller]
pub fn fd_count(pid: u32) -> usize {
    process(pid)
        .fd_count()
        .unwrap_or_else(|e| panic!("cannot list /proc/{pid}/fd: {e}"))
}

/// The descriptors of `pid` and what they point at (`3:socket:[123]`), for failure messages;
/// empty when the process is gone.
pub fn fd_list(pid: u32) -> Vec<String> {
    let Some(fds) = i32::try_from(pid)
        .ok()
        .and_then(|p| Process::new(p).ok())
        .and_then(|p| p.fd().ok())
    else {
        return Vec::new();
    };
    let mut list: Vec<(i32, String)> = fds
        .flatten()
        .map(|info| {
            let target = match info.target {
                FDTarget::Path(p) => p.display().to_string(),
                FDTarget::Socket(inode) => format!("socket:[{inode}]"),
                FDTarget::Pipe(inode) => format!("pipe:[{inode}]"),
                other => format!("{other:?}"),
            };
            (info.fd, target)
        })
        .collect();
    list.sort();
    list.into_iter().map(|(n, t)| format!("{n}:{t}")).collect()
}

/// A `/proc/PID/status` memory field in KiB (`VmRSS`, `VmHWM`, `VmPeak`, `VmSize`, `VmData`),
/// or `None` when the process is gone or the field is unknown.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = Process::new(i32::try_from(pid).ok()?).ok()?.status().ok()?;
    match field {
        "VmRSS" => status.vmrss,
        "VmHWM" => status.vmhwm,
        "VmPeak" => status.vmpeak,
        "VmSize" => status.vmsize,
        "VmData" => status.vmdata,
        _ => None,
    }
}

/// Resident memory of `pid` now, in KiB.
#[track_caller]
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS").unwrap_or_else(|| panic!("process {pid} is gone"))
}

/// Peak resident memory of `pid` so far (`VmHWM`), in KiB.
#[track_caller]
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM").unwrap_or_else(|| panic!("process {pid} is gone"))
}

/// CPU time `pid` has used so far (user + system), from `/proc/PID/stat` (clock ticks).
#[track_caller]
pub fn cpu_time(pid: u32) -> Duration {
    let stat = process(pid)
        .stat()
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/stat: {e}"));
    let ticks = stat.utime + stat.stime;
    Duration::from_secs_f64(ticks as f64 / procfs::ticks_per_second() as f64)
}

/// Whether `pid` ignores SIGPIPE (bit 13 of the `SigIgn` mask in `/proc/PID/status`).
#[track_caller]
pub fn ignores_sigpipe(pid: u32) -> bool {
    let status = process(pid)
        .status()
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    status.sigign & (1 << (13 - 1)) != 0
}

/// Polls `pid`'s descriptor count until it is at most `want`, and returns it: closing is
/// asynchronous (the server notices a peer's close on its next event, or at a linger deadline),
/// so a test waits for the count to settle instead of sleeping a guessed time. Fails with both
/// counts when `within` passes first.
#[track_caller]
pub fn await_fds(pid: u32, want: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let now = fd_count(pid);
        if now <= want {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "server descriptors did not settle: {now} open, want {want} (after {within:?})"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The server's descriptor count at rest: measured while one probe connection is open and has
/// its prompt (so the reactor has finished setting up), minus the probe.
#[track_caller]
pub fn fd_baseline(server: &Server) -> usize {
    let probe = server.connect_prompted();
    let with_probe = fd_count(server.pid());
    drop(probe);
    await_fds(server.pid(), with_probe - 1, TIMEOUT)
}

/// Asserts that the server's descriptors come back to exactly `baseline` within `within`.
#[track_caller]
pub fn expect_fds_back(server: &Server, baseline: usize, within: Duration) {
    let settled = await_fds(server.pid(), baseline, within);
    assert_eq!(
        settled, baseline,
        "server holds {settled} descriptors, baseline {baseline}"
    );
}

/// Asserts the server process is still running (it did not crash or get killed by a signal).
#[track_caller]
pub fn expect_alive(server: &Server) {
    assert!(
        std::fs::metadata(format!("/proc/{}/fd", server.pid())).is_ok()
            && status_kib(server.pid(), "VmRSS").is_some(),
        "the server process {} is gone; stderr:\n{}",
        server.pid(),
        server.stderr_text()
    );
}

/// How long the server may take to notice closes and free descriptors.
pub const SETTLE: Duration = Duration::from_secs(10);

/// Memory a fault may add to the server's peak, in KiB: "tens of MiB whatever peers send".
pub const FAULT_RSS_BUDGET_KIB: u64 = 24 * 1024;

/// Asserts the server's peak memory grew by less than `budget_kib` since `before_kib`.
#[track_caller]
pub fn expect_memory_bounded(server: &Server, what: &str, before_kib: u64, budget_kib: u64) {
    let peak = peak_rss_kib(server.pid());
    let now = rss_kib(server.pid());
    eprintln!("{what}: RSS before {before_kib} KiB, peak {peak} KiB, now {now} KiB");
    assert!(
        peak.saturating_sub(before_kib) < budget_kib,
        "{what}: peak RSS {peak} KiB grew more than {budget_kib} KiB over {before_kib} KiB"
    );
}

/// Memory of the server now, in bytes.
#[track_caller]
pub fn rss_bytes(server: &Server) -> u64 {
    rss_kib(server.pid()) * 1024
}

/// The TCP ports process `pid` listens on (its listening sockets in `/proc/PID/net/tcp` and
/// `tcp6`), sorted: which listeners are really open.
#[track_caller]
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let mut inodes = std::collections::HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let Ok(target) = std::fs::read_link(fd.unwrap().path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|t| t.strip_suffix(']'))
        {
            inodes.insert(inode.to_owned());
        }
    }
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap();
        for row in text.lines().skip(1) {
            let cols: Vec<&str> = row.split_whitespace().collect();
            // local_address is cols[1] (ADDR:PORT in hex), st is cols[3], inode is cols[9].
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                let port = cols[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort_unstable();
    ports
}

/// The listen backlog of the socket listening on 127.0.0.1:`port` (Send-Q of a listening socket
/// in `ss -ltn`), or `None` when `ss` cannot tell.
pub fn listen_backlog(port: u16) -> Option<usize> {
    let out = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("LISTEN"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(fd_count(me) >= 3);
        assert!(fd_list(me).iter().any(|l| l.starts_with("0:")));
        let (rss, hwm) = (rss_kib(me), peak_rss_kib(me));
        assert!(rss > 0 && hwm >= rss, "{rss} {hwm}");
        assert_eq!(status_kib(me, "NoSuchField"), None);
        assert_eq!(status_kib(u32::MAX, "VmRSS"), None);
        let _ = cpu_time(me);
        let _ = ignores_sigpipe(me);
    }
}

//! What Linux's `/proc` says about a process: CPU seconds used and resident memory, for the
//! server under load (`--server-pid`) and for the generator itself.
//!
//! The parsers are pure functions of the file text; [`sample`] reads the files.

use std::fs;

/// The unit of `utime`/`stime` in `/proc/PID/stat`: USER_HZ, which the kernel fixes at 100 on
/// every architecture Linux exposes to user space this way (x86, arm, riscv). Hard-coded
/// rather than asking `sysconf`, which would need `unsafe` or another crate.
const USER_HZ: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// User plus system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Resident set now, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set since start, KiB (`VmHWM`).
    pub hwm_kib: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status` (`pid` None: this process); `None` when the
/// process is gone or the files are unreadable.
pub fn sample(pid: Option<u32>) -> Option<Sample> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_owned(),
    };
    let stat = fs::read_to_string(format!("{dir}/stat")).ok()?;
    let status = fs::read_to_string(format!("{dir}/status")).ok()?;
    Some(Sample {
        cpu_s: cpu_seconds(&stat)?,
        rss_kib: status_kib(&status, "VmRSS:")?,
        hwm_kib: status_kib(&status, "VmHWM:")?,
    })
}

/// CPU seconds spent busy by the whole machine (every CPU) since boot: `/proc/stat`'s first
/// line, all but idle and iowait. Its change over a run, less the server's and the generator's
/// CPU, is what other processes took: the noise in a run's figures. `None` when unreadable.
pub fn machine_busy_s() -> Option<f64> {
    machine_busy_seconds(&fs::read_to_string("/proc/stat").ok()?)
}

/// [`machine_busy_s`] from the text of `/proc/stat`.
pub fn machine_busy_seconds(stat: &str) -> Option<f64> {
    let line = stat.lines().next()?;
    let mut fields = line.split_ascii_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let v: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 8 {
        return None;
    }
    let busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    Some(busy as f64 / USER_HZ)
}

/// utime + stime, in seconds, from the text of `/proc/PID/stat`.
pub fn cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces and parentheses itself;
    // the fields after the last ')' are plain. utime and stime are fields 14 and 15, that is
    // the 12th and 13th after the name (field 3, the state, is the 1st).
    let (_, after) = stat.rsplit_once(')')?;
    let mut fields = after.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// The value of a `Key:   123 kB` line of `/proc/PID/status`, in KiB.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_even_with_odd_names() {
        let stat = "1234 (chat (serv) er) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 37 0 0 20 0 1 0 100 1000 200";
        assert_eq!(cpu_seconds(stat), Some(2.87));
        assert_eq!(cpu_seconds("1234 (x) S 1 2"), None);
        assert_eq!(cpu_seconds("garbage"), None);
    }

    #[test]
    fn parses_status() {
        let status =
            "Name:\tchat-server\nVmPeak:\t  10000 kB\nVmHWM:\t    4321 kB\nVmRSS:\t    4000 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(4321));
        assert_eq!(status_kib(status, "VmRSS:"), Some(4000));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn parses_machine_busy_time() {
        let stat = "cpu  100 5 50 1000 20 3 7 2 0 0\ncpu0 50 2 25 500 10 1 3 1 0 0\n";
        assert_eq!(machine_busy_seconds(stat), Some(1.67));
        assert_eq!(machine_busy_seconds("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(machine_busy_seconds("cpu 1 2 3"), None);
        assert!(machine_busy_s().is_some());
    }

    #[test]
    fn samples_this_process() {
        let s = sample(None).unwrap();
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
        assert!(s.cpu_s >= 0.0);
    }
}

//! What Linux's `/proc` says about a process: CPU seconds used and resident memory, for the
//! server under load (`--server-pid`) and for the generator itself.
//!
//! CPU time comes from `/proc/PID/task/*/schedstat` (nanoseconds on the CPU, per thread) when
//! the kernel has it, else from `utime + stime` in `/proc/PID/stat`, which counts 10 ms ticks:
//! a 0.2 s phase would carry up to 5 % error from the ticks alone. The parsers are pure
//! functions of the file text; [`sample`] reads the files.

use std::fs;

/// The unit of `utime`/`stime` in `/proc/PID/stat`: USER_HZ, which the kernel fixes at 100 on
/// every architecture Linux exposes to user space this way (x86, arm, riscv). Hard-coded
/// rather than asking `sysconf`, which would need `unsafe` or another crate.
const USER_HZ: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// User plus system CPU seconds since the process started, from `/proc/PID/stat` (10 ms
    /// ticks).
    pub stat_cpu_s: f64,
    /// Seconds on the CPU of the threads alive now, from their `schedstat` (nanoseconds);
    /// `None` when the kernel has no schedstat files.
    pub sched_cpu_s: Option<f64>,
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
        stat_cpu_s: cpu_seconds(&stat)?,
        sched_cpu_s: threads_run_ns(&dir).map(|ns| ns as f64 / 1e9),
        rss_kib: status_kib(&status, "VmRSS:")?,
        hwm_kib: status_kib(&status, "VmHWM:")?,
    })
}

impl Sample {
    /// CPU seconds used between `earlier` and this sample: from schedstat when both have it,
    /// else from the ticks. Never negative (a thread that exits takes its schedstat time with
    /// it, so the sum over live threads can shrink).
    pub fn cpu_since(&self, earlier: &Sample) -> f64 {
        let d = match (earlier.sched_cpu_s, self.sched_cpu_s) {
            (Some(a), Some(b)) => b - a,
            _ => self.stat_cpu_s - earlier.stat_cpu_s,
        };
        d.max(0.0)
    }
}

/// The sum of the first field of `DIR/task/*/schedstat`: nanoseconds every live thread of the
/// process has run. `None` when the task directory or any of its schedstat files cannot be
/// read (no `CONFIG_SCHED_INFO`), except for a thread that exited while being listed.
fn threads_run_ns(dir: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut any = false;
    for entry in fs::read_dir(format!("{dir}/task")).ok()? {
        let mut path = entry.ok()?.path();
        path.push("schedstat");
        match fs::read_to_string(&path) {
            Ok(text) => {
                total = total.saturating_add(schedstat_run_ns(&text)?);
                any = true;
            }
            // The thread exited between the listing and the read: its directory is gone too.
            Err(_) if path.parent().is_some_and(|task| !task.exists()) => {}
            Err(_) => return None,
        }
    }
    any.then_some(total)
}

/// The first field of a `schedstat` file (`run_ns wait_ns timeslices`): nanoseconds on the CPU.
pub fn schedstat_run_ns(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().next()?.parse().ok()
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
    fn parses_schedstat() {
        assert_eq!(
            schedstat_run_ns("350989563 67887971 42\n"),
            Some(350_989_563)
        );
        assert_eq!(schedstat_run_ns(""), None);
        assert_eq!(schedstat_run_ns("x 1 2"), None);
    }

    #[test]
    fn cpu_since_prefers_schedstat_and_never_goes_negative() {
        let at = |stat: f64, sched: Option<f64>| Sample {
            stat_cpu_s: stat,
            sched_cpu_s: sched,
            ..Sample::default()
        };
        let d = at(1.20, Some(1.234_567)).cpu_since(&at(1.00, Some(1.000_001)));
        assert!((d - 0.234_566).abs() < 1e-9, "{d}");
        // Without schedstat on either side: the ticks.
        let d = at(1.20, None).cpu_since(&at(1.00, Some(1.0)));
        assert!((d - 0.2).abs() < 1e-9, "{d}");
        // A thread exited in between: its time left the sum.
        assert_eq!(at(1.2, Some(0.5)).cpu_since(&at(1.0, Some(0.9))), 0.0);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(None).unwrap();
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
        assert!(s.stat_cpu_s >= 0.0);
        let has_schedstat = std::path::Path::new("/proc/thread-self/schedstat").exists();
        assert_eq!(s.sched_cpu_s.is_some(), has_schedstat);
    }

    #[test]
    fn schedstat_counts_nanoseconds() {
        // This thread alone: the other tests' threads come and go meanwhile.
        let read = || {
            fs::read_to_string("/proc/thread-self/schedstat")
                .ok()
                .and_then(|t| schedstat_run_ns(&t))
        };
        let Some(a) = read() else {
            return; // no schedstat on this kernel: sample falls back to the ticks
        };
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(25) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let b = read().unwrap();
        // Most of the 25 ms spun (a shared machine may preempt us for some of it).
        assert!(b - a >= 1_000_000, "{a} -> {b}");
        assert!(threads_run_ns("/proc/self").unwrap() >= b);
    }
}

//! What Linux's `/proc` says about a process: CPU seconds used and resident memory, for the
//! server under load (`--server-pid`) and for the generator itself, read with the `procfs`
//! crate (the test kit, `testkit/`, reads the server the same way).
//!
//! CPU time comes from each thread's `schedstat` (nanoseconds on the CPU) when the kernel has
//! it, else from `utime + stime` in `/proc/PID/stat`, which counts clock ticks (10 ms): a 0.2 s
//! phase would carry up to 5 % error from the ticks alone. Samples are taken a handful of times
//! per run, never per delivery, so the crate's parsing costs nothing that shows in a figure.

use procfs::process::Process;
use procfs::{CurrentSI, KernelStats};

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

/// Reads `/proc/PID/stat`, `status` and the threads' `schedstat` (`pid` None: this process);
/// `None` when the process is gone or the files are unreadable.
pub fn sample(pid: Option<u32>) -> Option<Sample> {
    let process = match pid {
        Some(p) => Process::new(i32::try_from(p).ok()?),
        None => Process::myself(),
    }
    .ok()?;
    let stat = process.stat().ok()?;
    let status = process.status().ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    Some(Sample {
        stat_cpu_s: (stat.utime + stat.stime) as f64 / ticks,
        sched_cpu_s: threads_run_ns(&process).map(|ns| ns as f64 / 1e9),
        rss_kib: status.vmrss?,
        hwm_kib: status.vmhwm?,
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

/// Nanoseconds every live thread of `process` has run: the sum of their `schedstat`. `None`
/// when the task list or a live thread's schedstat cannot be read (no `CONFIG_SCHED_INFO`); a
/// thread that exits while being listed is left out.
fn threads_run_ns(process: &Process) -> Option<u64> {
    let mut total = 0u64;
    let mut any = false;
    for task in process.tasks().ok()? {
        let Ok(task) = task else {
            continue; // exited between the listing and the open
        };
        match task.schedstat() {
            Ok(s) => {
                total = total.saturating_add(s.sum_exec_runtime);
                any = true;
            }
            // The thread exited between the listing and the read: its directory is gone too.
            Err(_)
                if !std::path::Path::new(&format!("/proc/{}/task/{}", task.pid, task.tid))
                    .exists() => {}
            Err(_) => return None,
        }
    }
    any.then_some(total)
}

/// CPU seconds spent busy by the whole machine (every CPU) since boot: `/proc/stat`'s first
/// line, all but idle and iowait. Its change over a run, less the server's and the generator's
/// CPU, is what other processes took: the noise in a run's figures. `None` when unreadable.
pub fn machine_busy_s() -> Option<f64> {
    let t = KernelStats::current().ok()?.total;
    // user nice system irq softirq steal (guest time is already in user).
    let busy = t.user
        + t.nice
        + t.system
        + t.irq.unwrap_or(0)
        + t.softirq.unwrap_or(0)
        + t.steal.unwrap_or(0);
    Some(busy as f64 / procfs::ticks_per_second() as f64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
    fn samples_this_process_and_the_machine() {
        let s = sample(None).unwrap();
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
        assert!(s.stat_cpu_s >= 0.0);
        let has_schedstat = std::path::Path::new("/proc/thread-self/schedstat").exists();
        assert_eq!(s.sched_cpu_s.is_some(), has_schedstat);
        assert!(machine_busy_s().unwrap() > 0.0);
        assert_eq!(sample(Some(u32::MAX)), None, "no such process");
    }

    #[test]
    fn schedstat_counts_nanoseconds() {
        // This thread alone: the other tests' threads come and go meanwhile.
        let me = Process::myself().unwrap();
        // /proc/thread-self links to PID/task/TID.
        let link = std::fs::read_link("/proc/thread-self").unwrap();
        let tid: i32 = link.file_name().unwrap().to_str().unwrap().parse().unwrap();
        let read = || {
            me.task_from_tid(tid)
                .and_then(|t| t.schedstat())
                .ok()
                .map(|s| s.sum_exec_runtime)
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
        assert!(threads_run_ns(&me).unwrap() >= b);
    }
}

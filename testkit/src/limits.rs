//! The open-file limit, raised with the `rlimit` crate (safe `setrlimit`; the workspace denies
//! `unsafe_code`). Children started afterwards, such as the server, inherit the raised limit.
//!
//! A test that needs thousands of descriptors calls [`require_nofile`]: when the hard limit is
//! too low it FAILS, naming the limit and the fix, unless `CHAT_ALLOW_SKIP=1` (see
//! [`ALLOW_SKIP`]) says a skip is acceptable here; then it prints `SKIPPED` and the test returns.
//! `.ci/run` raises the limit first, so in CI these tests always run.

/// The environment variable that lets a test without enough descriptors skip instead of fail:
/// `CHAT_ALLOW_SKIP=1`.
pub const ALLOW_SKIP: &str = "CHAT_ALLOW_SKIP";

/// The soft and hard limits on open files of this process.
pub fn nofile_limits() -> (u64, u64) {
    rlimit::Resource::NOFILE.get().unwrap_or((0, 0))
}

/// Raises this process's open-file soft limit to `needed` (children started later inherit it).
/// Returns the hard limit when that is too low.
pub fn raise_nofile(needed: u64) -> Result<(), u64> {
    let got = rlimit::increase_nofile_limit(needed).unwrap_or(0);
    if got >= needed {
        Ok(())
    } else {
        Err(nofile_limits().1)
    }
}

/// Makes sure this process may open `needed` files, or fails the test with a clear message.
#[track_caller]
pub fn ensure_nofile(needed: u64) {
    if let Err(hard) = raise_nofile(needed) {
        panic!(
            "this test needs {needed} open files but the hard limit is {hard}; raise it \
             (ulimit -Hn {needed}, as .ci/run does)"
        );
    }
}

/// Whether `test` may run: raises the open-file limit to `needed` and returns true; when the
/// hard limit is too low, fails the test, unless `CHAT_ALLOW_SKIP=1`, when it prints why it
/// skips and returns false (the caller returns).
#[track_caller]
pub fn require_nofile(needed: u64, test: &str) -> bool {
    let Err(hard) = raise_nofile(needed) else {
        return true;
    };
    let why = format!(
        "{test} needs {needed} open files but the hard limit is {hard}; raise it \
         (ulimit -Hn {needed}, as .ci/run does)"
    );
    if skip_allowed() {
        eprintln!("SKIPPED {why} ({ALLOW_SKIP}=1)");
        false
    } else {
        panic!("{why}, or set {ALLOW_SKIP}=1 to skip");
    }
}

/// Whether `CHAT_ALLOW_SKIP=1` is set.
pub fn skip_allowed() -> bool {
    std::env::var_os(ALLOW_SKIP).is_some_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_within_the_hard_one_is_granted() {
        let (_, hard) = nofile_limits();
        assert!(require_nofile(64.min(hard), "tiny"));
        assert!(nofile_limits().0 >= 64.min(hard));
    }

    #[test]
    fn an_impossible_limit_fails_unless_skipping_is_allowed() {
        let r = std::panic::catch_unwind(|| require_nofile(u64::MAX, "huge"));
        match r {
            Ok(ran) => assert!(!ran && skip_allowed(), "skipped only when allowed"),
            Err(e) => {
                let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
                assert!(msg.contains("CHAT_ALLOW_SKIP=1"), "{msg}");
            }
        }
    }
}

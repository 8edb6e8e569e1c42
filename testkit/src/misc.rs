//! Small helpers: a lock that keeps heavy tests apart from the others, a seeded random
//! generator whose seed a failure can print, a failure collector for many threads,
//! recognisable filler text, and a temporary directory removed on drop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

// ---- a lock between tests --------------------------------------------------------------------

/// One per test binary (each links its own copy of this crate).
static HEAVY: RwLock<()> = RwLock::new(());

/// Held by a test while it runs: light tests share it, heavy ones (thousands of sockets, load)
/// take it alone, so that on two cores a heavy test never distorts another test's timings.
#[derive(Debug)]
pub enum TestLock {
    /// Other light tests may run alongside.
    Light(RwLockReadGuard<'static, ()>),
    /// Nothing else runs alongside.
    Heavy(RwLockWriteGuard<'static, ()>),
}

/// Takes the lock for a light test. A failed (panicked) test does not poison the others.
pub fn light() -> TestLock {
    TestLock::Light(HEAVY.read().unwrap_or_else(|e| e.into_inner()))
}

/// Takes the lock for a heavy test.
pub fn heavy() -> TestLock {
    TestLock::Heavy(HEAVY.write().unwrap_or_else(|e| e.into_inner()))
}

/// A tiny deterministic random generator (xorshift64*), so runs can be replayed from the seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A seed from the clock, printed by the caller so a failure can be replayed.
    pub fn clock_seed() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Collects messages from many threads for one assertion at the end.
#[derive(Debug, Default, Clone)]
pub struct Failures(Arc<Mutex<Vec<String>>>, Arc<AtomicU64>);

impl Failures {
    /// Records one failure (the first hundred are kept, the rest only counted).
    pub fn push(&self, what: String) {
        let mut list = self.lock();
        if list.len() < 100 {
            list.push(what);
        } else {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails the test when anything was recorded (showing the first few).
    #[track_caller]
    pub fn assert_none(&self, context: &str) {
        let list = self.lock();
        assert!(
            list.is_empty(),
            "{context}: {} failures, first: {:#?}",
            list.len() as u64 + self.1.load(Ordering::Relaxed),
            &list[..list.len().min(10)]
        );
    }
}

/// A line of `len` bytes of printable ASCII, recognisable by its `tag`.
pub fn filler(tag: &str, len: usize) -> String {
    let mut s = String::with_capacity(len);
    s.push_str(tag);
    while s.len() < len {
        s.push((b'a' + (s.len() % 26) as u8) as char);
    }
    s.truncate(len);
    s
}

// ---- a temporary directory -------------------------------------------------------------------

/// A directory of one test's own under the system's temporary directory (named for the test
/// binary's process and `tag`, emptied first), removed with everything in it on drop: a
/// `--data-dir`, a control socket's folder.
#[derive(Debug)]
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Makes `chat-<tag>-<pid>`, empty.
    #[track_caller]
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("chat-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot make {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Its path as a command-line argument.
    #[track_caller]
    pub fn arg(&self) -> &str {
        self.0.to_str().expect("a temporary path in UTF-8")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

//! One server per data directory: an exclusive `flock` on `DIR/lock`, held for the process's
//! life, with the holder written inside so a second server can name it.
//!
//! Owns the lock file only. The kernel drops the lock when the holder dies, `kill -9` included,
//! so a stale file never locks anyone out; what the file says is only for the message.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "lock";

/// A held lock: dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

/// Why the directory could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; its own description of itself.
    Held {
        /// The lock file.
        path: PathBuf,
        /// What the holder wrote (`pid 1234 on host`), or `unknown` when unreadable.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { path, holder } => write!(
                f,
                "the data directory is in use by another server ({holder}; lock {})",
                path.display()
            ),
            LockError::Io { path, error } => {
                write!(f, "cannot lock {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for LockError {}

impl DirLock {
    /// Locks `dir` (which must exist) or says who holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |error| LockError::Io {
            path: path.clone(),
            error,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if e == rustix::io::Errno::WOULDBLOCK {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    path,
                    holder: if holder.is_empty() {
                        "unknown".to_owned()
                    } else {
                        holder.chars().take(200).collect()
                    },
                });
            }
            return Err(io(e.into()));
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let me = format!("chat-server pid {} on {}", std::process::id(), host.trim());
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(me.as_bytes()).map_err(io)?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_dropped_one_frees_the_directory() {
        let dir = std::env::temp_dir().join(format!("chat-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let held = DirLock::acquire(&dir).unwrap();
        match DirLock::acquire(&dir) {
            Err(LockError::Held { holder, .. }) => {
                assert!(
                    holder.contains(&format!("pid {}", std::process::id())),
                    "{holder}"
                )
            }
            other => panic!("{other:?}"),
        }
        drop(held);
        let again = DirLock::acquire(&dir).unwrap();
        assert!(again.path().ends_with(LOCK_FILE));
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

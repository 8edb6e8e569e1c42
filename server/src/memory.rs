//! Giving freed heap memory back to the system.
//!
//! glibc keeps the pages of freed memory for reuse, so after a join storm (millions of queued
//! JOIN lines, all delivered and freed) the server would keep its peak size for ever. The shell
//! calls [`give_back`] once the queues, having been large, are small again for a second.

/// Returns free heap pages to the system (glibc's `malloc_trim`); a no-op elsewhere.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks glibc's own heap under its own lock; it takes no
        // pointer from us and is safe to call at any time from the thread that owns the loop.
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

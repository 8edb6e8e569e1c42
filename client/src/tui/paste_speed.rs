//! Telling a paste from typing by speed, for terminals that do not bracket a paste (as irssi's
//! `paste_detect_time` does): a terminal writes a pasted text in one go, so its keys arrive
//! microseconds apart, where a person's are tens of milliseconds apart even at key repeat. An
//! Enter that arrives within [`PASTE_GAP`] of the key before it is part of a paste: it becomes
//! a line break in the input (the block is then sent like a bracketed paste: every line to the
//! first line's target, never run as a command, confirmed when long), instead of sending or
//! running what came before it. A person who types faster than the gap over a slow link at
//! worst sees a line break and presses Enter again: nothing is lost or run by surprise. Pure:
//! the times are the moments the key thread read each key, handed in.

use std::time::{Duration, Instant};

/// Keys closer together than this are one paste (irssi's default is 5 ms; a person's fastest
/// key repeat is about 30 ms).
pub const PASTE_GAP: Duration = Duration::from_millis(5);

/// The last key's time, to measure the next against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySpeed {
    last: Option<Instant>,
}

impl KeySpeed {
    /// No key yet.
    pub fn new() -> Self {
        KeySpeed::default()
    }

    /// A key read at `at`: whether it came so soon after the previous key that both are part
    /// of a paste.
    pub fn key(&mut self, at: Instant) -> bool {
        let fast = self
            .last
            .is_some_and(|last| at.saturating_duration_since(last) < PASTE_GAP);
        self.last = Some(at);
        fast
    }

    /// Something other than a key happened (a bracketed paste, a resize): the next key starts
    /// afresh.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_a_paste_and_typing_is_not() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let us = |n: u64| t0 + Duration::from_micros(n);
        let mut speed = KeySpeed::new();
        // Typing: "hi" then Enter, tens of milliseconds apart.
        assert!(!speed.key(ms(0)));
        assert!(!speed.key(ms(40)));
        assert!(!speed.key(ms(90)));
        // A paste of "a\n/leave\n": every key microseconds after the one before.
        assert!(!speed.key(ms(2000)));
        for i in 1..10 {
            assert!(speed.key(ms(2000) + Duration::from_micros(i * 20)), "{i}");
        }
        // Key repeat (30 ms) is typing.
        let mut speed = KeySpeed::new();
        assert!(!speed.key(us(0)));
        assert!(!speed.key(ms(30)));
        // A reset forgets the last key.
        speed.reset();
        assert!(!speed.key(ms(30) + Duration::from_micros(1)));
    }
}

//! What a session of protocol version 3 carries across connections, for the brain
//! (`brain.rs`): the version a connection speaks ([`Version`]), the token kept for a name
//! ([`SessionToken`]), and the message ids already shown ([`SeenIds`], bounded), so that a
//! resume shows every missed message once. Plain data with no socket, file or clock; the file
//! of tokens is `net/tokens.rs`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long to wait for the answer to `HELLO 3` before taking the server for a version 2 one
/// (a netcat-like server that answers nothing) and going on with the name.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Message ids remembered (shown, and which of them were the user's own), at most: a resume
/// never shows a message twice within the last this many.
pub const MAX_IDS: usize = 10_000;

/// Own lines sent in version 3 and not yet given an id by `ECHO`, at most.
pub const MAX_PENDING_ECHOES: usize = 256;

/// Which protocol version the current connection speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// Nothing said yet (`HELLO 3` goes out at the first `NAME?`).
    Unasked,
    /// `HELLO 3` was sent at `NAME? <prompt>`; the answer is awaited until `at`.
    Asked {
        /// The `NAME?` prompt.
        prompt: String,
        /// When to stop waiting.
        at: Instant,
        /// The prompt was acted on at once (the name sent right after `HELLO 3`, or asked
        /// for): only a `RESUME` must wait for the answer, since only a version 3 server
        /// takes one.
        acted: bool,
    },
    /// The server answered `HELLO 3`.
    V3,
    /// A version 1 or 2 server (it refused `HELLO`, or never answered).
    V2,
}

/// A session token kept for a name at this server (protocol version 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    /// The member's name.
    pub name: String,
    /// The secret: kept, never shown.
    pub token: String,
    /// The id of the last message this client got in that session, if known.
    pub last_id: Option<String>,
}

/// Message ids seen, bounded by [`MAX_IDS`] (the oldest forgotten first), each with whether it
/// was the user's own.
#[derive(Debug, Default)]
pub struct SeenIds {
    own: HashMap<String, bool>,
    order: VecDeque<String>,
}

impl SeenIds {
    /// Remembers `id` (and whether it was the user's own), forgetting the oldest past
    /// [`MAX_IDS`].
    pub fn insert(&mut self, id: &str, own: bool) {
        if let Some(was) = self.own.get_mut(id) {
            *was |= own;
            return;
        }
        if self.order.len() >= MAX_IDS {
            if let Some(old) = self.order.pop_front() {
                self.own.remove(&old);
            }
        }
        self.order.push_back(id.to_owned());
        self.own.insert(id.to_owned(), own);
    }

    /// Whether `id` was seen.
    pub fn contains(&self, id: &str) -> bool {
        self.own.contains_key(id)
    }
}

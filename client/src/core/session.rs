//! What a session of protocol version 3 carries across connections, for the brain
//! (`brain.rs`): the version a connection speaks ([`Version`]), the token kept for a name
//! ([`SessionToken`]), and the message ids already shown ([`SeenIds`], bounded), so that a
//! resume shows every missed message once. Plain data with no socket, file or clock; the file
//! of tokens is `net/tokens.rs`.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// How long to wait for the answer to `HELLO 3` before taking the server for a version 2 one
/// (a netcat-like server that answers nothing) and going on with the name.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Message ids remembered (shown, or given to own lines by `ECHO`), at most: a resume
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

/// A session token kept for a name at this server (protocol version 3). Its `Debug` shows
/// the token's length, never the token, so no log line or test failure can print it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken {
    /// The member's name.
    pub name: String,
    /// The secret: kept, never shown.
    pub token: String,
    /// The id of the last message this client got in that session, if known.
    pub last_id: Option<String>,
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionToken")
            .field("name", &self.name)
            .field("token", &format_args!("<{} bytes>", self.token.len()))
            .field("last_id", &self.last_id)
            .finish()
    }
}

/// Message ids already shown (or given to the user's own lines by `ECHO`), bounded by
/// [`MAX_IDS`]: the oldest are forgotten first.
#[derive(Debug, Default)]
pub struct SeenIds {
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl SeenIds {
    /// Remembers `id`, forgetting the oldest past [`MAX_IDS`].
    pub fn insert(&mut self, id: &str) {
        if self.seen.contains(id) {
            return;
        }
        if self.order.len() >= MAX_IDS {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.order.push_back(id.to_owned());
        self.seen.insert(id.to_owned());
    }

    /// Whether `id` was seen.
    pub fn contains(&self, id: &str) -> bool {
        self.seen.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A derived `Debug` printed the secret into any log line or test failure (an
    /// `Effect::SaveToken` formatted by a failing assertion, say).
    #[test]
    fn debug_shows_a_tokens_length_never_the_token() {
        let secret = "abcdefghijklmnopqrstuvwxyz012345";
        let kept = SessionToken {
            name: "alice".to_owned(),
            token: secret.to_owned(),
            last_id: Some("e1-7".to_owned()),
        };
        let shown = format!("{kept:?} {kept:#?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("<32 bytes>"), "{shown}");
        assert!(shown.contains("alice") && shown.contains("e1-7"), "{shown}");
    }

    #[test]
    fn seen_ids_are_bounded_and_forget_the_oldest_first() {
        let mut ids = SeenIds::default();
        for i in 0..MAX_IDS + 3 {
            ids.insert(&format!("e-{i}"));
        }
        ids.insert("e-5");
        assert!(!ids.contains("e-0") && !ids.contains("e-2"));
        assert!(ids.contains("e-3") && ids.contains("e-5"));
        assert!(ids.contains(&format!("e-{}", MAX_IDS + 2)));
        assert_eq!(ids.order.len(), MAX_IDS);
        assert_eq!(ids.seen.len(), MAX_IDS);
    }
}

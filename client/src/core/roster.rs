//! The names the client believes are online, for Tab completion: learned from `JOIN`, `LEAVE`,
//! `NICK` and the `/who` reply (`INFO online (N): a, b, c`, continued on further INFO lines). It is a
//! hint and nothing more: a wrong guess only makes completion offer a stale name, and the
//! server stays the authority. Pure; the network thread updates it, the line editor reads it.

use std::collections::BTreeMap;

use chat_common::protocol::{validate_name, ServerMsg};

/// The most names kept: a completion list, not a directory. Bounded whatever a server sends.
pub const MAX_NAMES: usize = 10_000;

/// Names seen online, without regard to case (as the server compares them).
#[derive(Debug, Default, Clone)]
pub struct Roster {
    /// Lowercased name -> name as the server spells it. At most [`MAX_NAMES`] entries.
    names: BTreeMap<String, String>,
    /// The user's own name, never offered.
    me: Option<String>,
    /// How many names of a `/who` reply are still to come on continuation lines.
    who_remaining: usize,
}

impl Roster {
    /// An empty roster.
    pub fn new() -> Self {
        Roster::default()
    }

    /// Sets the user's own name (from `WELCOME`); it is never offered for completion.
    pub fn set_me(&mut self, name: &str) {
        self.me = Some(name.to_ascii_lowercase());
    }

    fn add(&mut self, name: &str) {
        if self.names.len() < MAX_NAMES || self.names.contains_key(&name.to_ascii_lowercase()) {
            self.names
                .insert(name.to_ascii_lowercase(), name.to_owned());
        }
    }

    /// Learns what a server line says about who is online.
    pub fn observe(&mut self, msg: &ServerMsg<'_>) {
        match *msg {
            ServerMsg::Join { name } => self.add(name),
            ServerMsg::Nick { old, new } => {
                self.names.remove(&old.to_ascii_lowercase());
                self.add(new);
            }
            ServerMsg::Leave { name, .. } => {
                self.names.remove(&name.to_ascii_lowercase());
            }
            ServerMsg::Info { text } => self.observe_info(text),
            _ => {}
        }
    }

    fn observe_info(&mut self, text: &str) {
        if let Some((total, names)) = parse_who_header(text) {
            for name in &names {
                self.add(name);
            }
            self.who_remaining = total.saturating_sub(names.len());
        } else if self.who_remaining > 0 {
            match parse_names(text) {
                Some(names) => {
                    for name in &names {
                        self.add(name);
                    }
                    self.who_remaining = self.who_remaining.saturating_sub(names.len());
                }
                None => self.who_remaining = 0,
            }
        }
    }

    /// Names starting with `prefix` (without regard to case), the user's own left out, sorted.
    pub fn matching(&self, prefix: &str) -> Vec<String> {
        let prefix = prefix.to_ascii_lowercase();
        self.names
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .filter(|(key, _)| self.me.as_deref() != Some(key.as_str()))
            .map(|(_, name)| name.clone())
            .collect()
    }
}

/// Parses the first line of a `/who` reply, `online (N): a, b, c`, into N and the names on it.
pub fn parse_who_header(text: &str) -> Option<(usize, Vec<&str>)> {
    let rest = text.strip_prefix("online (")?;
    let (count, names) = rest.split_once("):")?;
    let count = count.parse().ok()?;
    Some((count, parse_names(names)?))
}

/// Parses `a, b, c` (a trailing comma allowed) into names; `None` when any item is no name.
fn parse_names(text: &str) -> Option<Vec<&str>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.trim_end_matches(',')
        .split(',')
        .map(|item| {
            let item = item.trim();
            validate_name(item).ok().filter(|n| n.len() == item.len())
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chat_common::protocol::LeaveReason;

    fn info(text: &str) -> ServerMsg<'_> {
        ServerMsg::Info { text }
    }

    #[test]
    fn join_and_leave_are_tracked_without_regard_to_case() {
        let mut r = Roster::new();
        r.observe(&ServerMsg::Join { name: "Alice" });
        r.observe(&ServerMsg::Join { name: "albert" });
        assert_eq!(r.matching("al"), ["albert", "Alice"]);
        assert_eq!(r.matching("AL"), ["albert", "Alice"]);
        r.observe(&ServerMsg::Leave {
            name: "ALICE",
            reason: LeaveReason::Kicked,
        });
        assert_eq!(r.matching(""), ["albert"]);
    }

    #[test]
    fn renames_replace_the_old_name() {
        let mut r = Roster::new();
        r.observe(&ServerMsg::Join { name: "alice" });
        r.observe(&ServerMsg::Nick {
            old: "Alice",
            new: "al",
        });
        assert_eq!(r.matching("a"), ["al"]);
    }

    #[test]
    fn who_reply_fills_the_roster_and_skips_me() {
        let mut r = Roster::new();
        r.set_me("Bob");
        r.observe(&info("online (3): alice, bob, carol"));
        assert_eq!(r.matching(""), ["alice", "carol"]);
    }

    #[test]
    fn who_reply_continues_on_further_lines() {
        let mut r = Roster::new();
        r.observe(&info("online (4): a1, a2,"));
        r.observe(&info("a3, a4"));
        r.observe(&info("a5 is not part of it"));
        r.observe(&info("a6"));
        assert_eq!(r.matching("a"), ["a1", "a2", "a3", "a4"]);
    }

    #[test]
    fn other_info_lines_are_ignored() {
        let mut r = Roster::new();
        r.observe(&info("operator: hello, world"));
        r.observe(&info("online (x): a"));
        r.observe(&info("online (1): not a name!"));
        assert!(r.matching("").is_empty());
    }

    #[test]
    fn the_roster_is_bounded() {
        let mut r = Roster::new();
        for i in 0..MAX_NAMES + 10 {
            r.observe(&ServerMsg::Join {
                name: &format!("n{i}"),
            });
        }
        assert_eq!(r.matching("").len(), MAX_NAMES);
    }
}

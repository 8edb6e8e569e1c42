//! A `/who` reply is one entry however many lines the server splits it into: the server sends
//! `INFO online (65): a, b, ...` and then continuation `INFO` lines of further names (each
//! starting with a space) until every name is listed. [`WhoReply`] gathers them into one text,
//! `online (65): a, b, c, ...`, with exactly one `, ` between names, so the pane shows one
//! entry (wrapped at its width) instead of four with stray spaces. Bounded by the count the
//! header announces and by [`MAX_TEXT`]. Pure.

use crate::core::roster::parse_who_header;

/// The longest reply text kept, in bytes (10,000 names of 32 bytes and their separators).
pub const MAX_TEXT: usize = 10_000 * 34 + 64;

/// One `/who` reply being gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoReply {
    total: usize,
    names: usize,
    text: String,
}

/// What a line did to a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The line continued the reply; more names are due.
    More,
    /// The line completed the reply.
    Done,
    /// The line is not part of the reply (the reply is left as it was: the server moved on).
    NotPart,
}

impl WhoReply {
    /// A reply starting with the header `text` (`online (N): a, b`), or `None` when `text` is
    /// no `/who` header.
    pub fn start(text: &str) -> Option<WhoReply> {
        let (total, names) = parse_who_header(text)?;
        let mut reply = WhoReply {
            total,
            names: 0,
            text: format!("online ({total}):"),
        };
        reply.add(&names);
        Some(reply)
    }

    fn add(&mut self, names: &[&str]) {
        for name in names {
            if self.text.len() + name.len() + 2 > MAX_TEXT {
                break;
            }
            self.text.push_str(if self.names == 0 { " " } else { ", " });
            self.text.push_str(name);
            self.names += 1;
        }
    }

    /// Whether every announced name has arrived.
    pub fn is_complete(&self) -> bool {
        self.names >= self.total
    }

    /// Feeds the next `INFO` text.
    pub fn feed(&mut self, text: &str) -> Step {
        if self.is_complete() {
            return Step::NotPart;
        }
        let Some(names) = parse_names(text) else {
            return Step::NotPart;
        };
        if names.is_empty() {
            return Step::NotPart;
        }
        self.add(&names);
        if self.is_complete() {
            Step::Done
        } else {
            Step::More
        }
    }

    /// The reply as one line.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// `a, b, c` (a leading space and a trailing comma allowed) as names, or `None` when any item
/// is not a name.
fn parse_names(text: &str) -> Option<Vec<&str>> {
    let text = text.trim().trim_end_matches(',');
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',')
        .map(|item| {
            let item = item.trim();
            chat_common::protocol::validate_name(item)
                .ok()
                .filter(|n| n.len() == item.len())
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sixty_five_members_are_one_entry_without_stray_spaces() {
        let names: Vec<String> = (0..65).map(|i| format!("member_{i:02}_x")).collect();
        // As the server splits it: a header and lines that start with a space.
        let mut reply =
            WhoReply::start(&format!("online (65): {}", names[..20].join(", "))).unwrap();
        assert_eq!(
            reply.feed(&format!(" {}", names[20..40].join(", "))),
            Step::More
        );
        assert_eq!(
            reply.feed(&format!(" {}", names[40..60].join(", "))),
            Step::More
        );
        assert_eq!(
            reply.feed(&format!(" {}", names[60..].join(", "))),
            Step::Done
        );
        assert_eq!(reply.text(), format!("online (65): {}", names.join(", ")));
        assert!(!reply.text().contains("  "));
        assert_eq!(reply.feed(" more_names"), Step::NotPart);
    }

    #[test]
    fn a_short_reply_is_complete_at_once() {
        let reply = WhoReply::start("online (2): al, bob").unwrap();
        assert!(reply.is_complete());
        assert_eq!(reply.text(), "online (2): al, bob");
        assert!(WhoReply::start("operator: hi").is_none());
    }

    #[test]
    fn other_notices_are_not_swallowed() {
        let mut reply = WhoReply::start("online (3): a,").unwrap();
        assert_eq!(reply.feed("the operator says hello, all"), Step::NotPart);
        assert_eq!(reply.feed(""), Step::NotPart);
        assert_eq!(reply.feed(" b, c"), Step::Done);
        assert_eq!(reply.text(), "online (3): a, b, c");
    }

    #[test]
    fn a_lying_count_is_bounded() {
        let mut reply = WhoReply::start("online (99999999): a").unwrap();
        let line = vec!["abcdefghijklmnopqrstuvwxyz012345"; 100].join(", ");
        for _ in 0..200 {
            reply.feed(&line);
        }
        assert!(reply.text().len() <= MAX_TEXT);
    }
}

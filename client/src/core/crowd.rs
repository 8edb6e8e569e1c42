//! A run of joins and leaves with nothing said in between is one row, not one row each: 60
//! members joining at once show as `60 joined: alice, bob, carol, dave, erin and 55 more`,
//! the way Quassel and weechat's smart filter keep a busy room readable. [`Crowd`] holds one
//! run (bounded: the first [`SHOWN`] names of each kind and counts); the caller keeps it
//! beside the row it updates and starts a new one when anything else is shown or after
//! [`RUN_SECONDS`]. A single join or leave reads as before (`bob joined`, `bob left (quit)`).
//! Pure.

/// Names listed by name in a row; the rest are counted.
pub const SHOWN: usize = 5;
/// A run older than this many seconds is closed: later joins start a new row with its own
/// time.
pub const RUN_SECONDS: u64 = 60;

/// One run of joins and leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Crowd {
    joined: Vec<String>,
    joins: usize,
    left: Vec<String>,
    leaves: usize,
    /// The single leave's reason, kept while the run is one leave.
    reason: Option<String>,
}

impl Crowd {
    /// An empty run.
    pub fn new() -> Self {
        Crowd::default()
    }

    /// `name` joined.
    pub fn join(&mut self, name: &str) {
        self.joins += 1;
        if self.joined.len() < SHOWN {
            self.joined.push(name.to_owned());
        }
    }

    /// `name` left, for `reason` (`left`, `quit`, `kicked`, `dropped`).
    pub fn leave(&mut self, name: &str, reason: &str) {
        self.leaves += 1;
        self.reason = (self.leaves == 1).then(|| reason.to_owned());
        if self.left.len() < SHOWN {
            self.left.push(name.to_owned());
        }
    }

    /// How many joins and leaves the run holds.
    pub fn len(&self) -> usize {
        self.joins + self.leaves
    }

    /// Whether the run is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row's text.
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        if self.joins == 1 && self.leaves == 0 {
            return format!("{} joined", self.joined.concat());
        }
        if self.leaves == 1 && self.joins == 0 {
            return match self.reason.as_deref() {
                None | Some("left") => format!("{} left", self.left.concat()),
                Some(reason) => format!("{} left ({reason})", self.left.concat()),
            };
        }
        if self.joins > 0 {
            parts.push(format!(
                "{} joined: {}",
                self.joins,
                list(&self.joined, self.joins)
            ));
        }
        if self.leaves > 0 {
            parts.push(format!(
                "{} left: {}",
                self.leaves,
                list(&self.left, self.leaves)
            ));
        }
        parts.join(" · ")
    }
}

/// `a, b, c and 57 more` (or `a, b and c` when all are named).
fn list(names: &[String], total: usize) -> String {
    let more = total.saturating_sub(names.len());
    match (names.split_last(), more) {
        (None, _) => format!("{total}"),
        (Some((only, [])), 0) => only.clone(),
        (Some((last, rest)), 0) => format!("{} and {last}", rest.join(", ")),
        (Some(_), more) => format!("{} and {more} more", names.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_join_or_leave_reads_as_before() {
        let mut c = Crowd::new();
        assert!(c.is_empty());
        c.join("bob");
        assert_eq!(c.text(), "bob joined");
        let mut c = Crowd::new();
        c.leave("bob", "quit");
        assert_eq!(c.text(), "bob left (quit)");
        let mut c = Crowd::new();
        c.leave("bob", "left");
        assert_eq!(c.text(), "bob left");
    }

    #[test]
    fn sixty_joins_are_one_row() {
        let mut c = Crowd::new();
        for i in 0..60 {
            c.join(&format!("m{i}"));
        }
        assert_eq!(c.len(), 60);
        assert_eq!(c.text(), "60 joined: m0, m1, m2, m3, m4 and 55 more");
        c.leave("m3", "quit");
        c.leave("zed", "kicked");
        assert_eq!(
            c.text(),
            "60 joined: m0, m1, m2, m3, m4 and 55 more · 2 left: m3 and zed"
        );
    }

    #[test]
    fn a_few_are_all_named() {
        let mut c = Crowd::new();
        c.join("a");
        c.join("b");
        assert_eq!(c.text(), "2 joined: a and b");
        c.join("c");
        assert_eq!(c.text(), "3 joined: a, b and c");
    }
}

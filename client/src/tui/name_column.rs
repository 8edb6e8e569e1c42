//! The name column: how wide it is and how each name is shown in it. A name is shown whole, or
//! shortened to a form that no other name the client knows can share, so
//! `trustedadminbot_real` and `trustedadminbot_fake` can never look alike (`trustedadminb…l`
//! and `trustedadminb…e`), with colors or without. The column is as wide as the widest name
//! of the members present (within a quarter of the pane), not the widest ever seen; names of
//! members who left, still in the scrollback, are shortened to it, and stay unique because
//! every known name takes part. When no unique shortening fits, the column widens until one
//! does (at the latest when every name is whole). Names are ASCII (`A-Z a-z 0-9 _ -`, at
//! most 32), so a byte is a cell; `…` cannot appear in a name, so a shortened form is never
//! mistaken for a whole name. Pure: names in, a [`NameColumn`] out; the caller rebuilds it
//! when the names change or the pane is resized.

use std::collections::{BTreeSet, HashMap};

use chat_common::protocol::MAX_NAME_LEN;

/// The narrowest name column.
pub const MIN_WIDTH: usize = 6;
/// The shortest form a shortened name takes (two characters and `…`).
pub const MIN_FORM: usize = 3;
/// The mark of a shortened name.
pub const ELLIPSIS: char = '…';

/// How a name is framed in the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// `alice`: a room message.
    Plain,
    /// `*alice*`: a private from alice.
    Private,
    /// `→*alice*`: your private to alice.
    PrivateTo,
}

impl Frame {
    const ALL: [Frame; 3] = [Frame::Plain, Frame::Private, Frame::PrivateTo];

    /// The cells the frame adds around the name.
    pub fn extra(self) -> usize {
        match self {
            Frame::Plain => 0,
            Frame::Private => 2,
            Frame::PrivateTo => 3,
        }
    }

    fn index(self) -> usize {
        match self {
            Frame::Plain => 0,
            Frame::Private => 1,
            Frame::PrivateTo => 2,
        }
    }

    fn wrap(self, name: &str) -> String {
        match self {
            Frame::Plain => name.to_owned(),
            Frame::Private => format!("*{name}*"),
            Frame::PrivateTo => format!("→*{name}*"),
        }
    }
}

/// The widest the name column should be for a pane `pane` cells wide: a quarter of it, at
/// least [`MIN_WIDTH`], and never more than a whole name in its widest frame needs.
pub fn cap_for(pane: usize) -> usize {
    (pane / 4).clamp(MIN_WIDTH, MAX_NAME_LEN + Frame::PrivateTo.extra())
}

/// The column's width and every shortened form, for one set of names and one pane width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameColumn {
    width: usize,
    /// Per frame: name -> its shortened form, for names that do not fit whole.
    forms: [HashMap<String, String>; 3],
}

impl NameColumn {
    /// Lays out the column: `known` is every name that can appear (the members present, you,
    /// and the senders of the messages kept), `widest_present` the length of the widest name
    /// present now (you included), `cap` the most the column should take ([`cap_for`]).
    pub fn new<'a>(
        known: impl IntoIterator<Item = &'a str>,
        widest_present: usize,
        cap: usize,
    ) -> NameColumn {
        let known: BTreeSet<&str> = known.into_iter().collect();
        let want = widest_present.clamp(MIN_WIDTH, cap.max(MIN_WIDTH));
        // The column must let every frame's forms be unique: widen until they all are.
        // MIN_WIDTH leaves every frame at least MIN_FORM cells, so budgets never underflow.
        let mut width = want;
        let mut forms: [HashMap<String, String>; 3] = Default::default();
        'widen: loop {
            for frame in Frame::ALL {
                let budget = width - frame.extra();
                let (found, map) = unique_forms(&known, budget);
                if found > budget {
                    width = found + frame.extra();
                    continue 'widen;
                }
                forms[frame.index()] = map;
            }
            break;
        }
        NameColumn { width, forms }
    }

    /// The column's width in cells.
    pub fn width(&self) -> usize {
        self.width
    }

    /// `name` as the column shows it in `frame`: whole when it fits, else its unique form.
    /// A name the column was not built with is shown whole (never cut to a form it might
    /// share); the caller rebuilds the column when names change.
    pub fn show(&self, name: &str, frame: Frame) -> String {
        match self.forms[frame.index()].get(name) {
            Some(form) => frame.wrap(form),
            None => frame.wrap(name),
        }
    }
}

/// The form of `name` with `head` bytes from its start, `…`, and `tail` bytes from its end.
fn form(name: &str, head: usize, tail: usize) -> String {
    let mut out = String::with_capacity(head + tail + ELLIPSIS.len_utf8());
    out.push_str(name.get(..head).unwrap_or(name));
    out.push(ELLIPSIS);
    out.push_str(name.get(name.len().saturating_sub(tail)..).unwrap_or(""));
    out
}

/// The shortest forms at `budget` cells or, when some name has none that is unique there, at
/// the first budget above it where every name has one. Returns that budget and the forms of
/// the names longer than it. Prefers keeping the start of a name (`trustedadminb…l`), then
/// moves the cut left one character at a time (`trustedadmin…al`).
fn unique_forms(known: &BTreeSet<&str>, budget: usize) -> (usize, HashMap<String, String>) {
    let mut budget = budget.max(MIN_FORM);
    loop {
        let long: Vec<&str> = known
            .iter()
            .copied()
            .filter(|n| n.len() > budget && n.is_ascii())
            .collect();
        if long.is_empty() {
            return (budget, HashMap::new());
        }
        // How many names each candidate form stands for.
        let keep = budget - 1;
        let mut count: HashMap<String, u32> = HashMap::new();
        for name in &long {
            for tail in 0..=keep {
                *count.entry(form(name, keep - tail, tail)).or_default() += 1;
            }
        }
        let mut forms = HashMap::with_capacity(long.len());
        let all = long.iter().all(|name| {
            (0..=keep)
                .map(|tail| form(name, keep - tail, tail))
                .find(|f| count.get(f) == Some(&1))
                .map(|f| forms.insert((*name).to_owned(), f))
                .is_some()
        });
        if all {
            return (budget, forms);
        }
        budget += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn column(names: &[&str], widest: usize, cap: usize) -> NameColumn {
        NameColumn::new(names.iter().copied(), widest, cap)
    }

    /// No two names share a shown form, in any frame, and no form is wider than the column.
    fn assert_unique(c: &NameColumn, names: &[&str]) {
        for frame in Frame::ALL {
            let mut seen = HashMap::new();
            for name in names {
                let shown = c.show(name, frame);
                assert!(
                    shown.chars().count() <= c.width(),
                    "{shown:?} wider than {}",
                    c.width()
                );
                if let Some(other) = seen.insert(shown.clone(), *name) {
                    panic!("{name} and {other} both show as {shown:?}");
                }
            }
        }
    }

    #[test]
    fn look_alike_names_never_show_alike() {
        let names = ["trustedadminbot_real", "trustedadminbot_fake", "bob"];
        let c = column(&names, 20, 16);
        assert_eq!(c.width(), 16);
        assert_eq!(
            c.show("trustedadminbot_real", Frame::Plain),
            "trustedadminbo…l"
        );
        assert_eq!(
            c.show("trustedadminbot_fake", Frame::Plain),
            "trustedadminbo…e"
        );
        assert_eq!(c.show("bob", Frame::Plain), "bob");
        assert_eq!(
            c.show("trustedadminbot_real", Frame::Private),
            "*trustedadmin…l*"
        );
        assert_unique(&c, &names);
    }

    #[test]
    fn the_column_follows_the_names_present() {
        // Only short names present: a narrow column, whatever was seen before.
        let c = column(&["al", "bo", "a_very_long_departed_name"], 3, 20);
        assert_eq!(c.width(), MIN_WIDTH);
        assert_eq!(c.show("a_very_long_departed_name", Frame::Plain), "a_ver…");
        // A long name present: as wide as it, up to the cap.
        assert_eq!(column(&["al", "twelve_chars"], 12, 20).width(), 12);
        assert_eq!(column(&["al", "twelve_chars"], 12, 8).width(), 8);
    }

    #[test]
    fn whole_names_when_the_pane_is_wide() {
        let long = "x".repeat(32);
        let c = column(&[&long, "bob"], 32, cap_for(200));
        assert_eq!(c.show(&long, Frame::Plain), long);
        assert_eq!(c.width(), 32);
        assert_eq!(cap_for(200), 35);
        assert_eq!(cap_for(20), MIN_WIDTH);
        assert_eq!(cap_for(80), 20);
    }

    #[test]
    fn the_column_widens_when_no_short_form_is_unique() {
        // Every split of six cells is shared by these two: the column must widen.
        let names = ["aaaaaaaaab", "aaaaaaaaaab"];
        let c = column(&names, 11, 6);
        assert!(c.width() > 6, "{}", c.width());
        assert_unique(&c, &names);
    }

    #[test]
    fn unique_with_many_members_coming_and_going() {
        // Names sharing long prefixes and suffixes, as a forger would pick them.
        let mut names: Vec<String> = Vec::new();
        for i in 0..40 {
            names.push(format!("trustedadminbot_{i:02}_real"));
            names.push(format!("trustedadmin{i:02}bot_real"));
        }
        names.push("x".repeat(32));
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        for cap in [MIN_WIDTH, 8, 10, 16, 20, 35] {
            for n in [1, 2, 3, 10, 41, refs.len()] {
                let c = column(&refs[..n], 32, cap);
                assert_unique(&c, &refs[..n]);
            }
        }
    }

    #[test]
    fn a_name_unknown_to_the_column_is_shown_whole() {
        let c = column(&["bob"], 3, 6);
        assert_eq!(
            c.show("someone_new_and_long", Frame::Plain),
            "someone_new_and_long"
        );
        assert_eq!(c.show("bob", Frame::PrivateTo), "→*bob*");
    }
}

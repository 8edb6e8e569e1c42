//! The room: who is a member, who is waiting for the operator, and which names are taken.
//!
//! Names are unique without regard to ASCII case across members *and* waiting joins, so a name
//! is reserved the moment it is accepted. The room stores slab keys only; the reactor owns the
//! connections and does the fan-out over [`Room::members`]. Nothing here does I/O.

use std::collections::{HashMap, VecDeque};

/// Members, waiting joins and the names they hold.
#[derive(Debug, Default)]
pub struct Room {
    /// Lowercased name -> slab key of the member or waiting join holding it.
    names: HashMap<Box<str>, usize>,
    /// Slab keys of members, in no particular order (removal swaps the last one in).
    members: Vec<usize>,
    /// Slab key -> index in `members`.
    positions: HashMap<usize, usize>,
    /// Slab keys of waiting joins, oldest first. Bounded by `--max-pending`.
    pending: VecDeque<usize>,
}

fn fold(name: &str) -> Box<str> {
    name.to_ascii_lowercase().into_boxed_str()
}

impl Room {
    /// Who holds `name` (member or waiting), without regard to case.
    pub fn holder(&self, name: &str) -> Option<usize> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.names.get(&fold(name)).copied()
        } else {
            self.names.get(name).copied()
        }
    }

    /// Reserves `name` for a waiting join `key`, oldest last. The caller checked it is free.
    pub fn add_pending(&mut self, name: &str, key: usize) {
        self.names.insert(fold(name), key);
        self.pending.push_back(key);
    }

    /// Moves a waiting join into the room (or adds a member directly, with `--auto-approve`).
    pub fn admit(&mut self, name: &str, key: usize) {
        self.pending.retain(|&k| k != key);
        self.names.insert(fold(name), key);
        self.positions.insert(key, self.members.len());
        self.members.push(key);
    }

    /// Forgets `key` (member or waiting) and frees its name.
    pub fn remove(&mut self, name: &str, key: usize) {
        let folded = fold(name);
        if self.names.get(&folded) == Some(&key) {
            self.names.remove(&folded);
        }
        if let Some(pos) = self.positions.remove(&key) {
            self.members.swap_remove(pos);
            if let Some(&moved) = self.members.get(pos) {
                self.positions.insert(moved, pos);
            }
        } else {
            self.pending.retain(|&k| k != key);
        }
    }

    /// Slab keys of the members.
    pub fn members(&self) -> &[usize] {
        &self.members
    }

    /// Slab keys of the waiting joins, oldest first.
    pub fn pending(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.pending.iter().copied()
    }

    /// The oldest waiting join.
    pub fn oldest_pending(&self) -> Option<usize> {
        self.pending.front().copied()
    }

    /// Number of members.
    pub fn online(&self) -> usize {
        self.members.len()
    }

    /// Number of waiting joins.
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_without_regard_to_case_across_members_and_pending() {
        let mut room = Room::default();
        room.add_pending("Alice", 1);
        assert_eq!(room.holder("alice"), Some(1));
        assert_eq!(room.holder("ALICE"), Some(1));
        room.admit("Alice", 1);
        assert_eq!(room.holder("aLiCe"), Some(1));
        assert_eq!(room.waiting(), 0);
        assert_eq!(room.online(), 1);
    }

    #[test]
    fn removal_keeps_the_member_list_consistent() {
        let mut room = Room::default();
        for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
            room.admit(n, i);
        }
        room.remove("a", 0);
        room.remove("c", 2);
        let mut left = room.members().to_vec();
        left.sort_unstable();
        assert_eq!(left, vec![1, 3]);
        room.remove("d", 3);
        room.remove("b", 1);
        assert_eq!(room.online(), 0);
        assert_eq!(room.holder("b"), None);
    }

    #[test]
    fn pending_is_oldest_first() {
        let mut room = Room::default();
        room.add_pending("x", 5);
        room.add_pending("y", 6);
        assert_eq!(room.oldest_pending(), Some(5));
        room.remove("x", 5);
        assert_eq!(room.oldest_pending(), Some(6));
        assert_eq!(room.pending().collect::<Vec<_>>(), vec![6]);
    }
}

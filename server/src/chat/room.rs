//! The room's index: which names are taken, who is a member, who is waiting for the operator.
//!
//! Names are unique without regard to ASCII case across members *and* waiting joins, so a name
//! is reserved the moment it is accepted. The room stores connection ids only; the core owns
//! the sessions and decides; the shell does the fan-out over [`Room::members`]. Nothing here
//! does I/O.

use std::collections::{HashMap, VecDeque};

use super::ConnId;

/// Members, waiting joins and the names they hold.
#[derive(Debug, Default)]
pub struct Room {
    /// Lowercased name -> the member or waiting join holding it.
    names: HashMap<Box<str>, ConnId>,
    /// Members, in no particular order (removal swaps the last one in).
    members: Vec<ConnId>,
    /// Slab key -> index in `members`.
    positions: HashMap<usize, usize>,
    /// Waiting joins, oldest first. Bounded by `--max-pending`.
    pending: VecDeque<ConnId>,
}

fn fold(name: &str) -> Box<str> {
    name.to_ascii_lowercase().into_boxed_str()
}

impl Room {
    /// Who holds `name` (member or waiting), without regard to case.
    pub fn holder(&self, name: &str) -> Option<ConnId> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.names.get(&fold(name)).copied()
        } else {
            self.names.get(name).copied()
        }
    }

    /// Reserves `name` for a waiting join, oldest last. The caller checked it is free.
    pub fn add_pending(&mut self, name: &str, id: ConnId) {
        self.names.insert(fold(name), id);
        self.pending.push_back(id);
    }

    /// Moves a waiting join into the room (or adds a member directly, with `--auto-approve`).
    pub fn admit(&mut self, name: &str, id: ConnId) {
        self.pending.retain(|&k| k != id);
        self.names.insert(fold(name), id);
        self.positions.insert(id.key, self.members.len());
        self.members.push(id);
    }

    /// Moves `id`'s name from `old` to `new` (the caller checked `new` is free or `id`'s own).
    pub fn rename(&mut self, old: &str, new: &str, id: ConnId) {
        let folded = fold(old);
        if self.names.get(&folded) == Some(&id) {
            self.names.remove(&folded);
        }
        self.names.insert(fold(new), id);
    }

    /// Forgets `id` (member or waiting) and frees its name.
    pub fn remove(&mut self, name: &str, id: ConnId) {
        let folded = fold(name);
        if self.names.get(&folded) == Some(&id) {
            self.names.remove(&folded);
        }
        if let Some(pos) = self.positions.get(&id.key).copied() {
            if self.members.get(pos) == Some(&id) {
                self.positions.remove(&id.key);
                self.members.swap_remove(pos);
                if let Some(moved) = self.members.get(pos) {
                    self.positions.insert(moved.key, pos);
                }
                return;
            }
        }
        self.pending.retain(|&k| k != id);
    }

    /// The members.
    pub fn members(&self) -> &[ConnId] {
        &self.members
    }

    /// The waiting joins, oldest first.
    pub fn pending(&self) -> impl ExactSizeIterator<Item = ConnId> + '_ {
        self.pending.iter().copied()
    }

    /// The oldest waiting join.
    pub fn oldest_pending(&self) -> Option<ConnId> {
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

    fn id(key: usize) -> ConnId {
        ConnId {
            key,
            serial: key as u64 + 100,
        }
    }

    #[test]
    fn names_are_unique_without_regard_to_case_across_members_and_pending() {
        let mut room = Room::default();
        room.add_pending("Alice", id(1));
        assert_eq!(room.holder("alice"), Some(id(1)));
        assert_eq!(room.holder("ALICE"), Some(id(1)));
        room.admit("Alice", id(1));
        assert_eq!(room.holder("aLiCe"), Some(id(1)));
        assert_eq!(room.waiting(), 0);
        assert_eq!(room.online(), 1);
    }

    #[test]
    fn removal_keeps_the_member_list_consistent() {
        let mut room = Room::default();
        for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
            room.admit(n, id(i));
        }
        room.remove("a", id(0));
        room.remove("c", id(2));
        let mut left: Vec<usize> = room.members().iter().map(|m| m.key).collect();
        left.sort_unstable();
        assert_eq!(left, vec![1, 3]);
        room.remove("d", id(3));
        room.remove("b", id(1));
        assert_eq!(room.online(), 0);
        assert_eq!(room.holder("b"), None);
    }

    #[test]
    fn a_rename_moves_the_name_and_frees_the_old_one() {
        let mut room = Room::default();
        room.admit("al", id(1));
        room.rename("al", "Bo", id(1));
        assert_eq!(room.holder("al"), None);
        assert_eq!(room.holder("bo"), Some(id(1)));
        room.rename("Bo", "bo", id(1));
        assert_eq!(room.holder("BO"), Some(id(1)));
        room.remove("bo", id(1));
        assert_eq!(room.holder("bo"), None);
        assert_eq!(room.online(), 0);
    }

    #[test]
    fn pending_is_oldest_first() {
        let mut room = Room::default();
        room.add_pending("x", id(5));
        room.add_pending("y", id(6));
        assert_eq!(room.oldest_pending(), Some(id(5)));
        room.remove("x", id(5));
        assert_eq!(room.oldest_pending(), Some(id(6)));
        assert_eq!(room.pending().collect::<Vec<_>>(), vec![id(6)]);
    }
}

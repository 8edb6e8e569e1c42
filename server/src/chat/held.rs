//! Durable before delivered: the messages of the room that wait for the store.
//!
//! Owns the order of waiting messages and which store batch each belongs to. The core holds a
//! relayed message here instead of fanning it out; at the end of the round the shell hands the
//! round's writes to the store and [`Held::seal`]s the round with the batch number; when the
//! store answers, [`Held::release`] gives back every message of that batch (and earlier ones),
//! in relay order, to be delivered, or [`Held::fail`] gives them back to be refused. Batches are
//! answered in order (one disk thread), so this is a queue. Never touches a socket or a disk.

use std::collections::VecDeque;

/// Messages waiting for the store, oldest first.
#[derive(Debug)]
pub struct Held<T> {
    /// Every waiting message, oldest first: sealed batches' first, then the open round's.
    queue: VecDeque<T>,
    /// Sealed batches, oldest first: (batch number, how many of `queue` belong to it).
    sealed: VecDeque<(u64, usize)>,
    /// Messages of the round not yet sealed (the tail of `queue`).
    open: usize,
}

impl<T> Default for Held<T> {
    fn default() -> Self {
        Held {
            queue: VecDeque::new(),
            sealed: VecDeque::new(),
            open: 0,
        }
    }
}

impl<T> Held<T> {
    /// Holds a message of the current round.
    pub fn hold(&mut self, item: T) {
        self.queue.push_back(item);
        self.open += 1;
    }

    /// Holds an item that needs no storing behind everything waiting: with the open round when
    /// it holds anything, else with the newest sealed batch (so it is given back with it even
    /// when this round hands the store nothing).
    pub fn hold_behind(&mut self, item: T) {
        match self.sealed.back_mut() {
            Some((_, count)) if self.open == 0 => {
                *count += 1;
                self.queue.push_back(item);
            }
            _ => self.hold(item),
        }
    }

    /// Whether the current round holds anything.
    pub fn round_is_empty(&self) -> bool {
        self.open == 0
    }

    /// The current round's messages are batch `batch`.
    pub fn seal(&mut self, batch: u64) {
        if self.open > 0 {
            self.sealed.push_back((batch, self.open));
            self.open = 0;
        }
    }

    /// The current round's messages, given back (the store could not take them).
    pub fn unhold_round(&mut self) -> Vec<T> {
        let at = self.queue.len() - self.open;
        self.open = 0;
        self.queue.split_off(at).into()
    }

    /// Every message of batches up to `batch`, in order: they are durable.
    pub fn release(&mut self, batch: u64) -> Vec<T> {
        let mut n = 0;
        while let Some(&(b, count)) = self.sealed.front() {
            if b > batch {
                break;
            }
            n += count;
            self.sealed.pop_front();
        }
        self.queue.drain(..n).collect()
    }

    /// The messages of batch `batch` (and of any earlier one still waiting): they are not on
    /// disk and must not be delivered.
    pub fn fail(&mut self, batch: u64) -> Vec<T> {
        self.release(batch)
    }

    /// How many messages wait.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_release_in_order_and_a_round_not_taken_comes_back() {
        let mut h = Held::default();
        h.hold(1);
        h.hold(2);
        h.seal(10);
        h.seal(11); // an empty round seals nothing
        h.hold(3);
        h.seal(12);
        h.hold(4);
        assert!(!h.round_is_empty());
        assert_eq!(h.unhold_round(), vec![4]);
        assert!(h.round_is_empty());
        h.hold(5);
        h.seal(13);
        assert_eq!(h.release(10), vec![1, 2]);
        assert_eq!(h.fail(12), vec![3]);
        assert_eq!(h.len(), 1);
        assert_eq!(h.release(13), vec![5]);
        assert!(h.is_empty());
        assert_eq!(h.release(99), Vec::<i32>::new());
    }

    #[test]
    fn an_item_held_behind_goes_with_the_open_round_or_else_the_newest_batch() {
        let mut h = Held::default();
        h.hold(1);
        h.seal(10);
        h.hold_behind(2); // no open round: rides with batch 10
        h.hold(3);
        h.hold_behind(4); // the open round: rides with it
        h.seal(11);
        assert_eq!(h.release(10), vec![1, 2]);
        assert_eq!(h.release(11), vec![3, 4]);
        assert!(h.is_empty());
    }
}

//! Per-receiver bookkeeping of what each sender's messages did on the way: new, duplicated,
//! out of order; what is missing is what was expected and never counted as new.
//!
//! One [`OrderTracker`] per receiving member keeps, for every sender, the highest sequence
//! number seen plus one, and a bit per sequence number that was skipped (a gap) and has not
//! arrived since. An in-order delivery, the only kind a correct server produces, touches just
//! the counter; the bits are written only when a gap opens or closes, so a duplicate is still
//! told from a late arrival exactly. Memory: senders x (ceil(messages / 64) + 1) x 8 bytes per
//! receiver. Pure bookkeeping, no socket.

/// What one delivery turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First arrival, in order.
    InOrder,
    /// First arrival, but a higher sequence number of the same sender arrived before it.
    Reordered,
    /// Seen before.
    Duplicate,
    /// Sender or sequence number outside the run: not a message of this run.
    Invalid,
}

/// What one receiver got from every sender.
#[derive(Debug, Clone)]
pub struct OrderTracker {
    messages: u64,
    /// 64-bit words per sender in `gaps`.
    words: usize,
    /// Bit `seq` of sender `s`, at `gaps[s * words + seq / 64]`: `seq` was skipped over (a
    /// higher one arrived) and has not arrived since. Only bits below `next[s]` are ever set.
    gaps: Vec<u64>,
    /// Per sender: highest sequence number received plus one (0: none yet).
    next: Vec<u64>,
    /// Deliveries counted as new (in order or reordered).
    pub unique: u64,
    /// Deliveries seen before.
    pub duplicated: u64,
    /// New deliveries that arrived after a higher sequence number of the same sender.
    pub out_of_order: u64,
    /// Deliveries that named no sender or sequence number of this run.
    pub invalid: u64,
}

impl OrderTracker {
    /// A tracker for `senders` senders of `messages` messages each.
    pub fn new(senders: usize, messages: u64) -> Self {
        let words = messages.div_ceil(64) as usize;
        OrderTracker {
            messages,
            words,
            gaps: vec![0; senders * words],
            next: vec![0; senders],
            unique: 0,
            duplicated: 0,
            out_of_order: 0,
            invalid: 0,
        }
    }

    /// Bytes a tracker of this size holds, for refusing runs that would not fit in memory.
    pub fn bytes_needed(senders: usize, messages: u64) -> u128 {
        senders as u128 * (messages.div_ceil(64) as u128 * 8 + 8)
    }

    /// Records the arrival of `seq` from `sender`.
    pub fn record(&mut self, sender: usize, seq: u64) -> Outcome {
        if sender >= self.next.len() || seq >= self.messages {
            self.invalid += 1;
            return Outcome::Invalid;
        }
        let next = self.next[sender];
        if seq == next {
            self.next[sender] = seq + 1;
            self.unique += 1;
            return Outcome::InOrder;
        }
        let row = sender * self.words;
        if seq > next {
            // A gap: next..seq are missing for now.
            for missing in next..seq {
                self.gaps[row + (missing / 64) as usize] |= 1 << (missing % 64);
            }
            self.next[sender] = seq + 1;
            self.unique += 1;
            return Outcome::InOrder;
        }
        let word = &mut self.gaps[row + (seq / 64) as usize];
        let bit = 1u64 << (seq % 64);
        if *word & bit == 0 {
            self.duplicated += 1;
            return Outcome::Duplicate;
        }
        *word &= !bit;
        self.unique += 1;
        self.out_of_order += 1;
        Outcome::Reordered
    }

    /// How many messages of `sender` have not arrived, of those numbered below `sent`.
    pub fn missing_from(&self, sender: usize, sent: u64) -> u64 {
        let (Some(&next), Some(row)) = (
            self.next.get(sender),
            self.gaps
                .get(sender * self.words..(sender + 1) * self.words),
        ) else {
            return 0;
        };
        let sent = sent.min(self.messages);
        let seen_up_to = next.min(sent);
        let mut gaps = 0u64;
        for (i, w) in row.iter().enumerate() {
            let base = i as u64 * 64;
            if base >= seen_up_to {
                break;
            }
            let live = seen_up_to - base;
            let mask = if live >= 64 {
                u64::MAX
            } else {
                (1u64 << live) - 1
            };
            gaps += u64::from((w & mask).count_ones());
        }
        gaps + (sent - seen_up_to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_stream_is_clean() {
        let mut t = OrderTracker::new(2, 100);
        for seq in 0..100 {
            assert_eq!(t.record(0, seq), Outcome::InOrder);
        }
        assert_eq!(t.unique, 100);
        assert_eq!((t.duplicated, t.out_of_order, t.invalid), (0, 0, 0));
        assert_eq!(t.missing_from(0, 100), 0);
        assert_eq!(t.missing_from(1, 100), 100);
        assert_eq!(t.missing_from(1, 3), 3);
    }

    #[test]
    fn tells_gaps_duplicates_and_late_arrivals_apart() {
        let mut t = OrderTracker::new(3, 130);
        assert_eq!(t.record(1, 0), Outcome::InOrder);
        assert_eq!(t.record(1, 2), Outcome::InOrder); // a gap: 1 is missing for now
        assert_eq!(t.missing_from(1, 3), 1);
        assert_eq!(t.record(1, 2), Outcome::Duplicate);
        assert_eq!(t.record(1, 1), Outcome::Reordered); // the gap filled late
        assert_eq!(t.record(1, 1), Outcome::Duplicate);
        assert_eq!(t.record(1, 129), Outcome::InOrder);
        assert_eq!(t.record(1, 64), Outcome::Reordered);
        assert_eq!(t.record(3, 0), Outcome::Invalid);
        assert_eq!(t.record(0, 130), Outcome::Invalid);
        assert_eq!(
            (t.unique, t.duplicated, t.out_of_order, t.invalid),
            (5, 2, 2, 2)
        );
        assert_eq!(t.missing_from(1, 130), 125);
        assert_eq!(t.missing_from(1, 65), 61);
        assert_eq!(t.missing_from(1, 3), 0);
        // Other senders are independent.
        assert_eq!(t.record(2, 1), Outcome::InOrder);
        assert_eq!(t.record(0, 1), Outcome::InOrder);
    }

    #[test]
    fn sizes() {
        assert_eq!(OrderTracker::bytes_needed(10, 500), 10 * (8 * 8 + 8));
        let t = OrderTracker::new(0, 0);
        assert_eq!(t.missing_from(0, 10), 0);
    }
}

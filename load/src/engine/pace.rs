//! Slow readers (`--read-rate`): while members are being admitted, an admitted member does not
//! read when its socket says readable; it is marked as having a backlog, and every
//! [`PACE_TICK`] a round lets each such member read what its rate allows since the last round.
//! The JOIN notices of a storm then pile up in the server's queues, the case where a server's
//! memory grows most. When admission ends every backlog is read at full speed, so the notices
//! are all delivered before the hold and the memory figures. Nothing here decides what a line
//! means, and it never sleeps: the loop's poll timeout brings the next round.

use std::time::{Duration, Instant};

use super::members::State;
use super::{Engine, Phase};

/// How often the slow readers read. 10,000 members with a backlog cost 100,000 short reads a
/// second at this pace: a fraction of the generator's core.
pub(super) const PACE_TICK: Duration = Duration::from_millis(100);

impl Engine<'_> {
    /// Whether admitted members read slowly now.
    pub(super) fn pacing(&self) -> bool {
        self.cfg.read_rate.is_some() && self.phase == Phase::Admitting
    }

    /// When the next pacing round is due (`None`: not pacing).
    pub(super) fn next_pace(&self) -> Option<Instant> {
        self.pacing().then(|| self.last_pace + PACE_TICK)
    }

    /// A pacing round, if one is due: each member with a backlog earns its rate times the time
    /// since the last round (at most two ticks' worth, so a late round makes no burst) and
    /// reads that much.
    pub(super) fn pace_round(&mut self, now: Instant) {
        let Some(rate) = self.cfg.read_rate else {
            return;
        };
        let dt = now.saturating_duration_since(self.last_pace);
        if dt < PACE_TICK {
            return;
        }
        self.last_pace = now;
        let credit = (u128::from(rate) * dt.as_nanos() / 1_000_000_000) as u64;
        let cap = (u128::from(rate) * 2 * PACE_TICK.as_nanos() / 1_000_000_000) as u64;
        let (credit, cap) = (credit.min(cap), cap.max(1));
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            if !m.backlog || m.state != State::Member {
                continue;
            }
            m.allow = m.allow.saturating_add(credit).min(cap);
            let limit = usize::try_from(m.allow).unwrap_or(usize::MAX);
            if limit == 0 {
                continue;
            }
            let (got, drained) = self.read_some(i, false, limit);
            let m = &mut self.members[i];
            m.allow = m.allow.saturating_sub(got as u64);
            m.backlog = !drained;
        }
    }

    /// Admission is over: every member reads what waits for it, at full speed from now on.
    pub(super) fn end_pacing(&mut self) {
        for i in 0..self.members.len() {
            if std::mem::take(&mut self.members[i].backlog) {
                self.read(i, false);
            }
        }
    }
}

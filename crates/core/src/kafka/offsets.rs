//! Which offsets may be committed: per partition, only up to the lowest unfinished one.
//!
//! Records of one partition finish out of order (different keys run in parallel). Kafka keeps
//! one position per partition, so the worker ([`super::keyed`]) commits, per partition, the lowest offset still
//! in flight, or one past the highest offset seen when none is. Everything below that
//! position is finished; nothing unfinished is ever passed.

use std::collections::{BTreeMap, BTreeSet};

/// A topic partition.
pub type Partition = (String, i32);

#[derive(Debug, Default)]
struct State {
    in_flight: BTreeSet<i64>,
    highest_seen: Option<i64>,
    committed: Option<i64>,
}

impl State {
    fn position(&self) -> Option<i64> {
        match self.in_flight.first() {
            Some(lowest) => Some(*lowest),
            None => self.highest_seen.map(|h| h + 1),
        }
    }
}

/// In-flight offsets of every partition this worker reads.
#[derive(Debug, Default)]
pub struct Offsets {
    partitions: BTreeMap<Partition, State>,
    in_flight: usize,
}

impl Offsets {
    /// A record was read and is now in flight.
    pub fn start(&mut self, topic: &str, partition: i32, offset: i64) {
        let state = self
            .partitions
            .entry((topic.to_owned(), partition))
            .or_default();
        if state.in_flight.insert(offset) {
            self.in_flight += 1;
        }
        state.highest_seen = Some(state.highest_seen.map_or(offset, |h| h.max(offset)));
    }

    /// A record's effect is durable (handled, or its retry / dead letter acknowledged).
    pub fn finish(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(state) = self.partitions.get_mut(&(topic.to_owned(), partition))
            && state.in_flight.remove(&offset)
        {
            self.in_flight -= 1;
        }
    }

    /// Records in flight, all partitions.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Positions to commit: per partition whose position moved since the last commit, the
    /// offset of the next record to read after a restart.
    pub fn committable(&self) -> Vec<(Partition, i64)> {
        self.partitions
            .iter()
            .filter_map(|(tp, state)| {
                let position = state.position()?;
                (state.committed.is_none_or(|c| position > c)).then(|| (tp.clone(), position))
            })
            .collect()
    }

    /// The positions were committed.
    pub fn committed(&mut self, positions: &[(Partition, i64)]) {
        for (tp, position) in positions {
            if let Some(state) = self.partitions.get_mut(tp) {
                state.committed = Some(state.committed.map_or(*position, |c| c.max(*position)));
            }
        }
    }

    /// Forgets partitions this worker no longer owns (after a rebalance): their in-flight
    /// records are redelivered to the new owner, which deduplicates them.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, i32) -> bool) {
        self.partitions.retain(|(t, p), _| keep(t, *p));
        self.in_flight = self.partitions.values().map(|s| s.in_flight.len()).sum();
    }

    /// True when `(topic, partition)` is tracked.
    #[cfg(test)]
    pub fn tracks(&self, topic: &str, partition: i32) -> bool {
        self.partitions.contains_key(&(topic.to_owned(), partition))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(o: &Offsets) -> Vec<(i32, i64)> {
        o.committable()
            .into_iter()
            .map(|((_, p), o)| (p, o))
            .collect()
    }

    #[test]
    fn commits_only_up_to_the_lowest_unfinished_offset() {
        let mut o = Offsets::default();
        for off in 10..15 {
            o.start("t", 0, off);
        }
        assert_eq!(positions(&o), vec![(0, 10)]);
        o.finish("t", 0, 11);
        o.finish("t", 0, 13);
        assert_eq!(positions(&o), vec![(0, 10)], "10 still runs");
        o.finish("t", 0, 10);
        assert_eq!(positions(&o), vec![(0, 12)], "12 is the lowest unfinished");
        o.finish("t", 0, 12);
        assert_eq!(positions(&o), vec![(0, 14)]);
        o.finish("t", 0, 14);
        assert_eq!(
            positions(&o),
            vec![(0, 15)],
            "all done: one past the highest"
        );
        assert_eq!(o.in_flight(), 0);
    }

    #[test]
    fn a_committed_position_is_not_offered_again_and_partitions_are_independent() {
        let mut o = Offsets::default();
        o.start("t", 0, 0);
        o.start("t", 1, 7);
        o.finish("t", 1, 7);
        let now = o.committable();
        assert_eq!(positions(&o), vec![(0, 0), (1, 8)]);
        o.committed(&now);
        assert!(o.committable().is_empty());
        o.finish("t", 0, 0);
        assert_eq!(positions(&o), vec![(0, 1)]);
    }

    #[test]
    fn forgetting_a_revoked_partition_drops_its_in_flight_records() {
        let mut o = Offsets::default();
        o.start("t", 0, 1);
        o.start("t", 1, 1);
        o.start("t", 1, 2);
        assert_eq!(o.in_flight(), 3);
        o.retain(|_, p| p == 0);
        assert_eq!(o.in_flight(), 1);
        assert!(!o.tracks("t", 1));
        o.finish("t", 1, 1);
        assert_eq!(
            o.in_flight(),
            1,
            "finishing an untracked record changes nothing"
        );
    }
}

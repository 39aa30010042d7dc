//! When a group compacts its log and how, sans IO, written once for both
//! runtimes: the decision ([`CompactionPolicy`]: a snapshot once enough
//! entries were applied since the last one; the node's threshold comes from
//! `--snapshot-every`, the simulator's is drawn per node from the seed) and
//! the snapshot taking ([`take_snapshot`]: the state machine at the applied
//! index, handed to the core, then to the runtime's [`SnapshotStore`]), and
//! the index the last snapshot covers, counted the same way by both
//! ([`Compaction`]: the one restored at start, then each one installed or
//! taken; a snapshot the core refused counts as taken, so that it is tried
//! again only after another threshold of entries).

use super::applier::Applier;
use crate::consensus::{Consensus, LogIndex, Snapshot, SnapshotError};

/// Compact once `every_entries` entries were applied since the last snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionPolicy {
    every_entries: u64,
}

impl CompactionPolicy {
    /// A snapshot every `every_entries` applied entries (at least one).
    pub fn every(every_entries: u64) -> CompactionPolicy {
        CompactionPolicy {
            every_entries: every_entries.max(1),
        }
    }

    /// Whether to snapshot now, `applied` being the state machine's index
    /// and `last_snapshot` the index the last snapshot covers.
    pub fn due(&self, applied: LogIndex, last_snapshot: LogIndex) -> bool {
        applied.0 >= last_snapshot.0 + self.every_entries
    }
}

/// A group's compaction: its policy and the index its last snapshot covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compaction {
    policy: CompactionPolicy,
    last_snapshot: LogIndex,
}

impl Compaction {
    /// `restored` is the index of the snapshot the group started from (the
    /// state machine's applied index at start).
    pub fn new(policy: CompactionPolicy, restored: LogIndex) -> Compaction {
        Compaction {
            policy,
            last_snapshot: restored,
        }
    }

    /// Whether a snapshot is due, `applied` being the state machine's index.
    pub fn due(&self, applied: LogIndex) -> bool {
        self.policy.due(applied, self.last_snapshot)
    }

    /// Whether entries were applied since the last snapshot (a membership
    /// change snapshots them first, so new voters catch up from it).
    pub fn behind(&self, applied: LogIndex) -> bool {
        applied > self.last_snapshot
    }

    /// The runtime restarted from a snapshot through `index` (or none: 0).
    pub fn restarted(&mut self, index: LogIndex) {
        self.last_snapshot = index;
    }

    /// A snapshot from the leader through `index` was installed.
    pub fn installed(&mut self, index: LogIndex) {
        self.last_snapshot = index;
    }

    /// [`take_snapshot`], then count it as the last snapshot (refused by
    /// the core too); a store that failed changes nothing.
    pub fn take<C: Consensus + ?Sized, S: SnapshotStore>(
        &mut self,
        core: &mut C,
        applier: &Applier,
        store: &mut S,
    ) -> Result<Result<LogIndex, SnapshotError>, S::Error> {
        let taken = take_snapshot(core, applier, store)?;
        self.last_snapshot = applier.applied();
        Ok(taken)
    }
}

/// Where a runtime keeps a snapshot and compacts its log (the node: the
/// WAL's directory; the simulator: its simulated disk).
pub trait SnapshotStore {
    type Error;
    fn compact(&mut self, snapshot: Snapshot) -> Result<(), Self::Error>;
}

/// Snapshot `applier`'s state machine at its applied index, tell `core`,
/// and compact `store` to it. The outer error is the store's; the inner
/// one the core's refusal (nothing was stored then).
pub fn take_snapshot<C: Consensus + ?Sized, S: SnapshotStore>(
    core: &mut C,
    applier: &Applier,
    store: &mut S,
) -> Result<Result<LogIndex, SnapshotError>, S::Error> {
    let applied = applier.applied();
    let data = applier.snapshot();
    let meta = match core.snapshot_taken(applied, data.clone()) {
        Ok(meta) => meta,
        Err(refused) => return Ok(Err(refused)),
    };
    store.compact(Snapshot { meta, data })?;
    Ok(Ok(applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_due_once_every_entries_were_applied_since_the_last() {
        let policy = CompactionPolicy::every(8);
        assert!(!policy.due(LogIndex(7), LogIndex(0)));
        assert!(policy.due(LogIndex(8), LogIndex(0)));
        assert!(
            !policy.due(LogIndex(15), LogIndex(8)),
            "counted from the last"
        );
        assert!(policy.due(LogIndex(16), LogIndex(8)));
    }

    #[test]
    fn the_last_snapshot_is_the_one_restored_then_each_installed() {
        let mut compaction = Compaction::new(CompactionPolicy::every(4), LogIndex(10));
        assert!(
            !compaction.due(LogIndex(13)),
            "counted from the restored one"
        );
        assert!(compaction.due(LogIndex(14)));
        compaction.installed(LogIndex(20));
        assert!(!compaction.due(LogIndex(23)));
        assert!(!compaction.behind(LogIndex(20)));
        assert!(compaction.behind(LogIndex(21)));
    }

    #[test]
    fn a_threshold_of_zero_still_waits_for_one_new_entry() {
        let policy = CompactionPolicy::every(0);
        assert!(!policy.due(LogIndex(5), LogIndex(5)), "nothing new to keep");
        assert!(policy.due(LogIndex(6), LogIndex(5)));
    }
}

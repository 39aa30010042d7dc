//! PaxosLog: one acceptor's accepted values, slot by slot, kept as a
//! contiguous log after a snapshot, plus what it learned is chosen.
//!
//! Guarantees (asserted): slots are contiguous from `snapshot.index + 1`;
//! `snapshot.index ≤ applied ≤ commit ≤ last`; every slot ≤ `commit` holds
//! the chosen value (a slot ≤ commit is never rewritten). A slot after
//! commit may be rewritten in place (a re-accept at a higher ballot); the
//! next [`PaxosLog::take_unstable`] then hands out every slot from the
//! lowest rewritten one to the end, so the runtime's rule "truncate from the
//! first entry, then append" replaces exactly the changed slots and keeps
//! every other accepted value (an acceptor never forgets an accepted value).

use std::sync::Arc;

use crate::consensus::{Entry, LogIndex, NodeId, Snapshot, SnapshotMeta, Term};

use super::ballot::Stamp;

#[derive(Clone, Debug, Default)]
pub struct PaxosLog {
    /// Shared with the leader's snapshot transfers (no copy per peer).
    snapshot: Arc<Snapshot>,
    /// Slots `snapshot.index + 1 ..= last`.
    entries: Vec<Entry>,
    commit: LogIndex,
    /// The last slot handed out in `take_committed` (or the snapshot index).
    applied: LogIndex,
    /// The snapshot must be written (it replaces the stored log).
    snapshot_unstable: bool,
    /// The lowest slot changed since the last `take_unstable`.
    unstable_from: Option<LogIndex>,
}

impl PaxosLog {
    /// The log as storage recovered it.
    pub fn recovered(
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        commit: LogIndex,
    ) -> Result<PaxosLog, String> {
        let snapshot = Arc::new(snapshot.unwrap_or_default());
        let mut expect = snapshot.meta.index.next();
        for e in &entries {
            if e.index != expect {
                return Err(format!(
                    "entries are not contiguous after snapshot {}: found {} where {} was expected",
                    snapshot.meta.index, e.index, expect
                ));
            }
            expect = expect.next();
        }
        let last = LogIndex(snapshot.meta.index.0 + entries.len() as u64);
        if commit > last {
            return Err(format!(
                "commit index {commit} is beyond the last entry {last}"
            ));
        }
        let commit = commit.max(snapshot.meta.index);
        let applied = snapshot.meta.index;
        let log = PaxosLog {
            snapshot,
            entries,
            commit,
            applied,
            snapshot_unstable: false,
            unstable_from: None,
        };
        log.check();
        Ok(log)
    }

    fn check(&self) {
        assert!(
            self.snapshot.meta.index <= self.applied,
            "applied before the snapshot"
        );
        assert!(self.applied <= self.commit, "applied beyond commit");
        assert!(self.commit <= self.last_index(), "commit beyond the log");
        if let Some(first) = self.entries.first() {
            assert_eq!(
                first.index,
                self.snapshot.meta.index.next(),
                "log starts right after the snapshot"
            );
        }
        if let Some(u) = self.unstable_from {
            assert!(
                u > self.snapshot.meta.index,
                "unstable slots after the snapshot"
            );
        }
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
    /// The snapshot, shared (for a transfer to a peer).
    pub fn shared_snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot)
    }
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot.meta.index
    }
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot.meta.index.0 + self.entries.len() as u64)
    }
    pub fn commit(&self) -> LogIndex {
        self.commit
    }
    pub fn applied(&self) -> LogIndex {
        self.applied
    }
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn offset(&self, index: LogIndex) -> Option<usize> {
        (index > self.snapshot.meta.index && index <= self.last_index())
            .then(|| (index.0 - self.snapshot.meta.index.0 - 1) as usize)
    }

    /// The entry at `index`, if held (not compacted, not beyond the end).
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.offset(index).map(|o| &self.entries[o])
    }

    /// The stamp (as a term) at `index`; the snapshot's at the snapshot index.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot.meta.index {
            return Some(self.snapshot.meta.term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub fn stamp_at(&self, index: LogIndex) -> Option<Stamp> {
        self.entry(index).map(|e| Stamp::of(e.term))
    }

    /// Up to `max` entries from `from` (which must be after the snapshot).
    pub fn slice(&self, from: LogIndex, max: usize) -> &[Entry] {
        assert!(
            from > self.snapshot.meta.index,
            "slice from a compacted slot"
        );
        let Some(start) = self.offset(from) else {
            return &[];
        };
        let end = (start + max).min(self.entries.len());
        &self.entries[start..end]
    }

    /// One accept's worth from `from` (after the snapshot): at most
    /// `max_entries` and `max_bytes` (see [`crate::consensus::batch_len`]).
    pub fn batch(&self, from: LogIndex, max_entries: usize, max_bytes: usize) -> &[Entry] {
        let rest = self.slice(from, max_entries);
        &rest[..crate::consensus::batch_len(rest, max_entries, max_bytes)]
    }

    /// The entries after `after` (clamped to the snapshot).
    pub fn entries_after(&self, after: LogIndex) -> &[Entry] {
        let from = after.max(self.snapshot.meta.index).next();
        match self.offset(from) {
            Some(o) => &self.entries[o..],
            None => &[],
        }
    }

    fn mark(&mut self, index: LogIndex) {
        self.unstable_from = Some(self.unstable_from.map_or(index, |u| u.min(index)));
    }

    /// Accept `e` at its slot: the slot after the end, or an unchosen slot
    /// rewritten in place.
    pub fn put(&mut self, e: Entry) {
        assert!(
            e.index > self.commit,
            "a chosen slot is never rewritten ({} ≤ commit {})",
            e.index,
            self.commit
        );
        let index = e.index;
        if index == self.last_index().next() {
            self.entries.push(e);
        } else {
            let o = self
                .offset(index)
                .expect("a slot is put at most one past the end");
            self.entries[o] = e;
        }
        self.mark(index);
    }

    /// Replace every slot from `from` on by `entries` (contiguous from
    /// `from`, reaching at least the current end): phase 1's merge.
    pub fn replace_from(&mut self, from: LogIndex, entries: Vec<Entry>) {
        assert!(
            from > self.commit,
            "the merge starts after the chosen prefix"
        );
        assert!(from <= self.last_index().next(), "the merge leaves no gap");
        let end = LogIndex(from.0 + entries.len() as u64).prev();
        assert!(
            end >= self.last_index(),
            "the merge covers every slot we hold"
        );
        for (k, e) in entries.iter().enumerate() {
            assert_eq!(
                e.index.0,
                from.0 + k as u64,
                "merged entries are contiguous"
            );
        }
        let o = (from.0 - self.snapshot.meta.index.0 - 1) as usize;
        self.entries.truncate(o);
        self.entries.extend(entries);
        self.mark(from);
        self.check();
    }

    /// Write `entries` (contiguous, from an unchosen slot at most one past
    /// the end) in place, keeping every slot after them: phase 1's merge
    /// up to a configuration slot, beyond which this acceptor's own older
    /// values stay (an acceptor never forgets an accepted value).
    pub fn overwrite(&mut self, entries: Vec<Entry>) {
        for e in entries {
            self.put(e);
        }
        self.check();
    }

    /// The latest configuration entry at a slot < `before` that this log
    /// holds (not compacted), with its slot.
    pub fn config_before(&self, before: LogIndex) -> Option<(LogIndex, &[NodeId])> {
        let end = before.prev().min(self.last_index());
        let o = self.offset(end)?;
        self.entries[..=o].iter().rev().find_map(|e| match &e.kind {
            crate::consensus::EntryKind::ConfigChange(m) => Some((e.index, m.voters.as_slice())),
            _ => None,
        })
    }

    /// The first configuration entry in `from ..= to` that this log holds.
    pub fn first_config_in(&self, from: LogIndex, to: LogIndex) -> Option<(LogIndex, &[NodeId])> {
        let from = from.max(self.snapshot.meta.index.next());
        let to = to.min(self.last_index());
        if from > to {
            return None;
        }
        let (a, b) = (self.offset(from)?, self.offset(to)?);
        self.entries[a..=b].iter().find_map(|e| match &e.kind {
            crate::consensus::EntryKind::ConfigChange(m) => Some((e.index, m.voters.as_slice())),
            _ => None,
        })
    }

    /// Learn that every slot ≤ `index` is chosen. Never goes back.
    pub fn commit_to(&mut self, index: LogIndex) -> bool {
        if index <= self.commit {
            return false;
        }
        assert!(
            index <= self.last_index(),
            "commit {index} beyond the log end {}",
            self.last_index()
        );
        self.commit = index;
        true
    }

    pub fn has_committed(&self) -> bool {
        self.commit > self.applied
    }

    /// The newly chosen entries, in order, each with its origin ballot as
    /// the term (the term `propose` returned for it).
    pub fn take_committed(&mut self) -> Vec<Entry> {
        let from = self.applied.next();
        let out: Vec<Entry> = (from.0..=self.commit.0)
            .map(|i| {
                let e = self
                    .entry(LogIndex(i))
                    .expect("committed entries after the applied snapshot are held");
                Entry {
                    index: e.index,
                    term: Stamp::of(e.term).origin.term(),
                    kind: e.kind.clone(),
                }
            })
            .collect();
        self.applied = self.commit;
        out
    }

    pub fn has_unstable(&self) -> bool {
        self.snapshot_unstable || self.unstable_from.is_some()
    }

    /// What must be written: the snapshot (if installed) and every slot
    /// from the lowest changed one to the end.
    pub fn take_unstable(&mut self) -> (Option<Snapshot>, Vec<Entry>) {
        let snapshot =
            std::mem::take(&mut self.snapshot_unstable).then(|| (*self.snapshot).clone());
        let entries = match self.unstable_from.take() {
            Some(from) => self.entries_after(from.prev()).to_vec(),
            None => Vec::new(),
        };
        (snapshot, entries)
    }

    /// Local compaction at an applied index.
    pub fn compact(&mut self, index: LogIndex, data: Vec<u8>, voters: Vec<NodeId>) -> SnapshotMeta {
        assert!(index <= self.applied, "compact only what was applied");
        assert!(index > self.snapshot.meta.index, "compaction moves forward");
        let term = self.term_at(index).expect("an applied slot is held");
        let drop = (index.0 - self.snapshot.meta.index.0) as usize;
        self.entries.drain(..drop);
        let meta = SnapshotMeta {
            index,
            term,
            voters,
            outgoing: Vec::new(),
        };
        self.snapshot = Arc::new(Snapshot {
            meta: meta.clone(),
            data,
        });
        if let Some(u) = self.unstable_from {
            if u <= index {
                self.unstable_from = (!self.entries.is_empty()).then(|| index.next());
            }
        }
        self.check();
        meta
    }

    /// Install a leader's snapshot beyond our commit. Accepted values after
    /// it are kept (and written again after the snapshot).
    pub fn restore(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta.index;
        assert!(
            index > self.commit,
            "restore only a snapshot beyond what we know is chosen"
        );
        let keep: Vec<Entry> = self.entries_after(index).to_vec();
        self.entries = keep;
        self.snapshot = Arc::new(snapshot);
        self.commit = index;
        self.applied = index;
        self.snapshot_unstable = true;
        self.unstable_from = (!self.entries.is_empty()).then(|| index.next());
        self.check();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::EntryKind;
    use crate::paxos::ballot::Ballot;

    fn b(r: u64) -> Ballot {
        Ballot::new(r, NodeId(1))
    }
    fn e(i: u64, acc: u64, origin: u64, v: u8) -> Entry {
        Entry {
            index: LogIndex(i),
            term: Stamp::new(b(acc), b(origin)).term(),
            kind: EntryKind::Normal(vec![v]),
        }
    }

    #[test]
    fn recovered_refuses_a_gap_and_a_commit_beyond_the_end() {
        assert!(
            PaxosLog::recovered(None, vec![e(1, 1, 1, 1), e(3, 1, 1, 3)], LogIndex(0)).is_err()
        );
        assert!(PaxosLog::recovered(None, vec![e(1, 1, 1, 1)], LogIndex(2)).is_err());
        let log = PaxosLog::recovered(None, vec![e(1, 1, 1, 1), e(2, 1, 1, 2)], LogIndex(1))
            .expect("valid");
        assert_eq!(log.last_index(), LogIndex(2));
        assert_eq!(log.commit(), LogIndex(1));
        assert_eq!(log.applied(), LogIndex(0));
    }

    #[test]
    fn rewriting_a_middle_slot_rewrites_the_suffix_and_keeps_later_values() {
        let mut log = PaxosLog::recovered(
            None,
            vec![e(1, 1, 1, 1), e(2, 1, 1, 2), e(3, 1, 1, 3)],
            LogIndex(1),
        )
        .expect("valid");
        log.put(e(2, 2, 2, 9));
        let (snap, entries) = log.take_unstable();
        assert!(snap.is_none());
        // Slot 3 is written again so that "truncate from 2, append" keeps it.
        assert_eq!(entries, vec![e(2, 2, 2, 9), e(3, 1, 1, 3)]);
        assert!(!log.has_unstable());
    }

    #[test]
    fn committed_entries_carry_their_origin_ballot() {
        let mut log = PaxosLog::recovered(None, vec![e(1, 3, 1, 1)], LogIndex(0)).expect("valid");
        assert!(log.commit_to(LogIndex(1)));
        let c = log.take_committed();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].term, b(1).term(), "origin, not the accepting ballot");
        assert!(!log.has_committed());
    }

    #[test]
    #[should_panic(expected = "never rewritten")]
    fn a_chosen_slot_is_never_rewritten() {
        let mut log = PaxosLog::recovered(None, vec![e(1, 1, 1, 1)], LogIndex(1)).expect("valid");
        log.put(e(1, 2, 2, 2));
    }

    #[test]
    fn restore_keeps_accepted_values_after_the_snapshot() {
        let mut log = PaxosLog::recovered(
            None,
            vec![e(1, 1, 1, 1), e(2, 1, 1, 2), e(3, 1, 1, 3), e(4, 1, 1, 4)],
            LogIndex(0),
        )
        .expect("valid");
        let snap = Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(2),
                term: e(2, 2, 1, 2).term,
                voters: vec![],
                outgoing: Vec::new(),
            },
            data: vec![7],
        };
        log.restore(snap.clone());
        assert_eq!(log.commit(), LogIndex(2));
        assert_eq!(log.applied(), LogIndex(2));
        let (s, entries) = log.take_unstable();
        assert_eq!(s, Some(snap));
        assert_eq!(entries, vec![e(3, 1, 1, 3), e(4, 1, 1, 4)]);
    }

    #[test]
    fn compaction_drops_the_prefix_and_keeps_terms() {
        let mut log = PaxosLog::recovered(
            None,
            vec![e(1, 1, 1, 1), e(2, 1, 1, 2), e(3, 1, 1, 3)],
            LogIndex(2),
        )
        .expect("valid");
        log.take_committed();
        let meta = log.compact(LogIndex(2), vec![1], vec![NodeId(1)]);
        assert_eq!(meta.index, LogIndex(2));
        assert_eq!(meta.term, e(2, 1, 1, 2).term);
        assert_eq!(log.entries(), &[e(3, 1, 1, 3)]);
        assert_eq!(log.term_at(LogIndex(2)), Some(meta.term));
        assert!(log.entry(LogIndex(2)).is_none());
    }

    #[test]
    fn replace_from_installs_the_merge() {
        let mut log = PaxosLog::recovered(None, vec![e(1, 1, 1, 1), e(2, 1, 1, 2)], LogIndex(1))
            .expect("valid");
        log.replace_from(LogIndex(2), vec![e(2, 3, 1, 2), e(3, 3, 3, 0)]);
        assert_eq!(log.last_index(), LogIndex(3));
        let (_, entries) = log.take_unstable();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].index, LogIndex(2));
    }
}

//! The in-memory Raft log of one core: a snapshot followed by entries, the
//! commit and applied indexes, and what still has to reach storage.
//!
//! Guarantees (asserted): entries are contiguous and start right after the
//! snapshot; terms never decrease along the log; snapshot index ≤ applied ≤
//! commit ≤ last index; a committed entry is never truncated or replaced.

use std::sync::Arc;

use crate::consensus::{Entry, LogIndex, Snapshot, SnapshotMeta, Term};

#[derive(Clone, Debug)]
pub struct RaftLog {
    /// Everything up to `snapshot.meta.index` (index 0 = no snapshot yet).
    /// Shared with the leader's snapshot transfers (no copy per follower).
    snapshot: Arc<Snapshot>,
    /// `entries[k].index == snapshot.meta.index + 1 + k`.
    entries: Vec<Entry>,
    commit: LogIndex,
    /// The last index handed to the runtime to apply.
    applied: LogIndex,
    /// The durable prefix of the log on this node (known from `persisted`).
    persisted: LogIndex,
    /// The lowest index changed since the last Ready (to persist from there).
    dirty_from: Option<LogIndex>,
    /// A snapshot installed from the leader that storage has not seen yet.
    snapshot_dirty: bool,
}

impl RaftLog {
    /// A log recovered from durable state: everything in it is persisted.
    pub fn recovered(
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        commit: LogIndex,
    ) -> Result<RaftLog, String> {
        let snapshot = Arc::new(snapshot.unwrap_or_default());
        let base = snapshot.meta.index;
        for (k, e) in entries.iter().enumerate() {
            let want = LogIndex(base.0 + 1 + k as u64);
            if e.index != want {
                return Err(format!(
                    "entry {k} after the snapshot at {base} has index {}, expected {want}",
                    e.index
                ));
            }
        }
        let mut prev_term = snapshot.meta.term;
        for e in &entries {
            if e.term < prev_term {
                return Err(format!(
                    "term decreases at {}: {} after {}",
                    e.index, e.term, prev_term
                ));
            }
            prev_term = e.term;
        }
        let last = LogIndex(base.0 + entries.len() as u64);
        if commit > last {
            return Err(format!(
                "commit {commit} is beyond the last durable entry {last}"
            ));
        }
        let commit = commit.max(base);
        let log = RaftLog {
            snapshot,
            entries,
            commit,
            applied: base,
            persisted: last,
            dirty_from: None,
            snapshot_dirty: false,
        };
        log.check();
        Ok(log)
    }

    fn check(&self) {
        assert!(
            self.applied >= self.snapshot.meta.index,
            "applied below the snapshot"
        );
        assert!(self.commit >= self.applied, "applied beyond commit");
        assert!(
            self.last_index() >= self.commit,
            "commit beyond the last entry"
        );
        if let Some(first) = self.entries.first() {
            assert_eq!(
                first.index,
                self.snapshot.meta.index.next(),
                "entries start right after the snapshot"
            );
            assert!(
                first.term >= self.snapshot.meta.term,
                "term decreases after the snapshot"
            );
        }
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
    /// The snapshot, shared (for a transfer to a follower).
    pub fn shared_snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot)
    }
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot.meta.index
    }
    pub fn first_index(&self) -> LogIndex {
        self.snapshot.meta.index.next()
    }
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot.meta.index.0 + self.entries.len() as u64)
    }
    pub fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.snapshot.meta.term, |e| e.term)
    }
    pub fn commit(&self) -> LogIndex {
        self.commit
    }
    pub fn applied(&self) -> LogIndex {
        self.applied
    }
    pub fn persisted(&self) -> LogIndex {
        self.persisted
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The term of the entry at `index`; None if compacted away or beyond the end.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        let base = self.snapshot.meta.index;
        if index == base {
            return Some(self.snapshot.meta.term);
        }
        if index < base || index > self.last_index() {
            return None;
        }
        let e = &self.entries[(index.0 - base.0 - 1) as usize];
        debug_assert_eq!(e.index, index, "entry position matches its index");
        Some(e.term)
    }

    /// Up to `max` entries from `from` (which must not be compacted).
    pub fn slice(&self, from: LogIndex, max: usize) -> Vec<Entry> {
        assert!(
            from > self.snapshot.meta.index,
            "slice from a compacted index"
        );
        if from > self.last_index() {
            return Vec::new();
        }
        let start = (from.0 - self.snapshot.meta.index.0 - 1) as usize;
        let end = start.saturating_add(max).min(self.entries.len());
        self.entries[start..end].to_vec()
    }

    /// One append's worth from `from` (not compacted): at most
    /// `max_entries` and `max_bytes` (see [`crate::consensus::batch_len`]).
    pub fn batch(&self, from: LogIndex, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        assert!(
            from > self.snapshot.meta.index,
            "batch from a compacted index"
        );
        if from > self.last_index() {
            return Vec::new();
        }
        let start = (from.0 - self.snapshot.meta.index.0 - 1) as usize;
        let rest = &self.entries[start..];
        rest[..crate::consensus::batch_len(rest, max_entries, max_bytes)].to_vec()
    }

    /// §5.4.1: is a log ending at (index, term) at least as up to date as ours?
    pub fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// The last index holding `term`, searching back from `from`; None if no
    /// entry still in memory has it.
    pub fn last_index_of_term(&self, term: Term, from: LogIndex) -> Option<LogIndex> {
        let mut i = from.min(self.last_index());
        while i >= self.snapshot.meta.index {
            let t = self.term_at(i).expect("i is within the log");
            if t == term {
                return Some(i);
            }
            if t < term || i == self.snapshot.meta.index {
                return None;
            }
            i = i.prev();
        }
        None
    }

    /// The first index of the run of entries with the same term as `index`
    /// (a follower's conflict hint). `index` must be in the log.
    pub fn first_index_of_term_at(&self, index: LogIndex) -> LogIndex {
        let term = self.term_at(index).expect("hint index is in the log");
        let mut i = index;
        while i > self.snapshot.meta.index.next() && self.term_at(i.prev()) == Some(term) {
            i = i.prev();
        }
        i
    }

    /// Leader: append new entries at the end.
    pub fn append(&mut self, entries: Vec<Entry>) {
        let Some(first) = entries.first() else { return };
        assert_eq!(
            first.index,
            self.last_index().next(),
            "leader appends at the end"
        );
        assert!(
            first.term >= self.last_term(),
            "leader appends no older term"
        );
        self.mark_dirty(first.index);
        self.entries.extend(entries);
    }

    /// Follower (§5.3): if our log holds (prev_index, prev_term), merge
    /// `entries` after it (truncating a conflicting suffix) and return the
    /// index of the last new entry; None if the consistency check fails.
    pub fn maybe_append(
        &mut self,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Entry>,
    ) -> Option<LogIndex> {
        if self.term_at(prev_index) != Some(prev_term) {
            return None;
        }
        let last_new = LogIndex(prev_index.0 + entries.len() as u64);
        for (k, e) in entries.iter().enumerate() {
            assert_eq!(
                e.index,
                LogIndex(prev_index.0 + 1 + k as u64),
                "append entries are contiguous"
            );
        }
        let conflict = entries
            .iter()
            .position(|e| self.term_at(e.index) != Some(e.term));
        if let Some(k) = conflict {
            let at = entries[k].index;
            assert!(
                at > self.commit,
                "conflict at {at} would truncate a committed entry (commit {})",
                self.commit
            );
            if at <= self.last_index() {
                self.truncate_from(at);
            }
            let tail: Vec<Entry> = entries.into_iter().skip(k).collect();
            assert!(
                tail[0].term >= self.last_term(),
                "appended term is not older than our last"
            );
            self.mark_dirty(at);
            self.entries.extend(tail);
        }
        Some(last_new)
    }

    fn truncate_from(&mut self, at: LogIndex) {
        assert!(
            at > self.snapshot.meta.index,
            "truncating into the snapshot"
        );
        assert!(at > self.commit, "truncating a committed entry");
        let keep = (at.0 - self.snapshot.meta.index.0 - 1) as usize;
        self.entries.truncate(keep);
        self.persisted = self.persisted.min(at.prev());
    }

    fn mark_dirty(&mut self, at: LogIndex) {
        self.dirty_from = Some(self.dirty_from.map_or(at, |d| d.min(at)));
    }

    pub fn commit_to(&mut self, index: LogIndex) -> bool {
        if index <= self.commit {
            return false;
        }
        assert!(
            index <= self.last_index(),
            "commit {index} beyond last {}",
            self.last_index()
        );
        self.commit = index;
        true
    }

    /// Entries committed but not yet handed out; marks them applied.
    pub fn take_committed(&mut self) -> Vec<Entry> {
        if self.commit <= self.applied {
            return Vec::new();
        }
        let out = self.slice(
            self.applied.next(),
            (self.commit.0 - self.applied.0) as usize,
        );
        assert_eq!(
            out.len() as u64,
            self.commit.0 - self.applied.0,
            "every committed entry is in memory"
        );
        self.applied = self.commit;
        out
    }

    pub fn has_committed(&self) -> bool {
        self.commit > self.applied
    }

    pub fn has_unstable(&self) -> bool {
        self.dirty_from.is_some() || self.snapshot_dirty
    }

    /// What storage must write next: (snapshot to install, entries to append).
    pub fn take_unstable(&mut self) -> (Option<Snapshot>, Vec<Entry>) {
        let snap = if std::mem::take(&mut self.snapshot_dirty) {
            Some((*self.snapshot).clone())
        } else {
            None
        };
        let entries = match self.dirty_from.take() {
            Some(from) if from <= self.last_index() => {
                let from = from.max(self.first_index());
                self.slice(from, usize::MAX)
            }
            _ => Vec::new(),
        };
        (snap, entries)
    }

    /// Storage made the log through (index, term) durable.
    pub fn stable_to(&mut self, index: LogIndex, term: Term) {
        if index <= self.snapshot.meta.index {
            self.persisted = self.persisted.max(index.min(self.last_index()));
            return;
        }
        if self.term_at(index) == Some(term) {
            self.persisted = self.persisted.max(index);
        }
    }

    /// The runtime snapshotted applied state at `index`: drop entries ≤ index.
    pub fn compact(
        &mut self,
        index: LogIndex,
        data: Vec<u8>,
        membership: crate::consensus::Membership,
    ) -> SnapshotMeta {
        assert!(index > self.snapshot.meta.index, "compaction moves forward");
        assert!(
            index <= self.applied,
            "compaction only covers applied entries"
        );
        let term = self
            .term_at(index)
            .expect("an applied index above the snapshot is in memory");
        let drop = (index.0 - self.snapshot.meta.index.0) as usize;
        self.entries.drain(..drop);
        self.snapshot = Arc::new(Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                voters: membership.voters,
                outgoing: membership.outgoing,
            },
            data,
        });
        if let Some(d) = self.dirty_from {
            if d <= index {
                self.dirty_from = if self.last_index() > index {
                    Some(index.next())
                } else {
                    None
                };
            }
        }
        self.check();
        self.snapshot.meta.clone()
    }

    /// §7: replace the whole log by a snapshot from the leader.
    pub fn restore(&mut self, snapshot: Snapshot) {
        assert!(
            snapshot.meta.index > self.commit,
            "restoring a snapshot behind commit"
        );
        self.entries.clear();
        self.commit = snapshot.meta.index;
        self.applied = snapshot.meta.index;
        self.persisted = self.persisted.min(snapshot.meta.index);
        self.snapshot = Arc::new(snapshot);
        self.dirty_from = None;
        self.snapshot_dirty = true;
        self.check();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::EntryKind;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Noop,
        }
    }

    fn log_with(terms: &[u64]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(k, t)| e(k as u64 + 1, *t))
            .collect();
        RaftLog::recovered(None, entries, LogIndex(0)).expect("valid log")
    }

    #[test]
    fn recovered_refuses_a_gap_and_a_commit_beyond_the_end() {
        assert!(RaftLog::recovered(None, vec![e(1, 1), e(3, 1)], LogIndex(0)).is_err());
        assert!(RaftLog::recovered(None, vec![e(1, 1)], LogIndex(2)).is_err());
        assert!(RaftLog::recovered(None, vec![e(1, 2), e(2, 1)], LogIndex(0)).is_err());
    }

    #[test]
    fn maybe_append_truncates_only_the_conflicting_suffix() {
        let mut log = log_with(&[1, 1, 2, 2]);
        assert_eq!(
            log.maybe_append(LogIndex(2), Term(1), vec![e(3, 3)]),
            Some(LogIndex(3))
        );
        assert_eq!(log.last_index(), LogIndex(3));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(3)));
        let (_, unstable) = log.take_unstable();
        assert_eq!(unstable, vec![e(3, 3)]);
    }

    #[test]
    fn stale_shorter_append_keeps_the_suffix() {
        let mut log = log_with(&[1, 1, 1]);
        assert_eq!(
            log.maybe_append(LogIndex(0), Term(0), vec![e(1, 1)]),
            Some(LogIndex(1))
        );
        assert_eq!(
            log.last_index(),
            LogIndex(3),
            "a matching prefix must not truncate"
        );
        assert!(!log.has_unstable());
    }

    #[test]
    fn maybe_append_rejects_a_mismatched_prev() {
        let mut log = log_with(&[1, 2]);
        assert_eq!(log.maybe_append(LogIndex(2), Term(1), vec![e(3, 2)]), None);
        assert_eq!(log.maybe_append(LogIndex(5), Term(2), vec![]), None);
    }

    #[test]
    fn conflict_hints_skip_a_term() {
        let log = log_with(&[1, 2, 2, 2, 3]);
        assert_eq!(log.first_index_of_term_at(LogIndex(4)), LogIndex(2));
        assert_eq!(
            log.last_index_of_term(Term(2), LogIndex(5)),
            Some(LogIndex(4))
        );
        assert_eq!(log.last_index_of_term(Term(4), LogIndex(5)), None);
    }

    #[test]
    fn compaction_keeps_terms_and_the_suffix() {
        let mut log = log_with(&[1, 1, 2, 2]);
        log.commit_to(LogIndex(3));
        assert_eq!(log.take_committed().len(), 3);
        let meta = log.compact(LogIndex(3), b"s".to_vec(), Default::default());
        assert_eq!(meta.term, Term(2));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(2)));
        assert_eq!(log.term_at(LogIndex(2)), None);
        assert_eq!(log.last_index(), LogIndex(4));
        assert_eq!(log.slice(LogIndex(4), 10), vec![e(4, 2)]);
    }

    #[test]
    fn restore_replaces_the_log_and_marks_the_snapshot_unstable() {
        let mut log = log_with(&[1, 1]);
        let snap = Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(5),
                term: Term(3),
                voters: vec![],
                outgoing: Vec::new(),
            },
            data: vec![1],
        };
        log.restore(snap.clone());
        assert_eq!(log.last_index(), LogIndex(5));
        assert_eq!(log.commit(), LogIndex(5));
        assert!(
            log.take_committed().is_empty(),
            "the snapshot itself is not re-applied entry by entry"
        );
        let (s, entries) = log.take_unstable();
        assert_eq!(s, Some(snap));
        assert!(entries.is_empty());
    }

    #[test]
    #[should_panic(expected = "committed")]
    fn truncating_a_committed_entry_panics() {
        let mut log = log_with(&[1, 1]);
        log.commit_to(LogIndex(2));
        log.maybe_append(LogIndex(1), Term(1), vec![e(2, 2)]);
    }
}

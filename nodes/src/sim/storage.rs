//! SimStorage: a node's disk in the simulator. Writes first land in an
//! unsynced buffer; they become durable only when the simulator syncs them
//! (in write order). A crash throws away whatever was not synced, so what a
//! restarted core finds is exactly a prefix of what it wrote.
//! Protocol-independent: it stores the [`crate::consensus`] types.

use std::collections::VecDeque;

use crate::consensus::{Entry, HardState, Recovered, Snapshot};

/// One write, as the runtime issues it.
#[derive(Clone, Debug)]
pub enum Write {
    /// Step 1 of the ordering rule for one Ready.
    Ready {
        snapshot: Option<Snapshot>,
        hard_state: Option<HardState>,
        entries: Vec<Entry>,
    },
    /// A local snapshot: store it, then drop the entries it covers.
    Compact(Snapshot),
}

/// What survives a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Durable {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, Default)]
pub struct SimStorage {
    durable: Durable,
    /// (sequence number, write), oldest first.
    unsynced: VecDeque<(u64, Write)>,
    next_seq: u64,
}

impl SimStorage {
    /// Buffer a write; returns its sequence number (for [`SimStorage::sync_to`]).
    pub fn write(&mut self, w: Write) -> u64 {
        self.next_seq += 1;
        self.unsynced.push_back((self.next_seq, w));
        self.next_seq
    }

    /// Make every write with sequence ≤ `seq` durable, in order.
    pub fn sync_to(&mut self, seq: u64) {
        while self.unsynced.front().is_some_and(|(s, _)| *s <= seq) {
            let (_, w) = self.unsynced.pop_front().expect("front exists");
            apply(&mut self.durable, w);
        }
    }

    pub fn sync_all(&mut self) {
        self.sync_to(u64::MAX);
    }

    /// Power loss: unsynced writes vanish. Returns how many were lost.
    pub fn crash(&mut self) -> usize {
        let lost = self.unsynced.len();
        self.unsynced.clear();
        lost
    }

    pub fn unsynced_len(&self) -> usize {
        self.unsynced.len()
    }

    /// The hard state last written, synced or not (what the ordering
    /// rule compares a Ready's against).
    pub fn staged_hard_state(&self) -> HardState {
        self.unsynced
            .iter()
            .rev()
            .find_map(|(_, w)| match w {
                Write::Ready {
                    hard_state: Some(hs),
                    ..
                } => Some(*hs),
                _ => None,
            })
            .unwrap_or(self.durable.hard_state)
    }

    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    /// What a restarting core is handed.
    pub fn recovered(&self) -> Recovered {
        Recovered {
            hard_state: self.durable.hard_state,
            snapshot: self.durable.snapshot.clone(),
            entries: self.durable.entries.clone(),
        }
    }
}

fn snapshot_index(d: &Durable) -> u64 {
    d.snapshot.as_ref().map_or(0, |s| s.meta.index.0)
}

fn apply(d: &mut Durable, w: Write) {
    match w {
        Write::Ready {
            snapshot,
            hard_state,
            entries,
        } => {
            if let Some(s) = snapshot {
                if s.meta.index.0 > snapshot_index(d) {
                    d.entries.clear();
                    d.snapshot = Some(s);
                }
            }
            if let Some(hs) = hard_state {
                d.hard_state = hs;
            }
            if let Some(first) = entries.first() {
                let first_index = first.index.0;
                let base = snapshot_index(d);
                let last = d.entries.last().map_or(base, |e| e.index.0);
                assert!(
                    first_index <= last + 1,
                    "storage gap: appending {first_index} after {last}"
                );
                d.entries.retain(|e| e.index.0 < first_index);
                d.entries
                    .extend(entries.into_iter().filter(|e| e.index.0 > base));
            }
        }
        Write::Compact(s) => {
            if s.meta.index.0 > snapshot_index(d) {
                let index = s.meta.index.0;
                d.entries.retain(|e| e.index.0 > index);
                if d.entries.first().is_some_and(|e| e.index.0 != index + 1) {
                    // The log had not reached the snapshot: nothing after it is contiguous.
                    d.entries.clear();
                }
                d.snapshot = Some(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{EntryKind, LogIndex, SnapshotMeta, Term};

    fn e(i: u64, t: u64) -> Entry {
        Entry {
            index: LogIndex(i),
            term: Term(t),
            kind: EntryKind::Noop,
        }
    }

    #[test]
    fn a_crash_loses_exactly_the_unsynced_suffix() {
        let mut s = SimStorage::default();
        let a = s.write(Write::Ready {
            snapshot: None,
            hard_state: None,
            entries: vec![e(1, 1), e(2, 1)],
        });
        s.write(Write::Ready {
            snapshot: None,
            hard_state: None,
            entries: vec![e(3, 1)],
        });
        s.sync_to(a);
        assert_eq!(s.crash(), 1);
        assert_eq!(s.recovered().entries, vec![e(1, 1), e(2, 1)]);
    }

    #[test]
    fn entries_truncate_a_conflicting_suffix() {
        let mut s = SimStorage::default();
        s.write(Write::Ready {
            snapshot: None,
            hard_state: None,
            entries: vec![e(1, 1), e(2, 1), e(3, 1)],
        });
        s.write(Write::Ready {
            snapshot: None,
            hard_state: None,
            entries: vec![e(2, 2)],
        });
        s.sync_all();
        assert_eq!(s.recovered().entries, vec![e(1, 1), e(2, 2)]);
    }

    #[test]
    fn compaction_keeps_the_entries_after_the_snapshot() {
        let mut s = SimStorage::default();
        s.write(Write::Ready {
            snapshot: None,
            hard_state: None,
            entries: vec![e(1, 1), e(2, 1), e(3, 1)],
        });
        let snap = Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(2),
                term: Term(1),
                voters: vec![],
                outgoing: Vec::new(),
            },
            data: vec![],
        };
        s.write(Write::Compact(snap.clone()));
        s.sync_all();
        let r = s.recovered();
        assert_eq!(r.snapshot, Some(snap));
        assert_eq!(r.entries, vec![e(3, 1)]);
    }
}

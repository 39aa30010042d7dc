//! FailedWrites: a world check that a write answered definite `fail`
//! never commits.
//!
//! The node answers a pending write `not-leader` (definite: it did not and
//! will not happen) only once another term's entry committed at its index
//! ([`crate::server::pending_writes`]); with issue 21 finding 1's fix
//! reverted it also does so when it merely proposes again at that index,
//! though another node may still commit the old entry. Every such answer is
//! noted with where the write was proposed, and at the end of a run each
//! is looked up in what the nodes applied: an entry applied at the same
//! (index, term) is a `fail` that took effect.
//!
//! A diagnostic: it names the seed and the write even when no read of the
//! clients could see the write's effect (the linearizability checker is the
//! proof that a client can). Protocol-independent.

use super::check::{SafetyMonitor, Violation};
use crate::consensus::{LogIndex, NodeId, Term};

pub const FAILED_WRITE_NEVER_COMMITS: &str =
    "a write answered definite fail never commits (issue 21, finding 1)";

/// One definite `fail` a node answered for a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailedWrite {
    /// Where the write was proposed.
    pub index: LogIndex,
    pub term: Term,
    /// The node that answered, and when (virtual µs).
    pub node: NodeId,
    pub time_us: u64,
    pub op_id: u64,
    /// Failed at once by a later proposal at its index (the planted
    /// early-fail bug), not by another term's commit there.
    pub early: bool,
}

/// Every definite `fail` answered for a write in one run.
#[derive(Clone, Debug, Default)]
pub struct FailedWrites {
    failed: Vec<FailedWrite>,
}

impl FailedWrites {
    pub fn failed(&mut self, write: FailedWrite) {
        self.failed.push(write);
    }

    /// The failed writes some node applied at their (index, term).
    pub fn committed<'a>(
        &'a self,
        monitor: &'a SafetyMonitor,
    ) -> impl Iterator<Item = &'a FailedWrite> + 'a {
        self.failed
            .iter()
            .filter(|w| monitor.applied_term(w.index) == Some(w.term))
    }

    /// The check: Err names the first failed write that committed.
    pub fn check(&self, monitor: &SafetyMonitor, now_us: u64) -> Result<(), Violation> {
        let Some(w) = self.committed(monitor).next() else {
            return Ok(());
        };
        let how = if w.early {
            "when it proposed again at that index"
        } else {
            "when another term committed there"
        };
        Err(Violation {
            property: FAILED_WRITE_NEVER_COMMITS,
            detail: format!(
                "op {} proposed at ({}, {}) was answered not-leader by {} at {} µs {how}, \
                 yet the entry at ({}, {}) was applied",
                w.op_id, w.index, w.term, w.node, w.time_us, w.index, w.term
            ),
            time_us: now_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{Entry, EntryKind};
    use crate::sim::core::Checks;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Noop,
        }
    }

    fn failed(index: u64, term: u64) -> FailedWrite {
        FailedWrite {
            index: LogIndex(index),
            term: Term(term),
            node: NodeId(1),
            time_us: 5,
            op_id: 9,
            early: true,
        }
    }

    #[test]
    fn a_failed_write_whose_entry_is_applied_is_named() {
        let mut monitor = SafetyMonitor::new(Checks {
            log_matching: true,
            leader_completeness: true,
        });
        monitor
            .applied(NodeId(2), &entry(4, 3), 10)
            .expect("one apply is safe");
        let mut writes = FailedWrites::default();
        writes.failed(failed(4, 2));
        assert_eq!(writes.check(&monitor, 20), Ok(()), "another term there");
        writes.failed(failed(4, 3));
        let v = writes.check(&monitor, 20).expect_err("(4, 3) was applied");
        assert_eq!(v.property, FAILED_WRITE_NEVER_COMMITS);
        assert!(
            v.detail.contains("op 9 proposed at (i4, t3)"),
            "{}",
            v.detail
        );
    }
}

//! Reads between their ReadIndex round and their answer, for both runtimes
//! (the node's group.rs and the simulator).
//!
//! A read is issued with a context the core echoes (`read_index(ctx)`);
//! the round's [`ReadOutcome`] either fails it (answered `not-leader`) or
//! names the commit index it must wait for; it is answered from the state
//! machine once that index is applied, and never before (a read answered
//! below its index could miss a write that completed before it began).
//! Answerable reads come out in (index, context) order.

use std::collections::BTreeMap;

use crate::consensus::{LogIndex, NotLeader, ReadOutcome};

/// Reads of one runtime, `R` being what it answers (the node: a batch of
/// client reads; the simulator: one client's op).
#[derive(Debug)]
pub struct ReadQueue<R> {
    /// Issued, the round not ended.
    in_flight: BTreeMap<u64, R>,
    /// Confirmed: waiting for their index to be applied.
    ready: BTreeMap<(LogIndex, u64), R>,
}

impl<R> Default for ReadQueue<R> {
    fn default() -> Self {
        ReadQueue {
            in_flight: BTreeMap::new(),
            ready: BTreeMap::new(),
        }
    }
}

impl<R> ReadQueue<R> {
    /// The core took `read_index(ctx)` for `read`.
    pub fn issued(&mut self, ctx: u64, read: R) {
        let before = self.in_flight.insert(ctx, read);
        assert!(before.is_none(), "a read context is used once");
    }

    /// A round ended: a confirmed read waits for its index; a failed one
    /// is returned with the core's error, to be answered. Outcomes of
    /// reads not in flight (forgotten by a crash) are ignored.
    pub fn outcome(&mut self, outcome: ReadOutcome) -> Option<(R, NotLeader)> {
        match outcome {
            ReadOutcome::Ready { ctx, index } => {
                if let Some(read) = self.in_flight.remove(&ctx) {
                    self.ready.insert((index, ctx), read);
                }
                None
            }
            ReadOutcome::Failed { ctx, error } => {
                self.in_flight.remove(&ctx).map(|read| (read, error))
            }
        }
    }

    /// The confirmed reads whose index is applied (≤ `applied`), in
    /// (index, context) order: answer them now.
    pub fn answerable(&mut self, applied: LogIndex) -> Vec<R> {
        let mut out = Vec::new();
        while let Some(entry) = self.ready.first_entry() {
            if entry.key().0 > applied {
                break;
            }
            out.push(entry.remove());
        }
        out
    }

    /// Every read, in flight or confirmed, that `is_late` says is past
    /// its deadline.
    pub fn take_late(&mut self, is_late: impl Fn(&R) -> bool) -> Vec<R> {
        let late_ctx: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, r)| is_late(r))
            .map(|(c, _)| *c)
            .collect();
        let late_ready: Vec<(LogIndex, u64)> = self
            .ready
            .iter()
            .filter(|(_, r)| is_late(r))
            .map(|(k, _)| *k)
            .collect();
        let mut out: Vec<R> = late_ctx
            .into_iter()
            .filter_map(|c| self.in_flight.remove(&c))
            .collect();
        out.extend(late_ready.into_iter().filter_map(|k| self.ready.remove(&k)));
        out
    }

    /// Every read still waiting (shutdown, or a crash that forgets them).
    pub fn take_all(&mut self) -> Vec<R> {
        let mut out: Vec<R> = std::mem::take(&mut self.in_flight).into_values().collect();
        out.extend(std::mem::take(&mut self.ready).into_values());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::NodeId;

    #[test]
    fn a_read_is_answerable_only_once_its_index_is_applied() {
        let mut q = ReadQueue::default();
        q.issued(1, "a");
        q.issued(2, "b");
        assert!(q
            .outcome(ReadOutcome::Ready {
                ctx: 2,
                index: LogIndex(7)
            })
            .is_none());
        q.outcome(ReadOutcome::Ready {
            ctx: 1,
            index: LogIndex(9),
        });
        assert!(q.answerable(LogIndex(6)).is_empty(), "index 7 not applied");
        assert_eq!(q.answerable(LogIndex(8)), vec!["b"]);
        assert_eq!(q.answerable(LogIndex(9)), vec!["a"]);
        assert!(q.take_all().is_empty());
    }

    #[test]
    fn a_failed_round_hands_its_read_back_with_the_error_once() {
        let mut q = ReadQueue::default();
        q.issued(3, "c");
        let error = NotLeader {
            leader: Some(NodeId(2)),
        };
        let failed = q.outcome(ReadOutcome::Failed { ctx: 3, error });
        assert_eq!(failed, Some(("c", error)));
        assert_eq!(q.outcome(ReadOutcome::Failed { ctx: 3, error }), None);
        // The outcome of a read forgotten (a crash) changes nothing.
        assert!(q
            .outcome(ReadOutcome::Ready {
                ctx: 9,
                index: LogIndex(1)
            })
            .is_none());
        assert!(q.answerable(LogIndex(5)).is_empty());
    }

    #[test]
    fn late_reads_are_taken_wherever_they_wait() {
        let mut q = ReadQueue::default();
        q.issued(1, 10);
        q.issued(2, 50);
        q.issued(3, 60);
        q.outcome(ReadOutcome::Ready {
            ctx: 3,
            index: LogIndex(4),
        });
        let mut late = q.take_late(|deadline| *deadline < 55);
        late.sort();
        assert_eq!(late, vec![10, 50]);
        assert_eq!(q.take_all(), vec![60]);
    }
}

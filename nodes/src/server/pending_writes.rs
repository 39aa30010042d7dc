//! The writes a group proposed and has not answered yet.
//!
//! A proposal is known by where it landed, (index, term). The contract of
//! [`crate::consensus`] allows exactly three answers, and this table gives
//! no other:
//! - the entry committed at that index has the proposal's term: it
//!   happened ([`Settled::ours`]);
//! - the entry committed at that index has another term: it definitely did
//!   not happen ([`Settled::lost`]);
//! - neither by the deadline (or a snapshot covered the index, or the node
//!   stops): the outcome is unknown, `timeout`.
//!
//! What the table never does is settle a proposal because this node's own
//! log no longer holds it. A leader that proposes again at an index it
//! already holds a write for (a later term: its old entry was truncated
//! here) keeps both: the old entry may still sit on other nodes and commit
//! there (issue 21, finding 1), so only a commit decides.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::consensus::{LogIndex, Term};

/// The answers owed at one committed index.
#[derive(Debug)]
pub struct Settled<W> {
    /// The write whose entry committed: answer it with the applied result.
    pub ours: Option<W>,
    /// Writes proposed at the same index in other terms: definitely failed.
    pub lost: Vec<W>,
}

/// Pending writes by (index, term), each with its answer deadline.
#[derive(Debug)]
pub struct PendingWrites<W> {
    writes: BTreeMap<(LogIndex, Term), (Instant, W)>,
}

impl<W> Default for PendingWrites<W> {
    fn default() -> Self {
        PendingWrites {
            writes: BTreeMap::new(),
        }
    }
}

impl<W> PendingWrites<W> {
    /// Remember a proposal that landed at (`index`, `term`).
    pub fn insert(&mut self, index: LogIndex, term: Term, deadline: Instant, write: W) {
        let previous = self.writes.insert((index, term), (deadline, write));
        assert!(
            previous.is_none(),
            "a term never proposes at one index twice"
        );
    }

    /// The entry at `index` committed with `term`: who is answered how.
    pub fn settle(&mut self, index: LogIndex, term: Term) -> Settled<W> {
        let keys: Vec<(LogIndex, Term)> = self
            .writes
            .range((index, Term(0))..=(index, Term(u64::MAX)))
            .map(|(k, _)| *k)
            .collect();
        let mut settled = Settled {
            ours: None,
            lost: Vec::new(),
        };
        for key in keys {
            let (_, write) = self.writes.remove(&key).expect("key just listed");
            if key.1 == term {
                settled.ours = Some(write);
            } else {
                settled.lost.push(write);
            }
        }
        settled
    }

    /// Every write at an index ≤ `index` (a snapshot covers them: whether
    /// they were ours cannot be told; answer them `timeout`).
    pub fn take_through(&mut self, index: LogIndex) -> Vec<W> {
        let rest = self.writes.split_off(&(index.next(), Term(0)));
        std::mem::replace(&mut self.writes, rest)
            .into_values()
            .map(|(_, w)| w)
            .collect()
    }

    /// Every write whose deadline is at or before `now`.
    pub fn take_expired(&mut self, now: Instant) -> Vec<W> {
        let late: Vec<(LogIndex, Term)> = self
            .writes
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        late.into_iter()
            .map(|k| self.writes.remove(&k).expect("key just listed").1)
            .collect()
    }

    /// Every write (the node stops).
    pub fn take_all(&mut self) -> Vec<W> {
        std::mem::take(&mut self.writes)
            .into_values()
            .map(|(_, w)| w)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn table() -> (PendingWrites<&'static str>, Instant) {
        let now = Instant::now();
        let mut t = PendingWrites::default();
        t.insert(LogIndex(5), Term(2), now + Duration::from_secs(1), "x@t2");
        (t, now)
    }

    /// Finding 1: reusing an index in a later term settles nobody.
    #[test]
    fn a_later_term_at_the_same_index_keeps_both_writes_pending() {
        let (mut t, now) = table();
        t.insert(LogIndex(5), Term(4), now + Duration::from_secs(1), "y@t4");
        assert_eq!(t.len(), 2, "both proposals wait for the commit at index 5");
        let s = t.settle(LogIndex(5), Term(2));
        assert_eq!(
            s.ours,
            Some("x@t2"),
            "the older proposal committed after all"
        );
        assert_eq!(s.lost, vec!["y@t4"], "the newer one definitely failed");
        assert!(t.is_empty());
    }

    #[test]
    fn a_commit_with_another_term_fails_every_proposal_at_that_index() {
        let (mut t, now) = table();
        t.insert(LogIndex(6), Term(2), now + Duration::from_secs(1), "z@t2");
        let s = t.settle(LogIndex(5), Term(3));
        assert_eq!(s.ours, None);
        assert_eq!(s.lost, vec!["x@t2"]);
        assert_eq!(t.len(), 1, "index 6 still waits");
    }

    #[test]
    fn expiry_snapshot_and_shutdown_take_writes_without_settling_them() {
        let (mut t, now) = table();
        t.insert(LogIndex(5), Term(3), now + Duration::from_secs(9), "late");
        t.insert(LogIndex(7), Term(3), now + Duration::from_secs(9), "after");
        assert_eq!(t.take_expired(now + Duration::from_secs(2)), vec!["x@t2"]);
        assert_eq!(t.take_through(LogIndex(5)), vec!["late"]);
        assert_eq!(t.take_all(), vec!["after"]);
        assert!(t.is_empty());
    }
}

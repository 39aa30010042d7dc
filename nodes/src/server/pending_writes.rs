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
//!
//! The node and the simulator share this table: the node with
//! [`Instant`] deadlines, the simulator ([`crate::sim`]) with virtual
//! microseconds, so the simulator's clients are answered exactly as the
//! node's are. [`PendingWrites::planted_early_fail`] reverts finding 1's
//! fix for the simulator's proof of power; the node never builds it (it
//! is no [`crate::bug::Bug`]: the harness's planted-bug matrix could not
//! catch it reliably; README.md, "Replaying a simulation").

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

/// What a proposal at an index that already holds an older term's write
/// does to that write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reproposal {
    /// Both wait for the commit at the index (the contract).
    KeepBoth,
    /// Planted bug (simulator only): the older write is failed at once,
    /// definitely, though another node may still commit it (finding 1's
    /// fix reverted).
    FailOlderAtOnce,
}

/// Pending writes by (index, term), each with its answer deadline `D`
/// (the node: [`Instant`]; the simulator: virtual microseconds).
#[derive(Debug)]
pub struct PendingWrites<W, D = Instant> {
    writes: BTreeMap<(LogIndex, Term), (D, W)>,
    reproposal: Reproposal,
    /// With the planted bug: writes failed by a later proposal at their
    /// index, not yet taken by [`PendingWrites::take_failed_early`].
    failed_early: Vec<W>,
}

impl<W, D> Default for PendingWrites<W, D> {
    fn default() -> Self {
        PendingWrites {
            writes: BTreeMap::new(),
            reproposal: Reproposal::KeepBoth,
            failed_early: Vec::new(),
        }
    }
}

impl<W, D: Copy + Ord> PendingWrites<W, D> {
    /// The table with issue 21 finding 1's fix reverted, for the
    /// simulator's proof of power only: a proposal at an index that holds
    /// an older term's write fails that write at once (collect them with
    /// [`PendingWrites::take_failed_early`] and answer them definitely).
    pub fn planted_early_fail() -> Self {
        PendingWrites {
            reproposal: Reproposal::FailOlderAtOnce,
            ..PendingWrites::default()
        }
    }

    /// Remember a proposal that landed at (`index`, `term`).
    pub fn insert(&mut self, index: LogIndex, term: Term, deadline: D, write: W) {
        if self.reproposal == Reproposal::FailOlderAtOnce {
            let older: Vec<(LogIndex, Term)> = self
                .writes
                .range((index, Term(0))..(index, term))
                .map(|(k, _)| *k)
                .collect();
            for key in older {
                let (_, w) = self.writes.remove(&key).expect("key just listed");
                self.failed_early.push(w);
            }
        }
        let previous = self.writes.insert((index, term), (deadline, write));
        assert!(
            previous.is_none(),
            "a term never proposes at one index twice"
        );
    }

    /// The writes the planted bug failed since the last call (always empty
    /// without it).
    pub fn take_failed_early(&mut self) -> Vec<W> {
        std::mem::take(&mut self.failed_early)
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
    pub fn take_expired(&mut self, now: D) -> Vec<W> {
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

    /// How many writes wait at `index` (more than one: proposed there in
    /// several terms).
    pub fn count_at(&self, index: LogIndex) -> usize {
        self.writes
            .range((index, Term(0))..=(index, Term(u64::MAX)))
            .count()
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
        assert_eq!(t.count_at(LogIndex(5)), 2);
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

    /// The simulator's deadlines are virtual microseconds.
    #[test]
    fn deadlines_can_be_virtual_time() {
        let mut t: PendingWrites<&str, u64> = PendingWrites::default();
        t.insert(LogIndex(3), Term(1), 600, "a");
        t.insert(LogIndex(4), Term(1), 900, "b");
        assert!(t.take_expired(599).is_empty());
        assert_eq!(t.take_expired(600), vec!["a"]);
        assert_eq!(t.len(), 1);
    }

    /// The planted bug reverts finding 1's fix, and only it: the older
    /// write is failed at once, the newer one waits, other indexes too.
    #[test]
    fn the_planted_early_fail_fails_an_older_write_at_a_reused_index_at_once() {
        let mut t: PendingWrites<&str, u64> = PendingWrites::planted_early_fail();
        t.insert(LogIndex(5), Term(2), 10, "x@t2");
        t.insert(LogIndex(6), Term(2), 10, "w@t2");
        assert!(t.take_failed_early().is_empty());
        t.insert(LogIndex(5), Term(4), 10, "y@t4");
        assert_eq!(t.take_failed_early(), vec!["x@t2"]);
        assert_eq!(t.len(), 2, "y@t4 and w@t2 wait for their commits");
        let s = t.settle(LogIndex(5), Term(4));
        assert_eq!(s.ours, Some("y@t4"));
        assert!(s.lost.is_empty());
    }

    #[test]
    fn without_the_planted_bug_nothing_is_failed_early() {
        let (mut t, now) = table();
        t.insert(LogIndex(5), Term(4), now + Duration::from_secs(1), "y@t4");
        assert!(t.take_failed_early().is_empty());
        assert_eq!(t.len(), 2);
    }
}

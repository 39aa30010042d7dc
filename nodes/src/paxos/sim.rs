//! The simulator's view of the Paxos core: a [`SimCore`] impl and the
//! [`PaxosOracle`], which checks Paxos' safety properties across nodes from
//! what every core journals ([`Observation`]), after every step:
//! - at most one value is chosen per slot (a value is chosen once a quorum
//!   *durably* accepted it at one ballot; "Paxos Made Simple" P2);
//! - one value per (slot, ballot) (a leader proposes once per slot);
//! - no acceptor breaks its promise: nothing is durably accepted below a
//!   ballot the same acceptor durably promised, across restarts;
//! - learned values agree across nodes and were chosen.
//!
//! The oracle only believes durable facts, which the core records when the
//! runtime acknowledges a write: with the `no-fsync` bug those are lies,
//! and the oracle sees the consequences (a broken promise, two values
//! chosen at one slot).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::ballot::{Ballot, Stamp};
use super::node::{Observation, PaxosNode};
use crate::consensus::{ConfigError, CoreConfig, Entry, EntryKind, LogIndex, NodeId, Recovered};
use crate::sim::core::{Checks, CoreView, SimCore};
use crate::sim::fnv::Fnv;

pub const ONE_VALUE_PER_SLOT: &str = "at most one value chosen per slot (Paxos P2)";
pub const ONE_VALUE_PER_BALLOT: &str = "one value per slot and ballot (Paxos P2a)";
pub const PROMISES_KEPT: &str = "no acceptor breaks its promise (Paxos P1a)";
pub const LEARNED_AGREE: &str = "learned values agree and were chosen";

/// A value's identity: its origin ballot and a digest of its bytes.
type Value = (Ballot, u64);

fn value(e: &Entry) -> Value {
    let mut h = Fnv::new();
    match &e.kind {
        EntryKind::Normal(b) => {
            h.u64(1);
            h.bytes(b);
        }
        EntryKind::Noop => h.u64(2),
        EntryKind::ConfigChange(v) => {
            h.u64(3);
            for n in &v.voters {
                h.u64(n.0);
            }
            h.u64(u64::MAX);
            for n in &v.outgoing {
                h.u64(n.0);
            }
        }
    }
    (Stamp::of(e.term).origin, h.finish())
}

/// Cross-node Paxos safety checks with memory across steps and restarts.
#[derive(Debug, Default)]
pub struct PaxosOracle {
    quorum: usize,
    promised: BTreeMap<NodeId, Ballot>,
    /// (slot, ballot) → the value and who durably accepted it.
    accepts: HashMap<(LogIndex, Ballot), (Value, BTreeSet<NodeId>)>,
    /// slot → (value, ballot it was chosen at).
    chosen: HashMap<LogIndex, (Value, Ballot)>,
    /// slot → (value, first learner).
    learned: HashMap<LogIndex, (Value, NodeId)>,
    pub chosen_slots: u64,
    pub observations: u64,
}

impl PaxosOracle {
    pub fn new(voters: usize) -> PaxosOracle {
        PaxosOracle {
            quorum: voters / 2 + 1,
            ..PaxosOracle::default()
        }
    }

    /// Check one node's new observations, in the order it made them.
    pub fn observe(
        &mut self,
        node: NodeId,
        observations: Vec<Observation>,
    ) -> Result<(), (&'static str, String)> {
        assert!(self.quorum > 0, "the oracle knows the cluster size");
        for o in observations {
            self.observations += 1;
            match o {
                Observation::Promised(b) => {
                    let p = self.promised.entry(node).or_default();
                    *p = (*p).max(b);
                }
                Observation::Accepted(e) => self.accepted(node, &e)?,
                Observation::Learned(e) => {
                    // Learned entries carry the origin as their term: the low bits of a stamp.
                    let v = value(&e);
                    if let Some(&(v0, by)) = self.learned.get(&e.index) {
                        if v0 != v {
                            return Err((
                                LEARNED_AGREE,
                                format!(
                                    "{node} learned {v:?} at slot {} but {by} learned {v0:?}",
                                    e.index
                                ),
                            ));
                        }
                    } else {
                        self.learned.insert(e.index, (v, node));
                    }
                    match self.chosen.get(&e.index) {
                        Some(&(c, _)) if c != v => {
                            return Err((
                                LEARNED_AGREE,
                                format!(
                                    "{node} learned {v:?} at slot {} but {c:?} was chosen",
                                    e.index
                                ),
                            ));
                        }
                        Some(_) => {}
                        None => {
                            return Err((
                                LEARNED_AGREE,
                                format!(
                                    "{node} learned {v:?} at slot {}, which no quorum accepted",
                                    e.index
                                ),
                            ))
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn accepted(&mut self, node: NodeId, e: &Entry) -> Result<(), (&'static str, String)> {
        let s = Stamp::of(e.term);
        let promised = self.promised.get(&node).copied().unwrap_or_default();
        if s.accepted < promised {
            return Err((
                PROMISES_KEPT,
                format!(
                    "{node} accepted slot {} at {} after durably promising {promised}",
                    e.index, s.accepted
                ),
            ));
        }
        let v = value(e);
        let (v0, who) = self
            .accepts
            .entry((e.index, s.accepted))
            .or_insert_with(|| (v, BTreeSet::new()));
        if *v0 != v {
            return Err((
                ONE_VALUE_PER_BALLOT,
                format!(
                    "slot {} ballot {}: {node} accepted {v:?}, others {:?} accepted {v0:?}",
                    e.index, s.accepted, who
                ),
            ));
        }
        who.insert(node);
        if who.len() >= self.quorum {
            match self.chosen.get(&e.index) {
                Some(&(c, at)) if c != v => {
                    return Err((
                        ONE_VALUE_PER_SLOT,
                        format!(
                            "slot {}: {v:?} chosen at {} by {who:?}, but {c:?} was chosen at {at}",
                            e.index, s.accepted
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    self.chosen.insert(e.index, (v, s.accepted));
                    self.chosen_slots += 1;
                }
            }
        }
        Ok(())
    }
}

impl SimCore for PaxosNode {
    const PROTOCOL: &'static str = "paxos";
    // Raft's log matching and leader completeness are about terms of a log
    // that only a leader writes; Paxos re-stamps values per ballot. Its own
    // properties are checked by `check_self` and the oracle.
    const CHECKS: Checks = Checks {
        log_matching: false,
        leader_completeness: false,
    };

    fn build(cfg: CoreConfig, recovered: Recovered) -> Result<Self, ConfigError> {
        let mut node = PaxosNode::new(cfg, recovered)?;
        node.enable_journal();
        Ok(node)
    }

    fn view(&self) -> CoreView<'_> {
        let log = self.log();
        CoreView {
            role: self.role(),
            term: self.promised().term(),
            snapshot_index: log.snapshot_index(),
            snapshot_term: log.snapshot().meta.term,
            entries: log.entries(),
        }
    }

    fn check_self(&self) -> Result<(), String> {
        self.invariants()
    }

    fn new_oracle(voters: usize) -> Box<dyn std::any::Any> {
        Box::new(PaxosOracle::new(voters))
    }

    fn check_cluster(
        &mut self,
        oracle: &mut dyn std::any::Any,
        node: NodeId,
    ) -> Result<(), (&'static str, String)> {
        let oracle = oracle
            .downcast_mut::<PaxosOracle>()
            .expect("the world holds the oracle new_oracle made");
        let observations = self.take_journal();
        oracle.observe(node, observations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Term;

    fn acc(i: u64, b: Ballot, origin: Ballot, v: u8) -> Observation {
        Observation::Accepted(Entry {
            index: LogIndex(i),
            term: Stamp::new(b, origin).term(),
            kind: EntryKind::Normal(vec![v]),
        })
    }

    #[test]
    fn two_values_chosen_at_one_slot_are_caught() {
        let (b1, b2) = (Ballot::new(1, NodeId(1)), Ballot::new(2, NodeId(2)));
        let mut o = PaxosOracle::new(3);
        o.observe(NodeId(1), vec![acc(1, b1, b1, 7)])
            .expect("one accept");
        o.observe(NodeId(2), vec![acc(1, b1, b1, 7)])
            .expect("chosen");
        o.observe(NodeId(3), vec![acc(1, b2, b2, 8)])
            .expect("a minority value");
        let err = o
            .observe(NodeId(2), vec![acc(1, b2, b2, 8)])
            .expect_err("a second value chosen");
        assert_eq!(err.0, ONE_VALUE_PER_SLOT);
    }

    #[test]
    fn accepting_below_a_durable_promise_is_caught() {
        let (b1, b2) = (Ballot::new(1, NodeId(1)), Ballot::new(2, NodeId(2)));
        let mut o = PaxosOracle::new(3);
        o.observe(NodeId(3), vec![Observation::Promised(b2)])
            .expect("promise");
        let err = o
            .observe(NodeId(3), vec![acc(1, b1, b1, 1)])
            .expect_err("broken promise");
        assert_eq!(err.0, PROMISES_KEPT);
    }

    #[test]
    fn a_learned_value_must_have_been_chosen_and_agree() {
        let b1 = Ballot::new(1, NodeId(1));
        let learned = |v: u8| {
            Observation::Learned(Entry {
                index: LogIndex(1),
                term: Term(b1.0),
                kind: EntryKind::Normal(vec![v]),
            })
        };
        let mut o = PaxosOracle::new(3);
        assert_eq!(
            o.observe(NodeId(1), vec![learned(1)])
                .expect_err("not chosen")
                .0,
            LEARNED_AGREE
        );
        let mut o = PaxosOracle::new(3);
        o.observe(NodeId(1), vec![acc(1, b1, b1, 1), acc(1, b1, b1, 1)])
            .expect("same node twice");
        assert_eq!(o.chosen_slots, 0, "one acceptor is not a quorum");
        o.observe(NodeId(2), vec![acc(1, b1, b1, 1)])
            .expect("chosen");
        o.observe(NodeId(1), vec![learned(1)])
            .expect("learned the chosen value");
        assert_eq!(
            o.observe(NodeId(2), vec![learned(2)])
                .expect_err("disagrees")
                .0,
            LEARNED_AGREE
        );
    }
}

//! The simulator's view of the Paxos core: a [`SimCore`] impl and the
//! [`PaxosOracle`], which checks Paxos' safety properties across nodes from
//! what every core journals ([`Observation`]), after every step:
//! - at most one value is chosen per slot (a value is chosen once a quorum
//!   *durably* accepted it at one ballot; "Paxos Made Simple" P2);
//! - one value per (slot, ballot) (a leader proposes once per slot);
//! - no acceptor breaks its promise: nothing is durably accepted below a
//!   ballot the same acceptor durably promised, across restarts;
//! - learned values agree across nodes and were chosen;
//! - across membership changes, a value is chosen at slot s by ballot b
//!   when a majority of the configuration governing s *in b's log* durably
//!   accepted it: the latest configuration before s among b's own values
//!   (what acceptors accepted at b), else among the chosen values, else the
//!   seed (α = 1). (A lower ballot's values after a slot that a higher
//!   ballot later turns into a configuration are not chosen by the new
//!   voters: b never counted them so.) The oracle derives configurations
//!   from accepts and chosen values, not from the cores, so a core that
//!   counts the wrong acceptors for a slot is caught as soon as two values
//!   get chosen there; and a configuration chosen after a later slot was
//!   chosen (a leader that proposed beyond an unchosen configuration) is a
//!   violation of its own.
//!
//! A joining core on an empty disk starts with [`Observation::Blank`]: the
//! promises of a wiped node's old self no longer bind it (it votes only in
//! configurations after the one that removed it).
//!
//! The oracle only believes durable facts, which the core records when the
//! runtime acknowledges a write (the world hands it the journal after every
//! step and after a removed node's last flush: an accept made durable there
//! is counted by the leader that gets its Accepted, so the oracle must
//! count it too; seed 463 of the membership sweep): with the `no-fsync` bug those are lies,
//! and the oracle sees the consequences (a broken promise, two values
//! chosen at one slot).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::ballot::{Ballot, Stamp};
use super::node::{Observation, PaxosNode};
use crate::consensus::{
    ConfigError, CoreConfig, Entry, EntryKind, LogIndex, NodeId, Recovered, Term,
};
use crate::sim::core::{Checks, CoreView, SimCore};
use crate::sim::fnv::Fnv;

pub const ONE_VALUE_PER_SLOT: &str = "at most one value chosen per slot (Paxos P2)";
pub const ONE_VALUE_PER_BALLOT: &str = "one value per slot and ballot (Paxos P2a)";
pub const PROMISES_KEPT: &str = "no acceptor breaks its promise (Paxos P1a)";
pub const LEARNED_AGREE: &str = "learned values agree and were chosen";
pub const SEEDS_AGREE: &str = "every core of a new group is seeded with the same voters";
pub const CONFIG_FIRST: &str =
    "a configuration is chosen before any later slot (α = 1: no slot beyond an unchosen configuration)";

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
    /// slot → voters: the seed configuration at slot 0, then every chosen
    /// configuration at its slot; it governs the slots after it (α = 1).
    configs: BTreeMap<LogIndex, Vec<NodeId>>,
    promised: BTreeMap<NodeId, Ballot>,
    /// (slot, ballot) → the value (and its voters if it is a
    /// configuration) and who durably accepted it.
    accepts: HashMap<(LogIndex, Ballot), Accepts>,
    /// ballot → the configuration values accepted at it, by slot.
    ballot_configs: HashMap<Ballot, BTreeMap<LogIndex, Vec<NodeId>>>,
    /// slot → (value, ballot it was chosen at).
    chosen: BTreeMap<LogIndex, (Value, Ballot)>,
    /// slot → (value, first learner).
    learned: HashMap<LogIndex, (Value, NodeId)>,
    pub chosen_slots: u64,
    /// Configurations chosen (not counting the seed).
    pub configs_chosen: u64,
    pub observations: u64,
}

#[derive(Debug)]
struct Accepts {
    value: Value,
    config: Option<Vec<NodeId>>,
    who: BTreeSet<NodeId>,
}

type Check = Result<(), (&'static str, String)>;

impl PaxosOracle {
    /// An oracle for one run; it learns the seed configuration from the
    /// cores ([`Observation::Seeded`]), so the voter count is not used.
    pub fn new(_voters: usize) -> PaxosOracle {
        PaxosOracle::default()
    }

    /// The voters governing `slot`: the latest chosen configuration before it.
    pub fn config_for(&self, slot: LogIndex) -> &[NodeId] {
        self.configs
            .range(..slot)
            .next_back()
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// The voters governing `slot` in the log of ballot `b`: the latest
    /// configuration before `slot` among b's own values (what acceptors
    /// accepted at b) and, where b has no value, the chosen ones.
    pub fn config_at_ballot(&self, slot: LogIndex, b: Ballot) -> &[NodeId] {
        let own = self
            .ballot_configs
            .get(&b)
            .and_then(|m| m.range(..slot).next_back());
        for (jc, v) in self.configs.range(..slot).rev() {
            if own.is_some_and(|(j, _)| jc <= j) {
                break;
            }
            if self
                .accepts
                .get(&(*jc, b))
                .is_some_and(|a| a.config.is_none())
            {
                // b put an ordinary value there: in b's log it is no configuration.
                continue;
            }
            return v;
        }
        own.map_or(&[], |(_, v)| v.as_slice())
    }

    /// Whether `who` holds a quorum, for `slot` at ballot `b`.
    fn is_quorum(&self, slot: LogIndex, b: Ballot, who: &BTreeSet<NodeId>) -> bool {
        let c = self.config_at_ballot(slot, b);
        !c.is_empty() && c.iter().filter(|v| who.contains(v)).count() > c.len() / 2
    }

    /// Check one node's new observations, in the order it made them.
    pub fn observe(&mut self, node: NodeId, observations: Vec<Observation>) -> Check {
        for o in observations {
            self.observations += 1;
            match o {
                Observation::Blank => {
                    // A new or wiped node: nothing of it is durable any more.
                    self.promised.remove(&node);
                }
                Observation::Seeded(voters) => match self.configs.get(&LogIndex(0)) {
                    None => {
                        self.configs.insert(LogIndex(0), voters);
                    }
                    Some(v) if *v == voters => {}
                    Some(v) => {
                        return Err((
                            SEEDS_AGREE,
                            format!("{node} was seeded with {voters:?}, others with {v:?}"),
                        ))
                    }
                },
                Observation::Promised(b) => {
                    let p = self.promised.entry(node).or_default();
                    *p = (*p).max(b);
                }
                Observation::Accepted(e) => self.accepted(node, &e)?,
                Observation::Learned(e) => self.learned(node, &e)?,
            }
        }
        Ok(())
    }

    fn learned(&mut self, node: NodeId, e: &Entry) -> Check {
        // Learned entries carry the origin as their term: the low bits of a stamp.
        let v = value(e);
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
            Some(&(c, _)) if c != v => Err((
                LEARNED_AGREE,
                format!(
                    "{node} learned {v:?} at slot {} but {c:?} was chosen",
                    e.index
                ),
            )),
            Some(_) => Ok(()),
            None => Err((
                LEARNED_AGREE,
                format!(
                    "{node} learned {v:?} at slot {}, which no quorum of {:?} accepted",
                    e.index,
                    self.config_for(e.index)
                ),
            )),
        }
    }

    fn accepted(&mut self, node: NodeId, e: &Entry) -> Check {
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
        let config = match &e.kind {
            EntryKind::ConfigChange(m) => Some(m.voters.clone()),
            _ => None,
        };
        let a = self
            .accepts
            .entry((e.index, s.accepted))
            .or_insert_with(|| Accepts {
                value: v,
                config: config.clone(),
                who: BTreeSet::new(),
            });
        if a.value != v {
            return Err((
                ONE_VALUE_PER_BALLOT,
                format!(
                    "slot {} ballot {}: {node} accepted {v:?}, others {:?} accepted {:?}",
                    e.index, s.accepted, a.who, a.value
                ),
            ));
        }
        a.who.insert(node);
        if let Some(c) = config {
            self.ballot_configs
                .entry(s.accepted)
                .or_default()
                .insert(e.index, c);
        }
        if self.is_quorum(
            e.index,
            s.accepted,
            &self.accepts[&(e.index, s.accepted)].who,
        ) {
            self.chosen_at(e.index, s.accepted)?;
        }
        Ok(())
    }

    /// A quorum of the configuration governing `slot` accepted the value of
    /// `ballot` there: it is chosen.
    fn chosen_at(&mut self, slot: LogIndex, ballot: Ballot) -> Check {
        let a = &self.accepts[&(slot, ballot)];
        let (v, config) = (a.value, a.config.clone());
        match self.chosen.get(&slot) {
            Some(&(c, at)) if c != v => {
                return Err((
                    ONE_VALUE_PER_SLOT,
                    format!(
                        "slot {slot}: {v:?} chosen at {ballot} by {:?}, but {c:?} was chosen at {at}",
                        a.who
                    ),
                ));
            }
            Some(_) => return Ok(()),
            None => {
                self.chosen.insert(slot, (v, ballot));
                self.chosen_slots += 1;
            }
        }
        let Some(voters) = config else {
            return Ok(());
        };
        // α = 1: no slot after an undecided configuration slot is chosen.
        if let Some((&later, _)) = self.chosen.range(slot.next()..).next() {
            return Err((
                CONFIG_FIRST,
                format!(
                    "configuration {voters:?} chosen at slot {slot} after slot {later} was chosen"
                ),
            ));
        }
        self.configs.insert(slot, voters);
        self.configs_chosen += 1;
        // Accepts after it now count in the new configuration.
        let mut later: Vec<(LogIndex, Ballot)> = self
            .accepts
            .iter()
            .filter(|((i, b), a)| *i > slot && self.is_quorum(*i, *b, &a.who))
            .map(|(k, _)| *k)
            .collect();
        later.sort_unstable();
        for (i, b) in later {
            self.chosen_at(i, b)?;
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

    /// As the real runtime does (`join-group`, groups.json): a node added
    /// back starts at a ballot no lower than any its old self had, and
    /// votes only from the slot after the last one its old self held, or
    /// from the adding entry's slot if that is later (the module docs,
    /// rule 6: either keeps it off every slot its old self voted at).
    fn joining(
        adding: (Term, LogIndex),
        left: Option<(Term, LogIndex)>,
    ) -> (Term, Option<(Term, LogIndex)>) {
        let Some((left_term, left_last)) = left else {
            return (adding.0, Some(adding));
        };
        (
            adding.0.max(left_term),
            Some((adding.0, adding.1.max(left_last.next()))),
        )
    }

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

    /// A candidate gets a promise with no accepted values, a leader an
    /// acceptance of every slot it holds: either may then choose without
    /// a real majority, and a value chosen earlier may be lost (P2).
    fn forged_message(&self, _claims: NodeId) -> Option<crate::consensus::Payload> {
        use super::message::PaxosMessage;
        let ballot = self.promised();
        let message = match self.role() {
            crate::consensus::Role::Candidate => PaxosMessage::Promise {
                ballot,
                commit: self.log().commit(),
                snapshot: None,
                entries: Vec::new(),
                resume: None,
                more: false,
            },
            crate::consensus::Role::Leader => PaxosMessage::Accepted {
                ballot,
                ok: true,
                agreed: self.view().last_index(),
            },
            _ => return None,
        };
        Some(crate::consensus::Payload::Paxos(message))
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

    fn oracle(voters: &[u64]) -> PaxosOracle {
        let mut o = PaxosOracle::new(voters.len());
        o.observe(
            NodeId(voters[0]),
            vec![Observation::Seeded(
                voters.iter().copied().map(NodeId).collect(),
            )],
        )
        .expect("seeded");
        o
    }

    fn acc_config(i: u64, b: Ballot, voters: &[u64]) -> Observation {
        Observation::Accepted(Entry {
            index: LogIndex(i),
            term: Stamp::new(b, b).term(),
            kind: EntryKind::ConfigChange(crate::consensus::Membership::simple(
                voters.iter().copied().map(NodeId).collect(),
            )),
        })
    }

    #[test]
    fn quorums_follow_the_chosen_configuration() {
        let b1 = Ballot::new(1, NodeId(1));
        let mut o = oracle(&[1, 2, 3]);
        // Slot 1 moves the group to {3, 4, 5}.
        o.observe(NodeId(1), vec![acc_config(1, b1, &[3, 4, 5])])
            .expect("one accept");
        o.observe(NodeId(2), vec![acc_config(1, b1, &[3, 4, 5])])
            .expect("chosen by {1, 2}");
        assert_eq!(o.configs_chosen, 1);
        assert_eq!(
            o.config_for(LogIndex(2)),
            &[NodeId(3), NodeId(4), NodeId(5)]
        );
        // {1, 2} are no quorum for slot 2 any more; {4, 5} are.
        o.observe(NodeId(1), vec![acc(2, b1, b1, 7)])
            .expect("accept");
        o.observe(NodeId(2), vec![acc(2, b1, b1, 7)])
            .expect("accept");
        assert_eq!(o.chosen_slots, 1, "old voters choose nothing after slot 1");
        let b2 = Ballot::new(2, NodeId(4));
        o.observe(NodeId(4), vec![acc(2, b2, b2, 8)])
            .expect("accept");
        o.observe(NodeId(5), vec![acc(2, b2, b2, 8)])
            .expect("chosen by {4, 5}");
        assert_eq!(o.chosen_slots, 2);
        // A value the old voters learned at slot 2 was not chosen.
        let learned = Observation::Learned(Entry {
            index: LogIndex(2),
            term: Term(b1.0),
            kind: EntryKind::Normal(vec![7]),
        });
        assert_eq!(
            o.observe(NodeId(1), vec![learned])
                .expect_err("not chosen")
                .0,
            LEARNED_AGREE
        );
    }

    #[test]
    fn quorums_are_counted_in_the_configuration_of_the_ballots_own_log() {
        // Seed {1,2,3}. Ballot b1 put ordinary values at 6 and 7 (accepted
        // by 3 and 5 only); the higher b2 chose configuration {2,3,5} at 6.
        // In b1's log slot 7 is still governed by {1,2,3}: {3,5} chose
        // nothing there, and b2 may choose another value at 7.
        let (b1, b2) = (Ballot::new(1, NodeId(3)), Ballot::new(2, NodeId(2)));
        let mut o = oracle(&[1, 2, 3]);
        for n in [3, 5] {
            o.observe(NodeId(n), vec![acc(6, b1, b1, 1), acc(7, b1, b1, 2)])
                .expect("b1's accepts");
        }
        for n in [1, 2] {
            o.observe(NodeId(n), vec![acc_config(6, b2, &[2, 3, 5])])
                .expect("b2 chooses the configuration");
        }
        assert_eq!(
            o.config_for(LogIndex(7)),
            &[NodeId(2), NodeId(3), NodeId(5)]
        );
        assert_eq!(
            o.config_at_ballot(LogIndex(7), b1),
            &[NodeId(1), NodeId(2), NodeId(3)]
        );
        assert_eq!(o.chosen_slots, 1, "only b2's configuration is chosen");
        for n in [2, 3] {
            o.observe(NodeId(n), vec![acc(7, b2, b2, 9)])
                .expect("b2 chooses its value at 7");
        }
        assert_eq!(o.chosen_slots, 2);
        // But had b2 (knowing slot 6 chosen) let {3, 5} choose one value and
        // {2, 3} another at 8, that is two values.
        for n in [3, 5] {
            o.observe(NodeId(n), vec![acc(8, b2, b2, 4)])
                .expect("chosen");
        }
        let b3 = Ballot::new(3, NodeId(2));
        o.observe(NodeId(2), vec![acc(8, b3, b3, 5)])
            .expect("one accept");
        let err = o
            .observe(NodeId(3), vec![acc(8, b3, b3, 5)])
            .expect_err("a second value chosen at 8");
        assert_eq!(err.0, ONE_VALUE_PER_SLOT);
    }

    #[test]
    fn a_configuration_chosen_after_a_later_slot_is_caught() {
        let b1 = Ballot::new(1, NodeId(1));
        let mut o = oracle(&[1, 2, 3]);
        o.observe(
            NodeId(1),
            vec![acc(2, b1, b1, 7), acc_config(1, b1, &[1, 2])],
        )
        .expect("accepts");
        o.observe(NodeId(2), vec![acc(2, b1, b1, 7)])
            .expect("slot 2 chosen in the seed configuration");
        let err = o
            .observe(NodeId(2), vec![acc_config(1, b1, &[1, 2])])
            .expect_err("slot 1's configuration came too late");
        assert_eq!(err.0, CONFIG_FIRST);
    }

    #[test]
    fn a_wiped_node_is_bound_by_no_old_promise() {
        let (b1, b2) = (Ballot::new(1, NodeId(1)), Ballot::new(2, NodeId(2)));
        let mut o = oracle(&[1, 2, 3]);
        o.observe(NodeId(3), vec![Observation::Promised(b2)])
            .expect("promise");
        o.observe(NodeId(3), vec![Observation::Blank, acc(5, b1, b1, 1)])
            .expect("a new incarnation on an empty disk");
    }

    #[test]
    fn two_values_chosen_at_one_slot_are_caught() {
        let (b1, b2) = (Ballot::new(1, NodeId(1)), Ballot::new(2, NodeId(2)));
        let mut o = oracle(&[1, 2, 3]);
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
        let mut o = oracle(&[1, 2, 3]);
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
        let mut o = oracle(&[1, 2, 3]);
        assert_eq!(
            o.observe(NodeId(1), vec![learned(1)])
                .expect_err("not chosen")
                .0,
            LEARNED_AGREE
        );
        let mut o = oracle(&[1, 2, 3]);
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

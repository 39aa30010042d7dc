//! Quorum arithmetic, shared by Raft and Multi-Paxos: majorities of one
//! voter set, and joint configurations that need a majority of each half
//! (Raft's C_old,new, thesis §4.3). Modelled on etcd's raft/quorum
//! (majority.go, joint.go).
//!
//! Everything here is a pure function of a voter list and a per-voter
//! reading (a vote, an acknowledged index, "heard from lately"); no protocol
//! state, no clock. A majority of no voters decides nothing: it never
//! agrees and reaches no value, so a core that lost its configuration
//! cannot commit by accident.

use crate::consensus::{Membership, NodeId};

/// Where an election (or any yes/no poll of the voters) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum said yes.
    Won,
    /// Neither outcome is decided yet.
    Pending,
    /// So many said no that a quorum of yes can no longer be reached.
    Lost,
}

/// A simple majority of one voter set.
#[derive(Clone, Copy, Debug)]
pub struct Majority<'a> {
    voters: &'a [NodeId],
}

impl<'a> Majority<'a> {
    pub fn new(voters: &'a [NodeId]) -> Majority<'a> {
        Majority { voters }
    }

    /// How many voters make a majority (`n / 2 + 1`; 1 for no voters, which
    /// can never be met).
    pub fn size(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// A majority of the voters satisfies `pred`.
    pub fn agrees(&self, pred: impl Fn(NodeId) -> bool) -> bool {
        let yes = self.voters.iter().filter(|&&v| pred(v)).count();
        !self.voters.is_empty() && yes >= self.size()
    }

    /// The poll's outcome, given each voter's answer (`None`: not yet heard).
    pub fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        if self.voters.is_empty() {
            return VoteResult::Pending;
        }
        let (mut yes, mut no) = (0, 0);
        for &v in self.voters {
            match vote(v) {
                Some(true) => yes += 1,
                Some(false) => no += 1,
                None => {}
            }
        }
        if yes >= self.size() {
            VoteResult::Won
        } else if no > self.voters.len() - self.size() {
            VoteResult::Lost
        } else {
            VoteResult::Pending
        }
    }

    /// The largest value a majority of the voters has reached: the
    /// `size()`-th largest reading (a commit index, a read round). None for
    /// no voters.
    pub fn committed<T: Ord + Copy>(&self, value: impl Fn(NodeId) -> T) -> Option<T> {
        if self.voters.is_empty() {
            return None;
        }
        let mut values: Vec<T> = self.voters.iter().map(|&v| value(v)).collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        Some(values[self.size() - 1])
    }
}

/// A configuration that may be joint: a majority of `incoming` and, while
/// `outgoing` is not empty, a majority of `outgoing` too.
#[derive(Clone, Copy, Debug)]
pub struct Joint<'a> {
    incoming: Majority<'a>,
    outgoing: Option<Majority<'a>>,
}

impl<'a> Joint<'a> {
    pub fn new(incoming: &'a [NodeId], outgoing: &'a [NodeId]) -> Joint<'a> {
        Joint {
            incoming: Majority::new(incoming),
            outgoing: (!outgoing.is_empty()).then(|| Majority::new(outgoing)),
        }
    }

    pub fn of(membership: &'a Membership) -> Joint<'a> {
        Joint::new(&membership.voters, &membership.outgoing)
    }

    /// A majority of every half satisfies `pred`.
    pub fn agrees(&self, pred: impl Fn(NodeId) -> bool) -> bool {
        self.incoming.agrees(&pred) && self.outgoing.is_none_or(|m| m.agrees(&pred))
    }

    /// Won when every half won, lost when any half lost.
    pub fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        let incoming = self.incoming.vote_result(&vote);
        let outgoing = self
            .outgoing
            .map_or(VoteResult::Won, |m| m.vote_result(&vote));
        match (incoming, outgoing) {
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            _ => VoteResult::Pending,
        }
    }

    /// The largest value a majority of every half has reached (the smaller
    /// of the two halves' values). None when the incoming half is empty.
    pub fn committed<T: Ord + Copy>(&self, value: impl Fn(NodeId) -> T) -> Option<T> {
        let incoming = self.incoming.committed(&value)?;
        match self.outgoing.and_then(|m| m.committed(&value)) {
            Some(outgoing) => Some(incoming.min(outgoing)),
            None => Some(incoming),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(n: u64) -> Vec<NodeId> {
        (1..=n).map(NodeId).collect()
    }

    #[test]
    fn a_majority_is_more_than_half() {
        let sizes: Vec<usize> = (1..=6).map(|n| Majority::new(&ids(n)).size()).collect();
        assert_eq!(sizes, vec![1, 2, 2, 3, 3, 4]);
    }

    #[test]
    fn no_voters_decide_nothing() {
        let none = Majority::new(&[]);
        assert!(!none.agrees(|_| true));
        assert_eq!(none.committed(|_| 7u64), None);
        assert_eq!(none.vote_result(|_| Some(true)), VoteResult::Pending);
        assert_eq!(Joint::new(&[], &ids(3)).committed(|_| 7u64), None);
        assert!(!Joint::new(&[], &ids(3)).agrees(|_| true));
    }

    #[test]
    fn committed_is_the_value_a_majority_reached() {
        let voters = ids(5);
        let acked = [9u64, 3, 7, 1, 5];
        let m = Majority::new(&voters);
        assert_eq!(m.committed(|v| acked[v.0 as usize - 1]), Some(5));
        let four = ids(4);
        // 4 voters need 3: the third largest of 9, 3, 7, 1.
        assert_eq!(
            Majority::new(&four).committed(|v| acked[v.0 as usize - 1]),
            Some(3)
        );
    }

    #[test]
    fn an_even_poll_is_lost_once_half_refuse() {
        let voters = ids(4);
        let m = Majority::new(&voters);
        let answers = [Some(false), Some(false), None, None];
        assert_eq!(
            m.vote_result(|v| answers[v.0 as usize - 1]),
            VoteResult::Lost
        );
        let answers = [Some(false), None, Some(true), Some(true)];
        assert_eq!(
            m.vote_result(|v| answers[v.0 as usize - 1]),
            VoteResult::Pending
        );
        let answers = [Some(true), None, Some(true), Some(true)];
        assert_eq!(
            m.vote_result(|v| answers[v.0 as usize - 1]),
            VoteResult::Won
        );
    }

    #[test]
    fn a_joint_configuration_needs_both_halves() {
        let incoming = [NodeId(1), NodeId(2), NodeId(3)];
        let outgoing = [NodeId(3), NodeId(4), NodeId(5)];
        let joint = Joint::new(&incoming, &outgoing);
        // 1, 2 and 3 said yes: the incoming half won, the outgoing has one of three.
        let yes = |v: NodeId| v.0 <= 3;
        assert!(!joint.agrees(yes));
        assert_eq!(
            joint.vote_result(|v| yes(v).then_some(true)),
            VoteResult::Pending
        );
        assert!(joint.agrees(|v| v.0 != 1 && v.0 != 5));
        // Two of the outgoing half refused: lost, whatever the incoming says.
        let no = |v: NodeId| if v.0 >= 4 { Some(false) } else { Some(true) };
        assert_eq!(joint.vote_result(no), VoteResult::Lost);
        let acked = |v: NodeId| [0u64, 10, 10, 8, 2, 2][v.0 as usize];
        assert_eq!(joint.committed(acked), Some(2), "incoming 10, outgoing 2");
    }

    proptest! {
        /// `committed` is exactly the largest x that a majority reached
        /// (etcd's definition), for simple and joint configurations.
        #[test]
        fn committed_is_the_largest_value_a_quorum_agrees_on(
            values in prop::collection::vec(0u64..6, 1..8),
            split in 0usize..8,
        ) {
            let voters: Vec<NodeId> = (0..values.len() as u64).map(NodeId).collect();
            let split = split.min(voters.len());
            let (outgoing, incoming) = voters.split_at(split);
            let incoming = if incoming.is_empty() { &voters[..] } else { incoming };
            let joint = Joint::new(incoming, outgoing);
            let value = |v: NodeId| values[v.0 as usize];
            let expected = (0..6u64).rev().find(|&x| joint.agrees(|v| value(v) >= x));
            prop_assert_eq!(joint.committed(value), expected);
            let won = joint.vote_result(|v| Some(value(v) >= 3)) == VoteResult::Won;
            prop_assert_eq!(won, joint.agrees(|v| value(v) >= 3));
        }
    }
}

//! Ballot: a Paxos ballot number (round, node id), and how ballots ride in
//! the contract's [`Term`] fields.
//!
//! A ballot is `round << 8 | node` in a u64 (node ids 1..=255, rounds up to
//! 2^24 - 1), so ballots of different nodes never tie and compare first by
//! round. `HardState::term` and `Status::term` carry the promised ballot as
//! is. A log entry's `term` carries a [`Stamp`]: the ballot that accepted it
//! (high 32 bits) and the ballot of the leader that first proposed the value
//! (low 32 bits, its *origin*); a value re-proposed by a later leader keeps
//! its origin, so the runtime's (index, term) match of a proposal works with
//! the origin ballot that `propose` returned.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::consensus::{NodeId, Term};

/// A Paxos ballot: (round, node id) packed as `round << 8 | node`. 0 is "none".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Ballot(pub u64);

impl Ballot {
    /// The largest node id a ballot can carry.
    pub const MAX_NODE: u64 = 0xFF;
    /// The largest round: a ballot fits in 32 bits.
    pub const MAX_ROUND: u64 = 0xFF_FFFF;
    pub const NONE: Ballot = Ballot(0);

    pub fn new(round: u64, node: NodeId) -> Ballot {
        assert!(round >= 1, "round 0 is reserved for 'no ballot'");
        assert!(
            round <= Self::MAX_ROUND,
            "ballot round {round} overflows 24 bits"
        );
        assert!(node.0 >= 1, "node ids start at 1");
        assert!(node.0 <= Self::MAX_NODE, "node id {node} overflows 8 bits");
        Ballot(round << 8 | node.0)
    }

    pub fn round(self) -> u64 {
        self.0 >> 8
    }

    pub fn node(self) -> NodeId {
        NodeId(self.0 & Self::MAX_NODE)
    }

    pub fn term(self) -> Term {
        Term(self.0)
    }

    /// A ballot stored as a term; None if it cannot be one (more than 32 bits).
    pub fn from_term(t: Term) -> Option<Ballot> {
        (t.0 <= u32::MAX as u64).then_some(Ballot(t.0))
    }

    /// The first ballot of `node` above `self` (and above any round seen).
    pub fn next_for(self, node: NodeId) -> Ballot {
        Ballot::new(self.round() + 1, node)
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}.{}", self.round(), self.node().0)
    }
}

/// What a log entry's term means in a Paxos log: who accepted it at which
/// ballot, and which leader first proposed the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// The ballot at which this acceptor accepted the value.
    pub accepted: Ballot,
    /// The ballot of the leader that first proposed the value.
    pub origin: Ballot,
}

impl Stamp {
    pub fn new(accepted: Ballot, origin: Ballot) -> Stamp {
        assert!(
            accepted.0 <= u32::MAX as u64,
            "accepted ballot fits 32 bits"
        );
        assert!(origin.0 <= u32::MAX as u64, "origin ballot fits 32 bits");
        assert!(
            origin <= accepted,
            "a value is accepted at or after the ballot that proposed it"
        );
        Stamp { accepted, origin }
    }

    pub fn term(self) -> Term {
        Term(self.accepted.0 << 32 | self.origin.0)
    }

    pub fn of(t: Term) -> Stamp {
        Stamp {
            accepted: Ballot(t.0 >> 32),
            origin: Ballot(t.0 & 0xFFFF_FFFF),
        }
    }

    /// The same value accepted again at `ballot`.
    pub fn reaccepted(self, ballot: Ballot) -> Stamp {
        Stamp::new(ballot, self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_order_by_round_then_node() {
        let a = Ballot::new(1, NodeId(5));
        let b = Ballot::new(2, NodeId(1));
        let c = Ballot::new(2, NodeId(3));
        assert!(a < b && b < c, "{a} < {b} < {c}");
        assert_eq!(c.round(), 2);
        assert_eq!(c.node(), NodeId(3));
        assert_eq!(a.next_for(NodeId(2)), Ballot::new(2, NodeId(2)));
        assert_eq!(c.to_string(), "b2.3");
    }

    #[test]
    fn stamps_round_trip_through_a_term() {
        let s = Stamp::new(Ballot::new(7, NodeId(2)), Ballot::new(3, NodeId(9)));
        assert_eq!(Stamp::of(s.term()), s);
        // A stamp's term orders by the accepting ballot first.
        let later = s.reaccepted(Ballot::new(8, NodeId(1)));
        assert!(later.term() > s.term());
        assert_eq!(later.origin, s.origin);
    }

    #[test]
    #[should_panic(expected = "overflows 8 bits")]
    fn node_ids_beyond_255_are_refused() {
        Ballot::new(1, NodeId(256));
    }

    #[test]
    fn only_32_bit_terms_are_ballots() {
        assert_eq!(Ballot::from_term(Term(0x1_05)), Some(Ballot(0x105)));
        assert_eq!(Ballot::from_term(Term(1 << 40)), None);
    }
}

//! [`RingDiff`]: the arcs of the hash space whose owner differs between two
//! rings, so a membership change knows exactly which key ranges move where.

use super::{NodeId, Ring};
use serde::{Deserialize, Serialize};

/// The keys whose hash lies in `(start, end]` (clockwise, wrapping past
/// `u64::MAX` when `end < start`; the whole space when `start == end`)
/// belonged to `from` and belong to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcMove {
    pub start: u64,
    pub end: u64,
    pub from: NodeId,
    pub to: NodeId,
}

impl ArcMove {
    /// Whether `hash` lies in this arc.
    pub fn contains(&self, hash: u64) -> bool {
        if self.start < self.end {
            self.start < hash && hash <= self.end
        } else {
            hash > self.start || hash <= self.end
        }
    }

    /// The arc's length as a share of the hash space.
    pub fn share(&self) -> f64 {
        arc_len(self.start, self.end) as f64 / (1u128 << 64) as f64
    }
}

/// Length of the arc `(start, end]`; `start == end` is the whole space.
fn arc_len(start: u64, end: u64) -> u128 {
    if start == end {
        1u128 << 64
    } else {
        u128::from(end.wrapping_sub(start))
    }
}

/// Every change of owner between two rings, as maximal arcs in clockwise
/// order. Empty if the rings agree on every hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingDiff {
    pub moves: Vec<ArcMove>,
}

impl RingDiff {
    /// The arcs that `old` and `new` assign to different owners.
    ///
    /// Between two consecutive points of either ring, every hash maps to
    /// the same point of `old` and the same point of `new`, so comparing the
    /// owners at each point of the union covers the whole space.
    pub fn between(old: &Ring, new: &Ring) -> RingDiff {
        let mut cuts: Vec<u64> = old
            .points()
            .0
            .iter()
            .chain(new.points().0)
            .copied()
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let n = cuts.len();
        let mut moves: Vec<ArcMove> = Vec::new();
        for i in 0..n {
            let end = cuts[i];
            let start = cuts[(i + n - 1) % n];
            let (from, to) = (old.owner(end), new.owner(end));
            if from == to {
                continue;
            }
            match moves.last_mut() {
                Some(last) if last.end == start && last.from == from && last.to == to => {
                    last.end = end
                }
                _ => moves.push(ArcMove {
                    start,
                    end,
                    from,
                    to,
                }),
            }
        }
        // The first and last arcs may be one arc across the wrap.
        if moves.len() > 1 {
            let (first, last) = (moves[0], moves[moves.len() - 1]);
            if last.end == first.start && last.from == first.from && last.to == first.to {
                moves[0].start = last.start;
                moves.pop();
            }
        }
        RingDiff { moves }
    }

    /// The share of the hash space that changes owner: for uniformly
    /// hashed keys, the expected share of keys that move.
    pub fn moved_share(&self) -> f64 {
        let total: u128 = self.moves.iter().map(|m| arc_len(m.start, m.end)).sum();
        total as f64 / (1u128 << 64) as f64
    }

    /// The move that covers `hash`, if its owner changes.
    pub fn move_of(&self, hash: u64) -> Option<&ArcMove> {
        self.moves.iter().find(|m| m.contains(hash))
    }

    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::hash::key_hash_u64;
    use crate::ring::{Member, RingConfig};
    use proptest::prelude::*;

    fn ring(n: u64, vnodes: u32, seed: u64) -> Ring {
        Ring::uniform(RingConfig { vnodes, seed }, (0..n).map(NodeId)).expect("valid ring")
    }

    #[test]
    fn equal_rings_have_an_empty_diff() {
        let r = ring(5, 16, 1);
        let d = RingDiff::between(&r, &r.clone());
        assert!(d.is_empty());
        assert_eq!(d.moved_share(), 0.0);
    }

    #[test]
    fn removing_a_node_moves_exactly_its_share() {
        let old = ring(6, 32, 2);
        let mut new = old.clone();
        new.remove(NodeId(3)).expect("member");
        let d = RingDiff::between(&old, &new);
        assert!(d
            .moves
            .iter()
            .all(|m| m.from == NodeId(3) && m.to != NodeId(3)));
        let share = old.shares()[old.slot_of(NodeId(3)).expect("member")];
        assert!(
            (d.moved_share() - share).abs() < 1e-12,
            "{} vs {share}",
            d.moved_share()
        );
    }

    #[test]
    fn arcs_across_the_wrap_are_merged() {
        // One node on each ring, different ids: everything moves, as one arc.
        let old = Ring::uniform(RingConfig { vnodes: 4, seed: 0 }, [NodeId(1)]).expect("valid");
        let new = Ring::uniform(RingConfig { vnodes: 4, seed: 0 }, [NodeId(2)]).expect("valid");
        let d = RingDiff::between(&old, &new);
        assert_eq!(d.moves.len(), 1, "{d:?}");
        assert_eq!(d.moved_share(), 1.0);
        assert!(d.moves[0].contains(0) && d.moves[0].contains(u64::MAX));
    }

    proptest! {
        /// The diff predicts every key's move: a key moves iff its hash is
        /// in an arc, and then from the arc's `from` to its `to`.
        #[test]
        fn diff_predicts_every_owner_change(
            n in 1u64..8, vnodes in 1u32..32, seed in any::<u64>(),
            add in prop::option::of(8u64..20), remove in prop::option::of(0u64..8),
            weight in prop::option::of(0.2f64..3.0),
            keys in prop::collection::vec(any::<u64>(), 1..300),
        ) {
            let old = ring(n, vnodes, seed);
            let mut new = old.clone();
            if let Some(a) = add { new.add(Member::new(NodeId(a))).expect("new id"); }
            if let Some(r) = remove { let _ = new.remove(NodeId(r % n)); }
            if let Some(w) = weight { new.set_weight(new.node_at(0), w).expect("valid weight"); }
            let d = RingDiff::between(&old, &new);
            for k in keys.into_iter().map(key_hash_u64).chain([0, u64::MAX]) {
                match d.move_of(k) {
                    Some(m) => {
                        prop_assert_eq!(old.owner(k), m.from);
                        prop_assert_eq!(new.owner(k), m.to);
                    }
                    None => prop_assert_eq!(old.owner(k), new.owner(k)),
                }
            }
            let s = d.moved_share();
            prop_assert!((0.0..=1.0).contains(&s));
        }
    }
}

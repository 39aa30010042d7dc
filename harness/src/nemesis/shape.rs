//! Jepsen's partition shapes, as sets of cuts between nodes.

use crate::cluster::{Cut, NodeId};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Two halves at random (the smaller has ⌊n/2⌋ nodes).
    RandomHalves,
    /// One node at random cut off from all others.
    OneIsolated,
    /// The current leader cut off from all others.
    LeaderIsolated,
    /// Every node sees a majority, but no two see the same one.
    MajoritiesRing,
    /// Two halves that cannot talk, and one node that talks to both.
    Bridge,
}

impl Shape {
    pub const ALL: [Shape; 5] = [
        Shape::RandomHalves,
        Shape::OneIsolated,
        Shape::LeaderIsolated,
        Shape::MajoritiesRing,
        Shape::Bridge,
    ];

    /// How often each shape of [`Shape::ALL`] is chosen, in percent. The
    /// leader's isolation comes up most: it is what tests a leader's
    /// belief that it still leads (stale reads, early lease expiry).
    pub const WEIGHTS: [u32; 5] = [20, 20, 30, 15, 15];

    pub fn as_str(self) -> &'static str {
        match self {
            Shape::RandomHalves => "random-halves",
            Shape::OneIsolated => "one-isolated",
            Shape::LeaderIsolated => "leader-isolated",
            Shape::MajoritiesRing => "majorities-ring",
            Shape::Bridge => "bridge",
        }
    }
}

/// Every cut between a node of `a` and a node of `b`.
fn between(a: &[NodeId], b: &[NodeId]) -> Vec<Cut> {
    let mut cuts = Vec::new();
    for &x in a {
        for &y in b {
            cuts.push((x.min(y), x.max(y)));
        }
    }
    cuts.sort();
    cuts
}

/// The cuts of `shape` over `nodes`. `leader` is used by LeaderIsolated
/// (which isolates a random node when there is no known leader).
pub fn cuts(
    shape: Shape,
    nodes: &[NodeId],
    leader: Option<NodeId>,
    rng: &mut impl Rng,
) -> Vec<Cut> {
    let n = nodes.len();
    if n < 2 {
        return Vec::new();
    }
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    match shape {
        Shape::RandomHalves => between(&shuffled[..n / 2], &shuffled[n / 2..]),
        Shape::OneIsolated => between(&shuffled[..1], &shuffled[1..]),
        Shape::LeaderIsolated => {
            let l = leader.filter(|l| nodes.contains(l)).unwrap_or(shuffled[0]);
            let rest: Vec<NodeId> = nodes.iter().copied().filter(|&x| x != l).collect();
            between(&[l], &rest)
        }
        Shape::MajoritiesRing => {
            // Ring of shuffled nodes; each sees itself and the nodes within
            // distance d, where 2d+1 is the smallest odd size ≥ a majority.
            let majority = n / 2 + 1;
            let d = majority / 2;
            let mut cuts = Vec::new();
            for i in 0..n {
                for j in i + 1..n {
                    let dist = (j - i).min(n - (j - i));
                    if dist > d {
                        let (a, b) = (shuffled[i], shuffled[j]);
                        cuts.push((a.min(b), a.max(b)));
                    }
                }
            }
            cuts.sort();
            cuts
        }
        Shape::Bridge => {
            if n < 3 {
                return between(&shuffled[..1], &shuffled[1..]);
            }
            let half = (n - 1) / 2;
            // shuffled[half] is the bridge.
            between(&shuffled[..half], &shuffled[half + 1..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    fn ids(n: u32) -> Vec<NodeId> {
        (1..=n).map(NodeId).collect()
    }

    /// Which nodes each node can still hear.
    fn sees(nodes: &[NodeId], cuts: &[Cut]) -> Vec<HashSet<NodeId>> {
        let cut: HashSet<Cut> = cuts.iter().copied().collect();
        nodes
            .iter()
            .map(|&a| {
                nodes
                    .iter()
                    .copied()
                    .filter(|&b| a == b || !cut.contains(&(a.min(b), a.max(b))))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn majorities_ring_gives_every_node_a_different_majority() {
        let mut rng = SmallRng::seed_from_u64(1);
        for n in [5u32, 7] {
            let nodes = ids(n);
            let c = cuts(Shape::MajoritiesRing, &nodes, None, &mut rng);
            let views = sees(&nodes, &c);
            for v in &views {
                assert!(
                    v.len() > n as usize / 2,
                    "n={n}: a view of {} is no majority",
                    v.len()
                );
                assert!(v.len() < n as usize, "n={n}: someone sees everyone");
            }
            let distinct: HashSet<Vec<NodeId>> = views
                .iter()
                .map(|v| {
                    let mut v: Vec<_> = v.iter().copied().collect();
                    v.sort();
                    v
                })
                .collect();
            assert_eq!(
                distinct.len(),
                n as usize,
                "n={n}: two nodes share a majority"
            );
        }
    }

    #[test]
    fn bridge_has_one_node_that_sees_everyone_and_halves_that_do_not_meet() {
        let mut rng = SmallRng::seed_from_u64(2);
        let nodes = ids(5);
        let c = cuts(Shape::Bridge, &nodes, None, &mut rng);
        let views = sees(&nodes, &c);
        assert_eq!(views.iter().filter(|v| v.len() == 5).count(), 1);
        assert_eq!(views.iter().filter(|v| v.len() == 3).count(), 4);
    }

    #[test]
    fn halves_isolated_and_leader_shapes() {
        let mut rng = SmallRng::seed_from_u64(3);
        let nodes = ids(5);
        let views = sees(&nodes, &cuts(Shape::RandomHalves, &nodes, None, &mut rng));
        let mut sizes: Vec<_> = views.iter().map(HashSet::len).collect();
        sizes.sort();
        assert_eq!(sizes, [2, 2, 3, 3, 3]);
        let views = sees(&nodes, &cuts(Shape::OneIsolated, &nodes, None, &mut rng));
        assert_eq!(views.iter().filter(|v| v.len() == 1).count(), 1);
        let c = cuts(Shape::LeaderIsolated, &nodes, Some(NodeId(4)), &mut rng);
        let views = sees(&nodes, &c);
        assert_eq!(views[3].len(), 1, "the leader n4 hears no one");
        assert!(views
            .iter()
            .enumerate()
            .all(|(i, v)| i == 3 || v.len() == 4));
    }
}

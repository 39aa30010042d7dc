//! [`Successors`]: the distinct physical nodes met walking clockwise.

use super::{NodeId, Ring};

/// The distinct members of a ring in the order met walking clockwise from a
/// point, the owner of the point first. Ends once every member has been met
/// or the walk has gone round once.
pub struct Successors<'a> {
    ring: &'a Ring,
    /// Next point index to look at.
    at: usize,
    /// Points left to look at before the walk has gone round.
    left: usize,
    /// One bit per member slot: inline for rings of up to 128 members
    /// (no allocation), on the heap beyond.
    seen_inline: [u64; 2],
    seen_heap: Vec<u64>,
    found: usize,
}

impl<'a> Successors<'a> {
    pub(crate) fn new(ring: &'a Ring, start: usize) -> Successors<'a> {
        let (points, _) = ring.points();
        assert!(start < points.len(), "start is a point index");
        Successors {
            ring,
            at: start,
            left: points.len(),
            seen_inline: [0; 2],
            seen_heap: if ring.len() > 128 {
                vec![0; ring.len().div_ceil(64)]
            } else {
                Vec::new()
            },
            found: 0,
        }
    }
}

impl Iterator for Successors<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        let (points, owners) = self.ring.points();
        while self.left > 0 && self.found < self.ring.len() {
            let slot = owners[self.at] as usize;
            self.at += 1;
            if self.at == points.len() {
                self.at = 0;
            }
            self.left -= 1;
            let (word, bit) = (slot / 64, 1u64 << (slot % 64));
            let seen = if self.seen_heap.is_empty() {
                &mut self.seen_inline[word]
            } else {
                &mut self.seen_heap[word]
            };
            if *seen & bit == 0 {
                *seen |= bit;
                self.found += 1;
                return Some(self.ring.node_at(slot));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::ring::{NodeId, Ring, RingConfig};

    #[test]
    fn walk_meets_every_node_once_even_past_the_wrap() {
        // 70: two inline bit words; 200: the heap bitset.
        for n in [1, 70, 200] {
            let ring = Ring::uniform(RingConfig { vnodes: 3, seed: 5 }, (0..n).map(NodeId))
                .expect("valid ring");
            for h in [0, u64::MAX, u64::MAX / 3] {
                let mut all: Vec<NodeId> = ring.successors(h).collect();
                assert_eq!(all.len(), n as usize, "every node once");
                all.sort();
                all.dedup();
                assert_eq!(all.len(), n as usize);
            }
        }
    }
}

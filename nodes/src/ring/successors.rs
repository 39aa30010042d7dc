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
    /// One bit per member slot.
    seen: Vec<u64>,
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
            seen: vec![0; ring.len().div_ceil(64)],
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
            if self.seen[word] & bit == 0 {
                self.seen[word] |= bit;
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
        let ring = Ring::uniform(RingConfig { vnodes: 3, seed: 5 }, (0..70).map(NodeId))
            .expect("valid ring");
        for h in [0, u64::MAX, u64::MAX / 3] {
            let mut all: Vec<NodeId> = ring.successors(h).collect();
            assert_eq!(all.len(), 70, "every node, over 64 to use two bit words");
            all.sort();
            all.dedup();
            assert_eq!(all.len(), 70);
        }
    }
}

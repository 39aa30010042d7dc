//! [`BoundedLoad`]: "Consistent Hashing with Bounded Loads" (Mirrokni,
//! Thorup and Zadimoghaddam, SODA 2018) over a [`Ring`].
//!
//! Given how many placements will be made in total (`m` keys, or `shards ×
//! R` replicas), every member gets a capacity of `ceil((1+ε) × m × w / W)`
//! (its weight `w` over the total weight `W`; `ceil((1+ε) m / n)` when the
//! weights are equal). Items are placed one after the other: each goes to
//! the first member clockwise from its hash that is below capacity (for
//! replicas: the first R distinct such members). The capacities add up to at
//! least `(1+ε) m`, so a member below capacity always exists, and no member
//! ever exceeds its capacity: max/mean ≤ 1+ε, plus at most one item of
//! rounding. For replicas the walk also keeps the remaining items feasible
//! (see [`BoundedLoad::assign_replicas`]); the caps then hold too, except
//! where weights make them impossible (a member whose fair share exceeds
//! one replica of every item): such replicas go to the least-loaded
//! members, and [`BoundedLoad::overflowed`] counts them.
//!
//! The price: where an item lands depends on the items placed before it,
//! so every node must place the same items in the same order (by shard id,
//! say), and a membership change moves more than the minimum (the paper
//! bounds the extra movement by O(1/ε²) times the ideal).

use super::{NodeId, Ring, RingError};

/// The state of a bounded-load assignment in progress.
#[derive(Clone, Debug)]
pub struct BoundedLoad<'a> {
    ring: &'a Ring,
    epsilon: f64,
    total: u64,
    /// By member slot.
    capacities: Vec<u64>,
    loads: Vec<u64>,
    placed: u64,
    overflowed: u64,
}

impl<'a> BoundedLoad<'a> {
    /// An empty assignment over `ring` for `total` placements in all (for
    /// replicated shards: shards × R), each member capped at
    /// `ceil((1+ε) × total × weight / total weight)`.
    pub fn new(ring: &'a Ring, epsilon: f64, total: u64) -> Result<BoundedLoad<'a>, RingError> {
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(RingError::BadEpsilon(epsilon));
        }
        let weight_sum = ring.total_weight();
        let capacities: Vec<u64> = ring
            .members()
            .iter()
            .map(|m| ((1.0 + epsilon) * total as f64 * m.weight / weight_sum).ceil() as u64)
            .collect();
        Ok(BoundedLoad {
            ring,
            epsilon,
            total,
            loads: vec![0; capacities.len()],
            capacities,
            placed: 0,
            overflowed: 0,
        })
    }

    /// Places one item with hash `hash` on one member.
    pub fn assign(&mut self, hash: u64) -> NodeId {
        let (points, owners) = self.ring.points();
        let mut at = self.ring.point_index(hash);
        for _ in 0..points.len() {
            let slot = owners[at] as usize;
            if self.loads[slot] < self.capacities[slot] {
                return self.take(slot);
            }
            at += 1;
            if at == points.len() {
                at = 0;
            }
        }
        // Only if rounding left the capacities short of the total.
        self.overflowed += 1;
        let slot = self.least_loaded(&[]).expect("a ring has a member");
        self.take(slot)
    }

    /// Places one item with hash `hash` on `r` distinct members (all of
    /// them if the ring has fewer), in clockwise order, into `out`.
    ///
    /// Plain clockwise greed can paint itself into a corner: if the members
    /// below capacity become fewer than `r`, the last items cannot get `r`
    /// distinct replicas. So the walk also keeps the rest feasible: with `k`
    /// items left (this one included) and `rem` the room left on each
    /// member, the remaining items fit iff `Σ min(rem, k) ≥ k × r`. Taking a
    /// member with `rem ≥ k` never hurts that sum; taking one with less
    /// costs one, and the walk takes those only while the slack lasts. This
    /// always finds `r` members when the sum held before (it does from the
    /// start whenever weights are equal); otherwise the missing replicas go
    /// to the least-loaded members and count as overflow.
    pub fn assign_replicas(
        &mut self,
        hash: u64,
        r: usize,
        out: &mut Vec<NodeId>,
    ) -> Result<(), RingError> {
        if r == 0 {
            return Err(RingError::BadReplication(r));
        }
        out.clear();
        let want = r.min(self.ring.len());
        let left_items = (self.total.saturating_sub(self.placed) / want as u64).max(1);
        let room = |s: &Self, slot: usize| s.capacities[slot].saturating_sub(s.loads[slot]);
        let after: u64 = left_items - 1;
        let fit_after: u64 = (0..self.loads.len())
            .map(|slot| room(self, slot).min(after))
            .sum();
        let mut slack = i128::from(fit_after) - i128::from(after) * want as i128;
        let mut chosen: Vec<usize> = Vec::with_capacity(want);
        let (points, owners) = self.ring.points();
        let mut at = self.ring.point_index(hash);
        for _ in 0..points.len() {
            if chosen.len() == want {
                break;
            }
            let slot = owners[at] as usize;
            let rem = room(self, slot);
            if rem > 0 && !chosen.contains(&slot) {
                if rem >= left_items {
                    chosen.push(slot);
                } else if slack > 0 {
                    slack -= 1;
                    chosen.push(slot);
                }
            }
            at += 1;
            if at == points.len() {
                at = 0;
            }
        }
        while chosen.len() < want {
            self.overflowed += 1;
            let slot = self
                .least_loaded(&chosen)
                .expect("fewer chosen than members");
            chosen.push(slot);
        }
        for slot in chosen {
            out.push(self.take(slot));
        }
        assert_eq!(out.len(), want);
        Ok(())
    }

    fn take(&mut self, slot: usize) -> NodeId {
        self.loads[slot] += 1;
        self.placed += 1;
        self.ring.node_at(slot)
    }

    /// The member with the least load relative to its capacity, not in
    /// `except`.
    fn least_loaded(&self, except: &[usize]) -> Option<usize> {
        (0..self.loads.len())
            .filter(|s| !except.contains(s))
            .min_by(|&a, &b| {
                let ra = self.loads[a] as f64 / self.capacities[a].max(1) as f64;
                let rb = self.loads[b] as f64 / self.capacities[b].max(1) as f64;
                ra.total_cmp(&rb).then(a.cmp(&b))
            })
    }

    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The placements this assignment was sized for.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Placements made so far.
    pub fn placed(&self) -> u64 {
        self.placed
    }

    /// Placements that had to exceed a capacity (see the module doc).
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Items placed on each member, by slot.
    pub fn loads(&self) -> &[u64] {
        &self.loads
    }

    /// Each member's cap, by slot.
    pub fn capacities(&self) -> &[u64] {
        &self.capacities
    }

    /// The largest load over its member's fair share (`placed × w / W`).
    pub fn max_over_mean(&self) -> f64 {
        let weight_sum = self.ring.total_weight();
        self.ring
            .members()
            .iter()
            .zip(&self.loads)
            .map(|(m, &load)| load as f64 / (self.placed as f64 * m.weight / weight_sum))
            .fold(0.0, f64::max)
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
    fn bad_epsilon_and_replication_are_refused() {
        let r = ring(3, 8, 0);
        for eps in [0.0, -0.5, f64::NAN, f64::INFINITY] {
            assert!(
                matches!(BoundedLoad::new(&r, eps, 10), Err(RingError::BadEpsilon(_))),
                "{eps}"
            );
        }
        let mut b = BoundedLoad::new(&r, 0.1, 10).expect("valid");
        assert_eq!(
            b.assign_replicas(1, 0, &mut Vec::new()),
            Err(RingError::BadReplication(0))
        );
    }

    #[test]
    fn bounded_load_evens_out_a_lopsided_ring() {
        // One vnode per node: plain consistent hashing is badly skewed.
        let r = ring(8, 1, 11);
        let m = 10_000u64;
        let mut plain = vec![0u64; 8];
        let mut b = BoundedLoad::new(&r, 0.1, m).expect("valid");
        for k in 0..m {
            let h = key_hash_u64(k);
            plain[r.owner_slot(h)] += 1;
            b.assign(h);
        }
        let plain_max = *plain.iter().max().expect("8 nodes") as f64 / (m as f64 / 8.0);
        assert!(plain_max > 1.5, "the test needs a skewed ring: {plain:?}");
        assert!(b.max_over_mean() <= 1.1 + 8.0 / m as f64, "{:?}", b.loads());
        assert_eq!(b.overflowed(), 0);
        assert_eq!(b.placed(), m);
    }

    proptest! {
        /// MTZ's guarantee: no member exceeds ceil((1+ε) × its share), so
        /// max/mean ≤ 1+ε plus one item of rounding.
        #[test]
        fn no_member_exceeds_its_capacity(
            n in 1u64..12, vnodes in 1u32..40, seed in any::<u64>(), eps in 0.01f64..2.0,
            m in 1u64..2000, weights in prop::collection::vec(0.2f64..3.0, 12),
        ) {
            let mut r = ring(n, vnodes, seed);
            for i in 0..n { r.set_weight(NodeId(i), weights[i as usize]).expect("valid weight"); }
            let mut b = BoundedLoad::new(&r, eps, m).expect("valid");
            for k in 0..m { b.assign(key_hash_u64(k ^ seed)); }
            prop_assert_eq!(b.overflowed(), 0);
            prop_assert_eq!(b.loads().iter().sum::<u64>(), m);
            for (slot, (&load, &cap)) in b.loads().iter().zip(b.capacities()).enumerate() {
                prop_assert!(load <= cap, "slot {} load {} cap {}", slot, load, cap);
                let fair = m as f64 * r.members()[slot].weight / r.total_weight();
                prop_assert!(load as f64 <= (1.0 + eps) * fair + 1.0);
            }
            let uniform_bound = 1.0 + eps + n as f64 / m as f64;
            if weights[..n as usize].iter().all(|&w| w == weights[0]) {
                prop_assert!(b.max_over_mean() <= uniform_bound + 1e-9);
            }
        }

        #[test]
        fn replicas_are_distinct_and_capped_unless_counted_as_overflow(
            n in 1u64..10, vnodes in 1u32..20, seed in any::<u64>(), eps in 0.05f64..1.0,
            shards in 1u64..300, r in 1usize..5,
        ) {
            let ring = ring(n, vnodes, seed);
            let want = r.min(n as usize);
            let mut b = BoundedLoad::new(&ring, eps, shards * want as u64).expect("valid");
            let mut out = Vec::new();
            for s in 0..shards {
                b.assign_replicas(key_hash_u64(s), r, &mut out).expect("r >= 1");
                prop_assert_eq!(out.len(), want);
                let mut d = out.clone();
                d.sort();
                d.dedup();
                prop_assert_eq!(d.len(), want, "distinct: {:?}", out);
            }
            prop_assert_eq!(b.overflowed(), 0, "equal weights always fit");
            for (&load, &cap) in b.loads().iter().zip(b.capacities()) {
                prop_assert!(load <= cap, "load {} cap {}", load, cap);
            }
        }
    }

    #[test]
    fn replicas_that_weights_make_impossible_are_counted_as_overflow() {
        // Node 0's fair share (10/12 of 2 replicas per item) is more than
        // one replica of every item: the caps cannot all hold.
        let r = Ring::new(
            RingConfig { vnodes: 8, seed: 0 },
            [
                Member::weighted(NodeId(0), 10.0),
                Member::new(NodeId(1)),
                Member::new(NodeId(2)),
            ],
        )
        .expect("valid ring");
        let mut b = BoundedLoad::new(&r, 0.1, 200).expect("valid");
        let mut out = Vec::new();
        for s in 0..100 {
            b.assign_replicas(key_hash_u64(s), 2, &mut out)
                .expect("r >= 1");
            assert_eq!(out.len(), 2);
            assert_ne!(out[0], out[1]);
        }
        assert!(b.overflowed() > 0);
        assert_eq!(b.loads().iter().sum::<u64>(), 200);
    }

    #[test]
    fn weighted_capacities_follow_weights() {
        let r = Ring::new(
            RingConfig {
                vnodes: 16,
                seed: 0,
            },
            [
                Member::weighted(NodeId(0), 1.0),
                Member::weighted(NodeId(1), 3.0),
            ],
        )
        .expect("valid ring");
        let b = BoundedLoad::new(&r, 0.25, 400).expect("valid");
        assert_eq!(b.capacities(), &[125, 375]);
    }
}

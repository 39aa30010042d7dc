//! [`Placement`]: which R nodes hold each shard, and which shards move
//! where when the ring changes.
//!
//! The keyspace is split into a fixed number of shards; a key's shard is a
//! function of its hash and the shard count only ([`ShardId::of_hash`]), so
//! membership changes never move a key between shards, only shards between
//! nodes. Each shard sits at its own point of the ring ([`ShardId::point`])
//! and is held by the preference list there ([`Placement::by_ring`]), or by
//! a bounded-load assignment made in shard order ([`Placement::bounded`]).

use super::hash::{key_hash, xxh64_u64, SHARD_SEED};
use super::{BoundedLoad, NodeId, Ring, RingError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A shard of the keyspace: one consensus group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShardId(pub u32);

impl ShardId {
    /// The shard of a key whose hash is `hash`, among `count` shards
    /// (multiply-shift: uniform, and stable for a given count). `count`
    /// must be at least 1.
    #[inline]
    pub fn of_hash(hash: u64, count: u32) -> ShardId {
        assert!(count > 0, "at least one shard");
        ShardId(((u128::from(hash) * u128::from(count)) >> 64) as u32)
    }

    /// The shard of `key` among `count` shards.
    pub fn of_key(key: &[u8], count: u32) -> ShardId {
        ShardId::of_hash(key_hash(key), count)
    }

    /// The shard's point on the ring.
    pub fn point(self) -> u64 {
        xxh64_u64(u64::from(self.0), SHARD_SEED)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// The replicas of every shard, the preferred one (leader hint) first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    replication: usize,
    /// Indexed by shard id.
    replicas: Vec<Vec<NodeId>>,
}

/// A shard whose replica set changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMove {
    pub shard: ShardId,
    pub before: Vec<NodeId>,
    pub after: Vec<NodeId>,
}

impl ShardMove {
    /// Nodes that must receive the shard.
    pub fn added(&self) -> Vec<NodeId> {
        self.after
            .iter()
            .copied()
            .filter(|n| !self.before.contains(n))
            .collect()
    }

    /// Nodes that must give the shard up.
    pub fn removed(&self) -> Vec<NodeId> {
        self.before
            .iter()
            .copied()
            .filter(|n| !self.after.contains(n))
            .collect()
    }
}

impl Placement {
    /// Each of `shards` shards on the `r` distinct nodes clockwise from its
    /// point (fewer if the ring has fewer nodes).
    pub fn by_ring(ring: &Ring, shards: u32, r: usize) -> Result<Placement, RingError> {
        if r == 0 {
            return Err(RingError::BadReplication(r));
        }
        let replicas = (0..shards)
            .map(|s| ring.preference_list(ShardId(s).point(), r))
            .collect();
        Ok(Placement {
            replication: r,
            replicas,
        })
    }

    /// Each of `shards` shards on `r` distinct nodes by bounded load,
    /// assigned in shard order: no node holds more than
    /// `ceil((1+ε) × shards × r × its weight share)` replicas (see
    /// [`BoundedLoad`] for the one exception on tiny rings).
    pub fn bounded(
        ring: &Ring,
        shards: u32,
        r: usize,
        epsilon: f64,
    ) -> Result<Placement, RingError> {
        if r == 0 {
            return Err(RingError::BadReplication(r));
        }
        let per_shard = r.min(ring.len()) as u64;
        let mut load = BoundedLoad::new(ring, epsilon, u64::from(shards) * per_shard)?;
        let mut replicas = Vec::with_capacity(shards as usize);
        let mut out = Vec::with_capacity(r);
        for s in 0..shards {
            load.assign_replicas(ShardId(s).point(), r, &mut out)?;
            replicas.push(out.clone());
        }
        Ok(Placement {
            replication: r,
            replicas,
        })
    }

    pub fn shard_count(&self) -> u32 {
        self.replicas.len() as u32
    }

    pub fn replication(&self) -> usize {
        self.replication
    }

    /// The replicas of `shard`, preferred first; empty for an unknown shard.
    pub fn replicas(&self, shard: ShardId) -> &[NodeId] {
        self.replicas
            .get(shard.0 as usize)
            .map_or(&[], |r| r.as_slice())
    }

    /// The shards `node` holds a replica of.
    pub fn shards_of(&self, node: NodeId) -> Vec<ShardId> {
        (0..self.shard_count())
            .map(ShardId)
            .filter(|&s| self.replicas(s).contains(&node))
            .collect()
    }

    /// Replicas held by each node (nodes holding none are absent).
    pub fn loads(&self) -> BTreeMap<NodeId, usize> {
        let mut loads = BTreeMap::new();
        for node in self.replicas.iter().flatten() {
            *loads.entry(*node).or_insert(0) += 1;
        }
        loads
    }

    /// The shards whose replica set differs in `new`, in shard order (a
    /// change of order alone moves no data and is not listed). Both
    /// placements must have the same shard count: resharding is not a move.
    pub fn diff(&self, new: &Placement) -> Result<Vec<ShardMove>, RingError> {
        if self.shard_count() != new.shard_count() {
            return Err(RingError::ShardCountMismatch {
                old: self.shard_count(),
                new: new.shard_count(),
            });
        }
        let mut moves = Vec::new();
        for (s, (before, after)) in self.replicas.iter().zip(&new.replicas).enumerate() {
            let mut a = before.clone();
            let mut b = after.clone();
            a.sort();
            b.sort();
            if a != b {
                moves.push(ShardMove {
                    shard: ShardId(s as u32),
                    before: before.clone(),
                    after: after.clone(),
                });
            }
        }
        Ok(moves)
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
    fn shard_of_hash_is_uniform_and_in_range() {
        let mut counts = [0u32; 16];
        for k in 0..16_000u64 {
            let s = ShardId::of_hash(key_hash_u64(k), 16);
            counts[s.0 as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(ShardId::of_hash(u64::MAX, 7), ShardId(6));
        assert_eq!(ShardId::of_hash(0, 7), ShardId(0));
    }

    #[test]
    fn shard_points_are_pinned() {
        // Golden: where shards sit must never change (see hash.rs).
        assert_eq!(ShardId(0).point(), xxh64_u64(0, SHARD_SEED));
        assert_ne!(ShardId(0).point(), ShardId(1).point());
        assert_ne!(ShardId(7).point(), key_hash(&7u32.to_le_bytes()));
    }

    #[test]
    fn diff_refuses_different_shard_counts() {
        let r = ring(3, 8, 0);
        let a = Placement::by_ring(&r, 4, 2).expect("valid");
        let b = Placement::by_ring(&r, 5, 2).expect("valid");
        assert_eq!(
            a.diff(&b),
            Err(RingError::ShardCountMismatch { old: 4, new: 5 })
        );
        assert_eq!(
            Placement::by_ring(&r, 4, 0),
            Err(RingError::BadReplication(0))
        );
    }

    #[test]
    fn bounded_placement_caps_replicas_per_node() {
        // 5 nodes, 1 vnode each: plain ring placement is lopsided.
        let r = ring(5, 1, 3);
        let plain = Placement::by_ring(&r, 100, 3).expect("valid");
        let bounded = Placement::bounded(&r, 100, 3, 0.1).expect("valid");
        let cap = (1.1f64 * 300.0 / 5.0).ceil() as usize;
        assert!(
            bounded.loads().values().all(|&l| l <= cap),
            "{:?}",
            bounded.loads()
        );
        assert!(
            plain.loads().values().any(|&l| l > cap),
            "the test needs a skewed ring: {:?}",
            plain.loads()
        );
    }

    proptest! {
        /// Adding a node moves a shard only to the new node, and only one
        /// replica of it; removing one moves only shards it held.
        #[test]
        fn membership_change_moves_only_shards_it_must(
            n in 2u64..10, vnodes in 1u32..64, seed in any::<u64>(), shards in 1u32..200,
            r in 1usize..4, new_id in 10u64..50, victim in 0u64..10,
        ) {
            let old = ring(n, vnodes, seed);
            let before = Placement::by_ring(&old, shards, r).expect("valid");
            let mut grown = old.clone();
            grown.add(Member::new(NodeId(new_id))).expect("new id");
            for m in before.diff(&Placement::by_ring(&grown, shards, r).expect("valid")).expect("same count") {
                prop_assert_eq!(m.added(), vec![NodeId(new_id)], "{:?}", m);
                prop_assert!(m.removed().len() <= 1, "{:?}", m);
            }
            let victim = NodeId(victim % n);
            let mut shrunk = old.clone();
            shrunk.remove(victim).expect("member");
            for m in before.diff(&Placement::by_ring(&shrunk, shards, r).expect("valid")).expect("same count") {
                prop_assert_eq!(m.removed(), vec![victim], "{:?}", m);
                prop_assert!(m.added().len() <= 1, "{:?}", m);
            }
        }
    }
}

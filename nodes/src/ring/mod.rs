//! The consistent-hash ring: which node owns a key, which R nodes replicate
//! it, and what moves when membership changes.
//!
//! A [`Ring`] places `vnodes × weight` virtual nodes of every member at
//! points of the 64-bit hash space; a key belongs to the first point at or
//! after its hash, clockwise. Everything is a pure function of the
//! [`RingConfig`] and the member list, hashed with the stable XXH64
//! ([`hash`]), so every node of a cluster that agrees on the membership
//! agrees on every owner, whatever its platform or build.
//!
//! What it guarantees:
//! - **Determinism.** Two rings built from the same config and members, in
//!   any order, are equal and answer every lookup alike. The hash's output
//!   is pinned by golden tests.
//! - **Minimal movement.** A member's points depend only on its own id, its
//!   weight and the ring seed. Adding a node moves only keys that the new
//!   node now owns; removing one moves only the keys it owned; re-weighting
//!   moves keys only to (weight up) or from (weight down) that node.
//!   [`RingDiff`] lists exactly the arcs of the hash space that change owner.
//! - **Replicas.** [`Ring::preference_list`] gives R *distinct* physical
//!   nodes (all of them if the ring has fewer), walking clockwise. After an
//!   add, the new list minus the new node is a prefix of the old list; after
//!   a remove, the old list minus the removed node is a prefix of the new.
//! - **Balance.** With random placement a node's share of the hash space has
//!   a standard deviation of about `1/sqrt(vnodes × weight)` of its mean
//!   (128 vnodes: ~8.8%). That is a statistical property, not a bound:
//!   `faultline ring` measures it. Where a hard bound is needed, [`BoundedLoad`]
//!   assigns a finite set of keys or shards with "Consistent Hashing with
//!   Bounded Loads" (Mirrokni, Thorup, Zadimoghaddam, SODA 2018): no node gets
//!   more than `ceil((1+ε) × its fair share)`. Its placements depend on the
//!   order of assignment and move more than the minimum on membership change.
//! - **Lookups** are O(1) expected: a table indexed by the top bits of the
//!   hash narrows the sorted point array to a bucket of about one point.
//!
//! Sharding ([`Placement`], [`ShardId`]): the keyspace is split into a fixed
//! number of shards (a key's shard is a function of its hash and the shard
//! count only), each shard is placed on R nodes by the ring or by bounded
//! load, and [`Placement::diff`] says which shards move where when the ring
//! changes. [`jump_hash`] (Lamping and Veach) is here as a reference point
//! for benchmarks; it has no vnodes, weights or arbitrary removals.

mod bounded;
mod diff;
mod error;
pub mod hash;
mod hash_ring;
mod jump;
mod placement;
pub mod quality;
mod successors;

pub use bounded::BoundedLoad;
pub use diff::{ArcMove, RingDiff};
pub use error::RingError;
pub use hash_ring::{Member, Ring, RingConfig, RingSpec, DEFAULT_VNODES, MAX_POINTS, MAX_WEIGHT};
pub use jump::jump_hash;
pub use placement::{Placement, ShardId, ShardMove};
pub use successors::Successors;

/// A physical node of the ring: the cluster's node id. Its raw value is
/// what the ring hashes to place the node's virtual nodes.
pub use crate::consensus::NodeId;

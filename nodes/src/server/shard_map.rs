//! [`ShardMap`]: a sharded node's view of the ring, and where each request
//! goes.
//!
//! Guarantees: the shard of a key (or lock name) depends only on the name
//! and the shard count, never on the ring, so every node routes a name to
//! the same group whatever its ring view. The ring view only decides whom
//! a node points a client to when it does not host the shard (`moved`):
//! a stale view costs a redirect, never correctness. [`route`] is the whole
//! routing decision, a pure function so that it can be tested alone.

use crate::consensus::{GroupId, NodeId};
use crate::protocol::Op;
use crate::ring::{Placement, Ring, RingConfig, ShardId};

/// The shard count, replication and this node's current ring view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardMap {
    shards: u32,
    replicas: usize,
    vnodes: u32,
    members: Vec<NodeId>,
    placement: Placement,
}

impl ShardMap {
    /// The ring of `members` (any order; kept sorted) with `vnodes` virtual
    /// nodes each, seed 0, and its placement of `shards` shards on
    /// `replicas` nodes.
    pub fn new(
        shards: u32,
        replicas: usize,
        vnodes: u32,
        members: &[NodeId],
    ) -> Result<ShardMap, String> {
        if shards == 0 {
            return Err("at least one shard".into());
        }
        let mut members = members.to_vec();
        members.sort();
        let ring = Ring::uniform(RingConfig { vnodes, seed: 0 }, members.iter().copied())
            .map_err(|e| format!("ring of {members:?}: {e}"))?;
        let placement = Placement::by_ring(&ring, shards, replicas)
            .map_err(|e| format!("placement of {shards} shards: {e}"))?;
        Ok(ShardMap {
            shards,
            replicas,
            vnodes,
            members,
            placement,
        })
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// The ring view's members, sorted.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// The shard of a key or lock name.
    pub fn shard_of(&self, name: &str) -> ShardId {
        ShardId::of_key(name.as_bytes(), self.shards)
    }

    /// Whether `group` is one of the shards.
    pub fn has_group(&self, group: GroupId) -> bool {
        group.0 < u64::from(self.shards)
    }

    /// The groups `node` holds a replica of in this view, with their
    /// voters (sorted).
    pub fn groups_of(&self, node: NodeId) -> Vec<(GroupId, Vec<NodeId>)> {
        self.placement
            .shards_of(node)
            .into_iter()
            .map(|s| (GroupId(u64::from(s.0)), self.voters_of(s)))
            .collect()
    }

    /// The replicas of `shard`, sorted (a new group's initial voters).
    pub fn voters_of(&self, shard: ShardId) -> Vec<NodeId> {
        let mut v = self.placement.replicas(shard).to_vec();
        v.sort();
        v
    }

    /// Whom to send a request for `shard` to, from `me`: the first replica
    /// in the ring's preference order that is not `me`.
    pub fn redirect_target(&self, shard: ShardId, me: NodeId) -> Option<NodeId> {
        self.placement
            .replicas(shard)
            .iter()
            .copied()
            .find(|&n| n != me)
    }

    /// The same map with another ring view.
    pub fn with_members(&self, members: &[NodeId]) -> Result<ShardMap, String> {
        ShardMap::new(self.shards, self.replicas, self.vnodes, members)
    }
}

/// Where a client request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// To this hosted group.
    Group(GroupId),
    /// Not hosted here: answer `moved`, pointing at `to` if known.
    Moved { shard: ShardId, to: Option<NodeId> },
    /// An op about the node itself (status, admin): no key to route by.
    Node,
    /// A transaction whose keys lie in more than one shard: refused
    /// (definite), with the reason.
    CrossShard(String),
}

/// The routing decision for `op` at node `me`. Unsharded: every keyed op
/// goes to `first` (the node's first group). Sharded: to the op's shard's
/// group if `hosts` it, else `moved`.
pub fn route(
    op: &Op,
    map: Option<&ShardMap>,
    me: NodeId,
    first: Option<GroupId>,
    hosts: impl Fn(GroupId) -> bool,
) -> Route {
    let Some(name) = op.routing_key() else {
        return Route::Node;
    };
    match map {
        None => match first {
            Some(g) => Route::Group(g),
            None => Route::Node,
        },
        Some(map) => {
            let shard = map.shard_of(name);
            if let Some(other) = op.keys().into_iter().find(|k| map.shard_of(k) != shard) {
                return Route::CrossShard(format!(
                    "cross-shard txn: key {name:?} is in shard {} and key {other:?} in shard {}; a txn's keys must share one shard",
                    shard.0,
                    map.shard_of(other).0
                ));
            }
            let group = GroupId(u64::from(shard.0));
            if hosts(group) {
                Route::Group(group)
            } else {
                Route::Moved {
                    shard,
                    to: map.redirect_target(shard, me),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().copied().map(NodeId).collect()
    }

    fn map() -> ShardMap {
        ShardMap::new(4, 3, 128, &ids(&[3, 1, 2])).expect("map")
    }

    /// A key whose shard is `shard` (searched; shards are uniform).
    fn key_in(map: &ShardMap, shard: u32) -> String {
        (0..10_000)
            .map(|i| format!("k{i}"))
            .find(|k| map.shard_of(k).0 == shard)
            .expect("some key lands in every shard")
    }

    #[test]
    fn three_members_three_replicas_means_every_node_hosts_every_shard() {
        let m = map();
        assert_eq!(m.members(), &ids(&[1, 2, 3])[..], "kept sorted");
        for n in 1..=3 {
            let groups = m.groups_of(NodeId(n));
            assert_eq!(groups.len(), 4);
            for (g, voters) in groups {
                assert_eq!(voters, ids(&[1, 2, 3]), "group {g}: sorted voters");
            }
        }
        assert!(m.groups_of(NodeId(4)).is_empty());
    }

    #[test]
    fn keys_route_to_their_shard_or_are_moved_to_a_replica() {
        let m = ShardMap::new(8, 2, 64, &ids(&[1, 2, 3, 4])).expect("map");
        let me = NodeId(1);
        let mine: Vec<GroupId> = m.groups_of(me).into_iter().map(|(g, _)| g).collect();
        assert!(!mine.is_empty() && mine.len() < 8, "{mine:?}");
        for s in 0..8 {
            let key = key_in(&m, s);
            let op = Op::Write {
                key: key.clone(),
                value: json!(1),
            };
            let r = route(&op, Some(&m), me, None, |g| mine.contains(&g));
            if mine.contains(&GroupId(u64::from(s))) {
                assert_eq!(r, Route::Group(GroupId(u64::from(s))), "key {key}");
            } else {
                let Route::Moved { shard, to } = r else {
                    panic!("key {key}: {r:?}")
                };
                assert_eq!(shard, ShardId(s));
                let to = to.expect("a replica is known");
                assert_ne!(to, me, "never redirect to itself");
                assert!(m.voters_of(shard).contains(&to));
            }
        }
    }

    #[test]
    fn a_txn_routes_by_its_keys_shard_and_a_cross_shard_txn_is_refused() {
        let m = map();
        let (a, b) = (key_in(&m, 1), key_in(&m, 3));
        let txn = |keys: &[&String]| -> Op {
            let mops: Vec<serde_json::Value> = keys.iter().map(|k| json!(["r", k, null])).collect();
            serde_json::from_value(json!({"op": "txn", "mops": mops})).expect("a txn op")
        };
        let all = |_: GroupId| true;
        assert_eq!(
            route(&txn(&[&a, &a]), Some(&m), NodeId(1), None, all),
            Route::Group(GroupId(1))
        );
        let Route::CrossShard(reason) = route(&txn(&[&a, &b]), Some(&m), NodeId(1), None, all)
        else {
            panic!("a txn over shards 1 and 3 is refused")
        };
        assert!(reason.contains(&a) && reason.contains(&b), "{reason}");
        assert_eq!(
            route(&txn(&[&a, &b]), None, NodeId(1), Some(GroupId(0)), all),
            Route::Group(GroupId(0)),
            "unsharded, one group holds every key"
        );
    }

    #[test]
    fn locks_route_by_name_like_keys() {
        let m = map();
        let key = key_in(&m, 2);
        let acquire = Op::Acquire {
            lock: key.clone(),
            owner: "o".into(),
            ttl_ms: 1,
        };
        let fenced = Op::FencedWrite {
            key: key.clone(),
            value: json!(1),
            token: 1,
        };
        let only_2 = |g: GroupId| g == GroupId(2);
        assert_eq!(
            route(&acquire, Some(&m), NodeId(1), None, only_2),
            Route::Group(GroupId(2))
        );
        assert_eq!(
            route(&fenced, Some(&m), NodeId(1), None, only_2),
            Route::Group(GroupId(2))
        );
        let none = |_: GroupId| false;
        assert!(matches!(
            route(&acquire, Some(&m), NodeId(1), None, none),
            Route::Moved {
                shard: ShardId(2),
                to: Some(_)
            }
        ));
    }

    #[test]
    fn unsharded_nodes_send_every_keyed_op_to_the_first_group_and_admin_ops_to_the_node() {
        let op = Op::Read { key: "x".into() };
        assert_eq!(
            route(&op, None, NodeId(1), Some(GroupId(0)), |_| true),
            Route::Group(GroupId(0))
        );
        assert_eq!(
            route(&Op::Groups, Some(&map()), NodeId(1), None, |_| true),
            Route::Node
        );
        assert_eq!(
            route(&Op::Status, None, NodeId(1), Some(GroupId(0)), |_| true),
            Route::Node
        );
    }

    #[test]
    fn a_node_alone_in_a_shard_redirects_to_nobody() {
        let m = ShardMap::new(2, 1, 16, &ids(&[1])).expect("map");
        let op = Op::Read { key: "x".into() };
        assert!(matches!(
            route(&op, Some(&m), NodeId(1), None, |_| false),
            Route::Moved { to: None, .. }
        ));
    }

    #[test]
    fn a_new_ring_view_changes_redirects_not_shards() {
        let m = map();
        let m4 = m.with_members(&ids(&[1, 2, 3, 4])).expect("map");
        for i in 0..200 {
            let k = format!("key-{i}");
            assert_eq!(m.shard_of(&k), m4.shard_of(&k));
        }
        assert!(
            (0..4).any(|s| m4.voters_of(ShardId(s)).contains(&NodeId(4))),
            "node 4 gets some shard"
        );
        assert!(m.with_members(&[]).is_err());
    }
}

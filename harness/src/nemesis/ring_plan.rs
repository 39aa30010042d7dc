//! The membership nemesis's plan: which node joins or leaves the ring, and
//! which shards move where, computed with the nodes' own ring code
//! (`Ring::uniform(RingConfig { vnodes, seed: 0 }, members)`,
//! `Placement::by_ring`, `Placement::diff`), exactly as every node computes
//! its placement, so the harness and the nodes agree on every replica set.
//!
//! Guarantees: the member set always holds between `replicas` and every
//! node of the cluster; a step is a seeded random choice (the same seed
//! gives the same steps); a step's moves are exactly `Placement::diff` of
//! the placements before and after it. Pure: no IO.

use faultline_nodes::ring::{Placement, Ring, RingConfig, ShardMove};
use rand::seq::IteratorRandom;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Adding a node to the ring or removing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Add,
    Remove,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Add => "add",
            Action::Remove => "remove",
        }
    }
}

/// One planned membership change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    /// The node added or removed.
    pub node: u64,
    /// The ring members after the step, sorted.
    pub members: Vec<u64>,
    /// The placement after the step.
    pub placement: Placement,
    /// The shards whose replica set changes, in shard order.
    pub moves: Vec<ShardMove>,
}

/// The ring as the harness drives it; see the module docs.
#[derive(Clone, Debug)]
pub struct RingPlan {
    config: RingConfig,
    shards: u32,
    replicas: usize,
    /// Every node of the cluster.
    nodes: Vec<u64>,
    members: BTreeSet<u64>,
}

/// Node names as histories write them: `n1`, `n2`, …
pub fn names(ids: &[faultline_nodes::consensus::NodeId]) -> Vec<String> {
    ids.iter().map(|n| format!("n{}", n.0)).collect()
}

fn ids(nodes: &[u64]) -> Vec<String> {
    nodes.iter().map(|n| format!("n{n}")).collect()
}

impl RingPlan {
    /// The initial ring members of a cluster of `node_count` nodes: every
    /// node, or every node but the last when the membership nemesis runs
    /// (so that its first change can be an add).
    pub fn initial_members(node_count: u32, membership_nemesis: bool) -> Vec<u64> {
        let n = if membership_nemesis && node_count > 1 {
            node_count - 1
        } else {
            node_count
        };
        (1..=u64::from(n)).collect()
    }

    /// A plan over nodes `1..=node_count` starting from `members`.
    pub fn new(
        vnodes: u32,
        shards: u32,
        replicas: usize,
        node_count: u32,
        members: &[u64],
    ) -> Result<RingPlan, String> {
        let nodes: Vec<u64> = (1..=u64::from(node_count)).collect();
        if shards == 0 || replicas == 0 || vnodes == 0 {
            return Err("shards, replicas and vnodes must be at least 1".into());
        }
        if let Some(m) = members.iter().find(|m| !nodes.contains(m)) {
            return Err(format!("member n{m} is not a node of the cluster"));
        }
        let members: BTreeSet<u64> = members.iter().copied().collect();
        if members.len() < replicas {
            return Err(format!(
                "{} ring members cannot hold {replicas} replicas",
                members.len()
            ));
        }
        let plan = RingPlan {
            config: RingConfig { vnodes, seed: 0 },
            shards,
            replicas,
            nodes,
            members,
        };
        plan.placement_of(&plan.members)?;
        Ok(plan)
    }

    pub fn members(&self) -> Vec<u64> {
        self.members.iter().copied().collect()
    }

    fn placement_of(&self, members: &BTreeSet<u64>) -> Result<Placement, String> {
        let ring = Ring::uniform(
            self.config,
            members
                .iter()
                .map(|&m| faultline_nodes::consensus::NodeId(m)),
        )
        .map_err(|e| format!("building the ring: {e}"))?;
        Placement::by_ring(&ring, self.shards, self.replicas)
            .map_err(|e| format!("placing the shards: {e}"))
    }

    /// The placement of the current members.
    pub fn placement(&self) -> Placement {
        self.placement_of(&self.members)
            .expect("the members were placed when they were set")
    }

    /// Whether any step is possible (some node to add or some member to
    /// remove within the bounds).
    pub fn can_change(&self) -> bool {
        self.members.len() < self.nodes.len() || self.members.len() > self.replicas
    }

    /// A random step within the bounds: add a non-member or remove a
    /// member (a coin flip when both are possible). None when neither is.
    pub fn choose(&self, rng: &mut impl Rng) -> Option<Step> {
        let can_add = self.members.len() < self.nodes.len();
        let can_remove = self.members.len() > self.replicas;
        let action = match (can_add, can_remove) {
            (true, true) => {
                if rng.gen_bool(0.5) {
                    Action::Add
                } else {
                    Action::Remove
                }
            }
            (true, false) => Action::Add,
            (false, true) => Action::Remove,
            (false, false) => return None,
        };
        let node = match action {
            Action::Add => self
                .nodes
                .iter()
                .filter(|n| !self.members.contains(n))
                .choose(rng),
            Action::Remove => self.members.iter().choose(rng),
        }
        .copied()
        .expect("the bounds leave a candidate");
        Some(self.step(action, node))
    }

    /// The step that adds or removes `node`.
    pub fn step(&self, action: Action, node: u64) -> Step {
        let mut after = self.members.clone();
        match action {
            Action::Add => assert!(after.insert(node), "n{node} is already a member"),
            Action::Remove => assert!(after.remove(&node), "n{node} is not a member"),
        }
        let before = self.placement();
        let placement = self
            .placement_of(&after)
            .expect("a member set within bounds places");
        let moves = before
            .diff(&placement)
            .expect("the same shard count before and after");
        Step {
            action,
            node,
            members: after.into_iter().collect(),
            placement,
            moves,
        }
    }

    /// Makes `step` the current membership (whatever its moves achieved:
    /// the nodes' ring views follow the members, and the next step's
    /// change-membership requests name whole voter sets).
    pub fn apply(&mut self, step: &Step) {
        self.members = step.members.iter().copied().collect();
        assert!(
            self.members.len() >= self.replicas,
            "at least R members after a step"
        );
        assert!(
            self.members.len() <= self.nodes.len(),
            "no more members than nodes"
        );
    }

    /// The `placement` history event's value: the ring's parameters, the
    /// members and every shard's replicas (indexed by shard).
    pub fn placement_value(&self) -> Value {
        json!({
            "shards": self.shards,
            "replicas": self.replicas,
            "vnodes": self.config.vnodes,
            "members": ids(&self.members()),
            "placement": placement_json(&self.placement()),
        })
    }
}

/// A placement as history JSON: an array indexed by shard of replica names.
pub fn placement_json(p: &Placement) -> Value {
    (0..p.shard_count())
        .map(|s| json!(names(p.replicas(faultline_nodes::ring::ShardId(s)))))
        .collect()
}

/// A step's value for `start-membership` (before any outcome is known).
pub fn step_value(step: &Step) -> Value {
    json!({
        "action": step.action.as_str(),
        "node": format!("n{}", step.node),
        "members": ids(&step.members),
        "placement": placement_json(&step.placement),
        "moves": step.moves.iter().map(|m| json!({
            "shard": m.shard.0,
            "before": names(&m.before),
            "after": names(&m.after),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_nodes::consensus::NodeId;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn plan(nodes: u32, members: &[u64]) -> RingPlan {
        RingPlan::new(128, 8, 3, nodes, members).expect("valid plan")
    }

    #[test]
    fn the_nemesis_starts_with_every_node_but_the_last() {
        assert_eq!(RingPlan::initial_members(5, true), [1, 2, 3, 4]);
        assert_eq!(RingPlan::initial_members(5, false), [1, 2, 3, 4, 5]);
        assert_eq!(RingPlan::initial_members(1, true), [1]);
    }

    #[test]
    fn bad_plans_are_refused() {
        assert!(
            RingPlan::new(128, 8, 3, 5, &[1, 2]).is_err(),
            "fewer than R"
        );
        assert!(
            RingPlan::new(128, 8, 3, 3, &[1, 2, 7]).is_err(),
            "not a node"
        );
        assert!(RingPlan::new(128, 0, 3, 3, &[1, 2, 3]).is_err(), "no shard");
        assert!(RingPlan::new(0, 8, 3, 3, &[1, 2, 3]).is_err(), "no vnode");
    }

    #[test]
    fn members_stay_within_r_and_the_node_count_over_many_steps() {
        let mut p = plan(5, &[1, 2, 3, 4]);
        let mut rng = SmallRng::seed_from_u64(9);
        let (mut adds, mut removes) = (0, 0);
        for _ in 0..400 {
            let s = p.choose(&mut rng).expect("5 nodes, R 3: always a step");
            match s.action {
                Action::Add => {
                    adds += 1;
                    assert!(!p.members().contains(&s.node));
                }
                Action::Remove => {
                    removes += 1;
                    assert!(p.members().contains(&s.node));
                }
            }
            p.apply(&s);
            let n = p.members().len();
            assert!((3..=5).contains(&n), "{n} members");
        }
        assert!(adds > 50 && removes > 50, "{adds} adds, {removes} removes");
    }

    #[test]
    fn at_a_bound_the_only_step_goes_the_other_way() {
        let mut rng = SmallRng::seed_from_u64(1);
        let full = plan(4, &[1, 2, 3, 4]);
        for _ in 0..20 {
            assert_eq!(full.choose(&mut rng).expect("step").action, Action::Remove);
        }
        let least = plan(4, &[1, 2, 4]);
        for _ in 0..20 {
            let s = least.choose(&mut rng).expect("step");
            assert_eq!((s.action, s.node), (Action::Add, 3));
        }
        assert!(plan(3, &[1, 2, 3]).choose(&mut rng).is_none(), "N = R");
        assert!(!plan(3, &[1, 2, 3]).can_change());
    }

    #[test]
    fn moves_are_the_placement_diff_and_only_involve_the_changed_node() {
        let p = plan(5, &[1, 2, 3, 4]);
        let add = p.step(Action::Add, 5);
        assert!(!add.moves.is_empty(), "a fifth node takes some shards");
        assert_eq!(add.moves, p.placement().diff(&add.placement).expect("diff"));
        for m in &add.moves {
            assert_eq!(m.added(), [NodeId(5)], "shard {}", m.shard);
            assert_eq!(m.removed().len(), 1);
            assert_eq!(m.after.len(), 3);
        }
        // The placement is the nodes' own: the ring of the members after.
        let ring = Ring::uniform(
            RingConfig {
                vnodes: 128,
                seed: 0,
            },
            (1..=5).map(NodeId),
        )
        .expect("ring");
        assert_eq!(
            add.placement,
            Placement::by_ring(&ring, 8, 3).expect("placement")
        );
        let remove = p.step(Action::Remove, 2);
        for m in &remove.moves {
            assert_eq!(m.removed(), [NodeId(2)], "shard {}", m.shard);
            assert!(!m.after.contains(&NodeId(2)));
        }
        let held_by_2 = p.placement().shards_of(NodeId(2)).len();
        assert_eq!(remove.moves.len(), held_by_2, "every shard of n2 moves");
    }

    #[test]
    fn the_same_seed_gives_the_same_steps() {
        let run = |seed| {
            let mut p = plan(6, &[1, 2, 3, 4, 5]);
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..30)
                .map(|_| {
                    let s = p.choose(&mut rng).expect("step");
                    p.apply(&s);
                    (s.action, s.node)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(4), run(4));
        assert_ne!(run(4), run(5));
    }

    #[test]
    fn history_values_name_nodes_and_index_placements_by_shard() {
        let p = plan(4, &[1, 2, 3]);
        let v = p.placement_value();
        assert_eq!(v["members"], json!(["n1", "n2", "n3"]));
        assert_eq!(v["placement"].as_array().expect("array").len(), 8);
        assert_eq!(v["placement"][0].as_array().expect("replicas").len(), 3);
        let s = p.step(Action::Add, 4);
        let v = step_value(&s);
        assert_eq!(v["action"], "add");
        assert_eq!(v["node"], "n4");
        assert_eq!(v["members"], json!(["n1", "n2", "n3", "n4"]));
        let first = &s.moves[0];
        assert_eq!(v["moves"][0]["shard"], json!(first.shard.0));
        assert_eq!(v["moves"][0]["after"], json!(names(&first.after)));
    }
}

//! The plan of a test: every option resolved, as test.json records it.

use serde::{Deserialize, Serialize};

/// Every option of a run, resolved (no "3n", no defaults left implicit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestPlan {
    pub name: String,
    pub workload: String,
    /// The checkers the workload names.
    pub checkers: Vec<String>,
    pub node_count: u32,
    pub concurrency: u32,
    /// Operations per second over all workers (0: unlimited).
    pub rate_per_s: f64,
    pub time_limit_s: f64,
    pub op_timeout_ms: u64,
    /// Fault kinds (`partition`, `kill`, …); empty: no nemesis.
    pub nemesis: Vec<String>,
    pub nemesis_interval_s: f64,
    pub seed: u64,
    pub bug: Option<String>,
    pub consensus: Option<String>,
    /// How long to wait for a leader after healing, before the final reads.
    pub recovery_timeout_s: f64,
    /// How long the final reads may retry.
    pub final_timeout_s: f64,
    /// Lock workload: lease of each acquire.
    pub lock_ttl_ms: u64,
    /// kv workload: number of keys.
    pub kv_keys: usize,
    /// Shards of the keyspace, each its own consensus group; None:
    /// unsharded (one group of every node).
    #[serde(default)]
    pub shards: Option<u32>,
    /// Replicas of every shard (sharded runs).
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// Virtual nodes per ring member (sharded runs).
    #[serde(default = "default_vnodes")]
    pub vnodes: u32,
    /// The initial ring members, node ids (sharded runs; empty otherwise).
    #[serde(default)]
    pub members: Vec<u64>,
}

fn default_replicas() -> u32 {
    3
}

fn default_vnodes() -> u32 {
    faultline_nodes::ring::DEFAULT_VNODES
}

impl TestPlan {
    pub fn sharded(&self) -> bool {
        self.shards.is_some()
    }

    /// The flags every node gets for sharding: `--shards S --replicas R
    /// --members 1,2,… --vnodes V`; none when unsharded.
    pub fn node_sharding_args(&self) -> Vec<String> {
        let Some(shards) = self.shards else {
            return Vec::new();
        };
        let members: Vec<String> = self.members.iter().map(u64::to_string).collect();
        vec![
            "--shards".into(),
            shards.to_string(),
            "--replicas".into(),
            self.replicas.to_string(),
            "--members".into(),
            members.join(","),
            "--vnodes".into(),
            self.vnodes.to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(shards: Option<u32>) -> TestPlan {
        TestPlan {
            name: "t".into(),
            workload: "kv".into(),
            checkers: vec![],
            node_count: 5,
            concurrency: 10,
            rate_per_s: 50.0,
            time_limit_s: 1.0,
            op_timeout_ms: 1000,
            nemesis: vec![],
            nemesis_interval_s: 1.0,
            seed: 1,
            bug: None,
            consensus: None,
            recovery_timeout_s: 1.0,
            final_timeout_s: 1.0,
            lock_ttl_ms: 1000,
            kv_keys: 8,
            shards,
            replicas: 3,
            vnodes: 64,
            members: vec![1, 2, 3, 4],
        }
    }

    #[test]
    fn nodes_get_the_sharding_flags_only_when_sharded() {
        assert!(plan(None).node_sharding_args().is_empty());
        assert_eq!(
            plan(Some(8)).node_sharding_args().join(" "),
            "--shards 8 --replicas 3 --members 1,2,3,4 --vnodes 64"
        );
    }

    #[test]
    fn a_test_json_from_before_sharding_reads_as_unsharded() {
        let mut v = serde_json::to_value(plan(Some(8))).expect("serializes");
        for k in ["shards", "replicas", "vnodes", "members"] {
            v.as_object_mut().expect("object").remove(k);
        }
        let p: TestPlan = serde_json::from_value(v).expect("old plans read");
        assert_eq!((p.shards, p.replicas, p.vnodes), (None, 3, 128));
        assert!(!p.sharded() && p.members.is_empty());
    }
}

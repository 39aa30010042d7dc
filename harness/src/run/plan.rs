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
}

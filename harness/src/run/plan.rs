//! The plan of a test: every option resolved into types, built once from
//! the flags (`cmd/test.rs`) and carried by everything below; test.json
//! records it.
//!
//! Below the command line nothing parses a flag's text again: the workload,
//! the fault kinds, the bug, the consensus protocol, the system and the
//! ring are values here. test.json keeps the same JSON as before the plan
//! was typed (names as strings; sharding as `shards`, `replicas`, `vnodes`,
//! `members`; `system` added, absent meaning faultline), so old runs still
//! re-analyze.

use super::isolation::IsolationLevel;
use crate::nemesis::ring_plan::RingPlan;
use crate::nemesis::FaultKind;
use crate::system::SystemKind;
use faultline_nodes::bug::Bug;
use faultline_nodes::server::ConsensusKind;
use faultline_workloads::{ValueShape, WorkloadKind};
use serde::{Deserialize, Serialize};

/// Every option of a run, resolved (no "3n", no defaults left implicit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "PlanRecord", try_from = "PlanRecord")]
pub struct TestPlan {
    pub name: String,
    /// The system under test.
    pub system: SystemKind,
    pub workload: WorkloadKind,
    /// The checkers the workload names.
    pub checkers: Vec<String>,
    pub node_count: u32,
    pub concurrency: u32,
    /// Operations per second over all workers (0: unlimited).
    pub rate_per_s: f64,
    pub time_limit_s: f64,
    pub op_timeout_ms: u64,
    /// Fault kinds, sorted and distinct; empty: no nemesis.
    pub nemesis: Vec<FaultKind>,
    pub nemesis_interval_s: f64,
    pub seed: u64,
    /// A bug planted in faultline's node.
    pub bug: Option<Bug>,
    /// faultline's node's consensus protocol (None: the node's default).
    pub consensus: Option<ConsensusKind>,
    /// How long to wait for a leader after healing, before the final reads.
    pub recovery_timeout_s: f64,
    /// How long the final reads may retry.
    pub final_timeout_s: f64,
    /// Lock workload: lease of each acquire.
    pub lock_ttl_ms: u64,
    /// kv workload: number of keys.
    pub kv_keys: usize,
    /// The keyspace split into shards on a ring; None: one group of every
    /// node.
    pub sharding: Option<Sharding>,
    /// register and kv: values sent padded and nested (`--value-size`,
    /// `--value-depth`); None: as the workload makes them.
    pub value_shape: Option<ValueShape>,
    /// `--auth`: the nodes require a token made for the run (test.json
    /// says only that; the token stays in the run's `.auth-token`).
    pub auth: bool,
    /// `--tls`: the nodes serve TLS only, with certificates of a CA made
    /// for the run (test.json says only that; the files stay in the run's
    /// `.tls/`, and the CA's key in memory).
    pub tls: bool,
    /// `--isolation`, or the adapter file's default level: what the system
    /// runs its transactions at. None: the system takes no level.
    pub isolation: Option<IsolationLevel>,
}

/// A sharded cluster's ring, planned once.
#[derive(Clone, Debug)]
pub struct Sharding {
    pub shards: u32,
    pub replicas: u32,
    pub vnodes: u32,
    /// The initial ring members, node ids.
    pub members: Vec<u64>,
    /// The ring those make, which the membership nemesis drives.
    pub ring: RingPlan,
}

impl PartialEq for Sharding {
    /// The ring is a function of the other fields.
    fn eq(&self, other: &Sharding) -> bool {
        (self.shards, self.replicas, self.vnodes, &self.members)
            == (other.shards, other.replicas, other.vnodes, &other.members)
    }
}

impl Sharding {
    /// Plans the ring of `shards` × `replicas` over nodes `1..=node_count`
    /// starting from `members`.
    pub fn new(
        shards: u32,
        replicas: u32,
        vnodes: u32,
        node_count: u32,
        members: Vec<u64>,
    ) -> Result<Sharding, String> {
        let ring = RingPlan::new(vnodes, shards, replicas as usize, node_count, &members)?;
        Ok(Sharding {
            shards,
            replicas,
            vnodes,
            members,
            ring,
        })
    }
}

impl TestPlan {
    pub fn sharded(&self) -> bool {
        self.sharding.is_some()
    }

    /// The flags every faultline node gets for this plan: `--bug`,
    /// `--consensus`, and when sharded `--shards S --replicas R --members
    /// 1,2,… --vnodes V`.
    pub fn node_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(bug) = self.bug {
            args.extend(["--bug".to_string(), bug.to_string()]);
        }
        if let Some(c) = self.consensus {
            args.extend(["--consensus".to_string(), c.name().to_string()]);
        }
        if let Some(s) = &self.sharding {
            let members: Vec<String> = s.members.iter().map(u64::to_string).collect();
            args.extend([
                "--shards".into(),
                s.shards.to_string(),
                "--replicas".into(),
                s.replicas.to_string(),
                "--members".into(),
                members.join(","),
                "--vnodes".into(),
                s.vnodes.to_string(),
            ]);
        }
        args
    }
}

/// Parses a consensus protocol's name.
pub fn consensus_kind(name: &str) -> Option<ConsensusKind> {
    [ConsensusKind::Raft, ConsensusKind::Paxos]
        .into_iter()
        .find(|c| c.name() == name)
}

/// The plan as test.json holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PlanRecord {
    name: String,
    #[serde(default = "default_system")]
    system: SystemKind,
    workload: WorkloadKind,
    checkers: Vec<String>,
    node_count: u32,
    concurrency: u32,
    rate_per_s: f64,
    time_limit_s: f64,
    op_timeout_ms: u64,
    nemesis: Vec<FaultKind>,
    nemesis_interval_s: f64,
    seed: u64,
    bug: Option<String>,
    consensus: Option<String>,
    recovery_timeout_s: f64,
    final_timeout_s: f64,
    lock_ttl_ms: u64,
    kv_keys: usize,
    #[serde(default)]
    shards: Option<u32>,
    #[serde(default = "default_replicas")]
    replicas: u32,
    #[serde(default = "default_vnodes")]
    vnodes: u32,
    #[serde(default)]
    members: Vec<u64>,
    /// `--value-size` in bytes, `--value-depth` (absent: not shaped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_size_bytes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_depth: Option<usize>,
    /// `--auth` (absent: off).
    #[serde(default)]
    auth: bool,
    /// `--tls` (absent: off).
    #[serde(default)]
    tls: bool,
    /// The isolation level the system ran at (absent: it takes none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    isolation: Option<IsolationLevel>,
}

fn default_system() -> SystemKind {
    SystemKind::Faultline
}

fn default_replicas() -> u32 {
    3
}

fn default_vnodes() -> u32 {
    faultline_nodes::ring::DEFAULT_VNODES
}

impl From<TestPlan> for PlanRecord {
    fn from(p: TestPlan) -> PlanRecord {
        let (shards, replicas, vnodes, members) = match p.sharding {
            Some(s) => (Some(s.shards), s.replicas, s.vnodes, s.members),
            None => (None, default_replicas(), default_vnodes(), Vec::new()),
        };
        PlanRecord {
            name: p.name,
            system: p.system,
            workload: p.workload,
            checkers: p.checkers,
            node_count: p.node_count,
            concurrency: p.concurrency,
            rate_per_s: p.rate_per_s,
            time_limit_s: p.time_limit_s,
            op_timeout_ms: p.op_timeout_ms,
            nemesis: p.nemesis,
            nemesis_interval_s: p.nemesis_interval_s,
            seed: p.seed,
            bug: p.bug.map(|b| b.to_string()),
            consensus: p.consensus.map(|c| c.name().to_string()),
            recovery_timeout_s: p.recovery_timeout_s,
            final_timeout_s: p.final_timeout_s,
            lock_ttl_ms: p.lock_ttl_ms,
            kv_keys: p.kv_keys,
            shards,
            replicas,
            vnodes,
            members,
            value_size_bytes: p.value_shape.map(|v| v.size_bytes),
            value_depth: p.value_shape.map(|v| v.depth),
            auth: p.auth,
            tls: p.tls,
            isolation: p.isolation,
        }
    }
}

impl TryFrom<PlanRecord> for TestPlan {
    type Error = String;
    fn try_from(r: PlanRecord) -> Result<TestPlan, String> {
        let bug = match &r.bug {
            Some(b) => Some(b.parse::<Bug>().map_err(|e| format!("bug: {e}"))?),
            None => None,
        };
        let consensus = match &r.consensus {
            Some(c) => Some(
                consensus_kind(c).ok_or_else(|| format!("consensus {c:?}: not raft or paxos"))?,
            ),
            None => None,
        };
        let sharding = match r.shards {
            Some(shards) => Some(
                Sharding::new(shards, r.replicas, r.vnodes, r.node_count, r.members)
                    .map_err(|e| format!("sharding: {e}"))?,
            ),
            None => None,
        };
        Ok(TestPlan {
            name: r.name,
            system: r.system,
            workload: r.workload,
            checkers: r.checkers,
            node_count: r.node_count,
            concurrency: r.concurrency,
            rate_per_s: r.rate_per_s,
            time_limit_s: r.time_limit_s,
            op_timeout_ms: r.op_timeout_ms,
            nemesis: r.nemesis,
            nemesis_interval_s: r.nemesis_interval_s,
            seed: r.seed,
            bug,
            consensus,
            recovery_timeout_s: r.recovery_timeout_s,
            final_timeout_s: r.final_timeout_s,
            lock_ttl_ms: r.lock_ttl_ms,
            kv_keys: r.kv_keys,
            sharding,
            value_shape: (r.value_size_bytes.is_some() || r.value_depth.is_some()).then(|| {
                ValueShape {
                    size_bytes: r.value_size_bytes.unwrap_or(0),
                    depth: r.value_depth.unwrap_or(0),
                }
            }),
            auth: r.auth,
            tls: r.tls,
            isolation: r.isolation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sharded: bool) -> TestPlan {
        TestPlan {
            name: "t".into(),
            system: SystemKind::Faultline,
            workload: WorkloadKind::Kv,
            checkers: vec![],
            node_count: 5,
            concurrency: 10,
            rate_per_s: 50.0,
            time_limit_s: 1.0,
            op_timeout_ms: 1000,
            nemesis: vec![FaultKind::Partition, FaultKind::Kill],
            nemesis_interval_s: 1.0,
            seed: 1,
            bug: Some(Bug::StaleRead),
            consensus: Some(ConsensusKind::Paxos),
            recovery_timeout_s: 1.0,
            final_timeout_s: 1.0,
            lock_ttl_ms: 1000,
            kv_keys: 8,
            sharding: sharded
                .then(|| Sharding::new(8, 3, 64, 5, vec![1, 2, 3, 4]).expect("a valid ring")),
            value_shape: sharded.then_some(ValueShape {
                size_bytes: 900 << 10,
                depth: 20,
            }),
            auth: sharded,
            tls: sharded,
            isolation: sharded.then_some(IsolationLevel::RepeatableRead),
        }
    }

    #[test]
    fn nodes_get_the_sharding_flags_only_when_sharded() {
        assert_eq!(
            plan(false).node_args().join(" "),
            "--bug stale-read --consensus paxos"
        );
        assert_eq!(
            plan(true).node_args().join(" "),
            "--bug stale-read --consensus paxos --shards 8 --replicas 3 --members 1,2,3,4 --vnodes 64"
        );
    }

    #[test]
    fn the_plan_round_trips_through_test_json_with_names_as_strings() {
        for sharded in [false, true] {
            let p = plan(sharded);
            let v = serde_json::to_value(&p).expect("serializes");
            assert_eq!(v["workload"], "kv");
            assert_eq!(v["nemesis"], serde_json::json!(["partition", "kill"]));
            assert_eq!(v["bug"], "stale-read");
            assert_eq!(v["consensus"], "paxos");
            assert_eq!(v["system"], "faultline");
            assert_eq!(v["auth"], sharded, "test.json says whether auth was on");
            assert_eq!(v["tls"], sharded, "test.json says whether TLS was on");
            match sharded {
                true => assert_eq!(v["isolation"], "repeatable-read"),
                false => assert!(v.get("isolation").is_none(), "no level: no key"),
            }
            let back: TestPlan = serde_json::from_value(v).expect("reads back");
            assert_eq!(back, p);
        }
    }

    #[test]
    fn a_test_json_from_before_sharding_and_systems_reads_as_unsharded_faultline() {
        let mut v = serde_json::to_value(plan(true)).expect("serializes");
        for k in [
            "shards",
            "replicas",
            "vnodes",
            "members",
            "system",
            "value_size_bytes",
            "value_depth",
            "auth",
            "tls",
            "isolation",
        ] {
            v.as_object_mut().expect("object").remove(k);
        }
        let p: TestPlan = serde_json::from_value(v).expect("old plans read");
        assert_eq!(p.sharding, None);
        assert_eq!(p.value_shape, None);
        assert_eq!(p.system, SystemKind::Faultline);
        assert!(!p.sharded());
        assert!(!p.auth, "a plan from before --auth ran without it");
        assert!(!p.tls, "a plan from before --tls ran without it");
        assert_eq!(
            p.isolation, None,
            "a plan from before --isolation took no level"
        );
    }

    #[test]
    fn a_bad_name_in_test_json_is_an_error_naming_it() {
        let mut v = serde_json::to_value(plan(false)).expect("serializes");
        v["bug"] = serde_json::json!("no-such-bug");
        let e = serde_json::from_value::<TestPlan>(v).expect_err("unknown bug");
        assert!(e.to_string().contains("no-such-bug"), "{e}");
        let mut v = serde_json::to_value(plan(false)).expect("serializes");
        v["isolation"] = serde_json::json!("serialisable");
        let e = serde_json::from_value::<TestPlan>(v).expect_err("unknown level");
        assert!(e.to_string().contains("serialisable"), "{e}");
    }
}

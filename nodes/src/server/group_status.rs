//! [`GroupStatus`]: what `status` reports of one group on one node, as a
//! typed value, written once for both runtimes (the node's group.rs and
//! the simulator's impostor, through [`super::admin::AdminAnswer`]).
//!
//! Computed from the core's [`Status`], the [`Applier`] (applied index,
//! keys) and what the runtime reports of itself ([`RuntimeReport`]: its
//! storage, clock and planted bugs). [`GroupStatus::fields`] gives the
//! wire fields under the names docs/protocol.md lists (the harness reads
//! them): a change here changes the wire.

use serde_json::{json, Value};

use super::applier::Applier;
use crate::consensus::{LogIndex, Status};

/// What the runtime around a core reports of itself for `status`.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeReport {
    /// The protocol's name (`raft`, `paxos`).
    pub consensus: &'static str,
    /// The index of the snapshot the storage holds.
    pub stored_snapshot_index: LogIndex,
    /// Bytes in the write-ahead log (None: the runtime has no WAL, as the
    /// simulator's disks).
    pub wal_bytes: Option<u64>,
    pub clock_offset_ms: i64,
    pub clock_rate: f64,
    /// The planted bugs' names.
    pub bugs: Vec<&'static str>,
}

/// One group's status on one node: the core's own, and what only the
/// runtime knows.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupStatus {
    /// The core's counters, as it reports them.
    pub core: Status,
    /// The state machine's applied index.
    pub applied_index: LogIndex,
    /// The later of the stored snapshot and the core's.
    pub snapshot_index: LogIndex,
    pub keys: usize,
    pub runtime: RuntimeReport,
}

impl GroupStatus {
    /// The status of the group whose core reports `core`.
    pub fn new(core: &Status, applier: &Applier, runtime: RuntimeReport) -> GroupStatus {
        GroupStatus {
            core: core.clone(),
            applied_index: applier.applied(),
            snapshot_index: runtime.stored_snapshot_index.max(core.snapshot_index),
            keys: applier.state().key_count(),
            runtime,
        }
    }

    /// The wire fields of `status`; `leader_address` is the
    /// leader's client address, if known.
    pub fn fields(&self, leader_address: Option<String>) -> Vec<(&'static str, Value)> {
        vec![
            ("node", json!(self.core.id.0)),
            ("group", json!(self.core.group.0)),
            ("role", json!(self.core.role.to_string())),
            ("term", json!(self.core.term.0)),
            ("leader", json!(self.core.leader.map(|l| l.0))),
            ("leader_addr", json!(leader_address)),
            ("commit_index", json!(self.core.commit_index.0)),
            ("applied_index", json!(self.applied_index.0)),
            ("last_index", json!(self.core.last_index.0)),
            ("log_len", json!(self.core.log_len)),
            ("snapshot_index", json!(self.snapshot_index.0)),
            ("wal_bytes", json!(self.runtime.wal_bytes)),
            ("keys", json!(self.keys)),
            ("consensus", json!(self.runtime.consensus)),
            ("clock_offset_ms", json!(self.runtime.clock_offset_ms)),
            ("clock_rate", json!(self.runtime.clock_rate)),
            ("bugs", json!(self.runtime.bugs)),
        ]
    }
}

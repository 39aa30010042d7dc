//! What one simulation run does: the seed, the cluster, the faults, the
//! clients and the planted bugs.

use super::*;

/// What one simulation run does.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub seed: u64,
    /// Cluster size; None draws 3 to 7 from the seed.
    pub nodes: Option<usize>,
    /// How long faults are injected, in virtual milliseconds.
    pub duration_ms: u64,
    /// After the faults: everything healed and restarted, clients go on.
    pub settle_ms: u64,
    pub clients: usize,
    pub keys: u64,
    pub bugs: Vec<Bug>,
    pub lease_reads: bool,
    pub faults: bool,
    pub op_timeout_ms: u64,
    /// Keep a readable trace (for replays); costs time.
    pub trace: bool,
    /// Let node clocks run at different rates (±30%, drawn from the seed for
    /// half the seeds). Raft's safety must not depend on clocks; lease reads do.
    pub clock_skew: bool,
    /// Membership changes (off by default, so seeds without it replay as
    /// before): the group starts with `nodes` voters (None: 3 to 5) out of a
    /// pool of `pool` node ids; during the faults the world asks the leader
    /// to [`crate::consensus::Consensus::change_membership`] now and then
    /// (add one, remove one, swap one or two voters), starts a joining core
    /// (empty voters) on every added node that does not run the group, and
    /// stops and wipes a node a grace after it applied a committed simple
    /// configuration without itself (the node's retire grace,
    /// server/removal.rs).
    pub membership: bool,
    /// With `membership`: the number of node ids (initial voters plus
    /// spares); None = initial voters + 2, at most 9.
    pub pool: Option<usize>,
    /// A planted membership bug for the proof of power: every core is asked
    /// to [`SimCore::plant_membership_bug`] (Raft: skip the joint phase).
    pub membership_bug: bool,
    /// A planted runtime bug for the proof of power (issue 21, finding 1's
    /// fix reverted): a write proposed at an index where the host already
    /// holds an older term's pending write fails that older write at once,
    /// definitely ([`PendingWrites::planted_early_fail`]). Simulator only:
    /// no node can run with it.
    pub early_fail_bug: bool,
    /// Leadership churn: on top of the usual nemesis, partitions that change
    /// every 20 to 150 ms (two or three random sides, or the leader with
    /// one peer). None: drawn from
    /// the seed (a quarter of the seeds, from a stream of its own so the
    /// other draws stay as they were).
    pub churn: Option<bool>,
    /// With `membership`: the world may re-add a node id whose disk it
    /// wiped after a removal (as the real runtime does). Off: only ids that
    /// never left the group are added (a wiped voter forgot its promises;
    /// protocols that cannot tell a stale leader from a current one without
    /// them stay safe only if ids are never reused).
    pub reuse_ids: bool,
    /// The watchdog's bounds ([`crate::sim::watchdog`]): a run that passes one
    /// fails as a liveness failure instead of running without end.
    pub limits: SimLimits,
    /// `CoreConfig::snapshot_chunk_bytes` for every core; None: drawn from
    /// the seed (7, 16, 64 bytes or 1 MiB). A seed pinned before snapshots
    /// were chunked replays its scenario with one chunk (1 MiB).
    pub snapshot_chunk_bytes: Option<usize>,
    /// The leader delivery fault ([`crate::sim::delivery_fault`]). Off by
    /// default (seeds replay as before); None: drawn from the seed (on a
    /// third of the seeds, from a stream of its own).
    pub delivery_fault: Option<DeliveryFaultPlan>,
    /// Lock clients ([`clients::LockClient`]) beside the register clients:
    /// acquire, fenced write, renew or release on one lock. None: drawn
    /// from the seed (2 on a third of the seeds, from a stream of its own).
    pub lock_clients: Option<usize>,
    /// Transaction clients (list-append, [`clients::TxnMop`]) beside the
    /// others. None: drawn from the seed (2 on a third of the seeds, from a
    /// stream of its own).
    pub txn_clients: Option<usize>,
    /// The values register clients write ([`RegisterValues`]): small by
    /// default (seeds replay as before); fresh makes a write that took
    /// effect after a `fail` visible to the next read.
    pub register_values: RegisterValues,
}

impl SimOptions {
    pub fn new(seed: u64) -> SimOptions {
        SimOptions {
            seed,
            nodes: None,
            duration_ms: 2_500,
            settle_ms: 1_500,
            clients: 4,
            keys: 2,
            bugs: Vec::new(),
            lease_reads: false,
            faults: true,
            op_timeout_ms: 600,
            trace: false,
            clock_skew: true,
            membership: false,
            pool: None,
            membership_bug: false,
            early_fail_bug: false,
            churn: None,
            reuse_ids: false,
            limits: SimLimits::default(),
            snapshot_chunk_bytes: None,
            delivery_fault: Some(DeliveryFaultPlan::off()),
            lock_clients: None,
            txn_clients: None,
            register_values: RegisterValues::Small,
        }
    }

    /// [`SimOptions::new`] with membership changes on.
    pub fn with_membership(seed: u64) -> SimOptions {
        SimOptions {
            membership: true,
            ..SimOptions::new(seed)
        }
    }

    pub(super) fn has_bug(&self, bug: Bug) -> bool {
        self.bugs.contains(&bug)
    }
}

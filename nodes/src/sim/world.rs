//! Simulation: 3 to 7 consensus cores in one thread, one seed, virtual time.
//!
//! The world is protocol-independent: it drives any [`SimCore`] through the
//! [`crate::consensus`] contract exactly as the real node does (send the
//! early messages, persist, then `persisted`, then send; apply; answer
//! reads). Around the cores it
//! puts a network that drops, delays, duplicates, reorders and partitions
//! ([`SimNetwork`]), disks that lose unsynced writes on a crash
//! ([`SimStorage`]), a nemesis (partitions, crashes of one node or of a
//! majority, leadership transfers) and clients ([`super::clients`]) that
//! send the node's commands (registers; on a share of the seeds, a lock and
//! a fenced resource) and record a history. Committed entries go through
//! the runtime's own [`Applier`] (state machine and lease timers, virtual
//! time as its clock). After every step the
//! [`SafetyMonitor`] checks the protocol's safety properties; the first
//! violation stops the run.
//!
//! Membership (opt-in, [`SimOptions::membership`]): the hosts are a pool of
//! node ids larger than the initial voter set. Now and then the world asks
//! the current leader to `change_membership` (add one, remove one, swap one
//! or two voters), starts a joining core (no voters, empty disk) on every
//! added node that does not run the group, and, as the real runtime does,
//! stops and wipes a node once it applied a committed simple configuration
//! without itself (at an index above the entry that last added it: an old
//! removal replayed while catching up does not count). Crashes, partitions
//! and loss go on meanwhile; a new leader must hold the latest configuration
//! committed before its term.
//!
//! Determinism: every random choice comes from one [`SimRng`] seeded by
//! `SimOptions::seed`, events at the same virtual time run in the order they
//! were scheduled, and no hash map is iterated where order matters, so a seed
//! replays the same trace (its fingerprint is `SimOutcome::trace_hash`).
//!
//! Clients' writes are matched to committed entries by the node's own
//! table ([`PendingWrites`], deadlines in virtual µs): ok when the entry at
//! the proposal's (index, term) commits, definite fail when another term
//! commits there, unknown (the client times out) on a snapshot covering
//! it, a crash or the deadline.
//!
//! Planted bugs: [`Bug::StaleRead`] goes to the cores (it is theirs);
//! [`Bug::LockEarlyExpiry`], [`Bug::NoFence`] and [`Bug::TxnNonAtomic`] to
//! the [`Applier`], as in the node;
//! [`Bug::NoFsync`] is the runtime's: a Ready's messages go out and
//! `persisted` is called before its write is durable, and writes reach the
//! disk only by a lazy periodic flush. [`SimOptions::early_fail_bug`]
//! (simulator only, no [`Bug`]) reverts issue 21 finding 1's fix in the
//! pending-write table.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use serde_json::Value;

use super::check::{SafetyMonitor, Violation};
use super::clients::{self, LockClient, OpKind, RegisterOps, RegisterValues};
use super::core::SimCore;
use super::delivery_fault::{DeliveryFault, DeliveryFaultPlan, DeliveryFaultStats};
use super::failed_writes::{FailedWrite, FailedWrites};
use super::fnv::Fnv;
use super::history::{History, SimEventKind};
use super::network::{NetworkFaults, SimNetwork};
use super::rng::SimRng;
use super::storage::{SimStorage, Write};
use super::watchdog::{SimLimits, Watchdog};
use crate::bug::Bug;
use crate::consensus::{
    CoreConfig, Entry, EntryKind, GroupId, LogIndex, Message, NodeId, ReadOutcome, Ready, Role,
    Snapshot, Term, TICK_INTERVAL_MS,
};
use crate::server::applier::{Applier, Outcome};
use crate::server::pending_writes::PendingWrites;
use crate::state::Applied;

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
    /// stops and wipes a node once it applied a committed simple
    /// configuration without itself.
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
    /// The watchdog's bounds ([`super::watchdog`]): a run that passes one
    /// fails as a liveness failure instead of running without end.
    pub limits: SimLimits,
    /// `CoreConfig::snapshot_chunk_bytes` for every core; None: drawn from
    /// the seed (7, 16, 64 bytes or 1 MiB). A seed pinned before snapshots
    /// were chunked replays its scenario with one chunk (1 MiB).
    pub snapshot_chunk_bytes: Option<usize>,
    /// The leader delivery fault ([`super::delivery_fault`]). Off by
    /// default (seeds replay as before); None: drawn from the seed (on a
    /// third of the seeds, from a stream of its own).
    pub delivery_fault: Option<DeliveryFaultPlan>,
    /// Lock clients ([`clients::LockClient`]) beside the register clients:
    /// acquire, fenced write, renew or release on one lock. None: drawn
    /// from the seed (2 on a third of the seeds, from a stream of its own).
    pub lock_clients: Option<usize>,
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

    fn has_bug(&self, bug: Bug) -> bool {
        self.bugs.contains(&bug)
    }
}

/// Counters of one run, to see that a run did something.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub events: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub transfers: u64,
    pub terms_with_leader: u64,
    pub entries_applied: u64,
    /// InstallSnapshot messages sent (one per chunk).
    pub snapshots_sent: u64,
    /// Snapshots installed from their last chunk after earlier ones (a
    /// snapshot assembled from more than one chunk).
    pub multi_chunk_installs: u64,
    pub unsynced_writes_lost: u64,
    /// Client writes proposed at an index where the same host still held
    /// an older term's pending write (issue 21, finding 1's scenario: both
    /// wait for the commit there; the planted early-fail bug fails the
    /// older at once).
    pub writes_at_reused_index: u64,
    /// With the planted early-fail bug: writes it answered definite fail at
    /// once, and how many of those committed after all (applied by some
    /// node at their (index, term)): each is a fail that took effect.
    pub writes_failed_early: u64,
    pub failed_early_committed: u64,
    /// Of the writes failed early: those another live node held at
    /// (index, term) at that moment (they could still commit).
    pub failed_early_held_elsewhere: u64,
    /// `change_membership` calls the world made / the leader accepted.
    pub membership_requested: u64,
    pub membership_accepted: u64,
    /// Committed simple configurations applied somewhere (each is a
    /// finished change: the initial configuration is not in the log).
    pub membership_done: u64,
    /// Joining cores started on added nodes.
    pub joins: u64,
    /// Joining cores that got their first configuration from a snapshot /
    /// from log entries.
    pub joined_by_snapshot: u64,
    pub joined_by_log: u64,
    /// Nodes stopped and wiped after applying a configuration without them.
    pub removals: u64,
    /// Removed leaders among those (they stepped down first).
    pub leader_removals: u64,
    /// Wiped node ids added again (only with `reuse_ids`).
    pub rejoins: u64,
    /// The watchdog's peaks: how close the run came to its bounds.
    pub peak_messages_in_flight: u64,
    pub peak_readys_per_step: u64,
    pub peak_events_per_virtual_ms: u64,
    /// What the leader delivery fault did.
    pub delivery: DeliveryFaultStats,
}

impl SimStats {
    /// Adds another run's counters to these (the peaks: the larger one).
    pub fn add(&mut self, other: &SimStats) {
        self.events += other.events;
        self.messages_sent += other.messages_sent;
        self.messages_delivered += other.messages_delivered;
        self.crashes += other.crashes;
        self.partitions += other.partitions;
        self.transfers += other.transfers;
        self.terms_with_leader += other.terms_with_leader;
        self.entries_applied += other.entries_applied;
        self.snapshots_sent += other.snapshots_sent;
        self.multi_chunk_installs += other.multi_chunk_installs;
        self.unsynced_writes_lost += other.unsynced_writes_lost;
        self.writes_at_reused_index += other.writes_at_reused_index;
        self.writes_failed_early += other.writes_failed_early;
        self.failed_early_committed += other.failed_early_committed;
        self.failed_early_held_elsewhere += other.failed_early_held_elsewhere;
        self.membership_requested += other.membership_requested;
        self.membership_accepted += other.membership_accepted;
        self.membership_done += other.membership_done;
        self.joins += other.joins;
        self.joined_by_snapshot += other.joined_by_snapshot;
        self.joined_by_log += other.joined_by_log;
        self.removals += other.removals;
        self.leader_removals += other.leader_removals;
        self.rejoins += other.rejoins;
        self.peak_messages_in_flight = self
            .peak_messages_in_flight
            .max(other.peak_messages_in_flight);
        self.peak_readys_per_step = self.peak_readys_per_step.max(other.peak_readys_per_step);
        self.peak_events_per_virtual_ms = self
            .peak_events_per_virtual_ms
            .max(other.peak_events_per_virtual_ms);
        self.delivery.add(&other.delivery);
    }
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct SimOutcome {
    pub seed: u64,
    /// Node ids in play (with membership: the whole pool).
    pub nodes: usize,
    /// The initial voters.
    pub initial_voters: usize,
    pub protocol: &'static str,
    pub violation: Option<Violation>,
    pub history: History,
    pub trace_hash: u64,
    pub trace: Vec<String>,
    pub stats: SimStats,
}

#[derive(Clone, Debug, PartialEq)]
enum Reply {
    Redirect(Option<NodeId>),
    Ok(Value),
    Fail(&'static str),
}

#[derive(Clone, Debug)]
enum Ev {
    Tick(NodeId, u64),
    Deliver(Message),
    Synced(NodeId, u64, u64),
    LazyFlush(NodeId, u64),
    Request {
        client: usize,
        op_id: u64,
        node: NodeId,
    },
    Reply {
        client: usize,
        op_id: u64,
        node: NodeId,
        reply: Reply,
    },
    Timeout {
        client: usize,
        op_id: u64,
    },
    NextOp(usize),
    Nemesis,
    Membership,
    Restart(NodeId),
    /// A leader's delivery-fault window ends with its crash (if it still
    /// runs that incarnation and term).
    WindowCrash(NodeId, u64, Term),
    EndFaults,
}

struct Scheduled {
    time_us: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time_us, self.seq) == (other.time_us, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Min-heap on (time, seq).
        (other.time_us, other.seq).cmp(&(self.time_us, self.seq))
    }
}

struct PendingOp {
    op_id: u64,
    kind: OpKind,
    key: u64,
    attempts: u32,
    /// A request is on its way or being served: its outcome is unknown.
    in_flight: bool,
}

/// A client write a host proposed: whom to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SimWrite {
    client: usize,
    op_id: u64,
    /// Where the proposal landed (index, term).
    at: (LogIndex, Term),
    /// The proposed command's bytes, hashed: the entry that commits at
    /// `at` must be this one.
    command_hash: u64,
}

struct Client {
    process: u64,
    leader_hint: Option<NodeId>,
    op: Option<PendingOp>,
    /// A lock client's lease (None: a register client).
    lock: Option<LockClient>,
}

/// One simulated node: the core plus the runtime around it.
struct Host<C> {
    id: NodeId,
    incarnation: u64,
    core: Option<C>,
    storage: SimStorage,
    /// The node's state machine and lease timers, driven as the runtime
    /// drives them ([`Applier`]), on virtual time.
    applier: Applier,
    /// Readys whose messages wait for their write to be durable.
    held: VecDeque<(u64, u64, Vec<Message>)>,
    last_sync_us: u64,
    /// Client writes proposed here and not answered: the node's own
    /// table ([`PendingWrites`]), deadlines in virtual µs.
    pending_writes: PendingWrites<SimWrite, u64>,
    reads: BTreeMap<u64, (usize, u64, u64)>,
    waiting_reads: Vec<(LogIndex, u64)>,
    snapshot_every: u64,
    /// Virtual µs between two ticks of this node's clock.
    tick_us: u64,
    /// The node runs the group (a core, up or crashed); false before it
    /// joins and after it was removed and wiped.
    hosting: bool,
    /// `CoreConfig::voters` for this node: the initial voters for an initial
    /// member, empty for a node that joined later.
    seed_voters: Vec<NodeId>,
    /// The index of the config entry that last added this node (0 for an
    /// initial member). Configurations at or below it are history the node
    /// replays while catching up, not its removal.
    member_from: LogIndex,
    /// Started joining and has no configuration yet.
    joining: bool,
    /// `CoreConfig::join_floor`, from [`SimCore::joining`].
    join_floor: Option<(Term, LogIndex)>,
    /// What its earlier incarnations left when they were wiped: the highest
    /// term and the last index they held (the runtime's groups.json).
    left: Option<(Term, LogIndex)>,
    /// Applied a committed simple configuration without itself: stop and wipe.
    removed: bool,
    /// The core led when it was last heard of (its latest soft state).
    leading: bool,
    /// It led until the configuration that removed it committed.
    removed_leader: bool,
}

enum Effect {
    Send(Message),
    Role(crate::consensus::SoftState),
    Reply {
        client: usize,
        op_id: u64,
        reply: Reply,
    },
    Sync(u64),
    /// A config entry was applied.
    Config(LogIndex, Term, crate::consensus::Membership),
    /// A joining core got its first configuration.
    Joined {
        by_snapshot: bool,
    },
    /// A write was answered definite `fail` (another term committed at
    /// its index): noted for [`FailedWrites`].
    FailedWrite {
        op_id: u64,
        at: (LogIndex, Term),
    },
}

struct World<C: SimCore> {
    opts: SimOptions,
    rng: SimRng,
    now_us: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    hosts: Vec<Host<C>>,
    /// The initial voters.
    voters: Vec<NodeId>,
    /// Every node id in play (the initial voters plus spares).
    pool: Vec<NodeId>,
    /// Node ids wiped after a removal (not added again unless `reuse_ids`).
    wiped: std::collections::BTreeSet<NodeId>,
    /// Committed configurations applied somewhere, by index, with the
    /// highest term any node had then (they committed in a term ≤ it).
    configs: BTreeMap<LogIndex, (crate::consensus::Membership, Term)>,
    clients: Vec<Client>,
    history: History,
    monitor: SafetyMonitor,
    net: SimNetwork,
    no_fsync: bool,
    next_op_id: u64,
    next_ctx: u64,
    next_process: u64,
    faults_on: bool,
    stop_ops_us: u64,
    trace_hash: Fnv,
    trace: Vec<String>,
    stats: SimStats,
    max_inflight: usize,
    max_batch: usize,
    /// `CoreConfig::snapshot_chunk_bytes`: small on most seeds (the
    /// state machine's snapshots are tens to hundreds of bytes), so snapshots
    /// travel in many chunks.
    snapshot_chunk_bytes: usize,
    /// The message being delivered is the last chunk of a snapshot sent in
    /// more than one (counted as a multi-chunk install if it installs).
    last_chunk_of_many: bool,
    knobs: Knobs,
    /// [`SimOptions::churn`], decided.
    churn: bool,
    /// Every write answered definite `fail`, checked at the end: none
    /// may have committed.
    failed_writes: FailedWrites,
    registers: RegisterOps,
    /// The protocol's cross-node checks ([`SimCore::check_cluster`]).
    oracle: Box<dyn std::any::Any>,
    watchdog: Watchdog,
    delivery: DeliveryFault,
}

/// Core settings drawn from the seed, so the sweep covers them all.
#[derive(Clone, Copy, Debug)]
struct Knobs {
    pre_vote: bool,
    check_quorum: bool,
    election_timeout_ticks: u64,
    heartbeat_interval_ticks: u64,
}

/// Run one simulation of protocol `C`.
pub fn run<C: SimCore>(opts: &SimOptions) -> SimOutcome {
    let mut world = World::<C>::new(opts.clone());
    let violation = world
        .run()
        .and_then(|()| world.failed_writes.check(&world.monitor, world.now_us))
        .err();
    world.stats.terms_with_leader = world.monitor.terms_with_leader() as u64;
    world.stats.entries_applied = world.monitor.applied_count() as u64;
    world.stats.failed_early_committed = world
        .failed_writes
        .committed(&world.monitor)
        .filter(|w| w.early)
        .count() as u64;
    let peaks = world.watchdog.peaks();
    world.stats.peak_messages_in_flight = peaks.messages_in_flight;
    world.stats.peak_readys_per_step = peaks.readys_per_step;
    world.stats.peak_events_per_virtual_ms = peaks.events_per_virtual_ms;
    world.stats.delivery = world.delivery.stats().clone();
    SimOutcome {
        seed: opts.seed,
        nodes: world.hosts.len(),
        initial_voters: world.voters.len(),
        protocol: C::PROTOCOL,
        violation,
        history: world.history,
        trace_hash: world.trace_hash.finish(),
        trace: world.trace,
        stats: world.stats,
    }
}

impl<C> Host<C> {
    /// A host of the pool before its node first starts: `voters` are the
    /// seed configuration (empty for a spare id).
    fn new(
        id: NodeId,
        opts: &SimOptions,
        voters: &[NodeId],
        snapshot_every: u64,
        tick_us: u64,
    ) -> Host<C> {
        Host {
            id,
            incarnation: 0,
            core: None,
            storage: SimStorage::default(),
            applier: fresh_applier(&opts.bugs),
            held: VecDeque::new(),
            last_sync_us: 0,
            pending_writes: if opts.early_fail_bug {
                PendingWrites::planted_early_fail()
            } else {
                PendingWrites::default()
            },
            reads: BTreeMap::new(),
            waiting_reads: Vec::new(),
            snapshot_every,
            tick_us,
            hosting: voters.contains(&id),
            seed_voters: if voters.contains(&id) {
                voters.to_vec()
            } else {
                Vec::new()
            },
            member_from: LogIndex(0),
            joining: false,
            join_floor: None,
            left: None,
            removed: false,
            leading: false,
            removed_leader: false,
        }
    }
}

/// The register clients, and on a third of the seeds two lock clients.
fn clients_for(opts: &SimOptions) -> Vec<Client> {
    // From a stream of its own: the world's draws stay as they were.
    let lock_clients = opts.lock_clients.unwrap_or_else(|| {
        if SimRng::new(opts.seed ^ (0xC6u64 << 56)).chance(1.0 / 3.0) {
            2
        } else {
            0
        }
    });
    (0..opts.clients + lock_clients)
        .map(|c| Client {
            process: c as u64,
            leader_hint: None,
            op: None,
            lock: (c >= opts.clients).then(LockClient::default),
        })
        .collect()
}

impl<C: SimCore> World<C> {
    fn new(opts: SimOptions) -> World<C> {
        let mut rng = SimRng::new(opts.seed);
        let n = match (opts.nodes, opts.membership) {
            (Some(n), _) => n,
            (None, false) => rng.range(3, 8) as usize,
            (None, true) => rng.range(3, 6) as usize,
        };
        assert!((1..=9).contains(&n), "1 to 9 nodes");
        let voters: Vec<NodeId> = (1..=n as u64).map(NodeId).collect();
        let pool_size = if opts.membership {
            opts.pool.unwrap_or((n + 2).min(9))
        } else {
            n
        };
        assert!(
            (n..=9).contains(&pool_size),
            "the pool holds the initial voters, at most 9 nodes"
        );
        let pool: Vec<NodeId> = (1..=pool_size as u64).map(NodeId).collect();
        let faults = if opts.faults {
            NetworkFaults::random(&mut rng)
        } else {
            NetworkFaults::none()
        };
        let max_inflight = rng.pick(&[1usize, 2, 4, 8]);
        let max_batch = rng.pick(&[1usize, 4, 64]);
        let snapshot_every = rng.pick(&[8u64, 32, 128]);
        // From a stream of its own: the world's draws stay as they were.
        let snapshot_chunk_bytes = opts.snapshot_chunk_bytes.unwrap_or_else(|| {
            SimRng::new(opts.seed ^ (0xC4u64 << 56)).pick(&[7usize, 16, 64, 1 << 20])
        });
        let churn = opts
            .churn
            .unwrap_or_else(|| SimRng::new(opts.seed ^ (0xC5u64 << 56)).chance(0.25));
        let skewed = opts.clock_skew && rng.chance(0.5);
        let tick_us: Vec<u64> = (0..pool_size)
            .map(|_| {
                if skewed {
                    rng.range(7_000, 13_001)
                } else {
                    TICK_INTERVAL_MS * 1000
                }
            })
            .collect();
        let knobs = Knobs {
            pre_vote: rng.chance(0.8),
            check_quorum: rng.chance(0.8),
            election_timeout_ticks: rng.pick(&[10, 15, 30]),
            heartbeat_interval_ticks: rng.pick(&[1, 3, 5]),
        };
        let hosts = pool
            .iter()
            .map(|&id| {
                Host::new(
                    id,
                    &opts,
                    &voters,
                    snapshot_every,
                    tick_us[(id.0 - 1) as usize],
                )
            })
            .collect();
        let clients = clients_for(&opts);
        let no_fsync = opts.has_bug(Bug::NoFsync);
        let opts_limits = opts.limits;
        let opts_values = opts.register_values;
        let delivery = DeliveryFault::new(opts.seed, opts.delivery_fault);
        let stop_ops_us =
            (opts.duration_ms + opts.settle_ms).saturating_sub(opts.op_timeout_ms) * 1000;
        World {
            monitor: SafetyMonitor::new(C::CHECKS),
            next_process: clients.len() as u64,
            faults_on: opts.faults,
            opts,
            rng,
            now_us: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            hosts,
            voters,
            pool,
            wiped: std::collections::BTreeSet::new(),
            configs: BTreeMap::new(),
            clients,
            history: History::default(),
            net: SimNetwork::new(faults),
            no_fsync,
            next_op_id: 0,
            next_ctx: 0,
            stop_ops_us,
            trace_hash: Fnv::new(),
            trace: Vec::new(),
            stats: SimStats::default(),
            max_inflight,
            max_batch,
            snapshot_chunk_bytes,
            last_chunk_of_many: false,
            knobs,
            churn,
            failed_writes: FailedWrites::default(),
            registers: RegisterOps::new(opts_values),
            oracle: C::new_oracle(n),
            watchdog: Watchdog::new(opts_limits),
            delivery,
        }
    }

    fn schedule(&mut self, delay_us: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled {
            time_us: self.now_us + delay_us,
            seq: self.seq,
            ev,
        });
    }

    fn idx(id: NodeId) -> usize {
        (id.0 - 1) as usize
    }

    fn note(&mut self, tag: u64, a: u64, b: u64, text: impl FnOnce() -> String) {
        self.trace_hash.u64(self.now_us);
        self.trace_hash.u64(tag);
        self.trace_hash.u64(a);
        self.trace_hash.u64(b);
        if self.opts.trace {
            let line = format!("{:>9}µs {}", self.now_us, text());
            self.trace.push(line);
        }
    }

    fn run(&mut self) -> Result<(), Violation> {
        for i in 0..self.hosts.len() {
            let id = self.hosts[i].id;
            if self.hosts[i].hosting {
                self.start_node(id)?;
            }
        }
        for c in 0..self.clients.len() {
            let d = self.rng.range(0, 20_000);
            self.schedule(d, Ev::NextOp(c));
        }
        if self.opts.faults {
            let d = self.rng.range(100_000, 400_000);
            self.schedule(d, Ev::Nemesis);
            if self.opts.membership {
                let d = self.rng.range(150_000, 500_000);
                self.schedule(d, Ev::Membership);
            }
        }
        self.schedule(self.opts.duration_ms * 1000, Ev::EndFaults);
        let end_us = (self.opts.duration_ms + self.opts.settle_ms) * 1000;
        self.watchdog.check_horizon(end_us)?;
        while let Some(s) = self.queue.pop() {
            assert!(s.time_us >= self.now_us, "virtual time never goes back");
            if s.time_us > end_us {
                break;
            }
            self.now_us = s.time_us;
            self.stats.events += 1;
            if matches!(s.ev, Ev::Deliver(_)) {
                self.watchdog.message_arrived();
            }
            let queue = &self.queue;
            self.watchdog.event(self.now_us, || {
                queue
                    .iter()
                    .filter_map(|q| match &q.ev {
                        Ev::Deliver(m) => Some(m),
                        _ => None,
                    })
                    .collect()
            })?;
            self.handle(s.ev)?;
        }
        Ok(())
    }

    fn core_config(&mut self, id: NodeId) -> CoreConfig {
        let seed_voters = self.hosts[Self::idx(id)].seed_voters.clone();
        let mut cfg = CoreConfig::new(id, GroupId(1), seed_voters);
        cfg.join_floor = self.hosts[Self::idx(id)].join_floor;
        cfg.seed = self.rng.next_u64();
        cfg.bugs = self.opts.bugs.clone();
        cfg.lease_reads = self.opts.lease_reads;
        cfg.max_inflight_appends = self.max_inflight;
        cfg.max_batch_entries = self.max_batch;
        cfg.snapshot_chunk_bytes = self.snapshot_chunk_bytes;
        cfg.pre_vote = self.knobs.pre_vote;
        cfg.check_quorum = self.knobs.check_quorum || self.opts.lease_reads;
        cfg.election_timeout_ticks = self.knobs.election_timeout_ticks;
        cfg.heartbeat_interval_ticks = self.knobs.heartbeat_interval_ticks;
        cfg
    }

    fn start_node(&mut self, id: NodeId) -> Result<(), Violation> {
        let cfg = self.core_config(id);
        let i = Self::idx(id);
        let recovered = self.hosts[i].storage.recovered();
        let mut core = C::build(cfg, recovered).map_err(|e| Violation {
            property: "recovery from durable state",
            detail: format!("{id} cannot restart: {e}"),
            time_us: self.now_us,
        })?;
        if self.opts.membership_bug {
            core.plant_membership_bug();
        }
        let host = &mut self.hosts[i];
        host.incarnation += 1;
        let snap = host.storage.durable().snapshot.clone();
        host.applier = Applier::with_bugs(&self.opts.bugs, snap.as_ref())
            .expect("the simulator's own snapshot parses");
        host.core = Some(core);
        let inc = host.incarnation;
        let phase = self.rng.range(1, self.hosts[i].tick_us);
        self.schedule(phase, Ev::Tick(id, inc));
        if self.no_fsync {
            let d = self.rng.range(100_000, 400_000);
            self.schedule(d, Ev::LazyFlush(id, inc));
        }
        self.note(1, id.0, inc, || format!("{id} starts (incarnation {inc})"));
        self.post_step(id)
    }

    fn crash(&mut self, id: NodeId) {
        let host = &mut self.hosts[Self::idx(id)];
        if host.core.is_none() {
            return;
        }
        host.core = None;
        host.leading = false;
        let lost = host.storage.crash();
        host.held.clear();
        // Their clients time out: the outcome is unknown (the node answers
        // `shutting-down`, or its connections drop).
        host.pending_writes.take_all();
        host.reads.clear();
        host.waiting_reads.clear();
        self.stats.crashes += 1;
        self.stats.unsynced_writes_lost += lost as u64;
        self.note(2, id.0, lost as u64, || {
            format!("{id} crashes, losing {lost} unsynced writes")
        });
    }

    /// One event: each kind has its own method below.
    fn handle(&mut self, ev: Ev) -> Result<(), Violation> {
        match ev {
            Ev::Tick(id, inc) => self.on_tick(id, inc),
            Ev::Deliver(msg) => self.on_deliver(msg),
            Ev::Synced(id, inc, seq) => self.on_synced(id, inc, seq),
            Ev::LazyFlush(id, inc) => self.on_lazy_flush(id, inc),
            Ev::Request {
                client,
                op_id,
                node,
            } => self.request(client, op_id, node),
            Ev::Reply {
                client,
                op_id,
                node,
                reply,
            } => {
                self.reply(client, op_id, node, reply);
                Ok(())
            }
            Ev::Timeout { client, op_id } => {
                self.on_timeout(client, op_id);
                Ok(())
            }
            Ev::NextOp(client) => {
                self.next_op(client);
                Ok(())
            }
            Ev::Nemesis => self.nemesis(),
            Ev::Restart(id) => self.on_restart(id),
            Ev::Membership => self.membership_change(),
            Ev::WindowCrash(id, inc, term) => self.on_window_crash(id, inc, term),
            Ev::EndFaults => self.on_end_faults(),
        }
    }

    /// A node's tick: the core's timers, the runtime's lease timers and
    /// pending-write deadlines, on virtual time.
    fn on_tick(&mut self, id: NodeId, inc: u64) -> Result<(), Violation> {
        let host = &mut self.hosts[Self::idx(id)];
        if host.incarnation != inc || host.core.is_none() {
            return Ok(());
        }
        let core = host.core.as_mut().expect("alive");
        core.tick();
        // The runtime's lease timers, on virtual time.
        host.applier
            .fire_lease_timers(now_ms(self.now_us), |cmd| core.propose(cmd).is_ok());
        // Late writes: the node answers `timeout`; the client has
        // already recorded its own timeout (unknown) by then.
        host.pending_writes.take_expired(self.now_us);
        let every = host.tick_us;
        self.note(3, id.0, 0, || format!("{id} tick"));
        self.schedule(every, Ev::Tick(id, inc));
        self.post_step(id)
    }

    /// A message arrives at its node (if it runs).
    fn on_deliver(&mut self, msg: Message) -> Result<(), Violation> {
        let to = msg.to;
        let host = &mut self.hosts[Self::idx(to)];
        let Some(core) = host.core.as_mut() else {
            return Ok(());
        };
        let (kind, term) = (msg.payload.kind(), msg.payload.term());
        let summary = self.opts.trace.then(|| msg.payload.summary());
        let from = msg.from;
        self.last_chunk_of_many = msg
            .payload
            .snapshot_chunk()
            .is_some_and(|c| c.done && c.offset > 0);
        if let Err(e) = core.step(msg) {
            return Err(Violation {
                property: "message accepted",
                detail: format!("{to} refused a message from {from}: {e}"),
                time_us: self.now_us,
            });
        }
        self.stats.messages_delivered += 1;
        self.note(4, from.0 * 100 + to.0, term.0, || match summary {
            Some(s) => format!("{from} -> {to} {s}"),
            None => format!("{from} -> {to} {kind} {term}"),
        });
        let stepped = self.post_step(to);
        self.last_chunk_of_many = false;
        stepped
    }

    /// A node's disk reports writes durable through `seq`: the Readys held
    /// for them are acknowledged and their messages sent.
    fn on_synced(&mut self, id: NodeId, inc: u64, seq: u64) -> Result<(), Violation> {
        let host = &mut self.hosts[Self::idx(id)];
        if host.incarnation != inc || host.core.is_none() {
            return Ok(());
        }
        host.storage.sync_to(seq);
        let mut out = Vec::new();
        while host.held.front().is_some_and(|(s, _, _)| *s <= seq) {
            let (_, pid, msgs) = host.held.pop_front().expect("front exists");
            host.core.as_mut().expect("alive").persisted(pid);
            out.extend(msgs.into_iter().map(Effect::Send));
        }
        self.note(5, id.0, seq, || format!("{id} fsync through write {seq}"));
        self.apply_effects(id, out)?;
        self.post_step(id)
    }

    /// The OS writes a node's dirty pages back on its own.
    fn on_lazy_flush(&mut self, id: NodeId, inc: u64) -> Result<(), Violation> {
        let host = &mut self.hosts[Self::idx(id)];
        if host.incarnation != inc || host.core.is_none() {
            return Ok(());
        }
        host.storage.sync_all();
        let d = self.rng.range(100_000, 400_000);
        self.schedule(d, Ev::LazyFlush(id, inc));
        Ok(())
    }

    /// A client gives up on its operation: `info` if any attempt may have
    /// reached a node, else a definite `fail`.
    fn on_timeout(&mut self, client: usize, op_id: u64) {
        let c = &mut self.clients[client];
        if c.op.as_ref().is_some_and(|o| o.op_id == op_id) {
            let op = c.op.take().expect("pending");
            let process = c.process;
            c.leader_hint = None;
            if let Some(lock) = &mut c.lock {
                lock.ended(&op.kind, None);
            }
            let owner = clients::owner(process);
            if op.in_flight {
                self.history.record(
                    self.now_us * 1000,
                    process,
                    SimEventKind::Info,
                    op.kind.f(),
                    op.key,
                    op.kind.value(&owner),
                    None,
                    Some("timeout".into()),
                );
                // A process that got `info` never issues again.
                self.clients[client].process = self.next_process;
                self.next_process += 1;
            } else {
                // Every attempt was refused: definitely not done.
                self.history.record(
                    self.now_us * 1000,
                    process,
                    SimEventKind::Fail,
                    op.kind.f(),
                    op.key,
                    op.kind.value(&owner),
                    None,
                    Some("not-leader".into()),
                );
            }
            self.schedule(1_000, Ev::NextOp(client));
        }
    }

    fn on_restart(&mut self, id: NodeId) -> Result<(), Violation> {
        let host = &self.hosts[Self::idx(id)];
        if host.core.is_some() || !host.hosting {
            return Ok(());
        }
        self.start_node(id)
    }

    /// A leader's delivery-fault window ends with its crash.
    fn on_window_crash(&mut self, id: NodeId, inc: u64, term: Term) -> Result<(), Violation> {
        let host = &self.hosts[Self::idx(id)];
        let same =
            host.incarnation == inc && host.core.as_ref().is_some_and(|c| c.status().term == term);
        if self.faults_on && same {
            self.delivery.crashed();
            self.crash(id);
            let d = self.delivery.restart_after_us();
            self.schedule(d, Ev::Restart(id));
        }
        Ok(())
    }

    /// The fault period ends: heal, restart every node.
    fn on_end_faults(&mut self) -> Result<(), Violation> {
        self.faults_on = false;
        self.net.heal();
        self.delivery.heal();
        self.net.faults = NetworkFaults::none();
        self.note(6, 0, 0, || "faults end: heal, restart every node".into());
        for i in 0..self.hosts.len() {
            let id = self.hosts[i].id;
            if self.hosts[i].core.is_none() && self.hosts[i].hosting {
                self.start_node(id)?;
            }
        }
        Ok(())
    }

    fn nemesis(&mut self) -> Result<(), Violation> {
        if !self.faults_on {
            return Ok(());
        }
        if self.churn && self.rng.chance(0.6) {
            self.churn_partition();
            let d = self.rng.range(20_000, 150_000);
            self.schedule(d, Ev::Nemesis);
            return Ok(());
        }
        let n = self.hosts.len();
        let roll = self.rng.below(100);
        let up: Vec<NodeId> = self
            .hosts
            .iter()
            .filter(|h| h.core.is_some())
            .map(|h| h.id)
            .collect();
        if roll < 15 {
            // A random two-sided partition.
            let mut a = Vec::new();
            let mut b = Vec::new();
            for &v in &self.pool {
                if self.rng.chance(0.5) {
                    a.push(v)
                } else {
                    b.push(v)
                }
            }
            self.stats.partitions += 1;
            self.note(7, a.len() as u64, b.len() as u64, || {
                format!("partition {a:?} | {b:?}")
            });
            self.net.partition(&[a, b]);
        } else if roll < 25 {
            // Cut the leader off with a minority: the classic stale-read setup.
            let leader = self.first_leader();
            if let Some(l) = leader {
                let mut others: Vec<NodeId> =
                    self.pool.iter().copied().filter(|&v| v != l).collect();
                self.rng.shuffle(&mut others);
                let minority = (n - 1) / 2;
                let keep = self.rng.below(minority as u64 + 1) as usize;
                let mut a = vec![l];
                a.extend(others.drain(..keep));
                self.stats.partitions += 1;
                self.note(7, a.len() as u64, others.len() as u64, || {
                    format!("isolate leader: {a:?} | {others:?}")
                });
                self.net.partition(&[a, others]);
            }
        } else if roll < 40 {
            self.net.heal();
            self.note(8, 0, 0, || "heal".into());
        } else if roll < 58 {
            // Half the time crash the leader: leader churn is where the
            // subtle cases (§5.4.2, Fig. 8) live.
            let leader = self.first_leader();
            let victim = match leader {
                Some(l) if self.rng.chance(0.5) => Some(l),
                _ => up
                    .get(self.rng.below(up.len().max(1) as u64) as usize)
                    .copied(),
            };
            if let Some(victim) = victim {
                self.crash(victim);
                let d = self.rng.range(20_000, 400_000);
                self.schedule(d, Ev::Restart(victim));
            }
        } else if roll < 64 {
            // Power loss of a majority (or everyone) at once.
            let k = if self.rng.chance(0.5) { n } else { n / 2 + 1 };
            let mut victims = self.pool.clone();
            self.rng.shuffle(&mut victims);
            for &v in victims.iter().take(k) {
                self.crash(v);
                let d = self.rng.range(20_000, 300_000);
                self.schedule(d, Ev::Restart(v));
            }
        } else if roll < 74 {
            let leader = self.first_leader();
            if let Some(l) = leader {
                let to = self.rng.pick(&self.pool);
                let ok = self.hosts[Self::idx(l)]
                    .core
                    .as_mut()
                    .expect("leader alive")
                    .transfer_leader(to)
                    .is_ok();
                self.stats.transfers += 1;
                self.note(9, l.0, to.0, || {
                    format!("transfer leader {l} -> {to}: {ok}")
                });
                self.post_step(l)?;
            }
        }
        let d = self.rng.range(30_000, 400_000);
        self.schedule(d, Ev::Nemesis);
        Ok(())
    }

    /// Leadership churn ([`SimOptions::churn`]): a new partition every 20
    /// to 150 ms (two or three random sides, or the leader with one peer),
    /// now and then healed. Leaders are elected on one side and their
    /// appends reach whoever the next partition puts beside them, and the
    /// deposed leaders stay up with what they hold pending: the scenario
    /// of issue 21's finding 1 (a leader that proposes again at an index
    /// whose entry another node may still commit).
    fn churn_partition(&mut self) {
        let roll = self.rng.below(100);
        if roll < 70 {
            let count = if self.rng.chance(0.3) { 3 } else { 2 };
            let mut sides = vec![Vec::new(); count];
            for &v in &self.pool {
                sides[self.rng.below(count as u64) as usize].push(v);
            }
            self.stats.partitions += 1;
            self.note(7, count as u64, 1, || format!("churn: partition {sides:?}"));
            self.net.partition(&sides);
        } else if roll < 85 {
            let Some(l) = self.first_leader() else {
                return;
            };
            let others: Vec<NodeId> = self.pool.iter().copied().filter(|&v| v != l).collect();
            let peer = self.rng.pick(&others);
            let rest: Vec<NodeId> = others.into_iter().filter(|&v| v != peer).collect();
            self.stats.partitions += 1;
            self.note(7, l.0, peer.0, || {
                format!("churn: isolate leader {l} with {peer}")
            });
            self.net.partition(&[vec![l, peer], rest]);
        } else {
            self.net.heal();
            self.note(8, 1, 0, || "churn: heal".into());
        }
    }

    // ----- membership -----

    /// The first live node (in host order) that believes it leads: the
    /// nemesis's target (any leader will do; a stale one is a fine victim).
    fn first_leader(&self) -> Option<NodeId> {
        self.hosts
            .iter()
            .find(|h| {
                h.core
                    .as_ref()
                    .is_some_and(|c| c.status().role == Role::Leader)
            })
            .map(|h| h.id)
    }

    /// The live leader of the highest term, if any.
    fn current_leader(&self) -> Option<NodeId> {
        self.hosts
            .iter()
            .filter_map(|h| h.core.as_ref().map(|c| (h.id, c.status())))
            .filter(|(_, st)| st.role == Role::Leader)
            .max_by_key(|(_, st)| st.term)
            .map(|(id, _)| id)
    }

    /// Ask the leader to move the group to another voter set.
    fn membership_change(&mut self) -> Result<(), Violation> {
        if !self.faults_on {
            return Ok(());
        }
        let d = self.rng.range(150_000, 500_000);
        self.schedule(d, Ev::Membership);
        let Some(l) = self.current_leader() else {
            return Ok(());
        };
        let st = self.hosts[Self::idx(l)]
            .core
            .as_ref()
            .expect("the leader is up")
            .status();
        let cur = st.membership.voters.clone();
        let reuse = self.opts.reuse_ids;
        let outside: Vec<NodeId> = self
            .pool
            .iter()
            .copied()
            .filter(|n| !cur.contains(n) && (reuse || !self.wiped.contains(n)))
            .collect();
        let mut new = cur.clone();
        let roll = self.rng.below(10);
        let can_add = !outside.is_empty() && cur.len() < 7;
        let prefer_add = cur.len() < 3 && !self.rng.chance(0.1);
        let prefer_remove = cur.len() > 5;
        if can_add && (prefer_add || (!prefer_remove && roll < 3)) {
            new.push(self.rng.pick(&outside));
        } else if cur.len() > 1 && (prefer_remove || roll < 6 || outside.is_empty()) {
            let k = self.rng.below(cur.len() as u64) as usize;
            new.remove(k);
        } else if !outside.is_empty() {
            // Swap one voter, or two (a change of 2+ voters: the joint
            // phase is what keeps C_old and C_new majorities intersecting).
            let swaps = if roll == 9 { 2 } else { 1 };
            let mut out = outside.clone();
            for _ in 0..swaps.min(out.len()).min(new.len()) {
                let k = self.rng.below(new.len() as u64) as usize;
                new.remove(k);
                let j = self.rng.below(out.len() as u64) as usize;
                new.push(out.remove(j));
            }
        }
        new.sort_unstable();
        if self.rng.chance(0.5) {
            // As the real runtime does half the time here (always, there):
            // snapshot first, so that new voters catch up from a snapshot
            // taken after every earlier configuration.
            self.snapshot_now(l);
        }
        self.stats.membership_requested += 1;
        let result = self.hosts[Self::idx(l)]
            .core
            .as_mut()
            .expect("the leader is up")
            .change_membership(new.clone());
        let text = format!("{l}: change membership {cur:?} -> {new:?}: {result:?}");
        self.note(13, l.0, new.len() as u64, || text);
        if let Ok(p) = result {
            self.stats.membership_accepted += 1;
            let added: Vec<NodeId> = new.iter().copied().filter(|n| !cur.contains(n)).collect();
            for &a in &added {
                let i = Self::idx(a);
                self.hosts[i].member_from = p.index;
                if !self.hosts[i].hosting {
                    if self.wiped.contains(&a) {
                        self.stats.rejoins += 1;
                    }
                    let (term, floor) = C::joining((p.term, p.index), self.hosts[i].left);
                    self.hosts[i].join_floor = floor;
                    self.start_joining(a, term)?;
                }
            }
            if self.rng.chance(0.3) {
                // Cut the leader and the added nodes off from the rest while
                // the change is young: only joint consensus keeps the two
                // sides from both deciding.
                let mut a = vec![l];
                a.extend(added.iter().copied().filter(|&x| x != l));
                let b: Vec<NodeId> = self
                    .pool
                    .iter()
                    .copied()
                    .filter(|x| !a.contains(x))
                    .collect();
                self.stats.partitions += 1;
                self.note(7, a.len() as u64, b.len() as u64, || {
                    format!("isolate the change: {a:?} | {b:?}")
                });
                self.net.partition(&[a, b]);
            }
        }
        self.post_step(l)
    }

    /// The runtime snapshots `id`'s state machine at its applied index.
    fn snapshot_now(&mut self, id: NodeId) {
        let host = &mut self.hosts[Self::idx(id)];
        let Some(core) = host.core.as_mut() else {
            return;
        };
        let applied = host.applier.applied();
        if applied <= core.status().snapshot_index {
            return;
        }
        let data = host.applier.snapshot();
        let meta = core
            .snapshot_taken(applied, data.clone())
            .expect("the applied index can be snapshotted");
        let seq = host.storage.write(Write::Compact(Snapshot { meta, data }));
        if !self.no_fsync {
            let _ = self.apply_effects(id, vec![Effect::Sync(seq)]);
        }
    }

    /// Host the group on `id` as a joining core (no voters, empty disk but
    /// for the term of the leader that added it). The term matters when `id`
    /// was a voter before, was removed and wiped: a leader of an older term
    /// may still count `id` from back then, and a core that forgot its
    /// votes would follow it (two quorums that no longer intersect).
    fn start_joining(&mut self, id: NodeId, term: Term) -> Result<(), Violation> {
        let host = &mut self.hosts[Self::idx(id)];
        assert!(!host.hosting, "{id} joins a group it does not run");
        host.hosting = true;
        host.seed_voters = Vec::new();
        host.joining = true;
        host.storage = SimStorage::default();
        host.storage.write(Write::Ready {
            snapshot: None,
            hard_state: Some(crate::consensus::HardState {
                term,
                vote: None,
                commit: LogIndex(0),
            }),
            entries: Vec::new(),
        });
        host.storage.sync_all();
        self.stats.joins += 1;
        self.start_node(id)
    }

    /// `id` applied a committed configuration without itself: as the real
    /// runtime does, stop the core (after a clean flush) and delete the
    /// group's storage.
    fn remove_node(&mut self, id: NodeId) -> Result<(), Violation> {
        let i = Self::idx(id);
        let host = &mut self.hosts[i];
        let Some(mut core) = host.core.take() else {
            return Ok(());
        };
        let was_leader = host.removed_leader;
        // A clean shutdown: the disk is synced, then what waited for it is sent.
        host.storage.sync_all();
        let mut out = Vec::new();
        while let Some((_, pid, msgs)) = host.held.pop_front() {
            core.persisted(pid);
            out.extend(msgs.into_iter().map(Effect::Send));
        }
        // What the flush made durable (a Paxos accept whose Accepted goes
        // out below) is fact for the cross-node checks too, as after any
        // sync: dropped with the core, the oracle would see a peer count
        // an acceptor it never heard of (seed 463 of the membership sweep).
        core.check_cluster(self.oracle.as_mut(), id)
            .map_err(|(property, detail)| Violation {
                property,
                detail,
                time_us: self.now_us,
            })?;
        let st = core.status();
        host.left = Some(match host.left {
            None => (st.term, st.last_index),
            Some((t, i)) => (t.max(st.term), i.max(st.last_index)),
        });
        host.incarnation += 1;
        host.storage = SimStorage::default();
        host.applier = fresh_applier(&self.opts.bugs);
        // Their clients time out: the outcome is unknown (the node answers
        // `shutting-down`, or its connections drop).
        host.pending_writes.take_all();
        host.reads.clear();
        host.waiting_reads.clear();
        host.hosting = false;
        host.seed_voters = Vec::new();
        host.member_from = LogIndex(0);
        host.joining = false;
        host.join_floor = None;
        host.removed = false;
        host.leading = false;
        host.removed_leader = false;
        self.stats.removals += 1;
        self.wiped.insert(id);
        if was_leader {
            self.stats.leader_removals += 1;
        }
        self.note(14, id.0, was_leader as u64, || {
            format!("{id} left the group: stopped and wiped")
        });
        self.apply_effects(id, out)
    }

    /// A committed configuration was applied at `id`: count finished
    /// changes, and remember it for the leaders to come.
    fn config_applied(&mut self, index: LogIndex, term: Term, m: crate::consensus::Membership) {
        if self.configs.contains_key(&index) {
            return;
        }
        let bound = self.monitor.max_term().max(term);
        if !m.is_joint() {
            self.stats.membership_done += 1;
        }
        self.configs.insert(index, (m, bound));
    }

    /// Every committed configuration is seen by all later leaders (else two
    /// disjoint quorums could decide).
    fn check_new_leader_config(&self, id: NodeId) -> Result<(), Violation> {
        if !C::CHECKS.leader_completeness {
            return Ok(());
        }
        let Some(core) = self.hosts[Self::idx(id)].core.as_ref() else {
            return Ok(());
        };
        let view = core.view();
        // The latest configuration committed in an earlier term (a leader
        // elected late in a stale term need not hold later commits).
        let Some((&index, (m, _))) = self
            .configs
            .iter()
            .rev()
            .find(|(_, (_, bound))| *bound < view.term)
        else {
            return Ok(());
        };
        if index <= view.snapshot_index {
            return Ok(());
        }
        let held = (index <= view.last_index())
            .then(|| &view.entries[(index.0 - view.snapshot_index.0 - 1) as usize].kind);
        match held {
            Some(EntryKind::ConfigChange(h)) if h == m => Ok(()),
            other => Err(Violation {
                property: "config completeness (every committed configuration reaches later leaders)",
                detail: format!(
                    "new leader {id} of {} lacks the configuration {m:?} committed at {index}; holds {other:?}",
                    view.term
                ),
                time_us: self.now_us,
            }),
        }
    }

    // ----- clients -----

    fn next_op(&mut self, client: usize) {
        if self.now_us >= self.stop_ops_us || self.clients[client].op.is_some() {
            return;
        }
        self.next_op_id += 1;
        let op_id = self.next_op_id;
        let (kind, key) = match self.clients[client].lock {
            Some(lock) => {
                let renew = self.rng.chance(0.5);
                (lock.next(renew, op_id), clients::LOCK_KEY)
            }
            None => self.registers.next(&mut self.rng, self.opts.keys, op_id),
        };
        let process = self.clients[client].process;
        self.history.record(
            self.now_us * 1000,
            process,
            SimEventKind::Invoke,
            kind.f(),
            key,
            kind.value(&clients::owner(process)),
            None,
            None,
        );
        self.clients[client].op = Some(PendingOp {
            op_id,
            kind,
            key,
            attempts: 0,
            in_flight: false,
        });
        self.schedule(
            self.opts.op_timeout_ms * 1000,
            Ev::Timeout { client, op_id },
        );
        self.send_request(client, op_id);
    }

    fn send_request(&mut self, client: usize, op_id: u64) {
        let hint = self.clients[client].leader_hint;
        // Now and then ask any node: with stale-read, followers answer.
        let node = match hint {
            Some(h) if !self.rng.chance(0.2) => h,
            _ => self.rng.pick(&self.pool),
        };
        let d = self.rng.range(50, 500);
        self.schedule(
            d,
            Ev::Request {
                client,
                op_id,
                node,
            },
        );
    }

    fn request(&mut self, client: usize, op_id: u64, node: NodeId) -> Result<(), Violation> {
        let Some(op) = self.clients[client]
            .op
            .as_mut()
            .filter(|o| o.op_id == op_id)
        else {
            return Ok(());
        };
        // From here until a definite reply, the outcome is unknown.
        op.in_flight = true;
        let (kind, key) = (op.kind.clone(), op.key);
        let owner = clients::owner(self.clients[client].process);
        let i = Self::idx(node);
        let host = &mut self.hosts[i];
        let Some(core) = host.core.as_mut() else {
            // Connection refused: definite, nothing happened.
            let reply = Reply::Redirect(None);
            let d = self.rng.range(50, 500);
            self.schedule(
                d,
                Ev::Reply {
                    client,
                    op_id,
                    node,
                    reply,
                },
            );
            return Ok(());
        };
        let mut reused_index = false;
        let result = match kind.command(key, &owner) {
            None => {
                self.next_ctx += 1;
                let ctx = self.next_ctx;
                core.read_index(ctx).map(|()| {
                    host.reads.insert(ctx, (client, op_id, key));
                })
            }
            Some(cmd) => {
                let bytes = cmd.encode();
                let command_hash = hash_bytes(&bytes);
                let deadline_us = self.now_us + self.opts.op_timeout_ms * 1000;
                core.propose(bytes).map(|p| {
                    if host.pending_writes.count_at(p.index) > 0 {
                        reused_index = true;
                    }
                    host.pending_writes.insert(
                        p.index,
                        p.term,
                        deadline_us,
                        SimWrite {
                            client,
                            op_id,
                            at: (p.index, p.term),
                            command_hash,
                        },
                    );
                })
            }
        };
        // Only with the planted early-fail bug: the writes a proposal at
        // their index failed at once, as the node did before issue 21.
        let failed_early = host.pending_writes.take_failed_early();
        if reused_index {
            self.stats.writes_at_reused_index += 1;
            self.note(16, node.0, op_id, || {
                format!("{node} proposes op {op_id} at an index holding an older term's write")
            });
        }
        for w in failed_early {
            self.stats.writes_failed_early += 1;
            let (index, term) = w.at;
            self.failed_writes.failed(FailedWrite {
                index,
                term,
                node,
                time_us: self.now_us,
                op_id: w.op_id,
                early: true,
            });
            let held = self.hosts.iter().any(|h| {
                h.id != node
                    && h.core
                        .as_ref()
                        .is_some_and(|c| c.view().term_at(index) == Some(term))
            });
            self.stats.failed_early_held_elsewhere += u64::from(held);
            let d = self.rng.range(50, 500);
            self.schedule(
                d,
                Ev::Reply {
                    client: w.client,
                    op_id: w.op_id,
                    node,
                    reply: Reply::Fail("not-leader"),
                },
            );
        }
        if let Err(e) = result {
            let d = self.rng.range(50, 500);
            self.schedule(
                d,
                Ev::Reply {
                    client,
                    op_id,
                    node,
                    reply: Reply::Redirect(e.leader),
                },
            );
        }
        self.note(10, node.0, op_id, || {
            format!("client {client} op {op_id} {} at {node}", kind.f())
        });
        self.post_step(node)
    }

    fn reply(&mut self, client: usize, op_id: u64, node: NodeId, reply: Reply) {
        let now_ns = self.now_us * 1000;
        if self.clients[client].op.as_ref().map(|o| o.op_id) != Some(op_id) {
            return;
        }
        let process = self.clients[client].process;
        match reply {
            Reply::Redirect(hint) => {
                let c = &mut self.clients[client];
                c.leader_hint = hint;
                let op = c.op.as_mut().expect("pending");
                op.attempts += 1;
                op.in_flight = false;
                // Back off a little so an election can finish; the op's
                // timeout ends the retries.
                let d = self.rng.range(5_000, 25_000);
                self.schedule_resend(client, op_id, d);
            }
            Reply::Ok(answer) => {
                let c = &mut self.clients[client];
                let op = c.op.take().expect("pending");
                c.leader_hint = Some(node);
                let value = op.kind.ok_value(&clients::owner(process), answer.clone());
                let is_lock = c.lock.is_some();
                match &mut c.lock {
                    Some(lock) => lock.ended(&op.kind, Some(&answer)),
                    None => self.registers.ended_ok(&op.kind, op.key, &answer),
                }
                let mut delay_us = self.rng.range(0, 10_000);
                // Now and then a slow holder: it writes only after its
                // lease ran out, when a newer holder may have written.
                if is_lock && op.kind == OpKind::Acquire && self.rng.chance(0.2) {
                    delay_us = clients::LEASE_TTL_MS * 1000 * 3 / 2;
                }
                self.history.record(
                    now_ns,
                    process,
                    SimEventKind::Ok,
                    op.kind.f(),
                    op.key,
                    value,
                    Some(node),
                    None,
                );
                self.schedule(delay_us, Ev::NextOp(client));
            }
            Reply::Fail(why) => {
                let c = &mut self.clients[client];
                let op = c.op.take().expect("pending");
                if let Some(lock) = &mut c.lock {
                    lock.ended(&op.kind, None);
                }
                self.history.record(
                    now_ns,
                    process,
                    SimEventKind::Fail,
                    op.kind.f(),
                    op.key,
                    op.kind.value(&clients::owner(process)),
                    Some(node),
                    Some(why.into()),
                );
                let d = self.rng.range(0, 10_000);
                self.schedule(d, Ev::NextOp(client));
            }
        }
    }

    fn schedule_resend(&mut self, client: usize, op_id: u64, delay_us: u64) {
        let hint = self.clients[client].leader_hint;
        let node = match hint {
            Some(h) => h,
            None => self.rng.pick(&self.pool),
        };
        self.schedule(
            delay_us,
            Ev::Request {
                client,
                op_id,
                node,
            },
        );
    }

    // ----- the runtime around a core -----

    /// Drain the core's Readys, then check safety.
    fn post_step(&mut self, id: NodeId) -> Result<(), Violation> {
        let i = Self::idx(id);
        let mut readys = 0u64;
        loop {
            let mut out = Vec::new();
            {
                let host = &mut self.hosts[i];
                let Some(core) = host.core.as_mut() else {
                    return Ok(());
                };
                if !core.has_ready() {
                    break;
                }
                readys += 1;
                self.watchdog.ready_drained(id, readys, self.now_us)?;
                let rd = core.ready();
                if rd.snapshot.is_some() && self.last_chunk_of_many {
                    self.stats.multi_chunk_installs += 1;
                }
                process_ready(
                    host,
                    rd,
                    &mut self.monitor,
                    self.now_us,
                    self.no_fsync,
                    &mut out,
                )?;
            }
            self.apply_effects(id, out)?;
        }
        let host = &self.hosts[i];
        if let Some(core) = host.core.as_ref() {
            let view = core.view();
            self.monitor.after_step(id, &view, self.now_us)?;
            core.check_self().map_err(|detail| Violation {
                property: "protocol invariant",
                detail,
                time_us: self.now_us,
            })?;
        }
        let oracle = self.oracle.as_mut();
        if let Some(core) = self.hosts[i].core.as_mut() {
            core.check_cluster(oracle, id)
                .map_err(|(property, detail)| Violation {
                    property,
                    detail,
                    time_us: self.now_us,
                })?;
        }
        if self.hosts[i].removed {
            self.remove_node(id)?;
        }
        Ok(())
    }

    fn apply_effects(&mut self, id: NodeId, effects: Vec<Effect>) -> Result<(), Violation> {
        // A new leader's window opens before its first (early) appends go.
        for e in &effects {
            if let Effect::Role(ss) = e {
                self.open_delivery_window(id, ss);
            }
        }
        for e in effects {
            match e {
                Effect::Send(msg) => {
                    self.stats.messages_sent += 1;
                    if msg.payload.is_snapshot() {
                        self.stats.snapshots_sent += 1;
                    }
                    if self.delivery.withholds(&msg, self.now_us) {
                        continue;
                    }
                    for d in self.net.plan(&mut self.rng, msg.from, msg.to) {
                        self.watchdog.message_sent(&msg);
                        self.schedule(d, Ev::Deliver(msg.clone()));
                    }
                }
                Effect::Role(ss) => {
                    self.note(11, id.0, ss.term.0, || {
                        format!("{id} is {} in {}, leader {:?}", ss.role, ss.term, ss.leader)
                    });
                    if ss.role == Role::Leader && self.opts.membership {
                        self.check_new_leader_config(id)?;
                    }
                }
                Effect::Config(index, term, m) => self.config_applied(index, term, m),
                Effect::Joined { by_snapshot } => {
                    if by_snapshot {
                        self.stats.joined_by_snapshot += 1;
                    } else {
                        self.stats.joined_by_log += 1;
                    }
                    self.note(15, id.0, by_snapshot as u64, || {
                        format!("{id} learned its configuration (snapshot: {by_snapshot})")
                    });
                }
                Effect::Reply {
                    client,
                    op_id,
                    reply,
                } => {
                    self.note(12, client as u64, op_id, || {
                        format!("{id} answers client {client} op {op_id}: {reply:?}")
                    });
                    let d = self.rng.range(50, 500);
                    self.schedule(
                        d,
                        Ev::Reply {
                            client,
                            op_id,
                            node: id,
                            reply,
                        },
                    );
                }
                Effect::FailedWrite { op_id, at } => self.failed_writes.failed(FailedWrite {
                    index: at.0,
                    term: at.1,
                    node: id,
                    time_us: self.now_us,
                    op_id,
                    early: false,
                }),
                Effect::Sync(seq) => {
                    let host = &mut self.hosts[Self::idx(id)];
                    let at = (self.now_us + self.rng.range(100, 2_000)).max(host.last_sync_us);
                    host.last_sync_us = at;
                    let inc = host.incarnation;
                    self.schedule(at - self.now_us, Ev::Synced(id, inc, seq));
                }
            }
        }
        Ok(())
    }
}

impl<C: SimCore> World<C> {
    /// [`DeliveryFault`]: maybe cut a new leader off from some peers for a
    /// while, and schedule its crash at the window's end.
    fn open_delivery_window(&mut self, id: NodeId, ss: &crate::consensus::SoftState) {
        if ss.role != Role::Leader || !self.faults_on {
            return;
        }
        let Some(end) = self
            .delivery
            .leader_elected(id, ss.term, &self.pool, self.now_us)
        else {
            return;
        };
        let inc = self.hosts[Self::idx(id)].incarnation;
        self.note(17, id.0, end.after_us, || {
            format!(
                "{id}'s messages of {} reach only {:?} for {} µs (crash at the end: {})",
                ss.term, end.reach, end.after_us, end.crash
            )
        });
        if end.crash {
            self.schedule(end.after_us, Ev::WindowCrash(id, inc, ss.term));
        }
    }
}

/// The runtime's removal rule (server/group.rs, applying a committed
/// `ConfigChange`): every configuration applied after the entry that last
/// added `id` (`member_from`) decides anew whether the group is still
/// `id`'s, so a re-add later in the same batch cancels an earlier removal.
/// Entries at or below `member_from` are history the node replays.
fn removed_after(
    removed: bool,
    id: NodeId,
    member_from: LogIndex,
    index: LogIndex,
    m: &crate::consensus::Membership,
) -> bool {
    if index <= member_from {
        return removed;
    }
    !m.is_joint() && !m.contains(id)
}

/// The ordering rule of [`crate::consensus`] for one Ready, in the
/// simulator: send what may go early, persist (holding the rest until the
/// sync), note a joining node's first configuration, apply, answer reads,
/// then leadership and compaction.
fn process_ready<C: SimCore>(
    host: &mut Host<C>,
    mut rd: Ready,
    monitor: &mut SafetyMonitor,
    now_us: u64,
    no_fsync: bool,
    out: &mut Vec<Effect>,
) -> Result<(), Violation> {
    let id = host.id;
    let core = host.core.as_ref().expect("processing a live core's Ready");
    if !rd.entries.is_empty() {
        monitor.appended(id, &rd.entries, &core.view(), now_us)?;
    }
    let messages = std::mem::take(&mut rd.messages);
    persist_and_send(host, &mut rd, messages, no_fsync, out);
    let was_leading = host.leading;
    if let Some(ss) = rd.soft_state {
        host.leading = ss.role == Role::Leader;
        out.push(Effect::Role(ss));
    }
    if host.joining {
        note_joined(host, &rd, out);
    }
    // 3. Apply: snapshot first, then committed entries in order.
    if let Some(s) = &rd.snapshot {
        restore(host, s)?;
    }
    for e in &rd.committed {
        apply_entry(host, e, was_leading, monitor, now_us, out)?;
    }
    answer_reads(host, &rd.reads, out);
    lead_and_compact(host, &rd, now_us, no_fsync, out);
    Ok(())
}

/// Steps 0-2: a leader's early appends go at once; the Ready's writes are
/// buffered, and its acknowledgement and messages held until the sync
/// (or, behind an earlier Ready still syncing, appended to its messages).
fn persist_and_send<C: SimCore>(
    host: &mut Host<C>,
    rd: &mut Ready,
    messages: Vec<Message>,
    no_fsync: bool,
    out: &mut Vec<Effect>,
) {
    // 0. A leader's appends may leave before its write is durable.
    out.extend(
        std::mem::take(&mut rd.early_messages)
            .into_iter()
            .map(Effect::Send),
    );
    // 1. Persist (buffered until synced); 2. persisted + send after the sync.
    if rd.must_persist() {
        let seq = host.storage.write(Write::Ready {
            snapshot: rd.snapshot.clone(),
            hard_state: rd.hard_state,
            entries: rd.entries.clone(),
        });
        if no_fsync {
            // Planted bug: acknowledge before the write is durable.
            let core = host.core.as_mut().expect("processing a live core's Ready");
            core.persisted(rd.persist_id);
            out.extend(messages.into_iter().map(Effect::Send));
        } else {
            host.held.push_back((seq, rd.persist_id, messages));
            out.push(Effect::Sync(seq));
        }
    } else if let Some(last) = host.held.back_mut() {
        // Keep message order behind an earlier Ready still being synced.
        last.2.extend(messages);
    } else {
        out.extend(messages.into_iter().map(Effect::Send));
    }
}

/// A joining node becomes a member once a configuration reaches it, by
/// snapshot or in its log.
fn note_joined<C>(host: &mut Host<C>, rd: &Ready, out: &mut Vec<Effect>) {
    let by_snapshot = rd
        .snapshot
        .as_ref()
        .is_some_and(|s| !s.meta.voters.is_empty());
    let by_log = rd
        .entries
        .iter()
        .any(|e| matches!(e.kind, EntryKind::ConfigChange(_)));
    if by_snapshot || by_log {
        host.joining = false;
        out.push(Effect::Joined { by_snapshot });
    }
}

/// Step 3 for one committed entry: in order, checked, applied through the
/// node's applier, and the pending write at its index settled.
fn apply_entry<C: SimCore>(
    host: &mut Host<C>,
    e: &Entry,
    was_leading: bool,
    monitor: &mut SafetyMonitor,
    now_us: u64,
    out: &mut Vec<Effect>,
) -> Result<(), Violation> {
    let id = host.id;
    if e.index != host.applier.applied().next() {
        return Err(Violation {
            property: "apply in order",
            detail: format!("{id} applied {} then {}", host.applier.applied(), e.index),
            time_us: now_us,
        });
    }
    monitor.applied(id, e, now_us)?;
    if let EntryKind::ConfigChange(m) = &e.kind {
        out.push(Effect::Config(e.index, e.term, m.clone()));
        host.removed = removed_after(host.removed, id, host.member_from, e.index, m);
        host.removed_leader = host.removed && (was_leading || host.leading);
    }
    let outcome = host.applier.apply(e, now_ms(now_us));
    let settled = host.pending_writes.settle(e.index, e.term);
    if let Some(SimWrite {
        client,
        op_id,
        command_hash,
        ..
    }) = settled.ours
    {
        let EntryKind::Normal(bytes) = &e.kind else {
            panic!("the entry at our proposal's (index, term) is a command");
        };
        assert_eq!(
            hash_bytes(bytes),
            command_hash,
            "the entry at our (index, term) is our command"
        );
        let Outcome::Applied(applied) = outcome else {
            panic!("our command applies: {outcome:?}");
        };
        let reply = reply_to(applied);
        out.push(Effect::Reply {
            client,
            op_id,
            reply,
        });
    }
    for SimWrite {
        client, op_id, at, ..
    } in settled.lost
    {
        // Another term's entry committed at the index: ours never will
        // (the node answers `not-leader`, definite).
        out.push(Effect::FailedWrite { op_id, at });
        out.push(Effect::Reply {
            client,
            op_id,
            reply: Reply::Fail("not-leader"),
        });
    }
    Ok(())
}

/// Step 4: reads the core confirmed wait until their index is applied;
/// refused ones are redirected.
fn answer_reads<C>(host: &mut Host<C>, reads: &[ReadOutcome], out: &mut Vec<Effect>) {
    for r in reads {
        match *r {
            ReadOutcome::Ready { ctx, index } => host.waiting_reads.push((index, ctx)),
            ReadOutcome::Failed { ctx, error } => {
                if let Some((client, op_id, _)) = host.reads.remove(&ctx) {
                    out.push(Effect::Reply {
                        client,
                        op_id,
                        reply: Reply::Redirect(error.leader),
                    });
                }
            }
        }
    }
    let applied = host.applier.applied();
    let mut still = Vec::new();
    for (index, ctx) in std::mem::take(&mut host.waiting_reads) {
        if index <= applied {
            if let Some((client, op_id, key)) = host.reads.remove(&ctx) {
                let value = host.applier.read(&clients::register_name(key));
                out.push(Effect::Reply {
                    client,
                    op_id,
                    reply: Reply::Ok(value),
                });
            }
        } else {
            still.push((index, ctx));
        }
    }
    host.waiting_reads = still;
}

/// Step 5: a new leader restarts the lease timers; compact now and then.
fn lead_and_compact<C: SimCore>(
    host: &mut Host<C>,
    rd: &Ready,
    now_us: u64,
    no_fsync: bool,
    out: &mut Vec<Effect>,
) {
    let applied = host.applier.applied();
    let core = host.core.as_mut().expect("alive");
    if let Some(ss) = &rd.soft_state {
        host.applier
            .role_changed(ss, now_ms(now_us), |cmd| core.propose(cmd).is_ok());
    }
    // Compact now and then.
    let snap_index = core.status().snapshot_index;
    if applied.0 >= snap_index.0 + host.snapshot_every {
        let data = host.applier.snapshot();
        let meta = core
            .snapshot_taken(applied, data.clone())
            .expect("the applied index can be snapshotted");
        let seq = host.storage.write(Write::Compact(Snapshot { meta, data }));
        if !no_fsync {
            out.push(Effect::Sync(seq));
        }
    }
}

fn restore<C>(host: &mut Host<C>, s: &Snapshot) -> Result<(), Violation> {
    host.applier
        .restore(s)
        .expect("snapshots come from the node's state machine");
    // Proposals the snapshot covers have an unknown outcome here (the node
    // answers them `timeout`).
    host.pending_writes.take_through(s.meta.index);
    Ok(())
}

/// A node's empty state machine with the run's planted bugs.
fn fresh_applier(bugs: &[Bug]) -> Applier {
    Applier::with_bugs(bugs, None).expect("no snapshot to decode")
}

/// Virtual time as the runtime's clock reads it (ms). Lease timers run on
/// true virtual time, not a node's skewed tick rate: the lock checkers
/// assume clocks that keep time, as the harness's runs do.
fn now_ms(now_us: u64) -> f64 {
    now_us as f64 / 1000.0
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = Fnv::new();
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h.u64(u64::from_le_bytes(word));
    }
    h.u64(bytes.len() as u64);
    h.finish()
}

/// The node's answer to a client whose command applied, as the simulator's
/// clients see it (the node's `applied_reply`, without the wire).
fn reply_to(applied: Applied) -> Reply {
    match applied {
        Applied::Ok => Reply::Ok(Value::Null),
        Applied::Value(v) => Reply::Ok(v),
        Applied::Token(t) => Reply::Ok(Value::from(t)),
        Applied::CasMismatch { .. } => Reply::Fail("cas-mismatch"),
        Applied::LockHeld { .. } => Reply::Fail("lock-held"),
        Applied::NotHolder => Reply::Fail("not-holder"),
        Applied::StaleToken { .. } => Reply::Fail("stale-token"),
        Applied::BadRequest(_) => Reply::Fail("bad-request"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Membership;

    fn voters(ids: &[u64]) -> Membership {
        Membership::simple(ids.iter().copied().map(NodeId).collect())
    }

    /// Seed 463 of the membership sweep: n1 learned slots 1 to 3 chosen in
    /// one Ready, slot 1 removing it and slot 3 adding it back; the world
    /// wiped it although the configuration in force named it.
    #[test]
    fn a_re_add_later_in_the_same_batch_cancels_the_removal() {
        let n1 = NodeId(1);
        let after_slot_1 = removed_after(
            false,
            n1,
            LogIndex(0),
            LogIndex(1),
            &voters(&[2, 3, 4, 5, 7]),
        );
        assert!(after_slot_1, "a configuration without n1 removes it");
        let after_slot_3 = removed_after(
            after_slot_1,
            n1,
            LogIndex(0),
            LogIndex(3),
            &voters(&[1, 2, 3, 4, 5, 6]),
        );
        assert!(!after_slot_3, "the configuration at slot 3 names n1 again");
    }

    #[test]
    fn configurations_up_to_the_adding_entry_are_history() {
        let n7 = NodeId(7);
        // Added by the entry at slot 5: the seed configuration at 2 without it is history.
        assert!(!removed_after(
            false,
            n7,
            LogIndex(5),
            LogIndex(2),
            &voters(&[1, 2, 3])
        ));
        assert!(removed_after(
            false,
            n7,
            LogIndex(5),
            LogIndex(6),
            &voters(&[1, 2, 3])
        ));
    }
}

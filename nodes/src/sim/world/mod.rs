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
//! stops and wipes a node a grace after it left the group (it applied a
//! committed simple configuration without itself, at an index above the
//! entry that last added it: an old removal replayed while catching up does
//! not count; server/removal.rs); within the grace it runs on as a removed
//! member, and a re-add keeps it. Crashes, partitions
//! and loss go on meanwhile; a new leader must hold the latest configuration
//! committed before its term.
//!
//! The world by concern: this file is the scheduler (the event queue and
//! its dispatch) and the nodes' lifecycle (start, crash, restart, ticks,
//! deliveries, syncs); `options.rs` what a run does, `stats.rs` what it
//! counted; `runtime.rs` the node runtime around each core (every Ready
//! through server/ordering.rs, then its effects); `requests.rs` the
//! clients' requests and replies; `nemesis.rs` the faults;
//! `membership.rs` the changes of voters.
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
//! Connections ([`connection`]): every delivered message and client
//! request presents its sender's credential and is admitted by the node's
//! own access check; the impostor ([`Impostor`], `impostor.rs`) tries
//! credentials that must be refused, now and then, against random nodes.
//!
//! Planted bugs: [`Bug::StaleRead`] goes to the cores (it is theirs);
//! [`Bug::LockEarlyExpiry`], [`Bug::NoFence`] and [`Bug::TxnNonAtomic`] to
//! the [`Applier`], as in the node;
//! [`Bug::NoFsync`] is the runtime's: a Ready's messages go out and
//! `persisted` is called before its write is durable, and writes reach the
//! disk only by a lazy periodic flush. [`SimOptions::early_fail_bug`]
//! (simulator only, no [`Bug`]) reverts issue 21 finding 1's fix in the
//! pending-write table. [`Bug::ClientAdmin`] and [`Bug::PeerIdUnchecked`]
//! act in the access check ([`connection::sim_access`]), as in the node.

mod impostor;
mod membership;
mod nemesis;
mod options;
mod requests;
mod runtime;
mod stats;

use crate::server::removal::{retire_grace_ms, Due, Removal, Retirement};
pub use options::SimOptions;
use runtime::{fresh_applier, hash_bytes, now_ms, release, SimSnapshots};
pub use stats::{SimOutcome, SimStats};

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

use serde_json::Value;

use super::check::{SafetyMonitor, Violation};
use super::clients::{self, LockClient, OpKind, RegisterOps, RegisterValues, TxnMop};
use super::connection::{self, Credential};
use super::core::SimCore;
use super::delivery_fault::{DeliveryFault, DeliveryFaultPlan, DeliveryFaultStats};
use super::failed_writes::{FailedWrite, FailedWrites};
use super::fnv::Fnv;
use super::history::{History, SimEventKind};
use super::impostor::Impostor;
use super::network::{NetworkFaults, SimNetwork};
use super::rng::SimRng;
use super::storage::{SimStorage, Write};
use super::watchdog::{SimLimits, Watchdog};
use crate::bug::Bug;
use crate::consensus::{
    CoreConfig, Entry, EntryKind, GroupId, LogIndex, Message, NodeId, ReadOutcome, Ready, Role,
    Snapshot, SoftState, Term, TICK_INTERVAL_MS,
};
use crate::server::access::Access;
use crate::server::applier::{Applier, Outcome};
use crate::server::compaction::{Compaction, CompactionPolicy};
use crate::server::ordering::{self, HeldReadys, Persist, Persisted, ReadySteps, Release};
use crate::server::pending_writes::PendingWrites;
use crate::server::requests::{leader_hint, GroupRequests, LandedWrite};
use crate::state::Command;

#[derive(Clone, Debug, PartialEq)]
enum Reply {
    Redirect(Option<NodeId>),
    Ok(Value),
    Fail(&'static str),
}

impl Reply {
    /// What a client makes of the node's answer on the wire: `ok` with
    /// its value (or token), or `fail` with its error code.
    fn from_wire(reply: &crate::protocol::Reply) -> Reply {
        if reply.ok {
            let answer = reply
                .fields
                .get("value")
                .or_else(|| reply.fields.get("token"))
                .cloned()
                .unwrap_or(Value::Null);
            Reply::Ok(answer)
        } else {
            Reply::Fail(reply.error.map_or("unknown", |code| code.as_str()))
        }
    }
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
    /// The impostor's next attempt ([`Impostor`]).
    Impostor,
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

impl LandedWrite for SimWrite {
    fn landed(&mut self, proposal: crate::consensus::Proposal) {
        self.at = (proposal.index, proposal.term);
    }
}

struct Client {
    process: u64,
    leader_hint: Option<NodeId>,
    op: Option<PendingOp>,
    /// A lock client's lease (None: a register or transaction client).
    lock: Option<LockClient>,
    /// A transaction client (list-append).
    txn: bool,
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
    held: HeldReadys,
    last_sync_us: u64,
    /// Client writes proposed here and reads queued, then between
    /// ReadIndex and their answer, through the node's own request path and
    /// read batching ([`GroupRequests`]): deadlines in virtual µs, reads
    /// as (client, op id, register key).
    requests: GroupRequests<SimWrite, (usize, u64, u64), u64>,
    /// When this node compacts (its threshold drawn from the seed).
    compaction: Compaction,
    /// Virtual µs between two ticks of this node's clock.
    tick_us: u64,
    /// The node runs the group (a core, up or crashed); false before it
    /// joins and after it was removed and wiped.
    hosting: bool,
    /// `CoreConfig::voters` for this node: the initial voters for an initial
    /// member, empty for a node that joined later.
    seed_voters: Vec<NodeId>,
    /// Started joining and has no configuration yet.
    joining: bool,
    /// `CoreConfig::join_floor`, from [`SimCore::joining`].
    join_floor: Option<(Term, LogIndex)>,
    /// What its earlier incarnations left when they were wiped: the highest
    /// term and the last index they held (the runtime's groups.json).
    left: Option<(Term, LogIndex)>,
    /// Whether the committed configurations it applied leave it out, with
    /// the index of the entry that last added it (0 for an initial member):
    /// the node's rule (server/removal.rs); once it has left, stop and wipe
    /// it when its `retirement` is due.
    removal: Removal,
    /// Since when it has left, in virtual µs (the node's grace rule,
    /// server/removal.rs).
    retirement: Retirement<u64>,
    /// The core led when it was last heard of (its latest soft state).
    leading: bool,
    /// The leader its latest soft state named (the node's `leader`, for the
    /// hint of a `not-leader` reply).
    leader: Option<NodeId>,
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
    /// The nodes' access policy ([`connection::sim_access`]): every
    /// message and request is admitted through it.
    access: Access,
    /// Attempts with credentials that must be refused, and their outcomes.
    impostor: Impostor,
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
        impostor: world.impostor.attempts,
    }
}

impl<C: SimCore> Host<C> {
    /// The leader a `not-leader` reply names, by the node's rule
    /// ([`leader_hint`]).
    fn leader_hint(&self, refused: crate::consensus::NotLeader) -> Option<NodeId> {
        let membership = self
            .core
            .as_ref()
            .map(|core| core.status().membership)
            .unwrap_or_default();
        leader_hint(refused, self.leader, self.id, &membership)
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
            held: HeldReadys::new(),
            last_sync_us: 0,
            requests: GroupRequests::new(if opts.early_fail_bug {
                PendingWrites::planted_early_fail()
            } else {
                PendingWrites::default()
            }),
            compaction: Compaction::new(CompactionPolicy::every(snapshot_every), LogIndex(0)),
            tick_us,
            hosting: voters.contains(&id),
            seed_voters: if voters.contains(&id) {
                voters.to_vec()
            } else {
                Vec::new()
            },
            joining: false,
            join_floor: None,
            left: None,
            removal: Removal::default(),
            retirement: Retirement::default(),
            leading: false,
            leader: None,
            removed_leader: false,
        }
    }
}

/// The register clients, and on a third of the seeds two lock clients.
fn clients_for(opts: &SimOptions) -> Vec<Client> {
    // From streams of their own: the world's draws stay as they were.
    let drawn = |stream: u64| {
        if SimRng::new(opts.seed ^ (stream << 56)).chance(1.0 / 3.0) {
            2
        } else {
            0
        }
    };
    let lock_clients = opts.lock_clients.unwrap_or_else(|| drawn(0xC6));
    let txn_clients = opts.txn_clients.unwrap_or_else(|| drawn(0xD7));
    let locks_from = opts.clients;
    let txns_from = locks_from + lock_clients;
    (0..txns_from + txn_clients)
        .map(|c| Client {
            process: c as u64,
            leader_hint: None,
            op: None,
            lock: (locks_from..txns_from)
                .contains(&c)
                .then(LockClient::default),
            txn: c >= txns_from,
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
        let (opts_bugs, opts_seed) = (opts.bugs.clone(), opts.seed);
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
            access: connection::sim_access(&opts_bugs),
            impostor: Impostor::new(opts_seed),
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
        // Its own stream: the draws above stay as they were.
        let d = self.impostor.next_delay_us();
        self.schedule(d, Ev::Impostor);
        let end_us = (self.opts.duration_ms + self.opts.settle_ms) * 1000;
        self.watchdog.check_horizon(end_us)?;
        while let Some(s) = self.queue.pop() {
            assert!(s.time_us >= self.now_us, "virtual time never goes back");
            if s.time_us > end_us {
                break;
            }
            self.now_us = s.time_us;
            if matches!(s.ev, Ev::Impostor) {
                // Not counted with the world's events: a seed's counters
                // stay as they were without an access bug.
                self.impostor_attempt()?;
                continue;
            }
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
        host.compaction.restarted(host.applier.applied());
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
        // As the node's host: when it left is kept in memory only.
        host.retirement.stayed();
        host.leading = false;
        host.leader = None;
        let lost = host.storage.crash();
        host.held.clear();
        // Their clients time out: the outcome is unknown (the node answers
        // `shutting-down`, or its connections drop).
        host.requests.take_all();
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
            Ev::Impostor => self.impostor_attempt(),
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
        host.requests.expired_writes(self.now_us);
        let every = host.tick_us;
        self.note(3, id.0, 0, || format!("{id} tick"));
        self.schedule(every, Ev::Tick(id, inc));
        self.post_step(id)
    }

    /// A message arrives at its node (if it runs), over a connection
    /// presenting its sender's own credential: the node's access check
    /// must let it in.
    fn on_deliver(&mut self, msg: Message) -> Result<(), Violation> {
        let credential = Credential::node(msg.from);
        if let Err(reason) = connection::admit_peer(&self.access, &credential, msg.from, &self.pool)
        {
            return Err(Violation {
                property: "message accepted",
                detail: format!("{} refused {}'s own credential: {reason}", msg.to, msg.from),
                time_us: self.now_us,
            });
        }
        self.step_message(msg)
    }

    /// A message the node's access check let in is stepped into its core.
    fn step_message(&mut self, msg: Message) -> Result<(), Violation> {
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
        for released in host.held.release_through(seq) {
            release(host, released, &mut out);
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

    // ----- clients -----

    // ----- the runtime around a core -----
}

//! The real node: TCP server, peer transport, WAL, state machine, and a
//! consensus core driven by the contract of [`crate::consensus`].
//!
//! Threads: a small tokio runtime serves connections (clients, admin tools
//! and peers on one port) and sends peer messages; one OS thread
//! ([`core_loop`]) owns every group and is the only one that touches the
//! cores, writes the WAL and runs the state machine; each group's WAL has
//! a sync thread that only fsyncs it ([`crate::storage::syncer`]). The runtime is generic over the
//! core (`Box<dyn Consensus>`): it never names a protocol except to build it.
//!
//! Guarantees: a reply `ok` to a write is sent only after its entry was
//! committed and applied, and every Ready's writes are fsynced before its
//! acknowledgement and its messages go out, but for a leader's appends of
//! its own entries, which go out while it writes them (Raft thesis
//! §10.2.1; [`crate::consensus::Ready::early_messages`]) (unless the
//! `no-fsync` bug is on); a read is answered
//! after a ReadIndex round (unless `stale-read`); requests not answered in
//! time get `timeout` (not definite).
//!
//! Sharded (`--shards`), a node hosts one group per shard it holds a
//! replica of, over the same transport, and routes each request by its key
//! or lock name ([`host::Host`]); a request for a shard it does not host is
//! answered `moved` (definite). Groups are joined, left and reconfigured at
//! run time by admin requests, recorded in `groups.json`
//! ([`groups_file`]).

pub mod access;
pub mod admin;
pub mod applier;
pub mod audit;
pub mod clock;
pub mod compaction;
pub mod config;
pub mod connection;
pub mod core_loop;
pub mod group;
pub mod group_status;
pub mod groups_file;
pub mod host;
pub mod ordering;
pub mod pending_writes;
pub mod read_queue;
pub mod removal;
pub mod reply_sink;
pub mod requests;
pub mod shard_map;

pub use clock::NodeClock;
pub use config::{ConsensusKind, NodeConfig, Sharding};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::consensus::{Consensus, CoreConfig, GroupId, LogIndex, NodeId, Recovered, Term};
use crate::transport::{Filter, Transport};
use core_loop::Event;
use host::Host;

/// Events queued for the core thread at most: beyond, peer messages are
/// dropped (consensus tolerates loss) and requests get `overloaded`.
pub const EVENT_QUEUE_LEN: usize = 65_536;

/// Why a node could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A bad flag or configuration (exit 254).
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Storage could not be opened (corruption is named with file and offset).
    #[error("cannot open group {group}: {reason}")]
    Open { group: GroupId, reason: String },
    /// Storage failed while running: the node stopped.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("runtime: {0}")]
    Runtime(String),
}

/// At most this many entries in one append or accept message.
pub const NODE_MAX_BATCH_ENTRIES: usize = 512;

/// At most this many command bytes in one append or accept message (beyond
/// its first entry): base64 makes them about 5.4 MiB on the wire, far under
/// the peer line limit ([`crate::protocol::line::MAX_PEER_LINE_BYTES`]),
/// whatever the values' size.
pub const NODE_MAX_BATCH_BYTES: usize = 4 << 20;

/// At most this many snapshot bytes in one InstallSnapshot chunk (about
/// 5.4 MiB on the wire): a state machine of any size reaches a follower.
pub const NODE_SNAPSHOT_CHUNK_BYTES: usize = 4 << 20;

/// Build the consensus core for `group` from its recovered storage.
/// `voters` seeds a brand-new group (unsharded: every peer; sharded: the
/// placement's replicas of the shard); empty makes a joining core.
/// `join_floor`: see [`CoreConfig::join_floor`] (groups.json's, for a group
/// this node left before).
pub fn make_core(
    cfg: &NodeConfig,
    group: GroupId,
    voters: Vec<NodeId>,
    join_floor: Option<(Term, LogIndex)>,
    recovered: Recovered,
) -> Result<Box<dyn Consensus>, String> {
    let mut core_cfg = CoreConfig::new(cfg.id, group, voters);
    core_cfg.join_floor = join_floor;
    core_cfg.election_timeout_ticks = cfg.election_timeout_ticks();
    core_cfg.heartbeat_interval_ticks = cfg.heartbeat_interval_ticks();
    core_cfg.lease_reads = cfg.lease_reads;
    core_cfg.bugs = cfg.bugs.clone();
    core_cfg.max_batch_entries = NODE_MAX_BATCH_ENTRIES;
    core_cfg.max_batch_bytes = NODE_MAX_BATCH_BYTES;
    core_cfg.snapshot_chunk_bytes = NODE_SNAPSHOT_CHUNK_BYTES;
    // Distinct per node and per start: elections must not tie forever.
    core_cfg.seed = rand::random::<u64>() ^ cfg.id.0;
    match cfg.consensus {
        ConsensusKind::Raft => crate::raft::RaftNode::new(core_cfg, recovered)
            .map(|n| Box::new(n) as Box<dyn Consensus>)
            .map_err(|e| e.to_string()),
        ConsensusKind::Paxos => crate::paxos::PaxosNode::new(core_cfg, recovered)
            .map(|n| Box::new(n) as Box<dyn Consensus>)
            .map_err(|e| e.to_string()),
    }
}

/// Run a node until SIGINT/SIGTERM or a fatal storage error. `on_listening`
/// is called once the port is bound (the caller prints its ready line).
pub fn run(cfg: NodeConfig, on_listening: impl FnOnce(SocketAddr)) -> Result<(), NodeError> {
    cfg.validate().map_err(NodeError::Config)?;
    for bug in &cfg.bugs {
        tracing::warn!(bug = bug.name(), "PLANTED BUG ON: {}", bug.description());
    }
    let clock = NodeClock::new();
    let core_cfg = cfg.clone();
    let mut host = Host::open(
        cfg.clone(),
        clock.clone(),
        Box::new(move |g, voters, floor, rec| make_core(&core_cfg, g, voters, floor, rec)),
    )?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("faultline-net")
        .enable_all()
        .build()
        .map_err(|e| NodeError::Runtime(e.to_string()))?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(cfg.listen))
        .map_err(|source| NodeError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| NodeError::Listen {
        addr: cfg.listen,
        source,
    })?;

    let filter = Filter::default();
    let peers_but_me: BTreeMap<_, _> = cfg
        .peers
        .iter()
        .filter(|(id, _)| **id != cfg.id)
        .map(|(id, a)| (*id, *a))
        .collect();
    let transport = {
        let _guard = rt.enter();
        Transport::start(
            cfg.id,
            cfg.listen.ip(),
            peers_but_me,
            cfg.tokens.for_peers().map(str::to_string),
            cfg.tls.clone(),
            filter.clone(),
        )
    };

    let (events_tx, events_rx) = std::sync::mpsc::sync_channel::<Event>(EVENT_QUEUE_LEN);
    let wake_tx = events_tx.clone();
    // A full queue needs no wake-up: the loop drives the groups after it.
    host.set_waker(Arc::new(move || {
        let _ = wake_tx.try_send(Event::Wake);
    }));
    let audit_path = cfg.audit_log_path();
    let audit = audit::AuditLog::open(cfg.id, &audit_path)
        .map_err(|e| NodeError::Config(format!("--audit-log {}: {e}", audit_path.display())))?;
    let shared = Arc::new(connection::Shared {
        id: cfg.id,
        access: access::Access::new(cfg.tokens.clone(), cfg.tls.is_some(), &cfg.bugs),
        audit,
        events: events_tx.clone(),
        filter,
        clock: clock.clone(),
        peers: cfg.peers.clone(),
        tls: cfg.tls.clone(),
    });

    let core_clock = clock.clone();
    let tick_ms = cfg.tick_ms;
    let core = std::thread::Builder::new()
        .name("faultline-core".into())
        .spawn(move || core_loop::run(host, events_rx, transport, core_clock, tick_ms))
        .map_err(|e| NodeError::Runtime(e.to_string()))?;

    on_listening(local);
    tracing::info!(node = cfg.id.0, %local, consensus = cfg.consensus.name(), sharded = cfg.is_sharded(), "listening");

    let shutdown_tx = events_tx.clone();
    drop(events_tx);
    rt.spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, remote)) => {
                    tokio::spawn(connection::serve(stream, remote, shared.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    });
    // Wait for a signal or for the core to stop on its own (storage error).
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    rt.spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("signal received; shutting down");
        // Blocks only if the queue is full; the core drains it promptly.
        let _ =
            tokio::task::spawn_blocking(move || shutdown_tx.send(Event::Shutdown).is_ok()).await;
        let _ = done_tx.send(());
    });
    let result = core
        .join()
        .map_err(|_| NodeError::Runtime("the core thread panicked".into()))?;
    let _ = done_rx.try_recv();
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    result.map_err(NodeError::Storage)
}

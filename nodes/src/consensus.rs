//! consensus: the protocol-independent contract between a consensus core and
//! the runtime that drives it.
//!
//! A core ([`Consensus`]: Raft today, Multi-Paxos later) is a sans-IO state
//! machine for one consensus group on one node. It never reads a clock,
//! touches a file or opens a socket. The runtime (the real node, or the
//! deterministic simulator) feeds it inputs and drains its output, a
//! [`Ready`]. Both runtimes follow exactly this contract, so a core that is
//! correct in the simulator is correct in the node.
//!
//! # Inputs
//! - [`Consensus::tick`]: called every [`TICK_INTERVAL_MS`] of the runtime's
//!   monotonic clock. Every timeout inside a core is counted in ticks.
//! - [`Consensus::step`]: a [`Message`] received from a peer of the same
//!   group. A message for another group or another node is refused with a
//!   [`StepError`] (bad input from the wire; never a panic).
//! - [`Consensus::propose`]: an opaque command (the runtime's serialized KV or
//!   lock operation). Returns the (index, term) the entry got; the command is
//!   applied iff the [`Entry`] at that index with that term shows up in
//!   [`Ready::committed`]. If a committed entry at that index has another
//!   term, the proposal definitely failed; if none shows up before the
//!   runtime's timeout, the outcome is unknown (`info`).
//! - [`Consensus::read_index`]: asks for a linearizable read. The outcome
//!   comes later in [`Ready::reads`]: [`ReadOutcome::Ready`] with an index
//!   (answer the read once the state machine applied at least that index),
//!   or [`ReadOutcome::Failed`] (leadership lost: answer `not-leader` at once).
//! - [`Consensus::persisted`]: storage completion, see the ordering rule.
//! - [`Consensus::snapshot_taken`]: the runtime snapshotted its state machine.
//! - [`Consensus::transfer_leader`]: hand leadership to another voter.
//! - [`Consensus::change_membership`]: move the group to another voter set.
//!
//! # Membership
//! A core's configuration is the latest [`EntryKind::ConfigChange`] in its
//! log (or its snapshot's), not [`CoreConfig::voters`], which only seeds a
//! brand-new group. A node added to a running group starts with no voters
//! ("joining") and learns its configuration from the leader. Start a
//! joining core with `Recovered::hard_state.term` = the current term of the
//! group's leader (persisted before the core runs): a node id that was a
//! voter before, was removed and wiped, must not follow a stale leader of an
//! older term that still counts it (it forgot the votes it gave), and give
//! it [`CoreConfig::join_floor`] if the id may have been a member before (it
//! must not count itself in a configuration that meant its old self). When the
//! runtime applies a committed simple configuration that does not contain
//! its node, the group is no longer this node's: the runtime may stop the
//! core and delete the group's storage.
//!
//! # Processing a Ready: the ordering rule
//! After any input, while [`Consensus::has_ready`] is true, the runtime takes
//! [`Consensus::ready`] and handles its fields in this order:
//!
//! 1. **Persist**, all in one durable write (one fsync covers the batch):
//!    - [`Ready::snapshot`], if any: store it as the node's snapshot and
//!      delete **every** stored log entry (the snapshot replaces the whole log);
//!    - [`Ready::hard_state`], if any: store it (it replaces the previous one);
//!    - [`Ready::entries`], if any: they are contiguous; first delete every
//!      stored entry with index ≥ `entries[0].index` (a conflicting suffix),
//!      then append them. ("Entries" always means: truncate from the first
//!      entry's index, then append.)
//! 2. **Only after that write is durable**, call
//!    [`Consensus::persisted`]`(ready.persist_id)`, and only then send
//!    [`Ready::messages`]. The one exception: [`Ready::early_messages`]
//!    (a Raft leader's appends, Raft thesis §10.2.1) may be sent before
//!    step 1, in parallel with the write; a core puts a message there only
//!    if its safety does not rest on this Ready's write. A vote, an append acknowledgement and a term bump
//!    are promises about durable state: sending one before the fsync is the
//!    `no-fsync` bug. Readys are persisted and acknowledged in the order they
//!    were taken; `persisted(n)` acknowledges every Ready with id ≤ n.
//!    (Calling `persisted` for a Ready with nothing to persist is harmless.)
//! 3. **Apply**: if [`Ready::snapshot`] is set, restore the state machine from
//!    it first (applied index = snapshot index). Then apply
//!    [`Ready::committed`] in order (entries of kind [`EntryKind::Noop`] and
//!    [`EntryKind::ConfigChange`] change nothing in the state machine but
//!    advance the applied index). Committed entries may be applied before
//!    step 1 finishes (they are committed by a quorum), but never before the
//!    snapshot of the same Ready is installed.
//! 4. **Reads**: answer each [`ReadOutcome::Ready`] once applied ≥ its index.
//! 5. [`Ready::soft_state`], if set: the role or leader changed (a new
//!    leader restarts its lock lease timers here).
//!
//! Messages may be lost, duplicated, delayed and reordered by the network:
//! cores tolerate all of that. A runtime may drop any message it cannot send.
//!
//! # Restart
//! A core is built from what storage made durable ([`Recovered`]): the hard
//! state, the snapshot (if any) and the entries after it. The runtime
//! restores its state machine from the snapshot; the core hands out the
//! committed entries after the snapshot again in `committed` as it learns
//! they are committed (the runtime re-applies them: the state machine is not
//! durable on its own).
//!
//! # Snapshots
//! - Local compaction: the runtime serializes its state machine at an applied
//!   index `i` and calls [`Consensus::snapshot_taken`]`(i, data)`. The core
//!   answers with the [`SnapshotMeta`] (index and term), keeps the data to
//!   send to followers that fell behind, and drops its in-memory log ≤ `i`.
//!   The runtime then stores `Snapshot { meta, data }` durably and only after
//!   that may delete its stored entries ≤ `i`.
//! - Catching up: a leader sends a follower whose next entry was compacted
//!   away an InstallSnapshot, in chunks of at most
//!   [`CoreConfig::snapshot_chunk_bytes`] ([`crate::snapshot_transfer`]);
//!   the follower's core assembles them in memory and, once the last one
//!   arrived, puts the whole snapshot in [`Ready::snapshot`], handled by
//!   rules 1 and 3 above. Nothing of a snapshot is applied, made durable or
//!   acknowledged as installed before its last chunk.
//!
//! # Planted bugs
//! [`CoreConfig::bugs`] lists the planted bugs. Only one changes a core:
//! with [`Bug::StaleRead`], `read_index` succeeds on any node, leader or not,
//! and the next Ready carries `ReadOutcome::Ready` at the core's local commit
//! index at once, with no leadership check (the runtime answers from its
//! local state machine). [`Bug::NoFsync`] is a runtime bug (step 2 done
//! before the write is durable); cores ignore it.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::bug::Bug;

/// How often the runtime calls [`Consensus::tick`], in milliseconds. The
/// simulator uses the same interval in virtual time.
pub const TICK_INTERVAL_MS: u64 = 10;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }
    };
}

id_newtype!(
    /// A node of the cluster. Node ids are never 0 in a real cluster.
    NodeId,
    "n"
);
id_newtype!(
    /// A consensus group (a shard of the ring). Every message and every storage
    /// path carries one.
    GroupId,
    "g"
);
id_newtype!(
    /// A position in the replicated log, from 1. Index 0 is "before the log".
    LogIndex,
    "i"
);
id_newtype!(
    /// A Raft term, or a Paxos ballot encoded in a u64. 0 is "never".
    Term,
    "t"
);

impl LogIndex {
    pub fn next(self) -> LogIndex {
        LogIndex(
            self.0
                .checked_add(1)
                .expect("a log index never reaches u64::MAX"),
        )
    }
    /// The index before this one; `LogIndex(0).prev()` is 0.
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

impl Term {
    pub fn next(self) -> Term {
        Term(
            self.0
                .checked_add(1)
                .expect("a term never reaches u64::MAX"),
        )
    }
}

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A command for the state machine, opaque to the core (base64 on the
    /// wire: [`crate::wire_bytes`]).
    Normal(#[serde(with = "crate::wire_bytes")] Vec<u8>),
    /// Appended by a new leader to commit the entries of earlier terms
    /// (Raft §5.4.2); applying it changes nothing.
    Noop,
    /// A voter configuration (see [`Membership`] and
    /// [`Consensus::change_membership`]); the state machine ignores it, the
    /// runtime watches it to learn when a change is done.
    ConfigChange(Membership),
}

/// A group's voter configuration, as a config entry, a snapshot and
/// [`Status`] carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// The voters (during a joint configuration: the incoming voters).
    pub voters: Vec<NodeId>,
    /// Raft joint consensus (C_old,new): the outgoing voters. Empty when the
    /// configuration is simple. While non-empty, every decision (an
    /// election, a commit, a read quorum) needs a majority of `voters` AND a
    /// majority of `outgoing`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outgoing: Vec<NodeId>,
}

impl Membership {
    pub fn simple(voters: Vec<NodeId>) -> Membership {
        Membership {
            voters,
            outgoing: Vec::new(),
        }
    }

    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether `node` votes in this configuration (in either half of a joint one).
    pub fn contains(&self, node: NodeId) -> bool {
        self.voters.contains(&node) || self.outgoing.contains(&node)
    }
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    pub index: LogIndex,
    /// The term (Raft) or ballot (Paxos) that created the entry.
    pub term: Term,
    pub kind: EntryKind,
}

impl Entry {
    /// What the entry weighs against [`CoreConfig::max_batch_bytes`]: its
    /// command's bytes, or a small constant for a no-op or a configuration.
    pub fn payload_bytes(&self) -> usize {
        match &self.kind {
            EntryKind::Normal(command) => command.len(),
            EntryKind::Noop => 0,
            EntryKind::ConfigChange(m) => 16 * (m.voters.len() + m.outgoing.len()),
        }
    }
}

/// The leading entries of `entries` that fit a batch: at most `max_entries`
/// and, after the first (always taken, so a batch is never empty and any
/// entry can travel), at most `max_bytes` of [`Entry::payload_bytes`].
pub fn batch_len(entries: &[Entry], max_entries: usize, max_bytes: usize) -> usize {
    let mut bytes = 0usize;
    let mut taken = 0usize;
    for entry in entries.iter().take(max_entries) {
        bytes = bytes.saturating_add(entry.payload_bytes());
        if taken > 0 && bytes > max_bytes {
            break;
        }
        taken += 1;
    }
    taken
}

/// The state a core must find again after a crash: persisted before any
/// message that depends on it is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term (ballot) this node has seen.
    pub term: Term,
    /// Who this node voted for in `term` (Raft); None for Paxos.
    pub vote: Option<NodeId>,
    /// A commit index known at the time; may lag, never ahead of the truth.
    pub commit: LogIndex,
}

/// Where a snapshot sits in the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last log index the snapshot covers (the applied index it was taken at).
    pub index: LogIndex,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The voters of the group as of `index`.
    pub voters: Vec<NodeId>,
    /// The outgoing voters as of `index` if a joint configuration was in
    /// force there (see [`Membership::outgoing`]); usually empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outgoing: Vec<NodeId>,
}

/// A state-machine snapshot: its place in the log and the runtime's bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    /// The runtime's bytes (base64 on the wire: [`crate::wire_bytes`]).
    #[serde(with = "crate::wire_bytes")]
    pub data: Vec<u8>,
}

/// What storage made durable, handed to a core when it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot (or from index 1), contiguous.
    pub entries: Vec<Entry>,
}

/// The wire envelope: every message names its group, sender and receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub group: GroupId,
    pub from: NodeId,
    pub to: NodeId,
    pub payload: Payload,
}

/// The protocol's part of a message. The runtime only moves it around.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    Raft(crate::raft::message::RaftMessage),
    Paxos(crate::paxos::message::PaxosMessage),
}

impl Payload {
    /// Which protocol's message this is: `raft` or `paxos`.
    pub fn protocol(&self) -> &'static str {
        match self {
            Payload::Raft(_) => "raft",
            Payload::Paxos(_) => "paxos",
        }
    }

    /// A short name of the message for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Raft(m) => m.kind(),
            Payload::Paxos(m) => m.kind(),
        }
    }

    /// The message's fields for a trace line (no entries, no snapshot data).
    pub fn summary(&self) -> String {
        match self {
            Payload::Raft(m) => m.summary(),
            Payload::Paxos(m) => m.summary(),
        }
    }

    /// The sender's term (Raft) or the message's ballot (Paxos).
    pub fn term(&self) -> Term {
        match self {
            Payload::Raft(m) => m.term(),
            Payload::Paxos(m) => m.term(),
        }
    }

    /// Whether the message carries a chunk of a state-machine snapshot.
    pub fn is_snapshot(&self) -> bool {
        self.snapshot_chunk().is_some()
    }

    /// The snapshot chunk a Paxos Promise (part) carries, if any.
    pub fn promise_snapshot_chunk(&self) -> Option<&crate::snapshot_transfer::SnapshotChunk> {
        match self {
            Payload::Paxos(crate::paxos::message::PaxosMessage::Promise { snapshot, .. }) => {
                snapshot.as_ref()
            }
            _ => None,
        }
    }

    /// The snapshot chunk the message carries (an InstallSnapshot), if any.
    pub fn snapshot_chunk(&self) -> Option<&crate::snapshot_transfer::SnapshotChunk> {
        match self {
            Payload::Raft(crate::raft::message::RaftMessage::InstallSnapshot { chunk, .. })
            | Payload::Paxos(crate::paxos::message::PaxosMessage::InstallSnapshot {
                chunk, ..
            }) => Some(chunk),
            _ => None,
        }
    }
}

/// A node's role in its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Follower,
    /// Raft pre-vote: asking whether an election could win, term unchanged.
    PreCandidate,
    Candidate,
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        })
    }
}

/// Volatile state the runtime cares about: who leads, and whether we do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftState {
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
}

/// The outcome of a [`Consensus::read_index`] request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Linearizable from the moment the state machine applied `index`.
    Ready { ctx: u64, index: LogIndex },
    /// The read cannot be served here (leadership lost or never confirmed).
    Failed { ctx: u64, error: NotLeader },
}

/// The output of a core, drained by the runtime (see the module docs for the
/// order in which to handle the fields).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ready {
    /// Acknowledge with [`Consensus::persisted`] once the writes are durable.
    pub persist_id: u64,
    /// Replaces the stored snapshot and the whole stored log.
    pub snapshot: Option<Snapshot>,
    pub hard_state: Option<HardState>,
    /// Contiguous; truncate the stored log from `entries[0].index`, then append.
    pub entries: Vec<Entry>,
    /// Send only after the writes above are durable.
    pub messages: Vec<Message>,
    /// May be sent before the writes above are durable, while they are
    /// made so, and before `messages`: a leader's appends of its own
    /// entries (Raft thesis §10.2.1). Safe because the leader counts
    /// itself toward a commit only once `persisted` says its entries are
    /// durable, and because a core puts a message here only when the term
    /// (and vote) it carries are already durable: a restarted leader that
    /// lost the entries can never lead that term again to write others.
    pub early_messages: Vec<Message>,
    /// Apply in order (after installing `snapshot`).
    pub committed: Vec<Entry>,
    pub reads: Vec<ReadOutcome>,
    /// Set when role, term or leader changed since the last Ready.
    pub soft_state: Option<SoftState>,
}

impl Ready {
    /// Whether step 1 of the ordering rule has anything to write.
    pub fn must_persist(&self) -> bool {
        self.snapshot.is_some() || self.hard_state.is_some() || !self.entries.is_empty()
    }
}

/// A snapshot of a core's counters, for `status` and for tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub id: NodeId,
    pub group: GroupId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit_index: LogIndex,
    /// The last index handed to the runtime in `Ready::committed` (or the
    /// snapshot index): what the runtime has applied once it processed the Ready.
    pub applied_index: LogIndex,
    pub last_index: LogIndex,
    pub snapshot_index: LogIndex,
    /// Entries held in memory (after the snapshot).
    pub log_len: u64,
    /// The configuration in force at this node (Raft: the latest config
    /// entry in its log, committed or not; Paxos: see its module docs).
    pub membership: Membership,
    /// A membership change started by this leader (or seen in its log) is
    /// not finished yet: a new [`Consensus::change_membership`] is refused.
    pub membership_pending: bool,
}

impl Status {
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
}

/// Where a proposal landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub index: LogIndex,
    pub term: Term,
}

/// This node cannot take the request; `leader` is who to ask, if known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("not the leader (leader: {leader:?})")]
pub struct NotLeader {
    pub leader: Option<NodeId>,
}

/// A message refused by [`Consensus::step`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("message for group {got} reached group {expected}")]
    WrongGroup { expected: GroupId, got: GroupId },
    #[error("message for node {got} reached node {expected}")]
    WrongNode { expected: NodeId, got: NodeId },
    #[error("message from {from}, which is not a member of group {group}")]
    UnknownPeer { group: GroupId, from: NodeId },
    #[error("a {got} message reached a {expected} core")]
    WrongProtocol {
        expected: &'static str,
        got: &'static str,
    },
}

/// A refused membership change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    #[error("a membership change is already in progress")]
    InProgress,
    #[error("invalid membership: {0}")]
    Invalid(String),
    #[error("this core does not support membership changes")]
    Unsupported,
}

/// A snapshot the core cannot take.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot at {index} is beyond the applied index {applied}")]
    NotApplied { index: LogIndex, applied: LogIndex },
    #[error("snapshot at {index} is not after the current snapshot at {current}")]
    Stale { index: LogIndex, current: LogIndex },
}

/// A refused leadership transfer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    #[error("{0} is not a voter of this group")]
    UnknownTarget(NodeId),
}

/// A core's configuration: the same for every protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreConfig {
    pub id: NodeId,
    pub group: GroupId,
    /// Every voter of the group, this node included: the group's initial
    /// configuration, used only when [`Recovered`] holds no configuration
    /// (no snapshot, no config entry). Empty means "joining": the node was
    /// added to an existing group and waits, campaigning for nothing, until
    /// the group's leader sends it a log or snapshot that holds a
    /// configuration; until then it accepts messages from any peer.
    pub voters: Vec<NodeId>,
    /// Minimum election timeout; each election picks one in [t, 2t).
    pub election_timeout_ticks: u64,
    pub heartbeat_interval_ticks: u64,
    /// At most this many entries in one append message.
    pub max_batch_entries: usize,
    /// At most this many command bytes in one append message (beyond its
    /// first entry, which always goes): the message must fit the peer line
    /// limit however large the values ([`Entry::payload_bytes`]).
    pub max_batch_bytes: usize,
    /// At most this many append messages unacknowledged per follower (and
    /// as many snapshot chunks).
    pub max_inflight_appends: usize,
    /// At most this many snapshot bytes in one InstallSnapshot chunk: a
    /// snapshot of any size reaches a follower under the peer line limit.
    pub snapshot_chunk_bytes: usize,
    /// Raft §9.6: ask before disrupting the cluster with a higher term.
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum for an election timeout steps down.
    pub check_quorum: bool,
    /// Serve reads under a leader lease (needs bounded clock drift). Off by default.
    pub lease_reads: bool,
    /// Seeds the core's own randomness (election timeouts): a seeded core is
    /// deterministic.
    pub seed: u64,
    /// For a joining core whose node id may have been a member before
    /// (removed, wiped, added back): a log position (term, index) by which
    /// the configuration that removed the earlier incarnation was known
    /// committed: the [`Proposal`] of the [`Consensus::change_membership`]
    /// that added this node, or the (term, commit index) the node had when
    /// it retired after applying its removal. Until its log reaches the floor
    /// (compared as for an up-to-date log) the core counts itself in no
    /// configuration, whatever voters an old snapshot or entry names: it
    /// does not campaign, and it grants votes only to candidates whose log
    /// reaches the floor. None: a node that grants no vote until it learns
    /// a configuration, and then trusts it (right for an id never used
    /// before). See the Raft core's docs, "Re-used node ids". The runtime
    /// passes it at every start of the group, so it survives restarts.
    pub join_floor: Option<(Term, LogIndex)>,
    pub bugs: Vec<Bug>,
}

impl CoreConfig {
    /// A message from this core to `to` in its group.
    pub fn message(&self, to: NodeId, payload: Payload) -> Message {
        assert_ne!(to, self.id, "a core never messages itself");
        Message {
            group: self.group,
            from: self.id,
            to,
            payload,
        }
    }

    /// Defaults for a group: 150–300 ms elections, 50 ms heartbeats.
    pub fn new(id: NodeId, group: GroupId, voters: Vec<NodeId>) -> CoreConfig {
        CoreConfig {
            id,
            group,
            voters,
            election_timeout_ticks: 15,
            heartbeat_interval_ticks: 5,
            max_batch_entries: 64,
            max_batch_bytes: 1 << 20,
            max_inflight_appends: 4,
            snapshot_chunk_bytes: 1 << 20,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            seed: id.0,
            join_floor: None,
            bugs: Vec::new(),
        }
    }

    pub fn has_bug(&self, bug: Bug) -> bool {
        self.bugs.contains(&bug)
    }

    /// The checks every core makes of its configuration: this node among
    /// distinct voters (or no voters: joining), an election timeout of at
    /// least 2 ticks above a heartbeat of at least 1, and limits of at
    /// least 1. A core adds its own (Raft: lease reads need check-quorum;
    /// Paxos: ids that fit a ballot).
    pub fn check(&self) -> Result<(), ConfigError> {
        if !self.voters.is_empty() && !self.voters.contains(&self.id) {
            return Err(ConfigError::NotAVoter {
                id: self.id,
                voters: self.voters.clone(),
            });
        }
        let distinct: std::collections::BTreeSet<NodeId> = self.voters.iter().copied().collect();
        if distinct.len() != self.voters.len() {
            return Err(ConfigError::Invalid(format!(
                "voters {:?} repeat a node",
                self.voters
            )));
        }
        if self.election_timeout_ticks < 2 || self.heartbeat_interval_ticks == 0 {
            return Err(ConfigError::Invalid(
                "election timeout needs ≥ 2 ticks, heartbeat ≥ 1".into(),
            ));
        }
        if self.heartbeat_interval_ticks >= self.election_timeout_ticks {
            return Err(ConfigError::Invalid(
                "heartbeat interval must be below the election timeout".into(),
            ));
        }
        if self.max_batch_entries == 0
            || self.max_inflight_appends == 0
            || self.snapshot_chunk_bytes == 0
        {
            return Err(ConfigError::Invalid(
                "batch, inflight and snapshot chunk limits must be ≥ 1".into(),
            ));
        }
        Ok(())
    }

    /// An election timeout drawn from [t, 2t) ticks, t the configured
    /// minimum, from one pseudo-random value (both cores draw it so).
    pub fn randomized_timeout_ticks(&self, random: u64) -> u64 {
        let t = self.election_timeout_ticks;
        let ticks = t + random % t;
        assert!(ticks >= t, "randomized timeout below the minimum");
        assert!(
            ticks < 2 * t,
            "randomized timeout at or beyond twice the minimum"
        );
        ticks
    }
}

/// A bad [`CoreConfig`] or [`Recovered`] state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("node {id} is not among the voters {voters:?}")]
    NotAVoter { id: NodeId, voters: Vec<NodeId> },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("recovered state is inconsistent: {0}")]
    Recovered(String),
}

/// A consensus core for one group on one node. Object safe: the runtime may
/// hold a `Box<dyn Consensus>` and not know which protocol runs.
pub trait Consensus: Send {
    fn id(&self) -> NodeId;
    fn group(&self) -> GroupId;
    /// One tick of [`TICK_INTERVAL_MS`] passed.
    fn tick(&mut self);
    /// A message from a peer.
    fn step(&mut self, msg: Message) -> Result<(), StepError>;
    /// Replicate a command. Only the leader accepts.
    fn propose(&mut self, command: Vec<u8>) -> Result<Proposal, NotLeader>;
    /// Start a linearizable read; its outcome arrives in [`Ready::reads`].
    fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader>;
    /// Ask the leader to hand leadership to `to`.
    fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError>;
    /// Leader only: start moving the group to the voter set `voters`
    /// (sorted, distinct, non-empty). Raft: joint consensus, appending
    /// C_old,new, and C_new once C_old,new commits; Paxos: a reconfiguration
    /// entry. Returns where the first config entry landed. The change is
    /// done once an entry `ConfigChange(Membership::simple(voters))` shows up
    /// in [`Ready::committed`] (and `status().membership_pending` is false).
    /// New voters catch up by snapshot or log like any lagging follower; a
    /// leader that is not in `voters` steps down once the change is done.
    fn change_membership(&mut self, voters: Vec<NodeId>) -> Result<Proposal, MembershipError> {
        let _ = voters;
        Err(MembershipError::Unsupported)
    }
    /// The runtime snapshotted its state machine at applied index `index`.
    fn snapshot_taken(
        &mut self,
        index: LogIndex,
        data: Vec<u8>,
    ) -> Result<SnapshotMeta, SnapshotError>;
    /// Whether [`Consensus::ready`] has anything.
    fn has_ready(&self) -> bool;
    /// Take the pending output (see the ordering rule in the module docs).
    fn ready(&mut self) -> Ready;
    /// Every Ready with `persist_id` ≤ `persist_id` is durable.
    fn persisted(&mut self, persist_id: u64);
    fn status(&self) -> Status;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_plain_numbers() {
        let json = serde_json::to_string(&(NodeId(3), GroupId(7), LogIndex(9), Term(2)))
            .expect("ids serialize");
        assert_eq!(json, "[3,7,9,2]");
    }

    #[test]
    fn log_index_prev_saturates_at_zero() {
        assert_eq!(LogIndex(0).prev(), LogIndex(0));
        assert_eq!(LogIndex(5).prev(), LogIndex(4));
        assert_eq!(LogIndex(5).next(), LogIndex(6));
    }

    #[test]
    fn empty_ready_needs_no_persistence() {
        let mut rd = Ready::default();
        assert!(!rd.must_persist());
        rd.hard_state = Some(HardState::default());
        assert!(rd.must_persist());
    }
}

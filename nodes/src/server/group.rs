//! One consensus group on one node: core + storage + state machine.
//!
//! Drives the core by the contract of [`crate::consensus`], through the
//! ordering rule the simulator runs too ([`super::ordering`]): for each
//! Ready, send its early messages (a leader's appends), write its records
//! and hand their fsync to the WAL's sync thread, then apply committed
//! entries and answer the clients whose proposals they are, then answer
//! reads whose index is applied, then react to a leadership change (restart
//! lease timers). The Ready's `persisted` and its messages wait in order
//! ([`HeldReadys`]) until its write is durable:
//! the core thread keeps taking requests and messages meanwhile, and what
//! they write shares the next fsync. A Ready that installs a snapshot is
//! made durable on the core thread (after every earlier write).
//!
//! Client writes are matched to committed entries by (index, term) in a
//! [`PendingWrites`](super::pending_writes::PendingWrites) table, through
//! the request path the simulator runs too ([`GroupRequests`]): the entry
//! committed at the proposal's index with the proposal's term means it
//! happened; another term committed there
//! means it definitely did not (`not-leader`, definite); no answer by the
//! deadline means `timeout` (not definite). Nothing else settles a write:
//! not this node's own log dropping the entry, which other nodes may still
//! hold and commit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use serde_json::{json, Value};

use super::admin::AdminAnswer;
use super::applier::{Applier, Outcome};
use super::clock::NodeClock;
use super::compaction::{Compaction, CompactionPolicy, SnapshotStore};
use super::config::NodeConfig;
use super::group_status::{GroupStatus, RuntimeReport};
use super::ordering::{self, HeldReadys, Persist, Persisted, ReadySteps};
use super::removal::{Removal, Standing};
use super::requests::{self, GroupRequests, LandedWrite, Request};
use crate::bug::Bug;
use crate::consensus::{
    Consensus, Entry, EntryKind, GroupId, NodeId, NotLeader, ReadOutcome, Ready, Role, Snapshot,
    SoftState, Term,
};
use crate::protocol::{ErrorCode, Op, Reply};
use crate::storage::{GroupStorage, StorageError};
use crate::transport::Transport;

pub use super::reply_sink::ReplySink;

/// A request for this group, from a client connection.
#[derive(Debug)]
pub struct ClientOp {
    pub id: Option<u64>,
    pub op: Op,
    pub reply: ReplySink,
}

#[derive(Debug)]
struct PendingWrite {
    id: Option<u64>,
    reply: ReplySink,
}

impl LandedWrite for PendingWrite {}

#[derive(Debug)]
struct PendingRead {
    id: Option<u64>,
    key: String,
    reply: ReplySink,
    deadline: Instant,
}

/// The runtime of one group.
pub struct Group {
    id: GroupId,
    node: NodeId,
    core: Box<dyn Consensus>,
    storage: GroupStorage,
    /// The state machine, the applied index and the leader's lease timers
    /// (sans IO, shared with the simulator).
    applier: Applier,
    /// When to snapshot, counted from the last snapshot (shared with the
    /// simulator).
    compaction: Compaction,
    request_timeout: std::time::Duration,
    peers: BTreeMap<NodeId, SocketAddr>,
    bugs: Vec<Bug>,
    consensus_name: &'static str,

    /// Writes proposed and reads queued or issued, not yet answered (the
    /// request path and read batching shared with the simulator).
    requests: GroupRequests<PendingWrite, PendingRead>,
    /// Readys waiting for their write to be durable, oldest first.
    held: HeldReadys,

    role: Role,
    term: Term,
    leader: Option<NodeId>,
    clock: NodeClock,
    /// Whether the committed configurations applied leave this node out
    /// (the rule shared with the simulator; the host retires the group once
    /// [`Removal::has_left`]).
    removal: Removal,
}

impl Group {
    /// Open storage, restore the state machine, build the core.
    pub fn open(
        cfg: &NodeConfig,
        group: GroupId,
        clock: NodeClock,
        make_core: &dyn Fn(
            GroupId,
            crate::consensus::Recovered,
        ) -> Result<Box<dyn Consensus>, String>,
    ) -> Result<Group, String> {
        let (storage, recovered) =
            GroupStorage::open(&cfg.data_dir, group, cfg.has_bug(Bug::NoFsync))
                .map_err(|e| e.to_string())?;
        let applier = Applier::with_bugs(&cfg.bugs, recovered.snapshot.as_ref()).map_err(|e| {
            format!(
                "{}: the snapshot's state machine does not decode: {e}",
                storage.dir().join("snapshot").display()
            )
        })?;
        let applied = applier.applied();
        let core = make_core(group, recovered)?;
        let status = core.status();
        Ok(Group {
            id: group,
            node: cfg.id,
            core,
            storage,
            applier,
            compaction: Compaction::new(
                CompactionPolicy::every(cfg.snapshot_every_entries),
                applied,
            ),
            request_timeout: cfg.request_timeout,
            peers: cfg.peers.clone(),
            bugs: cfg.bugs.clone(),
            consensus_name: cfg.consensus.name(),
            requests: GroupRequests::default(),
            held: HeldReadys::new(),
            role: status.role,
            term: status.term,
            leader: status.leader,
            clock,
            removal: Removal::default(),
        })
    }

    pub fn id(&self) -> GroupId {
        self.id
    }

    fn addr_of(&self, node: Option<NodeId>) -> Option<String> {
        node.and_then(|n| self.peers.get(&n)).map(|a| a.to_string())
    }

    /// `not-leader`, with the leader as a hint only if it is still in the
    /// group's configuration: a leader that was just removed (and hands
    /// over, or left) can only send the client back here.
    fn not_leader(&self, id: Option<u64>, e: NotLeader) -> Reply {
        let membership = self.core.status().membership;
        let hint = requests::leader_hint(e, self.leader, self.node, &membership);
        Reply::not_leader(id, self.addr_of(hint))
    }

    pub fn step(&mut self, msg: crate::consensus::Message) {
        if let Err(e) = self.core.step(msg) {
            tracing::warn!(group = %self.id, error = %e, "peer message refused");
        }
    }

    pub fn tick(&mut self, clock: &NodeClock) {
        self.core.tick();
        let core = &mut self.core;
        self.applier
            .fire_lease_timers(clock.now_ms(), |cmd| core.propose(cmd).is_ok());
    }

    /// Take a client request for this group: a read joins the next
    /// ReadIndex batch; a command is proposed (what each op is:
    /// [`requests::route`]).
    pub fn handle(&mut self, req: ClientOp, now: Instant) {
        let ClientOp { id, op, reply } = req;
        let deadline = now + self.request_timeout;
        let command = match requests::route(op, id, &self.applier) {
            Request::Read { key } => {
                self.requests.queue_read(PendingRead {
                    id,
                    key,
                    reply,
                    deadline,
                });
                return;
            }
            Request::Status => {
                let _ = reply.send(self.status_reply(id));
                return;
            }
            Request::TransferLeader { to } => {
                let answer =
                    AdminAnswer::transfer_leader(&mut *self.core, to, self.leader, self.node);
                let _ = reply.send(answer.reply(id, |node| self.addr_of(Some(node))));
                return;
            }
            Request::Answered(answer) => {
                let _ = reply.send(answer);
                return;
            }
            Request::Propose(command) => command,
        };
        let write = PendingWrite { id, reply };
        if let Err((write, e)) = self
            .requests
            .propose(&mut *self.core, &command, deadline, write)
        {
            let _ = write.reply.send(self.not_leader(id, e));
        }
    }

    /// Issue one `read_index` for every read received since the last call.
    pub fn flush_reads(&mut self) {
        if let Err((batch, e)) = self.requests.flush_reads(&mut *self.core) {
            for r in batch {
                let _ = r.reply.send(self.not_leader(r.id, e));
            }
        }
    }

    /// Whether the core has output.
    pub fn has_ready(&self) -> bool {
        self.core.has_ready()
    }

    /// Tell the WAL's sync thread whom to wake after each fsync.
    pub fn set_waker(&mut self, waker: crate::storage::syncer::Waker) {
        self.storage.set_waker(waker);
    }

    /// Handle every pending Ready by the ordering rule, and release the
    /// held ones whose write became durable. Never waits for an fsync
    /// (but to install a snapshot or compact the log).
    pub fn drive(&mut self, transport: &Transport, clock: &NodeClock) -> Result<(), StorageError> {
        loop {
            self.release_durable(transport)?;
            while self.core.has_ready() {
                let rd = self.core.ready();
                self.handle_ready(rd, transport, clock)?;
                self.release_durable(transport)?;
            }
            if !self.maybe_compact()? {
                return Ok(());
            }
        }
    }

    /// Acknowledge and send every held Ready whose write is durable, in order.
    fn release_durable(&mut self, transport: &Transport) -> Result<(), StorageError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let durable = self.storage.durable()?;
        for r in self.held.release_through(durable) {
            self.release(r.persist_id, r.messages, transport);
        }
        Ok(())
    }

    /// Block until every held Ready is durable, then release them all.
    pub fn wait_writes(&mut self, transport: &Transport) -> Result<(), StorageError> {
        if !self.held.is_empty() {
            self.storage.wait_durable()?;
            self.release_durable(transport)?;
        }
        assert!(self.held.is_empty(), "every write handed out is durable");
        Ok(())
    }

    /// One Ready, by the ordering rule ([`ordering::process`]).
    fn handle_ready(
        &mut self,
        rd: Ready,
        transport: &Transport,
        clock: &NodeClock,
    ) -> Result<(), StorageError> {
        let staged = self.storage.hard_state();
        ordering::process(
            rd,
            staged,
            &mut NodeSteps {
                group: self,
                transport,
                clock,
            },
        )
    }

    /// Steps 1 and 2: stage the Ready's records; its acknowledgement and
    /// messages go out once they are durable ([`HeldReadys`]), or at once
    /// when nothing needs a sync and nothing earlier is still syncing.
    fn persist(
        &mut self,
        persist: Persist,
        ready: Persisted,
        transport: &Transport,
    ) -> Result<(), StorageError> {
        let Persisted {
            persist_id,
            snapshot,
            hard_state,
            entries,
            messages,
        } = ready;
        if snapshot.is_some() {
            // Rare: the snapshot file is renamed into place once its WAL
            // record is durable, so this write is made durable here, after
            // every earlier one.
            self.wait_writes(transport)?;
            self.storage
                .stage(snapshot.as_ref(), hard_state, &entries)?;
            self.storage.sync()?;
            self.release(persist_id, messages, transport);
            return Ok(());
        }
        if persist != Persist::Nothing {
            self.storage.stage(None, hard_state, &entries)?;
        }
        if persist == Persist::Sync {
            let seq = self.storage.start_sync()?;
            self.held.hold(seq, persist_id, messages);
        } else if let Some(r) = self.held.after_the_held(persist_id, messages) {
            self.release(r.persist_id, r.messages, transport);
        }
        Ok(())
    }

    /// Apply one committed entry and answer the writes proposed at its
    /// index ([`GroupRequests::apply`]).
    fn apply_committed(&mut self, entry: Entry, clock: &NodeClock) {
        let applied = self
            .requests
            .apply(&mut self.applier, &entry, clock.now_ms());
        if let Outcome::Undecodable(err) = &applied.outcome {
            tracing::error!(group = %self.id, index = entry.index.0, error = %err, "committed entry is not a command; skipped");
        }
        if let EntryKind::ConfigChange(m) = &entry.kind {
            if self.removal.applied(self.node, entry.index, m) == Standing::Changed {
                let removed = self.removal.is_removed();
                tracing::info!(group = %self.id, voters = ?m.voters, removed, "committed configuration applied");
            }
        }
        if let Some(p) = applied.ours {
            let _ = p.reply.send(requests::outcome_reply(p.id, applied.outcome));
        }
        for p in applied.lost {
            // Another term's entry committed at the index: ours never will.
            let _ = p
                .reply
                .send(self.not_leader(p.id, NotLeader { leader: None }));
        }
    }

    /// ReadIndex rounds ended: failed reads are answered `not-leader`,
    /// reads whose index is applied are answered from the state machine.
    fn reads_ended(&mut self, outcomes: Vec<ReadOutcome>) {
        let ended = self.requests.reads_ended(outcomes, self.applier.applied());
        for (batch, error) in ended.failed {
            for p in batch {
                let _ = p.reply.send(self.not_leader(p.id, error));
            }
        }
        for p in ended.answerable {
            let _ = p
                .reply
                .send(Reply::ok(p.id).with("value", self.applier.read(&p.key)));
        }
    }

    /// The core's role, term or leader changed: a new leader starts the
    /// lease timers, a node that stops leading drops them.
    fn role_changed(&mut self, soft_state: SoftState, clock: &NodeClock) {
        self.role = soft_state.role;
        self.term = soft_state.term;
        self.leader = soft_state.leader;
        let core = &mut self.core;
        self.applier
            .role_changed(&soft_state, clock.now_ms(), |cmd| core.propose(cmd).is_ok());
        tracing::info!(group = %self.id, role = %soft_state.role, term = soft_state.term.0, leader = ?soft_state.leader.map(|l| l.0), "role changed");
    }

    /// A Ready's write is durable: acknowledge it, then send its messages.
    fn release(
        &mut self,
        persist_id: u64,
        messages: Vec<crate::consensus::Message>,
        transport: &Transport,
    ) {
        self.core.persisted(persist_id);
        for m in messages {
            transport.send(m);
        }
    }

    fn install_snapshot(&mut self, snap: &Snapshot) -> Result<(), StorageError> {
        // A snapshot we cannot read: continuing would diverge; stop the node.
        self.applier.restore(snap).map_err(|e| {
            StorageError::Contract(format!(
                "group {}: snapshot at {} does not decode: {e}",
                self.id, snap.meta.index
            ))
        })?;
        self.compaction.installed(snap.meta.index);
        tracing::info!(group = %self.id, index = snap.meta.index.0, bytes = snap.data.len(), "installed a snapshot from the leader");
        // Proposals the snapshot covers: we cannot tell whether they were ours.
        for p in self.requests.snapshot_installed(snap.meta.index) {
            let _ = p.reply.send(Reply::error(p.id, ErrorCode::Timeout));
        }
        Ok(())
    }

    /// Answer requests whose deadline passed with `timeout` (not definite).
    pub fn expire_requests(&mut self, now: Instant) {
        for p in self.requests.expired_writes(now) {
            let _ = p.reply.send(Reply::error(p.id, ErrorCode::Timeout));
        }
        // Reads change nothing: a late read is safely answered `timeout` too.
        for p in self.requests.late_reads(|p| p.deadline <= now) {
            let _ = p.reply.send(Reply::error(p.id, ErrorCode::Timeout));
        }
    }

    /// Everything still waiting gets `shutting-down` (not definite).
    pub fn shut_down(&mut self) {
        let (writes, reads) = self.requests.take_all();
        for p in writes {
            let _ = p.reply.send(Reply::error(p.id, ErrorCode::ShuttingDown));
        }
        for p in reads {
            let _ = p.reply.send(Reply::error(p.id, ErrorCode::ShuttingDown));
        }
    }

    /// Whether this node has left the group: the configurations applied
    /// and the core's latest one agree ([`Removal::has_left`]).
    pub fn has_left(&self) -> bool {
        self.removal.has_left(self.node, &self.core.status())
    }

    /// The highest term (ballot) this node has seen in the group.
    pub fn term(&self) -> crate::consensus::Term {
        self.core.status().term
    }

    /// Whether this node leads the group (by the core's own account).
    pub fn is_leader(&self) -> bool {
        self.core.status().is_leader()
    }

    /// The core's status.
    pub fn core_status(&self) -> crate::consensus::Status {
        self.core.status()
    }

    /// Leader only: snapshot the state machine at the applied index (so
    /// that new voters, whose logs are empty, get InstallSnapshot), then
    /// start moving the group to `voters` (sorted, distinct).
    pub fn change_membership(
        &mut self,
        voters: Vec<NodeId>,
    ) -> Result<Result<crate::consensus::Proposal, crate::consensus::MembershipError>, StorageError>
    {
        let status = self.core.status();
        if !status.is_leader() {
            return Ok(Err(NotLeader {
                leader: status.leader,
            }
            .into()));
        }
        if status.membership_pending {
            return Ok(Err(crate::consensus::MembershipError::InProgress));
        }
        if self.compaction.behind(self.applier.applied()) {
            self.take_snapshot()?;
        }
        Ok(self.core.change_membership(voters))
    }

    /// The `not-leader` reply for this group (leader's address if known).
    pub fn not_leader_reply(&self, id: Option<u64>, e: NotLeader) -> Reply {
        self.not_leader(id, e)
    }

    /// Compact if enough entries were applied since the last snapshot;
    /// whether it did (the rewrite made every held write durable).
    fn maybe_compact(&mut self) -> Result<bool, StorageError> {
        if !self.compaction.due(self.applier.applied()) {
            return Ok(false);
        }
        self.take_snapshot()?;
        Ok(true)
    }

    /// Snapshot the state machine at the applied index and compact the log.
    fn take_snapshot(&mut self) -> Result<(), StorageError> {
        let taken = self
            .compaction
            .take(&mut *self.core, &self.applier, &mut self.storage)?;
        match taken {
            Ok(_) => {
                tracing::info!(group = %self.id, index = self.applier.applied().0, "snapshot taken; log compacted");
            }
            Err(e) => {
                tracing::warn!(group = %self.id, error = %e, "snapshot refused by the core");
            }
        }
        Ok(())
    }

    /// The no-fsync bug's lazy writer.
    pub fn flush_lazily(&mut self, now: Instant) -> Result<(), StorageError> {
        self.storage.flush_lazily(now)
    }

    /// The reply to `status` ([`AdminAnswer::Status`]).
    pub fn status_reply(&self, id: Option<u64>) -> Reply {
        AdminAnswer::Status(Box::new(self.status())).reply(id, |node| self.addr_of(Some(node)))
    }

    /// This group's entry in the `groups` reply.
    pub fn groups_entry(&self) -> Value {
        let s = self.core.status();
        let joining = s.membership.voters.is_empty() && s.membership.outgoing.is_empty();
        json!({
            "group": self.id.0,
            "role": s.role.to_string(),
            "term": s.term.0,
            "leader": s.leader.map(|l| l.0),
            "leader_addr": self.addr_of(s.leader),
            "voters": s.membership.voters.iter().map(|n| n.0).collect::<Vec<_>>(),
            "outgoing": s.membership.outgoing.iter().map(|n| n.0).collect::<Vec<_>>(),
            "pending": s.membership_pending,
            "applied_index": self.applier.applied().0,
            "commit_index": s.commit_index.0,
            "joining": joining,
            "retiring": self.removal.is_removed(),
        })
    }

    /// This group's status ([`GroupStatus`]): the core's, the applier's
    /// and what the WAL and the clock report.
    pub fn status(&self) -> GroupStatus {
        let runtime = RuntimeReport {
            consensus: self.consensus_name,
            stored_snapshot_index: self.storage.snapshot_index(),
            wal_bytes: Some(self.storage.wal_bytes()),
            clock_offset_ms: self.clock.offset_ms(),
            clock_rate: self.clock.rate(),
            bugs: self.bugs.iter().map(|b| b.name()).collect(),
        };
        GroupStatus::new(&self.core.status(), &self.applier, runtime)
    }
}

/// The node's way of carrying out each step of the ordering rule.
struct NodeSteps<'a> {
    group: &'a mut Group,
    transport: &'a Transport,
    clock: &'a NodeClock,
}

impl ReadySteps for NodeSteps<'_> {
    type Error = StorageError;

    fn send(&mut self, message: crate::consensus::Message) {
        self.transport.send(message);
    }

    fn persist(&mut self, persist: Persist, ready: Persisted) -> Result<(), StorageError> {
        self.group.persist(persist, ready, self.transport)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.group.install_snapshot(snapshot)
    }

    fn apply(&mut self, entry: Entry) -> Result<(), StorageError> {
        self.group.apply_committed(entry, self.clock);
        Ok(())
    }

    fn reads(&mut self, reads: Vec<ReadOutcome>) {
        self.group.reads_ended(reads);
    }

    fn role_changed(&mut self, soft_state: SoftState) {
        self.group.role_changed(soft_state, self.clock);
    }
}

/// The node's WAL directory keeps its snapshots.
impl SnapshotStore for GroupStorage {
    type Error = StorageError;

    fn compact(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        GroupStorage::compact(self, &snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{
        Entry, HardState, LogIndex, Proposal, SnapshotError, SnapshotMeta, Status, StepError,
        TransferError,
    };
    use crate::server::reply_sink::OwedReply;
    use crate::state::Command;
    use crate::storage::GroupStorage;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    /// A scripted core: proposals get consecutive indexes in `term`; the
    /// test pushes the Readys it wants the runtime to handle.
    #[derive(Default)]
    struct Script {
        term: u64,
        next_index: u64,
        readys: VecDeque<Ready>,
        reads: Vec<u64>,
        persisted: Vec<u64>,
        /// Set: a follower of this leader, with `voters` as its configuration.
        follower_of: Option<NodeId>,
        voters: Vec<NodeId>,
        /// Set: the transport's captured queue, whose length `persisted`
        /// records in `queued_at_persisted` (what was sent before it).
        outbox: Option<Arc<Mutex<CapturedMessages>>>,
        queued_at_persisted: Vec<usize>,
    }

    type CapturedMessages =
        tokio::sync::mpsc::Receiver<(tokio::time::Instant, crate::consensus::Message)>;

    struct FakeCore(Arc<Mutex<Script>>);

    impl Consensus for FakeCore {
        fn id(&self) -> NodeId {
            NodeId(1)
        }
        fn group(&self) -> GroupId {
            GroupId(0)
        }
        fn tick(&mut self) {}
        fn step(&mut self, _msg: crate::consensus::Message) -> Result<(), StepError> {
            Ok(())
        }
        fn propose(&mut self, _command: Vec<u8>) -> Result<Proposal, NotLeader> {
            let mut s = self.0.lock().expect("script");
            if let Some(leader) = s.follower_of {
                return Err(NotLeader {
                    leader: Some(leader),
                });
            }
            s.next_index += 1;
            Ok(Proposal {
                index: LogIndex(s.next_index),
                term: Term(s.term),
            })
        }
        fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
            self.0.lock().expect("script").reads.push(ctx);
            Ok(())
        }
        fn transfer_leader(&mut self, _to: NodeId) -> Result<(), TransferError> {
            Ok(())
        }
        fn snapshot_taken(
            &mut self,
            index: LogIndex,
            _data: Vec<u8>,
        ) -> Result<SnapshotMeta, SnapshotError> {
            Ok(SnapshotMeta {
                index,
                term: Term(1),
                voters: vec![NodeId(1)],
                outgoing: Vec::new(),
            })
        }
        fn has_ready(&self) -> bool {
            !self.0.lock().expect("script").readys.is_empty()
        }
        fn ready(&mut self) -> Ready {
            self.0
                .lock()
                .expect("script")
                .readys
                .pop_front()
                .unwrap_or_default()
        }
        fn persisted(&mut self, persist_id: u64) {
            let mut s = self.0.lock().expect("script");
            s.persisted.push(persist_id);
            if let Some(outbox) = s.outbox.clone() {
                let queued = outbox.lock().expect("outbox").len();
                s.queued_at_persisted.push(queued);
            }
        }
        fn status(&self) -> Status {
            let s = self.0.lock().expect("script");
            let voters = if s.voters.is_empty() {
                vec![NodeId(1)]
            } else {
                s.voters.clone()
            };
            Status {
                id: NodeId(1),
                group: GroupId(0),
                role: if s.follower_of.is_some() {
                    Role::Follower
                } else {
                    Role::Leader
                },
                term: Term(s.term),
                leader: Some(s.follower_of.unwrap_or(NodeId(1))),
                commit_index: LogIndex(0),
                applied_index: LogIndex(0),
                last_index: LogIndex(0),
                snapshot_index: LogIndex(0),
                log_len: 0,
                membership: crate::consensus::Membership::simple(voters),
                membership_pending: false,
            }
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        data_dir: std::path::PathBuf,
        script: Arc<Mutex<Script>>,
        group: Group,
        transport: Transport,
        clock: NodeClock,
        replies: tokio::sync::mpsc::UnboundedReceiver<OwedReply>,
        sink: tokio::sync::mpsc::UnboundedSender<OwedReply>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_path_buf();
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let peers = (1..=3)
            .map(|n| (NodeId(n), SocketAddr::from(([127, 0, 0, n as u8], 1))))
            .collect();
        let cfg = NodeConfig::new(NodeId(1), addr, peers, data_dir.clone());
        let script = Arc::new(Mutex::new(Script {
            term: 2,
            ..Script::default()
        }));
        let s2 = script.clone();
        let clock = NodeClock::new();
        let group = Group::open(&cfg, GroupId(0), clock.clone(), &move |_, _| {
            Ok(Box::new(FakeCore(s2.clone())))
        })
        .expect("open");
        let transport = Transport::start(
            NodeId(1),
            addr.ip(),
            BTreeMap::new(),
            None,
            None,
            Default::default(),
        );
        let (sink, replies) = tokio::sync::mpsc::unbounded_channel();
        Fixture {
            _dir: dir,
            data_dir,
            script,
            group,
            transport,
            clock,
            replies,
            sink,
        }
    }

    impl Fixture {
        fn request(&mut self, id: u64, op: Op) {
            let req = ClientOp {
                id: Some(id),
                op,
                reply: ReplySink::new(self.sink.clone()),
            };
            self.group.handle(req, Instant::now());
            self.group.flush_reads();
        }
        fn push(&mut self, rd: Ready) {
            self.script.lock().expect("script").readys.push_back(rd);
            self.group
                .drive(&self.transport, &self.clock)
                .expect("drive");
            // Wait for the sync thread, then take what its release unblocked.
            self.group.wait_writes(&self.transport).expect("fsync");
            self.group
                .drive(&self.transport, &self.clock)
                .expect("drive");
        }
        fn reply(&mut self) -> Option<Reply> {
            self.replies.try_recv().ok().map(|o| o.reply)
        }
    }

    fn normal(index: u64, term: u64, cmd: Command) -> Entry {
        Entry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Normal(cmd.encode()),
        }
    }

    fn write(key: &str, v: i64) -> Command {
        Command::Write {
            key: key.into(),
            value: json!(v),
        }
    }

    fn timeout_now(to: u64) -> crate::consensus::Message {
        crate::consensus::Message {
            group: GroupId(0),
            from: NodeId(1),
            to: NodeId(to),
            payload: crate::consensus::Payload::Raft(
                crate::raft::message::RaftMessage::TimeoutNow { term: Term(2) },
            ),
        }
    }

    /// The ordering rule and its one exception: a Ready's early messages
    /// (a leader's appends) go out before its write is durable, its other
    /// messages only after `persisted`.
    #[test]
    fn early_messages_leave_before_the_write_and_the_others_after_persisted() {
        let mut f = fixture();
        let (transport, outbox) = Transport::capture(&[NodeId(2), NodeId(3)]);
        let outbox = Arc::new(Mutex::new(outbox));
        f.transport = transport;
        f.script.lock().expect("script").outbox = Some(outbox.clone());
        f.push(Ready {
            persist_id: 1,
            entries: vec![normal(1, 2, write("x", 1))],
            early_messages: vec![timeout_now(2), timeout_now(3)],
            messages: vec![timeout_now(2)],
            ..Ready::default()
        });
        let script = f.script.lock().expect("script");
        assert_eq!(script.persisted, vec![1]);
        assert_eq!(
            script.queued_at_persisted,
            vec![2],
            "the early messages, and only they, were sent before persisted"
        );
        assert_eq!(outbox.lock().expect("outbox").len(), 3, "then the rest");
    }

    /// The ordering rule with the fsync off the core thread: while a
    /// Ready's write is not durable, neither it nor a later Ready is
    /// acknowledged or sends a message (not even one with nothing to
    /// write); once the sync thread reports, all go, in order. Meanwhile
    /// committed entries are applied and answered (a quorum holds them).
    #[test]
    fn held_readys_are_acknowledged_and_sent_in_order_only_once_their_write_is_durable() {
        let mut f = fixture();
        let (transport, outbox) = Transport::capture(&[NodeId(2), NodeId(3)]);
        let outbox = Arc::new(Mutex::new(outbox));
        f.transport = transport;
        f.script.lock().expect("script").outbox = Some(outbox.clone());
        f.group.storage.pause_syncs(true).expect("pause");
        f.request(
            7,
            Op::Write {
                key: "x".into(),
                value: json!(1),
            },
        );
        {
            let mut s = f.script.lock().expect("script");
            s.readys.push_back(Ready {
                persist_id: 1,
                entries: vec![normal(1, 2, write("x", 1))],
                early_messages: vec![timeout_now(3)],
                messages: vec![timeout_now(2)],
                ..Ready::default()
            });
            s.readys.push_back(Ready {
                persist_id: 2,
                messages: vec![timeout_now(3)],
                ..Ready::default()
            });
            s.readys.push_back(Ready {
                persist_id: 3,
                entries: vec![normal(2, 2, write("y", 2))],
                messages: vec![timeout_now(2)],
                committed: vec![normal(1, 2, write("x", 1))],
                ..Ready::default()
            });
        }
        f.group.drive(&f.transport, &f.clock).expect("drive");
        assert!(
            f.script.lock().expect("script").persisted.is_empty(),
            "nothing is acknowledged before its write is durable"
        );
        let sent = |outbox: &Arc<Mutex<CapturedMessages>>| {
            let mut o = outbox.lock().expect("outbox");
            std::iter::from_fn(|| o.try_recv().ok().map(|(_, m)| m.to.0)).collect::<Vec<_>>()
        };
        assert_eq!(sent(&outbox), vec![3], "only the early message left");
        let r = f.reply().expect("the committed write is answered");
        assert_eq!((r.id, r.ok), (Some(7), true));
        f.group.storage.pause_syncs(false).expect("resume");
        f.group.wait_writes(&f.transport).expect("fsync");
        let script = f.script.lock().expect("script");
        assert_eq!(
            script.persisted,
            vec![2, 3],
            "the first held write acknowledges the Ready with nothing to write behind it"
        );
        assert_eq!(script.queued_at_persisted, vec![0, 2]);
        assert_eq!(sent(&outbox), vec![2, 3, 2], "in the Readys' order");
    }

    #[test]
    fn a_write_is_answered_only_when_its_entry_commits_with_its_term() {
        let mut f = fixture();
        f.request(
            1,
            Op::Write {
                key: "x".into(),
                value: json!(1),
            },
        );
        f.request(
            2,
            Op::Write {
                key: "y".into(),
                value: json!(2),
            },
        );
        assert!(f.reply().is_none(), "nothing is answered before commit");
        // Both entries are persisted; durable before `persisted` is called.
        f.push(Ready {
            persist_id: 1,
            hard_state: Some(HardState {
                term: Term(2),
                vote: Some(NodeId(1)),
                commit: LogIndex(0),
            }),
            entries: vec![normal(1, 2, write("x", 1)), normal(2, 2, write("y", 2))],
            ..Ready::default()
        });
        assert_eq!(f.script.lock().expect("script").persisted, vec![1]);
        let (_, rec) = GroupStorage::open(&f.data_dir, GroupId(0), false).expect("reopen");
        assert_eq!(
            rec.entries.len(),
            2,
            "entries were durable when persisted was called"
        );
        assert!(f.reply().is_none(), "persisted is not committed");
        // Index 1 commits with our term; index 2 with another leader's.
        f.push(Ready {
            persist_id: 2,
            committed: vec![normal(1, 2, write("x", 1)), normal(2, 3, write("y", 9))],
            ..Ready::default()
        });
        let r1 = f.reply().expect("reply 1");
        assert_eq!((r1.id, r1.ok), (Some(1), true));
        let r2 = f.reply().expect("reply 2");
        assert_eq!(r2.id, Some(2));
        assert_eq!(r2.error, Some(ErrorCode::NotLeader));
        assert_eq!(
            r2.definite,
            Some(true),
            "another term's entry at our index: definitely not ours"
        );
    }

    /// Regression (node_shards, Paxos): a follower named the leader the
    /// last configuration removed, and that node sent the client back.
    #[test]
    fn a_follower_hints_its_leader_only_while_the_configuration_holds_it() {
        let mut f = fixture();
        let write = |key: &str| Op::Write {
            key: key.into(),
            value: json!(1),
        };
        {
            let mut s = f.script.lock().expect("script");
            s.follower_of = Some(NodeId(2));
            s.voters = vec![NodeId(1), NodeId(2), NodeId(3)];
        }
        f.request(1, write("x"));
        let r = f.reply().expect("reply");
        assert_eq!(r.error, Some(ErrorCode::NotLeader));
        assert_eq!(r.leader(), Some("127.0.0.2:1"), "a voter leader is named");
        f.script.lock().expect("script").voters = vec![NodeId(1), NodeId(3)];
        f.request(2, write("y"));
        let r = f.reply().expect("reply");
        assert_eq!(r.error, Some(ErrorCode::NotLeader));
        assert_eq!(r.leader(), None, "a removed leader is not named: {r:?}");
    }

    #[test]
    fn a_read_waits_until_its_index_is_applied() {
        let mut f = fixture();
        f.request(
            1,
            Op::Write {
                key: "x".into(),
                value: json!(1),
            },
        );
        f.request(2, Op::Read { key: "x".into() });
        let ctx = *f
            .script
            .lock()
            .expect("script")
            .reads
            .first()
            .expect("read_index called");
        f.push(Ready {
            persist_id: 1,
            reads: vec![ReadOutcome::Ready {
                ctx,
                index: LogIndex(1),
            }],
            ..Ready::default()
        });
        assert!(f.reply().is_none(), "index 1 is not applied yet");
        f.push(Ready {
            persist_id: 2,
            committed: vec![normal(1, 2, write("x", 1))],
            ..Ready::default()
        });
        let replies: Vec<Reply> = std::iter::from_fn(|| f.reply()).collect();
        let read = replies
            .iter()
            .find(|r| r.id == Some(2))
            .expect("read answered");
        assert_eq!(read.value(), &json!(1), "the read sees the write before it");
    }

    #[test]
    fn unanswered_requests_time_out_as_not_definite() {
        let mut f = fixture();
        f.request(
            1,
            Op::Add {
                key: "c".into(),
                delta: 1,
            },
        );
        f.group
            .expire_requests(Instant::now() + std::time::Duration::from_secs(3600));
        let r = f.reply().expect("timeout reply");
        assert_eq!(r.error, Some(ErrorCode::Timeout));
        assert_eq!(r.definite, Some(false));
        // The entry may still commit later: it is applied, but nobody is answered twice.
        f.push(Ready {
            persist_id: 1,
            committed: vec![normal(
                1,
                2,
                Command::Add {
                    key: "c".into(),
                    delta: 1,
                },
            )],
            ..Ready::default()
        });
        assert!(f.reply().is_none());
        assert_eq!(f.group.applier.read("c"), json!(1));
    }

    /// Five nodes for finding 1 of issue 21: node 1 ("A") is the real
    /// runtime (this Group over a RaftNode and its WAL), nodes 2..5 ("B".."E")
    /// bare RaftNodes. Nothing is ticked unless a test says so; a message is
    /// delivered only if the current `allow` filter lets it through.
    struct FiveNodes {
        _dir: tempfile::TempDir,
        a: Group,
        a_out: tokio::sync::mpsc::Receiver<(tokio::time::Instant, crate::consensus::Message)>,
        transport: Transport,
        clock: NodeClock,
        others: BTreeMap<NodeId, crate::raft::RaftNode>,
        committed: BTreeMap<NodeId, Vec<Entry>>,
        allow: Box<dyn Fn(&crate::consensus::Message) -> bool>,
        sink: tokio::sync::mpsc::UnboundedSender<OwedReply>,
        replies: tokio::sync::mpsc::UnboundedReceiver<OwedReply>,
    }

    /// Pre-vote as shipped; check-quorum off, so that a follower that is not
    /// ticked still votes (leader stickiness is a liveness aid, not safety).
    fn five_node_core(id: u64) -> crate::consensus::CoreConfig {
        let mut cfg = crate::consensus::CoreConfig::new(
            NodeId(id),
            GroupId(0),
            (1..=5).map(NodeId).collect(),
        );
        cfg.check_quorum = false;
        cfg.seed = id * 7919;
        cfg
    }

    fn five_nodes() -> FiveNodes {
        let dir = tempfile::tempdir().expect("tempdir");
        let peers: BTreeMap<NodeId, SocketAddr> = (1..=5)
            .map(|n| {
                let addr: SocketAddr = format!("127.0.0.{n}:1").parse().expect("addr");
                (NodeId(n), addr)
            })
            .collect();
        let cfg = NodeConfig::new(NodeId(1), peers[&NodeId(1)], peers, dir.path().into());
        let clock = NodeClock::new();
        let a = Group::open(&cfg, GroupId(0), clock.clone(), &|_, rec| {
            crate::raft::RaftNode::new(five_node_core(1), rec)
                .map(|n| Box::new(n) as Box<dyn Consensus>)
                .map_err(|e| e.to_string())
        })
        .expect("open A");
        let (transport, a_out) = Transport::capture(&(2..=5).map(NodeId).collect::<Vec<_>>());
        let others = (2..=5)
            .map(|n| {
                let core = crate::raft::RaftNode::new(five_node_core(n), Default::default())
                    .expect("core");
                (NodeId(n), core)
            })
            .collect();
        let (sink, replies) = tokio::sync::mpsc::unbounded_channel();
        FiveNodes {
            _dir: dir,
            a,
            a_out,
            transport,
            clock,
            others,
            committed: BTreeMap::new(),
            allow: Box::new(|_| true),
            sink,
            replies,
        }
    }

    const A: u64 = 1;
    const B: u64 = 2;
    const C: u64 = 3;
    const D: u64 = 4;
    const E: u64 = 5;

    fn is_vote(m: &crate::consensus::Message) -> bool {
        matches!(
            m.payload.kind(),
            "pre-vote" | "request-vote" | "vote-response"
        )
    }

    /// Whether `m` goes between `x` and one of `ys`, either way.
    fn between(m: &crate::consensus::Message, x: u64, ys: &[u64]) -> bool {
        let (from, to) = (m.from.0, m.to.0);
        (from == x && ys.contains(&to)) || (to == x && ys.contains(&from))
    }

    impl FiveNodes {
        /// Drain every Ready and deliver what `allow` lets through, until quiet.
        fn settle(&mut self) {
            loop {
                let mut queue = Vec::new();
                self.a
                    .drive(&self.transport, &self.clock)
                    .expect("A's storage");
                self.a.wait_writes(&self.transport).expect("A's fsync");
                self.a
                    .drive(&self.transport, &self.clock)
                    .expect("A's storage");
                while let Ok((_, m)) = self.a_out.try_recv() {
                    queue.push(m);
                }
                for (id, core) in &mut self.others {
                    while core.has_ready() {
                        let rd = core.ready();
                        core.persisted(rd.persist_id);
                        self.committed.entry(*id).or_default().extend(rd.committed);
                        queue.extend(rd.early_messages);
                        queue.extend(rd.messages);
                    }
                }
                if queue.is_empty() {
                    return;
                }
                for m in queue.into_iter().filter(|m| (self.allow)(m)) {
                    match self.others.get_mut(&m.to) {
                        Some(core) => core.step(m).expect("valid message"),
                        None => self.a.step(m),
                    }
                }
            }
        }

        fn role(&self, id: u64) -> Role {
            match self.others.get(&NodeId(id)) {
                Some(core) => core.status().role,
                None => self.a.core_status().role,
            }
        }

        /// Tick only `id` until it leads (messages filtered by `allow`).
        fn elect(&mut self, id: u64) -> Term {
            for _ in 0..200 {
                match self.others.get_mut(&NodeId(id)) {
                    Some(core) => core.tick(),
                    None => self.a.tick(&self.clock),
                }
                self.settle();
                if self.role(id) == Role::Leader {
                    return match self.others.get(&NodeId(id)) {
                        Some(core) => core.status().term,
                        None => self.a.term(),
                    };
                }
            }
            panic!("node {id} did not win an election in 200 ticks");
        }

        /// A client writes `key`=`value` through A.
        fn write_at_a(&mut self, request: u64, key: &str, value: i64) {
            let op = ClientOp {
                id: Some(request),
                op: Op::Write {
                    key: key.into(),
                    value: json!(value),
                },
                reply: ReplySink::new(self.sink.clone()),
            };
            self.a.handle(op, Instant::now());
            self.settle();
        }

        fn replies(&mut self) -> BTreeMap<u64, Reply> {
            std::iter::from_fn(|| self.replies.try_recv().ok())
                .map(|o| (o.reply.id.expect("every request has an id"), o.reply))
                .collect()
        }
    }

    /// Regression (issue 21, finding 1): a leader that proposed again at an
    /// index it held a write for answered that write `not-leader` (definite)
    /// at once, though the write still sat on another node and committed there.
    #[test]
    fn a_write_overwritten_in_the_leaders_log_is_not_failed_while_another_node_can_commit_it() {
        let mut n = five_nodes();
        let t = n.elect(A);
        // A (term T) appends W1, W2, X; they reach only B.
        n.allow = Box::new(|m| between(m, A, &[B]));
        n.write_at_a(1, "w1", 1);
        n.write_at_a(2, "w2", 2);
        n.write_at_a(3, "x", 3);
        assert!(
            n.replies().is_empty(),
            "two of five hold the writes: nothing commits"
        );
        // C wins T+1 with D and E; its append reaches only A and truncates
        // W1..X there. Then C dies.
        n.allow = Box::new(|m| (is_vote(m) && between(m, C, &[D, E])) || between(m, C, &[A]));
        assert_eq!(n.elect(C), Term(t.0 + 1));
        assert_eq!(n.role(A), Role::Follower, "C's append reached A");
        // A wins T+2 with D and E; its appends reach nobody. Its next
        // proposal lands at X's index.
        n.allow = Box::new(|m| is_vote(m) && between(m, A, &[D, E]));
        assert_eq!(n.elect(A), Term(t.0 + 2));
        n.write_at_a(4, "y", 4);
        let early = n.replies();
        assert!(
            early.values().all(|r| !r.is_definite_failure()),
            "nothing committed at X's index yet, so no write may be failed: {early:?}"
        );
        // A dies. B wins T+3 with D and E and commits W1, W2 and X.
        n.allow = Box::new(|m| between(m, B, &[D, E]));
        assert!(n.elect(B) > Term(t.0 + 2));
        let x_committed = n.committed[&NodeId(B)].iter().any(|e| {
            e.term == t
                && matches!(&e.kind, EntryKind::Normal(d)
                    if Command::decode(d).ok() == Some(write("x", 3)))
        });
        assert!(x_committed, "B committed X (term T) with D and E");
        // A comes back and learns the commit: X is answered `ok` (it took
        // effect) and Y, proposed at X's index in T+2, definitely failed.
        n.allow = Box::new(|m| between(m, B, &[A, D, E]));
        let b_commit = n.others[&NodeId(B)].status().commit_index;
        for _ in 0..50 {
            n.others.get_mut(&NodeId(B)).expect("B").tick();
            n.settle();
        }
        assert!(
            n.a.core_status().applied_index >= b_commit,
            "A caught up with B"
        );
        let late = n.replies();
        for request in [1, 2, 3] {
            assert!(late[&request].ok, "write {request} committed: {late:?}");
        }
        assert_eq!(late[&4].error, Some(ErrorCode::NotLeader));
        assert!(
            late[&4].is_definite_failure(),
            "X holds Y's index: {late:?}"
        );
    }
}

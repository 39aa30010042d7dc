//! PaxosNode: the Multi-Paxos core of one group on one node, sans-IO.
//!
//! Implements [`Consensus`] (see [`crate::consensus`] for the contract and
//! [`super`] for how Paxos maps onto it). Every node is proposer, acceptor
//! and learner ("Paxos Made Moderately Complex"); a stable leader runs
//! phase 1 once for every unchosen slot and then only phase 2 ("Paxos Made
//! Live" §5.2's master). What it guarantees, given a runtime that follows
//! the contract (persist before send):
//! - at most one value is chosen per slot (P2c: phase 1 re-proposes, at the
//!   new ballot, the value of the highest ballot any promiser accepted, and
//!   fills slots nobody accepted with no-ops);
//! - an acceptor never accepts below a ballot it promised, and its promise
//!   and accepted values are durable before any reply that depends on them;
//! - learners (every node) apply the same value at every slot, in order;
//! - reads answered through [`Consensus::read_index`] are linearizable: the
//!   leader confirms with a quorum heartbeat round that no higher ballot
//!   was promised by a quorum after the read arrived, then answers at an
//!   index covering every value that could have been chosen before.
//!
//! Leader election: a node that has not heard from a leader for a
//! randomized timeout first asks (PrePrepare, like Raft's pre-vote) whether
//! a quorum would promise a higher ballot; acceptors that heard from a live
//! leader within an election timeout refuse (leader stickiness). Then it runs
//! phase 1 (Prepare/Promise). A leader that has not heard from a quorum for
//! an election timeout steps down (check-quorum). A Nack carrying a higher
//! ballot deposes a stale leader.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::bug::Bug;
use crate::consensus::{
    ConfigError, Consensus, CoreConfig, Entry, EntryKind, GroupId, HardState, LogIndex, Membership,
    MembershipError, Message, NodeId, NotLeader, Payload, Proposal, ReadOutcome, Ready, Recovered,
    Role, Snapshot, SnapshotError, SnapshotMeta, SoftState, Status, StepError, Term, TransferError,
};
use crate::election_timer::{in_lease, ElectionTimer};

use crate::quorum::Majority;
use crate::snapshot_transfer::{ChunkOutcome, SnapshotAssembly, SnapshotChunk, SnapshotSender};

use super::ballot::{Ballot, Stamp};
use super::log::PaxosLog;
use super::message::{PaxosMessage, Resume};

/// What the simulator's cross-node checks learn from a core: only durable
/// facts (recorded when the runtime acknowledges the write) and learned
/// values. Recorded only when [`PaxosNode::enable_journal`] was called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// The acceptor's promise of `ballot` is durable.
    Promised(Ballot),
    /// The acceptor durably accepted `entry` (its term is a [`Stamp`]).
    Accepted(Entry),
    /// The learner handed `entry` (term = origin ballot) to the state machine.
    Learned(Entry),
    /// The core started from empty durable state (a new or wiped node):
    /// it has no promise and no accepted value.
    Blank,
    /// The core's configuration is the seed ([`CoreConfig::voters`]): no
    /// configuration entry or snapshot in its durable state.
    Seeded(Vec<NodeId>),
}

/// The voters of a configuration entry.
fn config_of(e: &Entry) -> Option<&[NodeId]> {
    match &e.kind {
        EntryKind::ConfigChange(m) => Some(&m.voters),
        _ => None,
    }
}

fn same_voters(a: &[NodeId], b: &[NodeId]) -> bool {
    let a: BTreeSet<NodeId> = a.iter().copied().collect();
    let b: BTreeSet<NodeId> = b.iter().copied().collect();
    a == b
}

/// What a promiser told the candidate.
#[derive(Clone, Debug)]
struct PromiseData {
    commit: LogIndex,
    snapshot: Option<Snapshot>,
    /// The promiser's snapshot while its chunks arrive, one a part: a
    /// promise is not whole before its last chunk, and nothing of it is
    /// used before the promise is whole.
    assembly: Option<SnapshotAssembly>,
    entries: Vec<Entry>,
}

/// One part of a Promise, as it came.
struct PromisePart {
    commit: LogIndex,
    chunk: Option<SnapshotChunk>,
    entries: Vec<Entry>,
    resume: Option<Resume>,
    more: bool,
}

impl PromiseData {
    fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let first = self.entries.first()?.index;
        if index < first {
            return None;
        }
        self.entries.get((index.0 - first.0) as usize)
    }
    /// A new promise, from its first part's commit.
    fn new(commit: LogIndex) -> PromiseData {
        PromiseData {
            commit,
            snapshot: None,
            assembly: None,
            entries: Vec::new(),
        }
    }

    /// Where the next part of a promise in parts starts: the snapshot's
    /// next byte while it arrives, else the slot after the last entry
    /// reported so far.
    fn next_part(&self) -> Resume {
        match &self.assembly {
            Some(a) => Resume::Snapshot {
                index: a.index(),
                offset: a.held_bytes(),
            },
            None => Resume::Slot(self.entries.last().map_or(self.commit, |e| e.index).next()),
        }
    }

    /// Whether `part`, a first part, repeats this promise's: the same
    /// commit and a chunk of the same snapshot that we already hold.
    fn repeats(&self, part: &PromisePart) -> bool {
        let Some(chunk) = &part.chunk else {
            return false;
        };
        let held = match (&self.assembly, &self.snapshot) {
            (Some(a), _) => a.index() == chunk.meta.index && a.held_bytes() >= chunk.end(),
            (None, Some(s)) => s.meta.index == chunk.meta.index,
            (None, None) => false,
        };
        part.resume.is_none() && self.commit == part.commit && held
    }

    /// Take `part`, which continues this promise from `resume` (None: its
    /// first part): its snapshot chunk into the assembly, its entries after
    /// the snapshot. False: it does not continue the promise (a chunk
    /// refused, entries before the snapshot's end or not where asked);
    /// then what this holds is no longer the promise.
    fn take_part(&mut self, from: NodeId, term: Term, part: PromisePart) -> bool {
        let snapshot_whole = match (part.resume, part.chunk) {
            (Some(Resume::Slot(at)), None) => part.entries.first().is_none_or(|e| e.index == at),
            (None, None) => true,
            (Some(Resume::Slot(_)), Some(_)) | (Some(Resume::Snapshot { .. }), None) => {
                return false;
            }
            (resume, Some(chunk)) => {
                let expected = match resume {
                    Some(Resume::Snapshot { index, offset }) => (index, offset),
                    _ => (chunk.meta.index, 0),
                };
                if (chunk.meta.index, chunk.offset) != expected {
                    return false;
                }
                let (end, index) = (chunk.end(), chunk.meta.index);
                match SnapshotAssembly::take(&mut self.assembly, from, term, chunk) {
                    ChunkOutcome::Complete(snapshot) => {
                        self.snapshot = Some(snapshot);
                        part.entries.first().is_none_or(|e| e.index == index.next())
                    }
                    // Taken; the entries come with the last chunk.
                    ChunkOutcome::Partial { received } => {
                        received == end && part.entries.is_empty() && part.more
                    }
                    ChunkOutcome::Dropped(_) => false,
                }
            }
        };
        if !snapshot_whole {
            return false;
        }
        self.entries.extend(part.entries);
        true
    }

    fn last(&self) -> LogIndex {
        self.entries
            .last()
            .map(|e| e.index)
            .or(self.snapshot.as_ref().map(|s| s.meta.index))
            .unwrap_or(LogIndex(0))
            .max(self.commit)
    }
}

/// The leader's view of one peer.
#[derive(Clone, Debug)]
struct Peer {
    /// The next slot to send.
    next: LogIndex,
    /// Every slot up to here is chosen-and-known or durably accepted at our ballot there.
    agreed: LogIndex,
    /// Accept / snapshot messages not yet answered.
    inflight: usize,
    /// The tick of the last Accepted from this peer (or of the last resend).
    last_reply_tick: u64,
    /// The highest `agreed` a heartbeat reply reported (not durable-proof:
    /// used only to pick where to resend from).
    reported: LogIndex,
    /// Heard from since the last check-quorum.
    recent_active: bool,
    read_seq_acked: u64,
    /// The snapshot being sent in chunks, if the peer lacks compacted slots.
    snapshot: Option<SnapshotSender>,
    /// The tick of the last rewind of `next` on a reply (at most one a
    /// tick: the network duplicates replies, and a rewind on every copy
    /// resent the whole window once per copy, a storm that doubled as it went).
    rewound_tick: Option<u64>,
    /// Removed from every configuration the leader tracks: still told
    /// about commits until a heartbeat reply after `read_seq` shows it
    /// agreed up to `slot` (so it learned the configuration without it).
    departing: Option<(LogIndex, u64)>,
}

impl Peer {
    fn new(next: LogIndex, agreed: LogIndex, now_ticks: u64) -> Peer {
        Peer {
            next,
            agreed,
            inflight: 0,
            last_reply_tick: now_ticks,
            reported: agreed,
            recent_active: true,
            read_seq_acked: 0,
            snapshot: None,
            rewound_tick: None,
            departing: None,
        }
    }
}

/// How a node seeks leadership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Campaign {
    /// Ask whether acceptors would promise a higher ballot (PrePrepare),
    /// without raising anyone's promise: the pre-vote of Raft §9.6.
    PreBallot,
    /// Phase 1 at a new ballot.
    Ballot,
    /// Phase 1 at a new ballot that the leader asked for (TimeoutNow): the
    /// Prepare says so, letting it through acceptors' leader stickiness.
    Transfer,
}

/// A phase-1 round: promises at our ballot from a quorum of `voters`, the
/// configuration governing the first slot the round is for.
#[derive(Clone, Debug)]
struct Round {
    voters: Vec<NodeId>,
    transfer: bool,
    /// Whole promises: only these count towards the quorum.
    promises: BTreeMap<NodeId, PromiseData>,
    /// Promises whose acceptor said it holds more (`Promise::more`): the
    /// parts so far, completed by Prepares with `resume`.
    partial: BTreeMap<NodeId, PromiseData>,
    /// A chunk of a promiser's snapshot was taken since the last election
    /// timeout: a candidate keeps its ballot (a new one would start every
    /// transfer again) and asks again where each promise stopped.
    snapshot_progress: bool,
}

/// Phase 1's merge of the promises: the slots after our commit as we will
/// accept them, how far they are known chosen, and the last slot anyone
/// reported.
struct Merge {
    merged: Vec<Entry>,
    chosen_to: LogIndex,
    max_slot: LogIndex,
}

/// How a finished phase-1 round leaves the candidate or leader.
enum RoundEnd {
    /// The chosen prefix the promises revealed ends in another
    /// configuration: run phase 1 again in it.
    Again,
    /// Lead; phase 1 covers the slots up to this one (a configuration
    /// slot) or all slots (None).
    Lead(Option<LogIndex>),
}

#[derive(Clone, Debug)]
struct PendingRead {
    ctx: u64,
    index: LogIndex,
    seq: u64,
}

/// A Ready whose write the runtime has not yet acknowledged.
#[derive(Clone, Debug)]
struct Unpersisted {
    id: u64,
    promised: Option<Ballot>,
    /// The last slot written while leading at this ballot.
    leader_last: Option<(LogIndex, Ballot)>,
    observations: Vec<Observation>,
}

/// The Multi-Paxos core. Build with [`PaxosNode::new`], drive through [`Consensus`].
#[derive(Debug)]
pub struct PaxosNode {
    cfg: CoreConfig,
    election_timer: ElectionTimer,

    /// The highest ballot promised (persisted as `HardState::term`).
    promised: Ballot,
    /// The highest ballot heard of (volatile), to pick the next round.
    max_seen: Ballot,
    /// The highest promise known durable.
    durable_promised: Ballot,
    role: Role,
    leader: Option<NodeId>,
    log: PaxosLog,
    /// Acceptor: every slot in (commit, agreed] is accepted at `promised`.
    agreed: LogIndex,

    election_elapsed_ticks: u64,
    heartbeat_elapsed_ticks: u64,
    now_ticks: u64,
    /// Leader stickiness right after a restart: we may have promised a
    /// lease to a leader we no longer remember.
    fresh: bool,

    pre_ballot: Ballot,
    pre_votes: BTreeMap<NodeId, bool>,
    /// The phase-1 round in progress (a candidate's, or a leader's re-run
    /// in a new configuration).
    round: Option<Round>,
    /// The voters governing the first unchosen slot (commit + 1): the
    /// latest configuration in the chosen prefix, else the snapshot's, else
    /// the seed ([`CoreConfig::voters`]). Empty: not known yet (joining).
    known_config: Vec<NodeId>,
    /// A joining core (empty seed voters) that no chosen configuration
    /// *entry* has made a voter yet (a snapshot's voters do not count: an
    /// old snapshot may list a wiped node's old self): promise nothing
    /// (see the module docs, "a node wiped and added again").
    provisional: bool,
    /// Leader: phase 1 at our ballot covers the slots up to here only (a
    /// configuration slot phase 1 found unchosen; our own older values may
    /// follow it in the log). None: every slot.
    covered: Option<LogIndex>,

    peers: BTreeMap<NodeId, Peer>,
    /// Leader: our own slots up to here are durably accepted at our ballot.
    self_durable: LogIndex,
    /// Leader: the last slot phase 1 re-proposed; a read waits for it.
    recovery_end: LogIndex,
    read_seq: u64,
    pending_reads: VecDeque<PendingRead>,
    read_outcomes: Vec<ReadOutcome>,
    transferee: Option<NodeId>,
    transfer_elapsed_ticks: u64,

    /// Acceptor: the leader's snapshot being assembled from its chunks.
    incoming_snapshot: Option<SnapshotAssembly>,

    msgs: Vec<Message>,
    last_hard_state: HardState,
    last_soft_state: SoftState,
    next_persist_id: u64,
    unpersisted: VecDeque<Unpersisted>,
    /// Accepts made since the last Ready (journal only).
    fresh_accepts: Vec<Entry>,
    journal: Option<Vec<Observation>>,
    /// What the journal starts with (see [`Observation::Blank`], [`Observation::Seeded`]).
    startup: Vec<Observation>,
}

impl PaxosNode {
    /// A core from what storage made durable.
    pub fn new(cfg: CoreConfig, recovered: Recovered) -> Result<PaxosNode, ConfigError> {
        check_config(&cfg)?;
        let hs = recovered.hard_state;
        // (A joining core may start with a ballot floor as its promise.)
        let blank = hs.commit == LogIndex(0)
            && recovered.snapshot.is_none()
            && recovered.entries.is_empty()
            && cfg.voters.is_empty();
        let (promised, log) = recovered_log(recovered)?;
        let soft = SoftState {
            role: Role::Follower,
            term: promised.term(),
            leader: None,
        };
        let mut node = PaxosNode {
            election_timer: ElectionTimer::new(cfg.seed, 0x5DEE_CE66_D1CE_4E5B),
            cfg,
            promised,
            max_seen: promised,
            durable_promised: promised,
            role: Role::Follower,
            leader: None,
            agreed: log.commit(),
            log,
            election_elapsed_ticks: 0,
            heartbeat_elapsed_ticks: 0,
            now_ticks: 0,
            fresh: true,
            pre_ballot: Ballot::NONE,
            pre_votes: BTreeMap::new(),
            round: None,
            known_config: Vec::new(),
            provisional: false,
            covered: None,
            peers: BTreeMap::new(),
            self_durable: LogIndex(0),
            recovery_end: LogIndex(0),
            read_seq: 0,
            pending_reads: VecDeque::new(),
            read_outcomes: Vec::new(),
            transferee: None,
            transfer_elapsed_ticks: 0,
            incoming_snapshot: None,
            msgs: Vec::new(),
            last_hard_state: hs,
            last_soft_state: soft,
            next_persist_id: 0,
            unpersisted: VecDeque::new(),
            fresh_accepts: Vec::new(),
            journal: None,
            startup: Vec::new(),
        };
        node.last_hard_state.commit = node.log.commit();
        node.known_config = node.config_from_log(node.log.commit().next());
        let floor = node.join_floor();
        node.provisional = node.cfg.voters.is_empty()
            && node
                .log
                .config_before(node.log.commit().next())
                .is_none_or(|(k, v)| k < floor || !v.contains(&node.cfg.id));
        if blank {
            node.startup.push(Observation::Blank);
        }
        let seeded = node.log.snapshot_index() == LogIndex(0)
            && node
                .log
                .config_before(node.log.last_index().next())
                .is_none();
        if seeded && !node.cfg.voters.is_empty() {
            node.startup
                .push(Observation::Seeded(node.cfg.voters.clone()));
        }
        node.recompute_agreed();
        node.reset_randomized_timeout();
        node.check_invariants();
        Ok(node)
    }

    /// Record [`Observation`]s for the simulator's cross-node checks.
    pub fn enable_journal(&mut self) {
        self.journal = Some(std::mem::take(&mut self.startup));
    }

    /// The observations recorded since the last call.
    pub fn take_journal(&mut self) -> Vec<Observation> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    // ----- accessors for tests and the simulator -----

    pub fn promised(&self) -> Ballot {
        self.promised
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn log(&self) -> &PaxosLog {
        &self.log
    }
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// The configuration governing the first unchosen slot (empty: not known).
    pub fn known_config(&self) -> &[NodeId] {
        &self.known_config
    }

    /// The slot from which a joining core votes ([`CoreConfig::join_floor`];
    /// 0: no floor). Below it the core only learns values the leader
    /// knows chosen (see the module docs, rule 6).
    pub fn join_floor(&self) -> LogIndex {
        self.cfg.join_floor.map_or(LogIndex(0), |(_, index)| index)
    }

    /// Whether this node votes in [`PaxosNode::known_config`]: only then
    /// does it campaign.
    pub fn is_member(&self) -> bool {
        self.known_config.contains(&self.cfg.id)
    }

    /// The voters governing slot `s` by this log alone: the latest
    /// configuration entry before `s`, else the snapshot's voters, else
    /// (no snapshot) the seed. Empty: not known.
    fn config_from_log(&self, s: LogIndex) -> Vec<NodeId> {
        if let Some((_, v)) = self.log.config_before(s) {
            return v.to_vec();
        }
        if self.log.snapshot_index() > LogIndex(0) {
            self.log.snapshot().meta.voters.clone()
        } else {
            self.cfg.voters.clone()
        }
    }

    /// The first configuration entry after the chosen prefix: while there
    /// is one, no slot beyond it is proposed (α = 1) and no other change starts.
    fn pending_config(&self) -> Option<LogIndex> {
        let commit = self.log.commit();
        self.log
            .first_config_in(commit.next(), self.log.last_index())
            .map(|(i, _)| i)
    }

    /// Every configuration this node may need a quorum or an answer from:
    /// the one in force and those after the chosen prefix in its log.
    /// (A leader's own older values after the slot phase 1 covers are not in play.)
    fn configs_in_play(&self) -> Vec<&[NodeId]> {
        let mut out: Vec<&[NodeId]> = vec![self.known_config.as_slice()];
        let end = match (self.role, self.covered) {
            (Role::Leader, Some(c)) => c.min(self.log.last_index()),
            _ => self.log.last_index(),
        };
        let mut i = self.log.commit().next();
        while let Some((j, v)) = self.log.first_config_in(i, end) {
            out.push(v);
            i = j.next();
        }
        out
    }

    /// Whether `from` may ask this node for promises: a voter of a
    /// configuration in play (anyone while this node knows none).
    fn may_campaign_here(&self, from: NodeId) -> bool {
        self.known_config.is_empty() || self.configs_in_play().iter().any(|c| c.contains(&from))
    }

    /// Leader: the last slot it may send (α = 1: nothing beyond an
    /// unchosen configuration slot, nor beyond what phase 1 covered).
    fn send_limit(&self) -> LogIndex {
        let mut lim = self.log.last_index();
        if let Some(c) = self.covered {
            lim = lim.min(c);
        }
        if let Some(j) = self.pending_config() {
            lim = lim.min(j);
        }
        lim
    }

    /// Leader: proposals wait (a configuration slot is unchosen, or phase 1
    /// in a new configuration is not done).
    fn stalled(&self) -> bool {
        self.round.is_some() || self.covered.is_some() || self.pending_config().is_some()
    }

    /// The peers a leader sends to.
    fn peer_ids(&self) -> Vec<NodeId> {
        self.peers.keys().copied().collect()
    }

    /// Leader: every voter of a configuration in play (and of the round),
    /// but itself.
    fn wanted_peers(&self) -> BTreeSet<NodeId> {
        let mut w: BTreeSet<NodeId> = self
            .configs_in_play()
            .into_iter()
            .flatten()
            .copied()
            .collect();
        if let Some(r) = &self.round {
            w.extend(r.voters.iter().copied());
        }
        w.remove(&self.cfg.id);
        w
    }

    /// Leader: track every wanted peer; peers no configuration wants any
    /// more are kept, departing, until they know the commit that removed them.
    fn sync_peers(&mut self) {
        let wanted = self.wanted_peers();
        let (commit, seq, now) = (self.log.commit(), self.read_seq, self.now_ticks);
        for &w in &wanted {
            let pr = self
                .peers
                .entry(w)
                .or_insert_with(|| Peer::new(commit.next(), LogIndex(0), now));
            if pr.departing.is_some() {
                // Removed and added again: it may be a new, empty acceptor.
                *pr = Peer::new(commit.next(), LogIndex(0), now);
            }
        }
        for (id, pr) in self.peers.iter_mut() {
            if !wanted.contains(id) && pr.departing.is_none() {
                pr.departing = Some((commit, seq));
            }
        }
    }

    /// Learn that every slot ≤ `index` is chosen; the configuration in
    /// force follows the chosen prefix.
    fn advance_commit(&mut self, index: LogIndex) -> bool {
        let old = self.log.commit();
        if !self.log.commit_to(index) {
            return false;
        }
        let mut i = old.next();
        // Whether the configuration now in force comes from an entry at or
        // after the join floor (one below it may name this id's old self).
        let mut entry_config = false;
        let floor = self.join_floor();
        while let Some((j, v)) = self.log.first_config_in(i, index) {
            self.known_config = v.to_vec();
            entry_config = j >= floor;
            i = j.next();
        }
        if entry_config && self.is_member() {
            self.provisional = false;
        }
        true
    }

    fn reset_randomized_timeout(&mut self) {
        self.election_timer.reset(&self.cfg);
    }

    fn send(&mut self, to: NodeId, msg: PaxosMessage) {
        let message = self.cfg.message(to, Payload::Paxos(msg));
        self.msgs.push(message);
    }

    fn in_lease(&self) -> bool {
        let knows_leader = self.leader.is_some() || self.fresh;
        in_lease(&self.cfg, knows_leader, self.election_elapsed_ticks)
    }

    fn see(&mut self, b: Ballot) {
        self.max_seen = self.max_seen.max(b);
    }

    /// Promise `b` (> promised): accepted values at lower ballots stay, but
    /// no slot counts as agreed at `b` yet.
    fn promise(&mut self, b: Ballot) {
        assert!(
            b > self.promised,
            "promises only grow: {b} after {}",
            self.promised
        );
        self.promised = b;
        self.see(b);
        self.agreed = self.log.commit();
        self.recompute_agreed();
        // A snapshot is assembled only from the leader of the promised ballot.
        self.incoming_snapshot = None;
    }

    /// Extend `agreed` over slots accepted at the promised ballot.
    fn recompute_agreed(&mut self) {
        self.agreed = self.agreed.max(self.log.commit());
        while let Some(s) = self.log.stamp_at(self.agreed.next()) {
            if s.accepted != self.promised {
                break;
            }
            self.agreed = self.agreed.next();
        }
        assert!(
            self.agreed <= self.log.last_index(),
            "agreed within the log"
        );
    }

    fn learn_commit(&mut self, leader_commit: LogIndex) {
        let n = leader_commit.min(self.agreed);
        self.advance_commit(n);
    }

    // ----- role changes -----

    fn fail_reads(&mut self) {
        let error = NotLeader {
            leader: self.leader.filter(|&l| l != self.cfg.id),
        };
        for r in self.pending_reads.drain(..) {
            self.read_outcomes
                .push(ReadOutcome::Failed { ctx: r.ctx, error });
        }
    }

    fn become_follower(&mut self, leader: Option<NodeId>) {
        let was_leading = self.role == Role::Leader;
        self.role = Role::Follower;
        self.leader = leader;
        self.election_elapsed_ticks = 0;
        self.heartbeat_elapsed_ticks = 0;
        self.reset_randomized_timeout();
        self.pre_votes.clear();
        self.round = None;
        self.covered = None;
        self.peers.clear();
        self.transferee = None;
        if was_leading || !self.pending_reads.is_empty() {
            self.fail_reads();
        }
    }

    fn next_ballot(&self) -> Ballot {
        self.promised.max(self.max_seen).next_for(self.cfg.id)
    }

    fn campaign(&mut self, kind: Campaign) {
        assert_ne!(self.role, Role::Leader, "a leader does not campaign");
        assert!(self.is_member(), "only a voter campaigns");
        self.fail_reads();
        self.leader = None;
        self.election_elapsed_ticks = 0;
        self.reset_randomized_timeout();
        self.peers.clear();
        self.round = None;
        self.covered = None;
        if kind == Campaign::PreBallot {
            self.role = Role::PreCandidate;
            self.pre_ballot = self.next_ballot();
            self.pre_votes.clear();
            self.pre_votes.insert(self.cfg.id, true);
            let ballot = self.pre_ballot;
            for p in self.known_config.clone() {
                if p != self.cfg.id {
                    self.send(p, PaxosMessage::PrePrepare { ballot });
                }
            }
            self.tally_pre_votes();
        } else {
            let ballot = self.next_ballot();
            self.promise(ballot);
            self.role = Role::Candidate;
            self.start_round(kind == Campaign::Transfer);
        }
    }

    /// Phase 1 at our ballot in the configuration governing our first
    /// unchosen slot, for every slot after our commit.
    fn start_round(&mut self, transfer: bool) {
        assert!(
            self.is_member(),
            "a round runs in a configuration we vote in"
        );
        self.round = Some(Round {
            voters: self.known_config.clone(),
            transfer,
            promises: BTreeMap::new(),
            partial: BTreeMap::new(),
            snapshot_progress: false,
        });
        if self.role == Role::Leader {
            self.sync_peers();
        }
        self.send_prepares();
        // Our own promise counts once it is durable (see `persisted`).
        self.tally_round();
    }

    /// (Re)send the round's Prepare to every voter that has not promised
    /// (whole): from where its promise stopped if it sent part of one.
    fn send_prepares(&mut self) {
        let Some(r) = &self.round else {
            return;
        };
        let (ballot, commit, transfer) = (self.promised, self.log.commit(), r.transfer);
        let missing: Vec<(NodeId, Option<Resume>)> = r
            .voters
            .iter()
            .copied()
            .filter(|v| *v != self.cfg.id && !r.promises.contains_key(v))
            .map(|v| (v, r.partial.get(&v).map(PromiseData::next_part)))
            .collect();
        for (p, resume) in missing {
            self.send(
                p,
                PaxosMessage::Prepare {
                    ballot,
                    commit,
                    transfer,
                    resume,
                },
            );
        }
    }

    fn tally_pre_votes(&mut self) {
        let config = Majority::new(&self.known_config);
        let answered = |node: NodeId, granted: bool| self.pre_votes.get(&node) == Some(&granted);
        if config.agrees(|n| answered(n, true)) {
            self.campaign(Campaign::Ballot);
        } else if config.agrees(|n| answered(n, false)) {
            self.become_follower(None);
        }
    }

    fn tally_round(&mut self) {
        let Some(r) = &self.round else {
            return;
        };
        assert!(
            matches!(self.role, Role::Candidate | Role::Leader),
            "only a candidate or a leader runs phase 1"
        );
        // Our own acceptor is always part of the quorum: its accepted values
        // join the merge, so its promise must be durable first.
        let own_durable = self.durable_promised == self.promised && r.voters.contains(&self.cfg.id);
        let me = self.cfg.id;
        let promised = |v: NodeId| v == me || r.promises.contains_key(&v);
        if own_durable && Majority::new(&r.voters).agrees(promised) {
            self.finish_round();
        }
    }

    /// Phase 1 is complete in the round's configuration: merge the
    /// promises, take the chosen prefix they reveal, and re-propose (or
    /// fill with no-ops) the slots that configuration governs, up to the
    /// first configuration slot after the chosen prefix. Then lead, or run
    /// phase 1 again if the chosen prefix moved into another configuration.
    fn finish_round(&mut self) {
        let b = self.promised;
        assert_eq!(
            b.node(),
            self.cfg.id,
            "we run phase 1 only at our own ballot"
        );
        assert_eq!(self.durable_promised, b, "our own promise is durable");
        let round = self.round.take().expect("a round to finish");
        let promises = round.promises;
        self.restore_best_snapshot(&promises);
        let base = self.log.commit();
        let Merge {
            mut merged,
            chosen_to,
            max_slot,
        } = self.merge_promises(&promises, b, base);
        let (cut, end) = self.round_reach(&merged, chosen_to, max_slot, &round.voters);
        merged.truncate((cut.0 - base.0) as usize);
        if !merged.is_empty() {
            if self.journal.is_some() {
                self.fresh_accepts.extend(merged.iter().cloned());
            }
            self.log.overwrite(merged);
        }
        self.advance_commit(chosen_to);
        self.agreed = self.log.commit();
        self.recompute_agreed();
        assert_eq!(
            self.agreed, cut,
            "we accepted every slot this round decided"
        );
        match end {
            RoundEnd::Again => {
                if !self.is_member() {
                    // A configuration without us is chosen: not ours to lead.
                    self.become_follower(None);
                    return;
                }
                if self.role == Role::Leader {
                    self.covered = Some(self.log.commit());
                }
                self.start_round(round.transfer);
            }
            RoundEnd::Lead(covered) => {
                self.covered = covered;
                self.recovery_end = cut;
                if self.role == Role::Candidate {
                    self.become_leader(&promises);
                } else {
                    self.sync_peers();
                    for p in self.peer_ids() {
                        self.pump(p, true);
                    }
                    self.maybe_commit();
                }
            }
        }
    }

    /// Step 1 of finishing a round: a promiser's snapshot beyond what we
    /// know is chosen replaces our log's prefix.
    fn restore_best_snapshot(&mut self, promises: &BTreeMap<NodeId, PromiseData>) {
        let best = promises
            .values()
            .filter_map(|p| p.snapshot.as_ref())
            .filter(|s| s.meta.index > self.log.commit())
            .max_by_key(|s| s.meta.index);
        if let Some(s) = best {
            self.log.restore(s.clone());
            self.known_config = self.config_from_log(self.log.commit().next());
        }
    }

    /// Steps 2-4: every slot after `base`, stamped with ballot `b`: the
    /// chosen prefix as the promisers hold it, then P2c (the value of the
    /// highest ballot any promiser accepted), else a no-op.
    fn merge_promises(
        &self,
        promises: &BTreeMap<NodeId, PromiseData>,
        b: Ballot,
        base: LogIndex,
    ) -> Merge {
        // 2. The chosen prefix: every promiser's entries up to its commit are chosen.
        let chosen_to = promises
            .values()
            .map(|p| p.commit)
            .max()
            .unwrap_or(base)
            .max(base);
        let max_slot = promises
            .values()
            .map(PromiseData::last)
            .max()
            .unwrap_or(base)
            .max(self.log.last_index())
            .max(chosen_to);
        let mut merged = Vec::with_capacity((max_slot.0 - base.0) as usize);
        for i in base.0 + 1..=max_slot.0 {
            let index = LogIndex(i);
            let (origin, kind) = if index <= chosen_to {
                let e = promises
                    .values()
                    .filter(|p| p.commit >= index)
                    .find_map(|p| p.entry(index))
                    .expect(
                        "a promiser whose commit covers a slot after the best snapshot holds it",
                    );
                (Stamp::of(e.term).origin, e.kind.clone())
            } else {
                // 3. P2c: the value of the highest ballot any promiser accepted.
                let best = promises
                    .values()
                    .filter_map(|p| p.entry(index))
                    .chain(self.log.entry(index))
                    .max_by_key(|e| Stamp::of(e.term).accepted);
                match best {
                    Some(e) => (Stamp::of(e.term).origin, e.kind.clone()),
                    // 4. Nobody accepted anything here: fill the gap with a no-op.
                    None => (b, EntryKind::Noop),
                }
            };
            merged.push(Entry {
                index,
                term: Stamp::new(b, origin).term(),
                kind,
            });
        }
        Merge {
            merged,
            chosen_to,
            max_slot,
        }
    }

    /// Step 5: how far this round's quorum speaks for the slots, and what
    /// comes next: the chosen prefix always; beyond it only while the
    /// round's configuration governs, i.e. up to the first configuration
    /// slot. A chosen prefix in another configuration means phase 1 again.
    fn round_reach(
        &self,
        merged: &[Entry],
        chosen_to: LogIndex,
        max_slot: LogIndex,
        voters: &[NodeId],
    ) -> (LogIndex, RoundEnd) {
        let config_after_chosen = merged
            .iter()
            .take_while(|e| e.index <= chosen_to)
            .filter_map(config_of)
            .last()
            .map(<[NodeId]>::to_vec)
            .unwrap_or_else(|| self.known_config.clone());
        if !same_voters(&config_after_chosen, voters) {
            (chosen_to, RoundEnd::Again)
        } else {
            match merged
                .iter()
                .find(|e| e.index > chosen_to && config_of(e).is_some())
            {
                Some(e) => (e.index, RoundEnd::Lead(Some(e.index))),
                None => (max_slot, RoundEnd::Lead(None)),
            }
        }
    }

    /// Phase 1 is done: start phase 2 for every slot that may be unchosen.
    fn become_leader(&mut self, promises: &BTreeMap<NodeId, PromiseData>) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.self_durable = self.log.commit();
        self.election_elapsed_ticks = 0;
        self.heartbeat_elapsed_ticks = 0;
        self.transferee = None;
        let commit = self.log.commit();
        self.peers.clear();
        for p in self.wanted_peers() {
            let known = promises.get(&p).map(|d| d.commit.min(commit));
            let peer = match known {
                Some(c) => Peer::new(c.next(), c, self.now_ticks),
                None => Peer::new(commit.next(), LogIndex(0), self.now_ticks),
            };
            self.peers.insert(p, peer);
        }
        for p in self.peer_ids() {
            self.pump(p, true);
        }
        self.maybe_commit();
    }

    // ----- leader: phase 2 -----

    /// Send `to` what it lacks, pipelined up to the inflight limit; an
    /// empty Accept (a commit notification) only if `allow_empty`.
    fn pump(&mut self, to: NodeId, allow_empty: bool) {
        assert_eq!(self.role, Role::Leader, "only a leader sends accepts");
        let ballot = self.promised;
        let mut sent_any = false;
        loop {
            let snap_index = self.log.snapshot_index();
            let last = self.send_limit();
            let (next, inflight) = {
                let pr = &self.peers[&to];
                (pr.next, pr.inflight)
            };
            let shared = self.log.shared_snapshot();
            let pr = self.peers.get_mut(&to).expect("a peer of the group");
            if next <= snap_index || pr.snapshot.is_some() {
                // The slots it lacks were compacted away: send the snapshot
                // in chunks, paced by their own window; no Accept until the
                // acceptor took it (its Accepted ends the transfer).
                pr.snapshot
                    .get_or_insert_with(|| SnapshotSender::new(shared));
                self.send_snapshot_chunks(to);
                return;
            }
            if inflight >= self.cfg.max_inflight_appends {
                return;
            }
            if next > last {
                if allow_empty && !sent_any {
                    let commit = self.log.commit();
                    self.peers
                        .get_mut(&to)
                        .expect("a peer of the group")
                        .inflight += 1;
                    self.send(
                        to,
                        PaxosMessage::Accept {
                            ballot,
                            entries: Vec::new(),
                            commit,
                        },
                    );
                }
                return;
            }
            let max = self
                .cfg
                .max_batch_entries
                .min((last.0 - next.0 + 1) as usize);
            let entries: Vec<Entry> = self
                .log
                .batch(next, max, self.cfg.max_batch_bytes)
                .iter()
                .map(|e| Entry {
                    index: e.index,
                    term: Stamp::of(e.term).reaccepted(ballot).term(),
                    kind: e.kind.clone(),
                })
                .collect();
            assert!(!entries.is_empty(), "next ≤ last has entries");
            let end = entries.last().expect("non-empty").index;
            let pr = self.peers.get_mut(&to).expect("a peer of the group");
            pr.next = end.next();
            pr.inflight += 1;
            let commit = self.log.commit();
            self.send(
                to,
                PaxosMessage::Accept {
                    ballot,
                    entries,
                    commit,
                },
            );
            sent_any = true;
        }
    }

    /// Send `to` the next chunks of its snapshot transfer, as many as the
    /// window (`max_inflight_appends` unanswered chunks) lets through.
    fn send_snapshot_chunks(&mut self, to: NodeId) {
        let (chunk_bytes, window, ballot) = (
            self.cfg.snapshot_chunk_bytes,
            self.cfg.max_inflight_appends,
            self.promised,
        );
        while let Some(chunk) = self
            .peers
            .get_mut(&to)
            .and_then(|pr| pr.snapshot.as_mut())
            .and_then(|tx| tx.next_chunk(chunk_bytes, window))
        {
            self.send(to, PaxosMessage::InstallSnapshot { ballot, chunk });
        }
    }

    fn broadcast_heartbeat(&mut self) {
        self.read_seq += 1;
        let (ballot, commit, read_seq) = (self.promised, self.log.commit(), self.read_seq);
        for p in self.peer_ids() {
            self.send(
                p,
                PaxosMessage::Heartbeat {
                    ballot,
                    commit,
                    read_seq,
                },
            );
        }
    }

    /// How far a quorum of `voters` agreed, each capped at `cap` (our own
    /// acceptor counts its durable accepts).
    fn quorum_agreed(&self, voters: &[NodeId], cap: LogIndex) -> LogIndex {
        let agreed = |v: NodeId| {
            let a = if v == self.cfg.id {
                self.self_durable
            } else {
                self.peers.get(&v).map_or(LogIndex(0), |p| p.agreed)
            };
            a.min(cap)
        };
        Majority::new(voters)
            .committed(agreed)
            .expect("a configuration in play has voters")
    }

    /// Commit what quorums agreed on, slot range by slot range, each in the
    /// configuration governing it; then act on a newly chosen configuration.
    fn maybe_commit(&mut self) {
        assert_eq!(self.role, Role::Leader, "only a leader counts acceptors");
        let before = self.log.commit();
        loop {
            let limit = self.send_limit();
            let commit = self.log.commit();
            if limit <= commit || self.known_config.is_empty() {
                break;
            }
            let voters = self.known_config.clone();
            let n = self.quorum_agreed(&voters, limit);
            if n <= commit {
                break;
            }
            assert!(
                n <= self.log.last_index(),
                "a quorum agreed only on slots we proposed"
            );
            self.advance_commit(n);
        }
        if self.log.commit() > before {
            self.after_commit();
        }
        if self.role == Role::Leader {
            self.advance_reads();
        }
    }

    /// Leader: the chosen prefix moved. A configuration without us: hand
    /// over and step down. A configuration slot phase 1 found unchosen is
    /// now chosen: run phase 1 in the configuration it governs.
    fn after_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        if !self.is_member() {
            self.hand_over();
            return;
        }
        self.sync_peers();
        if self.round.is_none() && self.covered.is_some_and(|c| self.log.commit() >= c) {
            self.covered = Some(self.log.commit());
            self.start_round(true);
        }
    }

    /// A leader the chosen configuration removed: tell everyone the commit,
    /// ask the most caught-up new voter to campaign at once, step down.
    fn hand_over(&mut self) {
        assert_eq!(self.role, Role::Leader, "only a leader hands over");
        self.broadcast_heartbeat();
        let commit = self.log.commit();
        let target = self
            .known_config
            .iter()
            .filter_map(|v| self.peers.get(v).map(|p| (p.agreed, *v)))
            .filter(|(a, _)| *a >= commit)
            .max();
        if let Some((_, to)) = target {
            let ballot = self.promised;
            self.send(to, PaxosMessage::TimeoutNow { ballot, commit });
        }
        self.become_follower(None);
    }

    // ----- reads -----

    /// The highest read round that a quorum of every configuration in play
    /// acknowledged at our ballot.
    fn quorum_read_seq(&self) -> u64 {
        self.configs_in_play()
            .into_iter()
            .map(|voters| {
                let acked = |v: NodeId| {
                    if v == self.cfg.id {
                        self.read_seq
                    } else {
                        self.peers.get(&v).map_or(0, |p| p.read_seq_acked)
                    }
                };
                Majority::new(voters)
                    .committed(acked)
                    .expect("a configuration in play has voters")
            })
            .min()
            .expect("the configuration in force is in play")
    }

    fn advance_reads(&mut self) {
        let q = self.quorum_read_seq();
        while self
            .pending_reads
            .front()
            .is_some_and(|r| r.seq <= q && r.index <= self.log.commit())
        {
            let r = self.pending_reads.pop_front().expect("front exists");
            self.read_outcomes.push(ReadOutcome::Ready {
                ctx: r.ctx,
                index: r.index,
            });
        }
    }

    // ----- message handling -----

    /// A message from the leader of `b`: refuse it (Nack) below our
    /// promise, else follow `from`.
    fn heard_leader(&mut self, from: NodeId, b: Ballot) -> bool {
        if b.node() != from {
            // Malformed: a leader's ballot names the leader.
            return false;
        }
        if b < self.promised {
            let promised = self.promised;
            self.send(
                from,
                PaxosMessage::Nack {
                    ballot: b,
                    promised,
                },
            );
            return false;
        }
        let was = self.promised;
        if b > was {
            self.promise(b);
        }
        if self.role != Role::Follower || self.leader != Some(from) {
            assert!(
                self.role != Role::Leader || b > was,
                "two leaders at ballot {b}"
            );
            self.become_follower(Some(from));
        }
        self.election_elapsed_ticks = 0;
        self.fresh = false;
        true
    }

    /// One message: the ballot seen, then one handler per kind.
    fn handle(&mut self, from: NodeId, msg: PaxosMessage) {
        self.see(msg.ballot());
        match msg {
            PaxosMessage::PrePrepare { ballot } => self.handle_pre_prepare(from, ballot),
            PaxosMessage::PrePromise {
                ballot,
                granted,
                promised,
            } => self.handle_pre_promise(from, ballot, granted, promised),
            PaxosMessage::Prepare {
                ballot,
                commit,
                transfer,
                resume,
            } => self.handle_prepare(from, ballot, commit, transfer, resume),
            PaxosMessage::Promise {
                ballot,
                commit,
                snapshot,
                entries,
                resume,
                more,
            } => {
                let part = PromisePart {
                    commit,
                    chunk: snapshot,
                    entries,
                    resume,
                    more,
                };
                self.handle_promise(from, ballot, part);
            }
            PaxosMessage::Nack {
                ballot: _,
                promised,
            } => self.handle_nack(promised),
            PaxosMessage::Accept {
                ballot,
                entries,
                commit,
            } => {
                if self.heard_leader(from, ballot) {
                    self.handle_accept(from, ballot, entries, commit);
                }
            }
            PaxosMessage::Heartbeat {
                ballot,
                commit,
                read_seq,
            } => self.handle_heartbeat(from, ballot, commit, read_seq),
            PaxosMessage::InstallSnapshot { ballot, chunk } => {
                if self.heard_leader(from, ballot) {
                    self.handle_snapshot_chunk(from, ballot, chunk);
                }
            }
            PaxosMessage::InstallSnapshotReply {
                ballot,
                index,
                offset,
                received,
            } => self.handle_snapshot_reply(from, ballot, index, offset, received),
            PaxosMessage::TimeoutNow { ballot, commit } => {
                self.handle_timeout_now(from, ballot, commit)
            }
            PaxosMessage::Accepted { ballot, ok, agreed } => {
                if self.role == Role::Leader
                    && ballot == self.promised
                    && self.peers.contains_key(&from)
                {
                    self.handle_accepted(from, ok, agreed);
                }
            }
            PaxosMessage::HeartbeatReply {
                ballot,
                read_seq,
                agreed,
            } => self.handle_heartbeat_reply(from, ballot, read_seq, agreed),
        }
    }

    /// Pre-vote: would we promise `ballot`? (No while a leader's lease
    /// holds, nor to a node outside our configurations.)
    fn handle_pre_prepare(&mut self, from: NodeId, ballot: Ballot) {
        // A node outside our configurations (a removed one that
        // does not know it yet) gets no promise.
        let granted = ballot > self.promised
            && !self.in_lease()
            && !self.provisional
            && self.may_campaign_here(from);
        let promised = self.promised;
        self.send(
            from,
            PaxosMessage::PrePromise {
                ballot,
                granted,
                promised,
            },
        );
    }

    fn handle_pre_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        granted: bool,
        promised: Ballot,
    ) {
        self.see(promised);
        if self.role == Role::PreCandidate && ballot == self.pre_ballot {
            self.pre_votes.insert(from, granted);
            self.tally_pre_votes();
        }
    }

    /// Acceptor, phase 1: promise `ballot` (or refuse it with a Nack) and
    /// report what we accepted after `commit`, in parts from `resume`.
    fn handle_prepare(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        commit: LogIndex,
        transfer: bool,
        resume: Option<Resume>,
    ) {
        if ballot.node() != from || !self.may_campaign_here(from) || self.provisional {
            // (An empty joining acceptor may be a wiped voter added
            // back: its empty report could hide what its old self
            // accepted from a candidate that still counts it.)
            return;
        }
        if ballot < self.promised {
            let promised = self.promised;
            self.send(from, PaxosMessage::Nack { ballot, promised });
            return;
        }
        let fresh = ballot > self.promised;
        if fresh {
            if !transfer && self.in_lease() {
                // Leader stickiness: a live leader is not deposed.
                return;
            }
            self.promise(ballot);
            self.become_follower(None);
        }
        // (ballot == promised: a duplicate, or the rest of a promise
        // made in parts.)
        let promise = self.promise_part(ballot, commit, resume.filter(|_| !fresh));
        self.send(from, promise);
    }

    /// Someone promised a higher ballot: follow it.
    fn handle_nack(&mut self, promised: Ballot) {
        if promised > self.promised {
            self.promise(promised);
            self.become_follower(None);
        }
    }

    /// Acceptor: the leader's heartbeat carries its commit and a read round.
    fn handle_heartbeat(&mut self, from: NodeId, ballot: Ballot, commit: LogIndex, read_seq: u64) {
        if !self.heard_leader(from, ballot) {
            return;
        }
        self.learn_commit(commit);
        let agreed = self.agreed;
        self.send(
            from,
            PaxosMessage::HeartbeatReply {
                ballot,
                read_seq,
                agreed,
            },
        );
    }

    /// Leader: an acceptor's answer about a snapshot transfer.
    fn handle_snapshot_reply(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        index: LogIndex,
        offset: u64,
        received: u64,
    ) {
        if self.role != Role::Leader || ballot != self.promised {
            return;
        }
        let now = self.now_ticks;
        let Some(pr) = self.peers.get_mut(&from) else {
            return;
        };
        let Some(tx) = pr.snapshot.as_mut().filter(|tx| tx.index() == index) else {
            return; // an answer about a transfer that is over
        };
        tx.answered(offset, received, now);
        pr.recent_active = true;
        pr.last_reply_tick = now;
        self.send_snapshot_chunks(from);
    }

    /// The leader hands over to us (leadership transfer).
    fn handle_timeout_now(&mut self, from: NodeId, ballot: Ballot, commit: LogIndex) {
        if ballot.node() == from && ballot == self.promised && self.role != Role::Leader {
            // A leader handing over may have just chosen the
            // configuration that makes us a voter.
            self.learn_commit(commit);
            if self.is_member() && !self.provisional {
                self.campaign(Campaign::Transfer);
            }
        }
    }

    /// Leader: an acceptor's answer to a heartbeat (read rounds, what it
    /// holds, a stalled snapshot, a departing peer).
    fn handle_heartbeat_reply(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        read_seq: u64,
        agreed: LogIndex,
    ) {
        if self.role != Role::Leader || ballot != self.promised {
            return;
        }
        let last = self.log.last_index();
        let read_seq_now = self.read_seq;
        let Some(pr) = self.peers.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.read_seq_acked = pr.read_seq_acked.max(read_seq.min(read_seq_now));
        pr.reported = pr.reported.max(agreed.min(last));
        let stall_ticks = self.cfg.election_timeout_ticks;
        if let Some(tx) = pr.snapshot.as_mut() {
            // Chunks or the last answer were lost: go on from what
            // the acceptor confirmed holding (pump sends them).
            tx.resume_if_stalled(stall_ticks);
        }
        if pr.inflight == 0 && pr.next > agreed.min(last).max(pr.agreed).next() {
            // An idle leader still catches up a peer that lacks slots.
            pr.next = agreed.min(last).max(pr.agreed).next();
        }
        if pr
            .departing
            .is_some_and(|(slot, seq)| read_seq > seq && agreed >= slot)
        {
            // It learned the commit that removed it.
            self.peers.remove(&from);
            self.advance_reads();
            return;
        }
        self.advance_reads();
        self.pump(from, false);
    }

    /// The acceptor's Promise at `ballot` (promised) to a candidate whose
    /// commit is `commit`: its snapshot if it covers slots the candidate
    /// lacks, one chunk a part (`snapshot_chunk_bytes`), then its accepted
    /// values after that commit, at most `max_batch_entries` and
    /// `max_batch_bytes` of them (at least one), from `resume` for the rest
    /// of a promise made in parts; `more` if it holds more. Stateless: each
    /// part is cut where the candidate asks.
    fn promise_part(
        &self,
        ballot: Ballot,
        commit: LogIndex,
        resume: Option<Resume>,
    ) -> PaxosMessage {
        let snapshot = self.log.snapshot();
        let snapshot_index = snapshot.meta.index;
        // A resume that cannot continue (at or below what the candidate
        // knows chosen, slots we compacted, a snapshot we no longer hold)
        // is answered by a promise again from the start.
        let resume = resume.filter(|r| match *r {
            Resume::Slot(at) => at > commit.next() && at > snapshot_index,
            Resume::Snapshot { index, offset } => {
                index == snapshot_index
                    && index > commit
                    && offset > 0
                    && offset < snapshot.data.len() as u64
            }
        });
        let chunk_bytes = self.cfg.snapshot_chunk_bytes;
        let chunk = match resume {
            None => (snapshot_index > commit).then_some(0),
            Some(Resume::Snapshot { offset, .. }) => Some(offset),
            Some(Resume::Slot(_)) => None,
        }
        .map(|offset| {
            SnapshotChunk::cut(snapshot, offset, chunk_bytes)
                .expect("an offset within the snapshot")
        });
        let snapshot_pending = chunk.as_ref().is_some_and(|c| !c.done);
        let rest = match resume {
            // The entries follow the snapshot's last chunk.
            _ if snapshot_pending => &[][..],
            Some(Resume::Slot(at)) => self.log.entries_after(at.prev()),
            _ => self.log.entries_after(commit),
        };
        let n =
            crate::consensus::batch_len(rest, self.cfg.max_batch_entries, self.cfg.max_batch_bytes);
        PaxosMessage::Promise {
            ballot,
            commit: self.log.commit(),
            snapshot: chunk,
            entries: rest[..n].to_vec(),
            resume,
            more: snapshot_pending || n < rest.len(),
        }
    }

    /// A Promise (or a part of one) from `from`. A promise counts towards
    /// the round only whole: the parts are put together first (the
    /// snapshot's chunks in order, then the entries), each asked for at
    /// the same ballot from where the last one stopped. The first part's
    /// commit stands for the whole (a chosen slot's value never changes,
    /// so later parts report those slots as the first would have).
    fn handle_promise(&mut self, from: NodeId, ballot: Ballot, part: PromisePart) {
        if ballot != self.promised {
            return;
        }
        let term = ballot.term();
        let Some(r) = self.round.as_mut().filter(|r| r.voters.contains(&from)) else {
            return;
        };
        let (resume, more) = (part.resume, part.more);
        let mut data = match resume {
            None => {
                if more && r.promises.contains_key(&from) {
                    // A duplicate first part of a promise we hold whole.
                    return;
                }
                if r.partial.get(&from).is_some_and(|p| p.repeats(&part)) {
                    // A duplicate first part of the promise whose snapshot
                    // we are taking: starting over would only repeat it.
                    return;
                }
                PromiseData::new(part.commit)
            }
            Some(at) => {
                if r.partial.get(&from).is_none_or(|p| p.next_part() != at) {
                    // A duplicate or a stale part: keep what we have.
                    return;
                }
                r.partial.remove(&from).expect("just seen")
            }
        };
        let chunk_taken = part.chunk.is_some();
        if !data.take_part(from, term, part) {
            // Not a continuation: the parts so far are dropped, and the
            // Prepare's resend asks for the promise from the start.
            return;
        }
        if more {
            if data.assembly.is_none() && data.entries.is_empty() && !chunk_taken {
                return; // "more" with nothing in it: no progress, ignore
            }
            let at = data.next_part();
            r.snapshot_progress |= chunk_taken;
            r.promises.remove(&from);
            r.partial.insert(from, data);
            let (commit, transfer) = (self.log.commit(), r.transfer);
            self.send(
                from,
                PaxosMessage::Prepare {
                    ballot,
                    commit,
                    transfer,
                    resume: Some(at),
                },
            );
            return;
        }
        if data.assembly.is_some() || !self.promise_is_sound(ballot, &data) {
            // (A promise that says it is whole before its snapshot is.)
            return;
        }
        let r = self.round.as_mut().expect("checked above");
        r.partial.remove(&from);
        r.promises.insert(from, data);
        self.tally_round();
    }

    /// A whole promise at `ballot` is well formed (contiguous entries after
    /// its snapshot, each accepted below `ballot`), and holds every slot it
    /// claims chosen beyond what we know.
    fn promise_is_sound(&self, ballot: Ballot, p: &PromiseData) -> bool {
        let snapshot_index = p.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index);
        let well_formed = p
            .entries
            .windows(2)
            .all(|w| w[1].index == w[0].index.next())
            && p.entries.iter().all(|e| {
                let s = Stamp::of(e.term);
                s.accepted < ballot && s.origin <= s.accepted
            })
            && p.entries.first().is_none_or(|e| e.index > snapshot_index)
            && snapshot_index <= p.commit
            && p.snapshot.as_ref().is_none_or(|s| {
                s.meta
                    .voters
                    .iter()
                    .all(|v| v.0 >= 1 && v.0 <= Ballot::MAX_NODE)
            });
        let known = self.log.commit().max(snapshot_index);
        let covers = p.commit <= known
            || (p.entries.first().is_some_and(|e| e.index <= known.next())
                && p.entries.last().is_some_and(|e| e.index >= p.commit));
        well_formed && covers
    }

    /// Acceptor: a chunk of the leader's snapshot. A snapshot at or below
    /// what this node knows chosen is answered at once (`Accepted` with
    /// what it holds). Else the chunk joins the assembly of this leader's
    /// snapshot at this ballot ([`SnapshotAssembly`]: in order, restarted
    /// on a new snapshot, never larger than the snapshot); only the last
    /// chunk installs it, and its `Accepted` goes out in the Ready that
    /// carries the snapshot, so only once it is durable.
    fn handle_snapshot_chunk(&mut self, from: NodeId, ballot: Ballot, chunk: SnapshotChunk) {
        let ids_ok = chunk
            .meta
            .voters
            .iter()
            .all(|v| v.0 >= 1 && v.0 <= Ballot::MAX_NODE);
        let (index, offset) = (chunk.meta.index, chunk.offset);
        if !ids_ok || index <= self.log.commit() {
            self.incoming_snapshot = None;
        } else {
            let term = ballot.term();
            match SnapshotAssembly::take(&mut self.incoming_snapshot, from, term, chunk) {
                ChunkOutcome::Dropped(_) => return,
                ChunkOutcome::Partial { received } => {
                    self.send(
                        from,
                        PaxosMessage::InstallSnapshotReply {
                            ballot,
                            index,
                            offset,
                            received,
                        },
                    );
                    return;
                }
                ChunkOutcome::Complete(snapshot) => {
                    // Commit cannot have passed it: checked for this chunk.
                    self.log.restore(snapshot);
                    self.known_config = self.config_from_log(self.log.commit().next());
                    self.agreed = self.log.commit();
                    self.recompute_agreed();
                }
            }
        }
        let agreed = self.agreed;
        self.send(
            from,
            PaxosMessage::Accepted {
                ballot,
                ok: true,
                agreed,
            },
        );
    }

    fn handle_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        entries: Vec<Entry>,
        commit: LogIndex,
    ) {
        assert_eq!(ballot, self.promised, "accepting at the promised ballot");
        let mut refused = false;
        if let Some(first) = entries.first().map(|e| e.index) {
            if first > self.agreed.next() {
                // A gap: ask for the slots we lack.
                self.learn_commit(commit);
                let agreed = self.agreed;
                self.send(
                    from,
                    PaxosMessage::Accepted {
                        ballot,
                        ok: false,
                        agreed,
                    },
                );
                return;
            }
            let well_formed = entries.windows(2).all(|w| w[1].index == w[0].index.next())
                && entries.iter().all(|e| {
                    Stamp::of(e.term).accepted == ballot && Stamp::of(e.term).origin <= ballot
                });
            if !well_formed {
                return;
            }
            // Below its join floor an acceptor only learns what the leader
            // knows chosen; it never votes there (module docs, rule 6).
            let floor = self.join_floor();
            let mut entries = entries;
            if let Some(cut) = entries
                .iter()
                .position(|e| e.index < floor && e.index > commit)
            {
                entries.truncate(cut);
                refused = true;
            }
            for e in entries {
                if e.index <= self.log.commit() {
                    continue;
                }
                if self.log.term_at(e.index) == Some(e.term) {
                    continue;
                }
                if self.journal.is_some() {
                    self.fresh_accepts.push(e.clone());
                }
                self.log.put(e);
            }
            self.recompute_agreed();
        }
        self.learn_commit(commit);
        let agreed = self.agreed;
        self.send(
            from,
            PaxosMessage::Accepted {
                ballot,
                ok: !refused,
                agreed,
            },
        );
    }

    fn handle_accepted(&mut self, from: NodeId, ok: bool, agreed: LogIndex) {
        let last = self.log.last_index();
        let agreed = agreed.min(last);
        let pr = self.peers.get_mut(&from).expect("a peer of the group");
        pr.recent_active = true;
        pr.inflight = pr.inflight.saturating_sub(1);
        pr.last_reply_tick = self.now_ticks;
        let news = agreed > pr.agreed;
        if news {
            pr.agreed = agreed;
            pr.reported = pr.reported.max(agreed);
        }
        if !ok && agreed < pr.agreed {
            // The acceptor holds less than it once told us: a stale reply,
            // or a node wiped and added again. Resend from what it holds
            // (counting it low is safe; counting it high would loop forever
            // resending slots it cannot take).
            pr.agreed = agreed;
            pr.reported = pr.reported.min(agreed);
        }
        if (!ok || pr.inflight == 0)
            && pr.next > agreed.next().max(pr.agreed.next())
            && pr.rewound_tick != Some(self.now_ticks)
        {
            // It lacks slots we think we sent, and nothing in flight will
            // fill them (a peer a new leader never heard from starts at our
            // commit; it may hold less): resend from what it holds.
            pr.next = agreed.max(pr.agreed).next();
            pr.rewound_tick = Some(self.now_ticks);
        }
        if pr
            .snapshot
            .as_ref()
            .is_some_and(|tx| pr.agreed >= tx.index())
        {
            // The acceptor holds the snapshot (durably): the transfer is over.
            pr.snapshot = None;
        }
        if pr.next <= pr.agreed {
            pr.next = pr.agreed.next();
        }
        if news {
            self.maybe_commit();
            if self.role != Role::Leader || !self.peers.contains_key(&from) {
                // A configuration without us (or without it) was just chosen.
                return;
            }
        }
        if self.transferee == Some(from) && self.peers[&from].agreed == self.log.last_index() {
            let ballot = self.promised;
            let commit = self.log.commit();
            self.send(from, PaxosMessage::TimeoutNow { ballot, commit });
        }
        self.pump(from, false);
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed_ticks += 1;
        self.election_elapsed_ticks += 1;
        for pr in self.peers.values_mut() {
            if let Some(tx) = pr.snapshot.as_mut() {
                tx.tick();
            }
        }
        if self.transferee.is_some() {
            self.transfer_elapsed_ticks += 1;
            if self.transfer_elapsed_ticks >= self.cfg.election_timeout_ticks {
                self.transferee = None;
            }
        }
        if self.election_elapsed_ticks >= self.cfg.election_timeout_ticks {
            self.election_elapsed_ticks = 0;
            if self.cfg.check_quorum {
                let me = self.cfg.id;
                let active =
                    |v: NodeId| v == me || self.peers.get(&v).is_some_and(|p| p.recent_active);
                if !Majority::new(&self.known_config).agrees(active) {
                    self.become_follower(None);
                    return;
                }
                for pr in self.peers.values_mut() {
                    pr.recent_active = false;
                }
            }
        }
        if self.heartbeat_elapsed_ticks >= self.cfg.heartbeat_interval_ticks {
            self.heartbeat_elapsed_ticks = 0;
            self.broadcast_heartbeat();
            self.resend_stalled();
            self.send_prepares();
        }
    }

    /// Accepts in flight and no reply for two heartbeat intervals: some were
    /// lost. Resend from what the acceptor holds.
    fn resend_stalled(&mut self) {
        let stall_ticks = 2 * self.cfg.heartbeat_interval_ticks;
        let now = self.now_ticks;
        for p in self.peer_ids() {
            let pr = self.peers.get_mut(&p).expect("a peer of the group");
            if pr.inflight > 0 && pr.last_reply_tick + stall_ticks <= now {
                let holds = pr.agreed.max(pr.reported);
                if pr.next > holds.next() {
                    pr.next = holds.next();
                }
                pr.inflight = 0;
                pr.last_reply_tick = now;
                self.pump(p, false);
            }
        }
    }

    /// The core's invariants, as a description of the first broken one.
    pub fn invariants(&self) -> Result<(), String> {
        let fail = |what: String| Err(format!("{}: {what}", self.cfg.id));
        if self.role == Role::Leader {
            if self.leader != Some(self.cfg.id) {
                return fail("a leader knows it leads".into());
            }
            if self.promised.node() != self.cfg.id {
                return fail(format!("leads at another node's ballot {}", self.promised));
            }
            let wanted = self.wanted_peers();
            if let Some(w) = wanted.iter().find(|w| !self.peers.contains_key(w)) {
                return fail(format!("a leader tracks every voter in play, not {w}"));
            }
            if let Some((p, _)) = self
                .peers
                .iter()
                .find(|(p, pr)| !wanted.contains(p) && pr.departing.is_none())
            {
                return fail(format!("{p} is tracked but in no configuration in play"));
            }
            if !self.is_member() {
                return fail("a leader votes in the configuration in force".into());
            }
            let ours = self.covered.unwrap_or(self.log.last_index());
            if self.agreed != ours {
                return fail(format!(
                    "a leader accepted its log up to {ours} (covered {:?}): agreed {} last {}",
                    self.covered,
                    self.agreed,
                    self.log.last_index()
                ));
            }
            let pending = self.pending_config();
            match self.covered {
                Some(c) if c > self.log.commit() => {
                    if pending != Some(c) {
                        return fail(format!(
                            "phase 1 covers up to {c}, not the first configuration slot after the commit ({pending:?})"
                        ));
                    }
                }
                Some(_) => {}
                None => {
                    if let Some(j) = pending.filter(|j| *j < self.log.last_index()) {
                        return fail(format!(
                            "a leader proposed beyond the unchosen configuration slot {j}"
                        ));
                    }
                }
            }
        } else if !self.peers.is_empty() || !self.pending_reads.is_empty() {
            return fail("only a leader tracks peers and reads".into());
        }
        if self.role != Role::Leader && self.covered.is_some() {
            return fail("only a leader has a phase-1 cover".into());
        }
        if self.round.is_some() && !matches!(self.role, Role::Candidate | Role::Leader) {
            return fail("only a candidate or a leader runs phase 1".into());
        }
        if self.role == Role::Candidate && self.round.is_none() {
            return fail("a candidate runs a phase-1 round".into());
        }
        if self.role == Role::Candidate && self.promised.node() != self.cfg.id {
            return fail(format!(
                "a candidate runs its own ballot, not {}",
                self.promised
            ));
        }
        if self.durable_promised > self.promised {
            return fail("durable promise beyond the promise".into());
        }
        if self.agreed < self.log.commit() || self.agreed > self.log.last_index() {
            return fail(format!(
                "agreed {} outside [commit {}, last {}]",
                self.agreed,
                self.log.commit(),
                self.log.last_index()
            ));
        }
        for e in self.log.entries() {
            let s = Stamp::of(e.term);
            if s.accepted > self.promised {
                return fail(format!(
                    "slot {} accepted at {} beyond the promise {}",
                    e.index, s.accepted, self.promised
                ));
            }
            if s.origin > s.accepted {
                return fail(format!(
                    "slot {} has origin {} after its ballot {}",
                    e.index, s.origin, s.accepted
                ));
            }
        }
        let floor = self.join_floor();
        if self.log.last_index() > self.log.commit() && self.log.commit().next() < floor {
            return fail(format!(
                "holds slot {} below its join floor {floor} without knowing it chosen",
                self.log.commit().next()
            ));
        }
        for i in self.log.commit().0 + 1..=self.agreed.0 {
            if self.log.stamp_at(LogIndex(i)).map(|s| s.accepted) != Some(self.promised) {
                return fail(format!(
                    "slot {i} counted as agreed but not accepted at {}",
                    self.promised
                ));
            }
        }
        Ok(())
    }

    fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            if let Err(e) = self.invariants() {
                panic!("paxos invariant broken: {e}");
            }
        }
        assert!(
            self.agreed >= self.log.commit(),
            "agreed covers the chosen prefix"
        );
        assert!(
            self.max_seen >= self.promised,
            "we have seen what we promised"
        );
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.promised.term(),
            vote: None,
            commit: self.log.commit(),
        }
    }

    fn soft_state(&self) -> SoftState {
        SoftState {
            role: self.role,
            term: self.promised.term(),
            leader: self.leader,
        }
    }
}

impl Consensus for PaxosNode {
    fn id(&self) -> NodeId {
        self.cfg.id
    }

    fn group(&self) -> GroupId {
        self.cfg.group
    }

    fn tick(&mut self) {
        self.now_ticks += 1;
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.election_elapsed_ticks += 1;
            if self.election_elapsed_ticks >= self.cfg.election_timeout_ticks {
                self.fresh = false;
            }
            if self.election_elapsed_ticks >= self.election_timer.timeout_ticks() {
                if self.role == Role::Candidate
                    && self
                        .round
                        .as_mut()
                        .is_some_and(|r| std::mem::take(&mut r.snapshot_progress))
                {
                    // A promiser's snapshot is still arriving, chunk by
                    // chunk, and moved since the last timeout: keep the
                    // ballot (a new one would start every transfer again)
                    // and ask again where each promise stopped.
                    self.election_elapsed_ticks = 0;
                    self.send_prepares();
                } else if self.is_member() && !self.provisional {
                    let kind = if self.cfg.pre_vote {
                        Campaign::PreBallot
                    } else {
                        Campaign::Ballot
                    };
                    self.campaign(kind);
                } else {
                    // Not a voter of the configuration in force (joining,
                    // or removed): no initiative.
                    self.election_elapsed_ticks = 0;
                    self.reset_randomized_timeout();
                }
            }
        }
        self.check_invariants();
    }

    fn step(&mut self, msg: Message) -> Result<(), StepError> {
        if msg.group != self.cfg.group {
            return Err(StepError::WrongGroup {
                expected: self.cfg.group,
                got: msg.group,
            });
        }
        if msg.to != self.cfg.id {
            return Err(StepError::WrongNode {
                expected: self.cfg.id,
                got: msg.to,
            });
        }
        // Any node of the group may write to us (a new leader we do not
        // know as a voter yet, a removed node); campaign messages from
        // outside our configurations are ignored in `handle`.
        if msg.from == self.cfg.id || msg.from.0 == 0 || msg.from.0 > Ballot::MAX_NODE {
            return Err(StepError::UnknownPeer {
                group: self.cfg.group,
                from: msg.from,
            });
        }
        let Payload::Paxos(m) = msg.payload else {
            return Err(StepError::WrongProtocol {
                expected: "paxos",
                got: msg.payload.protocol(),
            });
        };
        self.handle(msg.from, m);
        self.check_invariants();
        Ok(())
    }

    fn propose(&mut self, command: Vec<u8>) -> Result<Proposal, NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        if self.transferee.is_some() {
            return Err(NotLeader { leader: None });
        }
        if self.stalled() {
            // α = 1: nothing goes beyond an unchosen configuration slot;
            // the client retries here in a moment.
            return Err(NotLeader {
                leader: Some(self.cfg.id),
            });
        }
        let b = self.promised;
        let index = self.log.last_index().next();
        let e = Entry {
            index,
            term: Stamp::new(b, b).term(),
            kind: EntryKind::Normal(command),
        };
        if self.journal.is_some() {
            self.fresh_accepts.push(e.clone());
        }
        self.log.put(e);
        self.agreed = index;
        for p in self.peer_ids() {
            self.pump(p, false);
        }
        Ok(Proposal {
            index,
            term: b.term(),
        })
    }

    fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        if self.cfg.has_bug(Bug::StaleRead) {
            // Planted bug: answer from local state with no leadership check.
            let index = self.log.applied();
            self.read_outcomes.push(ReadOutcome::Ready { ctx, index });
            return Ok(());
        }
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        if self.transferee.is_some() {
            return Err(NotLeader { leader: None });
        }
        if self.round.is_some() || self.covered.is_some() {
            // Values chosen in the next configuration may still be unknown
            // to us until phase 1 there is done.
            return Err(NotLeader {
                leader: Some(self.cfg.id),
            });
        }
        // Every value chosen before now is at or below this index: chosen
        // by an earlier ballot ⇒ re-proposed by our phase 1 (≤ recovery_end);
        // chosen by us ⇒ ≤ commit.
        let index = self.log.commit().max(self.recovery_end);
        if !self.peers.is_empty() {
            self.broadcast_heartbeat();
        }
        self.pending_reads.push_back(PendingRead {
            ctx,
            index,
            seq: self.read_seq,
        });
        self.advance_reads();
        Ok(())
    }

    fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            }
            .into());
        }
        if !self.known_config.contains(&to) {
            return Err(TransferError::UnknownTarget(to));
        }
        if to == self.cfg.id || self.transferee == Some(to) {
            return Ok(());
        }
        self.transferee = Some(to);
        self.transfer_elapsed_ticks = 0;
        self.fail_reads();
        if self.peers[&to].agreed == self.log.last_index() {
            let ballot = self.promised;
            let commit = self.log.commit();
            self.send(to, PaxosMessage::TimeoutNow { ballot, commit });
        } else {
            self.pump(to, true);
        }
        Ok(())
    }

    fn change_membership(&mut self, voters: Vec<NodeId>) -> Result<Proposal, MembershipError> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            }
            .into());
        }
        if voters.is_empty() {
            return Err(MembershipError::Invalid("no voters".into()));
        }
        if !voters.windows(2).all(|w| w[0] < w[1]) {
            return Err(MembershipError::Invalid(format!(
                "voters {voters:?} are not sorted and distinct"
            )));
        }
        if let Some(bad) = voters.iter().find(|v| v.0 == 0 || v.0 > Ballot::MAX_NODE) {
            return Err(MembershipError::Invalid(format!(
                "Paxos node ids are 1..={}; {bad} is not",
                Ballot::MAX_NODE
            )));
        }
        if self.stalled() {
            return Err(MembershipError::InProgress);
        }
        if self.transferee.is_some() {
            return Err(NotLeader { leader: None }.into());
        }
        // A fresh configuration slot: nothing was ever accepted at it or
        // beyond it below our ballot that could be chosen (see the module
        // docs), so no phase 1 in the new configuration is needed; we only
        // stall until it is chosen.
        let b = self.promised;
        let index = self.log.last_index().next();
        let e = Entry {
            index,
            term: Stamp::new(b, b).term(),
            kind: EntryKind::ConfigChange(Membership::simple(voters)),
        };
        if self.journal.is_some() {
            self.fresh_accepts.push(e.clone());
        }
        self.log.put(e);
        self.agreed = index;
        self.sync_peers();
        for p in self.peer_ids() {
            self.pump(p, false);
        }
        Ok(Proposal {
            index,
            term: b.term(),
        })
    }

    fn snapshot_taken(
        &mut self,
        index: LogIndex,
        data: Vec<u8>,
    ) -> Result<SnapshotMeta, SnapshotError> {
        if index > self.log.applied() {
            return Err(SnapshotError::NotApplied {
                index,
                applied: self.log.applied(),
            });
        }
        if index <= self.log.snapshot_index() {
            return Err(SnapshotError::Stale {
                index,
                current: self.log.snapshot_index(),
            });
        }
        // The configuration as of `index`: the one governing the slot after it.
        let voters = self.config_from_log(index.next());
        Ok(self.log.compact(index, data, voters))
    }

    fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || self.log.has_unstable()
            || self.log.has_committed()
            || !self.read_outcomes.is_empty()
            || self.hard_state() != self.last_hard_state
            || self.soft_state() != self.last_soft_state
    }

    fn ready(&mut self) -> Ready {
        let (snapshot, entries) = self.log.take_unstable();
        let hs = self.hard_state();
        let hard_state = (hs != self.last_hard_state).then_some(hs);
        let promised = (hs.term != self.last_hard_state.term).then_some(self.promised);
        self.last_hard_state = hs;
        let soft = self.soft_state();
        let soft_state = (soft != self.last_soft_state).then_some(soft);
        self.last_soft_state = soft;
        self.next_persist_id += 1;
        let id = self.next_persist_id;
        // Beyond `agreed` the Ready may rewrite our own older values (kept
        // after a configuration slot): those are not accepted at our ballot.
        let leader_last = match entries.last() {
            Some(e) if self.role == Role::Leader => Some((e.index.min(self.agreed), self.promised)),
            _ => None,
        };
        let mut observations = Vec::new();
        if self.journal.is_some() {
            if let Some(p) = promised {
                observations.push(Observation::Promised(p));
            }
            observations.extend(self.fresh_accepts.drain(..).map(Observation::Accepted));
        }
        if promised.is_some() || leader_last.is_some() || !observations.is_empty() {
            self.unpersisted.push_back(Unpersisted {
                id,
                promised,
                leader_last,
                observations,
            });
        }
        let committed = self.log.take_committed();
        if let Some(s) = &snapshot {
            assert!(
                committed.first().is_none_or(|e| e.index > s.meta.index),
                "no entry applied twice around a snapshot"
            );
        }
        if let Some(j) = self.journal.as_mut() {
            j.extend(committed.iter().cloned().map(Observation::Learned));
        }
        Ready {
            persist_id: id,
            snapshot,
            hard_state,
            entries,
            messages: std::mem::take(&mut self.msgs),
            early_messages: Vec::new(),
            committed,
            reads: std::mem::take(&mut self.read_outcomes),
            soft_state,
        }
    }

    fn persisted(&mut self, persist_id: u64) {
        assert!(
            persist_id <= self.next_persist_id,
            "persisted a Ready not yet taken"
        );
        while self.unpersisted.front().is_some_and(|u| u.id <= persist_id) {
            let u = self.unpersisted.pop_front().expect("front exists");
            if let Some(p) = u.promised {
                self.durable_promised = self.durable_promised.max(p);
            }
            if let Some((last, b)) = u.leader_last {
                if self.role == Role::Leader && b == self.promised {
                    self.self_durable = self.self_durable.max(last.min(self.log.last_index()));
                }
            }
            if let Some(j) = self.journal.as_mut() {
                j.extend(u.observations);
            }
        }
        match self.role {
            Role::Candidate => self.tally_round(),
            Role::Leader => {
                self.tally_round();
                if self.role == Role::Leader {
                    self.maybe_commit();
                }
            }
            _ => {}
        }
        self.check_invariants();
    }

    fn status(&self) -> Status {
        Status {
            id: self.cfg.id,
            group: self.cfg.group,
            role: self.role,
            term: self.promised.term(),
            leader: self.leader,
            commit_index: self.log.commit(),
            applied_index: self.log.applied(),
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot_index(),
            log_len: self.log.len() as u64,
            membership: Membership::simple(self.known_config.clone()),
            membership_pending: self.pending_config().is_some()
                || (self.role == Role::Leader && (self.round.is_some() || self.covered.is_some())),
        }
    }
}

/// A configuration a Paxos core can run with: node ids that fit a ballot,
/// then every core's checks ([`CoreConfig::check`]).
fn check_config(cfg: &CoreConfig) -> Result<(), ConfigError> {
    if cfg.id.0 == 0 || cfg.id.0 > Ballot::MAX_NODE {
        return Err(ConfigError::Invalid(format!(
            "Paxos node ids are 1..={}; {} is not",
            Ballot::MAX_NODE,
            cfg.id
        )));
    }
    if let Some(bad) = cfg
        .voters
        .iter()
        .find(|v| v.0 == 0 || v.0 > Ballot::MAX_NODE)
    {
        return Err(ConfigError::Invalid(format!(
            "Paxos node ids are 1..={}; {bad} is not",
            Ballot::MAX_NODE
        )));
    }
    // Empty voters: joining a running group (see the module docs).
    cfg.check()?;
    Ok(())
}

/// The promised ballot and the log a core restarts with, refused when they
/// cannot be Paxos state (a vote, a term that is no ballot, an entry
/// stamped beyond the promise).
fn recovered_log(recovered: Recovered) -> Result<(Ballot, PaxosLog), ConfigError> {
    let hs = recovered.hard_state;
    if hs.vote.is_some() {
        return Err(ConfigError::Recovered(format!(
            "a Paxos hard state has no vote, found {:?} (Raft state?)",
            hs.vote
        )));
    }
    let promised = Ballot::from_term(hs.term)
        .ok_or_else(|| ConfigError::Recovered(format!("term {} is not a Paxos ballot", hs.term)))?;
    let log = PaxosLog::recovered(recovered.snapshot, recovered.entries, hs.commit)
        .map_err(ConfigError::Recovered)?;
    if let Some(e) = log.entries().iter().find(|e| {
        Stamp::of(e.term).accepted > promised
            || Stamp::of(e.term).origin > Stamp::of(e.term).accepted
    }) {
        return Err(ConfigError::Recovered(format!(
            "entry {} has stamp {:?} beyond the promised ballot {promised}",
            e.index,
            Stamp::of(e.term)
        )));
    }
    Ok((promised, log))
}

#[cfg(test)]
mod tests;

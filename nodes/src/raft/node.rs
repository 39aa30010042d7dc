//! RaftNode: the Raft core of one group on one node, sans-IO.
//!
//! Implements [`Consensus`]; see [`crate::consensus`] for the contract with
//! the runtime. What it guarantees, given a runtime that follows the
//! contract (persist before send; a leader's own appends may go early, see
//! [`Ready::early_messages`]): at most one leader per term (§5.2), log
//! matching (§5.3), leader completeness (§5.4) and therefore state machine
//! safety; ReadIndex reads (§6.4 of Ongaro's thesis) are linearizable.
//! Leader lease reads are linearizable only with bounded clock drift and are
//! off unless [`CoreConfig::lease_reads`] is set.
//!
//! Features: randomized election timeouts, pre-vote (§9.6) and check-quorum
//! with leader stickiness, pipelined appends with per-follower flow control
//! (the proposals between two Readys leave as one append per follower; a
//! leader's appends leave while it writes its own entries, Raft thesis
//! §10.2.1)
//! and conflict-term back-off, commit by counting only current-term entries
//! (§5.4.2), snapshots and InstallSnapshot in chunks bounded by bytes (§7,
//! [`crate::snapshot_transfer`]), leadership transfer via
//! TimeoutNow, membership changes by joint consensus (§6 of Ongaro's
//! thesis).
//!
//! Membership: a node's configuration is the latest config entry in its log,
//! committed or not (a truncated config entry reverts it to the previous
//! one), else its snapshot's, else [`CoreConfig::voters`]. While the
//! configuration is joint (C_old,new), elections, commits and ReadIndex
//! rounds need a majority of both halves. A change appends C_old,new; once
//! it commits, the leader (this one or the next) appends C_new. A leader
//! that is not in C_new leads until C_new commits, then steps down. A node
//! with no configuration (joining) or outside its own never campaigns; every
//! node ignores vote requests from nodes outside its configuration, so a
//! removed node cannot disrupt the group. Until C_new commits the leader
//! keeps replicating to the voters it drops, and then sends them one last
//! message carrying the commit, so that their runtime learns they left.
//! Message senders are not checked against the configuration (a node may be
//! a member of one this node has not seen yet); only a message from this
//! node itself is refused ([`StepError::UnknownPeer`]). A node below its
//! join floor counts itself in no configuration (next section). Liveness
//! limit: a joining node answers a vote request only if the runtime gave it
//! [`CoreConfig::join_floor`] and the candidate's log reaches that floor:
//! with an empty log it would grant any, and a stale candidate that still
//! counts a re-used node id from before its removal could win with it.
//! Without a floor, if the leader dies during a change whose new half is
//! mostly new nodes that have not received C_old,new yet, no candidate can
//! win until enough of them get it.
//!
//! # Re-used node ids: the join floor
//! A node id removed from a group, wiped, and added back is a new server
//! under an old name. Ongaro's thesis (§3.8) lets a server that lost its
//! persistent state rejoin only under a new identity; the runtime re-uses
//! the id, so the core must make it new in effect: no configuration that
//! counted the old incarnation may count the new one. The hazard: the new
//! incarnation catches up only part of the way, to an old snapshot or old
//! config entries, finds its id there, and (§4.1: a server uses the latest
//! configuration in its log) campaigns and grants votes in it. Membership
//! sweep seed 1055330: n2 and n3 of [2,3,5] were removed and wiped, added
//! back by an entry that was never committed, caught up to a snapshot and
//! entries naming [2,3,5], and elected n3 with n2's vote, without the
//! committed [1,4,5]: their old selves had held entries the new ones lack.
//! (Removed servers disrupting the group, §4.2.3, are the mirror image: vote
//! requests from outside a node's configuration are ignored.)
//!
//! The rule: a node whose log (last entry, or snapshot) is below its
//! [`CoreConfig::join_floor`] (term, index), compared as for an up-to-date
//! log, is joining whatever voters its log names: it never campaigns (not
//! on TimeoutNow either), and answers vote requests and pre-votes only from
//! candidates whose last entry is at or past its floor. At or past the
//! floor, the configuration in its log is its own; a truncation that takes
//! the log below the floor makes it joining again.
//!
//! Why it is safe. Let C_rem be the committed configuration that removed the
//! id's last wiped incarnation, at index r. A floor (t, i) must be a place
//! where C_rem was known committed: C_rem committed in a term ≤ t, and the
//! leader of term t (if any) holds C_rem at r ≤ i. Then every log whose last
//! entry (t', i') ≥ (t, i) holds C_rem: if t' > t, the leader of t' made that
//! entry and holds C_rem (leader completeness, §5.4); if t' = t and i' ≥ i,
//! the leader of t made it, and the log matches that leader's through i'
//! (log matching, §5.3). So the log's latest configuration is C_rem or one
//! appended after it, which counts the id only if a change after the removal
//! added it back: this incarnation (a later one has a later floor). Hence a
//! node at or past its floor counts itself only where the group counts this
//! incarnation, a candidate at or past the floor holds such a configuration
//! (so a vote given to it is never counted for the old incarnation), and
//! below the floor the node gives nothing an old configuration could count.
//! Two floors meet the definition: the adding entry itself (the
//! [`Proposal`] of [`Consensus::change_membership`]: its leader had C_rem
//! committed, one change at a time), which stays a valid floor when that
//! entry is truncated and a later leader adds the id again (seed 1055330);
//! and the node's (term, commit index) when it retired after applying C_rem
//! (it learned that commit from a leader of a term ≤ its own). The simulator
//! gives the first; the real runtime, which joins before the change is
//! proposed, persists the second in groups.json and passes it at every start
//! of the group, so a restarted joining node keeps its floor.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::bug::Bug;
use crate::consensus::{
    ConfigError, Consensus, CoreConfig, Entry, EntryKind, GroupId, HardState, LogIndex, Membership,
    MembershipError, Message, NodeId, NotLeader, Payload, Proposal, ReadOutcome, Ready, Recovered,
    Role, SnapshotError, SnapshotMeta, SoftState, Status, StepError, Term, TransferError,
};
use crate::election_timer::{in_lease, ElectionTimer};

use crate::quorum::{Joint, VoteResult};
use crate::snapshot_transfer::{ChunkOutcome, SnapshotAssembly, SnapshotChunk, SnapshotSender};

use super::log::RaftLog;
use super::message::RaftMessage;
use super::progress::{Progress, ProgressState};

/// How a node asks for votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Campaign {
    /// §9.6: ask whether a vote would be granted, without a new term.
    PreVote,
    /// §5.2: a new term and real votes.
    Election,
    /// §3.10: a real election that the leader asked for (TimeoutNow), let
    /// through the voters' leader stickiness.
    Transfer,
}

/// A ReadIndex request waiting for a heartbeat quorum.
#[derive(Clone, Debug)]
struct PendingRead {
    ctx: u64,
    index: LogIndex,
    seq: u64,
}

/// The Raft core. Build with [`RaftNode::new`], drive through [`Consensus`].
#[derive(Debug)]
pub struct RaftNode {
    cfg: CoreConfig,
    election_timer: ElectionTimer,

    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,

    /// Ticks since we last heard from a leader (follower), or since the
    /// last check-quorum (leader).
    election_elapsed_ticks: u64,
    heartbeat_elapsed_ticks: u64,
    now_ticks: u64,
    /// Leader stickiness applies right after a restart too: we may have
    /// promised a lease to a leader we no longer remember.
    fresh: bool,

    votes: BTreeMap<NodeId, bool>,
    progress: BTreeMap<NodeId, Progress>,
    /// The last replication session handed to a [`Progress`] (see
    /// [`RaftMessage`]'s docs): answers of an older session are ignored.
    last_session: u64,

    read_seq: u64,
    /// Tick at which each read round's heartbeat went out (for leases).
    read_seq_sent_tick: BTreeMap<u64, u64>,
    pending_reads: VecDeque<PendingRead>,
    /// Reads that arrived before this leader committed an entry of its term.
    reads_awaiting_commit: Vec<u64>,
    read_outcomes: Vec<ReadOutcome>,

    transferee: Option<NodeId>,
    transfer_elapsed_ticks: u64,

    /// Follower: the leader's snapshot being assembled from its chunks.
    incoming_snapshot: Option<SnapshotAssembly>,

    msgs: Vec<Message>,
    /// Leader: entries were proposed since the last Ready; [`Consensus::ready`]
    /// sends them, so the proposals of one batch travel in one append per
    /// follower instead of filling the in-flight window one entry at a time.
    appends_due: bool,
    last_hard_state: HardState,
    last_soft_state: SoftState,
    next_persist_id: u64,
    /// (persist id, last index, last term) of Readys not yet durable.
    unpersisted: VecDeque<(u64, LogIndex, Term)>,
    /// (persist id, term, vote) of Readys with a hard state not yet durable.
    unpersisted_votes: VecDeque<(u64, Term, Option<NodeId>)>,
    /// The term and vote storage holds durably (as far as `persisted` said).
    durable_vote: (Term, Option<NodeId>),

    /// The configuration as of the snapshot (or [`CoreConfig::voters`]).
    base_config: Membership,
    /// The config entries of the log after the snapshot, ascending: the
    /// last one is in force; truncating it reverts to the one before.
    configs: Vec<(LogIndex, Term, Membership)>,
    /// Planted bug (proof of power only): changes skip the joint phase.
    skip_joint_bug: bool,
}

/// The config entries of `entries`, as (index, term, configuration).
fn config_entries(entries: &[Entry]) -> Vec<(LogIndex, Term, Membership)> {
    entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::ConfigChange(m) => Some((e.index, e.term, m.clone())),
            _ => None,
        })
        .collect()
}

/// Sorted, distinct, non-empty, no node 0.
fn check_voters(voters: &[NodeId]) -> Result<(), String> {
    if voters.is_empty() {
        return Err("a configuration needs at least one voter".into());
    }
    if !voters.windows(2).all(|w| w[0] < w[1]) {
        return Err(format!("voters {voters:?} must be sorted and distinct"));
    }
    if voters.contains(&NodeId(0)) {
        return Err("node 0 is not a node".into());
    }
    Ok(())
}

impl RaftNode {
    /// A core from what storage made durable.
    pub fn new(cfg: CoreConfig, recovered: Recovered) -> Result<RaftNode, ConfigError> {
        // Empty voters: a joining node (it learns its configuration later).
        cfg.check()?;
        if cfg.lease_reads && !cfg.check_quorum {
            return Err(ConfigError::Invalid("lease reads need check-quorum".into()));
        }
        let hs = recovered.hard_state;
        let base_config = match &recovered.snapshot {
            Some(s) if !s.meta.voters.is_empty() => Membership {
                voters: s.meta.voters.clone(),
                outgoing: s.meta.outgoing.clone(),
            },
            _ => Membership::simple(cfg.voters.clone()),
        };
        let configs = config_entries(&recovered.entries);
        for (_, _, m) in &configs {
            check_voters(&m.voters).map_err(|e| {
                ConfigError::Recovered(format!("a config entry in the log is invalid: {e}"))
            })?;
        }
        let log = RaftLog::recovered(recovered.snapshot, recovered.entries, hs.commit)
            .map_err(ConfigError::Recovered)?;
        if log.last_term() > hs.term {
            return Err(ConfigError::Recovered(format!(
                "last entry term {} is beyond the persisted term {}",
                log.last_term(),
                hs.term
            )));
        }
        let soft = SoftState {
            role: Role::Follower,
            term: hs.term,
            leader: None,
        };
        let mut node = RaftNode {
            election_timer: ElectionTimer::new(cfg.seed, 0x9E37_79B9_7F4A_7C15),
            cfg,
            term: hs.term,
            vote: hs.vote,
            role: Role::Follower,
            leader: None,
            log,
            election_elapsed_ticks: 0,
            heartbeat_elapsed_ticks: 0,
            now_ticks: 0,
            fresh: true,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            last_session: 0,
            read_seq: 0,
            read_seq_sent_tick: BTreeMap::new(),
            pending_reads: VecDeque::new(),
            reads_awaiting_commit: Vec::new(),
            read_outcomes: Vec::new(),
            transferee: None,
            transfer_elapsed_ticks: 0,
            incoming_snapshot: None,
            msgs: Vec::new(),
            appends_due: false,
            last_hard_state: HardState {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
            },
            last_soft_state: soft,
            next_persist_id: 0,
            unpersisted: VecDeque::new(),
            unpersisted_votes: VecDeque::new(),
            durable_vote: (hs.term, hs.vote),
            base_config,
            configs,
            skip_joint_bug: false,
        };
        node.last_hard_state.commit = node.log.commit();
        node.reset_randomized_timeout();
        Ok(node)
    }

    // ----- accessors for tests and the simulator's safety checks -----

    pub fn term(&self) -> Term {
        self.term
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// Proof of power only: from now on, membership changes go from C_old
    /// straight to C_new (no joint phase): two disjoint majorities can then
    /// decide. The simulator's sweep must catch it.
    #[doc(hidden)]
    pub fn plant_skip_joint_bug(&mut self) {
        self.skip_joint_bug = true;
    }

    /// The tracked configurations agree with the log and the snapshot: the
    /// config entries kept aside are exactly those of the log (none lost to
    /// a truncation, none missed), and the base is the snapshot's. O(log);
    /// the simulator checks it after every step.
    pub fn check_membership(&self) -> Result<(), String> {
        let in_log = config_entries(self.log.entries());
        if in_log != self.configs {
            return Err(format!(
                "{}: tracked configs {:?} but the log holds {:?}",
                self.cfg.id, self.configs, in_log
            ));
        }
        let meta = &self.log.snapshot().meta;
        if meta.index > LogIndex(0)
            && (meta.voters != self.base_config.voters
                || meta.outgoing != self.base_config.outgoing)
        {
            return Err(format!(
                "{}: base config {:?} but the snapshot at {} records {:?} / {:?}",
                self.cfg.id, self.base_config, meta.index, meta.voters, meta.outgoing
            ));
        }
        Ok(())
    }

    /// The configuration in force: the latest in the log, else the snapshot's.
    pub fn membership(&self) -> &Membership {
        self.configs.last().map_or(&self.base_config, |c| &c.2)
    }

    /// The index of the configuration in force (the snapshot index, or 0,
    /// for the base configuration).
    fn config_index(&self) -> LogIndex {
        self.configs
            .last()
            .map_or(self.log.snapshot_index(), |c| c.0)
    }

    /// The configuration as of `index` (≥ the snapshot index).
    fn config_at(&self, index: LogIndex) -> Membership {
        self.configs
            .iter()
            .rev()
            .find(|c| c.0 <= index)
            .map_or_else(|| self.base_config.clone(), |c| c.2.clone())
    }

    /// A change is under way: joint, or the latest configuration not committed.
    fn membership_pending(&self) -> bool {
        self.membership().is_joint() || self.config_index() > self.log.commit()
    }

    /// Whether this node may campaign: its log reached its join floor and
    /// it votes in its configuration.
    fn promotable(&self) -> bool {
        self.reached_join_floor() && self.membership().contains(self.cfg.id)
    }

    /// Whether the configuration in this node's log may count this node:
    /// there is no [`CoreConfig::join_floor`], or the log's last entry (or
    /// its snapshot) is at least as up to date as the floor, so the log
    /// holds the committed removal of every wiped earlier incarnation of
    /// this node id (see "Re-used node ids" in the module docs). Below the
    /// floor the configuration may name such an incarnation: the node then
    /// behaves as joining (no campaign; votes only for candidates at or
    /// past the floor), whatever voters it holds.
    fn reached_join_floor(&self) -> bool {
        self.cfg
            .join_floor
            .is_none_or(|floor| (self.log.last_term(), self.log.last_index()) >= floor)
    }

    /// A majority of every half of the configuration satisfies `pred`.
    fn has_quorum(&self, pred: impl Fn(NodeId) -> bool) -> bool {
        Joint::of(self.membership()).agrees(pred)
    }

    /// The largest value a quorum (a majority of every half) reaches.
    fn quorum_value<T: Ord + Copy>(&self, value: impl Fn(NodeId) -> T) -> Option<T> {
        Joint::of(self.membership()).committed(value)
    }

    /// Whether the refusals already make the election impossible to win.
    fn vote_lost(&self) -> bool {
        let votes = |v: NodeId| self.votes.get(&v).copied();
        Joint::of(self.membership()).vote_result(votes) == VoteResult::Lost
    }

    /// Every voter of the configuration (both halves) but this node.
    fn peers(&self) -> Vec<NodeId> {
        let c = self.membership();
        let all: BTreeSet<NodeId> = c.voters.iter().chain(&c.outgoing).copied().collect();
        all.into_iter().filter(|&v| v != self.cfg.id).collect()
    }

    /// Voters of a finished joint phase that C_new drops, while C_new is not
    /// committed: the leader still replicates to them so that they learn
    /// they were removed (and their runtime can stop the group).
    fn leaving(&self) -> Vec<NodeId> {
        let (prev, (index, _, last)) = match self.configs.as_slice() {
            [.., (_, _, prev), last] => (prev, last),
            [last] => (&self.base_config, last),
            [] => return Vec::new(),
        };
        if last.is_joint() || !prev.is_joint() || *index <= self.log.commit() {
            return Vec::new();
        }
        let all: BTreeSet<NodeId> = prev.voters.iter().chain(&prev.outgoing).copied().collect();
        all.into_iter()
            .filter(|&v| v != self.cfg.id && !last.contains(v))
            .collect()
    }

    /// The nodes a leader replicates to: its peers and the leaving voters.
    fn tracked(&self) -> Vec<NodeId> {
        let mut all = self.peers();
        all.extend(self.leaving());
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Leader: track every node of [`RaftNode::tracked`] (new ones from `next`), no others.
    fn sync_progress(&mut self, next: LogIndex) {
        let peers = self.tracked();
        self.progress.retain(|p, _| peers.contains(p));
        for p in peers {
            if !self.progress.contains_key(&p) {
                // A new session: what an earlier record of `p` was told or
                // answered (maybe by a wiped incarnation of the id) is void.
                self.last_session += 1;
                self.progress
                    .insert(p, Progress::new(next, self.last_session));
            }
        }
        if self
            .transferee
            .is_some_and(|t| !self.progress.contains_key(&t))
        {
            self.transferee = None;
        }
    }

    /// Leader: append a config entry; it is in force at once.
    fn append_config(&mut self, m: Membership) -> Proposal {
        assert_eq!(self.role, Role::Leader, "only a leader changes membership");
        let index = self.log.last_index().next();
        let term = self.term;
        self.log.append(vec![Entry {
            index,
            term,
            kind: EntryKind::ConfigChange(m.clone()),
        }]);
        self.configs.push((index, term, m));
        self.sync_progress(index);
        for p in self.tracked() {
            self.send_append(p, false);
        }
        Proposal { index, term }
    }

    /// Leader, after its commit index moved: finish a joint change by
    /// appending C_new, or step down once a C_new without us committed.
    fn config_follow_up(&mut self) {
        if self.role != Role::Leader || self.config_index() > self.log.commit() {
            return;
        }
        let c = self.membership().clone();
        if c.is_joint() {
            self.append_config(Membership::simple(c.voters));
            return;
        }
        // C_new committed: tell the voters it removed, then stop tracking
        // them: one last message carrying the commit (a heartbeat if they
        // hold C_new, else an append of what they lack through C_new), so
        // that their runtime can retire them.
        let tracked = self.tracked();
        let gone: Vec<NodeId> = self
            .progress
            .keys()
            .copied()
            .filter(|p| !tracked.contains(p))
            .collect();
        let c_new_index = self.config_index();
        for p in gone {
            let (matched, session) = (self.progress[&p].matched, self.progress[&p].session);
            let (term, commit) = (self.term, self.log.commit());
            let lacking = c_new_index.0.saturating_sub(matched.0);
            // What they lack through C_new, if it fits four batches.
            let catch_up = match self.log.term_at(matched) {
                Some(prev_term)
                    if matched < c_new_index
                        && lacking <= self.cfg.max_batch_entries as u64 * 4 =>
                {
                    let entries = self.log.batch(
                        matched.next(),
                        lacking as usize,
                        self.cfg.max_batch_bytes.saturating_mul(4),
                    );
                    (entries.len() as u64 == lacking).then_some((prev_term, entries))
                }
                _ => None,
            };
            match catch_up {
                Some((prev_term, entries)) => {
                    self.send(
                        p,
                        RaftMessage::AppendEntries {
                            term,
                            prev_log_index: matched,
                            prev_log_term: prev_term,
                            entries,
                            leader_commit: commit,
                            session,
                        },
                    );
                }
                None => {
                    let read_seq = self.read_seq;
                    self.send(
                        p,
                        RaftMessage::Heartbeat {
                            term,
                            commit: commit.min(matched),
                            read_seq,
                            session,
                        },
                    );
                }
            }
        }
        let next = self.log.last_index().next();
        self.sync_progress(next);
        if !c.contains(self.cfg.id) {
            // Hand over to the most caught-up new voter, then step down.
            let last = self.log.last_index();
            let best = self
                .progress
                .iter()
                .filter(|(p, pr)| c.voters.contains(p) && pr.matched == last)
                .map(|(p, _)| *p)
                .next();
            if let Some(to) = best {
                let term = self.term;
                self.send(to, RaftMessage::TimeoutNow { term });
            }
            let term = self.term;
            self.become_follower(term, None);
        }
    }

    /// Follower: after the log took entries (maybe truncating a suffix),
    /// drop config entries no longer in it and add the new ones.
    fn sync_configs(&mut self, new: Vec<(LogIndex, Term, Membership)>) {
        while self
            .configs
            .last()
            .is_some_and(|c| self.log.term_at(c.0) != Some(c.1))
        {
            self.configs.pop();
        }
        for c in new {
            let after_last = self.configs.last().is_none_or(|l| l.0 < c.0);
            if after_last && c.0 > self.log.snapshot_index() && self.log.term_at(c.0) == Some(c.1) {
                self.configs.push(c);
            }
        }
    }

    fn reset_randomized_timeout(&mut self) {
        self.election_timer.reset(&self.cfg);
    }

    fn send(&mut self, to: NodeId, msg: RaftMessage) {
        let message = self.cfg.message(to, Payload::Raft(msg));
        self.msgs.push(message);
    }

    fn in_lease(&self) -> bool {
        let knows_leader = self.leader.is_some() || self.fresh;
        in_lease(&self.cfg, knows_leader, self.election_elapsed_ticks)
    }

    // ----- role changes -----

    fn reset(&mut self, term: Term) {
        if term != self.term {
            assert!(term > self.term, "terms only grow");
            self.term = term;
            self.vote = None;
        }
        self.leader = None;
        self.election_elapsed_ticks = 0;
        self.heartbeat_elapsed_ticks = 0;
        self.reset_randomized_timeout();
        self.votes.clear();
        self.progress.clear();
        self.transferee = None;
        self.transfer_elapsed_ticks = 0;
        // A snapshot is assembled only from the leader of the current term.
        self.incoming_snapshot = None;
        self.fail_reads();
    }

    fn fail_reads(&mut self) {
        let error = NotLeader {
            leader: self.leader,
        };
        for r in self.pending_reads.drain(..) {
            self.read_outcomes
                .push(ReadOutcome::Failed { ctx: r.ctx, error });
        }
        for ctx in self.reads_awaiting_commit.drain(..) {
            self.read_outcomes.push(ReadOutcome::Failed { ctx, error });
        }
        self.read_seq_sent_tick.clear();
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        self.reset(term);
        self.role = Role::Follower;
        self.leader = leader;
    }

    fn become_pre_candidate(&mut self) {
        assert_ne!(self.role, Role::Leader, "a leader does not pre-campaign");
        // Term and vote stay: a pre-vote promises nothing.
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.election_elapsed_ticks = 0;
        self.reset_randomized_timeout();
        self.fail_reads();
    }

    fn become_candidate(&mut self) {
        assert_ne!(self.role, Role::Leader, "a leader does not campaign");
        let term = self.term.next();
        self.reset(term);
        self.role = Role::Candidate;
        self.vote = Some(self.cfg.id);
    }

    fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        assert_eq!(self.vote, Some(self.cfg.id), "a leader voted for itself");
        let term = self.term;
        self.reset(term);
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        let next = self.log.last_index().next();
        self.sync_progress(next);
        // §5.4.2: commit the entries of earlier terms through one of ours.
        self.log.append(vec![Entry {
            index: next,
            term,
            kind: EntryKind::Noop,
        }]);
        self.broadcast_append();
        self.maybe_commit();
    }

    fn campaign(&mut self, kind: Campaign) {
        assert!(self.promotable(), "only a voter campaigns");
        let pre_vote = kind == Campaign::PreVote;
        let transfer = kind == Campaign::Transfer;
        if pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
        self.votes.insert(self.cfg.id, true);
        let term = if pre_vote {
            self.term.next()
        } else {
            self.term
        };
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for p in self.peers() {
            self.send(
                p,
                RaftMessage::RequestVote {
                    term,
                    pre_vote,
                    transfer,
                    last_log_index,
                    last_log_term,
                },
            );
        }
        self.tally_votes(pre_vote);
    }

    fn tally_votes(&mut self, pre_vote: bool) {
        if self.has_quorum(|v| self.votes.get(&v) == Some(&true)) {
            if pre_vote {
                self.campaign(Campaign::Election);
            } else {
                self.become_leader();
            }
        } else if self.vote_lost() {
            let term = self.term;
            self.become_follower(term, None);
        }
    }

    // ----- leader replication -----

    fn broadcast_append(&mut self) {
        for p in self.tracked() {
            self.send_append(p, true);
        }
    }

    /// Send `to` what it lacks; an empty append only if `allow_empty`.
    fn send_append(&mut self, to: NodeId, allow_empty: bool) {
        assert_eq!(self.role, Role::Leader, "only a leader appends");
        let max_inflight = self.cfg.max_inflight_appends;
        let pr = self.progress.get(&to).expect("a progress per peer");
        if pr.is_paused(max_inflight) {
            return;
        }
        let (prev, session) = (pr.next.prev(), pr.session);
        match self.log.term_at(prev) {
            None => {
                assert!(
                    prev < self.log.snapshot_index(),
                    "prev is missing only when compacted"
                );
                let sender = SnapshotSender::new(self.log.shared_snapshot());
                self.progress
                    .get_mut(&to)
                    .expect("peer")
                    .become_snapshot(sender);
                self.send_snapshot_chunks(to);
            }
            Some(prev_term) => {
                let entries = self.log.batch(
                    prev.next(),
                    self.cfg.max_batch_entries,
                    self.cfg.max_batch_bytes,
                );
                if entries.is_empty() && !allow_empty {
                    return;
                }
                let last = entries.last().map(|e| e.index);
                self.progress.get_mut(&to).expect("peer").sent(last);
                let (term, leader_commit) = (self.term, self.log.commit());
                self.send(
                    to,
                    RaftMessage::AppendEntries {
                        term,
                        prev_log_index: prev,
                        prev_log_term: prev_term,
                        entries,
                        leader_commit,
                        session,
                    },
                );
            }
        }
    }

    /// Send `to` the next chunks of its snapshot transfer, as many as the
    /// window (`max_inflight_appends` unanswered chunks) lets through.
    fn send_snapshot_chunks(&mut self, to: NodeId) {
        let (chunk_bytes, window, term) = (
            self.cfg.snapshot_chunk_bytes,
            self.cfg.max_inflight_appends,
            self.term,
        );
        loop {
            let pr = self.progress.get_mut(&to).expect("a progress per peer");
            let session = pr.session;
            let Some(chunk) = pr
                .snapshot
                .as_mut()
                .and_then(|tx| tx.next_chunk(chunk_bytes, window))
            else {
                return;
            };
            self.send(
                to,
                RaftMessage::InstallSnapshot {
                    term,
                    chunk,
                    session,
                },
            );
        }
    }

    /// The appends [`Consensus::propose`] left for the Ready: one per
    /// follower the window allows, each with every entry it lacks (up to
    /// the batch limits). A node that stepped down since sends none.
    fn send_due_appends(&mut self) {
        if !std::mem::take(&mut self.appends_due) || self.role != Role::Leader {
            return;
        }
        for p in self.tracked() {
            self.send_append(p, false);
        }
    }

    fn broadcast_heartbeat(&mut self) {
        self.read_seq += 1;
        let seq = self.read_seq;
        self.read_seq_sent_tick.insert(seq, self.now_ticks);
        for p in self.tracked() {
            let (matched, session) = (self.progress[&p].matched, self.progress[&p].session);
            let commit = self.log.commit().min(matched);
            let term = self.term;
            self.send(
                p,
                RaftMessage::Heartbeat {
                    term,
                    commit,
                    read_seq: seq,
                    session,
                },
            );
        }
    }

    fn maybe_commit(&mut self) {
        assert_eq!(self.role, Role::Leader, "only a leader counts replicas");
        let me = self.cfg.id;
        let persisted = self.log.persisted();
        let Some(n) = self.quorum_value(|v| {
            if v == me {
                persisted
            } else {
                self.progress.get(&v).map_or(LogIndex(0), |p| p.matched)
            }
        }) else {
            return;
        };
        // §5.4.2: count replicas only for entries of the current term.
        if n > self.log.commit() && self.log.term_at(n) == Some(self.term) {
            let first_commit_in_term = self.log.term_at(self.log.commit()) != Some(self.term);
            assert!(n <= self.log.last_index(), "quorum index within the log");
            self.log.commit_to(n);
            // May step down (a leader not in C_new): reads then fail.
            self.config_follow_up();
            if first_commit_in_term && self.role == Role::Leader {
                let waiting = std::mem::take(&mut self.reads_awaiting_commit);
                for ctx in waiting {
                    self.start_read(ctx);
                }
            }
        }
    }

    fn committed_in_term(&self) -> bool {
        self.log.term_at(self.log.commit()) == Some(self.term)
    }

    // ----- reads -----

    fn start_read(&mut self, ctx: u64) {
        assert_eq!(self.role, Role::Leader, "reads start on the leader");
        assert!(
            self.committed_in_term(),
            "a read index is known once the leader committed in its term"
        );
        let index = self.log.commit();
        let me = self.cfg.id;
        if self.has_quorum(|v| v == me) || (self.cfg.lease_reads && self.lease_valid()) {
            self.read_outcomes.push(ReadOutcome::Ready { ctx, index });
            return;
        }
        self.broadcast_heartbeat();
        self.pending_reads.push_back(PendingRead {
            ctx,
            index,
            seq: self.read_seq,
        });
    }

    /// The highest read round a quorum (us included) acknowledged.
    fn quorum_read_seq(&self) -> u64 {
        let me = self.cfg.id;
        self.quorum_value(|v| {
            if v == me {
                self.read_seq
            } else {
                self.progress.get(&v).map_or(0, |p| p.read_seq_acked)
            }
        })
        .unwrap_or(0)
    }

    fn lease_valid(&self) -> bool {
        if self.transferee.is_some() {
            return false;
        }
        let q = self.quorum_read_seq();
        let Some((_, &sent)) = self.read_seq_sent_tick.range(..=q).next_back() else {
            return false;
        };
        // Followers refuse votes for an election timeout after hearing from
        // us; keep a margin of two ticks for tick granularity.
        sent + self.cfg.election_timeout_ticks > self.now_ticks + 2
    }

    fn advance_reads(&mut self) {
        let q = self.quorum_read_seq();
        while self.pending_reads.front().is_some_and(|r| r.seq <= q) {
            let r = self.pending_reads.pop_front().expect("front exists");
            assert!(
                r.index <= self.log.commit(),
                "read index never beyond commit"
            );
            self.read_outcomes.push(ReadOutcome::Ready {
                ctx: r.ctx,
                index: r.index,
            });
        }
        // Keep the send tick of the newest confirmed round (for leases).
        let keep_from = self
            .read_seq_sent_tick
            .range(..=q)
            .next_back()
            .map(|(s, _)| *s);
        if let Some(k) = keep_from {
            self.read_seq_sent_tick = self.read_seq_sent_tick.split_off(&k);
        }
    }

    // ----- message handling -----

    fn handle(&mut self, from: NodeId, msg: RaftMessage) {
        if !self.admits(from, &msg) || !self.observe_term(from, &msg) {
            return;
        }
        match msg {
            RaftMessage::RequestVote {
                term,
                pre_vote,
                transfer: _,
                last_log_index,
                last_log_term,
            } => self.handle_request_vote(from, term, pre_vote, last_log_index, last_log_term),
            RaftMessage::VoteResponse {
                term,
                pre_vote,
                granted,
            } => self.handle_vote_response(from, term, pre_vote, granted),
            RaftMessage::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                session,
            } => {
                self.follow(term, from);
                self.handle_append(
                    from,
                    session,
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                );
            }
            RaftMessage::Heartbeat {
                term,
                commit,
                read_seq,
                session,
            } => self.handle_heartbeat(from, term, commit, read_seq, session),
            RaftMessage::InstallSnapshot {
                term,
                chunk,
                session,
            } => {
                self.follow(term, from);
                self.handle_snapshot_chunk(from, term, session, chunk);
            }
            RaftMessage::InstallSnapshotResponse {
                term: _,
                index,
                offset,
                received,
                session,
            } => self.handle_snapshot_response(from, index, offset, received, session),
            RaftMessage::TimeoutNow { term } => self.handle_timeout_now(term),
            RaftMessage::AppendResponse {
                term: _,
                success,
                match_index,
                rejected,
                conflict_index,
                conflict_term,
                session,
            } => {
                if self.role != Role::Leader || !self.in_session(from, session) {
                    return;
                }
                self.handle_append_response(
                    from,
                    success,
                    match_index,
                    rejected,
                    conflict_index,
                    conflict_term,
                );
            }
            RaftMessage::HeartbeatResponse {
                term: _,
                read_seq,
                session,
            } => self.handle_heartbeat_response(from, read_seq, session),
        }
    }

    /// Whether a message from `from` is ours to look at. Votes and vote
    /// requests count only from the voters of our configuration: a removed
    /// (or not yet known) node must not disrupt us. A joining node (no
    /// configuration yet, or a log below its join floor) votes only for
    /// candidates at or past its floor: their configuration is the one that
    /// added it or a later one, never a stale one that still counts a wiped
    /// earlier incarnation of its id.
    fn admits(&self, from: NodeId, msg: &RaftMessage) -> bool {
        let is_vote = matches!(
            msg,
            RaftMessage::RequestVote { .. } | RaftMessage::VoteResponse { .. }
        );
        if !is_vote {
            return true;
        }
        let joining = self.membership().voters.is_empty() || !self.reached_join_floor();
        match (msg, self.cfg.join_floor) {
            (
                RaftMessage::RequestVote {
                    last_log_term,
                    last_log_index,
                    ..
                },
                Some(floor),
            ) if joining => (*last_log_term, *last_log_index) >= floor,
            _ if joining => false,
            _ => self.membership().contains(from),
        }
    }

    /// §5.1: a message from a later term makes us follow that term (unless
    /// leader stickiness or pre-vote says otherwise); one from an earlier
    /// term is answered with ours and goes no further. Returns whether the
    /// message is for our term and should be handled.
    fn observe_term(&mut self, from: NodeId, msg: &RaftMessage) -> bool {
        let message_term = msg.term();
        if message_term > self.term {
            match msg {
                RaftMessage::RequestVote { transfer, .. } if !*transfer && self.in_lease() => {
                    // Leader stickiness: we heard from a live leader within
                    // an election timeout; do not help depose it.
                    return false;
                }
                RaftMessage::RequestVote { pre_vote: true, .. } => {}
                RaftMessage::VoteResponse {
                    pre_vote: true,
                    granted: true,
                    ..
                } => {}
                RaftMessage::AppendEntries { .. }
                | RaftMessage::Heartbeat { .. }
                | RaftMessage::InstallSnapshot { .. } => {
                    self.become_follower(message_term, Some(from));
                }
                _ => self.become_follower(message_term, None),
            }
            return true;
        }
        if message_term < self.term {
            self.answer_stale(from, msg);
            return false;
        }
        true
    }

    /// A message from an earlier term: tell a deposed leader about the new
    /// term, refuse a stale candidate; anything else is dropped.
    fn answer_stale(&mut self, from: NodeId, msg: &RaftMessage) {
        let term = self.term;
        match *msg {
            RaftMessage::AppendEntries { .. }
            | RaftMessage::Heartbeat { .. }
            | RaftMessage::InstallSnapshot { .. } => self.send(
                from,
                RaftMessage::HeartbeatResponse {
                    term,
                    read_seq: 0,
                    session: 0,
                },
            ),
            RaftMessage::RequestVote { pre_vote, .. } => self.send(
                from,
                RaftMessage::VoteResponse {
                    term,
                    pre_vote,
                    granted: false,
                },
            ),
            _ => {}
        }
    }

    /// §5.2, §5.4.1 (and §9.6 for a pre-vote): grant a vote to a candidate
    /// whose log is at least as up to date as ours, once per term.
    fn handle_request_vote(
        &mut self,
        from: NodeId,
        term: Term,
        pre_vote: bool,
        last_log_index: LogIndex,
        last_log_term: Term,
    ) {
        let can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre_vote && term > self.term);
        let granted = can_vote && self.log.is_up_to_date(last_log_index, last_log_term);
        if granted && !pre_vote {
            assert_eq!(term, self.term, "a real vote is in our term");
            self.vote = Some(from);
            self.election_elapsed_ticks = 0;
        }
        let reply_term = if granted { term } else { self.term };
        self.send(
            from,
            RaftMessage::VoteResponse {
                term: reply_term,
                pre_vote,
                granted,
            },
        );
    }

    /// A vote (or pre-vote) for the campaign we run now; any other is late.
    fn handle_vote_response(&mut self, from: NodeId, term: Term, pre_vote: bool, granted: bool) {
        let expected = match (self.role, pre_vote) {
            (Role::PreCandidate, true) => self.term.next(),
            (Role::Candidate, false) => self.term,
            _ => return,
        };
        if granted && term != expected {
            return;
        }
        self.votes.insert(from, granted);
        self.tally_votes(pre_vote);
    }

    /// Follower: the leader's heartbeat moves commit up to what this log
    /// holds and echoes the read round (§6.4 ReadIndex).
    fn handle_heartbeat(
        &mut self,
        from: NodeId,
        term: Term,
        commit: LogIndex,
        read_seq: u64,
        session: u64,
    ) {
        self.follow(term, from);
        let commit = commit.min(self.log.last_index());
        self.log.commit_to(commit);
        self.send(
            from,
            RaftMessage::HeartbeatResponse {
                term,
                read_seq,
                session,
            },
        );
    }

    /// Leader: a follower's answer to a snapshot chunk moves that transfer
    /// on.
    fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        index: LogIndex,
        offset: u64,
        received: u64,
        session: u64,
    ) {
        if self.role != Role::Leader || !self.in_session(from, session) {
            return;
        }
        let now = self.now_ticks;
        let progress = self.progress.get_mut(&from).expect("in session: tracked");
        let Some(transfer) = progress.snapshot.as_mut().filter(|tx| tx.index() == index) else {
            return; // an answer about a transfer that is over
        };
        transfer.answered(offset, received, now);
        progress.recent_active = true;
        self.send_snapshot_chunks(from);
    }

    /// §3.10 leadership transfer: the leader asks us to campaign now.
    fn handle_timeout_now(&mut self, term: Term) {
        assert_eq!(term, self.term, "same-term TimeoutNow after the term check");
        if self.role != Role::Leader && self.promotable() {
            // Skip pre-vote; a transfer gets through leader stickiness.
            self.campaign(Campaign::Transfer);
        }
    }

    /// Leader: a follower answered a heartbeat: it is alive, it confirms a
    /// read round, and if it is behind it gets entries (or the rest of a
    /// stalled snapshot).
    fn handle_heartbeat_response(&mut self, from: NodeId, read_seq: u64, session: u64) {
        if self.role != Role::Leader || !self.in_session(from, session) {
            return;
        }
        let last = self.log.last_index();
        let Some(progress) = self.progress.get_mut(&from) else {
            return; // no longer a peer
        };
        progress.heard();
        progress.read_seq_acked = progress.read_seq_acked.max(read_seq.min(self.read_seq));
        let behind = progress.matched < last;
        let stall_ticks = self.cfg.election_timeout_ticks;
        let resumed = progress
            .snapshot
            .as_mut()
            .is_some_and(|tx| tx.resume_if_stalled(stall_ticks));
        self.advance_reads();
        if resumed {
            // Chunks or the last answer were lost: go on from what the
            // follower confirmed holding.
            self.send_snapshot_chunks(from);
        } else if behind {
            self.send_append(from, true);
        }
    }

    /// Leader: an answer from `from` belongs to its current replication
    /// session (not to an earlier record of the id, nor to a node that is
    /// no longer tracked).
    fn in_session(&self, from: NodeId, session: u64) -> bool {
        self.progress
            .get(&from)
            .is_some_and(|pr| pr.session == session)
    }

    /// Follower: a chunk of the leader's snapshot (§7). A snapshot this
    /// node's log already covers (at or below commit, or matching an entry
    /// it holds) is acknowledged at once and nothing is assembled. Else
    /// the chunk joins the assembly of this leader's snapshot in this term
    /// ([`SnapshotAssembly`]: in order, restarted on a new snapshot, never
    /// larger than the snapshot); only the last chunk installs it, and the
    /// success answer goes out in the same Ready as the snapshot, so only
    /// once it is durable.
    fn handle_snapshot_chunk(
        &mut self,
        from: NodeId,
        term: Term,
        session: u64,
        chunk: SnapshotChunk,
    ) {
        let (index, offset) = (chunk.meta.index, chunk.offset);
        if let Some(match_index) = self.covers_snapshot(&chunk.meta) {
            self.incoming_snapshot = None;
            self.send_append_success(from, term, session, match_index);
            return;
        }
        match SnapshotAssembly::take(&mut self.incoming_snapshot, from, term, chunk) {
            ChunkOutcome::Dropped(_) => {}
            ChunkOutcome::Partial { received } => self.send(
                from,
                RaftMessage::InstallSnapshotResponse {
                    term,
                    index,
                    offset,
                    received,
                    session,
                },
            ),
            ChunkOutcome::Complete(snapshot) => {
                // Commit cannot have passed the snapshot meanwhile (the
                // check above ran for this very chunk), so it is news.
                self.base_config = Membership {
                    voters: snapshot.meta.voters.clone(),
                    outgoing: snapshot.meta.outgoing.clone(),
                };
                self.configs.clear();
                self.log.restore(snapshot);
                self.send_append_success(from, term, session, index);
            }
        }
    }

    /// The match index to answer a snapshot at `meta` with if this node's
    /// log already holds what it covers; None if it must be installed.
    fn covers_snapshot(&mut self, meta: &SnapshotMeta) -> Option<LogIndex> {
        if meta.index <= self.log.commit() {
            return Some(self.log.commit());
        }
        if self.log.term_at(meta.index) == Some(meta.term) {
            // Log matching (§5.3): our log is the leader's through it.
            self.log.commit_to(meta.index);
            return Some(meta.index);
        }
        None
    }

    /// Tells the leader that this log matches its own through `match_index`.
    fn send_append_success(&mut self, to: NodeId, term: Term, session: u64, match_index: LogIndex) {
        self.send(
            to,
            RaftMessage::AppendResponse {
                term,
                success: true,
                match_index,
                rejected: LogIndex(0),
                conflict_index: LogIndex(0),
                conflict_term: None,
                session,
            },
        );
    }

    /// A message from the leader of our term.
    fn follow(&mut self, term: Term, leader: NodeId) {
        assert_eq!(term, self.term, "after the term check");
        if self.role != Role::Follower {
            assert_ne!(
                self.role,
                Role::Leader,
                "two leaders in term {term}: {} and {leader}",
                self.cfg.id
            );
            self.become_follower(term, Some(leader));
        }
        if let Some(known) = self.leader {
            assert_eq!(known, leader, "two leaders in term {term}");
        }
        self.leader = Some(leader);
        self.election_elapsed_ticks = 0;
        self.fresh = false;
    }

    fn handle_append(
        &mut self,
        from: NodeId,
        session: u64,
        prev: LogIndex,
        prev_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
    ) {
        let term = self.term;
        if prev < self.log.commit() {
            // Everything through commit matches the leader already.
            let match_index = self.log.commit();
            self.send_append_success(from, term, session, match_index);
            return;
        }
        let new_configs = config_entries(&entries);
        match self.log.maybe_append(prev, prev_term, entries) {
            Some(last_new) => {
                self.sync_configs(new_configs);
                self.log.commit_to(leader_commit.min(last_new));
                self.send_append_success(from, term, session, last_new);
            }
            None => {
                let (conflict_index, conflict_term) = if prev > self.log.last_index() {
                    (self.log.last_index().next(), None)
                } else {
                    let t = self
                        .log
                        .term_at(prev)
                        .expect("prev ≥ commit ≥ snapshot index is in the log");
                    (self.log.first_index_of_term_at(prev), Some(t))
                };
                self.send(
                    from,
                    RaftMessage::AppendResponse {
                        term,
                        success: false,
                        match_index: LogIndex(0),
                        rejected: prev,
                        conflict_index,
                        conflict_term,
                        session,
                    },
                );
            }
        }
    }

    fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        match_index: LogIndex,
        rejected: LogIndex,
        conflict_index: LogIndex,
        conflict_term: Option<Term>,
    ) {
        let last = self.log.last_index();
        assert!(
            match_index <= last || !success,
            "a follower cannot match beyond the leader's log in its term"
        );
        if !self.progress.contains_key(&from) {
            return; // no longer a peer
        }
        if success {
            let pr = self.progress.get_mut(&from).expect("peer of the group");
            pr.recent_active = true;
            let news = pr.acked(match_index);
            match pr.state {
                ProgressState::Probe => pr.become_replicate(),
                ProgressState::Snapshot { index } if pr.matched >= index => pr.become_replicate(),
                _ => {}
            }
            if news {
                self.maybe_commit();
                if self.role != Role::Leader || !self.progress.contains_key(&from) {
                    return; // stepped down (removed) or `from` left the configuration
                }
            }
            if self.transferee == Some(from)
                && self.progress[&from].matched == self.log.last_index()
            {
                let term = self.term;
                self.send(from, RaftMessage::TimeoutNow { term });
            }
            // Keep the pipe full.
            self.send_append(from, false);
            while self.progress[&from].state == ProgressState::Replicate
                && !self.progress[&from].is_paused(self.cfg.max_inflight_appends)
                && self.progress[&from].next <= self.log.last_index()
            {
                self.send_append(from, false);
            }
        } else {
            let hint = match conflict_term.and_then(|t| self.log.last_index_of_term(t, rejected)) {
                Some(i) => i.next(),
                None => conflict_index,
            };
            let hint = hint.max(LogIndex(1));
            let pr = self.progress.get_mut(&from).expect("peer of the group");
            pr.recent_active = true;
            if pr.rejected(rejected, hint) {
                self.send_append(from, true);
            }
        }
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed_ticks += 1;
        self.election_elapsed_ticks += 1;
        for pr in self.progress.values_mut() {
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
                    |v: NodeId| v == me || self.progress.get(&v).is_some_and(|p| p.recent_active);
                if !self.has_quorum(active) {
                    let term = self.term;
                    self.become_follower(term, None);
                    return;
                }
                for pr in self.progress.values_mut() {
                    pr.recent_active = false;
                }
            }
        }
        if self.heartbeat_elapsed_ticks >= self.cfg.heartbeat_interval_ticks {
            self.heartbeat_elapsed_ticks = 0;
            self.broadcast_heartbeat();
        }
    }

    fn check_invariants(&self) {
        if self.role == Role::Leader {
            assert_eq!(self.leader, Some(self.cfg.id), "a leader knows it leads");
            assert_eq!(self.vote, Some(self.cfg.id), "a leader voted for itself");
            assert!(
                self.progress.keys().copied().eq(self.tracked()),
                "a progress per peer"
            );
        } else {
            assert!(self.progress.is_empty(), "only a leader tracks progress");
            assert!(self.pending_reads.is_empty(), "only a leader holds reads");
        }
        if self.role == Role::Candidate {
            assert_eq!(self.vote, Some(self.cfg.id), "a candidate voted for itself");
        }
        if self.role != Role::Follower {
            assert!(
                self.reached_join_floor(),
                "only a node past its join floor campaigns or leads"
            );
        }
        assert!(
            self.log.last_term() <= self.term,
            "no entry from a future term"
        );
    }
}

impl Consensus for RaftNode {
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
            // A node that may not campaign keeps counting: past an election
            // timeout without a leader it is out of the leader's lease and
            // grants the votes it may grant.
            if self.election_elapsed_ticks >= self.election_timer.timeout_ticks()
                && self.promotable()
            {
                self.election_elapsed_ticks = 0;
                let kind = if self.cfg.pre_vote {
                    Campaign::PreVote
                } else {
                    Campaign::Election
                };
                self.campaign(kind);
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
        // Any other node may be a member of some configuration of the group
        // (old, joint, new, or one this node has not seen yet).
        if msg.from == self.cfg.id || msg.from == NodeId(0) {
            return Err(StepError::UnknownPeer {
                group: self.cfg.group,
                from: msg.from,
            });
        }
        let Payload::Raft(raft) = msg.payload else {
            return Err(StepError::WrongProtocol {
                expected: "raft",
                got: msg.payload.protocol(),
            });
        };
        self.handle(msg.from, raft);
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
        let index = self.log.last_index().next();
        let term = self.term;
        self.log.append(vec![Entry {
            index,
            term,
            kind: EntryKind::Normal(command),
        }]);
        // Sent by the next `ready`, with every entry proposed until then.
        self.appends_due = true;
        let me = self.cfg.id;
        if self.has_quorum(|v| v == me) {
            self.maybe_commit();
        }
        Ok(Proposal { index, term })
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
        if self.committed_in_term() {
            self.start_read(ctx);
        } else {
            self.reads_awaiting_commit.push(ctx);
        }
        Ok(())
    }

    fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            }
            .into());
        }
        if !self.membership().voters.contains(&to) {
            return Err(TransferError::UnknownTarget(to));
        }
        if to == self.cfg.id || self.transferee == Some(to) {
            return Ok(());
        }
        self.transferee = Some(to);
        self.transfer_elapsed_ticks = 0;
        self.fail_reads();
        if self.progress[&to].matched == self.log.last_index() {
            let term = self.term;
            self.send(to, RaftMessage::TimeoutNow { term });
        } else {
            self.send_append(to, true);
        }
        Ok(())
    }

    fn change_membership(&mut self, voters: Vec<NodeId>) -> Result<Proposal, MembershipError> {
        check_voters(&voters).map_err(MembershipError::Invalid)?;
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            }
            .into());
        }
        if self.transferee.is_some() {
            return Err(NotLeader { leader: None }.into());
        }
        // One change at a time, and only once this leader committed in its
        // term (so its log holds every committed configuration).
        if self.membership_pending() || !self.committed_in_term() {
            return Err(MembershipError::InProgress);
        }
        let old = self.membership().voters.clone();
        let m = if self.skip_joint_bug {
            Membership::simple(voters)
        } else {
            Membership {
                voters,
                outgoing: old,
            }
        };
        Ok(self.append_config(m))
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
        let m = self.config_at(index);
        self.configs.retain(|c| c.0 > index);
        self.base_config = m.clone();
        Ok(self.log.compact(index, data, m))
    }

    fn has_ready(&self) -> bool {
        self.appends_due
            || !self.msgs.is_empty()
            || self.log.has_unstable()
            || self.log.has_committed()
            || !self.read_outcomes.is_empty()
            || self.hard_state() != self.last_hard_state
            || self.soft_state() != self.last_soft_state
    }

    fn ready(&mut self) -> Ready {
        self.send_due_appends();
        let (snapshot, entries) = self.log.take_unstable();
        let hs = self.hard_state();
        let hard_state = (hs != self.last_hard_state).then_some(hs);
        self.last_hard_state = hs;
        let soft = self.soft_state();
        let soft_state = (soft != self.last_soft_state).then_some(soft);
        self.last_soft_state = soft;
        self.next_persist_id += 1;
        let persist_id = self.next_persist_id;
        if let Some(last) = entries.last() {
            self.unpersisted
                .push_back((persist_id, last.index, last.term));
        } else if let Some(s) = &snapshot {
            self.unpersisted
                .push_back((persist_id, s.meta.index, s.meta.term));
        }
        if let Some(hs) = hard_state {
            if (hs.term, hs.vote) != self.durable_vote {
                self.unpersisted_votes
                    .push_back((persist_id, hs.term, hs.vote));
            }
        }
        let committed = self.log.take_committed();
        if let Some(s) = &snapshot {
            if let Some(first) = committed.first() {
                assert!(
                    first.index > s.meta.index,
                    "no entry applied twice around a snapshot"
                );
            }
        }
        let (early_messages, messages) = self.split_early_messages();
        Ready {
            persist_id,
            snapshot,
            hard_state,
            entries,
            messages,
            early_messages,
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
        while self
            .unpersisted
            .front()
            .is_some_and(|(id, _, _)| *id <= persist_id)
        {
            let (_, index, term) = self.unpersisted.pop_front().expect("front exists");
            self.log.stable_to(index, term);
        }
        while self
            .unpersisted_votes
            .front()
            .is_some_and(|(id, _, _)| *id <= persist_id)
        {
            let (_, term, vote) = self.unpersisted_votes.pop_front().expect("front exists");
            self.durable_vote = (term, vote);
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    fn status(&self) -> Status {
        Status {
            id: self.cfg.id,
            group: self.cfg.group,
            role: self.role,
            term: self.term,
            leader: self.leader,
            commit_index: self.log.commit(),
            applied_index: self.log.applied(),
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot_index(),
            log_len: self.log.len() as u64,
            membership: self.membership().clone(),
            membership_pending: self.membership_pending(),
        }
    }
}

impl RaftNode {
    /// This Ready's messages, split into those that may leave before its
    /// write is durable and the rest (see [`Ready::early_messages`]): a
    /// leader's appends, once its term and its vote for itself are
    /// durable (Raft thesis §10.2.1). The leader counts itself toward a
    /// commit only from `persisted` ([`RaftNode::maybe_commit`]); and were
    /// it to crash and lose the entries, it could never lead this term
    /// again (its durable vote went to itself, so a new campaign needs a
    /// new term), so no other entry can ever take their place in this term.
    fn split_early_messages(&mut self) -> (Vec<Message>, Vec<Message>) {
        let msgs = std::mem::take(&mut self.msgs);
        let leading_durably =
            self.role == Role::Leader && self.durable_vote == (self.term, Some(self.cfg.id));
        if !leading_durably {
            return (Vec::new(), msgs);
        }
        msgs.into_iter().partition(|m| {
            matches!(
                &m.payload,
                Payload::Raft(RaftMessage::AppendEntries { term, .. }) if *term == self.term
            )
        })
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.commit(),
        }
    }

    fn soft_state(&self) -> SoftState {
        SoftState {
            role: self.role,
            term: self.term,
            leader: self.leader,
        }
    }
}

#[cfg(test)]
mod tests;

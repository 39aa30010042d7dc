//! RaftNode: the Raft core of one group on one node, sans-IO.
//!
//! Implements [`Consensus`]; see [`crate::consensus`] for the contract with
//! the runtime. What it guarantees, given a runtime that follows the
//! contract (persist before send): at most one leader per term (§5.2), log
//! matching (§5.3), leader completeness (§5.4) and therefore state machine
//! safety; ReadIndex reads (§6.4 of Ongaro's thesis) are linearizable.
//! Leader lease reads are linearizable only with bounded clock drift and are
//! off unless [`CoreConfig::lease_reads`] is set.
//!
//! Features: randomized election timeouts, pre-vote (§9.6) and check-quorum
//! with leader stickiness, pipelined appends with per-follower flow control
//! and conflict-term back-off, commit by counting only current-term entries
//! (§5.4.2), snapshots and InstallSnapshot (§7), leadership transfer via
//! TimeoutNow.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::bug::Bug;
use crate::consensus::{
    ConfigError, Consensus, CoreConfig, Entry, EntryKind, GroupId, HardState, LogIndex, Message,
    NodeId, NotLeader, Payload, Proposal, ReadOutcome, Ready, Recovered, Role, SnapshotError,
    SnapshotMeta, SoftState, Status, StepError, Term, TransferError,
};

use super::log::RaftLog;
use super::message::RaftMessage;
use super::progress::{Progress, ProgressState};

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
    rng_state: u64,

    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,

    /// Ticks since we last heard from a leader (follower), or since the
    /// last check-quorum (leader).
    election_elapsed_ticks: u64,
    randomized_timeout_ticks: u64,
    heartbeat_elapsed_ticks: u64,
    now_ticks: u64,
    /// Leader stickiness applies right after a restart too: we may have
    /// promised a lease to a leader we no longer remember.
    fresh: bool,

    votes: BTreeMap<NodeId, bool>,
    progress: BTreeMap<NodeId, Progress>,

    read_seq: u64,
    /// Tick at which each read round's heartbeat went out (for leases).
    read_seq_sent_tick: BTreeMap<u64, u64>,
    pending_reads: VecDeque<PendingRead>,
    /// Reads that arrived before this leader committed an entry of its term.
    reads_awaiting_commit: Vec<u64>,
    read_outcomes: Vec<ReadOutcome>,

    transferee: Option<NodeId>,
    transfer_elapsed_ticks: u64,

    msgs: Vec<Message>,
    last_hard_state: HardState,
    last_soft_state: SoftState,
    next_persist_id: u64,
    /// (persist id, last index, last term) of Readys not yet durable.
    unpersisted: VecDeque<(u64, LogIndex, Term)>,
}

impl RaftNode {
    /// A core from what storage made durable.
    pub fn new(cfg: CoreConfig, recovered: Recovered) -> Result<RaftNode, ConfigError> {
        if !cfg.voters.contains(&cfg.id) {
            return Err(ConfigError::NotAVoter {
                id: cfg.id,
                voters: cfg.voters.clone(),
            });
        }
        let distinct: BTreeSet<NodeId> = cfg.voters.iter().copied().collect();
        if distinct.len() != cfg.voters.len() {
            return Err(ConfigError::Invalid(format!(
                "voters {:?} repeat a node",
                cfg.voters
            )));
        }
        if cfg.election_timeout_ticks < 2 || cfg.heartbeat_interval_ticks == 0 {
            return Err(ConfigError::Invalid(
                "election timeout needs ≥ 2 ticks, heartbeat ≥ 1".into(),
            ));
        }
        if cfg.heartbeat_interval_ticks >= cfg.election_timeout_ticks {
            return Err(ConfigError::Invalid(
                "heartbeat interval must be below the election timeout".into(),
            ));
        }
        if cfg.max_batch_entries == 0 || cfg.max_inflight_appends == 0 {
            return Err(ConfigError::Invalid(
                "batch and inflight limits must be ≥ 1".into(),
            ));
        }
        if cfg.lease_reads && !cfg.check_quorum {
            return Err(ConfigError::Invalid("lease reads need check-quorum".into()));
        }
        let hs = recovered.hard_state;
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
            rng_state: cfg.seed ^ 0x9E37_79B9_7F4A_7C15,
            cfg,
            term: hs.term,
            vote: hs.vote,
            role: Role::Follower,
            leader: None,
            log,
            election_elapsed_ticks: 0,
            randomized_timeout_ticks: 0,
            heartbeat_elapsed_ticks: 0,
            now_ticks: 0,
            fresh: true,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            read_seq: 0,
            read_seq_sent_tick: BTreeMap::new(),
            pending_reads: VecDeque::new(),
            reads_awaiting_commit: Vec::new(),
            read_outcomes: Vec::new(),
            transferee: None,
            transfer_elapsed_ticks: 0,
            msgs: Vec::new(),
            last_hard_state: HardState {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
            },
            last_soft_state: soft,
            next_persist_id: 0,
            unpersisted: VecDeque::new(),
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

    fn quorum(&self) -> usize {
        self.cfg.voters.len() / 2 + 1
    }

    fn peers(&self) -> Vec<NodeId> {
        self.cfg
            .voters
            .iter()
            .copied()
            .filter(|&v| v != self.cfg.id)
            .collect()
    }

    fn next_random(&mut self) -> u64 {
        // splitmix64: deterministic, no dependency.
        self.rng_state = self.rng_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn reset_randomized_timeout(&mut self) {
        let t = self.cfg.election_timeout_ticks;
        self.randomized_timeout_ticks = t + self.next_random() % t;
        assert!(
            self.randomized_timeout_ticks >= t,
            "randomized timeout below the minimum"
        );
        assert!(
            self.randomized_timeout_ticks < 2 * t,
            "randomized timeout at or beyond twice the minimum"
        );
    }

    fn send(&mut self, to: NodeId, msg: RaftMessage) {
        assert_ne!(to, self.cfg.id, "a core never messages itself");
        self.msgs.push(Message {
            group: self.cfg.group,
            from: self.cfg.id,
            to,
            payload: Payload::Raft(msg),
        });
    }

    fn in_lease(&self) -> bool {
        self.cfg.check_quorum
            && (self.leader.is_some() || self.fresh)
            && self.election_elapsed_ticks < self.cfg.election_timeout_ticks
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
        for p in self.peers() {
            self.progress.insert(p, Progress::new(next));
        }
        // §5.4.2: commit the entries of earlier terms through one of ours.
        self.log.append(vec![Entry {
            index: next,
            term,
            kind: EntryKind::Noop,
        }]);
        self.broadcast_append();
        self.maybe_commit();
    }

    fn campaign(&mut self, pre_vote: bool, transfer: bool) {
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
        let granted = self.votes.values().filter(|g| **g).count();
        let refused = self.votes.len() - granted;
        if granted >= self.quorum() {
            if pre_vote {
                self.campaign(false, false);
            } else {
                self.become_leader();
            }
        } else if refused >= self.quorum() {
            let term = self.term;
            self.become_follower(term, None);
        }
    }

    // ----- leader replication -----

    fn broadcast_append(&mut self) {
        for p in self.peers() {
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
        let prev = pr.next.prev();
        match self.log.term_at(prev) {
            None => {
                assert!(
                    prev < self.log.snapshot_index(),
                    "prev is missing only when compacted"
                );
                let snapshot = self.log.snapshot().clone();
                let index = snapshot.meta.index;
                self.progress
                    .get_mut(&to)
                    .expect("peer")
                    .become_snapshot(index);
                let term = self.term;
                self.send(to, RaftMessage::InstallSnapshot { term, snapshot });
            }
            Some(prev_term) => {
                let entries = self.log.slice(prev.next(), self.cfg.max_batch_entries);
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
                    },
                );
            }
        }
    }

    fn broadcast_heartbeat(&mut self) {
        self.read_seq += 1;
        let seq = self.read_seq;
        self.read_seq_sent_tick.insert(seq, self.now_ticks);
        for p in self.peers() {
            let matched = self.progress[&p].matched;
            let commit = self.log.commit().min(matched);
            let term = self.term;
            self.send(
                p,
                RaftMessage::Heartbeat {
                    term,
                    commit,
                    read_seq: seq,
                },
            );
        }
    }

    fn maybe_commit(&mut self) {
        assert_eq!(self.role, Role::Leader, "only a leader counts replicas");
        let mut matched: Vec<LogIndex> = self.progress.values().map(|p| p.matched).collect();
        matched.push(self.log.persisted());
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let n = matched[self.quorum() - 1];
        // §5.4.2: count replicas only for entries of the current term.
        if n > self.log.commit() && self.log.term_at(n) == Some(self.term) {
            let first_commit_in_term = self.log.term_at(self.log.commit()) != Some(self.term);
            assert!(n <= self.log.last_index(), "quorum index within the log");
            self.log.commit_to(n);
            if first_commit_in_term {
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
        if self.cfg.voters.len() == 1 || (self.cfg.lease_reads && self.lease_valid()) {
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
        let mut acked: Vec<u64> = self.progress.values().map(|p| p.read_seq_acked).collect();
        acked.push(self.read_seq);
        acked.sort_unstable_by(|a, b| b.cmp(a));
        acked[self.quorum() - 1]
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
        let m_term = msg.term();
        if m_term > self.term {
            match &msg {
                RaftMessage::RequestVote { transfer, .. } if !*transfer && self.in_lease() => {
                    // Leader stickiness: we heard from a live leader within
                    // an election timeout; do not help depose it.
                    return;
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
                    self.become_follower(m_term, Some(from));
                }
                _ => self.become_follower(m_term, None),
            }
        } else if m_term < self.term {
            match msg {
                RaftMessage::AppendEntries { .. }
                | RaftMessage::Heartbeat { .. }
                | RaftMessage::InstallSnapshot { .. } => {
                    // Tell a deposed leader about the new term.
                    let term = self.term;
                    self.send(from, RaftMessage::HeartbeatResponse { term, read_seq: 0 });
                }
                RaftMessage::RequestVote { pre_vote, .. } => {
                    let term = self.term;
                    self.send(
                        from,
                        RaftMessage::VoteResponse {
                            term,
                            pre_vote,
                            granted: false,
                        },
                    );
                }
                _ => {}
            }
            return;
        }

        match msg {
            RaftMessage::RequestVote {
                term,
                pre_vote,
                transfer: _,
                last_log_index,
                last_log_term,
            } => {
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
            RaftMessage::VoteResponse {
                term,
                pre_vote,
                granted,
            } => {
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
            RaftMessage::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => {
                self.follow(term, from);
                self.handle_append(from, prev_log_index, prev_log_term, entries, leader_commit);
            }
            RaftMessage::Heartbeat {
                term,
                commit,
                read_seq,
            } => {
                self.follow(term, from);
                let commit = commit.min(self.log.last_index());
                self.log.commit_to(commit);
                self.send(from, RaftMessage::HeartbeatResponse { term, read_seq });
            }
            RaftMessage::InstallSnapshot { term, snapshot } => {
                self.follow(term, from);
                let index = snapshot.meta.index;
                let match_index = if index <= self.log.commit() {
                    self.log.commit()
                } else if self.log.term_at(index) == Some(snapshot.meta.term) {
                    self.log.commit_to(index);
                    index
                } else {
                    self.log.restore(snapshot);
                    index
                };
                self.send(
                    from,
                    RaftMessage::AppendResponse {
                        term,
                        success: true,
                        match_index,
                        rejected: LogIndex(0),
                        conflict_index: LogIndex(0),
                        conflict_term: None,
                    },
                );
            }
            RaftMessage::TimeoutNow { term } => {
                assert_eq!(term, self.term, "same-term TimeoutNow after the term check");
                if self.role != Role::Leader {
                    // Skip pre-vote; `transfer` lets it through leader stickiness.
                    self.campaign(false, true);
                }
            }
            RaftMessage::AppendResponse {
                term: _,
                success,
                match_index,
                rejected,
                conflict_index,
                conflict_term,
            } => {
                if self.role != Role::Leader {
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
            RaftMessage::HeartbeatResponse { term: _, read_seq } => {
                if self.role != Role::Leader {
                    return;
                }
                let last = self.log.last_index();
                let pr = self.progress.get_mut(&from).expect("peer of the group");
                pr.heard();
                pr.read_seq_acked = pr.read_seq_acked.max(read_seq.min(self.read_seq));
                let behind = pr.matched < last;
                if matches!(pr.state, ProgressState::Snapshot { .. })
                    && pr.snapshot_elapsed_ticks >= self.cfg.election_timeout_ticks
                {
                    // The snapshot was lost: try again.
                    pr.become_probe();
                }
                self.advance_reads();
                if behind {
                    self.send_append(from, true);
                }
            }
        }
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
        prev: LogIndex,
        prev_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
    ) {
        let term = self.term;
        if prev < self.log.commit() {
            // Everything through commit matches the leader already.
            let match_index = self.log.commit();
            self.send(
                from,
                RaftMessage::AppendResponse {
                    term,
                    success: true,
                    match_index,
                    rejected: LogIndex(0),
                    conflict_index: LogIndex(0),
                    conflict_term: None,
                },
            );
            return;
        }
        match self.log.maybe_append(prev, prev_term, entries) {
            Some(last_new) => {
                self.log.commit_to(leader_commit.min(last_new));
                self.send(
                    from,
                    RaftMessage::AppendResponse {
                        term,
                        success: true,
                        match_index: last_new,
                        rejected: LogIndex(0),
                        conflict_index: LogIndex(0),
                        conflict_term: None,
                    },
                );
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
            if matches!(pr.state, ProgressState::Snapshot { .. }) {
                pr.snapshot_elapsed_ticks += 1;
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
                let active = 1 + self.progress.values().filter(|p| p.recent_active).count();
                if active < self.quorum() {
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
            assert_eq!(
                self.progress.len() + 1,
                self.cfg.voters.len(),
                "a progress per peer"
            );
        } else {
            assert!(self.progress.is_empty(), "only a leader tracks progress");
            assert!(self.pending_reads.is_empty(), "only a leader holds reads");
        }
        if self.role == Role::Candidate {
            assert_eq!(self.vote, Some(self.cfg.id), "a candidate voted for itself");
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
            if self.election_elapsed_ticks >= self.randomized_timeout_ticks {
                self.election_elapsed_ticks = 0;
                let pre_vote = self.cfg.pre_vote;
                self.campaign(pre_vote, false);
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
        if msg.from == self.cfg.id || !self.cfg.voters.contains(&msg.from) {
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
        for p in self.peers() {
            self.send_append(p, false);
        }
        if self.cfg.voters.len() == 1 {
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
        if !self.cfg.voters.contains(&to) {
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
        let voters = self.cfg.voters.clone();
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
        let committed = self.log.take_committed();
        if let Some(s) = &snapshot {
            if let Some(first) = committed.first() {
                assert!(
                    first.index > s.meta.index,
                    "no entry applied twice around a snapshot"
                );
            }
        }
        Ready {
            persist_id,
            snapshot,
            hard_state,
            entries,
            messages: std::mem::take(&mut self.msgs),
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
            membership: crate::consensus::Membership::simple(self.cfg.voters.clone()),
            membership_pending: false,
        }
    }
}

impl RaftNode {
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

//! A group's client requests, sans IO, written once for both runtimes (the
//! node's group.rs and the simulator): what an [`Op`] becomes (a read, a
//! proposal, or an answer at once), the proposal registered by where it
//! landed ([`PendingWrites`]), a read issued into the [`ReadQueue`], a
//! committed entry applied through the [`Applier`] and the writes it
//! settles, the reply an applied command gets, and which leader a
//! `not-leader` reply names.
//!
//! What stays with each runtime is IO and whom to answer: the write `W`
//! and read `R` it keeps, the deadline `D` (the node: [`Instant`]; the
//! simulator: virtual µs), how a reply travels, and when its turn ends.
//! Reads are batched here, for both: every read queued since the last
//! [`GroupRequests::flush_reads`] shares one ReadIndex round (the node
//! flushes once per turn of its core loop; the simulator flushes each
//! read as it queues it, a batch of one).
//!
//! Guarantees: a write is answered from its entry only when the entry at
//! its (index, term) commits; another term's entry there fails it
//! definitely; nothing else settles it ([`PendingWrites`]). A read is
//! answered only once its ReadIndex round confirmed it and its index is
//! applied ([`ReadQueue`]).

use std::time::Instant;

use super::applier::{Applier, Outcome};
use super::pending_writes::PendingWrites;
use super::read_queue::ReadQueue;
use crate::consensus::{
    Consensus, Entry, LogIndex, Membership, NodeId, NotLeader, Proposal, ReadOutcome,
};
use crate::protocol::{ErrorCode, Op, Reply};
use crate::state::{Applied, Command};

/// What a group does with one request.
#[derive(Debug, PartialEq)]
pub enum Request {
    /// A linearizable read of `key`, through a ReadIndex round.
    Read { key: String },
    /// The group's status (answered by the runtime that has it).
    Status,
    /// Hand leadership to `to`.
    TransferLeader { to: NodeId },
    /// A command for the log.
    Propose(Command),
    /// Answered without the log: a request that is no group operation, a
    /// transaction that does not validate, or the planted
    /// txn-follower-read's local answer.
    Answered(Reply),
}

/// What `op` asks of the group (`id` is the request's, for an answer at
/// once).
pub fn route(op: Op, id: Option<u64>, applier: &Applier) -> Request {
    let command = match op {
        Op::Read { key } => return Request::Read { key },
        Op::Status => return Request::Status,
        Op::TransferLeader { to, .. } => return Request::TransferLeader { to: NodeId(to) },
        Op::Write { key, value } => Command::Write { key, value },
        Op::Cas { key, from, to } => Command::Cas { key, from, to },
        Op::Append { key, value } => Command::Append { key, value },
        Op::Add { key, delta } => Command::Add { key, delta },
        Op::Txn { mops } => {
            if let Err(reason) = crate::state::txn::validate(&mops) {
                return Request::Answered(Reply::bad_request(id, reason));
            }
            if let Some(answer) = applier.planted_local_txn(&mops) {
                return Request::Answered(match answer {
                    Ok(results) => applied_reply(id, Applied::Value(results)),
                    Err(reason) => Reply::bad_request(id, reason),
                });
            }
            Command::Txn { mops }
        }
        Op::Acquire {
            lock,
            owner,
            ttl_ms,
        } => Command::Acquire {
            lock,
            owner,
            ttl_ms,
        },
        Op::Renew {
            lock,
            owner,
            token,
            ttl_ms,
        } => Command::Renew {
            lock,
            owner,
            token,
            ttl_ms,
        },
        Op::Release { lock, owner, token } => Command::Release { lock, owner, token },
        Op::FencedWrite { key, value, token } => Command::FencedWrite { key, value, token },
        other => {
            return Request::Answered(Reply::bad_request(
                id,
                format!("`{}` is not a group operation", other.name()),
            ))
        }
    };
    Request::Propose(command)
}

/// Whom a `not-leader` reply names: the leader the core refused with, else
/// the one this node last heard of, never itself, and only while the
/// group's configuration (if this node knows one) still holds it: a leader
/// that was just removed can only send the client back here.
pub fn leader_hint(
    refused: NotLeader,
    last_known: Option<NodeId>,
    me: NodeId,
    membership: &Membership,
) -> Option<NodeId> {
    let config_known = !membership.voters.is_empty() || membership.is_joint();
    refused
        .leader
        .or(last_known)
        .filter(|l| *l != me)
        .filter(|l| !config_known || membership.contains(*l))
}

/// The reply for an applied command.
pub fn applied_reply(id: Option<u64>, applied: Applied) -> Reply {
    match applied {
        Applied::Ok => Reply::ok(id),
        Applied::Value(v) => Reply::ok(id).with("value", v),
        Applied::Token(t) => Reply::ok(id).with("token", t),
        Applied::CasMismatch { current } => {
            Reply::error(id, ErrorCode::CasMismatch).with("value", current)
        }
        Applied::LockHeld { holder } => {
            Reply::error(id, ErrorCode::LockHeld).with("holder", holder)
        }
        Applied::NotHolder => Reply::error(id, ErrorCode::NotHolder),
        Applied::StaleToken { highest } => {
            Reply::error(id, ErrorCode::StaleToken).with("token", highest)
        }
        Applied::BadRequest(reason) => Reply::bad_request(id, reason),
    }
}

/// The reply a write gets from its entry's outcome: the applied result,
/// or `bad-request` for an entry that is no command.
pub fn outcome_reply(id: Option<u64>, outcome: Outcome) -> Reply {
    match outcome {
        Outcome::Applied(applied) => applied_reply(id, applied),
        Outcome::Undecodable(_) | Outcome::NotACommand => {
            Reply::bad_request(id, "entry did not decode")
        }
    }
}

/// A write as a runtime keeps it until it is answered.
pub trait LandedWrite {
    /// The core took its proposal at (`proposal.index`, `proposal.term`).
    /// Default: the runtime does not keep where.
    fn landed(&mut self, proposal: Proposal) {
        let _ = proposal;
    }
}

/// A proposal the core took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposed {
    pub proposal: Proposal,
    /// The index already held a pending write of an older term (its entry
    /// was truncated here; it stays pending: another node may commit it).
    pub reused_index: bool,
}

/// One committed entry, applied: its outcome and the writes it settled.
#[derive(Debug)]
pub struct AppliedEntry<W> {
    pub outcome: Outcome,
    /// The write proposed at the entry's (index, term): answer it from
    /// `outcome` ([`outcome_reply`]).
    pub ours: Option<W>,
    /// Writes proposed at the index in other terms: definitely failed.
    pub lost: Vec<W>,
}

/// Reads whose ReadIndex round ended.
#[derive(Debug)]
pub struct ReadsEnded<R> {
    /// Refused by the core, a round's batch at a time: answer `not-leader`.
    pub failed: Vec<(Vec<R>, NotLeader)>,
    /// Confirmed and their index applied: answer from the state machine.
    pub answerable: Vec<R>,
}

/// Whether a queued read opened a new batch or joined the open one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchStart {
    First,
    Joined,
}

/// The writes and reads one group owes answers, `W` and `R` being whom to
/// answer and `D` a deadline.
#[derive(Debug)]
pub struct GroupRequests<W, R, D = Instant> {
    writes: PendingWrites<W, D>,
    /// Reads queued since the last flush: issued together, in one round.
    read_batch: Vec<R>,
    /// Issued rounds, each with its batch (oldest read first).
    reads: ReadQueue<Vec<R>>,
    /// The context the next round is issued with (unique per group).
    next_read_ctx: u64,
}

impl<W, R, D: Copy + Ord> Default for GroupRequests<W, R, D> {
    fn default() -> Self {
        GroupRequests::new(PendingWrites::default())
    }
}

impl<W, R, D: Copy + Ord> GroupRequests<W, R, D> {
    /// Over `writes` (the simulator passes its planted early-fail table).
    pub fn new(writes: PendingWrites<W, D>) -> Self {
        GroupRequests {
            writes,
            read_batch: Vec::new(),
            reads: ReadQueue::default(),
            next_read_ctx: 1,
        }
    }

    /// Propose `command`; if the core takes it, remember `write` (told
    /// where it landed) until its index commits or `deadline` passes. A
    /// refusal hands `write` back with the leader the core knows (pass it
    /// through [`leader_hint`]).
    pub fn propose<C: Consensus + ?Sized>(
        &mut self,
        core: &mut C,
        command: &Command,
        deadline: D,
        mut write: W,
    ) -> Result<Proposed, (W, NotLeader)>
    where
        W: LandedWrite,
    {
        let proposal = match core.propose(command.encode()) {
            Ok(proposal) => proposal,
            Err(refused) => return Err((write, refused)),
        };
        // An older write proposed at the same index stays pending: its
        // entry is gone from this log, not from others'.
        let reused_index = self.writes.count_at(proposal.index) > 0;
        write.landed(proposal);
        self.writes
            .insert(proposal.index, proposal.term, deadline, write);
        Ok(Proposed {
            proposal,
            reused_index,
        })
    }

    /// Only with the simulator's planted early-fail bug: the writes a
    /// proposal at their index failed at once (always empty without it).
    pub fn take_failed_early(&mut self) -> Vec<W> {
        self.writes.take_failed_early()
    }

    /// Queue `read` for the next ReadIndex round; says whether it is the
    /// first queued since the last flush or joined an open batch.
    pub fn queue_read(&mut self, read: R) -> BatchStart {
        self.read_batch.push(read);
        if self.read_batch.len() == 1 {
            BatchStart::First
        } else {
            BatchStart::Joined
        }
    }

    /// Issue one ReadIndex round for every read queued since the last
    /// flush (none queued: nothing). A refusal hands the batch back, to be
    /// answered with the leader the core knows.
    pub fn flush_reads<C: Consensus + ?Sized>(
        &mut self,
        core: &mut C,
    ) -> Result<(), (Vec<R>, NotLeader)> {
        if self.read_batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.read_batch);
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        match core.read_index(ctx) {
            Ok(()) => {
                self.reads.issued(ctx, batch);
                Ok(())
            }
            Err(e) => Err((batch, e)),
        }
    }

    /// Apply one committed entry (in order) and settle the writes proposed
    /// at its index.
    pub fn apply(&mut self, applier: &mut Applier, entry: &Entry, now_ms: f64) -> AppliedEntry<W> {
        let outcome = applier.apply(entry, now_ms);
        let settled = self.writes.settle(entry.index, entry.term);
        AppliedEntry {
            outcome,
            ours: settled.ours,
            lost: settled.lost,
        }
    }

    /// ReadIndex rounds ended with `outcomes`; `applied` is the state
    /// machine's index now.
    pub fn reads_ended(
        &mut self,
        outcomes: impl IntoIterator<Item = ReadOutcome>,
        applied: LogIndex,
    ) -> ReadsEnded<R> {
        let failed = outcomes
            .into_iter()
            .filter_map(|outcome| self.reads.outcome(outcome))
            .collect();
        ReadsEnded {
            failed,
            answerable: self
                .reads
                .answerable(applied)
                .into_iter()
                .flatten()
                .collect(),
        }
    }

    /// A snapshot through `index` was installed: the writes it covers have
    /// an unknown outcome (whether their entries were ours cannot be told;
    /// answer them `timeout`).
    pub fn snapshot_installed(&mut self, index: LogIndex) -> Vec<W> {
        self.writes.take_through(index)
    }

    /// Writes whose deadline is at or before `now` (answer `timeout`).
    pub fn expired_writes(&mut self, now: D) -> Vec<W> {
        self.writes.take_expired(now)
    }

    /// Issued reads past their deadline (answer `timeout`): a round's
    /// batch is late once its oldest read is, `is_late` judging it.
    pub fn late_reads(&mut self, is_late: impl Fn(&R) -> bool) -> Vec<R> {
        let late = self
            .reads
            .take_late(|batch| batch.first().is_some_and(&is_late));
        late.into_iter().flatten().collect()
    }

    /// Everything still owed, queued reads too (the node stops, or crashed).
    pub fn take_all(&mut self) -> (Vec<W>, Vec<R>) {
        let mut reads = std::mem::take(&mut self.read_batch);
        reads.extend(self.reads.take_all().into_iter().flatten());
        (self.writes.take_all(), reads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{
        EntryKind, GroupId, Message, Ready, Role, SnapshotError, SnapshotMeta, Status, StepError,
        Term, TransferError,
    };
    use crate::server::compaction::{take_snapshot, CompactionPolicy, SnapshotStore};
    use serde_json::json;

    /// A core that takes proposals at consecutive indexes in `term` while
    /// it leads, and refuses them naming `leader` when it does not.
    struct FakeCore {
        leading: bool,
        leader: Option<NodeId>,
        term: u64,
        last_index: u64,
        refuse_snapshots: bool,
        snapshots: Vec<LogIndex>,
    }

    impl FakeCore {
        fn leader(term: u64) -> FakeCore {
            FakeCore {
                leading: true,
                leader: Some(NodeId(1)),
                term,
                last_index: 0,
                refuse_snapshots: false,
                snapshots: Vec::new(),
            }
        }

        fn refused(&self) -> NotLeader {
            NotLeader {
                leader: self.leader,
            }
        }
    }

    impl Consensus for FakeCore {
        fn id(&self) -> NodeId {
            NodeId(1)
        }
        fn group(&self) -> GroupId {
            GroupId(0)
        }
        fn tick(&mut self) {}
        fn step(&mut self, _msg: Message) -> Result<(), StepError> {
            Ok(())
        }
        fn propose(&mut self, _command: Vec<u8>) -> Result<Proposal, NotLeader> {
            if !self.leading {
                return Err(self.refused());
            }
            self.last_index += 1;
            Ok(Proposal {
                index: LogIndex(self.last_index),
                term: Term(self.term),
            })
        }
        fn read_index(&mut self, _ctx: u64) -> Result<(), NotLeader> {
            if self.leading {
                Ok(())
            } else {
                Err(self.refused())
            }
        }
        fn transfer_leader(&mut self, _to: NodeId) -> Result<(), TransferError> {
            Ok(())
        }
        fn snapshot_taken(
            &mut self,
            index: LogIndex,
            _data: Vec<u8>,
        ) -> Result<SnapshotMeta, SnapshotError> {
            if self.refuse_snapshots {
                return Err(SnapshotError::Stale {
                    index,
                    current: index,
                });
            }
            self.snapshots.push(index);
            Ok(SnapshotMeta {
                index,
                term: Term(self.term),
                voters: vec![NodeId(1)],
                outgoing: Vec::new(),
            })
        }
        fn has_ready(&self) -> bool {
            false
        }
        fn ready(&mut self) -> Ready {
            Ready::default()
        }
        fn persisted(&mut self, _persist_id: u64) {}
        fn status(&self) -> Status {
            Status {
                id: NodeId(1),
                group: GroupId(0),
                role: if self.leading {
                    Role::Leader
                } else {
                    Role::Follower
                },
                term: Term(self.term),
                leader: self.leader,
                commit_index: LogIndex(0),
                applied_index: LogIndex(0),
                last_index: LogIndex(self.last_index),
                snapshot_index: LogIndex(0),
                log_len: 0,
                membership: Membership::simple(vec![NodeId(1)]),
                membership_pending: false,
            }
        }
    }

    /// A write as a test keeps it: its name and where it landed.
    #[derive(Debug, PartialEq)]
    struct Write(&'static str, Option<(LogIndex, Term)>);

    impl LandedWrite for Write {
        fn landed(&mut self, proposal: Proposal) {
            self.1 = Some((proposal.index, proposal.term));
        }
    }

    fn applier() -> Applier {
        Applier::with_bugs(&[], None).expect("no snapshot to decode")
    }

    fn write(key: &str, value: i64) -> Command {
        Command::Write {
            key: key.into(),
            value: json!(value),
        }
    }

    fn entry(index: u64, term: u64, command: &Command) -> Entry {
        Entry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Normal(command.encode()),
        }
    }

    type Requests = GroupRequests<Write, &'static str, u64>;

    #[test]
    fn reads_writes_and_other_ops_are_routed_as_the_node_serves_them() {
        let applier = applier();
        let read = Op::Read { key: "x".into() };
        assert_eq!(
            route(read, Some(1), &applier),
            Request::Read { key: "x".into() }
        );
        let op = Op::Write {
            key: "x".into(),
            value: json!(3),
        };
        assert_eq!(
            route(op, Some(2), &applier),
            Request::Propose(write("x", 3))
        );
        let Request::Answered(reply) = route(Op::Txn { mops: Vec::new() }, Some(3), &applier)
        else {
            panic!("an empty txn is refused before the log");
        };
        assert_eq!(
            (reply.id, reply.error),
            (Some(3), Some(ErrorCode::BadRequest))
        );
        let Request::Answered(reply) = route(Op::Hello { node: 2 }, Some(4), &applier) else {
            panic!("hello is no group operation");
        };
        assert_eq!(reply.error, Some(ErrorCode::BadRequest));
    }

    #[test]
    fn a_not_leader_reply_names_only_a_leader_the_configuration_holds() {
        let config = Membership::simple(vec![NodeId(1), NodeId(2), NodeId(3)]);
        let me = NodeId(1);
        let refused = |leader: Option<u64>| NotLeader {
            leader: leader.map(NodeId),
        };
        assert_eq!(
            leader_hint(refused(Some(2)), None, me, &config),
            Some(NodeId(2))
        );
        assert_eq!(
            leader_hint(refused(None), Some(NodeId(3)), me, &config),
            Some(NodeId(3)),
            "the leader last heard of, when the core names none"
        );
        assert_eq!(
            leader_hint(refused(Some(4)), None, me, &config),
            None,
            "a leader outside the configuration would send the client back"
        );
        assert_eq!(leader_hint(refused(Some(1)), None, me, &config), None);
        assert_eq!(
            leader_hint(refused(Some(4)), None, me, &Membership::default()),
            Some(NodeId(4)),
            "a joining node that knows no configuration passes the hint on"
        );
    }

    #[test]
    fn a_write_is_answered_only_when_its_entry_commits_with_its_term() {
        let mut core = FakeCore::leader(2);
        let mut applier = applier();
        let mut requests = Requests::default();
        let first = requests
            .propose(&mut core, &write("x", 1), 100, Write("first", None))
            .expect("the leader takes it");
        assert_eq!(first.proposal.index, LogIndex(1));
        requests
            .propose(&mut core, &write("y", 2), 100, Write("second", None))
            .expect("the leader takes it");
        let applied = requests.apply(&mut applier, &entry(1, 2, &write("x", 1)), 0.0);
        assert_eq!(
            applied.ours,
            Some(Write("first", Some((LogIndex(1), Term(2))))),
            "its entry committed with its term"
        );
        assert!(applied.lost.is_empty());
        let reply = outcome_reply(Some(7), applied.outcome);
        assert!(reply.ok, "{reply:?}");
        // Another leader's entry committed at the second write's index.
        let applied = requests.apply(&mut applier, &entry(2, 3, &write("y", 9)), 0.0);
        assert_eq!(applied.ours, None, "not ours: another term");
        assert_eq!(
            applied.lost,
            vec![Write("second", Some((LogIndex(2), Term(2))))]
        );
        assert_eq!(applier.read("y"), json!(9));
        assert!(requests.take_all().0.is_empty(), "nothing else is owed");
    }

    #[test]
    fn a_proposal_at_a_reused_index_keeps_the_older_write_pending() {
        let mut core = FakeCore::leader(2);
        let mut requests = Requests::default();
        requests
            .propose(&mut core, &write("x", 1), 100, Write("old", None))
            .expect("taken");
        // A later term, its log truncated: the next proposal lands at index 1.
        core.term = 4;
        core.last_index = 0;
        let again = requests
            .propose(&mut core, &write("x", 2), 100, Write("new", None))
            .expect("taken");
        assert!(again.reused_index);
        assert!(
            requests.take_failed_early().is_empty(),
            "the contract keeps both until a commit decides"
        );
        let applied = requests.apply(&mut applier(), &entry(1, 2, &write("x", 1)), 0.0);
        assert_eq!(applied.ours.map(|w| w.0), Some("old"));
        assert_eq!(
            applied.lost.into_iter().map(|w| w.0).collect::<Vec<_>>(),
            ["new"]
        );
    }

    #[test]
    fn a_refused_proposal_or_read_is_handed_back_with_the_leader_known() {
        let mut core = FakeCore::leader(2);
        core.leading = false;
        core.leader = Some(NodeId(3));
        let mut requests = Requests::default();
        let (write, refused) = requests
            .propose(&mut core, &write("x", 1), 100, Write("w", None))
            .expect_err("a follower refuses");
        assert_eq!(write, Write("w", None), "never registered");
        assert_eq!(refused.leader, Some(NodeId(3)));
        requests.queue_read("r");
        let (batch, refused) = requests
            .flush_reads(&mut core)
            .expect_err("a follower refuses");
        assert_eq!((batch, refused.leader), (vec!["r"], Some(NodeId(3))));
        assert_eq!(requests.take_all(), (Vec::new(), Vec::new()));
    }

    #[test]
    fn a_read_is_answerable_only_once_its_index_is_applied() {
        let mut core = FakeCore::leader(2);
        let mut requests = Requests::default();
        requests.queue_read("first");
        requests.flush_reads(&mut core).expect("issued as round 1");
        requests.queue_read("refused");
        requests.flush_reads(&mut core).expect("issued as round 2");
        let outcomes = vec![
            ReadOutcome::Ready {
                ctx: 1,
                index: LogIndex(5),
            },
            ReadOutcome::Failed {
                ctx: 2,
                error: NotLeader { leader: None },
            },
        ];
        let ended = requests.reads_ended(outcomes, LogIndex(4));
        assert_eq!(
            ended.failed,
            vec![(vec!["refused"], NotLeader { leader: None })]
        );
        assert!(ended.answerable.is_empty(), "index 5 is not applied yet");
        let ended = requests.reads_ended(Vec::new(), LogIndex(5));
        assert_eq!(ended.answerable, vec!["first"]);
    }

    #[test]
    fn reads_queued_before_a_flush_share_one_round_and_are_answered_together() {
        let mut core = FakeCore::leader(2);
        let mut requests = Requests::default();
        assert_eq!(requests.queue_read("a"), BatchStart::First);
        assert_eq!(requests.queue_read("b"), BatchStart::Joined);
        requests
            .flush_reads(&mut core)
            .expect("one round, context 1");
        requests
            .flush_reads(&mut core)
            .expect("nothing queued: no round");
        assert_eq!(requests.queue_read("c"), BatchStart::First, "a new batch");
        let ready = |ctx| ReadOutcome::Ready {
            ctx,
            index: LogIndex(3),
        };
        // "c" is queued, not issued: an outcome of a context never issued
        // (3) changes nothing.
        let ended = requests.reads_ended(vec![ready(1), ready(3)], LogIndex(3));
        assert_eq!(ended.answerable, vec!["a", "b"]);
        assert_eq!(
            requests.take_all(),
            (Vec::new(), vec!["c"]),
            "c still queued"
        );
    }

    #[test]
    fn a_batch_is_late_once_its_oldest_read_is() {
        let mut core = FakeCore::leader(2);
        let mut requests = Requests::default();
        requests.queue_read("old");
        requests.queue_read("young");
        requests.flush_reads(&mut core).expect("issued");
        assert!(requests.late_reads(|read| *read == "young").is_empty());
        assert_eq!(
            requests.late_reads(|read| *read == "old"),
            vec!["old", "young"]
        );
        assert_eq!(requests.take_all(), (Vec::new(), Vec::new()));
    }

    /// A store that keeps the snapshots it was given.
    #[derive(Default)]
    struct Kept(Vec<LogIndex>);

    impl SnapshotStore for Kept {
        type Error = std::convert::Infallible;
        fn compact(&mut self, snapshot: crate::consensus::Snapshot) -> Result<(), Self::Error> {
            self.0.push(snapshot.meta.index);
            Ok(())
        }
    }

    #[test]
    fn compaction_snapshots_the_applied_index_when_due_and_stores_nothing_the_core_refuses() {
        let mut core = FakeCore::leader(2);
        let mut applier = applier();
        let mut requests = Requests::default();
        for i in 1..=3 {
            requests.apply(&mut applier, &entry(i, 2, &write("x", i as i64)), 0.0);
        }
        let policy = CompactionPolicy::every(3);
        assert!(policy.due(applier.applied(), LogIndex(0)));
        let mut store = Kept::default();
        let taken = take_snapshot(&mut core, &applier, &mut store).expect("infallible");
        assert_eq!(taken, Ok(LogIndex(3)));
        assert_eq!(
            (core.snapshots.clone(), store.0.clone()),
            (vec![LogIndex(3)], vec![LogIndex(3)])
        );
        assert!(!policy.due(applier.applied(), LogIndex(3)));
        core.refuse_snapshots = true;
        let taken = take_snapshot(&mut core, &applier, &mut store).expect("infallible");
        assert!(taken.is_err(), "the core refused");
        assert_eq!(store.0, vec![LogIndex(3)], "nothing stored for a refusal");
    }
}

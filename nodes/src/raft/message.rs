//! The Raft messages exchanged between the cores of one group.
//!
//! Every message carries the sender's term; the envelope
//! ([`crate::consensus::Message`]) carries group, sender and receiver.
//! Heartbeats are separate from appends (as in raft-rs): they carry only a
//! commit index the follower is known to hold, and the ReadIndex round
//! (`read_seq`) the leader uses to confirm its leadership.
//!
//! Replication messages carry the leader's replication `session` with the
//! receiver, and answers echo it: a leader numbers every follower record
//! ([`super::progress::Progress`]) it creates, so an answer meant for an
//! earlier record (one sent by the previous incarnation of a node id that
//! was removed, wiped and added again in the same term) is told apart and
//! ignored instead of being taken as news about the new one.

use serde::{Deserialize, Serialize};

use crate::consensus::{Entry, LogIndex, Term};
use crate::snapshot_transfer::SnapshotChunk;

/// One Raft message (the `raft` payload of a [`crate::consensus::Message`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum RaftMessage {
    /// §5.2 RequestVote; with `pre_vote` (§9.6) it asks whether a vote would
    /// be granted in `term` without anyone changing term. `transfer` marks an
    /// election started by TimeoutNow: it may disturb a live leader.
    RequestVote {
        term: Term,
        pre_vote: bool,
        transfer: bool,
        last_log_index: LogIndex,
        last_log_term: Term,
    },
    VoteResponse {
        term: Term,
        pre_vote: bool,
        granted: bool,
    },
    /// §5.3 AppendEntries: `entries` follow (prev_log_index, prev_log_term).
    AppendEntries {
        term: Term,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
        #[serde(default)]
        session: u64,
    },
    /// On success, the follower's log matches the leader's through
    /// `match_index` (durably). On rejection, `rejected` is the request's
    /// prev_log_index and the hint lets the leader skip a whole term at once.
    AppendResponse {
        term: Term,
        success: bool,
        match_index: LogIndex,
        rejected: LogIndex,
        conflict_index: LogIndex,
        conflict_term: Option<Term>,
        /// The `session` of the append (or snapshot) this answers.
        #[serde(default)]
        session: u64,
    },
    /// Leadership assertion; `commit` is at most what the follower holds.
    Heartbeat {
        term: Term,
        commit: LogIndex,
        read_seq: u64,
        #[serde(default)]
        session: u64,
    },
    /// Answers a heartbeat (echoing its `session`), or tells a deposed
    /// leader of a newer term (`session` 0).
    HeartbeatResponse {
        term: Term,
        read_seq: u64,
        #[serde(default)]
        session: u64,
    },
    /// §7: the follower's next entry was compacted away on the leader. The
    /// snapshot travels in chunks ([`SnapshotChunk`]: offset, data, done);
    /// the follower answers every chunk but the last with
    /// `InstallSnapshotResponse`, and the last, once the whole snapshot is
    /// durable, with a successful `AppendResponse` at its index.
    InstallSnapshot {
        term: Term,
        chunk: SnapshotChunk,
        #[serde(default)]
        session: u64,
    },
    /// The follower holds the first `received` bytes of the snapshot at
    /// `index` after the chunk at `offset` (not taken if `received ≤ offset`).
    InstallSnapshotResponse {
        term: Term,
        index: LogIndex,
        offset: u64,
        received: u64,
        #[serde(default)]
        session: u64,
    },
    /// §3.10 of Ongaro's thesis: start an election now (leadership transfer).
    TimeoutNow { term: Term },
}

impl RaftMessage {
    pub fn term(&self) -> Term {
        match self {
            RaftMessage::RequestVote { term, .. }
            | RaftMessage::VoteResponse { term, .. }
            | RaftMessage::AppendEntries { term, .. }
            | RaftMessage::AppendResponse { term, .. }
            | RaftMessage::Heartbeat { term, .. }
            | RaftMessage::HeartbeatResponse { term, .. }
            | RaftMessage::InstallSnapshot { term, .. }
            | RaftMessage::InstallSnapshotResponse { term, .. }
            | RaftMessage::TimeoutNow { term } => *term,
        }
    }

    /// A short name for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            RaftMessage::RequestVote { pre_vote: true, .. } => "pre-vote",
            RaftMessage::RequestVote { .. } => "request-vote",
            RaftMessage::VoteResponse { .. } => "vote-response",
            RaftMessage::AppendEntries { .. } => "append",
            RaftMessage::AppendResponse { .. } => "append-response",
            RaftMessage::Heartbeat { .. } => "heartbeat",
            RaftMessage::HeartbeatResponse { .. } => "heartbeat-response",
            RaftMessage::InstallSnapshot { .. } => "install-snapshot",
            RaftMessage::InstallSnapshotResponse { .. } => "install-snapshot-response",
            RaftMessage::TimeoutNow { .. } => "timeout-now",
        }
    }

    /// The fields that matter for a trace line, entries and snapshot data
    /// left out: `append t3 prev=i7/t2 n=4 commit=i6`.
    pub fn summary(&self) -> String {
        let kind = self.kind();
        match self {
            RaftMessage::RequestVote {
                term,
                last_log_index,
                last_log_term,
                transfer,
                ..
            } => format!("{kind} {term} last={last_log_index}/{last_log_term} transfer={transfer}"),
            RaftMessage::VoteResponse { term, granted, .. } => {
                format!("{kind} {term} granted={granted}")
            }
            RaftMessage::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                ..
            } => format!(
                "{kind} {term} prev={prev_log_index}/{prev_log_term} n={} commit={leader_commit}",
                entries.len()
            ),
            RaftMessage::AppendResponse {
                term,
                success,
                match_index,
                rejected,
                conflict_index,
                conflict_term,
                ..
            } => format!(
                "{kind} {term} success={success} match={match_index} rejected={rejected} hint={conflict_index}/{conflict_term:?}"
            ),
            RaftMessage::Heartbeat {
                term,
                commit,
                read_seq,
                ..
            } => format!("{kind} {term} commit={commit} seq={read_seq}"),
            RaftMessage::HeartbeatResponse { term, read_seq, .. } => {
                format!("{kind} {term} seq={read_seq}")
            }
            RaftMessage::InstallSnapshot { term, chunk, .. } => format!(
                "{kind} {term} {} voters={:?}",
                chunk.summary(),
                chunk.meta.voters
            ),
            RaftMessage::InstallSnapshotResponse {
                term,
                index,
                offset,
                received,
                ..
            } => format!("{kind} {term} at={index} offset={offset} received={received}"),
            RaftMessage::TimeoutNow { term } => format!("{kind} {term}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{EntryKind, GroupId, Message, NodeId, Payload};

    #[test]
    fn messages_round_trip_through_json() {
        let msg = Message {
            group: GroupId(1),
            from: NodeId(2),
            to: NodeId(3),
            payload: Payload::Raft(RaftMessage::AppendEntries {
                term: Term(4),
                prev_log_index: LogIndex(5),
                prev_log_term: Term(3),
                entries: vec![Entry {
                    index: LogIndex(6),
                    term: Term(4),
                    kind: EntryKind::Normal(b"x".to_vec()),
                }],
                leader_commit: LogIndex(5),
                session: 1,
            }),
        };
        let json = serde_json::to_string(&msg).expect("serializes");
        assert!(json.contains("\"group\":1"), "{json}");
        let back: Message = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, msg);
    }
}

//! The Raft messages exchanged between the cores of one group.
//!
//! Every message carries the sender's term; the envelope
//! ([`crate::consensus::Message`]) carries group, sender and receiver.
//! Heartbeats are separate from appends (as in raft-rs): they carry only a
//! commit index the follower is known to hold, and the ReadIndex round
//! (`read_seq`) the leader uses to confirm its leadership.

use serde::{Deserialize, Serialize};

use crate::consensus::{Entry, LogIndex, Snapshot, Term};

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
    },
    /// Leadership assertion; `commit` is at most what the follower holds.
    Heartbeat {
        term: Term,
        commit: LogIndex,
        read_seq: u64,
    },
    HeartbeatResponse {
        term: Term,
        read_seq: u64,
    },
    /// §7: the follower's next entry was compacted away on the leader.
    InstallSnapshot {
        term: Term,
        snapshot: Snapshot,
    },
    /// §3.10 of Ongaro's thesis: start an election now (leadership transfer).
    TimeoutNow {
        term: Term,
    },
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
            RaftMessage::TimeoutNow { .. } => "timeout-now",
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
            }),
        };
        let json = serde_json::to_string(&msg).expect("serializes");
        assert!(json.contains("\"group\":1"), "{json}");
        let back: Message = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, msg);
    }
}

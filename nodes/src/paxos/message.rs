//! The Multi-Paxos messages exchanged between the cores of one group
//! ("Paxos Made Moderately Complex" names in brackets).
//!
//! Every message carries a ballot; the envelope
//! ([`crate::consensus::Message`]) carries group, sender and receiver.
//! Entries in `Promise` carry the acceptor's stamps (accepted ballot and
//! origin, see [`super::ballot::Stamp`]); entries in `Accept` are stamped
//! with the leader's ballot.

use serde::{Deserialize, Serialize};

use super::ballot::Ballot;
use crate::consensus::{Entry, LogIndex, Term};
use crate::snapshot_transfer::SnapshotChunk;

/// One Paxos message (the `paxos` payload of a [`crate::consensus::Message`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum PaxosMessage {
    /// Would you promise `ballot`? Changes no state anywhere (like Raft's
    /// pre-vote): a partitioned node cannot depose a live leader.
    PrePrepare { ballot: Ballot },
    PrePromise {
        ballot: Ballot,
        granted: bool,
        promised: Ballot,
    },
    /// Phase 1a [P1a] for every slot after `commit` at once. `transfer`
    /// marks a campaign asked for by the leader (passes leader stickiness).
    /// `resume`: the rest of a Promise already made at this ballot, from
    /// where its last part ended (see `Promise::more`); no new promise is
    /// asked for.
    Prepare {
        ballot: Ballot,
        commit: LogIndex,
        transfer: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
    },
    /// Phase 1b [P1b]: the acceptor's accepted values after the candidate's
    /// commit, and its own commit (its entries up to there are chosen). The
    /// snapshot comes along when it covers slots the candidate lacks, in
    /// chunks like an InstallSnapshot's (`snapshot_chunk_bytes`, one chunk
    /// a part; entries only in the part whose chunk is the last).
    /// Bounded like an Accept (`max_batch_entries`, `max_batch_bytes`):
    /// `more` says the acceptor holds more (snapshot bytes or slots), to
    /// be asked for by a Prepare with `resume`; `resume` here echoes the
    /// Prepare's when this part continues an earlier one (None: a whole
    /// new promise, from the candidate's commit).
    Promise {
        ballot: Ballot,
        commit: LogIndex,
        snapshot: Option<SnapshotChunk>,
        entries: Vec<Entry>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// `ballot` was refused: the sender promised `promised` (preempted).
    Nack { ballot: Ballot, promised: Ballot },
    /// Phase 2a [P2a] for contiguous slots, plus the commit notification.
    Accept {
        ballot: Ballot,
        entries: Vec<Entry>,
        commit: LogIndex,
    },
    /// Phase 2b [P2b]: `agreed` is the acceptor's last slot such that every
    /// slot after its commit up to it is durably accepted at `ballot`. Not
    /// `ok`: the Accept skipped slots; resend from `agreed + 1`.
    Accepted {
        ballot: Ballot,
        ok: bool,
        agreed: LogIndex,
    },
    /// Leadership, commit notification to learners, and read rounds.
    Heartbeat {
        ballot: Ballot,
        commit: LogIndex,
        read_seq: u64,
    },
    HeartbeatReply {
        ballot: Ballot,
        read_seq: u64,
        agreed: LogIndex,
    },
    /// Catch-up for an acceptor whose next slot was compacted away, in
    /// chunks ([`SnapshotChunk`]: offset, data, done). Every chunk but the
    /// last is answered by `InstallSnapshotReply`; the last, once the
    /// whole snapshot is durable, by `Accepted` (agreed at least its index).
    InstallSnapshot {
        ballot: Ballot,
        chunk: SnapshotChunk,
    },
    /// The acceptor holds the first `received` bytes of the snapshot at
    /// `index` after the chunk at `offset` (not taken if `received ≤ offset`).
    InstallSnapshotReply {
        ballot: Ballot,
        index: LogIndex,
        offset: u64,
        received: u64,
    },
    /// Leadership transfer: campaign now. `commit` lets a leader that a
    /// new configuration removed tell its successor that the configuration
    /// making it a voter is chosen.
    TimeoutNow {
        ballot: Ballot,
        #[serde(default)]
        commit: LogIndex,
    },
}

/// Where the next part of a promise made in parts starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resume {
    /// The acceptor's snapshot at `index`, from byte `offset` (the
    /// snapshot is still being sent; no entry has been).
    Snapshot { index: LogIndex, offset: u64 },
    /// The accepted values from this slot on.
    Slot(LogIndex),
}

impl PaxosMessage {
    pub fn ballot(&self) -> Ballot {
        match self {
            PaxosMessage::PrePrepare { ballot }
            | PaxosMessage::PrePromise { ballot, .. }
            | PaxosMessage::Prepare { ballot, .. }
            | PaxosMessage::Promise { ballot, .. }
            | PaxosMessage::Nack { ballot, .. }
            | PaxosMessage::Accept { ballot, .. }
            | PaxosMessage::Accepted { ballot, .. }
            | PaxosMessage::Heartbeat { ballot, .. }
            | PaxosMessage::HeartbeatReply { ballot, .. }
            | PaxosMessage::InstallSnapshot { ballot, .. }
            | PaxosMessage::InstallSnapshotReply { ballot, .. }
            | PaxosMessage::TimeoutNow { ballot, .. } => *ballot,
        }
    }

    /// The ballot as a term (for traces).
    pub fn term(&self) -> Term {
        self.ballot().term()
    }

    /// A short name for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            PaxosMessage::PrePrepare { .. } => "pre-prepare",
            PaxosMessage::PrePromise { .. } => "pre-promise",
            PaxosMessage::Prepare { .. } => "prepare",
            PaxosMessage::Promise { .. } => "promise",
            PaxosMessage::Nack { .. } => "nack",
            PaxosMessage::Accept { .. } => "accept",
            PaxosMessage::Accepted { .. } => "accepted",
            PaxosMessage::Heartbeat { .. } => "heartbeat",
            PaxosMessage::HeartbeatReply { .. } => "heartbeat-reply",
            PaxosMessage::InstallSnapshot { .. } => "install-snapshot",
            PaxosMessage::InstallSnapshotReply { .. } => "install-snapshot-reply",
            PaxosMessage::TimeoutNow { .. } => "timeout-now",
        }
    }

    /// The fields that matter for a trace line, entries and snapshot data
    /// left out.
    pub fn summary(&self) -> String {
        let kind = self.kind();
        match self {
            PaxosMessage::PrePrepare { ballot } => format!("{kind} {ballot:?}"),
            PaxosMessage::PrePromise {
                ballot,
                granted,
                promised,
            } => format!("{kind} {ballot:?} granted={granted} promised={promised:?}"),
            PaxosMessage::Prepare {
                ballot,
                commit,
                resume,
                ..
            } => format!("{kind} {ballot:?} commit={commit} resume={resume:?}"),
            PaxosMessage::Promise {
                ballot,
                commit,
                snapshot,
                entries,
                resume,
                more,
            } => format!(
                "{kind} {ballot:?} commit={commit} snapshot={} n={} resume={resume:?} more={more}",
                snapshot
                    .as_ref()
                    .map_or_else(|| "none".to_string(), SnapshotChunk::summary),
                entries.len()
            ),
            PaxosMessage::Nack { ballot, promised } => {
                format!("{kind} {ballot:?} promised={promised:?}")
            }
            PaxosMessage::Accept {
                ballot,
                entries,
                commit,
            } => format!(
                "{kind} {ballot:?} from={:?} n={} commit={commit}",
                entries.first().map(|e| e.index),
                entries.len()
            ),
            PaxosMessage::Accepted { ballot, ok, agreed } => {
                format!("{kind} {ballot:?} ok={ok} agreed={agreed}")
            }
            PaxosMessage::Heartbeat {
                ballot,
                commit,
                read_seq,
            } => format!("{kind} {ballot:?} commit={commit} seq={read_seq}"),
            PaxosMessage::HeartbeatReply {
                ballot,
                read_seq,
                agreed,
            } => format!("{kind} {ballot:?} seq={read_seq} agreed={agreed}"),
            PaxosMessage::InstallSnapshot { ballot, chunk } => {
                format!("{kind} {ballot:?} {}", chunk.summary())
            }
            PaxosMessage::InstallSnapshotReply {
                ballot,
                index,
                offset,
                received,
            } => format!("{kind} {ballot:?} at={index} offset={offset} received={received}"),
            PaxosMessage::TimeoutNow { ballot, commit } => {
                format!("{kind} {ballot:?} commit={commit}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{EntryKind, GroupId, Message, NodeId, Payload};

    #[test]
    fn messages_round_trip_through_json() {
        let b = Ballot::new(3, NodeId(2));
        let msg = Message {
            group: GroupId(1),
            from: NodeId(2),
            to: NodeId(3),
            payload: Payload::Paxos(PaxosMessage::Accept {
                ballot: b,
                entries: vec![Entry {
                    index: LogIndex(6),
                    term: Term(b.0 << 32 | b.0),
                    kind: EntryKind::Normal(b"x".to_vec()),
                }],
                commit: LogIndex(5),
            }),
        };
        let json = serde_json::to_string(&msg).expect("serializes");
        assert!(json.contains("\"paxos\""), "{json}");
        assert!(json.contains("\"type\":\"accept\""), "{json}");
        let back: Message = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, msg);
        assert_eq!(msg.payload.kind(), "accept");
        assert_eq!(msg.payload.term(), b.term());
    }
}

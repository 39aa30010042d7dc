//! A group's admin ops (`transfer-leader`, `status`), sans IO, written once
//! for both runtimes (the node's group.rs and the simulator's nemesis and
//! impostor): what the core does with the op, and the answer it gets.
//!
//! `transfer-leader` is handed to the core: `ok` once the core started the
//! transfer, `not-leader` naming the leader by the same rule as a refused
//! write ([`leader_hint`]), `bad-request` with the core's reason for any
//! other refusal. `status` is a [`GroupStatus`], computed from the core's
//! status, the applier and what the runtime reports of its storage.
//!
//! What stays with each runtime: the access check before the op (server/
//! access.rs, called where each runtime admits requests), the address a
//! hinted leader is named by, and how the reply travels.

use super::group_status::GroupStatus;
use super::requests::leader_hint;
use crate::consensus::{Consensus, NodeId, TransferError};
use crate::protocol::Reply;

/// The answer to one admin op.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminAnswer {
    /// The core started handing leadership over.
    Transferred,
    /// This node does not lead: the leader to try instead, if any
    /// ([`leader_hint`]).
    NotLeader { hint: Option<NodeId> },
    /// The core refused the op for another reason.
    BadRequest { reason: String },
    /// The group's status.
    Status(Box<GroupStatus>),
}

impl AdminAnswer {
    /// Hand leadership of the group `core` runs on `me` to `to`.
    /// `last_known` is the leader the runtime last heard of (for the hint).
    pub fn transfer_leader<C: Consensus + ?Sized>(
        core: &mut C,
        to: NodeId,
        last_known: Option<NodeId>,
        me: NodeId,
    ) -> AdminAnswer {
        match core.transfer_leader(to) {
            Ok(()) => AdminAnswer::Transferred,
            Err(TransferError::NotLeader(refused)) => {
                let membership = core.status().membership;
                AdminAnswer::NotLeader {
                    hint: leader_hint(refused, last_known, me, &membership),
                }
            }
            Err(other) => AdminAnswer::BadRequest {
                reason: other.to_string(),
            },
        }
    }

    /// The reply to request `id`; `address_of` names a node to clients (a
    /// hinted leader, the status's leader).
    pub fn reply(&self, id: Option<u64>, address_of: impl Fn(NodeId) -> Option<String>) -> Reply {
        match self {
            AdminAnswer::Transferred => Reply::ok(id),
            AdminAnswer::NotLeader { hint } => Reply::not_leader(id, hint.and_then(address_of)),
            AdminAnswer::BadRequest { reason } => Reply::bad_request(id, reason.clone()),
            AdminAnswer::Status(status) => {
                let leader_address = status.core.leader.and_then(address_of);
                let mut reply = Reply::ok(id);
                for (name, value) in status.fields(leader_address) {
                    reply = reply.with(name, value);
                }
                reply
            }
        }
    }

    /// The reply as its wire line, without the newline (the simulator
    /// records it as the answer an impostor got).
    pub fn reply_line(
        &self,
        id: Option<u64>,
        address_of: impl Fn(NodeId) -> Option<String>,
    ) -> String {
        let line = self.reply(id, address_of).encode();
        String::from_utf8_lossy(&line).trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{
        GroupId, LogIndex, Membership, NotLeader, Proposal, Ready, Role, SnapshotError,
        SnapshotMeta, Status, StepError, Term,
    };
    use crate::protocol::ErrorCode;
    use crate::server::applier::Applier;
    use crate::server::group_status::{GroupStatus, RuntimeReport};

    /// A core that answers `transfer_leader` with `refusal` (None: starts
    /// the transfer), in a group of voters 1, 2 and 3.
    struct TransferCore {
        refusal: Option<TransferError>,
        asked: Vec<NodeId>,
    }

    impl Consensus for TransferCore {
        fn id(&self) -> NodeId {
            NodeId(1)
        }
        fn group(&self) -> GroupId {
            GroupId(0)
        }
        fn tick(&mut self) {}
        fn step(&mut self, _message: crate::consensus::Message) -> Result<(), StepError> {
            Ok(())
        }
        fn propose(&mut self, _command: Vec<u8>) -> Result<Proposal, NotLeader> {
            Err(NotLeader { leader: None })
        }
        fn read_index(&mut self, _context: u64) -> Result<(), NotLeader> {
            Err(NotLeader { leader: None })
        }
        fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
            self.asked.push(to);
            match self.refusal.clone() {
                None => Ok(()),
                Some(refusal) => Err(refusal),
            }
        }
        fn snapshot_taken(
            &mut self,
            index: LogIndex,
            _data: Vec<u8>,
        ) -> Result<SnapshotMeta, SnapshotError> {
            Err(SnapshotError::NotApplied {
                index,
                applied: LogIndex(0),
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
            status_of(Role::Follower, Some(NodeId(2)))
        }
    }

    fn status_of(role: Role, leader: Option<NodeId>) -> Status {
        Status {
            id: NodeId(1),
            group: GroupId(4),
            role,
            term: Term(7),
            leader,
            commit_index: LogIndex(9),
            applied_index: LogIndex(8),
            last_index: LogIndex(10),
            snapshot_index: LogIndex(3),
            log_len: 7,
            membership: Membership::simple(vec![NodeId(1), NodeId(2), NodeId(3)]),
            membership_pending: false,
        }
    }

    fn address(node: NodeId) -> Option<String> {
        Some(format!("10.0.0.{}:7000", node.0))
    }

    fn transfer(refusal: Option<TransferError>, last_known: Option<NodeId>) -> AdminAnswer {
        let mut core = TransferCore {
            refusal,
            asked: Vec::new(),
        };
        let answer = AdminAnswer::transfer_leader(&mut core, NodeId(3), last_known, NodeId(1));
        assert_eq!(core.asked, vec![NodeId(3)], "the core is asked once");
        answer
    }

    #[test]
    fn a_started_transfer_is_answered_ok() {
        let answer = transfer(None, None);
        assert_eq!(answer, AdminAnswer::Transferred);
        assert_eq!(answer.reply(Some(5), address), Reply::ok(Some(5)));
    }

    /// The same rule as a refused write: the core's leader, else the one
    /// last heard of, never this node, only while the configuration holds it.
    #[test]
    fn a_transfer_refused_by_a_follower_names_the_leader_as_a_write_would() {
        let refused = |leader| Some(TransferError::NotLeader(NotLeader { leader }));
        let answer = transfer(refused(Some(NodeId(2))), None);
        assert_eq!(
            answer,
            AdminAnswer::NotLeader {
                hint: Some(NodeId(2))
            }
        );
        let reply = answer.reply(Some(5), address);
        assert_eq!(reply.error, Some(ErrorCode::NotLeader));
        assert_eq!(reply.leader(), Some("10.0.0.2:7000"));
        assert_eq!(
            transfer(refused(None), Some(NodeId(3))),
            AdminAnswer::NotLeader {
                hint: Some(NodeId(3))
            }
        );
        assert_eq!(
            transfer(refused(Some(NodeId(4))), None),
            AdminAnswer::NotLeader { hint: None },
            "n4 is not in the configuration"
        );
        assert_eq!(
            transfer(refused(None), Some(NodeId(1))),
            AdminAnswer::NotLeader { hint: None },
            "never this node"
        );
        let unhinted = transfer(refused(None), None).reply(Some(5), address);
        assert_eq!(unhinted.leader(), None);
        assert_eq!(
            unhinted.fields.get("leader"),
            Some(&serde_json::Value::Null)
        );
    }

    #[test]
    fn a_transfer_the_core_refuses_otherwise_is_a_bad_request_with_its_reason() {
        let answer = transfer(Some(TransferError::UnknownTarget(NodeId(3))), None);
        let reply = answer.reply(Some(5), address);
        assert_eq!(reply.error, Some(ErrorCode::BadRequest));
        assert_eq!(
            reply.fields.get("reason").and_then(|r| r.as_str()),
            Some("n3 is not a voter of this group")
        );
    }

    /// The wire reply of `status`: every field docs/protocol.md lists,
    /// from the core, the applier and the runtime's report (the snapshot
    /// index the later of the stored one and the core's).
    #[test]
    fn a_status_reply_carries_the_nodes_fields() {
        let applier = Applier::with_bugs(&[], None).expect("no snapshot");
        let runtime = RuntimeReport {
            consensus: "raft",
            stored_snapshot_index: LogIndex(5),
            wal_bytes: Some(4096),
            clock_offset_ms: -20,
            clock_rate: 1.5,
            bugs: vec!["stale-read"],
        };
        let status = GroupStatus::new(&status_of(Role::Leader, Some(NodeId(1))), &applier, runtime);
        let reply = AdminAnswer::Status(Box::new(status)).reply(Some(5), address);
        let wire: serde_json::Value =
            serde_json::from_slice(&reply.encode()).expect("a reply decodes");
        assert_eq!(
            wire,
            serde_json::json!({
                "id": 5, "ok": true, "node": 1, "group": 4, "role": "leader", "term": 7,
                "leader": 1, "leader_addr": "10.0.0.1:7000", "commit_index": 9,
                "applied_index": 0, "last_index": 10, "log_len": 7, "snapshot_index": 5,
                "wal_bytes": 4096, "keys": 0, "consensus": "raft", "clock_offset_ms": -20,
                "clock_rate": 1.5, "bugs": ["stale-read"],
            })
        );
    }
}

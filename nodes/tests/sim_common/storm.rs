//! Planted runaway cores, the watchdog's proof of power: a run of either
//! would never end, and the simulator's watchdog must fail it as a liveness
//! failure instead.
//! - [`StormCore<false>`]: every message it receives makes it send two to
//!   every peer (a message storm that doubles with every hop);
//! - [`StormCore<true>`]: its `has_ready` never turns false (a core that
//!   spins inside one step).
//!
//! Neither ever leads: clients only hear "not the leader".

use faultline_nodes::consensus::{
    ConfigError, Consensus, CoreConfig, GroupId, LogIndex, Message, NodeId, NotLeader, Payload,
    Proposal, Ready, Recovered, Role, SnapshotError, SnapshotMeta, Status, StepError, Term,
    TransferError,
};
use faultline_nodes::raft::message::RaftMessage;
use faultline_nodes::sim::core::{Checks, CoreView};
use faultline_nodes::sim::SimCore;

use super::Swept;

pub struct StormCore<const SPIN: bool> {
    cfg: CoreConfig,
    outbox: Vec<Message>,
    persist_id: u64,
}

impl<const SPIN: bool> StormCore<SPIN> {
    fn heartbeat_to(&self, to: NodeId) -> Message {
        Message {
            group: self.cfg.group,
            from: self.cfg.id,
            to,
            payload: Payload::Raft(RaftMessage::Heartbeat {
                term: Term(1),
                commit: LogIndex(0),
                read_seq: 0,
                session: 0,
            }),
        }
    }

    /// Two heartbeats to every other voter.
    fn resend_to_everyone(&mut self) {
        let peers: Vec<NodeId> = self
            .cfg
            .voters
            .iter()
            .copied()
            .filter(|&v| v != self.cfg.id)
            .collect();
        for to in peers {
            for _ in 0..2 {
                let m = self.heartbeat_to(to);
                self.outbox.push(m);
            }
        }
    }
}

impl<const SPIN: bool> Consensus for StormCore<SPIN> {
    fn id(&self) -> NodeId {
        self.cfg.id
    }

    fn group(&self) -> GroupId {
        self.cfg.group
    }

    fn tick(&mut self) {}

    fn step(&mut self, _msg: Message) -> Result<(), StepError> {
        self.resend_to_everyone();
        Ok(())
    }

    fn propose(&mut self, _command: Vec<u8>) -> Result<Proposal, NotLeader> {
        Err(NotLeader { leader: None })
    }

    fn read_index(&mut self, _ctx: u64) -> Result<(), NotLeader> {
        Err(NotLeader { leader: None })
    }

    fn transfer_leader(&mut self, _to: NodeId) -> Result<(), TransferError> {
        Err(NotLeader { leader: None }.into())
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
        SPIN || !self.outbox.is_empty()
    }

    fn ready(&mut self) -> Ready {
        self.persist_id += 1;
        Ready {
            persist_id: self.persist_id,
            messages: std::mem::take(&mut self.outbox),
            ..Ready::default()
        }
    }

    fn persisted(&mut self, _persist_id: u64) {}

    fn status(&self) -> Status {
        Status {
            id: self.cfg.id,
            group: self.cfg.group,
            role: Role::Follower,
            term: Term(1),
            leader: None,
            commit_index: LogIndex(0),
            applied_index: LogIndex(0),
            last_index: LogIndex(0),
            snapshot_index: LogIndex(0),
            log_len: 0,
            membership: Default::default(),
            membership_pending: false,
        }
    }
}

impl<const SPIN: bool> SimCore for StormCore<SPIN> {
    const PROTOCOL: &'static str = "storm";
    const CHECKS: Checks = Checks {
        log_matching: false,
        leader_completeness: false,
    };

    fn build(cfg: CoreConfig, _recovered: Recovered) -> Result<Self, ConfigError> {
        let mut core = StormCore {
            cfg,
            outbox: Vec::new(),
            persist_id: 0,
        };
        // The first round of messages starts the storm.
        core.resend_to_everyone();
        Ok(core)
    }

    fn view(&self) -> CoreView<'_> {
        CoreView {
            role: Role::Follower,
            term: Term(1),
            snapshot_index: LogIndex(0),
            snapshot_term: Term(0),
            entries: &[],
        }
    }
}

impl Swept for StormCore<false> {
    const TEST: &'static str = "sim";
    const REPLAY: &'static str = "planted_storm_replay --include-ignored --nocapture";
}

impl Swept for StormCore<true> {
    const TEST: &'static str = "sim";
    const REPLAY: &'static str = "planted_spin_replay --include-ignored --nocapture";
}

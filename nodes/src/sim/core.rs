//! SimCore: what the simulator needs from a consensus core beyond
//! [`Consensus`]: how to build one, a read-only view of its log for the
//! safety checks, and which of those checks apply to the protocol.
//! A second protocol (Multi-Paxos) plugs in by implementing this trait.

use crate::consensus::{
    ConfigError, Consensus, CoreConfig, Entry, EntryKind, LogIndex, Payload, Recovered, Role, Term,
};
use crate::raft::message::RaftMessage;
use crate::raft::RaftNode;

/// Which generic checks hold for a protocol. Election safety and state
/// machine safety are always checked.
#[derive(Clone, Copy, Debug)]
pub struct Checks {
    /// §5.3: same index and term ⇒ same entry and same prefix.
    pub log_matching: bool,
    /// §5.4: a new leader holds every committed entry.
    pub leader_completeness: bool,
}

/// A read-only view of a core's log.
#[derive(Clone, Copy, Debug)]
pub struct CoreView<'a> {
    pub role: Role,
    pub term: Term,
    pub snapshot_index: LogIndex,
    pub snapshot_term: Term,
    /// Entries after the snapshot, contiguous.
    pub entries: &'a [Entry],
}

impl CoreView<'_> {
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot_index.0 + self.entries.len() as u64)
    }

    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        if index < self.snapshot_index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index.0 - self.snapshot_index.0 - 1) as usize].term)
    }
}

pub trait SimCore: Consensus + Sized {
    const PROTOCOL: &'static str;
    const CHECKS: Checks;
    fn build(cfg: CoreConfig, recovered: Recovered) -> Result<Self, ConfigError>;
    fn view(&self) -> CoreView<'_>;
    /// Protocol-specific invariants of one core, checked after every step.
    fn check_self(&self) -> Result<(), String> {
        Ok(())
    }
    /// State for cross-node protocol checks, kept across steps and restarts
    /// for one run (Paxos: which values were durably accepted and chosen).
    fn new_oracle(_voters: usize) -> Box<dyn std::any::Any> {
        Box::new(())
    }
    /// How a node added to the group starts: its initial term and its
    /// [`CoreConfig::join_floor`], from the entry that added it
    /// (`adding`: term, index) and what its previous incarnation in this
    /// group left behind (`left`: the highest term it had and the last
    /// index it held; None: the id never ran the group). The real runtime
    /// keeps `left` in groups.json. Default (Raft): the adding leader's
    /// term and the adding entry.
    fn joining(
        adding: (Term, LogIndex),
        _left: Option<(Term, LogIndex)>,
    ) -> (Term, Option<(Term, LogIndex)>) {
        (adding.0, Some(adding))
    }
    /// Proof of power only ([`super::SimOptions::membership_bug`]): make
    /// this core's membership changes unsafe in a known way (Raft: skip the
    /// joint phase, going from C_old straight to C_new). Default: no bug.
    fn plant_membership_bug(&mut self) {}
    /// What a peer impostor let in under `claims`'s id sends this core to
    /// do harm ([`crate::sim::impostor`]); only an access bug lets it in.
    /// Default: nothing forged (the access check's failure alone shows the
    /// bug).
    fn forged_message(&self, _claims: crate::consensus::NodeId) -> Option<Payload> {
        None
    }
    /// Cross-node checks after every step of `node`; Err(property, detail).
    fn check_cluster(
        &mut self,
        _oracle: &mut dyn std::any::Any,
        _node: crate::consensus::NodeId,
    ) -> Result<(), (&'static str, String)> {
        Ok(())
    }
}

impl SimCore for RaftNode {
    const PROTOCOL: &'static str = "raft";
    const CHECKS: Checks = Checks {
        log_matching: true,
        leader_completeness: true,
    };

    fn build(cfg: CoreConfig, recovered: Recovered) -> Result<Self, ConfigError> {
        RaftNode::new(cfg, recovered)
    }

    fn plant_membership_bug(&mut self) {
        self.plant_skip_joint_bug();
    }

    fn check_self(&self) -> Result<(), String> {
        self.check_membership()
    }

    /// A candidate gets a granted vote it never won; a follower an
    /// append of the leader's term with an entry the leader never wrote,
    /// committed at once: two different entries may then commit at one
    /// index (state machine safety, §5.4.3).
    fn forged_message(&self, _claims: crate::consensus::NodeId) -> Option<Payload> {
        let view = self.view();
        let message = match view.role {
            Role::Candidate => RaftMessage::VoteResponse {
                term: view.term,
                pre_vote: false,
                granted: true,
            },
            Role::Follower => {
                let last = view.last_index();
                let command = crate::state::Command::Write {
                    key: "r0".into(),
                    value: serde_json::json!("forged"),
                };
                RaftMessage::AppendEntries {
                    term: view.term,
                    prev_log_index: last,
                    prev_log_term: view.term_at(last).expect("the last index has a term"),
                    entries: vec![Entry {
                        index: LogIndex(last.0 + 1),
                        term: view.term,
                        kind: EntryKind::Normal(command.encode()),
                    }],
                    leader_commit: LogIndex(last.0 + 1),
                    session: 0,
                }
            }
            _ => return None,
        };
        Some(Payload::Raft(message))
    }

    fn view(&self) -> CoreView<'_> {
        let log = self.log();
        CoreView {
            role: self.role(),
            term: self.term(),
            snapshot_index: log.snapshot_index(),
            snapshot_term: log.snapshot().meta.term,
            entries: log.entries(),
        }
    }
}

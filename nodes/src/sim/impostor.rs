//! The simulated impostor: now and then during the faults it connects to a
//! random node with a credential it should not be let in with and asks
//! something: no credential at all, a wrong token, the client role's
//! credential on admin ops (status, transfer-leader), or node A's own
//! peer credential claiming node B's id in its `hello`, followed by a
//! forged consensus message from B ([`super::SimCore::forged_message`]).
//! The node decides through the node's own access check
//! ([`super::connection`]); each attempt and its outcome is recorded in the
//! shape of the harness's `impostor` nemesis events, so the tests judge
//! them with the harness's `access` checker.
//!
//! Guarantees: the impostor draws only from a stream of its own (the
//! seed's other draws stay as they were), and a refused attempt changes
//! nothing in the world, so a seed without an access bug keeps its trace.

use serde_json::{json, Value};

use super::connection::Credential;
use super::rng::SimRng;
use crate::consensus::NodeId;
use crate::protocol::Op;

/// The impostor's stream: `seed ^ STREAM`.
const STREAM: u64 = 0xA1u64 << 56;

/// What one attempt presents and asks.
#[derive(Clone, Debug, PartialEq)]
pub enum Attempt {
    /// A request `op` with `credential` (labelled `label`).
    Request {
        label: &'static str,
        credential: Credential,
        op: Op,
    },
    /// Node `presents`'s own peer credential with a `hello` claiming
    /// `claims`, then a forged consensus message from `claims`.
    Peer { presents: NodeId, claims: NodeId },
}

impl Attempt {
    /// The credential's label, as the harness names it.
    pub fn credential(&self) -> String {
        match self {
            Attempt::Request { label, .. } => label.to_string(),
            Attempt::Peer { presents, .. } => format!("peer-{}", presents.0),
        }
    }

    /// What is asked: the op's name, or `hello+consensus-message`.
    pub fn ask(&self) -> &'static str {
        match self {
            Attempt::Request { op, .. } => op.name(),
            Attempt::Peer { .. } => "hello+consensus-message",
        }
    }
}

/// How a node took one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Refused, with the node's reason.
    Refused(String),
    /// Let in; what it got (a forged message's kind, an admin op's effect).
    Accepted(String),
    /// The node was down.
    NoAnswer,
}

/// One attempt against one node, and its outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct ImpostorAttempt {
    pub time_us: u64,
    pub node: NodeId,
    pub attempt: Attempt,
    pub outcome: AttemptOutcome,
}

impl ImpostorAttempt {
    /// The value of the harness's `impostor` nemesis event for this
    /// attempt (docs/history-format.md): node, credential, ask, claims,
    /// outcome, and the reason or the answer.
    pub fn event_value(&self) -> Value {
        let mut value = json!({
            "node": self.node.to_string(),
            "credential": self.attempt.credential(),
            "ask": self.attempt.ask(),
        });
        if let Attempt::Peer { claims, .. } = &self.attempt {
            value["claims"] = json!(claims.to_string());
        }
        match &self.outcome {
            AttemptOutcome::Refused(reason) => {
                value["outcome"] = json!("refused");
                value["code"] = json!("unauthorized");
                value["reason"] = json!(reason);
            }
            AttemptOutcome::Accepted(answer) => {
                value["outcome"] = json!("accepted");
                value["answer"] = json!(answer);
            }
            AttemptOutcome::NoAnswer => {
                value["outcome"] = json!("no-answer");
                value["reason"] = json!("the node is down");
            }
        }
        value
    }
}

/// The impostor's plan (its own random stream) and what it recorded.
#[derive(Clone, Debug)]
pub struct Impostor {
    rng: SimRng,
    pub attempts: Vec<ImpostorAttempt>,
}

impl Impostor {
    pub fn new(seed: u64) -> Impostor {
        Impostor {
            rng: SimRng::new(seed ^ STREAM),
            attempts: Vec::new(),
        }
    }

    /// Virtual µs until the next attempt.
    pub fn next_delay_us(&mut self) -> u64 {
        self.rng.range(50_000, 300_000)
    }

    /// The next attempt's target and what it tries, among `pool`'s ids.
    pub fn next_attempt(&mut self, pool: &[NodeId]) -> (NodeId, Attempt) {
        let target = self.rng.pick(pool);
        let others: Vec<NodeId> = pool.iter().copied().filter(|&id| id != target).collect();
        let read = Op::Read { key: "r0".into() };
        let attempt = match self.rng.below(4) {
            0 => Attempt::Request {
                label: "none",
                credential: Credential::none(),
                op: read,
            },
            1 => Attempt::Request {
                label: "wrong-token",
                credential: Credential::wrong_token(),
                op: read,
            },
            2 => {
                let to = self.rng.pick(pool);
                let op = if self.rng.chance(0.5) {
                    Op::Status
                } else {
                    Op::TransferLeader {
                        to: to.0,
                        group: None,
                    }
                };
                Attempt::Request {
                    label: "client",
                    credential: Credential::client(),
                    op,
                }
            }
            _ if others.len() < 2 => Attempt::Request {
                label: "client",
                credential: Credential::client(),
                op: Op::Status,
            },
            _ => {
                let presents = self.rng.pick(&others);
                let claimable: Vec<NodeId> = others
                    .iter()
                    .copied()
                    .filter(|&id| id != presents)
                    .collect();
                let claims = self.rng.pick(&claimable);
                Attempt::Peer { presents, claims }
            }
        };
        (target, attempt)
    }

    pub fn record(&mut self, attempt: ImpostorAttempt) {
        self.attempts.push(attempt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_covers_every_kind_and_never_claims_the_target_or_itself() {
        let pool: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let mut impostor = Impostor::new(7);
        let mut asks = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let (target, attempt) = impostor.next_attempt(&pool);
            if let Attempt::Peer { presents, claims } = attempt {
                assert_ne!(presents, claims);
                assert_ne!(claims, target);
                assert_ne!(presents, target);
            }
            asks.insert(format!("{} {}", attempt.credential(), attempt.ask()));
        }
        for expected in [
            "none read",
            "wrong-token read",
            "client status",
            "client transfer-leader",
        ] {
            assert!(asks.contains(expected), "{expected}: {asks:?}");
        }
        assert!(asks.iter().any(|a| a.starts_with("peer-")), "{asks:?}");
    }
}

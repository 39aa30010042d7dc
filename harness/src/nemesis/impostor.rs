//! The impostor fault (issue 19, item 4): on its turn it connects to every
//! node as someone the node must not let in, and records what the node
//! did with each attempt. Asked for by name (`--nemesis all,impostor`);
//! it needs a run with credentials (`--auth` or `--tls`): without either
//! the node admits anyone by design.
//!
//! Each attempt is one fresh connection with one credential asking one
//! thing ([`Ask`]): reads and writes of a key no workload uses
//! ([`IMPOSTOR_KEY`]), `status`, a membership change of a group no node
//! hosts ([`NO_SUCH_GROUP`]), and `hello` claiming another node's id. The
//! credentials ([`ImpostorSetup`], from the system): none at all, a wrong
//! token (`--auth`), the client role's credential on admin ops and on a
//! peer session, a node's own certificate claiming another node's id in
//! `hello` (`--tls`), and plain TCP to a TLS node. After a refused
//! `hello`, a forged consensus message on the same connection (a Raft
//! pre-vote at term 0, which no core acts on). Each attempt becomes one
//! history event, process `nemesis`, f `impostor` ([`Attempt::value`]),
//! judged by the `access` checker (faultline-checker's checkers/access.rs).
//!
//! Guarantees: only nodes::client's [`Connection`] talks to the node and
//! nodes::protocol's types make every line (no JSON of its own); every
//! attempt is bounded by [`ATTEMPT_TIMEOUT`] per step, and a node that does
//! not answer is `no-answer`, never `accepted`; an attempt a node wrongly
//! accepts changes no data a workload checks (its key is the impostor's,
//! its membership change names a group no node hosts, its forged message
//! is only sent after a refused `hello` and asks for nothing).

use crate::cluster::{NodeId, NodeInfo};
use faultline_nodes::client::{ClientError, Connection, Credentials};
use faultline_nodes::consensus::{GroupId, LogIndex, Message, NodeId as WireNodeId, Payload, Term};
use faultline_nodes::protocol::{ErrorCode, Op, Reply};
use faultline_nodes::raft::message::RaftMessage;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The key the impostor reads and writes: no workload uses it
/// (docs/protocol.md, "Requests and replies").
pub const IMPOSTOR_KEY: &str = "faultline-impostor";
/// The group its membership change names: no node hosts it, so a node
/// that wrongly lets the change through answers an error and changes
/// nothing.
pub const NO_SUCH_GROUP: u64 = u32::MAX as u64;
/// The longest each step of an attempt (connect, a reply) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// A wrong token: the run's tokens are 64 hex digits, this is not one.
const WRONG_TOKEN: &str = "faultline-impostor-wrong-token";

/// What the impostor presents, from the system under test. Each field
/// that is None (or empty) leaves out the attempts that need it.
#[derive(Clone, Debug, Default)]
pub struct ImpostorSetup {
    /// The address connections leave from (the run's client address).
    pub bind_ip: Option<IpAddr>,
    /// No credential: no token, and with TLS a connection that trusts the
    /// run's CA but presents no certificate.
    pub anonymous: Credentials,
    /// The nodes require a token (`--auth`): a wrong one is tried too.
    pub token_required: bool,
    /// A credential of the client role only (what a worker presents).
    pub client: Option<Credentials>,
    /// Each node's own peer credential (its node certificate), bound to
    /// its id (`--tls`).
    pub node_credentials: Vec<(NodeId, Credentials)>,
    /// The nodes serve TLS only: plain TCP is tried too.
    pub tls: bool,
}

/// What one attempt asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    Read,
    Write,
    Status,
    /// `change-membership` of [`NO_SUCH_GROUP`].
    ChangeMembership,
    /// `hello` claiming this node id.
    Hello(NodeId),
    /// `hello` claiming this node id, then (once refused) a forged
    /// consensus message from it.
    ConsensusMessage(NodeId),
}

impl Ask {
    pub fn name(self) -> &'static str {
        match self {
            Ask::Read => "read",
            Ask::Write => "write",
            Ask::Status => "status",
            Ask::ChangeMembership => "change-membership",
            Ask::Hello(_) => "hello",
            Ask::ConsensusMessage(_) => "consensus-message",
        }
    }

    /// The node id a peer ask claims.
    fn claims(self) -> Option<NodeId> {
        match self {
            Ask::Hello(id) | Ask::ConsensusMessage(id) => Some(id),
            _ => None,
        }
    }

    fn op(self) -> Op {
        match self {
            Ask::Read => Op::Read {
                key: IMPOSTOR_KEY.into(),
            },
            Ask::Write => Op::Write {
                key: IMPOSTOR_KEY.into(),
                value: json!("impostor"),
            },
            Ask::Status => Op::Status,
            Ask::ChangeMembership => Op::ChangeMembership {
                group: NO_SUCH_GROUP,
                voters: Vec::new(),
            },
            Ask::Hello(id) | Ask::ConsensusMessage(id) => Op::Hello {
                node: u64::from(id.0),
            },
        }
    }
}

/// What a node did with an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The node refused it: the error code and the node's reason.
    Refused { code: String, reason: String },
    /// The node let it past its access check: what it answered.
    Accepted { answer: String },
    /// Nothing decisive in time (a node down or hung): not acceptance.
    NoAnswer { why: String },
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Refused { .. } => "refused",
            Outcome::Accepted { .. } => "accepted",
            Outcome::NoAnswer { .. } => "no-answer",
        }
    }
}

/// One attempt and what came of it.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub node: String,
    pub addr: SocketAddr,
    /// `client` or `peer`: which of the node's ports it dialled.
    pub port: &'static str,
    /// `none`, `wrong-token`, `client`, `node-<id>`, `plain-tcp`.
    pub credential: String,
    pub ask: Ask,
    pub outcome: Outcome,
}

impl Attempt {
    /// The value of its `impostor` history event (docs/history-format.md).
    pub fn value(&self) -> Value {
        let mut value = json!({
            "node": self.node,
            "addr": self.addr.to_string(),
            "port": self.port,
            "credential": self.credential,
            "ask": self.ask.name(),
            "outcome": self.outcome.as_str(),
        });
        if let Some(id) = self.ask.claims() {
            value["claims"] = json!(id.name());
        }
        match &self.outcome {
            Outcome::Refused { code, reason } => {
                value["code"] = json!(code);
                if !reason.is_empty() {
                    value["reason"] = json!(reason);
                }
            }
            Outcome::Accepted { answer } => value["answer"] = json!(answer),
            Outcome::NoAnswer { why } => value["reason"] = json!(why),
        }
        value
    }
}

/// One planned attempt: the credential's label, what it presents, the ask.
struct Plan {
    credential: String,
    credentials: Credentials,
    ask: Ask,
}

/// Every attempt on `target` in `cluster` (see the module docs).
fn plans(setup: &ImpostorSetup, target: &NodeInfo, cluster: &[NodeInfo]) -> Vec<Plan> {
    let others: Vec<NodeId> = cluster
        .iter()
        .map(|n| n.id)
        .filter(|&id| id != target.id)
        .collect();
    let mut plans = Vec::new();
    let mut add = |credential: &str, credentials: &Credentials, asks: &[Ask]| {
        for &ask in asks {
            plans.push(Plan {
                credential: credential.to_string(),
                credentials: credentials.clone(),
                ask,
            });
        }
    };
    // A peer of the target to claim in `hello` (the node closes a hello
    // claiming itself or a stranger without asking who may send it).
    let claim = others.first().copied();
    let mut asks = vec![Ask::Read, Ask::Write, Ask::ChangeMembership];
    asks.extend(claim.map(Ask::Hello));
    add("none", &setup.anonymous, &asks);
    if setup.token_required {
        let wrong = Credentials {
            auth_token: Some(WRONG_TOKEN.to_string()),
            ..setup.anonymous.clone()
        };
        add("wrong-token", &wrong, &asks);
    }
    if let Some(client) = &setup.client {
        let mut asks = vec![Ask::Status, Ask::ChangeMembership];
        asks.extend(claim.map(Ask::Hello));
        add("client", client, &asks);
    }
    // Node A's own credential claiming node B (both peers of the target).
    if let [a, b, ..] = others[..] {
        if let Some((_, credentials)) = setup.node_credentials.iter().find(|(id, _)| *id == a) {
            let label = format!("node-{}", a.0);
            add(
                &label,
                credentials,
                &[Ask::Hello(b), Ask::ConsensusMessage(b)],
            );
        }
    }
    if setup.tls {
        add("plain-tcp", &Credentials::none(), &[Ask::Read, Ask::Write]);
    }
    plans
}

/// Makes every attempt on every node of `cluster`, the nodes at once and
/// each node's attempts one after another.
pub async fn attempt_all(setup: &ImpostorSetup, cluster: &[NodeInfo]) -> Vec<Attempt> {
    let per_node = cluster.iter().map(|target| {
        let plans = plans(setup, target, cluster);
        let (setup, target) = (setup.clone(), target.clone());
        async move {
            let mut attempts = Vec::new();
            for plan in plans {
                attempts.push(attempt(&setup, &target, plan).await);
            }
            attempts
        }
    });
    crate::run::probe::futures_join_all(per_node)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn attempt(setup: &ImpostorSetup, target: &NodeInfo, plan: Plan) -> Attempt {
    let (port, addr) = match plan.ask {
        Ask::Hello(_) | Ask::ConsensusMessage(_) => ("peer", target.peer_addr),
        _ => ("client", target.client_addr),
    };
    let options = plan.credentials.options(setup.bind_ip, ATTEMPT_TIMEOUT);
    let outcome = match Connection::connect(&addr.to_string(), &options).await {
        Err(e) => connect_outcome(e),
        Ok(connection) => match plan.ask {
            Ask::Hello(_) => hello(setup, target, &connection, plan.ask).await,
            Ask::ConsensusMessage(claim) => {
                forged_message(setup, target, &connection, plan.ask, claim).await
            }
            ask => {
                let reply = connection.call(ask.op(), ATTEMPT_TIMEOUT).await;
                reply_outcome(&connection, reply)
            }
        },
    };
    Attempt {
        node: target.name.clone(),
        addr,
        port,
        credential: plan.credential,
        ask: plan.ask,
        outcome,
    }
}

/// A connection that did not open: a refused token or a failed TLS
/// handshake is a refusal; anything else (a node down) is no answer.
fn connect_outcome(error: ClientError) -> Outcome {
    match error {
        ClientError::Unauthorized { .. } => Outcome::Refused {
            code: ErrorCode::Unauthorized.to_string(),
            reason: "the node refused the token".into(),
        },
        ClientError::Connect { reason, .. } if reason.starts_with("TLS handshake") => {
            Outcome::Refused {
                code: "tls-handshake".into(),
                reason,
            }
        }
        e => Outcome::NoAnswer { why: e.to_string() },
    }
}

/// A reply (or none) to a request: `unauthorized` and `tls-required` are
/// refusals; any other reply means the request got past the node's access
/// check (a `not-leader` too: the node read it); a connection closed with
/// a refusal is that refusal; anything else is no answer.
fn reply_outcome(connection: &Connection, reply: Result<Reply, ClientError>) -> Outcome {
    match reply {
        Ok(reply) => match refusal_of(&reply) {
            Some(refused) => refused,
            None => Outcome::Accepted {
                answer: answer_of(&reply),
            },
        },
        Err(e) => match connection.refusal().as_ref().and_then(refusal_of) {
            Some(refused) => refused,
            None => Outcome::NoAnswer { why: e.to_string() },
        },
    }
}

fn refusal_of(reply: &Reply) -> Option<Outcome> {
    match reply.error {
        Some(code @ (ErrorCode::Unauthorized | ErrorCode::TlsRequired)) => Some(Outcome::Refused {
            code: code.to_string(),
            reason: reply
                .fields
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }),
        _ => None,
    }
}

fn answer_of(reply: &Reply) -> String {
    match reply.error {
        Some(code) => format!("error {code}"),
        None => "ok".into(),
    }
}

/// `hello`: a refused one gets `unauthorized`, then the connection
/// closes. A node that takes it answers nothing, ever: it stops writing to
/// the connection (a peer connection carries no replies) and reads every
/// later line as a consensus message. So a `hello` that ends without a
/// refusal (the node's side closed, or silence) is acceptance if the node
/// is alive: it answers a request on a fresh connection ([`alive`]);
/// otherwise no answer.
async fn hello(
    setup: &ImpostorSetup,
    target: &NodeInfo,
    connection: &Connection,
    ask: Ask,
) -> Outcome {
    let why = match connection.call(ask.op(), ATTEMPT_TIMEOUT).await {
        Err(e @ (ClientError::Timeout { .. } | ClientError::Closed { .. }))
            if connection.refusal().is_none() =>
        {
            e.to_string()
        }
        reply => return reply_outcome(connection, reply),
    };
    if alive(setup, target).await {
        Outcome::Accepted {
            answer: format!(
                "no refusal ({why}) while the node answers other connections: it took the \
                 connection as a peer's"
            ),
        }
    } else {
        Outcome::NoAnswer {
            why: format!("{why}, and the node answers no other connection either"),
        }
    }
}

/// Whether `target` answers a `read` on a fresh connection without
/// credentials (a refusal is an answer).
async fn alive(setup: &ImpostorSetup, target: &NodeInfo) -> bool {
    let options = setup.anonymous.options(setup.bind_ip, ATTEMPT_TIMEOUT);
    let addr = target.client_addr.to_string();
    match Connection::connect(&addr, &options).await {
        Err(ClientError::Unauthorized { .. }) => true,
        Err(_) => false,
        Ok(connection) => {
            let reply = connection.call(Ask::Read.op(), ATTEMPT_TIMEOUT).await;
            reply.is_ok() || connection.refusal().is_some()
        }
    }
}

/// `hello` claiming `claim`, then, once it is refused, a forged consensus
/// message from `claim` on the same connection: the node must have closed
/// it (the message is never sent). A `hello` not refused is that hello's
/// outcome, and no message is sent (a node that took the hello would act
/// on it).
async fn forged_message(
    setup: &ImpostorSetup,
    target: &NodeInfo,
    connection: &Connection,
    ask: Ask,
    claim: NodeId,
) -> Outcome {
    let hello = hello(setup, target, connection, ask).await;
    if !matches!(hello, Outcome::Refused { .. }) {
        return hello;
    }
    let message = Message {
        group: GroupId(0),
        from: WireNodeId(u64::from(claim.0)),
        to: WireNodeId(u64::from(target.id.0)),
        payload: Payload::Raft(RaftMessage::RequestVote {
            term: Term(0),
            pre_vote: true,
            transfer: false,
            last_log_index: LogIndex(0),
            last_log_term: Term(0),
        }),
    };
    match connection.send_peer_message(&message).await {
        Err(_) => match hello {
            Outcome::Refused { code, reason } => Outcome::Refused {
                code,
                reason: format!(
                    "{reason}; the node closed the connection: the forged message was never taken"
                ),
            },
            other => other,
        },
        Ok(()) => {
            // Sent before the close was seen: the node must close now.
            tokio::time::sleep(ATTEMPT_TIMEOUT).await;
            if connection.is_closed() {
                hello
            } else {
                Outcome::Accepted {
                    answer: "the connection stayed open after a refused hello and a forged message"
                        .into(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(count: u32) -> Vec<NodeInfo> {
        (1..=count)
            .map(|i| {
                NodeInfo::one_port(
                    NodeId(i),
                    SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16)),
                )
            })
            .collect()
    }

    fn labels(plans: &[Plan]) -> Vec<String> {
        plans
            .iter()
            .map(|p| format!("{} {}", p.credential, p.ask.name()))
            .collect()
    }

    #[test]
    fn auth_alone_tries_no_credential_and_a_wrong_token() {
        let setup = ImpostorSetup {
            token_required: true,
            ..ImpostorSetup::default()
        };
        let cluster = nodes(3);
        let plans = plans(&setup, &cluster[0], &cluster);
        assert_eq!(
            labels(&plans),
            [
                "none read",
                "none write",
                "none change-membership",
                "none hello",
                "wrong-token read",
                "wrong-token write",
                "wrong-token change-membership",
                "wrong-token hello",
            ]
        );
        let wrong = &plans[4].credentials;
        assert_eq!(wrong.auth_token.as_deref(), Some(WRONG_TOKEN));
        assert_eq!(plans[3].ask, Ask::Hello(NodeId(2)), "claims a peer");
    }

    #[test]
    fn tls_adds_the_client_role_a_node_claiming_another_and_plain_tcp() {
        let setup = ImpostorSetup {
            client: Some(Credentials::none()),
            node_credentials: vec![
                (NodeId(1), Credentials::none()),
                (NodeId(2), Credentials::none()),
            ],
            tls: true,
            ..ImpostorSetup::default()
        };
        let cluster = nodes(3);
        let on_n3 = plans(&setup, &cluster[2], &cluster);
        let labels = labels(&on_n3);
        for expected in [
            "client status",
            "client change-membership",
            "client hello",
            "node-1 hello",
            "node-1 consensus-message",
            "plain-tcp read",
            "plain-tcp write",
        ] {
            assert!(
                labels.iter().any(|l| l == expected),
                "{expected}: {labels:?}"
            );
        }
        let claim = on_n3
            .iter()
            .find(|p| p.credential == "node-1")
            .expect("node-1 claims")
            .ask;
        assert_eq!(
            claim,
            Ask::Hello(NodeId(2)),
            "n1's certificate claims n2 on n3"
        );
    }

    #[test]
    fn an_event_names_node_credential_ask_and_outcome() {
        let attempt = Attempt {
            node: "n2".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 7002)),
            port: "peer",
            credential: "node-1".into(),
            ask: Ask::Hello(NodeId(3)),
            outcome: Outcome::Refused {
                code: "unauthorized".into(),
                reason: "the peer's certificate does not name the node its hello claims".into(),
            },
        };
        let value = attempt.value();
        assert_eq!(value["node"], "n2");
        assert_eq!(value["credential"], "node-1");
        assert_eq!(value["ask"], "hello");
        assert_eq!(value["claims"], "n3");
        assert_eq!(value["outcome"], "refused");
        assert_eq!(value["code"], "unauthorized");
    }

    #[test]
    fn replies_past_the_access_check_are_acceptance_and_refusals_are_not() {
        let refused = Reply::error(Some(1), ErrorCode::Unauthorized).with("reason", "no");
        assert_eq!(
            refusal_of(&refused),
            Some(Outcome::Refused {
                code: "unauthorized".into(),
                reason: "no".into()
            })
        );
        let redirected = Reply::error(Some(1), ErrorCode::NotLeader);
        assert_eq!(refusal_of(&redirected), None);
        assert_eq!(answer_of(&redirected), "error not-leader");
        assert!(matches!(
            connect_outcome(ClientError::Connect {
                addr: "x".into(),
                reason: "connection refused".into()
            }),
            Outcome::NoAnswer { .. }
        ));
        assert!(matches!(
            connect_outcome(ClientError::Unauthorized { addr: "x".into() }),
            Outcome::Refused { .. }
        ));
    }
}

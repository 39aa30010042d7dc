//! The client of faultline's node behind the system boundary: a
//! system-neutral [`Call`] becomes an [`Op`] of the node protocol
//! (docs/protocol.md, `faultline_nodes::protocol`) sent by [`TcpClient`], and the transport's
//! [`CallResult`] becomes an [`Answer`]: an `ok` reply is `ok`; an error
//! reply flagged `definite`, or a request that reached no node, is `fail`;
//! anything else (no reply, an error not flagged definite) is `info`.
//!
//! This is the one place that maps the neutral calls to the node's wire
//! types.

use anyhow::bail;
use faultline_nodes::client::Credentials;
use faultline_nodes::protocol::{Op, Reply};
use faultline_nodes::state::{MicroOp as WireMicroOp, MicroOpKind as WireMicroOpKind};
use faultline_workloads::tcp_client::{CallResult, NodeAddr, TcpClient};
use faultline_workloads::MicroOpKind;
use faultline_workloads::{Answer, BoxFuture, Call, Client, Outcome};
use std::net::IpAddr;
use std::time::Duration;
use tokio::time::Instant;

/// One worker's client of a faultline cluster.
pub struct FaultlineClient {
    tcp: TcpClient,
}

impl FaultlineClient {
    pub fn new(tcp: TcpClient) -> FaultlineClient {
        FaultlineClient { tcp }
    }
}

/// The node protocol's request for a call; None for calls faultline's
/// node has no request for (its system refuses their workloads up front).
pub fn request(call: &Call) -> Option<Op> {
    Some(match call.clone() {
        Call::Read { key } => Op::Read { key },
        Call::Write { key, value } => Op::Write { key, value },
        Call::Cas { key, from, to } => Op::Cas { key, from, to },
        Call::SetAdd { key, element } => Op::Append {
            key,
            value: element,
        },
        Call::Increment { key, delta } => Op::Add { key, delta },
        Call::Acquire {
            lock,
            owner,
            ttl_ms,
        } => Op::Acquire {
            lock,
            owner,
            ttl_ms,
        },
        Call::Renew {
            lock,
            owner,
            token,
            ttl_ms,
        } => Op::Renew {
            lock,
            owner,
            token,
            ttl_ms,
        },
        Call::Release { lock, owner, token } => Op::Release { lock, owner, token },
        Call::FencedWrite { key, value, token } => Op::FencedWrite { key, value, token },
        Call::LockedIncrement { .. } | Call::ReadResource { .. } => return None,
        Call::Txn { value } => Op::Txn {
            mops: value
                .iter()
                .map(|m| WireMicroOp {
                    kind: match m.kind {
                        MicroOpKind::Read => WireMicroOpKind::Read,
                        MicroOpKind::Write => WireMicroOpKind::Write,
                        MicroOpKind::Append => WireMicroOpKind::Append,
                    },
                    key: m.key_string(),
                    value: m.value.clone(),
                })
                .collect(),
        },
    })
}

/// A reply's `value`, None when absent or null (a read of a missing key).
fn value_of(reply: &Reply) -> Option<serde_json::Value> {
    reply.fields.get("value").filter(|v| !v.is_null()).cloned()
}

/// The answer for what the transport saw.
pub fn answer(result: CallResult) -> Answer {
    match result {
        CallResult::Replied { node, reply } => Answer {
            outcome: if reply.ok {
                Outcome::Ok
            } else if reply.is_definite_failure() {
                Outcome::Fail
            } else {
                Outcome::Info
            },
            value: value_of(&reply),
            token: reply.token(),
            error: match reply.ok {
                true => None,
                false => reply.error.map(|code| code.as_str().to_string()),
            },
            node: Some(node),
        },
        CallResult::NotSent { node, error } => Answer::fail(error, node),
        CallResult::Unknown { node, error } => Answer::info(error, Some(node)),
    }
}

impl Client for FaultlineClient {
    fn invoke<'a>(&'a mut self, call: &'a Call, timeout: Duration) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            match request(call) {
                Some(request) => answer(self.tcp.call(&request, timeout).await),
                None => Answer::fail(format!("unsupported call {}", call.name()), None),
            }
        })
    }
}

/// Waits until some node answers a read with `ok` (the cluster serves).
pub async fn wait_until_serving(
    addrs: Vec<NodeAddr>,
    bind_ip: Option<IpAddr>,
    credentials: Credentials,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut client = TcpClient::new(addrs, 0, bind_ip, credentials);
    let probe = Op::Read {
        key: "faultline-ready".into(),
    };
    let mut last = String::new();
    while Instant::now() < deadline {
        match client.call(&probe, Duration::from_secs(2)).await {
            CallResult::Replied { reply, .. } if reply.ok => return Ok(()),
            other => last = format!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the cluster elected a leader but served no read within {timeout:?}; last answer: {last}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_nodes::protocol::ErrorCode;
    use serde_json::json;

    #[test]
    fn replies_map_to_the_three_outcomes() {
        let replied = |reply: Reply| CallResult::Replied {
            node: "n2".into(),
            reply,
        };
        let ok = answer(replied(
            Reply::ok(Some(1)).with("value", json!(3)).with("token", 7),
        ));
        assert_eq!(
            (ok.outcome, ok.value, ok.token, ok.error, ok.node.as_deref()),
            (Outcome::Ok, Some(json!(3)), Some(7), None, Some("n2"))
        );
        let definite = answer(replied(Reply::error(Some(1), ErrorCode::CasMismatch)));
        assert_eq!(
            (definite.outcome, definite.error.as_deref()),
            (Outcome::Fail, Some("cas-mismatch"))
        );
        let maybe = answer(replied(Reply::error(Some(1), ErrorCode::Timeout)));
        assert_eq!(maybe.outcome, Outcome::Info);
        let unflagged = Reply::decode(br#"{"id":1,"ok":false,"error":"x"}"#).expect("parses");
        assert_eq!(answer(replied(unflagged)).outcome, Outcome::Info);
        let null_read = answer(replied(Reply::ok(Some(1)).with("value", json!(null))));
        assert_eq!(
            (null_read.outcome, null_read.value),
            (Outcome::Ok, None),
            "a null value is no value, as before"
        );
        let not_sent = answer(CallResult::NotSent {
            node: None,
            error: "refused".into(),
        });
        assert_eq!((not_sent.outcome, not_sent.node), (Outcome::Fail, None));
        let unknown = answer(CallResult::Unknown {
            node: "n1".into(),
            error: "timeout".into(),
        });
        assert_eq!(unknown.outcome, Outcome::Info);
    }

    #[test]
    fn every_call_has_its_request() {
        let calls = [
            (Call::Read { key: "k".into() }, "read"),
            (
                Call::SetAdd {
                    key: "s".into(),
                    element: json!(1),
                },
                "append",
            ),
            (
                Call::Increment {
                    key: "c".into(),
                    delta: 2,
                },
                "add",
            ),
            (
                Call::FencedWrite {
                    key: "r".into(),
                    value: json!(1),
                    token: 3,
                },
                "fenced_write",
            ),
        ];
        for (call, op) in calls {
            let wire =
                serde_json::to_value(request(&call).expect("a request")).expect("serializes");
            assert_eq!(wire["op"], op, "{call:?}");
        }
    }
}

//! The client of faultline's node behind the system boundary: a
//! system-neutral [`Call`] becomes a request of the node protocol
//! (docs/protocol.md) sent by [`TcpClient`], and the transport's
//! [`CallResult`] becomes an [`Answer`]: an `ok` reply is `ok`; an error
//! reply flagged `definite`, or a request that reached no node, is `fail`;
//! anything else (no reply, an error not flagged definite) is `info`.
//!
//! This is the one place that knows both the neutral calls and the node's
//! wire types, so a change of the wire format stays here.

use anyhow::bail;
use faultline_workloads::protocol::Request;
use faultline_workloads::tcp_client::{CallResult, NodeAddr, TcpClient};
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
pub fn request(call: &Call) -> Option<Request> {
    Some(match call.clone() {
        Call::Read { key } => Request::Read { key },
        Call::Write { key, value } => Request::Write { key, value },
        Call::Cas { key, from, to } => Request::Cas { key, from, to },
        Call::SetAdd { key, element } => Request::Append {
            key,
            value: element,
        },
        Call::Increment { key, delta } => Request::Add { key, delta },
        Call::Acquire {
            lock,
            owner,
            ttl_ms,
        } => Request::Acquire {
            lock,
            owner,
            ttl_ms,
        },
        Call::Renew {
            lock,
            owner,
            token,
            ttl_ms,
        } => Request::Renew {
            lock,
            owner,
            token,
            ttl_ms,
        },
        Call::Release { lock, owner, token } => Request::Release { lock, owner, token },
        Call::FencedWrite { key, value, token } => Request::FencedWrite { key, value, token },
        Call::LockedIncrement { .. } | Call::ReadResource { .. } => return None,
        Call::Txn { value } => Request::Txn {
            mops: value
                .into_iter()
                .map(|m| (m.kind.name().to_string(), m.key, m.value))
                .collect(),
        },
    })
}

/// The answer for what the transport saw.
pub fn answer(result: CallResult) -> Answer {
    match result {
        CallResult::Replied { node, reply } => Answer {
            outcome: if reply.ok {
                Outcome::Ok
            } else if reply.is_definite() {
                Outcome::Fail
            } else {
                Outcome::Info
            },
            value: reply.value,
            token: reply.token,
            error: if reply.ok { None } else { reply.error },
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
    auth_token: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut client = TcpClient::new(addrs, 0, bind_ip, auth_token.map(str::to_string));
    let probe = Request::Read {
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
    use faultline_workloads::protocol::Reply;
    use serde_json::json;

    #[test]
    fn replies_map_to_the_three_outcomes() {
        let replied = |reply: Reply| CallResult::Replied {
            node: "n2".into(),
            reply,
        };
        let ok = answer(replied(Reply {
            token: Some(7),
            ..Reply::ok(Some(json!(3)))
        }));
        assert_eq!(
            (ok.outcome, ok.value, ok.token, ok.error, ok.node.as_deref()),
            (Outcome::Ok, Some(json!(3)), Some(7), None, Some("n2"))
        );
        let definite = answer(replied(Reply::error("cas-mismatch", true)));
        assert_eq!(
            (definite.outcome, definite.error.as_deref()),
            (Outcome::Fail, Some("cas-mismatch"))
        );
        let maybe = answer(replied(Reply::error("timeout", false)));
        assert_eq!(maybe.outcome, Outcome::Info);
        let unflagged: Reply = serde_json::from_str(r#"{"ok":false,"error":"x"}"#).expect("parses");
        assert_eq!(answer(replied(unflagged)).outcome, Outcome::Info);
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

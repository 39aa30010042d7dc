//! The sharded node's admin operations, asynchronously (docs/protocol.md:
//! `groups`, `join-group`, `leave-group`, `change-membership`,
//! `set-members`): the request shapes, the reply of `groups` as types, and
//! one call with a timeout.
//!
//! Guarantees: [`call`] never panics on what a node sends; it tells a
//! refusal (the node answered `ok: false`, with its error code and leader
//! hint: definite, nothing was done) from no answer (unreachable, timeout,
//! bad reply: the request may or may not have been applied), which is what
//! a caller needs to decide whether to retry.

use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The longest admin reply line read (a `groups` reply of many groups).
const MAX_REPLY_BYTES: u64 = 4 << 20;

/// Why an admin call did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The node answered `ok: false`: nothing was done.
    #[error("{addr} refused {op}: {code}{}", leader.as_ref().map(|l| format!(" (leader {l})")).unwrap_or_default())]
    Refused {
        addr: SocketAddr,
        op: String,
        code: String,
        /// `leader` of a `not-leader` or `moved` reply.
        leader: Option<String>,
    },
    /// No usable answer: the request may or may not have taken effect.
    #[error("{addr}: {op}: {reason}")]
    NoAnswer {
        addr: SocketAddr,
        op: String,
        reason: String,
    },
}

impl AdminError {
    /// The node's error code of a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            AdminError::Refused { code, .. } => Some(code),
            AdminError::NoAnswer { .. } => None,
        }
    }
}

/// Reads a missing or null field as its default (a node with nothing to
/// say may send null).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One group as a node's `groups` reply describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct GroupInfo {
    pub group: u64,
    /// `leader`, `follower`, `candidate`, … as the core says.
    #[serde(default, deserialize_with = "null_default")]
    pub role: String,
    #[serde(default, deserialize_with = "null_default")]
    pub term: u64,
    /// The leader's node id, when known.
    #[serde(default, deserialize_with = "null_default")]
    pub leader: Option<u64>,
    #[serde(default, deserialize_with = "null_default")]
    pub leader_addr: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub voters: Vec<u64>,
    #[serde(default, deserialize_with = "null_default")]
    pub outgoing: Vec<u64>,
    /// A membership change is under way in this group.
    #[serde(default, deserialize_with = "null_default")]
    pub pending: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub applied_index: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub commit_index: u64,
}

impl GroupInfo {
    pub fn is_leader(&self) -> bool {
        self.role == "leader"
    }

    /// True when this (leader's) view shows the group settled on `voters`:
    /// a simple configuration equal to `voters` (in any order), no change
    /// pending.
    pub fn settled_on(&self, voters: &[u64]) -> bool {
        let mut have = self.voters.clone();
        let mut want = voters.to_vec();
        have.sort_unstable();
        want.sort_unstable();
        have == want && self.outgoing.is_empty() && !self.pending
    }
}

/// A node's `groups` reply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct NodeGroups {
    #[serde(default, deserialize_with = "null_default")]
    pub groups: Vec<GroupInfo>,
    /// The node's ring view.
    #[serde(default, deserialize_with = "null_default")]
    pub members: Vec<u64>,
}

impl NodeGroups {
    pub fn group(&self, group: u64) -> Option<&GroupInfo> {
        self.groups.iter().find(|g| g.group == group)
    }
}

/// Sends one admin request (a JSON object with `op`) and returns the whole
/// reply object of an `ok` answer; with `auth_token`, after authenticating.
pub async fn call(
    addr: SocketAddr,
    bind_ip: Option<IpAddr>,
    auth_token: Option<&str>,
    request: &Value,
    timeout: Duration,
) -> Result<Value, AdminError> {
    let op = request
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let no_answer = |reason: String| AdminError::NoAnswer {
        addr,
        op: op.clone(),
        reason,
    };
    let exchange = async {
        let mut stream = faultline_workloads::tcp_client::connect_from(addr, bind_ip)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut req = request.clone();
        req["id"] = json!(1);
        let mut line = auth_token
            .map(faultline_workloads::tcp_client::auth_line)
            .unwrap_or_default();
        line.push_str(&req.to_string());
        line.push('\n');
        stream
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut reader = BufReader::new(stream).take(MAX_REPLY_BYTES);
        let mut reply = String::new();
        let n = reader
            .read_line(&mut reply)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed without a reply".to_string());
        }
        Ok(reply)
    };
    let reply = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| no_answer(format!("no reply within {timeout:?}")))?
        .map_err(&no_answer)?;
    let v: Value = serde_json::from_str(&reply)
        .map_err(|e| no_answer(format!("bad JSON reply ({e}): {:.200}", reply.trim())))?;
    match v.get("ok") {
        Some(Value::Bool(true)) => Ok(v),
        Some(Value::Bool(false)) => Err(AdminError::Refused {
            addr,
            op,
            code: v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            leader: v.get("leader").and_then(Value::as_str).map(str::to_string),
        }),
        _ => Err(no_answer(format!(
            "reply has no ok flag: {:.200}",
            reply.trim()
        ))),
    }
}

/// Asks a node for its groups and ring view.
pub async fn groups(
    addr: SocketAddr,
    bind_ip: Option<IpAddr>,
    auth_token: Option<&str>,
    timeout: Duration,
) -> Result<NodeGroups, AdminError> {
    let v = call(addr, bind_ip, auth_token, &json!({"op": "groups"}), timeout).await?;
    serde_json::from_value(v).map_err(|e| AdminError::NoAnswer {
        addr,
        op: "groups".into(),
        reason: format!("bad groups reply: {e}"),
    })
}

/// `join-group`: host `group` as a joining core (idempotent).
pub fn join_group(group: u64) -> Value {
    json!({"op": "join-group", "group": group})
}

/// `leave-group`: drop `group` and its storage (a node already removed).
pub fn leave_group(group: u64) -> Value {
    json!({"op": "leave-group", "group": group})
}

/// `change-membership`: at the group's leader, move it to `voters`.
pub fn change_membership(group: u64, voters: &[u64]) -> Value {
    json!({"op": "change-membership", "group": group, "voters": voters})
}

/// `set-members`: replace the node's ring view.
pub fn set_members(members: &[u64]) -> Value {
    json!({"op": "set-members", "members": members})
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A node stand-in that answers every line with `reply`.
    async fn node(reply: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(_)) = lines.next_line().await {
                        if reply.is_empty() {
                            return;
                        }
                        let _ = w.write_all(format!("{reply}\n").as_bytes()).await;
                    }
                });
            }
        });
        addr
    }

    const T: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn groups_parse_and_settled_means_same_voters_simple_and_not_pending() {
        let addr = node(
            r#"{"id":1,"ok":true,"node":2,"shards":8,"replicas":3,"members":[1,2,3],"groups":[{"group":0,"role":"leader","term":3,"leader":2,"leader_addr":"127.0.0.2:7","voters":[3,1,2],"outgoing":[],"pending":false,"applied_index":9,"commit_index":9},{"group":4,"role":"follower","term":1,"leader":null,"leader_addr":null,"voters":[1,2,4],"outgoing":[1,2,3],"pending":true,"joining":false,"retiring":false}]}"#,
        )
        .await;
        let g = groups(addr, None, None, T).await.expect("groups");
        assert_eq!(g.members, [1, 2, 3]);
        let g0 = g.group(0).expect("group 0");
        assert!(g0.is_leader());
        assert!(g0.settled_on(&[1, 2, 3]), "order does not matter");
        assert!(!g0.settled_on(&[1, 2, 4]));
        let g4 = g.group(4).expect("group 4");
        assert_eq!(g4.leader, None);
        assert!(!g4.settled_on(&[1, 2, 4]), "joint and pending");
        assert!(g.group(7).is_none());
        let bare =
            node(r#"{"id":1,"ok":true,"members":null,"groups":[{"group":1,"voters":null}]}"#).await;
        let g = groups(bare, None, None, T)
            .await
            .expect("nulls read as empty");
        assert!(g.members.is_empty());
        assert!(g.group(1).expect("group 1").voters.is_empty());
    }

    #[tokio::test]
    async fn a_refusal_carries_its_code_and_leader_and_silence_is_no_answer() {
        let addr = node(
            r#"{"id":1,"ok":false,"error":"not-leader","definite":true,"leader":"127.0.0.3:9"}"#,
        )
        .await;
        let e = call(addr, None, None, &change_membership(2, &[1, 2, 4]), T)
            .await
            .expect_err("refused");
        assert_eq!(e.code(), Some("not-leader"));
        assert!(matches!(&e, AdminError::Refused { leader: Some(l), .. } if l == "127.0.0.3:9"));
        let mute = node("").await;
        let e = call(mute, None, None, &join_group(1), T)
            .await
            .expect_err("closed");
        assert!(matches!(e, AdminError::NoAnswer { .. }), "{e:?}");
        let garbage = node("not json").await;
        let e = groups(garbage, None, None, T).await.expect_err("garbage");
        assert!(e.to_string().contains("bad JSON"), "{e}");
    }

    #[test]
    fn request_shapes_follow_the_protocol() {
        assert_eq!(
            change_membership(3, &[1, 2, 5]),
            json!({"op":"change-membership","group":3,"voters":[1,2,5]})
        );
        assert_eq!(
            set_members(&[1, 4]),
            json!({"op":"set-members","members":[1,4]})
        );
        assert_eq!(join_group(0), json!({"op":"join-group","group":0}));
        assert_eq!(leave_group(6), json!({"op":"leave-group","group":6}));
    }
}

//! The sharded node's `groups` reply (docs/protocol.md) as types, and the
//! call that asks for it. The admin requests themselves (`join-group`,
//! `leave-group`, `change-membership`, `set-members`) are typed ops of
//! `faultline_nodes::protocol`, sent by [`super::admin::call`].

use super::admin::{self, AdminError};
use faultline_nodes::client::Credentials;
use faultline_nodes::protocol::Op;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

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

/// Asks a node for its groups and ring view.
pub async fn groups(
    addr: SocketAddr,
    bind_ip: Option<IpAddr>,
    credentials: &Credentials,
    timeout: Duration,
) -> Result<NodeGroups, AdminError> {
    let reply = admin::call(addr, bind_ip, credentials, Op::Groups, timeout).await?;
    serde_json::from_value(serde_json::Value::Object(reply.fields)).map_err(|e| {
        AdminError::NoAnswer {
            addr,
            op: "groups",
            reason: format!("bad groups reply: {e}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::admin::tests::fixed_reply_node;

    async fn node(reply: &str) -> SocketAddr {
        fixed_reply_node(reply.to_string()).await
    }

    const T: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn groups_parse_and_settled_means_same_voters_simple_and_not_pending() {
        let addr = node(
            r#"{"id":1,"ok":true,"node":2,"shards":8,"replicas":3,"members":[1,2,3],"groups":[{"group":0,"role":"leader","term":3,"leader":2,"leader_addr":"127.0.0.2:7","voters":[3,1,2],"outgoing":[],"pending":false,"applied_index":9,"commit_index":9},{"group":4,"role":"follower","term":1,"leader":null,"leader_addr":null,"voters":[1,2,4],"outgoing":[1,2,3],"pending":true,"joining":false,"retiring":false}]}"#,
        )
        .await;
        let g = groups(addr, None, &Credentials::none(), T)
            .await
            .expect("groups");
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
        let g = groups(bare, None, &Credentials::none(), T)
            .await
            .expect("nulls read as empty");
        assert!(g.members.is_empty());
        assert!(g.group(1).expect("group 1").voters.is_empty());
    }

    #[tokio::test]
    async fn an_unreadable_groups_reply_is_no_answer() {
        let garbage = node("not json").await;
        let e = groups(garbage, None, &Credentials::none(), T)
            .await
            .expect_err("garbage");
        assert!(matches!(e, AdminError::NoAnswer { .. }), "{e:?}");
        let not_groups = node(r#"{"id":1,"ok":true,"groups":[{"group":"zero"}]}"#).await;
        let e = groups(not_groups, None, &Credentials::none(), T)
            .await
            .expect_err("a group id that is not a number");
        assert!(e.to_string().contains("bad groups reply"), "{e}");
    }
}

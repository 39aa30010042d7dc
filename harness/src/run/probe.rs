//! Asking nodes who leads (`status`, and `groups` for a sharded cluster,
//! where every shard is a group with its own leader; docs/protocol.md).
//! Every probe presents the run's credentials (TLS, then the auth token)
//! when it has them.

use crate::cluster::groups;
use crate::cluster::{NodeId, NodeInfo};
use faultline_nodes::client::{call_once, ClientError, Credentials};
use faultline_nodes::protocol::{Op, Reply};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Asks the node at `addr` for its `status`, presenting `credentials`
/// (a node started with a token answers nothing else).
pub async fn status(
    addr: SocketAddr,
    bind_ip: Option<IpAddr>,
    credentials: &Credentials,
    timeout: Duration,
) -> Result<Reply, ClientError> {
    let options = credentials.options(bind_ip, timeout);
    call_once(&addr.to_string(), &options, Op::Status, timeout).await
}

/// The node that says it is leader with the highest term, if any answers.
pub async fn find_leader(
    nodes: &[NodeInfo],
    bind_ip: Option<IpAddr>,
    credentials: &Credentials,
) -> Option<NodeId> {
    let timeout = Duration::from_millis(500);
    let asks = nodes.iter().map(|n| {
        let (id, addr) = (n.id, n.client_addr);
        let credentials = credentials.clone();
        async move { (id, status(addr, bind_ip, &credentials, timeout).await) }
    });
    let mut best: Option<(u64, NodeId)> = None;
    for (id, reply) in futures_join_all(asks).await {
        let Ok(reply) = reply else { continue };
        if !reply.ok {
            continue;
        }
        let role = reply
            .fields
            .get("role")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if role != "leader" {
            continue;
        }
        let term = reply
            .fields
            .get("term")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if best.is_none_or(|(t, _)| term > t) {
            best = Some((term, id));
        }
    }
    best.map(|(_, id)| id)
}

/// Polls until a leader is found or `timeout` passes.
pub async fn wait_for_leader(
    nodes: &[NodeInfo],
    bind_ip: Option<IpAddr>,
    credentials: &Credentials,
    timeout: Duration,
) -> Option<NodeId> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(l) = find_leader(nodes, bind_ip, credentials).await {
            return Some(l);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The leader of every group any node reports leading (the highest term
/// wins), from the nodes' `groups` replies: group → (term, leader).
pub async fn group_leaders(
    nodes: &[NodeInfo],
    bind_ip: Option<IpAddr>,
    credentials: &Credentials,
) -> BTreeMap<u64, (u64, NodeId)> {
    let timeout = Duration::from_millis(500);
    let asks = nodes.iter().map(|n| {
        let (id, addr) = (n.id, n.client_addr);
        let credentials = credentials.clone();
        async move {
            let reply = groups::groups(addr, bind_ip, &credentials, timeout).await;
            (id, reply)
        }
    });
    let mut leaders: BTreeMap<u64, (u64, NodeId)> = BTreeMap::new();
    for (id, reply) in futures_join_all(asks).await {
        let Ok(reply) = reply else { continue };
        for g in reply.groups.iter().filter(|g| g.is_leader()) {
            let e = leaders.entry(g.group).or_insert((g.term, id));
            if g.term > e.0 {
                *e = (g.term, id);
            }
        }
    }
    leaders
}

/// The node that leads the most groups (a sharded cluster's "leader" for
/// the nemesis), if any node leads one.
pub async fn busiest_leader(
    nodes: &[NodeInfo],
    bind_ip: Option<IpAddr>,
    credentials: &Credentials,
) -> Option<NodeId> {
    let mut counts: BTreeMap<NodeId, usize> = BTreeMap::new();
    for (_, (_, node)) in group_leaders(nodes, bind_ip, credentials).await {
        *counts.entry(node).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(node, n)| (n, std::cmp::Reverse(node)))
        .map(|(node, _)| node)
}

/// Polls until every shard `0..shards` has a leader; on timeout, returns
/// the shards that still have none.
pub async fn wait_for_group_leaders(
    nodes: &[NodeInfo],
    bind_ip: Option<IpAddr>,
    credentials: &Credentials,
    shards: u32,
    timeout: Duration,
) -> Result<(), Vec<u64>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let leaders = group_leaders(nodes, bind_ip, credentials).await;
        let missing: Vec<u64> = (0..u64::from(shards))
            .filter(|s| !leaders.contains_key(s))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(missing);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every node's applied log index from `status` (None: no answer).
pub async fn applied_indexes(
    nodes: &[NodeInfo],
    bind_ip: Option<IpAddr>,
    credentials: &Credentials,
) -> BTreeMap<String, Option<u64>> {
    let timeout = Duration::from_millis(500);
    let asks = nodes.iter().map(|n| {
        let (name, addr) = (n.name.clone(), n.client_addr);
        let credentials = credentials.clone();
        async move { (name, status(addr, bind_ip, &credentials, timeout).await) }
    });
    futures_join_all(asks)
        .await
        .into_iter()
        .map(|(name, reply)| {
            let applied = reply
                .ok()
                .filter(|r| r.ok)
                .and_then(|r| r.fields.get("applied_index").and_then(|v| v.as_u64()));
            (name, applied)
        })
        .collect()
}

/// Polls until every node answers with the same applied index (nothing is
/// written any more: the run's operations are over), or `timeout` passes;
/// the last answers either way.
pub async fn wait_for_caught_up(
    nodes: &[NodeInfo],
    bind_ip: Option<IpAddr>,
    credentials: &Credentials,
    timeout: Duration,
) -> crate::system::CatchUp {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let applied = applied_indexes(nodes, bind_ip, credentials).await;
        let mut positions = applied.values();
        let first = positions.next().copied().flatten();
        let caught_up = first.is_some() && positions.all(|&p| p == first);
        if caught_up || tokio::time::Instant::now() >= deadline {
            return crate::system::CatchUp { caught_up, applied };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs futures concurrently and returns their outputs in order.
pub async fn futures_join_all<F>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("a status probe panicked"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node stand-in answering every request with `reply`.
    async fn node(id: u32, reply: String) -> NodeInfo {
        let addr = crate::cluster::admin::tests::fixed_reply_node(reply).await;
        NodeInfo::one_port(NodeId(id), addr)
    }

    fn groups_reply(groups: &[(u64, &str, u64)]) -> String {
        let g: Vec<serde_json::Value> = groups
            .iter()
            .map(|(g, role, term)| serde_json::json!({"group": g, "role": role, "term": term}))
            .collect();
        serde_json::json!({"id": 1, "ok": true, "members": [1, 2, 3], "groups": g}).to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_group_needs_a_leader_and_the_highest_term_wins() {
        // n1 still thinks it leads g0 (term 2); n2 leads g0 in term 3 and g1.
        let n1 = node(1, groups_reply(&[(0, "leader", 2), (1, "follower", 4)])).await;
        let n2 = node(2, groups_reply(&[(0, "leader", 3), (1, "leader", 4)])).await;
        // n3 answers nonsense: ignored, not fatal.
        let n3 = node(3, "garbage".into()).await;
        let nodes = [n1, n2, n3];
        let leaders = group_leaders(&nodes, None, &Credentials::none()).await;
        assert_eq!(leaders.get(&0), Some(&(3, NodeId(2))));
        assert_eq!(leaders.get(&1), Some(&(4, NodeId(2))));
        assert_eq!(
            busiest_leader(&nodes, None, &Credentials::none()).await,
            Some(NodeId(2))
        );
        let t = Duration::from_millis(300);
        assert_eq!(
            wait_for_group_leaders(&nodes, None, &Credentials::none(), 2, t).await,
            Ok(())
        );
        assert_eq!(
            wait_for_group_leaders(&nodes, None, &Credentials::none(), 4, t).await,
            Err(vec![2, 3]),
            "s2 and s3 have no leader"
        );
    }
}

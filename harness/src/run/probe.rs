//! Asking nodes who leads (`status`, docs/protocol.md).

use crate::cluster::{NodeId, NodeInfo};
use faultline_workloads::tcp_client::status;
use std::net::IpAddr;
use std::time::Duration;

/// The node that says it is leader with the highest term, if any answers.
pub async fn find_leader(nodes: &[NodeInfo], bind_ip: Option<IpAddr>) -> Option<NodeId> {
    let timeout = Duration::from_millis(500);
    let asks = nodes.iter().map(|n| {
        let (id, addr) = (n.id, n.client_addr);
        async move { (id, status(addr, bind_ip, timeout).await) }
    });
    let mut best: Option<(u64, NodeId)> = None;
    for (id, reply) in futures_join_all(asks).await {
        let Ok(reply) = reply else { continue };
        if !reply.ok {
            continue;
        }
        let role = reply
            .rest
            .get("role")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if role != "leader" {
            continue;
        }
        let term = reply.rest.get("term").and_then(|v| v.as_u64()).unwrap_or(0);
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
    timeout: Duration,
) -> Option<NodeId> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(l) = find_leader(nodes, bind_ip).await {
            return Some(l);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs futures concurrently and returns their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output>
where
    F: Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("a status probe panicked"));
    }
    out
}

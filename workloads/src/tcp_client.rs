//! faultline's own node's client: it speaks the node protocol (docs/protocol.md,
//! the types of `faultline_nodes::protocol`) over `faultline_nodes::client`'s
//! [`Connection`], one request outstanding per connection.
//!
//! This is the home-node policy on top of that connection, and nothing
//! more. It keeps one connection per node. Every call starts at the
//! worker's home node (as Jepsen binds each client to a node, so that a
//! node cut off with its clients keeps serving them, and stale answers can
//! show) and follows `not-leader` and `moved` redirects (definite, so safe
//! to retry) until the call's timeout: a redirect to the node just asked,
//! or to no known node, moves on to the next node instead. Once a request
//! has been sent, any failure to read its reply makes the call
//! [`CallResult::Unknown`]; it is never retried.
//!
//! The harness's faultline system maps a system-neutral call to an [`Op`]
//! and a [`CallResult`] to an answer.

use faultline_nodes::client::{ClientError, ConnectOptions, Connection, Credentials};
use faultline_nodes::protocol::{ErrorCode, Op, Reply};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::time::Instant;

/// How a call ended, from the client's point of view.
#[derive(Clone, Debug, PartialEq)]
pub enum CallResult {
    /// A node replied (ok, or an error with its `definite` flag).
    Replied { node: String, reply: Reply },
    /// The request reached no node that could take it (refused connections,
    /// redirects only): it certainly did not take effect.
    NotSent { node: Option<String>, error: String },
    /// The request was sent but no reply came (timeout, connection closed):
    /// it may or may not take effect.
    Unknown { node: String, error: String },
}

/// A node as the client knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddr {
    /// `n1`, `n2`, … (what the history's `node` field says).
    pub name: String,
    pub addr: SocketAddr,
}

/// The TCP client of one worker.
pub struct TcpClient {
    nodes: Vec<NodeAddr>,
    home: usize,
    conns: HashMap<usize, Connection>,
    options: ConnectOptions,
}

/// The longest a connect (and its auth exchange) may take before the node
/// counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

impl TcpClient {
    /// A client whose home is node `home` (modulo the node count).
    /// Outgoing connections bind to `bind_ip` when given (so packet filters
    /// between node addresses never match client traffic); every connection
    /// presents `credentials` (TLS and the auth token, when the run has them).
    pub fn new(
        nodes: Vec<NodeAddr>,
        home: usize,
        bind_ip: Option<IpAddr>,
        credentials: Credentials,
    ) -> TcpClient {
        assert!(!nodes.is_empty(), "a client needs at least one node");
        let home = home % nodes.len();
        TcpClient {
            nodes,
            home,
            conns: HashMap::new(),
            options: credentials.options(bind_ip, CONNECT_TIMEOUT),
        }
    }

    /// The connection to node `i`: the cached one while the node has not
    /// closed it (a node that died since the last request is noticed here,
    /// before a request is sent, so the request counts as never sent
    /// instead of unknown), else a new one.
    async fn connection(&mut self, i: usize, deadline: Instant) -> Result<Connection, ClientError> {
        if let Some(conn) = self.conns.get(&i) {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
            self.conns.remove(&i);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let options = ConnectOptions {
            connect_timeout: self.options.connect_timeout.min(remaining),
            ..self.options.clone()
        };
        let conn = Connection::connect(&self.nodes[i].addr.to_string(), &options).await?;
        self.conns.insert(i, conn.clone());
        Ok(conn)
    }

    fn index_of(&self, addr: &str) -> Option<usize> {
        let parsed: SocketAddr = addr.parse().ok()?;
        self.nodes.iter().position(|n| n.addr == parsed)
    }

    /// One attempt at node `i`: Ok(reply), or Err((sent, error)).
    async fn attempt(
        &mut self,
        i: usize,
        op: &Op,
        deadline: Instant,
    ) -> Result<Reply, (bool, String)> {
        let conn = self
            .connection(i, deadline)
            .await
            .map_err(|e| (false, format!("connect: {e}")))?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        match conn.call(op.clone(), remaining).await {
            Ok(reply) => Ok(reply),
            Err(e) => {
                // A connection that lost a reply is not used again: a late
                // reply must not wait on it, nor a dead socket linger.
                self.conns.remove(&i);
                let sent = !e.not_sent();
                let error = match e {
                    ClientError::Timeout { .. } => "timeout".to_string(),
                    ClientError::Closed { .. } => "connection closed".to_string(),
                    other => other.to_string(),
                };
                Err((sent, error))
            }
        }
    }

    /// Sends `op`, following `not-leader` and `moved` redirects (they are
    /// definite, so retrying is safe) within `timeout`.
    pub async fn call(&mut self, op: &Op, timeout: Duration) -> CallResult {
        let deadline = Instant::now() + timeout;
        let n = self.nodes.len();
        let mut target = self.home;
        let mut last_error = String::from("no attempt");
        let mut last_node = None;
        let mut attempts = 0usize;
        while Instant::now() < deadline {
            attempts += 1;
            let name = self.nodes[target].name.clone();
            last_node = Some(name.clone());
            // After a full round of nodes, a longer pause.
            let pause_ms = if attempts.is_multiple_of(n) { 50 } else { 5 };
            match self.attempt(target, op, deadline).await {
                Ok(reply)
                    if !reply.ok
                        && matches!(reply.error, Some(ErrorCode::NotLeader | ErrorCode::Moved)) =>
                {
                    last_error = reply.error.map(|e| e.to_string()).unwrap_or_default();
                    match reply.leader().and_then(|a| self.index_of(a)) {
                        Some(j) if j != target => target = j,
                        _ => {
                            target = (target + 1) % n;
                            pause_until(deadline, pause_ms).await;
                        }
                    }
                }
                Ok(reply) => return CallResult::Replied { node: name, reply },
                Err((true, error)) => return CallResult::Unknown { node: name, error },
                Err((false, error)) => {
                    last_error = error;
                    target = (target + 1) % n;
                    pause_until(deadline, pause_ms).await;
                }
            }
        }
        CallResult::NotSent {
            node: last_node,
            error: last_error,
        }
    }
}

/// Sleeps `ms`, or until `deadline` if that comes first.
async fn pause_until(deadline: Instant, ms: u64) {
    tokio::time::sleep_until(deadline.min(Instant::now() + Duration::from_millis(ms))).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    type Responder =
        std::sync::Arc<dyn Fn(&serde_json::Value) -> Option<serde_json::Value> + Send + Sync>;

    /// A node stand-in: answers each request line with `reply(request)`.
    async fn node(reply: Responder) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let a = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.expect("accept");
                let reply = reply.clone();
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let req: serde_json::Value =
                            serde_json::from_str(&line).expect("client sends JSON");
                        if let Some(mut rep) = reply(&req) {
                            rep["id"] = req["id"].clone();
                            let mut text = rep.to_string();
                            text.push('\n');
                            w.write_all(text.as_bytes()).await.expect("write");
                        }
                    }
                });
            }
        });
        a
    }

    /// A client of one node, `n1` at `addr`.
    fn one_node(addr: SocketAddr) -> TcpClient {
        TcpClient::new(
            vec![NodeAddr {
                name: "n1".into(),
                addr,
            }],
            0,
            None,
            Credentials::none(),
        )
    }

    /// `write x 1`.
    async fn write_x(c: &mut TcpClient, timeout: Duration) -> CallResult {
        let write = Op::Write {
            key: "x".into(),
            value: 1.into(),
        };
        c.call(&write, timeout).await
    }

    #[tokio::test]
    async fn follows_a_redirect_and_starts_each_call_at_home() {
        let leader = node(std::sync::Arc::new(|_: &serde_json::Value| {
            Some(serde_json::json!({"ok":true,"value":7}))
        }))
        .await;
        let l = leader.to_string();
        let follower = node(std::sync::Arc::new(move |_: &serde_json::Value| {
            Some(serde_json::json!({"ok":false,"error":"not-leader","definite":true,"leader":l}))
        }))
        .await;
        let nodes = vec![
            NodeAddr {
                name: "n1".into(),
                addr: follower,
            },
            NodeAddr {
                name: "n2".into(),
                addr: leader,
            },
        ];
        let mut c = TcpClient::new(nodes, 0, None, Credentials::none());
        let r = c
            .call(&Op::Read { key: "x".into() }, Duration::from_secs(5))
            .await;
        match r {
            CallResult::Replied { node, reply } => {
                assert_eq!(node, "n2");
                assert_eq!(reply.value(), &serde_json::json!(7));
            }
            other => panic!("expected a reply, got {other:?}"),
        }
        assert_eq!(c.home, 0, "the home node stays");
        let r = c
            .call(&Op::Read { key: "x".into() }, Duration::from_secs(5))
            .await;
        assert!(
            matches!(r, CallResult::Replied { ref node, .. } if node == "n2"),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn follows_moved_then_not_leader_and_a_moved_to_itself_tries_the_next_node() {
        let leader = node(std::sync::Arc::new(|_: &serde_json::Value| {
            Some(serde_json::json!({"ok":true,"value":3}))
        }))
        .await;
        let l = leader.to_string();
        let replica = node(std::sync::Arc::new(move |_: &serde_json::Value| {
            Some(serde_json::json!({"ok":false,"error":"not-leader","definite":true,"leader":l}))
        }))
        .await;
        let r = replica.to_string();
        let elsewhere = node(std::sync::Arc::new(move |_: &serde_json::Value| {
            Some(serde_json::json!({"ok":false,"error":"moved","definite":true,"shard":2,"leader":r}))
        }))
        .await;
        // A node whose ring view names itself (or nothing): no loop on it.
        let lost = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let me = std::sync::Arc::clone(&lost);
        let confused = node(std::sync::Arc::new(move |_: &serde_json::Value| {
            Some(serde_json::json!({"ok":false,"error":"moved","definite":true,"shard":2,"leader":me.lock().expect("lock").clone()}))
        }))
        .await;
        *lost.lock().expect("lock") = Some(confused.to_string());
        let addrs = [
            ("n1", elsewhere),
            ("n2", replica),
            ("n3", leader),
            ("n4", confused),
        ];
        let nodes: Vec<NodeAddr> = addrs
            .iter()
            .map(|(n, a)| NodeAddr {
                name: n.to_string(),
                addr: *a,
            })
            .collect();
        for home in [0, 3] {
            let mut c = TcpClient::new(nodes.clone(), home, None, Credentials::none());
            let r = c
                .call(&Op::Read { key: "k".into() }, Duration::from_secs(5))
                .await;
            assert!(
                matches!(&r, CallResult::Replied { node, reply } if node == "n3" && reply.ok),
                "home n{}: {r:?}",
                home + 1
            );
        }
    }

    #[tokio::test]
    async fn a_connection_the_node_closed_is_not_reused() {
        // The node answers one request per connection, then closes it (as a
        // node that died between two requests). The second request must go
        // out on a fresh connection and get a reply, not become unknown.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.expect("accept");
                let (r, mut w) = s.into_split();
                let mut lines = BufReader::new(r).lines();
                if let Ok(Some(line)) = lines.next_line().await {
                    let req: serde_json::Value = serde_json::from_str(&line).expect("JSON");
                    let rep = serde_json::json!({"id": req["id"], "ok": true, "value": 1});
                    w.write_all(format!("{rep}\n").as_bytes())
                        .await
                        .expect("write");
                }
                // Dropping both halves closes the connection.
            }
        });
        let mut c = one_node(addr);
        for _ in 0..3 {
            let r = write_x(&mut c, Duration::from_secs(5)).await;
            assert!(matches!(r, CallResult::Replied { .. }), "{r:?}");
            // Let the close arrive.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn no_reply_is_unknown_and_refused_connections_are_not_sent() {
        let silent = node(std::sync::Arc::new(|_: &serde_json::Value| None)).await;
        let mut c = one_node(silent);
        let r = write_x(&mut c, Duration::from_millis(300)).await;
        assert!(
            matches!(r, CallResult::Unknown { ref error, .. } if error == "timeout"),
            "{r:?}"
        );

        // A port nobody listens on: bind, learn the port, close.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let dead = l.local_addr().expect("addr");
        drop(l);
        let mut c = one_node(dead);
        let r = write_x(&mut c, Duration::from_millis(300)).await;
        assert!(matches!(r, CallResult::NotSent { .. }), "{r:?}");
    }
}

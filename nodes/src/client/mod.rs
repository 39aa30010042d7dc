//! The async client of the node protocol (docs/protocol.md).
//!
//! [`Connection`] is one pipelined connection to one node, and the only
//! one: every client of a node (this module's [`Client`], the workload
//! client, the harness's admin requests and probes) runs over it; a stream
//! to a node is made in one place, [`connection::open_stream`]. [`Client`] talks
//! to a cluster: it sends to the node it believes leads, follows `not-leader`
//! and `moved` redirects (both definite: nothing happened, so retrying is
//! safe; at most `max_attempts` hops), tries the next node when the
//! leader is unknown or a connection cannot be made, and turns every reply
//! into an [`Outcome`]: `Ok`, `Fail` (certainly did not happen) or `Unknown`
//! (timeout, closed connection, or a not-definite error: record `info`).
//!
//! Against a sharded cluster, set [`ClientConfig::shards`]: the client then
//! remembers one leader per shard (each shard is its own group with its own
//! leader); without it, it remembers one and follows redirects as they come.
//!
//! ```no_run
//! # async fn demo() {
//! use faultline_nodes::client::{Client, ClientConfig, Outcome};
//! use faultline_nodes::protocol::Op;
//! let client = Client::new(ClientConfig::new(vec!["127.0.0.1:7001".into()]));
//! match client.call(Op::Read { key: "x".into() }).await {
//!     Outcome::Ok(reply) => println!("x = {}", reply.value()),
//!     Outcome::Fail(reply) => println!("failed: {:?}", reply.error),
//!     Outcome::Unknown(why) => println!("unknown: {why}"),
//! }
//! # }
//! ```

pub mod connection;

pub use connection::{call_once, open_stream, ConnectOptions, Connection, Credentials, NodeStream};

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::protocol::{ErrorCode, Op, Reply};
use crate::ring::ShardId;

/// Why a call has no reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{addr} refused the auth token")]
    Unauthorized { addr: String },
    /// The request never left this process: it certainly did not happen.
    #[error("request to {addr} was not sent (connection closed)")]
    NotSent { addr: String },
    /// Sent, then the connection closed before the reply: unknown.
    #[error("connection to {addr} closed before the reply")]
    Closed { addr: String },
    /// Sent, no reply in time: unknown.
    #[error("no reply from {addr} in time")]
    Timeout { addr: String },
}

impl ClientError {
    /// Whether the request certainly did not reach a node.
    pub fn not_sent(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Unauthorized { .. }
                | ClientError::NotSent { .. }
        )
    }
}

/// The outcome of one operation, in Jepsen's terms.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It happened; the reply carries the result.
    Ok(Reply),
    /// It certainly did not happen (a definite error reply, or never sent).
    Fail(Reply),
    /// It may or may not have happened (record `info`).
    Unknown(String),
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }
}

/// How a [`Client`] behaves. Its `Debug` never shows the token or a key
/// ([`Credentials`] hides them).
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Client addresses of the nodes (`host:port`).
    pub nodes: Vec<String>,
    /// The token (sent as the first line of every connection) and the TLS
    /// identity every connection presents, when set.
    pub credentials: Credentials,
    /// The source address of every connection, when set.
    pub bind_ip: Option<IpAddr>,
    /// How long one call may wait for its reply, redirects included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Give up (as `Fail`, nothing happened) after this many redirects or
    /// refused connections.
    pub max_attempts: usize,
    /// The first pause before retrying when no leader is known or the
    /// leader hints go round in a loop; it doubles with each such retry in
    /// a call, up to [`MAX_BACKOFF_FACTOR`] times this.
    pub retry_backoff: Duration,
    /// The cluster's shard count (`--shards`), if sharded: leaders are
    /// remembered per shard.
    pub shards: Option<u32>,
}

impl ClientConfig {
    pub fn new(nodes: Vec<String>) -> ClientConfig {
        ClientConfig {
            nodes,
            credentials: Credentials::none(),
            bind_ip: None,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            max_attempts: 20,
            retry_backoff: Duration::from_millis(50),
            shards: None,
        }
    }
}

/// The longest wait between redirects, as a multiple of
/// [`ClientConfig::retry_backoff`].
pub const MAX_BACKOFF_FACTOR: u32 = 8;

/// Doubling waits, from `base` up to `base * MAX_BACKOFF_FACTOR`.
#[derive(Debug)]
struct Backoff {
    base: Duration,
    factor: u32,
}

impl Backoff {
    fn new(base: Duration) -> Backoff {
        Backoff { base, factor: 1 }
    }

    fn next(&mut self) -> Duration {
        let wait = self.base * self.factor;
        self.factor = (self.factor * 2).min(MAX_BACKOFF_FACTOR);
        wait
    }
}

/// A cluster client: pipelined connections, redirects followed.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    connections: tokio::sync::Mutex<HashMap<String, Connection>>,
    /// The address we believe leads, per shard (None: unsharded, or an op
    /// with no key).
    leaders: Mutex<HashMap<Option<u32>, String>>,
    /// Round-robin position when no leader is known.
    next_node: Mutex<usize>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Client {
        assert!(!config.nodes.is_empty(), "a client needs at least one node");
        Client {
            config,
            connections: tokio::sync::Mutex::new(HashMap::new()),
            leaders: Mutex::new(HashMap::new()),
            next_node: Mutex::new(0),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The address the client currently believes leads ops without a key
    /// (or every op, unsharded), if any.
    pub fn leader(&self) -> Option<String> {
        self.leader_of(None)
    }

    fn leader_of(&self, shard: Option<u32>) -> Option<String> {
        self.leaders
            .lock()
            .expect("leader lock")
            .get(&shard)
            .cloned()
    }

    fn set_leader(&self, shard: Option<u32>, addr: Option<String>) {
        let mut leaders = self.leaders.lock().expect("leader lock");
        match addr {
            Some(a) => leaders.insert(shard, a),
            None => leaders.remove(&shard),
        };
    }

    /// The shard whose leader `op` needs (None when unsharded or keyless).
    fn shard_of(&self, op: &Op) -> Option<u32> {
        let shards = self.config.shards.filter(|&s| s > 0)?;
        let name = op.routing_key()?;
        Some(ShardId::of_key(name.as_bytes(), shards).0)
    }

    fn pick_node(&self, shard: Option<u32>) -> String {
        if let Some(l) = self.leader_of(shard) {
            return l;
        }
        let mut next = self.next_node.lock().expect("next lock");
        let addr = self.config.nodes[*next % self.config.nodes.len()].clone();
        *next += 1;
        addr
    }

    async fn connection(&self, addr: &str) -> Result<Connection, ClientError> {
        let mut conns = self.connections.lock().await;
        if let Some(c) = conns.get(addr) {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let options = self
            .config
            .credentials
            .options(self.config.bind_ip, self.config.connect_timeout);
        let c = Connection::connect(addr, &options).await?;
        conns.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Send `op` to one node, no redirects.
    pub async fn call_node(&self, addr: &str, op: Op) -> Result<Reply, ClientError> {
        self.connection(addr)
            .await?
            .call(op, self.config.timeout)
            .await
    }

    /// Run `op` on the cluster: to the leader, following redirects.
    ///
    /// A redirect to a node not yet tried in this call is followed at once.
    /// A redirect with no hint, or one that points back at a node that
    /// already redirected this call (the nodes' views disagree: a leader
    /// that just left the group, an election under way), waits first, each
    /// such wait twice the last (from `retry_backoff`, at most
    /// [`MAX_BACKOFF_FACTOR`] times it): following a stale hint at once would
    /// spend every attempt in a loop within milliseconds, long before the
    /// group elects the leader the call needs.
    pub async fn call(&self, op: Op) -> Outcome {
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let shard = self.shard_of(&op);
        let mut last_fail: Option<Reply> = None;
        let mut backoff = Backoff::new(self.config.retry_backoff);
        let mut redirected_by: HashSet<String> = HashSet::new();
        for attempt in 0..self.config.max_attempts.max(1) {
            let addr = self.pick_node(shard);
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                break;
            }
            let result = match self.connection(&addr).await {
                Ok(c) => c.call(op.clone(), remaining).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(reply) if reply.ok => {
                    self.set_leader(shard, Some(addr));
                    return Outcome::Ok(reply);
                }
                // Redirects are definite (nothing happened): follow them.
                Ok(reply)
                    if reply.error == Some(ErrorCode::NotLeader)
                        || reply.error == Some(ErrorCode::Moved) =>
                {
                    let hint = reply.leader().map(str::to_string).filter(|l| *l != addr);
                    let settled = hint.as_ref().is_some_and(|h| !redirected_by.contains(h));
                    redirected_by.insert(addr);
                    self.set_leader(shard, hint);
                    last_fail = Some(reply);
                    if !settled {
                        tracing::debug!(attempt, "no fresh leader hint; backing off");
                        redirected_by.clear();
                        tokio::time::sleep(backoff.next().min(remaining)).await;
                    }
                }
                Ok(reply) if reply.is_definite_failure() => return Outcome::Fail(reply),
                Ok(reply) => {
                    return Outcome::Unknown(format!(
                        "{addr}: {}",
                        reply.error.map_or("not ok".to_string(), |e| e.to_string())
                    ))
                }
                Err(e) if e.not_sent() => {
                    tracing::debug!(attempt, error = %e, "not sent; trying another node");
                    self.set_leader(shard, None);
                    tokio::time::sleep(self.config.retry_backoff.min(remaining)).await;
                }
                Err(e) => {
                    self.set_leader(shard, None);
                    return Outcome::Unknown(e.to_string());
                }
            }
        }
        Outcome::Fail(last_fail.unwrap_or_else(|| Reply::not_leader(None, None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Request;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// A config printed (a log line, a panic) never shows its token.
    #[test]
    fn a_client_config_never_prints_its_token() {
        let mut c = ClientConfig::new(vec!["127.0.0.1:1".into()]);
        c.credentials.auth_token = Some("s3cret-token-value".into());
        let printed = format!("{c:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            printed.contains("auth: true"),
            "says a token is set: {printed}"
        );
    }

    /// A fake node: answers every request with `answer(request)`, counts them.
    async fn fake_node(
        answer: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let count = Arc::new(AtomicUsize::new(0));
        let answer = Arc::new(answer);
        let c = count.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, c) = (answer.clone(), c.clone());
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let req = Request::decode(line.as_bytes()).expect("a valid request");
                        c.fetch_add(1, Ordering::SeqCst);
                        let mut reply = answer(&req);
                        reply.id = req.id;
                        if w.write_all(&reply.encode()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, count)
    }

    fn config(nodes: Vec<String>) -> ClientConfig {
        let mut cfg = ClientConfig::new(nodes);
        cfg.timeout = Duration::from_secs(5);
        cfg.retry_backoff = Duration::from_millis(1);
        cfg
    }

    #[tokio::test]
    async fn moved_is_followed_like_not_leader_and_the_leader_is_remembered_per_shard() {
        let (b, b_count) = fake_node(|_| Reply::ok(None).with("value", 7)).await;
        let b2 = b.clone();
        let (a, a_count) = fake_node(move |_| Reply::moved(None, 1, Some(b2.clone()))).await;
        let mut cfg = config(vec![a.clone()]);
        cfg.shards = Some(4);
        let client = Client::new(cfg);
        let key = (0..1000)
            .map(|i| format!("k{i}"))
            .find(|k| ShardId::of_key(k.as_bytes(), 4).0 == 1)
            .expect("a key of shard 1");
        let other = (0..1000)
            .map(|i| format!("k{i}"))
            .find(|k| ShardId::of_key(k.as_bytes(), 4).0 != 1)
            .expect("a key of another shard");
        let r = client.call(Op::Read { key: key.clone() }).await;
        assert!(
            matches!(&r, Outcome::Ok(rep) if rep.value() == &serde_json::json!(7)),
            "{r:?}"
        );
        assert_eq!(
            (
                a_count.load(Ordering::SeqCst),
                b_count.load(Ordering::SeqCst)
            ),
            (1, 1)
        );
        // The same shard goes straight to where it succeeded.
        assert!(client.call(Op::Read { key }).await.is_ok());
        assert_eq!(a_count.load(Ordering::SeqCst), 1, "no second detour");
        // Another shard has no remembered leader yet: it starts over.
        assert!(client.call(Op::Read { key: other }).await.is_ok());
        assert_eq!(a_count.load(Ordering::SeqCst), 2);
    }

    /// Regression (node_shards, Paxos, 1 run in 4): a removed leader and a
    /// follower that still named it sent the client back and forth until
    /// every attempt was spent, in milliseconds, before the group elected.
    #[tokio::test]
    async fn a_loop_of_stale_leader_hints_is_waited_out_not_followed_until_attempts_run_out() {
        let settled_at = std::time::Instant::now() + Duration::from_millis(300);
        let slot: Arc<Mutex<String>> = Arc::default();
        let s = slot.clone();
        let (a, a_count) = fake_node(move |_| {
            if std::time::Instant::now() < settled_at {
                Reply::not_leader(None, Some(s.lock().expect("slot").clone()))
            } else {
                Reply::ok(None).with("value", 1)
            }
        })
        .await;
        let a2 = a.clone();
        let (b, b_count) = fake_node(move |_| Reply::not_leader(None, Some(a2.clone()))).await;
        *slot.lock().expect("slot") = b;
        let mut cfg = config(vec![a]);
        cfg.max_attempts = 20;
        cfg.retry_backoff = Duration::from_millis(10);
        let client = Client::new(cfg);
        let out = client.call(Op::Read { key: "x".into() }).await;
        assert!(
            out.is_ok(),
            "the loop ends once a leader is elected: {out:?}"
        );
        let hops = a_count.load(Ordering::SeqCst) + b_count.load(Ordering::SeqCst);
        assert!(hops <= 20, "within max_attempts: {hops}");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut b = Backoff::new(Duration::from_millis(10));
        let waits: Vec<u128> = (0..6).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 80, 80]);
    }

    #[tokio::test]
    async fn endless_moved_redirects_end_as_a_definite_failure_after_max_attempts() {
        // Two nodes pointing at each other forever.
        let slot: Arc<Mutex<String>> = Arc::default();
        let s = slot.clone();
        let (a, a_count) =
            fake_node(move |_| Reply::moved(None, 0, Some(s.lock().expect("slot").clone()))).await;
        let a2 = a.clone();
        let (b, b_count) = fake_node(move |_| Reply::moved(None, 0, Some(a2.clone()))).await;
        *slot.lock().expect("slot") = b;
        let mut cfg = config(vec![a]);
        cfg.max_attempts = 6;
        let client = Client::new(cfg);
        let out = client
            .call(Op::Write {
                key: "x".into(),
                value: serde_json::json!(1),
            })
            .await;
        let Outcome::Fail(r) = out else {
            panic!("redirect loops are definite failures: {out:?}")
        };
        assert_eq!(r.error, Some(ErrorCode::Moved));
        assert_eq!(
            a_count.load(Ordering::SeqCst) + b_count.load(Ordering::SeqCst),
            6,
            "bounded hops"
        );
    }
}

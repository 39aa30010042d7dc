//! etcd's client behind the system boundary: one gRPC connection per
//! worker, to its home member only (as Jepsen binds each client to a node,
//! so a member cut off or paused with its clients shows what they see),
//! bound to the clients' address. How each call maps:
//!
//! - `read`, `write`: a linearizable Range and a Put of the value's JSON;
//!   `cas`: a Txn comparing the value (a version of 0 for an absent key);
//! - set: the set is a JSON list at its key; `set-add` appends by
//!   compare-and-set on the key's mod revision (as counter does), a read
//!   is a linearizable Range of the key;
//! - counter: `increment` is a compare-and-set loop: a Range, then a Txn
//!   guarded on the key's mod revision (its create revision 0 when absent)
//!   that puts the sum, again on a lost race until the call's time is up;
//! - lock: `acquire` grants a lease of the call's TTL (rounded up to whole
//!   seconds), keeps it alive in the background for as long as this client
//!   holds the lock (etcd's session), takes etcd's Lock on it, and reads the
//!   lock key's create revision: the fencing token. `fenced-write` is a Txn
//!   that puts only while the holder's lock key still has that revision
//!   (what etcd advises); `release` stops the keepalive, Unlocks and revokes
//!   the lease; `renew` sends one keepalive;
//! - transactions (list-append, rw-register), as Jepsen's etcd tests do
//!   them: one Txn of Ranges reads every key the transaction touches at one
//!   revision; the micro-ops run on that snapshot here (a list is a JSON
//!   array at its key); a second Txn puts what changed, guarded on every
//!   touched key's mod revision (create revision 0 when absent), so it
//!   commits only if nothing it read or wrote moved: strict serializable.
//!   A lost race writes nothing and starts over until the call's time is
//!   up; a read-only transaction is the first Txn alone;
//! - `locked-increment` (lock-counter): acquire as above, read the
//!   protected counter (this process's memory, shared by the run's
//!   clients), hold for the call's time, write the sum back with no other
//!   guard, release.
//!
//! Outcomes: an error etcd defines as refusing the request, or a connection
//! that never opened, is `fail`; a timeout or any other error of a request
//! that changes something is `info`. An acquire whose Lock did not return
//! in time revokes its lease: once the revoke is acknowledged its key is
//! gone, so it held nothing anyone could see (`fail`); otherwise `info`.

use super::super::Resources;
use crate::cluster::{NodeId, NodeInfo};
use anyhow::{bail, Context};
use etcd_client::{Client as Etcd, Compare, CompareOp, LockOptions, Txn, TxnOp};
use faultline_workloads::{apply_micro_ops, Answer, BoxFuture, Call, Client, MicroOp, Outcome};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

/// The longest a connection may take to open before the member counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Extra time an acquire that gave up may spend revoking its lease.
const REVOKE_GRACE: Duration = Duration::from_secs(1);

/// A gRPC connection to one member, opened lazily, from `bind_ip`.
pub fn connect(addr: SocketAddr, bind_ip: Option<IpAddr>) -> anyhow::Result<Etcd> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .with_context(|| format!("the endpoint of {addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .local_address(bind_ip);
    let channel = endpoint.connect_lazy();
    // from_channel sends nothing without a user to authenticate.
    futures_lite_block(Etcd::from_channel(
        etcd_client::Channel::Tonic(channel),
        None,
    ))
    .with_context(|| format!("a client of {addr}"))
}

/// Runs a future that completes without waiting (no I/O is needed).
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("a client without a user never waits"),
    }
}

/// How an etcd error ends a call: (definitely not applied, short code).
fn classify(error: &etcd_client::Error) -> (bool, String) {
    use tonic::Code;
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            let msg = status.message();
            let text = format!("{}: {msg}", status.code());
            let not_sent = status.code() == Code::Unavailable
                && (msg.contains("connect") || msg.contains("Connection refused"));
            let definite = not_sent
                || matches!(
                    status.code(),
                    Code::NotFound
                        | Code::InvalidArgument
                        | Code::FailedPrecondition
                        | Code::PermissionDenied
                        | Code::Unauthenticated
                        | Code::OutOfRange
                        | Code::ResourceExhausted
                        | Code::AlreadyExists
                );
            (definite, text)
        }
        etcd_client::Error::TransportError(e) => (true, format!("transport: {e}")),
        other => (false, other.to_string()),
    }
}

/// The answer for an error of a call that may change something.
fn failed(error: &etcd_client::Error, node: &str) -> Answer {
    let (definite, code) = classify(error);
    if definite {
        Answer::fail(code, Some(node.to_string()))
    } else {
        Answer::info(code, Some(node.to_string()))
    }
}

fn timeout(node: &str) -> Answer {
    Answer::info("timeout", Some(node.to_string()))
}

fn encode(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value serializes")
}

fn decode(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("a value that is not JSON ({e})"))
}

/// A lock this client holds: its lease (kept alive in the background),
/// its lock key and the key's create revision (the fencing token).
struct Holding {
    lease: i64,
    key: Vec<u8>,
    token: u64,
    keepalive: JoinHandle<()>,
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.keepalive.abort();
    }
}

/// Keeps `lease` alive every third of its TTL, reopening the stream after
/// an error, until aborted or the lease is gone.
async fn keep_alive(mut etcd: Etcd, lease: i64, ttl: Duration) {
    let period = (ttl / 3).max(Duration::from_millis(100));
    loop {
        if let Ok((mut keeper, mut stream)) = etcd.lease_keep_alive(lease).await {
            loop {
                if keeper.keep_alive().await.is_err() {
                    break;
                }
                match tokio::time::timeout(period, stream.message()).await {
                    Ok(Ok(Some(r))) if r.ttl() <= 0 => return,
                    Ok(Ok(Some(_))) | Err(_) => {}
                    Ok(Ok(None)) | Ok(Err(_)) => break,
                }
                tokio::time::sleep(period).await;
            }
        }
        tokio::time::sleep(period).await;
    }
}

/// One worker's client of an etcd cluster.
pub struct EtcdClient {
    node: String,
    etcd: Etcd,
    holding: Option<Holding>,
    resources: Arc<Resources>,
}

impl EtcdClient {
    /// A client of member `home`.
    pub fn open(
        home: &NodeInfo,
        bind_ip: Option<IpAddr>,
        resources: Arc<Resources>,
    ) -> anyhow::Result<EtcdClient> {
        Ok(EtcdClient {
            node: home.name.clone(),
            etcd: connect(home.client_addr, bind_ip)?,
            holding: None,
            resources,
        })
    }

    fn node(&self) -> Option<String> {
        Some(self.node.clone())
    }

    async fn read(&mut self, key: &str, deadline: Instant) -> Answer {
        match timeout_at(deadline, self.etcd.get(key, None)).await {
            Err(_) => timeout(&self.node),
            Ok(Err(e)) => failed(&e, &self.node),
            Ok(Ok(r)) => match r.kvs().first() {
                None => Answer::ok(None, self.node()),
                Some(kv) => match decode(kv.value()) {
                    Ok(v) => Answer::ok(Some(v), self.node()),
                    Err(e) => Answer::info(e, self.node()),
                },
            },
        }
    }

    async fn put(&mut self, key: &str, value: Vec<u8>, deadline: Instant) -> Answer {
        match timeout_at(deadline, self.etcd.put(key, value, None)).await {
            Err(_) => timeout(&self.node),
            Ok(Err(e)) => failed(&e, &self.node),
            Ok(Ok(_)) => Answer::ok(None, self.node()),
        }
    }

    async fn cas(&mut self, key: &str, from: &Value, to: &Value, deadline: Instant) -> Answer {
        let guard = if from.is_null() {
            Compare::version(key, CompareOp::Equal, 0)
        } else {
            Compare::value(key, CompareOp::Equal, encode(from))
        };
        let txn = Txn::new()
            .when(vec![guard])
            .and_then(vec![TxnOp::put(key, encode(to), None)]);
        match timeout_at(deadline, self.etcd.txn(txn)).await {
            Err(_) => timeout(&self.node),
            Ok(Err(e)) => failed(&e, &self.node),
            Ok(Ok(r)) if r.succeeded() => Answer::ok(None, self.node()),
            Ok(Ok(_)) => Answer::fail("cas-mismatch", self.node()),
        }
    }

    /// Appends `element` to the JSON list at `key` by compare-and-set on
    /// the key's mod revision, again on a lost race, until `deadline`.
    async fn set_add(&mut self, key: &str, element: &Value, deadline: Instant) -> Answer {
        loop {
            let (mut list, guard) = match timeout_at(deadline, self.etcd.get(key, None)).await {
                Err(_) => return Answer::fail("timeout before any write", self.node()),
                Ok(Err(e)) => {
                    return Answer::fail(format!("read: {}", classify(&e).1), self.node())
                }
                Ok(Ok(r)) => match r.kvs().first() {
                    None => (
                        Vec::new(),
                        Compare::create_revision(key, CompareOp::Equal, 0),
                    ),
                    Some(kv) => match decode(kv.value()) {
                        Ok(Value::Array(list)) => (
                            list,
                            Compare::mod_revision(key, CompareOp::Equal, kv.mod_revision()),
                        ),
                        _ => return Answer::fail("the set is not a JSON list", self.node()),
                    },
                },
            };
            list.push(element.clone());
            let txn = Txn::new().when(vec![guard]).and_then(vec![TxnOp::put(
                key,
                encode(&Value::Array(list)),
                None,
            )]);
            match timeout_at(deadline, self.etcd.txn(txn)).await {
                Err(_) => return timeout(&self.node),
                Ok(Err(e)) => return failed(&e, &self.node),
                Ok(Ok(r)) if r.succeeded() => return Answer::ok(None, self.node()),
                Ok(Ok(_)) => {
                    if Instant::now() >= deadline {
                        return Answer::fail("lost every compare-and-set race", self.node());
                    }
                    let pause = Duration::from_millis(rand::random::<u64>() % 20 + 1);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Adds `delta` by compare-and-set on the key's mod revision, again on
    /// a lost race, until `deadline`.
    async fn increment(&mut self, key: &str, delta: i64, deadline: Instant) -> Answer {
        loop {
            let (current, guard) = match timeout_at(deadline, self.etcd.get(key, None)).await {
                Err(_) => return Answer::fail("timeout before any write", self.node()),
                Ok(Err(e)) => {
                    return Answer::fail(format!("read: {}", classify(&e).1), self.node())
                }
                Ok(Ok(r)) => match r.kvs().first() {
                    None => (0, Compare::create_revision(key, CompareOp::Equal, 0)),
                    Some(kv) => match decode(kv.value()).ok().and_then(|v| v.as_i64()) {
                        Some(n) => (
                            n,
                            Compare::mod_revision(key, CompareOp::Equal, kv.mod_revision()),
                        ),
                        None => return Answer::fail("the counter is not a number", self.node()),
                    },
                },
            };
            let sum = current + delta;
            let txn = Txn::new().when(vec![guard]).and_then(vec![TxnOp::put(
                key,
                encode(&Value::from(sum)),
                None,
            )]);
            match timeout_at(deadline, self.etcd.txn(txn)).await {
                Err(_) => return timeout(&self.node),
                Ok(Err(e)) => return failed(&e, &self.node),
                Ok(Ok(r)) if r.succeeded() => {
                    return Answer::ok(Some(Value::from(sum)), self.node())
                }
                Ok(Ok(_)) => {
                    // Lost a race: nothing was written; read again.
                    if Instant::now() >= deadline {
                        return Answer::fail("lost every compare-and-set race", self.node());
                    }
                    let pause = Duration::from_millis(rand::random::<u64>() % 20 + 1);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// A transaction of micro-ops (see the module docs): its micro-ops with
    /// the reads filled in, when it committed.
    async fn txn(&mut self, mops: &[MicroOp], deadline: Instant) -> Answer {
        let mut keys: Vec<String> = mops.iter().map(MicroOp::key_string).collect();
        keys.sort();
        keys.dedup();
        loop {
            let snapshot = Txn::new().and_then(
                keys.iter()
                    .map(|k| TxnOp::get(k.as_str(), None))
                    .collect::<Vec<_>>(),
            );
            let read = match timeout_at(deadline, self.etcd.txn(snapshot)).await {
                Err(_) => return Answer::fail("timeout before any write", self.node()),
                Ok(Err(e)) => {
                    return Answer::fail(format!("read: {}", classify(&e).1), self.node())
                }
                Ok(Ok(r)) => r,
            };
            // Each key's value and guard, as of the snapshot's revision.
            let mut state: std::collections::BTreeMap<String, (Value, Compare)> =
                std::collections::BTreeMap::new();
            for (key, op) in keys.iter().zip(read.op_responses()) {
                let etcd_client::TxnOpResponse::Get(got) = op else {
                    return Answer::fail("a Range answered as another op", self.node());
                };
                let entry = match got.kvs().first() {
                    None => (
                        Value::Null,
                        Compare::create_revision(key.as_str(), CompareOp::Equal, 0),
                    ),
                    Some(kv) => match decode(kv.value()) {
                        Ok(v) => (
                            v,
                            Compare::mod_revision(
                                key.as_str(),
                                CompareOp::Equal,
                                kv.mod_revision(),
                            ),
                        ),
                        Err(e) => return Answer::fail(e, self.node()),
                    },
                };
                state.insert(key.clone(), entry);
            }
            let (done, writes) =
                match apply_micro_ops(mops, |k| state.get(k).map(|(v, _)| v.clone())) {
                    Ok(x) => x,
                    Err(e) => return Answer::fail(e, self.node()),
                };
            if writes.is_empty() {
                return Answer::ok(Some(Value::Array(done)), self.node());
            }
            let guards: Vec<Compare> = state.into_values().map(|(_, guard)| guard).collect();
            let puts: Vec<TxnOp> = writes
                .iter()
                .map(|(k, v)| TxnOp::put(k.as_str(), encode(v), None))
                .collect();
            let commit = Txn::new().when(guards).and_then(puts);
            match timeout_at(deadline, self.etcd.txn(commit)).await {
                Err(_) => return timeout(&self.node),
                Ok(Err(e)) => return failed(&e, &self.node),
                Ok(Ok(r)) if r.succeeded() => {
                    return Answer::ok(Some(Value::Array(done)), self.node())
                }
                Ok(Ok(_)) => {
                    // A key moved since the snapshot: nothing was written.
                    if Instant::now() >= deadline {
                        return Answer::fail("lost every compare-and-set race", self.node());
                    }
                    let pause = Duration::from_millis(rand::random::<u64>() % 20 + 1);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Gives up whatever this client still holds (a process that crashed
    /// while holding): stops the keepalive and revokes in the background.
    fn abandon_holding(&mut self) {
        if let Some(h) = self.holding.take() {
            let mut etcd = self.etcd.clone();
            let lease = h.lease;
            drop(h);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REVOKE_GRACE, etcd.lease_revoke(lease)).await;
            });
        }
    }

    /// Takes `lock` on a kept-alive lease of `ttl_ms`; see the module docs.
    async fn acquire(&mut self, lock: &str, ttl_ms: u64, deadline: Instant) -> Answer {
        self.abandon_holding();
        let ttl_s = i64::try_from(ttl_ms.div_ceil(1000).max(1)).unwrap_or(i64::MAX);
        let lease = match timeout_at(deadline, self.etcd.lease_grant(ttl_s, None)).await {
            // A lease alone holds no lock: the acquire did not happen.
            Err(_) => return Answer::fail("timeout granting the lease", self.node()),
            Ok(Err(e)) => return Answer::fail(format!("lease: {}", classify(&e).1), self.node()),
            Ok(Ok(r)) => r.id(),
        };
        let keepalive = tokio::spawn(keep_alive(
            self.etcd.clone(),
            lease,
            Duration::from_secs(ttl_s as u64),
        ));
        let locked = timeout_at(
            deadline,
            self.etcd
                .lock(lock, Some(LockOptions::new().with_lease(lease))),
        )
        .await;
        let key = match locked {
            Ok(Ok(r)) => r.key().to_vec(),
            Ok(Err(e)) => return self.give_up(lease, keepalive, classify(&e).1).await,
            Err(_) => return self.give_up(lease, keepalive, "timeout".into()).await,
        };
        let read = timeout_at(deadline + REVOKE_GRACE, self.etcd.get(key.clone(), None)).await;
        let token = match read {
            Ok(Ok(r)) => r
                .kvs()
                .first()
                .and_then(|kv| u64::try_from(kv.create_revision()).ok()),
            _ => None,
        };
        let Some(token) = token else {
            // Held, but without its token it cannot be used: give it back.
            let mut answer = self
                .give_up(
                    lease,
                    keepalive,
                    "the lock key's revision could not be read".into(),
                )
                .await;
            answer.outcome = Outcome::Info;
            return answer;
        };
        self.holding = Some(Holding {
            lease,
            key,
            token,
            keepalive,
        });
        Answer {
            token: Some(token),
            ..Answer::ok(None, self.node())
        }
    }

    /// An acquire that did not get the lock in time: stop the keepalive and
    /// revoke the lease (which deletes any key the Lock made).
    async fn give_up(&mut self, lease: i64, keepalive: JoinHandle<()>, why: String) -> Answer {
        keepalive.abort();
        let revoked = tokio::time::timeout(REVOKE_GRACE, self.etcd.lease_revoke(lease)).await;
        match revoked {
            Ok(Ok(_)) => Answer::fail(format!("lock: {why}; lease revoked"), self.node()),
            Ok(Err(e)) if classify(&e).1.contains("not found") => {
                Answer::fail(format!("lock: {why}; lease already gone"), self.node())
            }
            _ => Answer::info(format!("lock: {why}; lease not revoked"), self.node()),
        }
    }

    /// The holding for `token`, or a definite failure (nothing was sent).
    fn held(&self, token: u64) -> Result<&Holding, Answer> {
        match &self.holding {
            Some(h) if h.token == token => Ok(h),
            _ => Err(Answer::fail("not-holder", self.node())),
        }
    }

    async fn release(&mut self, token: u64, deadline: Instant) -> Answer {
        if let Err(answer) = self.held(token) {
            return answer;
        }
        let h = self.holding.take().expect("checked above");
        h.keepalive.abort();
        let unlocked = timeout_at(deadline, self.etcd.unlock(h.key.clone())).await;
        let mut etcd = self.etcd.clone();
        let lease = h.lease;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REVOKE_GRACE, etcd.lease_revoke(lease)).await;
        });
        match unlocked {
            Ok(Ok(_)) => Answer::ok(None, self.node()),
            // The lease expires without keepalives: the lock is released at
            // some point, when is unknown.
            Ok(Err(e)) => Answer::info(format!("unlock: {}", classify(&e).1), self.node()),
            Err(_) => Answer::info("unlock: timeout", self.node()),
        }
    }

    async fn renew(&mut self, token: u64, deadline: Instant) -> Answer {
        let lease = match self.held(token) {
            Ok(h) => h.lease,
            Err(answer) => return answer,
        };
        let once = async {
            let (mut keeper, mut stream) = self.etcd.lease_keep_alive(lease).await?;
            keeper.keep_alive().await?;
            stream.message().await
        };
        match timeout_at(deadline, once).await {
            Err(_) => timeout(&self.node),
            Ok(Err(e)) => failed(&e, &self.node),
            Ok(Ok(Some(r))) if r.ttl() > 0 => Answer::ok(None, self.node()),
            Ok(Ok(_)) => Answer::fail("lease expired", self.node()),
        }
    }

    async fn fenced_write(
        &mut self,
        key: &str,
        value: &Value,
        token: u64,
        deadline: Instant,
    ) -> Answer {
        let lock_key = match self.held(token) {
            Ok(h) => h.key.clone(),
            Err(answer) => return answer,
        };
        let revision = i64::try_from(token).unwrap_or(i64::MAX);
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                lock_key,
                CompareOp::Equal,
                revision,
            )])
            .and_then(vec![TxnOp::put(key, encode(value), None)]);
        match timeout_at(deadline, self.etcd.txn(txn)).await {
            Err(_) => timeout(&self.node),
            Ok(Err(e)) => failed(&e, &self.node),
            Ok(Ok(r)) if r.succeeded() => Answer::ok(None, self.node()),
            Ok(Ok(_)) => Answer::fail("stale-token", self.node()),
        }
    }

    /// Read-modify-write of a protected counter under the lock, with no
    /// other guard; each step gets the call's timeout.
    async fn locked_increment(
        &mut self,
        lock: &str,
        ttl_ms: u64,
        resource: &str,
        delta: i64,
        hold: Duration,
        step: Duration,
    ) -> Answer {
        let acquired = self.acquire(lock, ttl_ms, Instant::now() + step).await;
        let Some(token) = acquired.token.filter(|_| acquired.outcome == Outcome::Ok) else {
            // The counter was not touched.
            let mut answer = acquired;
            answer.outcome = Outcome::Fail;
            return answer;
        };
        let current = self.resources.get(resource);
        tokio::time::sleep(hold).await;
        let sum = current + delta;
        self.resources.set(resource, sum);
        let _ = self.release(token, Instant::now() + step).await;
        Answer::ok(Some(Value::from(sum)), self.node())
    }
}

impl Client for EtcdClient {
    fn invoke<'a>(&'a mut self, call: &'a Call, timeout: Duration) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let deadline = Instant::now() + timeout;
            match call {
                Call::Read { key } => self.read(key, deadline).await,
                Call::Write { key, value } => self.put(key, encode(value), deadline).await,
                Call::Cas { key, from, to } => self.cas(key, from, to, deadline).await,
                Call::SetAdd { key, element } => self.set_add(key, element, deadline).await,
                Call::Increment { key, delta } => self.increment(key, *delta, deadline).await,
                Call::Acquire { lock, ttl_ms, .. } => self.acquire(lock, *ttl_ms, deadline).await,
                Call::Renew { token, .. } => self.renew(*token, deadline).await,
                Call::Release { token, .. } => self.release(*token, deadline).await,
                Call::FencedWrite { key, value, token } => {
                    self.fenced_write(key, value, *token, deadline).await
                }
                Call::LockedIncrement {
                    lock,
                    ttl_ms,
                    resource,
                    delta,
                    hold_ms,
                    ..
                } => {
                    self.locked_increment(
                        lock,
                        *ttl_ms,
                        resource,
                        *delta,
                        Duration::from_millis(*hold_ms),
                        timeout,
                    )
                    .await
                }
                Call::Txn { value } => self.txn(value, deadline).await,
                Call::ReadResource { resource } => {
                    Answer::ok(Some(Value::from(self.resources.get(resource))), self.node())
                }
            }
        })
    }
}

/// The member that says it leads (its own id is the leader it reports),
/// asking every member at once.
pub async fn find_leader(nodes: &[NodeInfo], bind_ip: Option<IpAddr>) -> Option<NodeId> {
    let asks = nodes.iter().map(|n| {
        let (id, addr) = (n.id, n.client_addr);
        async move {
            let mut etcd = connect(addr, bind_ip).ok()?;
            let status = tokio::time::timeout(Duration::from_millis(800), etcd.status())
                .await
                .ok()?
                .ok()?;
            let me = status.header()?.member_id();
            (status.leader() != 0 && status.leader() == me).then_some(id)
        }
    });
    crate::run::probe::futures_join_all(asks)
        .await
        .into_iter()
        .flatten()
        .next()
}

/// Waits until some member answers a linearizable read.
pub async fn wait_until_serving(
    nodes: &[NodeInfo],
    bind_ip: Option<IpAddr>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        for n in nodes {
            let mut etcd = connect(n.client_addr, bind_ip)?;
            match tokio::time::timeout(Duration::from_secs(2), etcd.get("faultline-ready", None))
                .await
            {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => last = format!("{}: {e}", n.name),
                Err(_) => last = format!("{}: no answer within 2 s", n.name),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("etcd elected a leader but served no read within {timeout:?}; last answer: {last}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_workloads::MicroOpKind;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn mop(kind: MicroOpKind, key: Value, value: Value) -> MicroOp {
        MicroOp { kind, key, value }
    }

    #[test]
    fn micro_ops_run_in_order_on_the_snapshot_and_see_their_own_writes() {
        let mut state: BTreeMap<String, (Value, ())> = BTreeMap::new();
        state.insert("1".into(), (json!([3]), ()));
        state.insert("2".into(), (Value::Null, ()));
        let mops = [
            mop(MicroOpKind::Read, json!(1), Value::Null),
            mop(MicroOpKind::Append, json!(1), json!(4)),
            mop(MicroOpKind::Read, json!(1), Value::Null),
            mop(MicroOpKind::Append, json!(2), json!(5)),
            mop(MicroOpKind::Read, json!(2), Value::Null),
        ];
        let (done, writes) =
            apply_micro_ops(&mops, |k| state.get(k).map(|(v, _)| v.clone())).expect("runs");
        assert_eq!(
            Value::Array(done),
            json!([
                ["r", 1, [3]],
                ["append", 1, 4],
                ["r", 1, [3, 4]],
                ["append", 2, 5],
                ["r", 2, [5]]
            ])
        );
        assert_eq!(writes.get("1"), Some(&json!([3, 4])));
        assert_eq!(writes.get("2"), Some(&json!([5])));
    }

    #[test]
    fn a_read_only_transaction_writes_nothing_and_a_register_write_is_read_back() {
        let mut state: BTreeMap<String, (Value, ())> = BTreeMap::new();
        state.insert("x".into(), (json!(7), ()));
        let (done, writes) =
            apply_micro_ops(&[mop(MicroOpKind::Read, json!("x"), Value::Null)], |k| {
                state.get(k).map(|(v, _)| v.clone())
            })
            .expect("runs");
        assert_eq!(Value::Array(done), json!([["r", "x", 7]]));
        assert!(writes.is_empty());
        let (done, writes) = apply_micro_ops(
            &[
                mop(MicroOpKind::Write, json!("x"), json!(8)),
                mop(MicroOpKind::Read, json!("x"), Value::Null),
            ],
            |k| state.get(k).map(|(v, _)| v.clone()),
        )
        .expect("runs");
        assert_eq!(Value::Array(done), json!([["w", "x", 8], ["r", "x", 8]]));
        assert_eq!(writes.get("x"), Some(&json!(8)));
    }

    #[test]
    fn appending_to_a_key_that_holds_no_list_fails_naming_it() {
        let mut state: BTreeMap<String, (Value, ())> = BTreeMap::new();
        state.insert("1".into(), (json!(7), ()));
        let e = apply_micro_ops(&[mop(MicroOpKind::Append, json!(1), json!(2))], |k| {
            state.get(k).map(|(v, _)| v.clone())
        })
        .expect_err("not a list");
        assert!(e.contains("key 1 holds 7"), "{e}");
    }
}

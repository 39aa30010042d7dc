//! An in-memory, linearizable stand-in for a cluster: every request runs
//! under one mutex, with the semantics of docs/protocol.md. No network.
//!
//! Used by tests of the generator and recorder and by the generator
//! benchmark (`harness/examples/gen_bench.rs`): with it, whatever limits
//! throughput is the harness, not a node.

use crate::client::{CallResult, Client};
use crate::protocol::{Reply, Request};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    kv: HashMap<String, Value>,
    /// lock → (owner, token, expires)
    locks: HashMap<String, (String, u64, Instant)>,
    next_token: u64,
    /// resource key → highest token accepted
    fences: HashMap<String, u64>,
}

/// The shared state of a fake cluster. Clone it to share.
#[derive(Clone, Default)]
pub struct FakeStore {
    state: Arc<Mutex<State>>,
}

impl FakeStore {
    pub fn new() -> FakeStore {
        FakeStore::default()
    }

    /// A client of this store, reporting itself as node `name`.
    pub fn client(&self, name: &str) -> FakeClient {
        FakeClient {
            store: self.clone(),
            node: name.to_string(),
        }
    }

    /// Executes one request atomically.
    pub fn execute(&self, request: &Request) -> Reply {
        let mut s = self.state.lock().expect("fake store lock poisoned");
        let now = Instant::now();
        match request {
            Request::Read { key } => Reply::ok(Some(s.kv.get(key).cloned().unwrap_or(Value::Null))),
            Request::Write { key, value } => {
                s.kv.insert(key.clone(), value.clone());
                Reply::ok(None)
            }
            Request::Cas { key, from, to } => {
                let current = s.kv.get(key).cloned().unwrap_or(Value::Null);
                if &current == from {
                    s.kv.insert(key.clone(), to.clone());
                    Reply::ok(None)
                } else {
                    Reply {
                        value: Some(current),
                        ..Reply::error("cas-mismatch", true)
                    }
                }
            }
            Request::Append { key, value } => {
                let entry =
                    s.kv.entry(key.clone())
                        .or_insert_with(|| Value::Array(Vec::new()));
                match entry {
                    Value::Array(items) => {
                        items.push(value.clone());
                        Reply::ok(Some(entry.clone()))
                    }
                    _ => Reply::error("bad-request", true),
                }
            }
            Request::Add { key, delta } => {
                let entry = s.kv.entry(key.clone()).or_insert_with(|| Value::from(0));
                match entry.as_i64() {
                    Some(v) => {
                        *entry = Value::from(v + delta);
                        Reply::ok(Some(entry.clone()))
                    }
                    None => Reply::error("bad-request", true),
                }
            }
            Request::Acquire {
                lock,
                owner,
                ttl_ms,
            } => {
                if let Some((holder, _, expires)) = s.locks.get(lock) {
                    if *expires > now && holder != owner {
                        let mut r = Reply::error("lock-held", true);
                        r.rest.insert("holder".into(), Value::from(holder.clone()));
                        return r;
                    }
                }
                s.next_token += 1;
                let token = s.next_token;
                s.locks.insert(
                    lock.clone(),
                    (owner.clone(), token, now + Duration::from_millis(*ttl_ms)),
                );
                Reply {
                    token: Some(token),
                    ..Reply::ok(None)
                }
            }
            Request::Renew {
                lock,
                owner,
                token,
                ttl_ms,
            } => match s.locks.get_mut(lock) {
                Some((h, t, expires)) if h == owner && t == token && *expires > now => {
                    *expires = now + Duration::from_millis(*ttl_ms);
                    Reply::ok(None)
                }
                _ => Reply::error("not-holder", true),
            },
            Request::Release { lock, owner, token } => match s.locks.get(lock) {
                Some((h, t, expires)) if h == owner && t == token && *expires > now => {
                    s.locks.remove(lock);
                    Reply::ok(None)
                }
                _ => Reply::error("not-holder", true),
            },
            Request::FencedWrite { key, value, token } => {
                let highest = s.fences.get(key).copied().unwrap_or(0);
                if *token < highest {
                    let mut r = Reply::error("stale-token", true);
                    r.token = Some(highest);
                    return r;
                }
                s.fences.insert(key.clone(), *token);
                s.kv.insert(key.clone(), value.clone());
                Reply::ok(None)
            }
            Request::Status => {
                let mut r = Reply::ok(None);
                r.rest.insert("role".into(), Value::from("leader"));
                r
            }
        }
    }
}

/// A [`Client`] of a [`FakeStore`]: never waits, never fails.
pub struct FakeClient {
    store: FakeStore,
    node: String,
}

impl Client for FakeClient {
    async fn call(&mut self, request: &Request, _timeout: Duration) -> CallResult {
        CallResult::Replied {
            node: self.node.clone(),
            reply: self.store.execute(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn follows_the_protocol_semantics() {
        let s = FakeStore::new();
        let k = || "x".to_string();
        assert_eq!(
            s.execute(&Request::Read { key: k() }).value,
            Some(Value::Null)
        );
        assert!(
            s.execute(&Request::Write {
                key: k(),
                value: json!(1)
            })
            .ok
        );
        let r = s.execute(&Request::Cas {
            key: k(),
            from: json!(2),
            to: json!(3),
        });
        assert_eq!(
            (r.ok, r.error.as_deref(), r.value),
            (false, Some("cas-mismatch"), Some(json!(1)))
        );
        assert!(
            s.execute(&Request::Cas {
                key: k(),
                from: json!(1),
                to: json!(3)
            })
            .ok
        );
        let a = s.execute(&Request::Acquire {
            lock: "l".into(),
            owner: "a".into(),
            ttl_ms: 60_000,
        });
        let t = a.token.expect("token");
        let b = s.execute(&Request::Acquire {
            lock: "l".into(),
            owner: "b".into(),
            ttl_ms: 60_000,
        });
        assert_eq!(b.error.as_deref(), Some("lock-held"));
        assert!(
            s.execute(&Request::FencedWrite {
                key: "r".into(),
                value: json!(1),
                token: t + 5
            })
            .ok
        );
        let stale = s.execute(&Request::FencedWrite {
            key: "r".into(),
            value: json!(2),
            token: t,
        });
        assert_eq!(stale.error.as_deref(), Some("stale-token"));
        assert_eq!(
            s.execute(&Request::Add {
                key: "c".into(),
                delta: 3
            })
            .value,
            Some(json!(3))
        );
        assert_eq!(
            s.execute(&Request::Append {
                key: "s".into(),
                value: json!(9)
            })
            .value,
            Some(json!([9]))
        );
    }
}

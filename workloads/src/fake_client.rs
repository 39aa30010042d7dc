//! An in-memory, linearizable stand-in for a system under test: every call
//! runs under one mutex, with the semantics [`crate::call::Call`] documents
//! (those of faultline's node, docs/protocol.md). No network.
//!
//! Used by tests of the generator and recorder and by the generator
//! benchmark (`harness/examples/gen_bench.rs`): with it, whatever limits
//! throughput is the harness, not a system.

use crate::call::{apply_micro_ops, Answer, Call};
use crate::client::{BoxFuture, Client};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    kv: HashMap<String, Value>,
    /// The counters of locked increments.
    resources: HashMap<String, i64>,
    /// lock → (owner, token, expires)
    locks: HashMap<String, (String, u64, Instant)>,
    next_token: u64,
    /// resource key → highest token accepted
    fences: HashMap<String, u64>,
}

/// The shared state of a fake system. Clone it to share.
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

    /// Executes one call atomically; the answer names node `n1`.
    pub fn execute(&self, call: &Call) -> Answer {
        let mut answer = self.apply(call);
        answer.node = Some("n1".into());
        answer
    }

    fn apply(&self, call: &Call) -> Answer {
        let mut s = self.state.lock().expect("fake store lock poisoned");
        let now = Instant::now();
        match call {
            Call::Read { key } => {
                Answer::ok(Some(s.kv.get(key).cloned().unwrap_or(Value::Null)), None)
            }
            Call::LockedIncrement {
                resource, delta, ..
            } => {
                // One mutex orders everything here: the lock always holds.
                let counter = s.resources.entry(resource.clone()).or_insert(0);
                *counter += delta;
                Answer::ok(Some(Value::from(*counter)), None)
            }
            Call::ReadResource { resource } => Answer::ok(
                Some(Value::from(s.resources.get(resource).copied().unwrap_or(0))),
                None,
            ),
            Call::Write { key, value } => {
                s.kv.insert(key.clone(), value.clone());
                Answer::ok(None, None)
            }
            Call::Cas { key, from, to } => {
                let current = s.kv.get(key).cloned().unwrap_or(Value::Null);
                if &current == from {
                    s.kv.insert(key.clone(), to.clone());
                    Answer::ok(None, None)
                } else {
                    Answer {
                        value: Some(current),
                        ..Answer::fail("cas-mismatch", None)
                    }
                }
            }
            Call::SetAdd { key, element } => {
                let entry =
                    s.kv.entry(key.clone())
                        .or_insert_with(|| Value::Array(Vec::new()));
                match entry {
                    Value::Array(items) => {
                        items.push(element.clone());
                        Answer::ok(Some(entry.clone()), None)
                    }
                    _ => Answer::fail("bad-request", None),
                }
            }
            Call::Increment { key, delta } => {
                let entry = s.kv.entry(key.clone()).or_insert_with(|| Value::from(0));
                match entry.as_i64() {
                    Some(v) => {
                        *entry = Value::from(v + delta);
                        Answer::ok(Some(entry.clone()), None)
                    }
                    None => Answer::fail("bad-request", None),
                }
            }
            Call::Acquire {
                lock,
                owner,
                ttl_ms,
            } => {
                if let Some((holder, _, expires)) = s.locks.get(lock) {
                    if *expires > now && holder != owner {
                        return Answer::fail("lock-held", None);
                    }
                }
                s.next_token += 1;
                let token = s.next_token;
                s.locks.insert(
                    lock.clone(),
                    (owner.clone(), token, now + Duration::from_millis(*ttl_ms)),
                );
                Answer {
                    token: Some(token),
                    ..Answer::ok(None, None)
                }
            }
            Call::Renew {
                lock,
                owner,
                token,
                ttl_ms,
            } => match s.locks.get_mut(lock) {
                Some((h, t, expires)) if h == owner && t == token && *expires > now => {
                    *expires = now + Duration::from_millis(*ttl_ms);
                    Answer::ok(None, None)
                }
                _ => Answer::fail("not-holder", None),
            },
            Call::Release { lock, owner, token } => match s.locks.get(lock) {
                Some((h, t, expires)) if h == owner && t == token && *expires > now => {
                    s.locks.remove(lock);
                    Answer::ok(None, None)
                }
                _ => Answer::fail("not-holder", None),
            },
            Call::Txn { value: mops } => {
                // Atomic: computed on the store as it is, then committed at once.
                match apply_micro_ops(mops, |k| s.kv.get(k).cloned()) {
                    Ok((done, writes)) => {
                        s.kv.extend(writes);
                        Answer::ok(Some(Value::Array(done)), None)
                    }
                    Err(_) => Answer::fail("bad-request", None),
                }
            }
            Call::FencedWrite { key, value, token } => {
                let highest = s.fences.get(key).copied().unwrap_or(0);
                if *token < highest {
                    return Answer {
                        token: Some(highest),
                        ..Answer::fail("stale-token", None)
                    };
                }
                s.fences.insert(key.clone(), *token);
                s.kv.insert(key.clone(), value.clone());
                Answer::ok(None, None)
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
    fn invoke<'a>(&'a mut self, call: &'a Call, _timeout: Duration) -> BoxFuture<'a, Answer> {
        let mut answer = self.store.apply(call);
        answer.node = Some(self.node.clone());
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Outcome;
    use serde_json::json;

    #[test]
    fn follows_the_documented_semantics() {
        let s = FakeStore::new();
        let k = || "x".to_string();
        assert_eq!(s.execute(&Call::Read { key: k() }).value, Some(Value::Null));
        let w = s.execute(&Call::Write {
            key: k(),
            value: json!(1),
        });
        assert_eq!(w.outcome, Outcome::Ok);
        let r = s.execute(&Call::Cas {
            key: k(),
            from: json!(2),
            to: json!(3),
        });
        assert_eq!(
            (r.outcome, r.error.as_deref(), r.value),
            (Outcome::Fail, Some("cas-mismatch"), Some(json!(1)))
        );
        let r = s.execute(&Call::Cas {
            key: k(),
            from: json!(1),
            to: json!(3),
        });
        assert_eq!(r.outcome, Outcome::Ok);
        let a = s.execute(&Call::Acquire {
            lock: "l".into(),
            owner: "a".into(),
            ttl_ms: 60_000,
        });
        let t = a.token.expect("token");
        let b = s.execute(&Call::Acquire {
            lock: "l".into(),
            owner: "b".into(),
            ttl_ms: 60_000,
        });
        assert_eq!(b.error.as_deref(), Some("lock-held"));
        let fresh = s.execute(&Call::FencedWrite {
            key: "r".into(),
            value: json!(1),
            token: t + 5,
        });
        assert_eq!(fresh.outcome, Outcome::Ok);
        let stale = s.execute(&Call::FencedWrite {
            key: "r".into(),
            value: json!(2),
            token: t,
        });
        assert_eq!(
            (stale.error.as_deref(), stale.token),
            (Some("stale-token"), Some(t + 5))
        );
        assert_eq!(
            s.execute(&Call::Increment {
                key: "c".into(),
                delta: 3
            })
            .value,
            Some(json!(3))
        );
        assert_eq!(
            s.execute(&Call::SetAdd {
                key: "s".into(),
                element: json!(9)
            })
            .value,
            Some(json!([9]))
        );
    }
}

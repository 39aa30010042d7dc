//! The system-neutral operation a client is asked to perform.
//!
//! A workload says *what* it wants done (Jepsen's `{f, key, value}`, with
//! the value's shape made a type); each system's client (faultline's node,
//! etcd, an adapter, …) maps a [`Call`] to its own API and answers with an
//! [`Answer`]. Nothing here names a system or a wire format. The history
//! records the workload's [`crate::Op`], not the call: the call is what the
//! client executes, the op is what the checkers see.
//!
//! A call serializes as `{"f": "...", ...fields}` (`f` in kebab-case), the
//! form a client process outside faultline can read.

use crate::op::Outcome;
use serde::ser::{SerializeTuple, Serializer};
use serde::Serialize;
use serde_json::Value;

/// One operation for a system's client to perform.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Call {
    /// Read the value at `key` (absent: null).
    Read { key: String },
    /// Write `value` at `key`.
    Write { key: String, value: Value },
    /// Write `to` at `key` if it holds `from` (a definite `fail` otherwise).
    Cas { key: String, from: Value, to: Value },
    /// Add `element` to the set at `key` (read back as a list).
    SetAdd { key: String, element: Value },
    /// Add `delta` to the counter at `key` (absent: 0).
    Increment { key: String, delta: i64 },
    /// Acquire `lock` for `owner` with a lease of `ttl_ms`; the answer
    /// carries the fencing token.
    Acquire {
        lock: String,
        owner: String,
        ttl_ms: u64,
    },
    /// Extend the lease of `lock` held with `token`.
    Renew {
        lock: String,
        owner: String,
        token: u64,
        ttl_ms: u64,
    },
    /// Release `lock` held with `token`.
    Release {
        lock: String,
        owner: String,
        token: u64,
    },
    /// Write `value` at `key`, a resource protected by fencing tokens: the
    /// system refuses (definite `fail`) a token older than one it took.
    FencedWrite {
        key: String,
        value: Value,
        token: u64,
    },
    /// Under `lock` (acquired for `owner` as [`Call::Acquire`] does),
    /// read the counter `resource`, wait `hold_ms`, write back the sum with
    /// `delta` with no other guard, release. The counter lives in the
    /// client side's memory, shared by the run's clients (Jepsen's
    /// lock-set keeps its set the same way): only the lock orders the
    /// read-modify-writes, so a lost update is a lost exclusion. The answer
    /// is `ok` once the write happened, whatever the release did, and
    /// `fail` when the lock was not had (the counter untouched).
    LockedIncrement {
        lock: String,
        owner: String,
        ttl_ms: u64,
        resource: String,
        delta: i64,
        hold_ms: u64,
    },
    /// Read the counter `resource` of [`Call::LockedIncrement`].
    ReadResource { resource: String },
    /// A transaction: its micro-ops (Jepsen's `[f, key, value]`) take
    /// effect atomically, in order, and it reads its own writes. The
    /// answer's value is the same list with every read's value filled in.
    Txn { value: Vec<MicroOp> },
}

/// What a micro-op of a transaction does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MicroOpKind {
    /// `r`: read the key (a list for list-append, a register otherwise;
    /// absent: null).
    Read,
    /// `w`: set the register at the key.
    Write,
    /// `append`: append to the list at the key (absent: empty).
    Append,
}

impl MicroOpKind {
    /// Jepsen's name: `r`, `w`, `append`.
    pub fn name(self) -> &'static str {
        match self {
            MicroOpKind::Read => "r",
            MicroOpKind::Write => "w",
            MicroOpKind::Append => "append",
        }
    }
}

/// One micro-op, `[f, key, value]` as Jepsen and the history write it
/// (a read's value is null until it is answered).
#[derive(Clone, Debug, PartialEq)]
pub struct MicroOp {
    pub kind: MicroOpKind,
    pub key: Value,
    pub value: Value,
}

impl MicroOp {
    /// The key as a store names it: a string as it is, a number in decimal.
    pub fn key_string(&self) -> String {
        match &self.key {
            Value::String(k) => k.clone(),
            other => other.to_string(),
        }
    }

    /// `[f, key, value]`, the history's form.
    pub fn to_json(&self) -> Value {
        Value::Array(vec![
            Value::from(self.kind.name()),
            self.key.clone(),
            self.value.clone(),
        ])
    }
}

/// Runs a transaction's micro-ops in order on a snapshot (`current`: each
/// key's value before the transaction, None when absent), reads seeing the
/// transaction's own earlier writes: the micro-ops with reads filled in, in
/// the history's form, and each changed key's new value. An append to a key
/// that holds no list is an error naming it. What commits the writes, and
/// how atomically, is the store's business.
#[allow(clippy::type_complexity)]
pub fn apply_micro_ops(
    mops: &[MicroOp],
    current: impl Fn(&str) -> Option<Value>,
) -> Result<(Vec<Value>, std::collections::BTreeMap<String, Value>), String> {
    let mut writes = std::collections::BTreeMap::new();
    let mut done = Vec::with_capacity(mops.len());
    for m in mops {
        let key = m.key_string();
        let value = match writes.get(&key) {
            Some(v) => Value::clone(v),
            None => current(&key).unwrap_or(Value::Null),
        };
        let mut out = m.clone();
        match m.kind {
            MicroOpKind::Read => out.value = value,
            MicroOpKind::Write => {
                writes.insert(key, m.value.clone());
            }
            MicroOpKind::Append => {
                let mut list = match value {
                    Value::Null => Vec::new(),
                    Value::Array(items) => items,
                    other => return Err(format!("key {key} holds {other}, not a list")),
                };
                list.push(m.value.clone());
                writes.insert(key, Value::Array(list));
            }
        }
        done.push(out.to_json());
    }
    Ok((done, writes))
}

impl Serialize for MicroOp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(3)?;
        tuple.serialize_element(self.kind.name())?;
        tuple.serialize_element(&self.key)?;
        tuple.serialize_element(&self.value)?;
        tuple.end()
    }
}

impl Call {
    /// True for calls that change nothing: an unknown outcome of one can be
    /// recorded as `fail`, since it has no effect to take later.
    pub fn is_read_only(&self) -> bool {
        match self {
            Call::Read { .. } | Call::ReadResource { .. } => true,
            Call::Txn { value } => value.iter().all(|m| m.kind == MicroOpKind::Read),
            _ => false,
        }
    }

    /// The call's name, as it serializes (`read`, `set-add`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Call::Read { .. } => "read",
            Call::Write { .. } => "write",
            Call::Cas { .. } => "cas",
            Call::SetAdd { .. } => "set-add",
            Call::Increment { .. } => "increment",
            Call::Acquire { .. } => "acquire",
            Call::Renew { .. } => "renew",
            Call::Release { .. } => "release",
            Call::FencedWrite { .. } => "fenced-write",
            Call::Txn { .. } => "txn",
            Call::LockedIncrement { .. } => "locked-increment",
            Call::ReadResource { .. } => "read-resource",
        }
    }
}

/// How a system's client says a call ended: Jepsen's completed op, before
/// the workload shapes it into the history's completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// `Ok`: it happened. `Fail`: it certainly did not. `Info`: unknown
    /// (a client never decides that an unknown read is a `fail`: the
    /// workload does, see [`crate::workload::standard_completion`]).
    pub outcome: Outcome,
    /// What the system returned: the value a read saw (None or null: the
    /// key is absent), the state after a set add or an increment.
    pub value: Option<Value>,
    /// The fencing token an acquire was granted (or, on a refused fenced
    /// write, the newer token the resource holds, when the system says).
    pub token: Option<u64>,
    /// Why it failed or is unknown: a short code (`cas-mismatch`,
    /// `timeout`, `not-holder`, …).
    pub error: Option<String>,
    /// The node that answered (or was last tried): `n1`, `n2`, …
    pub node: Option<String>,
}

impl Answer {
    /// It happened, observing `value`.
    pub fn ok(value: Option<Value>, node: Option<String>) -> Answer {
        Answer {
            outcome: Outcome::Ok,
            value,
            token: None,
            error: None,
            node,
        }
    }

    /// It certainly did not happen, because of `error`.
    pub fn fail(error: impl Into<String>, node: Option<String>) -> Answer {
        Answer {
            outcome: Outcome::Fail,
            error: Some(error.into()),
            ..Answer::ok(None, node)
        }
    }

    /// It may or may not happen, because of `error`.
    pub fn info(error: impl Into<String>, node: Option<String>) -> Answer {
        Answer {
            outcome: Outcome::Info,
            error: Some(error.into()),
            ..Answer::ok(None, node)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_serialize_as_f_and_fields() {
        let c = Call::Cas {
            key: "x".into(),
            from: json!(1),
            to: json!(2),
        };
        assert_eq!(
            serde_json::to_value(&c).expect("serializes"),
            json!({"f":"cas","key":"x","from":1,"to":2})
        );
        let f = Call::FencedWrite {
            key: "r".into(),
            value: json!(3),
            token: 9,
        };
        let v = serde_json::to_value(&f).expect("serializes");
        assert_eq!(v["f"], f.name());
        assert_eq!(
            serde_json::to_value(Call::SetAdd {
                key: "s".into(),
                element: json!(4)
            })
            .expect("serializes")["f"],
            "set-add"
        );
        assert!(Call::Read { key: "k".into() }.is_read_only());
        assert!(!f.is_read_only());
    }

    #[test]
    fn a_txn_serializes_as_jepsen_micro_ops_and_is_read_only_only_without_writes() {
        let read = MicroOp {
            kind: MicroOpKind::Read,
            key: json!(3),
            value: Value::Null,
        };
        let append = MicroOp {
            kind: MicroOpKind::Append,
            key: json!(3),
            value: json!(7),
        };
        let txn = Call::Txn {
            value: vec![append.clone(), read.clone()],
        };
        assert_eq!(
            serde_json::to_value(&txn).expect("serializes"),
            json!({"f":"txn","value":[["append",3,7],["r",3,null]]})
        );
        assert!(!txn.is_read_only());
        assert!(Call::Txn { value: vec![read] }.is_read_only());
        assert_eq!(append.to_json(), json!(["append", 3, 7]));
    }
}

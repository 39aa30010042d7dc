//! Transactions: a list of micro-ops on keys of one shard, applied
//! atomically as one log entry (one [`super::command::Command::Txn`]).
//!
//! Micro-ops are Jepsen's: `["r", key, null]` reads a key (its value, or
//! null when absent), `["w", key, value]` sets it, `["append", key, value]`
//! appends to the list at the key (an absent key is an empty list). A
//! transaction reads its own writes: a read after a write of the same key
//! in the same transaction sees that write. The result is the same list
//! with every read's value filled in.
//!
//! A transaction either applies whole or not at all: an append to a key
//! that holds something other than a list refuses the whole transaction
//! and changes nothing.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// What a micro-op does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MicroOpKind {
    Read,
    Write,
    Append,
}

impl MicroOpKind {
    pub fn name(self) -> &'static str {
        match self {
            MicroOpKind::Read => "r",
            MicroOpKind::Write => "w",
            MicroOpKind::Append => "append",
        }
    }
}

/// One micro-op, `[f, key, value]` on the wire and in the log.
#[derive(Clone, Debug, PartialEq)]
pub struct MicroOp {
    pub kind: MicroOpKind,
    pub key: String,
    pub value: Value,
}

impl Serialize for MicroOp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(self.kind.name())?;
        t.serialize_element(&self.key)?;
        t.serialize_element(&self.value)?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for MicroOp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MicroOp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a micro-op [f, key, value] with f one of r, w, append")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MicroOp, A::Error> {
                let f: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let kind = match f.as_str() {
                    "r" => MicroOpKind::Read,
                    "w" => MicroOpKind::Write,
                    "append" => MicroOpKind::Append,
                    other => {
                        return Err(de::Error::custom(format!(
                            "unknown micro-op {other:?}: expected r, w or append"
                        )))
                    }
                };
                let key = match seq
                    .next_element::<Value>()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?
                {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    other => {
                        return Err(de::Error::custom(format!(
                            "a micro-op's key must be a string or a number, got {other}"
                        )))
                    }
                };
                let value: Value = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(2, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(4, &self));
                }
                Ok(MicroOp { kind, key, value })
            }
        }
        d.deserialize_seq(V)
    }
}

/// The most micro-ops one transaction may hold.
pub const MAX_MICRO_OPS: usize = 256;

/// Checks a transaction before it is proposed: not empty, not too long,
/// reads carry null. Returns why not.
pub fn validate(mops: &[MicroOp]) -> Result<(), String> {
    if mops.is_empty() {
        return Err("a txn needs at least one micro-op".into());
    }
    if mops.len() > MAX_MICRO_OPS {
        return Err(format!(
            "a txn holds at most {MAX_MICRO_OPS} micro-ops, got {}",
            mops.len()
        ));
    }
    Ok(())
}

/// Runs `mops` against `kv` (reads see earlier micro-ops of the same
/// transaction). On success returns the micro-ops with reads filled in and
/// the writes to make; on a micro-op that cannot apply, why, and no write.
pub fn execute(
    kv: &BTreeMap<String, Value>,
    mops: &[MicroOp],
) -> Result<(Vec<MicroOp>, Vec<(String, Value)>), String> {
    let mut local: BTreeMap<&str, Value> = BTreeMap::new();
    let mut out = Vec::with_capacity(mops.len());
    for (i, m) in mops.iter().enumerate() {
        let current = || {
            local
                .get(m.key.as_str())
                .cloned()
                .unwrap_or_else(|| kv.get(&m.key).cloned().unwrap_or(Value::Null))
        };
        match m.kind {
            MicroOpKind::Read => out.push(MicroOp {
                value: current(),
                ..m.clone()
            }),
            MicroOpKind::Write => {
                local.insert(&m.key, m.value.clone());
                out.push(m.clone());
            }
            MicroOpKind::Append => {
                let mut list = match current() {
                    Value::Null => Vec::new(),
                    Value::Array(items) => items,
                    other => {
                        return Err(format!(
                            "micro-op {}: append to {:?}, which holds {other}, not a list",
                            i + 1,
                            m.key
                        ))
                    }
                };
                list.push(m.value.clone());
                local.insert(&m.key, Value::Array(list));
                out.push(m.clone());
            }
        }
    }
    let writes = local.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Ok((out, writes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mops(v: Value) -> Vec<MicroOp> {
        serde_json::from_value(v).expect("micro-ops")
    }

    #[test]
    fn reads_see_the_transactions_own_writes_and_nothing_applies_on_error() {
        let mut kv = BTreeMap::new();
        kv.insert("x".to_string(), json!([1]));
        let (out, writes) = execute(
            &kv,
            &mops(json!([
                ["r", "x", null],
                ["append", "x", 2],
                ["r", "x", null],
                ["w", "y", 5],
                ["r", "y", null],
                ["r", 3, null]
            ])),
        )
        .expect("applies");
        assert_eq!(
            serde_json::to_value(&out).expect("json"),
            json!([
                ["r", "x", [1]],
                ["append", "x", 2],
                ["r", "x", [1, 2]],
                ["w", "y", 5],
                ["r", "y", 5],
                ["r", "3", null]
            ])
        );
        assert_eq!(
            writes,
            vec![
                ("x".to_string(), json!([1, 2])),
                ("y".to_string(), json!(5))
            ]
        );
        kv.insert("s".to_string(), json!("text"));
        let e = execute(&kv, &mops(json!([["append", "x", 3], ["append", "s", 1]]))).unwrap_err();
        assert!(e.contains("micro-op 2") && e.contains("not a list"), "{e}");
    }

    #[test]
    fn bad_micro_ops_do_not_decode() {
        for bad in [
            json!([["x", "k", 1]]),
            json!([["r", "k"]]),
            json!([["r", [1], null]]),
            json!([["r", "k", null, 4]]),
            json!(["r"]),
        ] {
            assert!(
                serde_json::from_value::<Vec<MicroOp>>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert!(validate(&[]).is_err());
        assert!(validate(&mops(json!([["r", "k", null]]))).is_ok());
    }
}

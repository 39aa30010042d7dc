//! The simulator's client operations, as the node's own requests ([`Op`]).
//!
//! Register clients run read / write / cas on integer registers (keys
//! `r0`, `r1`, …; reads through ReadIndex, the rest through the log). Lock
//! clients run the harness's `--workload lock` shape on one lock and one
//! fenced resource: acquire, then a fenced write with the token, then renew
//! or release; now and then a slow holder waits past its lease before its
//! write, so that a newer holder has written first and a stale token must
//! be refused. Transaction clients run the harness's `--workload
//! list-append` shape: one to four micro-ops (appends of values unique in
//! the run, list reads) on a few keys, as one `Command::Txn`. What each op
//! records follows the checker's models (`cas-register`; the `fencing` and
//! `mutual-exclusion` checkers; list-append, checked strict serializable).
//!
//! Register values ([`RegisterValues`]): small (0 to 4, so that cas often
//! matches and the checker's search has collisions to sort out) or fresh
//! (every write and cas writes a value no other op of the run writes, and a
//! cas expects the last value acknowledged for its key): then a write that
//! took effect although its client was told `fail` is seen by the checker
//! as soon as a read returns its value (issue 21, finding 1).
//!
//! Guarantees: every command a client sends is one the node's protocol
//! sends for the same request; an op's history values depend only on the
//! op and its answer.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::rng::SimRng;
use crate::protocol::Op;
use crate::state::txn::{MicroOp, MicroOpKind};

/// The lease a lock client asks for, in virtual milliseconds.
pub const LEASE_TTL_MS: u64 = 800;
/// The lock every lock client contends for (history key).
pub const LOCK_KEY: u64 = 0;
/// The fenced resource (history key).
pub const RESOURCE_KEY: u64 = 0;
const LOCK_NAME: &str = "lock";
const RESOURCE_NAME: &str = "fenced";

/// How many list keys transaction clients share (history keys 0..).
pub const TXN_KEYS: u64 = 4;
/// The history key a transaction is recorded under (its micro-ops name theirs).
pub const TXN_KEY: u64 = 0;

/// One micro-op of a list-append transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnMop {
    /// Append the value (unique in the run) to list `key`.
    Append { key: u64, value: u64 },
    /// Read list `key`.
    Read { key: u64 },
}

impl TxnMop {
    /// As the history records it: `["append", k, v]` or `["r", k, list]`.
    fn recorded(&self, read: Value) -> Value {
        match *self {
            TxnMop::Append { key, value } => json!(["append", key, value]),
            TxnMop::Read { key } => json!(["r", key, read]),
        }
    }

    fn command(&self) -> MicroOp {
        match *self {
            TxnMop::Append { key, value } => MicroOp {
                kind: MicroOpKind::Append,
                key: list_name(key),
                value: Value::from(value),
            },
            TxnMop::Read { key } => MicroOp {
                kind: MicroOpKind::Read,
                key: list_name(key),
                value: Value::Null,
            },
        }
    }
}

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    Read,
    Write(u64),
    Cas(u64, u64),
    Acquire,
    Renew { token: u64 },
    Release { token: u64 },
    FencedWrite { token: u64, value: u64 },
    Txn(Vec<TxnMop>),
}

impl OpKind {
    /// The history's `f`.
    pub fn f(&self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write(_) => "write",
            OpKind::Cas(..) => "cas",
            OpKind::Acquire => "acquire",
            OpKind::Renew { .. } => "renew",
            OpKind::Release { .. } => "release",
            OpKind::FencedWrite { .. } => "fenced-write",
            OpKind::Txn(_) => "txn",
        }
    }

    pub fn is_lock(&self) -> bool {
        matches!(
            self,
            OpKind::Acquire
                | OpKind::Renew { .. }
                | OpKind::Release { .. }
                | OpKind::FencedWrite { .. }
        )
    }

    /// The value an invoke records (and a fail or info repeats).
    pub fn value(&self, owner: &str) -> Value {
        match self {
            OpKind::Read => Value::Null,
            OpKind::Write(v) => Value::from(*v),
            OpKind::Cas(a, b) => Value::from(vec![*a, *b]),
            OpKind::Acquire => json!({"owner": owner, "ttl_ms": LEASE_TTL_MS}),
            OpKind::Renew { token } => {
                json!({"owner": owner, "token": token, "ttl_ms": LEASE_TTL_MS})
            }
            OpKind::Release { token } => json!({"owner": owner, "token": token}),
            OpKind::FencedWrite { token, value } => json!({"token": token, "value": value}),
            OpKind::Txn(mops) => mops.iter().map(|m| m.recorded(Value::Null)).collect(),
        }
    }

    /// The value an ok records, given the node's answer.
    pub fn ok_value(&self, owner: &str, answer: Value) -> Value {
        match self {
            OpKind::Read => answer,
            OpKind::Acquire => {
                let mut v = self.value(owner);
                v["token"] = answer;
                v
            }
            OpKind::Txn(mops) => filled(mops, &answer),
            _ => self.value(owner),
        }
    }

    /// The node's request for this op on history key `key`, as a client
    /// sends it on the wire (the node's request path,
    /// [`crate::server::requests::route`], makes it a read or a command).
    pub fn request(&self, key: u64, owner: &str) -> Op {
        let owner = owner.to_string();
        match self {
            OpKind::Read => Op::Read {
                key: register_name(key),
            },
            OpKind::Write(v) => Op::Write {
                key: register_name(key),
                value: Value::from(*v),
            },
            OpKind::Cas(from, to) => Op::Cas {
                key: register_name(key),
                from: Value::from(*from),
                to: Value::from(*to),
            },
            OpKind::Acquire => Op::Acquire {
                lock: LOCK_NAME.into(),
                owner,
                ttl_ms: LEASE_TTL_MS,
            },
            OpKind::Renew { token } => Op::Renew {
                lock: LOCK_NAME.into(),
                owner,
                token: *token,
                ttl_ms: LEASE_TTL_MS,
            },
            OpKind::Release { token } => Op::Release {
                lock: LOCK_NAME.into(),
                owner,
                token: *token,
            },
            OpKind::FencedWrite { token, value } => Op::FencedWrite {
                key: RESOURCE_NAME.into(),
                value: Value::from(*value),
                token: *token,
            },
            OpKind::Txn(mops) => Op::Txn {
                mops: mops.iter().map(TxnMop::command).collect(),
            },
        }
    }
}

/// A transaction's micro-ops with each read's list taken from the node's
/// answer (its micro-ops, `[f, key, value]`, in order; a list never
/// appended to reads as null: `[]`).
fn filled(mops: &[TxnMop], answer: &Value) -> Value {
    let answered = answer
        .as_array()
        .filter(|a| a.len() == mops.len())
        .expect("the node answers a transaction with its micro-ops, one for one");
    mops.iter()
        .zip(answered)
        .map(|(m, a)| {
            let read = match a.get(2) {
                Some(Value::Null) | None => Value::Array(Vec::new()),
                Some(v) => v.clone(),
            };
            m.recorded(read)
        })
        .collect()
}

/// The state machine's key of list `key`.
pub fn list_name(key: u64) -> String {
    format!("l{key}")
}

/// The state machine's key of register `key`.
pub fn register_name(key: u64) -> String {
    format!("r{key}")
}

/// The owner name a process uses in lock commands.
pub fn owner(process: u64) -> String {
    format!("p{process}")
}

/// The values register clients write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RegisterValues {
    /// 0 to 4, drawn at random (writes and both sides of a cas).
    #[default]
    Small,
    /// Unique in the run (the op's id), a cas expecting the last value
    /// acknowledged for its key.
    Fresh,
}

/// The register clients' next operations.
#[derive(Clone, Debug, Default)]
pub struct RegisterOps {
    values: RegisterValues,
    /// Per key, the last value an ok op returned or wrote (Fresh only).
    last_seen: BTreeMap<u64, u64>,
}

impl RegisterOps {
    pub fn new(values: RegisterValues) -> RegisterOps {
        RegisterOps {
            values,
            last_seen: BTreeMap::new(),
        }
    }

    /// The next op and its key: 40% reads, 30% writes, 30% cas. With
    /// [`RegisterValues::Small`] the draws are the ones the simulator made
    /// before fresh values existed (seeds replay as before); with
    /// [`RegisterValues::Fresh`], `op_id` is the value written, and a cas
    /// on a key nothing was seen on yet is a write.
    pub fn next(&mut self, rng: &mut SimRng, keys: u64, op_id: u64) -> (OpKind, u64) {
        let key = rng.below(keys);
        let roll = rng.below(10);
        let kind = match (self.values, roll) {
            (_, 0..=3) => OpKind::Read,
            (RegisterValues::Small, 4..=6) => OpKind::Write(rng.below(5)),
            (RegisterValues::Small, _) => OpKind::Cas(rng.below(5), rng.below(5)),
            (RegisterValues::Fresh, 4..=6) => OpKind::Write(op_id),
            (RegisterValues::Fresh, _) => match self.last_seen.get(&key) {
                Some(&from) => OpKind::Cas(from, op_id),
                None => OpKind::Write(op_id),
            },
        };
        (kind, key)
    }

    /// Op `kind` on `key` ended ok with `answer` (a read's value).
    pub fn ended_ok(&mut self, kind: &OpKind, key: u64, answer: &Value) {
        if self.values != RegisterValues::Fresh {
            return;
        }
        let seen = match *kind {
            OpKind::Read => answer.as_u64(),
            OpKind::Write(v) | OpKind::Cas(_, v) => Some(v),
            _ => None,
        };
        if let Some(v) = seen {
            self.last_seen.insert(key, v);
        }
    }
}

/// What a lock client holds, and so what it does next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockClient {
    /// The token of the lease it believes it holds.
    pub held: Option<u64>,
    /// Its last fenced write was done: renew or release next.
    pub wrote: bool,
}

impl LockClient {
    /// The next op: acquire when holding nothing, a fenced write once per
    /// grant or renew, then renew (`renew` true) or release.
    pub fn next(&self, renew: bool, value: u64) -> OpKind {
        match self.held {
            None => OpKind::Acquire,
            Some(token) if !self.wrote => OpKind::FencedWrite { token, value },
            Some(token) if renew => OpKind::Renew { token },
            Some(token) => OpKind::Release { token },
        }
    }

    /// The op `kind` ended: ok (`Some(answer)`), or not (`None`: a definite
    /// fail or unknown). A holder that fails to write or renew, or asks to
    /// release, holds nothing any more.
    pub fn ended(&mut self, kind: &OpKind, answer: Option<&Value>) {
        match (kind, answer) {
            (OpKind::Acquire, Some(token)) => {
                self.held = token.as_u64();
                self.wrote = false;
            }
            (OpKind::FencedWrite { .. }, Some(_)) => self.wrote = true,
            (OpKind::Renew { .. }, Some(_)) => self.wrote = false,
            (OpKind::Acquire, None) => {}
            _ => *self = LockClient::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_client_acquires_writes_then_renews_or_releases() {
        let mut c = LockClient::default();
        assert_eq!(c.next(true, 1), OpKind::Acquire);
        c.ended(&OpKind::Acquire, Some(&Value::from(7)));
        assert_eq!(c.next(true, 1), OpKind::FencedWrite { token: 7, value: 1 });
        c.ended(
            &OpKind::FencedWrite { token: 7, value: 1 },
            Some(&Value::Null),
        );
        assert_eq!(c.next(true, 1), OpKind::Renew { token: 7 });
        assert_eq!(c.next(false, 1), OpKind::Release { token: 7 });
        c.ended(&OpKind::Release { token: 7 }, Some(&Value::Null));
        assert_eq!(c.next(true, 1), OpKind::Acquire);
    }

    #[test]
    fn a_transaction_records_its_reads_from_the_answer_in_order() {
        let t = OpKind::Txn(vec![
            TxnMop::Append { key: 1, value: 9 },
            TxnMop::Read { key: 1 },
            TxnMop::Read { key: 2 },
        ]);
        assert_eq!(
            t.value("p0"),
            json!([["append", 1, 9], ["r", 1, null], ["r", 2, null]])
        );
        let answer = json!([["append", "l1", 9], ["r", "l1", [3, 9]], ["r", "l2", null]]);
        assert_eq!(
            t.ok_value("p0", answer),
            json!([["append", 1, 9], ["r", 1, [3, 9]], ["r", 2, []]])
        );
        assert!(!t.is_lock());
    }

    #[test]
    fn fresh_values_are_the_op_ids_and_a_cas_expects_the_last_value_seen() {
        let mut ops = RegisterOps::new(RegisterValues::Fresh);
        let mut rng = SimRng::new(5);
        let mut writes = Vec::new();
        for op_id in 1..200 {
            let (kind, key) = ops.next(&mut rng, 1, op_id);
            assert_eq!(key, 0);
            match kind {
                OpKind::Read => {}
                OpKind::Write(v) => writes.push(v),
                OpKind::Cas(from, to) => {
                    assert_eq!(Some(&from), ops.last_seen.get(&0), "op {op_id}");
                    writes.push(to);
                }
                other => panic!("a register op, not {other:?}"),
            }
            ops.ended_ok(&kind, key, &Value::from(op_id));
        }
        let mut unique = writes.clone();
        unique.dedup();
        assert_eq!(unique, writes, "every value is written once");
        assert!(writes.len() > 50);
    }

    #[test]
    fn small_values_draw_as_before() {
        // The draws of the world before RegisterOps: key, roll, values.
        let (mut a, mut b) = (SimRng::new(11), SimRng::new(11));
        let mut ops = RegisterOps::new(RegisterValues::Small);
        for op_id in 0..100 {
            let key = a.below(3);
            let expected = match a.below(10) {
                0..=3 => OpKind::Read,
                4..=6 => OpKind::Write(a.below(5)),
                _ => OpKind::Cas(a.below(5), a.below(5)),
            };
            assert_eq!(ops.next(&mut b, 3, op_id), (expected, key));
        }
    }

    #[test]
    fn an_acquire_records_its_token_as_the_fencing_checker_reads_it() {
        let v = OpKind::Acquire.ok_value("p3", Value::from(4));
        assert_eq!(
            v,
            json!({"owner": "p3", "ttl_ms": LEASE_TTL_MS, "token": 4})
        );
    }
}

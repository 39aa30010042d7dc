//! `list-append` and `rw-register`: transactions of micro-ops, generated
//! as Elle's generators make them, checked for isolation by the checker's
//! txn module (strict serializable by default).
//!
//! Each transaction holds 1 to [`TxnShape::max_length`] micro-ops on a
//! small pool of active keys (integers). list-append mixes `[:r k nil]`
//! and `[:append k v]`, rw-register `[:r k nil]` and `[:w k v]`. A value
//! written to a key is unique to that key (worker + n·workers, so workers
//! never collide), as Elle needs to tell writes apart. Keys rotate: every
//! few transactions a worker's oldest active key retires and a fresh one
//! joins, so no key's list grows past about [`TxnShape::writes_per_key`]
//! writes (Elle's max-writes-per-key) and reads stay short. The rotation
//! is a function of the worker's own count of transactions, so a seed still
//! gives the same schedule for the same completions; workers that run at
//! the same pace share their active keys, which is what makes them
//! contend.
//!
//! The history records the transaction as Jepsen does: `f` `txn`, `value`
//! the micro-ops; an `ok` completion's value is the micro-ops with each
//! read's value filled in from the answer (a list-append read of an absent
//! key is the empty list).

use crate::call::{Answer, Call, MicroOp, MicroOpKind};
use crate::op::{Completion, Op, Outcome, Planned};
use crate::workload::{now, standard_completion, worker_rng, WorkerGen, Workload};
use rand::rngs::SmallRng;
use rand::Rng;
use serde_json::Value;

/// Which transactional workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnKind {
    /// Appends to lists and reads of whole lists.
    ListAppend,
    /// Writes and reads of registers.
    RwRegister,
}

/// The size of transactions and of the key pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnShape {
    /// Micro-ops per transaction: 1 to this.
    pub max_length: usize,
    /// Keys active at once in a worker's pool.
    pub active_keys: u64,
    /// About how many writes a key takes before it retires (over all
    /// workers).
    pub writes_per_key: u64,
}

impl Default for TxnShape {
    fn default() -> Self {
        TxnShape {
            max_length: 4,
            active_keys: 4,
            writes_per_key: 32,
        }
    }
}

/// The workload: `kind` transactions of `shape`.
pub struct Txn {
    pub kind: TxnKind,
    pub shape: TxnShape,
}

impl Workload for Txn {
    fn name(&self) -> &'static str {
        match self.kind {
            TxnKind::ListAppend => "list-append",
            TxnKind::RwRegister => "rw-register",
        }
    }
    fn checkers(&self) -> &'static [&'static str] {
        // The checker's result is named after its model.
        match self.kind {
            TxnKind::ListAppend => &["list-append"],
            TxnKind::RwRegister => &["rw-register"],
        }
    }
    fn worker(&self, worker: usize, workers: usize, seed: u64) -> Box<dyn WorkerGen> {
        Box::new(self.generator(worker, workers, seed))
    }
}

impl Txn {
    fn generator(&self, worker: usize, workers: usize, seed: u64) -> TxnGen {
        let workers = workers.max(1) as u64;
        let shape = self.shape;
        // A transaction holds (max_length + 1) / 2 micro-ops on average,
        // half of them writes, spread over the active keys; a key stays
        // active for active_keys rotations. Rotate so that, over all
        // workers, a key takes about writes_per_key writes.
        let mean_writes = (shape.max_length as f64 + 1.0) / 4.0;
        let per_txn_per_key = workers as f64 * mean_writes / shape.active_keys.max(1) as f64;
        let lifetime_txns = shape.writes_per_key as f64 / per_txn_per_key.max(f64::MIN_POSITIVE);
        let rotate_every = (lifetime_txns / shape.active_keys.max(1) as f64)
            .round()
            .max(1.0) as u64;
        TxnGen {
            kind: self.kind,
            shape,
            rng: worker_rng(seed, worker),
            next_value: worker as u64 + 1,
            value_stride: workers,
            count: 0,
            rotate_every,
        }
    }
}

struct TxnGen {
    kind: TxnKind,
    shape: TxnShape,
    rng: SmallRng,
    /// The next value this worker writes (unique across workers).
    next_value: u64,
    value_stride: u64,
    /// Transactions generated so far (drives the key rotation).
    count: u64,
    rotate_every: u64,
}

impl TxnGen {
    /// The lowest active key: the pool is `first..first + active_keys`.
    fn first_key(&self) -> u64 {
        self.count / self.rotate_every
    }

    fn txn(&mut self, mops: Vec<MicroOp>) -> Planned {
        let value = Value::Array(mops.iter().map(MicroOp::to_json).collect());
        now(
            Op {
                f: "txn",
                key: None,
                value,
            },
            Call::Txn { value: mops },
        )
    }

    fn read(key: u64) -> MicroOp {
        MicroOp {
            kind: MicroOpKind::Read,
            key: Value::from(key),
            value: Value::Null,
        }
    }
}

impl WorkerGen for TxnGen {
    fn next(&mut self, _process: u64) -> Planned {
        let first = self.first_key();
        self.count += 1;
        let length = self.rng.gen_range(1..=self.shape.max_length.max(1));
        let mut mops = Vec::with_capacity(length);
        for _ in 0..length {
            let key = first + self.rng.gen_range(0..self.shape.active_keys.max(1));
            if self.rng.gen_bool(0.5) {
                mops.push(TxnGen::read(key));
            } else {
                let value = self.next_value;
                self.next_value += self.value_stride;
                mops.push(MicroOp {
                    kind: match self.kind {
                        TxnKind::ListAppend => MicroOpKind::Append,
                        TxnKind::RwRegister => MicroOpKind::Write,
                    },
                    key: Value::from(key),
                    value: Value::from(value),
                });
            }
        }
        self.txn(mops)
    }

    fn final_ops(&mut self, _process: u64) -> Vec<Planned> {
        let first = self.first_key();
        let mops = (first..first + self.shape.active_keys.max(1))
            .map(TxnGen::read)
            .collect();
        vec![self.txn(mops)]
    }

    fn complete(&mut self, planned: &Planned, answer: Answer) -> Completion {
        let mops = match &planned.call {
            Call::Txn { value } if answer.outcome == Outcome::Ok => value,
            // Not ok (or, impossibly, not a txn): as every workload records it.
            _ => return standard_completion(planned, answer, |_| Value::Null),
        };
        match filled(self.kind, mops, answer.value.as_ref()) {
            Ok(value) => Completion {
                outcome: Outcome::Ok,
                value,
                error: None,
                node: answer.node,
            },
            // The system said ok but its answer is not this transaction's:
            // record what we know (it happened, or not) without inventing reads.
            Err(why) => standard_completion(
                planned,
                Answer {
                    outcome: if planned.call.is_read_only() {
                        Outcome::Fail
                    } else {
                        Outcome::Info
                    },
                    error: Some(format!("malformed-answer: {why}")),
                    ..answer
                },
                |_| Value::Null,
            ),
        }
    }
}

/// The planned micro-ops with each read's value taken from the answer's
/// micro-op at the same position (a list-append read of nothing: `[]`).
fn filled(kind: TxnKind, mops: &[MicroOp], answer: Option<&Value>) -> Result<Value, String> {
    let answered = answer
        .and_then(Value::as_array)
        .ok_or_else(|| "the answer is not a list of micro-ops".to_string())?;
    if answered.len() != mops.len() {
        return Err(format!(
            "{} micro-ops asked, {} answered",
            mops.len(),
            answered.len()
        ));
    }
    let mut out = Vec::with_capacity(mops.len());
    for (i, (m, a)) in mops.iter().zip(answered).enumerate() {
        let mut m = m.clone();
        if m.kind == MicroOpKind::Read {
            let read = a
                .as_array()
                .filter(|parts| parts.len() == 3)
                .map(|parts| parts[2].clone())
                .ok_or_else(|| {
                    format!("micro-op {} of the answer is not [f, key, value]", i + 1)
                })?;
            m.value = match (kind, read) {
                (TxnKind::ListAppend, Value::Null) => Value::Array(Vec::new()),
                (_, v) => v,
            };
        }
        out.push(m.to_json());
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_client::FakeStore;
    use serde_json::json;
    use std::collections::{HashMap, HashSet};

    fn workload(kind: TxnKind) -> Txn {
        Txn {
            kind,
            shape: TxnShape::default(),
        }
    }

    #[test]
    fn values_are_unique_per_key_across_workers_and_keys_rotate() {
        let w = workload(TxnKind::ListAppend);
        let mut seen: HashSet<(u64, u64)> = HashSet::new();
        let mut writes_per_key: HashMap<u64, u64> = HashMap::new();
        let mut keys = HashSet::new();
        for worker in 0..5 {
            let mut g = w.worker(worker, 5, 3);
            for _ in 0..400 {
                let p = g.next(worker as u64);
                assert_eq!(p.op.f, "txn");
                let Call::Txn { value } = &p.call else {
                    panic!("txn call")
                };
                assert!((1..=4).contains(&value.len()));
                for m in value {
                    let key = m.key.as_u64().expect("integer keys");
                    keys.insert(key);
                    if m.kind == MicroOpKind::Append {
                        let v = m.value.as_u64().expect("integer values");
                        assert!(seen.insert((key, v)), "value {v} twice on key {key}");
                        *writes_per_key.entry(key).or_default() += 1;
                    }
                }
            }
        }
        assert!(keys.len() > 20, "keys rotate: {} keys", keys.len());
        let most = writes_per_key.values().max().copied().unwrap_or(0);
        assert!(
            (8..=96).contains(&most),
            "a key takes about 32 writes, the most took {most}"
        );
    }

    #[test]
    fn completions_fill_reads_from_the_answer_in_order() {
        let store = FakeStore::new();
        for kind in [TxnKind::ListAppend, TxnKind::RwRegister] {
            let mut g = workload(kind).worker(0, 1, 11);
            let mut ok = 0;
            for _ in 0..50 {
                let p = g.next(0);
                let c = g.complete(&p, store.execute(&p.call));
                assert_eq!(c.outcome, Outcome::Ok);
                let done = c.value.as_array().expect("micro-ops").clone();
                let asked = p.op.value.as_array().expect("micro-ops").clone();
                assert_eq!(done.len(), asked.len());
                for (d, a) in done.iter().zip(&asked) {
                    assert_eq!((&d[0], &d[1]), (&a[0], &a[1]));
                    if a[0] == "r" && kind == TxnKind::ListAppend {
                        assert!(d[2].is_array(), "a list read is a list: {d}");
                    }
                }
                ok += 1;
            }
            assert_eq!(ok, 50);
        }
        // A read of a key appended earlier in the same transaction sees it.
        let mut g = workload(TxnKind::ListAppend).generator(0, 1, 1);
        let p = g.txn(vec![
            MicroOp {
                kind: MicroOpKind::Append,
                key: json!(900),
                value: json!(1),
            },
            TxnGen::read(900),
        ]);
        let c = g.complete(&p, store.execute(&p.call));
        assert_eq!(c.value, json!([["append", 900, 1], ["r", 900, [1]]]));
    }

    #[test]
    fn a_malformed_ok_answer_is_not_recorded_as_ok() {
        let mut g = workload(TxnKind::RwRegister).generator(0, 1, 2);
        let p = g.txn(vec![TxnGen::read(1)]);
        let c = g.complete(&p, Answer::ok(Some(json!([])), Some("n1".into())));
        assert_eq!(c.outcome, Outcome::Fail, "a read-only txn: fail");
        assert!(c.error.expect("error").contains("malformed-answer"));
        let p = g.txn(vec![MicroOp {
            kind: MicroOpKind::Write,
            key: json!(1),
            value: json!(5),
        }]);
        let c = g.complete(&p, Answer::ok(Some(json!(7)), None));
        assert_eq!(c.outcome, Outcome::Info, "a write may have happened");
    }
}

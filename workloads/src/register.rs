//! `register`: one key, read / write / cas over small integers, checked
//! for linearizability against a compare-and-set register.

use crate::call::{Answer, Call};
use crate::op::{Completion, Op, Planned};
use crate::workload::{now, standard_completion, worker_rng, WorkerGen, Workload};
use rand::rngs::SmallRng;
use rand::Rng;
use serde_json::{json, Value};

/// The register's key on the wire.
pub const KEY: &str = "register";
/// Values are drawn from 0..VALUES: few values make anomalies visible.
const VALUES: i64 = 5;

pub struct Register;

impl Workload for Register {
    fn name(&self) -> &'static str {
        "register"
    }
    fn checkers(&self) -> &'static [&'static str] {
        &["linearizable"]
    }
    fn worker(&self, worker: usize, _workers: usize, seed: u64) -> Box<dyn WorkerGen> {
        Box::new(RegisterGen {
            rng: worker_rng(seed, worker),
            key: KEY.to_string(),
            history_key: None,
        })
    }
}

/// A register worker; `kv` reuses it with a key per operation.
pub struct RegisterGen {
    pub rng: SmallRng,
    /// The key on the wire.
    pub key: String,
    /// The key in the history (None for the single register).
    pub history_key: Option<Value>,
}

impl RegisterGen {
    pub fn read(&self) -> Planned {
        now(
            Op {
                f: "read",
                key: self.history_key.clone(),
                value: Value::Null,
            },
            Call::Read {
                key: self.key.clone(),
            },
        )
    }

    pub fn random(&mut self) -> Planned {
        let roll = self.rng.gen_range(0..100);
        if roll < 50 {
            self.read()
        } else if roll < 75 {
            let v = self.rng.gen_range(0..VALUES);
            now(
                Op {
                    f: "write",
                    key: self.history_key.clone(),
                    value: json!(v),
                },
                Call::Write {
                    key: self.key.clone(),
                    value: json!(v),
                },
            )
        } else {
            let from = self.rng.gen_range(0..VALUES);
            let to = self.rng.gen_range(0..VALUES);
            now(
                Op {
                    f: "cas",
                    key: self.history_key.clone(),
                    value: json!([from, to]),
                },
                Call::Cas {
                    key: self.key.clone(),
                    from: json!(from),
                    to: json!(to),
                },
            )
        }
    }

    pub fn completion(planned: &Planned, answer: Answer) -> Completion {
        standard_completion(planned, answer, |answer| match planned.op.f {
            "read" => answer.value.clone().unwrap_or(Value::Null),
            _ => planned.op.value.clone(),
        })
    }
}

impl WorkerGen for RegisterGen {
    fn next(&mut self, _process: u64) -> Planned {
        self.random()
    }
    fn final_ops(&mut self, _process: u64) -> Vec<Planned> {
        vec![self.read()]
    }
    fn complete(&mut self, planned: &Planned, answer: Answer) -> Completion {
        Self::completion(planned, answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_client::FakeStore;
    use crate::op::Outcome;

    #[test]
    fn ops_carry_history_values_as_documented() {
        let mut g = Register.worker(0, 1, 1);
        let store = FakeStore::new();
        let (mut saw_read, mut saw_write, mut saw_cas) = (false, false, false);
        for _ in 0..200 {
            let p = g.next(0);
            let answer = store.execute(&p.call);
            let c = g.complete(&p, answer.clone());
            match p.op.f {
                "read" => {
                    saw_read = true;
                    assert_eq!(p.op.value, Value::Null);
                    assert_eq!(c.value, answer.value.expect("read value"));
                }
                "write" => {
                    saw_write = true;
                    assert_eq!(c.value, p.op.value);
                }
                "cas" => {
                    saw_cas = true;
                    assert_eq!(p.op.value.as_array().map(Vec::len), Some(2));
                    let expected = answer.outcome;
                    assert_ne!(expected, Outcome::Info, "the fake always knows");
                    assert_eq!(c.outcome, expected);
                }
                other => panic!("unexpected op {other}"),
            }
        }
        assert!(saw_read && saw_write && saw_cas);
    }
}

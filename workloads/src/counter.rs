//! `counter`: workers add small positive deltas to one counter and read it;
//! every read must lie between the sum of acknowledged adds and the sum of
//! adds that may have happened.

use crate::call::{Answer, Call};
use crate::op::{Completion, Op, Planned};
use crate::workload::{now, standard_completion, worker_rng, WorkerGen, Workload};
use rand::rngs::SmallRng;
use rand::Rng;
use serde_json::{json, Value};

pub const KEY: &str = "counter";

pub struct Counter;

impl Workload for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }
    fn checkers(&self) -> &'static [&'static str] {
        &["counter"]
    }
    fn worker(&self, worker: usize, _workers: usize, seed: u64) -> Box<dyn WorkerGen> {
        Box::new(CounterGen {
            rng: worker_rng(seed, worker),
        })
    }
}

struct CounterGen {
    rng: SmallRng,
}

fn read() -> Planned {
    now(
        Op {
            f: "read",
            key: None,
            value: Value::Null,
        },
        Call::Read { key: KEY.into() },
    )
}

impl WorkerGen for CounterGen {
    fn next(&mut self, _process: u64) -> Planned {
        if self.rng.gen_bool(0.2) {
            return read();
        }
        let delta = self.rng.gen_range(1..=5i64);
        now(
            Op {
                f: "add",
                key: None,
                value: json!(delta),
            },
            Call::Increment {
                key: KEY.into(),
                delta,
            },
        )
    }
    fn final_ops(&mut self, _process: u64) -> Vec<Planned> {
        vec![read()]
    }
    fn complete(&mut self, planned: &Planned, answer: Answer) -> Completion {
        standard_completion(planned, answer, |answer| match planned.op.f {
            // An absent counter reads as null: zero.
            "read" => match answer.value.clone() {
                None | Some(Value::Null) => json!(0),
                Some(v) => v,
            },
            _ => planned.op.value.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_client::FakeStore;

    #[test]
    fn reads_see_the_sum_of_adds() {
        let store = FakeStore::new();
        let mut g = Counter.worker(0, 1, 3);
        let mut sum = 0;
        for _ in 0..100 {
            let p = g.next(0);
            let answer = store.execute(&p.call);
            let c = g.complete(&p, answer);
            match p.op.f {
                "add" => sum += p.op.value.as_i64().expect("int delta"),
                "read" => assert_eq!(c.value, json!(sum)),
                other => panic!("unexpected {other}"),
            }
        }
        assert!(sum > 0);
    }
}

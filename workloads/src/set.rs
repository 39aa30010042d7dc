//! `set`: workers add unique integers to one set (an `append` to one key);
//! a final read after every fault healed must hold every acknowledged add
//! (and nothing never added).

use crate::call::{Answer, Call};
use crate::op::{Completion, Op, Planned};
use crate::workload::{now, standard_completion, worker_rng, WorkerGen, Workload};
use rand::rngs::SmallRng;
use rand::Rng;
use serde_json::{json, Value};

pub const KEY: &str = "set";

pub struct Set;

impl Workload for Set {
    fn name(&self) -> &'static str {
        "set"
    }
    fn checkers(&self) -> &'static [&'static str] {
        &["set"]
    }
    fn worker(&self, worker: usize, workers: usize, seed: u64) -> Box<dyn WorkerGen> {
        Box::new(SetGen {
            rng: worker_rng(seed, worker),
            next: worker as u64,
            stride: workers.max(1) as u64,
        })
    }
}

struct SetGen {
    rng: SmallRng,
    /// The next element: worker + k·workers, unique across workers.
    next: u64,
    stride: u64,
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

impl WorkerGen for SetGen {
    fn next(&mut self, _process: u64) -> Planned {
        if self.rng.gen_bool(0.05) {
            return read();
        }
        let e = self.next;
        self.next += self.stride;
        now(
            Op {
                f: "add",
                key: None,
                value: json!(e),
            },
            Call::SetAdd {
                key: KEY.into(),
                element: json!(e),
            },
        )
    }
    fn final_ops(&mut self, _process: u64) -> Vec<Planned> {
        vec![read()]
    }
    fn complete(&mut self, planned: &Planned, answer: Answer) -> Completion {
        standard_completion(planned, answer, |answer| match planned.op.f {
            // An absent key reads as null: the empty set.
            "read" => match answer.value.clone() {
                None | Some(Value::Null) => json!([]),
                Some(v) => v,
            },
            _ => planned.op.value.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn elements_are_unique_across_workers() {
        let mut seen = HashSet::new();
        for w in 0..3 {
            let mut g = Set.worker(w, 3, 5);
            for _ in 0..100 {
                let p = g.next(w as u64);
                if p.op.f == "add" {
                    assert!(
                        seen.insert(p.op.value.as_u64().expect("int")),
                        "duplicate {}",
                        p.op.value
                    );
                }
            }
        }
        assert!(seen.len() > 250);
    }
}

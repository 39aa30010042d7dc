//! `lock-counter`: holders of a lock read-modify-write a counter with no
//! other guard (Jepsen's lock-set, with a counter): each `add` is one
//! [`Call::LockedIncrement`] — take the lock, read the counter, hold for a
//! random while, write back the sum, release. The counter lives in the
//! client side's memory, so nothing but the lock orders the updates: two
//! holders at once lose an update, and the counter checker finds a read
//! below the sum of the acknowledged adds.

use crate::call::{Answer, Call};
use crate::op::{Completion, Op, Planned};
use crate::workload::{now, standard_completion, worker_rng, WorkerGen, Workload};
use rand::rngs::SmallRng;
use rand::Rng;
use serde_json::{json, Value};

/// The lock that guards the counter.
pub const LOCK: &str = "lock";
/// The counter's name.
pub const RESOURCE: &str = "counter";

pub struct LockCounter {
    /// Lease of each acquire.
    pub ttl_ms: u64,
    /// The longest a holder waits between its read and its write.
    pub hold_max_ms: u64,
}

impl Workload for LockCounter {
    fn name(&self) -> &'static str {
        "lock-counter"
    }
    fn checkers(&self) -> &'static [&'static str] {
        &["counter"]
    }
    fn worker(&self, worker: usize, _workers: usize, seed: u64) -> Box<dyn WorkerGen> {
        Box::new(LockCounterGen {
            rng: worker_rng(seed, worker),
            ttl_ms: self.ttl_ms,
            hold_max_ms: self.hold_max_ms,
        })
    }
}

struct LockCounterGen {
    rng: SmallRng,
    ttl_ms: u64,
    hold_max_ms: u64,
}

fn read() -> Planned {
    now(
        Op {
            f: "read",
            key: None,
            value: Value::Null,
        },
        Call::ReadResource {
            resource: RESOURCE.into(),
        },
    )
}

impl WorkerGen for LockCounterGen {
    fn next(&mut self, process: u64) -> Planned {
        if self.rng.gen_bool(0.1) {
            return read();
        }
        let hold_ms = self.rng.gen_range(0..=self.hold_max_ms);
        now(
            Op {
                f: "add",
                key: None,
                value: json!(1),
            },
            Call::LockedIncrement {
                lock: LOCK.into(),
                owner: format!("p{process}"),
                ttl_ms: self.ttl_ms,
                resource: RESOURCE.into(),
                delta: 1,
                hold_ms,
            },
        )
    }
    fn final_ops(&mut self, _process: u64) -> Vec<Planned> {
        vec![read()]
    }
    fn complete(&mut self, planned: &Planned, answer: Answer) -> Completion {
        standard_completion(planned, answer, |answer| match planned.op.f {
            "read" => answer.value.clone().unwrap_or(json!(0)),
            _ => planned.op.value.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_client::FakeStore;
    use crate::op::Outcome;

    #[test]
    fn adds_are_locked_increments_and_reads_see_their_sum() {
        let store = FakeStore::new();
        let mut g = LockCounter {
            ttl_ms: 2000,
            hold_max_ms: 10,
        }
        .worker(0, 1, 4);
        let mut sum = 0;
        for _ in 0..100 {
            let p = g.next(0);
            let c = g.complete(&p, store.execute(&p.call));
            assert_eq!(c.outcome, Outcome::Ok);
            match (&p.call, p.op.f) {
                (Call::LockedIncrement { hold_ms, .. }, "add") => {
                    assert!(*hold_ms <= 10);
                    sum += 1;
                }
                (Call::ReadResource { .. }, "read") => assert_eq!(c.value, json!(sum)),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(sum > 50);
    }
}

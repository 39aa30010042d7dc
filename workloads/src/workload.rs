//! The workload abstraction: what each worker does and who judges it.

use crate::call::{Answer, Call};
use crate::op::{Completion, Op, Outcome, Planned};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::Value;

/// A workload: a family of operations and the checkers that judge them.
pub trait Workload: Send + Sync {
    fn name(&self) -> &'static str;
    /// The checkers that judge this workload's history, by name (the
    /// harness maps them to faultline-checker).
    fn checkers(&self) -> &'static [&'static str];
    /// The generator of worker `worker` of `workers`. The same seed and
    /// worker give the same sequence of operations for the same completions.
    fn worker(&self, worker: usize, workers: usize, seed: u64) -> Box<dyn WorkerGen>;
}

/// One worker's generator. It sees every completion, so a workload can be
/// stateful (a lock workload knows which token it holds).
pub trait WorkerGen: Send {
    /// The next operation of the main phase, for process `process`.
    fn next(&mut self, process: u64) -> Planned;
    /// The operations of the final phase (reads after every fault healed).
    fn final_ops(&mut self, process: u64) -> Vec<Planned>;
    /// The completion for the client's answer; updates the worker's state.
    fn complete(&mut self, planned: &Planned, answer: Answer) -> Completion;
}

/// Which workload: the checker's list, so that a workload's name and the
/// checkers that judge it are defined once.
pub use faultline_checker::workload::Workload as WorkloadKind;

/// Tunables shared by the workloads.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadOptions {
    /// Keys of the `kv` workload.
    pub kv_keys: usize,
    /// Lease of the `lock` workload.
    pub lock_ttl_ms: u64,
    /// Probability that a `lock` worker delays a fenced write past its lease.
    pub lock_slow_probability: f64,
    /// Lock holders' leases are kept alive by the system's client (an etcd
    /// session): holders idle, write once and always release (lock.rs).
    pub lock_keepalive: bool,
    /// The longest a holder idles inside its critical section (`lock` with
    /// keepalive, `lock-counter`).
    pub lock_hold_max_ms: u64,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            kv_keys: 8,
            lock_ttl_ms: 1000,
            lock_slow_probability: 0.25,
            lock_keepalive: false,
            lock_hold_max_ms: 2000,
        }
    }
}

/// The generator of workload `kind`.
pub fn workload_for(kind: WorkloadKind, options: &WorkloadOptions) -> Box<dyn Workload> {
    match kind {
        WorkloadKind::Register => Box::new(crate::register::Register),
        WorkloadKind::Kv => Box::new(crate::kv::Kv {
            keys: options.kv_keys.max(1),
        }),
        WorkloadKind::Lock => Box::new(crate::lock::Lock {
            ttl_ms: options.lock_ttl_ms.max(1),
            slow_probability: options.lock_slow_probability.clamp(0.0, 1.0),
            keepalive: options.lock_keepalive,
            hold_max_ms: options.lock_hold_max_ms,
        }),
        WorkloadKind::LockCounter => Box::new(crate::lock_counter::LockCounter {
            ttl_ms: options.lock_ttl_ms.max(1),
            hold_max_ms: options.lock_hold_max_ms,
        }),
        WorkloadKind::Set => Box::new(crate::set::Set),
        WorkloadKind::Counter => Box::new(crate::counter::Counter),
        WorkloadKind::ListAppend => Box::new(crate::txn::Txn {
            kind: crate::txn::TxnKind::ListAppend,
            shape: crate::txn::TxnShape::default(),
        }),
        WorkloadKind::RwRegister => Box::new(crate::txn::Txn {
            kind: crate::txn::TxnKind::RwRegister,
            shape: crate::txn::TxnShape::default(),
        }),
    }
}

/// The random source of one worker: a function of the seed and the worker.
pub fn worker_rng(seed: u64, worker: usize) -> SmallRng {
    // SplitMix64 of (seed, worker), so neighbouring workers are unrelated.
    let mut z = seed ^ (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    SmallRng::seed_from_u64(z ^ (z >> 31))
}

/// The usual mapping from a client's answer to a completion: `ok` with
/// `ok_value(answer)`; `fail` as answered; `info` as answered, except for
/// read-only calls, which have no effect to take later, so `fail`.
pub fn standard_completion(
    planned: &Planned,
    answer: Answer,
    ok_value: impl FnOnce(&Answer) -> Value,
) -> Completion {
    match answer.outcome {
        Outcome::Ok => Completion {
            outcome: Outcome::Ok,
            value: ok_value(&answer),
            error: None,
            node: answer.node,
        },
        Outcome::Fail | Outcome::Info => Completion {
            outcome: if answer.outcome == Outcome::Info && !planned.call.is_read_only() {
                Outcome::Info
            } else {
                Outcome::Fail
            },
            value: planned.op.value.clone(),
            error: Some(
                answer
                    .error
                    .unwrap_or_else(|| "error without a code".into()),
            ),
            node: answer.node,
        },
    }
}

/// An operation with no delay.
pub fn now(op: Op, call: Call) -> Planned {
    Planned {
        op,
        call,
        delay_before: std::time::Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(call: Call) -> Planned {
        now(
            Op {
                f: "x",
                key: None,
                value: Value::from(1),
            },
            call,
        )
    }

    #[test]
    fn unknown_writes_are_info_but_unknown_reads_are_fail() {
        let w = planned(Call::Write {
            key: "k".into(),
            value: 1.into(),
        });
        let r = planned(Call::Read { key: "k".into() });
        let unknown = || Answer::info("timeout", Some("n1".into()));
        assert_eq!(
            standard_completion(&w, unknown(), |_| Value::Null).outcome,
            Outcome::Info
        );
        assert_eq!(
            standard_completion(&r, unknown(), |_| Value::Null).outcome,
            Outcome::Fail
        );
        let c = standard_completion(&w, Answer::fail("not-leader", None), |_| Value::Null);
        assert_eq!(
            (c.outcome, c.error.as_deref(), c.value),
            (Outcome::Fail, Some("not-leader"), Value::from(1))
        );
        let ok = Answer::ok(Some(Value::from(5)), Some("n2".into()));
        let c = standard_completion(&r, ok, |a| a.value.clone().unwrap_or(Value::Null));
        assert_eq!(
            (c.outcome, c.value, c.node.as_deref()),
            (Outcome::Ok, Value::from(5), Some("n2"))
        );
        let mut coded = Answer::info("x", None);
        coded.error = None;
        assert_eq!(
            standard_completion(&w, coded, |_| Value::Null)
                .error
                .as_deref(),
            Some("error without a code")
        );
    }

    #[test]
    fn every_workload_kind_has_a_generator_naming_checkers() {
        for kind in WorkloadKind::ALL {
            let w = workload_for(kind, &WorkloadOptions::default());
            assert_eq!(w.name(), kind.name());
            assert!(!w.checkers().is_empty(), "{kind}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        for kind in WorkloadKind::ALL {
            let w = workload_for(kind, &WorkloadOptions::default());
            let ops = |seed| {
                let mut g = w.worker(1, 4, seed);
                (0..50).map(|_| g.next(1).op).collect::<Vec<_>>()
            };
            assert_eq!(ops(7), ops(7), "{kind}");
            if kind != WorkloadKind::Set {
                assert_ne!(ops(7), ops(8), "{kind}: the seed must matter");
            }
        }
    }
}

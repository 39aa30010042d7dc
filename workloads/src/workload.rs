//! The workload abstraction: what each worker does and who judges it.

use crate::client::CallResult;
use crate::op::{Completion, Op, Outcome, Planned};
use crate::protocol::Reply;
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
    /// The completion for a call's result; updates the worker's state.
    fn complete(&mut self, planned: &Planned, result: CallResult) -> Completion;
}

/// Workloads by name, for `--workload`.
pub const WORKLOADS: [&str; 5] = ["register", "kv", "lock", "set", "counter"];

/// Tunables shared by the workloads.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadOptions {
    /// Keys of the `kv` workload.
    pub kv_keys: usize,
    /// Lease of the `lock` workload.
    pub lock_ttl_ms: u64,
    /// Probability that a `lock` worker delays a fenced write past its lease.
    pub lock_slow_probability: f64,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            kv_keys: 8,
            lock_ttl_ms: 1000,
            lock_slow_probability: 0.25,
        }
    }
}

/// The workload called `name`, or None.
pub fn workload_by_name(name: &str, options: &WorkloadOptions) -> Option<Box<dyn Workload>> {
    Some(match name {
        "register" => Box::new(crate::register::Register),
        "kv" => Box::new(crate::kv::Kv {
            keys: options.kv_keys.max(1),
        }),
        "lock" => Box::new(crate::lock::Lock {
            ttl_ms: options.lock_ttl_ms.max(1),
            slow_probability: options.lock_slow_probability.clamp(0.0, 1.0),
        }),
        "set" => Box::new(crate::set::Set),
        "counter" => Box::new(crate::counter::Counter),
        _ => return None,
    })
}

/// The random source of one worker: a function of the seed and the worker.
pub fn worker_rng(seed: u64, worker: usize) -> SmallRng {
    // SplitMix64 of (seed, worker), so neighbouring workers are unrelated.
    let mut z = seed ^ (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    SmallRng::seed_from_u64(z ^ (z >> 31))
}

/// The usual mapping from a call's result to a completion: ok replies give
/// `ok` with `ok_value(reply)`; definite errors and requests that never
/// reached a node give `fail`; anything else gives `info` — except for
/// read-only operations, which have no effect to take later, so `fail`.
pub fn standard_completion(
    planned: &Planned,
    result: CallResult,
    ok_value: impl FnOnce(&Reply) -> Value,
) -> Completion {
    let read_only = planned.request.is_read_only();
    let unknown = if read_only {
        Outcome::Fail
    } else {
        Outcome::Info
    };
    match result {
        CallResult::Replied { node, reply } if reply.ok => Completion {
            outcome: Outcome::Ok,
            value: ok_value(&reply),
            error: None,
            node: Some(node),
        },
        CallResult::Replied { node, reply } => Completion {
            outcome: if reply.is_definite() {
                Outcome::Fail
            } else {
                unknown
            },
            value: planned.op.value.clone(),
            error: Some(reply.error.unwrap_or_else(|| "error without a code".into())),
            node: Some(node),
        },
        CallResult::NotSent { node, error } => Completion {
            outcome: Outcome::Fail,
            value: planned.op.value.clone(),
            error: Some(error),
            node,
        },
        CallResult::Unknown { node, error } => Completion {
            outcome: unknown,
            value: planned.op.value.clone(),
            error: Some(error),
            node: Some(node),
        },
    }
}

/// An operation with no delay.
pub fn now(op: Op, request: crate::protocol::Request) -> Planned {
    Planned {
        op,
        request,
        delay_before: std::time::Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Request;

    fn planned(request: Request) -> Planned {
        now(
            Op {
                f: "x",
                key: None,
                value: Value::from(1),
            },
            request,
        )
    }

    #[test]
    fn unknown_writes_are_info_but_unknown_reads_are_fail() {
        let w = planned(Request::Write {
            key: "k".into(),
            value: 1.into(),
        });
        let r = planned(Request::Read { key: "k".into() });
        let unknown = || CallResult::Unknown {
            node: "n1".into(),
            error: "timeout".into(),
        };
        assert_eq!(
            standard_completion(&w, unknown(), |_| Value::Null).outcome,
            Outcome::Info
        );
        assert_eq!(
            standard_completion(&r, unknown(), |_| Value::Null).outcome,
            Outcome::Fail
        );
        let indefinite = CallResult::Replied {
            node: "n1".into(),
            reply: Reply::error("timeout", false),
        };
        assert_eq!(
            standard_completion(&w, indefinite, |_| Value::Null).outcome,
            Outcome::Info
        );
        let definite = CallResult::Replied {
            node: "n1".into(),
            reply: Reply::error("not-leader", true),
        };
        let c = standard_completion(&w, definite, |_| Value::Null);
        assert_eq!(
            (c.outcome, c.error.as_deref()),
            (Outcome::Fail, Some("not-leader"))
        );
        let not_sent = CallResult::NotSent {
            node: None,
            error: "refused".into(),
        };
        assert_eq!(
            standard_completion(&w, not_sent, |_| Value::Null).outcome,
            Outcome::Fail
        );
        let ok = CallResult::Replied {
            node: "n2".into(),
            reply: Reply::ok(Some(Value::from(5))),
        };
        let c = standard_completion(&r, ok, |rep| rep.value.clone().unwrap_or(Value::Null));
        assert_eq!(
            (c.outcome, c.value, c.node.as_deref()),
            (Outcome::Ok, Value::from(5), Some("n2"))
        );
    }

    #[test]
    fn every_listed_workload_exists_and_names_checkers() {
        for name in WORKLOADS {
            let w = workload_by_name(name, &WorkloadOptions::default()).expect(name);
            assert_eq!(w.name(), name);
            assert!(!w.checkers().is_empty(), "{name}");
        }
        assert!(workload_by_name("nope", &WorkloadOptions::default()).is_none());
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        for name in WORKLOADS {
            let w = workload_by_name(name, &WorkloadOptions::default()).expect(name);
            let ops = |seed| {
                let mut g = w.worker(1, 4, seed);
                (0..50).map(|_| g.next(1).op).collect::<Vec<_>>()
            };
            assert_eq!(ops(7), ops(7), "{name}");
            if name != "set" {
                assert_ne!(ops(7), ops(8), "{name}: the seed must matter");
            }
        }
    }
}

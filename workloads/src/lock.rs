//! `lock`: lease locks with fencing tokens.
//!
//! Workers acquire one lock, renew it, release it, and while they believe
//! they hold it they write to a protected resource with their fencing token
//! (`fenced-write`). Now and then a worker is a deliberately slow client: it
//! waits past its lease before its fenced write, so that someone else has
//! since acquired the lock and written with a newer token; a correct
//! resource refuses the stale write (and a node with the `no-fence` bug
//! accepts it). Checked for mutual exclusion, token order, and no stale
//! write accepted.
//!
//! With `keepalive` (a system whose client keeps a holder's lease alive for
//! as long as it holds the lock, an etcd session) holders behave as a
//! program using a mutex does: acquire, idle for a random while holding
//! (`hold_max_ms`: the window in which a pause or a partition can cost the
//! holder its lease unseen), one fenced write, release — always, whatever
//! the write said. Acquires say `"keepalive": true`, which also has them
//! checked as Jepsen's linearizable mutex.

use crate::call::{Answer, Call};
use crate::op::{Completion, Op, Outcome, Planned};
use crate::workload::{now, standard_completion, worker_rng, WorkerGen, Workload};
use rand::rngs::SmallRng;
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;

/// The lock's name.
pub const LOCK: &str = "lock";
/// The resource the lock protects.
pub const RESOURCE: &str = "resource";

pub struct Lock {
    pub ttl_ms: u64,
    pub slow_probability: f64,
    /// Holders' leases are kept alive by their clients (see the module docs).
    pub keepalive: bool,
    /// With keepalive: the longest a holder idles before its fenced write.
    pub hold_max_ms: u64,
}

impl Workload for Lock {
    fn name(&self) -> &'static str {
        "lock"
    }
    fn checkers(&self) -> &'static [&'static str] {
        &["fencing", "mutual-exclusion"]
    }
    fn worker(&self, worker: usize, workers: usize, seed: u64) -> Box<dyn WorkerGen> {
        Box::new(LockGen {
            rng: worker_rng(seed, worker),
            ttl_ms: self.ttl_ms,
            slow_probability: self.slow_probability,
            keepalive: self.keepalive,
            hold_max_ms: self.hold_max_ms,
            wrote: false,
            process: None,
            held: None,
            next_value: worker as u64,
            stride: workers.max(1) as u64,
        })
    }
}

struct LockGen {
    rng: SmallRng,
    ttl_ms: u64,
    slow_probability: f64,
    keepalive: bool,
    hold_max_ms: u64,
    /// With keepalive: the holder made its fenced write; next, release.
    wrote: bool,
    process: Option<u64>,
    /// The token this worker believes it holds.
    held: Option<u64>,
    next_value: u64,
    stride: u64,
}

fn owner(process: u64) -> String {
    format!("p{process}")
}

fn read() -> Planned {
    now(
        Op {
            f: "read",
            key: Some(json!(RESOURCE)),
            value: Value::Null,
        },
        Call::Read {
            key: RESOURCE.into(),
        },
    )
}

impl LockGen {
    fn fenced_write(&mut self, token: u64, delay: Duration) -> Planned {
        let v = self.next_value;
        self.next_value += self.stride;
        Planned {
            op: Op {
                f: "fenced-write",
                key: Some(json!(RESOURCE)),
                value: json!({"token": token, "value": v}),
            },
            call: Call::FencedWrite {
                key: RESOURCE.into(),
                value: json!(v),
                token,
            },
            delay_before: delay,
        }
    }
}

impl LockGen {
    fn release(&self, owner: String, token: u64) -> Planned {
        now(
            Op {
                f: "release",
                key: Some(json!(LOCK)),
                value: json!({"owner": owner, "token": token}),
            },
            Call::Release {
                lock: LOCK.into(),
                owner,
                token,
            },
        )
    }

    /// Keepalive holders: acquire, idle, one fenced write, release.
    fn next_session(&mut self, owner: String) -> Planned {
        let ttl_ms = self.ttl_ms;
        match self.held {
            None if self.rng.gen_bool(0.1) => read(),
            None => now(
                Op {
                    f: "acquire",
                    key: Some(json!(LOCK)),
                    value: json!({"owner": owner, "ttl_ms": ttl_ms, "keepalive": true}),
                },
                Call::Acquire {
                    lock: LOCK.into(),
                    owner,
                    ttl_ms,
                },
            ),
            Some(token) if !self.wrote => {
                self.wrote = true;
                let hold = Duration::from_millis(self.rng.gen_range(0..=self.hold_max_ms));
                self.fenced_write(token, hold)
            }
            Some(token) => self.release(owner, token),
        }
    }
}

impl WorkerGen for LockGen {
    fn next(&mut self, process: u64) -> Planned {
        if self.process != Some(process) {
            // A fresh process owns nothing.
            self.process = Some(process);
            self.held = None;
        }
        if self.keepalive {
            return self.next_session(owner(process));
        }
        let o = owner(process);
        let ttl_ms = self.ttl_ms;
        let Some(token) = self.held else {
            if self.rng.gen_bool(0.1) {
                return read();
            }
            return now(
                Op {
                    f: "acquire",
                    key: Some(json!(LOCK)),
                    value: json!({"owner": o, "ttl_ms": ttl_ms}),
                },
                Call::Acquire {
                    lock: LOCK.into(),
                    owner: o,
                    ttl_ms,
                },
            );
        };
        let roll = self.rng.gen_range(0..100);
        if roll < 55 {
            let slow = self.rng.gen_bool(self.slow_probability);
            // Slow: sleep past the lease, so the lock has moved on.
            let delay = if slow {
                Duration::from_millis(ttl_ms + ttl_ms / 2 + 500)
            } else {
                Duration::ZERO
            };
            if slow {
                // After this write the worker knows its lease is gone.
                self.held = None;
            }
            self.fenced_write(token, delay)
        } else if roll < 80 {
            now(
                Op {
                    f: "renew",
                    key: Some(json!(LOCK)),
                    value: json!({"owner": o, "token": token, "ttl_ms": ttl_ms}),
                },
                Call::Renew {
                    lock: LOCK.into(),
                    owner: o,
                    token,
                    ttl_ms,
                },
            )
        } else if roll < 90 {
            self.release(o, token)
        } else {
            read()
        }
    }

    fn final_ops(&mut self, _process: u64) -> Vec<Planned> {
        vec![read()]
    }

    fn complete(&mut self, planned: &Planned, answer: Answer) -> Completion {
        let c = standard_completion(planned, answer, |answer| match planned.op.f {
            "read" => answer.value.clone().unwrap_or(Value::Null),
            "acquire" => {
                let mut v = planned.op.value.clone();
                v["token"] = json!(answer.token);
                v
            }
            _ => planned.op.value.clone(),
        });
        match (planned.op.f, c.outcome) {
            ("acquire", Outcome::Ok) => {
                self.wrote = false;
                self.held = match &c.value["token"] {
                    Value::Number(n) => n.as_u64(),
                    _ => None,
                }
            }
            ("release", _) => self.held = None,
            // A session holder releases after its write, whatever it said.
            ("renew" | "fenced-write", Outcome::Fail) if !self.keepalive => self.held = None,
            _ => {}
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_client::FakeStore;

    #[test]
    fn writes_only_with_a_token_it_was_granted_and_is_sometimes_slow() {
        let store = FakeStore::new();
        let lock = Lock {
            ttl_ms: 60_000,
            slow_probability: 0.3,
            keepalive: false,
            hold_max_ms: 0,
        };
        let mut g = lock.worker(0, 1, 11);
        let mut granted = Vec::new();
        let mut slow = 0;
        let mut writes = 0;
        for _ in 0..300 {
            let p = g.next(0);
            if p.op.f == "fenced-write" {
                writes += 1;
                let t = p.op.value["token"].as_u64().expect("token");
                assert!(granted.contains(&t), "wrote with token {t} never granted");
                if p.delay_before > Duration::from_millis(60_000) {
                    slow += 1;
                }
            }
            let answer = store.execute(&p.call);
            let c = g.complete(&p, answer);
            if p.op.f == "acquire" && c.outcome == Outcome::Ok {
                granted.push(
                    c.value["token"]
                        .as_u64()
                        .expect("acquire ok carries its token"),
                );
                assert_eq!(c.value["owner"], json!("p0"));
            }
        }
        assert!(writes > 20 && slow > 0, "writes {writes}, slow {slow}");
    }

    #[test]
    fn a_fresh_process_holds_nothing() {
        let store = FakeStore::new();
        let mut g = Lock {
            ttl_ms: 60_000,
            slow_probability: 0.0,
            keepalive: false,
            hold_max_ms: 0,
        }
        .worker(0, 1, 1);
        loop {
            let p = g.next(0);
            let is_acquire = p.op.f == "acquire";
            let answer = store.execute(&p.call);
            let c = g.complete(&p, answer);
            if is_acquire && c.outcome == Outcome::Ok {
                break;
            }
        }
        for _ in 0..20 {
            let p = g.next(5);
            assert!(
                matches!(p.op.f, "acquire" | "read"),
                "process 5 never acquired, got {}",
                p.op.f
            );
        }
    }

    #[test]
    fn a_session_holder_acquires_idles_writes_once_and_always_releases() {
        let store = FakeStore::new();
        let mut g = Lock {
            ttl_ms: 60_000,
            slow_probability: 0.0,
            keepalive: true,
            hold_max_ms: 50,
        }
        .worker(0, 1, 3);
        let mut sequence = Vec::new();
        for _ in 0..60 {
            let p = g.next(0);
            if p.op.f == "acquire" {
                assert_eq!(p.op.value["keepalive"], json!(true));
            }
            if p.op.f == "fenced-write" {
                assert!(p.delay_before <= Duration::from_millis(50));
            }
            let mut answer = store.execute(&p.call);
            if p.op.f == "fenced-write" {
                // Even a refused write is followed by the release.
                answer = Answer::fail("stale-token", None);
            }
            g.complete(&p, answer);
            if p.op.f != "read" {
                sequence.push(p.op.f);
            }
        }
        for cycle in sequence.chunks(3) {
            if cycle.len() == 3 {
                assert_eq!(cycle, ["acquire", "fenced-write", "release"]);
            }
        }
        assert!(sequence.len() >= 30, "{sequence:?}");
    }
}

//! The generator's run loop: client workers issue operations at a shared
//! rate until a deadline, then (final phase) run their final reads.
//!
//! Guarantees: a worker has at most one operation outstanding; its invoke
//! is recorded before the request is sent and its completion after the
//! result is known; after an `info` the worker takes a fresh process id
//! (old + concurrency), so no process ever invokes after an `info`. The
//! rate is a global schedule of evenly spaced slots that never bursts to
//! catch up. Dropping the phase's future aborts every worker.

use crate::run::recorder::Recorder;
use anyhow::Context;
use faultline_workloads::{Client, Outcome, WorkerGen};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// One client worker: its process id, its generator and its connection.
pub struct Worker<C: Client> {
    pub index: usize,
    pub process: u64,
    pub gen: Box<dyn WorkerGen>,
    pub client: C,
}

/// The timing of a phase.
#[derive(Clone, Copy, Debug)]
pub struct PhaseConfig {
    /// No operation is invoked after this.
    pub deadline: Instant,
    /// Operations per second over all workers; 0 means as fast as possible.
    pub rate_per_s: f64,
    pub op_timeout: Duration,
    /// The number of workers (the process-id stride).
    pub concurrency: u64,
}

/// Evenly spaced slots shared by all workers.
struct Pacer {
    start: Instant,
    interval_ns: u64,
    next_ns: AtomicU64,
}

impl Pacer {
    /// Waits for this worker's next slot; false if it falls past `deadline`.
    async fn wait(&self, deadline: Instant) -> bool {
        if self.interval_ns == 0 {
            return Instant::now() < deadline;
        }
        let now_ns = self.start.elapsed().as_nanos() as u64;
        let mut cur = self.next_ns.load(Ordering::Relaxed);
        let slot = loop {
            // Never schedule in the past: a late slot does not make a burst.
            let slot = cur.max(now_ns);
            match self.next_ns.compare_exchange_weak(
                cur,
                slot + self.interval_ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break slot,
                Err(actual) => cur = actual,
            }
        };
        let at = self.start + Duration::from_nanos(slot);
        if at >= deadline {
            return false;
        }
        tokio::time::sleep_until(at).await;
        true
    }
}

async fn main_loop<C: Client>(
    mut w: Worker<C>,
    recorder: Arc<Recorder>,
    pacer: Arc<Pacer>,
    cfg: PhaseConfig,
) -> anyhow::Result<Worker<C>> {
    let mut ops = 0u64;
    while pacer.wait(cfg.deadline).await {
        let planned = w.gen.next(w.process);
        if !planned.delay_before.is_zero() {
            tokio::time::sleep(planned.delay_before).await;
        }
        recorder
            .invoke(w.process, &planned.op)
            .context("recording an invoke")?;
        let answer = w.client.invoke(&planned.call, cfg.op_timeout).await;
        let completion = w.gen.complete(&planned, answer);
        recorder
            .complete(w.process, &planned.op, &completion)
            .context("recording a completion")?;
        if completion.outcome == Outcome::Info {
            w.process += cfg.concurrency;
        }
        ops += 1;
        if ops.is_multiple_of(256) {
            // Let other tasks run even when the client never waits.
            tokio::task::yield_now().await;
        }
    }
    Ok(w)
}

async fn final_loop<C: Client>(
    mut w: Worker<C>,
    recorder: Arc<Recorder>,
    cfg: PhaseConfig,
) -> anyhow::Result<Worker<C>> {
    let ops = w.gen.final_ops(w.process);
    for planned in ops {
        loop {
            if Instant::now() >= cfg.deadline {
                break;
            }
            recorder
                .invoke(w.process, &planned.op)
                .context("recording an invoke")?;
            let answer = w.client.invoke(&planned.call, cfg.op_timeout).await;
            let completion = w.gen.complete(&planned, answer);
            recorder
                .complete(w.process, &planned.op, &completion)
                .context("recording a completion")?;
            match completion.outcome {
                Outcome::Ok => break,
                Outcome::Info => w.process += cfg.concurrency,
                Outcome::Fail => {}
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(w)
}

async fn join_all<C: Client>(
    mut set: JoinSet<anyhow::Result<Worker<C>>>,
) -> anyhow::Result<Vec<Worker<C>>> {
    let mut workers = Vec::new();
    while let Some(r) = set.join_next().await {
        workers.push(r.context("a worker panicked")??);
    }
    workers.sort_by_key(|w| w.index);
    Ok(workers)
}

/// The main phase: every worker issues operations until the deadline.
pub async fn main_phase<C: Client>(
    workers: Vec<Worker<C>>,
    recorder: Arc<Recorder>,
    cfg: PhaseConfig,
) -> anyhow::Result<Vec<Worker<C>>> {
    let interval_ns = if cfg.rate_per_s > 0.0 {
        (1e9 / cfg.rate_per_s) as u64
    } else {
        0
    };
    let pacer = Arc::new(Pacer {
        start: Instant::now(),
        interval_ns,
        next_ns: AtomicU64::new(0),
    });
    let mut set = JoinSet::new();
    for w in workers {
        set.spawn(main_loop(w, Arc::clone(&recorder), Arc::clone(&pacer), cfg));
    }
    join_all(set).await
}

/// The final phase: every worker runs its final reads, retrying each until
/// it succeeds or the deadline passes.
pub async fn final_phase<C: Client>(
    workers: Vec<Worker<C>>,
    recorder: Arc<Recorder>,
    cfg: PhaseConfig,
) -> anyhow::Result<Vec<Worker<C>>> {
    let mut set = JoinSet::new();
    for w in workers {
        set.spawn(final_loop(w, Arc::clone(&recorder), cfg));
    }
    join_all(set).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::history::{EventType, Process};
    use faultline_results::{read_history, HistoryWriter};
    use faultline_workloads::fake_client::FakeStore;
    use faultline_workloads::{
        workload_for, Answer, BoxFuture, Call, WorkloadKind, WorkloadOptions,
    };
    use std::collections::HashMap;

    /// Answers every third write with silence (unknown), the rest from the store.
    struct Flaky {
        store: FakeStore,
        n: u64,
    }

    impl Client for Flaky {
        fn invoke<'a>(&'a mut self, call: &'a Call, _t: Duration) -> BoxFuture<'a, Answer> {
            self.n += 1;
            let answer = if self.n.is_multiple_of(3) && !call.is_read_only() {
                Answer::info("timeout", Some("n1".into()))
            } else {
                self.store.execute(call)
            };
            Box::pin(std::future::ready(answer))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn processes_never_invoke_after_info_and_every_invoke_completes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.jsonl");
        let recorder = Arc::new(Recorder::new(
            HistoryWriter::create(&path).expect("history"),
        ));
        let store = FakeStore::new();
        let wl = workload_for(WorkloadKind::Register, &WorkloadOptions::default());
        let workers: Vec<_> = (0..4)
            .map(|i| Worker {
                index: i,
                process: i as u64,
                gen: wl.worker(i, 4, 42),
                client: Flaky {
                    store: store.clone(),
                    n: i as u64,
                },
            })
            .collect();
        let cfg = PhaseConfig {
            deadline: Instant::now() + Duration::from_millis(300),
            rate_per_s: 2000.0,
            op_timeout: Duration::from_secs(1),
            concurrency: 4,
        };
        let workers = main_phase(workers, Arc::clone(&recorder), cfg)
            .await
            .expect("main phase");
        let before_final = recorder.writer().len() as usize;
        let cfg = PhaseConfig {
            deadline: Instant::now() + Duration::from_secs(5),
            ..cfg
        };
        final_phase(workers, Arc::clone(&recorder), cfg)
            .await
            .expect("final phase");
        let recorder = Arc::into_inner(recorder).expect("workers are done");
        recorder.finish().expect("finish");
        let h = read_history(&path).expect("read").events;
        assert!(h.len() > 100, "only {} events", h.len());
        let mut open: HashMap<u64, bool> = HashMap::new();
        let mut dead = std::collections::HashSet::new();
        let mut infos = 0;
        for e in &h {
            let Process::Client(p) = e.process else {
                panic!("no nemesis here")
            };
            assert!(!dead.contains(&p), "process {p} acted after an info");
            if e.kind == EventType::Invoke {
                assert!(
                    open.insert(p, true).is_none(),
                    "process {p} invoked twice at once"
                );
            } else {
                assert!(
                    open.remove(&p).is_some(),
                    "process {p} completed without invoking"
                );
                if e.kind == EventType::Info {
                    dead.insert(p);
                    infos += 1;
                }
            }
        }
        assert!(open.is_empty(), "unfinished ops {open:?}");
        assert!(infos > 0, "the flaky client must have produced infos");
        let final_reads = h[before_final..]
            .iter()
            .filter(|e| e.f == "read" && e.kind == EventType::Ok)
            .count();
        assert_eq!(
            final_reads, 4,
            "every worker ends with one successful final read"
        );
    }

    #[tokio::test]
    async fn the_rate_bounds_the_number_of_operations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Arc::new(Recorder::new(
            HistoryWriter::create(&dir.path().join("h")).expect("history"),
        ));
        let store = FakeStore::new();
        let wl = workload_for(WorkloadKind::Counter, &WorkloadOptions::default());
        let workers: Vec<_> = (0..3)
            .map(|i| Worker {
                index: i,
                process: i as u64,
                gen: wl.worker(i, 3, 1),
                client: store.client("n1"),
            })
            .collect();
        // 20 ops/s for 0.5 s: slots at 0, 50, …, 450 ms: at most 10, however
        // slow the machine (a late slot is never made up for).
        let cfg = PhaseConfig {
            deadline: Instant::now() + Duration::from_millis(500),
            rate_per_s: 20.0,
            op_timeout: Duration::from_secs(1),
            concurrency: 3,
        };
        main_phase(workers, Arc::clone(&recorder), cfg)
            .await
            .expect("main phase");
        let invoked = recorder.counts.invoked.load(Ordering::Relaxed);
        assert!(
            (1..=10).contains(&invoked),
            "{invoked} ops at 20/s for 0.5 s"
        );
    }
}

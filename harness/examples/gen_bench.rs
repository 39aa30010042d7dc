//! Benchmark of the generator and the recorder: how many operations per
//! second they sustain when the client does no network work (an in-memory
//! fake cluster), with every event written to a real history file.
//!
//!     cargo run --release -p faultline --example gen_bench -- [SECONDS] [WORKERS] [WORKLOAD]
//!
//! Prints operations per second (one operation = an invoke and a completion
//! event, both serialized and written to history.jsonl).

use faultline::run::generator::{main_phase, PhaseConfig, Worker};
use faultline::run::recorder::Recorder;
use faultline_results::HistoryWriter;
use faultline_workloads::fake_client::FakeStore;
use faultline_workloads::{workload_for, WorkloadKind, WorkloadOptions};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args
        .next()
        .map(|s| s.parse().expect("SECONDS is a number"))
        .unwrap_or(5.0);
    let workers: usize = args
        .next()
        .map(|s| s.parse().expect("WORKERS is a number"))
        .unwrap_or(10);
    let workload = args.next().unwrap_or_else(|| "register".into());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("history.jsonl");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let kind: WorkloadKind = workload.parse().expect("a known workload");
    let wl = workload_for(kind, &WorkloadOptions::default());
    let store = FakeStore::new();
    let recorder = Arc::new(Recorder::new(
        HistoryWriter::create(&path).expect("history file"),
    ));
    let started = std::time::Instant::now();
    rt.block_on(async {
        let ws = (0..workers)
            .map(|i| Worker {
                index: i,
                process: i as u64,
                gen: wl.worker(i, workers, 1),
                client: store.client("n1"),
            })
            .collect();
        let cfg = PhaseConfig {
            deadline: tokio::time::Instant::now() + Duration::from_secs_f64(seconds),
            rate_per_s: 0.0,
            op_timeout: Duration::from_secs(1),
            concurrency: workers as u64,
        };
        main_phase(ws, Arc::clone(&recorder), cfg)
            .await
            .expect("main phase");
    });
    let elapsed = started.elapsed().as_secs_f64();
    let recorder = Arc::into_inner(recorder).expect("workers are done");
    let ops = recorder
        .counts
        .invoked
        .load(std::sync::atomic::Ordering::Relaxed);
    let events = recorder.finish().expect("history closes");
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "gen_bench: workload {workload}, {workers} workers, {elapsed:.2} s: {ops} operations ({events} events, {:.1} MiB of history) = {:.0} ops/s",
        bytes as f64 / (1024.0 * 1024.0),
        ops as f64 / elapsed
    );
}

//! Synthetic runs, written to a store exactly as `faultline test` lays them
//! out (history.jsonl, test.json, results.json, node logs), for tests and
//! benchmarks of the report, compare, listing and web UI.
//!
//! The history is realistic in shape: `concurrency` processes issue
//! register operations one at a time, a partition and a kill make latencies
//! jump and some operations fail or time out (`info`, after which the
//! worker gets a fresh process), and everything is deterministic in `seed`.

use crate::run_results::{CheckerOutcome, RunResults, VerdictKind};
use crate::store::RunDir;
use chrono::TimeZone;
use faultline_checker::history::{Event, EventType, Process, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to write.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub test_name: String,
    pub ops: usize,
    pub concurrency: u64,
    /// Multiplies every latency (2.0: a run twice as slow).
    pub latency_scale: f64,
    /// Write an invalid linearizability verdict with a witness.
    pub invalid: bool,
    /// Write results.json (false: as if the run was never analyzed).
    pub results: bool,
    pub seed: u64,
    /// Seconds after 2026-01-01T00:00:00Z: the run's start and directory name.
    pub start_offset_s: i64,
}

impl Default for RunSpec {
    fn default() -> RunSpec {
        RunSpec {
            test_name: "register-partition-kill".into(),
            ops: 1000,
            concurrency: 5,
            latency_scale: 1.0,
            invalid: false,
            results: true,
            seed: 7,
            start_offset_s: 0,
        }
    }
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes one run under `root` and returns its directory.
pub fn write_run(root: &Path, spec: &RunSpec) -> PathBuf {
    let started = chrono::Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
        + chrono::Duration::seconds(spec.start_offset_s);
    let run = RunDir::create(root, &spec.test_name, started)
        .expect("creating the synthetic run directory");
    let events = history(spec);
    let file = std::fs::File::create(run.history()).expect("creating history.jsonl");
    let mut out = std::io::BufWriter::new(file);
    for e in &events {
        serde_json::to_writer(&mut out, e).expect("events serialize");
        out.write_all(b"\n").expect("writing history.jsonl");
    }
    out.flush().expect("flushing history.jsonl");
    let test = serde_json::json!({
        "plan": {
            "name": spec.test_name, "workload": "register", "checkers": ["linearizable"],
            "node_count": 3, "concurrency": spec.concurrency, "rate_per_s": 0.0,
            "time_limit_s": 30.0, "nemesis": ["partition", "kill"], "seed": spec.seed,
        },
        "started_at": started.to_rfc3339(),
        "faultline_version": env!("CARGO_PKG_VERSION"),
    });
    run.write_test_json(&test).expect("writing test.json");
    for n in ["n1", "n2", "n3"] {
        std::fs::write(
            run.node_log(n),
            format!("{n} started\n{n} became follower\n"),
        )
        .expect("writing a node log");
    }
    if spec.results {
        let verdict = if spec.invalid {
            VerdictKind::Invalid
        } else {
            VerdictKind::Valid
        };
        let checkers = vec![CheckerOutcome {
            checker: "linearizable".into(),
            scope: None,
            verdict,
            summary: if spec.invalid {
                "read 3 after write 4".into()
            } else {
                format!("cas-register on {} operations", spec.ops)
            },
            detail: if spec.invalid {
                serde_json::json!({"kind": "linearizability", "failing_op": "p3 read nil -> 3", "final_state": "4"})
            } else {
                Value::Null
            },
        }];
        let results = RunResults {
            verdict,
            checkers,
            stats: crate::summarize(&events),
            history_events: events.len() as u64,
            history_truncated: false,
            run_dir: run.path().to_path_buf(),
            membership: Vec::new(),
        };
        results
            .write(&run.results_json())
            .expect("writing results.json");
    }
    run.path().to_path_buf()
}

/// The synthetic history of a spec.
pub fn history(spec: &RunSpec) -> Vec<Event> {
    let mut rng = SplitMix(spec.seed);
    let concurrency = spec.concurrency.max(1);
    // Each worker: (process id, next free time ns).
    let mut workers: Vec<(u64, u64)> = (0..concurrency)
        .map(|p| (p, rng.next() % 2_000_000))
        .collect();
    let mut next_process = concurrency;
    let per_worker_rate = 200.0; // ops/s per worker when fast
    let expected_ns = (spec.ops as f64 / concurrency as f64 / per_worker_rate * 1e9) as u64 + 1;
    let partition = (expected_ns * 3 / 10, expected_ns / 2);
    let kill = (expected_ns * 6 / 10, expected_ns * 7 / 10);
    let in_fault = |t: u64| (t >= partition.0 && t < partition.1) || (t >= kill.0 && t < kill.1);
    let mut raw: Vec<(u64, u8, Event)> = Vec::with_capacity(spec.ops * 2 + 4);
    let mut ev =
        |time: u64, order: u8, process: Process, kind: EventType, f: &str, value: Value| {
            raw.push((
                time,
                order,
                Event {
                    index: 0,
                    time,
                    process,
                    kind,
                    f: f.to_string(),
                    key: None,
                    value,
                    node: None,
                    error: None,
                },
            ));
        };
    for (f, t, v) in [
        (
            "start-partition",
            partition.0,
            serde_json::json!({"shape": "majorities-ring", "mechanism": "iptables"}),
        ),
        ("stop-partition", partition.1, serde_json::json!({})),
        (
            "start-kill",
            kill.0,
            serde_json::json!({"nodes": ["n2"], "mode": "one", "mechanism": "signal"}),
        ),
        (
            "stop-kill",
            kill.1,
            serde_json::json!({"nodes": ["n2"], "action": "restart"}),
        ),
    ] {
        ev(t, 0, Process::Nemesis, EventType::Info, f, v);
    }
    for i in 0..spec.ops {
        let w = i % concurrency as usize;
        let (process, t0) = workers[w];
        let f = match rng.next() % 10 {
            0..=4 => "read",
            5..=7 => "write",
            _ => "cas",
        };
        let base_ms = 0.4
            + 3.0 * rng.unit() * rng.unit()
            + if rng.unit() < 0.01 {
                40.0 * rng.unit()
            } else {
                0.0
            };
        let faulty = in_fault(t0);
        let (kind, latency_ms) = if faulty && rng.unit() < 0.3 {
            (EventType::Info, 1000.0)
        } else if faulty && rng.unit() < 0.2 {
            (EventType::Fail, base_ms * 5.0)
        } else if f == "cas" && rng.unit() < 0.3 {
            (EventType::Fail, base_ms)
        } else {
            (EventType::Ok, if faulty { base_ms * 8.0 } else { base_ms })
        };
        let latency_ns = (latency_ms * spec.latency_scale * 1e6) as u64 + 1;
        let v = rng.next() % 5;
        let arg = match f {
            "read" => Value::Null,
            "write" => Value::from(v),
            _ => serde_json::json!([v, (v + 1) % 5]),
        };
        let result = if f == "read" {
            Value::from(v)
        } else {
            arg.clone()
        };
        ev(t0, 1, Process::Client(process), EventType::Invoke, f, arg);
        let t1 = t0 + latency_ns;
        ev(t1, 2, Process::Client(process), kind, f, result);
        let think = (rng.unit() * 2.0 / per_worker_rate * 1e9) as u64;
        workers[w] = if kind == EventType::Info {
            next_process += 1;
            (next_process - 1, t1 + think)
        } else {
            (process, t1 + think)
        };
    }
    raw.sort_by_key(|(t, order, _)| (*t, *order));
    raw.into_iter()
        .enumerate()
        .map(|(i, (_, _, mut e))| {
            e.index = i as u64;
            e
        })
        .collect()
}

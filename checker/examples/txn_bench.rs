//! Transactional checker bench: a generated list-append history of
//! 1,000,000 transactions (10 processes, 1-4 micro-ops each, Elle's
//! rotating pool of 10 active keys with an exponential key distribution,
//! at most 32 appends per key, about 1% crashed and 1% failed), made by a
//! small in-memory database that applies each transaction atomically at
//! its completion (so the history is strict serializable), then checked
//! at strict-serializable.
//!
//!     cargo run --release -p faultline-checker --example txn_bench
//!     cargo run --release -p faultline-checker --example txn_bench -- --txns 200000 --runs 3
//!     cargo run --release -p faultline-checker --example txn_bench -- --faultline target/release/faultline
//!     cargo run --release -p faultline-checker --example txn_bench -- --write-edn gen1m.edn
//!     cargo run --release -p faultline-checker --example txn_bench -- --build push
//!
//! Prints two numbers against the issue's goals:
//! - check time: building the compact history from the events in memory
//!   (one `TxnHistoryBuilder::push_batch`, which builds the two halves on
//!   two cores; `--build push` pushes the events one at a time instead,
//!   on one core, as `faultline check` does) plus the check, in
//!   transactions per second (best and median of `--runs`, default 5;
//!   goal 1,000,000 txns/s);
//! - end to end, with `--faultline BIN`: the same history written as
//!   Jepsen EDN and checked by `BIN check --model list-append FILE` under
//!   `/usr/bin/time`, its wall time and peak RSS (goal: under 10 s and
//!   2 GiB). `faultline check` streams the file's events to
//!   `TxnHistoryBuilder::push` one at a time, on one core. Without
//!   `--faultline` it prints the command to time instead.

use faultline_checker::history::{Event, EventType, Process, Value};
use faultline_checker::txn::{self, TxnHistoryBuilder, TxnModel, TxnOptions};
use serde_json::json;
use std::io::Write;
use std::time::Instant;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Elle's wr-txns key pool: `key_count` active keys, key i chosen with
/// weight base^-i; a key retires after its write budget (uniform in
/// 1..=max) and a fresh key takes its place.
struct KeyPool {
    active: Vec<u64>,
    writes_left: Vec<u64>,
    next_key: u64,
    next_value: std::collections::HashMap<u64, u64>,
    max_writes: u64,
}

impl KeyPool {
    fn new(key_count: usize, max_writes: u64, rng: &mut Rng) -> KeyPool {
        KeyPool {
            active: (0..key_count as u64).collect(),
            writes_left: (0..key_count).map(|_| 1 + rng.below(max_writes)).collect(),
            next_key: key_count as u64,
            next_value: Default::default(),
            max_writes,
        }
    }

    fn pick(&self, rng: &mut Rng) -> usize {
        // Exponential, base 2: P(i) ∝ 2^-i.
        let n = self.active.len() as i32;
        let u = rng.unit() * (1.0 - 0.5f64.powi(n));
        let i = (-(1.0 - u).log2()).floor() as usize;
        i.min(self.active.len() - 1)
    }

    /// A micro-op: read or append, on a key of the pool.
    fn mop(&mut self, rng: &mut Rng) -> (bool, u64, u64) {
        let i = self.pick(rng);
        if rng.below(2) == 0 {
            return (false, self.active[i], 0);
        }
        if self.writes_left[i] == 0 {
            self.active[i] = self.next_key;
            self.next_key += 1;
            self.writes_left[i] = 1 + rng.below(self.max_writes);
        }
        self.writes_left[i] -= 1;
        let k = self.active[i];
        let v = self.next_value.entry(k).or_insert(0);
        *v += 1;
        (true, k, *v)
    }
}

fn mops_json(mops: &[(bool, u64, u64)], reads: Option<&[Vec<u64>]>) -> Value {
    let mut r = 0;
    Value::Array(
        mops.iter()
            .map(|&(write, k, v)| {
                if write {
                    json!(["append", k, v])
                } else {
                    let value = match reads {
                        Some(rs) => {
                            r += 1;
                            json!(rs[r - 1])
                        }
                        None => Value::Null,
                    };
                    json!(["r", k, value])
                }
            })
            .collect(),
    )
}

/// The history's events.
fn generate(txns: usize, seed: u64) -> Vec<Event> {
    let mut rng = Rng(seed);
    let processes = 10u64;
    let mut pool = KeyPool::new(10, 32, &mut rng);
    let mut lists: std::collections::HashMap<u64, Vec<u64>> = Default::default();
    let mut running: Vec<Option<Vec<(bool, u64, u64)>>> = vec![None; processes as usize];
    let mut process_ids: Vec<u64> = (0..processes).collect();
    let mut events = Vec::with_capacity(txns * 2);
    let mut started = 0;
    let mut time = 0u64;
    let mut push = |events: &mut Vec<Event>, p: u64, kind: EventType, value: Value| {
        time += 1000 + rng_time(events.len());
        events.push(Event {
            index: events.len() as u64,
            time,
            process: Process::Client(p),
            kind,
            f: "txn".into(),
            key: None,
            value,
            node: None,
            error: None,
        });
    };
    while started < txns || running.iter().any(Option::is_some) {
        let slot = rng.below(processes) as usize;
        match running[slot].take() {
            None if started < txns => {
                started += 1;
                let len = 1 + rng.below(4);
                let mops: Vec<(bool, u64, u64)> = (0..len).map(|_| pool.mop(&mut rng)).collect();
                push(
                    &mut events,
                    process_ids[slot],
                    EventType::Invoke,
                    mops_json(&mops, None),
                );
                running[slot] = Some(mops);
            }
            None => {}
            Some(mops) => {
                let roll = rng.below(100);
                let (kind, applied) = match roll {
                    0 => (EventType::Info, rng.below(2) == 0),
                    1 => (EventType::Fail, false),
                    _ => (EventType::Ok, true),
                };
                let mut reads = Vec::new();
                if applied {
                    for &(write, k, v) in &mops {
                        let list = lists.entry(k).or_default();
                        if write {
                            list.push(v);
                        } else {
                            reads.push(list.clone());
                        }
                    }
                }
                let value = if kind == EventType::Ok {
                    mops_json(&mops, Some(&reads))
                } else {
                    mops_json(&mops, None)
                };
                push(&mut events, process_ids[slot], kind, value);
                if kind == EventType::Info {
                    process_ids[slot] += processes;
                }
            }
        }
    }
    events
}

fn rng_time(i: usize) -> u64 {
    (i as u64).wrapping_mul(2654435761) % 5000
}

fn edn_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("nil"),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                match x.as_str() {
                    Some(s) if i == 0 && a.len() == 3 => {
                        out.push(':');
                        out.push_str(s);
                    }
                    _ => edn_value(x, out),
                }
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn write_edn(path: &str, events: &[Event]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut line = String::new();
    for e in events {
        line.clear();
        let Process::Client(p) = e.process else {
            continue;
        };
        line.push_str(&format!(
            "{{:index {}, :time {}, :type :{}, :process {p}, :f :txn, :value ",
            e.index, e.time, e.kind
        ));
        edn_value(&e.value, &mut line);
        line.push_str("}\n");
        w.write_all(line.as_bytes())?;
    }
    w.flush()
}

/// CPU time (user + system) of this process so far, in seconds, from
/// /proc/self/stat (Linux); None elsewhere. On a shared machine the wall
/// clock counts other people's work too; CPU time does not.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let txns: usize = arg("--txns")
        .map(|s| s.parse().expect("--txns N"))
        .unwrap_or(1_000_000);
    let t = Instant::now();
    let events = generate(txns, 0x5eed);
    println!(
        "generated {txns} transactions ({} events) in {:.2?}",
        events.len(),
        t.elapsed()
    );
    if let Some(path) = arg("--write-edn") {
        write_edn(&path, &events).expect("writing the EDN history");
        println!(
            "wrote {path} ({} MB)",
            std::fs::metadata(&path).map(|m| m.len() >> 20).unwrap_or(0)
        );
        return;
    }
    let runs: usize = arg("--runs")
        .map(|s| s.parse().expect("--runs N"))
        .unwrap_or(5)
        .max(1);
    let one_at_a_time = match arg("--build").as_deref() {
        None | Some("batch") => false,
        Some("push") => true,
        Some(other) => {
            eprintln!("--build takes batch or push, not {other:?}");
            std::process::exit(2);
        }
    };
    // Source lines, as a reader hands them out with the events.
    let lines: Vec<usize> = (1..=events.len()).collect();
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for run in 0..runs {
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let mut b = TxnHistoryBuilder::new("generated", TxnModel::ListAppend);
        if one_at_a_time {
            for (e, line) in events.iter().zip(&lines) {
                b.push(e, *line).expect("well-formed");
            }
        } else {
            b.push_batch(&events, &lines).expect("well-formed");
        }
        let h = b.finish().expect("a history");
        let built = t0.elapsed();
        let t1 = Instant::now();
        let c = txn::check(&h, TxnModel::ListAppend, &TxnOptions::default()).expect("checkable");
        let checked = t1.elapsed();
        let total = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
        walls.push(total);
        cpus.extend(cpu);
        println!(
            "run {}: cpu {:.3}s, build {:.3}s, check {:.3}s (analysis {} ms, graph {} ms, search {} ms; {} edges, {} cyclic components), verdict {}; {:.0} txns/s",
            run + 1,
            cpu.unwrap_or(f64::NAN),
            built.as_secs_f64(),
            checked.as_secs_f64(),
            c.stats.analysis_ms,
            c.stats.graph_ms,
            c.stats.search_ms,
            c.stats.edges,
            c.stats.components,
            c.verdict.kind(),
            txns as f64 / total
        );
        assert!(
            c.verdict.is_valid(),
            "the generated history is strict serializable: {}",
            c.verdict
        );
        drop(h);
    }
    let (best, median) = best_and_median(&mut walls);
    println!(
        "check time: best {best:.3}s = {:.0} txns/s, median {median:.3}s = {:.0} txns/s, of {runs} runs of {txns} transactions, built {} (goal: 1,000,000 txns/s)",
        txns as f64 / best,
        txns as f64 / median,
        if one_at_a_time { "one event at a time" } else { "as one batch" },
    );
    if !cpus.is_empty() {
        let (best_cpu, median_cpu) = best_and_median(&mut cpus);
        println!(
            "cpu time:   best {best_cpu:.3}s, median {median_cpu:.3}s (both cores together) = {:.0} txns per cpu-second at best",
            txns as f64 / best_cpu
        );
    }
    let edn = std::env::temp_dir().join(format!("txn_bench_{}.edn", std::process::id()));
    match arg("--faultline") {
        Some(bin) => {
            write_edn(edn.to_str().expect("a UTF-8 temp path"), &events)
                .expect("writing the EDN history");
            drop(events);
            let result = end_to_end(&bin, &edn);
            let _ = std::fs::remove_file(&edn);
            match result {
                Ok(line) => println!("{line}"),
                Err(e) => {
                    eprintln!("end to end: {e}");
                    std::process::exit(1);
                }
            }
        }
        None => println!(
            "end to end: not run; write the history with --write-edn gen1m.edn and time\n  /usr/bin/time -v faultline check --model list-append gen1m.edn\n  or pass --faultline path/to/faultline (goal: under 10 s and 2 GiB)"
        ),
    }
}

/// The smallest and the median of some timings.
fn best_and_median(xs: &mut [f64]) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[0], xs[xs.len() / 2])
}

/// Runs `bin check --model list-append edn` under `/usr/bin/time`: its
/// wall time and peak resident memory, as one line.
fn end_to_end(bin: &str, edn: &std::path::Path) -> Result<String, String> {
    let size_mb = std::fs::metadata(edn).map(|m| m.len() >> 20).unwrap_or(0);
    let output = std::process::Command::new("/usr/bin/time")
        .args([
            "-f",
            "wall %e s, peak RSS %M KiB",
            bin,
            "check",
            "--model",
            "list-append",
        ])
        .arg(edn)
        .output()
        .map_err(|e| format!("cannot run /usr/bin/time {bin}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let timing = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("wall "))
        .ok_or_else(|| format!("no timing from /usr/bin/time: {stderr}"))?;
    if !output.status.success() {
        return Err(format!(
            "{bin} check exited with {} (expected 0, valid): {stdout}{stderr}",
            output.status
        ));
    }
    let verdict = stdout.lines().next().unwrap_or("").to_string();
    let wall: f64 = timing
        .trim_start_matches("wall ")
        .split(' ')
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or("unreadable wall time")?;
    let kib: f64 = timing
        .rsplit("peak RSS ")
        .next()
        .and_then(|r| r.trim_end_matches(" KiB").parse().ok())
        .ok_or("unreadable peak RSS")?;
    Ok(format!(
        "end to end: {bin} check --model list-append of the same history as {size_mb} MB of EDN: wall {wall:.2} s, peak RSS {:.0} MiB (goal: under 10 s and 2048 MiB); it printed: {verdict}",
        kib / 1024.0
    ))
}

//! The checker's benchmark: check time only (parsing excluded, as in
//! Porcupine's own numbers), best and mean of several runs; the speed-up
//! is of the mean, as Porcupine's ns/op is.
//!
//!     cargo run --release -p faultline-checker --example bench [-- NAME...]
//!
//! Names: etcd-all, etcd-002, kv-c50-split, kv-c10-whole, kv-all, gen-1m.
//! With no name, all of them.
//!
//! Porcupine's times default to those of its current release (55508eb,
//! `go test -bench`) on the shared 2-core machine at low load. To compare
//! in the same window, run Porcupine's benchmarks first and hand this
//! program their output:
//!
//!     go test -c -o porcupine.test . && ./porcupine.test -test.run '^$' \
//!         -test.bench 'EtcdJepsen|Kv50ClientsOk$|KvNoPartition10ClientsOk$' \
//!         -test.benchtime 3x > porcupine.txt
//!     cargo run --release -p faultline-checker --example bench -- --porcupine porcupine.txt `gen-1m` generates a history of 1,000,000
//! operations on 1,000 keys by 20 processes with 1% crashed operations
//! and reports the peak memory of this process (VmHWM).
//!
//!     cargo run --release -p faultline-checker --example bench -- --write PREFIX
//!
//! writes that generated history instead, twice: PREFIX.jsonl (the native
//! format, docs/history-format.md) and PREFIX.edn (Jepsen's history.edn,
//! one op map a line, `[key value]` tuples), to time `faultline check`
//! end to end on each: `--model cas-register` (a kv of cas registers).

use faultline_checker::history::{Event, EventType, Process, Value};
use faultline_checker::linearizable::check_linearizable;
use faultline_checker::{read_history, CheckOptions, ModelKind, Operations, VerdictKind};
use std::time::{Duration, Instant};

#[path = "../tests/support/testdata.rs"]
mod testdata;
use testdata::testdata_dir;

fn load(file: &str) -> Operations {
    let text = std::fs::read_to_string(testdata_dir().join(file)).expect("testdata present");
    let h = read_history(file, &text, None).expect("parses");
    Operations::from_events(file, &h.events, &h.lines).expect("well formed")
}

/// Runs `f` `runs` times: the best and the mean time (Porcupine's ns/op
/// is a mean), and the last verdict.
fn time_runs(runs: usize, mut f: impl FnMut() -> VerdictKind) -> (Duration, Duration, VerdictKind) {
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    let mut verdict = VerdictKind::Unknown;
    for _ in 0..runs {
        let t = Instant::now();
        verdict = f();
        let d = t.elapsed();
        best = best.min(d);
        total += d;
    }
    (best, total / runs as u32, verdict)
}

fn check(ops: &Operations, model: ModelKind, partition: bool) -> VerdictKind {
    let opts = CheckOptions {
        partition,
        ..CheckOptions::default()
    };
    check_linearizable(ops, model, &opts)
        .expect("fits")
        .verdict
        .kind()
}

/// Porcupine's ns/op per benchmark name (without the `-N` cpu suffix),
/// from `go test -bench` output.
fn porcupine_times(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?.strip_prefix("Benchmark")?;
            let name = name.rsplit_once('-').map_or(name, |(n, _)| n);
            let _runs = words.next()?;
            let ns: f64 = words.next()?.parse().ok()?;
            (words.next()? == "ns/op").then(|| (name.to_string(), ns))
        })
        .collect()
}

/// Porcupine's seconds for one of our cases: the sum of its benchmarks'
/// times from `--porcupine`, else the default.
fn porcupine_s(
    measured: &Option<std::collections::HashMap<String, f64>>,
    prefix: &str,
    exact: bool,
    default_s: f64,
) -> f64 {
    let Some(m) = measured else {
        return default_s;
    };
    let times: Vec<f64> = m
        .iter()
        .filter(|(n, _)| {
            if exact {
                *n == prefix
            } else {
                n.starts_with(prefix)
            }
        })
        .map(|(_, ns)| ns / 1e9)
        .collect();
    if times.is_empty() {
        f64::NAN
    } else {
        times.iter().sum()
    }
}

/// One case: best and mean, and the speed-up of the mean over Porcupine's.
fn report(name: &str, porcupine_s: f64, (best, mean, v): (Duration, Duration, VerdictKind)) {
    println!(
        "{name:<24} best {:>8.3} ms  mean {:>8.3} ms  verdict {v:<8} porcupine {:>7.1} ms  speed-up {:>6.1}x",
        best.as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        porcupine_s * 1e3,
        porcupine_s / mean.as_secs_f64()
    );
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A linearizable history of a kv of registers: every process runs
/// read/write/cas on random keys against a sequential store, each op's
/// effect placed at a random point inside its interval; 1% of ops crash
/// (their completion never comes, the process is replaced).
pub fn generate(ops_total: usize, keys: u64, processes: usize, seed: u64) -> Vec<Event> {
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut store = vec![Value::Null; keys as usize];
    let mut events: Vec<Event> = Vec::with_capacity(ops_total * 2);
    // Per worker: (process id, pending op: (f, key, input, effect applied?, output))
    struct Pending {
        f: &'static str,
        key: u64,
        input: Value,
        output: Option<Value>,
        crash: bool,
    }
    let mut procs: Vec<(u64, Option<Pending>)> = (0..processes as u64).map(|p| (p, None)).collect();
    let mut next_process = processes as u64;
    let mut issued = 0usize;
    let mut time = 0u64;
    let push = |events: &mut Vec<Event>,
                time: u64,
                p: u64,
                kind: EventType,
                f: &str,
                key: u64,
                value: Value| {
        let index = events.len() as u64;
        events.push(Event {
            index,
            time,
            process: Process::Client(p),
            kind,
            f: f.to_string(),
            key: Some(Value::from(key)),
            value,
            node: None,
            error: None,
        });
    };
    while issued < ops_total || procs.iter().any(|p| p.1.is_some()) {
        time += 1000;
        let w = (next() % processes as u64) as usize;
        let (p, pending) = &mut procs[w];
        match pending.take() {
            None if issued < ops_total => {
                issued += 1;
                let key = next() % keys;
                let (f, input) = match next() % 3 {
                    0 => ("read", Value::Null),
                    1 => ("write", Value::from(next() % 5)),
                    _ => ("cas", Value::from(vec![next() % 5, next() % 5])),
                };
                push(
                    &mut events,
                    time,
                    *p,
                    EventType::Invoke,
                    f,
                    key,
                    input.clone(),
                );
                *pending = Some(Pending {
                    f,
                    key,
                    input,
                    output: None,
                    crash: next() % 100 == 0,
                });
            }
            None => {}
            Some(mut op) => {
                if op.output.is_none() {
                    // Take effect now (the linearization point), complete later.
                    let cur = &mut store[op.key as usize];
                    op.output = Some(match op.f {
                        "read" => cur.clone(),
                        "write" => {
                            *cur = op.input.clone();
                            op.input.clone()
                        }
                        _ => {
                            let pair = op.input.as_array().expect("cas pair").clone();
                            if *cur == pair[0] {
                                *cur = pair[1].clone();
                                op.input.clone()
                            } else {
                                Value::Bool(false)
                            }
                        }
                    });
                    if op.crash {
                        // Crashed: never completes; the worker gets a new process.
                        *p = next_process;
                        next_process += 1;
                    } else {
                        *pending = Some(op);
                    }
                } else {
                    let out = op.output.expect("applied");
                    let kind = if op.f == "cas" && out == Value::Bool(false) {
                        EventType::Fail
                    } else {
                        EventType::Ok
                    };
                    push(&mut events, time, *p, kind, op.f, op.key, out);
                }
            }
        }
    }
    events
}

/// Writes the generated 1M-operation history twice: as faultline JSON
/// Lines (`PREFIX.jsonl`) and as Jepsen's history.edn, one op map a line
/// with independent `[key value]` tuples (`PREFIX.edn`).
fn write_generated(prefix: &str) -> std::io::Result<()> {
    use std::io::Write;
    let events = generate(1_000_000, 1000, 20, 0x5eed);
    let jsonl = format!("{prefix}.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&jsonl)?);
    for e in &events {
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    let edn = format!("{prefix}.edn");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&edn)?);
    for e in &events {
        writeln!(out, "{}", edn_line(e))?;
    }
    out.flush()?;
    println!("wrote {} events to {jsonl} and {edn}", events.len());
    Ok(())
}

/// One event as Jepsen 0.3 writes it to history.edn.
fn edn_line(e: &Event) -> String {
    fn edn(v: &Value) -> String {
        match v {
            Value::Null => "nil".into(),
            Value::Array(a) => {
                let items: Vec<String> = a.iter().map(edn).collect();
                format!("[{}]", items.join(" "))
            }
            other => other.to_string(),
        }
    }
    let key = e.key.as_ref().map(edn).unwrap_or_else(|| "nil".into());
    format!(
        "{{:index {}, :time {}, :type :{}, :process {}, :f :{}, :value [{key} {}]}}",
        e.index,
        e.time,
        e.kind,
        e.process,
        e.f,
        edn(&e.value)
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--write") {
        let Some(path) = args.get(i + 1) else {
            eprintln!("--write needs a PREFIX");
            std::process::exit(254);
        };
        if let Err(e) = write_generated(path) {
            eprintln!("writing {path}: {e}");
            std::process::exit(255);
        }
        return;
    }
    let mut args = args;
    let porcupine = match args.iter().position(|a| a == "--porcupine") {
        Some(i) => {
            let Some(path) = args.get(i + 1).cloned() else {
                eprintln!("--porcupine needs the output of Porcupine's go test -bench");
                std::process::exit(254);
            };
            args.drain(i..=i + 1);
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(porcupine_times(&text)),
                Err(e) => {
                    eprintln!("reading {path}: {e}");
                    std::process::exit(254);
                }
            }
        }
        None => None,
    };
    if let Some(p) = &porcupine {
        println!("porcupine: {} benchmark times read", p.len());
    }
    let want = |n: &str| args.is_empty() || args.iter().any(|a| a == n);
    println!(
        "check time only, best and mean of several runs; {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if want("etcd-all") {
        let tsv = std::fs::read_to_string(testdata_dir().join("expected.tsv")).expect("testdata");
        let all: Vec<Operations> = tsv
            .lines()
            .filter_map(|l| l.split('\t').next())
            .filter(|f| f.starts_with("jepsen/") && !f.ends_with("etcd_095.log"))
            .map(load)
            .collect();
        let timing = time_runs(20, || {
            all.iter()
                .map(|ops| check(ops, ModelKind::CasRegister, true))
                .max()
                .expect("logs")
        });
        report(
            &format!("etcd all {} logs", all.len()),
            porcupine_s(&porcupine, "EtcdJepsen", false, 0.365),
            timing,
        );
    }
    if want("etcd-002") {
        let ops = load("jepsen/etcd_002.log");
        let timing = time_runs(50, || check(&ops, ModelKind::CasRegister, true));
        report(
            "etcd_002",
            porcupine_s(&porcupine, "EtcdJepsen002", true, 0.146),
            timing,
        );
    }
    if want("kv-c50-split") {
        let ops = load("kv/c50-ok.txt");
        let timing = time_runs(50, || check(&ops, ModelKind::Kv, true));
        report(
            "kv c50-ok split by key",
            porcupine_s(&porcupine, "Kv50ClientsOk", true, 0.113),
            timing,
        );
    }
    if want("kv-c10-whole") {
        let ops = load("kv/c10-ok.txt");
        let timing = time_runs(20, || check(&ops, ModelKind::Kv, false));
        report(
            "kv c10-ok as one map",
            porcupine_s(&porcupine, "KvNoPartition10ClientsOk", true, 1.448),
            timing,
        );
    }
    if want("kv-all") {
        for f in [
            "c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad",
        ] {
            let ops = load(&format!("kv/{f}.txt"));
            for partition in [true, false] {
                let opts = CheckOptions {
                    partition,
                    time_limit: Some(Duration::from_secs(10)),
                    ..CheckOptions::default()
                };
                let (d, _, v) = time_runs(1, || {
                    check_linearizable(&ops, ModelKind::Kv, &opts)
                        .expect("fits")
                        .verdict
                        .kind()
                });
                println!(
                    "kv {f:<8} {:<12} {:>10.3} ms   verdict {v}",
                    if partition { "split" } else { "as one map" },
                    d.as_secs_f64() * 1e3
                );
            }
        }
    }
    if want("gen-1m") {
        let t = Instant::now();
        let events = generate(1_000_000, 1000, 20, 0x5eed);
        let gen = t.elapsed();
        let t = Instant::now();
        let ops = Operations::from_events("generated", &events, &[]).expect("well formed");
        let pair = t.elapsed();
        drop(events);
        let crashed = ops.ops.iter().filter(|o| o.crashed()).count();
        let t = Instant::now();
        let v = check(&ops, ModelKind::CasRegister, true);
        let d = t.elapsed();
        println!(
            "generated 1M ops, 1000 keys, 20 procs: {} ops ({crashed} crashed); generate {:.2} s, pair {:.2} s, check {:.3} s, verdict {v}; peak RSS {:.0} MiB",
            ops.ops.len(),
            gen.as_secs_f64(),
            pair.as_secs_f64(),
            d.as_secs_f64(),
            peak_rss_mib().unwrap_or(f64::NAN)
        );
    }
}

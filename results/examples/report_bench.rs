//! How long building report.html takes for a run of N operations, and how
//! big it is. Writes a synthetic run (results::synthetic_run) into a temp
//! store (or KEEP=DIR), then builds its report `REPEATS` times.
//!
//!     cargo run --release -p faultline-results --example report_bench -- 100000 3

use faultline_results::synthetic_run::{write_run, RunSpec};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let ops: usize = args
        .next()
        .map_or(100_000, |a| a.parse().expect("ops: a number"));
    let repeats: usize = args
        .next()
        .map_or(3, |a| a.parse().expect("repeats: a number"));
    let keep = std::env::var_os("KEEP").map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let run = write_run(
        &root,
        &RunSpec {
            ops,
            concurrency: 10,
            invalid: true,
            ..RunSpec::default()
        },
    );
    let history_bytes = std::fs::metadata(run.join("history.jsonl"))
        .expect("history")
        .len();
    println!(
        "run: {} ({ops} operations, history {:.1} MB)",
        run.display(),
        history_bytes as f64 / 1e6
    );
    let mut times = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        let s = faultline_results::report::build(&run).expect("report");
        times.push(t.elapsed().as_secs_f64());
        if !s.warnings.is_empty() {
            println!("warnings: {:?}", s.warnings);
        }
    }
    let report = std::fs::metadata(run.join("report.html"))
        .expect("report")
        .len();
    let pngs: u64 = std::fs::read_dir(run.join("plots"))
        .expect("plots")
        .filter_map(Result::ok)
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum();
    let logs: u64 = ["latency.hlog", "latency-total.hlog", "throughput.csv"]
        .iter()
        .map(|f| std::fs::metadata(run.join(f)).map_or(0, |m| m.len()))
        .sum();
    times.sort_by(f64::total_cmp);
    println!(
        "report build: min {:.3} s, median {:.3} s, max {:.3} s over {repeats} builds",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
    println!(
        "report.html {:.2} MB; plots/*.png {:.2} MB; histogram logs + throughput.csv {:.2} MB",
        report as f64 / 1e6,
        pngs as f64 / 1e6,
        logs as f64 / 1e6
    );
}

//! `faultline compare RUN_A RUN_B`: the two runs side by side per
//! operation, the change in percent and the verdicts; with
//! `--max-regression p99=10%,throughput=5%`, exits 1 when B is worse than A
//! beyond a threshold (or has a worse verdict). `--baseline DIR` compares
//! the newest run of each test in `--store` against a baseline run (DIR is
//! a run) or the newest run of the same test in a baseline store.

use crate::exit::{bad_input, Exit};
use faultline_results::compare::{compare, compare_baseline, Thresholds};
use faultline_results::run_metrics::RunMetrics;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run compared against (A), and the run compared (B).
    #[arg(num_args = 0..=2)]
    pub runs: Vec<PathBuf>,
    /// Limits per metric: count, throughput, p50, p90, p99, p99.9, max (e.g. p99=10%,throughput=5%).
    #[arg(long)]
    pub max_regression: Option<String>,
    /// Compare the newest run of each test against this baseline run or store.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// The store whose newest runs --baseline compares.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let thresholds = match &args.max_regression {
        Some(s) => s
            .parse::<Thresholds>()
            .map_err(|e| bad_input(format!("--max-regression: {e}")))?,
        None => Thresholds::default(),
    };
    let regressed = if let Some(base) = &args.baseline {
        if !args.runs.is_empty() {
            return Err(bad_input(
                "give either RUN_A RUN_B or --baseline DIR, not both",
            ));
        }
        let results =
            compare_baseline(&args.store, base, &thresholds).map_err(super::report::read_error)?;
        if results.is_empty() {
            return Err(bad_input(format!(
                "--store {}: no runs to compare",
                args.store.display()
            )));
        }
        if args.json {
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&results).expect("comparisons serialize")
            );
        }
        let mut any = false;
        for r in &results {
            match &r.comparison {
                Some(c) => {
                    any |= c.regressed();
                    if !args.json {
                        crate::outln!(
                            "== {} {}",
                            r.test,
                            if c.regressed() { "REGRESSED" } else { "ok" }
                        );
                        crate::out!("{}", c.render());
                    }
                }
                None if !args.json => crate::outln!(
                    "== {}: no baseline run (newest: {})",
                    r.test,
                    r.run.display()
                ),
                None => {}
            }
        }
        any
    } else {
        let [a, b] = args.runs.as_slice() else {
            return Err(bad_input(
                "compare needs two runs (RUN_A RUN_B) or --baseline DIR",
            ));
        };
        let a = RunMetrics::load(a).map_err(super::report::read_error)?;
        let b = RunMetrics::load(b).map_err(super::report::read_error)?;
        let c = compare(&a, &b, &thresholds);
        if args.json {
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&c).expect("comparison serializes")
            );
        } else {
            crate::out!("{}", c.render());
        }
        c.regressed()
    };
    Ok(if regressed {
        Exit::Invalid
    } else {
        Exit::Valid
    })
}

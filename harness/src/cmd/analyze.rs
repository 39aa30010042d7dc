//! `faultline analyze RUN_DIR`: re-check a stored run.
//!
//! Reads the run's test.json (for the workload's checkers) and
//! history.jsonl, checks, rewrites results.json, prints the same tables as
//! `faultline test` (or results.json with `--json`) and exits with the
//! verdict's code.

use crate::exit::{bad_input, Exit};
use faultline_results::{RunDir, VerdictKind};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory (store/<test>/<time>, or store/latest).
    pub run_dir: PathBuf,
    /// Print results.json on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let run = RunDir::open(&args.run_dir).map_err(|e| bad_input(e.to_string()))?;
    let plan = crate::analysis::read_plan(&run)?;
    let results = crate::analysis::analyze_run(&run, &plan)?;
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&results).expect("results serialize")
        );
    } else {
        crate::out!("{}", faultline_results::table::render(&results));
    }
    Ok(match results.verdict {
        VerdictKind::Valid => Exit::Valid,
        VerdictKind::Invalid => Exit::Invalid,
        VerdictKind::Unknown => Exit::Unknown,
    })
}

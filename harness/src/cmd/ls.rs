//! `faultline ls`: the stored runs, newest first (test, time, verdict,
//! operations, p99 latency).

use crate::exit::{bad_input, Exit};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Only runs of tests whose name contains this.
    #[arg(long)]
    pub test: Option<String>,
    /// Print the runs as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    if !args.store.exists() {
        // No store yet is no runs yet, not an error: the first test makes it.
        if args.json {
            crate::outln!("[]");
        } else {
            crate::outln!(
                "no runs: {} does not exist yet (`faultline test --store {}` makes it)",
                args.store.display(),
                args.store.display()
            );
        }
        return Ok(Exit::Valid);
    }
    if !args.store.is_dir() {
        return Err(bad_input(format!(
            "--store {}: not a directory",
            args.store.display()
        )));
    }
    let mut runs =
        faultline_results::listing::list_runs(&args.store).map_err(super::report::read_error)?;
    if let Some(t) = &args.test {
        runs.retain(|r| r.test.contains(t.as_str()));
    }
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&runs).expect("runs serialize")
        );
    } else if runs.is_empty() {
        crate::outln!("no runs in {}", args.store.display());
    } else {
        crate::outln!("{}", faultline_results::listing::table(&runs));
    }
    Ok(Exit::Valid)
}

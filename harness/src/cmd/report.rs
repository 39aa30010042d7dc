//! `faultline report RUN_DIR`: (re)build a run's report.html, its plots
//! (plots/*.png) and its histogram logs from the stored history.

use crate::exit::{bad_input, Exit};
use anyhow::Context;
use faultline_results::run_metrics::RunReadError;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run directories (store/<test>/<time>, or store/latest).
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// Print what was built as JSON (one object per run), not text.
    #[arg(long)]
    pub json: bool,
}

/// Maps a read error to bad input (the run is broken) or a failure (we could not write).
pub fn read_error(e: RunReadError) -> anyhow::Error {
    match e {
        RunReadError::Store(faultline_results::StoreError::Io { ref source, .. })
            if source.kind() != std::io::ErrorKind::NotFound =>
        {
            anyhow::Error::new(e)
        }
        RunReadError::Io { .. } => anyhow::Error::new(e),
        e => bad_input(e.to_string()),
    }
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let mut built = Vec::new();
    for dir in &args.run_dirs {
        let s = faultline_results::report::build(dir)
            .map_err(read_error)
            .with_context(|| format!("building the report of {}", dir.display()))?;
        for w in &s.warnings {
            crate::errln!("warning: {w}");
        }
        if args.json {
            built.push(serde_json::json!({
                "run": dir,
                "report": s.path,
                "operations": s.operations,
                "bytes": s.bytes,
                "elapsed_ms": s.elapsed.as_secs_f64() * 1000.0,
                "warnings": s.warnings,
            }));
        } else {
            crate::outln!(
                "{} ({} operations, {:.1} KB, {:.2} s)",
                s.path.display(),
                s.operations,
                s.bytes as f64 / 1024.0,
                s.elapsed.as_secs_f64()
            );
        }
    }
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&built).expect("report summaries serialize")
        );
    }
    Ok(Exit::Valid)
}

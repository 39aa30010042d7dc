//! Analysis of a stored run: read its history back, check it, summarize
//! it, write results.json. Used at the end of `faultline test` and by
//! `faultline analyze`, so both give the same verdict for the same run.

use crate::run::plan::TestPlan;
use anyhow::Context;
use faultline_results::{read_history, summarize, RunDir, RunResults};

/// Checks the run in `run` with the plan's checkers and writes results.json.
pub fn analyze_run(run: &RunDir, plan: &TestPlan) -> anyhow::Result<RunResults> {
    let history =
        read_history(&run.history()).map_err(|e| crate::exit::bad_input(e.to_string()))?;
    if history.truncated_tail {
        tracing::warn!("the history's last line was cut short (a crash?); checking the rest");
    }
    let (checkers, witness) = crate::check::check_with_witness(&plan.workload, &history.events)
        .map_err(|e| {
            crate::exit::bad_input(format!("checking {}: {e}", run.history().display()))
        })?;
    // The checker's drawing of an invalid history, which report.html embeds;
    // a re-analysis that finds the run valid removes a stale one.
    let witness_path = run.path().join("witness.html");
    match witness {
        Some(html) => std::fs::write(&witness_path, html)
            .with_context(|| format!("writing {}", witness_path.display()))?,
        None => match std::fs::remove_file(&witness_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("removing {}", witness_path.display()))
            }
        },
    }
    let results = RunResults {
        verdict: RunResults::overall(&checkers),
        checkers,
        stats: summarize(&history.events),
        history_events: history.events.len() as u64,
        history_truncated: history.truncated_tail,
        run_dir: run.path().to_path_buf(),
        membership: faultline_results::shard_ownership::ShardOwnership::of_history(
            &history.events,
            faultline_results::op_span::history_end_ns(&history.events),
        )
        .changes,
    };
    results
        .write(&run.results_json())
        .with_context(|| format!("writing {}", run.results_json().display()))?;
    // report.html, plots and histogram logs, from the same history. A report
    // that cannot be drawn never changes the verdict.
    match faultline_results::report::build(run.path()) {
        Ok(r) => eprintln!("faultline: report {}", r.path.display()),
        Err(e) => tracing::warn!("building the report of {}: {e}", run.path().display()),
    }
    Ok(results)
}

/// Reads the plan recorded in a run's test.json.
pub fn read_plan(run: &RunDir) -> anyhow::Result<TestPlan> {
    let test = run
        .read_test_json()
        .map_err(|e| crate::exit::bad_input(e.to_string()))?;
    let plan = test.get("plan").cloned().ok_or_else(|| {
        crate::exit::bad_input(format!("{}: no \"plan\" object", run.test_json().display()))
    })?;
    serde_json::from_value(plan).map_err(|e| {
        crate::exit::bad_input(format!("{}: bad \"plan\": {e}", run.test_json().display()))
    })
}

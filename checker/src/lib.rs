//! faultline-checker: histories in, verdicts out.
//!
//! Pure: no async, no network, no clock (the one exception is the
//! monotonic clock behind [`CheckOptions::time_limit`], read only to give
//! up with `unknown`). Every checker takes a history and returns a
//! [`Verdict`]: valid, invalid (with a [`Witness`]) or unknown (with a
//! reason). "Not linearizable" is a value, never an error; errors
//! ([`HistoryError`], [`CheckError`]) are only for input that cannot be
//! read or does not fit the model, and always name where and what.
//!
//! # Using it
//!
//! ```no_run
//! use faultline_checker::{check_history, CheckOptions, VerdictKind};
//! # let events: Vec<faultline_checker::history::Event> = vec![];
//! // The harness, after a run of the `kv` workload:
//! let report = check_history(&events, "kv", &CheckOptions::default())?;
//! for r in &report.results {
//!     println!("{}: {} ({})", r.name, r.verdict.kind(), r.summary);
//! }
//! let exit_code = match report.verdict {
//!     VerdictKind::Valid => 0,
//!     VerdictKind::Invalid => 1,
//!     VerdictKind::Unknown => 2,
//! };
//! # Ok::<(), faultline_checker::CheckError>(())
//! ```
//!
//! - [`check_history`]`(events, workload, opts)`: the checkers of a
//!   workload (`register`, `kv`, `set`, `counter`, `lock`), plus `stats`.
//! - [`check_model`]`(ops, model, opts)`: linearizability against one
//!   [`ModelKind`], plus `stats` (what `faultline check --model` does).
//! - [`check_workload`]`(ops, workload, opts)`: as `check_history`, on
//!   operations already paired ([`Operations::from_events`]).
//! - [`format::read_history`]: reads JSON Lines, Jepsen EDN or Jepsen
//!   console logs (detected), giving events and their source lines.
//! - [`linearizable::check_linearizable`]: the search alone, with its
//!   numbers ([`search::SearchStats`]).
//! - [`html::render`]: a self-contained HTML timeline of a witness.
//!
//! Each [`CheckerResult`] has a `name`: `linearizable`, `set`, `counter`,
//! `fencing`, `mutual-exclusion` or `stats`. A [`Report`]'s verdict is the
//! worst of its results (invalid, then unknown, then valid).

pub mod brute;
pub mod checkers;
pub mod error;
pub mod format;
mod fxhash;
pub mod history;
pub mod html;
pub mod linearizable;
pub mod model;
pub mod operation;
pub mod options;
pub mod search;
#[cfg(test)]
mod testutil;
pub mod verdict;
pub mod workload;

pub use error::{CheckError, HistoryError};
pub use format::{read_history, Format, History};
pub use model::ModelKind;
pub use operation::{Operation, Operations, Outcome};
pub use options::CheckOptions;
pub use verdict::{CheckerResult, Report, Verdict, VerdictKind, Witness};
pub use workload::Workload;

use history::Event;

/// Runs the checkers of `workload` (by name: `register`, `kv`, `set`,
/// `counter`, `lock`) on a history, plus `stats`. The history is named
/// "history" in errors; use [`check_workload`] to name it yourself.
pub fn check_history(
    events: &[Event],
    workload: &str,
    opts: &CheckOptions,
) -> Result<Report, CheckError> {
    let workload: Workload = workload.parse()?;
    let ops = Operations::from_events("history", events, &[])?;
    check_workload(&ops, workload, opts)
}

/// Runs the checkers of `workload` on paired operations, plus `stats`.
pub fn check_workload(
    ops: &Operations,
    workload: Workload,
    opts: &CheckOptions,
) -> Result<Report, CheckError> {
    let mut results = Vec::new();
    match workload {
        Workload::Register | Workload::Kv => {
            let model = workload.model().expect("register and kv have a model");
            results.push(linearizability_result(ops, model, opts)?);
        }
        Workload::Set => results.push(checkers::set::check(&ops.ops)),
        Workload::Counter => results.push(checkers::counter::check(&ops.ops)),
        Workload::Lock => results.extend(checkers::fencing::check(&ops.ops)),
    }
    results.push(checkers::stats::check(&ops.ops));
    Ok(Report::new(results))
}

/// Checks linearizability against `model`, plus `stats`.
pub fn check_model(
    ops: &Operations,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<Report, CheckError> {
    let results = vec![
        linearizability_result(ops, model, opts)?,
        checkers::stats::check(&ops.ops),
    ];
    Ok(Report::new(results))
}

fn linearizability_result(
    ops: &Operations,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<CheckerResult, CheckError> {
    let r = linearizable::check_linearizable(ops, model, opts)?;
    let summary = format!(
        "{} on {} operations in {} part{} ({} steps, {} memoized configurations)",
        model,
        r.ops,
        r.parts,
        if r.parts == 1 { "" } else { "s" },
        r.stats.steps,
        r.stats.memo_entries
    );
    Ok(CheckerResult {
        name: "linearizable".into(),
        verdict: r.verdict,
        summary,
        details: serde_json::json!({
            "model": model.name(),
            "parts": r.parts,
            "ops": r.ops,
            "steps": r.stats.steps,
            "memo_entries": r.stats.memo_entries,
        }),
    })
}

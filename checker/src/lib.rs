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
//! - [`check_history`]`(events, workload, opts)`: a run's checkers (the
//!   workload's: `register`, `kv`, `set`, `counter`, `lock`, `list-append`,
//!   `rw-register`), plus `stats`, which judges too (a run where nothing
//!   succeeded tested nothing).
//! - [`txn::check`]: transactional isolation (Elle's list-append and
//!   rw-register), against any set of consistency models.
//! - [`check_model`]`(ops, model, opts)`: linearizability against one
//!   [`ModelKind`] (what `faultline check --model` does); `stats` is
//!   listed and judges nothing.
//! - [`check_workload`]`(ops, workload, opts)`: the workload's checkers on
//!   operations already paired; `stats` listed, judging nothing.
//! - [`Operations::read`]: streams a history file (JSON Lines, Jepsen EDN
//!   in any shape, Jepsen console logs; detected) into paired operations.
//! - [`format::read_history`]: the events of a history held in memory,
//!   with their source lines; [`format::edn::OpReader`]: EDN ops one at a
//!   time, `:value` left as an EDN value.
//! - [`linearizable::check_linearizable`]: the search alone, with its
//!   numbers ([`search::SearchStats`]).
//! - [`html::render`]: a self-contained HTML timeline of a witness.
//!
//! Each [`CheckerResult`] has a `name`: `linearizable`, `set`, `counter`,
//! `fencing`, `mutual-exclusion` or `stats`. A [`Report`]'s verdict is the
//! worst of its results (invalid, then unknown, then valid). A
//! history with no client operation, or whose operations all failed, is
//! linearizable: nothing had to be linearized.

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
pub mod txn;
pub mod verdict;
pub mod workload;

pub use error::{CheckError, HistoryError};
pub use format::{read_history, Format, History};
pub use model::ModelKind;
pub use operation::{Operation, Operations, Outcome};
pub use options::CheckOptions;
pub use verdict::{CheckerResult, Report, Verdict, VerdictKind, Witness};
pub use workload::Workload;

use checkers::stats::Role;
use history::Event;

/// Runs the checkers of `workload` (by name: `register`, `kv`, `set`,
/// `counter`, `lock`) on a run's history, plus `stats`, which judges too:
/// a run in which no operation succeeded tested nothing and is `unknown`.
/// The history is named "history" in errors.
pub fn check_history(
    events: &[Event],
    workload: &str,
    opts: &CheckOptions,
) -> Result<Report, CheckError> {
    let workload: Workload = workload.parse()?;
    let ops = Operations::from_events("history", events, &[])?;
    let mut results = workload_results(&ops, workload, opts)?;
    results.push(checkers::stats::check(&ops.ops, Role::Judge));
    Ok(Report::new(results))
}

/// Runs the checkers of `workload` on paired operations; `stats` only
/// counts and judges nothing (a
/// history whose operations all failed is valid: nothing had to happen).
pub fn check_workload(
    ops: &Operations,
    workload: Workload,
    opts: &CheckOptions,
) -> Result<Report, CheckError> {
    let mut results = workload_results(ops, workload, opts)?;
    results.push(checkers::stats::check(&ops.ops, Role::Inform));
    Ok(Report::new(results))
}

fn workload_results(
    ops: &Operations,
    workload: Workload,
    opts: &CheckOptions,
) -> Result<Vec<CheckerResult>, CheckError> {
    let mut results = Vec::new();
    match workload {
        Workload::Register | Workload::Kv => {
            let model = workload.model().expect("register and kv have a model");
            results.push(linearizability_result(ops, model, opts)?);
        }
        Workload::Set => results.push(checkers::set::check(&ops.ops)),
        Workload::Counter | Workload::LockCounter => {
            results.push(checkers::counter::check(&ops.ops))
        }
        Workload::Lock => {
            results.extend(checkers::fencing::check(&ops.ops));
            if checkers::mutex::applies(&ops.ops) {
                results.push(checkers::mutex::check(ops, opts)?);
            }
        }
        Workload::ListAppend | Workload::RwRegister => {
            let model = workload.txn_model().expect("a transactional workload");
            let txn_opts = txn::TxnOptions {
                time_limit: opts.time_limit,
                ..txn::TxnOptions::default()
            };
            results.push(txn::check_operations(ops, model, &txn_opts)?);
        }
    }
    Ok(results)
}

/// Checks linearizability against `model`: the report's verdict is the
/// model's; `stats` is listed after it and judges nothing.
pub fn check_model(
    ops: &Operations,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<Report, CheckError> {
    Ok(Report::new(vec![
        linearizability_result(ops, model, opts)?,
        checkers::stats::check(&ops.ops, Role::Inform),
    ]))
}

fn linearizability_result(
    ops: &Operations,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<CheckerResult, CheckError> {
    let r = linearizable::check_linearizable(ops, model, opts)?;
    let summary = if r.ops == 0 {
        match ops.ops.len() {
            0 => "no client operation: nothing had to be linearized".to_string(),
            n => format!("all {n} operations failed: nothing had to be linearized"),
        }
    } else {
        format!(
            "{} on {} operations in {} part{} ({} steps, {} memoized configurations)",
            model,
            r.ops,
            r.parts,
            if r.parts == 1 { "" } else { "s" },
            r.stats.steps,
            r.stats.memo_entries
        )
    };
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

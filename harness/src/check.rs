//! The checking step: a workload's history in, one outcome per checker out.
//!
//! faultline-checker picks the checkers from the workload's name (the same
//! names the workload lists in `checkers()`): `linearizable` for register
//! and kv (kv split per key), `set`, `counter`, `fencing` and
//! `mutual-exclusion` for lock, and `stats` for all. Nemesis events are
//! passed through; checkers ignore them.

use faultline_checker::history::Event;
use faultline_checker::{check_history, CheckError, CheckOptions};
use faultline_results::{CheckerOutcome, VerdictKind};
use std::time::Duration;

/// How long the linearizability search may take before it says unknown.
pub const SEARCH_TIME_LIMIT: Duration = Duration::from_secs(120);

/// Runs the checkers of `workload` over the history.
pub fn check(workload: &str, events: &[Event]) -> Result<Vec<CheckerOutcome>, CheckError> {
    check_with_witness(workload, events).map(|(outcomes, _)| outcomes)
}

/// Runs the checkers of `workload` over the history; when a checker finds
/// the history invalid, also draws the checker's witness page (one row per
/// process, the failing window highlighted) for the run's report.
pub fn check_with_witness(
    workload: &str,
    events: &[Event],
) -> Result<(Vec<CheckerOutcome>, Option<String>), CheckError> {
    let opts = CheckOptions {
        time_limit: Some(SEARCH_TIME_LIMIT),
        ..CheckOptions::default()
    };
    let report = check_history(events, workload, &opts)?;
    // A transactional witness is a cycle of transactions, drawn by the txn
    // page; every other witness is a window of the timeline.
    let txn_witness = report.results.iter().find(|r| {
        matches!(
            &r.verdict,
            faultline_checker::Verdict::Invalid {
                witness: faultline_checker::Witness::Txn(_)
            }
        )
    });
    let witness = match txn_witness {
        Some(result) => Some(faultline_checker::txn::html::render(
            "history.jsonl",
            result,
        )),
        None => (report.verdict == VerdictKind::Invalid)
            .then(|| {
                faultline_checker::operation::Operations::from_events("history.jsonl", events, &[])
                    .ok()
            })
            .flatten()
            .map(|ops| faultline_checker::html::render("history.jsonl", &ops, &report)),
    };
    let outcomes = report
        .results
        .into_iter()
        .map(|r| {
            let verdict = r.verdict.kind();
            let summary = match &r.verdict {
                faultline_checker::Verdict::Unknown { reason } => {
                    format!("{} — {reason}", r.summary)
                }
                faultline_checker::Verdict::Invalid { witness } => {
                    let first = witness.to_string();
                    let first = first.lines().next().unwrap_or("").to_string();
                    if first.is_empty() {
                        r.summary.clone()
                    } else {
                        format!("{} — {first}", r.summary)
                    }
                }
                faultline_checker::Verdict::Valid => r.summary.clone(),
            };
            CheckerOutcome {
                checker: r.name.clone(),
                scope: None,
                verdict,
                summary,
                detail: serde_json::to_value(&r).unwrap_or(serde_json::Value::Null),
            }
        })
        .collect();
    Ok((outcomes, witness))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::history::{EventType, Process, Value};
    use serde_json::json;

    fn ev(i: u64, p: u64, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            index: i,
            time: i * 1000,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    #[test]
    fn a_stale_read_is_invalid_and_a_fresh_one_valid() {
        use EventType::*;
        let mut h = vec![
            ev(0, 0, Invoke, "write", json!(1)),
            ev(1, 0, Ok, "write", json!(1)),
            ev(2, 1, Invoke, "read", Value::Null),
        ];
        let mut stale = h.clone();
        stale.push(ev(3, 1, Ok, "read", Value::Null));
        h.push(ev(3, 1, Ok, "read", json!(1)));
        let worst = |events: &[Event]| {
            check("register", events)
                .expect("checks")
                .iter()
                .map(|o| o.verdict)
                .max()
        };
        assert_eq!(worst(&h), Some(VerdictKind::Valid));
        assert_eq!(worst(&stale), Some(VerdictKind::Invalid));
        let (_, witness) = check_with_witness("register", &stale).expect("checks");
        assert!(witness
            .expect("an invalid history has a witness page")
            .contains("<svg"));
        assert!(check_with_witness("register", &h)
            .expect("checks")
            .1
            .is_none());
        let names: Vec<String> = check("register", &h)
            .expect("checks")
            .into_iter()
            .map(|o| o.checker)
            .collect();
        assert!(names.contains(&"linearizable".to_string()), "{names:?}");
    }
}

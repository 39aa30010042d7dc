//! Analysis of a stored run: read its history back, check it, summarize
//! it, write results.json. Used at the end of `faultline test` and by
//! `faultline analyze`, so both give the same verdict for the same run.

use crate::run::plan::TestPlan;
use anyhow::Context;
use faultline_results::{read_history, summarize, CheckerOutcome, RunDir, RunResults, VerdictKind};

/// Checks the run in `run` with the plan's checkers and writes results.json.
pub fn analyze_run(run: &RunDir, plan: &TestPlan) -> anyhow::Result<RunResults> {
    let history =
        read_history(&run.history()).map_err(|e| crate::exit::bad_input(e.to_string()))?;
    if history.truncated_tail {
        tracing::warn!("the history's last line was cut short (a crash?); checking the rest");
    }
    let (checkers, witness) =
        crate::check::check_with_witness(plan.workload.name(), &history.events).map_err(|e| {
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
    let mut checkers = checkers;
    if let Some(crashes) = node_crashes(&run.path().join("nodes"), plan.system.crash_markers())? {
        checkers.push(crashes);
    }
    if let Some(caught_up) = caught_up(&history.events) {
        checkers.push(caught_up);
    }
    if let Some(auth) = auth(&history.events) {
        checkers.push(auth);
    }
    if let Some(memory) = crate::nemesis::slow_reader::check(&history.events) {
        checkers.push(memory);
    }
    if let Some(access) = faultline_checker::checkers::access::check(&history.events) {
        checkers.push(access_outcome(access));
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
        Ok(r) => crate::errln!("faultline: report {}", r.path.display()),
        Err(e) => tracing::warn!("building the report of {}: {e}", run.path().display()),
    }
    Ok(results)
}

/// The `node-crashes` check: a node of the system under test that panicked
/// (an assertion in a consensus core, say) is a bug found, even when the
/// history it left is linearizable: the node's log names where. Reads every
/// `nodes/*.log` of the run; `None` when the run kept no node logs (a run
/// whose logs were not fetched is not called crash-free).
pub fn node_crashes(
    nodes_dir: &std::path::Path,
    markers: &[&str],
) -> anyhow::Result<Option<CheckerOutcome>> {
    use std::io::BufRead;
    let entries = match std::fs::read_dir(nodes_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("listing {}", nodes_dir.display())),
    };
    let mut logs: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    if logs.is_empty() {
        return Ok(None);
    }
    logs.sort();
    let mut panics = Vec::new();
    for log in &logs {
        let file =
            std::fs::File::open(log).with_context(|| format!("reading {}", log.display()))?;
        let node = log
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Lossy lines: a log is outside input, and a torn UTF-8 tail must not stop the scan.
        let mut reader = std::io::BufReader::new(file);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("reading {}", log.display()))?;
            if n == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&buf);
            if let Some(at) = markers.iter().filter_map(|m| line.find(m)).min() {
                let what: String = line[at..].trim_end().chars().take(300).collect();
                panics.push(serde_json::json!({ "node": node, "panic": what }));
            }
        }
    }
    let outcome = if panics.is_empty() {
        CheckerOutcome {
            checker: "node-crashes".into(),
            scope: None,
            verdict: VerdictKind::Valid,
            summary: format!("no node panicked ({} node logs read)", logs.len()),
            detail: serde_json::Value::Null,
        }
    } else {
        let first = &panics[0];
        CheckerOutcome {
            checker: "node-crashes".into(),
            scope: None,
            verdict: VerdictKind::Invalid,
            summary: format!(
                "{} node panic(s); first: {} {}",
                panics.len(),
                first["node"].as_str().unwrap_or("?"),
                first["panic"].as_str().unwrap_or("?")
            ),
            detail: serde_json::Value::Array(panics),
        }
    };
    Ok(Some(outcome))
}

/// The `caught-up` check, from the run's last `caught-up` nemesis event
/// (written after the final reads, see `System::await_caught_up`): every
/// node must hold what the cluster committed. A follower left behind (one
/// that could never catch up after a partition, say) is a failure the final
/// reads cannot see. `None` when the run has no such event (the system
/// cannot tell, or an older run).
pub fn caught_up(events: &[faultline_checker::history::Event]) -> Option<CheckerOutcome> {
    use faultline_checker::history::Process;
    let event = events
        .iter()
        .rev()
        .find(|e| e.process == Process::Nemesis && e.f == "caught-up")?;
    let outcome = |verdict, summary: String| CheckerOutcome {
        checker: "caught-up".into(),
        scope: None,
        verdict,
        summary,
        detail: event.value.clone(),
    };
    let Ok(catch_up) = serde_json::from_value::<crate::system::CatchUp>(event.value.clone()) else {
        return Some(outcome(
            VerdictKind::Unknown,
            format!(
                "the caught-up event (history line {}) is malformed",
                event.index + 1
            ),
        ));
    };
    let describe = |(node, applied): (&String, &Option<u64>)| match applied {
        Some(index) => format!("{node} at {index}"),
        None => format!("{node} did not answer"),
    };
    let nodes: Vec<String> = catch_up.applied.iter().map(describe).collect();
    Some(if catch_up.caught_up {
        outcome(
            VerdictKind::Valid,
            format!("every node caught up ({})", nodes.join(", ")),
        )
    } else {
        outcome(
            VerdictKind::Invalid,
            format!(
                "not every node caught up after the run: {}",
                nodes.join(", ")
            ),
        )
    })
}

/// The `access` checker's verdict as results.json keeps it (the counts and
/// each accepted attempt in its detail).
fn access_outcome(access: faultline_checker::checkers::access::AccessVerdict) -> CheckerOutcome {
    CheckerOutcome {
        checker: "access".into(),
        scope: None,
        verdict: access.verdict,
        summary: access.summary.clone(),
        detail: serde_json::to_value(&access).unwrap_or(serde_json::Value::Null),
    }
}

/// The `auth` check, from the run's `auth` nemesis event (`--auth`: every
/// node was sent a request without the token before the first operation):
/// every node must refuse it. A node that served it is invalid (auth that
/// does not hold); one that did not answer leaves it unknown. `None` when
/// the run had no auth.
pub fn auth(events: &[faultline_checker::history::Event]) -> Option<CheckerOutcome> {
    use faultline_checker::history::Process;
    let event = events
        .iter()
        .find(|e| e.process == Process::Nemesis && e.f == "auth")?;
    let outcome = |verdict, summary: String| CheckerOutcome {
        checker: "auth".into(),
        scope: None,
        verdict,
        summary,
        detail: event.value.clone(),
    };
    let Ok(probe) = serde_json::from_value::<crate::system::AuthProbe>(event.value.clone()) else {
        return Some(outcome(
            VerdictKind::Unknown,
            format!(
                "the auth event (history line {}) is malformed",
                event.index + 1
            ),
        ));
    };
    let asked = probe.refused.len() + probe.served.len() + probe.no_answer.len();
    let list = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(node, what)| format!("{node}: {what}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(if !probe.served.is_empty() {
        outcome(
            VerdictKind::Invalid,
            format!(
                "{} of {asked} nodes served a request without the token ({})",
                probe.served.len(),
                list(&probe.served)
            ),
        )
    } else if !probe.no_answer.is_empty() || asked == 0 {
        outcome(
            VerdictKind::Unknown,
            format!(
                "{} of {asked} nodes refused a request without the token; no answer from {}",
                probe.refused.len(),
                list(&probe.no_answer)
            ),
        )
    } else {
        outcome(
            VerdictKind::Valid,
            format!("{asked} of {asked} nodes refused a request without the token (unauthorized)"),
        )
    })
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

#[cfg(test)]
mod node_crash_tests {
    use super::*;

    #[test]
    fn a_panic_in_any_node_log_is_an_invalid_outcome_naming_node_and_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("n1.log"), "INFO listening\n").expect("write");
        std::fs::write(
            dir.path().join("n2.log"),
            b"INFO up\nthread 'faultline-core' panicked at nodes/src/paxos/node.rs:907:9:\n\xff\xfe torn\n",
        )
        .expect("write");
        let out = node_crashes(dir.path(), &["panicked at "])
            .expect("readable")
            .expect("logs exist");
        assert_eq!(out.verdict, VerdictKind::Invalid);
        assert!(out.summary.contains("n2"), "{}", out.summary);
        assert!(out.summary.contains("paxos/node.rs:907"), "{}", out.summary);
        assert_eq!(out.detail.as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn clean_logs_are_valid_and_no_logs_is_no_claim() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(node_crashes(&dir.path().join("absent"), &["panicked at "])
            .expect("ok")
            .is_none());
        assert!(node_crashes(dir.path(), &["panicked at "])
            .expect("ok")
            .is_none());
        std::fs::write(dir.path().join("n1.log"), "INFO listening\n").expect("write");
        let out = node_crashes(dir.path(), &["panicked at "])
            .expect("ok")
            .expect("one log");
        assert_eq!(out.verdict, VerdictKind::Valid);
    }
}

#[cfg(test)]
mod caught_up_tests {
    use super::*;
    use faultline_checker::history::{Event, EventType, Process};

    fn event(f: &str, value: serde_json::Value) -> Event {
        Event {
            index: 7,
            time: 0,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    #[test]
    fn a_node_left_behind_makes_the_run_invalid_naming_it() {
        let behind = event(
            "caught-up",
            serde_json::json!({"caught_up": false, "applied": {"n1": 812, "n2": 812, "n3": 1, "n4": null}}),
        );
        let out = caught_up(&[behind]).expect("an event");
        assert_eq!(out.verdict, VerdictKind::Invalid);
        assert!(out.summary.contains("n3 at 1"), "{}", out.summary);
        assert!(out.summary.contains("n4 did not answer"), "{}", out.summary);
        let fine = event(
            "caught-up",
            serde_json::json!({"caught_up": true, "applied": {"n1": 812, "n2": 812}}),
        );
        assert_eq!(
            caught_up(&[fine]).expect("an event").verdict,
            VerdictKind::Valid
        );
    }

    #[test]
    fn no_event_is_no_claim_and_a_bad_one_is_unknown() {
        assert!(caught_up(&[event("start-partition", serde_json::Value::Null)]).is_none());
        let bad = caught_up(&[event("caught-up", serde_json::json!("?"))]).expect("an event");
        assert_eq!(bad.verdict, VerdictKind::Unknown);
        assert!(bad.summary.contains("line 8"), "{}", bad.summary);
    }
}

#[cfg(test)]
mod auth_tests {
    use super::*;
    use faultline_checker::history::{Event, EventType, Process};

    fn event(value: serde_json::Value) -> Event {
        Event {
            index: 3,
            time: 0,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: "auth".into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    #[test]
    fn every_node_must_refuse_a_request_without_the_token() {
        let all = event(
            serde_json::json!({"refused": ["n1", "n2", "n3"], "served": {}, "no_answer": {}}),
        );
        let out = auth(&[all]).expect("an event");
        assert_eq!(out.verdict, VerdictKind::Valid);
        assert!(
            out.summary.starts_with("3 of 3 nodes refused"),
            "{}",
            out.summary
        );
        let leak = event(
            serde_json::json!({"refused": ["n1"], "served": {"n2": "ok"}, "no_answer": {"n3": "timeout"}}),
        );
        let out = auth(&[leak]).expect("an event");
        assert_eq!(
            out.verdict,
            VerdictKind::Invalid,
            "a node that serves without the token is a finding"
        );
        assert!(out.summary.contains("n2: ok"), "{}", out.summary);
        let silent = event(
            serde_json::json!({"refused": ["n1"], "served": {}, "no_answer": {"n3": "timeout"}}),
        );
        let out = auth(&[silent]).expect("an event");
        assert_eq!(out.verdict, VerdictKind::Unknown);
        assert!(out.summary.contains("n3: timeout"), "{}", out.summary);
    }

    #[test]
    fn no_event_is_no_claim_and_a_bad_one_is_unknown() {
        assert!(auth(&[]).is_none());
        let bad = auth(&[event(serde_json::json!([1]))]).expect("an event");
        assert_eq!(bad.verdict, VerdictKind::Unknown);
        assert!(bad.summary.contains("line 4"), "{}", bad.summary);
    }
}

//! Checks of a finished run's audit events (docs/history-format.md,
//! "Audit events"): each node's audit log in the store, its `audit-log`
//! and `audit` events at the end of the history (the probe's refusal and
//! the harness's admin requests among them), report.html's Audit section,
//! and `faultline check` giving the same answer with and without them.

use serde_json::Value;
use std::path::Path;

/// The history's events, parsed.
pub fn history(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("history.jsonl"))
        .expect("history.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a history line is JSON"))
        .collect()
}

fn is_audit(e: &Value) -> bool {
    e["process"] == "nemesis" && (e["f"] == "audit" || e["f"] == "audit-log")
}

/// Entries (lines with `time_ms`) in a node's audit file in the store.
fn file_entries(run: &Path, node: &str) -> Option<usize> {
    let text = std::fs::read_to_string(run.join("nodes").join(node).join("audit.jsonl")).ok()?;
    Some(
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("time_ms").is_some())
            .count(),
    )
}

/// What is wrong with the audit events of the run in `run` (n1..=nodes);
/// empty when nothing is.
pub fn audit_problems(run: &Path, nodes: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let events = history(run);
    let first_audit = events.iter().position(is_audit).unwrap_or(events.len());
    if events[first_audit..].iter().any(|e| !is_audit(e)) {
        problems.push("audit events are not all at the end of the history".into());
    }
    let last_time = events[..first_audit]
        .last()
        .map_or(0, |e| e["time"].as_u64().expect("time"));
    if events[first_audit..]
        .iter()
        .any(|e| e["time"].as_u64() != Some(last_time))
    {
        problems.push(format!(
            "audit events must carry the last event's time {last_time}"
        ));
    }
    let auth_time = events
        .iter()
        .find(|e| e["f"] == "auth")
        .and_then(|e| e["time"].as_i64());
    for i in 1..=nodes {
        let node = format!("n{i}");
        let of_node = |f: &str| -> Vec<&Value> {
            events
                .iter()
                .filter(|e| e["f"] == f && e["value"]["node"] == node.as_str())
                .collect()
        };
        let logs = of_node("audit-log");
        let [log] = logs.as_slice() else {
            problems.push(format!("{node}: {} audit-log events, want 1", logs.len()));
            continue;
        };
        let summary = &log["value"];
        let entries = summary["entries"].as_u64().unwrap_or(0);
        if file_entries(run, &node) != Some(entries as usize) {
            problems.push(format!(
                "{node}: audit-log counts {entries} entries, the store's file {:?}",
                file_entries(run, &node)
            ));
        }
        let by_outcome: u64 = summary["by_outcome"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
        if by_outcome != entries {
            problems.push(format!(
                "{node}: by_outcome sums to {by_outcome}, want {entries}"
            ));
        }
        let recorded = of_node("audit");
        if summary["recorded"].as_u64() != Some(recorded.len() as u64) || recorded.len() > 200 {
            problems.push(format!(
                "{node}: {} audit events, audit-log says {} (at most 200)",
                recorded.len(),
                summary["recorded"]
            ));
        }
        let refusals: Vec<&&Value> = recorded
            .iter()
            .filter(|e| e["value"]["role"] == "none" && e["value"]["outcome"] == "unauthorized")
            .collect();
        if refusals.len() != 1 {
            problems.push(format!(
                "{node}: {} refusals in the history, want 1 (the probe's)",
                refusals.len()
            ));
        }
        // The probe ran after the history began and before its `auth`
        // event: its entry's time, mapped, falls between (give or take
        // 100 ms: ms granularity, a wall clock slewed during the run; a
        // wrong base or unit is off by far more).
        if let (Some(r), Some(auth)) = (refusals.first(), auth_time) {
            let at = r["value"]["at_ns"].as_i64().unwrap_or(i64::MIN);
            if at < -100_000_000 || at > auth + 100_000_000 {
                problems.push(format!(
                    "{node}: the probe's refusal at_ns {at} is not between 0 and the auth event's time {auth}"
                ));
            }
        }
        if !recorded
            .iter()
            .any(|e| e["value"]["outcome"] == "ok" && e["value"]["role"] != "none")
        {
            problems.push(format!(
                "{node}: no admin request of the harness among its audit events"
            ));
        }
    }
    let report = std::fs::read_to_string(run.join("report.html")).unwrap_or_default();
    if !report.contains("<h2 id=audit>Audit</h2>") {
        problems.push("report.html has no Audit section".into());
    }
    for i in 1..=nodes {
        if !report.contains(&format!("id=\"audit-n{i}\"")) {
            problems.push(format!("report.html's Audit section has no n{i}"));
        }
    }
    problems
}

/// `faultline check --json` of the run's history and of the same history
/// without its audit events: the same verdict, operations and results
/// (else a problem naming both answers). `extra` are check's options.
pub fn check_ignores_audit_events(run: &Path, extra: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("history.jsonl")).expect("history.jsonl");
    let stripped: String = text
        .lines()
        .filter(|l| !is_audit(&serde_json::from_str::<Value>(l).expect("JSON")))
        .map(|l| format!("{l}\n"))
        .collect();
    if stripped.len() == text.len() {
        return vec!["the history has no audit events to strip".into()];
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let without = dir.path().join("without-audit.jsonl");
    std::fs::write(&without, stripped).expect("write");
    let check = |file: &Path| -> (Option<i32>, Value) {
        let mut a: Vec<&str> = vec!["check", "--json"];
        a.extend_from_slice(extra);
        let file = file.to_str().expect("utf-8 path").to_string();
        a.push(&file);
        let (code, out, err) = super::faultline(&a);
        let v = serde_json::from_str(out.trim()).unwrap_or_else(|_| Value::String(err));
        (code, v)
    };
    let (code_with, mut with) = check(&run.join("history.jsonl"));
    let (code_without, mut without) = check(&without);
    drop_timings(&mut with);
    drop_timings(&mut without);
    let same = code_with == code_without
        && ["verdict", "operations", "results"]
            .iter()
            .all(|k| with[k] == without[k]);
    let mut problems = Vec::new();
    if !same || with["verdict"].is_null() {
        problems.push(format!(
            "faultline check with the audit events: exit {code_with:?} {with}; without: exit {code_without:?} {without}"
        ));
    }
    problems
}

/// Removes the checkers' own timings (`*_ms` in any `stats` object, e.g.
/// the transaction checker's `analysis_ms`): they differ between two
/// checks of the same history.
fn drop_timings(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(stats)) = map.get_mut("stats") {
                stats.retain(|k, _| !k.ends_with("_ms"));
            }
            map.values_mut().for_each(drop_timings);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_timings),
        _ => {}
    }
}

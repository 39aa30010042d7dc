//! The console tables printed at the end of a run: one row per operation,
//! then one row per checker verdict.

use crate::op_stats::Summary;
use crate::run_results::{CheckerOutcome, RunResults};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.1}")
    }
}

/// The operations table: count, ok/fail/info, throughput, latency percentiles.
pub fn ops_table(summary: &Summary) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "op", "count", "ok", "fail", "info", "ok/s", "p50 ms", "p95 ms", "p99 ms", "max ms",
    ]);
    for s in summary.ops.iter().chain(std::iter::once(&summary.total)) {
        t.add_row(vec![
            s.f.clone(),
            s.count.to_string(),
            s.ok.to_string(),
            s.fail.to_string(),
            s.info.to_string(),
            format!("{:.1}", s.ok_per_s),
            fmt_ms(s.latency_ms_p50),
            fmt_ms(s.latency_ms_p95),
            fmt_ms(s.latency_ms_p99),
            fmt_ms(s.latency_ms_max),
        ]);
    }
    for i in 1..10 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// The verdicts table: one row per checker (and scope).
pub fn verdicts_table(checkers: &[CheckerOutcome]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["checker", "scope", "verdict", "summary"]);
    for c in checkers {
        t.add_row(vec![
            c.checker.clone(),
            c.scope.clone().unwrap_or_else(|| "all".into()),
            c.verdict.as_str().to_string(),
            c.summary.clone(),
        ]);
    }
    t
}

/// Everything printed at the end of a run, for humans: with a line per
/// ring membership change for sharded runs.
pub fn render(results: &RunResults) -> String {
    let membership: String = results
        .membership
        .iter()
        .map(|c| format!("{}\n", c.line()))
        .collect();
    format!(
        "{}\n{membership}{}\nverdict: {}\nstore:   {}\n",
        ops_table(&results.stats),
        verdicts_table(&results.checkers),
        results.verdict.as_str(),
        results.run_dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VerdictKind;

    #[test]
    fn render_names_every_op_checker_and_the_store() {
        use faultline_checker::history::{Event, EventType, Process, Value};
        let ev = |t: u64, kind| Event {
            index: 0,
            time: t,
            process: Process::Client(0),
            kind,
            f: "cas".into(),
            key: None,
            value: Value::Null,
            node: None,
            error: None,
        };
        let r = RunResults {
            verdict: VerdictKind::Invalid,
            checkers: vec![CheckerOutcome {
                checker: "linearizable".into(),
                scope: Some("k1".into()),
                verdict: VerdictKind::Invalid,
                summary: "read 3 after write 4".into(),
                detail: serde_json::Value::Null,
            }],
            stats: crate::summarize(&[ev(0, EventType::Invoke), ev(2_000_000, EventType::Ok)]),
            history_events: 2,
            history_truncated: false,
            run_dir: "store/x/1".into(),
            membership: vec![crate::shard_ownership::MembershipChange {
                start_ns: 1_000_000_000,
                end_ns: Some(2_500_000_000),
                action: "remove".into(),
                node: "n2".into(),
                members: vec!["n1".into(), "n3".into()],
                moves: Vec::new(),
                error: None,
            }],
        };
        let text = render(&r);
        for needle in [
            "cas",
            "linearizable",
            "k1",
            "invalid",
            "store/x/1",
            "2.0",
            "membership 1.0s–2.5s -n2: members n1,n3; no shard moved",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }
}

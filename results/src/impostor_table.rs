//! The impostor's attempts (nemesis events `impostor`,
//! docs/history-format.md) grouped for report.html: one row per
//! credential, ask and outcome, with the nodes it hit, how many times, and
//! one reason or answer. Accepted rows come first: they are what failed
//! the run (the `access` checker).

use faultline_checker::history::{Event, Process};
use std::collections::{BTreeMap, BTreeSet};

/// One group of attempts with the same credential, ask and outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttemptRow {
    pub credential: String,
    pub ask: String,
    pub outcome: String,
    pub nodes: BTreeSet<String>,
    pub count: u64,
    /// The first attempt's code and reason, or answer.
    pub said: String,
}

/// The rows of the impostor events in `events`: accepted first, then
/// no-answer, then refused; within each, by credential and ask. Empty when
/// the run had no impostor.
pub fn attempt_rows(events: &[Event]) -> Vec<AttemptRow> {
    let mut rows: BTreeMap<(u8, String, String, String), AttemptRow> = BTreeMap::new();
    for event in events
        .iter()
        .filter(|e| e.process == Process::Nemesis && e.f == "impostor")
    {
        let field = |name: &str| {
            event
                .value
                .get(name)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let outcome = field("outcome");
        let rank = match outcome.as_str() {
            "accepted" => 0,
            "refused" => 2,
            _ => 1,
        };
        let mut ask = field("ask");
        let claims = field("claims");
        if !claims.is_empty() {
            ask = format!("{ask} as {claims}");
        }
        let credential = field("credential");
        let key = (rank, credential.clone(), ask.clone(), outcome.clone());
        let row = rows.entry(key).or_insert_with(|| AttemptRow {
            credential,
            ask,
            outcome,
            said: [field("code"), field("reason"), field("answer")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": "),
            ..AttemptRow::default()
        });
        row.nodes.insert(field("node"));
        row.count += 1;
    }
    rows.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::history::EventType;
    use serde_json::json;

    fn attempt(node: &str, credential: &str, outcome: &str) -> Event {
        Event {
            index: 0,
            time: 0,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: "impostor".into(),
            key: None,
            value: json!({"node": node, "credential": credential, "ask": "status",
                "outcome": outcome, "code": "unauthorized", "reason": "needs admin"}),
            node: None,
            error: None,
        }
    }

    #[test]
    fn attempts_group_by_credential_ask_and_outcome_accepted_first() {
        let rows = attempt_rows(&[
            attempt("n1", "client", "refused"),
            attempt("n2", "client", "refused"),
            attempt("n3", "client", "accepted"),
        ]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].outcome, "accepted");
        assert_eq!(rows[1].count, 2);
        assert_eq!(
            rows[1].nodes.iter().cloned().collect::<Vec<_>>(),
            ["n1", "n2"]
        );
        assert_eq!(rows[1].said, "unauthorized: needs admin");
        assert!(attempt_rows(&[]).is_empty());
    }
}

//! The `access` checker: did any node let an impostor in?
//!
//! The impostor fault (the harness's nemesis/impostor.rs) records each
//! attempt as a nemesis event `impostor` whose value names the node, the
//! credential, what was asked and the outcome: `refused`, `accepted` or
//! `no-answer` (docs/history-format.md). The run is invalid if one attempt
//! was accepted (each named: node, credential, ask); unknown if no attempt
//! was refused (nothing was shown) or an event is malformed; valid
//! otherwise, with the counts. A history without impostor events has no
//! access verdict (`None`): the checker judges every workload's run, but
//! only runs with the impostor.

use crate::history::{Event, Process};
use crate::verdict::VerdictKind;
use serde::Serialize;

/// The `f` of an impostor attempt's nemesis event.
pub const IMPOSTOR_EVENT: &str = "impostor";

/// The access verdict and what it rests on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessVerdict {
    pub verdict: VerdictKind,
    pub summary: String,
    pub attempts: usize,
    pub refused: usize,
    /// Attempts a node did not answer in time (not acceptance).
    pub no_answer: usize,
    /// Each accepted attempt: `node credential ask (history line N)`.
    pub accepted: Vec<String>,
}

/// Judges the impostor events of `events`; None when there are none.
pub fn check(events: &[Event]) -> Option<AccessVerdict> {
    let attempts: Vec<&Event> = events
        .iter()
        .filter(|e| e.process == Process::Nemesis && e.f == IMPOSTOR_EVENT)
        .collect();
    if attempts.is_empty() {
        return None;
    }
    let mut refused = 0;
    let mut no_answer = 0;
    let mut accepted = Vec::new();
    let mut malformed = Vec::new();
    for event in &attempts {
        let field = |name: &str| event.value.get(name).and_then(|v| v.as_str());
        let line = event.index + 1;
        match field("outcome") {
            Some("refused") => refused += 1,
            Some("no-answer") => no_answer += 1,
            Some("accepted") => {
                let claims = field("claims")
                    .map(|c| format!(" claiming {c}"))
                    .unwrap_or_default();
                let answer = field("answer")
                    .map(|a| format!(": {a}"))
                    .unwrap_or_default();
                accepted.push(format!(
                    "{} let in credential {} asking {}{claims}{answer} (history line {line})",
                    field("node").unwrap_or("?"),
                    field("credential").unwrap_or("?"),
                    field("ask").unwrap_or("?"),
                ));
            }
            other => malformed.push(format!(
                "history line {line}: outcome {}",
                other.map_or("missing".to_string(), |o| format!("{o:?}"))
            )),
        }
    }
    let total = attempts.len();
    let (verdict, summary) = if !accepted.is_empty() {
        (
            VerdictKind::Invalid,
            format!(
                "{} of {total} impostor attempts accepted: {}",
                accepted.len(),
                named(&accepted)
            ),
        )
    } else if !malformed.is_empty() {
        (
            VerdictKind::Unknown,
            format!("malformed impostor events: {}", malformed.join("; ")),
        )
    } else if refused == 0 {
        (
            VerdictKind::Unknown,
            format!("no node answered any of {total} impostor attempts: nothing was shown"),
        )
    } else {
        (
            VerdictKind::Valid,
            format!(
                "{refused} of {total} impostor attempts refused, none accepted ({no_answer} without an answer)"
            ),
        )
    };
    Some(AccessVerdict {
        verdict,
        summary,
        attempts: total,
        refused,
        no_answer,
        accepted,
    })
}

/// The first [`NAMED`] accepted attempts, and how many more (the detail
/// holds them all).
fn named(accepted: &[String]) -> String {
    let mut text = accepted
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if accepted.len() > NAMED {
        text.push_str(&format!("; and {} more", accepted.len() - NAMED));
    }
    text
}

/// How many accepted attempts a summary names.
const NAMED: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;
    use serde_json::json;

    fn attempt(index: u64, outcome: &str) -> Event {
        Event {
            index,
            time: 0,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: IMPOSTOR_EVENT.into(),
            key: None,
            value: json!({
                "node": "n2",
                "credential": "client",
                "ask": "change-membership",
                "outcome": outcome,
            }),
            node: None,
            error: None,
        }
    }

    #[test]
    fn a_run_without_the_impostor_has_no_access_verdict() {
        let mut other = attempt(0, "accepted");
        other.f = "start-partition".into();
        assert_eq!(check(&[other]), None);
    }

    #[test]
    fn every_attempt_refused_is_valid_with_the_counts() {
        let v = check(&[
            attempt(0, "refused"),
            attempt(1, "refused"),
            attempt(2, "no-answer"),
        ])
        .expect("judged");
        assert_eq!(v.verdict, VerdictKind::Valid, "{}", v.summary);
        assert_eq!((v.attempts, v.refused, v.no_answer), (3, 2, 1));
        assert!(v.summary.contains("2 of 3"), "{}", v.summary);
    }

    #[test]
    fn one_accepted_attempt_is_invalid_and_named() {
        let v = check(&[attempt(0, "refused"), attempt(6, "accepted")]).expect("judged");
        assert_eq!(v.verdict, VerdictKind::Invalid, "{}", v.summary);
        assert_eq!(
            v.accepted,
            ["n2 let in credential client asking change-membership (history line 7)"]
        );
    }

    #[test]
    fn the_summary_names_a_few_and_the_detail_all() {
        let events: Vec<Event> = (0..6).map(|i| attempt(i, "accepted")).collect();
        let v = check(&events).expect("judged");
        assert_eq!(v.accepted.len(), 6);
        assert!(v.summary.ends_with("; and 2 more"), "{}", v.summary);
    }

    #[test]
    fn no_refusal_at_all_shows_nothing() {
        let v = check(&[attempt(0, "no-answer")]).expect("judged");
        assert_eq!(v.verdict, VerdictKind::Unknown, "{}", v.summary);
    }

    #[test]
    fn a_malformed_outcome_is_unknown_and_named() {
        let v = check(&[attempt(0, "refused"), attempt(4, "maybe")]).expect("judged");
        assert_eq!(v.verdict, VerdictKind::Unknown, "{}", v.summary);
        assert!(v.summary.contains("line 5"), "{}", v.summary);
    }
}

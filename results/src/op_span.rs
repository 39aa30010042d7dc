//! Client operations as spans of time, for histograms, plots and timelines.
//!
//! The pairing is lenient on purpose: a report must draw whatever history a
//! run left, even one the checker rejects. An invoke pairs with the next
//! completion of the same process; a second invoke while one is open closes
//! the first as unknown with no end; a completion with no open invoke is
//! skipped. Spans come out in invoke order.

use faultline_checker::history::{Event, EventType, Process};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How an operation ended, as drawn and counted. Ordered ok < fail < info.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpOutcome {
    Ok,
    Fail,
    Info,
}

impl OpOutcome {
    pub const ALL: [OpOutcome; 3] = [OpOutcome::Ok, OpOutcome::Fail, OpOutcome::Info];

    pub fn as_str(self) -> &'static str {
        match self {
            OpOutcome::Ok => "ok",
            OpOutcome::Fail => "fail",
            OpOutcome::Info => "info",
        }
    }

    pub fn parse(s: &str) -> Option<OpOutcome> {
        match s {
            "ok" => Some(OpOutcome::Ok),
            "fail" => Some(OpOutcome::Fail),
            "info" => Some(OpOutcome::Info),
            _ => None,
        }
    }
}

/// One client operation: from its invoke to its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct OpSpan {
    pub process: u64,
    pub f: String,
    /// Invoke time, nanoseconds since the test started.
    pub start_ns: u64,
    /// Completion time; `None` when the operation never completed.
    pub end_ns: Option<u64>,
    pub outcome: OpOutcome,
    /// The node the client talked to, if the history says.
    pub node: Option<String>,
}

impl OpSpan {
    /// Invoke to completion, when it completed.
    pub fn latency_ns(&self) -> Option<u64> {
        self.end_ns.map(|e| e.saturating_sub(self.start_ns))
    }
}

/// Pairs a history's client events into spans, in invoke order.
pub fn spans_of(events: &[Event]) -> Vec<OpSpan> {
    let mut spans: Vec<OpSpan> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    for e in events {
        let Process::Client(p) = e.process else {
            continue;
        };
        match e.kind {
            EventType::Invoke => {
                // A second invoke while one is open: the first never completed
                // and stays as it is (info, no end).
                open.insert(p, spans.len());
                spans.push(OpSpan {
                    process: p,
                    f: e.f.clone(),
                    start_ns: e.time,
                    end_ns: None,
                    outcome: OpOutcome::Info,
                    node: e.node.clone(),
                });
            }
            kind => {
                let Some(i) = open.remove(&p) else { continue };
                let span = &mut spans[i];
                span.end_ns = Some(e.time.max(span.start_ns));
                span.outcome = match kind {
                    EventType::Ok => OpOutcome::Ok,
                    EventType::Fail => OpOutcome::Fail,
                    _ => OpOutcome::Info,
                };
                if span.node.is_none() {
                    span.node = e.node.clone();
                }
            }
        }
    }
    spans
}

/// Time of the last event of a history (0 when empty), nanoseconds.
pub fn history_end_ns(events: &[Event]) -> u64 {
    events.iter().map(|e| e.time).max().unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use faultline_checker::history::Value;

    pub(crate) fn ev(time_ms: u64, p: Option<u64>, kind: EventType, f: &str) -> Event {
        Event {
            index: 0,
            time: time_ms * 1_000_000,
            process: p.map_or(Process::Nemesis, Process::Client),
            kind,
            f: f.into(),
            key: None,
            value: Value::Null,
            node: None,
            error: None,
        }
    }

    #[test]
    fn pairs_by_process_and_keeps_invoke_order() {
        use EventType::*;
        let h = vec![
            ev(0, Some(1), Invoke, "read"),
            ev(1, Some(2), Invoke, "write"),
            ev(2, None, Info, "start-kill"),
            ev(5, Some(2), Fail, "write"),
            ev(9, Some(1), Ok, "read"),
            ev(10, Some(3), Invoke, "cas"),
            ev(11, Some(4), Ok, "read"), // no invoke: skipped
            ev(12, Some(5), Invoke, "read"),
            ev(13, Some(5), Info, "read"),
        ];
        let s = spans_of(&h);
        assert_eq!(s.len(), 4);
        assert_eq!(
            (s[0].process, s[0].outcome, s[0].latency_ns()),
            (1, OpOutcome::Ok, Some(9_000_000))
        );
        assert_eq!(
            (s[1].process, s[1].outcome, s[1].latency_ns()),
            (2, OpOutcome::Fail, Some(4_000_000))
        );
        assert_eq!(
            (s[2].f.as_str(), s[2].outcome, s[2].end_ns),
            ("cas", OpOutcome::Info, None)
        );
        assert_eq!(
            (s[3].outcome, s[3].latency_ns()),
            (OpOutcome::Info, Some(1_000_000))
        );
        assert_eq!(history_end_ns(&h), 13_000_000);
    }
}

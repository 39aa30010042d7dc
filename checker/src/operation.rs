//! Operations: an invoke paired with its completion.
//!
//! [`Operations::from_events`] pairs every client invoke with the next
//! completion of the same process and enforces the history's rules: a
//! completion needs an outstanding invoke, a process never invokes twice
//! without completing, and a completion carries its invoke's `f`. Nemesis
//! events are skipped. An invoke that never completes becomes an `info`
//! operation (crashed: it may take effect at any time after its invoke, or
//! never). Real-time order uses the events' positions in the history, so
//! equal timestamps never reorder anything.

use crate::error::HistoryError;
use crate::history::{Event, EventType, Process, Value};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened; `output` holds what was observed.
    Ok,
    /// It definitely did not happen.
    Fail,
    /// Unknown: it may happen at any time after its invoke, or never.
    Info,
}

/// One client operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Operation {
    /// Position among the history's operations, from 0, in invoke order.
    pub id: usize,
    pub process: u64,
    pub f: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// The invoke's value (the argument).
    pub input: Value,
    /// The completion's value; `None` unless the outcome is `Ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    pub outcome: Outcome,
    /// Position of the invoke among all events of the history.
    pub invoke_pos: u64,
    /// Position of the completion; `None` for an operation that never
    /// completed or completed `info` (its completion is at +infinity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete_pos: Option<u64>,
    /// Event times (nanoseconds) of the invoke and the completion, for
    /// real-time checks (leases) and drawings.
    pub invoke_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete_time: Option<u64>,
    /// The `index` field of the invoke event, for messages.
    pub index: u64,
    /// The source line of the invoke (1-based), when known.
    pub line: usize,
}

impl Operation {
    /// True when the outcome is unknown (completed `info` or never).
    pub fn crashed(&self) -> bool {
        self.outcome == Outcome::Info
    }

    /// Did this operation certainly complete before `other` was invoked?
    pub fn precedes(&self, other: &Operation) -> bool {
        matches!(self.complete_pos, Some(c) if c < other.invoke_pos)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{} {}", self.process, self.f)?;
        if let Some(k) = &self.key {
            write!(f, " key={k}")?;
        }
        if !self.input.is_null() {
            write!(f, " {}", self.input)?;
        }
        match (&self.outcome, &self.output) {
            (Outcome::Ok, Some(v)) => write!(f, " -> ok {v}"),
            (Outcome::Ok, None) => write!(f, " -> ok"),
            (Outcome::Fail, _) => write!(f, " -> fail"),
            (Outcome::Info, _) => write!(f, " -> info (unknown)"),
        }
    }
}

/// The operations of a history, with where they came from.
#[derive(Clone, Debug, Default)]
pub struct Operations {
    pub ops: Vec<Operation>,
    /// Name of the source (a file name), for messages.
    pub source_name: String,
    /// Number of events, nemesis included: completions of crashed
    /// operations sit after this position.
    pub event_count: u64,
    /// Time of the last event, for drawings.
    pub end_time: u64,
}

impl Operations {
    /// Pairs invokes and completions. `lines[i]` is the source line of
    /// `events[i]` (pass an empty slice when unknown: event positions are
    /// used instead).
    pub fn from_events(
        source_name: &str,
        events: &[Event],
        lines: &[usize],
    ) -> Result<Operations, HistoryError> {
        let line_of = |i: usize| lines.get(i).copied().unwrap_or(i + 1);
        // process -> (op id, event position) of its outstanding invoke
        let mut outstanding: HashMap<u64, usize> = HashMap::new();
        let mut ops: Vec<Operation> = Vec::new();
        let mut end_time = 0;
        for (pos, ev) in events.iter().enumerate() {
            end_time = end_time.max(ev.time);
            let Process::Client(p) = ev.process else {
                continue;
            };
            match ev.kind {
                EventType::Invoke => {
                    if let Some(&id) = outstanding.get(&p) {
                        let o: &Operation = &ops[id];
                        return Err(HistoryError::DoubleInvoke {
                            source_name: source_name.to_string(),
                            line: line_of(pos),
                            process: p,
                            f: ev.f.clone(),
                            outstanding: o.f.clone(),
                            outstanding_line: o.line,
                        });
                    }
                    outstanding.insert(p, ops.len());
                    ops.push(Operation {
                        id: ops.len(),
                        process: p,
                        f: ev.f.clone(),
                        key: ev.key.clone(),
                        input: ev.value.clone(),
                        output: None,
                        outcome: Outcome::Info,
                        invoke_pos: pos as u64,
                        complete_pos: None,
                        invoke_time: ev.time,
                        complete_time: None,
                        index: ev.index,
                        line: line_of(pos),
                    });
                }
                kind => {
                    let Some(id) = outstanding.remove(&p) else {
                        return Err(HistoryError::CompletionWithoutInvoke {
                            source_name: source_name.to_string(),
                            line: line_of(pos),
                            process: p,
                            f: ev.f.clone(),
                            kind: kind.to_string(),
                        });
                    };
                    let op = &mut ops[id];
                    if op.f != ev.f {
                        return Err(HistoryError::MismatchedCompletion {
                            source_name: source_name.to_string(),
                            line: line_of(pos),
                            process: p,
                            got: ev.f.clone(),
                            invoked: op.f.clone(),
                            invoke_line: op.line,
                        });
                    }
                    if op.key.is_none() {
                        op.key = ev.key.clone();
                    }
                    match kind {
                        EventType::Ok => {
                            op.outcome = Outcome::Ok;
                            op.output = Some(ev.value.clone());
                            op.complete_pos = Some(pos as u64);
                            op.complete_time = Some(ev.time);
                        }
                        EventType::Fail => {
                            op.outcome = Outcome::Fail;
                            op.complete_pos = Some(pos as u64);
                            op.complete_time = Some(ev.time);
                        }
                        EventType::Info | EventType::Invoke => {
                            op.outcome = Outcome::Info;
                        }
                    }
                }
            }
        }
        if ops.is_empty() {
            return Err(HistoryError::Empty(source_name.to_string()));
        }
        Ok(Operations {
            ops,
            source_name: source_name.to_string(),
            event_count: events.len() as u64,
            end_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: u64, p: u64, kind: EventType, f: &str, v: Value) -> Event {
        Event {
            index: i,
            time: i * 10,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: None,
            value: v,
            node: None,
            error: None,
        }
    }

    #[test]
    fn pairs_invokes_with_completions_and_crashes_the_rest() {
        let evs = vec![
            ev(0, 1, EventType::Invoke, "write", 3.into()),
            ev(1, 2, EventType::Invoke, "read", Value::Null),
            ev(2, 1, EventType::Ok, "write", 3.into()),
            ev(3, 3, EventType::Invoke, "write", 4.into()),
            ev(4, 3, EventType::Fail, "write", 4.into()),
        ];
        let ops = Operations::from_events("h", &evs, &[]).expect("valid history");
        assert_eq!(ops.ops.len(), 3);
        assert_eq!(ops.ops[0].outcome, Outcome::Ok);
        assert_eq!(ops.ops[0].complete_pos, Some(2));
        assert_eq!(ops.ops[1].outcome, Outcome::Info, "never completed");
        assert_eq!(ops.ops[1].complete_pos, None);
        assert_eq!(ops.ops[2].outcome, Outcome::Fail);
        assert!(ops.ops[0].precedes(&ops.ops[2]));
        assert!(!ops.ops[1].precedes(&ops.ops[2]));
    }

    #[test]
    fn rejects_completion_without_invoke_and_double_invoke() {
        let evs = vec![ev(0, 1, EventType::Ok, "write", 3.into())];
        let e = Operations::from_events("h.jsonl", &evs, &[7]).unwrap_err();
        assert!(
            matches!(e, HistoryError::CompletionWithoutInvoke { line: 7, .. }),
            "{e}"
        );
        let evs = vec![
            ev(0, 1, EventType::Invoke, "write", 3.into()),
            ev(1, 1, EventType::Invoke, "read", Value::Null),
        ];
        let e = Operations::from_events("h.jsonl", &evs, &[]).unwrap_err();
        assert!(e.to_string().contains("h.jsonl:2"), "{e}");
        assert!(matches!(e, HistoryError::DoubleInvoke { .. }));
        let e = Operations::from_events("empty.log", &[], &[]).unwrap_err();
        assert_eq!(e, HistoryError::Empty("empty.log".into()));
    }
}

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
use crate::format::{read_events, Format};
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

/// A nemesis event: kept as a fault for reports and drawings, never
/// checked as a client operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fault {
    /// Position among all events of the history.
    pub pos: u64,
    pub time: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: String,
    pub value: Value,
    /// The source line (1-based), when known.
    pub line: usize,
}

/// The operations of a history, with where they came from.
#[derive(Clone, Debug, Default)]
pub struct Operations {
    pub ops: Vec<Operation>,
    /// The nemesis's events, in history order.
    pub faults: Vec<Fault>,
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
    /// used instead). No event at all is [`HistoryError::Empty`]; events but
    /// no client operation (only faults) is a history with nothing to check.
    pub fn from_events(
        source_name: &str,
        events: &[Event],
        lines: &[usize],
    ) -> Result<Operations, HistoryError> {
        let mut builder = OperationsBuilder::new(source_name);
        for (pos, ev) in events.iter().enumerate() {
            builder.push(ev.clone(), lines.get(pos).copied().unwrap_or(pos + 1))?;
        }
        builder.finish()
    }

    /// Reads a history from a stream (its format detected unless given)
    /// and pairs its operations as they come: the input is never held
    /// whole, nor its events. Returns the operations and the format read.
    pub fn read<R: std::io::Read>(
        source_name: &str,
        reader: R,
        format: Option<Format>,
    ) -> Result<(Operations, Format), HistoryError> {
        let mut builder = OperationsBuilder::new(source_name);
        let format = read_events(source_name, reader, format, |event, line| {
            builder.push(event, line)
        })?;
        Ok((builder.finish()?, format))
    }

    /// Operations whose outcome is not `fail`: those that may have happened.
    pub fn attempted(&self) -> impl Iterator<Item = &Operation> {
        self.ops.iter().filter(|o| o.outcome != Outcome::Fail)
    }
}

/// Pairs events into operations as they come (see [`Operations`]).
pub struct OperationsBuilder {
    source_name: String,
    /// Process → its outstanding invoke (an index into `ops`).
    outstanding: HashMap<u64, usize>,
    ops: Vec<Operation>,
    faults: Vec<Fault>,
    events: u64,
    end_time: u64,
}

impl OperationsBuilder {
    pub fn new(source_name: &str) -> OperationsBuilder {
        OperationsBuilder {
            source_name: source_name.to_string(),
            outstanding: HashMap::new(),
            ops: Vec::new(),
            faults: Vec::new(),
            events: 0,
            end_time: 0,
        }
    }

    /// Takes the next event of the history, from source line `line`.
    pub fn push(&mut self, ev: Event, line: usize) -> Result<(), HistoryError> {
        let pos = self.events;
        self.events += 1;
        self.end_time = self.end_time.max(ev.time);
        match (ev.process, ev.kind) {
            (Process::Nemesis, _) => {
                self.faults.push(Fault {
                    pos,
                    time: ev.time,
                    kind: ev.kind,
                    f: ev.f,
                    value: ev.value,
                    line,
                });
                Ok(())
            }
            (Process::Client(p), EventType::Invoke) => self.invoke(p, pos, ev, line),
            (Process::Client(p), _) => self.complete(p, pos, ev, line),
        }
    }

    fn invoke(&mut self, p: u64, pos: u64, ev: Event, line: usize) -> Result<(), HistoryError> {
        let id = self.ops.len();
        if let Some(previous) = self.outstanding.insert(p, id) {
            let o = &self.ops[previous];
            return Err(HistoryError::DoubleInvoke {
                source_name: self.source_name.clone(),
                line,
                process: p,
                f: ev.f,
                outstanding: o.f.clone(),
                outstanding_line: o.line,
            });
        }
        self.ops.push(Operation {
            id,
            process: p,
            f: ev.f,
            key: ev.key,
            input: ev.value,
            output: None,
            outcome: Outcome::Info,
            invoke_pos: pos,
            complete_pos: None,
            invoke_time: ev.time,
            complete_time: None,
            index: ev.index,
            line,
        });
        Ok(())
    }

    fn complete(&mut self, p: u64, pos: u64, ev: Event, line: usize) -> Result<(), HistoryError> {
        let Some(id) = self.outstanding.remove(&p) else {
            return Err(HistoryError::CompletionWithoutInvoke {
                source_name: self.source_name.clone(),
                line,
                process: p,
                f: ev.f,
                kind: ev.kind.to_string(),
            });
        };
        let op = &mut self.ops[id];
        if op.f != ev.f {
            return Err(HistoryError::MismatchedCompletion {
                source_name: self.source_name.clone(),
                line,
                process: p,
                got: ev.f,
                invoked: op.f.clone(),
                invoke_line: op.line,
            });
        }
        if op.key.is_none() {
            op.key = ev.key;
        }
        match ev.kind {
            EventType::Ok => {
                op.outcome = Outcome::Ok;
                op.output = Some(ev.value);
                op.complete_pos = Some(pos);
                op.complete_time = Some(ev.time);
            }
            EventType::Fail => {
                op.outcome = Outcome::Fail;
                op.complete_pos = Some(pos);
                op.complete_time = Some(ev.time);
            }
            EventType::Info | EventType::Invoke => op.outcome = Outcome::Info,
        }
        Ok(())
    }

    /// The operations. Invokes left without a completion stay `info`.
    pub fn finish(self) -> Result<Operations, HistoryError> {
        if self.events == 0 {
            return Err(HistoryError::Empty(self.source_name));
        }
        let mut ops = Operations {
            ops: self.ops,
            faults: self.faults,
            source_name: self.source_name,
            event_count: self.events,
            end_time: self.end_time,
        };
        split_independent_tuples(&mut ops.ops);
        Ok(ops)
    }
}

/// Jepsen's independent histories carry `[key value]` tuples as values.
/// When no operation has a key, every input and ok output is a pair whose
/// key is a scalar (not a txn's micro-op, which is a list), and some
/// operation other than a cas invokes a pair (a plain register's read
/// invokes `nil`, a cas register's cas `[old new]`), the pairs are split
/// into key and value.
fn split_independent_tuples(ops: &mut [Operation]) {
    let pair = |v: &Value| {
        v.as_array()
            .is_some_and(|a| a.len() == 2 && !a[0].is_array() && !a[0].is_object())
    };
    let all_pairs = ops
        .iter()
        .all(|o| o.key.is_none() && pair(&o.input) && o.output.as_ref().is_none_or(pair));
    let keyed_read = ops.iter().any(|o| o.f != "cas" && pair(&o.input));
    if ops.is_empty() || !all_pairs || !keyed_read {
        return;
    }
    let split = |v: &mut Value| -> Value {
        let Value::Array(a) = std::mem::take(v) else {
            unreachable!("checked to be a pair above");
        };
        let [k, x] = <[Value; 2]>::try_from(a).expect("checked to be a pair above");
        *v = x;
        k
    };
    for o in ops.iter_mut() {
        o.key = Some(split(&mut o.input));
        if let Some(out) = &mut o.output {
            split(out);
        }
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

    #[test]
    fn nemesis_events_are_kept_as_faults_and_a_history_of_only_faults_has_no_operation() {
        let mut fault = ev(
            0,
            0,
            EventType::Info,
            "start-partition",
            Value::from("majority"),
        );
        fault.process = Process::Nemesis;
        let evs = vec![
            fault.clone(),
            ev(1, 1, EventType::Invoke, "read", Value::Null),
        ];
        let ops = Operations::from_events("h", &evs, &[4, 5]).expect("valid");
        assert_eq!(ops.ops.len(), 1);
        assert_eq!(ops.ops[0].invoke_pos, 1);
        assert_eq!(ops.faults.len(), 1);
        assert_eq!(
            (ops.faults[0].f.as_str(), ops.faults[0].line),
            ("start-partition", 4)
        );
        let only = Operations::from_events("h", &[fault], &[]).expect("a history of faults");
        assert!(only.ops.is_empty());
        assert_eq!(only.faults.len(), 1);
    }

    fn edn_ops(text: &str) -> Operations {
        Operations::read("h.edn", text.as_bytes(), None)
            .expect("valid")
            .0
    }

    #[test]
    fn independent_tuples_become_key_and_value() {
        let text = "[{:type :invoke, :f :read, :value [3 nil], :process 0, :time 10, :index 0}\n \
                     {:type :ok, :f :read, :value [3 5], :process 0, :time 20, :index 1}\n \
                     {:type :info, :f :start, :value nil, :process :nemesis, :time 30, :index 2}]";
        let ops = edn_ops(text);
        assert_eq!(ops.ops[0].key, Some(Value::from(3)));
        assert_eq!(ops.ops[0].input, Value::Null);
        assert_eq!(ops.ops[0].output, Some(Value::from(5)));
        assert_eq!(ops.ops[0].complete_time, Some(20));
        assert_eq!(ops.ops[0].line, 1);
        assert_eq!(ops.faults.len(), 1);
    }

    #[test]
    fn a_txn_of_two_micro_ops_is_not_taken_for_a_tuple() {
        let txn = "[[:read :x nil] [:write :y 1]]";
        let ops = edn_ops(&format!("{{:process 0, :type :invoke, :f :txn, :value {txn}}}\n{{:process 0, :type :ok, :f :txn, :value {txn}}}"));
        assert_eq!(ops.ops[0].key, None);
        let keyed = edn_ops(&format!(
            "{{:process 0, :type :invoke, :f :txn, :value [7 {txn}]}}"
        ));
        assert_eq!(
            keyed.ops[0].key,
            Some(Value::from(7)),
            "an independent txn is split"
        );
    }

    #[test]
    fn a_plain_cas_register_is_not_taken_for_tuples() {
        let ops = edn_ops("{:process 0, :type :invoke, :f :cas, :value [1 2]}\n{:process 0, :type :ok, :f :cas, :value [1 2]}");
        assert_eq!(ops.ops[0].key, None);
        assert_eq!(ops.ops[0].input, serde_json::json!([1, 2]));
    }
}

//! Faults as intervals of time: a nemesis `start-<fault>` paired with its
//! `stop-<fault>`, for the bands drawn on plots and timelines.
//!
//! A start with no stop lasts to the end of the history (and says so); a
//! stop with no start is ignored. Several faults of different kinds may
//! overlap; a second start of the same kind before its stop opens a second
//! interval, and the stop closes the oldest open one.

use faultline_checker::history::{Event, Process, Value};
use std::collections::{HashMap, VecDeque};

/// One fault, from its start to its stop.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultInterval {
    /// The fault's kind: `partition`, `kill`, `pause`, `clock`, …
    pub fault: String,
    pub start_ns: u64,
    /// The stop's time, or the end of the history if it was never stopped.
    pub end_ns: u64,
    /// False when no stop was recorded.
    pub healed: bool,
    /// A short description of the start's value (shape, nodes, …).
    pub detail: String,
    /// Set when the nemesis recorded that starting it failed.
    pub error: Option<String>,
}

impl FaultInterval {
    /// The band's label: the kind and, if short, the detail.
    pub fn label(&self) -> String {
        if self.detail.is_empty() {
            self.fault.clone()
        } else {
            format!("{} {}", self.fault, self.detail)
        }
    }
}

/// Short text for a nemesis value: the interesting fields, not the mechanism.
fn describe(value: &Value) -> String {
    let Value::Object(map) = value else {
        return match value {
            Value::Null => String::new(),
            v => v.to_string(),
        };
    };
    let mut parts = Vec::new();
    for key in [
        "action",
        "node",
        "shape",
        "nodes",
        "mode",
        "offsets_ms",
        "rates",
        "probability",
        "delay_ms",
    ] {
        let Some(v) = map.get(key) else { continue };
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        parts.push(text);
    }
    let text = parts.join(" ");
    if text.chars().count() > 48 {
        let cut: String = text.chars().take(47).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// The fault intervals of a history, ordered by start. `end_ns` closes the
/// faults that were never stopped.
pub fn faults_of(events: &[Event], end_ns: u64) -> Vec<FaultInterval> {
    let mut out: Vec<FaultInterval> = Vec::new();
    let mut open: HashMap<String, VecDeque<usize>> = HashMap::new();
    for e in events {
        if e.process != Process::Nemesis {
            continue;
        }
        if let Some(kind) = e.f.strip_prefix("start-") {
            open.entry(kind.to_string())
                .or_default()
                .push_back(out.len());
            out.push(FaultInterval {
                fault: kind.to_string(),
                start_ns: e.time,
                end_ns: end_ns.max(e.time),
                healed: false,
                detail: describe(&e.value),
                error: e.error.clone(),
            });
        } else if let Some(kind) = e.f.strip_prefix("stop-") {
            if let Some(i) = open.get_mut(kind).and_then(VecDeque::pop_front) {
                out[i].end_ns = e.time.max(out[i].start_ns);
                out[i].healed = true;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op_span::tests::ev;
    use faultline_checker::history::EventType;
    use serde_json::json;

    #[test]
    fn pairs_starts_with_stops_and_leaves_unhealed_faults_open_to_the_end() {
        let mut start = ev(10, None, EventType::Info, "start-partition");
        start.value = json!({"shape": "majorities-ring", "mechanism": "iptables"});
        let mut kill = ev(12, None, EventType::Info, "start-kill");
        kill.value = json!({"nodes": ["n1", "n3"], "mode": "majority", "mechanism": "signal"});
        let h = vec![
            ev(0, Some(1), EventType::Invoke, "read"),
            start,
            kill,
            ev(20, None, EventType::Info, "stop-partition"),
            ev(25, None, EventType::Info, "stop-pause"), // never started: ignored
        ];
        let f = faults_of(&h, 99_000_000);
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].fault.as_str(), f[0].start_ns, f[0].end_ns, f[0].healed),
            ("partition", 10_000_000, 20_000_000, true)
        );
        assert_eq!(f[0].label(), "partition majorities-ring");
        assert_eq!((f[1].end_ns, f[1].healed), (99_000_000, false));
        assert_eq!(f[1].detail, "n1,n3 majority");
    }
}

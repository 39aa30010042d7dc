//! The clients' history in the simulator, in the shape of
//! `faultline_checker::history::Event` (docs/history-format.md) but owned
//! here, since the checker is only a dev-dependency: tests convert.

use serde_json::Value;

use crate::consensus::NodeId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimEventKind {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq)]
pub struct SimEvent {
    pub index: u64,
    /// Virtual nanoseconds since the start.
    pub time_ns: u64,
    pub process: u64,
    pub kind: SimEventKind,
    /// `read`, `write` or `cas`; `acquire`, `renew`, `release` or
    /// `fenced-write` (lock clients).
    pub f: &'static str,
    pub key: u64,
    /// As in the `cas-register` model: write v → v; cas → [from, to];
    /// read → null on invoke, the value (or null) on ok. Lock ops as the
    /// harness's lock workload records them ([`super::clients::OpKind`]).
    pub value: Value,
    pub node: Option<NodeId>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub events: Vec<SimEvent>,
}

impl History {
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        time_ns: u64,
        process: u64,
        kind: SimEventKind,
        f: &'static str,
        key: u64,
        value: Value,
        node: Option<NodeId>,
        error: Option<String>,
    ) {
        let index = self.events.len() as u64;
        self.events.push(SimEvent {
            index,
            time_ns,
            process,
            kind,
            f,
            key,
            value,
            node,
            error,
        });
    }

    pub fn count(&self, kind: SimEventKind) -> usize {
        self.events.iter().filter(|e| e.kind == kind).count()
    }

    /// One JSON line per event, in docs/history-format.md's format.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            let kind = match e.kind {
                SimEventKind::Invoke => "invoke",
                SimEventKind::Ok => "ok",
                SimEventKind::Fail => "fail",
                SimEventKind::Info => "info",
            };
            let mut obj = serde_json::json!({
                "index": e.index, "time": e.time_ns, "process": e.process, "type": kind,
                "f": e.f, "key": e.key, "value": e.value,
            });
            if let Some(n) = e.node {
                obj["node"] = Value::from(n.to_string());
            }
            if let Some(err) = &e.error {
                obj["error"] = Value::from(err.clone());
            }
            out.push_str(&obj.to_string());
            out.push('\n');
        }
        out
    }
}

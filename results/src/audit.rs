//! The nodes' audit logs as history events (docs/history-format.md,
//! "Audit events"): the shapes the harness writes and the report reads.
//!
//! After the nodes stop, the harness appends, per node whose audit log
//! reached the store (`nodes/<node>/audit.jsonl`), one `audit-log` event
//! (counts over the whole file) and then one `audit` event per entry it
//! keeps: the first [`MAX_OK_EVENTS_PER_NODE`] entries whose outcome is
//! `ok` and the first [`MAX_OTHER_EVENTS_PER_NODE`] others (refusals,
//! errors, unanswered), in the file's order. Both are `nemesis` events of
//! type `info`: no checker judges them, and reports skip them as faults.
//! [`of_history`] gathers them back per node for the report's Audit
//! section.

use faultline_checker::history::{Event, Process};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `f` of one audit entry's event.
pub const AUDIT_F: &str = "audit";
/// `f` of a node's audit log summary event.
pub const AUDIT_LOG_F: &str = "audit-log";
/// The audit log's name in a node's folder of the store.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// `ok` entries of one node kept as events, at most (the first ones).
pub const MAX_OK_EVENTS_PER_NODE: u64 = 100;
/// Entries of one node whose outcome is not `ok` kept as events, at most.
pub const MAX_OTHER_EVENTS_PER_NODE: u64 = 100;

/// The value of an `audit` event: one line of a node's audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The node whose log it is (`n1`).
    pub node: String,
    /// When the node recorded it: Unix milliseconds of its host's clock.
    pub time_ms: u64,
    /// `time_ms` on the history's time base (ns since the history
    /// started; negative: before it), assuming the node's host clock
    /// agrees with the controller's wall clock (see the docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ns: Option<i64>,
    pub role: String,
    /// The remote address of the connection.
    pub peer: String,
    /// The op's wire name, or `connect` (refused before any request).
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_bytes: Option<u64>,
    /// `ok`, or the error code.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AuditRecord {
    /// Whether the entry is a success (else a refusal, an error or unanswered).
    pub fn is_ok(&self) -> bool {
        self.outcome == "ok"
    }
}

/// Where a node's audit file was cut on its way into the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCut {
    /// Bytes of the file read (whole lines).
    pub kept_bytes: u64,
    /// The file's size.
    pub file_bytes: u64,
}

/// The value of an `audit-log` event: one node's whole audit file counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditLogSummary {
    pub node: String,
    /// The file, relative to the run's folder.
    pub file: String,
    /// Entries in the file (every one counted below).
    pub entries: u64,
    /// Entries recorded as `audit` events.
    pub recorded: u64,
    /// Entries over the caps: counted, not recorded.
    pub omitted: u64,
    /// Lines that are not an audit entry (skipped).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unreadable: u64,
    /// Entries the node itself lost (its `{"dropped":N}` lines).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
    /// Set when only the file's first part was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<AuditCut>,
    pub by_outcome: BTreeMap<String, u64>,
    pub by_role: BTreeMap<String, u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One node's audit events, as a history holds them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeAudit {
    pub node: String,
    /// Its `audit-log` event (None: the history has entries but no summary).
    pub summary: Option<AuditLogSummary>,
    /// Its `audit` events, in history order.
    pub entries: Vec<AuditRecord>,
}

impl NodeAudit {
    /// Entries by outcome: the summary's (the whole file), else the recorded ones.
    pub fn by_outcome(&self) -> BTreeMap<String, u64> {
        match &self.summary {
            Some(s) => s.by_outcome.clone(),
            None => count(self.entries.iter().map(|e| e.outcome.clone())),
        }
    }

    /// Entries by role: the summary's (the whole file), else the recorded ones.
    pub fn by_role(&self) -> BTreeMap<String, u64> {
        match &self.summary {
            Some(s) => s.by_role.clone(),
            None => count(self.entries.iter().map(|e| e.role.clone())),
        }
    }

    /// Entries in the node's file that are not in the history.
    pub fn omitted(&self) -> u64 {
        self.summary.as_ref().map_or(0, |s| s.omitted)
    }
}

fn count(keys: impl Iterator<Item = String>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for k in keys {
        *out.entry(k).or_insert(0) += 1;
    }
    out
}

/// Whether `e` is an audit event (`audit` or `audit-log`).
pub fn is_audit_event(e: &Event) -> bool {
    e.process == Process::Nemesis && (e.f == AUDIT_F || e.f == AUDIT_LOG_F)
}

/// The audit events of a history, per node (sorted by name). An event
/// whose value is not of the documented shape is skipped.
pub fn of_history(events: &[Event]) -> Vec<NodeAudit> {
    fn slot<'a>(nodes: &'a mut BTreeMap<String, NodeAudit>, name: &str) -> &'a mut NodeAudit {
        nodes.entry(name.to_string()).or_insert_with(|| NodeAudit {
            node: name.to_string(),
            ..NodeAudit::default()
        })
    }
    let mut nodes: BTreeMap<String, NodeAudit> = BTreeMap::new();
    for e in events.iter().filter(|e| is_audit_event(e)) {
        if e.f == AUDIT_LOG_F {
            if let Ok(s) = AuditLogSummary::deserialize(&e.value) {
                let name = s.node.clone();
                slot(&mut nodes, &name).summary = Some(s);
            }
        } else if let Ok(r) = AuditRecord::deserialize(&e.value) {
            let name = r.node.clone();
            slot(&mut nodes, &name).entries.push(r);
        }
    }
    let mut out: Vec<NodeAudit> = nodes.into_values().collect();
    out.sort_by_key(|n| {
        let digits = n.node.trim_start_matches(|c: char| !c.is_ascii_digit());
        (digits.parse::<u64>().unwrap_or(u64::MAX), n.node.clone())
    });
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use faultline_checker::history::EventType;

    pub(crate) fn record(node: &str, op: &str, role: &str, outcome: &str) -> AuditRecord {
        AuditRecord {
            node: node.into(),
            time_ms: 1_700_000_000_000,
            at_ns: Some(5_000_000),
            role: role.into(),
            peer: "127.0.0.250:40000".into(),
            op: op.into(),
            args: None,
            args_bytes: None,
            outcome: outcome.into(),
            reason: (outcome != "ok").then(|| "no token".to_string()),
        }
    }

    pub(crate) fn event(f: &str, value: serde_json::Value) -> Event {
        Event {
            index: 0,
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
    fn gathers_each_nodes_events_and_prefers_the_summarys_counts() {
        let summary = AuditLogSummary {
            node: "n2".into(),
            file: "nodes/n2/audit.jsonl".into(),
            entries: 500,
            recorded: 2,
            omitted: 498,
            by_outcome: [("ok".to_string(), 499), ("unauthorized".to_string(), 1)].into(),
            by_role: [("admin".to_string(), 499), ("none".to_string(), 1)].into(),
            ..AuditLogSummary::default()
        };
        let events = vec![
            event(
                AUDIT_F,
                serde_json::to_value(record("n10", "status", "admin", "ok")).expect("serializes"),
            ),
            event(
                AUDIT_LOG_F,
                serde_json::to_value(&summary).expect("serializes"),
            ),
            event(
                AUDIT_F,
                serde_json::to_value(record("n2", "status", "admin", "ok")).expect("serializes"),
            ),
            event(
                AUDIT_F,
                serde_json::to_value(record("n2", "read", "none", "unauthorized"))
                    .expect("serializes"),
            ),
            // Not of the shape: skipped, never an error.
            event(AUDIT_F, serde_json::json!({"node": 3})),
            event("start-partition", serde_json::json!({})),
        ];
        let got = of_history(&events);
        assert_eq!(
            got.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(),
            ["n2", "n10"]
        );
        assert_eq!(got[0].entries.len(), 2);
        assert_eq!(got[0].by_outcome()["ok"], 499, "the whole file's counts");
        assert_eq!(got[0].omitted(), 498);
        assert_eq!(got[1].summary, None);
        assert_eq!(got[1].by_role()["admin"], 1, "counted from its entries");
    }
}

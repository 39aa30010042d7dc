//! `mutex`: Jepsen's linearizable mutex check, for locks whose holder keeps
//! its lease alive for as long as it believes it holds the lock (a
//! session: etcd's Lock on a kept-alive lease). A lock history says so with
//! `"keepalive": true` in its acquires' values.
//!
//! Each lock key's `acquire` and `release` operations must linearize against
//! the `mutex` model (acquire needs it free, release needs it held): a
//! client's acquire granted while another client still held the lock, by
//! that client's own account, is invalid — what Jepsen found in etcd 3.4.3
//! under pauses and partitions (jepsen.io/analyses/etcd-3.4.3).
//!
//! A holder whose process crashed (an operation of it completed `info`, so
//! it issues nothing again) never says when its holding ended: the check
//! gives it a `release` of unknown outcome invoked at that operation's
//! invoke, which may take effect at any time after, or never. A lease lock
//! without keepalive (faultline's node: holders may be slow on purpose) is
//! judged by `fencing` and `mutual-exclusion` instead, never by this.

use crate::error::CheckError;
use crate::linearizable::check_linearizable;
use crate::model::{field, ModelKind};
use crate::operation::{Operation, Operations, Outcome};
use crate::verdict::CheckerResult;
use crate::CheckOptions;
use std::collections::BTreeMap;

/// True when the history's acquires say their holders keep the lease alive.
pub fn applies(ops: &[Operation]) -> bool {
    ops.iter().any(|o| {
        o.f == "acquire" && field(&o.input, "keepalive").and_then(|v| v.as_bool()) == Some(true)
    })
}

/// The acquires and releases of every lock, with a crashed holder's
/// unknown release added (see the module docs), in invoke order.
pub fn mutex_operations(ops: &Operations) -> Operations {
    let mut by_process: BTreeMap<u64, Vec<&Operation>> = BTreeMap::new();
    for op in &ops.ops {
        by_process.entry(op.process).or_default().push(op);
    }
    let mut out: Vec<Operation> = Vec::new();
    for process_ops in by_process.values() {
        // The lock key of the holding this process believes in, if any.
        let mut holding: Option<Option<crate::history::Value>> = None;
        for op in process_ops {
            match (op.f.as_str(), op.outcome) {
                ("acquire", Outcome::Ok) => holding = Some(op.key.clone()),
                ("release", _) => holding = None,
                _ => {}
            }
            if matches!(op.f.as_str(), "acquire" | "release") {
                out.push((*op).clone());
            }
            if op.crashed() && op.f != "release" {
                if let Some(key) = holding.take() {
                    out.push(Operation {
                        f: "release".into(),
                        key,
                        input: crate::history::Value::Null,
                        output: None,
                        outcome: Outcome::Info,
                        complete_pos: None,
                        complete_time: None,
                        ..(*op).clone()
                    });
                }
            }
        }
    }
    out.sort_by_key(|o| (o.invoke_pos, o.f == "release"));
    for (i, op) in out.iter_mut().enumerate() {
        op.id = i;
    }
    Operations {
        ops: out,
        faults: Vec::new(),
        source_name: ops.source_name.clone(),
        event_count: ops.event_count,
        end_time: ops.end_time,
    }
}

/// Runs the check; see the module docs.
pub fn check(ops: &Operations, opts: &CheckOptions) -> Result<CheckerResult, CheckError> {
    let projected = mutex_operations(ops);
    let synthetic = projected
        .ops
        .iter()
        .filter(|o| o.f == "release" && o.outcome == Outcome::Info && o.input.is_null())
        .count();
    let r = check_linearizable(&projected, ModelKind::Mutex, opts)?;
    Ok(CheckerResult {
        name: "mutex".into(),
        verdict: r.verdict,
        summary: format!(
            "acquires and releases linearizable as a mutex: {} operations on {} lock{} ({} crashed holders given an unknown release)",
            r.ops,
            r.parts,
            if r.parts == 1 { "" } else { "s" },
            synthetic
        ),
        details: serde_json::json!({
            "model": "mutex",
            "ops": r.ops,
            "locks": r.parts,
            "crashed_holders": synthetic,
            "steps": r.stats.steps,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, Process};
    use crate::verdict::VerdictKind;
    use serde_json::json;

    fn ev(p: u64, kind: EventType, f: &str, value: serde_json::Value) -> Event {
        Event {
            index: 0,
            time: 0,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: Some(json!("lock")),
            value,
            node: None,
            error: None,
        }
    }

    fn verdict(events: Vec<Event>) -> VerdictKind {
        let mut events = events;
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
            e.time = i as u64 * 1000;
        }
        let ops = Operations::from_events("h", &events, &[]).expect("a history");
        assert!(applies(&ops.ops));
        check(&ops, &CheckOptions::default())
            .expect("checks")
            .verdict
            .kind()
    }

    fn acq() -> serde_json::Value {
        json!({"owner": "p", "ttl_ms": 2000, "keepalive": true})
    }

    #[test]
    fn a_second_holder_before_the_first_released_is_invalid() {
        use EventType::*;
        let h = vec![
            ev(0, Invoke, "acquire", acq()),
            ev(0, Ok, "acquire", acq()),
            ev(1, Invoke, "acquire", acq()),
            ev(1, Ok, "acquire", acq()),
            ev(0, Invoke, "release", json!({})),
            ev(0, Ok, "release", json!({})),
        ];
        assert_eq!(verdict(h), VerdictKind::Invalid);
    }

    #[test]
    fn release_then_acquire_is_valid() {
        use EventType::*;
        let h = vec![
            ev(0, Invoke, "acquire", acq()),
            ev(0, Ok, "acquire", acq()),
            ev(0, Invoke, "release", json!({})),
            ev(0, Ok, "release", json!({})),
            ev(1, Invoke, "acquire", acq()),
            ev(1, Ok, "acquire", acq()),
        ];
        assert_eq!(verdict(h), VerdictKind::Valid);
    }

    #[test]
    fn a_crashed_holder_may_have_released_at_any_time_after_its_crash() {
        use EventType::*;
        // Process 0 holds, then a fenced write of it times out: it is gone,
        // so its holding ended at some unknown point after that invoke.
        let h = vec![
            ev(0, Invoke, "acquire", acq()),
            ev(0, Ok, "acquire", acq()),
            ev(0, Invoke, "fenced-write", json!({"token": 1, "value": 1})),
            ev(0, Info, "fenced-write", json!({"token": 1, "value": 1})),
            ev(1, Invoke, "acquire", acq()),
            ev(1, Ok, "acquire", acq()),
        ];
        assert_eq!(verdict(h), VerdictKind::Valid);
        // Before its crash it still held: a grant then is a violation.
        let h = vec![
            ev(0, Invoke, "acquire", acq()),
            ev(0, Ok, "acquire", acq()),
            ev(1, Invoke, "acquire", acq()),
            ev(1, Ok, "acquire", acq()),
            ev(0, Invoke, "fenced-write", json!({"token": 1, "value": 1})),
            ev(0, Info, "fenced-write", json!({"token": 1, "value": 1})),
        ];
        assert_eq!(verdict(h), VerdictKind::Invalid);
    }
}

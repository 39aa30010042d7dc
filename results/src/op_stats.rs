//! Per-operation statistics of a history: counts by outcome, throughput and
//! latency percentiles from an HdrHistogram.
//!
//! Latency is the time from an operation's invoke to its completion (ok,
//! fail or info), as recorded in the history, so the numbers of a stored run
//! are the same whether computed live or by `faultline analyze`. An invoke
//! with no completion counts as `info` and has no latency.

use faultline_checker::history::{Event, EventType, Process};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// One row of the summary table: one operation (`f`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpStats {
    pub f: String,
    /// Invocations.
    pub count: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// `ok` completions per second of the history's span.
    pub ok_per_s: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
}

/// Statistics of a whole history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub ops: Vec<OpStats>,
    /// All client operations together.
    pub total: OpStats,
    /// From the first to the last event.
    pub duration_s: f64,
    /// Nemesis events (each fault's start and stop), audit events not
    /// counted (docs/history-format.md).
    pub nemesis_events: u64,
}

struct Acc {
    count: u64,
    ok: u64,
    fail: u64,
    info: u64,
    latency_us: Histogram<u64>,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            count: 0,
            ok: 0,
            fail: 0,
            info: 0,
            // 1 µs to 1 hour, 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    fn stats(&self, f: &str, duration_s: f64) -> OpStats {
        let h = &self.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let (p50, p95, p99, max) = if h.is_empty() {
            (0.0, 0.0, 0.0, 0.0)
        } else {
            (
                ms(h.value_at_quantile(0.50)),
                ms(h.value_at_quantile(0.95)),
                ms(h.value_at_quantile(0.99)),
                ms(h.max()),
            )
        };
        OpStats {
            f: f.to_string(),
            count: self.count,
            ok: self.ok,
            fail: self.fail,
            info: self.info,
            ok_per_s: if duration_s > 0.0 {
                self.ok as f64 / duration_s
            } else {
                0.0
            },
            latency_ms_p50: p50,
            latency_ms_p95: p95,
            latency_ms_p99: p99,
            latency_ms_max: max,
        }
    }

    fn complete(&mut self, kind: EventType, latency_ns: u64) {
        match kind {
            EventType::Ok => self.ok += 1,
            EventType::Fail => self.fail += 1,
            EventType::Info => self.info += 1,
            EventType::Invoke => unreachable!("completions only"),
        }
        let us = (latency_ns / 1000).clamp(1, 3_600_000_000);
        self.latency_us
            .record(us)
            .expect("value clamped into the histogram's bounds");
    }
}

/// Summarizes a history. Operations are sorted by name.
pub fn summarize(events: &[Event]) -> Summary {
    let duration_s = match (events.first(), events.last()) {
        (Some(a), Some(b)) => b.time.saturating_sub(a.time) as f64 / 1e9,
        _ => 0.0,
    };
    let mut per_f: BTreeMap<String, Acc> = BTreeMap::new();
    let mut total = Acc::new();
    let mut open: HashMap<u64, (String, u64)> = HashMap::new();
    let mut nemesis_events = 0;
    for e in events {
        let p = match e.process {
            Process::Nemesis => {
                nemesis_events += u64::from(!crate::audit::is_audit_event(e));
                continue;
            }
            Process::Client(p) => p,
        };
        if e.kind == EventType::Invoke {
            if let Some((f, _)) = open.insert(p, (e.f.clone(), e.time)) {
                // A second invoke while one is open: the first never completed.
                per_f.get_mut(&f).expect("opened ops are counted").info += 1;
                total.info += 1;
            }
            per_f.entry(e.f.clone()).or_insert_with(Acc::new).count += 1;
            total.count += 1;
        } else if let Some((f, t0)) = open.remove(&p) {
            let latency = e.time.saturating_sub(t0);
            per_f
                .get_mut(&f)
                .expect("opened ops are counted")
                .complete(e.kind, latency);
            total.complete(e.kind, latency);
        }
    }
    for (f, _) in open.into_values() {
        per_f.get_mut(&f).expect("opened ops are counted").info += 1;
        total.info += 1;
    }
    Summary {
        ops: per_f.iter().map(|(f, a)| a.stats(f, duration_s)).collect(),
        total: total.stats("all", duration_s),
        duration_s,
        nemesis_events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op_span::tests::ev as e;

    #[test]
    fn counts_outcomes_and_latencies_per_op() {
        use EventType::*;
        let h = vec![
            e(0, Some(1), Invoke, "read"),
            e(0, Some(2), Invoke, "write"),
            e(10, Some(1), Ok, "read"),
            e(11, None, Info, "start-kill"),
            e(20, Some(1), Invoke, "read"),
            e(30, Some(2), Info, "write"),
            e(50, Some(1), Fail, "read"),
            e(60, Some(3), Invoke, "write"), // never completes
            e(1000, None, Info, "stop-kill"),
        ];
        let mut audit = e(1000, None, Info, crate::audit::AUDIT_F);
        audit.value = serde_json::json!({"node": "n1"});
        let with_audit: Vec<Event> = h.iter().cloned().chain([audit]).collect();
        assert_eq!(
            summarize(&with_audit),
            summarize(&h),
            "an audit event is no fault and no operation"
        );
        let s = summarize(&h);
        assert_eq!(s.nemesis_events, 2);
        assert!((s.duration_s - 1.0).abs() < 1e-9);
        let read = &s.ops[0];
        assert_eq!(
            (read.f.as_str(), read.count, read.ok, read.fail, read.info),
            ("read", 2, 1, 1, 0)
        );
        assert!((read.latency_ms_p50 - 10.0).abs() < 0.1, "{read:?}");
        assert!((read.latency_ms_max - 30.0).abs() < 0.1, "{read:?}");
        let write = &s.ops[1];
        assert_eq!(
            (write.count, write.ok, write.fail, write.info),
            (2, 0, 0, 2)
        );
        assert_eq!(s.total.count, 4);
        assert_eq!(s.total.ok + s.total.fail + s.total.info, 4);
        assert!((read.ok_per_s - 1.0).abs() < 1e-9);
    }
}

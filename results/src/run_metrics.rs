//! The numbers of one stored run that `compare`, `ls` and the report show:
//! per operation, completed count, throughput and latency percentiles.
//!
//! Latency percentiles are of `ok` operations (what a user waited for and
//! got); count is every completed operation; throughput is `ok` completions
//! per second of the history's span. They are read from the run's
//! `latency-total.hlog` when it exists, else computed from its history, so
//! runs stored before the report existed compare too.

use crate::fault_interval::{faults_of, FaultInterval};
use crate::histogram_log::{LatencyHistograms, OpKey, LATENCY_TOTAL_FILE};
use crate::op_span::{history_end_ns, spans_of, OpOutcome, OpSpan};
use crate::run_results::{RunResults, VerdictKind};
use crate::shard_ownership::ShardOwnership;
use crate::store::RunDir;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What can go wrong reading a run for a report, a comparison or a listing.
#[derive(Debug, thiserror::Error)]
pub enum RunReadError {
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error(transparent)]
    History(#[from] crate::HistoryReadError),
    #[error(transparent)]
    Log(#[from] crate::histogram_log::HistogramLogError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Plot(#[from] crate::plot::PlotError),
}

/// One row: an operation (or `all`), optionally one outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpMetrics {
    pub f: String,
    /// `None`: every outcome together (latencies of `ok` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OpOutcome>,
    /// Completed operations counted.
    pub count: u64,
    /// `ok` completions (or of this row's outcome) per second.
    pub throughput_per_s: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_p999: f64,
    pub latency_ms_max: f64,
}

impl OpMetrics {
    fn new(
        f: &str,
        outcome: Option<OpOutcome>,
        count: u64,
        per_s_count: u64,
        lat: &Histogram<u64>,
        duration_s: f64,
    ) -> OpMetrics {
        let ms = |q: f64| {
            if lat.is_empty() {
                0.0
            } else {
                lat.value_at_quantile(q) as f64 / 1000.0
            }
        };
        OpMetrics {
            f: f.to_string(),
            outcome,
            count,
            throughput_per_s: if duration_s > 0.0 {
                per_s_count as f64 / duration_s
            } else {
                0.0
            },
            latency_ms_p50: ms(0.5),
            latency_ms_p90: ms(0.9),
            latency_ms_p99: ms(0.99),
            latency_ms_p999: ms(0.999),
            latency_ms_max: if lat.is_empty() {
                0.0
            } else {
                lat.max() as f64 / 1000.0
            },
        }
    }

    /// The value of a metric by its name in `--max-regression`
    /// (`count`, `throughput`, `p50`, `p90`, `p99`, `p99.9`, `max`).
    pub fn metric(&self, name: &str) -> Option<f64> {
        Some(match name {
            "count" => self.count as f64,
            "throughput" => self.throughput_per_s,
            "p50" => self.latency_ms_p50,
            "p90" => self.latency_ms_p90,
            "p99" => self.latency_ms_p99,
            "p99.9" | "p999" => self.latency_ms_p999,
            "max" => self.latency_ms_max,
            _ => return None,
        })
    }
}

/// Per operation (all outcomes, ok latencies) and `all`, from histograms.
pub fn op_rows(h: &LatencyHistograms, duration_s: f64) -> (Vec<OpMetrics>, OpMetrics) {
    let row = |f: &str, keep: &dyn Fn(&OpKey) -> bool| {
        let count = h
            .totals
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(_, x)| x.len())
            .sum();
        let ok = h.merged_total(|k| keep(k) && k.outcome == OpOutcome::Ok);
        OpMetrics::new(f, None, count, ok.len(), &ok, duration_s)
    };
    let ops = h
        .ops()
        .iter()
        .map(|f| row(f, &|k: &OpKey| &k.f == f))
        .collect();
    (ops, row("all", &|_| true))
}

/// Per operation and outcome (the report's percentile table), then per
/// outcome over all operations.
pub fn outcome_rows(h: &LatencyHistograms, duration_s: f64) -> Vec<OpMetrics> {
    let mut rows: Vec<OpMetrics> = h
        .totals
        .iter()
        .map(|(k, x)| OpMetrics::new(&k.f, Some(k.outcome), x.len(), x.len(), x, duration_s))
        .collect();
    for o in OpOutcome::ALL {
        let m = h.merged_total(|k| k.outcome == o);
        if !m.is_empty() {
            rows.push(OpMetrics::new(
                "all",
                Some(o),
                m.len(),
                m.len(),
                &m,
                duration_s,
            ));
        }
    }
    rows
}

/// Everything drawn and counted from one run's history.
pub struct RunData {
    pub spans: Vec<OpSpan>,
    pub faults: Vec<FaultInterval>,
    pub histograms: LatencyHistograms,
    pub end_ns: u64,
    pub events: u64,
    pub truncated: bool,
    /// Which nodes own which shards over time (empty for unsharded runs).
    pub ownership: ShardOwnership,
    /// The nodes' audit events, per node (empty: none in the history).
    pub audit: Vec<crate::audit::NodeAudit>,
    /// The impostor's attempts, grouped (empty without the impostor).
    pub impostor: Vec<crate::impostor_table::AttemptRow>,
}

impl RunData {
    /// Reads and derives everything from a run's history.
    pub fn read(run: &RunDir) -> Result<RunData, RunReadError> {
        let history = crate::read_history(&run.history())?;
        let end_ns = history_end_ns(&history.events);
        let spans = spans_of(&history.events);
        let faults = faults_of(&history.events, end_ns);
        let histograms = LatencyHistograms::from_spans(&spans, end_ns);
        Ok(RunData {
            spans,
            faults,
            histograms,
            end_ns,
            events: history.events.len() as u64,
            truncated: history.truncated_tail,
            ownership: ShardOwnership::of_history(&history.events, end_ns),
            audit: crate::audit::of_history(&history.events),
            impostor: crate::impostor_table::attempt_rows(&history.events),
        })
    }
}

/// The name of a run's test (its parent directory) and its id (its own name).
pub fn test_and_id(path: &Path) -> (String, String) {
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    (name(canon.parent()), name(Some(&canon)))
}

/// One run's numbers, for compare and ls.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunMetrics {
    pub run_dir: PathBuf,
    pub test: String,
    pub id: String,
    /// From results.json; `None` when the run was never analyzed.
    pub verdict: Option<VerdictKind>,
    pub duration_s: f64,
    pub ops: Vec<OpMetrics>,
    pub total: OpMetrics,
}

impl RunMetrics {
    /// Loads a run's numbers (see the module doc for where they come from).
    pub fn load(path: &Path) -> Result<RunMetrics, RunReadError> {
        let run = RunDir::open(path)?;
        let results = RunResults::read(&run.results_json()).ok();
        let (test, id) = test_and_id(path);
        let (histograms, duration_s) =
            match (&results, run.path().join(LATENCY_TOTAL_FILE).is_file()) {
                (Some(r), true) => (LatencyHistograms::read(run.path())?, r.stats.duration_s),
                _ => {
                    let data = RunData::read(&run)?;
                    let d = results
                        .as_ref()
                        .map_or(data.end_ns as f64 / 1e9, |r| r.stats.duration_s);
                    (data.histograms, d)
                }
            };
        let (ops, total) = op_rows(&histograms, duration_s);
        Ok(RunMetrics {
            run_dir: run.path().to_path_buf(),
            test,
            id,
            verdict: results.map(|r| r.verdict),
            duration_s,
            ops,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_use_ok_latencies_and_count_every_completion() {
        let mut spans = Vec::new();
        for i in 0..1000u64 {
            spans.push(OpSpan {
                process: 1,
                f: "read".into(),
                start_ns: i * 10_000_000,
                end_ns: Some(i * 10_000_000 + (i + 1) * 1000),
                outcome: OpOutcome::Ok,
                node: None,
            });
        }
        // 10 slow failures must not move the ok percentiles.
        for i in 0..10u64 {
            spans.push(OpSpan {
                process: 2,
                f: "read".into(),
                start_ns: i,
                end_ns: Some(i + 5_000_000_000),
                outcome: OpOutcome::Fail,
                node: None,
            });
        }
        let h = LatencyHistograms::from_spans(&spans, 10_000_000_000);
        let (ops, total) = op_rows(&h, 10.0);
        assert_eq!(ops.len(), 1);
        let r = &ops[0];
        assert_eq!(r.count, 1010);
        assert!((r.throughput_per_s - 100.0).abs() < 1e-9);
        assert!((r.latency_ms_p50 - 0.5).abs() < 0.01, "{r:?}");
        assert!((r.latency_ms_p99 - 0.99).abs() < 0.01, "{r:?}");
        assert!((r.latency_ms_max - 1.0).abs() < 0.01, "{r:?}");
        assert_eq!(r.metric("p99.9"), Some(r.latency_ms_p999));
        assert_eq!(total.count, 1010);
        let by_outcome = outcome_rows(&h, 10.0);
        let fail = by_outcome
            .iter()
            .find(|m| m.f == "read" && m.outcome == Some(OpOutcome::Fail))
            .expect("fail row");
        assert!((fail.latency_ms_p50 - 5000.0).abs() < 5.0, "{fail:?}");
    }
}

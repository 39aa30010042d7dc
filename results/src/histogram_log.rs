//! Latency histograms per operation and outcome, saved as HdrHistogram
//! interval logs, and throughput over time.
//!
//! A run's latencies (invoke to completion, in microseconds) go into one
//! HdrHistogram per operation `f` and outcome (`read.ok`, `cas.fail`, …):
//! for the whole run ([`LATENCY_TOTAL_FILE`], 3 significant digits) and per
//! interval of time ([`LATENCY_LOG_FILE`], 2 significant digits, bucketed by
//! completion time). Both files are HdrHistogram V2 interval logs with
//! compressed histograms and `Tag=` fields, the format Java's
//! `HistogramLogProcessor` and every HdrHistogram port read
//! (`HistogramLogProcessor -i latency-total.hlog -tag read.ok`).
//! [`THROUGHPUT_FILE`] holds completions per second per interval, by
//! operation and outcome, as CSV. An operation that never completed has no
//! latency and is in neither.

use crate::op_span::{OpOutcome, OpSpan};
use base64::Engine;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const LATENCY_LOG_FILE: &str = "latency.hlog";
pub const LATENCY_TOTAL_FILE: &str = "latency-total.hlog";
pub const THROUGHPUT_FILE: &str = "throughput.csv";

/// Highest latency recorded: one hour, in microseconds (higher is clamped).
pub const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Runs longer than this many intervals get longer intervals than 1 s.
const MAX_INTERVALS: u64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum HistogramLogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not an HdrHistogram interval log: {message}")]
    Bad { path: PathBuf, message: String },
}

/// Which histogram: an operation and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpKey {
    pub f: String,
    pub outcome: OpOutcome,
}

impl OpKey {
    pub fn new(f: &str, outcome: OpOutcome) -> OpKey {
        OpKey {
            f: f.to_string(),
            outcome,
        }
    }

    /// The log's tag: `f.outcome`, with characters a tag may not hold
    /// (`,`, spaces, newlines) replaced by `_`.
    pub fn tag(&self) -> String {
        let f: String = self
            .f
            .chars()
            .map(|c| {
                if c == ',' || c.is_whitespace() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        format!("{f}.{}", self.outcome.as_str())
    }

    /// Parses a tag written by [`tag`](Self::tag).
    pub fn from_tag(tag: &str) -> Option<OpKey> {
        let (f, outcome) = tag.rsplit_once('.')?;
        Some(OpKey::new(f, OpOutcome::parse(outcome)?))
    }
}

fn total_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

fn interval_histogram() -> Histogram<u64> {
    let mut h = Histogram::new(2).expect("2 significant digits are valid");
    h.auto(true);
    h
}

/// The interval length for a run of `duration_ns`: 1 s, longer for runs of
/// more than [`MAX_INTERVALS`] seconds (whole seconds).
pub fn interval_ns_for(duration_ns: u64) -> u64 {
    let secs = duration_ns
        .div_ceil(1_000_000_000)
        .div_ceil(MAX_INTERVALS)
        .max(1);
    secs * 1_000_000_000
}

/// A run's latency histograms.
#[derive(Clone, Debug)]
pub struct LatencyHistograms {
    pub interval_ns: u64,
    /// Whole run, per operation and outcome (µs, 3 significant digits).
    pub totals: BTreeMap<OpKey, Histogram<u64>>,
    /// Interval `i` covers completions in `[i*interval_ns, (i+1)*interval_ns)`.
    pub intervals: Vec<BTreeMap<OpKey, Histogram<u64>>>,
}

impl LatencyHistograms {
    /// Histograms of every completed span; `duration_ns` is the history's span.
    pub fn from_spans(spans: &[OpSpan], duration_ns: u64) -> LatencyHistograms {
        let interval_ns = interval_ns_for(duration_ns);
        let mut totals: BTreeMap<OpKey, Histogram<u64>> = BTreeMap::new();
        let mut intervals: Vec<BTreeMap<OpKey, Histogram<u64>>> =
            vec![BTreeMap::new(); (duration_ns / interval_ns + 1) as usize];
        for s in spans {
            let (Some(end), Some(latency_ns)) = (s.end_ns, s.latency_ns()) else {
                continue;
            };
            let us = (latency_ns / 1000).clamp(1, MAX_LATENCY_US);
            let key = OpKey::new(&s.f, s.outcome);
            let i = (end / interval_ns) as usize;
            if i >= intervals.len() {
                intervals.resize(i + 1, BTreeMap::new());
            }
            intervals[i]
                .entry(key.clone())
                .or_insert_with(interval_histogram)
                .record(us)
                .expect("auto-resizing histogram takes any value");
            totals
                .entry(key)
                .or_insert_with(total_histogram)
                .record(us)
                .expect("value clamped into the histogram's bounds");
        }
        LatencyHistograms {
            interval_ns,
            totals,
            intervals,
        }
    }

    /// The operations seen, sorted.
    pub fn ops(&self) -> Vec<String> {
        let mut fs: Vec<String> = self.totals.keys().map(|k| k.f.clone()).collect();
        fs.dedup();
        fs
    }

    /// The whole-run histogram of the keys `keep` selects, merged.
    pub fn merged_total(&self, keep: impl Fn(&OpKey) -> bool) -> Histogram<u64> {
        let mut out = total_histogram();
        for (k, h) in &self.totals {
            if keep(k) {
                out.add(h).expect("same bounds");
            }
        }
        out
    }

    /// Interval `i`'s histogram of the keys `keep` selects, merged.
    pub fn merged_interval(&self, i: usize, keep: impl Fn(&OpKey) -> bool) -> Histogram<u64> {
        let mut out = interval_histogram();
        for (k, h) in &self.intervals[i] {
            if keep(k) {
                out.add(h).expect("auto-resizing histogram takes any value");
            }
        }
        out
    }

    /// Start of interval `i`, in seconds since the test started.
    pub fn interval_start_s(&self, i: usize) -> f64 {
        i as f64 * self.interval_ns as f64 / 1e9
    }

    /// Completions per second in each interval, per outcome: `(t_s, [ok, fail, info])`.
    pub fn throughput(&self) -> Vec<(f64, [f64; 3])> {
        let secs = self.interval_ns as f64 / 1e9;
        (0..self.intervals.len())
            .map(|i| {
                let mut per = [0.0; 3];
                for (k, h) in &self.intervals[i] {
                    per[k.outcome as usize] += h.len() as f64 / secs;
                }
                (self.interval_start_s(i), per)
            })
            .collect()
    }

    /// Writes [`LATENCY_LOG_FILE`], [`LATENCY_TOTAL_FILE`] and
    /// [`THROUGHPUT_FILE`] into `dir`. `started` (the test's start) becomes
    /// the logs' StartTime and BaseTime, so timestamps are seconds into the test.
    pub fn write(&self, dir: &Path, started: Option<SystemTime>) -> Result<(), HistogramLogError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| HistogramLogError::Io { path, source }
        };
        let interval = Duration::from_nanos(self.interval_ns);
        let per_interval = self.intervals.iter().enumerate().flat_map(|(i, m)| {
            m.iter()
                .map(move |(k, h)| (k, h, interval * i as u32, interval))
        });
        let path = dir.join(LATENCY_LOG_FILE);
        let bytes = encode_log(
            per_interval,
            started,
            "per-interval latency, microseconds, by completion time",
        )
        .map_err(io(&path))?;
        crate::store::write_atomically(&path, &bytes).map_err(io(&path))?;

        let whole = Duration::from_nanos(self.interval_ns * self.intervals.len() as u64);
        let totals = self
            .totals
            .iter()
            .map(|(k, h)| (k, h, Duration::ZERO, whole));
        let path = dir.join(LATENCY_TOTAL_FILE);
        let bytes =
            encode_log(totals, started, "whole-run latency, microseconds").map_err(io(&path))?;
        crate::store::write_atomically(&path, &bytes).map_err(io(&path))?;

        let path = dir.join(THROUGHPUT_FILE);
        let mut csv = String::from("time_s,f,ok_per_s,fail_per_s,info_per_s\n");
        let secs = self.interval_ns as f64 / 1e9;
        for (i, m) in self.intervals.iter().enumerate() {
            let mut per_f: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
            for (k, h) in m {
                per_f.entry(&k.f).or_default()[k.outcome as usize] += h.len();
            }
            for (f, c) in per_f {
                csv.push_str(&format!(
                    "{:.3},{},{},{},{}\n",
                    self.interval_start_s(i),
                    csv_field(f),
                    c[0] as f64 / secs,
                    c[1] as f64 / secs,
                    c[2] as f64 / secs
                ));
            }
        }
        crate::store::write_atomically(&path, csv.as_bytes()).map_err(io(&path))
    }

    /// Reads the histograms back from a run directory's logs.
    pub fn read(dir: &Path) -> Result<LatencyHistograms, HistogramLogError> {
        let totals_raw = read_log(&dir.join(LATENCY_TOTAL_FILE))?;
        let mut totals = BTreeMap::new();
        for (k, _, _, h) in totals_raw {
            let mut t = total_histogram();
            t.add(&h).map_err(|e| HistogramLogError::Bad {
                path: dir.join(LATENCY_TOTAL_FILE),
                message: format!("histogram out of range: {e:?}"),
            })?;
            totals.insert(k, t);
        }
        let raw = read_log(&dir.join(LATENCY_LOG_FILE))?;
        let interval_ns = raw
            .iter()
            .map(|(_, _, d, _)| d.as_nanos() as u64)
            .find(|d| *d > 0)
            .unwrap_or(1_000_000_000);
        let mut intervals: Vec<BTreeMap<OpKey, Histogram<u64>>> = Vec::new();
        for (k, start, _, h) in raw {
            let i = (start.as_nanos() as u64 / interval_ns) as usize;
            if i >= intervals.len() {
                intervals.resize(i + 1, BTreeMap::new());
            }
            intervals[i].insert(k, h);
        }
        Ok(LatencyHistograms {
            interval_ns,
            totals,
            intervals,
        })
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn encode_log<'a>(
    items: impl Iterator<Item = (&'a OpKey, &'a Histogram<u64>, Duration, Duration)>,
    started: Option<SystemTime>,
    comment: &str,
) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut ser = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder.add_comment(&format!(
        "faultline {comment}; tags are <operation>.<outcome>"
    ));
    if let Some(t) = started {
        builder.with_start_time(t).with_base_time(t);
    }
    builder.with_max_value_divisor(1000.0);
    let mut w = builder.begin_log_with(&mut buf, &mut ser)?;
    for (k, h, start, duration) in items {
        let tag = k.tag();
        w.write_histogram(h, start, duration, Tag::new(&tag))
            .map_err(|e| std::io::Error::other(format!("serializing histogram {tag}: {e}")))?;
    }
    drop(w);
    Ok(buf)
}

/// One tagged interval of a log: key, start since the base time, length, histogram.
pub type LogInterval = (OpKey, Duration, Duration, Histogram<u64>);

/// Reads an interval log: `(key, start since base, duration, histogram)`
/// per tagged interval. Intervals without a faultline tag are an error.
pub fn read_log(path: &Path) -> Result<Vec<LogInterval>, HistogramLogError> {
    let bytes = std::fs::read(path).map_err(|source| HistogramLogError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_log(path, &bytes)
}

/// Parses interval-log bytes; `path` only names the source in errors.
pub fn parse_log(path: &Path, bytes: &[u8]) -> Result<Vec<LogInterval>, HistogramLogError> {
    let bad = |message: String| HistogramLogError::Bad {
        path: path.to_path_buf(),
        message,
    };
    let mut out = Vec::new();
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        match entry.map_err(|e| bad(format!("{e:?}")))? {
            // Timestamps are written as seconds since BaseTime (the test's start).
            LogEntry::BaseTime(_) | LogEntry::StartTime(_) => {}
            LogEntry::Interval(ilh) => {
                let tag = ilh
                    .tag()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default();
                let key = OpKey::from_tag(&tag)
                    .ok_or_else(|| bad(format!("tag {tag:?} is not <operation>.<ok|fail|info>")))?;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(ilh.encoded_histogram())
                    .map_err(|e| bad(format!("tag {tag}: bad base64: {e}")))?;
                let h: Histogram<u64> = de
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| bad(format!("tag {tag}: bad histogram: {e:?}")))?;
                out.push((key, ilh.start_timestamp(), ilh.duration(), h));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op_span::OpSpan;

    fn span(p: u64, f: &str, start_ms: u64, latency_ms: Option<u64>, outcome: OpOutcome) -> OpSpan {
        OpSpan {
            process: p,
            f: f.into(),
            start_ns: start_ms * 1_000_000,
            end_ns: latency_ms.map(|l| (start_ms + l) * 1_000_000),
            outcome,
            node: None,
        }
    }

    fn sample() -> Vec<OpSpan> {
        let mut spans = Vec::new();
        for i in 0..3000u64 {
            // reads at 1..=10 ms in the first 2 s, writes slower later.
            spans.push(span(i % 5, "read", i, Some(1 + i % 10), OpOutcome::Ok));
            if i % 3 == 0 {
                spans.push(span(5, "write", i, Some(100 + i % 50), OpOutcome::Fail));
            }
        }
        spans.push(span(6, "write", 10, None, OpOutcome::Info)); // no latency
        spans.push(span(7, "cas", 2500, Some(1000), OpOutcome::Info));
        spans
    }

    #[test]
    fn counts_latencies_by_operation_outcome_and_interval() {
        let h = LatencyHistograms::from_spans(&sample(), 3_600_000_000);
        assert_eq!(h.interval_ns, 1_000_000_000);
        assert_eq!(h.intervals.len(), 4);
        let read = &h.totals[&OpKey::new("read", OpOutcome::Ok)];
        assert_eq!(read.len(), 3000);
        assert_eq!(read.value_at_quantile(1.0), read.max());
        assert!(read.equivalent(read.max(), 10_000), "max {}", read.max());
        assert_eq!(h.totals[&OpKey::new("write", OpOutcome::Fail)].len(), 1000);
        assert_eq!(h.totals[&OpKey::new("cas", OpOutcome::Info)].len(), 1);
        assert!(!h.totals.contains_key(&OpKey::new("write", OpOutcome::Info)));
        // Every completion is in exactly one interval.
        let in_intervals: u64 = h
            .intervals
            .iter()
            .flat_map(|m| m.values())
            .map(Histogram::len)
            .sum();
        assert_eq!(in_intervals, 4001);
        // The cas completes at 3.5 s: interval 3.
        assert_eq!(h.intervals[3][&OpKey::new("cas", OpOutcome::Info)].len(), 1);
        let tp = h.throughput();
        assert!((tp[0].1[0] - 995.0).abs() < 1e-9, "{:?}", tp[0]); // reads ending in [0,1s): i + 1 + i%10 < 1000
        assert_eq!(h.ops(), vec!["cas", "read", "write"]);
    }

    #[test]
    fn long_runs_get_longer_intervals() {
        assert_eq!(interval_ns_for(0), 1_000_000_000);
        assert_eq!(interval_ns_for(600_000_000_000), 1_000_000_000);
        assert_eq!(interval_ns_for(601_000_000_000), 2_000_000_000);
        assert_eq!(interval_ns_for(3 * 3600 * 1_000_000_000), 18_000_000_000);
    }

    #[test]
    fn logs_round_trip_through_the_hdrhistogram_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = LatencyHistograms::from_spans(&sample(), 3_600_000_000);
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        h.write(dir.path(), Some(started)).expect("write");
        let text = std::fs::read_to_string(dir.path().join(LATENCY_TOTAL_FILE)).expect("read");
        assert!(text.contains("#[BaseTime: 1700000000.000"), "{text}");
        assert!(text.contains("Tag=read.ok,"), "{text}");
        assert!(text.contains("HISTFAA"), "compressed V2 histograms: {text}");
        let back = LatencyHistograms::read(dir.path()).expect("read back");
        assert_eq!(back.totals.len(), h.totals.len());
        for (k, t) in &h.totals {
            assert_eq!(&back.totals[k], t, "{k:?}");
        }
        assert_eq!(back.interval_ns, h.interval_ns);
        assert_eq!(back.intervals.len(), h.intervals.len());
        for (a, b) in back.intervals.iter().zip(&h.intervals) {
            assert_eq!(a.len(), b.len());
            for (k, x) in a {
                assert_eq!(x.len(), b[k].len());
            }
        }
        let csv = std::fs::read_to_string(dir.path().join(THROUGHPUT_FILE)).expect("csv");
        assert!(
            csv.starts_with("time_s,f,ok_per_s,fail_per_s,info_per_s\n0.000,read,995,0,0\n"),
            "{csv}"
        );
    }

    #[test]
    fn tags_survive_odd_operation_names() {
        let k = OpKey::new("fenced write,x", OpOutcome::Fail);
        assert_eq!(k.tag(), "fenced_write_x.fail");
        assert_eq!(
            OpKey::from_tag("a.b.ok"),
            Some(OpKey::new("a.b", OpOutcome::Ok))
        );
        assert_eq!(OpKey::from_tag("read.maybe"), None);
        assert!(parse_log(Path::new("x"), b"Tag=nope,0.0,1.0,1.0,HISTFAAAAA\n").is_err());
    }

    proptest::proptest! {
        #[test]
        fn random_log_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = parse_log(Path::new("fuzz"), &bytes);
        }

        #[test]
        fn random_log_lines_never_panic(text in "(#\\[BaseTime: [0-9.]{0,8}\\]\n)?(Tag=[a-z.]{0,8},)?[0-9.]{0,6},[0-9.]{0,6},[0-9.]{0,6},HISTF[A-Za-z0-9+/=]{0,40}\n?") {
            let _ = parse_log(Path::new("fuzz"), text.as_bytes());
        }
    }
}

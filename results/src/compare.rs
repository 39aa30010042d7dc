//! Comparing two runs: per operation, side by side, with the change in
//! percent, and regressions against thresholds (`p99=10%,throughput=5%`).
//!
//! B is worse than A when a latency (`p50`, `p90`, `p99`, `p99.9`, `max`)
//! grows by more than its threshold, when `throughput` or `count` falls by
//! more than its threshold, or when B's verdict is worse than A's (valid,
//! then unknown, then invalid). Only operations present in both runs (and
//! `all`) are checked. A latency that was 0 in A and is not in B is an
//! infinite increase.

use crate::listing::{list_runs, newest_per_test};
use crate::run_metrics::{OpMetrics, RunMetrics, RunReadError};
use crate::run_results::VerdictKind;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Metric names, in table order.
pub const METRICS: [&str; 7] = ["count", "throughput", "p50", "p90", "p99", "p99.9", "max"];

/// True when a larger value is better (`count`, `throughput`).
pub fn higher_is_better(metric: &str) -> bool {
    matches!(metric, "count" | "throughput")
}

/// `--max-regression`: a limit in percent per metric.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Thresholds(pub Vec<(String, f64)>);

impl std::str::FromStr for Thresholds {
    type Err = String;

    /// Parses `p99=10%,throughput=5%` (the `%` is optional).
    fn from_str(s: &str) -> Result<Thresholds, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: use METRIC=PERCENT, e.g. p99=10%"))?;
            let name = match name.trim() {
                "p999" => "p99.9",
                n => n,
            };
            if !METRICS.contains(&name) {
                return Err(format!(
                    "{name:?}: unknown metric; use one of {}",
                    METRICS.join(", ")
                ));
            }
            let v = value.trim().trim_end_matches('%').trim();
            let pct: f64 = v
                .parse()
                .map_err(|_| format!("{part:?}: {value:?} is not a percentage"))?;
            if !pct.is_finite() || pct < 0.0 {
                return Err(format!("{part:?}: the percentage must be a number ≥ 0"));
            }
            out.push((name.to_string(), pct));
        }
        if out.is_empty() {
            return Err("no thresholds given; use e.g. p99=10%,throughput=5%".into());
        }
        Ok(Thresholds(out))
    }
}

/// One threshold crossed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Regression {
    pub f: String,
    pub metric: String,
    pub a: f64,
    pub b: f64,
    /// Change from A to B in percent (positive: B larger); infinite from 0.
    pub change_pct: f64,
    pub limit_pct: f64,
}

/// One operation's numbers in both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpComparison {
    pub f: String,
    pub a: Option<OpMetrics>,
    pub b: Option<OpMetrics>,
}

/// Two runs compared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub a: RunMetrics,
    pub b: RunMetrics,
    /// Operations of either run, then `all`.
    pub rows: Vec<OpComparison>,
    pub regressions: Vec<Regression>,
    /// B's verdict is worse than A's.
    pub verdict_worse: bool,
}

/// Change from `a` to `b` in percent.
pub fn change_pct(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else if a == 0.0 {
        f64::INFINITY * b.signum()
    } else {
        (b - a) / a * 100.0
    }
}

fn verdict_rank(v: Option<VerdictKind>) -> u8 {
    match v {
        Some(VerdictKind::Valid) => 0,
        None | Some(VerdictKind::Unknown) => 1,
        Some(VerdictKind::Invalid) => 2,
    }
}

/// Compares B against A.
pub fn compare(a: &RunMetrics, b: &RunMetrics, thresholds: &Thresholds) -> Comparison {
    let mut fs: Vec<String> = a.ops.iter().chain(&b.ops).map(|o| o.f.clone()).collect();
    fs.sort();
    fs.dedup();
    let find = |run: &RunMetrics, f: &str| run.ops.iter().find(|o| o.f == f).cloned();
    let mut rows: Vec<OpComparison> = fs
        .iter()
        .map(|f| OpComparison {
            f: f.clone(),
            a: find(a, f),
            b: find(b, f),
        })
        .collect();
    rows.push(OpComparison {
        f: "all".into(),
        a: Some(a.total.clone()),
        b: Some(b.total.clone()),
    });
    let mut regressions = Vec::new();
    for row in &rows {
        let (Some(ra), Some(rb)) = (&row.a, &row.b) else {
            continue;
        };
        for (metric, limit) in &thresholds.0 {
            let (va, vb) = (
                ra.metric(metric).expect("parsed metric"),
                rb.metric(metric).expect("parsed metric"),
            );
            let change = change_pct(va, vb);
            let worse = if higher_is_better(metric) {
                -change
            } else {
                change
            };
            if worse > *limit {
                regressions.push(Regression {
                    f: row.f.clone(),
                    metric: metric.clone(),
                    a: va,
                    b: vb,
                    change_pct: change,
                    limit_pct: *limit,
                });
            }
        }
    }
    Comparison {
        a: a.clone(),
        b: b.clone(),
        rows,
        regressions,
        verdict_worse: verdict_rank(b.verdict) > verdict_rank(a.verdict),
    }
}

impl Comparison {
    /// B is worse than A: a threshold crossed or a worse verdict.
    pub fn regressed(&self) -> bool {
        self.verdict_worse || !self.regressions.is_empty()
    }

    /// Side by side: one row per operation and metric.
    pub fn table(&self) -> comfy_table::Table {
        use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(vec!["op", "metric", "A", "B", "change", ""]);
        let fmt = |m: &str, v: f64| {
            if m == "count" || v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        };
        for row in &self.rows {
            for (i, m) in METRICS.iter().enumerate() {
                let va = row.a.as_ref().and_then(|x| x.metric(m));
                let vb = row.b.as_ref().and_then(|x| x.metric(m));
                let change = match (va, vb) {
                    (Some(a), Some(b)) => {
                        let c = change_pct(a, b);
                        if c.is_infinite() {
                            "from 0".to_string()
                        } else {
                            format!("{c:+.1}%")
                        }
                    }
                    _ => "-".into(),
                };
                let flag = self
                    .regressions
                    .iter()
                    .find(|r| r.f == row.f && r.metric == *m)
                    .map_or(String::new(), |r| {
                        format!("REGRESSION (limit {}%)", r.limit_pct)
                    });
                let unit = match *m {
                    "count" => "",
                    "throughput" => " /s",
                    _ => " ms",
                };
                t.add_row(vec![
                    if i == 0 { row.f.clone() } else { String::new() },
                    format!("{m}{unit}"),
                    va.map_or("-".into(), |v| fmt(m, v)),
                    vb.map_or("-".into(), |v| fmt(m, v)),
                    change,
                    flag,
                ]);
            }
        }
        for i in 2..5 {
            if let Some(c) = t.column_mut(i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        t
    }

    /// The whole text: which runs, verdicts, the table and the outcome.
    pub fn render(&self) -> String {
        let v = |x: Option<VerdictKind>| x.map_or("unchecked", VerdictKind::as_str);
        let mut s = format!(
            "A: {} ({}, {:.1} s)\nB: {} ({}, {:.1} s)\nverdict: {} → {}{}\n{}\n",
            self.a.run_dir.display(),
            v(self.a.verdict),
            self.a.duration_s,
            self.b.run_dir.display(),
            v(self.b.verdict),
            self.b.duration_s,
            v(self.a.verdict),
            v(self.b.verdict),
            if self.verdict_worse { "  WORSE" } else { "" },
            self.table()
        );
        for r in &self.regressions {
            s.push_str(&format!(
                "regression: {} {} {:.3} → {:.3} ({}), limit {}%\n",
                r.f,
                r.metric,
                r.a,
                r.b,
                if r.change_pct.is_infinite() {
                    "from 0".into()
                } else {
                    format!("{:+.1}%", r.change_pct)
                },
                r.limit_pct
            ));
        }
        s
    }
}

/// One test of a `--baseline` comparison.
#[derive(Debug, Serialize)]
pub struct BaselineResult {
    pub test: String,
    pub run: PathBuf,
    pub baseline: Option<PathBuf>,
    pub comparison: Option<Comparison>,
}

/// The newest run of each test in `store` against `baseline`: a run
/// directory (every test against it) or a store (each test against the
/// newest run of the same test there; a test with none is reported, not
/// compared).
pub fn compare_baseline(
    store: &Path,
    baseline: &Path,
    thresholds: &Thresholds,
) -> Result<Vec<BaselineResult>, RunReadError> {
    let newest = newest_per_test(&list_runs(store)?);
    let baseline_is_run = baseline.join(crate::store::HISTORY_FILE).is_file();
    let baseline_runs = if baseline_is_run {
        Default::default()
    } else {
        newest_per_test(&list_runs(baseline)?)
    };
    let mut out = Vec::new();
    for (test, entry) in newest {
        let base: Option<PathBuf> = if baseline_is_run {
            Some(baseline.to_path_buf())
        } else {
            baseline_runs.get(&test).map(|e| e.path.clone())
        };
        // The baseline store may be the store itself: never compare a run with itself.
        let base = base
            .filter(|b| std::fs::canonicalize(b).ok() != std::fs::canonicalize(&entry.path).ok());
        let comparison = match &base {
            Some(b) => Some(compare(
                &RunMetrics::load(b)?,
                &RunMetrics::load(&entry.path)?,
                thresholds,
            )),
            None => None,
        };
        out.push(BaselineResult {
            test,
            run: entry.path,
            baseline: base,
            comparison,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic_run::{write_run, RunSpec};

    #[test]
    fn parses_thresholds_and_names_bad_ones() {
        let t: Thresholds = "p99=10%, throughput=5,p999=1.5%".parse().expect("parse");
        assert_eq!(
            t.0,
            vec![
                ("p99".into(), 10.0),
                ("throughput".into(), 5.0),
                ("p99.9".into(), 1.5)
            ]
        );
        for (bad, needle) in [
            ("p98=1%", "unknown metric"),
            ("p99", "METRIC=PERCENT"),
            ("p99=x%", "not a percentage"),
            ("p99=-1", "≥ 0"),
            ("", "no thresholds"),
        ] {
            let e = bad.parse::<Thresholds>().expect_err(bad);
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn equal_runs_do_not_regress_and_a_slower_run_does() {
        let root = tempfile::tempdir().expect("tempdir");
        let a = write_run(root.path(), &RunSpec::default());
        let same = write_run(
            root.path(),
            &RunSpec {
                start_offset_s: 1,
                ..RunSpec::default()
            },
        );
        let slow = write_run(
            root.path(),
            &RunSpec {
                latency_scale: 1.5,
                start_offset_s: 2,
                ..RunSpec::default()
            },
        );
        let th: Thresholds = "p99=10%,throughput=5%".parse().expect("thresholds");
        let (ma, msame, mslow) = (
            RunMetrics::load(&a).expect("a"),
            RunMetrics::load(&same).expect("same"),
            RunMetrics::load(&slow).expect("slow"),
        );
        let c = compare(&ma, &msame, &th);
        assert!(!c.regressed(), "{}", c.render());
        assert_eq!(c.rows.last().expect("all row").f, "all");
        let c = compare(&ma, &mslow, &th);
        assert!(c.regressed());
        let p99 = c
            .regressions
            .iter()
            .find(|r| r.f == "all" && r.metric == "p99")
            .expect("p99 regression");
        assert!(p99.change_pct > 30.0 && p99.change_pct < 70.0, "{p99:?}");
        assert!(c.render().contains("REGRESSION (limit 10%)"));
        // The other way round B is faster: no latency regression.
        let back = compare(&mslow, &ma, &"p99=10%".parse().expect("th"));
        assert!(!back.regressed(), "{}", back.render());
    }

    #[test]
    fn a_worse_verdict_is_a_regression() {
        let root = tempfile::tempdir().expect("tempdir");
        let a = RunMetrics::load(&write_run(root.path(), &RunSpec::default())).expect("a");
        let b = RunMetrics::load(&write_run(
            root.path(),
            &RunSpec {
                invalid: true,
                start_offset_s: 1,
                ..RunSpec::default()
            },
        ))
        .expect("b");
        let c = compare(&a, &b, &Thresholds::default());
        assert!(c.verdict_worse && c.regressed());
        assert!(c.render().contains("valid → invalid  WORSE"));
        assert!(!compare(&b, &a, &Thresholds::default()).regressed());
    }

    #[test]
    fn changes_from_zero_are_infinite() {
        assert_eq!(change_pct(0.0, 0.0), 0.0);
        assert_eq!(change_pct(0.0, 1.0), f64::INFINITY);
        assert!((change_pct(2.0, 3.0) - 50.0).abs() < 1e-12);
    }

    #[test]
    fn baseline_compares_the_newest_run_of_each_test() {
        let store = tempfile::tempdir().expect("store");
        let base = tempfile::tempdir().expect("baseline");
        write_run(base.path(), &RunSpec::default());
        write_run(
            base.path(),
            &RunSpec {
                test_name: "only-in-baseline".into(),
                ..RunSpec::default()
            },
        );
        write_run(
            store.path(),
            &RunSpec {
                start_offset_s: 5,
                ..RunSpec::default()
            },
        );
        let newest = write_run(
            store.path(),
            &RunSpec {
                latency_scale: 2.0,
                start_offset_s: 9,
                ..RunSpec::default()
            },
        );
        write_run(
            store.path(),
            &RunSpec {
                test_name: "new-test".into(),
                ..RunSpec::default()
            },
        );
        let th: Thresholds = "p99=10%".parse().expect("th");
        let out = compare_baseline(store.path(), base.path(), &th).expect("baseline");
        assert_eq!(out.len(), 2);
        let reg = out
            .iter()
            .find(|r| r.test == "register-partition-kill")
            .expect("register");
        assert_eq!(reg.run, newest);
        assert!(reg.comparison.as_ref().expect("compared").regressed());
        let new = out.iter().find(|r| r.test == "new-test").expect("new");
        assert!(new.baseline.is_none() && new.comparison.is_none());
    }

    proptest::proptest! {
        #[test]
        fn random_thresholds_never_panic(text in "\\PC{0,60}") {
            let _ = text.parse::<Thresholds>();
        }
    }
}

//! The runs in a store: `store/<test>/<time>/`, newest first.
//!
//! A listing reads only each run's small files (results.json, test.json),
//! never its history, so listing a store of thousands of runs is quick. A
//! directory without a history is not a run and is skipped; the `latest`
//! link and hidden entries are skipped; a run whose results.json is
//! missing or unreadable is listed with no verdict.

use crate::run_metrics::RunReadError;
use crate::run_results::{RunResults, VerdictKind};
use crate::store::{HISTORY_FILE, LATEST_LINK, RESULTS_FILE, TEST_FILE};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One stored run, as listed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunEntry {
    pub test: String,
    /// The run's directory name (its start time, `YYYYMMDDTHHMMSS[-n]`).
    pub id: String,
    pub path: PathBuf,
    /// RFC 3339, from test.json (or the id when test.json lacks it).
    pub started: String,
    pub verdict: Option<VerdictKind>,
    /// Client operations invoked (from results.json).
    pub ops: Option<u64>,
    /// p99 latency of all completed operations, ms (from results.json).
    pub latency_ms_p99: Option<f64>,
    pub duration_s: Option<f64>,
    pub workload: Option<String>,
    pub has_report: bool,
}

impl RunEntry {
    pub fn verdict_str(&self) -> &'static str {
        self.verdict.map_or("unchecked", VerdictKind::as_str)
    }
}

fn id_to_rfc3339(id: &str) -> String {
    let stamp = id.split('-').next().unwrap_or(id);
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S")
        .map(|t| t.and_utc().to_rfc3339())
        .unwrap_or_default()
}

fn read_entry(test: &str, dir: &Path) -> RunEntry {
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let results = RunResults::read(&dir.join(RESULTS_FILE)).ok();
    let test_json: Option<serde_json::Value> = std::fs::read_to_string(dir.join(TEST_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let started = test_json
        .as_ref()
        .and_then(|t| t.get("started_at")?.as_str().map(str::to_string))
        .unwrap_or_else(|| id_to_rfc3339(&id));
    let workload = test_json
        .as_ref()
        .and_then(|t| t.get("plan")?.get("workload")?.as_str().map(str::to_string));
    RunEntry {
        test: test.to_string(),
        id,
        path: dir.to_path_buf(),
        started,
        verdict: results.as_ref().map(|r| r.verdict),
        ops: results.as_ref().map(|r| r.stats.total.count),
        latency_ms_p99: results.as_ref().map(|r| r.stats.total.latency_ms_p99),
        duration_s: results.as_ref().map(|r| r.stats.duration_s),
        workload,
        has_report: dir.join(crate::report::REPORT_FILE).is_file(),
    }
}

fn visible_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, RunReadError> {
    let rd = std::fs::read_dir(dir).map_err(|source| RunReadError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == LATEST_LINK {
            continue;
        }
        // Real directories only: a symlink could lead out of the store.
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push((name, e.path()));
        }
    }
    Ok(out)
}

/// Every run in the store, newest first (ties: by test name).
pub fn list_runs(store: &Path) -> Result<Vec<RunEntry>, RunReadError> {
    let mut runs = Vec::new();
    for (test, test_dir) in visible_dirs(store)? {
        for (_, run_dir) in visible_dirs(&test_dir)? {
            if run_dir.join(HISTORY_FILE).is_file() {
                runs.push(read_entry(&test, &run_dir));
            }
        }
    }
    runs.sort_by(|a, b| {
        b.started
            .cmp(&a.started)
            .then(b.id.cmp(&a.id))
            .then(a.test.cmp(&b.test))
    });
    Ok(runs)
}

/// The newest run of each test.
pub fn newest_per_test(runs: &[RunEntry]) -> BTreeMap<String, RunEntry> {
    let mut out: BTreeMap<String, RunEntry> = BTreeMap::new();
    for r in runs {
        let newer = out
            .get(&r.test)
            .is_none_or(|cur| (&r.started, &r.id) > (&cur.started, &cur.id));
        if newer {
            out.insert(r.test.clone(), r.clone());
        }
    }
    out
}

/// The `faultline ls` table.
pub fn table(runs: &[RunEntry]) -> comfy_table::Table {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "test", "run", "started", "verdict", "ops", "p99 ms", "path",
    ]);
    for r in runs {
        t.add_row(vec![
            r.test.clone(),
            r.id.clone(),
            r.started.clone(),
            r.verdict_str().to_string(),
            r.ops.map_or("-".into(), |o| o.to_string()),
            r.latency_ms_p99.map_or("-".into(), |p| format!("{p:.1}")),
            r.path.display().to_string(),
        ]);
    }
    for i in [4, 5] {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic_run::{write_run, RunSpec};

    #[test]
    fn lists_runs_newest_first_and_skips_what_is_not_a_run() {
        let root = tempfile::tempdir().expect("tempdir");
        let a = write_run(
            root.path(),
            &RunSpec {
                ops: 20,
                ..RunSpec::default()
            },
        );
        let b = write_run(
            root.path(),
            &RunSpec {
                ops: 30,
                invalid: true,
                start_offset_s: 60,
                ..RunSpec::default()
            },
        );
        let c = write_run(
            root.path(),
            &RunSpec {
                test_name: "kv".into(),
                ops: 10,
                results: false,
                start_offset_s: 30,
                ..RunSpec::default()
            },
        );
        std::fs::create_dir_all(root.path().join("kv/not-a-run")).expect("mkdir");
        std::fs::create_dir_all(root.path().join(".hidden/x")).expect("mkdir");
        let runs = list_runs(root.path()).expect("list");
        let paths: Vec<&Path> = runs.iter().map(|r| r.path.as_path()).collect();
        assert_eq!(paths, vec![b.as_path(), c.as_path(), a.as_path()]);
        assert_eq!(runs[0].verdict, Some(VerdictKind::Invalid));
        assert_eq!(runs[0].ops, Some(30));
        assert!(runs[0].latency_ms_p99.expect("p99") > 0.0);
        assert_eq!(
            (runs[1].verdict, runs[1].ops, runs[1].verdict_str()),
            (None, None, "unchecked")
        );
        assert_eq!(runs[2].started, "2026-01-01T00:00:00+00:00");
        let newest = newest_per_test(&runs);
        assert_eq!(newest.len(), 2);
        assert_eq!(newest["register-partition-kill"].path, b);
        let text = table(&runs).to_string();
        assert!(
            text.contains("invalid") && text.contains("unchecked"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_store_is_an_error_naming_it() {
        let err = list_runs(Path::new("/nonexistent/store"))
            .expect_err("missing")
            .to_string();
        assert!(err.contains("/nonexistent/store"), "{err}");
    }
}

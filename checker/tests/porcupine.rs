//! Every history of ../shared/testdata/porcupine/expected.tsv gets its
//! expected verdict: the etcd logs with `cas-register`, the kv logs with
//! `kv` split by key and also checked whole (`--no-partition`), the c50
//! logs (50 clients) included.

use faultline_checker::linearizable::check_linearizable;
use faultline_checker::{
    read_history, CheckOptions, HistoryError, ModelKind, Operations, VerdictKind,
};

#[path = "support/testdata.rs"]
mod testdata;
use testdata::testdata_dir;

fn cases() -> Vec<(String, ModelKind, VerdictKind)> {
    let tsv =
        std::fs::read_to_string(testdata_dir().join("expected.tsv")).expect("testdata present");
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let model: ModelKind = cols[1].parse().expect("known model");
            let verdict = match cols[2] {
                "linearizable" => VerdictKind::Valid,
                "not-linearizable" => VerdictKind::Invalid,
                other => panic!("unknown verdict {other}"),
            };
            (cols[0].to_string(), model, verdict)
        })
        .collect()
}

fn load(file: &str) -> Result<Operations, HistoryError> {
    let text = std::fs::read_to_string(testdata_dir().join(file)).expect("readable");
    let h = read_history(file, &text, None)?;
    Operations::from_events(file, &h.events, &h.lines)
}

fn check(file: &str, model: ModelKind, partition: bool) -> VerdictKind {
    let ops = load(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let opts = CheckOptions {
        partition,
        ..CheckOptions::default()
    };
    check_linearizable(&ops, model, &opts)
        .expect("ops fit the model")
        .verdict
        .kind()
}

#[test]
fn every_etcd_log_gets_its_expected_verdict() {
    let mut checked = 0;
    for (file, model, expected) in cases().into_iter().filter(|c| c.0.starts_with("jepsen/")) {
        if file.ends_with("etcd_095.log") {
            continue;
        }
        assert_eq!(check(&file, model, true), expected, "{file}");
        checked += 1;
    }
    assert_eq!(checked, 102);
}

#[test]
fn the_empty_etcd_log_is_an_empty_history_not_a_verdict() {
    let e = load("jepsen/etcd_095.log").unwrap_err();
    assert!(matches!(e, HistoryError::Empty(_)), "{e}");
}

#[test]
fn every_kv_log_gets_its_expected_verdict_split_by_key() {
    for (file, model, expected) in cases().into_iter().filter(|c| c.0.starts_with("kv/")) {
        assert_eq!(check(&file, model, true), expected, "{file}");
    }
}

/// Checked whole (`--no-partition`): one search over the whole map's
/// states, no split by key. The time limit only turns a hang into a
/// failure (`unknown` is not the expected verdict); it is not a speed test.
#[test]
fn every_kv_log_gets_its_expected_verdict_as_one_map() {
    let mut checked = 0;
    for (file, model, expected) in cases().into_iter().filter(|c| c.0.starts_with("kv/")) {
        let ops = load(&file).expect("parses");
        let opts = CheckOptions {
            partition: false,
            time_limit: Some(std::time::Duration::from_secs(600)),
            ..CheckOptions::default()
        };
        let report = check_linearizable(&ops, model, &opts).expect("fits");
        assert_eq!(report.parts, 1, "{file}: checked as one map");
        assert_eq!(
            report.verdict.kind(),
            expected,
            "{file} as one map: {}",
            report.verdict
        );
        checked += 1;
    }
    assert_eq!(checked, 6);
}

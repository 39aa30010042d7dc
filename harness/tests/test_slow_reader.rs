//! `faultline test --nemesis slow-reader` from the outside (issue 21): a
//! short run where clients write and never read is valid, records each
//! fault with its mechanism in the history, and its results hold a
//! node-memory check with the node's peak RSS under the stated bound.
//! Systems the fault does not fit say so instead of faking it.

mod test_common;

use test_common::faultline;

#[test]
fn a_run_under_slow_readers_is_valid_and_records_the_nodes_peak_memory() {
    let store = tempfile::tempdir().expect("tempdir");
    let s = store.path().to_str().expect("utf-8");
    let (code, out, err) = faultline(&[
        "test",
        "--workload",
        "register",
        "--node-count",
        "3",
        "--time-limit",
        "8s",
        "--nemesis",
        "slow-reader",
        "--nemesis-interval",
        "3s",
        "--seed",
        "21",
        "--json",
        "--store",
        s,
    ]);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let results: serde_json::Value =
        serde_json::from_str(&out).expect("--json prints results.json");
    assert_eq!(results["verdict"], "valid", "{results}");
    let memory = results["checkers"]
        .as_array()
        .expect("checkers")
        .iter()
        .find(|c| c["checker"] == "node-memory")
        .unwrap_or_else(|| panic!("a node-memory check in {results}"));
    assert_eq!(memory["verdict"], "valid", "{memory}");
    let faults = memory["detail"].as_array().expect("one entry per fault");
    assert!(!faults.is_empty(), "{memory}");
    for fault in faults {
        let peak = fault["peak_rss_kib"].as_u64().expect("peak RSS measured");
        let growth = fault["growth_kib"].as_u64().expect("growth measured");
        let bound = fault["bound_kib"].as_u64().expect("bound stated");
        assert!(peak > 0 && growth <= bound, "{fault}");
        assert!(
            fault["bytes_written"].as_u64().expect("bytes written") > 0,
            "the readers wrote: {fault}"
        );
        eprintln!("slow-reader fault: {fault}");
    }

    // The history has each start and stop, with its mechanism.
    let run = store.path().join("latest");
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("history");
    let events: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let starts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["f"] == "start-slow-reader")
        .collect();
    let stops = events
        .iter()
        .filter(|e| e["f"] == "stop-slow-reader")
        .count();
    assert!(!starts.is_empty(), "no start-slow-reader in the history");
    assert_eq!(starts.len(), stops, "every slow-reader fault healed");
    for start in starts {
        assert_eq!(start["value"]["mechanism"], "unread-connections", "{start}");
        assert!(start["error"].is_null(), "{start}");
    }
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("test.json")).expect("test.json"))
            .expect("JSON");
    assert_eq!(test["mechanisms"]["slow_reader"], "unread-connections");
    // faultline.log keeps every fault with its mechanism.
    let log = std::fs::read_to_string(run.join("faultline.log")).expect("faultline.log");
    assert!(
        log.contains("nemesis start-slow-reader") && log.contains("unread-connections"),
        "{log}"
    );
}

/// A sharded cluster answers most keys with `moved`: the fault is said to
/// be unsupported there (test.json and stderr), not faked.
#[test]
fn a_sharded_run_says_slow_reader_is_unsupported() {
    let store = tempfile::tempdir().expect("tempdir");
    let s = store.path().to_str().expect("utf-8");
    let (code, out, err) = faultline(&[
        "test",
        "--workload",
        "kv",
        "--node-count",
        "3",
        "--shards",
        "2",
        "--replicas",
        "3",
        "--time-limit",
        "2s",
        "--nemesis",
        "slow-reader",
        "--seed",
        "21",
        "--store",
        s,
    ]);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("slow-reader faults are unsupported") && err.contains("unsharded"),
        "{err}"
    );
    let run = store.path().join("latest");
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("test.json")).expect("test.json"))
            .expect("JSON");
    assert!(
        test["unsupported_faults"]["slow-reader"]
            .as_str()
            .is_some_and(|why| why.contains("moved")),
        "{test}"
    );
}

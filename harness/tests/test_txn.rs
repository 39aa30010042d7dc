//! Transactions on faultline's node, end to end: list-append and
//! rw-register under `--nemesis all` end valid at strict-serializable on
//! Raft and on Paxos, with enough committed transactions to mean something;
//! each planted transaction bug ends invalid with the anomalies it should
//! cause named in results.json, and rules out exactly what it should.
//!
//! Runs are sequential and seeded (a failure prints the command that
//! replays it). A bug gets up to [`ATTEMPTS`] seeds, as in test_bugs.rs.

mod test_common;

use serde_json::Value;
use std::path::Path;
use test_common::{args, run_test};

const SEED: u64 = 1400;
const ATTEMPTS: u64 = 3;

/// The one file called `name` in the one run stored under `store`.
fn find_file(store: &Path, name: &str) -> std::path::PathBuf {
    let mut found = Vec::new();
    let mut stack = vec![store.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("store dir reads") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == name) {
                found.push(path);
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "one {name} in {}: {found:?}",
        store.display()
    );
    found.remove(0)
}

/// The txn checker's entry of the one run stored under `store`.
fn txn_result(store: &Path, checker: &str) -> Value {
    let path = find_file(store, "results.json");
    let results: Value = serde_json::from_slice(&std::fs::read(&path).expect("results.json reads"))
        .expect("results.json is JSON");
    let text = results.to_string();
    let checkers = results["checkers"]
        .as_array()
        .unwrap_or_else(|| panic!("results.json has checkers: {text}"));
    checkers
        .iter()
        .find(|c| c["checker"] == checker)
        .unwrap_or_else(|| panic!("no {checker} checker in {text}"))
        .clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Finds the first object field `name` anywhere in `v`.
fn field<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    match v {
        Value::Object(m) => m
            .get(name)
            .or_else(|| m.values().find_map(|x| field(x, name))),
        Value::Array(a) => a.iter().find_map(|x| field(x, name)),
        _ => None,
    }
}

fn common(store: &Path, workload: &str) -> Vec<String> {
    args(&[
        "--workload",
        workload,
        "--store",
        store.to_str().expect("utf-8 path"),
        "--time-limit",
        "12s",
        "--nemesis-interval",
        "3s",
    ])
}

#[test]
fn txn_workloads_are_strict_serializable_under_every_fault_on_raft_and_paxos() {
    let mut failures = Vec::new();
    for consensus in ["raft", "paxos"] {
        for workload in ["list-append", "rw-register"] {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut a = common(dir.path(), workload);
            a.extend(args(&[
                "--consensus",
                consensus,
                "--nemesis",
                "all",
                "--node-count",
                "3",
                "--seed",
                &SEED.to_string(),
            ]));
            let r = run_test(&a);
            eprintln!("{consensus} {workload} / all: exit {:?}", r.code);
            if r.code != Some(0) {
                failures.push(format!(
                    "{consensus} {workload} under --nemesis all is not valid (exit {:?}, want 0)\n  {}\n{}",
                    r.code, r.command, r.digest
                ));
                continue;
            }
            let result = txn_result(dir.path(), workload);
            let ok = field(&result, "ok").and_then(Value::as_u64).unwrap_or(0);
            if ok < 200 {
                failures.push(format!(
                    "{consensus} {workload}: only {ok} txns committed, too few to judge: {result}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs `bug` until a seed ends invalid; returns its txn checker result.
fn caught(workload: &str, nemesis: &str, bug: &str) -> Value {
    let mut misses = Vec::new();
    for seed in SEED..SEED + ATTEMPTS {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = common(dir.path(), workload);
        a.extend(args(&[
            "--nemesis",
            nemesis,
            "--bug",
            bug,
            "--seed",
            &seed.to_string(),
        ]));
        let r = run_test(&a);
        eprintln!("bug {bug} seed {seed}: exit {:?}", r.code);
        if r.code == Some(1) {
            let page = find_file(dir.path(), "witness.html");
            let page = std::fs::read_to_string(&page).expect("witness.html reads");
            assert!(
                page.contains("<svg") && page.contains("arrow-rw"),
                "the run's witness.html draws the cycle ({bug}, seed {seed})"
            );
            return txn_result(dir.path(), workload);
        }
        misses.push(format!("exit {:?}\n  {}\n{}", r.code, r.command, r.digest));
    }
    panic!(
        "{bug} not caught in {ATTEMPTS} runs:\n{}",
        misses.join("\n")
    );
}

#[test]
fn a_non_atomic_txn_is_caught_as_a_serializability_anomaly() {
    let result = caught("list-append", "none", "txn-non-atomic");
    let anomalies = strings(field(&result, "anomaly_types").expect("anomaly types"));
    let not = strings(field(&result, "not").expect("models ruled out"));
    // Half a transaction seen: a cycle without real-time or process edges
    // (G-single: T2 read T1's first append but not its second; G0/G1c
    // when appends interleave), which no serializable system allows.
    let cyclic = ["G0", "G1c", "G-single", "G-nonadjacent", "G2-item"];
    assert!(
        anomalies.iter().any(|a| cyclic.contains(&a.as_str())),
        "a plain (non-real-time) cycle is named: {anomalies:?} in {result}"
    );
    let also_not = strings(field(&result, "also_not").unwrap_or(&Value::Null));
    assert!(
        not.iter().chain(&also_not).any(|m| m == "serializable"),
        "serializable is ruled out: not {not:?}, also {also_not:?}"
    );
}

#[test]
fn follower_reads_are_caught_as_serializable_but_not_strict_serializable() {
    let result = caught("list-append", "partition", "txn-follower-read");
    let anomalies = strings(field(&result, "anomaly_types").expect("anomaly types"));
    assert!(
        anomalies
            .iter()
            .any(|a| a.ends_with("-realtime") || a.ends_with("-process")),
        "a real-time or process-order cycle is named: {anomalies:?} in {result}"
    );
    // Stale, but each read sees a prefix of the log: no anomaly that
    // serializability forbids.
    for plain in [
        "G0",
        "G1a",
        "G1b",
        "G1c",
        "G-single",
        "G-nonadjacent",
        "G2-item",
        "incompatible-order",
        "garbage-read",
    ] {
        assert!(
            !anomalies.iter().any(|a| a == plain),
            "{plain} found, which a stale prefix read cannot cause: {anomalies:?} in {result}"
        );
    }
}

//! `faultline test --shards` in remote mode against a 4-host lab: every
//! host's node gets the sharding flags (`--shards --replicas --members
//! --vnodes`), the membership nemesis moves shards over SSH-deployed nodes
//! through their admin port while partitions (iptables on the hosts) and
//! kills (by pidfile) run, and the run ends valid with at least one
//! completed membership change.
//!
//! Needs root: `FAULTLINE_LAB_TESTS=1 cargo test -p faultline --test
//! test_shards_lab -- --ignored` (run by .ci/lab.sh).

mod lab_support;

use faultline_checker::history::Process;
use lab_support::{enabled, faultline, text, TestLab};
use std::process::Command;

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn remote_sharded_test_moves_shards_and_ends_valid() {
    if !enabled("test_shards_lab") {
        return;
    }
    let lab = TestLab::up(4);
    let store = tempfile::tempdir().expect("tempdir");
    let out = Command::new(faultline())
        .args(["test", "--lab", lab.dir_str()])
        .args(["--store", store.path().to_str().expect("utf-8")])
        .args(["--name", "shards", "--workload", "kv"])
        .args(["--shards", "4", "--replicas", "3"])
        .args(["--nemesis", "membership,partition,kill"])
        .args([
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "15s",
            "--seed",
            "3",
        ])
        .output()
        .expect("faultline runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let test_dir = store.path().join("shards");
    let run = std::fs::read_dir(&test_dir)
        .expect("the test's directory")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("one run directory");
    let history = faultline_results::read_history(&run.join("history.jsonl"))
        .expect("the history reads back")
        .events;
    let placement = history
        .iter()
        .find(|e| e.process == Process::Nemesis && e.f == "placement")
        .expect("the initial placement is recorded");
    assert_eq!(placement.value["members"].as_array().map(Vec::len), Some(3));
    let completed = history
        .iter()
        .filter(|e| e.process == Process::Nemesis && e.f == "stop-membership")
        .filter(|e| {
            e.value["moves"]
                .as_array()
                .is_some_and(|m| !m.is_empty() && m.iter().all(|m| m["outcome"] == "done"))
        })
        .count();
    assert!(
        completed >= 1,
        "no completed membership change:\n{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("membership "),
        "the summary lists the changes:\n{}",
        text(&out)
    );
}

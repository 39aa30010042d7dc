//! `faultline test --shards 8 --replicas 3 --workload kv --nemesis
//! membership,partition,kill` (issue 8): the keyspace in 8 groups on a ring
//! of 4 nodes out of 5 while nodes join and leave the ring, the network
//! partitions and nodes die; ends valid for Raft and for Paxos, and its
//! history shows at least one completed membership change, with the
//! ownership drawn in report.html; a planted stale read in the same
//! sharded cluster ends invalid. Bad sharding flags exit 254 naming the
//! flag and start nothing.
//!
//! Runs are sequential (one cluster at a time on a 2-core machine) and
//! seeded, so a failure prints the command that replays it.

mod test_common;

use faultline_checker::history::Process;
use std::process::Command;
use test_common::{args, one_cluster, run_dir, run_test, BIN};

const SEED: u64 = 11;

/// Runs the sharded membership test with `consensus`; None when it ended
/// valid with a completed membership change and the report shows it.
fn sharded_membership_run(consensus: &str) -> Option<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().to_str().expect("utf-8 path");
    let a = args(&[
        "--workload",
        "kv",
        "--shards",
        "8",
        "--replicas",
        "3",
        "--node-count",
        "5",
        "--nemesis",
        "membership,partition,kill",
        "--nemesis-interval",
        "3s",
        "--time-limit",
        "24s",
        "--consensus",
        consensus,
        "--store",
        store,
        "--seed",
        &SEED.to_string(),
    ]);
    let r = run_test(&a);
    eprintln!(
        "{consensus} shards 8 × 3, membership,partition,kill: exit {:?}",
        r.code
    );
    if r.code != Some(0) {
        return Some(format!(
            "{consensus}: not valid (exit {:?}, want 0)\n  {}\n{}",
            r.code, r.command, r.digest
        ));
    }
    let run = run_dir(dir.path());
    // A node that panicked and was restarted can leave a valid history:
    // a crash is a failure all the same.
    for log in std::fs::read_dir(run.join("nodes"))
        .expect("node logs")
        .flatten()
    {
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        if let Some(at) = text.find("panicked at") {
            let excerpt: String = text[at..].chars().take(300).collect();
            return Some(format!(
                "{consensus}: {} panicked: {excerpt}\n  {}",
                log.path().display(),
                r.command
            ));
        }
    }
    let history = faultline_results::read_history(&run.join("history.jsonl"))
        .expect("the history reads back")
        .events;
    let nemesis: Vec<_> = history
        .iter()
        .filter(|e| e.process == Process::Nemesis)
        .collect();
    let placement = nemesis.iter().find(|e| e.f == "placement");
    let Some(placement) = placement else {
        return Some(format!("{consensus}: no placement event\n  {}", r.command));
    };
    assert_eq!(placement.value["shards"], 8);
    assert_eq!(placement.value["members"].as_array().map(Vec::len), Some(4));
    let completed = nemesis
        .iter()
        .filter(|e| e.f == "stop-membership")
        .filter(|e| {
            e.value["moves"]
                .as_array()
                .is_some_and(|m| !m.is_empty() && m.iter().all(|m| m["outcome"] == "done"))
        })
        .count();
    if completed == 0 {
        let changes: Vec<String> = nemesis
            .iter()
            .filter(|e| e.f.ends_with("-membership"))
            .map(|e| format!("{} {} {:?}", e.f, e.value, e.error))
            .collect();
        return Some(format!(
            "{consensus}: no completed membership change\n  {}\n{}",
            r.command,
            changes.join("\n")
        ));
    }
    for kind in ["partition", "kill"] {
        assert!(
            nemesis.iter().any(|e| e.f == format!("start-{kind}")),
            "{consensus}: the schedule also ran {kind}"
        );
    }
    let report = std::fs::read_to_string(run.join("report.html")).expect("report.html");
    assert!(
        report.contains("<h2 id=shards>"),
        "{consensus}: report has no shard section"
    );
    assert!(
        r.digest.contains("membership ") && r.digest.contains(": members n"),
        "{consensus}: the summary lists the changes:\n{}",
        r.digest
    );
    None
}

#[test]
fn sharded_kv_is_valid_under_membership_partition_and_kill_for_raft_and_paxos() {
    let _cluster = one_cluster();
    let failures: Vec<String> = ["raft", "paxos"]
        .into_iter()
        .filter_map(sharded_membership_run)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Proof of power under sharding: the same harness that finds the sharded
/// runs above valid finds a planted stale read invalid, for both protocols
/// (stale reads are served by a follower of one shard's group while the
/// partition isolates it).
#[test]
fn a_planted_stale_read_is_caught_in_a_sharded_cluster() {
    let _cluster = one_cluster();
    let failures: Vec<String> = ["raft", "paxos"]
        .into_iter()
        .filter_map(|consensus| {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = dir.path().to_str().expect("utf-8 path").to_string();
            let a = args(&[
                "--workload",
                "kv",
                "--shards",
                "8",
                "--replicas",
                "3",
                "--node-count",
                "5",
                "--bug",
                "stale-read",
                "--nemesis",
                "partition",
                "--nemesis-interval",
                "3s",
                "--time-limit",
                "20s",
                "--consensus",
                consensus,
                "--store",
                &store,
            ]);
            test_common::caught_within(&a, 1, 3, &format!("{consensus} sharded stale-read"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn bad_sharding_flags_exit_254_naming_the_flag_and_start_nothing() {
    let store = tempfile::tempdir().expect("tempdir");
    let s = store.path().to_str().expect("utf-8");
    for (a, needles) in [
        (
            vec!["--shards", "8", "--replicas", "4", "--node-count", "3"],
            vec!["--replicas 4", "--node-count 3"],
        ),
        (vec!["--shards", "0"], vec!["--shards 0"]),
        (
            vec!["--shards", "4", "--replicas", "0"],
            vec!["--replicas 0"],
        ),
        (vec!["--replicas", "2"], vec!["--replicas", "--shards"]),
        (vec!["--vnodes", "64"], vec!["--vnodes", "--shards"]),
        (vec!["--shards", "4", "--vnodes", "0"], vec!["--vnodes 0"]),
        (
            vec!["--nemesis", "membership"],
            vec!["membership", "--shards"],
        ),
        (
            vec![
                "--shards",
                "4",
                "--replicas",
                "3",
                "--node-count",
                "3",
                "--nemesis",
                "membership",
            ],
            vec!["membership", "--replicas 3", "--node-count 3"],
        ),
    ] {
        let mut all = vec!["test", "--workload", "kv"];
        all.extend(a.iter().copied());
        all.extend(["--store", s]);
        let out = Command::new(BIN)
            .args(&all)
            .output()
            .expect("faultline runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{a:?}: {err}");
        for n in needles {
            assert!(
                err.contains(n),
                "{a:?}: the message should name {n:?}: {err}"
            );
        }
    }
    assert_eq!(
        std::fs::read_dir(store.path()).expect("store").count(),
        0,
        "bad flags start nothing"
    );
}

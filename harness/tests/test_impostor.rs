//! The impostor nemesis end to end (issue 19, items 4 and 5):
//! `faultline test --tls --auth --nemesis all,impostor` ends valid for
//! every workload faultline's node runs, Raft and Paxos, and its `access`
//! checker saw attempts and all of them refused; each planted access bug
//! ends invalid through `access`, naming the attempt that got in; and
//! `--nemesis impostor` without credentials is refused at the CLI.
//!
//! A fault every second for 9 s: nine turns, so the shuffled rotation of
//! the seven kinds (six of `all` unsharded, and impostor) reaches the
//! impostor in every run. Runs are short, one after another, seeded: a
//! failure prints the command that replays it.

mod test_common;

use serde_json::Value;
use std::path::Path;
use test_common::{args, one_cluster, run_dir, run_test};

const SEED: u64 = 1919;

/// The `access` checker's entry of the run in `store`.
fn access_of(store: &Path) -> Option<Value> {
    let run = run_dir(store);
    let results: Value =
        serde_json::from_slice(&std::fs::read(run.join("results.json")).expect("results.json"))
            .expect("results.json is JSON");
    results["checkers"]
        .as_array()
        .expect("checkers")
        .iter()
        .find(|c| c["checker"] == "access")
        .cloned()
}

/// Runs `faultline test --tls --auth` with `extra` in a fresh store; the
/// exit code, the command and its digest, and the access checker's entry.
fn impostor_run(extra: &[&str]) -> (Option<i32>, String, Option<Value>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().to_str().expect("utf-8 path");
    let mut a = args(&[
        "--tls",
        "--auth",
        "--store",
        store,
        "--node-count",
        "3",
        "--time-limit",
        "9s",
        "--nemesis-interval",
        "1s",
        "--seed",
        &SEED.to_string(),
    ]);
    a.extend(args(extra));
    let r = run_test(&a);
    let access = access_of(dir.path());
    (r.code, format!("{}\n{}", r.command, r.digest), access)
}

#[test]
fn every_workload_is_valid_under_all_faults_and_the_impostor_on_raft_and_paxos() {
    let _one = one_cluster();
    let mut failures = Vec::new();
    // lock-counter is not run: faultline's node refuses it (its locks are
    // leases without keepalive; `supports_workload`).
    for consensus in ["raft", "paxos"] {
        for workload in ["register", "kv", "lock", "set", "counter", "list-append"] {
            let label = format!("{workload} / {consensus}");
            let (code, command, access) = impostor_run(&[
                "--workload",
                workload,
                "--consensus",
                consensus,
                "--nemesis",
                "all,impostor",
            ]);
            eprintln!("{label}: exit {code:?}");
            if code != Some(0) {
                failures.push(format!("{label}: exit {code:?}, want 0\n  {command}"));
            }
            match &access {
                Some(a)
                    if a["verdict"] == "valid"
                        && a["detail"]["attempts"].as_u64() > Some(0)
                        && a["detail"]["refused"].as_u64() > Some(0)
                        && a["detail"]["accepted"] == serde_json::json!([]) => {}
                other => failures.push(format!(
                    "{label}: access {other:?}, want valid with attempts, all refused\n  {command}"
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn each_access_bug_ends_invalid_through_access_naming_the_attempt() {
    let _one = one_cluster();
    let mut failures = Vec::new();
    for (bug, consensus, names) in [
        // The client role's certificate asking an admin op.
        ("client-admin", "raft", "credential client asking"),
        // A node's certificate claiming another node's id in `hello`.
        ("peer-id-unchecked", "paxos", "asking hello claiming"),
    ] {
        let (code, command, access) = impostor_run(&[
            "--workload",
            "register",
            "--consensus",
            consensus,
            "--nemesis",
            "impostor",
            "--bug",
            bug,
        ]);
        eprintln!("{bug}: exit {code:?}");
        if code != Some(1) {
            failures.push(format!("{bug}: exit {code:?}, want 1\n  {command}"));
        }
        match &access {
            Some(a)
                if a["verdict"] == "invalid"
                    && a["summary"].as_str().is_some_and(|s| s.contains(names)) => {}
            other => failures.push(format!(
                "{bug}: access {other:?}, want invalid naming {names:?}\n  {command}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_impostor_without_auth_or_tls_is_refused_at_the_cli_and_starts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let store = store.to_str().expect("utf-8 path");
    let r = run_test(&args(&["--nemesis", "all,impostor", "--store", store]));
    assert_eq!(r.code, Some(254), "{}\n{}", r.command, r.digest);
    assert!(
        r.digest
            .contains("--nemesis impostor needs --auth or --tls"),
        "{}",
        r.digest
    );
    assert!(
        !Path::new(store).exists(),
        "a refused run makes no run folder"
    );
}

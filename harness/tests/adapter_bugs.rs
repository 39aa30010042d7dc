//! The planted-bug matrix through the adapter path: faultline's own node
//! run by examples/adapters/faultline-node.toml (its client a Python
//! program that links nothing of the harness) must give the verdicts the
//! built-in path gives (test_bugs.rs): every bug `faultline node
//! --list-bugs` lists caught, the same tests without a bug valid. Same
//! seeds and attempts as test_bugs.rs. Bugs whose listing names flags the
//! run needs (its fifth column: `--tls` for the access bugs) are left out:
//! an adapter takes no `--tls` (`faultline test` exits 254) and has no
//! impostor; test_bugs.rs and test_impostor.rs catch those.
//!
//! Partitions through an adapter are iptables rules, so this needs root:
//! `#[ignore]`d, run by .ci/adapters.sh with FAULTLINE_ADAPTER_TESTS=1.

mod test_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use test_common::{args, caught_within, run_test, BIN};

const SEED: u64 = 20260126;
const ATTEMPTS: u64 = 4;

fn test_args(store: &str, workload: &str, nemesis: &str) -> Vec<String> {
    let adapter =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/adapters/faultline-node.toml");
    args(&[
        "--system",
        adapter.to_str().expect("utf-8 path"),
        "--workload",
        workload,
        "--nemesis",
        nemesis,
        "--time-limit",
        "12s",
        "--nemesis-interval",
        "3s",
        "--store",
        store,
    ])
}

#[test]
#[ignore = "needs root (iptables partitions) and /usr/bin/python3: .ci/adapters.sh"]
fn every_planted_bug_is_caught_through_the_adapter_and_clean_runs_pass() {
    assert!(
        std::env::var("FAULTLINE_ADAPTER_TESTS").is_ok_and(|v| v == "1"),
        "set FAULTLINE_ADAPTER_TESTS=1 (run by .ci/adapters.sh, as root)"
    );
    let out = Command::new(BIN)
        .args(["node", "--list-bugs"])
        .output()
        .expect("--list-bugs runs");
    let listed = String::from_utf8(out.stdout).expect("utf-8");
    let bugs: Vec<Vec<&str>> = listed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').collect::<Vec<&str>>())
        .filter(|b| b.get(4).is_some_and(|flags| *flags == "-"))
        .collect();
    assert!(!bugs.is_empty(), "the node lists no bugs");
    let store = tempfile::tempdir().expect("tempdir");
    let store = store.path().to_str().expect("utf-8 path").to_string();
    let mut failures = Vec::new();
    for b in &bugs {
        let (bug, workload, nemesis) = (b[0], b[1], b[2]);
        let mut a = test_args(&store, workload, nemesis);
        a.extend(args(&["--param", &format!("bug={bug}")]));
        failures.extend(caught_within(
            &a,
            SEED,
            ATTEMPTS,
            &format!("bug {bug} through the adapter"),
        ));
    }
    let clean: BTreeSet<(&str, &str)> = bugs.iter().map(|b| (b[1], b[2])).collect();
    for (workload, nemesis) in clean {
        let mut a = test_args(&store, workload, nemesis);
        a.extend(args(&["--seed", &SEED.to_string()]));
        let r = run_test(&a);
        eprintln!(
            "{workload} / {nemesis} through the adapter without a bug: exit {:?}",
            r.code
        );
        if r.code != Some(0) {
            failures.push(format!(
                "{workload} / {nemesis} without a bug is not valid (exit {:?}, want 0)\n  {}\n{}",
                r.code, r.command, r.digest
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

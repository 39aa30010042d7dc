//! The harness's proof of power: every bug `faultline node --list-bugs`
//! lists, tested with the workload and nemesis it names, ends invalid
//! (exit 1); the same tests with no bug end valid (exit 0); and so again
//! with `--auth` (the secured cluster). Each run carries the flags the
//! listing's fifth column says the bug needs (`--tls` for the access bugs,
//! caught by the impostor nemesis through the `access` checker), and so
//! does its run without the bug.
//!
//! Short runs (12 s of operations, a fault every 3 s: four faults, so the
//! kill nemesis's rotation includes killing every node), one after another
//! within a matrix. The two matrices run side by side (two clusters at
//! once, each in its own store, the harness's iptables rules matching each
//! run's own ports): this binary was CI's longest, and its runs mostly
//! wait on the clock.
//! Seeds are fixed so a failure replays: each failure prints its command.
//!
//! A fault schedule is random, and a single 12 s run does not always hit
//! the one moment a bug needs (measured: most bugs are caught by most
//! seeds, not all). So a bug counts as caught when one of up to
//! [`ATTEMPTS`] runs with consecutive seeds ends invalid; a run without a
//! bug must end valid every time (a false alarm is never retried away).

mod test_common;

use std::collections::BTreeSet;
use std::process::Command;
use test_common::{args, caught_within, run_test, BIN};

/// Seed of the first run of each test (the nemesis schedule and the ops).
const SEED: u64 = 20260126;
/// Runs (seeds SEED, SEED+1, …) a bug gets to be caught.
const ATTEMPTS: u64 = 4;

struct Listed {
    bug: String,
    workload: String,
    nemesis: String,
    /// The flags the run needs (`-` in the listing: none).
    flags: Vec<String>,
}

fn list_bugs() -> Vec<Listed> {
    let out = Command::new(BIN)
        .args(["node", "--list-bugs"])
        .output()
        .expect("faultline node --list-bugs runs");
    assert!(
        out.status.success(),
        "--list-bugs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(
                f.len(),
                5,
                "a --list-bugs line has name, workload, nemesis, description, flags: {l:?}"
            );
            let flags = match f[4] {
                "-" => Vec::new(),
                flags => flags.split(' ').map(str::to_string).collect(),
            };
            Listed {
                bug: f[0].into(),
                workload: f[1].into(),
                nemesis: f[2].into(),
                flags,
            }
        })
        .collect()
}

/// The arguments of one short test (12 s of ops, a fault every 3 s).
fn test_args(store: &str, workload: &str, nemesis: &str) -> Vec<String> {
    args(&[
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
fn every_listed_bug_is_caught_and_the_same_tests_without_it_pass() {
    bug_matrix(&[]);
}

/// The same matrix with `--auth` (issue 17): the nodes require the run's
/// token and every client, probe and admin request sends it; securing the
/// cluster must neither hide a bug nor raise a false alarm.
#[test]
fn with_auth_every_listed_bug_is_caught_and_the_same_tests_without_it_pass() {
    bug_matrix(&["--auth"]);
}

/// Every listed bug caught within [`ATTEMPTS`] seeds, and each of their
/// workload and nemesis pairs valid without a bug; `extra` flags on every run.
fn bug_matrix(extra: &[&str]) {
    let bugs = list_bugs();
    assert!(!bugs.is_empty(), "the node lists no bugs");
    let store = tempfile::tempdir().expect("tempdir");
    let store = store.path().to_str().expect("utf-8 path").to_string();
    let mut failures = Vec::new();
    for b in &bugs {
        let mut a = test_args(&store, &b.workload, &b.nemesis);
        a.extend(args(extra));
        a.extend(b.flags.iter().cloned());
        a.extend(args(&["--bug", &b.bug]));
        failures.extend(caught_within(&a, SEED, ATTEMPTS, &format!("bug {}", b.bug)));
    }
    let clean: BTreeSet<(String, String, Vec<String>)> = bugs
        .iter()
        .map(|b| (b.workload.clone(), b.nemesis.clone(), b.flags.clone()))
        .collect();
    for (workload, nemesis, flags) in clean {
        let mut a = test_args(&store, &workload, &nemesis);
        a.extend(args(extra));
        a.extend(flags.iter().cloned());
        a.extend(args(&["--seed", &SEED.to_string()]));
        let r = run_test(&a);
        let flags = flags.join(" ");
        eprintln!(
            "{workload} / {nemesis} {flags} without a bug: exit {:?}",
            r.code
        );
        if r.code != Some(0) {
            failures.push(format!(
                "{workload} / {nemesis} {flags} without a bug is not valid (exit {:?}, want 0)\n  {}\n{}",
                r.code, r.command, r.digest
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

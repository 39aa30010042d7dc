//! `faultline test --consensus paxos`: every workload under `--nemesis all`
//! ends valid, and the planted `stale-read` bug ends invalid. The same
//! shared state machine, storage, transport and bugs as Raft, with the
//! Multi-Paxos core (issue 7's end-to-end proof).
//!
//! Runs are sequential (one cluster at a time on a 2-core machine) and
//! seeded, so a failure prints the command that replays it. A stale read
//! needs a partition at the right moment, so the bug gets up to
//! [`ATTEMPTS`] seeded runs; a run without a bug must be valid every time.

mod test_common;

use test_common::{args, caught_within, run_test};

const SEED: u64 = 7;
const ATTEMPTS: u64 = 3;

#[test]
fn paxos_is_valid_under_every_fault_and_its_stale_read_bug_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().to_str().expect("utf-8 path");
    let common = [
        "--consensus",
        "paxos",
        "--store",
        store,
        "--time-limit",
        "12s",
        "--nemesis-interval",
        "3s",
    ];
    let mut failures = Vec::new();
    for workload in ["register", "kv", "lock", "set", "counter"] {
        let mut a = args(&common);
        a.extend(args(&[
            "--workload",
            workload,
            "--nemesis",
            "all",
            "--node-count",
            "3",
        ]));
        a.extend(args(&["--seed", &SEED.to_string()]));
        let r = run_test(&a);
        eprintln!("paxos {workload} / all: exit {:?}", r.code);
        if r.code != Some(0) {
            failures.push(format!(
                "paxos {workload} under --nemesis all is not valid (exit {:?}, want 0)\n  {}\n{}",
                r.code, r.command, r.digest
            ));
        }
    }
    let mut a = args(&common);
    a.extend(args(&[
        "--workload",
        "register",
        "--nemesis",
        "partition",
        "--bug",
        "stale-read",
    ]));
    failures.extend(caught_within(&a, SEED, ATTEMPTS, "paxos stale-read"));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

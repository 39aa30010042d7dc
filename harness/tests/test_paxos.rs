//! `faultline test --consensus paxos`: every workload under `--nemesis all`
//! ends valid, and the planted `stale-read` bug ends invalid. The same
//! shared state machine, storage, transport and bugs as Raft, with the
//! Multi-Paxos core (issue 7's end-to-end proof).
//!
//! Runs are sequential (one cluster at a time on a 2-core machine) and
//! seeded, so a failure prints the command that replays it. A stale read
//! needs a partition at the right moment, so the bug gets up to
//! [`ATTEMPTS`] seeded runs; a run without a bug must be valid every time.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_faultline");
const SEED: u64 = 7;
const ATTEMPTS: u64 = 3;

fn run(store: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all: Vec<String> = [
        "test",
        "--consensus",
        "paxos",
        "--store",
        store,
        "--time-limit",
        "12s",
        "--nemesis-interval",
        "3s",
    ]
    .map(String::from)
    .to_vec();
    all.extend(args.iter().map(|a| a.to_string()));
    let out = Command::new(BIN)
        .args(&all)
        .output()
        .expect("faultline test runs");
    let digest = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .join("\n")
    );
    (
        out.status.code(),
        format!("faultline {}", all.join(" ")),
        digest,
    )
}

#[test]
fn paxos_is_valid_under_every_fault_and_its_stale_read_bug_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().to_str().expect("utf-8 path").to_string();
    let mut failures = Vec::new();
    let seed = SEED.to_string();
    for workload in ["register", "kv", "lock", "set", "counter"] {
        let (code, cmd, digest) = run(
            &store,
            &[
                "--workload",
                workload,
                "--nemesis",
                "all",
                "--node-count",
                "3",
                "--seed",
                &seed,
            ],
        );
        eprintln!("paxos {workload} / all: exit {code:?}");
        if code != Some(0) {
            failures.push(format!("paxos {workload} under --nemesis all is not valid (exit {code:?}, want 0)\n  {cmd}\n{digest}"));
        }
    }
    let mut misses = Vec::new();
    for s in SEED..SEED + ATTEMPTS {
        let s = s.to_string();
        let (code, cmd, digest) = run(
            &store,
            &[
                "--workload",
                "register",
                "--nemesis",
                "partition",
                "--bug",
                "stale-read",
                "--seed",
                &s,
            ],
        );
        eprintln!("paxos stale-read seed {s}: exit {code:?}");
        if code == Some(1) {
            misses.clear();
            break;
        }
        misses.push(format!("exit {code:?}, want 1\n  {cmd}\n{digest}"));
    }
    if !misses.is_empty() {
        failures.push(format!(
            "paxos stale-read was not caught in {ATTEMPTS} runs:\n{}",
            misses.join("\n")
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

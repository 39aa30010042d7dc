//! Shared by the tests that run whole `faultline test` runs as a user
//! would (test_bugs, test_paxos): one run as a child process, its exit
//! code, the command that replays it, and a digest of what it printed.
#![allow(dead_code)]

use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_faultline");

/// What one `faultline test` run ended with.
pub struct RunOutcome {
    pub code: Option<i32>,
    /// `faultline test …`, to replay the run by hand.
    pub command: String,
    /// stdout and the last lines of stderr, for a failure message.
    pub digest: String,
}

/// Runs `faultline test ARGS…` and waits for it.
pub fn run_test(args: &[String]) -> RunOutcome {
    let mut all = vec!["test".to_string()];
    all.extend(args.iter().cloned());
    let out = Command::new(BIN)
        .args(&all)
        .output()
        .expect("faultline test runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    tail.reverse();
    RunOutcome {
        code: out.status.code(),
        command: format!("faultline {}", all.join(" ")),
        digest: format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            tail.join("\n")
        ),
    }
}

/// Runs a test that must catch a planted bug: up to `attempts` runs with
/// consecutive seeds from `seed` (a short random fault schedule does not
/// always hit the moment a bug needs); `args` gets `--seed N` appended.
/// Returns None when one run ended invalid (exit 1), else why not.
pub fn caught_within(args: &[String], seed: u64, attempts: u64, label: &str) -> Option<String> {
    let mut misses = Vec::new();
    for s in seed..seed + attempts {
        let mut a = args.to_vec();
        a.extend(["--seed".to_string(), s.to_string()]);
        let r = run_test(&a);
        eprintln!("{label} seed {s}: exit {:?}", r.code);
        if r.code == Some(1) {
            return None;
        }
        misses.push(format!(
            "exit {:?}, want 1\n  {}\n{}",
            r.code, r.command, r.digest
        ));
    }
    Some(format!(
        "{label} was not caught in {attempts} runs:\n{}",
        misses.join("\n")
    ))
}

/// Turns `&str` arguments into owned ones.
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

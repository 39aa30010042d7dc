//! Shared by the tests that run whole `faultline test` runs as a user
//! would (test_bugs, test_paxos): one run as a child process, its exit
//! code, the command that replays it, and a digest of what it printed.
#![allow(dead_code)]

pub mod audit;

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

/// Runs `faultline ARGS…` and returns its exit code, stdout and stderr.
pub fn faultline(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("faultline runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One cluster at a time: the tests of one file would otherwise run their
/// clusters side by side on a 2-core machine, and a membership change or
/// an election starved of CPU can time out.
static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the one-cluster lock until the guard drops.
pub fn one_cluster() -> std::sync::MutexGuard<'static, ()> {
    // A test that failed while holding the lock poisons it; the next may still run.
    ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner())
}

/// The one run directory under `store` (store/<test>/<id>/; `latest`
/// links are skipped).
pub fn run_dir(store: &std::path::Path) -> std::path::PathBuf {
    let real_dirs = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .expect("a store directory")
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect()
    };
    let mut dirs: Vec<std::path::PathBuf> =
        real_dirs(store).iter().flat_map(|t| real_dirs(t)).collect();
    assert_eq!(dirs.len(), 1, "one run in {}: {dirs:?}", store.display());
    dirs.pop().expect("one run")
}

/// Every live process (zombies skipped) and its command line, the
/// arguments joined by spaces.
pub fn live_processes() -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if !zombie {
            found.push((pid, String::from_utf8_lossy(&raw).replace('\0', " ")));
        }
    }
    found
}

/// Waits for `child` to exit; after `timeout`, kills it and fails the
/// test, naming what it should have exited after.
pub fn wait_for_exit(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
    after: &str,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("faultline did not exit within {timeout:?} of {after}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

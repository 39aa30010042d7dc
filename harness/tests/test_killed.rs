//! A `faultline test` killed with SIGKILL (an out-of-memory kill, a CI
//! timeout) cannot clean up, so nothing it started may depend on it:
//! its nodes die with it (PR_SET_PDEATHSIG), and what else it made (the
//! iptables chain, hooked into INPUT) is in its ledger, which the next
//! `faultline heal` or `faultline test` undoes, saying what it cleaned.
//!
//! As root (CI runs `cargo test` as root), partitions are iptables rules
//! and the chain must be there after the kill and gone after the heal;
//! elsewhere the nodes' message filter cuts, and the rest is checked.
//! The etcd variant (members in their own process group under a uid each,
//! which must not clear the death signal) needs etcd and root:
//! `FAULTLINE_ETCD_TESTS=1 cargo test --release --workspace --test test_killed -- --ignored`
//! (.ci/etcd.sh).

mod test_common;

use faultline::ledger::{ledger_dir, process, Recorded, Resource};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use test_common::{live_processes, BIN};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Live processes whose command line mentions `needle` (the run's store)
/// and runs a node.
fn nodes_mentioning(needle: &str) -> Vec<(u32, String)> {
    live_processes()
        .into_iter()
        .filter(|(_, cmd)| cmd.contains(needle) && (cmd.contains(" node ") || cmd.contains("etcd")))
        .collect()
}

fn chain_exists(chain: &str) -> bool {
    Command::new("iptables")
        .args(["-w", "-n", "-L", chain])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether INPUT or OUTPUT jumps to `chain`.
fn hooked(chain: &str) -> bool {
    ["INPUT", "OUTPUT"].iter().any(|anchor| {
        let rules = Command::new("iptables")
            .args(["-w", "-S", anchor])
            .output()
            .expect("iptables -S");
        String::from_utf8_lossy(&rules.stdout).contains(&format!("-j {chain}"))
    })
}

/// A `faultline test` of 5 nodes of `system` under partitions and pauses,
/// in `store`.
fn start_run(store: &Path, system: &str) -> Child {
    Command::new(BIN)
        .args([
            "test",
            "--system",
            system,
            "--time-limit",
            "120s",
            "--nemesis",
            "partition,pause",
            "--nemesis-interval",
            "2s",
            "--seed",
            "11",
            "--store",
            store.to_str().expect("utf-8 temp path"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("faultline starts")
}

/// The run's id, once its test.json is written.
fn run_id(store: &Path, deadline: Instant) -> String {
    let path = store.join("latest/test.json");
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
                return json["run_id"]
                    .as_str()
                    .expect("test.json has run_id")
                    .into();
            }
        }
        assert!(Instant::now() < deadline, "no {} in time", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ledger_path(store: &Path, run_id: &str) -> PathBuf {
    ledger_dir(store).join(format!("{run_id}.jsonl"))
}

fn read_ledger(store: &Path, run_id: &str) -> Recorded {
    Recorded::parse(&std::fs::read(ledger_path(store, run_id)).unwrap_or_default())
}

/// Whether the history shows a partition that has started and not stopped.
fn partition_active(store: &Path) -> bool {
    let text = std::fs::read_to_string(store.join("latest/history.jsonl")).unwrap_or_default();
    let mut active = false;
    for line in text.lines() {
        if line.contains("\"f\":\"start-partition\"") {
            active = true;
        } else if line.contains("\"f\":\"stop-partition\"") {
            active = false;
        }
    }
    active
}

/// What the run is killed in the middle of.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// A partition is in force (started in the history, not stopped).
    Partition,
    /// A node is paused (SIGSTOP, held in the ledger).
    Pause,
}

/// What was there when the run was killed.
struct Killed {
    run_id: String,
    /// Node pids the ledger held as running or paused.
    node_pids: Vec<u32>,
    paused_pids: Vec<u32>,
}

/// Starts a run, waits for `moment`, and SIGKILLs it.
fn kill_mid(store: &Path, moment: Moment, system: &str) -> Killed {
    let mut child = start_run(store, system);
    let deadline = Instant::now() + Duration::from_secs(120);
    let run_id = run_id(store, deadline);
    let recorded = loop {
        let recorded = read_ledger(store, &run_id);
        // Recorded before its SIGSTOP: wait until it is stopped.
        let paused = recorded.held.values().any(|r| match r {
            Resource::Paused { identity, .. } => identity.is_stopped(),
            _ => false,
        });
        let now = match moment {
            Moment::Partition => partition_active(store),
            Moment::Pause => paused,
        };
        if now {
            break recorded;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("faultline ended ({status}) before a {moment:?}");
        }
        assert!(
            Instant::now() < deadline,
            "no {moment:?} within 120 s; ledger: {recorded:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().expect("SIGKILL faultline test");
    child.wait().expect("reap faultline test");
    let mut node_pids = Vec::new();
    let mut paused_pids = Vec::new();
    for r in recorded.held.values() {
        match r {
            Resource::Process { identity, .. } => node_pids.push(identity.pid),
            Resource::Paused { identity, .. } => paused_pids.push(identity.pid),
            _ => {}
        }
    }
    assert_eq!(node_pids.len(), 5, "five nodes running: {recorded:?}");
    if matches!(moment, Moment::Pause) {
        assert!(!paused_pids.is_empty());
    }
    Killed {
        run_id,
        node_pids,
        paused_pids,
    }
}

/// What a killed run must have left, and not left, before anyone heals.
fn check_left_behind(store: &Path, killed: &Killed) {
    let store_text = store.to_str().expect("utf-8");
    // The kernel kills the nodes (paused ones too) once the harness is
    // gone; that takes a moment, not a heal.
    let deadline = Instant::now() + Duration::from_secs(10);
    let token = format!("faultline-{}", killed.run_id);
    loop {
        let marked = process::marked(&killed.run_id);
        let by_store = nodes_mentioning(store_text);
        let by_token = nodes_mentioning(&token);
        let recorded_alive: Vec<u32> = killed
            .node_pids
            .iter()
            .copied()
            .filter(|&pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    s.rsplit_once(')')
                        .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
                })
            })
            .collect();
        if marked.is_empty()
            && by_store.is_empty()
            && by_token.is_empty()
            && recorded_alive.is_empty()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node processes outlived the SIGKILLed harness: {marked:?} {by_store:?} \
             {by_token:?} {recorded_alive:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ledger = read_ledger(store, &killed.run_id);
    assert!(!ledger.closed, "a killed run never closes its ledger");
    let chain = format!("FAULTLINE-{}", killed.run_id);
    let chain_held = ledger.held.values().any(|r| {
        *r == Resource::IptablesChain {
            chain: chain.clone(),
        }
    });
    if is_root() {
        assert!(chain_held, "as root the run uses iptables: {ledger:?}");
        assert!(chain_exists(&chain), "nobody removed {chain} yet");
        assert!(hooked(&chain), "{chain} still hooked");
    } else {
        assert!(!chain_held, "{ledger:?}");
    }
}

/// What a heal must have done for `killed`: its chain removed (as root)
/// and said so in one line naming the run; nothing resumed; no node
/// killed again (they died with the harness); the ledger retired.
fn check_healed(store: &Path, killed: &Killed, printed: &str) {
    let chain = format!("FAULTLINE-{}", killed.run_id);
    let ours: Vec<&str> = printed
        .lines()
        .filter(|l| l.contains(&format!("healed run {}:", killed.run_id)))
        .collect();
    if is_root() {
        assert!(!chain_exists(&chain), "{chain} left after heal:\n{printed}");
        assert!(!hooked(&chain), "a jump to {chain} is left");
        assert_eq!(
            ours,
            [format!(
                "healed run {}: removed iptables chain {chain} and the jump to it",
                killed.run_id
            )
            .as_str()],
            "one line per thing cleaned:\n{printed}"
        );
    } else {
        assert!(ours.is_empty(), "nothing to clean here:\n{printed}");
    }
    assert!(!printed.contains("resumed"), "{printed}");
    for pid in killed.node_pids.iter().chain(&killed.paused_pids) {
        assert!(
            !printed.contains(&format!("(pid {pid})")),
            "pid {pid} died with the harness; heal must not act on it:\n{printed}"
        );
    }
    assert!(
        !ledger_path(store, &killed.run_id).exists(),
        "a healed ledger is retired"
    );
    let kept = store.join("latest").join("ledger.jsonl");
    let kept = Recorded::parse(&std::fs::read(&kept).expect("the ledger is kept in the run"));
    assert!(kept.healed, "{kept:?}");
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn sigkill_mid_partition_leaves_no_node_and_faultline_heal_removes_the_chain() {
    let store = tempfile::tempdir().expect("tempdir");
    let killed = kill_mid(store.path(), Moment::Partition, "faultline");
    check_left_behind(store.path(), &killed);
    heal_and_check(store.path(), &killed);
}

/// `faultline heal` heals `killed`, says so, and finds nothing the second time.
fn heal_and_check(store: &Path, killed: &Killed) {
    let heal = Command::new(BIN)
        .args(["heal", "--store", store.to_str().expect("utf-8")])
        .output()
        .expect("faultline heal runs");
    let printed = text(&heal);
    assert_eq!(heal.status.code(), Some(0), "{printed}");
    check_healed(store, killed, &String::from_utf8_lossy(&heal.stdout));
    let again = Command::new(BIN)
        .args(["heal", "--store", store.to_str().expect("utf-8")])
        .output()
        .expect("faultline heal runs");
    assert_eq!(again.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&again.stdout).starts_with("nothing to heal in "),
        "nothing twice: {}",
        text(&again)
    );
}

#[test]
fn sigkill_mid_pause_leaves_no_node_and_the_next_test_removes_the_chain() {
    let store = tempfile::tempdir().expect("tempdir");
    let killed = kill_mid(store.path(), Moment::Pause, "faultline");
    check_left_behind(store.path(), &killed);
    let next = Command::new(BIN)
        .args([
            "test",
            "--time-limit",
            "2s",
            "--nemesis",
            "partition",
            "--store",
            store.path().to_str().expect("utf-8"),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("the next faultline test runs");
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert_eq!(next.status.code(), Some(0), "{stderr}");
    let heal_lines: String = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("faultline: "))
        .filter(|l| l.starts_with("healed run "))
        .map(|l| format!("{l}\n"))
        .collect();
    // The killed run's directory is no longer `latest`: look it up.
    let latest = store.path().join("latest");
    let killed_dir = std::fs::read_dir(latest.parent().expect("store"))
        .expect("store")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.ends_with(".ledger") && !p.ends_with("latest"))
        .flat_map(|test| std::fs::read_dir(test).into_iter().flatten().flatten())
        .map(|e| e.path())
        .find(|run| {
            std::fs::read_to_string(run.join("test.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|j| j["run_id"] == killed.run_id.as_str())
        })
        .expect("the killed run's directory");
    let kept = Recorded::parse(&std::fs::read(killed_dir.join("ledger.jsonl")).unwrap_or_default());
    assert!(
        kept.healed,
        "healed before the next run: {kept:?}\n{stderr}"
    );
    let chain = format!("FAULTLINE-{}", killed.run_id);
    if is_root() {
        assert!(!chain_exists(&chain), "{chain} left:\n{stderr}");
    }
    // check_healed reads `latest`'s ledger: the new run's, closed cleanly.
    let new_run = Recorded::parse(&std::fs::read(latest.join("ledger.jsonl")).expect("kept"));
    assert!(new_run.is_clean(), "the next run ends clean: {new_run:?}");
    assert!(heal_lines.lines().count() <= 1, "{heal_lines}");
    if is_root() {
        assert_eq!(
            heal_lines,
            format!(
                "healed run {}: removed iptables chain {chain} and the jump to it\n",
                killed.run_id
            ),
            "{stderr}"
        );
    } else {
        assert!(heal_lines.is_empty(), "{stderr}");
    }
    assert!(!stderr.contains("resumed"), "{stderr}");
    for pid in killed.node_pids.iter().chain(&killed.paused_pids) {
        assert!(
            !heal_lines.contains(&format!("(pid {pid})")),
            "{heal_lines}"
        );
    }
    assert!(!ledger_path(store.path(), &killed.run_id).exists());
}

#[test]
#[ignore = "needs etcd and root: run by .ci/etcd.sh with FAULTLINE_ETCD_TESTS=1"]
fn sigkill_mid_pause_of_etcd_members_under_their_own_uids_leaves_none() {
    assert!(
        std::env::var("FAULTLINE_ETCD_TESTS").is_ok_and(|v| v == "1"),
        "set FAULTLINE_ETCD_TESTS=1 (run by .ci/etcd.sh, as root, with etcd-server)"
    );
    assert!(
        is_root(),
        "etcd members run under uids of their own only as root"
    );
    let store = tempfile::tempdir().expect("tempdir");
    let killed = kill_mid(store.path(), Moment::Pause, "etcd");
    check_left_behind(store.path(), &killed);
    heal_and_check(store.path(), &killed);
}

//! An interrupted `faultline test` leaves nothing behind: SIGINT (or
//! SIGTERM) mid-run, with faults active, must heal every fault and stop
//! every node — no `faultline node` of the run left running, no iptables
//! chain of the run left — and leave a history `faultline analyze` can
//! check.

mod test_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_common::{live_processes, wait_for_exit, BIN};

/// Processes whose command line mentions `needle` (our run's store).
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    live_processes()
        .into_iter()
        .filter(|(_, cmd)| cmd.contains(needle) && cmd.contains(" node "))
        .collect()
}

fn wait_for_fault(history: &Path, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(history) {
            if text.contains("\"f\":\"start-") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn interrupt_mid_run(signal: libc::c_int, signal_name: &str) {
    let store = tempfile::tempdir().expect("tempdir");
    let store_path = store.path().to_str().expect("utf-8 temp path").to_string();
    let mut child = Command::new(BIN)
        .args([
            "test",
            "--time-limit",
            "120s",
            "--nemesis",
            "partition,pause",
            "--nemesis-interval",
            "2s",
            "--seed",
            "7",
            "--store",
            &store_path,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faultline starts");
    let history = store.path().join("latest/history.jsonl");
    let faulted = wait_for_fault(&history, Instant::now() + Duration::from_secs(90));
    let nodes_before = processes_mentioning(&store_path).len();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let status = wait_for_exit(&mut child, Duration::from_secs(60), signal_name);
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        faulted,
        "no fault started before the interrupt; stderr:\n{stderr}"
    );
    // No kill in this nemesis: all 5 nodes are up (maybe paused), or "none
    // left" below would prove nothing.
    assert_eq!(
        nodes_before, 5,
        "the run's nodes before the interrupt; stderr:\n{stderr}"
    );
    assert_eq!(
        status.code(),
        Some(255),
        "an interrupted run is a harness failure; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("interrupted by {signal_name}")),
        "stderr:\n{stderr}"
    );

    let left = processes_mentioning(&store_path);
    assert!(
        left.is_empty(),
        "node processes left after {signal_name}: {left:?}"
    );

    let test_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store.path().join("latest/test.json")).expect("test.json"),
    )
    .expect("test.json is JSON");
    if let Some(chain) = test_json["cluster"]["iptables_chain"].as_str() {
        let exists = Command::new("iptables")
            .args(["-w", "-n", "-L", chain])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(!exists, "iptables chain {chain} left after {signal_name}");
        let rules = Command::new("iptables")
            .args(["-w", "-S", "INPUT"])
            .output()
            .expect("iptables -S");
        assert!(
            !String::from_utf8_lossy(&rules.stdout).contains(chain),
            "a jump to {chain} is left in INPUT"
        );
    }

    // The partial history is checkable.
    let analyze = Command::new(BIN)
        .args(["analyze", &format!("{store_path}/latest")])
        .output()
        .expect("analyze runs");
    assert!(
        matches!(analyze.status.code(), Some(0..=2)),
        "analyze of the interrupted run: {:?}\n{}",
        analyze.status,
        String::from_utf8_lossy(&analyze.stderr)
    );
}

#[test]
fn sigint_mid_run_heals_and_stops_everything() {
    interrupt_mid_run(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_mid_run_heals_and_stops_everything() {
    interrupt_mid_run(libc::SIGTERM, "SIGTERM");
}

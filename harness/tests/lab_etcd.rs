//! `faultline test --lab DIR --system etcd` in remote mode against a
//! 3-host lab: etcd members run as daemons on the hosts (Debian's
//! etcd-server, which the hosts have from this machine's own packages: the
//! lab shares its filesystem and has no network), partitions cut each
//! host's peer port with iptables on the host, kills are SIGKILL and a
//! restart on the same data; the register workload ends valid, every
//! member's log reaches the store, test.json names etcd and its version,
//! and no etcd process or iptables rule is left on any host. The version in
//! test.json is the one every host's etcd reported.
//!
//! Needs root: `FAULTLINE_LAB_TESTS=1 cargo test --release --workspace --test lab_etcd -- --ignored`
//! (.ci/lab.sh), and etcd on PATH.

mod lab_support;

use lab_support::{enabled, faultline, on_host, text, TestLab};
use std::process::Command;

/// What is left on host `addr`: iptables rules of ours and etcd processes.
fn leftovers(lab: &TestLab, addr: &str) -> String {
    on_host(
        lab,
        addr,
        "echo rules=$(iptables -w -S | grep -c FL-) procs=$(ps -e -o comm= | grep -c '^etcd')",
    )
}

#[test]
#[ignore = "needs root, etcd, and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn etcd_in_the_lab_is_valid_under_partitions_and_kills_and_leaves_nothing() {
    if !enabled("lab_etcd") {
        return;
    }
    let lab = TestLab::up(3);
    let store = tempfile::tempdir().expect("tempdir");
    let out = Command::new(faultline())
        .args(["test", "--lab", lab.dir_str(), "--system", "etcd"])
        .args(["--store", store.path().to_str().expect("utf-8")])
        .args(["--name", "etcd-lab", "--install-deps"])
        .args(["--workload", "register", "--nemesis", "partition,kill"])
        .args(["--nemesis-interval", "3s", "--time-limit", "20s"])
        .args(["--seed", "12"])
        .output()
        .expect("faultline runs");
    assert_eq!(out.status.code(), Some(0), "want valid:\n{}", text(&out));
    let dir = store.path().join("latest");
    for n in 1..=3 {
        let log = dir.join("nodes").join(format!("n{n}.log"));
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        // etcd's zap logger names its members in its own lines.
        assert!(
            log_text.contains("\"level\""),
            "{} is not an etcd log:\n{log_text}",
            log.display()
        );
    }
    let test: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("test.json")).expect("test.json"))
            .expect("json");
    assert_eq!(test["cluster"]["kind"], "ssh");
    assert_eq!(test["system"]["kind"], "etcd");
    assert!(
        test["system"]["version"]
            .as_str()
            .expect("a version")
            .starts_with("etcd 3."),
        "{test}"
    );
    // The version is what the hosts' etcd said, every host asked.
    let said = test["cluster"]["host_versions"]
        .as_array()
        .expect("host_versions");
    assert_eq!(said.len(), 3, "{test}");
    for h in said {
        assert_eq!(h["version"], test["system"]["version"], "{test}");
    }
    assert_eq!(test["mechanisms"]["partition"], "iptables");
    let history = std::fs::read_to_string(dir.join("history.jsonl")).expect("history");
    for fault in ["start-partition", "start-kill"] {
        assert!(history.contains(fault), "no {fault} in the history");
    }
    assert!(
        history.contains("\"type\":\"ok\""),
        "the clients got answers from the members"
    );
    for i in 1..=3 {
        assert_eq!(leftovers(&lab, &lab.addr(i)), "rules=0 procs=0", "host {i}");
    }
}

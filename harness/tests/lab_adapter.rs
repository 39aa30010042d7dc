//! `faultline test --lab DIR --system FILE.toml`: an adapter in remote mode
//! against a 3-host lab (docs/adapters.md, "Remote mode"). The adapter's
//! directory is uploaded to every host, its node script runs there as a
//! daemon by pidfile (kills and pauses reach its whole process group), its
//! ports are the file's own, partitions are iptables rules on the hosts,
//! and its client runs here, on the controller, talking to the hosts'
//! addresses. faultline's own node through examples/adapters/faultline-node.toml
//! ends valid under partitions and kills, and a planted bug through the
//! same file ends invalid; nothing is left on the hosts.
//!
//! Needs root: `FAULTLINE_LAB_TESTS=1 cargo test --release -p faultline --test lab_adapter -- --ignored`
//! (.ci/lab.sh), with `flock /tmp/faultline-lab.lock` around it, and
//! /usr/bin/python3 (the client runs on this machine).

mod lab_support;

use lab_support::{enabled, faultline, on_host, text, TestLab};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn adapter(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/adapters")
        .join(name)
}

/// What is left on host `addr`: iptables rules of ours and processes
/// named `comm`.
fn leftovers(lab: &TestLab, addr: &str, comm: &str) -> String {
    on_host(
        lab,
        addr,
        &format!(
            "echo rules=$(iptables -w -S | grep -c FL-) procs=$(ps -e -o comm= | grep -c '^{comm}')"
        ),
    )
}

fn run_test(lab: &TestLab, store: &Path, name: &str, rest: &[&str]) -> Output {
    let system = adapter("faultline-node.toml");
    Command::new(faultline())
        .args(["test", "--lab", lab.dir_str()])
        .args(["--system", system.to_str().expect("utf-8")])
        .args(["--store", store.to_str().expect("utf-8")])
        .args(["--name", name])
        .args(rest)
        .output()
        .expect("faultline runs")
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn the_faultline_node_adapter_in_the_lab_is_valid_and_its_planted_bug_is_caught() {
    if !enabled("lab_adapter") {
        return;
    }
    assert!(
        Path::new("/usr/bin/python3").exists(),
        "the faultline-node adapter's client needs /usr/bin/python3 on this machine"
    );
    let lab = TestLab::up(3);
    let store = tempfile::tempdir().expect("tempdir");
    let out = run_test(
        &lab,
        store.path(),
        "adapter-lab",
        &[
            "--workload",
            "register",
            "--nemesis",
            "partition,kill",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "20s",
            "--seed",
            "12",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "want valid:\n{}", text(&out));
    let dir = store.path().join("latest");
    let test: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("test.json")).expect("test.json"))
            .expect("json");
    assert_eq!(test["cluster"]["kind"], "ssh", "{test}");
    assert_eq!(test["system"]["kind"], "adapter", "{test}");
    assert_eq!(test["mechanisms"]["partition"], "iptables", "{test}");
    assert_eq!(test["mechanisms"]["kill"], "signal", "{test}");
    let history = std::fs::read_to_string(dir.join("history.jsonl")).expect("history");
    for fault in ["start-partition", "start-kill"] {
        assert!(history.contains(fault), "no {fault} in the history");
    }
    assert!(
        history.contains("\"type\":\"ok\""),
        "the clients on this machine got answers from the hosts"
    );
    for n in 1..=3 {
        let log = dir.join("nodes").join(format!("n{n}.log"));
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        // The node script's own lines, from the host.
        assert!(
            log_text.contains(&format!("faultline: n{n}: daemon node started, pid ")),
            "{} is not the node script's log:\n{log_text}",
            log.display()
        );
        // Its address is the host's, its port the file's.
        assert!(
            log_text.contains(&format!("10.77.0.{}:7001", 10 + n)),
            "{} does not show the node on its host's address and the file's port:\n{log_text}",
            log.display()
        );
    }
    for i in 1..=3 {
        assert_eq!(
            leftovers(&lab, &lab.addr(i), "faultline"),
            "rules=0 procs=0",
            "host {i}"
        );
    }

    // A planted bug through the same file, on the same hosts: caught.
    let mut codes = Vec::new();
    for seed in 1..=4 {
        let out = run_test(
            &lab,
            store.path(),
            "adapter-lab-bug",
            &[
                "--param",
                "bug=stale-read",
                "--workload",
                "register",
                "--nemesis",
                "partition",
                "--nemesis-interval",
                "3s",
                "--time-limit",
                "15s",
                "--seed",
                &seed.to_string(),
            ],
        );
        let code = out.status.code();
        assert!(
            matches!(code, Some(0) | Some(1)),
            "seed {seed}: want a verdict, not a harness failure:\n{}",
            text(&out)
        );
        codes.push(code);
        if code == Some(1) {
            break;
        }
    }
    eprintln!("stale-read through the adapter in the lab: exit codes by seed {codes:?}");
    assert_eq!(
        codes.last(),
        Some(&Some(1)),
        "stale-read not caught in {} seeds",
        codes.len()
    );
    for i in 1..=3 {
        assert_eq!(
            leftovers(&lab, &lab.addr(i), "faultline"),
            "rules=0 procs=0",
            "host {i}"
        );
    }
}

/// The faultline-node adapter with `edit` applied, alone in a folder of
/// its own under `dir` (remote mode uploads the file's folder), its
/// `{{adapter_dir}}` the shipped one (the lab's hosts share this machine's
/// files).
fn edited_node_adapter(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let shipped = adapter("faultline-node.toml");
    let text = std::fs::read_to_string(&shipped).expect("shipped adapter");
    let examples = shipped.parent().expect("examples folder").to_path_buf();
    let text = text.replace("{{adapter_dir}}", &examples.to_string_lossy());
    let folder = dir.join(name.trim_end_matches(".toml"));
    std::fs::create_dir_all(&folder).expect("adapter folder");
    let path = folder.join(name);
    std::fs::write(&path, edit(text)).expect("write adapter");
    path
}

fn run_file(lab: &TestLab, store: &Path, file: &Path, rest: &[&str]) -> Output {
    Command::new(faultline())
        .args(["test", "--lab", lab.dir_str()])
        .args(["--system", file.to_str().expect("utf-8")])
        .args(["--store", store.to_str().expect("utf-8")])
        .args(["--workload", "register", "--node-count", "3"])
        .args(rest)
        .output()
        .expect("faultline runs")
}

/// Remote mode runs on the hosts what concerns the hosts: `requires` is
/// checked there (a program only the hosts have, made by the file's
/// `install` in a host's private /run, is not asked of this machine) and
/// `version` runs on the first host; `node.stop` runs on each host when
/// the run ends; kills, pauses and the stop reach a daemon that
/// double-forked out of its node's process group; and a daemon that does
/// not map libfaketime stops a clock run, named with its host. Each part
/// fails without its change: this machine lacks the program (exit 254
/// before), the marker would be missing, the escaped sleeps left running,
/// and the clock run would go on valid.
#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn remote_mode_runs_version_requires_stop_and_the_clock_check_on_the_hosts() {
    if !enabled("lab_adapter hosts") {
        return;
    }
    assert!(
        Path::new("/usr/bin/python3").exists(),
        "the faultline-node adapter's client needs /usr/bin/python3 on this machine"
    );
    const TOOL: &str = "/run/faultline-lab-tool";
    assert!(
        !Path::new(TOOL).exists(),
        "{TOOL} must exist only on the lab's hosts (their /run is their own)"
    );
    let lab = TestLab::up(3);
    let files = tempfile::tempdir().expect("tempdir");
    let store = tempfile::tempdir().expect("tempdir");

    let hosts_file = edited_node_adapter(files.path(), "hosts.toml", |t| {
        t.replace(
            "requires = [",
            &format!(
                "version = \"{TOOL}\"\ninstall = \"printf '#!/bin/sh\\\\necho lab-tool 1.2\\\\n' > {TOOL} && chmod +x {TOOL}\"\nrequires = [\"{TOOL}\", "
            ),
        )
        .replace(
            "[[node.daemon]]",
            "stop = \"\"\"echo stopped > stop-marker; pkill -TERM -f -- '^[^ ]*faultline node .*--data-dir {{data_dir}} '\"\"\"\n\
             logs = [\"{{data_dir}}/stop-marker\"]\n\n\
             [[node.daemon]]\nname = \"sidecar\"\n\
             start = \"setsid sh -c 'sleep 600 & exit 0'; exec sleep 601\"\n\n[[node.daemon]]",
        )
    });
    let out = run_file(
        &lab,
        store.path(),
        &hosts_file,
        &[
            "--nemesis",
            "kill,pause",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "15s",
            "--seed",
            "5",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "want valid:\n{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    // Every node.stop ran and ended its node's daemons; the sidecar's
    // escaped sleep is the node's too, which no node.stop here ends: the
    // run says so, and the signals after it end it (checked below).
    for bad in [
        "node.stop failed",
        "node.stop timed out",
        "node.stop could not run",
    ] {
        assert!(!err.contains(bad), "{bad}:\n{err}");
    }
    let dir = store.path().join("latest");
    let test: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("test.json")).expect("test.json"))
            .expect("json");
    assert_eq!(test["system"]["version"], "lab-tool 1.2", "{test}");
    let history = std::fs::read_to_string(dir.join("history.jsonl")).expect("history");
    assert!(
        history.contains("start-kill") || history.contains("start-pause"),
        "no kill or pause"
    );
    for n in 1..=3 {
        let marker = dir.join(format!("nodes/n{n}/stop-marker"));
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap_or_default(),
            "stopped\n",
            "n{n}'s node.stop ran on its host ({} fetched)",
            marker.display()
        );
        let log = std::fs::read_to_string(dir.join(format!("nodes/n{n}.log"))).unwrap_or_default();
        let stop = log
            .rfind(&format!("faultline: n{n}: node.stop"))
            .unwrap_or_else(|| panic!("n{n}: no node.stop in its log:\n{log}"));
        assert!(
            log[stop..].contains(&format!("faultline: n{n}: daemon node (pid ")),
            "n{n}: its daemon did not exit after node.stop:\n{log}"
        );
    }
    for i in 1..=3 {
        // The setsid'd sleep of every incarnation died with its node.
        assert_eq!(
            leftovers(&lab, &lab.addr(i), "sleep"),
            "rules=0 procs=0",
            "host {i}"
        );
        assert_eq!(
            leftovers(&lab, &lab.addr(i), "faultline"),
            "rules=0 procs=0",
            "host {i}"
        );
    }

    // What the hosts lack is named with the host.
    let absent = edited_node_adapter(files.path(), "absent.toml", |t| {
        t.replace(
            "requires = [",
            "requires = [\"/run/faultline-lab-absent\", ",
        )
    });
    let out = run_file(
        &lab,
        store.path(),
        &absent,
        &["--nemesis", "none", "--time-limit", "5s"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(
        err.contains("10.77.0.11")
            && err.contains(
                "/run/faultline-lab-absent not found, and the adapter has no install command"
            ),
        "{err}"
    );
    let bad_version = edited_node_adapter(files.path(), "version.toml", |t| {
        t.replace(
            "requires = [",
            "version = \"echo no version here >&2; exit 4\"\nrequires = [",
        )
    });
    let out = run_file(
        &lab,
        store.path(),
        &bad_version,
        &["--nemesis", "none", "--time-limit", "5s"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(
        err.contains("10.77.0.11: the adapter's version")
            && err.contains("exited with status 4")
            && err.contains("no version here"),
        "{err}"
    );

    // A daemon that drops LD_PRELOAD: the clock run stops, naming it.
    let deaf = edited_node_adapter(files.path(), "deaf.toml", |t| {
        t.replace(
            "[lists.peers]",
            "[[node.daemon]]\nname = \"sidecar\"\nstart = \"exec env -u LD_PRELOAD sleep 600\"\n\n[lists.peers]",
        )
    });
    let out = run_file(
        &lab,
        store.path(),
        &deaf,
        &["--nemesis", "clock", "--time-limit", "10s"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(
        err.contains("daemon sidecar (pid ")
            && err.contains("does not map libfaketime")
            && err.contains("(on 10.77.0.1"),
        "{err}"
    );
    for i in 1..=3 {
        assert_eq!(
            leftovers(&lab, &lab.addr(i), "sleep"),
            "rules=0 procs=0",
            "host {i}"
        );
    }
}

/// Runs redis-sentinel.toml on the lab with `--workload set`.
fn run_redis(lab: &TestLab, store: &Path, nemesis: &str, seed: u64) -> Output {
    let system = adapter("redis-sentinel.toml");
    Command::new(faultline())
        .args(["test", "--lab", lab.dir_str()])
        .args(["--system", system.to_str().expect("utf-8")])
        .args(["--store", store.to_str().expect("utf-8")])
        .args(["--workload", "set", "--nemesis", nemesis])
        .args(["--nemesis-interval", "10s", "--time-limit", "30s"])
        .args(["--seed", &seed.to_string()])
        .output()
        .expect("faultline runs")
}

/// Redis with Sentinel on 5 lab hosts (Debian's redis-server, which the
/// hosts have from this machine: the lab shares its filesystem): Jepsen's
/// 2013 finding, acknowledged adds lost when a partition cuts the primary
/// off, reproduced in remote mode; the same run without faults valid, so
/// the verdict is the partition's. Seeds as adapter_redis.rs uses them.
#[test]
#[ignore = "needs root, redis-server, redis-sentinel and python3-redis, and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn redis_sentinel_in_the_lab_loses_acknowledged_adds_in_a_partition() {
    if !enabled("lab_adapter redis") {
        return;
    }
    for program in ["/usr/bin/redis-server", "/usr/bin/redis-sentinel"] {
        assert!(
            Path::new(program).exists(),
            "{program}: install redis-server and redis-sentinel (the lab hosts share this machine's)"
        );
    }
    const SEED: u64 = 20261206;
    let lab = TestLab::up(5);
    let store = tempfile::tempdir().expect("tempdir");
    let out = run_redis(&lab, store.path(), "none", SEED);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without faults, want valid:\n{}",
        text(&out)
    );
    let mut misses = Vec::new();
    let mut found = None;
    for seed in SEED..SEED + 3 {
        let out = run_redis(&lab, store.path(), "partition", seed);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!(
            "redis-sentinel in the lab, partition, seed {seed}: exit {:?}",
            out.status.code()
        );
        if out.status.code() == Some(1) {
            found = Some(stdout);
            break;
        }
        misses.push(text(&out));
    }
    let stdout = found.unwrap_or_else(|| {
        panic!(
            "no run of 3 lost an acknowledged add:\n{}",
            misses.join("\n")
        )
    });
    // The set checker says how many of how many acknowledged adds were lost.
    let line = stdout
        .lines()
        .find(|l| l.contains("acknowledged adds") && l.contains(" lost"))
        .unwrap_or_else(|| panic!("invalid, but not for lost adds:\n{stdout}"));
    eprintln!("{}", line.trim());
    let dir = store.path().join("latest");
    let test: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("test.json")).expect("test.json"))
            .expect("json");
    assert_eq!(test["cluster"]["kind"], "ssh", "{test}");
    assert_eq!(test["mechanisms"]["partition"], "iptables", "{test}");
    for n in 1..=5 {
        let log = std::fs::read_to_string(dir.join("nodes").join(format!("n{n}.log")))
            .unwrap_or_default();
        assert!(
            log.contains(&format!("faultline: n{n}: daemon sentinel started")),
            "n{n}'s log:\n{log}"
        );
    }
    for i in 1..=5 {
        assert_eq!(
            leftovers(&lab, &lab.addr(i), "redis"),
            "rules=0 procs=0",
            "host {i}"
        );
    }
}

//! etcd, built in (`faultline test --system etcd`), on a real etcd: its
//! key-value workloads end valid under partitions, kills and pauses (what
//! Jepsen found of etcd 3.4.3), Jepsen's 2020 lock finding is reproduced
//! (two clients hold etcd's lock at once: the linearizable mutex check or
//! lost updates say invalid, while the fencing checker shows the
//! revision-guarded resource never took a stale token), the clock fault is
//! said to be unsupported and recorded so, an etcd that cannot start is a
//! harness error naming the member and its log, and no etcd process or
//! iptables rule outlives a run.
//!
//! Needs etcd (Debian's etcd-server) and root (iptables, a uid per member):
//! `FAULTLINE_ETCD_TESTS=1 cargo test --release --workspace --test test_etcd -- --ignored`
//! (.ci/etcd.sh). Each failure prints the command that replays it.

mod test_common;

use std::path::Path;
use std::process::Command;
use test_common::{args, live_processes, run_test, wait_for_exit};

const SEED: u64 = 20261206;

fn enabled(test: &str) -> bool {
    if std::env::var("FAULTLINE_ETCD_TESTS").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("{test}: skipped (set FAULTLINE_ETCD_TESTS=1; needs etcd and root)");
    false
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    live_processes()
        .into_iter()
        .map(|(_, cmd)| cmd)
        .filter(|cmd| cmd.contains(needle) && !cmd.contains("cargo") && !cmd.contains("test_etcd"))
        .collect()
}

/// The test.json of every run in `store`.
fn test_jsons(store: &Path) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for test in std::fs::read_dir(store).into_iter().flatten().flatten() {
        for run in std::fs::read_dir(test.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(text) = std::fs::read_to_string(run.path().join("test.json")) {
                all.push(serde_json::from_str(&text).expect("test.json"));
            }
        }
    }
    all
}

/// What runs in `store` left behind: processes of their clusters (their
/// command lines name the run's cluster token) and iptables chains.
fn leftovers(store: &Path) -> Vec<String> {
    let rules = Command::new("iptables")
        .args(["-w", "-S"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut left = Vec::new();
    for test in test_jsons(store) {
        if let Some(chain) = test["cluster"]["iptables_chain"].as_str() {
            if rules.contains(chain) {
                left.push(format!("chain {chain}"));
            }
        }
        if let Some(run_id) = test["run_id"].as_str() {
            for p in processes_mentioning(&format!("faultline-{run_id}")) {
                left.push(format!("process {p}"));
            }
        }
    }
    left.extend(processes_mentioning(store.to_str().expect("utf-8")));
    left
}

/// Runs `faultline test --system etcd ARGS --store STORE`, then checks
/// that nothing of it is left running or filtering.
fn etcd_run(store: &Path, extra: &[&str]) -> test_common::RunOutcome {
    let mut a = args(&[
        "--system",
        "etcd",
        "--store",
        store.to_str().expect("utf-8"),
    ]);
    a.extend(args(extra));
    let r = run_test(&a);
    let left = leftovers(store);
    assert!(left.is_empty(), "{}: left behind: {left:?}", r.command);
    r
}

fn results(store: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(store.join("latest").join("results.json"))
        .expect("the run wrote results.json");
    serde_json::from_str(&text).expect("results.json")
}

fn checker<'a>(results: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    results["checkers"]
        .as_array()
        .expect("checkers")
        .iter()
        .find(|c| c["checker"] == name)
        .unwrap_or_else(|| panic!("no {name} checker in {results}"))
}

#[test]
#[ignore = "needs etcd and root; run by .ci/etcd.sh with FAULTLINE_ETCD_TESTS=1"]
fn key_value_workloads_are_valid_under_partition_kill_pause() {
    if !enabled("key_value_workloads") {
        return;
    }
    let mut failures = Vec::new();
    for workload in ["register", "kv", "set", "counter"] {
        let store = tempfile::tempdir().expect("tempdir");
        let r = etcd_run(
            store.path(),
            &[
                "--workload",
                workload,
                "--node-count",
                "3",
                "--nemesis",
                "partition,kill,pause",
                "--nemesis-interval",
                "3s",
                "--time-limit",
                "12s",
                "--rate",
                "40",
                "--seed",
                &SEED.to_string(),
            ],
        );
        eprintln!("etcd {workload}: exit {:?}", r.code);
        if r.code != Some(0) {
            failures.push(format!(
                "{workload}: exit {:?}, want 0\n  {}\n{}",
                r.code, r.command, r.digest
            ));
            continue;
        }
        let test: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(store.path().join("latest").join("test.json"))
                .expect("test.json"),
        )
        .expect("json");
        assert_eq!(test["system"]["kind"], "etcd");
        assert!(test["system"]["version"]
            .as_str()
            .expect("version")
            .starts_with("etcd 3."));
        // The faults happened, by the mechanisms the run says.
        let history = std::fs::read_to_string(store.path().join("latest").join("history.jsonl"))
            .expect("history");
        for fault in ["start-partition", "start-kill", "start-pause"] {
            assert!(
                history.contains(fault),
                "{workload}: no {fault} in the history"
            );
        }
        assert_eq!(test["mechanisms"]["partition"], "iptables");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Jepsen found etcd's transactions strict serializable (2020): list-append
/// and rw-register through guarded Txns, checked by the txn checker against
/// strict-serializable, under the same faults as the key-value workloads.
#[test]
#[ignore = "needs etcd and root; run by .ci/etcd.sh with FAULTLINE_ETCD_TESTS=1"]
fn transactions_on_etcd_are_strict_serializable_under_partition_kill_pause() {
    if !enabled("etcd_transactions") {
        return;
    }
    let mut failures = Vec::new();
    for workload in ["list-append", "rw-register"] {
        let store = tempfile::tempdir().expect("tempdir");
        let r = etcd_run(
            store.path(),
            &[
                "--workload",
                workload,
                "--node-count",
                "3",
                "--nemesis",
                "partition,kill,pause",
                "--nemesis-interval",
                "3s",
                "--time-limit",
                "12s",
                "--rate",
                "40",
                "--seed",
                &SEED.to_string(),
            ],
        );
        eprintln!("etcd {workload}: exit {:?}", r.code);
        if r.code != Some(0) {
            failures.push(format!(
                "{workload}: exit {:?}, want 0\n  {}\n{}",
                r.code, r.command, r.digest
            ));
            continue;
        }
        // Enough transactions committed for the verdict to mean something.
        let history = std::fs::read_to_string(store.path().join("latest").join("history.jsonl"))
            .expect("history");
        let committed = history
            .lines()
            .filter(|l| l.contains("\"type\":\"ok\"") && l.contains("\"f\":\"txn\""))
            .count();
        if committed < 50 {
            failures.push(format!(
                "{workload}: only {committed} transactions committed, too few to judge"
            ));
        }
        let results = results(store.path());
        let txn = checker(&results, workload);
        assert_eq!(txn["verdict"], "valid", "{workload}: {txn}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Jepsen's lock test: acquire, hold, one fenced write, release. Faults
/// that outlast the lease (pauses, partitions of the holder's member) let
/// the lease expire while its holder, unaware, still holds.
const LOCK_ARGS: [&str; 14] = [
    "--workload",
    "lock",
    "--node-count",
    "3",
    "--nemesis",
    "pause,partition",
    "--nemesis-interval",
    "8s",
    "--time-limit",
    "40s",
    "--lock-ttl",
    "2s",
    "--op-timeout",
    "5s",
];
/// Seeds tried before a reproduction is called missing: on this 2-core
/// machine about one run in two shows it (3 of 6 lock runs, 1 of 3
/// lock-counter runs), so eight misses in a row would be a finding.
const ATTEMPTS: u64 = 8;

#[test]
#[ignore = "needs etcd and root; run by .ci/etcd.sh with FAULTLINE_ETCD_TESTS=1"]
fn etcd_locks_are_not_mutexes_under_pauses_and_partitions_but_fencing_holds() {
    if !enabled("etcd_lock") {
        return;
    }
    let mut caught = None;
    let mut runs = Vec::new();
    for seed in SEED..SEED + ATTEMPTS {
        let store = tempfile::tempdir().expect("tempdir");
        let mut a: Vec<&str> = LOCK_ARGS.to_vec();
        let seed_text = seed.to_string();
        a.extend(["--seed", &seed_text]);
        let r = etcd_run(store.path(), &a);
        eprintln!("etcd lock seed {seed}: exit {:?}", r.code);
        assert!(
            matches!(r.code, Some(0) | Some(1)),
            "{}: exit {:?}\n{}",
            r.command,
            r.code,
            r.digest
        );
        let res = results(store.path());
        // The guarded resource never takes a stale token, and no grant
        // falls inside a lease that was certainly held, whatever happened.
        assert_eq!(
            checker(&res, "fencing")["verdict"],
            "valid",
            "{}: {res}",
            r.command
        );
        assert_eq!(
            checker(&res, "mutual-exclusion")["verdict"],
            "valid",
            "{}: {res}",
            r.command
        );
        let mutex = checker(&res, "mutex")["verdict"].clone();
        runs.push(format!("seed {seed}: mutex {mutex}"));
        if mutex == "invalid" {
            assert_eq!(r.code, Some(1), "an invalid checker makes the run invalid");
            caught = Some(r.command);
            break;
        }
    }
    assert!(
        caught.is_some(),
        "two holders at once were never seen in {ATTEMPTS} runs: {runs:?}"
    );
    eprintln!("reproduced by: {}", caught.expect("checked"));
}

#[test]
#[ignore = "needs etcd and root; run by .ci/etcd.sh with FAULTLINE_ETCD_TESTS=1"]
fn an_unguarded_read_modify_write_under_etcds_lock_loses_updates() {
    if !enabled("etcd_lock_counter") {
        return;
    }
    let mut runs = Vec::new();
    // Holders idle up to 6 s between read and write, three leases: a
    // pause or partition in that window lets a second holder in.
    for seed in 1..=ATTEMPTS {
        let store = tempfile::tempdir().expect("tempdir");
        let seed_text = seed.to_string();
        let r = etcd_run(
            store.path(),
            &[
                "--workload",
                "lock-counter",
                "--node-count",
                "3",
                "--nemesis",
                "pause,partition",
                "--nemesis-interval",
                "6s",
                "--time-limit",
                "40s",
                "--lock-ttl",
                "2s",
                "--lock-hold",
                "6s",
                "--op-timeout",
                "8s",
                "--seed",
                &seed_text,
            ],
        );
        eprintln!("etcd lock-counter seed {seed}: exit {:?}", r.code);
        let res = results(store.path());
        let counter = checker(&res, "counter");
        runs.push(format!("seed {seed}: {}", counter["summary"]));
        if r.code == Some(1) {
            assert_eq!(counter["verdict"], "invalid", "{res}");
            return;
        }
        assert_eq!(r.code, Some(0), "{}: {}", r.command, r.digest);
    }
    panic!("no lost update in {ATTEMPTS} runs: {runs:?}");
}

#[test]
#[ignore = "needs etcd and root; run by .ci/etcd.sh with FAULTLINE_ETCD_TESTS=1"]
fn the_clock_fault_is_unsupported_for_etcd_and_recorded_so() {
    if !enabled("etcd_clock") {
        return;
    }
    let store = tempfile::tempdir().expect("tempdir");
    let r = etcd_run(
        store.path(),
        &[
            "--workload",
            "register",
            "--node-count",
            "3",
            "--nemesis",
            "clock,kill",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "8s",
            "--seed",
            "1",
        ],
    );
    assert_eq!(r.code, Some(0), "{}: {}", r.command, r.digest);
    assert!(
        r.digest.contains("clock faults are unsupported for etcd"),
        "{}",
        r.digest
    );
    let latest = store.path().join("latest");
    let test: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(latest.join("test.json")).expect("test.json"),
    )
    .expect("json");
    assert!(
        test["unsupported_faults"]["clock"]
            .as_str()
            .expect("a reason")
            .contains("libfaketime"),
        "{test}"
    );
    assert_eq!(test["mechanisms"]["clock"], "unsupported");
    let history = std::fs::read_to_string(latest.join("history.jsonl")).expect("history");
    assert!(history.contains("\"f\":\"unsupported-clock\""));
    assert!(
        !history.contains("start-clock"),
        "no clock fault may be pretended"
    );
    assert!(history.contains("start-kill"));
}

#[test]
#[ignore = "needs etcd and root; run by .ci/etcd.sh with FAULTLINE_ETCD_TESTS=1"]
fn an_etcd_whose_port_is_taken_is_a_harness_error_naming_the_member_and_its_log() {
    if !enabled("etcd_port_taken") {
        return;
    }
    // A wrapper that makes member n2 also listen on a port someone holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let etcd = which_etcd();
    let r = run_etcd_as(
        &format!(
            "#!/bin/sh\ncase \"$*\" in *'--name n2 '*) exec {etcd} \"$@\" --listen-metrics-urls http://127.0.0.1:{port};; esac\nexec {etcd} \"$@\"\n"
        ),
        3,
    );
    assert_eq!(r.code, Some(255), "{}: {}", r.command, r.digest);
    assert!(r.digest.contains("n2"), "names the member: {}", r.digest);
    assert!(
        r.digest.contains("address already in use"),
        "quotes its log: {}",
        r.digest
    );
    drop(taken);
}

#[test]
#[ignore = "needs etcd and root; run by .ci/etcd.sh with FAULTLINE_ETCD_TESTS=1"]
fn a_member_that_never_listens_is_a_harness_error_naming_it() {
    if !enabled("etcd_never_listens") {
        return;
    }
    let r = run_etcd_as(
        "#!/bin/sh\necho 'waiting for nothing' >&2\nexec sleep 600\n",
        1,
    );
    assert_eq!(r.code, Some(255), "{}: {}", r.command, r.digest);
    assert!(
        r.digest.contains("n1") && r.digest.contains("did not listen"),
        "{}",
        r.digest
    );
    assert!(
        r.digest.contains("waiting for nothing"),
        "quotes its log: {}",
        r.digest
    );
}

/// A 5 s fault-free run of `node_count` members whose `--system-bin` is
/// `script` (a wrapper standing in for etcd), in a store of its own.
fn run_etcd_as(script: &str, node_count: u32) -> test_common::RunOutcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let wrapper = dir.path().join("etcd");
    std::fs::write(&wrapper, script).expect("write");
    make_executable(&wrapper);
    // Members run as uids of their own: they must reach the wrapper.
    make_executable(dir.path());
    let store = tempfile::tempdir().expect("tempdir");
    let nodes = node_count.to_string();
    etcd_run(
        store.path(),
        &[
            "--system-bin",
            wrapper.to_str().expect("utf-8"),
            "--node-count",
            &nodes,
            "--time-limit",
            "5s",
            "--nemesis",
            "none",
        ],
    )
}

fn which_etcd() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v etcd"])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!path.is_empty(), "etcd is on PATH (Debian's etcd-server)");
    path
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Needs nothing: where no `etcd` is on PATH, `--system etcd` is bad input
/// (254) naming the package to install, and nothing is started or stored.
#[test]
fn a_missing_etcd_exits_254_naming_the_package() {
    let store = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("tempdir");
    let out = Command::new(test_common::BIN)
        .args(["test", "--system", "etcd", "--time-limit", "2s", "--store"])
        .arg(store.path())
        .env("PATH", empty.path())
        .output()
        .expect("faultline runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert!(
        stderr.contains("etcd-server"),
        "names the package: {stderr}"
    );
    assert!(test_jsons(store.path()).is_empty(), "no run was started");
}

#[test]
#[ignore = "needs etcd and root; run by .ci/etcd.sh with FAULTLINE_ETCD_TESTS=1"]
fn an_interrupted_etcd_run_leaves_no_member_and_no_rule() {
    if !enabled("etcd_interrupt") {
        return;
    }
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let store = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(test_common::BIN)
        .args([
            "test",
            "--system",
            "etcd",
            "--node-count",
            "3",
            "--time-limit",
            "120s",
            "--nemesis",
            "partition,pause",
            "--nemesis-interval",
            "2s",
            "--seed",
            "7",
            "--store",
        ])
        .arg(store.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faultline starts");
    let latest = store.path().join("latest");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut members = Vec::new();
    while Instant::now() < deadline {
        let history = std::fs::read_to_string(latest.join("history.jsonl")).unwrap_or_default();
        if history.contains("\"f\":\"start-") {
            let test = test_jsons(store.path());
            let run_id = test
                .first()
                .and_then(|t| t["run_id"].as_str())
                .expect("a run id");
            members = processes_mentioning(&format!("faultline-{run_id}"));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = wait_for_exit(&mut child, Duration::from_secs(60), "SIGINT");
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert_eq!(
        members.len(),
        3,
        "three members ran while a fault was on: {members:?}\n{stderr}"
    );
    assert_eq!(status.code(), Some(255), "{stderr}");
    let left = leftovers(store.path());
    assert!(left.is_empty(), "left behind after SIGINT: {left:?}");
}

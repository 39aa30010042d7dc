//! `faultline test --tls --auth` in remote mode against a 3-host lab: each
//! host gets its own node's certificate and key and the run's CA as private
//! files (mode 0600, in the run's folder), every node starts with
//! `--tls-cert/--tls-key/--tls-ca`, every connection of the harness opens
//! TLS (no node log shows a plain connection refused but the impostor's
//! own `plain-tcp` attempts), and the run ends valid with the auth probe
//! (sent inside TLS) refused by every node and every impostor attempt
//! refused (`access`). No copy is left on a host after the run. And
//! `--tls --auth --nemesis all,impostor` ends valid for every workload on
//! Raft and on Paxos in the lab, every impostor attempt refused.
//!
//! Needs root: `FAULTLINE_LAB_TESTS=1 cargo test -p faultline --test lab_tls -- --ignored`
//! (.ci/lab.sh, inside `flock /tmp/faultline-lab.lock`).

mod lab_support;

use lab_support::{enabled, faultline, on_host, text, TestLab};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HOSTS: usize = 3;

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn a_remote_tls_run_is_valid_and_each_host_holds_only_its_node_s_private_files() {
    if !enabled("lab_tls") {
        return;
    }
    let lab = TestLab::up(HOSTS);
    let store = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(faultline())
        .args(["test", "--lab", lab.dir_str(), "--store"])
        .arg(store.path())
        .args(["--name", "tls", "--workload", "register", "--tls", "--auth"])
        // Four turns of a rotation of three kinds: the impostor comes up.
        .args([
            "--nemesis",
            "partition,kill,impostor",
            "--nemesis-interval",
            "3s",
        ])
        .args(["--time-limit", "12s", "--seed", "29"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faultline starts");

    // While the run is on: each host holds its node's files, private.
    let deadline = Instant::now() + Duration::from_secs(90);
    let test_json = store.path().join("latest/test.json");
    let run_id = loop {
        if let Some(id) = std::fs::read_to_string(&test_json)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|j| j["run_id"].as_str().map(str::to_string))
        {
            break id;
        }
        assert!(child.try_wait().expect("wait").is_none(), "ended early");
        assert!(Instant::now() < deadline, "no test.json in time");
        std::thread::sleep(Duration::from_millis(100));
    };
    let dir = format!("/var/lib/faultline/runs/{run_id}");
    for i in 1..=HOSTS {
        let lines = loop {
            let said = on_host(
                &lab,
                &lab.addr(i),
                &format!(
                    "stat -c '%a %U' {dir}/tls-node.key {dir}/tls-node.pem {dir}/tls-ca.pem && \
                     openssl x509 -noout -ext subjectAltName -in {dir}/tls-node.pem 2>/dev/null | grep -c 'node-{i}.faultline.invalid'; \
                     ps -e -o args= | grep -c '^[^ ]*faultline node .*--tls-key {dir}/tls-node.key'"
                ),
            );
            let lines: Vec<String> = said.lines().map(str::to_string).collect();
            if lines.len() == 5 && lines[4] != "0" {
                break lines;
            }
            assert!(
                child.try_wait().expect("wait").is_none(),
                "host {i}: {said:?}"
            );
            assert!(Instant::now() < deadline, "host {i}: {said:?}");
            std::thread::sleep(Duration::from_millis(200));
        };
        for (line, file) in lines[..3].iter().zip(["key", "certificate", "CA"]) {
            assert_eq!(line, "600 root", "host {i}: the {file}'s mode and owner");
        }
        assert_eq!(lines[3], "1", "host {i}: the certificate is node {i}'s");
    }
    let out = child.wait_with_output().expect("faultline ends");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let run = std::fs::canonicalize(store.path().join("latest")).expect("the run's folder");
    let test: Value =
        serde_json::from_slice(&std::fs::read(run.join("test.json")).expect("test.json"))
            .expect("JSON");
    assert_eq!(test["plan"]["tls"], Value::Bool(true));
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("history.jsonl");
    let attempts: Vec<Value> = history
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["process"] == "nemesis" && e["f"] == "impostor")
        .map(|e| e["value"].clone())
        .collect();
    assert!(!attempts.is_empty(), "the impostor came up");
    for i in 1..=HOSTS {
        let log = std::fs::read_to_string(run.join("nodes").join(format!("n{i}.log")))
            .expect("every node's log is fetched");
        let impostor_plain = attempts
            .iter()
            .filter(|a| a["node"] == format!("n{i}").as_str() && a["credential"] == "plain-tcp")
            .count();
        assert!(impostor_plain > 0, "n{i}: the impostor tried plain TCP");
        assert_eq!(
            log.matches("plain connection to a TLS port refused")
                .count(),
            impostor_plain,
            "n{i}: every connection of the harness but the impostor's plain ones opens TLS"
        );
    }
    let access = results_checker(&run, "access");
    assert_eq!(access["verdict"], "valid", "{access}");
    assert_eq!(
        access["detail"]["attempts"].as_u64(),
        Some(attempts.len() as u64),
        "{access}"
    );
    let auth = results_checker(&run, "auth");
    let want = format!("{HOSTS} of {HOSTS} nodes refused a request without the token");
    assert_eq!(auth["verdict"], "valid", "{auth}");
    assert!(
        auth["summary"].as_str().unwrap_or("").starts_with(&want),
        "{auth}"
    );
    for i in 1..=HOSTS {
        assert_eq!(
            on_host(
                &lab,
                &lab.addr(i),
                &format!("ls -d {dir} 2>/dev/null | wc -l")
            ),
            "0",
            "host {i}: the TLS files are removed with the run's folder"
        );
    }
}

/// The entry of `checker` in the run's results.json.
fn results_checker(run: &std::path::Path, checker: &str) -> Value {
    let results: Value =
        serde_json::from_slice(&std::fs::read(run.join("results.json")).expect("results.json"))
            .expect("JSON");
    results["checkers"]
        .as_array()
        .expect("checkers")
        .iter()
        .find(|c| c["checker"] == checker)
        .unwrap_or_else(|| panic!("a {checker} check in {results}"))
        .clone()
}

/// Issue 19's bar in the lab: `faultline test --tls --auth --nemesis
/// all,impostor` ends valid for every workload faultline's node takes, on
/// Raft and on Paxos, over SSH on the lab's hosts; the access checker saw
/// the impostor's attempts and every one was refused. Short runs (6 s, a
/// fault a second), so each kind of fault and the impostor come up.
#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn every_workload_is_valid_remotely_with_tls_auth_all_faults_and_the_impostor() {
    if !enabled("lab_tls") {
        return;
    }
    let lab = TestLab::up(HOSTS);
    let mut failures = Vec::new();
    // lock-counter is left out: faultline's node refuses it by design.
    for consensus in ["raft", "paxos"] {
        for workload in ["register", "kv", "lock", "set", "counter", "list-append"] {
            let label = format!("{workload} / {consensus}");
            let store = tempfile::tempdir().expect("tempdir");
            let out = Command::new(faultline())
                .args(["test", "--lab", lab.dir_str(), "--store"])
                .arg(store.path())
                .args(["--workload", workload, "--consensus", consensus])
                .args(["--tls", "--auth", "--nemesis", "all,impostor"])
                .args(["--nemesis-interval", "1s", "--time-limit", "6s"])
                .args(["--seed", "31"])
                .stdin(Stdio::null())
                .output()
                .expect("faultline runs");
            eprintln!("{label}: exit {:?}", out.status.code());
            if out.status.code() != Some(0) {
                failures.push(format!(
                    "{label}: exit {:?}\n{}",
                    out.status.code(),
                    text(&out)
                ));
                continue;
            }
            let run = std::fs::canonicalize(store.path().join("latest")).expect("the run's folder");
            let access = results_checker(&run, "access");
            let all_refused = access["verdict"] == "valid"
                && access["detail"]["attempts"].as_u64() > Some(0)
                && access["detail"]["accepted"] == serde_json::json!([]);
            if !all_refused {
                failures.push(format!(
                    "{label}: access {access}, want attempts, all refused"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

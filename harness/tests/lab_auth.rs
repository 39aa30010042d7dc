//! `faultline test --auth` in remote mode against a 3-host lab: the run's
//! token is copied to each host as a private file (mode 0600, in the run's
//! folder), every node starts with `--auth-token-file`, every client,
//! admin request and probe of the harness sends the token, and the run
//! ends valid; the probe's request without the token is refused by every
//! node and counted by results.json's `auth` check (and nothing else is
//! refused: the node logs show one refusal each). The token is in no file
//! of the run but its `.auth-token`, and no copy is left on a host. Each
//! host's audit log is fetched into the store (`nodes/nI/audit.jsonl`)
//! and reaches the history and report.html.
//!
//! Needs root: `FAULTLINE_LAB_TESTS=1 cargo test -p faultline --test lab_auth -- --ignored`
//! (.ci/lab.sh, inside `flock /tmp/faultline-lab.lock`).

mod lab_support;
mod test_common;

use lab_support::{enabled, faultline, on_host, text, TestLab};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HOSTS: usize = 3;

/// Every regular file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable").flatten() {
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn a_remote_auth_run_is_valid_and_a_request_without_the_token_is_refused_and_counted() {
    if !enabled("lab_auth") {
        return;
    }
    let lab = TestLab::up(HOSTS);
    let store = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(faultline())
        .args(["test", "--lab", lab.dir_str(), "--store"])
        .arg(store.path())
        .args(["--name", "auth", "--workload", "register", "--auth"])
        .args(["--nemesis", "partition,pause", "--nemesis-interval", "3s"])
        .args(["--time-limit", "12s", "--seed", "23"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faultline starts");

    // While the run is on: each host holds the token as a private file.
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
    let on_hosts = format!("/var/lib/faultline/runs/{run_id}/auth-token");
    let local_token = std::fs::read_to_string(store.path().join("latest/.auth-token"))
        .expect("the run's token file");
    let local_token = local_token.trim().to_string();
    assert!(local_token.len() >= 32, "{local_token:?}");
    for i in 1..=HOSTS {
        // The token is there before any node starts; the node a moment later.
        let lines = loop {
            let said = on_host(
                &lab,
                &lab.addr(i),
                &format!(
                    "stat -c '%a %U' {on_hosts} && cat {on_hosts} && \
                     ps -e -o args= | grep -c '^[^ ]*faultline node .*--auth-token-file {on_hosts}'"
                ),
            );
            let lines: Vec<String> = said.lines().map(str::to_string).collect();
            if lines.len() == 3 && lines[2] != "0" {
                break lines;
            }
            assert!(
                child.try_wait().expect("wait").is_none(),
                "host {i}: {said:?}"
            );
            assert!(Instant::now() < deadline, "host {i}: {said:?}");
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(lines[0], "600 root", "host {i}: the token's mode and owner");
        assert_eq!(lines[1], local_token, "host {i}: the run's token");
    }
    let out = child.wait_with_output().expect("faultline ends");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let run = std::fs::canonicalize(store.path().join("latest")).expect("the run's folder");
    let token_file = run.join(".auth-token");
    let mode = std::fs::metadata(&token_file)
        .expect("kept")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    for file in files_under(&run) {
        if file == token_file {
            continue;
        }
        let bytes = std::fs::read(&file).expect("readable");
        assert!(
            !bytes
                .windows(local_token.len())
                .any(|w| w == local_token.as_bytes()),
            "the token is in {}",
            file.display()
        );
    }
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(&local_token)
            && !String::from_utf8_lossy(&out.stdout).contains(&local_token),
        "the token is in the run's output"
    );
    // Every connection the harness opened sent the token, but the probe's
    // one per node: one more would show as one more refusal.
    let refusals: usize = (1..=HOSTS)
        .map(|i| {
            std::fs::read_to_string(run.join("nodes").join(format!("n{i}.log")))
                .expect("every node's log is fetched")
                .matches("connection refused: first line is not a valid auth")
                .count()
        })
        .sum();
    assert_eq!(refusals, HOSTS, "the probe's refusals only");
    let results: Value =
        serde_json::from_slice(&std::fs::read(run.join("results.json")).expect("results.json"))
            .expect("JSON");
    let auth = results["checkers"]
        .as_array()
        .expect("checkers")
        .iter()
        .find(|c| c["checker"] == "auth")
        .expect("an auth check");
    let want = format!("{HOSTS} of {HOSTS} nodes refused a request without the token");
    assert_eq!(auth["verdict"], "valid", "{auth}");
    assert!(
        auth["summary"].as_str().unwrap_or("").starts_with(&want),
        "{auth}"
    );
    assert_eq!(
        auth["detail"]["refused"].as_array().map(Vec::len),
        Some(HOSTS),
        "{auth}"
    );
    // Each host's audit log is fetched into the store, and reaches the
    // history (the probe's refusal, the admin requests) and the report.
    for i in 1..=HOSTS {
        let file = run.join("nodes").join(format!("n{i}")).join("audit.jsonl");
        assert!(
            file.is_file(),
            "host {i}'s audit log fetched to {}",
            file.display()
        );
    }
    let problems = test_common::audit::audit_problems(&run, HOSTS);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let problems =
        test_common::audit::check_ignores_audit_events(&run, &["--workload", "register"]);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for i in 1..=HOSTS {
        assert_eq!(
            on_host(
                &lab,
                &lab.addr(i),
                &format!("ls -d /var/lib/faultline/runs/{run_id} 2>/dev/null | wc -l")
            ),
            "0",
            "host {i}: the token's copy is removed with the run's folder"
        );
    }
}

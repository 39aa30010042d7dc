//! Jepsen's command line, as its users type it: `-w`, `--test-count`,
//! `--leave-db-running`, the possible values of every closed-set flag in
//! `--help`, and clap's "did you mean" naming the right flag. (The SSH
//! names, `-n/--node`, `--username`, `--ssh-private-key`, `--password`,
//! are tested in remote/args.rs and the lab test ssh_config_lab.rs.)

use clap::Parser;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_faultline");

fn faultline(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("faultline runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
struct TestCli {
    #[command(flatten)]
    args: faultline::cmd::test::Args,
}

/// The plan `faultline test ARGS` would run, as test.json records it.
fn plan(args: &[&str]) -> serde_json::Value {
    let cli = TestCli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let plan = faultline::cmd::test::plan(&cli.args).unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
    serde_json::to_value(&plan).expect("a plan serializes")
}

#[test]
fn short_w_is_workload_into_the_same_plan() {
    for workload in ["kv", "set", "lock"] {
        let ours = plan(&["--workload", workload, "--seed", "7"]);
        let jepsen = plan(&["-w", workload, "--seed", "7"]);
        assert_eq!(jepsen, ours, "-w {workload}");
        assert_eq!(ours["workload"], workload);
    }
    // The comma list of faults reads as before.
    let p = plan(&["--nemesis", "partition,pause", "--seed", "7"]);
    assert_eq!(
        p["nemesis"],
        serde_json::json!(["partition", "pause"]),
        "{p}"
    );
    let p = plan(&["--nemesis", "none", "--seed", "7"]);
    assert_eq!(p["nemesis"], serde_json::json!([]), "{p}");
}

/// The `[possible values: …]` clap prints after a flag's help.
fn possible_values(help: &str, flag: &str) -> String {
    let at = help
        .find(&format!("{flag} <"))
        .unwrap_or_else(|| panic!("{flag} in:\n{help}"));
    // The flag's own lines: up to the next line that names a flag (flags
    // are indented 2 or 6 columns, their help 10).
    let names_a_flag = |line: &str| {
        let text = line.trim_start();
        text.starts_with('-') && line.len() - text.len() <= 6
    };
    let section: Vec<&str> = help[at..]
        .lines()
        .enumerate()
        .take_while(|(i, line)| *i == 0 || !names_a_flag(line))
        .map(|(_, line)| line)
        .collect();
    let section = section.join("\n");
    let start = section
        .find("[possible values: ")
        .unwrap_or_else(|| panic!("{flag} lists no possible values:\n{section}"));
    let list = &section[start + "[possible values: ".len()..];
    list[..list.find(']').expect("closing ]")].to_string()
}

#[test]
fn help_lists_the_possible_values_of_every_closed_set() {
    let names = |all: Vec<String>| all.join(", ");
    let o = faultline(&["test", "--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let help = stdout(&o);
    assert_eq!(
        possible_values(&help, "--workload"),
        names(
            faultline_workloads::WorkloadKind::ALL
                .map(|w| w.to_string())
                .to_vec()
        )
    );
    let mut faults: Vec<String> = faultline::nemesis::FaultKind::ALL
        .map(|k| k.as_str().to_string())
        .to_vec();
    faults.extend(["all".to_string(), "none".to_string()]);
    assert_eq!(possible_values(&help, "--nemesis"), names(faults));
    assert_eq!(possible_values(&help, "--consensus"), "raft, paxos");
    assert_eq!(
        possible_values(&help, "--system"),
        "faultline, etcd, PATH.toml"
    );
    assert!(help.contains("-w, --workload <WORKLOAD>"), "{help}");

    let o = faultline(&["check", "--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let help = stdout(&o);
    assert_eq!(
        possible_values(&help, "--model"),
        names(
            faultline_checker::ModelKind::ALL
                .map(|m| m.to_string())
                .into_iter()
                .chain(faultline_checker::txn::TxnModel::ALL.map(|m| m.to_string()))
                .collect()
        )
    );
    assert_eq!(
        possible_values(&help, "--format"),
        names(
            faultline_checker::format::Format::ALL
                .map(|f| f.to_string())
                .to_vec()
        )
    );
    assert_eq!(
        possible_values(&help, "--workload"),
        names(
            faultline_checker::Workload::ALL
                .map(|w| w.to_string())
                .to_vec()
        )
    );
}

/// `--system` lists its names but takes an adapter file's path as given
/// (into the plan), and refuses an unknown name with the list (exit 254).
#[test]
fn system_takes_its_names_and_any_adapter_path() {
    assert_eq!(plan(&["--system", "etcd", "--seed", "7"])["system"], "etcd");
    assert_eq!(plan(&["--seed", "7"])["system"], "faultline");
    let cli = TestCli::try_parse_from(["--system", "examples/adapters/redis.toml"])
        .expect("a path is taken");
    assert_eq!(cli.args.system, "examples/adapters/redis.toml");
    let o = faultline(&["test", "--system", "etdc"]);
    assert_eq!(o.status.code(), Some(254), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("--system"), "{err}");
    assert!(err.contains("'etcd'"), "did you mean: {err}");
    // A path that is not there is named by the plan, not refused by clap.
    let o = faultline(&["test", "--system", "/nonexistent/x.toml"]);
    assert_eq!(o.status.code(), Some(254), "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent/x.toml"), "{}", stderr(&o));
}

#[test]
fn misspelt_flags_and_values_get_the_right_suggestion() {
    for (typed, meant) in [
        ("--ssh-private-kye", "--ssh-private-key"),
        ("--usernme", "--username"),
        ("--test-cont", "--test-count"),
        ("--leave-db-runing", "--leave-db-running"),
        ("--worklod", "--workload"),
    ] {
        let o = faultline(&["test", typed, "1"]);
        assert_eq!(o.status.code(), Some(254), "{typed}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("a similar argument exists: '{meant}'")),
            "{typed} should suggest {meant}: {err}"
        );
    }
    for (flag, typed, meant) in [
        ("--workload", "regster", "register"),
        ("--nemesis", "partition,kil", "kill"),
        ("--consensus", "pax", "paxos"),
    ] {
        let o = faultline(&["test", flag, typed]);
        assert_eq!(o.status.code(), Some(254), "{flag} {typed}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("[possible values: "), "{flag} {typed}: {err}");
        assert!(
            err.contains(&format!("a similar value exists: '{meant}'")),
            "{flag} {typed} should suggest {meant}: {err}"
        );
    }
    let o = faultline(&["check", "--model", "cas-registr", "x.jsonl"]);
    assert_eq!(o.status.code(), Some(254), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a similar value exists: 'cas-register'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn test_count_zero_is_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = faultline(&[
        "test",
        "--test-count",
        "0",
        "--store",
        dir.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(254), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--test-count 0: run the test at least once"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("store").count(),
        0,
        "no run made"
    );
}

/// The runs a store holds for one test name.
fn runs(store: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut runs: Vec<_> = std::fs::read_dir(store.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    runs.sort();
    runs
}

const SHORT_RUN: [&str; 8] = [
    "--time-limit",
    "1s",
    "--node-count",
    "3",
    "--nemesis",
    "partition",
    "--nemesis-interval",
    "500ms",
];

#[test]
fn test_count_runs_the_test_that_many_times_each_its_own_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec!["test", "--test-count", "3", "--store"];
    args.push(dir.path().to_str().expect("utf-8"));
    args.extend(SHORT_RUN);
    let o = faultline(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    for i in 1..=3 {
        assert!(err.contains(&format!("faultline: test {i} of 3")), "{err}");
    }
    let runs = runs(dir.path(), "register-partition");
    assert_eq!(runs.len(), 3, "three runs in the store: {runs:?}");
    let mut seeds = std::collections::BTreeSet::new();
    for run in &runs {
        assert!(run.join("faultline.log").is_file(), "{}", run.display());
        let results: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(run.join("results.json")).expect("results.json"),
        )
        .expect("JSON");
        assert_eq!(results["verdict"], "valid", "{}", run.display());
        let test: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(run.join("test.json")).expect("test.json"),
        )
        .expect("JSON");
        seeds.insert(test["plan"]["seed"].as_u64().expect("seed"));
    }
    assert_eq!(seeds.len(), 3, "each run draws its own seed: {seeds:?}");
}

/// Stops what a --leave-db-running run left, whatever the test's outcome.
struct ProcessGroups(Vec<i32>);

impl Drop for ProcessGroups {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: kill(2) on a process group this test's run started.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
            state != Some('Z')
        }
    }
}

#[test]
fn leave_db_running_keeps_the_healed_cluster_up_and_says_how_to_stop_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec!["test", "--leave-db-running", "--store"];
    args.push(dir.path().to_str().expect("utf-8"));
    args.extend(SHORT_RUN);
    let o = faultline(&args);
    let err = stderr(&o);
    // Every node line: "  n1: client 127.0.0.1:PORT, pid N, log PATH".
    let nodes: Vec<(String, i32)> = err
        .lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix('n')?;
            let (_, rest) = rest.split_once(": client ")?;
            let (addr, rest) = rest.split_once(", pid ")?;
            let (pid, _) = rest.split_once(',')?;
            Some((addr.to_string(), pid.parse().ok()?))
        })
        .collect();
    let _cleanup = ProcessGroups(nodes.iter().map(|&(_, pid)| pid).collect());
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("the cluster is left running (--leave-db-running)"),
        "{err}"
    );
    assert_eq!(nodes.len(), 3, "one line per node: {err}");
    // The harness has exited; its nodes have not, and they answer.
    for (addr, pid) in &nodes {
        assert!(alive(*pid), "pid {pid} runs on: {err}");
        std::net::TcpStream::connect_timeout(
            &addr.parse().expect("a socket address"),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{addr} answers: {e}"));
    }
    let log = std::fs::read_to_string(dir.path().join("latest/faultline.log")).expect("log");
    assert!(log.contains("left running"), "{log}");
    // The printed command stops them.
    let stop = err
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("stop them: "))
        .unwrap_or_else(|| panic!("no stop command: {err}"));
    let status = Command::new("sh").args(["-c", stop]).status().expect("sh");
    assert!(status.success(), "{stop}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes.iter().any(|&(_, pid)| alive(pid)) {
        assert!(Instant::now() < deadline, "{stop} stopped every node");
        std::thread::sleep(Duration::from_millis(50));
    }
}

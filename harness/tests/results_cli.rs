//! The results subcommands through the real binary: report, compare (exit 1
//! on an injected regression, 0 on equal runs), ls, and a suite of real
//! runs with its JUnit file and worst exit code.

use faultline_results::synthetic_run::{write_run, RunSpec};
use std::path::Path;
use std::process::{Command, Output};

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("running faultline")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn compare_exits_1_on_an_injected_regression_and_0_on_equal_runs() {
    let store = tempfile::tempdir().expect("tempdir");
    let a = write_run(store.path(), &RunSpec::default());
    let same = write_run(
        store.path(),
        &RunSpec {
            start_offset_s: 1,
            ..RunSpec::default()
        },
    );
    let slow = write_run(
        store.path(),
        &RunSpec {
            latency_scale: 1.5,
            start_offset_s: 2,
            ..RunSpec::default()
        },
    );
    let limits = "--max-regression=p99=10%,throughput=5%";

    let o = faultline(&["compare", p(&a), p(&same), limits]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    for needle in [
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "throughput /s",
        "count",
        "+0.0%",
        "verdict: valid → valid",
    ] {
        assert!(out.contains(needle), "missing {needle} in\n{out}");
    }

    let o = faultline(&["compare", p(&a), p(&slow), limits]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("REGRESSION"), "{}", text(&o));
    // Without thresholds only the verdict counts.
    assert_eq!(code(&faultline(&["compare", p(&a), p(&slow)])), 0);

    let o = faultline(&["compare", p(&a), p(&slow), "--json", limits]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(!json["regressions"].as_array().expect("array").is_empty());

    // --baseline: the newest run of the test (slow) against a baseline run.
    let o = faultline(&[
        "compare",
        "--baseline",
        p(&a),
        "--store",
        p(store.path()),
        limits,
    ]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("REGRESSED"));

    for bad in [
        vec!["compare", p(&a), p(&same), "--max-regression", "p98=1%"],
        vec!["compare", p(&a)],
        vec!["compare", p(&a), "/nonexistent/run"],
    ] {
        let o = faultline(&bad);
        assert_eq!(code(&o), 254, "{bad:?}: {}", text(&o));
    }
}

#[test]
fn report_and_ls_work_on_a_stored_run_and_refuse_what_is_not_one() {
    let store = tempfile::tempdir().expect("tempdir");
    let run = write_run(
        store.path(),
        &RunSpec {
            invalid: true,
            ..RunSpec::default()
        },
    );
    let o = faultline(&["report", p(&store.path().join("latest"))]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let html = std::fs::read_to_string(run.join("report.html")).expect("report.html");
    assert!(html.contains(r#"data-verdict="invalid""#));
    assert!(run.join("plots/latency-raw.png").is_file());

    let o = faultline(&["report", p(store.path())]);
    assert_eq!(code(&o), 254, "{}", text(&o));
    assert!(text(&o).contains("not a run directory"), "{}", text(&o));

    let o = faultline(&["ls", "--store", p(store.path())]);
    assert_eq!(code(&o), 0);
    let out = text(&o);
    assert!(
        out.contains("register-partition-kill") && out.contains("invalid"),
        "{out}"
    );
    let o = faultline(&["ls", "--store", p(store.path()), "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(runs[0]["verdict"], "invalid");
    // No store yet is no runs, not bad input (issue 18).
    let o = faultline(&["ls", "--store", "/nonexistent/store"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).starts_with("no runs"), "{}", text(&o));
}

#[test]
fn a_suite_runs_its_matrix_writes_junit_and_rejects_bad_options_up_front() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let suite = dir.path().join("smoke.toml");
    std::fs::write(
        &suite,
        r#"
workloads = ["register"]
nemeses = ["none", "kill"]
repeats = 1
[options]
time-limit = "2s"
nemesis-interval = "1s"
node-count = 3
rate = 40
no-iptables = true
"#,
    )
    .expect("suite file");
    let junit = dir.path().join("junit.xml");
    let o = faultline(&[
        "suite",
        p(&suite),
        "--store",
        p(&store),
        "--junit",
        p(&junit),
    ]);
    let out = text(&o);
    // Both runs of a correct system: valid, or unknown if a check gave up.
    assert!(matches!(code(&o), 0 | 2), "{out}");
    assert!(
        out.contains("register-none") && out.contains("register-kill"),
        "{out}"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit.xml");
    let doc = roxmltree::Document::parse(&xml).expect("JUnit is well-formed XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 2, "{xml}");
    assert_eq!(cases[0].attribute("name"), Some("register-none#1"));
    for test in ["register-none", "register-kill"] {
        let runs: Vec<_> = std::fs::read_dir(store.join(test))
            .expect("test dir")
            .collect();
        assert_eq!(runs.len(), 1, "{test}");
        let run = runs[0].as_ref().expect("entry").path();
        assert!(run.join("report.html").is_file(), "{test}: report built");
    }

    // A systems axis: consensus for faultline's own node only (issue 12).
    let systems = dir.path().join("systems.toml");
    std::fs::write(
        &systems,
        "workloads = [\"register\"]\nconsensus = [\"raft\", \"paxos\"]\nsystems = [\"faultline\", \"etcd\"]\n",
    )
    .expect("suite file");
    let o = faultline(&["suite", p(&systems), "--dry-run"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let lines: Vec<&str> = std::str::from_utf8(&o.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("faultline-register-none-raft#1: faultline test --system faultline")
    );
    assert!(lines[1].contains("--consensus paxos"), "{lines:?}");
    assert!(
        lines[2].starts_with("etcd-register-none#1: faultline test --system etcd")
            && !lines[2].contains("--consensus"),
        "{lines:?}"
    );

    // A bad option is bad input before anything runs.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "workloads = [\"register\"]\n[options]\nnode-count = 0\n",
    )
    .expect("bad suite");
    let o = faultline(&["suite", p(&bad), "--store", p(&dir.path().join("store2"))]);
    assert_eq!(code(&o), 254, "{}", text(&o));
    assert!(text(&o).contains("--node-count 0"), "{}", text(&o));
    assert!(!dir.path().join("store2").exists(), "nothing ran");
    let o = faultline(&["suite", p(&dir.path().join("missing.toml"))]);
    assert_eq!(code(&o), 254);
}

//! `faultline test` and `faultline analyze` from the outside: a short real
//! run stores what docs/store.md promises and `analyze` agrees with it;
//! bad input exits 254 with a message naming what was wrong.

mod test_common;

use std::path::Path;
use test_common::faultline;

#[test]
fn bad_flags_exit_254_naming_the_flag() {
    let store = tempfile::tempdir().expect("tempdir");
    let s = store.path().to_str().expect("utf-8");
    for (args, needle) in [
        (vec!["test", "--workload", "queue"], "--workload"),
        (vec!["test", "--nemesis", "partition,flood"], "flood"),
        (vec!["test", "--bug", "no-such-bug"], "--bug"),
        (vec!["test", "--time-limit", "10 parsecs"], "time-limit"),
        (vec!["test", "--concurrency", "0"], "concurrency"),
        (vec!["test", "--node-count", "0"], "--node-count"),
        (vec!["test", "--rate=-5"], "--rate"),
    ] {
        let mut a = args.clone();
        a.extend(["--store", s]);
        let (code, _, err) = faultline(&a);
        assert_eq!(code, Some(254), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: the message should name {needle:?}: {err}"
        );
    }
    // Bad flags start nothing: no run directory was made.
    assert_eq!(std::fs::read_dir(store.path()).expect("store").count(), 0);
}

#[test]
fn analyze_refuses_what_is_not_a_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = faultline(&["analyze", &dir.path().join("nope").to_string_lossy()]);
    assert_eq!(code, Some(254), "{err}");
    let (code, _, err) = faultline(&["analyze", &dir.path().to_string_lossy()]);
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("history.jsonl"), "{err}");
    std::fs::write(
        dir.path().join("history.jsonl"),
        "{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\nnot json\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("test.json"), r#"{"plan":{}}"#).expect("write");
    let (code, _, err) = faultline(&["analyze", &dir.path().to_string_lossy()]);
    assert_eq!(code, Some(254), "{err}");
}

/// A stored run whose history has a stale read: analyze finds it (exit 1).
#[test]
fn analyze_finds_a_stale_read_in_a_stored_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = serde_json::json!({"plan": {
        "name": "register-hand", "workload": "register", "checkers": ["linearizable"], "node_count": 3,
        "concurrency": 2, "rate_per_s": 10.0, "time_limit_s": 1.0, "op_timeout_ms": 1000, "nemesis": [],
        "nemesis_interval_s": 10.0, "seed": 1, "bug": null, "consensus": null, "recovery_timeout_s": 1.0,
        "final_timeout_s": 1.0, "lock_ttl_ms": 3000, "kv_keys": 8
    }});
    std::fs::write(dir.path().join("test.json"), plan.to_string()).expect("write");
    let history = [
        r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"write","value":3}"#,
        r#"{"index":1,"time":20,"process":0,"type":"ok","f":"write","value":3,"node":"n1"}"#,
        r#"{"index":2,"time":30,"process":1,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":3,"time":40,"process":1,"type":"ok","f":"read","value":null,"node":"n2"}"#,
    ]
    .join("\n");
    std::fs::write(dir.path().join("history.jsonl"), history + "\n").expect("write");
    let (code, out, err) = faultline(&["analyze", "--json", &dir.path().to_string_lossy()]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let results: serde_json::Value =
        serde_json::from_str(&out).expect("--json prints results.json");
    assert_eq!(results["verdict"], "invalid");
    assert!(dir.path().join("results.json").is_file());
}

#[test]
fn a_short_run_stores_everything_and_analyze_agrees() {
    let store = tempfile::tempdir().expect("tempdir");
    let s = store.path().to_str().expect("utf-8");
    let (code, out, err) = faultline(&[
        "test",
        "--workload",
        "set",
        "--time-limit",
        "3s",
        "--nemesis",
        "none",
        "--seed",
        "5",
        "--json",
        "--store",
        s,
    ]);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let results: serde_json::Value =
        serde_json::from_str(&out).expect("--json prints results.json");
    assert_eq!(results["verdict"], "valid");
    // Every run, not only value-shaped ones, checks that no node was left behind.
    let caught_up = results["checkers"]
        .as_array()
        .expect("checkers")
        .iter()
        .find(|c| c["checker"] == "caught-up")
        .unwrap_or_else(|| panic!("a plain run has no caught-up check: {out}"));
    assert_eq!(caught_up["verdict"], "valid", "{caught_up}");
    let run = std::fs::canonicalize(store.path().join("latest")).expect("store/latest resolves");
    assert!(
        run.starts_with(std::fs::canonicalize(store.path().join("set-none")).expect("test dir"))
    );
    for f in [
        "history.jsonl",
        "test.json",
        "results.json",
        "nodes/n1.log",
        "nodes/n5.log",
    ] {
        assert!(run.join(f).is_file(), "{f} missing in {}", run.display());
    }
    assert!(run.join("nodes/n3").is_dir(), "node data dir missing");
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("test.json")).expect("read"))
            .expect("JSON");
    assert_eq!(test["plan"]["seed"], 5);
    assert_eq!(test["plan"]["workload"], "set");
    assert_eq!(test["plan"]["concurrency"], 10, "2n of 5 nodes");
    assert!(test["mechanisms"]["partition"].is_string());
    let adds = results["stats"]["ops"]
        .as_array()
        .expect("ops")
        .iter()
        .find(|o| o["f"] == "add")
        .expect("the set workload adds");
    assert!(adds["ok"].as_u64().expect("count") > 10, "{adds}");
    assert!(
        adds["latency_ms_p99"].as_f64().expect("p99")
            >= adds["latency_ms_p50"].as_f64().expect("p50")
    );

    let (code, out2, err) = faultline(&[
        "analyze",
        "--json",
        &store.path().join("latest").to_string_lossy(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let again: serde_json::Value = serde_json::from_str(&out2).expect("JSON");
    assert_eq!(again["verdict"], results["verdict"]);
    assert_eq!(again["history_events"], results["history_events"]);
    assert_eq!(again["stats"], results["stats"]);
    let _ = Path::new(s);
}

//! `faultline test --system FILE.toml` from the outside (docs/adapters.md):
//! bad adapter files and flags exit 254 naming the file and line before
//! anything starts; a node that cannot start is a harness error naming it;
//! a client that breaks the protocol is replaced and the run goes on; kill
//! and pause reach a node's whole process group; nothing is left running.
//!
//! The runs use examples/adapters/faultline-node.toml (faultline's own node
//! behind the adapter path, its client Python with only the standard
//! library), so they need /usr/bin/python3 and nothing else. Tests that
//! need root (partitions by iptables) or Redis are in adapter_redis.rs,
//! run by .ci/adapters.sh.

mod test_common;

use std::path::{Path, PathBuf};
use test_common::faultline;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/adapters")
}

/// The faultline-node adapter with `edit` applied, written into `dir`
/// (its `{{adapter_dir}}` made to point at the shipped one).
fn node_adapter(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let shipped = examples().join("faultline-node.toml");
    let text = std::fs::read_to_string(&shipped).expect("shipped adapter");
    let text = text.replace("{{adapter_dir}}", &examples().to_string_lossy());
    let path = dir.join(name);
    std::fs::write(&path, edit(text)).expect("write adapter");
    path
}

/// Live processes whose command line or working directory mentions
/// `needle` (the test's own directory), other than this test.
fn left_running(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z ") {
            continue;
        }
        let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        if cmd.contains(needle) || cwd.to_string_lossy().contains(needle) {
            found.push(format!("{name}: {cmd}"));
        }
    }
    found
}

fn require_python() {
    assert!(
        Path::new("/usr/bin/python3").exists(),
        "these tests run the faultline-node adapter, whose client needs /usr/bin/python3"
    );
}

#[test]
fn a_bad_adapter_file_or_flag_exits_254_naming_file_line_and_what() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let s = store.to_str().expect("utf-8");
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            node_adapter(dir.path(), "no-client.toml", |t| {
                let at = t.find("[client]").expect("has a client");
                t[..at].to_string()
            }),
            "no-client.toml:1: missing field `client`",
        ),
        (
            node_adapter(dir.path(), "placeholder.toml", |t| {
                t.replace("{{addr.client}} --peers", "{{adress.client}} --peers")
            }),
            "placeholder.toml:24: node.daemon \"node\" start: {{adress.client}}: unknown placeholder",
        ),
        (
            node_adapter(dir.path(), "fault.toml", |t| t.replace("\"clock\"]", "\"latency\"]")),
            "fault.toml:12: faults: latency is not available through an adapter",
        ),
        (
            node_adapter(dir.path(), "requires.toml", |t| {
                t.replace("requires = [", "requires = [\"no-such-program-xyz\", ")
            }),
            "requires no-such-program-xyz, not found on PATH",
        ),
        (dir.path().join("absent.toml"), "absent.toml: cannot read it"),
    ];
    for (file, want) in cases {
        let f = file.to_str().expect("utf-8");
        let (code, _, err) = faultline(&["test", "--system", f, "--store", s]);
        assert_eq!(code, Some(254), "{f}: {err}");
        assert!(err.contains(want), "{f}: want {want:?} in:\n{err}");
    }
    // Whole lines are replaced, whatever the example lists today (a new
    // workload in the example must not make these cases pass for the
    // wrong reason).
    let good = node_adapter(dir.path(), "good.toml", |t| {
        let mut replaced = 0;
        let out: Vec<String> = t
            .lines()
            .map(|l| {
                if l.starts_with("workloads = [") {
                    replaced += 1;
                    "workloads = [\"register\", \"set\"]".to_string()
                } else if l.starts_with("faults = [") {
                    replaced += 1;
                    "faults = [\"kill\", \"pause\"]".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect();
        assert_eq!(
            replaced, 2,
            "the example names its workloads and faults on lines of their own"
        );
        out.join("\n") + "\n"
    });
    let g = good.to_str().expect("utf-8");
    for (args, want) in [
        (vec!["--workload", "counter"], "--workload counter: "),
        (
            vec!["--workload", "register", "--nemesis", "partition,kill"],
            "cannot take partition (its faults = [kill, pause])",
        ),
        (vec!["--param", "bogus=1"], "declares no param \"bogus\""),
        (vec!["--param", "bug=a b"], "one plain word"),
        (vec!["--param", "bug"], "use NAME=VALUE"),
    ] {
        let mut a = vec!["test", "--system", g, "--store", s];
        a.extend(args.iter().copied());
        let (code, _, err) = faultline(&a);
        assert_eq!(code, Some(254), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in:\n{err}");
    }
    let (code, _, err) = faultline(&["test", "--param", "x=1", "--store", s]);
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("params belong to an adapter file"), "{err}");
    // Nothing was started: no run directory.
    let runs = std::fs::read_dir(&store).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        runs,
        0,
        "a refused run made a run directory in {}",
        store.display()
    );
}

#[test]
fn remote_mode_refuses_what_cannot_run_on_the_hosts_naming_file_and_line() {
    // Refused while planning: no host is contacted (127.0.0.1 is never
    // dialled), no run directory made.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let s = store.to_str().expect("utf-8");
    let key = dir.path().join("id_ed25519");
    std::fs::write(&key, "not a key: never read, the run is refused first").expect("key");
    let k = key.to_str().expect("utf-8");
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            node_adapter(dir.path(), "ready.toml", |t| {
                t.replace(
                    "[[node.daemon]]",
                    "ready = \"test -d {{data_dir}}\"\n\n[[node.daemon]]",
                )
            }),
            "ready.toml:22: node.ready: in remote mode node.ready runs on this machine",
        ),
        (
            node_adapter(dir.path(), "rundir.toml", |t| {
                t.replace(
                    "[[node.daemon]]",
                    "setup = \"cp {{run_dir}}/seed.txt .\"\n\n[[node.daemon]]",
                )
            }),
            "rundir.toml:22: node.setup: {{run_dir}} is the run's directory on this machine, and in remote mode node.setup runs on each host",
        ),
        (
            // version runs on the first host in remote mode.
            node_adapter(dir.path(), "version.toml", |t| {
                t.replace(
                    "requires = [",
                    "version = \"cat {{run_dir}}/version.txt\"\nrequires = [",
                )
            }),
            "version.toml:9: version: {{run_dir}} is the run's directory on this machine, and in remote mode version runs on the first host",
        ),
    ];
    for (file, want) in cases {
        let f = file.to_str().expect("utf-8");
        let (code, _, err) = faultline(&[
            "test",
            "--system",
            f,
            "--store",
            s,
            "--nodes",
            "127.0.0.1",
            "--ssh-key",
            k,
            "--ssh-config",
            "none",
        ]);
        assert_eq!(code, Some(254), "{f}: {err}");
        assert!(err.contains("cannot run in remote mode"), "{f}: {err}");
        assert!(err.contains(want), "{f}: want {want:?} in:\n{err}");
        // The same file runs in local mode: only remote mode refuses it
        // (checked up to the plan: --node-count 0 is what stops it).
        let (code, _, err) = faultline(&["test", "--system", f, "--store", s, "--node-count", "0"]);
        assert_eq!(code, Some(254), "{f}: {err}");
        assert!(!err.contains("remote mode"), "{f}: {err}");
        assert!(
            err.contains("--node-count 0: use 1 to 200 nodes"),
            "{f}: {err}"
        );
    }
    let runs = std::fs::read_dir(&store).map(|d| d.count()).unwrap_or(0);
    assert_eq!(runs, 0, "a refused run made a run directory");
}

#[test]
fn a_start_command_that_exits_at_once_names_the_node_and_leaves_nothing() {
    require_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let bad = node_adapter(dir.path(), "exits.toml", |t| {
        t.replace(
            "start = \"\"\"bug=",
            "start = \"\"\"echo no such daemon >&2; exit 3; bug=",
        )
    });
    let started = std::time::Instant::now();
    let (code, _, err) = faultline(&[
        "test",
        "--system",
        bad.to_str().expect("utf-8"),
        "--nemesis",
        "none",
        "--time-limit",
        "5s",
        "--store",
        store.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(255), "{err}");
    // Every node's start fails; whichever the cluster sees first is named.
    assert!(
        (1..=5).any(|i| err.contains(&format!("n{i}: daemon node (pid ")))
            && err.contains("exited with status 3"),
        "names the node, the daemon and its status: {err}"
    );
    assert!(
        !err.contains("still holds"),
        "a node that exited during start is not left in the ledger: {err}"
    );
    assert!(
        err.contains("no such daemon"),
        "quotes the node's log: {err}"
    );
    // The error comes when the node exits, not at the end of the 30 s wait.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
    let left = left_running(&dir.path().to_string_lossy());
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn a_client_that_breaks_the_protocol_is_replaced_and_the_run_goes_on() {
    require_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let saboteur = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adapters/saboteur.py");
    for (mode, said) in [
        ("garbage", "printed a line that is not JSON"),
        ("wrong-id", "answered wrongly"),
        ("exit", "exited"),
        ("silent", "no answer in time"),
    ] {
        let store = dir.path().join(format!("store-{mode}"));
        let file = node_adapter(dir.path(), &format!("{mode}.toml"), |t| {
            t.replace(
                "command = \"/usr/bin/python3 ",
                &format!(
                    "command = \"/usr/bin/python3 {} {mode} 7 /usr/bin/python3 ",
                    saboteur.display()
                ),
            )
        });
        let (code, out, err) = faultline(&[
            "test",
            "--system",
            file.to_str().expect("utf-8"),
            "--workload",
            "register",
            "--nemesis",
            "none",
            "--node-count",
            "3",
            "--time-limit",
            "5s",
            "--rate",
            "20",
            "--op-timeout",
            "1s",
            "--seed",
            "7",
            "--store",
            store.to_str().expect("utf-8"),
        ]);
        // Replaced clients make some operations info; the history stays valid.
        assert_eq!(code, Some(0), "{mode}: {out}\n{err}");
        assert!(
            err.contains("adapter clients replaced") && err.contains(said),
            "{mode}: {err}"
        );
        let clients =
            std::fs::read_to_string(store.join("latest/clients.json")).expect("clients.json");
        assert!(
            clients.contains(said),
            "{mode}: clients.json records why: {clients}"
        );
        let history = std::fs::read_to_string(store.join("latest/history.jsonl")).expect("history");
        assert!(
            history.contains("; replaced"),
            "{mode}: an info op names the replacement"
        );
    }
    let left = left_running(&dir.path().to_string_lossy());
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn kill_and_pause_reach_the_whole_node_and_the_run_ends_valid() {
    require_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    // Two daemons per node: faultline's node and a sleeper that must die,
    // stop and continue with it.
    let file = node_adapter(dir.path(), "two.toml", |t| {
        t.replace(
            "[lists.peers]",
            "[[node.daemon]]\nname = \"sidecar\"\nstart = \"exec sleep 600\"\n\n[lists.peers]",
        )
    });
    let (code, out, err) = faultline(&[
        "test",
        "--system",
        file.to_str().expect("utf-8"),
        "--workload",
        "register",
        "--nemesis",
        "kill,pause",
        "--nemesis-interval",
        "2s",
        "--time-limit",
        "10s",
        "--seed",
        "11",
        "--store",
        store.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let history = std::fs::read_to_string(store.join("latest/history.jsonl")).expect("history");
    for event in ["\"f\":\"start-kill\"", "\"f\":\"start-pause\""] {
        assert!(history.contains(event), "no {event} fault in the history");
    }
    // Every incarnation of a killed node started both daemons again, and
    // some node was killed and restarted (a sidecar that outlived its
    // node's kill would still be running: checked below).
    let mut restarts = 0;
    for n in 1..=5 {
        let log = std::fs::read_to_string(store.join(format!("latest/nodes/n{n}.log")))
            .expect("node log");
        let starts = log.matches(&format!("faultline: n{n}: starting")).count();
        let sidecars = log.matches("daemon sidecar started").count();
        assert_eq!(starts, sidecars, "n{n}: {log}");
        restarts += starts.saturating_sub(1);
    }
    assert!(restarts > 0, "no node was killed and restarted");
    let test_json = std::fs::read_to_string(store.join("latest/test.json")).expect("test.json");
    assert!(test_json.contains("\"kind\": \"adapter\""), "{test_json}");
    let left = left_running(&dir.path().to_string_lossy());
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn node_stop_runs_when_the_run_ends_and_a_failing_one_falls_back_to_signals() {
    require_python();
    let dir = tempfile::tempdir().expect("tempdir");
    // A stop that leaves a mark in the node's data folder and then ends
    // its daemon (found by its data folder on its command line, which the
    // node script's own also holds: hence the program at its start).
    let clean = node_adapter(dir.path(), "stop.toml", |t| {
        t.replace(
            "[[node.daemon]]",
            "stop = \"\"\"echo stopped > stop-marker; pkill -TERM -f -- '^[^ ]*faultline node .*--data-dir {{data_dir}} '\"\"\"\n\n[[node.daemon]]",
        )
    });
    let failing = node_adapter(dir.path(), "stop-fails.toml", |t| {
        t.replace(
            "[[node.daemon]]",
            "stop = \"echo will not stop >&2; exit 3\"\n\n[[node.daemon]]",
        )
    });
    let run = |file: &Path, store: &Path| {
        faultline(&[
            "test",
            "--system",
            file.to_str().expect("utf-8"),
            "--workload",
            "register",
            "--nemesis",
            "none",
            "--node-count",
            "3",
            "--time-limit",
            "3s",
            "--store",
            store.to_str().expect("utf-8"),
        ])
    };
    let store = dir.path().join("store-clean");
    let (code, out, err) = run(&clean, &store);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(!err.contains("node.stop"), "every node.stop worked: {err}");
    for n in 1..=3 {
        let marker = store.join(format!("latest/nodes/n{n}/stop-marker"));
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap_or_default(),
            "stopped\n",
            "n{n}'s node.stop ran in its data folder ({})",
            marker.display()
        );
        // The daemon exited because of it (the script saw it end), not by
        // the signals to the node's whole group.
        let log = std::fs::read_to_string(store.join(format!("latest/nodes/n{n}.log")))
            .expect("node log");
        let stop = log
            .find(&format!("faultline: n{n}: node.stop"))
            .unwrap_or_else(|| panic!("n{n}: no node.stop in its log:\n{log}"));
        assert!(
            log[stop..].contains(&format!("faultline: n{n}: daemon node (pid ")),
            "n{n}: its daemon did not exit after node.stop:\n{log}"
        );
    }

    let store = dir.path().join("store-failing");
    let (code, out, err) = run(&failing, &store);
    assert_eq!(
        code,
        Some(0),
        "a failing stop changes no verdict: {out}\n{err}"
    );
    for n in 1..=3 {
        assert!(
            err.contains(&format!("n{n}: node.stop failed (exit status 3)"))
                && err.contains("stopping it by signals"),
            "n{n}: the failure is said: {err}"
        );
        let log = std::fs::read_to_string(store.join(format!("latest/nodes/n{n}.log")))
            .expect("node log");
        assert!(
            log.contains("will not stop"),
            "n{n}: its output is in its log:\n{log}"
        );
    }
    let left = left_running(&dir.path().to_string_lossy());
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn a_daemon_that_ignores_libfaketime_stops_a_clock_run_instead_of_faking_it() {
    require_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    // The sidecar drops LD_PRELOAD, as a static binary or a Go program
    // would ignore it: clock faults could not reach it.
    let file = node_adapter(dir.path(), "deaf.toml", |t| {
        t.replace(
            "[lists.peers]",
            "[[node.daemon]]\nname = \"sidecar\"\nstart = \"exec env -u LD_PRELOAD sleep 600\"\n\n[lists.peers]",
        )
    });
    let (code, out, err) = faultline(&[
        "test",
        "--system",
        file.to_str().expect("utf-8"),
        "--nemesis",
        "clock",
        "--node-count",
        "3",
        "--time-limit",
        "5s",
        "--store",
        store.to_str().expect("utf-8"),
    ]);
    if faultline::cluster::local::libfaketime().is_some() {
        assert_eq!(code, Some(255), "{out}\n{err}");
        assert!(
            err.contains("daemon sidecar (pid ") && err.contains("does not map libfaketime"),
            "{err}"
        );
    } else {
        // Without libfaketime the fault is recorded as unsupported, never faked.
        assert_eq!(code, Some(0), "{out}\n{err}");
        let test_json = std::fs::read_to_string(store.join("latest/test.json")).expect("test.json");
        assert!(
            test_json.contains("\"clock\": \"adapter has no clock"),
            "{test_json}"
        );
    }
    let left = left_running(&dir.path().to_string_lossy());
    assert!(left.is_empty(), "left running: {left:?}");
}

/// The faultline-node adapter taking isolation levels and one node at
/// most: its setup writes the run's level where the test can read it.
fn leveled_adapter(dir: &Path) -> PathBuf {
    node_adapter(dir, "leveled.toml", |t| {
        let t = t.replacen(
            "\n[params]",
            "\nmax_nodes = 1\n\n[isolation]\nlevels = [\"read-committed\", \"serializable\"]\ndefault = \"serializable\"\n\n[params]",
            1,
        );
        t.replacen(
            "[[node.daemon]]",
            "setup = \"echo {{isolation}} > {{data_dir}}/isolation\"\n\n[[node.daemon]]",
            1,
        )
    })
}

#[test]
fn isolation_is_refused_by_systems_without_levels_and_checked_against_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let s = store.to_str().expect("utf-8");
    let plain = node_adapter(dir.path(), "plain.toml", |t| t);
    let leveled = leveled_adapter(dir.path());
    let (p, l) = (
        plain.to_str().expect("utf-8"),
        leveled.to_str().expect("utf-8"),
    );
    for (args, want) in [
        (
            vec!["--isolation", "serializable"],
            "--isolation serializable: --system faultline offers no isolation levels",
        ),
        (
            vec!["--system", "etcd", "--isolation", "read-committed"],
            "--isolation read-committed: --system etcd offers no isolation levels",
        ),
        (
            vec!["--system", p, "--isolation", "serializable"],
            "plain.toml declares no [isolation] levels, so faultline-node runs at the one it has",
        ),
        (
            vec![
                "--system",
                l,
                "--node-count",
                "1",
                "--isolation",
                "repeatable-read",
            ],
            "--isolation repeatable-read: ",
        ),
        (vec!["--system", l, "--node-count", "3"], "--node-count 3: "),
        (
            vec!["--system", l, "--isolation", "serialisable"],
            "serialisable",
        ),
    ] {
        let mut a = vec!["test", "--workload", "register", "--store", s];
        a.extend(args.iter().copied());
        let (code, _, err) = faultline(&a);
        assert_eq!(code, Some(254), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in:\n{err}");
    }
    let (_, _, err) = faultline(&[
        "test",
        "--system",
        l,
        "--node-count",
        "1",
        "--isolation",
        "repeatable-read",
        "--store",
        s,
    ]);
    assert!(
        err.contains("leveled.toml takes read-committed, serializable"),
        "{err}"
    );
    let (_, _, err) = faultline(&["test", "--system", l, "--store", s]);
    assert!(
        err.contains("leveled.toml runs at most 1 node (its max_nodes); use --node-count 1"),
        "{err}"
    );
    let runs = std::fs::read_dir(&store).map(|d| d.count()).unwrap_or(0);
    assert_eq!(runs, 0, "a refused run made a run directory");
}

#[test]
fn the_isolation_level_reaches_the_adapters_commands_and_test_json() {
    require_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let leveled = leveled_adapter(dir.path());
    for (flag, level) in [
        (None, "serializable"),
        (Some("read-committed"), "read-committed"),
    ] {
        let mut args = vec![
            "test",
            "--system",
            leveled.to_str().expect("utf-8"),
            "--node-count",
            "1",
            "--workload",
            "register",
            "--nemesis",
            "none",
            "--time-limit",
            "2s",
            "--store",
            store.to_str().expect("utf-8"),
        ];
        if let Some(f) = flag {
            args.extend(["--isolation", f]);
        }
        let (code, out, err) = faultline(&args);
        assert_eq!(code, Some(0), "{out}\n{err}");
        let written = std::fs::read_to_string(store.join("latest/nodes/n1/isolation"))
            .expect("the setup wrote {{isolation}}");
        assert_eq!(written.trim(), level, "{{{{isolation}}}} with {flag:?}");
        let test_json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(store.join("latest/test.json")).expect("test.json"),
        )
        .expect("test.json parses");
        assert_eq!(test_json["plan"]["isolation"], level, "{test_json}");
        assert_eq!(
            test_json["system"]["settings"]["isolation_levels"],
            serde_json::json!(["read-committed", "serializable"])
        );
        assert!(
            test_json["plan"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with(&format!("-{level}"))),
            "the test's name says its level: {test_json}"
        );
    }
    let left = left_running(&dir.path().to_string_lossy());
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn postgres_missing_is_refused_naming_the_debian_package() {
    // The shipped PostgreSQL adapter on a machine without PostgreSQL 15:
    // its programs pointed at a version that is not installed.
    let dir = tempfile::tempdir().expect("tempdir");
    let shipped = std::fs::read_to_string(examples().join("postgres.toml")).expect("shipped");
    let text = shipped
        .replace(
            "/usr/lib/postgresql/15/",
            "/usr/lib/postgresql/faultline-test-absent/",
        )
        .replace("{{adapter_dir}}", &examples().to_string_lossy());
    let file = dir.path().join("postgres.toml");
    std::fs::write(&file, text).expect("write");
    let store = dir.path().join("store");
    let (code, _, err) = faultline(&[
        "test",
        "--system",
        file.to_str().expect("utf-8"),
        "--node-count",
        "1",
        "--workload",
        "list-append",
        "--store",
        store.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(254), "{err}");
    assert!(
        err.contains("requires /usr/lib/postgresql/faultline-test-absent/bin/postgres"),
        "{err}"
    );
    assert!(
        err.contains("apt-get install -y postgresql python3-psycopg2"),
        "names the Debian package: {err}"
    );
    assert!(!store.exists() || std::fs::read_dir(&store).map(|d| d.count()).unwrap_or(0) == 0);
}

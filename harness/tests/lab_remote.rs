//! Remote host operations against a real lab: deploy with checksum skip,
//! daemons by pidfile (start, pause, resume, kill, restart, stop), faults
//! by iptables (partition, loss), libfaketime (clock), tc (latency, or a
//! clear refusal naming the host), heal after a host was unreachable for a
//! while, log fetch; and lab up/status/down leaving nothing behind.
//!
//! Needs root: `FAULTLINE_LAB_TESTS=1 cargo test -p faultline --test lab_remote -- --ignored`.

mod lab_support;

use faultline::remote::{DaemonSpec, Need, ProcState, RemoteArgs, RemoteHosts};
use faultline::ssh::Upload;
use lab_support::{enabled, run, text, TestLab};
use std::time::Duration;

fn remote_hosts(lab: &TestLab, extra: &[&str]) -> RemoteHosts {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        remote: RemoteArgs,
    }
    let bin = lab_support::faultline();
    let mut args = vec![
        "t",
        "--lab",
        lab.dir_str(),
        "--node-bin",
        bin.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let plan = Cli::parse_from(args)
        .remote
        .resolve()
        .expect("flags resolve")
        .expect("remote mode");
    RemoteHosts::new(&plan)
}

/// From host `from` (index), can we open TCP to host `to`'s sshd?
fn can_reach(h: &RemoteHosts, from: usize, to_addr: &str) -> bool {
    let cmd = format!("timeout 2 bash -c '</dev/tcp/{to_addr}/22' && echo yes || echo no");
    h.session(from).run_root(&cmd).expect("probe runs").trim() == "yes"
}

fn spec(name: &str, program: &str, args: &[&str], faketime: Option<String>) -> DaemonSpec {
    DaemonSpec {
        name: name.into(),
        program: program.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        faketime_lib: faketime,
        fake_monotonic: false,
    }
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn deploy_daemons_faults_heal_and_logs_on_a_real_lab() {
    if !enabled("lab_remote") {
        return;
    }
    let lab = TestLab::up(2);
    let mut h = remote_hosts(&lab, &[]);

    // Deploy: sent the first time, skipped the second (same sha256).
    let first = h
        .prepare(&[Need::Iptables, Need::Faketime])
        .expect("prepare");
    assert!(
        first
            .iter()
            .all(|d| matches!(d.upload, Upload::Sent { .. })),
        "{first:?}"
    );
    let again = h
        .prepare(&[Need::Iptables, Need::Faketime])
        .expect("prepare again");
    assert!(
        again.iter().all(|d| d.upload == Upload::AlreadyThere),
        "{again:?}"
    );
    // Each host has its own copy (its own /var/lib/faultline).
    let v = h
        .session(0)
        .run_root("/var/lib/faultline/bin/faultline --version")
        .expect("deployed binary runs");
    assert!(v.contains("faultline"), "{v}");
    let lib = h
        .faketime_lib(0)
        .expect("libfaketime found on the lab host");

    // Daemons: a node that logs and ticks its (maybe faked) clock into a file.
    let ticker = "echo started; while :; do date +%s > now.tmp; mv now.tmp now; sleep 0.2; done";
    for i in 0..2 {
        let pid = h
            .start(i, &spec("n1", "sh", &["-c", ticker], Some(lib.clone())))
            .expect("start");
        assert!(pid > 1);
        assert_eq!(h.state(i, "n1").unwrap(), ProcState::Running);
    }
    // Processes are per host: host 2's list does not show host 1's node.
    let ps = h.session(1).run_root("ps -e -o pid= | wc -l").unwrap();
    assert!(
        ps.trim().parse::<u32>().unwrap() < 20,
        "host sees a small private process list: {ps}"
    );

    // Pause, resume, kill, restart.
    assert!(h.pause(0, "n1").unwrap());
    assert_eq!(h.state(0, "n1").unwrap(), ProcState::Stopped);
    assert!(h.resume(0, "n1").unwrap());
    assert_eq!(h.state(0, "n1").unwrap(), ProcState::Running);
    assert!(h.kill(0, "n1").unwrap());
    assert_eq!(
        h.state(0, "n1").unwrap(),
        ProcState::Gone,
        "a killed node is gone, not a live zombie"
    );
    h.start(0, &spec("n1", "sh", &["-c", ticker], Some(lib.clone())))
        .expect("restart after kill");
    assert_eq!(h.state(0, "n1").unwrap(), ProcState::Running);

    // Partition: host 2 stops hearing host 1; heal restores it.
    let (a1, a2) = (lab.addr(1), lab.addr(2));
    assert!(can_reach(&h, 0, &a2));
    h.partition(1, &[0]).expect("partition");
    assert!(
        !can_reach(&h, 0, &a2),
        "host 1 must not reach host 2 during the partition"
    );
    assert!(h
        .rules(1)
        .unwrap()
        .contains(&format!("-A {} -s {a1}/32 -j DROP", h.partition_chain())));

    // Loss with probability 1: every packet from host 1 dropped.
    h.partition(1, &[]).expect("partition off");
    h.loss(1, &[0], 1.0).expect("loss");
    assert!(!can_reach(&h, 0, &a2));
    assert!(h.rules(1).unwrap().contains("statistic"));

    // Clock: +1 hour on host 1's node only.
    h.clock(0, "n1", "+3600.000").expect("clock");
    std::thread::sleep(Duration::from_millis(1500)); // let the ticker write a new value
    let skew = |i: usize| -> i64 {
        let out = h
            .session(i)
            .run_root("echo $(( $(cat /var/lib/faultline/nodes/n1/now) - $(date +%s) ))")
            .unwrap();
        out.trim().parse().unwrap()
    };
    let s0 = skew(0);
    assert!(
        (3_500..=3_700).contains(&s0),
        "host 1's node runs an hour ahead: {s0}"
    );
    assert!(skew(1).abs() < 5, "host 2's node has the true time");

    // Latency: applied with netem, or refused naming the host.
    match h.latency(0, &[1], 50, 0) {
        Ok(()) => eprintln!("netem available: latency applied"),
        Err(e) => {
            let msg = e.to_string();
            eprintln!("latency refused: {msg}");
            assert!(msg.starts_with("10.77.0.11: "), "{msg}");
            assert!(msg.contains("netem"), "{msg}");
        }
    }

    // Host 1 unreachable from the controller for ~3 s; heal must still get through.
    h.session(1)
        .run_root(
            "iptables -w -I INPUT -s 10.77.0.1 -p tcp --dport 22 -j DROP && \
             setsid nohup sh -c 'sleep 3; iptables -w -D INPUT -s 10.77.0.1 -p tcp --dport 22 -j DROP' >/dev/null 2>&1 </dev/null &",
        )
        .expect("cut the controller off host 2");
    h.session(1).disconnect();
    let names = vec![vec!["n1".to_string()], vec!["n1".to_string()]];
    h.pause(0, "n1").unwrap();
    h.heal_all(&names, Duration::from_secs(60))
        .expect("heal gets through once the host is back");
    for i in 0..2 {
        assert_eq!(h.rules(i).unwrap().trim(), "", "no rules left on host {i}");
        assert_eq!(
            h.state(i, "n1").unwrap(),
            ProcState::Running,
            "heal resumed paused nodes"
        );
    }
    assert!(can_reach(&h, 0, &a2));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(skew(0).abs() < 5, "clock healed");

    // Stop and fetch logs.
    h.stop_all(&names, Duration::from_secs(2)).expect("stop");
    for i in 0..2 {
        assert_eq!(h.state(i, "n1").unwrap(), ProcState::Gone);
    }
    let store = tempfile::tempdir().unwrap();
    let files = h.fetch_logs(&names, store.path()).expect("fetch logs");
    assert_eq!(files.len(), 2);
    let log = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(
        log.matches("started").count(),
        2,
        "both incarnations of host 1's node logged: {log}"
    );
    assert!(
        files[0].starts_with(store.path().join("nodes").join("10.77.0.11")),
        "{:?}",
        files[0]
    );
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn lab_up_is_idempotent_and_down_leaves_nothing() {
    if !enabled("lab_up_down") {
        return;
    }
    let lab = TestLab::up(2);
    // Again in the same folder: says so, succeeds.
    let out = run(&["lab", "up", "--hosts", "2", "--dir", lab.dir_str()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("lab already up"), "{}", text(&out));
    // Another folder while this lab is up: refused.
    let other = tempfile::tempdir().unwrap();
    let out = run(&[
        "lab",
        "up",
        "--hosts",
        "1",
        "--dir",
        other.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(text(&out).contains("another lab is up"), "{}", text(&out));
    let out = run(&["lab", "status", "--dir", lab.dir_str(), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["hosts"].as_array().unwrap().len(), 2);
    // Hosts have no default route.
    let ns_route = std::process::Command::new("ip")
        .args(["-n", "fl-lab-1", "route", "show", "default"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ns_route.stdout).trim().is_empty(),
        "a lab host must have no default route"
    );

    // Half-built lab: kill one host's processes by hand; down still cleans all.
    let pids = std::process::Command::new("ip")
        .args(["netns", "pids", "fl-lab-2"])
        .output()
        .unwrap();
    for p in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let _ = std::process::Command::new("kill").args(["-9", p]).status();
    }
    let out = run(&["lab", "status", "--dir", lab.dir_str()]);
    assert_eq!(
        out.status.code(),
        Some(255),
        "status reports a degraded lab: {}",
        text(&out)
    );
    let down = run(&["lab", "down", "--dir", lab.dir_str()]);
    assert!(down.status.success(), "{}", text(&down));
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains("fl-lab-"),
        "namespaces left"
    );
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains("fl-lab-"),
        "links left"
    );
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        !ps.lines().any(|l| l.contains(lab.dir_str())),
        "processes left:\n{ps}"
    );
    // Dropping `lab` runs down again: must succeed on an already-down lab.
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn missing_tools_fail_early_naming_each_host_and_tool() {
    if !enabled("missing_tools") {
        return;
    }
    let lab = TestLab::up(2);
    let mut h = remote_hosts(&lab, &[]);
    h.hosts.connect_all().expect("connect");
    // Hide tc on host 2 only (a mount inside that host's own mount namespace).
    h.session(1)
        .run_root("mount --bind /dev/null \"$(command -v tc)\"")
        .expect("hide tc");
    let err = h
        .prepare(&[Need::Iptables, Need::Tc])
        .expect_err("tc is missing on host 2");
    let msg = format!("{err:#}");
    assert!(msg.contains("10.77.0.12: tc (package iproute2)"), "{msg}");
    assert!(!msg.contains("10.77.0.11:"), "host 1 has everything: {msg}");
    assert!(msg.contains("--install-deps"), "says how to fix it: {msg}");
    // The run failed before deploying anything.
    let there = h
        .session(0)
        .run_root("test -e /var/lib/faultline/bin/faultline && echo yes || echo no")
        .unwrap();
    assert_eq!(there.trim(), "no");
    // Without the latency fault, tc is not needed.
    h.prepare(&[Need::Iptables])
        .expect("iptables alone is there");
}

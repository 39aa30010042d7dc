//! `faultline test --tls` (issue 19): the nodes run with certificates of a
//! CA made for the run and serve TLS only; every worker, probe and admin
//! request of the harness opens TLS (a plain one would show in a node log
//! as a `tls-required` refusal, and the `auth` probe, sent inside TLS,
//! would not be refused as `unauthorized`). Runs end valid for register,
//! kv and lock, Raft and Paxos, with --auth and faults that go through
//! admin requests (the message filter, the node clock). The run's keys
//! stay in its `.tls/` (0700; keys 0600; no CA key), in no other file.
//!
//! The capture test reads the loopback traffic of a run (a raw packet
//! socket on `lo`, so it needs root: CAP_NET_RAW) and looks for the
//! workload's keys and shaped values in the bytes to and from the run's
//! nodes: with --tls there are none; without it, the same run shows them
//! (so the test can fail).
//!
//! Runs are short, sequential (one cluster at a time on a 2-core machine)
//! and seeded, so a failure prints the command that replays it.

mod test_common;

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use test_common::{args, one_cluster, run_dir, run_test};

const SEED: u64 = 1919;

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

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// The base64 body of a PEM private key (its first full line: enough to
/// recognise the key anywhere).
fn key_marker(pem: &str) -> String {
    pem.lines()
        .find(|l| !l.starts_with("-----") && l.len() >= 40)
        .expect("a PEM key has a body")
        .to_string()
}

/// Checks one finished `--tls` run in `store` with `nodes` nodes; the
/// problems found.
fn check_tls_run(store: &Path, nodes: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let run = run_dir(store);
    let tls = run.join(".tls");
    if mode(&tls) != 0o700 {
        problems.push(format!("{} has mode {:o}", tls.display(), mode(&tls)));
    }
    let mut keys = Vec::new();
    for e in std::fs::read_dir(&tls)
        .expect("the run keeps .tls/")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("ca") && name != "ca.pem" {
            problems.push(format!("{name} in .tls/: the CA key is never written"));
        }
        if name.ends_with(".key") {
            if mode(&e.path()) != 0o600 {
                problems.push(format!("{name} has mode {:o}", mode(&e.path())));
            }
            let pem = std::fs::read_to_string(e.path()).expect("a key");
            keys.push((name, key_marker(&pem)));
        }
    }
    let want: BTreeSet<String> = (1..=nodes)
        .map(|i| format!("node-{i}.key"))
        .chain(["client.key".into(), "admin.key".into()])
        .collect();
    let have: BTreeSet<String> = keys.iter().map(|(n, _)| n.clone()).collect();
    if have != want {
        problems.push(format!("keys in .tls/: {have:?}, want {want:?}"));
    }
    for file in files_under(&run).iter().filter(|f| !f.starts_with(&tls)) {
        let text =
            String::from_utf8_lossy(&std::fs::read(file).expect("readable")).replace("\\n", "\n");
        for (name, marker) in &keys {
            if text.contains(marker.as_str()) {
                problems.push(format!("{name} is in {}", file.display()));
            }
        }
    }
    for i in 1..=nodes {
        let log = std::fs::read_to_string(run.join("nodes").join(format!("n{i}.log")))
            .expect("a node log");
        let plain = log
            .matches("plain connection to a TLS port refused")
            .count();
        if plain != 0 {
            problems.push(format!(
                "n{i}'s log shows {plain} plain connections: every connection of the harness must open TLS"
            ));
        }
    }
    let test: Value =
        serde_json::from_slice(&std::fs::read(run.join("test.json")).expect("test.json"))
            .expect("test.json is JSON");
    if test["plan"]["tls"] != Value::Bool(true) {
        problems.push(format!("test.json's plan.tls is {}", test["plan"]["tls"]));
    }
    let results: Value =
        serde_json::from_slice(&std::fs::read(run.join("results.json")).expect("results.json"))
            .expect("results.json is JSON");
    let auth = results["checkers"]
        .as_array()
        .expect("checkers")
        .iter()
        .find(|c| c["checker"] == "auth");
    let want = format!("{nodes} of {nodes} nodes refused a request without the token");
    match auth {
        Some(c)
            if c["verdict"] == "valid"
                && c["summary"].as_str().unwrap_or("").starts_with(&want) => {}
        other => problems.push(format!(
            "auth check (the probe goes inside TLS): {other:?}, want valid and {want:?}"
        )),
    }
    problems
}

/// Runs `faultline test --tls --auth` with `extra` in a fresh store for
/// `seconds`, a fault every `interval`: None when it ended valid and
/// [`check_tls_run`] found nothing.
fn tls_run(label: &str, (seconds, interval): (&str, &str), extra: &[&str]) -> Option<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().to_str().expect("utf-8 path");
    let mut a = args(&[
        "--tls",
        "--auth",
        "--store",
        store,
        "--node-count",
        "3",
        "--time-limit",
        seconds,
        "--nemesis-interval",
        interval,
        "--seed",
        &SEED.to_string(),
    ]);
    a.extend(args(extra));
    let r = run_test(&a);
    eprintln!("{label} with --tls --auth: exit {:?}", r.code);
    if r.code != Some(0) {
        return Some(format!(
            "{label} with --tls --auth is not valid (exit {:?}, want 0)\n  {}\n{}",
            r.code, r.command, r.digest
        ));
    }
    let mut problems = check_tls_run(dir.path(), 3);
    // The audit logs reach the history and the report over TLS too.
    let run = run_dir(dir.path());
    problems.extend(test_common::audit::audit_problems(&run, 3));
    let test: Value =
        serde_json::from_slice(&std::fs::read(run.join("test.json")).expect("test.json"))
            .expect("test.json is JSON");
    let workload = test["plan"]["workload"].as_str().unwrap_or("register");
    problems.extend(test_common::audit::check_ignores_audit_events(
        &run,
        &["--workload", workload],
    ));
    (!problems.is_empty()).then(|| format!("{label}: {}\n  {}", problems.join("; "), r.command))
}

#[test]
fn register_kv_and_lock_run_valid_with_tls_and_auth_on_raft_and_paxos() {
    let _one = one_cluster();
    let mut failures = Vec::new();
    failures.extend(tls_run(
        "register / raft / partition, kill",
        ("5s", "2s"),
        &["--workload", "register", "--nemesis", "partition,kill"],
    ));
    failures.extend(tls_run(
        "kv / paxos / partition, kill",
        ("5s", "2s"),
        &[
            "--workload",
            "kv",
            "--consensus",
            "paxos",
            "--nemesis",
            "partition,kill",
        ],
    ));
    failures.extend(tls_run(
        "lock / raft / kill",
        ("5s", "2s"),
        &["--workload", "lock", "--nemesis", "kill"],
    ));
    // The message filter and the node's own clock are admin requests (the
    // admin role's certificate); shaped values add the caught-up probe.
    failures.extend(tls_run(
        "register / paxos / filter partition, clock",
        ("6s", "2s"),
        &[
            "--no-iptables",
            "--consensus",
            "paxos",
            "--nemesis",
            "partition,clock",
            "--value-size",
            "1KiB",
        ],
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn tls_with_a_system_that_cannot_take_certificates_exits_254_and_starts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let store = store.to_str().expect("utf-8 path");
    let adapter = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/adapters/faultline-node.toml")
        .to_str()
        .expect("utf-8 path")
        .to_string();
    for (extra, says) in [
        (&["--system", "etcd"][..], "--tls: etcd cannot be run"),
        (&["--system", &adapter][..], "--tls: adapter cannot be run"),
    ] {
        let mut a = args(&["--tls", "--store", store]);
        a.extend(args(extra));
        let r = run_test(&a);
        assert_eq!(r.code, Some(254), "{}\n{}", r.command, r.digest);
        assert!(
            r.digest.contains(says),
            "{} should say {says:?}:\n{}",
            r.command,
            r.digest
        );
    }
    assert!(
        !Path::new(store).exists() || files_under(Path::new(store)).is_empty(),
        "a refused run makes no run folder"
    );
}

/// What a capture of `lo` saw: bytes and needle hits per TCP flow.
#[derive(Default)]
struct Seen {
    /// (source, destination) → payload bytes.
    bytes: HashMap<(SocketAddrV4, SocketAddrV4), u64>,
    /// (source, destination, needle) → packets whose payload holds it.
    hits: HashMap<(SocketAddrV4, SocketAddrV4, usize), u64>,
}

/// A raw packet socket on `lo` (root only), read on a thread until
/// dropped; each TCP payload is searched for the needles as it arrives
/// (nothing is stored but counts, so other traffic on `lo` costs no memory).
struct Capture {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Seen>>,
}

impl Capture {
    fn start(needles: Vec<Vec<u8>>) -> std::io::Result<Capture> {
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket calls on a descriptor this function owns;
        // every pointer passed points at a live local of the right size.
        let fd = unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol));
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let lo = libc::if_nametoindex(c"lo".as_ptr());
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = protocol;
            addr.sll_ifindex = lo as i32;
            let bound = libc::bind(
                fd,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            let buffer: libc::c_int = 32 << 20;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&buffer as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            );
            let timeout = libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            };
            let timed = libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            if bound < 0 || timed < 0 {
                let e = std::io::Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            fd
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Seen::default();
            let mut frame = vec![0u8; 1 << 17];
            while !stopped.load(Ordering::SeqCst) {
                // SAFETY: `frame` is a live buffer of the length passed.
                let n = unsafe { libc::recv(fd, frame.as_mut_ptr().cast(), frame.len(), 0) };
                if n <= 0 {
                    continue;
                }
                if let Some((src, dst, payload)) = tcp_payload(&frame[..n as usize]) {
                    *seen.bytes.entry((src, dst)).or_default() += payload.len() as u64;
                    for (i, needle) in needles.iter().enumerate() {
                        if payload
                            .windows(needle.len())
                            .any(|w| w == needle.as_slice())
                        {
                            *seen.hits.entry((src, dst, i)).or_default() += 1;
                        }
                    }
                }
            }
            // SAFETY: the descriptor is this thread's, closed once.
            unsafe { libc::close(fd) };
            seen
        });
        Ok(Capture {
            stop,
            thread: Some(thread),
        })
    }

    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .expect("finished once")
            .join()
            .expect("the capture thread")
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// An IPv4 TCP segment's endpoints and payload, from a frame on `lo` (an
/// Ethernet header of zeros before the IP header); None for anything else.
fn tcp_payload(frame: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4, &[u8])> {
    let ip = frame.get(14..)?;
    if frame.get(12..14)? != [0x08, 0x00] || ip.first()? >> 4 != 4 || *ip.get(9)? != 6 {
        return None;
    }
    let header = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?])).min(ip.len());
    let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let tcp = ip.get(header..total)?;
    let src_port = u16::from_be_bytes([*tcp.first()?, *tcp.get(1)?]);
    let dst_port = u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]);
    let offset = usize::from(tcp.get(12)? >> 4) * 4;
    Some((
        SocketAddrV4::new(src_ip, src_port),
        SocketAddrV4::new(dst_ip, dst_port),
        tcp.get(offset..)?,
    ))
}

/// The addresses the run's nodes listened on, from their logs
/// (`faultline node ID listening on ADDR`).
fn node_addrs(run: &Path) -> BTreeSet<SocketAddrV4> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(run.join("nodes"))
        .expect("nodes/")
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "log") {
            let log = std::fs::read_to_string(e.path()).expect("a node log");
            for line in log.lines() {
                if let Some((_, addr)) = line.split_once(" listening on ") {
                    out.insert(addr.trim().parse().expect("a listen address"));
                }
            }
        }
    }
    out
}

/// What the capture saw of one run: payload bytes to and from its nodes,
/// and for each needle the packets that held it in plain text.
fn capture_run(tls: bool, needles: &[&str]) -> (u64, Vec<u64>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().to_str().expect("utf-8 path");
    let capture = Capture::start(needles.iter().map(|n| n.as_bytes().to_vec()).collect())
        .expect("a packet socket on lo (root has CAP_NET_RAW)");
    let mut a = args(&[
        "--auth",
        "--store",
        store,
        "--workload",
        "kv",
        "--kv-keys",
        "4",
        "--value-size",
        "512",
        "--node-count",
        "3",
        "--time-limit",
        "4s",
        "--nemesis",
        "none",
        "--seed",
        &SEED.to_string(),
    ]);
    if tls {
        a.push("--tls".into());
    }
    let r = run_test(&a);
    let seen = capture.finish();
    assert_eq!(r.code, Some(0), "{}\n{}", r.command, r.digest);
    let nodes = node_addrs(&run_dir(dir.path()));
    assert_eq!(
        nodes.len(),
        3,
        "three listen addresses in the logs: {nodes:?}"
    );
    let ours = |src: &SocketAddrV4, dst: &SocketAddrV4| nodes.contains(src) || nodes.contains(dst);
    let bytes = seen
        .bytes
        .iter()
        .filter(|((src, dst), _)| ours(src, dst))
        .map(|(_, b)| b)
        .sum();
    let hits = (0..needles.len())
        .map(|i| {
            seen.hits
                .iter()
                .filter(|((src, dst, n), _)| *n == i && ours(src, dst))
                .map(|(_, count)| count)
                .sum()
        })
        .collect();
    (bytes, hits, r.command)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_capture_of_loopback_finds_workload_keys_and_values_only_without_tls() {
    if !is_root() {
        // A raw packet socket needs CAP_NET_RAW; CI runs as root.
        eprintln!("skipped: reading loopback traffic needs root");
        return;
    }
    let _one = one_cluster();
    // The kv workload's keys as requests carry them, and the field of every
    // shaped value (`--value-size`): in writes, and in read replies.
    let needles = [
        r#""key":"k0""#,
        r#""key":"k1""#,
        r#""key":"k2""#,
        r#""key":"k3""#,
        r#""pad":""#,
    ];
    let (plain_bytes, plain_hits, plain_command) = capture_run(false, &needles);
    eprintln!("plain: {plain_bytes} bytes to and from the nodes, hits {plain_hits:?}");
    assert!(
        plain_hits.iter().all(|&h| h > 0),
        "without --tls every key and the values are in plain text, saw {plain_hits:?} for {needles:?}\n  {plain_command}"
    );
    let (tls_bytes, tls_hits, tls_command) = capture_run(true, &needles);
    eprintln!("tls: {tls_bytes} bytes to and from the nodes, hits {tls_hits:?}");
    assert!(
        tls_bytes >= 4096,
        "the capture saw the TLS run's traffic ({tls_bytes} bytes; plain {plain_bytes})\n  {tls_command}"
    );
    assert!(
        tls_hits.iter().all(|&h| h == 0),
        "with --tls no key or value is in plain text, saw {tls_hits:?} for {needles:?}\n  {tls_command}"
    );
}

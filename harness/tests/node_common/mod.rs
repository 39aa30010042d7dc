//! Shared by the node end-to-end tests: start real `faultline node`
//! processes on loopback, find free ports, wait for a leader.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline_nodes::client::{Client, ClientConfig, Outcome};
use faultline_nodes::protocol::{Op, Reply};

pub const BIN: &str = env!("CARGO_BIN_EXE_faultline");

/// Free loopback ports, distinct, from below the kernel's ephemeral range.
///
/// A port the kernel hands out for `bind(:0)` is an ephemeral port: once it
/// is released, any outgoing connection of this machine may take it as its
/// local port before the node that was meant to listen there starts (a
/// node that joins a scenario late lost its port that way: "Address already
/// in use"). Ports below `ip_local_port_range` are never picked for
/// outgoing connections, and a per-process counter keeps the tests of one
/// binary (run side by side) apart; each port is checked free by binding it.
pub fn free_ports(n: usize) -> Vec<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let low = ephemeral_low.saturating_sub(12_000).max(1024);
    let span = ephemeral_low - low;
    let start = std::process::id() * 7919 % span;
    let mut ports = Vec::with_capacity(n);
    for _ in 0..span {
        if ports.len() == n {
            break;
        }
        let port = (low + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    assert_eq!(ports.len(), n, "{n} free ports below {ephemeral_low}");
    ports
}

/// One node process of a test cluster.
pub struct NodeProc {
    pub id: u64,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub extra: Vec<String>,
    pub peers: String,
    pub child: Option<Child>,
}

impl NodeProc {
    pub fn new(id: u64, addr: SocketAddr, peers: &str, root: &Path, extra: &[&str]) -> NodeProc {
        NodeProc {
            id,
            addr,
            data_dir: root.join(format!("n{id}")),
            log: root.join(format!("n{id}.log")),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            peers: peers.to_string(),
            child: None,
        }
    }

    /// Start the process and wait for its ready line.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} already running", self.id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open node log");
        let mut child = Command::new(BIN)
            .args([
                "node",
                "--id",
                &self.id.to_string(),
                "--listen",
                &self.addr.to_string(),
            ])
            .args(["--peers", &self.peers, "--data-dir"])
            .arg(&self.data_dir)
            .args(&self.extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn faultline node");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the ready line");
        assert!(
            line.starts_with(&format!("faultline node {} listening on", self.id)),
            "node {} did not start: {line:?}; log:\n{}",
            self.id,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        self.child = Some(child);
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL the node");
            c.wait().expect("reap the node");
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A cluster of `n` nodes on 127.0.0.1 with free ports.
pub fn cluster(n: usize, root: &Path, extra: &[&str]) -> Vec<NodeProc> {
    let ports = free_ports(n);
    let addrs: Vec<SocketAddr> = ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}").parse().expect("addr"))
        .collect();
    let peers = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    addrs
        .iter()
        .enumerate()
        .map(|(i, a)| NodeProc::new(i as u64 + 1, *a, &peers, root, extra))
        .collect()
}

pub fn client_for(nodes: &[NodeProc], token: Option<&str>) -> Client {
    let mut cfg = ClientConfig::new(nodes.iter().map(|n| n.addr.to_string()).collect());
    cfg.credentials.auth_token = token.map(str::to_string);
    cfg.timeout = Duration::from_secs(5);
    Client::new(cfg)
}

/// Poll `status` until one running node says it leads; its id. Panics
/// after `limit` (a liveness failure, not a timed assertion on speed).
pub async fn wait_for_leader(client: &Client, nodes: &[NodeProc], limit: Duration) -> u64 {
    let start = Instant::now();
    loop {
        for n in nodes.iter().filter(|n| n.child.is_some()) {
            if let Ok(r) = client.call_node(&n.addr.to_string(), Op::Status).await {
                if r.ok && r.fields.get("role").and_then(|v| v.as_str()) == Some("leader") {
                    return n.id;
                }
            }
        }
        assert!(start.elapsed() < limit, "no leader within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Run `op` on the cluster and insist it succeeded.
pub async fn ok(client: &Client, op: Op) -> Reply {
    match client.call(op.clone()).await {
        Outcome::Ok(r) => r,
        other => panic!("{op:?} did not succeed: {other:?}"),
    }
}

/// Run `op` and insist it failed definitely with `code`.
pub async fn fails(client: &Client, op: Op, code: &str) -> Reply {
    match client.call(op.clone()).await {
        Outcome::Fail(r) if r.error.map(|e| e.as_str()) == Some(code) => r,
        other => panic!("{op:?} should fail with {code}: {other:?}"),
    }
}

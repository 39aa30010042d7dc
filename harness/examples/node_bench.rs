//! Benchmark: a 3-node cluster on loopback with fsync on, N concurrent
//! closed-loop clients doing writes, then a mixed read/write load.
//! Prints throughput and p50/p99/max latency per phase.
//!
//! The same program drives etcd (the anchor) through its v3 JSON gateway,
//! so both systems see the same client count, key space, value size and
//! measurement:
//!
//!     cargo build --release -p faultline --example node_bench
//!     target/release/examples/node_bench --target faultline [--consensus raft|paxos|both]
//!     target/release/examples/node_bench --target etcd --etcd-bin etcd
//!
//! Each client has its own connection and one request in flight; the
//! latency of a request is from send to reply. Errors (timeouts, redirects
//! that ran out) are counted, not timed.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use faultline_nodes::client::{Client, ClientConfig, Outcome};
use faultline_nodes::protocol::Op;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq)]
enum Target {
    Faultline,
    Etcd,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq)]
enum ConsensusArg {
    Raft,
    Paxos,
    /// Raft, then Paxos, one after the other.
    Both,
}

#[derive(Debug, Parser)]
#[command(about = "3-node loopback benchmark: faultline node vs etcd")]
struct Args {
    #[arg(long, value_enum, default_value_t = Target::Faultline)]
    target: Target,
    /// The consensus core of the faultline nodes.
    #[arg(long, value_enum, default_value_t = ConsensusArg::Raft)]
    consensus: ConsensusArg,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Measured seconds per phase (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Fraction of reads in the mixed phase.
    #[arg(long, default_value_t = 0.5)]
    read_fraction: f64,
    /// Distinct keys.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 64)]
    value_bytes: usize,
    /// The faultline binary (default: next to this example's directory).
    #[arg(long)]
    faultline: Option<PathBuf>,
    /// The etcd server binary.
    #[arg(long, default_value = "etcd")]
    etcd_bin: String,
    /// Where the nodes keep their data (a fresh temporary directory by default).
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// First loopback port to use (each node takes two: client/peer).
    #[arg(long, default_value_t = 23400)]
    base_port: u16,
}

struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Default)]
struct PhaseResult {
    hist: Option<Histogram<u64>>,
    errors: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let runs: Vec<(&str, Option<&str>)> = match (args.target, args.consensus) {
        (Target::Etcd, _) => vec![("etcd", None)],
        (Target::Faultline, ConsensusArg::Raft) => vec![("raft", Some("raft"))],
        (Target::Faultline, ConsensusArg::Paxos) => vec![("paxos", Some("paxos"))],
        (Target::Faultline, ConsensusArg::Both) => {
            vec![("raft", Some("raft")), ("paxos", Some("paxos"))]
        }
    };
    println!(
        "clients={} seconds={} keys={} value_bytes={} read_fraction={}",
        args.clients, args.seconds, args.keys, args.value_bytes, args.read_fraction
    );
    println!(
        "{:<8} {:<8} {:>9} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "system", "phase", "ops", "ops/s", "p50_ms", "p99_ms", "max_ms", "errors"
    );
    for (label, consensus) in runs {
        let tmp = tempfile::Builder::new()
            .prefix("node-bench-")
            .tempdir_in(args.data_root.clone().unwrap_or(std::env::temp_dir()))?;
        let (procs, system): (Procs, System) = match consensus {
            Some(c) => start_faultline(&args, c, tmp.path())?,
            None => start_etcd(&args, tmp.path())?,
        };
        let system = Arc::new(system);
        rt.block_on(system.wait_ready())?;
        for (phase, reads) in [("write", 0.0), ("mixed", args.read_fraction)] {
            let r = rt.block_on(run_phase(system.clone(), &args, reads))?;
            let h = r.hist.expect("histogram");
            let ops = h.len();
            println!(
                "{:<8} {:<8} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7}",
                label,
                phase,
                ops,
                ops as f64 / args.seconds as f64,
                h.value_at_quantile(0.50) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.max() as f64 / 1000.0,
                r.errors
            );
            std::io::stdout().flush()?;
        }
        drop(procs);
    }
    Ok(())
}

/// A system under benchmark.
enum System {
    Faultline { nodes: Vec<String> },
    Etcd { endpoints: Vec<SocketAddr> },
}

impl System {
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            let ready = match self {
                System::Faultline { nodes } => {
                    let c = Client::new(ClientConfig::new(nodes.clone()));
                    c.call(Op::Write {
                        key: "ready".into(),
                        value: serde_json::json!(1),
                    })
                    .await
                    .is_ok()
                }
                System::Etcd { endpoints } => match HttpConn::connect(endpoints[0]).await {
                    Ok(mut h) => h.put("ready", "1").await.is_ok(),
                    Err(_) => false,
                },
            };
            if ready {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("the cluster did not become ready in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The leader's endpoint for etcd (clients talk to it, as to faultline's leader).
    async fn etcd_leader(endpoints: &[SocketAddr]) -> anyhow::Result<SocketAddr> {
        for &ep in endpoints {
            let mut h = HttpConn::connect(ep).await?;
            let body = h.post("/v3/maintenance/status", "{}").await?;
            let v: serde_json::Value = serde_json::from_str(&body)?;
            if v["header"]["member_id"] == v["leader"] {
                return Ok(ep);
            }
        }
        Ok(endpoints[0])
    }
}

async fn run_phase(
    system: Arc<System>,
    args: &Args,
    read_fraction: f64,
) -> anyhow::Result<PhaseResult> {
    let warmup = Duration::from_secs(1);
    let measure = Duration::from_secs(args.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let etcd_leader = match &*system {
        System::Etcd { endpoints } => Some(System::etcd_leader(endpoints).await?),
        System::Faultline { .. } => None,
    };
    let mut tasks = Vec::new();
    let start = Instant::now();
    for client_no in 0..args.clients {
        let system = system.clone();
        let stop = stop.clone();
        let (keys, value_bytes) = (args.keys, args.value_bytes);
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(client_no as u64);
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let mut errors = 0u64;
            let value: String = std::iter::repeat_n('v', value_bytes).collect();
            enum Conn {
                F(Client),
                E(HttpConn),
            }
            let mut conn = match &*system {
                System::Faultline { nodes } => {
                    let mut cfg = ClientConfig::new(nodes.clone());
                    cfg.timeout = Duration::from_secs(5);
                    Conn::F(Client::new(cfg))
                }
                System::Etcd { .. } => Conn::E(
                    HttpConn::connect(etcd_leader.expect("etcd leader"))
                        .await
                        .expect("connect to etcd"),
                ),
            };
            while !stop.load(Ordering::Relaxed) {
                let key = format!("k{}", rng.gen_range(0..keys));
                let is_read = rng.gen_bool(read_fraction.clamp(0.0, 1.0));
                let t0 = Instant::now();
                let ok = match &mut conn {
                    Conn::F(c) => {
                        let op = if is_read {
                            Op::Read { key }
                        } else {
                            Op::Write {
                                key,
                                value: serde_json::Value::String(value.clone()),
                            }
                        };
                        matches!(c.call(op).await, Outcome::Ok(_))
                    }
                    Conn::E(h) => {
                        if is_read {
                            h.get(&key).await.is_ok()
                        } else {
                            h.put(&key, &value).await.is_ok()
                        }
                    }
                };
                let elapsed = t0.elapsed();
                if t0.duration_since(start) >= warmup {
                    if ok {
                        hist.record(elapsed.as_micros().max(1) as u64)
                            .expect("latency in bounds");
                    } else {
                        errors += 1;
                    }
                }
            }
            (hist, errors)
        }));
    }
    tokio::time::sleep(warmup + measure).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = PhaseResult::default();
    for t in tasks {
        let (h, e) = t.await.context("client task")?;
        total.errors += e;
        match &mut total.hist {
            Some(all) => all.add(&h).expect("same bounds"),
            None => total.hist = Some(h),
        }
    }
    Ok(total)
}

fn start_faultline(
    args: &Args,
    consensus: &str,
    root: &std::path::Path,
) -> anyhow::Result<(Procs, System)> {
    let bin = match &args.faultline {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(|p| p.parent())
            .context("locating the faultline binary")?
            .join("faultline"),
    };
    let addrs: Vec<String> = (1..=3)
        .map(|i| format!("127.0.0.{i}:{}", args.base_port + i as u16))
        .collect();
    let peers = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut procs = Procs(Vec::new());
    for (i, a) in addrs.iter().enumerate() {
        let child = Command::new(&bin)
            .args([
                "node",
                "--id",
                &(i + 1).to_string(),
                "--listen",
                a,
                "--peers",
                &peers,
                "--data-dir",
            ])
            .arg(root.join(format!("n{}", i + 1)))
            .args(["--consensus", consensus])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        procs.0.push(child);
    }
    Ok((procs, System::Faultline { nodes: addrs }))
}

fn start_etcd(args: &Args, root: &std::path::Path) -> anyhow::Result<(Procs, System)> {
    let client: Vec<SocketAddr> = (1..=3)
        .map(|i| {
            format!("127.0.0.{i}:{}", args.base_port + 10 + i as u16)
                .parse()
                .expect("addr")
        })
        .collect();
    let peer: Vec<String> = (1..=3)
        .map(|i| format!("http://127.0.0.{i}:{}", args.base_port + 20 + i as u16))
        .collect();
    let cluster = peer
        .iter()
        .enumerate()
        .map(|(i, p)| format!("e{}={p}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut procs = Procs(Vec::new());
    for i in 0..3 {
        let c = format!("http://{}", client[i]);
        let child = Command::new(&args.etcd_bin)
            .args(["--name", &format!("e{}", i + 1), "--data-dir"])
            .arg(root.join(format!("e{}", i + 1)))
            .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
            .args([
                "--listen-peer-urls",
                &peer[i],
                "--initial-advertise-peer-urls",
                &peer[i],
            ])
            .args([
                "--initial-cluster",
                &cluster,
                "--initial-cluster-state",
                "new",
            ])
            .args([
                "--initial-cluster-token",
                "node-bench",
                "--log-level",
                "error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", args.etcd_bin))?;
        procs.0.push(child);
    }
    Ok((procs, System::Etcd { endpoints: client }))
}

/// A minimal HTTP/1.1 keep-alive client for etcd's JSON gateway.
struct HttpConn {
    addr: SocketAddr,
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

fn b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

impl HttpConn {
    async fn connect(addr: SocketAddr) -> anyhow::Result<HttpConn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        Ok(HttpConn {
            addr,
            r: BufReader::new(r),
            w,
        })
    }

    async fn put(&mut self, key: &str, value: &str) -> anyhow::Result<String> {
        let body = format!("{{\"key\":\"{}\",\"value\":\"{}\"}}", b64(key), b64(value));
        self.post("/v3/kv/put", &body).await
    }

    async fn get(&mut self, key: &str) -> anyhow::Result<String> {
        let body = format!("{{\"key\":\"{}\"}}", b64(key));
        self.post("/v3/kv/range", &body).await
    }

    async fn post(&mut self, path: &str, body: &str) -> anyhow::Result<String> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.w.write_all(req.as_bytes()).await?;
        let mut status = String::new();
        self.r.read_line(&mut status).await?;
        let ok = status.split_whitespace().nth(1) == Some("200");
        let (mut len, mut chunked) = (None, false);
        loop {
            let mut h = String::new();
            if self.r.read_line(&mut h).await? == 0 {
                bail!("connection closed");
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = Some(v.trim().parse::<usize>()?);
            } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                self.r.read_line(&mut size).await?;
                let n = usize::from_str_radix(size.trim(), 16)?;
                let mut chunk = vec![0; n + 2];
                self.r.read_exact(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = len {
            body.resize(n, 0);
            self.r.read_exact(&mut body).await?;
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        if !ok {
            bail!("{}: {}", status.trim(), text);
        }
        Ok(text)
    }
}

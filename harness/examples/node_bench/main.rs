//! Benchmark: a 3-node cluster on loopback with fsync on, N concurrent
//! closed-loop clients doing writes, then a mixed read/write load.
//! Prints throughput and p50/p99/max latency per phase.
//!
//! The same program drives etcd (the anchor) through its gRPC API, with the
//! client `faultline test --system etcd` uses (the etcd-client crate over a
//! tonic channel, system/etcd/client.rs), so both systems see the same
//! client count, key space, value size, load and measurement. `--target
//! both` runs faultline's node (Raft) and then etcd in the same run and
//! prints the ratios:
//!
//!     cargo build --release -p faultline --example node_bench
//!     target/release/examples/node_bench --target both
//!     target/release/examples/node_bench --target faultline [--consensus raft|paxos|both]
//!     target/release/examples/node_bench --target etcd --etcd-bin etcd
//!     target/release/examples/node_bench --tls [--consensus raft|paxos|both]
//!
//! `--tls` runs each faultline cluster twice in the same run, plain TCP
//! and then TLS (a CA made for the run, a certificate per node, clients
//! presenting the client role's, as `faultline test --tls`), and prints
//! TLS's throughput and p99 against plain's.
//!
//! `--baseline OLD` compares two builds of the node on one machine (the
//! way a change's cost is measured here; paired.rs says why):
//!
//!     target/release/examples/node_bench --baseline old/faultline --faultline new/faultline --rounds 16
//!
//! runs `--rounds` rounds of four clusters, baseline-this-this-baseline
//! then the reverse, and ends with each phase's this/baseline ratios
//! (ops/s, servers' and client's CPU per op): the median over the rounds
//! and the mean with its 95% confidence interval.
//!
//! Each client has its own connection and one request in flight; the
//! latency of a request is from send to reply. Each phase also prints the
//! CPU time per measured operation (user + system, all threads, over the
//! measured seconds, from /proc on Linux; `-` elsewhere) of this program
//! (`client_us`: the clients) and of the servers it started (`server_us`:
//! the three nodes or etcd members), which stays comparable on a loaded
//! machine where ops/s does not. Writes are etcd Puts;
//! reads are linearizable Ranges (etcd's default), as faultline's reads
//! are linearizable. Errors (timeouts, redirects that ran out) are
//! counted, not timed.

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
use faultline_nodes::consensus::NodeId;
use faultline_nodes::protocol::Op;
use faultline_nodes::tls::{CertAuthority, ClientTls, Role};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};

mod paired;

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq)]
enum Target {
    Faultline,
    Etcd,
    /// faultline's node (with --consensus), then etcd, in one run.
    Both,
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
    /// Run each faultline cluster plain and then with TLS, and compare.
    #[arg(long)]
    tls: bool,
    /// Compare the node of `--faultline` (or this build's) with this older
    /// faultline binary, side by side: `--rounds` rounds of four runs,
    /// baseline-this-this-baseline and then the reverse, so that the
    /// machine's drift falls on both alike; prints each phase's ratios per
    /// round with a 95% confidence interval.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Rounds of four runs for `--baseline`.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
}

/// How the clients reach a faultline cluster.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Transport {
    Plain,
    Tls,
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

impl Procs {
    fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }
}

#[derive(Default)]
struct PhaseResult {
    hist: Option<Histogram<u64>>,
    errors: u64,
    /// CPU over the measured seconds: (client, servers).
    cpu: Option<(Duration, Duration)>,
}

/// CPU time (user + system, every thread) of this process and of the
/// servers, at one moment.
#[derive(Clone, Copy)]
struct CpuSnapshot {
    client: Duration,
    servers: Duration,
}

impl CpuSnapshot {
    /// None where /proc cannot tell (not Linux, or a server exited).
    fn take(servers: &[u32]) -> Option<CpuSnapshot> {
        let client = process_cpu("self")?;
        let mut total = Duration::ZERO;
        for pid in servers {
            total += process_cpu(&pid.to_string())?;
        }
        Some(CpuSnapshot {
            client,
            servers: total,
        })
    }

    /// (client, servers) spent from `self` to `later`.
    fn until(self, later: CpuSnapshot) -> (Duration, Duration) {
        (
            later.client.saturating_sub(self.client),
            later.servers.saturating_sub(self.servers),
        )
    }
}

/// utime + stime of /proc/`pid`/stat (summed over its threads), in the
/// kernel's USER_HZ clock ticks, which Linux fixes at 100 a second for
/// everything it exports to user space.
fn process_cpu(pid: &str) -> Option<Duration> {
    const USER_HZ: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// Microseconds of `cpu` per op, None when not measured.
fn per_op_us(cpu: Option<Duration>, ops: u64) -> Option<f64> {
    match cpu {
        Some(cpu) if ops > 0 => Some(cpu.as_secs_f64() * 1e6 / ops as f64),
        _ => None,
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let consensus: Vec<&str> = match args.consensus {
        ConsensusArg::Raft => vec!["raft"],
        ConsensusArg::Paxos => vec!["paxos"],
        ConsensusArg::Both => vec!["raft", "paxos"],
    };
    let transports: &[Transport] = match args.tls {
        true => &[Transport::Plain, Transport::Tls],
        false => &[Transport::Plain],
    };
    let mut runs: Vec<(String, Option<&str>, Transport)> = Vec::new();
    for c in consensus {
        for &t in transports {
            let label = match t {
                Transport::Plain => c.to_string(),
                Transport::Tls => format!("{c}+tls"),
            };
            runs.push((label, Some(c), t));
        }
    }
    match args.target {
        Target::Faultline => {}
        Target::Etcd => runs = vec![("etcd".into(), None, Transport::Plain)],
        Target::Both => runs.push(("etcd".into(), None, Transport::Plain)),
    }
    if let Some(baseline) = &args.baseline {
        if args.target != Target::Faultline || args.tls {
            bail!("--baseline compares two faultline binaries: it takes neither --target etcd|both nor --tls");
        }
        for binary in [baseline, &faultline_binary(&args)?] {
            anyhow::ensure!(
                binary.is_file(),
                "the faultline binary {} does not exist",
                binary.display()
            );
        }
    }
    print_header(&args);
    if let Some(baseline) = &args.baseline {
        let this = faultline_binary(&args)?;
        return paired::compare_binaries(&rt, &args, baseline, &this, &runs);
    }
    let mut measured: Vec<PhaseRow> = Vec::new();
    for (label, consensus, transport) in runs {
        let cluster = match consensus {
            Some(c) => Cluster::Faultline {
                binary: faultline_binary(&args)?,
                consensus: c,
                transport,
            },
            None => Cluster::Etcd,
        };
        measured.extend(bench_cluster(&rt, &args, &label, &cluster)?);
    }
    compare(&measured);
    compare_tls(&measured);
    Ok(())
}

/// The run's settings and the table's header.
fn print_header(args: &Args) {
    println!(
        "clients={} seconds={} keys={} value_bytes={} read_fraction={}",
        args.clients, args.seconds, args.keys, args.value_bytes, args.read_fraction
    );
    println!(
        "{:<10} {:<8} {:>9} {:>10} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9}",
        "system",
        "phase",
        "ops",
        "ops/s",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "errors",
        "client_us",
        "server_us"
    );
}

/// What one benchmark run starts.
enum Cluster<'a> {
    Faultline {
        binary: PathBuf,
        consensus: &'a str,
        transport: Transport,
    },
    Etcd,
}

/// One phase's numbers, as its table row prints them.
struct PhaseRow {
    label: String,
    phase: &'static str,
    ops_per_s: f64,
    p99_ms: f64,
    /// CPU µs per op of this program and of the servers (None: not measured).
    client_us: Option<f64>,
    server_us: Option<f64>,
}

/// Start `cluster` in a fresh directory, run the write and the mixed
/// phase against it, print a row for each, and stop it.
fn bench_cluster(
    rt: &tokio::runtime::Runtime,
    args: &Args,
    label: &str,
    cluster: &Cluster,
) -> anyhow::Result<Vec<PhaseRow>> {
    let tmp = tempfile::Builder::new()
        .prefix("node-bench-")
        .tempdir_in(args.data_root.clone().unwrap_or(std::env::temp_dir()))?;
    let (procs, system): (Procs, System) = match cluster {
        Cluster::Faultline {
            binary,
            consensus,
            transport,
        } => start_faultline(args, binary, consensus, *transport, tmp.path())?,
        Cluster::Etcd => start_etcd(args, tmp.path())?,
    };
    let system = Arc::new(system);
    rt.block_on(system.wait_ready())?;
    let mut rows = Vec::new();
    for (phase, reads) in [("write", 0.0), ("mixed", args.read_fraction)] {
        let r = rt.block_on(run_phase(system.clone(), args, reads, &procs.pids()))?;
        let h = r.hist.expect("histogram");
        let ops = h.len();
        let row = PhaseRow {
            label: label.to_string(),
            phase,
            ops_per_s: ops as f64 / args.seconds as f64,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
            client_us: per_op_us(r.cpu.map(|c| c.0), ops),
            server_us: per_op_us(r.cpu.map(|c| c.1), ops),
        };
        let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        println!(
            "{:<10} {:<8} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>9} {:>9}",
            label,
            phase,
            ops,
            row.ops_per_s,
            h.value_at_quantile(0.50) as f64 / 1000.0,
            row.p99_ms,
            h.max() as f64 / 1000.0,
            r.errors,
            us(row.client_us),
            us(row.server_us),
        );
        std::io::stdout().flush()?;
        rows.push(row);
    }
    drop(procs);
    Ok(rows)
}

/// Each consensus with TLS against plain TCP, phase by phase, when both ran.
fn compare_tls(measured: &[PhaseRow]) {
    for phase in ["write", "mixed"] {
        for system in ["raft", "paxos"] {
            let find = |label: &str| {
                measured
                    .iter()
                    .find(|m| m.label == label && m.phase == phase)
                    .map(|m| (m.ops_per_s, m.p99_ms))
            };
            let (Some((plain_ops, plain_p99)), Some((tls_ops, tls_p99))) =
                (find(system), find(&format!("{system}+tls")))
            else {
                continue;
            };
            println!(
                "{phase}: {system} with TLS {tls_ops:.0} ops/s p99 {tls_p99:.2} ms vs plain {plain_ops:.0} ops/s p99 {plain_p99:.2} ms: {:.2}x the throughput, p99 {:.2}x",
                tls_ops / plain_ops.max(f64::MIN_POSITIVE),
                tls_p99 / plain_p99.max(f64::MIN_POSITIVE),
            );
        }
    }
}

/// faultline's node against etcd, phase by phase, when both ran.
fn compare(measured: &[PhaseRow]) {
    for phase in ["write", "mixed"] {
        let find = |system: &str| {
            measured
                .iter()
                .find(|m| m.label == system && m.phase == phase)
                .map(|m| (m.ops_per_s, m.p99_ms))
        };
        let Some((etcd_ops, etcd_p99)) = find("etcd") else {
            continue;
        };
        for system in ["raft", "paxos"] {
            if let Some((ops, p99)) = find(system) {
                println!(
                    "{phase}: {system} {ops:.0} ops/s p99 {p99:.2} ms vs etcd {etcd_ops:.0} ops/s p99 {etcd_p99:.2} ms: {:.2}x the throughput, p99 {:.2}x",
                    ops / etcd_ops.max(f64::MIN_POSITIVE),
                    p99 / etcd_p99.max(f64::MIN_POSITIVE),
                );
            }
        }
    }
}

/// A system under benchmark.
enum System {
    Faultline {
        nodes: Vec<String>,
        tls: Option<ClientTls>,
    },
    Etcd {
        endpoints: Vec<SocketAddr>,
    },
}

impl System {
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            let ready = match self {
                System::Faultline { nodes, tls } => {
                    let mut cfg = ClientConfig::new(nodes.clone());
                    cfg.credentials.tls = tls.clone();
                    let c = Client::new(cfg);
                    c.call(Op::Write {
                        key: "ready".into(),
                        value: serde_json::json!(1),
                    })
                    .await
                    .is_ok()
                }
                System::Etcd { endpoints } => match etcd_connect(endpoints[0]) {
                    Ok(mut c) => {
                        tokio::time::timeout(Duration::from_secs(2), c.put("ready", "1", None))
                            .await
                            .is_ok_and(|r| r.is_ok())
                    }
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
            let status = etcd_connect(ep)?
                .status()
                .await
                .with_context(|| format!("the status of {ep}"))?;
            let member = status.header().map(|h| h.member_id());
            if status.leader() != 0 && member == Some(status.leader()) {
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
    servers: &[u32],
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
                E(etcd_client::Client),
            }
            let mut conn = match &*system {
                System::Faultline { nodes, tls } => {
                    let mut cfg = ClientConfig::new(nodes.clone());
                    cfg.timeout = Duration::from_secs(5);
                    cfg.credentials.tls = tls.clone();
                    Conn::F(Client::new(cfg))
                }
                System::Etcd { .. } => Conn::E(
                    etcd_connect(etcd_leader.expect("etcd leader")).expect("a client of etcd"),
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
                    Conn::E(c) => {
                        let call = async {
                            if is_read {
                                c.get(key.as_str(), None).await.map(drop)
                            } else {
                                c.put(key.as_str(), value.as_str(), None).await.map(drop)
                            }
                        };
                        // The same bound as faultline's client.
                        matches!(
                            tokio::time::timeout(Duration::from_secs(5), call).await,
                            Ok(Ok(()))
                        )
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
    // The CPU of the measured seconds only: the ops timed are those that
    // started in them.
    tokio::time::sleep_until((start + warmup).into()).await;
    let before = CpuSnapshot::take(servers);
    tokio::time::sleep_until((start + warmup + measure).into()).await;
    let after = CpuSnapshot::take(servers);
    stop.store(true, Ordering::Relaxed);
    let mut total = PhaseResult {
        cpu: before.zip(after).map(|(before, after)| before.until(after)),
        ..PhaseResult::default()
    };
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

/// `--faultline`, or the faultline binary of the build this example is in.
fn faultline_binary(args: &Args) -> anyhow::Result<PathBuf> {
    match &args.faultline {
        Some(b) => Ok(b.clone()),
        None => Ok(std::env::current_exe()?
            .parent()
            .and_then(|p| p.parent())
            .context("locating the faultline binary")?
            .join("faultline")),
    }
}

fn start_faultline(
    args: &Args,
    bin: &std::path::Path,
    consensus: &str,
    transport: Transport,
    root: &std::path::Path,
) -> anyhow::Result<(Procs, System)> {
    let addrs: Vec<String> = (1..=3)
        .map(|i| format!("127.0.0.{i}:{}", args.base_port + i as u16))
        .collect();
    let peers = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    // TLS: the run's certificates (node i on 127.0.0.i), as `faultline
    // test --tls` issues them; clients present the client role's.
    let pki = match transport {
        Transport::Plain => None,
        Transport::Tls => {
            let ca = CertAuthority::generate().context("a CA")?;
            let nodes: Vec<_> = (1..=3u64)
                .map(|i| (NodeId(i), vec![format!("127.0.0.{i}").parse().expect("ip")]))
                .collect();
            Some(ca.write_run(&root.join("tls"), &nodes)?)
        }
    };
    let client_tls = match &pki {
        Some(pki) => Some(ClientTls::from_files(&pki.roles[&Role::Client])?),
        None => None,
    };
    let mut procs = Procs(Vec::new());
    for (i, a) in addrs.iter().enumerate() {
        let mut tls_args: Vec<std::ffi::OsString> = Vec::new();
        if let Some(pki) = &pki {
            let files = &pki.nodes[&NodeId(i as u64 + 1)];
            for (flag, path) in [
                ("--tls-cert", &files.cert),
                ("--tls-key", &files.key),
                ("--tls-ca", &files.ca),
            ] {
                tls_args.push(flag.into());
                tls_args.push(path.into());
            }
        }
        let child = Command::new(bin)
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
            .args(&tls_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        procs.0.push(child);
    }
    Ok((
        procs,
        System::Faultline {
            nodes: addrs,
            tls: client_tls,
        },
    ))
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

/// A gRPC connection of its own to one member: the harness's etcd client
/// (system/etcd/client.rs), not bound to any source address.
fn etcd_connect(addr: SocketAddr) -> anyhow::Result<etcd_client::Client> {
    faultline::system::etcd::client::connect(addr, None)
}

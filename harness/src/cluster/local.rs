//! A cluster of child processes on this machine, one per node, running
//! whatever [`System`] it is given (the system says how to run a node).
//!
//! Node i listens on 127.0.0.(10+i) (its ports picked free at start), with
//! its own data directory and a log file that collects every incarnation's
//! output. No node is 127.0.0.1, so a client that cannot bind an address of
//! its own (an adapter's client program) is never taken for a node by the
//! packet filter. Where binding 127.0.0.(10+i) fails (not Linux), every node uses
//! 127.0.0.1 with its own ports. Faults: SIGKILL and SIGSTOP/SIGCONT;
//! partitions and loss with iptables where this process may use it (root,
//! iptables present, one address per node; rules match the nodes' peer
//! ports), else with the nodes' own message filter where the system has
//! one; latency only with such a filter (tc netem on `lo` would delay the
//! clients too); clocks with libfaketime where installed, asked for and
//! honoured by the system, else the nodes' own clock offset where the
//! system has one. A fault no mechanism can make is
//! [`Mechanism::Unsupported`], with the reason. Filter and clock settings
//! are re-sent to a node after it restarts or resumes, so a fault outlives
//! a restart exactly as long as the nemesis wants.
//!
//! Children run in their own process group, so a Ctrl-C at the terminal
//! reaches the harness (which heals and stops them), not the nodes. Every
//! signal goes to the node's whole process group, and to any descendant
//! that left it (PostgreSQL's backends call setsid()): a node that is a
//! script running several daemons (an adapter's node) is killed, paused
//! and resumed as one machine would be, and teardown leaves none of them.
//!
//! A system whose nodes dial their peers without binding their own address
//! (etcd: every connection then comes from 127.0.0.1) cannot be cut by
//! address: with iptables, each of its nodes runs as a uid of its own
//! ([`owner_uid`]) and the run's chain tells them apart by socket owner
//! (cluster/iptables.rs). Such a node's data folder is given to its uid;
//! where the store's folders do not let other users through, the data
//! lives in a folder of its own under the temporary directory instead,
//! removed at teardown.
//!
//! Start: every node's client port must accept connections within
//! [`START_TIMEOUT`]; a node that exits first, or never listens, is an
//! error naming the node, how it ended and the last lines of its log.

use super::iptables::Iptables;
use super::procfs;
use super::{
    ClockFault, Cluster, Cut, Mechanism, Mechanisms, NodeId, NodeInfo, NODE_STOP_GRACE,
    NODE_STOP_TIMEOUT,
};
use crate::ledger::{Held, Ledger, Lifetime, Resource};
use crate::nemesis::FaultKind;
use crate::system::{MessageFilter, NodeSite, SiteTls, Support, System};
use anyhow::{bail, Context};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where libfaketime is looked for.
pub const LIBFAKETIME_PATHS: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

/// The address clients bind to when nodes have their own addresses, so
/// that no packet filter between node addresses ever matches a client.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 250);

/// How to build a local cluster.
#[derive(Clone)]
pub struct LocalConfig {
    /// What runs on the nodes.
    pub system: Arc<dyn System>,
    pub node_count: u32,
    /// `data_dir(name)` and `log(name)` for node `name`.
    pub data_dirs: Vec<PathBuf>,
    pub logs: Vec<PathBuf>,
    /// Letters and digits; names the iptables chain and libfaketime files.
    pub run_id: String,
    /// Use iptables when usable (false forces the message filter).
    pub allow_iptables: bool,
    /// The clock nemesis is on: preload libfaketime where installed.
    pub want_faketime: bool,
    /// Where every node process, pause, chain and libfaketime file is
    /// written down as it is made (see [`crate::ledger`]).
    pub ledger: Ledger,
    /// Whether nodes die with the harness (they may outlive it only when
    /// they are to be left running).
    pub node_lifetime: Lifetime,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Filter {
    drop: BTreeSet<u32>,
    delay_ms: u64,
    loss: f64,
}

struct Proc {
    child: Option<Child>,
    /// The ledger's entries for the process and, while it is, its pause.
    held: Option<Held>,
    paused_held: Option<Held>,
    paused: bool,
    /// The filter and clock settings the node has not acknowledged yet.
    dirty: bool,
    /// When the process was started (libfaketime's rate counts from then).
    started_at: Option<Instant>,
}

/// A local cluster. See the module docs.
pub struct LocalCluster {
    config: LocalConfig,
    nodes: Vec<NodeInfo>,
    per_node_ip: bool,
    iptables: Option<Iptables>,
    /// The uid each node runs as, when iptables tells nodes apart by owner.
    owners: Option<Vec<u32>>,
    /// Where each node keeps its data (the configured folder, or a private
    /// one under the temporary directory; see the module docs).
    data_dirs: Vec<PathBuf>,
    /// Each node's TLS files (`--tls`), issued before anything starts.
    tls: Vec<Option<SiteTls>>,
    faketime: Option<PathBuf>,
    /// The ledger's entries for the chain, the private data folders and
    /// each libfaketime file.
    chain_held: Mutex<Option<Held>>,
    private_held: Mutex<Option<Held>>,
    faketime_held: Mutex<Vec<Option<Held>>>,
    procs: Mutex<Vec<Proc>>,
    filters: Mutex<Vec<Filter>>,
    clocks: Mutex<Vec<ClockFault>>,
    mechanisms: Mechanisms,
    /// Why each unsupported kind of fault is.
    unsupported: BTreeMap<FaultKind, String>,
    /// Set by teardown: no node is started after it.
    closed: std::sync::atomic::AtomicBool,
}

fn free_port(ip: Ipv4Addr) -> std::io::Result<u16> {
    Ok(TcpListener::bind(SocketAddr::new(IpAddr::V4(ip), 0))?
        .local_addr()?
        .port())
}

/// `count` distinct free ports on `ip` (each listener is held until all
/// are picked, so they differ).
fn free_ports(ip: Ipv4Addr, count: usize) -> std::io::Result<Vec<SocketAddr>> {
    let held = (0..count)
        .map(|_| TcpListener::bind(SocketAddr::new(IpAddr::V4(ip), 0)))
        .collect::<std::io::Result<Vec<_>>>()?;
    held.iter().map(TcpListener::local_addr).collect()
}

/// The first node's address is 127.0.0.(FIRST_NODE_HOST + 1).
const FIRST_NODE_HOST: u32 = 10;

/// Node `id`'s own address: 127.0.0.(10+id), never 127.0.0.1 (where
/// clients that bind no address of their own connect from) nor
/// [`CLIENT_IP`]; None past the addresses a local cluster may use.
pub fn node_ip(id: u32) -> Option<Ipv4Addr> {
    let host = u8::try_from(FIRST_NODE_HOST + id).ok()?;
    (id >= 1 && host < 250).then(|| Ipv4Addr::new(127, 0, 0, host))
}

/// Picks each node's `ports` addresses: 127.0.0.(10+i) and free ports, or
/// 127.0.0.1 and distinct free ports if this machine only binds 127.0.0.1.
fn pick_addresses(n: u32, ports: usize) -> anyhow::Result<(Vec<Vec<SocketAddr>>, bool)> {
    let per_node: Option<Vec<Vec<SocketAddr>>> = (1..=n)
        .map(|i| free_ports(node_ip(i)?, ports).ok())
        .collect();
    if let Some(addrs) = per_node {
        // The client address must bind too, or clients could not avoid the filter.
        if free_port(CLIENT_IP).is_ok() {
            return Ok((addrs, true));
        }
    }
    let all = free_ports(Ipv4Addr::LOCALHOST, n as usize * ports)
        .context("binding 127.0.0.1 to find free ports")?;
    Ok((
        all.chunks(ports).map(<[SocketAddr]>::to_vec).collect(),
        false,
    ))
}

/// Each kind of fault's mechanism on a local cluster of `system`, and why
/// the unsupported ones are.
fn local_mechanisms(
    system: &dyn System,
    iptables: bool,
    per_node_ip: bool,
    faketime: bool,
) -> (Mechanisms, BTreeMap<FaultKind, String>) {
    let node = system.node_faults();
    let name = system.kind();
    let mut unsupported = BTreeMap::new();
    let net = if iptables {
        Mechanism::Iptables
    } else if node.message_filter {
        Mechanism::MessageFilter
    } else {
        let why = if per_node_ip {
            "needs iptables (run as root with iptables installed)"
        } else {
            "needs iptables and an address per node (127.0.0.N)"
        };
        for kind in [FaultKind::Partition, FaultKind::Loss] {
            unsupported.insert(kind, format!("{name} has no message filter; {why}"));
        }
        Mechanism::Unsupported
    };
    let latency = if node.message_filter {
        Mechanism::MessageFilter
    } else {
        unsupported.insert(
            FaultKind::Latency,
            format!("{name} has no message filter, and tc netem on lo would delay the clients too"),
        );
        Mechanism::Unsupported
    };
    let clock = if faketime {
        Mechanism::Libfaketime
    } else if node.own_clock {
        Mechanism::NodeClock
    } else {
        let why = if node.libfaketime {
            "libfaketime is not installed"
        } else {
            "it does not follow libfaketime"
        };
        unsupported.insert(
            FaultKind::Clock,
            format!("{name} has no clock offset of its own and {why}"),
        );
        Mechanism::Unsupported
    };
    let mut mechanisms = Mechanisms {
        partition: net,
        loss: net,
        latency,
        clock,
        kill: Mechanism::Signal,
        pause: Mechanism::Signal,
        membership: Mechanism::Admin,
        slow_reader: Mechanism::UnreadConnections,
        impostor: Mechanism::ImpostorConnections,
    };
    for kind in FaultKind::ALL {
        if let Support::Unsupported(why) = system.fault_support(kind) {
            mechanisms.set(kind, Mechanism::Unsupported);
            unsupported.insert(kind, why);
        }
    }
    (mechanisms, unsupported)
}

/// How long a started node may take to listen on its client port.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How many lines of a node's log an error quotes.
const LOG_TAIL_LINES: usize = 12;

/// The uid node number `i` (from 0) of run `run_id` runs as, when nodes
/// are told apart by socket owner: high, numeric, no account needed, and
/// different for concurrent runs.
pub fn owner_uid(run_id: &str, i: usize) -> u32 {
    let run = run_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    3_000_000_000 + (run % 1_000_000) * 256 + u32::try_from(i).expect("fewer than 256 nodes")
}

/// True when every folder above `path` lets other users through (o+x).
fn others_can_reach(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(abs) = std::path::absolute(path) else {
        return false;
    };
    abs.ancestors().skip(1).all(|dir| {
        std::fs::metadata(dir)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

/// The last `n` lines of a log file (lossy), for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return format!("(cannot read {}: {e})", path.display()),
    };
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    if tail.is_empty() {
        "(the log is empty)".to_string()
    } else {
        tail.iter()
            .map(|l| format!("    | {}", l.chars().take(300).collect::<String>()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl LocalCluster {
    /// Plans the cluster (addresses, mechanisms) without starting anything.
    pub fn new(config: LocalConfig) -> anyhow::Result<LocalCluster> {
        let n = config.node_count;
        if n == 0 || n > 200 {
            bail!("a local cluster has 1 to 200 nodes, not {n}");
        }
        assert_eq!(config.data_dirs.len(), n as usize, "one data dir per node");
        assert_eq!(config.logs.len(), n as usize, "one log per node");
        let ports = config.system.ports();
        let (addrs, per_node_ip) = pick_addresses(n, ports.count)?;
        let nodes: Vec<NodeInfo> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let id = NodeId(i as u32 + 1);
                NodeInfo {
                    id,
                    name: id.name(),
                    client_addr: a[ports.client],
                    peer_addr: a[ports.peer],
                    addrs: a.clone(),
                }
            })
            .collect();
        let tls = nodes
            .iter()
            .map(|node| {
                let files = config.system.node_tls_files(node)?;
                Ok(files.as_ref().map(SiteTls::local))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let by_owner = !config.system.node_faults().binds_source_ip;
        let owners: Option<Vec<u32>> =
            (by_owner && per_node_ip && config.allow_iptables).then(|| {
                (0..n as usize)
                    .map(|i| owner_uid(&config.run_id, i))
                    .collect()
            });
        let node_addrs: Vec<Vec<SocketAddr>> = nodes.iter().map(|n| n.addrs.clone()).collect();
        let mut chain_held = None;
        let iptables = if per_node_ip && config.allow_iptables && Iptables::usable() {
            // Written down before it exists: a harness killed meanwhile
            // leaves a chain the next heal removes.
            chain_held = Some(config.ledger.record(Resource::IptablesChain {
                chain: Iptables::chain_for(&config.run_id),
            })?);
            let installed = match &owners {
                Some(uids) => Iptables::install_by_owner(&config.run_id, node_addrs, uids.clone()),
                None => Iptables::install(&config.run_id, node_addrs),
            };
            match installed {
                Ok(i) => Some(i),
                Err(e) => {
                    release(chain_held.take());
                    tracing::warn!("iptables unusable, using the nodes' message filter: {e:#}");
                    None
                }
            }
        } else {
            None
        };
        let iptables_in_use = iptables.is_some();
        let private_dir = std::env::temp_dir().join(format!("faultline-{}", config.run_id));
        let data_dirs: Vec<PathBuf> = if iptables_in_use && owners.is_some() {
            config
                .data_dirs
                .iter()
                .zip(&nodes)
                .map(|(d, node)| {
                    if others_can_reach(d) {
                        d.clone()
                    } else {
                        private_dir.join(&node.name)
                    }
                })
                .collect()
        } else {
            config.data_dirs.clone()
        };
        let private_held = if data_dirs.iter().any(|d| d.starts_with(&private_dir)) {
            Some(config.ledger.record(Resource::File {
                path: private_dir,
                what: "private data folder".to_string(),
            })?)
        } else {
            None
        };
        let faketime = if config.want_faketime && config.system.node_faults().libfaketime {
            LIBFAKETIME_PATHS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        } else {
            None
        };
        let (mechanisms, unsupported) = local_mechanisms(
            &*config.system,
            iptables.is_some(),
            per_node_ip,
            faketime.is_some(),
        );
        let procs = (0..n)
            .map(|_| Proc {
                child: None,
                held: None,
                paused_held: None,
                paused: false,
                dirty: false,
                started_at: None,
            })
            .collect();
        Ok(LocalCluster {
            nodes,
            per_node_ip,
            iptables,
            faketime,
            chain_held: Mutex::new(chain_held),
            private_held: Mutex::new(private_held),
            faketime_held: Mutex::new((0..n).map(|_| None).collect()),
            owners: owners.filter(|_| iptables_in_use),
            data_dirs,
            tls,
            procs: Mutex::new(procs),
            filters: Mutex::new(vec![Filter::default(); n as usize]),
            clocks: Mutex::new(vec![ClockFault::TRUE; n as usize]),
            mechanisms,
            unsupported,
            config,
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The address clients should bind to, if any.
    pub fn client_bind_ip(&self) -> Option<IpAddr> {
        self.per_node_ip.then_some(IpAddr::V4(CLIENT_IP))
    }

    /// The iptables chain of this run, if iptables is in use.
    pub fn iptables_chain(&self) -> Option<&str> {
        self.iptables.as_ref().map(Iptables::chain)
    }

    /// The process group a running node leads (its child's pid).
    fn process_group(&self, node: NodeId) -> anyhow::Result<i32> {
        let i = self.index(node)?;
        match &self.procs.lock().expect("procs lock poisoned")[i].child {
            Some(child) => i32::try_from(child.id()).context("pid out of range"),
            None => bail!("{node} is not running"),
        }
    }

    fn index(&self, node: NodeId) -> anyhow::Result<usize> {
        let i = node.0 as usize;
        if i == 0 || i > self.nodes.len() {
            bail!("no node {node} in a cluster of {}", self.nodes.len());
        }
        Ok(i - 1)
    }

    fn faketime_file(&self, i: usize) -> PathBuf {
        let log = &self.config.logs[i];
        log.with_extension("faketime")
    }

    /// Writes node `i`'s libfaketime file for a process started `age` ago.
    fn write_faketime(&self, i: usize, fault: ClockFault, age: Duration) -> anyhow::Result<()> {
        let path = self.faketime_file(i);
        {
            let mut held = self.faketime_held.lock().expect("faketime lock poisoned");
            if held[i].is_none() {
                held[i] = Some(self.config.ledger.record(Resource::File {
                    path: path.clone(),
                    what: "libfaketime file".to_string(),
                })?);
            }
        }
        let text = format!("{}\n", fault.faketime_spec(age));
        faultline_results::store::write_atomically(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Node `i`'s [`NodeSite`].
    fn site(&self, i: usize) -> NodeSite<'_> {
        NodeSite {
            node: &self.nodes[i],
            cluster: &self.nodes,
            data_dir: self.data_dirs[i].display().to_string(),
            program: self.config.system.local_program().display().to_string(),
            auth_token_file: self
                .config
                .system
                .auth_token_file()
                .map(|f| f.display().to_string()),
            tls: self.tls[i].clone(),
        }
    }

    fn spawn(&self, i: usize) -> anyhow::Result<(Child, Held)> {
        let info = &self.nodes[i];
        let data_dir = &self.data_dirs[i];
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        if let Some(owners) = &self.owners {
            std::os::unix::fs::chown(data_dir, Some(owners[i]), Some(owners[i]))
                .with_context(|| format!("giving {} to uid {}", data_dir.display(), owners[i]))?;
        }
        let log_path = &self.config.logs[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let spec = self.config.system.process(&self.site(i));
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                log.try_clone().context("duplicating the log handle")?,
            ))
            .stderr(Stdio::from(log))
            .process_group(0);
        if let Some(owners) = &self.owners {
            cmd.uid(owners[i]).gid(owners[i]);
        }
        if let Some(lib) = &self.faketime {
            // The process about to start loads libfaketime now: age 0.
            let fault = self.clocks.lock().expect("clock lock poisoned")[i];
            self.write_faketime(i, fault, Duration::ZERO)?;
            cmd.env("LD_PRELOAD", lib)
                .env("FAKETIME_TIMESTAMP_FILE", self.faketime_file(i))
                // Re-read the file at most once a second.
                .env("FAKETIME_CACHE_DURATION", "1")
                // Wall clock only: see docs/store.md ("clock faults").
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        // The ledger's spawn sets PR_SET_PDEATHSIG last before exec, after
        // std has changed the uid and process group, which would clear it.
        let (child, held) = self
            .config
            .ledger
            .spawn_as(cmd, &info.name, self.config.node_lifetime)
            .with_context(|| format!("starting {} ({})", info.name, spec.program))?;
        tracing::info!(node = %info.name, pid = child.id(), addr = %info.client_addr, "node started");
        Ok((child, held))
    }

    /// Runs the stop command ([`System::stop_command`]) of every node that
    /// is still running, all at once, and waits up to [`NODE_STOP_GRACE`]
    /// for each node it ran for to exit. One that fails, outlives
    /// [`NODE_STOP_TIMEOUT`] or leaves its node running is said in the
    /// run's output; the caller's signals stop what is left.
    fn run_stop_commands(&self, procs: &[Proc]) {
        let jobs: Vec<(usize, String, i32)> = procs
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let pgid = i32::try_from(p.child.as_ref()?.id()).ok()?;
                if procfs::group_members(pgid).is_empty() {
                    return None;
                }
                let command = self.config.system.stop_command(&self.site(i))?;
                Some((i, command, pgid))
            })
            .collect();
        std::thread::scope(|scope| {
            for (i, command, pgid) in &jobs {
                scope.spawn(move || {
                    let name = &self.nodes[*i].name;
                    // A paused node is woken: it could not act on its stop.
                    signal_node(*pgid, libc::SIGCONT);
                    match self.run_stop_command(*i, command) {
                        Ok(()) => {
                            let deadline = Instant::now() + NODE_STOP_GRACE;
                            while Instant::now() < deadline
                                && !procfs::group_members(*pgid).is_empty()
                            {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            if !procfs::group_members(*pgid).is_empty() {
                                tracing::warn!(
                                    "{name}: node.stop succeeded but the node still runs {NODE_STOP_GRACE:?} later; stopping it by signals"
                                );
                            }
                        }
                        Err(why) => tracing::warn!(
                            "{name}: node.stop {why} (its output is in {}); stopping it by signals",
                            self.config.logs[*i].display()
                        ),
                    }
                });
            }
        });
    }

    /// Runs node `i`'s stop `command` under `sh -c` in its data folder,
    /// its output appended to the node's log, killed (its whole process
    /// group) at [`NODE_STOP_TIMEOUT`]. Err: how it failed, in words.
    fn run_stop_command(&self, i: usize, command: &str) -> Result<(), String> {
        let name = &self.nodes[i].name;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.config.logs[i])
            .map_err(|e| format!("could not run: {}: {e}", self.config.logs[i].display()))?;
        // Its output follows this line in the node's log (as remote mode's).
        let _ = std::io::Write::write_all(
            &mut log,
            format!("faultline: {name}: node.stop\n").as_bytes(),
        );
        let err_log = log.try_clone().map_err(|e| format!("could not run: {e}"))?;
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(&self.data_dirs[i])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log))
            .process_group(0);
        if let Some(owners) = &self.owners {
            cmd.uid(owners[i]).gid(owners[i]);
        }
        let (mut child, held) = self
            .config
            .ledger
            .spawn(cmd, &format!("{name} node.stop"))
            .map_err(|e| format!("could not run: {e:#}"))?;
        let deadline = Instant::now() + NODE_STOP_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) | Err(_) => break None,
            }
        };
        // Whatever the command left in its group goes with it (a group id
        // is not reused while a process of the group lives).
        let pgid = child.id() as i32;
        if status.is_none() || !procfs::group_members(pgid).is_empty() {
            // SAFETY: kill(2) on the process group this call created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        let _ = child.wait();
        release(Some(held));
        match status {
            Some(s) if s.success() => Ok(()),
            Some(s) => Err(match s.code() {
                Some(code) => format!("failed (exit status {code})"),
                None => "failed (killed by a signal)".to_string(),
            }),
            None => Err(format!("timed out after {NODE_STOP_TIMEOUT:?}")),
        }
    }

    fn signal(&self, i: usize, sig: libc::c_int) -> anyhow::Result<()> {
        let procs = self.procs.lock().expect("procs lock poisoned");
        if let Some(child) = &procs[i].child {
            let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
            // SAFETY: kill(2) with signal 0 to the process group of our own
            // unreaped child (it leads its group: process_group(0);
            // unreaped, its id cannot be reused): only whether it exists.
            if unsafe { libc::kill(-pid, 0) } != 0 {
                bail!(
                    "signal {sig} to {}: {}",
                    self.nodes[i].name,
                    std::io::Error::last_os_error()
                );
            }
            signal_node(pid, sig);
        }
        Ok(())
    }

    /// Writes down that node `i` is about to be paused (before SIGSTOP: a
    /// harness killed in between leaves a pause the next heal undoes).
    fn record_pause(&self, i: usize) -> anyhow::Result<()> {
        let mut procs = self.procs.lock().expect("procs lock poisoned");
        let p = &mut procs[i];
        let Some(child) = &p.child else {
            return Ok(());
        };
        if p.paused_held.is_some() {
            return Ok(());
        }
        let identity = crate::ledger::ProcessIdentity::of(child.id())
            .with_context(|| format!("{} (pid {}) is gone", self.nodes[i].name, child.id()))?;
        p.paused_held = Some(self.config.ledger.record(Resource::Paused {
            name: self.nodes[i].name.clone(),
            identity,
        })?);
        Ok(())
    }

    /// Sends a node its filter (and, without libfaketime, its clock).
    fn push_settings(&self, i: usize) -> anyhow::Result<()> {
        let node = &self.nodes[i];
        let mech = self.mechanisms;
        let f = self.filters.lock().expect("filter lock poisoned")[i].clone();
        if mech.partition == Mechanism::MessageFilter || mech.latency == Mechanism::MessageFilter {
            let filter = MessageFilter {
                drop: f.drop.iter().copied().collect(),
                delay_ms: f.delay_ms,
                loss: f.loss,
            };
            self.config.system.set_filter(node, &filter)?;
        }
        if mech.clock == Mechanism::NodeClock {
            let fault = self.clocks.lock().expect("clock lock poisoned")[i];
            self.config.system.set_clock(node, fault)?;
        }
        Ok(())
    }

    /// Refuses a fault this cluster cannot make.
    fn check_supported(&self, kind: FaultKind) -> anyhow::Result<()> {
        match self.unsupported.get(&kind) {
            Some(why) => bail!("{} faults are unsupported here: {why}", kind.as_str()),
            None => Ok(()),
        }
    }

    /// Pushes settings to every running, unpaused node; a node that cannot
    /// take them now gets them when it restarts or resumes.
    fn push_all(&self) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        for i in 0..self.nodes.len() {
            let (running, paused) = {
                let p = &self.procs.lock().expect("procs lock poisoned")[i];
                (p.child.is_some(), p.paused)
            };
            let ok = running
                && !paused
                && self
                    .push_settings(i)
                    .map_err(|e| errors.push(format!("{e:#}")))
                    .is_ok();
            self.procs.lock().expect("procs lock poisoned")[i].dirty = !ok;
        }
        if !errors.is_empty() {
            tracing::warn!(
                "some nodes will get their filter when they come back: {}",
                errors.join("; ")
            );
        }
        Ok(())
    }

    /// After a (re)start or resume: retry the settings for a few seconds.
    fn push_when_ready(&self, i: usize) {
        let dirty = {
            let p = &self.procs.lock().expect("procs lock poisoned")[i];
            p.dirty || self.filters.lock().expect("filter lock poisoned")[i] != Filter::default()
        };
        let needs_clock = self.mechanisms.clock == Mechanism::NodeClock
            && !self.clocks.lock().expect("clock lock poisoned")[i].is_true();
        if !dirty && !needs_clock {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.push_settings(i) {
                Ok(()) => {
                    self.procs.lock().expect("procs lock poisoned")[i].dirty = false;
                    return;
                }
                Err(e) if Instant::now() > deadline => {
                    tracing::warn!(node = %self.nodes[i].name, "could not restore its filter: {e:#}");
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Waits until every node's client port accepts connections; a node
    /// that exits first, or never listens, is an error naming it, how it
    /// ended and its log's last lines.
    fn await_listening(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut waiting: Vec<usize> = (0..self.nodes.len()).collect();
        while !waiting.is_empty() {
            let mut still = Vec::new();
            for i in waiting {
                let node = &self.nodes[i];
                let exited = {
                    let mut procs = self.procs.lock().expect("procs lock poisoned");
                    match procs[i].child.as_mut().map(Child::try_wait) {
                        Some(Ok(Some(status))) => {
                            // As reap_exited: what its daemons left goes
                            // with it, and so does its ledger entry (left
                            // held, the run's close warned that it still
                            // held a process that was gone).
                            if let Some(c) = &procs[i].child {
                                kill_group(c, libc::SIGKILL);
                            }
                            procs[i].child = None;
                            procs[i].forget();
                            Some(status.to_string())
                        }
                        None => Some("not running".to_string()),
                        _ => None,
                    }
                };
                if let Some(how) = exited {
                    bail!(
                        "{} ({}) exited during start ({how}); the last lines of {}:\n{}",
                        node.name,
                        self.config.system.kind(),
                        self.config.logs[i].display(),
                        log_tail(&self.config.logs[i], LOG_TAIL_LINES)
                    );
                }
                if TcpStream::connect_timeout(&node.client_addr, Duration::from_millis(200))
                    .is_err()
                {
                    still.push(i);
                }
            }
            waiting = still;
            if waiting.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let i = waiting[0];
                bail!(
                    "{} ({}) did not listen on {} within {timeout:?}; the last lines of {}:\n{}",
                    self.nodes[i].name,
                    self.config.system.kind(),
                    self.nodes[i].client_addr,
                    self.config.logs[i].display(),
                    log_tail(&self.config.logs[i], LOG_TAIL_LINES)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn reap_exited(&self) {
        let mut procs = self.procs.lock().expect("procs lock poisoned");
        for (i, p) in procs.iter_mut().enumerate() {
            if let Some(c) = &mut p.child {
                if let Ok(Some(status)) = c.try_wait() {
                    // What its daemons left behind goes with it.
                    kill_group(c, libc::SIGKILL);
                    tracing::warn!(node = %self.nodes[i].name, %status, "node exited by itself");
                    p.child = None;
                    p.forget();
                }
            }
        }
    }
}

impl Cluster for LocalCluster {
    fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    fn mechanisms(&self) -> Mechanisms {
        self.mechanisms
    }

    fn start_all(&self) -> anyhow::Result<()> {
        for n in self.nodes.clone() {
            self.start(n.id)?;
        }
        self.await_listening(START_TIMEOUT)
    }

    fn verify_running(&self) -> anyhow::Result<()> {
        let mut procs = self.procs.lock().expect("procs lock poisoned");
        for (i, p) in procs.iter_mut().enumerate() {
            let exited = match p.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => status.to_string(),
                None => "not running".to_string(),
                Some(_) => continue,
            };
            p.child = None;
            p.forget();
            bail!(
                "{} ({}) exited during start ({exited}); the last lines of {}:\n{}",
                self.nodes[i].name,
                self.config.system.kind(),
                self.config.logs[i].display(),
                log_tail(&self.config.logs[i], LOG_TAIL_LINES)
            );
        }
        Ok(())
    }

    fn log_tail(&self, node: NodeId) -> Option<String> {
        let i = self.index(node).ok()?;
        Some(log_tail(&self.config.logs[i], LOG_TAIL_LINES))
    }

    fn start(&self, node: NodeId) -> anyhow::Result<()> {
        let i = self.index(node)?;
        self.reap_exited();
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            bail!("the cluster was torn down; not starting {node}");
        }
        {
            let mut procs = self.procs.lock().expect("procs lock poisoned");
            if procs[i].child.is_some() {
                return Ok(());
            }
            let (child, held) = self.spawn(i)?;
            procs[i].forget();
            procs[i].child = Some(child);
            procs[i].held = Some(held);
            procs[i].started_at = Some(Instant::now());
        }
        self.push_when_ready(i);
        Ok(())
    }

    fn kill(&self, node: NodeId) -> anyhow::Result<()> {
        let i = self.index(node)?;
        let mut procs = self.procs.lock().expect("procs lock poisoned");
        if let Some(mut child) = procs[i].child.take() {
            kill_group(&child, libc::SIGKILL);
            let _ = child.kill(); // the leader, should the group signal fail
            child
                .wait()
                .with_context(|| format!("reaping {}", self.nodes[i].name))?;
        }
        procs[i].forget();
        Ok(())
    }

    fn pause(&self, node: NodeId) -> anyhow::Result<()> {
        let i = self.index(node)?;
        self.record_pause(i)?;
        if let Err(e) = self.signal(i, libc::SIGSTOP) {
            let mut procs = self.procs.lock().expect("procs lock poisoned");
            release(procs[i].paused_held.take());
            return Err(e);
        }
        let mut procs = self.procs.lock().expect("procs lock poisoned");
        procs[i].paused = procs[i].child.is_some();
        Ok(())
    }

    fn resume(&self, node: NodeId) -> anyhow::Result<()> {
        let i = self.index(node)?;
        self.signal(i, libc::SIGCONT)?;
        let was_dirty = {
            let mut procs = self.procs.lock().expect("procs lock poisoned");
            procs[i].paused = false;
            release(procs[i].paused_held.take());
            procs[i].dirty
        };
        if was_dirty {
            self.push_when_ready(i);
        }
        Ok(())
    }

    fn is_running(&self, node: NodeId) -> bool {
        self.reap_exited();
        self.index(node)
            .map(|i| {
                self.procs.lock().expect("procs lock poisoned")[i]
                    .child
                    .is_some()
            })
            .unwrap_or(false)
    }

    fn memory(&self, node: NodeId) -> anyhow::Result<crate::nemesis::slow_reader::NodeMemory> {
        let pgid = self.process_group(node)?;
        procfs::group_memory(pgid)
            .with_context(|| format!("reading the memory of {node} (process group {pgid})"))
    }

    fn reset_peak_memory(&self, node: NodeId) -> anyhow::Result<()> {
        let pgid = self.process_group(node)?;
        procfs::reset_group_peak(pgid)
            .with_context(|| format!("resetting the peak memory of {node} (process group {pgid})"))
    }

    fn partition(&self, cuts: &[Cut]) -> anyhow::Result<()> {
        if !cuts.is_empty() {
            self.check_supported(FaultKind::Partition)?;
        }
        for &(a, b) in cuts {
            self.index(a)?;
            self.index(b)?;
        }
        if let Some(ipt) = &self.iptables {
            let addrs = |n: NodeId| self.nodes[n.0 as usize - 1].addrs.clone();
            return ipt.set_cuts(cuts.iter().map(|&(a, b)| (addrs(a), addrs(b))).collect());
        }
        {
            let mut filters = self.filters.lock().expect("filter lock poisoned");
            for f in filters.iter_mut() {
                f.drop.clear();
            }
            for &(a, b) in cuts {
                filters[a.0 as usize - 1].drop.insert(b.0);
                filters[b.0 as usize - 1].drop.insert(a.0);
            }
        }
        self.push_all()
    }

    fn set_loss(&self, probability: f64) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&probability) {
            bail!("loss probability {probability} is not in [0, 1]");
        }
        if probability > 0.0 {
            self.check_supported(FaultKind::Loss)?;
        }
        if let Some(ipt) = &self.iptables {
            return ipt.set_loss(probability);
        }
        for f in self
            .filters
            .lock()
            .expect("filter lock poisoned")
            .iter_mut()
        {
            f.loss = probability;
        }
        self.push_all()
    }

    fn set_latency(&self, delay_ms: u64) -> anyhow::Result<()> {
        if delay_ms > 0 {
            self.check_supported(FaultKind::Latency)?;
        }
        for f in self
            .filters
            .lock()
            .expect("filter lock poisoned")
            .iter_mut()
        {
            f.delay_ms = delay_ms;
        }
        self.push_all()
    }

    fn set_clock(&self, node: NodeId, fault: ClockFault) -> anyhow::Result<()> {
        let i = self.index(node)?;
        if !fault.is_true() {
            self.check_supported(FaultKind::Clock)?;
        }
        self.clocks.lock().expect("clock lock poisoned")[i] = fault;
        if self.faketime.is_some() {
            let age = self.procs.lock().expect("procs lock poisoned")[i]
                .started_at
                .map_or(Duration::ZERO, |at| at.elapsed());
            return self.write_faketime(i, fault, age);
        }
        let running = self.procs.lock().expect("procs lock poisoned")[i]
            .child
            .is_some();
        if running {
            if let Err(e) = self.push_settings(i) {
                self.procs.lock().expect("procs lock poisoned")[i].dirty = true;
                return Err(e);
            }
        }
        Ok(())
    }

    fn heal_all(&self) -> anyhow::Result<()> {
        let mut first_error = None;
        // Resume first, so the nodes can take their cleared filters.
        for n in self.nodes.clone() {
            let paused =
                self.procs.lock().expect("procs lock poisoned")[n.id.0 as usize - 1].paused;
            if paused {
                if let Err(e) = self.resume(n.id) {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(ipt) = &self.iptables {
            if let Err(e) = ipt.clear() {
                first_error.get_or_insert(e);
            }
        }
        for f in self
            .filters
            .lock()
            .expect("filter lock poisoned")
            .iter_mut()
        {
            *f = Filter::default();
        }
        let offsets: Vec<usize> = {
            let mut clocks = self.clocks.lock().expect("clock lock poisoned");
            let changed = clocks
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.is_true())
                .map(|(i, _)| i)
                .collect();
            clocks.iter_mut().for_each(|c| *c = ClockFault::TRUE);
            changed
        };
        if self.faketime.is_some() {
            for i in offsets {
                if let Err(e) = self.write_faketime(i, ClockFault::TRUE, Duration::ZERO) {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Err(e) = self.push_all() {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }

    fn teardown(&self) -> anyhow::Result<()> {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut first_error = None;
        if let Some(ipt) = &self.iptables {
            match ipt.remove() {
                Ok(()) => release(self.chain_held.lock().expect("chain lock poisoned").take()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let mut procs = self.procs.lock().expect("procs lock poisoned");
        // The system's own stop first (an adapter's node.stop), then the
        // signals below for whatever it left.
        self.run_stop_commands(&procs);
        // SIGCONT then SIGTERM to every node's group; SIGKILL to the groups
        // of whoever is left after 3 s. A group is signalled before its
        // leader is reaped (an unreaped leader keeps the group id from being
        // reused), so daemons a node script started go with it.
        for p in procs.iter_mut() {
            if let Some(c) = &p.child {
                kill_group(c, libc::SIGCONT);
                kill_group(c, libc::SIGTERM);
            }
            p.paused = false;
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for (i, p) in procs.iter_mut().enumerate() {
            let Some(mut child) = p.child.take() else {
                continue;
            };
            // Until every live process of its group is gone (the leader's
            // zombie does not count) or time is up; then SIGKILL to what is
            // left, before the leader is reaped.
            let pgid = child.id() as i32;
            while Instant::now() < deadline && !procfs::group_members(pgid).is_empty() {
                std::thread::sleep(Duration::from_millis(20));
            }
            kill_group(&child, libc::SIGKILL);
            let _ = child.kill();
            match child.wait() {
                Ok(_) => p.forget(),
                Err(e) => {
                    first_error
                        .get_or_insert(anyhow::anyhow!("reaping {}: {e}", self.nodes[i].name));
                }
            }
        }
        drop(procs);
        // The nodes that read them are gone.
        for held in self
            .faketime_held
            .lock()
            .expect("faketime lock poisoned")
            .iter_mut()
        {
            release(held.take());
        }
        // Private data folders live outside the store: nothing is kept.
        let mut private_removed = true;
        for (mine, configured) in self.data_dirs.iter().zip(&self.config.data_dirs) {
            if mine != configured {
                if let Some(run_dir) = mine.parent() {
                    if let Err(e) = std::fs::remove_dir_all(run_dir) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            private_removed = false;
                            first_error.get_or_insert(anyhow::anyhow!(
                                "removing {}: {e}",
                                run_dir.display()
                            ));
                        }
                    }
                }
            }
        }
        if private_removed {
            release(
                self.private_held
                    .lock()
                    .expect("private lock poisoned")
                    .take(),
            );
        }
        first_error.map_or(Ok(()), Err)
    }

    fn leave_running(&self) -> anyhow::Result<String> {
        self.heal_all().context("healing every fault")?;
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(ipt) = &self.iptables {
            ipt.remove().context("removing the run's iptables rules")?;
            release(self.chain_held.lock().expect("chain lock poisoned").take());
        }
        let mut procs = self.procs.lock().expect("procs lock poisoned");
        // The nodes are left on purpose: no longer the run's to undo.
        for p in procs.iter_mut() {
            p.forget();
        }
        for held in self
            .faketime_held
            .lock()
            .expect("faketime lock poisoned")
            .iter_mut()
        {
            release(held.take());
        }
        if let Err(e) = self.config.ledger.close() {
            tracing::warn!("closing the run's ledger: {e:#}");
        }
        let mut out = String::new();
        let mut groups = Vec::new();
        for (i, p) in procs.iter_mut().enumerate() {
            let node = &self.nodes[i];
            // Letting go of a Child neither kills nor waits for it: the
            // node runs on in its own process group, writing its log.
            match p.child.take() {
                Some(child) => {
                    out.push_str(&format!(
                        "  {}: client {}, pid {}, log {}\n",
                        node.name,
                        node.client_addr,
                        child.id(),
                        self.config.logs[i].display()
                    ));
                    groups.push(format!("-{}", child.id()));
                }
                None => out.push_str(&format!("  {}: not running\n", node.name)),
            }
        }
        if !groups.is_empty() {
            out.push_str(&format!("  stop them: kill -TERM {}\n", groups.join(" ")));
        }
        Ok(out)
    }

    fn unsupported(&self, kind: FaultKind) -> Option<String> {
        self.unsupported.get(&kind).cloned()
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": "local",
            "system": self.config.system.kind(),
            "address_mode": if self.per_node_ip { "one-address-per-node" } else { "shared-address" },
            "client_bind_ip": self.client_bind_ip(),
            "iptables_chain": self.iptables_chain(),
            "node_uids": self.owners,
            "libfaketime": self.faketime,
            "program": self.config.system.local_program(),
            "nodes": self.nodes.iter().enumerate().map(|(i, n)| serde_json::json!({
                "id": n.id.0,
                "name": n.name,
                "addr": n.client_addr,
                "peer_addr": n.peer_addr,
                "data_dir": self.data_dirs[i],
                "log": self.config.logs[i],
            })).collect::<Vec<_>>(),
        })
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::error!("tearing down the local cluster: {e:#}");
        }
    }
}

impl Proc {
    /// The process is gone (or no longer the run's): its ledger entries go.
    fn forget(&mut self) {
        self.paused = false;
        release(self.paused_held.take());
        release(self.held.take());
    }
}

/// Writes down that a held resource was undone; a ledger that cannot be
/// written is logged (the next heal finds the resource gone).
fn release(held: Option<Held>) {
    if let Some(held) = held {
        if let Err(e) = held.release() {
            tracing::warn!("{e:#}");
        }
    }
}

/// Sends `signal` to the process group `child` leads (every local node
/// leads its own). Call it only before `child` is reaped.
fn kill_group(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        signal_node(pid, signal);
    }
}

/// Sends `signal` to the node whose process group `leader` leads: to the
/// group, and to every descendant of the leader that left it (a daemon
/// whose children call setsid(), as every child of PostgreSQL's postmaster
/// does: a signal to the group alone would pause the postmaster while its
/// backends go on serving). Such a tree is first frozen (SIGSTOP, again
/// until no new descendant appears: a stopped process forks nothing), so
/// that no child escapes between the listing and the signal, and a
/// SIGKILL still finds the children that its parent's death would
/// orphan; after any signal but SIGSTOP and SIGKILL the tree is woken
/// (SIGCONT) so it can act on it. A node with no such descendant gets one
/// signal to its group, as before.
fn signal_node(leader: libc::pid_t, signal: libc::c_int) {
    let send = |pid: libc::pid_t, sig: libc::c_int| {
        // SAFETY: kill(2) has no memory preconditions. Its target is the
        // group of our own unreaped child (whose id cannot be reused) or a
        // descendant listed from /proc a moment ago (a pid reused within
        // that moment is the risk any kill by pid takes).
        unsafe {
            libc::kill(pid, sig);
        }
    };
    let mut outside = procfs::descendants_outside_group(leader);
    if outside.is_empty() {
        send(-leader, signal);
        return;
    }
    if signal != libc::SIGCONT {
        send(-leader, libc::SIGSTOP);
        // Bounded: a frozen tree stops growing at once.
        for _ in 0..16 {
            for &pid in &outside {
                send(pid, libc::SIGSTOP);
            }
            let now = procfs::descendants_outside_group(leader);
            let grown = now.iter().any(|p| !outside.contains(p));
            outside = now;
            if !grown {
                break;
            }
        }
    }
    send(-leader, signal);
    for &pid in &outside {
        send(pid, signal);
    }
    if signal != libc::SIGSTOP && signal != libc::SIGKILL && signal != libc::SIGCONT {
        send(-leader, libc::SIGCONT);
        for &pid in &outside {
            send(pid, libc::SIGCONT);
        }
    }
}

/// Is `path` a usable libfaketime? (For test.json and diagnostics.)
pub fn libfaketime() -> Option<&'static Path> {
    LIBFAKETIME_PATHS.iter().map(Path::new).find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cluster::procfs::state;

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_signal_reaches_descendants_that_left_the_nodes_group() {
        // A node whose daemon's child made a session of its own, as every
        // child of PostgreSQL's postmaster does.
        let mut node = Command::new("/bin/sh")
            .arg("-c")
            .arg("setsid sleep 31 & sleep 30 & wait")
            .process_group(0)
            .spawn()
            .expect("sh runs");
        let leader = node.id() as i32;
        let mut outside = Vec::new();
        wait_for("the setsid'd child", || {
            outside = procfs::descendants_outside_group(leader);
            outside.len() == 1
        });
        let escaped = outside[0];
        // Whatever fails below, no process of the test is left (stopped).
        struct KillOnDrop(i32, i32);
        impl Drop for KillOnDrop {
            fn drop(&mut self) {
                // SAFETY: kill(2) to the processes this test started.
                unsafe {
                    libc::kill(self.0, libc::SIGKILL);
                    libc::kill(-self.1, libc::SIGKILL);
                }
            }
        }
        let _guard = KillOnDrop(escaped, leader);
        signal_node(leader, libc::SIGSTOP);
        // A signal is delivered when its target next runs: wait, never
        // assert at once (CI-like load saw the group not yet stopped).
        wait_for("the escaped child to stop", || state(escaped) == Some('T'));
        wait_for("the group to stop", || {
            procfs::group_members(leader).iter().all(|p| p.state == 'T')
        });
        signal_node(leader, libc::SIGCONT);
        wait_for("the escaped child to run", || state(escaped) != Some('T'));
        signal_node(leader, libc::SIGKILL);
        let _ = node.wait();
        wait_for("the escaped child to die", || state(escaped).is_none());
        // A killed process exits when it next runs (CI-like load saw the
        // group's sleep not yet gone when its leader was reaped).
        wait_for("the group to die", || {
            procfs::group_members(leader).is_empty()
        });
    }
}

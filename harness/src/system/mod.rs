//! The system under test: a boundary any database fits behind, modelled on
//! Jepsen's DB and Client protocols. faultline's own node is one
//! implementation ([`faultline::FaultlineSystem`]); nothing outside
//! `system/` names one.
//!
//! A [`System`] says, for one kind of database:
//! - its nodes' layout ([`System::ports`]): how many ports each node
//!   listens on, which one clients use and which one peers use — the
//!   traffic partitions and packet loss cut ([`NodeInfo::peer_addr`]);
//! - how to run node i ([`System::process`]): program, arguments and
//!   environment, given every node's addresses and the node's data folder.
//!   The cluster (local child processes, or daemons on SSH hosts) runs that
//!   spec, keeps its output as the node's log file, and starts, stops,
//!   kills (SIGKILL, then restart on the same data), pauses and resumes it
//!   by signals: Jepsen's DB `start!`, `kill!`, `pause!`, `resume!` and
//!   `log-files`, done the same way for every system;
//! - what must be on a remote host ([`System::remote_program`]): this
//!   machine's executable uploaded, or a package installed (`setup!`);
//! - which faults it can take ([`System::fault_support`]) and what the node
//!   itself offers the nemesis ([`System::node_faults`]: faultline's node
//!   has a message filter and its own clock offset, most systems neither);
//! - when a cluster is ready ([`System::await_leader`],
//!   [`System::await_serving`]) and who leads ([`System::leader`], for the
//!   nemesis's `leader` targets);
//! - after the final reads, whether every node holds everything committed
//!   ([`System::await_caught_up`]; a system that cannot tell says None);
//! - one [`Client`] per worker ([`System::client`], Jepsen's Client `open!`):
//!   system-neutral [`faultline_workloads::Call`]s in, answers out;
//! - with `--auth` and `--tls`, what its own connections present
//!   ([`System::admin_credentials`]), what its nodes answer without the
//!   token ([`System::auth_probe`]) and each node's TLS files
//!   ([`System::node_tls_files`]).
//!
//! Guarantees every implementation keeps: nothing it returns starts a
//! process or opens a connection that outlives the cluster's teardown; a
//! fault kind it cannot take is said so ([`Support::Unsupported`], with the
//! reason), never faked.

pub mod etcd;
pub mod faultline;

use crate::cluster::{ClockFault, NodeId, NodeInfo};
use crate::nemesis::FaultKind;
use faultline_workloads::{BoxFuture, Client, WorkloadKind};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which system a run tests (`--system`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SystemKind {
    /// faultline's own node (`faultline node`), deployed from this binary.
    Faultline,
    /// etcd (Debian's etcd-server, or `--system-bin`).
    Etcd,
    /// Any system described by an adapter file (`--system FILE.toml`;
    /// docs/adapters.md): the file's path is in test.json's system settings.
    Adapter,
}

impl SystemKind {
    /// The systems `--system` names (an adapter is named by its file).
    pub const ALL: [SystemKind; 2] = [SystemKind::Faultline, SystemKind::Etcd];

    pub fn name(self) -> &'static str {
        match self {
            SystemKind::Faultline => "faultline",
            SystemKind::Etcd => "etcd",
            SystemKind::Adapter => "adapter",
        }
    }

    /// What a crashed node of this system leaves in its log, for the
    /// `node-crashes` check: a Rust panic; a Go panic or a fatal zap entry.
    pub fn crash_markers(self) -> &'static [&'static str] {
        match self {
            SystemKind::Faultline | SystemKind::Adapter => &["panicked at "],
            SystemKind::Etcd => &["panic: ", "\"level\":\"panic\"", "\"level\":\"fatal\""],
        }
    }

    /// True when `--system`'s text names an adapter file rather than a
    /// built-in system: a path (it holds a `/`) or a name ending `.toml`.
    pub fn is_adapter_file(text: &str) -> bool {
        text.contains('/') || text.ends_with(".toml")
    }

    /// Parses `--system`: a built-in system's name.
    pub fn parse(text: &str) -> Result<SystemKind, String> {
        SystemKind::ALL
            .into_iter()
            .find(|k| k.name() == text)
            .ok_or_else(|| {
                format!(
                    "{text:?}: unknown system; use one of {}, or an adapter file (a path ending .toml, docs/adapters.md)",
                    SystemKind::ALL.map(SystemKind::name).join(", ")
                )
            })
    }
}

impl std::fmt::Display for SystemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The ports of one node: how many it listens on, and which of them
/// clients and peers connect to (indices into its ports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    pub count: usize,
    pub client: usize,
    pub peer: usize,
}

impl Ports {
    /// One port for clients and peers alike.
    pub const ONE: Ports = Ports {
        count: 1,
        client: 0,
        peer: 0,
    };
}

/// How to run one node: what the cluster executes (as a child process, or
/// as a daemon on an SSH host) and keeps the output of as the node's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Where a node runs, as [`System::process`] needs to know it.
#[derive(Clone, Debug)]
pub struct NodeSite<'a> {
    pub node: &'a NodeInfo,
    /// Every node of the cluster, this one included, in id order.
    pub cluster: &'a [NodeInfo],
    /// The node's data folder (on the node's host).
    pub data_dir: String,
    /// The program to run, where the cluster put it or found it.
    pub program: String,
    /// The run's auth token file where the node runs (`--auth`; None
    /// without it): the run's own in local mode, a copy on the host in
    /// remote mode.
    pub auth_token_file: Option<String>,
    /// The node's TLS files where the node runs (`--tls`; None without
    /// it): the run's own in local mode, copies on the host in remote mode.
    pub tls: Option<SiteTls>,
}

/// A node's TLS files where the node runs (its `--tls-cert`, `--tls-key`
/// and `--tls-ca`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteTls {
    pub cert: String,
    pub key: String,
    pub ca: String,
}

impl SiteTls {
    /// The files at their paths on this machine (local mode).
    pub fn local(files: &faultline_nodes::tls::TlsFiles) -> SiteTls {
        SiteTls {
            cert: files.cert.display().to_string(),
            key: files.key.display().to_string(),
            ca: files.ca.display().to_string(),
        }
    }
}

/// What a remote host needs to run a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteProgram {
    /// This local executable, uploaded to the host (skipped when the same
    /// checksum is already there).
    Upload(PathBuf),
    /// A program from a Debian package, which the host must have (or get
    /// with `--install-deps`).
    Package {
        package: &'static str,
        program: &'static str,
    },
    /// An adapter's files ([`RemoteFiles`]): its directory uploaded, its
    /// `install` run where its `requires` are missing, its node script run
    /// by the host's bash.
    Files(RemoteFiles),
}

/// What an adapter puts on each host (docs/adapters.md, remote mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFiles {
    /// The adapter file's directory (everything in it), and where it goes
    /// on the host.
    pub dir: PathBuf,
    pub remote_dir: String,
    /// This faultline executable and its path on the host, when the node's
    /// commands run it (`{{faultline}}`).
    pub faultline: Option<(PathBuf, String)>,
    /// Programs every host must have (`requires`).
    pub requires: Vec<String>,
    /// The program the node runs (bash, for the node script).
    pub program: String,
}

/// Whether a system can take a kind of fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Support {
    Supported,
    /// It cannot; the reason goes to the output, test.json and history.
    Unsupported(String),
}

/// What a node itself offers the nemesis, beside signals and packet filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeFaults {
    /// It drops, delays and loses peer messages on request (faultline's
    /// admin `filter`): partitions without iptables, and latency.
    pub message_filter: bool,
    /// It shifts its own clock on request (faultline's admin `clock`).
    pub own_clock: bool,
    /// Its clock follows libfaketime (not Go programs: they read the time
    /// through the vDSO).
    pub libfaketime: bool,
    /// It dials its peers from its own address (faultline's node binds it),
    /// so packet filters can tell nodes apart by address; otherwise (etcd)
    /// a local cluster tells them apart by socket owner.
    pub binds_source_ip: bool,
}

/// Counters in the harness's memory that lock holders read-modify-write
/// (`lock-counter`): the resource a lock protects, shared by the run's
/// clients, touched by nothing but them.
#[derive(Debug, Default)]
pub struct Resources {
    counters: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl Resources {
    pub fn get(&self, name: &str) -> i64 {
        let counters = self.counters.lock().expect("resources lock poisoned");
        counters.get(name).copied().unwrap_or(0)
    }

    pub fn set(&self, name: &str, value: i64) {
        let mut counters = self.counters.lock().expect("resources lock poisoned");
        counters.insert(name.to_string(), value);
    }
}

/// A node's message filter, as the cluster wants it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessageFilter {
    /// Node ids whose messages it drops.
    pub drop: Vec<u32>,
    pub delay_ms: u64,
    pub loss: f64,
}

/// One kind of system under test. See the module docs.
pub trait System: Send + Sync {
    fn kind(&self) -> SystemKind;
    /// The version under test, for test.json and the report
    /// (`faultline 0.1.0`, `etcd 3.4.23`).
    fn version(&self) -> String;
    /// The version in what `<program> --version` printed on a remote host
    /// (for a program the hosts bring themselves, such as a Debian
    /// package's); None: this system cannot read it.
    fn version_from_output(&self, output: &str) -> Option<String> {
        let _ = output;
        None
    }
    /// The workloads its client can run; others are bad input.
    fn supports_workload(&self, workload: WorkloadKind) -> Support;
    /// Whether it can take this kind of fault at all (whatever the
    /// cluster's mechanisms).
    fn fault_support(&self, kind: FaultKind) -> Support;
    fn ports(&self) -> Ports;
    fn node_faults(&self) -> NodeFaults;
    /// Its client keeps a lock holder's lease alive for as long as it holds
    /// the lock (an etcd session): lock holders then behave as mutex users
    /// (workloads/src/lock.rs) and are checked as a linearizable mutex too.
    fn lock_keepalive(&self) -> bool {
        false
    }
    /// The program a local cluster runs.
    fn local_program(&self) -> PathBuf;
    /// What a remote host needs.
    fn remote_program(&self) -> RemoteProgram;
    /// The port numbers a remote node listens on, when the system fixes
    /// them (an adapter's `node.ports`); None: from `--node-port` up.
    fn remote_ports(&self) -> Option<Vec<u16>> {
        None
    }
    /// The command each remote host runs once, as root, before the run when
    /// it lacks a program of [`RemoteFiles::requires`] (an adapter's
    /// `install`), filled in for `cluster`; None: nothing to install.
    fn remote_install(&self, cluster: &[NodeInfo]) -> anyhow::Result<Option<String>> {
        let _ = cluster;
        Ok(None)
    }
    /// The version command a remote run asks the first host (an adapter's
    /// `version`, with the hosts' paths); None: the system says its
    /// version itself ([`System::version`]).
    fn remote_version(&self, cluster: &[NodeInfo]) -> anyhow::Result<Option<String>> {
        let _ = cluster;
        Ok(None)
    }
    /// The command that stops the node cleanly (an adapter's `node.stop`),
    /// run on the node's host in its data folder when the run ends, before
    /// the cluster's SIGTERM and SIGKILL to what is left; None: signals only.
    fn stop_command(&self, site: &NodeSite<'_>) -> Option<String> {
        let _ = site;
        None
    }
    /// A shell script a remote cluster runs on the node's host once the
    /// node answers, given the host's path of the node's log: it prints
    /// nothing when the node can be run as planned, else why not (an
    /// adapter: a daemon that does not map the libfaketime preloaded into
    /// it). None: nothing to check.
    fn host_check(&self, site: &NodeSite<'_>, log: &str) -> Option<String> {
        let _ = (site, log);
        None
    }
    /// Files on the node's host, besides its output, that go into the
    /// store at the end (an adapter's `node.logs`).
    fn log_files(&self, site: &NodeSite<'_>) -> Vec<String> {
        let _ = site;
        Vec::new()
    }
    /// The node's audit log on its host (faultline's node:
    /// `<data dir>/audit.jsonl`), which a remote run fetches into the
    /// store's `nodes/<node>/audit.jsonl` (run/audit.rs); None: the system
    /// keeps none.
    fn audit_log(&self, site: &NodeSite<'_>) -> Option<String> {
        let _ = site;
        None
    }
    /// How to run one node.
    fn process(&self, site: &NodeSite<'_>) -> ProcessSpec;
    /// The slow-reader fault's request lines (nemesis/slow_reader.rs): one
    /// that stores `value_bytes` at a key of the fault's own, one that
    /// reads it back. None for a system whose wire the harness does not
    /// speak raw (its [`System::fault_support`] says slow-reader is
    /// unsupported).
    fn slow_reader_lines(
        &self,
        value_bytes: usize,
    ) -> Option<crate::nemesis::slow_reader::SlowReaderLines> {
        let _ = value_bytes;
        None
    }
    /// Sets a node's message filter (only if [`NodeFaults::message_filter`]).
    fn set_filter(&self, node: &NodeInfo, filter: &MessageFilter) -> anyhow::Result<()> {
        let _ = filter;
        anyhow::bail!("{}: {} has no message filter", node.name, self.kind())
    }
    /// Sets a node's own clock (only if [`NodeFaults::own_clock`]).
    fn set_clock(&self, node: &NodeInfo, fault: ClockFault) -> anyhow::Result<()> {
        let _ = fault;
        anyhow::bail!("{}: {} has no clock of its own", node.name, self.kind())
    }
    /// Waits until the cluster has elected (every group, where there are
    /// several); the error says what is missing.
    fn await_leader<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
    /// Waits until the cluster answers a read.
    fn await_serving<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
    /// The node that leads now, if any says so (for `leader` targets).
    fn leader<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
    ) -> BoxFuture<'a, Option<NodeId>>;
    /// The client of worker `worker` (Jepsen's `open!`); its home node is
    /// `worker` modulo the node count. Clients bind to `bind_ip` when given,
    /// so that packet filters between nodes never match them.
    fn client(
        &self,
        worker: usize,
        nodes: &[NodeInfo],
        bind_ip: Option<IpAddr>,
    ) -> anyhow::Result<Box<dyn Client>>;
    /// The system's settings, for test.json.
    fn describe(&self) -> serde_json::Value;
    /// What the system has to say when the run's operations are done (an
    /// adapter: how often its client processes were replaced, and why),
    /// for stderr; None: nothing.
    fn closing_note(&self) -> Option<String> {
        None
    }
    /// What the harness's own probes and admin requests present to its
    /// nodes (`faultline test --auth`: the token; `--tls`: the admin
    /// role's certificate); nothing by default.
    fn admin_credentials(&self) -> faultline_nodes::client::Credentials {
        faultline_nodes::client::Credentials::none()
    }
    /// With `--tls`: node `node`'s certificate, key and the run's CA on
    /// this machine (issued for the node's addresses on first ask; keys
    /// mode 0600), which remote mode copies to the node's host. None: no
    /// TLS.
    fn node_tls_files(
        &self,
        node: &NodeInfo,
    ) -> anyhow::Result<Option<faultline_nodes::tls::TlsFiles>> {
        let _ = node;
        Ok(None)
    }
    /// The file that holds that token on this machine (mode 0600), which
    /// remote mode copies to each host; None: no auth.
    fn auth_token_file(&self) -> Option<&std::path::Path> {
        None
    }
    /// What the impostor fault presents to `nodes` (nemesis/impostor.rs):
    /// the run's credentials it may use and what it tries without them.
    /// None: this system has no impostor.
    fn impostor(
        &self,
        nodes: &[NodeInfo],
        bind_ip: Option<IpAddr>,
    ) -> anyhow::Result<Option<crate::nemesis::impostor::ImpostorSetup>> {
        let _ = (nodes, bind_ip);
        Ok(None)
    }
    /// With auth on: what every node answers a request sent without the
    /// token (each must refuse it), recorded as the nemesis event `auth`
    /// and judged by the `auth` check. None: this run has no auth.
    fn auth_probe<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
    ) -> BoxFuture<'a, Option<AuthProbe>> {
        let _ = (nodes, bind_ip);
        Box::pin(async { None })
    }
    /// After the final reads: waits up to `timeout` until every node holds
    /// everything the cluster committed (a follower that never catches up
    /// is a failure the reads alone cannot see, as they go to a leader), and
    /// says what each node holds. None: this system cannot tell.
    fn await_caught_up<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'a, Option<CatchUp>> {
        let _ = (nodes, bind_ip, timeout);
        Box::pin(async { None })
    }
}

/// Whether every node caught up at the end of a run, recorded in the
/// history as the nemesis event `caught-up` (docs/history-format.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUp {
    /// Every node answered and holds the same applied position.
    pub caught_up: bool,
    /// Each node's applied position (faultline: its applied log index);
    /// None: it did not answer.
    pub applied: std::collections::BTreeMap<String, Option<u64>>,
}

/// What the nodes answered a request sent without the run's auth token,
/// recorded in the history as the nemesis event `auth`
/// (docs/history-format.md): every node must refuse it (`unauthorized`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthProbe {
    /// Nodes that refused it as unauthorized.
    pub refused: Vec<String>,
    /// Nodes that read it and answered something else, and what.
    pub served: std::collections::BTreeMap<String, String>,
    /// Nodes that gave no answer, and why.
    pub no_answer: std::collections::BTreeMap<String, String>,
}

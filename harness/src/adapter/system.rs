//! An adapter file as a [`System`]: each node runs the file's node script
//! (setup once, then its daemons, all in the node's process group: see
//! [`super::node`]), so the cluster kills, pauses and resumes a whole node
//! with one signal; a node is ready when its `ready` command passes (or
//! every port accepts a connection) and the cluster when `healthy` passes;
//! `primary` names the leader for faults aimed at it; each worker's client
//! is the file's client command speaking JSON lines ([`super::client`]).
//!
//! Guarantees: a node whose setup fails or whose daemon exits while the
//! harness waits for it to become ready is a harness error naming the
//! node, what exited, its status and the last lines of its log, at once
//! (not at the end of a timeout); a client that cannot start when the run
//! begins stops the run with its stderr; every command and client runs in
//! a process group that is killed when it ends or is dropped.

use super::client::{AdapterClient, Replacements};
use super::client_process::ClientCommand;
use super::command;
use super::file::AdapterFile;
use super::node::{node_named, node_script};
use super::template::{NodeValues, Template, Values};
use crate::cluster::{procfs, NodeId, NodeInfo};
use crate::nemesis::FaultKind;
use crate::run::isolation::IsolationLevel;
use crate::system::{
    NodeFaults, NodeSite, Ports, ProcessSpec, RemoteProgram, Support, System, SystemKind,
};
use anyhow::{bail, Context};
use faultline_results::RunDir;
use faultline_workloads::{Answer, BoxFuture, Call, Client, WorkloadKind};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// How long one run of `ready`, `healthy` or `primary` may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two tries of `ready` or `healthy`.
const RETRY_EVERY: Duration = Duration::from_millis(200);
/// Log lines quoted when a node fails.
const LOG_TAIL_LINES: usize = 12;
/// The exit status of a node whose commands could not be filled in.
const RENDER_FAILED_STATUS: i32 = 92;

/// An adapter, configured for one run.
pub struct AdapterSystem {
    file: AdapterFile,
    params: BTreeMap<String, String>,
    workload: WorkloadKind,
    run_dir: RunDir,
    /// The running faultline executable (`{{faultline}}`).
    faultline: PathBuf,
    op_timeout: Duration,
    /// Workers, for process ids after an `info` (as the run loop counts).
    concurrency: u64,
    /// `version`'s first line (or the adapter's name).
    version: String,
    /// The run's level, for a file that declares `[isolation]`.
    isolation: Option<IsolationLevel>,
    replacements: Replacements,
}

/// What a run asks of an adapter, besides the file.
pub struct AdapterRun {
    pub params: BTreeMap<String, String>,
    pub workload: WorkloadKind,
    pub run_dir: RunDir,
    pub faultline: PathBuf,
    pub op_timeout: Duration,
    pub concurrency: u32,
    /// The plan's level (`AdapterFile::isolation_level`).
    pub isolation: Option<IsolationLevel>,
}

/// The programs of `requires` that are not there; empty when all are.
pub fn missing_programs(file: &AdapterFile) -> Vec<String> {
    file.requires
        .iter()
        .filter(|p| !super::client_process::program_exists(p))
        .cloned()
        .collect()
}

impl AdapterSystem {
    /// Configures `file` for a run and runs its `version` command once.
    pub fn new(file: AdapterFile, run: AdapterRun) -> anyhow::Result<AdapterSystem> {
        let mut system = AdapterSystem {
            version: file.name.clone(),
            file,
            params: run.params,
            workload: run.workload,
            run_dir: run.run_dir,
            faultline: run.faultline,
            op_timeout: run.op_timeout,
            concurrency: u64::from(run.concurrency.max(1)),
            isolation: run.isolation,
            replacements: Replacements::default(),
        };
        if let Some(template) = system.file.version.clone() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a runtime for the version command")?;
            let out = rt.block_on(system.cluster_command(&template, &[], VERSION_TIMEOUT))?;
            if !out.success() {
                bail!(
                    "{}: {} {}: {}",
                    template.origin().file.display(),
                    template.origin().field,
                    out.status(VERSION_TIMEOUT),
                    out.tail(5)
                );
            }
            if let Some(line) = out.stdout.lines().map(str::trim).find(|l| !l.is_empty()) {
                system.version = line.to_string();
            }
        }
        Ok(system)
    }

    /// Every node's values; the data directory only for `own` (node index,
    /// with its directory), as only a node's own commands name it.
    fn values_of(&self, nodes: &[NodeInfo], own: Option<(usize, &str)>) -> Vec<NodeValues> {
        let names = self.file.port_names();
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| NodeValues {
                id: n.id.0,
                name: n.name.clone(),
                ip: n.client_addr.ip(),
                ports: names
                    .iter()
                    .zip(n.addrs.iter())
                    .map(|(p, a)| (p.clone(), a.port()))
                    .collect(),
                data_dir: match own {
                    Some((o, dir)) if o == i => PathBuf::from(dir),
                    _ => PathBuf::new(),
                },
            })
            .collect()
    }

    fn values<'a>(&'a self, nodes: &'a [NodeValues]) -> Values<'a> {
        Values {
            nodes,
            params: &self.params,
            lists: &self.file.lists,
            adapter_dir: &self.file.dir,
            faultline: &self.faultline,
            run_dir: self.run_dir.path(),
            isolation: self.isolation.map(IsolationLevel::name),
        }
    }

    /// Runs a cluster command once, in the run directory.
    async fn cluster_command(
        &self,
        template: &Template,
        nodes: &[NodeInfo],
        timeout: Duration,
    ) -> anyhow::Result<command::CommandOutput> {
        let values = self.values_of(nodes, None);
        let text = template.render(&self.values(&values), None, None)?;
        command::run(&text, self.run_dir.path(), &[], timeout)
            .await
            .with_context(|| format!("running {}", template.origin().field))
    }

    /// The node's script: the rendered setup and daemons, or a script that
    /// says why they could not be rendered and exits.
    fn script(&self, site: &NodeSite<'_>) -> Result<String, String> {
        let index = site
            .cluster
            .iter()
            .position(|n| n.id == site.node.id)
            .ok_or_else(|| format!("{} is not in its own cluster", site.node.name))?;
        let values = self.values_of(site.cluster, Some((index, &site.data_dir)));
        let values = self.values(&values);
        let render = |t: &Template| {
            t.render(&values, Some(index), None)
                .map_err(|e| e.to_string())
        };
        let setup = self.file.node.setup.as_ref().map(render).transpose()?;
        let daemons = self
            .file
            .node
            .daemons
            .iter()
            .map(|d| Ok((d.name.clone(), render(&d.start)?)))
            .collect::<Result<Vec<_>, String>>()?;
        super::template::check_word(&site.data_dir)
            .map_err(|why| format!("the data directory {:?} {why}", site.data_dir))?;
        Ok(format!(
            "cd {dir} || exit {RENDER_FAILED_STATUS}\n{}",
            node_script(&site.node.name, setup.as_deref(), &daemons),
            dir = site.data_dir
        ))
    }

    /// Whether node `node` is ready now: its `ready` command passes, or
    /// every port accepts a TCP connection. Err: why not, in words.
    async fn node_ready(&self, nodes: &[NodeInfo], index: usize) -> Result<(), String> {
        let node = &nodes[index];
        match &self.file.node.ready {
            Some(template) => {
                let dir = self.run_dir.node_data_dir(&node.name).display().to_string();
                let values = self.values_of(nodes, Some((index, &dir)));
                let text = template
                    .render(&self.values(&values), Some(index), None)
                    .map_err(|e| e.to_string())?;
                let out = command::run(&text, self.run_dir.path(), &[], PROBE_TIMEOUT)
                    .await
                    .map_err(|e| format!("node.ready could not run: {e}"))?;
                if out.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "node.ready: {}: {}",
                        out.status(PROBE_TIMEOUT),
                        out.tail(3)
                    ))
                }
            }
            None => {
                for addr in &node.addrs {
                    let connect = tokio::net::TcpStream::connect(addr);
                    match tokio::time::timeout(Duration::from_secs(1), connect).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(format!("{addr}: {e}")),
                        Err(_) => return Err(format!("{addr}: no connection within 1 s")),
                    }
                }
                Ok(())
            }
        }
    }

    /// The lines node `name`'s log holds since its last start.
    fn current_log(&self, name: &str) -> Vec<String> {
        let text = std::fs::read(self.run_dir.node_log(name))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start_marker = format!("faultline: {name}: starting");
        let from = lines
            .iter()
            .rposition(|l| l.starts_with(&start_marker))
            .unwrap_or(0);
        lines[from..].iter().map(|l| l.to_string()).collect()
    }

    /// Why node `name` stopped since its last start, if its script said so:
    /// the line, and the log's last lines.
    fn node_failure(&self, name: &str) -> Option<String> {
        let lines = self.current_log(name);
        let own = format!("faultline: {name}: ");
        let failed = lines.iter().find(|l| {
            l.starts_with(&own)
                && (l.contains("; stopping the node")
                    || l.contains("node.setup failed")
                    || l.contains("cannot start"))
        })?;
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        Some(format!(
            "{}\nthe last lines of {}:\n  {}",
            failed.trim_start_matches("faultline: "),
            self.run_dir.node_log(name).display(),
            tail.join("\n  ")
        ))
    }

    /// The daemons of node `name`'s current incarnation and their pids, as
    /// its script logged them.
    fn daemon_pids(&self, name: &str) -> Vec<(String, i32)> {
        let prefix = format!("faultline: {name}: daemon ");
        self.current_log(name)
            .iter()
            .filter_map(|line| {
                let rest = line.strip_prefix(&prefix)?;
                let (daemon, pid) = rest.split_once(" started, pid ")?;
                Some((daemon.to_string(), pid.trim().parse().ok()?))
            })
            .collect()
    }

    /// Why node `name`'s clock cannot be faulted although libfaketime was
    /// preloaded into it: a daemon that does not map it (a static binary, a
    /// Go program, one that dropped LD_PRELOAD). None when the node was not
    /// given libfaketime, or every daemon maps it.
    fn clock_deaf_daemon(&self, name: &str) -> Option<String> {
        let lines = self.current_log(name);
        let script_pid: i32 = lines.first().and_then(|l| {
            let rest = l.split_once("starting (pid ")?.1;
            rest.trim_end_matches(')').parse().ok()
        })?;
        let environ = std::fs::read(format!("/proc/{script_pid}/environ")).ok()?;
        let preloaded = environ.split(|&b| b == 0).any(|kv| {
            kv.starts_with(b"LD_PRELOAD=") && kv.windows(11).any(|w| w == b"libfaketime")
        });
        if !preloaded {
            return None;
        }
        self.daemon_pids(name)
            .into_iter()
            .find_map(|(daemon, pid)| {
                (procfs::maps_library(pid, "libfaketime") == Some(false)).then(|| {
                    format!(
                    "{name}: daemon {daemon} (pid {pid}) does not map libfaketime, so clock faults \
                     would not reach it (a static binary, a Go program, or LD_PRELOAD dropped); \
                     leave clock out of --nemesis, or out of {}'s faults",
                    self.file.path.display()
                )
                })
            })
    }

    /// Waits until every node is ready and then the cluster healthy.
    async fn await_ready(&self, nodes: &[NodeInfo], timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for index in 0..nodes.len() {
            let name = &nodes[index].name;
            loop {
                let why = match self.node_ready(nodes, index).await {
                    Ok(()) => {
                        if let Some(deaf) = self.clock_deaf_daemon(name) {
                            bail!("node {deaf}");
                        }
                        break;
                    }
                    Err(why) => why,
                };
                if let Some(failure) = self.node_failure(name) {
                    bail!("node {failure}");
                }
                if Instant::now() >= deadline {
                    let tail = self.current_log(name);
                    bail!(
                        "node {name} did not become ready ({why}); the last lines of {}:\n  {}",
                        self.run_dir.node_log(name).display(),
                        tail[tail.len().saturating_sub(LOG_TAIL_LINES)..].join("\n  ")
                    );
                }
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
        let Some(healthy) = &self.file.healthy else {
            return Ok(());
        };
        loop {
            let out = self.cluster_command(healthy, nodes, PROBE_TIMEOUT).await?;
            if out.success() {
                return Ok(());
            }
            if let Some(failure) = nodes.iter().find_map(|n| self.node_failure(&n.name)) {
                bail!("node {failure}");
            }
            if Instant::now() >= deadline {
                bail!(
                    "the cluster is not healthy (cluster.healthy: {}: {})",
                    out.status(PROBE_TIMEOUT),
                    out.tail(5)
                );
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }

    /// The `init` message of worker `worker`.
    fn init(&self, worker: usize, nodes: &[NodeInfo]) -> Map<String, Value> {
        let names = self.file.port_names();
        let nodes_json: Vec<Value> = nodes
            .iter()
            .map(|n| {
                let ports: Map<String, Value> = names
                    .iter()
                    .zip(n.addrs.iter())
                    .map(|(p, a)| (p.clone(), json!(a.port())))
                    .collect();
                json!({"id": n.id.0, "name": n.name, "ip": n.client_addr.ip().to_string(), "ports": ports})
            })
            .collect();
        let mut init = Map::new();
        init.insert("worker".into(), json!(worker));
        init.insert("home".into(), json!(nodes[worker % nodes.len()].name));
        init.insert("workload".into(), json!(self.workload.name()));
        init.insert(
            "op_timeout_ms".into(),
            json!(self.op_timeout.as_millis() as u64),
        );
        init.insert("nodes".into(), Value::Array(nodes_json));
        init.insert("params".into(), json!(self.params));
        init
    }

    /// `clients/worker-N.log`'s last lines (for a client that cannot start).
    fn client_log_tail(log: &Path) -> String {
        let text = std::fs::read(log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n  ")
    }
}

impl System for AdapterSystem {
    fn kind(&self) -> SystemKind {
        SystemKind::Adapter
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn supports_workload(&self, workload: WorkloadKind) -> Support {
        if self.file.workloads.iter().any(|w| w == workload.name()) {
            Support::Supported
        } else {
            Support::Unsupported(format!(
                "{} lists workloads = [{}]",
                self.file.path.display(),
                self.file.workloads.join(", ")
            ))
        }
    }

    fn fault_support(&self, kind: FaultKind) -> Support {
        if self.file.faults.contains(&kind) {
            Support::Supported
        } else {
            Support::Unsupported(format!(
                "{} does not list {} in its faults",
                self.file.path.display(),
                kind.as_str()
            ))
        }
    }

    fn ports(&self) -> Ports {
        Ports {
            count: self.file.node.ports.len(),
            client: 0,
            peer: 0,
        }
    }

    fn node_faults(&self) -> NodeFaults {
        NodeFaults {
            message_filter: false,
            own_clock: false,
            libfaketime: self.file.faults.contains(&FaultKind::Clock),
            // Cut by address, as before (a uid per node is etcd's way).
            binds_source_ip: true,
        }
    }

    fn local_program(&self) -> PathBuf {
        PathBuf::from("/bin/bash")
    }

    fn remote_program(&self) -> RemoteProgram {
        // Remote mode with an adapter is refused when the run is planned.
        RemoteProgram::Upload(self.faultline.clone())
    }

    fn process(&self, site: &NodeSite<'_>) -> ProcessSpec {
        let name = &site.node.name;
        let body = self.script(site).unwrap_or_else(|why| {
            format!(
                "echo {} >&2\nexit {RENDER_FAILED_STATUS}\n",
                shell_quote(&format!("faultline: {name}: cannot start: {why}"))
            )
        });
        let script = format!("echo \"faultline: {name}: starting (pid $$)\" >&2\n{body}");
        ProcessSpec {
            program: site.program.clone(),
            args: vec!["-c".into(), script],
            env: Vec::new(),
        }
    }

    fn await_leader<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        _bind_ip: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.await_ready(nodes, timeout))
    }

    fn await_serving<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        _bind_ip: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.await_ready(nodes, timeout))
    }

    fn leader<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        _bind_ip: Option<IpAddr>,
    ) -> BoxFuture<'a, Option<NodeId>> {
        Box::pin(async move {
            let template = self.file.primary.as_ref()?;
            let out = match self.cluster_command(template, nodes, PROBE_TIMEOUT).await {
                Ok(out) if out.success() => out,
                Ok(out) => {
                    tracing::warn!(
                        "cluster.primary: {}: {}",
                        out.status(PROBE_TIMEOUT),
                        out.tail(3)
                    );
                    return None;
                }
                Err(e) => {
                    tracing::warn!("cluster.primary: {e:#}");
                    return None;
                }
            };
            let named: Vec<(String, u32, Vec<std::net::SocketAddr>)> = nodes
                .iter()
                .map(|n| (n.name.clone(), n.id.0, n.addrs.clone()))
                .collect();
            node_named(&out.stdout, &named).map(NodeId)
        })
    }

    fn client(
        &self,
        worker: usize,
        nodes: &[NodeInfo],
        _bind_ip: Option<IpAddr>,
    ) -> anyhow::Result<Box<dyn Client>> {
        if nodes.is_empty() {
            bail!("a client needs at least one node");
        }
        let values = self.values_of(nodes, None);
        let command = self
            .file
            .client
            .render(&self.values(&values), None, Some(worker))?;
        let clients = self.run_dir.path().join("clients");
        std::fs::create_dir_all(&clients)
            .with_context(|| format!("creating {}", clients.display()))?;
        let log = clients.join(format!("worker-{worker}.log"));
        let mut client = AdapterClient::new(
            worker,
            ClientCommand {
                command,
                cwd: self.run_dir.path().to_path_buf(),
                log: log.clone(),
                init: self.init(worker, nodes),
            },
            self.replacements.clone(),
        );
        // The first client must start: a client that cannot is a broken
        // adapter, said now rather than as every operation failing.
        let started = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(client.open())
        });
        if let Err(fault) = started {
            bail!(
                "the client of worker {worker} ({}) {fault}; its stderr ({}):\n  {}",
                self.file.client.origin().field,
                log.display(),
                Self::client_log_tail(&log)
            );
        }
        Ok(Box::new(WorkerClient {
            client,
            process: worker as u64,
            concurrency: self.concurrency,
        }))
    }

    fn describe(&self) -> Value {
        json!({
            "adapter": self.file.path,
            "name": self.file.name,
            "params": self.params,
            "workloads": self.file.workloads,
            "faults": self.file.faults.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "ports": self.file.port_names(),
            "max_nodes": self.file.max_nodes,
            "isolation_levels": self.file.isolation.as_ref().map(|i| i.levels.iter().map(|l| l.name()).collect::<Vec<_>>()),
            "client": self.file.client.source(),
        })
    }

    fn closing_note(&self) -> Option<String> {
        let counts = self.replacements.lock().expect("counts lock").clone();
        let path = self.run_dir.path().join("clients.json");
        if let Ok(text) = serde_json::to_string_pretty(&counts) {
            if let Err(e) = std::fs::write(&path, text + "\n") {
                tracing::warn!("writing {}: {e}", path.display());
            }
        }
        counts.summary()
    }
}

/// One worker's client as the run loop holds it.
struct WorkerClient {
    client: AdapterClient,
    /// The history's process id, as the run loop counts it: a new one
    /// after every `info`.
    process: u64,
    concurrency: u64,
}

impl Client for WorkerClient {
    fn invoke<'a>(&'a mut self, call: &'a Call, timeout: Duration) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let request = serde_json::to_value(call).expect("a call serializes");
            let a = self.client.call(&request, self.process, timeout).await;
            if a.outcome == faultline_workloads::Outcome::Info {
                self.process += self.concurrency;
            }
            Answer {
                outcome: a.outcome,
                value: a.value,
                token: a.token,
                error: a.error,
                node: a.node,
            }
        })
    }
}

/// `text` as one single-quoted shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

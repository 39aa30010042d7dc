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
use super::template::{Key, NodeValues, Template, Values};
use crate::cluster::{procfs, NodeId, NodeInfo};
use crate::nemesis::FaultKind;
use crate::run::isolation::IsolationLevel;
use crate::system::{
    NodeFaults, NodeSite, Ports, ProcessSpec, RemoteFiles, RemoteProgram, Support, System,
    SystemKind,
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
    /// Remote mode: the hosts' folder (`--remote-dir`); None: local mode.
    remote_dir: Option<String>,
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
    /// Remote mode: the hosts' folder (`--remote-dir`); None: local mode.
    pub remote_dir: Option<String>,
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
            remote_dir: run.remote_dir,
        };
        // Remote mode asks the first host (System::remote_version): what
        // runs there is what is under test, and this machine may lack it.
        let local_version = system
            .remote_dir
            .is_none()
            .then(|| system.file.version.clone());
        if let Some(template) = local_version.flatten() {
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

    /// Where the adapter's directory and faultline are on a remote host.
    fn host_paths(&self) -> Option<(PathBuf, PathBuf)> {
        let layout = crate::remote::Layout::new(self.remote_dir.clone()?);
        Some((
            PathBuf::from(layout.adapter(&self.file.name)),
            PathBuf::from(layout.bin()),
        ))
    }

    /// Runs `f` with the values of a command that runs where the node
    /// does: this machine's in local mode, the host's paths in remote mode
    /// (`{{run_dir}}` is refused in those commands up front, see
    /// [`remote_refusal`]).
    fn with_node_values<R>(&self, nodes: &[NodeValues], f: impl FnOnce(&Values<'_>) -> R) -> R {
        let mut values = self.values(nodes);
        let host = self.host_paths();
        if let Some((adapter_dir, faultline)) = &host {
            values.adapter_dir = adapter_dir;
            values.faultline = faultline;
        }
        f(&values)
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
        let (setup, daemons) = self.with_node_values(&values, |values| {
            let render = |t: &Template| {
                t.render(values, Some(index), None)
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
            Ok::<_, String>((setup, daemons))
        })?;
        super::template::check_word(&site.data_dir)
            .map_err(|why| format!("the data directory {:?} {why}", site.data_dir))?;
        Ok(format!(
            "mkdir -p {dir} && cd {dir} || exit {RENDER_FAILED_STATUS}\n{}",
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

    /// The end of the message about a daemon that does not map the
    /// libfaketime preloaded into it (local and remote mode say the same).
    fn clock_deaf_tail(&self) -> String {
        format!(
            "does not map libfaketime, so clock faults would not reach it (a static binary, a Go program, \
             or LD_PRELOAD dropped); leave clock out of --nemesis, or out of {}'s faults",
            self.file.path.display()
        )
    }

    /// Why node `name`'s clock cannot be faulted although libfaketime was
    /// preloaded into it: a daemon that does not map it (a static binary, a
    /// Go program, one that dropped LD_PRELOAD). None when the node was not
    /// given libfaketime, or every daemon maps it.
    fn clock_deaf_daemon(&self, name: &str) -> Option<String> {
        // Remote nodes' processes are not in this machine's /proc: their
        // hosts run the same check (System::host_check).
        if self.remote_dir.is_some() {
            return None;
        }
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
                        "{name}: daemon {daemon} (pid {pid}) {}",
                        self.clock_deaf_tail()
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
        let (adapter_dir, faultline) = self
            .host_paths()
            .unwrap_or_else(|| (self.file.dir.clone(), self.faultline.clone()));
        let runs_faultline = self
            .file
            .host_templates()
            .iter()
            .any(|t| t.keys().any(|k| *k == Key::Faultline));
        RemoteProgram::Files(RemoteFiles {
            dir: self.file.dir.clone(),
            remote_dir: adapter_dir.display().to_string(),
            faultline: runs_faultline
                .then(|| (self.faultline.clone(), faultline.display().to_string())),
            requires: self.file.requires.clone(),
            program: "/bin/bash".to_string(),
        })
    }

    fn remote_ports(&self) -> Option<Vec<u16>> {
        Some(self.file.node.ports.iter().map(|(_, port)| *port).collect())
    }

    fn remote_install(&self, cluster: &[NodeInfo]) -> anyhow::Result<Option<String>> {
        let Some(install) = &self.file.install else {
            return Ok(None);
        };
        let values = self.values_of(cluster, None);
        let text = self.with_node_values(&values, |values| install.render(values, None, None))?;
        Ok(Some(text))
    }

    fn remote_version(&self, cluster: &[NodeInfo]) -> anyhow::Result<Option<String>> {
        let Some(version) = &self.file.version else {
            return Ok(None);
        };
        let values = self.values_of(cluster, None);
        let text = self.with_node_values(&values, |values| version.render(values, None, None))?;
        Ok(Some(text))
    }

    fn stop_command(&self, site: &NodeSite<'_>) -> Option<String> {
        let stop = self.file.node.stop.as_ref()?;
        let index = site.cluster.iter().position(|n| n.id == site.node.id)?;
        let values = self.values_of(site.cluster, Some((index, &site.data_dir)));
        match self.with_node_values(&values, |values| stop.render(values, Some(index), None)) {
            Ok(text) => Some(text),
            // Checked when the file was read; a value filled in now (a
            // param, a path) can still be refused: then signals stop it.
            Err(e) => {
                tracing::warn!("{}: {e}; stopping it by signals", site.node.name);
                None
            }
        }
    }

    fn host_check(&self, site: &NodeSite<'_>, log: &str) -> Option<String> {
        self.file
            .faults
            .contains(&FaultKind::Clock)
            .then(|| clock_check_script(&site.node.name, log, &self.clock_deaf_tail()))
    }

    fn log_files(&self, site: &NodeSite<'_>) -> Vec<String> {
        let Some(index) = site.cluster.iter().position(|n| n.id == site.node.id) else {
            return Vec::new();
        };
        let values = self.values_of(site.cluster, Some((index, &site.data_dir)));
        self.with_node_values(&values, |values| {
            self.file
                .node
                .logs
                .iter()
                .filter_map(|t| match t.render(values, Some(index), None) {
                    Ok(path) => Some(path),
                    Err(e) => {
                        tracing::warn!("{e}");
                        None
                    }
                })
                .collect()
        })
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

/// Shell: the check [`AdapterSystem::clock_deaf_daemon`] makes, run on a
/// remote node's host from its `log` there: when the node script of the
/// node's current incarnation has libfaketime in its `LD_PRELOAD`, prints
/// a line for every daemon it started that does not map it (`tail` ends
/// the line); prints nothing otherwise (also for a daemon already gone).
pub fn clock_check_script(name: &str, log: &str, tail: &str) -> String {
    let log = shell_quote(log);
    let starting = shell_quote(&format!("^faultline: {name}: starting (pid "));
    let daemon = shell_quote(&format!(
        "s/^faultline: {name}: daemon \\([^ ]*\\) started, pid \\([0-9]*\\)$/\\1 \\2/p"
    ));
    format!(
        "line=$(grep -n {starting} {log} | tail -n 1); [ -n \"$line\" ] || exit 0; \
         from=${{line%%:*}}; pid=$(printf '%s\\n' \"$line\" | sed 's/.*(pid \\([0-9]*\\)).*/\\1/'); \
         tr '\\0' '\\n' < /proc/\"$pid\"/environ 2>/dev/null | grep -q '^LD_PRELOAD=.*libfaketime' || exit 0; \
         tail -n +\"$from\" {log} | sed -n {daemon} | while read -r d p; do \
         [ -r /proc/\"$p\"/maps ] || continue; \
         grep -q libfaketime /proc/\"$p\"/maps 2>/dev/null || printf '%s: daemon %s (pid %s) %s\\n' {name} \"$d\" \"$p\" {tail}; \
         done; true",
        name = shell_quote(name),
        tail = shell_quote(tail),
    )
}

/// `text` as one single-quoted shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Why `file` cannot run in remote mode, if it cannot: a command that runs
/// on the hosts names `{{run_dir}}` (the run's directory is on this
/// machine), or `node.ready` (which runs here, probing the node from
/// outside) names `{{data_dir}}` (which is on the host). Checked before
/// anything starts; the message names the file, line and setting.
pub fn remote_refusal(file: &AdapterFile) -> Option<String> {
    for t in file.host_templates() {
        if t.keys().any(|k| *k == Key::RunDir) {
            let hosts = match t.origin().field.as_str() {
                "version" => "the first host",
                _ => "each host",
            };
            return Some(format!(
                "{}: {{{{run_dir}}}} is the run's directory on this machine, and in remote mode {} runs on {hosts}; \
                 use {{{{data_dir}}}} (the node's directory on its host) or {{{{adapter_dir}}}} (the adapter's files, uploaded)",
                t.origin(),
                t.origin().field
            ));
        }
    }
    if let Some(ready) = &file.node.ready {
        if ready.keys().any(|k| *k == Key::DataDir) {
            return Some(format!(
                "{}: in remote mode node.ready runs on this machine (it probes the node from outside), \
                 where the node's {{{{data_dir}}}} is not; probe its address and ports instead",
                ready.origin()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    /// Kills and reaps the test's processes, whatever fails.
    struct Reaped(Vec<Child>);

    impl Drop for Reaped {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// Waits until `pid` has exec'd (its /proc/PID/maps names `what`).
    fn mapped(pid: u32, what: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
            if maps.contains(what) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{pid} never mapped {what}");
    }

    #[test]
    fn the_hosts_clock_check_names_a_daemon_that_does_not_map_libfaketime() {
        // The script's environment names libfaketime (a path that need not
        // exist: ld.so skips it); one daemon maps a file whose name holds
        // "libfaketime", the other does not.
        let dir = tempfile::tempdir().expect("tempdir");
        let mapping = dir.path().join("libfaketime-sleep");
        std::fs::copy("/bin/sleep", &mapping).expect("copy sleep");
        let spawn = |program: &Path, preload: bool| {
            let mut cmd = Command::new(program);
            cmd.arg("30");
            if preload {
                cmd.env("LD_PRELOAD", "/nonexistent/faketime/libfaketime.so.1");
            }
            cmd.stderr(std::process::Stdio::null())
                .spawn()
                .expect("sleep runs")
        };
        let mut procs = Reaped(Vec::new());
        procs.0.push(spawn(Path::new("/bin/sleep"), true));
        procs.0.push(spawn(&mapping, false));
        procs.0.push(spawn(Path::new("/bin/sleep"), false));
        let [script, good, deaf] = [0, 1, 2].map(|i| procs.0[i].id());
        mapped(good, "libfaketime-sleep");
        mapped(deaf, "sleep");
        let log = dir.path().join("node.log");
        // An earlier incarnation's daemons are not this one's.
        std::fs::write(
            &log,
            format!(
                "faultline: n1: starting (pid 1)\nfaultline: n1: daemon old started, pid {deaf}\n\
                 faultline: n1: starting (pid {script})\nfaultline: n1: daemon good started, pid {good}\n\
                 faultline: n1: daemon deaf started, pid {deaf}\nfaultline: n1: daemon gone started, pid 999999999\n"
            ),
        )
        .expect("log");
        let run = |text: &str| {
            let out = Command::new("/bin/sh")
                .arg("-c")
                .arg(text)
                .output()
                .expect("sh runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let said = run(&clock_check_script(
            "n1",
            log.to_str().expect("utf-8"),
            "does not map it",
        ));
        assert_eq!(
            said,
            format!("n1: daemon deaf (pid {deaf}) does not map it\n")
        );
        // A node script without libfaketime preloaded: nothing to check.
        let text = std::fs::read_to_string(&log).expect("log");
        std::fs::write(
            &log,
            text.replace(&format!("(pid {script})"), &format!("(pid {deaf})")),
        )
        .expect("log");
        let said = run(&clock_check_script("n1", log.to_str().expect("utf-8"), "x"));
        assert_eq!(said, "");
    }
}

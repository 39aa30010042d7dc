//! [`Cluster`] over SSH hosts: one node per host, each listening on its
//! host's address (the system's ports from `--node-port` up), running
//! whatever [`System`] it is given.
//!
//! Mechanisms: partitions and loss by iptables rules on each host (by peer
//! address, so the controller's clients and SSH are never cut), latency by
//! tc netem on the packets to peers, kill and pause by signals to the
//! process group of the node's pidfile, clock offset by the node's
//! libfaketime timestamp file. An adapter (`RemoteProgram::Files`) gets its
//! directory uploaded and its install run first (remote/files.rs), its
//! ports from its file, and its `node.logs` fetched with the node's log.
//! With `--auth`, the run's token file goes to each host (mode 0600, in the
//! run's folder) and the nodes read it there.
//! Every call that touches several hosts works them in parallel.
//!
//! Guarantees: `heal_all` retries hosts that are unreachable for a while
//! (within [`HEAL_BUDGET`]); `teardown` heals, stops every node, and
//! downloads every node's log into the run's store, even after a failed
//! run, and is idempotent.

use super::args::RemotePlan;
use super::daemon::{self, DaemonSpec, ProcState, StopOutcome};
use super::deploy::{Deployed, Need};
use super::remote_hosts::RemoteHosts;
use crate::cluster::{ClockFault, Cluster, Cut, Mechanism, Mechanisms, NodeId, NodeInfo};
use crate::nemesis::FaultKind;
use crate::run::audit;
use crate::system::{NodeSite, RemoteProgram, Support, System};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long heal keeps retrying one unreachable host.
pub const HEAL_BUDGET: Duration = Duration::from_secs(60);
/// How long a node gets to answer on its port after start.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an adapter's `version` may take on a host.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// How to build a remote cluster.
#[derive(Clone)]
pub struct RemoteConfig {
    /// The run's ledger: each host is recorded in it before the run makes
    /// anything there, and everything made there carries its run id.
    pub ledger: crate::ledger::Ledger,
    pub plan: RemotePlan,
    /// What runs on the nodes.
    pub system: Arc<dyn System>,
    /// Where each node's log goes in the store (one per host).
    pub logs: Vec<PathBuf>,
    /// Tools the chosen faults need (checked on every host before any node starts).
    pub needs: Vec<Need>,
}

/// The tools the chosen nemesis kinds need on every host.
pub fn needs_for(nemesis: &[FaultKind]) -> Vec<Need> {
    let mut needs = Vec::new();
    if nemesis.contains(&FaultKind::Partition) || nemesis.contains(&FaultKind::Loss) {
        needs.push(Need::Iptables);
    }
    if nemesis.contains(&FaultKind::Latency) {
        needs.push(Need::Tc);
    }
    if nemesis.contains(&FaultKind::Clock) {
        needs.push(Need::Faketime);
    }
    needs
}

/// Each kind of fault's mechanism on SSH hosts running `system`, and why
/// the unsupported ones are.
fn remote_mechanisms(system: &dyn System) -> (Mechanisms, BTreeMap<FaultKind, String>) {
    let mut unsupported = BTreeMap::new();
    let clock = if system.node_faults().libfaketime {
        Mechanism::Libfaketime
    } else {
        unsupported.insert(
            FaultKind::Clock,
            format!("{} does not follow libfaketime", system.kind()),
        );
        Mechanism::Unsupported
    };
    let mut mechanisms = Mechanisms {
        partition: Mechanism::Iptables,
        loss: Mechanism::Iptables,
        latency: Mechanism::Netem,
        clock,
        kill: Mechanism::Signal,
        pause: Mechanism::Signal,
        membership: Mechanism::Admin,
        slow_reader: Mechanism::Unsupported,
        impostor: Mechanism::ImpostorConnections,
    };
    unsupported.insert(
        FaultKind::SlowReader,
        "the slow-reader fault reads the node's memory from this machine's /proc; \
         it is not built for SSH hosts yet (run it in local mode)"
            .to_string(),
    );
    for kind in FaultKind::ALL {
        if let Support::Unsupported(why) = system.fault_support(kind) {
            mechanisms.set(kind, Mechanism::Unsupported);
            unsupported.insert(kind, why);
        }
    }
    (mechanisms, unsupported)
}

pub struct RemoteCluster {
    hosts: RemoteHosts,
    config: RemoteConfig,
    /// The program every node runs, on the hosts.
    program: String,
    nodes: Vec<NodeInfo>,
    deployed: Vec<Deployed>,
    mechanisms: Mechanisms,
    unsupported: BTreeMap<FaultKind, String>,
    prepare_ms: u64,
    /// What each host's program said to `--version`, when the hosts bring
    /// the program themselves (a package): (host, version).
    host_versions: Vec<(String, String)>,
    /// When each node's daemon was last started: libfaketime's rate counts
    /// from then ([`ClockFault::faketime_spec`]).
    started: Mutex<Vec<Option<Instant>>>,
    torn_down: Mutex<bool>,
    /// `--tls`: each host holds its node's TLS files ([`Layout::tls`]).
    tls: bool,
    /// Each host's ledger entry, released once the run has removed what it
    /// made there.
    held: Mutex<Vec<Option<crate::ledger::Held>>>,
}

/// The version under test from what the hosts said: one version when they
/// agree, every host's otherwise (so a mixed cluster is never reported as
/// one version); None when no host was asked.
fn host_version(said: &[(String, String)]) -> Option<String> {
    let first = &said.first()?.1;
    if said.iter().all(|(_, v)| v == first) {
        Some(first.clone())
    } else {
        Some(
            said.iter()
                .map(|(host, v)| format!("{v} on {host}"))
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// Runs an adapter's `version` command on host `s` (as root, in the
/// adapter's folder there): (host, its first line). An error names the
/// host, the command and how it failed.
fn remote_version(
    s: &crate::ssh::Session,
    files: &crate::system::RemoteFiles,
    command: &str,
) -> anyhow::Result<(String, String)> {
    let script = format!(
        "cd {} && {command}",
        crate::ssh::sh_quote(&files.remote_dir)
    );
    let out = s
        .exec_root(&script, VERSION_TIMEOUT)
        .with_context(|| format!("{}: running the adapter's version ({command})", s.name()))?;
    let said = format!("{}\n{}", out.stdout, out.stderr);
    if !out.success() {
        let lines: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
        bail!(
            "{}: the adapter's version ({command}) exited with status {}: {}",
            s.name(),
            out.status,
            lines[lines.len().saturating_sub(5)..].join(" | ")
        );
    }
    let first = out
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string();
    Ok((s.name(), first))
}

impl RemoteCluster {
    /// Connects to every host, checks the tools, deploys the executable.
    pub fn new(config: RemoteConfig) -> anyhow::Result<RemoteCluster> {
        let n = config.plan.hosts.len();
        assert_eq!(config.logs.len(), n, "one log per host");
        let ports = config.system.ports();
        let port = |k: usize| -> anyhow::Result<u16> {
            u16::try_from(usize::from(config.plan.node_port) + k).map_err(|_| {
                crate::exit::bad_input(format!(
                    "--node-port {}: {} needs {} ports from there",
                    config.plan.node_port,
                    config.system.kind(),
                    ports.count
                ))
            })
        };
        // A system that fixes its ports (an adapter's node.ports) keeps them.
        let all_ports = match config.system.remote_ports() {
            Some(fixed) => fixed,
            None => (0..ports.count)
                .map(port)
                .collect::<anyhow::Result<Vec<u16>>>()?,
        };
        let (client_port, peer_port) = (all_ports[ports.client], all_ports[ports.peer]);
        let mut nodes = Vec::with_capacity(n);
        for (i, h) in config.plan.hosts.iter().enumerate() {
            let ip = (h.host.as_str(), config.plan.node_port)
                .to_socket_addrs()
                .with_context(|| format!("resolving host {h}"))?
                .find(SocketAddr::is_ipv4)
                .with_context(|| format!("host {h} has no IPv4 address"))?
                .ip();
            let id = NodeId(i as u32 + 1);
            nodes.push(NodeInfo {
                id,
                name: id.name(),
                client_addr: SocketAddr::new(ip, client_port),
                peer_addr: SocketAddr::new(ip, peer_port),
                addrs: all_ports.iter().map(|&p| SocketAddr::new(ip, p)).collect(),
            });
        }
        let (mechanisms, unsupported) = remote_mechanisms(&*config.system);
        let mut hosts = RemoteHosts::new(&config.plan);
        hosts.set_run_id(config.ledger.run_id());
        hosts.set_addresses(
            nodes
                .iter()
                .map(|n| n.client_addr.ip().to_string())
                .collect(),
        );
        let start = Instant::now();
        // An adapter's `version`, asked of the first host.
        let mut adapter_version = None;
        let (program, deployed) = match config.system.remote_program() {
            RemoteProgram::Upload(local) => {
                let name = local
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "node".into());
                // faultline's node keeps its usual place.
                let remote = if config.system.kind() == crate::system::SystemKind::Faultline {
                    hosts.layout.bin()
                } else {
                    hosts.layout.program(&name)
                };
                let deployed = hosts.prepare_with(&config.needs, Some((&local, &remote)))?;
                (remote, deployed)
            }
            RemoteProgram::Package { program, .. } => {
                let mut needs = config.needs.clone();
                needs.push(Need::Etcd);
                (program.to_string(), hosts.prepare_with(&needs, None)?)
            }
            RemoteProgram::Files(files) => {
                let faultline = files
                    .faultline
                    .as_ref()
                    .map(|(local, remote)| (local.as_path(), remote.as_str()));
                let deployed = hosts.prepare_with(&config.needs, faultline)?;
                super::files::upload(&hosts.hosts, &files)?;
                let install = config.system.remote_install(&nodes)?;
                let ran = super::files::ensure_requires(&hosts.hosts, &files, install.as_deref())?;
                for (i, ran) in ran.into_iter().enumerate() {
                    if ran {
                        tracing::info!(host = %hosts.session(i).name(), "ran the adapter's install");
                    }
                }
                if let Some(version) = config.system.remote_version(&nodes)? {
                    let said = remote_version(hosts.session(0), &files, &version)?;
                    // A version that prints nothing leaves the adapter's name.
                    adapter_version = Some(said).filter(|(_, v)| !v.is_empty());
                }
                (files.program.clone(), deployed)
            }
        };
        // What the hosts run is the version under test: a package's
        // program says it on each host (an uploaded one already did).
        let mut host_versions: Vec<(String, String)> = match config.system.remote_program() {
            RemoteProgram::Package { .. } => {
                let said = hosts
                    .hosts
                    .each(|_, s| crate::remote::deploy::check_runs(s, &program));
                crate::ssh::all_ok(said)
                    .map_err(anyhow::Error::new)
                    .with_context(|| format!("asking the hosts' {program} for its version"))?
                    .into_iter()
                    .enumerate()
                    .map(|(i, line)| {
                        let version = config.system.version_from_output(&line).unwrap_or(line);
                        (hosts.session(i).name(), version)
                    })
                    .collect()
            }
            RemoteProgram::Upload(_) | RemoteProgram::Files(_) => Vec::new(),
        };
        host_versions.extend(adapter_version);
        let prepare_ms = start.elapsed().as_millis() as u64;
        for d in &deployed {
            tracing::info!(host = %d.host, upload = ?d.upload, ms = d.elapsed.as_millis() as u64, "deployed");
        }
        // Recorded before the run makes anything on a host, so a heal
        // reaches every host where a run that died left something.
        let mut held = Vec::with_capacity(n);
        for (i, node) in nodes.iter().enumerate() {
            let entry = config
                .ledger
                .record(crate::ledger::Resource::RemoteHost {
                    login: crate::ledger::RemoteLogin::of(hosts.session(i)),
                    remote_dir: hosts.layout.dir.clone(),
                    nodes: vec![node.name.clone()],
                })
                .context("recording the host in the run's ledger")?;
            held.push(Some(entry));
        }
        let fresh = hosts.hosts.each(|i, _| hosts.reset(i, &nodes[i].name));
        crate::ssh::all_ok(fresh)
            .map_err(anyhow::Error::new)
            .context("clearing nodes left from an earlier run")?;
        // --auth: the run's token, as a private file in the run's folder on
        // each host (by SFTP: no command line carries it).
        if let Some(local) = config.system.auth_token_file() {
            let remote = hosts.layout.auth_token(hosts.run_id());
            let sent = hosts.hosts.each(|_, s| s.upload_private(local, &remote));
            crate::ssh::all_ok(sent)
                .map_err(anyhow::Error::new)
                .context("copying the run's auth token to the hosts")?;
        }
        // --tls: each node's certificate and key and the run's CA, as
        // private files in the run's folder on its host (only its own key).
        let mut tls = Vec::with_capacity(n);
        for node in &nodes {
            tls.push(config.system.node_tls_files(node)?);
        }
        if tls.iter().any(Option::is_some) {
            let remote = hosts.layout.tls(hosts.run_id());
            let sent = hosts.hosts.each(|i, s| {
                let Some(files) = &tls[i] else {
                    return Ok(());
                };
                s.upload_private(&files.cert, &remote.cert)?;
                s.upload_private(&files.key, &remote.key)?;
                s.upload_private(&files.ca, &remote.ca)
            });
            crate::ssh::all_ok(sent)
                .map_err(anyhow::Error::new)
                .context("copying the run's TLS files to the hosts")?;
        }
        if config.needs.contains(&Need::Faketime) {
            for i in 0..n {
                if hosts.faketime_lib(i).is_none() {
                    bail!(
                        "{}: libfaketime was checked but not found",
                        hosts.session(i).name()
                    );
                }
            }
        }
        Ok(RemoteCluster {
            hosts,
            config,
            program,
            nodes,
            deployed,
            mechanisms,
            unsupported,
            prepare_ms,
            host_versions,
            started: Mutex::new(vec![None; n]),
            torn_down: Mutex::new(false),
            tls: tls.iter().any(Option::is_some),
            held: Mutex::new(held),
        })
    }

    /// The per-host deploy results (for reports and benchmarks).
    pub fn deployed(&self) -> &[Deployed] {
        &self.deployed
    }

    fn index(&self, node: NodeId) -> anyhow::Result<usize> {
        let i = node.0 as usize;
        if i == 0 || i > self.nodes.len() {
            bail!("no node {node} in a cluster of {}", self.nodes.len());
        }
        Ok(i - 1)
    }

    fn spec(&self, i: usize) -> DaemonSpec {
        let info = &self.nodes[i];
        let process = self.config.system.process(&self.site(i));
        // The mark a heal finds the run's daemons (and their children) by.
        let mut env = process.env;
        env.push((
            crate::ledger::RUN_ID_ENV.to_string(),
            self.hosts.run_id().to_string(),
        ));
        DaemonSpec {
            name: info.name.clone(),
            program: process.program,
            args: process.args,
            env,
            faketime_lib: if self.config.needs.contains(&Need::Faketime) {
                self.hosts.faketime_lib(i)
            } else {
                None
            },
            fake_monotonic: false,
        }
    }

    fn node_names(&self) -> Vec<Vec<String>> {
        self.nodes.iter().map(|n| vec![n.name.clone()]).collect()
    }

    fn wait_ready(&self, i: usize) -> anyhow::Result<()> {
        let addr = self.nodes[i].client_addr;
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut next_look = Instant::now() + Duration::from_secs(1);
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    bail!(
                        "{} ({}) did not answer on {addr} within {READY_TIMEOUT:?}: {e}",
                        self.nodes[i].name,
                        self.hosts.session(i).name()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
            // A node that exited will never answer: say so now, with its
            // log's last lines, rather than at the timeout.
            if Instant::now() >= next_look {
                next_look = Instant::now() + Duration::from_secs(1);
                let name = &self.nodes[i].name;
                if let Ok(ProcState::Gone) = self.hosts.state(i, name) {
                    let tail = self
                        .hosts
                        .session(i)
                        .run_root(&format!(
                            "tail -n 12 {} 2>/dev/null; true",
                            crate::ssh::sh_quote(&self.hosts.layout.log(name))
                        ))
                        .unwrap_or_default();
                    bail!(
                        "{name} ({}) exited before it answered on {addr}; the last lines of its log ({}):\n  {}",
                        self.hosts.session(i).name(),
                        self.hosts.layout.log(name),
                        tail.trim_end().replace('\n', "\n  ")
                    );
                }
            }
        }
    }

    /// Node `i`'s [`NodeSite`].
    fn site(&self, i: usize) -> NodeSite<'_> {
        let layout = &self.hosts.layout;
        NodeSite {
            node: &self.nodes[i],
            cluster: &self.nodes,
            data_dir: format!("{}/data", layout.node_dir(&self.nodes[i].name)),
            program: self.program.clone(),
            auth_token_file: self
                .config
                .system
                .auth_token_file()
                .map(|_| layout.auth_token(self.hosts.run_id())),
            tls: self.tls.then(|| layout.tls(self.hosts.run_id())),
        }
    }

    /// Runs the system's check of a started node on its host
    /// ([`System::host_check`]): an error naming the node and host when it
    /// says the node cannot be run as planned.
    fn check_on_host(&self, i: usize) -> anyhow::Result<()> {
        let name = &self.nodes[i].name;
        let log = self.hosts.layout.log(name);
        let Some(script) = self.config.system.host_check(&self.site(i), &log) else {
            return Ok(());
        };
        let host = self.hosts.session(i).name();
        let said = self
            .hosts
            .session(i)
            .run_root(&script)
            .with_context(|| format!("checking node {name} on {host}"))?;
        if !said.trim().is_empty() {
            bail!("node {} (on {host})", said.trim());
        }
        Ok(())
    }

    /// Runs every running node's own stop command ([`System::stop_command`])
    /// on its host, all at once; says in the run's output which failed,
    /// timed out or left its node running. The caller's stop (SIGTERM,
    /// then SIGKILL) ends what is left.
    fn run_stop_commands(&self) {
        let results = self.hosts.hosts.each(|i, s| {
            let site = self.site(i);
            let Some(command) = self.config.system.stop_command(&site) else {
                return Ok(None);
            };
            daemon::stop_command(
                s,
                &self.hosts.layout,
                &self.nodes[i].name,
                &site.data_dir,
                &command,
                crate::cluster::NODE_STOP_TIMEOUT,
                crate::cluster::NODE_STOP_GRACE,
            )
            .map(Some)
        });
        for (i, result) in results.into_iter().enumerate() {
            let name = &self.nodes[i].name;
            let host = self.hosts.session(i).name();
            let why = match result {
                Ok(None | Some(StopOutcome::Gone | StopOutcome::Stopped)) => continue,
                Ok(Some(StopOutcome::StillRunning)) => format!(
                    "succeeded but the node still runs {:?} later",
                    crate::cluster::NODE_STOP_GRACE
                ),
                Ok(Some(StopOutcome::Failed(code))) => format!("failed (exit status {code})"),
                Ok(Some(StopOutcome::TimedOut)) => {
                    format!("timed out after {:?}", crate::cluster::NODE_STOP_TIMEOUT)
                }
                Err(e) => format!("could not run: {e}"),
            };
            tracing::warn!(
                "{name} (on {host}): node.stop {why} (its output is in the node's log); stopping it by signals"
            );
        }
    }

    /// Fetches node `i`'s other log files (the system's
    /// [`System::log_files`]) into `nodes/<name>/` in the store; a file
    /// that is not there is logged, not an error (a node may not have
    /// written it yet).
    fn fetch_log_files(&self, i: usize) {
        let info = &self.nodes[i];
        let files = self.config.system.log_files(&self.site(i));
        let Some(dir) = self.config.logs[i].parent().map(|d| d.join(&info.name)) else {
            return;
        };
        for remote in files {
            let name = std::path::Path::new(&remote)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "log".into());
            let _ = std::fs::create_dir_all(&dir);
            if let Err(e) = self.hosts.session(i).download(&remote, &dir.join(&name)) {
                tracing::warn!(node = %info.name, "fetching {remote}: {e}");
            }
        }
    }

    /// Fetches node `i`'s audit log (the system's [`System::audit_log`])
    /// into the store's `nodes/<name>/audit.jsonl`, at most
    /// [`audit::MAX_FETCH_BYTES`] of it (a longer one is cut after a whole
    /// line, with a note); a node without one is skipped, a failure logged.
    fn fetch_audit_log(&self, i: usize) {
        let info = &self.nodes[i];
        let Some(remote) = self.config.system.audit_log(&self.site(i)) else {
            return;
        };
        let Some(dir) = self.config.logs[i].parent().map(|d| d.join(&info.name)) else {
            return;
        };
        let local = dir.join(faultline_results::audit::AUDIT_FILE);
        let _ = std::fs::create_dir_all(&dir);
        match self
            .hosts
            .session(i)
            .download_prefix(&remote, &local, audit::MAX_FETCH_BYTES)
        {
            Ok(None) => tracing::debug!(node = %info.name, "no audit log at {remote}"),
            Ok(Some((copied, file_bytes))) if copied < file_bytes => {
                if let Err(e) = audit::mark_cut(&local, file_bytes) {
                    tracing::warn!(node = %info.name, "cutting {}: {e}", local.display());
                }
            }
            Ok(Some(_)) => {}
            Err(e) => tracing::warn!(node = %info.name, "fetching {remote}: {e}"),
        }
    }

    /// Releases every host's ledger entry: the run made nothing there that
    /// is still its to undo.
    fn release_hosts(&self) {
        let mut held = self.held.lock().expect("held lock poisoned");
        for entry in held.iter_mut() {
            if let Some(entry) = entry.take() {
                if let Err(e) = entry.release() {
                    tracing::warn!("releasing a host in the run's ledger: {e:#}");
                }
            }
        }
    }

    fn host_err(e: crate::ssh::HostErrors) -> anyhow::Error {
        anyhow::Error::new(e)
    }
}

impl Cluster for RemoteCluster {
    fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    fn mechanisms(&self) -> Mechanisms {
        self.mechanisms
    }

    fn unsupported(&self, kind: FaultKind) -> Option<String> {
        self.unsupported.get(&kind).cloned()
    }

    fn start_all(&self) -> anyhow::Result<()> {
        let results = self.hosts.hosts.each(|i, _| -> anyhow::Result<()> {
            self.start(self.nodes[i].id)?;
            self.wait_ready(i)?;
            self.check_on_host(i)
        });
        let errors: Vec<String> = results
            .into_iter()
            .filter_map(|r| r.err().map(|e| format!("{e:#}")))
            .collect();
        if !errors.is_empty() {
            bail!("starting the nodes failed:\n  {}", errors.join("\n  "));
        }
        Ok(())
    }

    fn start(&self, node: NodeId) -> anyhow::Result<()> {
        let i = self.index(node)?;
        match self.hosts.start(i, &self.spec(i)) {
            Ok(pid) => {
                tracing::info!(node = %node, host = %self.hosts.session(i).name(), pid, "node started");
                self.started.lock().expect("start times lock poisoned")[i] = Some(Instant::now());
                Ok(())
            }
            // Exit 3: already running, which is what was asked for.
            Err(crate::ssh::SshError::Command { status: 3, .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("starting {node}")),
        }
    }

    fn kill(&self, node: NodeId) -> anyhow::Result<()> {
        let i = self.index(node)?;
        self.hosts
            .kill(i, &self.nodes[i].name)
            .with_context(|| format!("killing {node}"))?;
        Ok(())
    }

    fn pause(&self, node: NodeId) -> anyhow::Result<()> {
        let i = self.index(node)?;
        self.hosts
            .pause(i, &self.nodes[i].name)
            .with_context(|| format!("pausing {node}"))?;
        Ok(())
    }

    fn resume(&self, node: NodeId) -> anyhow::Result<()> {
        let i = self.index(node)?;
        self.hosts
            .resume(i, &self.nodes[i].name)
            .with_context(|| format!("resuming {node}"))?;
        Ok(())
    }

    fn is_running(&self, node: NodeId) -> bool {
        let Ok(i) = self.index(node) else {
            return false;
        };
        matches!(
            self.hosts.state(i, &self.nodes[i].name),
            Ok(ProcState::Running | ProcState::Stopped)
        )
    }

    fn partition(&self, cuts: &[Cut]) -> anyhow::Result<()> {
        let mut drop_from: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for &(a, b) in cuts {
            let (ia, ib) = (self.index(a)?, self.index(b)?);
            drop_from[ia].push(ib);
            drop_from[ib].push(ia);
        }
        self.hosts
            .partition_all(&drop_from)
            .map_err(Self::host_err)
            .context("partition")
    }

    fn set_loss(&self, probability: f64) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&probability) {
            bail!("loss probability {probability} is not in [0, 1]");
        }
        let n = self.nodes.len();
        let results = self.hosts.hosts.each(|i, _| {
            let peers: Vec<usize> = if probability > 0.0 {
                (0..n).filter(|&j| j != i).collect()
            } else {
                Vec::new()
            };
            self.hosts.loss(i, &peers, probability)
        });
        crate::ssh::all_ok(results)
            .map(|_| ())
            .map_err(Self::host_err)
            .context("packet loss")
    }

    fn set_latency(&self, delay_ms: u64) -> anyhow::Result<()> {
        let n = self.nodes.len();
        let delay_ms = u32::try_from(delay_ms).context("latency too large")?;
        let results = self.hosts.hosts.each(|i, _| {
            if delay_ms == 0 {
                self.hosts.latency_off(i)
            } else {
                let peers: Vec<usize> = (0..n).filter(|&j| j != i).collect();
                self.hosts.latency(i, &peers, delay_ms, 0)
            }
        });
        crate::ssh::all_ok(results)
            .map(|_| ())
            .map_err(Self::host_err)
            .context("latency")
    }

    fn set_clock(&self, node: NodeId, fault: ClockFault) -> anyhow::Result<()> {
        let i = self.index(node)?;
        if !self.config.needs.contains(&Need::Faketime) {
            bail!("clock faults were not planned for this run (libfaketime is preloaded only when the clock nemesis is on)");
        }
        let age = self.started.lock().expect("start times lock poisoned")[i]
            .map_or(Duration::ZERO, |at| at.elapsed());
        self.hosts
            .clock(i, &self.nodes[i].name, &fault.faketime_spec(age))
            .with_context(|| format!("clock of {node}"))
    }

    fn heal_all(&self) -> anyhow::Result<()> {
        self.hosts
            .heal_all(&self.node_names(), HEAL_BUDGET)
            .map_err(Self::host_err)
            .context("healing every fault")
    }

    fn teardown(&self) -> anyhow::Result<()> {
        let mut done = self
            .torn_down
            .lock()
            .expect("teardown lock is never poisoned");
        if *done {
            return Ok(());
        }
        let names = self.node_names();
        let mut errors = Vec::new();
        if let Err(e) = self.hosts.heal_all(&names, HEAL_BUDGET) {
            errors.push(format!("heal: {e}"));
        }
        self.run_stop_commands();
        if let Err(e) = self.hosts.stop_all(&names, Duration::from_secs(5)) {
            errors.push(format!("stop: {e}"));
        }
        if errors.is_empty() {
            match self.hosts.remove_run_dirs() {
                // Nothing of the run is left on the hosts.
                Ok(()) => self.release_hosts(),
                Err(e) => errors.push(format!("removing the run's folder: {e}")),
            }
        }
        // Logs last, so they hold everything the nodes wrote.
        let results = self.hosts.hosts.each(|i, s| {
            let local = &self.config.logs[i];
            if let Some(dir) = local.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            self.fetch_log_files(i);
            self.fetch_audit_log(i);
            s.download(&self.hosts.layout.log(&self.nodes[i].name), local)
        });
        if let Err(e) = crate::ssh::all_ok(results) {
            errors.push(format!("fetching logs: {e}"));
        }
        for s in self.hosts.hosts.sessions() {
            s.disconnect();
        }
        if errors.is_empty() {
            *done = true;
        } else {
            bail!("remote teardown: {}", errors.join("; "));
        }
        Ok(())
    }

    fn leave_running(&self) -> anyhow::Result<String> {
        let mut done = self
            .torn_down
            .lock()
            .expect("teardown lock is never poisoned");
        if *done {
            bail!("the cluster is already torn down");
        }
        self.heal_all()?;
        // The nodes are left on purpose: no longer the run's to undo.
        self.release_hosts();
        if let Err(e) = self.config.ledger.close() {
            tracing::warn!("closing the run's ledger: {e:#}");
        }
        // The logs as they are now; the nodes go on writing theirs.
        let results = self.hosts.hosts.each(|i, s| {
            let local = &self.config.logs[i];
            if let Some(dir) = local.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            s.download(&self.hosts.layout.log(&self.nodes[i].name), local)
        });
        if let Err(e) = crate::ssh::all_ok(results) {
            tracing::warn!("fetching the nodes' logs so far: {e}");
        }
        let mut out = String::new();
        let ssh = &self.config.plan.ssh;
        for (i, s) in self.hosts.hosts.sessions().iter().enumerate() {
            let node = &self.nodes[i];
            let addr = &self.config.plan.hosts[i];
            let sudo = if ssh.needs_sudo(addr) { "sudo -n " } else { "" };
            // The pidfile names the leader of the node's process group:
            // the signal goes to the whole group (an adapter's daemons).
            out.push_str(&format!(
                "  {}: client {} on {}; stop it: ssh -p {} {}@{} '{sudo}kill -TERM -$(cat {})'\n",
                node.name,
                node.client_addr,
                s.name(),
                addr.port,
                ssh.user_for(addr),
                addr.host,
                self.hosts.layout.pidfile(&node.name)
            ));
            s.disconnect();
        }
        *done = true;
        Ok(out)
    }

    fn system_version(&self) -> Option<String> {
        host_version(&self.host_versions)
    }

    fn describe(&self) -> serde_json::Value {
        let plan = &self.config.plan;
        serde_json::json!({
            "kind": "ssh",
            "system": self.config.system.kind(),
            "hosts": plan.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            "ssh_user": plan.ssh.user,
            "known_hosts": plan.ssh.known_hosts,
            "remote_dir": plan.remote_dir,
            "node_bin": plan.node_bin,
            "prepare_ms": self.prepare_ms,
            "host_versions": self.host_versions.iter().map(|(host, v)| serde_json::json!({
                "host": host,
                "version": v,
            })).collect::<Vec<_>>(),
            "deployed": self.deployed.iter().map(|d| serde_json::json!({
                "host": d.host,
                "sent_bytes": match d.upload { crate::ssh::Upload::Sent { bytes } => bytes, crate::ssh::Upload::AlreadyThere => 0 },
                "ms": d.elapsed.as_millis() as u64,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_agree_give_one_version_and_a_mixed_cluster_names_each() {
        let said = |vs: &[&str]| -> Vec<(String, String)> {
            vs.iter()
                .enumerate()
                .map(|(i, v)| (format!("root@10.77.0.{}", i + 11), v.to_string()))
                .collect()
        };
        assert_eq!(host_version(&[]), None);
        assert_eq!(
            host_version(&said(&["etcd 3.4.23", "etcd 3.4.23"])).as_deref(),
            Some("etcd 3.4.23")
        );
        assert_eq!(
            host_version(&said(&["etcd 3.4.23", "etcd 3.5.9"])).as_deref(),
            Some("etcd 3.4.23 on root@10.77.0.11, etcd 3.5.9 on root@10.77.0.12")
        );
    }

    #[test]
    fn needs_follow_the_nemesis() {
        use FaultKind::*;
        assert_eq!(needs_for(&[Kill, Pause]), vec![]);
        assert_eq!(needs_for(&[Partition, Loss]), vec![Need::Iptables]);
        assert_eq!(
            needs_for(&[Clock, Latency, Partition]),
            vec![Need::Iptables, Need::Tc, Need::Faketime]
        );
    }
}

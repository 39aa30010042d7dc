//! The hosts of a remote run and every operation on them: prepare (tools,
//! deploy), daemons, faults, heal, log fetch. One node per host, named by
//! the caller. This is what the cluster abstraction's SSH implementation
//! drives; it knows nothing about the node's protocol.
//!
//! Guarantees: operations on several hosts run in parallel and report every
//! host that failed; [`RemoteHosts::heal_all`] keeps retrying a host that is
//! unreachable (reconnecting with back-off) until its budget is spent, so a
//! host that was cut off for a while still gets healed.

use super::args::RemotePlan;
use super::daemon::{self, DaemonSpec, ProcState};
use super::deploy::{self, Deployed, HostTools, Need};
use super::faults;
use super::layout::Layout;
use crate::ssh::{all_ok, HostErrors, Hosts, Session, SshError};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct RemoteHosts {
    pub hosts: Hosts,
    pub layout: Layout,
    pub node_bin: PathBuf,
    pub install_deps: bool,
    /// Filled by [`RemoteHosts::prepare`].
    pub tools: Vec<HostTools>,
    /// The hosts' IP addresses as peers see them (set from resolved node
    /// addresses); host names as given when not set.
    peer_ips: Option<Vec<String>>,
    /// The run whose chains, daemons and files these are (see
    /// [`super::leftovers`]).
    run_id: String,
}

impl RemoteHosts {
    /// The hosts of `plan`, for a fresh run id (a run that has its own
    /// sets it: [`RemoteHosts::set_run_id`]).
    pub fn new(plan: &RemotePlan) -> RemoteHosts {
        let run_id = crate::ledger::new_run_id();
        RemoteHosts {
            hosts: Hosts::new(plan.hosts.clone(), plan.ssh.clone()),
            layout: Layout::new(plan.remote_dir.clone()).for_run(&run_id),
            node_bin: plan.node_bin.clone(),
            install_deps: plan.install_deps,
            tools: Vec::new(),
            peer_ips: None,
            run_id,
        }
    }

    /// Names everything made on the hosts from now on after run `run_id`.
    pub fn set_run_id(&mut self, run_id: &str) {
        self.layout = Layout::new(self.layout.dir.clone()).for_run(run_id);
        self.run_id = run_id.to_string();
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's partition chain on every host.
    pub fn partition_chain(&self) -> String {
        faults::partition_chain(&self.run_id)
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn session(&self, i: usize) -> &Session {
        self.hosts.get(i)
    }

    /// Each host's address (what peers see in packets, and the node binds).
    pub fn addresses(&self) -> Vec<String> {
        match &self.peer_ips {
            Some(ips) => ips.clone(),
            None => self
                .hosts
                .sessions()
                .iter()
                .map(|s| s.addr().host.clone())
                .collect(),
        }
    }

    /// Sets the IP addresses packet filters match (one per host), so rules
    /// never depend on name resolution on the hosts.
    pub fn set_addresses(&mut self, ips: Vec<String>) {
        assert_eq!(ips.len(), self.len(), "one address per host");
        self.peer_ips = Some(ips);
    }

    /// Connects to all hosts, checks tools for `needs`, deploys the node
    /// executable. Returns the per-host deploy results.
    pub fn prepare(&mut self, needs: &[Need]) -> anyhow::Result<Vec<Deployed>> {
        let bin = self.layout.bin();
        let node_bin = self.node_bin.clone();
        self.prepare_with(needs, Some((&node_bin, &bin)))
    }

    /// Connects to all hosts, checks tools for `needs`, and uploads
    /// `upload` (local file, remote path) when given.
    pub fn prepare_with(
        &mut self,
        needs: &[Need],
        upload: Option<(&Path, &str)>,
    ) -> anyhow::Result<Vec<Deployed>> {
        self.hosts.connect_all().map_err(anyhow::Error::new)?;
        let mut all = vec![Need::Daemons];
        all.extend(needs.iter().copied().filter(|n| *n != Need::Daemons));
        self.tools = deploy::ensure_tools(&self.hosts, &all, self.install_deps)?;
        match upload {
            Some((local, remote)) => deploy::deploy_to(&self.hosts, local, remote),
            None => Ok(Vec::new()),
        }
    }

    /// libfaketime's path on host `i`, if the check found it.
    pub fn faketime_lib(&self, i: usize) -> Option<String> {
        self.tools.get(i).and_then(|t| t.faketime_lib.clone())
    }

    /// Starts node `spec` on host `i`; returns its pid.
    pub fn start(&self, i: usize, spec: &DaemonSpec) -> Result<u32, SshError> {
        daemon::start(self.session(i), &self.layout, spec)
    }

    /// Stops a leftover node and removes its data and log (fresh run).
    pub fn reset(&self, i: usize, node: &str) -> Result<(), SshError> {
        self.session(i)
            .run_root(&daemon::reset_script(&self.layout, node))
            .map(|_| ())
    }

    pub fn stop(&self, i: usize, node: &str, grace: Duration) -> Result<bool, SshError> {
        daemon::stop(self.session(i), &self.layout, node, grace)
    }

    pub fn kill(&self, i: usize, node: &str) -> Result<bool, SshError> {
        daemon::signal(self.session(i), &self.layout, node, "KILL")
    }

    pub fn pause(&self, i: usize, node: &str) -> Result<bool, SshError> {
        daemon::signal(self.session(i), &self.layout, node, "STOP")
    }

    pub fn resume(&self, i: usize, node: &str) -> Result<bool, SshError> {
        daemon::signal(self.session(i), &self.layout, node, "CONT")
    }

    pub fn state(&self, i: usize, node: &str) -> Result<ProcState, SshError> {
        daemon::state(self.session(i), &self.layout, node)
    }

    /// Host `i` stops hearing from the hosts in `from` (indices).
    pub fn partition(&self, i: usize, from: &[usize]) -> Result<(), SshError> {
        let peers = self.peer_addrs(from);
        faults::apply(
            self.session(i),
            &faults::partition_script(&self.run_id, &peers),
            "partition",
        )
    }

    /// Applies a whole partition shape at once: for each host, the hosts it
    /// must not hear from. Hosts with an empty list are healed of partitions.
    pub fn partition_all(&self, drop_from: &[Vec<usize>]) -> Result<(), HostErrors> {
        assert_eq!(drop_from.len(), self.len(), "one list per host");
        all_ok(self.hosts.each(|i, _| self.partition(i, &drop_from[i]))).map(|_| ())
    }

    /// Host `i` drops packets from the hosts in `from` with `probability`.
    pub fn loss(&self, i: usize, from: &[usize], probability: f64) -> Result<(), SshError> {
        let peers = self.peer_addrs(from);
        faults::apply(
            self.session(i),
            &faults::loss_script(&self.run_id, &peers, probability),
            "packet loss",
        )
    }

    /// Delays packets host `i` sends to the hosts in `to`.
    pub fn latency(
        &self,
        i: usize,
        to: &[usize],
        delay_ms: u32,
        jitter_ms: u32,
    ) -> Result<(), SshError> {
        let peers = self.peer_addrs(to);
        faults::apply(
            self.session(i),
            &faults::latency_script(&peers, delay_ms, jitter_ms),
            "latency (tc netem)",
        )
    }

    /// Removes host `i`'s latency.
    pub fn latency_off(&self, i: usize) -> Result<(), SshError> {
        faults::apply(
            self.session(i),
            &faults::latency_off_script(),
            "latency off",
        )
    }

    /// Node `node` on host `i` gets this libfaketime spec.
    pub fn clock(&self, i: usize, node: &str, spec: &str) -> Result<(), SshError> {
        faults::apply(
            self.session(i),
            &faults::clock_script(&self.layout, node, spec),
            "clock",
        )
    }

    /// Undoes every fault on every host (nodes: node names per host),
    /// retrying unreachable hosts within `budget` each.
    pub fn heal_all(&self, nodes: &[Vec<String>], budget: Duration) -> Result<(), HostErrors> {
        assert_eq!(nodes.len(), self.len(), "one list per host");
        all_ok(self.hosts.each(|i, s| {
            s.run_root_retrying(
                &faults::heal_script(&self.layout, &self.run_id, &nodes[i]),
                budget,
            )
        }))
        .map(|_| ())
    }

    /// The rules in our iptables chains on host `i` (for checks).
    pub fn rules(&self, i: usize) -> Result<String, SshError> {
        self.session(i)
            .run_root(&faults::rules_script(&self.run_id))
    }

    /// Downloads each host's node logs into `store/nodes/<host>/<node>.log`.
    /// Tries every host even when some fail; returns the files written.
    pub fn fetch_logs(
        &self,
        nodes: &[Vec<String>],
        store: &Path,
    ) -> Result<Vec<PathBuf>, HostErrors> {
        assert_eq!(nodes.len(), self.len(), "one list per host");
        let results = self.hosts.each(|i, s| {
            let dir = store.join("nodes").join(sanitize(&s.name()));
            std::fs::create_dir_all(&dir).map_err(|e| SshError::Transfer {
                host: s.name(),
                path: dir.display().to_string(),
                cause: e.to_string(),
            })?;
            let mut files = Vec::new();
            for n in &nodes[i] {
                let local = dir.join(format!("{n}.log"));
                s.download(&self.layout.log(n), &local)?;
                files.push(local);
            }
            Ok(files)
        });
        all_ok(results).map(|v| v.into_iter().flatten().collect())
    }

    /// Stops every listed node on every host (cleanup after a run).
    pub fn stop_all(&self, nodes: &[Vec<String>], grace: Duration) -> Result<(), HostErrors> {
        assert_eq!(nodes.len(), self.len(), "one list per host");
        all_ok(self.hosts.each(|i, _| {
            for n in &nodes[i] {
                self.stop(i, n, grace)?;
            }
            Ok(())
        }))
        .map(|_| ())
    }

    /// Removes the run's folder (its clock files) from every host, once
    /// its nodes are stopped.
    pub fn remove_run_dirs(&self) -> Result<(), HostErrors> {
        let dir = crate::ssh::sh_quote(&self.layout.run_dir(&self.run_id));
        all_ok(
            self.hosts
                .each(|_, s| s.run_root(&format!("rm -rf {dir} && echo removed"))),
        )
        .map(|_| ())
    }

    fn peer_addrs(&self, idx: &[usize]) -> Vec<String> {
        let addrs = self.addresses();
        idx.iter().map(|&j| addrs[j].clone()).collect()
    }
}

/// A host name as a folder name.
fn sanitize(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

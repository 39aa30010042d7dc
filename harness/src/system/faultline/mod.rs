//! faultline's own node (`faultline node`, this very binary) as a system
//! under test: the first implementation of the [`System`] boundary.
//!
//! One port per node for clients and peers; the node takes `--id`,
//! `--listen`, `--peers`, `--data-dir` and the run's own flags (`--bug`,
//! `--consensus`, the sharding flags). It has a message filter and a clock
//! offset of its own (admin `filter` and `clock`, docs/protocol.md), so
//! partitions work without iptables and clocks without libfaketime. Who
//! leads comes from `status` (unsharded) or `groups` (sharded: every shard
//! is a group with its own leader). With `--tls` (tls.rs) every node runs
//! with its own certificate and the run's CA, workers connect with the
//! `client` role's certificate and the harness's probes and admin requests
//! with the `admin` role's.

pub mod auth;
pub mod client;
pub mod tls;

use super::{
    AuthProbe, CatchUp, MessageFilter, NodeFaults, NodeSite, Ports, ProcessSpec, RemoteProgram,
    Support, System, SystemKind,
};
use crate::cluster::{admin, ClockFault, NodeId, NodeInfo};
use crate::nemesis::FaultKind;
use crate::run::probe;
use anyhow::{bail, Context};
use faultline_nodes::client::Credentials;
use faultline_nodes::protocol::{Op, Request};
use faultline_nodes::tls::{ClientTls, TlsFiles};
use faultline_workloads::tcp_client::{NodeAddr, TcpClient};
use faultline_workloads::{BoxFuture, Client, WorkloadKind};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a filter or clock request may take.
const ADMIN_TIMEOUT: Duration = Duration::from_millis(1000);

/// faultline's node, configured for one run.
#[derive(Clone, Debug)]
pub struct FaultlineSystem {
    /// The executable: run locally, uploaded to remote hosts.
    pub binary: PathBuf,
    /// Passed to every node: `--bug`, `--consensus`, the sharding flags.
    pub node_args: Vec<String>,
    /// RUST_LOG of the nodes.
    pub node_log_level: String,
    /// The shard count of a sharded cluster (every shard's group must
    /// elect); None: one group of every node.
    pub shards: Option<u32>,
    /// `--auth`: every node gets the token file, every connection sends it.
    pub auth: Option<auth::AuthToken>,
    /// `--tls`: the run's CA and certificates; every node serves TLS only,
    /// every connection opens TLS.
    pub tls: Option<Arc<tls::RunTls>>,
}

/// Whose certificate a connection presents (`--tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Presenter {
    /// A workload's worker: the `client` role.
    Worker,
    /// The harness's probes and admin requests: the `admin` role.
    Harness,
}

impl FaultlineSystem {
    fn token(&self) -> Option<&str> {
        self.auth.as_ref().map(auth::AuthToken::token)
    }

    fn client_tls(&self, presenter: Presenter) -> Option<ClientTls> {
        let tls = self.tls.as_ref()?;
        Some(match presenter {
            Presenter::Worker => tls.client(),
            Presenter::Harness => tls.admin(),
        })
    }

    /// The token and TLS identity `presenter`'s connections present.
    fn credentials(&self, presenter: Presenter) -> Credentials {
        Credentials {
            auth_token: self.token().map(str::to_string),
            tls: self.client_tls(presenter),
        }
    }
}

impl System for FaultlineSystem {
    fn kind(&self) -> SystemKind {
        SystemKind::Faultline
    }

    fn version(&self) -> String {
        format!("faultline {}", env!("CARGO_PKG_VERSION"))
    }

    fn supports_workload(&self, workload: WorkloadKind) -> Support {
        match workload {
            WorkloadKind::LockCounter => Support::Unsupported(
                "its locks are leases without keepalive: a holder that idles past its lease \
                 loses the lock by design, so lost updates would say nothing; use --workload lock"
                    .into(),
            ),
            _ => Support::Supported,
        }
    }

    fn fault_support(&self, kind: FaultKind) -> Support {
        if kind == FaultKind::Impostor && self.auth.is_none() && self.tls.is_none() {
            return Support::Unsupported(
                "without --auth or --tls the node admits anyone by design: the impostor needs one"
                    .into(),
            );
        }
        if kind == FaultKind::SlowReader && self.tls.is_some() {
            return Support::Unsupported(
                "the slow-reader fault writes plain request lines on TCP; a --tls node refuses \
                 them (tls-required), so it runs without --tls only"
                    .into(),
            );
        }
        match (kind, self.shards) {
            (FaultKind::SlowReader, Some(_)) => Support::Unsupported(
                "the slow-reader fault reads one key from one group's leader; a sharded node \
                 answers a key it does not hold with `moved`, so it runs on unsharded clusters only"
                    .into(),
            ),
            _ => Support::Supported,
        }
    }

    fn slow_reader_lines(
        &self,
        value_bytes: usize,
    ) -> Option<crate::nemesis::slow_reader::SlowReaderLines> {
        // A key no workload uses (docs/protocol.md, "Requests and replies").
        let key = "faultline-slow-reader";
        // With --auth a connection's first line is the token (without an
        // id: the node does not answer it), or the node closes it and the
        // fault would measure nothing.
        let mut store = match self.token() {
            Some(token) => Request {
                id: None,
                op: Op::Auth {
                    token: token.to_string(),
                },
            }
            .encode(),
            None => Vec::new(),
        };
        let write = Op::Write {
            key: key.into(),
            value: serde_json::Value::String("v".repeat(value_bytes)),
        };
        store.extend(
            Request {
                id: Some(0),
                op: write,
            }
            .encode(),
        );
        let read = Op::Read { key: key.into() };
        Some(crate::nemesis::slow_reader::SlowReaderLines {
            store,
            read: Request {
                id: Some(1),
                op: read,
            }
            .encode(),
        })
    }

    fn ports(&self) -> Ports {
        Ports::ONE
    }

    fn node_faults(&self) -> NodeFaults {
        NodeFaults {
            message_filter: true,
            own_clock: true,
            libfaketime: true,
            binds_source_ip: true,
        }
    }

    fn local_program(&self) -> PathBuf {
        self.binary.clone()
    }

    fn remote_program(&self) -> RemoteProgram {
        RemoteProgram::Upload(self.binary.clone())
    }

    fn audit_log(&self, site: &NodeSite<'_>) -> Option<String> {
        // The node's default (nodes/src/server/audit.rs): `--audit-log`
        // is never among the arguments the harness gives it.
        Some(format!(
            "{}/{}",
            site.data_dir,
            faultline_results::audit::AUDIT_FILE
        ))
    }

    fn process(&self, site: &NodeSite<'_>) -> ProcessSpec {
        let peers = site
            .cluster
            .iter()
            .map(|n| format!("{}={}", n.id.0, n.peer_addr))
            .collect::<Vec<_>>()
            .join(",");
        let mut args = vec![
            "node".to_string(),
            "--id".into(),
            site.node.id.0.to_string(),
            "--listen".into(),
            site.node.client_addr.to_string(),
            "--peers".into(),
            peers,
            "--data-dir".into(),
            site.data_dir.clone(),
        ];
        args.extend(self.node_args.iter().cloned());
        if let Some(file) = &site.auth_token_file {
            args.push("--auth-token-file".into());
            args.push(file.clone());
        }
        if let Some(tls) = &site.tls {
            for (flag, path) in [
                ("--tls-cert", &tls.cert),
                ("--tls-key", &tls.key),
                ("--tls-ca", &tls.ca),
            ] {
                args.push(flag.into());
                args.push(path.clone());
            }
        }
        ProcessSpec {
            program: site.program.clone(),
            args,
            env: vec![
                ("RUST_LOG".into(), self.node_log_level.clone()),
                ("NO_COLOR".into(), "1".into()),
            ],
        }
    }

    fn set_filter(&self, node: &NodeInfo, filter: &MessageFilter) -> anyhow::Result<()> {
        let op = Op::Filter {
            drop: filter.drop.iter().map(|&id| u64::from(id)).collect(),
            delay_ms: filter.delay_ms,
            loss: filter.loss,
        };
        admin::call_blocking(
            node.client_addr,
            &self.credentials(Presenter::Harness),
            op,
            ADMIN_TIMEOUT,
        )?;
        Ok(())
    }

    fn set_clock(&self, node: &NodeInfo, fault: ClockFault) -> anyhow::Result<()> {
        let op = Op::Clock {
            offset_ms: fault.offset_ms,
            rate: fault.rate,
        };
        admin::call_blocking(
            node.client_addr,
            &self.credentials(Presenter::Harness),
            op,
            ADMIN_TIMEOUT,
        )?;
        Ok(())
    }

    fn await_leader<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let credentials = self.credentials(Presenter::Harness);
            match self.shards {
                None => match probe::wait_for_leader(nodes, bind_ip, &credentials, timeout).await {
                    Some(leader) => {
                        tracing::info!(%leader, "leader elected");
                        Ok(())
                    }
                    None => bail!("no node became leader"),
                },
                Some(shards) => {
                    match probe::wait_for_group_leaders(
                        nodes,
                        bind_ip,
                        &credentials,
                        shards,
                        timeout,
                    )
                    .await
                    {
                        Ok(()) => {
                            tracing::info!(shards, "every shard has a leader");
                            Ok(())
                        }
                        Err(missing) => bail!(
                            "no leader for shard{} {}",
                            if missing.len() == 1 { "" } else { "s" },
                            missing
                                .iter()
                                .map(|s| format!("s{s}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                }
            }
        })
    }

    fn await_serving<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(client::wait_until_serving(
            node_addrs(nodes),
            bind_ip,
            self.credentials(Presenter::Worker),
            timeout,
        ))
    }

    fn leader<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
    ) -> BoxFuture<'a, Option<NodeId>> {
        Box::pin(async move {
            let credentials = self.credentials(Presenter::Harness);
            if self.shards.is_some() {
                probe::busiest_leader(nodes, bind_ip, &credentials).await
            } else {
                probe::find_leader(nodes, bind_ip, &credentials).await
            }
        })
    }

    fn client(
        &self,
        worker: usize,
        nodes: &[NodeInfo],
        bind_ip: Option<IpAddr>,
    ) -> anyhow::Result<Box<dyn Client>> {
        if nodes.is_empty() {
            bail!("a client needs at least one node");
        }
        Ok(Box::new(client::FaultlineClient::new(TcpClient::new(
            node_addrs(nodes),
            worker,
            bind_ip,
            self.credentials(Presenter::Worker),
        ))))
    }

    fn await_caught_up<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'a, Option<CatchUp>> {
        Box::pin(async move {
            // A sharded node hosts groups with different replica sets;
            // `status` describes one of them, so only unsharded runs tell.
            if self.shards.is_some() {
                return None;
            }
            let credentials = self.credentials(Presenter::Harness);
            Some(probe::wait_for_caught_up(nodes, bind_ip, &credentials, timeout).await)
        })
    }

    fn auth_token_file(&self) -> Option<&std::path::Path> {
        self.auth.as_ref().map(auth::AuthToken::file)
    }

    fn admin_credentials(&self) -> Credentials {
        self.credentials(Presenter::Harness)
    }

    fn node_tls_files(&self, node: &NodeInfo) -> anyhow::Result<Option<TlsFiles>> {
        self.tls
            .as_ref()
            .map(|tls| tls.node_files(node))
            .transpose()
    }

    fn impostor(
        &self,
        nodes: &[NodeInfo],
        bind_ip: Option<IpAddr>,
    ) -> anyhow::Result<Option<crate::nemesis::impostor::ImpostorSetup>> {
        let mut setup = crate::nemesis::impostor::ImpostorSetup {
            bind_ip,
            token_required: self.auth.is_some(),
            tls: self.tls.is_some(),
            ..Default::default()
        };
        if let Some(tls) = &self.tls {
            setup.anonymous.tls = Some(tls.anonymous().context("the impostor's TLS")?);
            // The worker's credential: the client role (its certificate;
            // with --auth the run's token too, whose roles it narrows).
            setup.client = Some(self.credentials(Presenter::Worker));
            for node in nodes {
                let tls = tls
                    .node_client(node)
                    .with_context(|| format!("{}'s certificate for the impostor", node.name))?;
                let credentials = Credentials {
                    auth_token: self.token().map(str::to_string),
                    tls: Some(tls),
                };
                setup.node_credentials.push((node.id, credentials));
            }
        }
        Ok(Some(setup))
    }

    fn auth_probe<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
    ) -> BoxFuture<'a, Option<AuthProbe>> {
        Box::pin(async move {
            match self.auth {
                Some(_) => {
                    let tls = self.client_tls(Presenter::Harness);
                    Some(auth::probe_without_token(nodes, bind_ip, tls).await)
                }
                None => None,
            }
        })
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "binary": self.binary,
            "node_args": self.node_args,
            "node_log_level": self.node_log_level,
            "auth": self.auth.is_some(),
            "tls": self.tls.is_some(),
        })
    }
}

/// The nodes as the wire client knows them.
fn node_addrs(nodes: &[NodeInfo]) -> Vec<NodeAddr> {
    nodes
        .iter()
        .map(|n| NodeAddr {
            name: n.name.clone(),
            addr: n.client_addr,
        })
        .collect()
}

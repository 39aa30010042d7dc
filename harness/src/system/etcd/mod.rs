//! etcd as a system under test (`--system etcd`): Debian's etcd-server
//! (3.4.23 here) or any `etcd` named by `--system-bin`.
//!
//! Each member listens on two ports of its own address: clients (gRPC, the
//! `client` port) and peers (Raft over HTTP, the `peer` port, which
//! partitions and loss cut). A fresh cluster per run (`--initial-cluster-state
//! new`, a token per run); a killed member restarts on the same data folder.
//! etcd dials its peers without binding its own address, so on one machine
//! every member's connections come from 127.0.0.1: the local cluster tells
//! members apart by socket owner instead (each member runs as its own uid;
//! see cluster/iptables.rs). etcd is a Go program: it reads the clock
//! through the vDSO, which libfaketime cannot intercept, so clock faults are
//! unsupported, and it has no message filter, so latency is unsupported on a
//! local cluster (tc netem on `lo` would delay the clients too).
//!
//! The client side is etcd's gRPC API through the etcd-client crate
//! ([`client::EtcdClient`]); readiness and the leader come from each
//! member's `Status`.

pub mod client;

use super::{
    NodeFaults, NodeSite, Ports, ProcessSpec, RemoteProgram, Resources, Support, System, SystemKind,
};
use crate::cluster::{NodeId, NodeInfo};
use crate::exit::bad_input;
use crate::nemesis::FaultKind;
use anyhow::bail;
use faultline_workloads::{BoxFuture, Client, WorkloadKind};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The Debian package that ships the etcd server.
pub const PACKAGE: &str = "etcd-server";

/// etcd, configured for one run.
#[derive(Clone)]
pub struct EtcdSystem {
    /// The local `etcd` executable.
    pub binary: PathBuf,
    /// `etcd 3.4.23`, or `etcd (version unknown)` when `--version` failed.
    pub version: String,
    /// What remote hosts need: the package, or `--system-bin` uploaded.
    pub remote: RemoteProgram,
    /// Names this run's cluster (`--initial-cluster-token`).
    pub cluster_token: String,
    /// The protected counters of `lock-counter`, in this process's memory.
    pub resources: Arc<Resources>,
}

impl EtcdSystem {
    /// etcd from `system_bin`, or `etcd` on PATH. A missing binary is bad
    /// input naming the package to install; one that does not run is left
    /// for the start to report (naming the member and its log).
    ///
    /// In remote mode (`on_hosts`) without `--system-bin`, the hosts run
    /// their own etcd from Debian's package: this machine needs none, and
    /// the version under test is what the hosts' etcd says (the cluster
    /// asks them after deploy: `Cluster::system_version`).
    pub fn find(
        system_bin: Option<&Path>,
        cluster_token: String,
        on_hosts: bool,
    ) -> anyhow::Result<EtcdSystem> {
        let (binary, remote) = match system_bin {
            Some(path) => {
                if !path.is_file() {
                    return Err(bad_input(format!(
                        "--system-bin {}: no such file",
                        path.display()
                    )));
                }
                (
                    path.to_path_buf(),
                    RemoteProgram::Upload(path.to_path_buf()),
                )
            }
            None if on_hosts => (PathBuf::from("etcd"), HOSTS_PACKAGE),
            None => match find_on_path("etcd") {
                Some(path) => (path, HOSTS_PACKAGE),
                None => {
                    return Err(bad_input(format!(
                        "--system etcd: no `etcd` on PATH; install Debian's {PACKAGE} package \
                         (apt-get install {PACKAGE}), or name an etcd binary with --system-bin"
                    )))
                }
            },
        };
        let version = if on_hosts && system_bin.is_none() {
            format!("etcd (the hosts' {PACKAGE})")
        } else {
            version_of(&binary).unwrap_or_else(|| "etcd (version unknown)".into())
        };
        Ok(EtcdSystem {
            binary,
            version,
            remote,
            cluster_token,
            resources: Arc::new(Resources::default()),
        })
    }
}

/// What remote hosts run without `--system-bin`: `etcd` from the package.
const HOSTS_PACKAGE: RemoteProgram = RemoteProgram::Package {
    package: PACKAGE,
    program: "etcd",
};

/// The first executable file called `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// `etcd 3.4.23` from `etcd --version` (`etcd Version: 3.4.23`), within 5 s.
fn version_of(binary: &Path) -> Option<String> {
    let mut child = std::process::Command::new(binary)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    use std::io::Read;
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    parse_version(&out)
}

/// The version in `etcd --version`'s output.
pub fn parse_version(output: &str) -> Option<String> {
    output.lines().find_map(|l| {
        l.trim()
            .strip_prefix("etcd Version:")
            .map(|v| format!("etcd {}", v.trim()))
    })
}

fn url(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}")
}

impl System for EtcdSystem {
    fn kind(&self) -> SystemKind {
        SystemKind::Etcd
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn version_from_output(&self, output: &str) -> Option<String> {
        parse_version(output)
    }

    fn supports_workload(&self, _workload: WorkloadKind) -> Support {
        // Every workload maps (client.rs); transactions as guarded Txns.
        Support::Supported
    }

    fn fault_support(&self, kind: FaultKind) -> Support {
        match kind {
            FaultKind::Clock => Support::Unsupported(
                "etcd is a Go program: Go reads the clock through the vDSO, which libfaketime cannot intercept".into(),
            ),
            FaultKind::Membership => Support::Unsupported(
                "the membership nemesis changes faultline's shard ring; etcd member changes are not built yet".into(),
            ),
            FaultKind::SlowReader => Support::Unsupported(
                "the slow-reader fault writes faultline's wire protocol raw; etcd speaks gRPC over HTTP/2 \
                 (whose flow control bounds what a client that never reads can queue), not built for it"
                    .into(),
            ),
            FaultKind::Impostor => Support::Unsupported(
                "the impostor speaks faultline's node protocol and its credentials; etcd's auth is not \
                 built for it"
                    .into(),
            ),
            _ => Support::Supported,
        }
    }

    fn ports(&self) -> Ports {
        Ports {
            count: 2,
            client: 0,
            peer: 1,
        }
    }

    fn node_faults(&self) -> NodeFaults {
        NodeFaults {
            message_filter: false,
            own_clock: false,
            libfaketime: false,
            binds_source_ip: false,
        }
    }

    fn lock_keepalive(&self) -> bool {
        true
    }

    fn local_program(&self) -> PathBuf {
        self.binary.clone()
    }

    fn remote_program(&self) -> RemoteProgram {
        self.remote.clone()
    }

    fn process(&self, site: &NodeSite<'_>) -> ProcessSpec {
        let node = site.node;
        let cluster = site
            .cluster
            .iter()
            .map(|n| format!("{}={}", n.name, url(n.peer_addr)))
            .collect::<Vec<_>>()
            .join(",");
        let args = [
            ("--name", node.name.clone()),
            ("--data-dir", site.data_dir.clone()),
            ("--listen-client-urls", url(node.client_addr)),
            ("--advertise-client-urls", url(node.client_addr)),
            ("--listen-peer-urls", url(node.peer_addr)),
            ("--initial-advertise-peer-urls", url(node.peer_addr)),
            ("--initial-cluster", cluster),
            ("--initial-cluster-state", "new".into()),
            ("--initial-cluster-token", self.cluster_token.clone()),
            ("--logger", "zap".into()),
            ("--log-outputs", "stderr".into()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect();
        ProcessSpec {
            program: site.program.clone(),
            args,
            env: Vec::new(),
        }
    }

    fn await_leader<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                if let Some(leader) = client::find_leader(nodes, bind_ip).await {
                    tracing::info!(%leader, "etcd has a leader");
                    return Ok(());
                }
                if tokio::time::Instant::now() >= deadline {
                    bail!("no etcd member became leader");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }

    fn await_serving<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(client::wait_until_serving(nodes, bind_ip, timeout))
    }

    fn leader<'a>(
        &'a self,
        nodes: &'a [NodeInfo],
        bind_ip: Option<IpAddr>,
    ) -> BoxFuture<'a, Option<NodeId>> {
        Box::pin(client::find_leader(nodes, bind_ip))
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
        let home = &nodes[worker % nodes.len()];
        Ok(Box::new(client::EtcdClient::open(
            home,
            bind_ip,
            Arc::clone(&self.resources),
        )?))
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "binary": self.binary,
            "remote": format!("{:?}", self.remote),
            "cluster_token": self.cluster_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_from_etcd_version_output() {
        let out = "etcd Version: 3.4.23\nGit SHA: Not provided\nGo Version: go1.19.8\n";
        assert_eq!(parse_version(out).as_deref(), Some("etcd 3.4.23"));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn a_missing_etcd_is_bad_input_naming_the_package() {
        let e = match EtcdSystem::find(Some(Path::new("/nonexistent/etcd")), "t".into(), false) {
            Err(e) => e,
            Ok(_) => panic!("a missing binary must be refused"),
        };
        assert_eq!(crate::exit::code_for(&Err(e)), 254);
    }

    #[test]
    fn remote_hosts_with_their_own_package_need_no_etcd_here() {
        // Whatever this machine's PATH holds: the hosts run the package's etcd.
        let system = EtcdSystem::find(None, "t".into(), true).expect("no local etcd needed");
        assert_eq!(system.remote_program(), HOSTS_PACKAGE);
        assert_eq!(system.version(), "etcd (the hosts' etcd-server)");
        assert_eq!(
            system
                .version_from_output("etcd Version: 3.5.9\nGit SHA: x\n")
                .as_deref(),
            Some("etcd 3.5.9")
        );
    }

    #[test]
    fn members_get_their_own_urls_and_the_whole_cluster() {
        let system = EtcdSystem {
            binary: "/usr/bin/etcd".into(),
            version: "etcd 3.4.23".into(),
            remote: RemoteProgram::Upload("/usr/bin/etcd".into()),
            cluster_token: "run1".into(),
            resources: Arc::new(Resources::default()),
        };
        let node = |i: u8| {
            let client_addr = format!("127.0.0.{i}:2379").parse().expect("addr");
            let peer_addr = format!("127.0.0.{i}:2380").parse().expect("addr");
            NodeInfo {
                id: NodeId(u32::from(i)),
                name: format!("n{i}"),
                client_addr,
                peer_addr,
                addrs: vec![client_addr, peer_addr],
            }
        };
        let nodes = [node(1), node(2)];
        let spec = system.process(&NodeSite {
            node: &nodes[1],
            cluster: &nodes,
            data_dir: "/d/n2".into(),
            program: "/usr/bin/etcd".into(),
            auth_token_file: None,
            tls: None,
        });
        let args = spec.args.join(" ");
        assert!(args.contains("--name n2 --data-dir /d/n2"), "{args}");
        assert!(
            args.contains("--listen-client-urls http://127.0.0.2:2379"),
            "{args}"
        );
        assert!(
            args.contains("--listen-peer-urls http://127.0.0.2:2380"),
            "{args}"
        );
        assert!(
            args.contains("--initial-cluster n1=http://127.0.0.1:2380,n2=http://127.0.0.2:2380"),
            "{args}"
        );
        assert!(args.contains("--initial-cluster-token run1"), "{args}");
    }
}

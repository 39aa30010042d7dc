//! A run's TLS (`faultline test --tls`): a throw-away CA made for the run
//! (its key in memory only), a certificate per client role written when
//! the run starts, and a certificate per node issued for the node's
//! addresses when the cluster plans it. Everything lives in the run's
//! `.tls/` folder (mode 0700; keys 0600; a dot folder, so `faultline
//! serve` neither lists nor serves it). Workers connect with the `client`
//! role's certificate; probes and admin requests with the `admin` role's.
//!
//! Guarantees: no key reaches test.json, a log or a report (this type's
//! `Debug` shows the folder only; the nodes' `--tls-*` flags carry paths).
//! A node's certificate names its id and every address it has, so a
//! client dialling a node's IP checks it reached that node's certificate.

use anyhow::Context;
use faultline_nodes::consensus::NodeId as WireNodeId;
use faultline_nodes::tls::{CertAuthority, ClientTls, Role, TlsFiles};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::cluster::NodeInfo;

/// A run's CA, its role certificates and the node certificates issued so far.
pub struct RunTls {
    authority: CertAuthority,
    dir: PathBuf,
    ca: PathBuf,
    client: ClientTls,
    admin: ClientTls,
    nodes: Mutex<BTreeMap<u32, TlsFiles>>,
}

impl std::fmt::Debug for RunTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunTls")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl RunTls {
    /// A fresh CA, with `ca.pem` and the role certificates written under
    /// `dir` (created mode 0700; the path made absolute, as nodes run
    /// elsewhere).
    pub fn create(dir: &Path) -> anyhow::Result<RunTls> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private", dir.display()))?;
        let dir =
            std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
        let authority = CertAuthority::generate().context("making the run's CA")?;
        // write_run with no nodes: the CA certificate and the role files.
        let pki = authority
            .write_run(&dir, &[])
            .context("writing the run's TLS files")?;
        let role = |role: Role| {
            let files = pki.roles.get(&role).expect("write_run writes every role");
            ClientTls::from_files(files)
                .with_context(|| format!("loading the {} role's TLS", role.name()))
        };
        Ok(RunTls {
            client: role(Role::Client)?,
            admin: role(Role::Admin)?,
            authority,
            ca: pki.ca,
            dir,
            nodes: Mutex::new(BTreeMap::new()),
        })
    }

    /// The folder that holds the run's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The connector a worker uses (the `client` role's certificate).
    pub fn client(&self) -> ClientTls {
        self.client.clone()
    }

    /// The connector probes and admin requests use (the `admin` role's).
    pub fn admin(&self) -> ClientTls {
        self.admin.clone()
    }

    /// A connector that trusts the run's CA and presents no certificate
    /// (the impostor's "no credential").
    pub fn anonymous(&self) -> anyhow::Result<ClientTls> {
        ClientTls::load(&self.ca, None).context("loading the run's CA")
    }

    /// A connector that presents node `node`'s own certificate (the
    /// impostor's peer credential bound to that node's id).
    pub fn node_client(&self, node: &NodeInfo) -> anyhow::Result<ClientTls> {
        let files = self.node_files(node)?;
        ClientTls::from_files(&files).with_context(|| format!("loading {}'s TLS", node.name))
    }

    /// Node `node`'s files (`node-<id>.pem`, `.key`, and the CA), issued
    /// for its id and every address it has on first ask; the same files
    /// after that (a restarted node keeps its certificate).
    pub fn node_files(&self, node: &NodeInfo) -> anyhow::Result<TlsFiles> {
        let mut nodes = self.nodes.lock().expect("the TLS lock is never poisoned");
        if let Some(files) = nodes.get(&node.id.0) {
            return Ok(files.clone());
        }
        let mut ips: Vec<IpAddr> = node
            .addrs
            .iter()
            .chain([&node.client_addr, &node.peer_addr])
            .map(|a| a.ip())
            .collect();
        ips.sort();
        ips.dedup();
        let id = WireNodeId(u64::from(node.id.0));
        let files = TlsFiles {
            cert: self.dir.join(format!("node-{}.pem", node.id.0)),
            key: self.dir.join(format!("node-{}.key", node.id.0)),
            ca: self.ca.clone(),
        };
        self.authority
            .issue_node(id, &ips)
            .and_then(|issued| issued.write(&files.cert, &files.key))
            .with_context(|| format!("issuing {}'s certificate", node.name))?;
        nodes.insert(node.id.0, files.clone());
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::NodeId;

    #[test]
    fn a_run_s_folder_is_private_and_its_keys_are_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = RunTls::create(&dir.path().join(".tls")).expect("created");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(tls.dir()), 0o700);
        let node = NodeInfo::one_port(NodeId(2), "127.0.0.12:7000".parse().expect("addr"));
        let files = tls.node_files(&node).expect("issued");
        assert_eq!(mode(&files.key), 0o600);
        assert_eq!(files.cert, tls.dir().join("node-2.pem"));
        let pem = std::fs::read(&files.cert).expect("cert");
        let again = tls.node_files(&node).expect("the same");
        assert_eq!(
            std::fs::read(&again.cert).expect("cert"),
            pem,
            "issued once"
        );
        faultline_nodes::tls::NodeTls::load(&files, WireNodeId(2)).expect("node 2 loads its files");
        for role in ["client", "admin"] {
            assert_eq!(
                mode(&tls.dir().join(format!("{role}.key"))),
                0o600,
                "{role}"
            );
        }
        let names: Vec<String> = std::fs::read_dir(tls.dir())
            .expect("listed")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("ca") && n.ends_with(".key")),
            "no CA key: {names:?}"
        );
        let shown = format!("{tls:?}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
    }
}

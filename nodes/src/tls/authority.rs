//! A throw-away certificate authority for one run: a certificate per node
//! (its [`super::node_name`] and IPs) and per client role
//! ([`super::role_name`]). The CA's key lives only in memory: once the
//! authority is dropped nobody can issue another certificate the run's
//! nodes would trust. Keys are written mode 0600.
//!
//! Validity: rcgen's default (1975 to 4096). A run's CA lives as long as
//! the run, and the clock nemesis moves node clocks by hours: a short
//! validity would turn a clock fault into a TLS failure.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use super::pem::TlsFiles;
use super::{node_name, role_name, TlsError};
use crate::consensus::NodeId;

/// A client role: what a non-peer certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Data operations.
    Client,
    /// Status, membership, transfer, filter and clock controls.
    Admin,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Client, Role::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Admin => "admin",
        }
    }
}

/// A certificate and its key, PEM. The key is not shown by `Debug`.
pub struct IssuedCert {
    pub cert_pem: String,
    key_pem: String,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert").finish_non_exhaustive()
    }
}

impl IssuedCert {
    /// The private key, PEM (for deploying it; never log it).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Write the certificate to `cert` and the key to `key` (mode 0600).
    pub fn write(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let write_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TlsError::Write { path, source }
        };
        std::fs::write(cert, &self.cert_pem).map_err(write_error(cert))?;
        write_private(key, self.key_pem.as_bytes()).map_err(write_error(key))
    }
}

/// Create or replace `path` with `bytes`, readable by its owner only (also
/// when the file was there before with wider permissions).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The files [`CertAuthority::write_run`] made.
#[derive(Clone, Debug)]
pub struct RunPki {
    /// The CA certificate every node and client trusts.
    pub ca: PathBuf,
    /// Per node: its certificate, key and the CA (the node's `--tls-*`).
    pub nodes: BTreeMap<NodeId, TlsFiles>,
    /// Per client role: its certificate, key and the CA.
    pub roles: BTreeMap<Role, TlsFiles>,
}

/// A CA made for one run.
pub struct CertAuthority {
    cert: Certificate,
    key: KeyPair,
}

impl fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuthority").finish_non_exhaustive()
    }
}

fn generate_error(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

impl CertAuthority {
    /// A fresh CA (ECDSA P-256).
    pub fn generate() -> Result<CertAuthority, TlsError> {
        let key = KeyPair::generate().map_err(generate_error)?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "faultline run CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(generate_error)?;
        Ok(CertAuthority { cert, key })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.cert.pem()
    }

    /// A node's certificate: its name and IPs; good for serving its port
    /// and for dialling its peers.
    pub fn issue_node(&self, id: NodeId, ips: &[IpAddr]) -> Result<IssuedCert, TlsError> {
        let name = node_name(id);
        let mut sans = vec![SanType::DnsName(
            name.clone().try_into().map_err(generate_error)?,
        )];
        sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        self.issue(
            &name,
            sans,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// A client role's certificate (client authentication only).
    pub fn issue_role(&self, role: Role) -> Result<IssuedCert, TlsError> {
        let name = role_name(role);
        let sans = vec![SanType::DnsName(
            name.clone().try_into().map_err(generate_error)?,
        )];
        self.issue(&name, sans, vec![ExtendedKeyUsagePurpose::ClientAuth])
    }

    fn issue(
        &self,
        common_name: &str,
        sans: Vec<SanType>,
        usages: Vec<ExtendedKeyUsagePurpose>,
    ) -> Result<IssuedCert, TlsError> {
        let key = KeyPair::generate().map_err(generate_error)?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(generate_error)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Write a run's files under `dir` (created mode 0700 if missing):
    /// `ca.pem`; `node-<id>.pem` and `node-<id>.key` per node;
    /// `<role>.pem` and `<role>.key` per role.
    pub fn write_run(
        &self,
        dir: &Path,
        nodes: &[(NodeId, Vec<IpAddr>)],
    ) -> Result<RunPki, TlsError> {
        let write_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TlsError::Write { path, source }
        };
        std::fs::create_dir_all(dir).map_err(write_error(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(write_error(dir))?;
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, self.ca_pem()).map_err(write_error(&ca))?;
        let files = |stem: &str| TlsFiles {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
            ca: ca.clone(),
        };
        let mut pki = RunPki {
            ca: ca.clone(),
            nodes: BTreeMap::new(),
            roles: BTreeMap::new(),
        };
        for (id, ips) in nodes {
            let out = files(&format!("node-{}", id.0));
            self.issue_node(*id, ips)?.write(&out.cert, &out.key)?;
            pki.nodes.insert(*id, out);
        }
        for role in Role::ALL {
            let out = files(role.name());
            self.issue_role(role)?.write(&out.cert, &out.key)?;
            pki.roles.insert(role, out);
        }
        Ok(pki)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::NodeTls;

    fn loopback() -> Vec<IpAddr> {
        vec!["127.0.0.1".parse().expect("ip")]
    }

    #[test]
    fn a_run_s_files_load_as_each_node_and_keys_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertAuthority::generate().expect("ca");
        let nodes: Vec<_> = (1..=3).map(|i| (NodeId(i), loopback())).collect();
        let pki = ca
            .write_run(&dir.path().join("tls"), &nodes)
            .expect("write");
        for (id, files) in &pki.nodes {
            NodeTls::load(files, *id).expect("a node loads its own files");
            let mode = std::fs::metadata(&files.key)
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", files.key.display());
        }
        for files in pki.roles.values() {
            let mode = std::fs::metadata(&files.key)
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", files.key.display());
        }
        // Node 2's files are not node 3's.
        let e = NodeTls::load(&pki.nodes[&NodeId(2)], NodeId(3)).expect_err("wrong node");
        assert!(e.to_string().contains("not a certificate of node 3"), "{e}");
        // A key that is not the certificate's.
        let mut mixed = pki.nodes[&NodeId(1)].clone();
        mixed.key = pki.nodes[&NodeId(2)].key.clone();
        let e = NodeTls::load(&mixed, NodeId(1)).expect_err("wrong key");
        assert!(e.to_string().contains("--tls-key"), "{e}");
        // A certificate of another CA.
        let other = CertAuthority::generate().expect("ca");
        let foreign = dir.path().join("foreign");
        let pki2 = other.write_run(&foreign, &nodes).expect("write");
        let mut crossed = pki.nodes[&NodeId(1)].clone();
        crossed.ca = pki2.ca.clone();
        let e = NodeTls::load(&crossed, NodeId(1)).expect_err("other CA");
        assert!(e.to_string().contains("not a certificate of node 1"), "{e}");
    }

    #[test]
    fn a_key_file_that_was_world_readable_is_made_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("c.key"));
        std::fs::write(&key, "old").expect("write");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let ca = CertAuthority::generate().expect("ca");
        ca.issue_role(Role::Client)
            .expect("issue")
            .write(&cert, &key)
            .expect("write");
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn certificates_name_their_node_and_no_other() {
        let ca = CertAuthority::generate().expect("ca");
        let issued = ca.issue_node(NodeId(2), &loopback()).expect("issue");
        let der = {
            use rustls::pki_types::pem::PemObject;
            rustls::pki_types::CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
                .expect("pem")
        };
        assert!(crate::tls::certificate_names_node(&der, NodeId(2)));
        assert!(!crate::tls::certificate_names_node(&der, NodeId(3)));
        assert!(!crate::tls::certificate_names_node(&der, NodeId(22)));
        let role = ca.issue_role(Role::Client).expect("issue");
        let der = {
            use rustls::pki_types::pem::PemObject;
            rustls::pki_types::CertificateDer::from_pem_slice(role.cert_pem.as_bytes())
                .expect("pem")
        };
        assert!(!crate::tls::certificate_names_node(&der, NodeId(1)));
    }
}

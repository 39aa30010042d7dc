//! TLS for the node's port (clients, admin tools and peers share it).
//!
//! - [`pem`]: a CA, a certificate chain and a key read from PEM files;
//!   every error names the flag, the file and what is wrong.
//! - [`NodeTls`]: what a node with `--tls-cert/--tls-key/--tls-ca` runs:
//!   the server side (client certificates requested, and verified against
//!   the CA when given) and the peer side (mutual TLS: a node dialling a
//!   peer presents its own certificate and checks that the peer's names the
//!   node id it dialled; a node accepting a `hello` checks that the
//!   client certificate names the id the hello claims).
//! - [`ClientTls`]: a connector for clients and admin tools.
//! - [`CertAuthority`]: a throw-away CA for a run, issuing a certificate
//!   per node and per client role; keys are written mode 0600.
//!
//! Names in certificates (docs/protocol.md, "TLS"): a node's certificate
//! carries the DNS name `node-<id>.faultline.invalid` (see [`node_name`])
//! and its IP addresses; a role's carries `<role>.role.faultline.invalid`
//! (see [`role_name`]). `.invalid` never resolves (RFC 6761), so these names
//! cannot be mistaken for a real host.
//!
//! Guarantees: nothing here panics on input from files or the wire; a key
//! never reaches a log or an error message.

pub mod authority;
pub mod client;
pub mod node;
pub mod pem;

pub use authority::{CertAuthority, IssuedCert, Role, RunPki};
pub use client::ClientTls;
pub use node::NodeTls;
pub use pem::TlsFiles;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;

use crate::consensus::NodeId;

/// A TLS stream as a client or a dialling peer holds it.
pub type ClientTlsStream<S> = tokio_rustls::client::TlsStream<S>;
/// A TLS stream as the node's server side holds it.
pub type ServerTlsStream<S> = tokio_rustls::server::TlsStream<S>;

/// The first byte of a TLS record that carries a handshake message (every
/// TLS connection starts with one: the ClientHello). Anything else on a TLS
/// port is a plain client (RFC 8446 §5.1, ContentType `handshake(22)`).
pub const HANDSHAKE_RECORD_TYPE: u8 = 22;

/// Why TLS could not be set up. Each names the flag or file concerned.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{flag} {}: {source}", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{flag} {}: {reason}", path.display())]
    Pem {
        flag: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The certificate and key do not make a usable TLS identity (a key of
    /// another certificate, an algorithm rustls does not take).
    #[error("--tls-cert {} with --tls-key {}: {reason}", cert.display(), key.display())]
    Identity {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    /// The node's own certificate does not chain to the CA or does not name it.
    #[error("--tls-cert {} is not a certificate of node {node} under --tls-ca {}: {reason}", cert.display(), ca.display())]
    NotThisNode {
        cert: PathBuf,
        ca: PathBuf,
        node: u64,
        reason: String,
    },
    #[error("building the TLS configuration: {0}")]
    Config(String),
    #[error("making certificates: {0}")]
    Generate(String),
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The DNS name a node's certificate carries for its id:
/// `node-<id>.faultline.invalid`.
pub fn node_name(id: NodeId) -> String {
    format!("node-{}.faultline.invalid", id.0)
}

/// The DNS name a client role's certificate carries:
/// `<role>.role.faultline.invalid`.
pub fn role_name(role: Role) -> String {
    format!("{}.role.faultline.invalid", role.name())
}

/// [`node_name`] as a TLS server name (what a dialling peer verifies).
pub fn node_server_name(id: NodeId) -> ServerName<'static> {
    ServerName::try_from(node_name(id)).expect("node names are valid DNS names")
}

/// The one crypto provider: ring. (rustls deprecates it for lacking
/// post-quantum key exchange; aws-lc-rs needs cmake and builds slowly, and
/// these certificates live for one test run.)
pub(crate) fn provider() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whether `cert` (already verified against the CA) names node `id`.
pub fn certificate_names_node(cert: &rustls::pki_types::CertificateDer<'_>, id: NodeId) -> bool {
    let Ok(end_entity) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    end_entity
        .verify_is_valid_for_subject_name(&node_server_name(id))
        .is_ok()
}

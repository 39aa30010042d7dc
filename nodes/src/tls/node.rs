//! A node's TLS: the server side of its port and the client side of its
//! peer connections, both from `--tls-cert`, `--tls-key` and `--tls-ca`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::UnixTime;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::pem::{load_certs, load_key, load_roots, TlsFiles};
use super::{node_server_name, provider, ClientTlsStream, ServerTlsStream, TlsError};
use crate::consensus::NodeId;

/// A TLS handshake that takes longer than this is abandoned (a client that
/// opens a connection and stalls holds nothing for long).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a node with TLS runs: one acceptor for its port, one connector for
/// the peers it dials.
#[derive(Clone)]
pub struct NodeTls {
    id: NodeId,
    acceptor: TlsAcceptor,
    peer_connector: TlsConnector,
}

impl fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("NodeTls").field("id", &self.id).finish()
    }
}

impl NodeTls {
    /// Load the files of node `id`. The certificate must chain to the CA
    /// and name the node ([`super::node_name`]): a node started with
    /// another node's files is refused here, not by its peers later.
    pub fn load(files: &TlsFiles, id: NodeId) -> Result<NodeTls, TlsError> {
        let roots = Arc::new(load_roots("--tls-ca", &files.ca)?);
        let certs = load_certs("--tls-cert", &files.cert)?;
        let key = load_key("--tls-key", &files.key)?;
        let identity_error = |e: rustls::Error| TlsError::Identity {
            cert: files.cert.clone(),
            key: files.key.clone(),
            reason: e.to_string(),
        };
        let config_error = |e: rustls::Error| TlsError::Config(e.to_string());

        let own = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        own.verify_server_cert(
            &certs[0],
            &certs[1..],
            &node_server_name(id),
            &[],
            UnixTime::now(),
        )
        .map_err(|e| TlsError::NotThisNode {
            cert: files.cert.clone(),
            ca: files.ca.clone(),
            node: id.0,
            reason: e.to_string(),
        })?;

        // Client certificates are asked for and, when given, must chain to
        // the CA; a client without one may still connect (the token, and
        // later roles, decide what it may do), but a peer's `hello` needs
        // one that names the node (server::connection).
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(identity_error)?;
        // Peers only write on the connections they dial: no tickets to
        // pile up unread in their sockets.
        server.send_tls13_tickets = 0;

        let peer = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(identity_error)?;

        Ok(NodeTls {
            id,
            acceptor: TlsAcceptor::from(Arc::new(server)),
            peer_connector: TlsConnector::from(Arc::new(peer)),
        })
    }

    /// The node this is for.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Accept one connection whose first byte was a handshake record.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<ServerTlsStream<TcpStream>> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream))
            .await
            .map_err(|_| timed_out())?
    }

    /// Open mutual TLS to `peer` on a connected stream: this node's
    /// certificate is presented, and the peer's must chain to the CA and
    /// name `peer`.
    pub async fn connect_peer(
        &self,
        stream: TcpStream,
        peer: NodeId,
    ) -> std::io::Result<ClientTlsStream<TcpStream>> {
        let connect = self.peer_connector.connect(node_server_name(peer), stream);
        tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
            .await
            .map_err(|_| timed_out())?
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
}

//! The client side for clients and admin tools: the node's certificate
//! must chain to the CA and name the address (or node) dialled; a role
//! certificate is presented when one is given.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::node::HANDSHAKE_TIMEOUT;
use super::pem::{load_certs, load_key, load_roots};
use super::{provider, ClientTlsStream, TlsError};

/// A connector for clients of a TLS node (cheap to clone).
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ClientTls {
    /// Trust `ca`; present `identity` (certificate, key files) if given.
    pub fn load(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<ClientTls, TlsError> {
        let roots = load_roots("--tls-ca", ca)?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(load_certs("--tls-cert", cert)?, load_key("--tls-key", key)?)
                .map_err(|e| TlsError::Identity {
                    cert: cert.to_path_buf(),
                    key: key.to_path_buf(),
                    reason: e.to_string(),
                })?,
        };
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Trust `files.ca` and present `files.cert` with `files.key` (a role's
    /// files from [`super::CertAuthority::write_run`]).
    pub fn from_files(files: &super::TlsFiles) -> Result<ClientTls, TlsError> {
        ClientTls::load(&files.ca, Some((&files.cert, &files.key)))
    }

    /// TLS over a connected stream; the node's certificate must name `server`.
    pub async fn connect_stream(
        &self,
        stream: TcpStream,
        server: ServerName<'static>,
    ) -> std::io::Result<ClientTlsStream<TcpStream>> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.connector.connect(server, stream))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })?
    }

    /// Dial `addr` and open TLS; the node's certificate must name its IP.
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<ClientTlsStream<TcpStream>> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        self.connect_stream(stream, ServerName::IpAddress(addr.ip().into()))
            .await
    }
}

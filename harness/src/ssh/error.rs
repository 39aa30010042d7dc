//! What can go wrong talking to a host over SSH. Every variant names the
//! host first, then the cause, so a message alone says where to look.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("{host}: unreachable after {attempts} attempt(s) in {waited_ms} ms: {cause}")]
    Unreachable {
        host: String,
        attempts: u32,
        waited_ms: u64,
        cause: String,
    },

    #[error("{host}: SSH handshake failed: {cause}")]
    Handshake { host: String, cause: String },

    #[error(
        "{host}: host key is not in {known_hosts} ({fingerprint}); refusing to connect. \
         Pass --ssh-accept-new to record it, or add it with ssh-keyscan"
    )]
    HostKeyUnknown {
        host: String,
        known_hosts: PathBuf,
        fingerprint: String,
    },

    #[error(
        "{host}: HOST KEY HAS CHANGED: {known_hosts} line {line} holds a different key than the {fingerprint} \
         the host presents now; refusing to connect (someone may be intercepting the connection, or the host \
         was reinstalled: if you know it was, remove that line)"
    )]
    HostKeyChanged {
        host: String,
        known_hosts: PathBuf,
        line: usize,
        fingerprint: String,
    },

    #[error("{host}: host key {fingerprint} is marked @revoked in {known_hosts} line {line}; refusing to connect")]
    HostKeyRevoked {
        host: String,
        known_hosts: PathBuf,
        line: usize,
        fingerprint: String,
    },

    #[error("{host}: cannot read or write known_hosts file {path}: {cause}")]
    KnownHostsFile {
        host: String,
        path: PathBuf,
        cause: String,
    },

    #[error("{host}: authentication as {user} failed: {tried}")]
    Auth {
        host: String,
        user: String,
        tried: String,
    },

    #[error("{host}: command timed out after {} ms: {command}", after.as_millis())]
    Timeout {
        host: String,
        command: String,
        after: Duration,
    },

    #[error("{host}: connection lost: {cause}")]
    Lost { host: String, cause: String },

    #[error("{host}: `{command}` exited with {status}: {stderr}")]
    Command {
        host: String,
        command: String,
        status: i32,
        stderr: String,
    },

    #[error(
        "{host}: the uploaded {path} does not run there (`{path} --version` exited with {status}): {stderr}"
    )]
    NotRunnable {
        host: String,
        path: String,
        status: i32,
        stderr: String,
    },

    #[error("{host}: file transfer of {path} failed: {cause}")]
    Transfer {
        host: String,
        path: String,
        cause: String,
    },
}

impl SshError {
    /// The host the error is about.
    pub fn host(&self) -> &str {
        match self {
            SshError::Unreachable { host, .. }
            | SshError::Handshake { host, .. }
            | SshError::HostKeyUnknown { host, .. }
            | SshError::HostKeyChanged { host, .. }
            | SshError::HostKeyRevoked { host, .. }
            | SshError::KnownHostsFile { host, .. }
            | SshError::Auth { host, .. }
            | SshError::Timeout { host, .. }
            | SshError::Lost { host, .. }
            | SshError::Command { host, .. }
            | SshError::NotRunnable { host, .. }
            | SshError::Transfer { host, .. } => host,
        }
    }

    /// Whether the connection itself is gone (so a retry must reconnect),
    /// as opposed to a command that ran and failed.
    pub fn is_connection_problem(&self) -> bool {
        matches!(
            self,
            SshError::Unreachable { .. }
                | SshError::Handshake { .. }
                | SshError::Timeout { .. }
                | SshError::Lost { .. }
        )
    }
}

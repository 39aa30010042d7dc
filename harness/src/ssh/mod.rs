//! SSH plumbing: reach hosts, verify them, run commands, move files.
//!
//! One connection per host, opened once and reused for every command
//! ([`Session`]); every command has a timeout; connects retry with back-off
//! within the connect timeout ([`Backoff`]); all hosts are worked in
//! parallel ([`Hosts`]). Host keys are verified against a known_hosts file
//! before any credential is sent ([`KnownHosts`]). Every error names the
//! host and the cause ([`SshError`]). Remote commands are single `sh`
//! strings, built with [`sh_quote`]. Hosts are named as in `ssh n1`: the
//! user's OpenSSH config ([`OpenSshConfig`]) gives HostName, User, Port and
//! IdentityFile and ProxyJump ([`tunnel`]); encrypted keys are opened by
//! the agent or a passphrase ([`key_file`]).

pub mod backoff;
pub mod config;
pub mod error;
pub mod hosts;
pub mod key_file;
pub mod known_hosts;
pub mod openssh_config;
pub mod quote;
pub mod session;
pub mod tunnel;

pub use backoff::Backoff;
pub use config::{HostAddr, HostLogin, Identity, Password, SshConfig};
pub use error::SshError;
pub use hosts::{all_ok, par_map, HostErrors, Hosts};
pub use known_hosts::{HostKeyStatus, KnownHosts};
pub use openssh_config::{HostOptions, OpenSshConfig};
pub use quote::{sh_join, sh_quote};
pub use session::{sha256_file, CmdOutput, Session, Upload};

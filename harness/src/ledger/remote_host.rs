//! [`RemoteLogin`]: how the ledger reaches an SSH host again after the run
//! that used it died, and the heal of what that run left there.
//!
//! A remote run records one [`super::Resource::RemoteHost`] per host before
//! it makes anything there. Heal logs in with what was recorded (the host,
//! port, user, key files and known_hosts file; never a password) under
//! bounded timeouts, and runs [`crate::remote::leftovers::heal_run_script`]
//! for the run's id. An unreachable host is an error naming it: the ledger
//! keeps the entry for the next heal, and heal never waits longer than the
//! connect and command timeouts below.

use crate::remote::leftovers::{check_run_id, heal_run_script};
use crate::remote::Layout;
use crate::ssh::{HostAddr, HostLogin, Identity, Session, SshConfig};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The budget for reaching one host during heal, retries included.
pub const HEAL_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The limit for the heal script on one host (its own waits are bounded
/// well below this).
pub const HEAL_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How a run logged in to one host, as the ledger records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteLogin {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The one key offered (`--ssh-key`, a lab's key); none: the agent and
    /// `identity_files`, or OpenSSH's default keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_files: Vec<PathBuf>,
    pub known_hosts: PathBuf,
}

impl RemoteLogin {
    /// How `session` logs in.
    pub fn of(session: &Session) -> RemoteLogin {
        let cfg = session.config();
        let addr = session.addr();
        RemoteLogin {
            host: addr.host.clone(),
            port: addr.port,
            user: session.user().to_string(),
            key: match &cfg.identity {
                Identity::File(key) => Some(key.clone()),
                Identity::Default => None,
            },
            identity_files: cfg
                .logins
                .get(addr)
                .map(|l| l.identity_files.clone())
                .unwrap_or_default(),
            known_hosts: cfg.known_hosts.clone(),
        }
    }

    /// `user@host:port`, for messages.
    pub fn name(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// A session that logs in as the run did, with heal's timeouts; host
    /// keys are checked against the same known_hosts file, never accepted
    /// new.
    fn session(&self) -> Session {
        let addr = HostAddr {
            host: self.host.clone(),
            port: self.port,
        };
        let mut cfg = SshConfig::new(self.user.clone());
        cfg.port = self.port;
        cfg.known_hosts = self.known_hosts.clone();
        cfg.identity = match &self.key {
            Some(key) => Identity::File(key.clone()),
            None => Identity::Default,
        };
        cfg.connect_timeout = HEAL_CONNECT_TIMEOUT;
        cfg.command_timeout = HEAL_COMMAND_TIMEOUT;
        cfg.logins.insert(
            addr.clone(),
            HostLogin {
                identity_files: self.identity_files.clone(),
                ..HostLogin::default()
            },
        );
        Session::new(addr, Arc::new(cfg), Arc::new(Mutex::new(())))
    }
}

/// Removes what run `run_id` left on the host `login` names (nodes: its
/// node names there, for the messages); one line per thing removed, each
/// naming the host.
pub(super) fn undo(
    run_id: &str,
    login: &RemoteLogin,
    remote_dir: &str,
    nodes: &[String],
) -> anyhow::Result<Vec<String>> {
    check_run_id(run_id).map_err(anyhow::Error::msg)?;
    let layout = Layout::new(remote_dir).for_run(run_id);
    let session = login.session();
    let done = session
        .run_root(&heal_run_script(&layout, run_id, nodes))
        .with_context(|| {
            format!(
                "on {}: the run's daemons, chains and files could not be removed; \
                 the ledger keeps them for the next heal",
                login.name()
            )
        });
    session.disconnect();
    Ok(done?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("on {}: {}", login.name(), l.trim()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_round_trips_through_a_session() {
        let login = RemoteLogin {
            host: "10.77.0.11".into(),
            port: 22,
            user: "root".into(),
            key: Some("/tmp/lab/id_ed25519".into()),
            identity_files: vec![],
            known_hosts: "/tmp/lab/known_hosts".into(),
        };
        let session = login.session();
        assert_eq!(RemoteLogin::of(&session), login);
        assert_eq!(session.config().connect_timeout, HEAL_CONNECT_TIMEOUT);
        assert!(!session.config().accept_new, "host keys are checked");
        assert_eq!(login.name(), "root@10.77.0.11:22");
    }

    #[test]
    fn an_unreachable_host_is_an_error_naming_it() {
        // Loopback, a port nothing listens on: refused at once.
        let login = RemoteLogin {
            host: "127.0.0.1".into(),
            port: 1,
            user: "root".into(),
            key: None,
            identity_files: vec![],
            known_hosts: "/nonexistent/known_hosts".into(),
        };
        let e = undo("1a2b3c4d", &login, "/var/lib/faultline", &["n1".into()])
            .expect_err("nobody there");
        let text = format!("{e:#}");
        assert!(text.starts_with("on root@127.0.0.1:1: "), "{text}");
        assert!(text.contains("the ledger keeps them"), "{text}");
        let e = undo("../..", &login, "/var/lib/faultline", &[]).expect_err("refused");
        assert!(format!("{e}").contains("not one faultline makes"), "{e}");
    }
}

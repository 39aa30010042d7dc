//! [`Resource`]: one thing a run made that must not outlive it, as the
//! ledger records it, and how `heal` undoes it when the run could not.

use super::process::ProcessIdentity;
use super::remote_host::RemoteLogin;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Something a run created. Each kind says what undoing it means; `heal`
/// does exactly that and nothing more (see [`super::heal`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Resource {
    /// A process the run started: a node, an etcd member, a redis-server,
    /// a wrapper shell. Undone: SIGKILL to it and its process group, if it
    /// is still the same process.
    Process {
        /// Who it is in the run (`n1`, `n1 etcd`).
        name: String,
        #[serde(flatten)]
        identity: ProcessIdentity,
    },
    /// A process the run froze with SIGSTOP. Undone: SIGKILL, never
    /// SIGCONT: a node of a dead run must not wake up among a new run's.
    Paused {
        name: String,
        #[serde(flatten)]
        identity: ProcessIdentity,
    },
    /// An iptables chain of this machine, jumped to from INPUT or OUTPUT.
    /// Undone:
    /// the jumps deleted, the chain flushed and deleted.
    IptablesChain { chain: String },
    /// A file the run's processes read a fault from (a libfaketime
    /// timestamp file), or a folder of the run's outside the store (the
    /// private data folders, `faultline-<run id>`). Undone: deleted (a
    /// folder only if its name starts `faultline-`).
    File { path: PathBuf, what: String },
    /// What a remote run makes on one SSH host, all named by its run id
    /// (`remote::leftovers`): its node daemons and their children, its
    /// iptables chains, its folder of clock files under `remote_dir`.
    /// Recorded before the run makes anything there. Undone over SSH: the
    /// daemons killed (a paused one too, never resumed), the chains
    /// unhooked and deleted, the folder removed.
    RemoteHost {
        #[serde(flatten)]
        login: RemoteLogin,
        remote_dir: String,
        /// The run's nodes on the host (for messages).
        nodes: Vec<String>,
    },
    /// A lab being built by `faultline lab up` in `dir` (namespaces,
    /// bridge, sshd processes). Released once the lab is complete: from
    /// then on it is meant to stay until `lab down`. Undone: `lab down`.
    Lab { dir: PathBuf },
}

impl Resource {
    /// What it is, for messages: `node n1 (pid 4242)`.
    pub fn describe(&self) -> String {
        match self {
            Resource::Process { name, identity } => format!("{name} (pid {})", identity.pid),
            Resource::Paused { name, identity } => {
                format!("paused {name} (pid {})", identity.pid)
            }
            Resource::IptablesChain { chain } => format!("iptables chain {chain}"),
            Resource::File { path, what } => format!("{what} {}", path.display()),
            Resource::Lab { dir } => format!("lab in {}", dir.display()),
            Resource::RemoteHost { login, .. } => {
                format!("the run's daemons, chains and files on {}", login.name())
            }
        }
    }

    /// The order heal undoes kinds in: frozen processes first (so a
    /// process is reported as paused, not merely running), then processes,
    /// then what they used.
    pub(super) fn heal_rank(&self) -> u8 {
        match self {
            Resource::Paused { .. } => 0,
            Resource::Process { .. } => 1,
            Resource::RemoteHost { .. } => 1,
            Resource::IptablesChain { .. } => 2,
            Resource::File { .. } => 3,
            Resource::Lab { .. } => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_serialize_flat_and_tagged() {
        let r = Resource::Process {
            name: "n1".into(),
            identity: ProcessIdentity {
                pid: 42,
                start_ticks: 7,
            },
        };
        let text = serde_json::to_string(&r).expect("serialize");
        assert_eq!(
            text,
            r#"{"kind":"process","name":"n1","pid":42,"start_ticks":7}"#
        );
        assert_eq!(serde_json::from_str::<Resource>(&text).expect("parse"), r);
        let c = Resource::IptablesChain {
            chain: "FAULTLINE-1".into(),
        };
        assert_eq!(
            serde_json::to_string(&c).expect("serialize"),
            r#"{"kind":"iptables-chain","chain":"FAULTLINE-1"}"#
        );
        let h = Resource::RemoteHost {
            login: RemoteLogin {
                host: "10.77.0.11".into(),
                port: 22,
                user: "root".into(),
                key: Some("/lab/id_ed25519".into()),
                identity_files: vec![],
                known_hosts: "/lab/known_hosts".into(),
            },
            remote_dir: "/var/lib/faultline".into(),
            nodes: vec!["n1".into()],
        };
        let text = serde_json::to_string(&h).expect("serialize");
        assert_eq!(
            text,
            r#"{"kind":"remote-host","host":"10.77.0.11","port":22,"user":"root","key":"/lab/id_ed25519","known_hosts":"/lab/known_hosts","remote_dir":"/var/lib/faultline","nodes":["n1"]}"#
        );
        assert_eq!(serde_json::from_str::<Resource>(&text).expect("parse"), h);
    }
}

//! [`Resource`]: one thing a run made that must not outlive it, as the
//! ledger records it, and how `heal` undoes it when the run could not.

use super::process::ProcessIdentity;
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
        }
    }

    /// The order heal undoes kinds in: frozen processes first (so a
    /// process is reported as paused, not merely running), then processes,
    /// then what they used.
    pub(super) fn heal_rank(&self) -> u8 {
        match self {
            Resource::Paused { .. } => 0,
            Resource::Process { .. } => 1,
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
    }
}

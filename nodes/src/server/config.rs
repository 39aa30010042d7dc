//! What a node needs to know to run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::bug::Bug;
use crate::consensus::{GroupId, NodeId, TICK_INTERVAL_MS};

/// Which consensus core runs the groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsensusKind {
    Raft,
    Paxos,
}

impl ConsensusKind {
    pub fn name(self) -> &'static str {
        match self {
            ConsensusKind::Raft => "raft",
            ConsensusKind::Paxos => "paxos",
        }
    }
}

/// A node's configuration (built by `faultline node` from its flags).
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub listen: SocketAddr,
    /// Every node of the cluster with its address, this one included.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    pub data_dir: PathBuf,
    pub consensus: ConsensusKind,
    pub bugs: Vec<Bug>,
    /// Required as the first line of every connection when set. Never logged.
    pub auth_token: Option<String>,
    /// Consensus groups hosted by this node (client ops go to the first).
    pub groups: Vec<GroupId>,
    /// Real milliseconds between ticks at clock rate 1.
    pub tick_ms: u64,
    pub election_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub lease_reads: bool,
    /// A request not answered by then gets `timeout` (not definite).
    pub request_timeout: Duration,
    /// Snapshot the state machine every this many applied entries.
    pub snapshot_every_entries: u64,
}

impl NodeConfig {
    /// Defaults: group 0, 10 ms ticks, 150 ms election timeout (elections
    /// settle well within a second), 50 ms heartbeats.
    pub fn new(
        id: NodeId,
        listen: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
        data_dir: PathBuf,
    ) -> NodeConfig {
        NodeConfig {
            id,
            listen,
            peers,
            data_dir,
            consensus: ConsensusKind::Raft,
            bugs: Vec::new(),
            auth_token: None,
            groups: vec![GroupId(0)],
            tick_ms: TICK_INTERVAL_MS,
            election_timeout_ms: 150,
            heartbeat_ms: 50,
            lease_reads: false,
            request_timeout: Duration::from_secs(4),
            snapshot_every_entries: 10_000,
        }
    }

    pub fn has_bug(&self, bug: Bug) -> bool {
        self.bugs.contains(&bug)
    }

    /// Check the configuration; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self.peers.get(&self.id) {
            None => {
                return Err(format!(
                    "--peers does not list this node's id {}",
                    self.id.0
                ))
            }
            Some(addr) if addr.port() != self.listen.port() || addr.ip() != self.listen.ip() => {
                if !self.listen.ip().is_unspecified() {
                    return Err(format!(
                        "--peers gives node {} the address {addr}, but it listens on {}",
                        self.id.0, self.listen
                    ));
                }
            }
            Some(_) => {}
        }
        if self.peers.contains_key(&NodeId(0)) {
            return Err("node ids start at 1".into());
        }
        if self.tick_ms == 0 {
            return Err("--tick-ms must be at least 1".into());
        }
        if self.election_timeout_ms < 2 * self.tick_ms {
            return Err(format!(
                "--election-timeout-ms {} must be at least two ticks ({} ms)",
                self.election_timeout_ms,
                2 * self.tick_ms
            ));
        }
        if self.heartbeat_ms == 0 || self.heartbeat_ms >= self.election_timeout_ms {
            return Err(
                "the heartbeat interval must be positive and below the election timeout".into(),
            );
        }
        if self.groups.is_empty() {
            return Err("a node hosts at least one group".into());
        }
        Ok(())
    }

    pub fn election_timeout_ticks(&self) -> u64 {
        (self.election_timeout_ms / self.tick_ms).max(2)
    }

    pub fn heartbeat_interval_ticks(&self) -> u64 {
        (self.heartbeat_ms / self.tick_ms).max(1)
    }
}

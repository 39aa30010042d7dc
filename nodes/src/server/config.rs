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

/// How a sharded node splits the keyspace (`--shards`, `--replicas`,
/// `--members`, `--vnodes`). Every node of a cluster gets the same values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sharding {
    /// S: a key's (or lock's) shard is `ShardId::of_key(name, S)`; shard s
    /// is consensus group `GroupId(s)`.
    pub shards: u32,
    /// R: replicas of every shard.
    pub replicas: usize,
    /// The initial ring members (every node agrees on them): they decide
    /// which groups a node hosts from the start, and with which voters.
    pub members: Vec<NodeId>,
    /// Virtual nodes per member on the ring.
    pub vnodes: u32,
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
    /// Tokens, one of which is required as the first line of every
    /// connection when any is set (server::access). Never logged.
    pub tokens: super::access::Tokens,
    /// The audit log (server::audit); None: `<data_dir>/audit.jsonl`.
    pub audit_log: Option<PathBuf>,
    /// TLS on every connection, peers' mutual (`--tls-cert/--tls-key/--tls-ca`).
    pub tls: Option<crate::tls::NodeTls>,
    /// Unsharded: the consensus groups hosted by this node, every peer a
    /// voter (client ops go to the first). Ignored when `sharding` is set.
    pub groups: Vec<GroupId>,
    /// Sharded: the groups come from the ring's placement instead.
    pub sharding: Option<Sharding>,
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
            tokens: super::access::Tokens::default(),
            audit_log: None,
            tls: None,
            groups: vec![GroupId(0)],
            sharding: None,
            tick_ms: TICK_INTERVAL_MS,
            election_timeout_ms: 150,
            heartbeat_ms: 50,
            lease_reads: false,
            request_timeout: Duration::from_secs(4),
            snapshot_every_entries: 10_000,
        }
    }

    /// Where the audit log is written.
    pub fn audit_log_path(&self) -> PathBuf {
        self.audit_log
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit.jsonl"))
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
        if let Some(tls) = &self.tls {
            if tls.id() != self.id {
                return Err(format!(
                    "the TLS certificate is node {}'s, but this node is {}",
                    tls.id().0,
                    self.id.0
                ));
            }
        }
        let tokens = &self.tokens;
        let role_tokens = tokens.client.is_some() || tokens.admin.is_some();
        if role_tokens && tokens.for_peers().is_none() {
            return Err(
                "--client-token-file or --admin-token-file without --peer-token-file (or --auth-token-file): the node could not reach its peers".into(),
            );
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
        match &self.sharding {
            None if self.groups.is_empty() => {
                return Err("a node hosts at least one group".into());
            }
            None => {}
            Some(sh) => {
                if sh.shards == 0 {
                    return Err("--shards must be at least 1".into());
                }
                if sh.replicas == 0 {
                    return Err("--replicas must be at least 1".into());
                }
                if sh.vnodes == 0 {
                    return Err("--vnodes must be at least 1".into());
                }
                check_members("--members", &sh.members, &self.peers)?;
                if sh.replicas > sh.members.len() {
                    return Err(format!(
                        "--replicas {} is more than the {} --members",
                        sh.replicas,
                        sh.members.len()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether the node shards the keyspace.
    pub fn is_sharded(&self) -> bool {
        self.sharding.is_some()
    }

    pub fn election_timeout_ticks(&self) -> u64 {
        (self.election_timeout_ms / self.tick_ms).max(2)
    }

    pub fn heartbeat_interval_ticks(&self) -> u64 {
        (self.heartbeat_ms / self.tick_ms).max(1)
    }
}

/// Check a member (or voter) list from outside: not empty, no duplicates,
/// every id a known peer. `what` names the list in the error.
pub fn check_members(
    what: &str,
    members: &[NodeId],
    peers: &BTreeMap<NodeId, SocketAddr>,
) -> Result<(), String> {
    if members.is_empty() {
        return Err(format!("{what} is empty"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in members {
        if !seen.insert(*m) {
            return Err(format!("{what} lists node {} twice", m.0));
        }
        if !peers.contains_key(m) {
            return Err(format!(
                "{what} names node {}, which is not in --peers",
                m.0
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NodeConfig {
        let peers: BTreeMap<NodeId, SocketAddr> = (1..=4)
            .map(|i| {
                (
                    NodeId(i),
                    format!("127.0.0.{i}:700{i}").parse().expect("addr"),
                )
            })
            .collect();
        let listen = peers[&NodeId(1)];
        NodeConfig::new(NodeId(1), listen, peers, PathBuf::from("/nonexistent"))
    }

    #[test]
    fn sharding_flags_are_checked_with_a_clear_reason() {
        let mut c = cfg();
        c.sharding = Some(Sharding {
            shards: 4,
            replicas: 3,
            members: vec![NodeId(1), NodeId(2), NodeId(3)],
            vnodes: 128,
        });
        c.validate().expect("valid");
        let bad = |f: &dyn Fn(&mut Sharding), want: &str| {
            let mut c = c.clone();
            f(c.sharding.as_mut().expect("sharded"));
            let e = c.validate().expect_err(want);
            assert!(e.contains(want), "{e:?} should mention {want:?}");
        };
        bad(&|s| s.shards = 0, "--shards");
        bad(&|s| s.replicas = 0, "--replicas");
        bad(&|s| s.replicas = 4, "--replicas 4");
        bad(&|s| s.vnodes = 0, "--vnodes");
        bad(&|s| s.members = vec![], "--members is empty");
        bad(
            &|s| s.members = vec![NodeId(1), NodeId(1), NodeId(2)],
            "twice",
        );
        bad(
            &|s| s.members = vec![NodeId(1), NodeId(2), NodeId(9)],
            "node 9",
        );
    }
}

//! The cluster abstraction: what the harness and the nemesis may do to the
//! nodes under test, whatever runs them and whatever system they are.
//!
//! [`Cluster`] is implemented by [`local::LocalCluster`] (child processes on
//! this machine) and, for SSH hosts and the lab, by a remote implementation.
//! Both run any [`crate::system::System`]: the system says how to run a
//! node and what the node offers; the cluster runs it and breaks it.
//! Every method is synchronous (a remote implementation blocks on SSH); call
//! them from `spawn_blocking` in async code. Guarantees every implementation
//! must keep: each fault it can start it can undo ([`Cluster::heal_all`]
//! undoes every network, clock and pause fault at once), and
//! [`Cluster::teardown`] leaves nothing behind — no process, no packet
//! filter rule — and may be called any number of times.

pub mod admin;
pub mod clock_fault;
pub mod groups;
pub mod iptables;
pub mod local;
pub mod procfs;

pub use clock_fault::ClockFault;
use serde::Serialize;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a system's stop command ([`crate::system::System::stop_command`])
/// may run at the end of a run before it is killed and the node is stopped
/// by signals.
pub const NODE_STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// After a stop command succeeded, how long the node gets to exit before
/// it is stopped by signals.
pub const NODE_STOP_GRACE: Duration = Duration::from_secs(5);

/// A node's id, as `faultline node --id` takes it: 1, 2, …
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NodeId(pub u32);

impl NodeId {
    /// `n1`, `n2`, …: the node's name in histories and the store.
    pub fn name(self) -> String {
        format!("n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// What the harness knows about one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub name: String,
    /// Where clients (and admin requests) connect.
    pub client_addr: SocketAddr,
    /// Where the other nodes connect (the client address, for a system
    /// with one port).
    pub peer_addr: SocketAddr,
    /// Every port the node listens on, in the system's order
    /// ([`crate::system::Ports`]); the client and peer addresses are among
    /// them. Partitions and packet loss cut traffic on all of them.
    pub addrs: Vec<SocketAddr>,
}

impl NodeInfo {
    /// A node of a system whose clients and peers share one address.
    pub fn one_port(id: NodeId, addr: SocketAddr) -> NodeInfo {
        NodeInfo {
            id,
            name: id.name(),
            client_addr: addr,
            peer_addr: addr,
            addrs: vec![addr],
        }
    }
}

/// How a kind of fault is made. Recorded in test.json and in every nemesis
/// event, so a reader knows what "partition" meant in this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// Kernel packet filter rules (real packet drops).
    Iptables,
    /// The node's own message filter (admin `filter`).
    MessageFilter,
    /// tc netem on the host's interface, for packets to peers (SSH hosts).
    Netem,
    /// POSIX signals: SIGKILL, SIGSTOP/SIGCONT.
    Signal,
    /// LD_PRELOAD libfaketime with a per-node timestamp file.
    Libfaketime,
    /// The node's own clock offset (admin `clock`).
    NodeClock,
    /// The nodes' admin operations (`join-group`, `change-membership`,
    /// `set-members`): ring membership changes.
    Admin,
    /// Client connections that write requests and never read (the
    /// slow-reader fault), the node's memory read from /proc.
    UnreadConnections,
    /// Connections with wrong or missing credentials (the impostor).
    ImpostorConnections,
    /// This cluster cannot make this kind of fault (the system or the
    /// machine lacks what it takes); [`Cluster::unsupported`] says why.
    Unsupported,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Iptables => "iptables",
            Mechanism::MessageFilter => "message-filter",
            Mechanism::Netem => "netem",
            Mechanism::Signal => "signal",
            Mechanism::Libfaketime => "libfaketime",
            Mechanism::NodeClock => "node-clock",
            Mechanism::Admin => "admin",
            Mechanism::UnreadConnections => "unread-connections",
            Mechanism::ImpostorConnections => "impostor-connections",
            Mechanism::Unsupported => "unsupported",
        }
    }
}

/// The mechanism of each kind of fault in a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Mechanisms {
    pub partition: Mechanism,
    pub loss: Mechanism,
    pub latency: Mechanism,
    pub clock: Mechanism,
    pub kill: Mechanism,
    pub pause: Mechanism,
    pub membership: Mechanism,
    pub slow_reader: Mechanism,
    pub impostor: Mechanism,
}

impl Mechanisms {
    /// The mechanism of `kind`.
    pub fn get(&self, kind: crate::nemesis::FaultKind) -> Mechanism {
        use crate::nemesis::FaultKind;
        match kind {
            FaultKind::Partition => self.partition,
            FaultKind::Kill => self.kill,
            FaultKind::Pause => self.pause,
            FaultKind::Clock => self.clock,
            FaultKind::Loss => self.loss,
            FaultKind::Latency => self.latency,
            FaultKind::Membership => self.membership,
            FaultKind::SlowReader => self.slow_reader,
            FaultKind::Impostor => self.impostor,
        }
    }

    /// Sets the mechanism of `kind`.
    pub fn set(&mut self, kind: crate::nemesis::FaultKind, mechanism: Mechanism) {
        use crate::nemesis::FaultKind;
        let slot = match kind {
            FaultKind::Partition => &mut self.partition,
            FaultKind::Kill => &mut self.kill,
            FaultKind::Pause => &mut self.pause,
            FaultKind::Clock => &mut self.clock,
            FaultKind::Loss => &mut self.loss,
            FaultKind::Latency => &mut self.latency,
            FaultKind::Membership => &mut self.membership,
            FaultKind::SlowReader => &mut self.slow_reader,
            FaultKind::Impostor => &mut self.impostor,
        };
        *slot = mechanism;
    }
}

/// A symmetric cut between two nodes: neither hears the other.
pub type Cut = (NodeId, NodeId);

/// Control of a cluster of nodes under test.
pub trait Cluster: Send + Sync {
    fn nodes(&self) -> &[NodeInfo];
    fn mechanisms(&self) -> Mechanisms;
    /// Starts every node (each with its own data directory).
    fn start_all(&self) -> anyhow::Result<()>;
    /// Starts a node that is not running (after a kill).
    fn start(&self, node: NodeId) -> anyhow::Result<()>;
    /// Kills a node with SIGKILL: no chance to flush anything.
    fn kill(&self, node: NodeId) -> anyhow::Result<()>;
    /// Freezes a node (SIGSTOP).
    fn pause(&self, node: NodeId) -> anyhow::Result<()>;
    /// Thaws a paused node (SIGCONT).
    fn resume(&self, node: NodeId) -> anyhow::Result<()>;
    fn is_running(&self, node: NodeId) -> bool;
    /// Replaces the current partition by these cuts (empty: no partition).
    fn partition(&self, cuts: &[Cut]) -> anyhow::Result<()>;
    /// Drops this fraction of packets between every two nodes (0: none).
    fn set_loss(&self, probability: f64) -> anyhow::Result<()>;
    /// Delays every message between nodes by this much (0: none).
    fn set_latency(&self, delay_ms: u64) -> anyhow::Result<()>;
    /// Sets a node's clock off true time by an offset and a rate
    /// ([`ClockFault::TRUE`]: true time).
    fn set_clock(&self, node: NodeId, fault: ClockFault) -> anyhow::Result<()>;
    /// Undoes every partition, loss, latency and clock fault and resumes
    /// paused nodes. Killed nodes stay down (the nemesis restarts them).
    fn heal_all(&self) -> anyhow::Result<()>;
    /// Heals everything and stops every node. Idempotent; leaves no process
    /// and no filter rule behind.
    fn teardown(&self) -> anyhow::Result<()>;
    /// Heals everything and lets the nodes run on after the harness exits
    /// (`--leave-db-running`); returns how to reach each node and how to
    /// stop them, one line each. Teardown leaves them alone afterwards.
    fn leave_running(&self) -> anyhow::Result<String>;
    /// How this cluster's nodes are reached and faulted, for test.json.
    fn describe(&self) -> serde_json::Value;
    /// The version under test when the hosts, not this machine, decide it
    /// (remote hosts running a package's program: what they said to
    /// `--version`); None: the system's own [`System::version`].
    ///
    /// [`System::version`]: crate::system::System::version
    fn system_version(&self) -> Option<String> {
        None
    }
    /// Fails, naming the node, how it ended and its log's last lines, when
    /// a node the cluster started has exited by itself (called once the
    /// system is serving, before any fault: a member that listened, then
    /// died, must not leave a smaller cluster under test).
    fn verify_running(&self) -> anyhow::Result<()> {
        Ok(())
    }
    /// The last lines of a node's log, for error messages (None where the
    /// log is not at hand, e.g. on a remote host before teardown).
    fn log_tail(&self, node: NodeId) -> Option<String> {
        let _ = node;
        None
    }
    /// A node's memory (its processes' VmRSS and VmHWM), for the
    /// slow-reader fault; an error where the cluster cannot read it.
    fn memory(&self, node: NodeId) -> anyhow::Result<crate::nemesis::slow_reader::NodeMemory> {
        anyhow::bail!("{node}: this cluster cannot read a node's memory")
    }
    /// Resets a node's peak resident set to its current one, so the next
    /// [`Cluster::memory`] peaks over what came after; an error where the
    /// cluster cannot.
    fn reset_peak_memory(&self, node: NodeId) -> anyhow::Result<()> {
        anyhow::bail!("{node}: this cluster cannot reset a node's peak memory")
    }
    /// Why a kind of fault whose mechanism is [`Mechanism::Unsupported`]
    /// cannot be made here.
    fn unsupported(&self, kind: crate::nemesis::FaultKind) -> Option<String> {
        let _ = kind;
        None
    }
}

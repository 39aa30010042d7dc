//! `faultline node`: run one node of the system under test.
//!
//! Thin: parses flags into a [`NodeConfig`] and hands it to
//! `faultline_nodes::server::run`. Prints `faultline node ID listening on
//! ADDR` on stdout once the port is bound (the harness waits for it).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use faultline_nodes::bug::Bug;
use faultline_nodes::consensus::NodeId;
use faultline_nodes::server::access::Tokens;
use faultline_nodes::server::{self, ConsensusKind, NodeConfig, NodeError, Sharding};
use faultline_nodes::tls::{NodeTls, TlsFiles};

use crate::exit::{bad_input, Exit};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Consensus {
    Raft,
    Paxos,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the planted bugs (name, workload, nemesis, description; tab-separated) and exit.
    #[arg(long)]
    pub list_bugs: bool,
    /// This node's id (from 1).
    #[arg(long, required_unless_present = "list_bugs")]
    pub id: Option<u64>,
    /// Address to listen on for clients, admin tools and peers.
    #[arg(long, required_unless_present = "list_bugs")]
    pub listen: Option<SocketAddr>,
    /// Every node of the cluster, this one included: `1=127.0.0.1:7001,2=127.0.0.2:7002,...`.
    #[arg(long, required_unless_present = "list_bugs")]
    pub peers: Option<String>,
    /// Where the WAL and snapshots live (`DIR/group-N/`).
    #[arg(long, required_unless_present = "list_bugs")]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Consensus::Raft)]
    pub consensus: Consensus,
    /// Plant a bug (repeatable; `--list-bugs` lists them).
    #[arg(long = "bug")]
    pub bugs: Vec<Bug>,
    /// Require a token (the file's first line) on every connection; this
    /// one grants every role (client, admin, peer).
    #[arg(long)]
    pub auth_token_file: Option<PathBuf>,
    /// A token that grants the client role (data operations).
    #[arg(long)]
    pub client_token_file: Option<PathBuf>,
    /// A token that grants the admin role (status and the controls, and
    /// data operations).
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
    /// A token that grants the peer role (and that this node sends to its
    /// peers instead of --auth-token-file's).
    #[arg(long)]
    pub peer_token_file: Option<PathBuf>,
    /// The audit log (JSON lines, appended): every admin op and every
    /// refusal. Default: DATA_DIR/audit.jsonl.
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    /// This node's TLS certificate (PEM; it must name the node, see
    /// docs/protocol.md). With --tls-key and --tls-ca, every connection
    /// speaks TLS and peers use mutual TLS.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// The CA (PEM) that peers' and clients' certificates must chain to.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Write the process id here.
    #[arg(long)]
    pub pidfile: Option<PathBuf>,
    /// Append logs to this file instead of stderr.
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Milliseconds between consensus ticks.
    #[arg(long, default_value_t = 10)]
    pub tick_ms: u64,
    /// Minimum election timeout (each election waits between this and twice this).
    #[arg(long, default_value_t = 150)]
    pub election_timeout_ms: u64,
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// Serve reads under a leader lease instead of a ReadIndex round.
    #[arg(long)]
    pub lease_reads: bool,
    /// Answer `timeout` to a request not done after this long.
    #[arg(long, default_value_t = 4000)]
    pub request_timeout_ms: u64,
    /// Snapshot the state machine and compact the WAL every N applied entries.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// Split the keyspace into S shards, one consensus group each, placed
    /// on the ring (default: unsharded, one group of every peer).
    #[arg(long)]
    pub shards: Option<u32>,
    /// Replicas of every shard (with --shards).
    #[arg(long, default_value_t = 3, requires = "shards")]
    pub replicas: usize,
    /// The initial ring members, `1,2,3` (with --shards; default: every peer).
    #[arg(long, requires = "shards")]
    pub members: Option<String>,
    /// Virtual nodes per ring member (with --shards).
    #[arg(long, default_value_t = 128, requires = "shards")]
    pub vnodes: u32,
}

/// Parse `1,2,3` into node ids.
pub fn parse_members(s: &str) -> anyhow::Result<Vec<NodeId>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id: u64 = part
            .parse()
            .map_err(|_| bad_input(format!("--members: {part:?} is not a node id")))?;
        if id == 0 {
            return Err(bad_input("--members: node ids start at 1"));
        }
        out.push(NodeId(id));
    }
    if out.is_empty() {
        return Err(bad_input("--members lists no node"));
    }
    Ok(out)
}

/// Parse `1=host:port,2=host:port`.
pub fn parse_peers(s: &str) -> anyhow::Result<BTreeMap<NodeId, SocketAddr>> {
    let mut peers = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| bad_input(format!("--peers: {part:?} is not ID=HOST:PORT")))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| bad_input(format!("--peers: {id:?} is not a node id")))?;
        if id == 0 {
            return Err(bad_input("--peers: node ids start at 1"));
        }
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| bad_input(format!("--peers: {addr:?} is not an IP:PORT address")))?;
        if peers.insert(NodeId(id), addr).is_some() {
            return Err(bad_input(format!("--peers: node {id} is listed twice")));
        }
    }
    if peers.is_empty() {
        return Err(bad_input("--peers lists no node"));
    }
    Ok(peers)
}

/// Read a token for `flag`: the file's first line, trimmed, not empty.
/// Never logged.
fn read_token(flag: &str, path: Option<&PathBuf>) -> anyhow::Result<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_input(format!("{flag} {}: {e}", path.display())))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(bad_input(format!(
            "{flag} {}: the first line is empty",
            path.display()
        )));
    }
    Ok(Some(token))
}

/// The node's tokens from the four token flags.
fn tokens(args: &Args) -> anyhow::Result<Tokens> {
    Ok(Tokens {
        all: read_token("--auth-token-file", args.auth_token_file.as_ref())?,
        client: read_token("--client-token-file", args.client_token_file.as_ref())?,
        admin: read_token("--admin-token-file", args.admin_token_file.as_ref())?,
        peer: read_token("--peer-token-file", args.peer_token_file.as_ref())?,
    })
}

/// `--tls-cert`, `--tls-key` and `--tls-ca`: all three or none.
fn tls_files(args: &Args) -> anyhow::Result<Option<TlsFiles>> {
    match (&args.tls_cert, &args.tls_key, &args.tls_ca) {
        (None, None, None) => Ok(None),
        (Some(cert), Some(key), Some(ca)) => Ok(Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: ca.clone(),
        })),
        (cert, key, ca) => {
            let missing: Vec<&str> = [
                (cert.is_none(), "--tls-cert"),
                (key.is_none(), "--tls-key"),
                (ca.is_none(), "--tls-ca"),
            ]
            .into_iter()
            .filter_map(|(absent, flag)| absent.then_some(flag))
            .collect();
            Err(bad_input(format!(
                "--tls-cert, --tls-key and --tls-ca go together (all three or none); missing {}",
                missing.join(" and ")
            )))
        }
    }
}

/// Send this process's stderr (where logs go) to `path`, appending.
fn redirect_stderr(path: &PathBuf) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| bad_input(format!("--log-file {}: {e}", path.display())))?;
    // SAFETY: dup2 on two valid descriptors; fd 2 is replaced atomically.
    let rc = unsafe { libc::dup2(file.as_raw_fd(), 2) };
    if rc < 0 {
        anyhow::bail!(
            "redirecting stderr to {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    if args.list_bugs {
        for bug in Bug::ALL {
            crate::outln!("{}", bug.list_line());
        }
        return Ok(Exit::Valid);
    }
    let (Some(id), Some(listen), Some(peers), Some(data_dir)) = (
        args.id,
        args.listen,
        args.peers.as_deref(),
        args.data_dir.clone(),
    ) else {
        return Err(bad_input(
            "--id, --listen, --peers and --data-dir are required",
        ));
    };
    let peers = parse_peers(peers)?;
    if let Some(path) = &args.log_file {
        redirect_stderr(path)?;
    }
    let mut cfg = NodeConfig::new(NodeId(id), listen, peers, data_dir.clone());
    cfg.consensus = match args.consensus {
        Consensus::Raft => ConsensusKind::Raft,
        Consensus::Paxos => ConsensusKind::Paxos,
    };
    cfg.bugs = args.bugs.clone();
    cfg.bugs.dedup();
    cfg.tokens = tokens(&args)?;
    cfg.audit_log = args.audit_log.clone();
    cfg.tls = tls_files(&args)?
        .map(|files| NodeTls::load(&files, NodeId(id)))
        .transpose()
        .map_err(|e| bad_input(e.to_string()))?;
    cfg.tick_ms = args.tick_ms;
    cfg.election_timeout_ms = args.election_timeout_ms;
    cfg.heartbeat_ms = args.heartbeat_ms;
    cfg.lease_reads = args.lease_reads;
    cfg.request_timeout = Duration::from_millis(args.request_timeout_ms.max(1));
    cfg.snapshot_every_entries = args.snapshot_every.max(1);
    if let Some(shards) = args.shards {
        let members = match &args.members {
            Some(m) => parse_members(m)?,
            None => cfg.peers.keys().copied().collect(),
        };
        cfg.sharding = Some(Sharding {
            shards,
            replicas: args.replicas,
            members,
            vnodes: args.vnodes,
        });
    }
    cfg.validate().map_err(bad_input)?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating --data-dir {}", data_dir.display()))?;
    if let Some(pidfile) = &args.pidfile {
        std::fs::write(pidfile, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing --pidfile {}", pidfile.display()))?;
    }
    let result = server::run(cfg, |addr| {
        crate::outln!("faultline node {id} listening on {addr}");
        let _ = std::io::stdout().flush();
    });
    match result {
        Ok(()) => Ok(Exit::Valid),
        Err(NodeError::Config(msg)) => Err(bad_input(msg)),
        Err(e @ NodeError::Open { .. }) => Err(bad_input(e.to_string())),
        Err(e) => Err(anyhow::Error::new(e).context(format!("node {id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_bad_peers_are_bad_input() {
        let p = parse_peers("1=127.0.0.1:7001, 2=127.0.0.2:7002").expect("valid");
        assert_eq!(p.len(), 2);
        assert_eq!(p[&NodeId(2)], "127.0.0.2:7002".parse().expect("addr"));
        for bad in [
            "",
            "1",
            "x=127.0.0.1:1",
            "0=127.0.0.1:1",
            "1=nohost",
            "1=127.0.0.1:1,1=127.0.0.1:2",
        ] {
            let e = parse_peers(bad).expect_err(bad);
            assert_eq!(crate::exit::code_for(&Err(e)), 254, "{bad}");
        }
    }

    #[test]
    fn members_parse_and_bad_members_are_bad_input() {
        assert_eq!(
            parse_members("1, 2,3").expect("valid"),
            vec![NodeId(1), NodeId(2), NodeId(3)]
        );
        for bad in ["", ",", "x", "0,1", "1,-2"] {
            let e = parse_members(bad).expect_err(bad);
            assert_eq!(crate::exit::code_for(&Err(e)), 254, "{bad}");
        }
    }
}

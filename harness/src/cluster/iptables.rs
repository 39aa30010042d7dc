//! Real packet drops between nodes on this machine, with iptables.
//!
//! All rules of a run live in one chain, `FAULTLINE-<run id>`, jumped to
//! from INPUT, so cleanup is exact and never touches another run's rules or
//! anyone else's. Rules match source and destination address *and* the
//! nodes' ports (every port a node listens on: a system whose nodes talk on
//! several ports, such as Redis and its Sentinel, is cut on all of them),
//! so two runs on the same addresses never cut each other.
//! Every change rewrites the chain from the wanted state (partition cuts and
//! loss), so healing one fault keeps the others. [`Iptables::remove`]
//! deletes the jump and the chain; it is idempotent.
//!
//! Two ways to tell nodes apart. By address ([`Iptables::install`], the
//! chain jumped to from INPUT): for nodes that dial their peers from their
//! own address (faultline's node binds it). By socket owner
//! ([`Iptables::install_by_owner`], jumped to from OUTPUT, where the owner
//! match works): for programs that dial without binding, whose connections
//! all come from 127.0.0.1 (etcd). Each such node runs as a uid of its own;
//! a rule marks every connection a node opens with the node's number
//! (CONNMARK, in bits 16–23), and a cut drops a node's packets to the
//! other's peer port, and its packets on connections the other opened.

use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Mutex;

/// The prefix of every chain faultline creates.
pub const CHAIN_PREFIX: &str = "FAULTLINE-";

/// One node's listening addresses (one IP, one or more ports).
pub type NodeAddrs = Vec<SocketAddr>;

#[derive(Default)]
struct Wanted {
    /// Pairs of nodes that must not hear each other.
    cuts: Vec<(NodeAddrs, NodeAddrs)>,
    /// Probability of dropping a packet between any two nodes.
    loss: f64,
    /// Every node's addresses (for loss).
    nodes: Vec<NodeAddrs>,
}

/// The bits of a connection's mark that name the node that opened it.
const MARK_MASK: u32 = 0x00ff_0000;

/// The built-in chain a run's chain is jumped to from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Anchor {
    Input,
    Output,
}

impl Anchor {
    fn name(self) -> &'static str {
        match self {
            Anchor::Input => "INPUT",
            Anchor::Output => "OUTPUT",
        }
    }
}

/// A run's iptables chain.
pub struct Iptables {
    chain: String,
    /// By owner: each node's uid, in the order of `Wanted::nodes`.
    owners: Option<Vec<u32>>,
    wanted: Mutex<Wanted>,
    installed: Mutex<bool>,
}

fn iptables(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .context("running iptables")?;
    if !out.status.success() {
        bail!(
            "iptables {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Iptables {
    /// True when this process may change packet filter rules: it runs as
    /// root and `iptables` works.
    pub fn usable() -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        root && Command::new("iptables")
            .args(["-w", "-n", "-L", "INPUT"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// The chain name for a run id (letters and digits).
    pub fn chain_for(run_id: &str) -> String {
        format!("{CHAIN_PREFIX}{run_id}")
    }

    /// Creates the chain and the jump from INPUT: nodes told apart by
    /// address (`nodes`: every port of each node).
    pub fn install(run_id: &str, nodes: Vec<NodeAddrs>) -> anyhow::Result<Iptables> {
        Self::create(run_id, nodes, Anchor::Input, None)
    }

    /// Creates the chain and the jump from OUTPUT: nodes told apart by the
    /// uid each runs as (`owners[i]` for `nodes[i]`).
    pub fn install_by_owner(
        run_id: &str,
        nodes: Vec<NodeAddrs>,
        owners: Vec<u32>,
    ) -> anyhow::Result<Iptables> {
        assert_eq!(nodes.len(), owners.len(), "one owner per node");
        assert!(nodes.len() < 256, "node numbers fit the mark's 8 bits");
        Self::create(run_id, nodes, Anchor::Output, Some(owners))
    }

    fn create(
        run_id: &str,
        nodes: Vec<NodeAddrs>,
        anchor: Anchor,
        owners: Option<Vec<u32>>,
    ) -> anyhow::Result<Iptables> {
        let chain = Self::chain_for(run_id);
        assert!(
            chain.len() <= 28,
            "iptables chain names have at most 28 characters"
        );
        iptables(&["-N", &chain]).with_context(|| format!("creating chain {chain}"))?;
        let ipt = Iptables {
            chain,
            owners,
            wanted: Mutex::new(Wanted {
                nodes,
                ..Wanted::default()
            }),
            installed: Mutex::new(true),
        };
        iptables(&["-I", anchor.name(), "1", "-j", &ipt.chain])
            .with_context(|| format!("jumping from {} to our chain", anchor.name()))?;
        // By owner, connections must be marked from the start.
        ipt.apply()?;
        Ok(ipt)
    }

    pub fn chain(&self) -> &str {
        &self.chain
    }

    pub fn set_cuts(&self, cuts: Vec<(NodeAddrs, NodeAddrs)>) -> anyhow::Result<()> {
        self.wanted
            .lock()
            .expect("iptables state lock poisoned")
            .cuts = cuts;
        self.apply()
    }

    pub fn set_loss(&self, probability: f64) -> anyhow::Result<()> {
        self.wanted
            .lock()
            .expect("iptables state lock poisoned")
            .loss = probability;
        self.apply()
    }

    /// Removes every rule but keeps the chain.
    pub fn clear(&self) -> anyhow::Result<()> {
        {
            let mut w = self.wanted.lock().expect("iptables state lock poisoned");
            w.cuts.clear();
            w.loss = 0.0;
        }
        self.apply()
    }

    /// The rules that cut `a`'s traffic to `b`, in one direction of
    /// arrival: packets from a to b, of connections to any of b's ports (a's
    /// requests) or from any of a's ports (a's replies to b's connections).
    fn link_rules(a: &[SocketAddr], b: &[SocketAddr]) -> Vec<Vec<String>> {
        let (Some(first_a), Some(first_b)) = (a.first(), b.first()) else {
            return Vec::new();
        };
        let (ia, ib) = (first_a.ip().to_string(), first_b.ip().to_string());
        let rule = |direction: &str, port: u16| -> Vec<String> {
            [
                "-s",
                &ia,
                "-d",
                &ib,
                "-p",
                "tcp",
                direction,
                &port.to_string(),
            ]
            .map(String::from)
            .to_vec()
        };
        let requests = b.iter().map(|p| rule("--dport", p.port()));
        let replies = a.iter().map(|p| rule("--sport", p.port()));
        requests.chain(replies).collect()
    }

    /// By owner: the mark of node number `i` (from 0) in a connection's mark.
    fn mark(i: usize) -> String {
        let m = u32::try_from(i + 1).expect("fewer than 256 nodes") << 16;
        format!("{m:#x}/{MARK_MASK:#x}")
    }

    /// By owner: the rules that cut node `a`'s traffic to node `b` (by
    /// index): its packets to any of b's ports, and its packets on the
    /// connections b opened to any of a's ports.
    fn owner_rules(&self, nodes: &[NodeAddrs], a: usize, b: usize) -> Vec<Vec<String>> {
        let owners = self.owners.as_ref().expect("owner mode");
        let uid = owners[a].to_string();
        let s = |x: &str| x.to_string();
        let requests = nodes[b].iter().map(|nb| {
            vec![
                s("-m"),
                s("owner"),
                s("--uid-owner"),
                uid.clone(),
                s("-d"),
                nb.ip().to_string(),
                s("-p"),
                s("tcp"),
                s("--dport"),
                nb.port().to_string(),
            ]
        });
        let replies = nodes[a].iter().map(|na| {
            vec![
                s("-m"),
                s("owner"),
                s("--uid-owner"),
                uid.clone(),
                s("-m"),
                s("connmark"),
                s("--mark"),
                Self::mark(b),
                s("-s"),
                na.ip().to_string(),
                s("-p"),
                s("tcp"),
                s("--sport"),
                na.port().to_string(),
            ]
        });
        requests.chain(replies).collect()
    }

    /// The rules of one direction of a cut, in the chain's mode.
    fn directed_rules(&self, w: &Wanted, a: &[SocketAddr], b: &[SocketAddr]) -> Vec<Vec<String>> {
        if self.owners.is_none() {
            return Self::link_rules(a, b);
        }
        let index = |x: &[SocketAddr]| w.nodes.iter().position(|n| n.as_slice() == x);
        match (index(a), index(b)) {
            (Some(ia), Some(ib)) => self.owner_rules(&w.nodes, ia, ib),
            _ => Vec::new(),
        }
    }

    fn apply(&self) -> anyhow::Result<()> {
        let installed = self
            .installed
            .lock()
            .expect("iptables install lock poisoned");
        if !*installed {
            bail!("chain {} was removed", self.chain);
        }
        let w = self.wanted.lock().expect("iptables state lock poisoned");
        iptables(&["-F", &self.chain])?;
        if let Some(owners) = &self.owners {
            for (i, uid) in owners.iter().enumerate() {
                let uid = uid.to_string();
                let mark = Self::mark(i);
                iptables(&[
                    "-A",
                    &self.chain,
                    "-m",
                    "owner",
                    "--uid-owner",
                    &uid,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "NEW",
                    "-j",
                    "CONNMARK",
                    "--set-xmark",
                    &mark,
                ])?;
            }
        }
        for (a, b) in &w.cuts {
            for rule in self
                .directed_rules(&w, a, b)
                .into_iter()
                .chain(self.directed_rules(&w, b, a))
            {
                let mut args: Vec<&str> = vec!["-A", &self.chain];
                args.extend(rule.iter().map(String::as_str));
                args.extend(["-j", "DROP"]);
                iptables(&args)?;
            }
        }
        if w.loss > 0.0 {
            let p = format!("{:.4}", w.loss.clamp(0.0, 1.0));
            for a in &w.nodes {
                for b in &w.nodes {
                    if a == b {
                        continue;
                    }
                    for rule in self.directed_rules(&w, a, b) {
                        let mut args: Vec<&str> = vec!["-A", &self.chain];
                        args.extend(rule.iter().map(String::as_str));
                        args.extend([
                            "-m",
                            "statistic",
                            "--mode",
                            "random",
                            "--probability",
                            &p,
                            "-j",
                            "DROP",
                        ]);
                        iptables(&args)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes the jump and the chain. Idempotent.
    pub fn remove(&self) -> anyhow::Result<()> {
        let mut installed = self
            .installed
            .lock()
            .expect("iptables install lock poisoned");
        if !*installed {
            return Ok(());
        }
        remove_chain(&self.chain)?;
        *installed = false;
        Ok(())
    }
}

/// Deletes every jump from INPUT or OUTPUT to `chain`, then the chain.
/// Succeeds if the chain does not exist.
pub fn remove_chain(chain: &str) -> anyhow::Result<()> {
    while iptables(&["-D", "INPUT", "-j", chain]).is_ok() {}
    while iptables(&["-D", "OUTPUT", "-j", chain]).is_ok() {}
    if chain_exists(chain) {
        iptables(&["-F", chain])?;
        iptables(&["-X", chain])?;
    }
    Ok(())
}

/// True when `chain` exists in the filter table.
pub fn chain_exists(chain: &str) -> bool {
    Command::new("iptables")
        .args(["-w", "-n", "-L", chain])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Drop for Iptables {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::error!(chain = %self.chain, "removing iptables chain failed: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> NodeAddrs {
        list.iter()
            .map(|a| a.parse().expect("socket address"))
            .collect()
    }

    #[test]
    fn a_cut_matches_every_port_of_both_nodes() {
        let a = addrs(&["127.0.0.11:22001", "127.0.0.11:22002"]);
        let b = addrs(&["127.0.0.12:22003", "127.0.0.12:22004"]);
        let rules: Vec<String> = Iptables::link_rules(&a, &b)
            .iter()
            .map(|r| r.join(" "))
            .collect();
        assert_eq!(
            rules,
            [
                "-s 127.0.0.11 -d 127.0.0.12 -p tcp --dport 22003",
                "-s 127.0.0.11 -d 127.0.0.12 -p tcp --dport 22004",
                "-s 127.0.0.11 -d 127.0.0.12 -p tcp --sport 22001",
                "-s 127.0.0.11 -d 127.0.0.12 -p tcp --sport 22002",
            ]
        );
        assert!(Iptables::link_rules(&a, &[]).is_empty());
    }
}

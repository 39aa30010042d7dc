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

/// A run's iptables chain.
pub struct Iptables {
    chain: String,
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

    /// Creates the chain and the jump from INPUT.
    pub fn install(run_id: &str, nodes: Vec<NodeAddrs>) -> anyhow::Result<Iptables> {
        let chain = Self::chain_for(run_id);
        assert!(
            chain.len() <= 28,
            "iptables chain names have at most 28 characters"
        );
        iptables(&["-N", &chain]).with_context(|| format!("creating chain {chain}"))?;
        let ipt = Iptables {
            chain,
            wanted: Mutex::new(Wanted {
                nodes,
                ..Wanted::default()
            }),
            installed: Mutex::new(true),
        };
        iptables(&["-I", "INPUT", "1", "-j", &ipt.chain])
            .context("jumping from INPUT to our chain")?;
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
        for (a, b) in &w.cuts {
            for rule in Self::link_rules(a, b)
                .into_iter()
                .chain(Self::link_rules(b, a))
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
                    for rule in Self::link_rules(a, b) {
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

/// Deletes every jump from INPUT to `chain`, then the chain. Succeeds if
/// the chain does not exist.
pub fn remove_chain(chain: &str) -> anyhow::Result<()> {
    while iptables(&["-D", "INPUT", "-j", chain]).is_ok() {}
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

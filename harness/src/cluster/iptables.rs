//! Real packet drops between nodes on this machine, with iptables.
//!
//! All rules of a run live in one chain, `FAULTLINE-<run id>`, jumped to
//! from INPUT, so cleanup is exact and never touches another run's rules or
//! anyone else's. Rules match source and destination address *and* the
//! nodes' ports, so two runs on the same addresses never cut each other.
//! Every change rewrites the chain from the wanted state (partition cuts and
//! loss), so healing one fault keeps the others. [`Iptables::remove`]
//! deletes the jump and the chain; it is idempotent.

use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Mutex;

/// The prefix of every chain faultline creates.
pub const CHAIN_PREFIX: &str = "FAULTLINE-";

#[derive(Default)]
struct Wanted {
    /// Pairs of node addresses that must not hear each other.
    cuts: Vec<(SocketAddr, SocketAddr)>,
    /// Probability of dropping a packet between any two nodes.
    loss: f64,
    /// Every node address (for loss).
    nodes: Vec<SocketAddr>,
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
    pub fn install(run_id: &str, nodes: Vec<SocketAddr>) -> anyhow::Result<Iptables> {
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

    pub fn set_cuts(&self, cuts: Vec<(SocketAddr, SocketAddr)>) -> anyhow::Result<()> {
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

    /// The rules that cut `a`'s traffic to and from `b`, in one direction
    /// of arrival: packets from a to b, of connections to either's port.
    fn link_rules(a: SocketAddr, b: SocketAddr) -> Vec<Vec<String>> {
        let (ia, ib) = (a.ip().to_string(), b.ip().to_string());
        let (pa, pb) = (a.port().to_string(), b.port().to_string());
        vec![
            // a's connection to b's port: a's requests arrive at b.
            vec![
                "-s".into(),
                ia.clone(),
                "-d".into(),
                ib.clone(),
                "-p".into(),
                "tcp".into(),
                "--dport".into(),
                pb,
            ],
            // b's connection to a's port: a's replies arrive at b.
            vec![
                "-s".into(),
                ia,
                "-d".into(),
                ib,
                "-p".into(),
                "tcp".into(),
                "--sport".into(),
                pa,
            ],
        ]
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
        for &(a, b) in &w.cuts {
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
            for &a in &w.nodes {
                for &b in &w.nodes {
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

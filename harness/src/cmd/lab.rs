//! `faultline lab`: build, inspect and tear down a lab of SSH hosts on this
//! machine (network namespaces on a private bridge, one sshd each), and
//! check or deploy to any set of hosts over SSH (`ping`, `deploy`).

use crate::exit::Exit;
use crate::lab::{self, UpOptions, UpOutcome};
use crate::remote::{RemoteArgs, RemoteHosts};
use crate::ssh::{Hosts, Upload};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Build N hosts (root): namespaces on bridge fl-lab-br, 10.77.0.11…, sshd each.
    Up {
        /// How many hosts.
        #[arg(long, default_value_t = 5)]
        hosts: usize,
        /// Folder for the lab's key, known_hosts, nodes file and host files.
        #[arg(long, default_value = "faultline-lab")]
        dir: PathBuf,
        /// The store whose ledger records the lab while it is being built,
        /// so that `faultline heal` takes down one left half-built.
        #[arg(long, default_value = "store")]
        store: PathBuf,
    },
    /// Show each host of the lab: namespace, process, sshd.
    Status {
        #[arg(long, default_value = "faultline-lab")]
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove every namespace, link, rule and process of the lab (root).
    Down {
        #[arg(long, default_value = "faultline-lab")]
        dir: PathBuf,
    },
    /// Connect to hosts over SSH and run one command on each: checks keys,
    /// host keys and reachability exactly as `faultline test` would; prints
    /// each host's hostname and the user logged in as.
    Ping {
        #[command(flatten)]
        remote: RemoteArgs,
        /// Run the command this many times on each host (reports the mean).
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Deploy the node executable to hosts (what `faultline test` does first).
    Deploy {
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.command {
        LabCommand::Up { hosts, dir, store } => up(hosts, &dir, &store),
        LabCommand::Status { dir, json } => status(&dir, json),
        LabCommand::Down { dir } => down(&dir),
        LabCommand::Ping { remote, count } => ping(&remote, count.max(1)),
        LabCommand::Deploy { remote } => deploy(&remote),
    }
}

fn up(hosts: usize, dir: &Path, store: &Path) -> anyhow::Result<Exit> {
    let start = Instant::now();
    // A lab being built is the run's until it is complete: written down
    // first, so a `lab up` killed halfway leaves a lab the next heal takes
    // down. lab::up takes down what it built on any error it returns.
    let ledger = crate::ledger::Ledger::open(store, "lab up", None)
        .context("opening the ledger for the lab being built")?;
    let building = match lab::LabState::load(dir)? {
        Some(_) => None, // already up (or recorded): not this run's to undo
        None => Some(ledger.record(crate::ledger::Resource::Lab {
            dir: dir.to_path_buf(),
        })?),
    };
    let outcome = lab::up(&UpOptions {
        hosts,
        dir: dir.to_path_buf(),
        ready_timeout: Duration::from_secs(20),
    });
    if let Some(held) = building {
        held.release()?;
    }
    ledger.close()?;
    let outcome = outcome?;
    let (st, verb) = match &outcome {
        UpOutcome::Built(st) => (st, "built"),
        UpOutcome::AlreadyUp(st) => (st, "already up"),
    };
    crate::errln!(
        "lab {verb}: {} hosts in {} ms",
        st.hosts.len(),
        start.elapsed().as_millis()
    );
    for h in &st.hosts {
        crate::outln!("{}\t{}", h.ns, h.addr);
    }
    let d = st.dir.display();
    crate::outln!("nodes file:  {d}/nodes");
    crate::outln!("ssh key:     {d}/id_ed25519");
    crate::outln!("known_hosts: {d}/known_hosts");
    crate::outln!("run a test on it:");
    crate::outln!("  faultline test --lab {d}");
    crate::outln!("  (the same as: faultline test --nodes-file {d}/nodes --ssh-user root --ssh-key {d}/id_ed25519 --known-hosts {d}/known_hosts)");
    crate::outln!(
        "log in:      ssh -i {d}/id_ed25519 -o UserKnownHostsFile={d}/known_hosts root@{}",
        st.hosts[0].addr
    );
    crate::outln!("take it down: faultline lab down --dir {d}");
    Ok(Exit::Valid)
}

fn status(dir: &Path, json: bool) -> anyhow::Result<Exit> {
    let Some(st) = lab::LabState::load(dir)? else {
        let left = lab::leftovers();
        if left.is_empty() {
            anyhow::bail!(
                "no lab in {} (`faultline lab up --dir {}` builds one)",
                dir.display(),
                dir.display()
            );
        }
        anyhow::bail!(
            "no lab record in {}, but lab objects exist: {}",
            dir.display(),
            left.join(", ")
        );
    };
    let s = lab::status(&st);
    if json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&s).expect("status serializes")
        );
    } else {
        let mut t = comfy_table::Table::new();
        t.set_header(["host", "address", "namespace", "process", "sshd"]);
        let yn = |b: bool| if b { "up" } else { "DOWN" };
        for h in &s.hosts {
            t.add_row([
                h.ns.as_str(),
                h.addr.as_str(),
                yn(h.namespace),
                yn(h.process),
                yn(h.sshd),
            ]);
        }
        crate::outln!("{t}");
        crate::outln!(
            "lab {} in {}",
            if s.healthy() {
                "healthy"
            } else if s.complete {
                "DEGRADED"
            } else {
                "HALF BUILT"
            },
            s.dir
        );
    }
    if s.healthy() {
        Ok(Exit::Valid)
    } else {
        anyhow::bail!(
            "the lab in {} is not healthy (see above); `faultline lab down --dir {}` then up again",
            dir.display(),
            dir.display()
        )
    }
}

fn down(dir: &Path) -> anyhow::Result<Exit> {
    let start = Instant::now();
    let r = lab::down(dir)?;
    crate::errln!(
        "lab down in {} ms: {} namespaces, {} links, {} processes, {} rules removed; nothing left",
        start.elapsed().as_millis(),
        r.namespaces.len(),
        r.links.len(),
        r.processes,
        r.rules
    );
    Ok(Exit::Valid)
}

fn hosts_from(remote: &RemoteArgs, cmd: &str) -> anyhow::Result<crate::remote::RemotePlan> {
    remote.resolve()?.ok_or_else(|| {
        crate::exit::bad_input(format!(
            "`faultline lab {cmd}` needs --nodes, --nodes-file or --lab"
        ))
    })
}

fn ping(remote: &RemoteArgs, count: u32) -> anyhow::Result<Exit> {
    let plan = hosts_from(remote, "ping")?;
    let hosts = Hosts::new(plan.hosts.clone(), plan.ssh.clone());
    let results = hosts.each(|_, s| {
        let start = Instant::now();
        s.connect()?;
        let connect = start.elapsed();
        let t = Instant::now();
        let command = "echo \"$(hostname) $(id -un)\"";
        let mut out = s.exec(command, plan.ssh.command_timeout)?;
        for _ in 1..count {
            out = s.exec(command, plan.ssh.command_timeout)?;
        }
        Ok::<_, crate::ssh::SshError>((out.stdout.trim().to_string(), connect, t.elapsed() / count))
    });
    let mut failed = Vec::new();
    for (s, r) in hosts.sessions().iter().zip(results) {
        match r {
            Ok((who, connect, cmd)) => {
                let (name, user) = who.split_once(' ').unwrap_or((who.as_str(), ""));
                crate::outln!(
                    "{}\tok\thostname={name}\tuser={user}\tconnect_ms={}\tcommand_us={}",
                    s.name(),
                    connect.as_millis(),
                    cmd.as_micros()
                )
            }
            Err(e) => {
                crate::outln!("{}\tFAILED", s.name());
                failed.push(e);
            }
        }
    }
    if !failed.is_empty() {
        return Err(anyhow::Error::new(crate::ssh::HostErrors(failed)));
    }
    Ok(Exit::Valid)
}

fn deploy(remote: &RemoteArgs) -> anyhow::Result<Exit> {
    let plan = hosts_from(remote, "deploy")?;
    let mut hosts = RemoteHosts::new(&plan);
    let start = Instant::now();
    let deployed = hosts.prepare(&[]).context("deploying")?;
    for d in &deployed {
        let what = match d.upload {
            Upload::Sent { bytes } => format!("sent {bytes} bytes"),
            Upload::AlreadyThere => "already there (same sha256)".to_string(),
        };
        crate::outln!(
            "{}\t{what}\t{}\t{} ms",
            d.host,
            d.version,
            d.elapsed.as_millis()
        );
    }
    crate::outln!(
        "deployed {} to {} hosts in {} ms",
        plan.node_bin.display(),
        deployed.len(),
        start.elapsed().as_millis()
    );
    Ok(Exit::Valid)
}

//! The command-line flags of remote mode, shared by `faultline test` and
//! `faultline lab ping|deploy`, and their resolution into hosts and an
//! [`SshConfig`].
//!
//! Guarantee: every bad flag value (an unreadable nodes file, a missing key,
//! a malformed host, a duplicate host) is a bad-input error (exit 254) that
//! names the flag or file and line.

use crate::exit::bad_input;
use crate::ssh::{HostAddr, Identity, SshConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Flags that switch a run to SSH hosts and say how to reach them.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// Hosts to run the nodes on over SSH, comma-separated (`host` or
    /// `host:port`). Switches to remote mode.
    #[arg(long = "nodes", value_name = "HOSTS", value_delimiter = ',', num_args = 1..)]
    pub nodes: Vec<String>,
    /// A file of hosts, one a line (`#` comments). Switches to remote mode.
    #[arg(long, value_name = "FILE", conflicts_with = "nodes")]
    pub nodes_file: Option<PathBuf>,
    /// A lab made by `faultline lab up`: shorthand for its nodes file, key
    /// and known_hosts (flags given as well take precedence).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["nodes", "nodes_file"])]
    pub lab: Option<PathBuf>,
    /// SSH user; commands that need root run with `sudo -n` when not root.
    #[arg(long, value_name = "USER", default_value = "root")]
    pub ssh_user: String,
    /// Private key. Default: the SSH agent, then ~/.ssh/id_ed25519, ~/.ssh/id_rsa.
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    /// Port for hosts given without one.
    #[arg(long, value_name = "PORT", default_value_t = 22)]
    pub ssh_port: u16,
    /// Host keys are checked against this file. Default: ~/.ssh/known_hosts.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Record host keys not yet in the known_hosts file instead of refusing
    /// them. A changed key is refused all the same.
    #[arg(long)]
    pub ssh_accept_new: bool,
    /// Budget for reaching one host, retries included (`10s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub ssh_connect_timeout: Duration,
    /// Limit for one remote command.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub ssh_command_timeout: Duration,
    /// The executable to deploy as the node (default: this `faultline`).
    #[arg(long, value_name = "FILE")]
    pub node_bin: Option<PathBuf>,
    /// Install missing tools (iptables, tc, libfaketime) with apt-get.
    #[arg(long)]
    pub install_deps: bool,
    /// Port every node listens on, on its host's address (remote mode).
    #[arg(long, value_name = "PORT", default_value_t = 7000)]
    pub node_port: u16,
    /// Folder on each host for the executable, node data, pidfiles and logs.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/faultline")]
    pub remote_dir: String,
}

/// Hosts and how to reach them, from [`RemoteArgs`].
#[derive(Debug, Clone)]
pub struct RemotePlan {
    pub hosts: Vec<HostAddr>,
    pub node_port: u16,
    pub ssh: SshConfig,
    pub node_bin: PathBuf,
    pub install_deps: bool,
    pub remote_dir: String,
}

impl RemoteArgs {
    /// Whether these flags ask for remote mode at all.
    pub fn is_remote(&self) -> bool {
        !self.nodes.is_empty() || self.nodes_file.is_some() || self.lab.is_some()
    }

    /// Resolves the flags; `None` when remote mode is not asked for.
    pub fn resolve(&self) -> anyhow::Result<Option<RemotePlan>> {
        if !self.is_remote() {
            return Ok(None);
        }
        let mut ssh = SshConfig::new(self.ssh_user.clone());
        if self.ssh_user.is_empty() || self.ssh_user.contains(char::is_whitespace) {
            return Err(bad_input(format!(
                "--ssh-user {:?} is not a user name",
                self.ssh_user
            )));
        }
        if self.ssh_port == 0 {
            return Err(bad_input("--ssh-port 0 is not a port"));
        }
        ssh.port = self.ssh_port;
        ssh.accept_new = self.ssh_accept_new;
        ssh.connect_timeout = self.ssh_connect_timeout;
        ssh.command_timeout = self.ssh_command_timeout;

        let hosts = if let Some(lab) = &self.lab {
            let nodes = lab.join("nodes");
            if !nodes.exists() {
                return Err(bad_input(format!(
                    "--lab {}: no nodes file there; is a lab up? (`faultline lab up --dir {}`)",
                    lab.display(),
                    lab.display()
                )));
            }
            ssh.identity = Identity::File(lab.join("id_ed25519"));
            ssh.known_hosts = lab.join("known_hosts");
            read_hosts_file(&nodes, self.ssh_port, "--lab")?
        } else if let Some(file) = &self.nodes_file {
            read_hosts_file(file, self.ssh_port, "--nodes-file")?
        } else {
            let mut hosts = Vec::new();
            for n in &self.nodes {
                hosts.push(
                    HostAddr::parse(n, self.ssh_port)
                        .map_err(|e| bad_input(format!("--nodes: {e}")))?,
                );
            }
            hosts
        };
        if hosts.is_empty() {
            return Err(bad_input(
                "remote mode needs at least one host (--nodes, --nodes-file or --lab)",
            ));
        }
        for (i, h) in hosts.iter().enumerate() {
            if hosts[..i].contains(h) {
                return Err(bad_input(format!("host {h} is listed twice")));
            }
        }
        if let Some(key) = &self.ssh_key {
            ssh.identity = Identity::File(key.clone());
        }
        if let Identity::File(key) = &ssh.identity {
            if let Err(e) = std::fs::File::open(key) {
                return Err(bad_input(format!("SSH key {}: {e}", key.display())));
            }
        }
        if let Some(kh) = &self.known_hosts {
            ssh.known_hosts = kh.clone();
        }
        let node_bin = match &self.node_bin {
            Some(p) => {
                if !p.is_file() {
                    return Err(bad_input(format!("--node-bin {}: not a file", p.display())));
                }
                p.clone()
            }
            None => std::env::current_exe()
                .map_err(|e| anyhow::anyhow!("finding this executable to deploy: {e}"))?,
        };
        if !self.remote_dir.starts_with('/') || self.remote_dir.contains(char::is_whitespace) {
            return Err(bad_input(format!(
                "--remote-dir {:?} must be an absolute path without spaces",
                self.remote_dir
            )));
        }
        if self.node_port == 0 {
            return Err(bad_input("--node-port 0 is not a port"));
        }
        Ok(Some(RemotePlan {
            hosts,
            node_port: self.node_port,
            ssh,
            node_bin,
            install_deps: self.install_deps,
            remote_dir: self.remote_dir.trim_end_matches('/').to_string(),
        }))
    }
}

fn read_hosts_file(path: &Path, port: u16, flag: &str) -> anyhow::Result<Vec<HostAddr>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_input(format!("{flag} {}: {e}", path.display())))?;
    HostAddr::parse_lines(&text, port)
        .map_err(|e| bad_input(format!("{flag} {}: {e}", path.display())))
}

/// `500ms`, `10s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (like 500ms, 10s, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        remote: RemoteArgs,
    }

    fn parse(args: &[&str]) -> Result<RemoteArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|c| c.remote)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "x", "10 parsecs", "-1s", "1e99s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_mode_without_host_flags() {
        let a = parse(&[]).unwrap();
        assert!(!a.is_remote());
        assert!(a.resolve().unwrap().is_none());
    }

    #[test]
    fn nodes_list_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        std::fs::write(&key, "key").unwrap();
        let a = parse(&[
            "--nodes",
            "10.77.0.11,10.77.0.12:2222",
            "--ssh-key",
            key.to_str().unwrap(),
            "--ssh-user",
            "tester",
        ])
        .unwrap();
        let p = a.resolve().unwrap().unwrap();
        assert_eq!(p.hosts.len(), 2);
        assert_eq!(p.hosts[1].port, 2222);
        assert_eq!(p.hosts[0].port, 22);
        assert_eq!(p.ssh.user, "tester");
        assert!(p.ssh.needs_sudo());
        assert!(!p.ssh.accept_new);
        assert_eq!(p.ssh.identity, Identity::File(key));
        assert!(p.ssh.known_hosts.ends_with(".ssh/known_hosts"));
        assert_eq!(p.remote_dir, "/var/lib/faultline");
    }

    #[test]
    fn lab_dir_supplies_nodes_key_and_known_hosts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nodes"), "10.77.0.11\n10.77.0.12\n").unwrap();
        std::fs::write(dir.path().join("id_ed25519"), "key").unwrap();
        let a = parse(&["--lab", dir.path().to_str().unwrap()]).unwrap();
        let p = a.resolve().unwrap().unwrap();
        assert_eq!(
            p.hosts.iter().map(|h| h.host.as_str()).collect::<Vec<_>>(),
            ["10.77.0.11", "10.77.0.12"]
        );
        assert_eq!(
            p.ssh.identity,
            Identity::File(dir.path().join("id_ed25519"))
        );
        assert_eq!(p.ssh.known_hosts, dir.path().join("known_hosts"));
        assert!(!p.ssh.needs_sudo());
        assert!(
            parse(&["--lab", "x", "--nodes", "a"]).is_err(),
            "--lab and --nodes conflict"
        );
    }

    #[test]
    fn bad_values_are_bad_input_naming_where() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        std::fs::write(&key, "key").unwrap();
        let k = key.to_str().unwrap();
        let nodes = dir.path().join("nodes");
        std::fs::write(&nodes, "a\nb:99999\n").unwrap();
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec!["--nodes", "a,a", "--ssh-key", k], "listed twice"),
            (vec!["--nodes", "a:0", "--ssh-key", k], "--nodes: bad port"),
            (
                vec!["--nodes-file", nodes.to_str().unwrap(), "--ssh-key", k],
                "line 2",
            ),
            (
                vec!["--nodes-file", "/nonexistent/nodes", "--ssh-key", k],
                "/nonexistent/nodes",
            ),
            (
                vec!["--nodes", "a", "--ssh-key", "/nonexistent/key"],
                "SSH key /nonexistent/key",
            ),
            (vec!["--lab", "/nonexistent/lab"], "is a lab up?"),
            (
                vec!["--nodes", "a", "--ssh-key", k, "--remote-dir", "rel"],
                "--remote-dir",
            ),
        ];
        for (args, want) in cases {
            let err = parse(&args).unwrap().resolve().unwrap_err();
            assert!(format!("{err:#}").contains(want), "{args:?}: {err:#}");
            assert_eq!(
                crate::exit::code_for(&Err(err)),
                254,
                "{args:?} must exit 254"
            );
        }
    }
}

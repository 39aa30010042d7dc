//! The command-line flags of remote mode, shared by `faultline test` and
//! `faultline lab ping|deploy`, and their resolution into hosts and an
//! [`SshConfig`].
//!
//! Hosts may be named as in `ssh n1`: each name is looked up in the user's
//! OpenSSH config (`~/.ssh/config`, or `--ssh-config FILE`) for HostName,
//! User, Port and IdentityFile. Explicit flags win over the file: a port in
//! `host:port`, then `--ssh-port`, then Port; `--ssh-user`, then User, then
//! root; `--ssh-key` alone, else the agent and IdentityFile (or the default
//! keys). Jepsen's names are accepted beside ours (`--node`/`-n`,
//! `--username`, `--ssh-private-key`, `--password`).
//!
//! Guarantee: every bad flag value (an unreadable nodes file, a missing key,
//! a malformed host or config file, a duplicate host) is a bad-input error
//! (exit 254) that names the flag or file and line.

use crate::exit::bad_input;
use crate::ssh::config::home_dir;
use crate::ssh::{HostAddr, HostLogin, Identity, OpenSshConfig, Password, SshConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Flags that switch a run to SSH hosts and say how to reach them.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// Hosts to run the nodes on over SSH, comma-separated (`host`,
    /// `host:port`, or a Host alias of ~/.ssh/config); repeatable, as
    /// Jepsen's `-n/--node`. Switches to remote mode.
    #[arg(
        long = "nodes",
        short = 'n',
        visible_alias = "node",
        value_name = "HOSTS",
        value_delimiter = ',',
        num_args = 1..
    )]
    pub nodes: Vec<String>,
    /// A file of hosts, one a line (`#` comments). Switches to remote mode.
    #[arg(long, value_name = "FILE", conflicts_with = "nodes")]
    pub nodes_file: Option<PathBuf>,
    /// A lab made by `faultline lab up`: shorthand for its nodes file, key
    /// and known_hosts (flags given as well take precedence).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["nodes", "nodes_file"])]
    pub lab: Option<PathBuf>,
    /// SSH user (default: the host's User in ~/.ssh/config, else root);
    /// commands that need root run with `sudo -n` when not root.
    #[arg(long, visible_alias = "username", value_name = "USER")]
    pub ssh_user: Option<String>,
    /// Private key, the only one offered. Default: the SSH agent, then the
    /// host's IdentityFile in ~/.ssh/config, else ~/.ssh/id_ed25519,
    /// id_ecdsa, id_rsa. Encrypted keys: the agent, FAULTLINE_SSH_PASSPHRASE,
    /// or a prompt on a terminal.
    #[arg(long, visible_alias = "ssh-private-key", value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    /// Password, for hosts that take password logins only (tried after
    /// keys). Also from FAULTLINE_SSH_PASSWORD, which keeps it out of `ps`.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "FAULTLINE_SSH_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Port for hosts given without one (default: the host's Port in
    /// ~/.ssh/config, else 22).
    #[arg(long, value_name = "PORT")]
    pub ssh_port: Option<u16>,
    /// OpenSSH client config to read Host aliases from (HostName, User,
    /// Port, IdentityFile). Default: ~/.ssh/config if it exists; `none`
    /// reads none.
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
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
        let default_user = self.ssh_user.clone().unwrap_or_else(|| "root".into());
        if default_user.is_empty() || default_user.contains(char::is_whitespace) {
            return Err(bad_input(format!(
                "--ssh-user {default_user:?} is not a user name"
            )));
        }
        if self.ssh_port == Some(0) {
            return Err(bad_input("--ssh-port 0 is not a port"));
        }
        let mut ssh = SshConfig::new(default_user);
        ssh.accept_new = self.ssh_accept_new;
        ssh.connect_timeout = self.ssh_connect_timeout;
        ssh.command_timeout = self.ssh_command_timeout;
        ssh.password = self.password.clone().map(Password);
        let openssh = self.openssh_config()?;

        // Names as given; port 0 stands for "none given".
        let names = if let Some(lab) = &self.lab {
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
            read_hosts_file(&nodes, 0, "--lab")?
        } else if let Some(file) = &self.nodes_file {
            read_hosts_file(file, 0, "--nodes-file")?
        } else {
            let mut names = Vec::new();
            for n in &self.nodes {
                names.push(HostAddr::parse(n, 0).map_err(|e| bad_input(format!("--nodes: {e}")))?);
            }
            names
        };
        if names.is_empty() {
            return Err(bad_input(
                "remote mode needs at least one host (--nodes, --nodes-file or --lab)",
            ));
        }
        let mut hosts: Vec<HostAddr> = Vec::new();
        for name in &names {
            let (addr, login) = self.resolve_host(name, openssh.as_ref(), &mut ssh.logins)?;
            if let Some(i) = hosts.iter().position(|h| *h == addr) {
                return Err(bad_input(format!(
                    "host {addr} is listed twice ({} and {})",
                    names[i].host, name.host
                )));
            }
            if login != HostLogin::default() {
                ssh.logins.insert(addr.clone(), login);
            }
            hosts.push(addr);
        }
        ssh.port = self.ssh_port.unwrap_or(22);
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

impl RemoteArgs {
    /// The OpenSSH config to read: `--ssh-config` (which must exist), else
    /// ~/.ssh/config if there is one.
    fn openssh_config(&self) -> anyhow::Result<Option<OpenSshConfig>> {
        let home = home_dir();
        let path = match &self.ssh_config {
            Some(p) if p.as_os_str() == "none" => return Ok(None),
            Some(p) => p.clone(),
            None => {
                let p = home.join(".ssh/config");
                if !p.exists() {
                    return Ok(None);
                }
                p
            }
        };
        OpenSshConfig::load(&path, &home)
            .map(Some)
            .map_err(|e| bad_input(format!("--ssh-config: {e}")))
    }

    /// Where `name` (port 0: none given) really is, and how to log in
    /// there; explicit flags win over the OpenSSH config.
    fn resolve_host(
        &self,
        name: &HostAddr,
        openssh: Option<&OpenSshConfig>,
        logins: &mut BTreeMap<HostAddr, HostLogin>,
    ) -> anyhow::Result<(HostAddr, HostLogin)> {
        let local_user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let options = openssh
            .map(|c| c.lookup(&name.host, &local_user, &home_dir()))
            .unwrap_or_default();
        let proxy_jump = match &options.proxy_jump {
            None => None,
            Some(jump) => Some(self.resolve_jump(&name.host, jump, openssh, logins)?),
        };
        let host = options
            .host_name
            .clone()
            .unwrap_or_else(|| name.host.clone());
        let port = match name.port {
            0 => self.ssh_port.or(options.port).unwrap_or(22),
            given => given,
        };
        let addr = HostAddr::parse(&host, port).map_err(|e| {
            bad_input(format!(
                "{}: HostName in the OpenSSH config: {e}",
                name.host
            ))
        })?;
        let login = HostLogin {
            alias: (addr.host != name.host).then(|| name.host.clone()),
            user: if self.ssh_user.is_some() {
                None
            } else {
                options.user.clone()
            },
            identity_files: options.identity_files.clone(),
            identities_only: options.identities_only,
            proxy_jump,
        };
        Ok((addr, login))
    }

    /// The jump host of `alias` (`ProxyJump [user@]host[:port]`), resolved
    /// like any host (its own login recorded in `logins`). One hop only.
    fn resolve_jump(
        &self,
        alias: &str,
        jump: &str,
        openssh: Option<&OpenSshConfig>,
        logins: &mut BTreeMap<HostAddr, HostLogin>,
    ) -> anyhow::Result<HostAddr> {
        if jump.contains(',') {
            return Err(bad_input(format!(
                "{alias}: ProxyJump {jump}: faultline jumps through one host at most"
            )));
        }
        let (user, host) = match jump.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, jump),
        };
        let name = HostAddr::parse(host, 0)
            .map_err(|e| bad_input(format!("{alias}: ProxyJump {jump}: {e}")))?;
        let own = openssh
            .map(|c| c.lookup(&name.host, "root", &home_dir()))
            .unwrap_or_default();
        if own.proxy_jump.is_some() {
            return Err(bad_input(format!(
                "{alias}: ProxyJump {jump}, which has a ProxyJump of its own: faultline jumps through one host at most"
            )));
        }
        let (addr, mut login) = self.resolve_host(&name, openssh, &mut BTreeMap::new())?;
        // The jump host's user: `user@` in ProxyJump, its own User, then
        // the run's user.
        login.user = Some(
            user.or(own.user)
                .unwrap_or_else(|| self.ssh_user.clone().unwrap_or_else(|| "root".into())),
        );
        logins.insert(addr.clone(), login);
        Ok(addr)
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
        assert!(p.ssh.needs_sudo(&p.hosts[0]));
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
        assert!(!p.ssh.needs_sudo(&p.hosts[0]));
        assert!(
            parse(&["--lab", "x", "--nodes", "a"]).is_err(),
            "--lab and --nodes conflict"
        );
    }

    /// An OpenSSH config and a key in a temporary home.
    fn ssh_home() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("lab_key");
        std::fs::write(&key, "key").unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!(
                "Host n1 n2\n  HostName 10.77.0.1%n\n  User tester\n  Port 2222\n  IdentityFile {}\n\
                 Host *\n  IdentitiesOnly yes\n",
                key.display()
            ),
        )
        .unwrap();
        (dir, config, key)
    }

    #[test]
    fn openssh_config_aliases_give_host_user_port_and_key() {
        let (_home, config, key) = ssh_home();
        let cfg = config.to_str().unwrap();
        let p = parse(&["--nodes", "n1,n2,10.77.0.99", "--ssh-config", cfg])
            .unwrap()
            .resolve()
            .unwrap()
            .unwrap();
        assert_eq!(
            p.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            ["10.77.0.1n1:2222", "10.77.0.1n2:2222", "10.77.0.99"]
        );
        let login = &p.ssh.logins[&p.hosts[0]];
        assert_eq!(login.alias.as_deref(), Some("n1"));
        assert_eq!(login.user.as_deref(), Some("tester"));
        assert_eq!(login.identity_files, vec![key.clone()]);
        assert!(login.identities_only);
        assert_eq!(p.ssh.identity, Identity::Default);
        assert_eq!(p.ssh.user_for(&p.hosts[0]), "tester");
        assert_eq!(p.ssh.user_for(&p.hosts[2]), "root", "not in the file: root");
        assert!(p.ssh.needs_sudo(&p.hosts[0]));
        assert_eq!(p.ssh.display_name(&p.hosts[0]), "n1 (10.77.0.1n1:2222)");
        assert_eq!(p.ssh.display_name(&p.hosts[2]), "10.77.0.99");
    }

    #[test]
    fn explicit_flags_win_over_the_openssh_config() {
        let (_home, config, _) = ssh_home();
        let cfg = config.to_str().unwrap();
        let other = tempfile::NamedTempFile::new().unwrap();
        let k = other.path().to_str().unwrap();
        let p = parse(&[
            "--nodes",
            "n1:2200,n2",
            "--ssh-config",
            cfg,
            "--ssh-user",
            "admin",
            "--ssh-port",
            "2022",
            "--ssh-key",
            k,
        ])
        .unwrap()
        .resolve()
        .unwrap()
        .unwrap();
        assert_eq!(p.hosts[0].port, 2200, "host:port beats everything");
        assert_eq!(p.hosts[1].port, 2022, "--ssh-port beats Port");
        assert_eq!(p.hosts[1].host, "10.77.0.1n2", "HostName still applies");
        assert_eq!(p.ssh.user_for(&p.hosts[0]), "admin");
        assert_eq!(p.ssh.identity, Identity::File(other.path().to_path_buf()));
        // `--ssh-config none` reads no file.
        let p = parse(&["--nodes", "n1", "--ssh-config", "none"])
            .unwrap()
            .resolve()
            .unwrap()
            .unwrap();
        assert_eq!(p.hosts[0].to_string(), "n1");
        assert!(p.ssh.logins.is_empty());
    }

    #[test]
    fn jepsen_flag_names_parse_into_the_same_settings() {
        let key = tempfile::NamedTempFile::new().unwrap();
        let k = key.path().to_str().unwrap();
        let ours = parse(&[
            "--nodes",
            "a,b,c",
            "--ssh-user",
            "admin",
            "--ssh-key",
            k,
            "--ssh-config",
            "none",
        ])
        .unwrap()
        .resolve()
        .unwrap()
        .unwrap();
        for jepsen in [
            vec![
                "-n",
                "a",
                "-n",
                "b",
                "-n",
                "c",
                "--username",
                "admin",
                "--ssh-private-key",
                k,
            ],
            vec![
                "--node",
                "a",
                "--node",
                "b,c",
                "--username",
                "admin",
                "--ssh-private-key",
                k,
            ],
        ] {
            let mut args = jepsen.clone();
            args.extend(["--ssh-config", "none"]);
            let theirs = parse(&args).unwrap().resolve().unwrap().unwrap();
            assert_eq!(theirs.hosts, ours.hosts, "{jepsen:?}");
            assert_eq!(theirs.ssh.user, ours.ssh.user, "{jepsen:?}");
            assert_eq!(theirs.ssh.identity, ours.ssh.identity, "{jepsen:?}");
        }
        let p = parse(&[
            "--node",
            "a",
            "--password",
            "hunter2",
            "--ssh-config",
            "none",
        ])
        .unwrap()
        .resolve()
        .unwrap()
        .unwrap();
        assert_eq!(p.ssh.password, Some(Password("hunter2".into())));
        assert!(
            !format!("{:?}", p.ssh).contains("hunter2"),
            "never in Debug output"
        );
    }

    #[test]
    fn a_jump_host_is_resolved_like_any_host_one_hop_only() {
        let (home, config, _) = ssh_home();
        std::fs::write(
            &config,
            "Host db\n  HostName 10.77.0.12\n  ProxyJump ops@bastion:2200\n\
             Host bastion\n  HostName 10.77.0.11\n  User ignored\n  IdentityFile /k/bastion\n\
             Host twice\n  ProxyJump db\nHost multi\n  ProxyJump a,b\n",
        )
        .unwrap();
        let cfg = config.to_str().unwrap();
        let p = parse(&["--nodes", "db", "--ssh-config", cfg])
            .unwrap()
            .resolve()
            .unwrap()
            .unwrap();
        let jump = p.ssh.logins[&p.hosts[0]]
            .proxy_jump
            .clone()
            .expect("a jump host");
        assert_eq!(jump.to_string(), "10.77.0.11:2200");
        let via = &p.ssh.logins[&jump];
        assert_eq!(via.user.as_deref(), Some("ops"), "user@ in ProxyJump wins");
        assert_eq!(via.identity_files, vec![PathBuf::from("/k/bastion")]);
        assert_eq!(via.alias.as_deref(), Some("bastion"));
        for (alias, want) in [("twice", "one host at most"), ("multi", "one host at most")] {
            let err = parse(&["--nodes", alias, "--ssh-config", cfg])
                .unwrap()
                .resolve()
                .unwrap_err();
            assert!(format!("{err:#}").contains(want), "{alias}: {err:#}");
            assert_eq!(crate::exit::code_for(&Err(err)), 254);
        }
        drop(home);
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
                vec!["--nodes", "a", "--ssh-config", "/nonexistent/config"],
                "--ssh-config: /nonexistent/config",
            ),
            (vec!["--nodes", "a", "--ssh-port", "0"], "--ssh-port 0"),
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

//! How to reach hosts: user, port, key, known_hosts, timeouts; and host
//! addresses as users write them (`host`, `host:port`, `[v6]:port`).

use super::backoff::Backoff;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Which private keys to offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// This key file only (`--ssh-key`).
    File(PathBuf),
    /// The SSH agent (if `SSH_AUTH_SOCK` is set), then the host's
    /// IdentityFile lines from the OpenSSH config, or when it has none
    /// `~/.ssh/id_ed25519`, `id_ecdsa` and `id_rsa` (OpenSSH's defaults).
    Default,
}

/// The default identity files, in the order they are offered.
pub const DEFAULT_IDENTITY_FILES: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

/// A password (Jepsen's `--password`), kept out of Debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<hidden>)")
    }
}

/// How to log in to one host, when the OpenSSH config says more than the
/// run-wide settings (see `RemoteArgs::resolve`: explicit flags win).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostLogin {
    /// The name the user gave (`n1`) when it is not the address itself.
    pub alias: Option<String>,
    /// The user for this host, if not the run-wide one.
    pub user: Option<String>,
    /// IdentityFile lines for this host (with [`Identity::Default`]).
    pub identity_files: Vec<PathBuf>,
    /// IdentitiesOnly: do not offer the agent's keys.
    pub identities_only: bool,
    /// ProxyJump: reach this host through that one (whose own login is in
    /// the same map).
    pub proxy_jump: Option<HostAddr>,
}

/// Settings shared by every host of a run.
#[derive(Clone, Debug)]
pub struct SshConfig {
    /// The user for hosts whose login does not name one.
    pub user: String,
    /// Per host, what the OpenSSH config added (alias, user, keys).
    pub logins: BTreeMap<HostAddr, HostLogin>,
    /// Log in with this password when keys fail (or there are none).
    pub password: Option<Password>,
    /// Port for hosts given without one.
    pub port: u16,
    pub identity: Identity,
    pub known_hosts: PathBuf,
    /// Record unknown host keys instead of refusing them (a changed key is
    /// refused all the same).
    pub accept_new: bool,
    /// The whole budget for reaching one host: TCP, handshake, host key and
    /// authentication, retries and pauses included.
    pub connect_timeout: Duration,
    /// Default limit for one remote command.
    pub command_timeout: Duration,
    pub backoff: Backoff,
}

impl SshConfig {
    /// The flags' defaults for `user`: port 22, the default identities,
    /// ~/.ssh/known_hosts, host keys verified.
    pub fn new(user: impl Into<String>) -> SshConfig {
        SshConfig {
            user: user.into(),
            logins: BTreeMap::new(),
            password: None,
            port: 22,
            identity: Identity::Default,
            known_hosts: home_dir().join(".ssh/known_hosts"),
            accept_new: false,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(60),
            backoff: Backoff::default(),
        }
    }

    /// The user to log in to `addr` as.
    pub fn user_for(&self, addr: &HostAddr) -> &str {
        self.logins
            .get(addr)
            .and_then(|l| l.user.as_deref())
            .unwrap_or(&self.user)
    }

    /// Whether commands that need root must go through `sudo` on `addr`.
    pub fn needs_sudo(&self, addr: &HostAddr) -> bool {
        self.user_for(addr) != "root"
    }

    /// How messages name `addr`: the alias the user gave, with the address.
    pub fn display_name(&self, addr: &HostAddr) -> String {
        match self.logins.get(addr).and_then(|l| l.alias.as_deref()) {
            Some(alias) => format!("{alias} ({addr})"),
            None => addr.to_string(),
        }
    }
}

/// The home folder of the user running the harness.
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// One host: a name or address, and a port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostAddr {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port == 22 {
            f.write_str(&self.host)
        } else if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl HostAddr {
    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6
    /// address. The error says what is wrong with `s`.
    pub fn parse(s: &str, default_port: u16) -> Result<HostAddr, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty host".into());
        }
        let bad_port = |p: &str| format!("bad port {p:?} in host {s:?} (want 1-65535)");
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("missing ']' in host {s:?}"))?;
            let port = match after {
                "" => default_port,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse::<u16>().ok())
                    .filter(|&p| p != 0)
                    .ok_or_else(|| bad_port(after))?,
            };
            (h.to_string(), port)
        } else if s.matches(':').count() > 1 {
            (s.to_string(), default_port) // bare IPv6
        } else if let Some((h, p)) = s.split_once(':') {
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad_port(p))?;
            (h.to_string(), port)
        } else {
            (s.to_string(), default_port)
        };
        if host.is_empty() {
            return Err(format!("empty host name in {s:?}"));
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '@' || c == ',')
        {
            return Err(format!(
                "host {host:?} has a character a host name cannot have"
            ));
        }
        Ok(HostAddr { host, port })
    }

    /// A list: one host a line, `#` comments and blank lines ignored. The
    /// error names the line.
    pub fn parse_lines(text: &str, default_port: u16) -> Result<Vec<HostAddr>, String> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            out.push(
                HostAddr::parse(line, default_port).map_err(|e| format!("line {}: {e}", i + 1))?,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        assert_eq!(
            HostAddr::parse("10.77.0.11", 22).unwrap(),
            HostAddr {
                host: "10.77.0.11".into(),
                port: 22
            }
        );
        assert_eq!(
            HostAddr::parse(" db1:2222 ", 22).unwrap(),
            HostAddr {
                host: "db1".into(),
                port: 2222
            }
        );
        assert_eq!(
            HostAddr::parse("[::1]:2200", 22).unwrap(),
            HostAddr {
                host: "::1".into(),
                port: 2200
            }
        );
        assert_eq!(
            HostAddr::parse("::1", 2201).unwrap(),
            HostAddr {
                host: "::1".into(),
                port: 2201
            }
        );
        assert_eq!(HostAddr::parse("h", 2022).unwrap().port, 2022);
        for bad in [
            "", "h:", "h:0", "h:99999", "h:x", "[::1", "[::1]x", "a b", "root@h", ":22",
        ] {
            assert!(
                HostAddr::parse(bad, 22).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert_eq!(HostAddr::parse("h:2222", 22).unwrap().to_string(), "h:2222");
        assert_eq!(HostAddr::parse("h", 22).unwrap().to_string(), "h");
    }

    #[test]
    fn host_lists_skip_comments_and_name_the_bad_line() {
        let hosts =
            HostAddr::parse_lines("# lab\n10.77.0.11\n\n10.77.0.12  # second\n", 22).unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[1].host, "10.77.0.12");
        let err = HostAddr::parse_lines("a\nb:notaport\n", 22).unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }
}

//! The sshd configuration of one lab host: listens only on the host's lab
//! address, key authentication only, its own host key and pidfile, and an
//! SFTP subsystem for deploys and log fetches.

use std::path::Path;

/// The files one host's sshd uses.
pub struct SshdConfig<'a> {
    pub listen_addr: &'a str,
    pub port: u16,
    pub host_key: &'a Path,
    pub authorized_keys: &'a Path,
    pub pid_file: &'a Path,
}

impl SshdConfig<'_> {
    pub fn render(&self) -> String {
        format!(
            "# Written by `faultline lab up`; one host of the lab.\n\
             ListenAddress {addr}\n\
             Port {port}\n\
             HostKey {host_key}\n\
             PidFile {pid}\n\
             AuthorizedKeysFile {auth}\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             UsePAM no\n\
             # The key files live under a lab folder that may be in /tmp.\n\
             StrictModes no\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n\
             MaxStartups 200:30:400\n\
             MaxSessions 200\n\
             UseDNS no\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             X11Forwarding no\n\
             # ProxyJump through a lab host (its traffic stays in the lab).\n\
             AllowTcpForwarding local\n\
             LogLevel INFO\n",
            addr = self.listen_addr,
            port = self.port,
            host_key = self.host_key.display(),
            pid = self.pid_file.display(),
            auth = self.authorized_keys.display(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config_text() -> String {
        let key = PathBuf::from("/lab/hosts/fl-lab-1/ssh_host_ed25519_key");
        let auth = PathBuf::from("/lab/authorized_keys");
        let pid = PathBuf::from("/run/sshd.pid");
        SshdConfig {
            listen_addr: "10.77.0.11",
            port: 22,
            host_key: &key,
            authorized_keys: &auth,
            pid_file: &pid,
        }
        .render()
    }

    #[test]
    fn listens_on_the_host_address_with_keys_only() {
        let text = config_text();
        let lines: Vec<&str> = text.lines().collect();
        for want in [
            "ListenAddress 10.77.0.11",
            "HostKey /lab/hosts/fl-lab-1/ssh_host_ed25519_key",
            "AuthorizedKeysFile /lab/authorized_keys",
            "PidFile /run/sshd.pid",
            "PasswordAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "Subsystem sftp /usr/lib/openssh/sftp-server",
        ] {
            assert!(lines.contains(&want), "missing {want:?} in:\n{text}");
        }
        assert!(
            !text.contains("0.0.0.0"),
            "must not listen on every address"
        );
    }

    #[test]
    fn sshd_accepts_the_generated_config() {
        // `sshd -t` checks the syntax; it needs the host key to exist.
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() {
            crate::errln!("sshd not installed; config syntax check skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("hk");
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            crate::errln!("ssh-keygen failed; config syntax check skipped");
            return;
        }
        let auth = dir.path().join("ak");
        let pid = dir.path().join("pid");
        let cfg = dir.path().join("sshd_config");
        let text = SshdConfig {
            listen_addr: "127.0.0.1",
            port: 2222,
            host_key: &key,
            authorized_keys: &auth,
            pid_file: &pid,
        }
        .render();
        std::fs::write(&cfg, text).unwrap();
        let out = std::process::Command::new(sshd)
            .arg("-t")
            .arg("-f")
            .arg(&cfg)
            .output()
            .unwrap();
        // As non-root sshd -t may complain about privilege separation
        // (/run/sshd); only a config error is a failure here.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("Bad configuration option") && !err.contains("bad configuration"),
            "{err}"
        );
        assert!(!err.contains("terminating, "), "{err}");
    }
}

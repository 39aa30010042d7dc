//! Getting hosts ready: check (and with `--install-deps` install) the tools
//! the chosen faults need, and upload the node executable, skipping hosts
//! that already have the same checksum; then each host runs the executable
//! (`--version`) to prove it can.
//!
//! Guarantee: a run fails before starting any node if a tool is missing,
//! with one message listing every host and what it lacks, or if a host
//! cannot run the executable (an older C library, a missing library or
//! loader), naming the host with the loader's own error.

use super::layout::Layout;
use crate::ssh::{all_ok, sh_quote, sha256_file, HostErrors, Hosts, Session, SshError, Upload};
use std::path::Path;
use std::time::{Duration, Instant};

/// Something a fault (or the daemons themselves) needs on a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Need {
    /// Starting, stopping and signalling daemons.
    Daemons,
    /// Partitions and packet loss.
    Iptables,
    /// Latency.
    Tc,
    /// Clock offset and rate.
    Faketime,
    /// The etcd server (`--system etcd` without `--system-bin`).
    Etcd,
}

impl Need {
    /// (tool shown to users, shell test that succeeds when present, Debian package)
    fn checks(self) -> &'static [(&'static str, &'static str, &'static str)] {
        match self {
            Need::Daemons => &[
                ("ps", "exists ps", "procps"),
                ("setsid", "exists setsid", "util-linux"),
                ("nohup", "exists nohup", "coreutils"),
                ("sha256sum", "exists sha256sum", "coreutils"),
                // Tells whether any process of a node's group is alive.
                ("awk", "exists awk", "mawk"),
            ],
            Need::Iptables => &[("iptables", "exists iptables", "iptables")],
            Need::Tc => &[
                ("tc", "exists tc", "iproute2"),
                ("ip", "exists ip", "iproute2"),
            ],
            Need::Faketime => &[("libfaketime", FIND_FAKETIME, "libfaketime")],
            Need::Etcd => &[("etcd", "exists etcd", "etcd-server")],
        }
    }
}

/// Prints the path of libfaketime.so.1, or fails.
const FIND_FAKETIME: &str =
    "for f in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 /usr/local/lib/faketime/libfaketime.so.1; do [ -f \"$f\" ] && { echo \"$f\"; exit 0; }; done; exit 1";

/// What a host has, after the check.
#[derive(Clone, Debug, Default)]
pub struct HostTools {
    pub missing: Vec<(String, String)>,
    pub faketime_lib: Option<String>,
}

/// The check script: one line `missing TOOL PACKAGE` per missing tool, and
/// `faketime PATH` when libfaketime is wanted and found.
pub fn check_script(needs: &[Need]) -> String {
    // A tool counts only as an executable file (not, say, a device node
    // mounted over it): `command -v` alone does not check that.
    let mut s =
        String::from("exists() { p=$(command -v \"$1\") && [ -f \"$p\" ] && [ -x \"$p\" ]; }; ");
    for need in needs {
        for (tool, test, package) in need.checks() {
            if *tool == "libfaketime" {
                s.push_str(&format!("F=$( ({test}) ) && echo \"faketime $F\" || echo 'missing libfaketime {package}'; "));
            } else {
                s.push_str(&format!(
                    "{test} >/dev/null 2>&1 || echo 'missing {tool} {package}'; "
                ));
            }
        }
    }
    s.push_str("true");
    s
}

pub fn parse_check(out: &str) -> HostTools {
    let mut t = HostTools::default();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["missing", tool, package] => t.missing.push((tool.to_string(), package.to_string())),
            ["faketime", path] => t.faketime_lib = Some(path.to_string()),
            _ => {}
        }
    }
    t
}

/// Checks every host; installs what is missing when `install`; fails with
/// every host's missing tools otherwise.
pub fn ensure_tools(
    hosts: &Hosts,
    needs: &[Need],
    install: bool,
) -> anyhow::Result<Vec<HostTools>> {
    let script = check_script(needs);
    let results = hosts.each(|_, s| -> Result<HostTools, SshError> {
        let mut tools = parse_check(&s.run_root(&script)?);
        if install && !tools.missing.is_empty() {
            let mut pkgs: Vec<&str> = tools.missing.iter().map(|(_, p)| p.as_str()).collect();
            pkgs.sort();
            pkgs.dedup();
            let cmd = format!(
                "command -v apt-get >/dev/null || {{ echo 'no apt-get on this host' >&2; exit 1; }}; \
                 DEBIAN_FRONTEND=noninteractive apt-get install -y -q {} >/dev/null",
                pkgs.join(" ")
            );
            s.exec_root(&cmd, Duration::from_secs(600)).and_then(|o| {
                if o.success() {
                    Ok(())
                } else {
                    Err(SshError::Command { host: s.name(), command: format!("apt-get install {}", pkgs.join(" ")), status: o.status, stderr: o.stderr.trim().to_string() })
                }
            })?;
            tools = parse_check(&s.run_root(&script)?);
        }
        Ok(tools)
    });
    let tools = all_ok(results).map_err(anyhow::Error::new)?;
    let lacking: Vec<String> = tools
        .iter()
        .zip(hosts.sessions())
        .filter(|(t, _)| !t.missing.is_empty())
        .map(|(t, s)| {
            let list: Vec<String> = t
                .missing
                .iter()
                .map(|(tool, pkg)| format!("{tool} (package {pkg})"))
                .collect();
            format!("{}: {}", s.name(), list.join(", "))
        })
        .collect();
    if !lacking.is_empty() {
        anyhow::bail!(
            "hosts lack tools the chosen faults need:\n  {}\n{}",
            lacking.join("\n  "),
            if install {
                "apt-get could not install them"
            } else {
                "pass --install-deps to install them with apt-get"
            }
        );
    }
    Ok(tools)
}

/// One host's deploy.
#[derive(Clone, Debug)]
pub struct Deployed {
    pub host: String,
    pub upload: Upload,
    /// What the executable said to `--version` on the host.
    pub version: String,
    pub elapsed: Duration,
}

/// Uploads `local` to every host's [`Layout::bin`] in parallel.
pub fn deploy(hosts: &Hosts, layout: &Layout, local: &Path) -> anyhow::Result<Vec<Deployed>> {
    deploy_to(hosts, local, &layout.bin())
}

/// Uploads `local` to `remote` on every host in parallel.
pub fn deploy_to(hosts: &Hosts, local: &Path, remote: &str) -> anyhow::Result<Vec<Deployed>> {
    use anyhow::Context;
    let sum =
        sha256_file(local).with_context(|| format!("reading {} to deploy it", local.display()))?;
    let remote = remote.to_string();
    let results = hosts.each(|_, s| {
        let start = Instant::now();
        let upload = s.upload_if_changed(local, &remote, &sum)?;
        let version = check_runs(s, &remote)?;
        Ok::<_, SshError>(Deployed {
            host: s.name(),
            upload,
            version,
            elapsed: start.elapsed(),
        })
    });
    all_ok(results).map_err(|e: HostErrors| {
        anyhow::Error::new(e).context(format!("deploying {}", local.display()))
    })
}

/// Runs `remote --version` on the host (as the nodes will run: as root);
/// its first line, or the loader's error naming the host.
pub fn check_runs(s: &Session, remote: &str) -> Result<String, SshError> {
    let out = s.exec_root(
        &format!("{} --version", sh_quote(remote)),
        s.config().command_timeout,
    )?;
    if !out.success() {
        return Err(SshError::NotRunnable {
            host: s.name(),
            path: remote.to_string(),
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(out.stdout.lines().next().unwrap_or("").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_script_reports_missing_tools_and_finds_libfaketime() {
        let script = check_script(&[Need::Daemons, Need::Iptables, Need::Faketime]);
        // Run with an empty PATH: every `command -v` tool is missing.
        let out = std::process::Command::new("/bin/sh")
            .env("PATH", "/nonexistent")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let t = parse_check(&String::from_utf8_lossy(&out.stdout));
        let tools: Vec<&str> = t.missing.iter().map(|(t, _)| t.as_str()).collect();
        assert!(
            tools.contains(&"ps") && tools.contains(&"iptables"),
            "{tools:?}"
        );
        assert!(t.missing.contains(&("iptables".into(), "iptables".into())));
        // libfaketime is found by path, not PATH.
        let installed =
            std::path::Path::new("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1").exists();
        assert_eq!(t.faketime_lib.is_some(), installed, "{t:?}");
        assert_eq!(tools.contains(&"libfaketime"), !installed);
    }

    #[test]
    fn a_non_executable_file_does_not_count_as_the_tool() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("iptables"), "not a program").unwrap();
        let script = check_script(&[Need::Iptables]);
        let out = std::process::Command::new("/bin/sh")
            .env("PATH", dir.path())
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let t = parse_check(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(
            t.missing,
            vec![("iptables".to_string(), "iptables".to_string())]
        );
        // Executable: found.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("iptables"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let out = std::process::Command::new("/bin/sh")
            .env("PATH", dir.path())
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(parse_check(&String::from_utf8_lossy(&out.stdout))
            .missing
            .is_empty());
    }

    #[test]
    fn parse_check_ignores_noise() {
        let t =
            parse_check("motd line\nmissing tc iproute2\nfaketime /usr/lib/x/libfaketime.so.1\n");
        assert_eq!(t.missing, vec![("tc".to_string(), "iproute2".to_string())]);
        assert_eq!(
            t.faketime_lib.as_deref(),
            Some("/usr/lib/x/libfaketime.so.1")
        );
    }
}

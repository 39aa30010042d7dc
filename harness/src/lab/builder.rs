//! `lab up`: build N hosts on this machine.
//!
//! Each host is a network namespace on the lab bridge with its own address
//! (10.77.0.11, .12, ...), no default route (no traffic can leave the
//! machine), and a PID, UTS and mount namespace of its own holding sshd: its
//! own hostname, process list, /run, and `/var/lib/faultline` (a folder of
//! the lab bind-mounted there, so deploys and node files do not collide).
//! Progress is recorded in `DIR/lab.json` before each step, so `lab down`
//! can undo a half-built lab.

use super::sshd_config::SshdConfig;
use super::state::{
    self, LabHost, LabState, BRIDGE, BRIDGE_ADDR, REMOTE_DIR, RULE_COMMENT, SUBNET,
};
use super::system::{self, run};
use anyhow::{bail, Context};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What `lab up` was asked for.
pub struct UpOptions {
    pub hosts: usize,
    pub dir: PathBuf,
    /// How long to wait for every sshd to answer.
    pub ready_timeout: Duration,
}

/// The result of `lab up`.
pub enum UpOutcome {
    Built(LabState),
    /// A complete lab with this many hosts was already up in this folder.
    AlreadyUp(LabState),
}

/// Builds the lab. On any error, everything built so far is taken down again.
pub fn up(opts: &UpOptions) -> anyhow::Result<UpOutcome> {
    if !(1..=state::MAX_HOSTS).contains(&opts.hosts) {
        return Err(crate::exit::bad_input(format!(
            "--hosts {} is out of range 1..={}",
            opts.hosts,
            state::MAX_HOSTS
        )));
    }
    if !system::is_root() {
        bail!("`faultline lab up` needs root: it creates network namespaces, a bridge and sshd processes");
    }
    for tool in [
        "ip",
        "unshare",
        "ssh-keygen",
        "iptables",
        "/usr/sbin/sshd",
        "/usr/lib/openssh/sftp-server",
    ] {
        let found = if tool.starts_with('/') {
            Path::new(tool).exists()
        } else {
            system::try_run("sh", &["-c", &format!("command -v {tool}")])
        };
        if !found {
            bail!("`faultline lab up` needs {tool}; install it (Debian: apt-get install -y openssh-server iptables iproute2 util-linux)");
        }
    }
    std::fs::create_dir_all(&opts.dir)
        .with_context(|| format!("creating lab folder {}", opts.dir.display()))?;
    let dir = opts
        .dir
        .canonicalize()
        .with_context(|| format!("resolving {}", opts.dir.display()))?;

    if let Some(existing) = LabState::load(&dir)? {
        if existing.complete
            && existing.hosts.len() == opts.hosts
            && super::status::status(&existing).healthy()
        {
            return Ok(UpOutcome::AlreadyUp(existing));
        }
        bail!(
            "a lab is already recorded in {} ({} hosts{}); take it down first with `faultline lab down --dir {}`",
            dir.display(),
            existing.hosts.len(),
            if existing.complete { "" } else { ", half built" },
            dir.display()
        );
    }
    let leftovers: Vec<String> = system::netns_list()
        .into_iter()
        .chain(system::link_list())
        .filter(|n| state::is_lab_name(n))
        .collect();
    if !leftovers.is_empty() {
        bail!(
            "another lab is up on this machine (found {}); take it down with `faultline lab down --dir ITS_DIR` \
             (or `faultline lab down` in any folder: it also removes what it finds by name)",
            leftovers.join(", ")
        );
    }
    let addrs = run("ip", &["-4", "-o", "addr", "show"])?;
    if addrs.contains(&format!(" {SUBNET}.")) {
        bail!("{SUBNET}.0/24 is already in use on this machine (see `ip -4 addr`); the lab needs it for itself");
    }

    let mut st = LabState {
        dir: dir.clone(),
        hosts: Vec::new(),
        bridge: false,
        forward_rule: false,
        created_remote_dir: false,
        complete: false,
        created_at: chrono::Utc::now().to_rfc3339(),
    };
    st.save()?;
    match build(&mut st, opts) {
        Ok(()) => Ok(UpOutcome::Built(st)),
        Err(e) => {
            tracing::warn!(error = %e, "lab up failed; taking down what was built");
            if let Err(down_err) = super::teardown::down(&dir) {
                return Err(e.context(format!(
                    "and taking the half-built lab down failed too: {down_err:#}"
                )));
            }
            Err(e)
        }
    }
}

fn build(st: &mut LabState, opts: &UpOptions) -> anyhow::Result<()> {
    let dir = st.dir.clone();
    let key = dir.join("id_ed25519");
    for f in [key.clone(), key.with_extension("pub")] {
        let _ = std::fs::remove_file(f);
    }
    keygen(&key, "faultline-lab")?;
    std::fs::copy(key.with_extension("pub"), dir.join("authorized_keys"))
        .context("writing authorized_keys")?;

    // The folder each host mounts its own copy over.
    if !Path::new(REMOTE_DIR).exists() {
        std::fs::create_dir_all(REMOTE_DIR)
            .with_context(|| format!("creating mount point {REMOTE_DIR}"))?;
        st.created_remote_dir = true;
        st.save()?;
    }

    st.bridge = true;
    st.save()?;
    run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
    run(
        "ip",
        &["addr", "add", &format!("{BRIDGE_ADDR}/24"), "dev", BRIDGE],
    )?;
    run("ip", &["link", "set", BRIDGE, "up"])?;

    // With bridge netfilter on, bridged frames pass the FORWARD chain; a
    // DROP policy there would cut the hosts off from each other.
    let br_nf =
        std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables").unwrap_or_default();
    if br_nf.trim() == "1" {
        st.forward_rule = true;
        st.save()?;
        run(
            "iptables",
            &[
                "-w",
                "-I",
                "FORWARD",
                "-i",
                BRIDGE,
                "-o",
                BRIDGE,
                "-m",
                "comment",
                "--comment",
                RULE_COMMENT,
                "-j",
                "ACCEPT",
            ],
        )?;
    }

    for index in 1..=opts.hosts {
        let host = LabHost::new(index);
        st.hosts.push(host.clone());
        st.save()?;
        let pid = make_host(&dir, &host)?;
        st.hosts.last_mut().expect("pushed above").pid = Some(pid);
        st.save()?;
    }

    // Wait for every sshd, then record what a client needs.
    let deadline = Instant::now() + opts.ready_timeout;
    let mut known = String::new();
    let mut nodes = String::new();
    for host in &st.hosts {
        wait_for_sshd(host, &dir, deadline)?;
        let pubkey = std::fs::read_to_string(host.dir(&dir).join("ssh_host_ed25519_key.pub"))
            .with_context(|| format!("reading {}'s host key", host.ns))?;
        let mut fields = pubkey.split_whitespace();
        let (ty, b64) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        known.push_str(&format!("{} {ty} {b64}\n", host.addr));
        nodes.push_str(&format!("{}\n", host.addr));
    }
    std::fs::write(dir.join("known_hosts"), known).context("writing known_hosts")?;
    std::fs::write(dir.join("nodes"), nodes).context("writing nodes")?;
    st.complete = true;
    st.save()
}

fn keygen(path: &Path, comment: &str) -> anyhow::Result<()> {
    let p = path.to_str().context("lab folder path is not UTF-8")?;
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", p],
    )
    .map(|_| ())
}

/// Makes one host and starts its sshd; returns the PID of the `unshare`
/// process that holds it.
fn make_host(dir: &Path, host: &LabHost) -> anyhow::Result<u32> {
    let hdir = host.dir(dir);
    let fs = hdir.join("fs");
    std::fs::create_dir_all(&fs).with_context(|| format!("creating {}", fs.display()))?;
    let host_key = hdir.join("ssh_host_ed25519_key");
    for f in [host_key.clone(), host_key.with_extension("pub")] {
        let _ = std::fs::remove_file(f);
    }
    keygen(&host_key, &host.ns)?;
    let config = SshdConfig {
        listen_addr: &host.addr,
        port: 22,
        host_key: &host_key,
        authorized_keys: &dir.join("authorized_keys"),
        pid_file: Path::new("/run/sshd.pid"),
    };
    let config_path = hdir.join("sshd_config");
    std::fs::write(&config_path, config.render()).context("writing sshd_config")?;

    let ns = host.ns.as_str();
    let veth = host.veth.as_str();
    run("ip", &["netns", "add", ns])?;
    run(
        "ip",
        &[
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ],
    )?;
    run("ip", &["link", "set", veth, "master", BRIDGE])?;
    run("ip", &["link", "set", veth, "up"])?;
    run(
        "ip",
        &[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/24", host.addr),
            "dev",
            "eth0",
        ],
    )?;
    run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
    run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
    // Deliberately no default route: only 10.77.0.0/24 is reachable.

    let boot = boot_script(host, &fs, &config_path);
    let boot_path = hdir.join("boot.sh");
    std::fs::write(&boot_path, boot).context("writing boot.sh")?;
    let log = std::fs::File::create(hdir.join("host.log")).context("creating host.log")?;
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        ns,
        "unshare",
        "--uts",
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "sh",
    ])
    .arg(&boot_path)
    .stdin(Stdio::null())
    .stdout(log.try_clone().context("duplicating log handle")?)
    .stderr(log);
    // SAFETY: setsid is async-signal-safe; it detaches the host from our
    // terminal so it outlives this command.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .context("starting the host's namespaces (ip netns exec ... unshare)")?;
    Ok(child.id())
}

/// The script that runs as PID 1's parent inside the host: hostname,
/// private /run and /var/lib/faultline, quiet shell rc, then sshd.
pub fn boot_script(host: &LabHost, fs: &Path, sshd_config: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # Written by `faultline lab up`: boots host {ns} inside its namespaces.\n\
         set -e\n\
         hostname {ns}\n\
         mount -t tmpfs -o mode=0755 lab-run /run\n\
         mkdir -p /run/sshd\n\
         mount --bind {fs} {remote}\n\
         # A slow shell rc file would run on every SSH command.\n\
         for rc in /root/.bashrc /root/.profile /root/.bash_profile; do\n\
         \x20 if [ -f \"$rc\" ]; then mount --bind /dev/null \"$rc\"; fi\n\
         done\n\
         exec /usr/sbin/sshd -D -e -f {cfg}\n",
        ns = host.ns,
        fs = crate::ssh::sh_quote(&fs.display().to_string()),
        remote = REMOTE_DIR,
        cfg = crate::ssh::sh_quote(&sshd_config.display().to_string()),
    )
}

fn wait_for_sshd(host: &LabHost, dir: &Path, deadline: Instant) -> anyhow::Result<()> {
    let addr: SocketAddr = format!("{}:22", host.addr)
        .parse()
        .expect("lab addresses are valid");
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(pid) = host.pid {
            if !system::alive(pid as i32) {
                let log =
                    std::fs::read_to_string(host.dir(dir).join("host.log")).unwrap_or_default();
                bail!(
                    "host {} ({}) died while starting: {}",
                    host.ns,
                    host.addr,
                    log.trim()
                );
            }
        }
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 8];
                if s.read_exact(&mut banner).is_ok() && banner.starts_with(b"SSH-") {
                    return Ok(());
                }
                last = "no SSH banner".into();
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(host.dir(dir).join("host.log")).unwrap_or_default();
    bail!(
        "sshd on {} ({}) did not answer in time ({last}); its log: {}",
        host.ns,
        host.addr,
        log.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_script_isolates_run_and_the_remote_dir_then_execs_sshd() {
        let host = LabHost::new(3);
        let s = boot_script(
            &host,
            Path::new("/tmp/my lab/hosts/fl-lab-3/fs"),
            Path::new("/tmp/my lab/sshd_config"),
        );
        assert!(s.contains("hostname fl-lab-3\n"));
        assert!(s.contains("mount -t tmpfs -o mode=0755 lab-run /run\n"));
        assert!(
            s.contains("mount --bind '/tmp/my lab/hosts/fl-lab-3/fs' /var/lib/faultline\n"),
            "{s}"
        );
        assert!(
            s.trim_end()
                .ends_with("exec /usr/sbin/sshd -D -e -f '/tmp/my lab/sshd_config'"),
            "{s}"
        );
        let out = Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&s)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sh -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

//! Reaching lab hosts the way their users reach them with `ssh n1`: by a
//! Host alias of an OpenSSH config that gives the address, a user that is
//! not root, a port that is not 22, and the key; explicit flags winning;
//! encrypted keys opened by FAULTLINE_SSH_PASSPHRASE or by the agent; the
//! default `~/.ssh/id_ecdsa` offered when nothing else is given; Jepsen's
//! `-n`, `--username` and `--password` (or FAULTLINE_SSH_PASSWORD) on a
//! host that takes password logins only. And
//! the deploy check: a host that cannot run the uploaded executable (here a
//! library its loader needs is missing on that host only) fails the deploy
//! naming that host and the loader's error.
//!
//! Needs root: `FAULTLINE_LAB_TESTS=1 cargo test -p faultline --test ssh_config_lab -- --ignored`
//! (run by .ci/lab.sh).

mod lab_support;

use lab_support::{enabled, faultline, text, TestLab};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TEST_USER: &str = "fl-sshcfg";
const EXTRA_PORT: u16 = 2022;

fn run_env(args: &[&str], env: &[(&str, &str)], remove: &[&str]) -> Output {
    let mut c = Command::new(faultline());
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    for k in remove {
        c.env_remove(k);
    }
    c.output().expect("faultline runs")
}

/// The PID holding lab host `index`'s namespaces (from lab.json).
fn host_pid(lab: &TestLab, index: usize) -> u32 {
    let text = std::fs::read_to_string(lab.path().join("lab.json")).expect("lab.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("lab.json parses");
    v["hosts"][index - 1]["pid"]
        .as_u64()
        .expect("the host has a pid") as u32
}

/// A user on this machine for the test (the lab's hosts share /etc),
/// removed on drop if the test made it.
struct TestUser {
    made: bool,
}

impl TestUser {
    fn make() -> TestUser {
        let exists = Command::new("id")
            .arg(TEST_USER)
            .output()
            .is_ok_and(|o| o.status.success());
        if exists {
            return TestUser { made: false };
        }
        let ok = Command::new("useradd")
            .args([
                "--no-create-home",
                "--home-dir",
                "/tmp",
                "--shell",
                "/bin/sh",
                "--password",
                "*",
                TEST_USER,
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "useradd {TEST_USER}");
        TestUser { made: true }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        if self.made {
            let _ = Command::new("userdel").arg(TEST_USER).status();
        }
    }
}

/// A second sshd in lab host 1's namespaces, on another port; killed on drop.
struct ExtraSshd {
    child: Child,
}

impl ExtraSshd {
    fn start(lab: &TestLab) -> ExtraSshd {
        ExtraSshd::start_with(lab, &[])
    }

    /// With some of the lab's settings replaced (`("PasswordAuthentication", "yes")`).
    fn start_with(lab: &TestLab, settings: &[(&str, &str)]) -> ExtraSshd {
        let host_dir = lab.path().join("hosts/fl-lab-1");
        let base = std::fs::read_to_string(host_dir.join("sshd_config")).expect("sshd_config");
        let config: String = base
            .lines()
            .map(|l| {
                let replaced = settings
                    .iter()
                    .find(|(name, _)| l.starts_with(&format!("{name} ")));
                if let Some((name, value)) = replaced {
                    format!("{name} {value}\n")
                } else if l.starts_with("Port ") {
                    format!("Port {EXTRA_PORT}\n")
                } else if l.starts_with("PidFile ") {
                    format!("PidFile {}\n", lab.path().join("extra-sshd.pid").display())
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let path = lab.path().join("sshd_config.extra");
        std::fs::write(&path, config).expect("write the extra sshd_config");
        let pid = host_pid(lab, 1).to_string();
        let child = Command::new("nsenter")
            .args([
                "-t",
                &pid,
                "-n",
                "-m",
                "-u",
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-f",
            ])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(lab.path().join("extra-sshd.log")).expect("log"))
            .spawn()
            .expect("start the extra sshd");
        let sshd = ExtraSshd { child };
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = format!("{}:{EXTRA_PORT}", lab.addr(1));
        while TcpStream::connect_timeout(&addr.parse().expect("addr"), Duration::from_millis(300))
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the extra sshd did not listen: {}",
                std::fs::read_to_string(lab.path().join("extra-sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        sshd
    }
}

impl Drop for ExtraSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// known_hosts for the lab plus host 1 on the extra port (same host key).
fn known_hosts(lab: &TestLab) -> PathBuf {
    let real = std::fs::read_to_string(lab.path().join("known_hosts")).expect("known_hosts");
    let mut out = real.clone();
    for line in real.lines() {
        if let Some(rest) = line.strip_prefix(&format!("{} ", lab.addr(1))) {
            out.push_str(&format!("[{}]:{EXTRA_PORT} {rest}\n", lab.addr(1)));
        }
    }
    let path = lab.path().join("known_hosts.sshcfg");
    std::fs::write(&path, out).expect("write known_hosts");
    path
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn hosts_are_reached_by_alias_with_user_port_and_key_from_the_openssh_config() {
    if !enabled("openssh_config_aliases") {
        return;
    }
    let lab = TestLab::up(2);
    let _user = TestUser::make();
    let _sshd = ExtraSshd::start(&lab);
    let kh = known_hosts(&lab);
    let key = lab.path().join("id_ed25519");
    let home = tempfile::tempdir().expect("an empty HOME: no default keys");
    let config = lab.path().join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "# as a user would write it\n\
             Host db-a\n    HostName {a}\n    Port {EXTRA_PORT}\n    User {TEST_USER}\n    IdentityFile {key}\n\
             Host db-b\n    HostName {b}\n    User root\n    IdentityFile {key}\n\
             Host *\n    IdentitiesOnly yes\n",
            a = lab.addr(1),
            b = lab.addr(2),
            key = key.display(),
        ),
    )
    .expect("write ssh_config");
    let home_env = [("HOME", p(home.path()))];
    let no_agent = ["SSH_AUTH_SOCK", "FAULTLINE_SSH_PASSPHRASE"];
    let ping = |extra: &[&str], env: &[(&str, &str)], remove: &[&str]| {
        let mut args = vec![
            "lab",
            "ping",
            "--nodes",
            "db-a,db-b",
            "--ssh-config",
            p(&config),
            "--known-hosts",
            p(&kh),
            "--ssh-connect-timeout",
            "5s",
        ];
        args.extend_from_slice(extra);
        let o = run_env(&args, env, remove);
        (o.status.code(), text(&o))
    };

    // By alias: address, port, user and key all from the file.
    let (code, out) = ping(&[], &home_env, &no_agent);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "db-a ({}:{EXTRA_PORT})\tok\thostname=fl-lab-1\tuser={TEST_USER}",
            lab.addr(1)
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "db-b ({})\tok\thostname=fl-lab-2\tuser=root",
            lab.addr(2)
        )),
        "{out}"
    );

    // An explicit flag wins over the file.
    let (code, out) = ping(&["--ssh-user", "root"], &home_env, &no_agent);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("hostname=fl-lab-1\tuser=root"), "{out}");
    let (code, out) = ping(&["--ssh-port", "22"], &home_env, &no_agent);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "db-a ({})\tok\thostname=fl-lab-1\tuser={TEST_USER}",
            lab.addr(1)
        )),
        "--ssh-port beats Port: {out}"
    );

    // An encrypted copy of the key: refused without a passphrase (no
    // terminal here), opened with FAULTLINE_SSH_PASSPHRASE.
    let locked = lab.path().join("locked_key");
    std::fs::copy(&key, &locked).expect("copy key");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-p", "-N", "s3cret pass", "-P", "", "-f"])
        .arg(&locked)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ssh-keygen -p");
    let locked_config = lab.path().join("ssh_config.locked");
    std::fs::write(
        &locked_config,
        std::fs::read_to_string(&config)
            .expect("read")
            .replace(&key.display().to_string(), &locked.display().to_string()),
    )
    .expect("write");
    let with = |env: &[(&str, &str)], remove: &[&str]| {
        let o = run_env(
            &[
                "lab",
                "ping",
                "--nodes",
                "db-b",
                "--ssh-config",
                p(&locked_config),
                "--known-hosts",
                p(&kh),
                "--ssh-connect-timeout",
                "5s",
            ],
            env,
            remove,
        );
        (o.status.code(), text(&o))
    };
    let (code, out) = with(&home_env, &no_agent);
    assert_eq!(code, Some(255), "{out}");
    assert!(
        out.contains("locked_key (encrypted: add it to the SSH agent"),
        "{out}"
    );
    let (code, out) = with(
        &[
            ("HOME", p(home.path())),
            ("FAULTLINE_SSH_PASSPHRASE", "s3cret pass"),
        ],
        &["SSH_AUTH_SOCK"],
    );
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = with(
        &[
            ("HOME", p(home.path())),
            ("FAULTLINE_SSH_PASSPHRASE", "wrong"),
        ],
        &["SSH_AUTH_SOCK"],
    );
    assert_eq!(code, Some(255), "{out}");
    assert!(out.contains("wrong passphrase?"), "{out}");

    // The agent: a host with no IdentityFile, the key only in the agent.
    let agent_config = lab.path().join("ssh_config.agent");
    std::fs::write(
        &agent_config,
        format!("Host db-b\n    HostName {}\n", lab.addr(2)),
    )
    .expect("write");
    let sock = lab.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh-agent");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "ssh-agent made no socket");
            std::thread::sleep(Duration::from_millis(50));
        }
        let added = Command::new("ssh-add")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &sock)
            .output()
            .expect("ssh-add");
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
        let args = [
            "lab",
            "ping",
            "--nodes",
            "db-b",
            "--ssh-config",
            p(&agent_config),
            "--known-hosts",
            p(&kh),
        ];
        let o = run_env(
            &args,
            &[("HOME", p(home.path())), ("SSH_AUTH_SOCK", p(&sock))],
            &[],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        // The control: without the agent there is nothing to offer.
        let o = run_env(&args, &home_env, &no_agent);
        assert_eq!(o.status.code(), Some(255), "{}", text(&o));
        assert!(text(&o).contains("tried nothing"), "{}", text(&o));
    }));
    let _ = agent.kill();
    let _ = agent.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn a_host_that_cannot_run_the_executable_fails_the_deploy_naming_it() {
    if !enabled("deploy_not_runnable") {
        return;
    }
    let lab = TestLab::up(2);
    // Host 2 loses a library the executable needs (only in its own mount
    // namespace): as a host without OpenSSL 3 would have lacked libssl.
    let ldd = Command::new("ldd").arg(faultline()).output().expect("ldd");
    let ldd = String::from_utf8_lossy(&ldd.stdout).into_owned();
    let lib = ldd
        .lines()
        .find(|l| l.trim_start().starts_with("libgcc_s"))
        .and_then(|l| l.split("=>").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .map(|p| std::fs::canonicalize(p).expect("the library exists"))
        .unwrap_or_else(|| panic!("faultline links no libgcc_s to hide:\n{ldd}"));
    let pid = host_pid(&lab, 2).to_string();
    let hidden = Command::new("nsenter")
        .args(["-t", &pid, "-m", "mount", "--bind", "/dev/null"])
        .arg(&lib)
        .status()
        .is_ok_and(|s| s.success());
    assert!(hidden, "hiding {} on host 2", lib.display());

    let o = run_env(&["lab", "deploy", "--lab", lab.dir_str()], &[], &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(255), "{out}");
    let name = lib
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        out.contains(&format!(
            "{}: the uploaded /var/lib/faultline/",
            lab.addr(2)
        )),
        "names host 2: {out}"
    );
    assert!(
        out.contains("error while loading shared libraries") && out.contains(&name),
        "the loader's own error: {out}"
    );
    assert!(
        !out.contains(&format!("{}: the uploaded", lab.addr(1))),
        "host 1 runs it: {out}"
    );

    // `faultline test` fails the same way, before any node starts.
    let store = tempfile::tempdir().expect("store");
    let o = run_env(
        &[
            "test",
            "--lab",
            lab.dir_str(),
            "--store",
            p(store.path()),
            "--time-limit",
            "2s",
        ],
        &[],
        &[],
    );
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    assert!(
        text(&o).contains("error while loading shared libraries"),
        "{}",
        text(&o)
    );
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn a_host_cut_off_from_us_is_reached_through_its_proxy_jump() {
    if !enabled("proxy_jump") {
        return;
    }
    let lab = TestLab::up(2);
    // Host 2 drops SSH from this machine (the bridge address), not from host 1.
    let ns = "fl-lab-2";
    let cut = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "iptables",
            "-w",
            "-I",
            "INPUT",
            "-s",
            "10.77.0.1",
        ])
        .args(["-p", "tcp", "--dport", "22", "-j", "DROP"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(cut, "iptables in {ns}");
    let key = lab.path().join("id_ed25519");
    let config = lab.path().join("ssh_config.jump");
    std::fs::write(
        &config,
        format!(
            "Host target\n    HostName {b}\n    ProxyJump jump\nHost direct\n    HostName {b}\n\
             Host jump\n    HostName {a}\nHost *\n    User root\n    IdentityFile {key}\n",
            a = lab.addr(1),
            b = lab.addr(2),
            key = key.display()
        ),
    )
    .expect("write");
    let home = tempfile::tempdir().expect("home");
    let kh = lab.path().join("known_hosts");
    let args = |node: &'static str, cmd: &'static str| {
        vec![
            "lab".to_string(),
            cmd.to_string(),
            "--nodes".into(),
            node.into(),
            "--ssh-config".into(),
            p(&config).into(),
            "--known-hosts".into(),
            p(&kh).into(),
            "--ssh-connect-timeout".into(),
            "3s".into(),
        ]
    };
    let go = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run_env(&a, &[("HOME", p(home.path()))], &["SSH_AUTH_SOCK"])
    };
    let o = go(args("direct", "ping"));
    assert_eq!(o.status.code(), Some(255), "cut off directly: {}", text(&o));
    assert!(text(&o).contains("unreachable"), "{}", text(&o));
    let o = go(args("target", "ping"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("hostname=fl-lab-2"), "{}", text(&o));
    // A deploy (SFTP of the whole executable) through the jump host.
    let o = go(args("target", "deploy"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("faultline "),
        "the version it reported: {}",
        text(&o)
    );
}

/// OpenSSH's default identities include `id_ecdsa`: with no agent, no
/// `--ssh-key` and no config, a key at `~/.ssh/id_ecdsa` is offered, named
/// in the error while the host does not accept it, and reaches the host
/// once it does.
#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn the_default_id_ecdsa_key_is_offered_when_nothing_else_is_given() {
    if !enabled("default_id_ecdsa") {
        return;
    }
    let lab = TestLab::up(1);
    let home = tempfile::tempdir().expect("an empty HOME");
    let ssh_dir = home.path().join(".ssh");
    std::fs::create_dir(&ssh_dir).expect("~/.ssh");
    let key = ssh_dir.join("id_ecdsa");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-C", "faultline-ecdsa", "-f"])
        .arg(&key)
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "ssh-keygen -t ecdsa");
    let known_hosts = lab.path().join("known_hosts");
    let addr = lab.addr(1);
    let ping = || {
        let o = run_env(
            &[
                "lab",
                "ping",
                "--nodes",
                &addr,
                "--ssh-config",
                "none",
                "--known-hosts",
                p(&known_hosts),
                "--ssh-user",
                "root",
                "--ssh-connect-timeout",
                "5s",
            ],
            &[("HOME", p(home.path()))],
            &["SSH_AUTH_SOCK", "FAULTLINE_SSH_PASSPHRASE"],
        );
        (o.status.code(), text(&o))
    };
    let (code, out) = ping();
    assert_ne!(code, Some(0), "not authorized yet: {out}");
    assert!(
        out.contains(&format!("key {} (", key.display())),
        "id_ecdsa was offered: {out}"
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("id_ecdsa.pub");
    let authorized = lab.path().join("authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).expect("the lab's authorized_keys");
    keys.push_str(&public);
    std::fs::write(&authorized, keys).expect("authorize id_ecdsa");
    let (code, out) = ping();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok\thostname=fl-lab-1\tuser=root"), "{out}");
}

/// Jepsen's `--password` (and FAULTLINE_SSH_PASSWORD) for a host that takes
/// password logins only: no agent, no key anywhere; a wrong password fails
/// naming the host and the password tried.
#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn a_password_only_host_is_reached_with_jepsens_password_flag() {
    if !enabled("password_login") {
        return;
    }
    let lab = TestLab::up(1);
    let _user = TestUser::make();
    let password = "fl-pw-3141";
    let _password = UserPassword::set(password);
    let _sshd = ExtraSshd::start_with(
        &lab,
        &[
            ("PasswordAuthentication", "yes"),
            ("PubkeyAuthentication", "no"),
        ],
    );
    let kh = known_hosts(&lab);
    let home = tempfile::tempdir().expect("an empty HOME: no default keys");
    let host = format!("{}:{EXTRA_PORT}", lab.addr(1));
    let ping = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "lab",
            "ping",
            "-n",
            &host,
            "--username",
            TEST_USER,
            "--ssh-config",
            "none",
            "--known-hosts",
            p(&kh),
            "--ssh-connect-timeout",
            "5s",
        ];
        args.extend_from_slice(extra);
        let mut env = env.to_vec();
        env.push(("HOME", p(home.path())));
        // No agent, no passphrase, and no password but the one given.
        let mut remove = vec!["SSH_AUTH_SOCK", "FAULTLINE_SSH_PASSPHRASE"];
        if !env
            .iter()
            .any(|(name, _)| *name == "FAULTLINE_SSH_PASSWORD")
        {
            remove.push("FAULTLINE_SSH_PASSWORD");
        }
        let o = run_env(&args, &env, &remove);
        (o.status.code(), text(&o))
    };
    let (code, out) = ping(&["--password", password], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("ok\thostname=fl-lab-1\tuser={TEST_USER}")),
        "{out}"
    );
    let (code, out) = ping(&[], &[("FAULTLINE_SSH_PASSWORD", password)]);
    assert_eq!(code, Some(0), "FAULTLINE_SSH_PASSWORD: {out}");
    let (code, out) = ping(&["--password", "not-it"], &[]);
    assert_eq!(code, Some(255), "{out}");
    assert!(
        out.contains(&host) && out.contains("the password ("),
        "names the host and the password tried: {out}"
    );
}

/// Sets TEST_USER's password for one test; locks it again on drop.
struct UserPassword;

impl UserPassword {
    fn set(password: &str) -> UserPassword {
        use std::io::Write;
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd runs");
        chpasswd
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{TEST_USER}:{password}\n").as_bytes())
            .expect("write to chpasswd");
        assert!(chpasswd.wait().expect("chpasswd").success(), "chpasswd");
        UserPassword
    }
}

impl Drop for UserPassword {
    fn drop(&mut self) {
        let _ = Command::new("usermod")
            .args(["-p", "*", TEST_USER])
            .status();
    }
}

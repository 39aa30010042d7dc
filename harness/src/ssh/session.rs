//! One SSH connection to one host, reused for every command.
//!
//! Guarantees:
//! - Connecting takes at most the connect timeout, retries included; a TCP
//!   failure is retried with back-off, a refused host key or a failed
//!   authentication is not (retrying cannot fix it).
//! - The host key is checked against the known_hosts file before any
//!   credential is offered. Unknown keys are refused unless `accept_new`;
//!   changed and revoked keys are always refused.
//! - Every command ends within its timeout. On a timeout or a broken
//!   connection the connection is dropped, and the next command reconnects.
//! - stdout and stderr are read together, so a chatty command cannot stall.

use super::config::{home_dir, HostAddr, Identity, SshConfig, DEFAULT_IDENTITY_FILES};
use super::error::SshError;
use super::key_file;
use super::known_hosts::{blob_key_type, fingerprint, lookup_name, HostKeyStatus, KnownHosts};
use super::quote::sh_quote;
use super::tunnel;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a finished remote command left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// Whether an upload sent the file or found it already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upload {
    Sent { bytes: u64 },
    AlreadyThere,
}

struct Conn {
    sess: ssh2::Session,
    fd: RawFd,
}

/// A host and its (lazily opened, reused) connection.
pub struct Session {
    addr: HostAddr,
    cfg: Arc<SshConfig>,
    /// Shared by the sessions of one run so that parallel `accept_new`
    /// appends do not interleave.
    known_hosts_lock: Arc<Mutex<()>>,
    conn: Mutex<Option<Conn>>,
}

impl Session {
    pub fn new(addr: HostAddr, cfg: Arc<SshConfig>, known_hosts_lock: Arc<Mutex<()>>) -> Session {
        Session {
            addr,
            cfg,
            known_hosts_lock,
            conn: Mutex::new(None),
        }
    }

    pub fn addr(&self) -> &HostAddr {
        &self.addr
    }

    /// The host as messages name it (its alias too, if it has one).
    pub fn name(&self) -> String {
        self.cfg.display_name(&self.addr)
    }

    /// The user this session logs in as.
    pub fn user(&self) -> &str {
        self.cfg.user_for(&self.addr)
    }

    pub fn config(&self) -> &SshConfig {
        &self.cfg
    }

    /// Connects now if not connected (with retries and back-off).
    pub fn connect(&self) -> Result<(), SshError> {
        let mut guard = self
            .conn
            .lock()
            .expect("session lock is never poisoned: no panics while held");
        if guard.is_none() {
            *guard = Some(self.open()?);
        }
        Ok(())
    }

    /// Drops the connection; the next command reconnects.
    pub fn disconnect(&self) {
        let mut guard = self.conn.lock().expect("session lock is never poisoned");
        if let Some(c) = guard.take() {
            let _ = c.sess.disconnect(None, "bye", None);
        }
    }

    /// Runs `command` through the remote user's shell.
    pub fn exec(&self, command: &str, timeout: Duration) -> Result<CmdOutput, SshError> {
        let mut guard = self.conn.lock().expect("session lock is never poisoned");
        if guard.is_none() {
            *guard = Some(self.open()?);
        }
        let conn = guard.as_ref().expect("connected just above");
        match self.exec_on(conn, command, timeout) {
            Ok(out) => Ok(out),
            Err(e) => {
                if e.is_connection_problem() {
                    // The channel may be half-open; start clean next time.
                    if let Some(c) = guard.take() {
                        let _ = c.sess.disconnect(None, "reset", None);
                    }
                }
                Err(e)
            }
        }
    }

    /// `command` as root: wrapped in `sudo -n sh -c` when the user is not root.
    pub fn root_command(&self, command: &str) -> String {
        if self.cfg.needs_sudo(&self.addr) {
            format!("sudo -n sh -c {}", sh_quote(command))
        } else {
            command.to_string()
        }
    }

    /// Runs `command` as root (see [`Session::root_command`]).
    pub fn exec_root(&self, command: &str, timeout: Duration) -> Result<CmdOutput, SshError> {
        self.exec(&self.root_command(command), timeout)
    }

    /// Runs `command` as root with the default timeout and fails unless it
    /// exits 0; returns its stdout.
    pub fn run_root(&self, command: &str) -> Result<String, SshError> {
        let out = self.exec_root(command, self.cfg.command_timeout)?;
        if !out.success() {
            return Err(SshError::Command {
                host: self.name(),
                command: command.to_string(),
                status: out.status,
                stderr: out.stderr.trim().to_string(),
            });
        }
        Ok(out.stdout)
    }

    /// Like [`Session::run_root`], but a lost connection is retried (with
    /// reconnects and back-off) until `budget` is spent: for idempotent
    /// commands such as healing faults, which must get through even when a
    /// host was unreachable for a while.
    pub fn run_root_retrying(&self, command: &str, budget: Duration) -> Result<String, SshError> {
        let start = Instant::now();
        let mut attempt = 0u32;
        loop {
            match self.run_root(command) {
                Err(e)
                    if e.is_connection_problem()
                        && start.elapsed() + self.cfg.backoff.delay(attempt) < budget =>
                {
                    tracing::warn!(host = %self.name(), error = %e, "retrying after a connection problem");
                    std::thread::sleep(self.cfg.backoff.delay(attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Uploads `local` to `remote` (mode 0755) by SFTP, unless the remote
    /// file already has `sha256` (hex). Writes to a temporary name and
    /// renames, so a running copy of the old file is not disturbed, then
    /// verifies the checksum.
    pub fn upload_if_changed(
        &self,
        local: &Path,
        remote: &str,
        sha256: &str,
    ) -> Result<Upload, SshError> {
        let have = self.exec_root(
            &format!("sha256sum {} 2>/dev/null", sh_quote(remote)),
            self.cfg.command_timeout,
        )?;
        if have.stdout.split_whitespace().next() == Some(sha256) {
            return Ok(Upload::AlreadyThere);
        }
        let dir = Path::new(remote)
            .parent()
            .and_then(Path::to_str)
            .unwrap_or("/");
        let staging = if self.cfg.needs_sudo(&self.addr) {
            // Hosts may share /tmp (the lab's do): name the file per host.
            let host: String = self
                .name()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            format!("/tmp/.faultline-upload-{}-{host}", std::process::id())
        } else {
            self.run_root(&format!("mkdir -p {}", sh_quote(dir)))?;
            format!("{remote}.upload-{}", std::process::id())
        };
        let bytes = self.sftp_put(local, &staging, 0o755)?;
        let install = format!(
            "mkdir -p {d} && chmod 0755 {s} && mv -f {s} {r} && sha256sum {r}",
            d = sh_quote(dir),
            s = sh_quote(&staging),
            r = sh_quote(remote)
        );
        let after = self.run_root(&install)?;
        if after.split_whitespace().next() != Some(sha256) {
            return Err(SshError::Transfer {
                host: self.name(),
                path: remote.to_string(),
                cause: format!(
                    "checksum after upload is {:?}, expected {sha256}",
                    after.trim()
                ),
            });
        }
        Ok(Upload::Sent { bytes })
    }

    /// Downloads `remote` into the local file `local` by SFTP. Returns the
    /// bytes copied.
    pub fn download(&self, remote: &str, local: &Path) -> Result<u64, SshError> {
        self.with_sftp(remote, |sftp, transfer| {
            let mut file = sftp
                .open(Path::new(remote))
                .map_err(|e| transfer(format!("open: {e}")))?;
            let mut out = std::fs::File::create(local)
                .map_err(|e| transfer(format!("create {}: {e}", local.display())))?;
            std::io::copy(&mut file, &mut out).map_err(|e| transfer(format!("copy: {e}")))
        })
    }

    /// Downloads at most `max_bytes` of `remote` into `local` by SFTP:
    /// the bytes copied and the remote file's size, or None when there is
    /// no such file (nothing is created then).
    pub fn download_prefix(
        &self,
        remote: &str,
        local: &Path,
        max_bytes: u64,
    ) -> Result<Option<(u64, u64)>, SshError> {
        self.with_sftp(remote, |sftp, transfer| {
            // LIBSSH2_FX_NO_SUCH_FILE
            const NO_SUCH_FILE: ssh2::ErrorCode = ssh2::ErrorCode::SFTP(2);
            let file_bytes = match sftp.stat(Path::new(remote)) {
                Ok(stat) => stat.size.unwrap_or(0),
                Err(e) if e.code() == NO_SUCH_FILE => return Ok(None),
                Err(e) => return Err(transfer(format!("stat: {e}"))),
            };
            let file = sftp
                .open(Path::new(remote))
                .map_err(|e| transfer(format!("open: {e}")))?;
            let mut out = std::fs::File::create(local)
                .map_err(|e| transfer(format!("create {}: {e}", local.display())))?;
            let copied = std::io::copy(&mut file.take(max_bytes), &mut out)
                .map_err(|e| transfer(format!("copy: {e}")))?;
            Ok(Some((copied, file_bytes.max(copied))))
        })
    }

    /// Uploads `local` to `remote` by SFTP as a private file: created with
    /// mode 0600 (never readable by others, not even for a moment), in a
    /// folder made with umask 077, then moved into place as root. For a
    /// secret (a run's auth token): no command line carries its content.
    pub fn upload_private(&self, local: &Path, remote: &str) -> Result<(), SshError> {
        let dir = Path::new(remote)
            .parent()
            .and_then(Path::to_str)
            .unwrap_or("/");
        self.run_root(&format!("umask 077 && mkdir -p {}", sh_quote(dir)))?;
        let staging = if self.cfg.needs_sudo(&self.addr) {
            let host: String = self
                .name()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            format!("/tmp/.faultline-private-{}-{host}", std::process::id())
        } else {
            format!("{remote}.upload-{}", std::process::id())
        };
        self.sftp_put(local, &staging, 0o600)?;
        self.run_root(&format!(
            "chmod 0600 {s} && mv -f {s} {r}",
            s = sh_quote(&staging),
            r = sh_quote(remote)
        ))
        .map(|_| ())
    }

    fn sftp_put(&self, local: &Path, remote: &str, mode: i32) -> Result<u64, SshError> {
        let mut input = std::fs::File::open(local)
            .map_err(|e| self.transfer_error(remote, format!("open {}: {e}", local.display())))?;
        self.with_sftp(remote, |sftp, transfer| {
            let mut file = sftp
                .open_mode(
                    Path::new(remote),
                    ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::TRUNCATE,
                    mode,
                    ssh2::OpenType::File,
                )
                .map_err(|e| transfer(format!("create: {e}")))?;
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            loop {
                let n = input
                    .read(&mut buf)
                    .map_err(|e| transfer(format!("read local file: {e}")))?;
                if n == 0 {
                    break;
                }
                file.write_all(&buf[..n])
                    .map_err(|e| transfer(format!("write: {e}")))?;
                total += n as u64;
            }
            file.close().map_err(|e| transfer(format!("close: {e}")))?;
            Ok(total)
        })
    }

    /// Runs `work` with an SFTP channel on this host's connection (opened
    /// if there is none), blocking, under the command timeout; `work` gets
    /// the channel and the error for `remote`. A failure drops the
    /// connection, so the next call opens a fresh one.
    fn with_sftp<T>(
        &self,
        remote: &str,
        work: impl FnOnce(&ssh2::Sftp, &dyn Fn(String) -> SshError) -> Result<T, SshError>,
    ) -> Result<T, SshError> {
        let transfer = |cause: String| self.transfer_error(remote, cause);
        let mut guard = self.conn.lock().expect("session lock is never poisoned");
        if guard.is_none() {
            *guard = Some(self.open()?);
        }
        let conn = guard.as_ref().expect("connected just above");
        conn.sess.set_blocking(true);
        conn.sess.set_timeout(timeout_ms(self.cfg.command_timeout));
        let result = conn
            .sess
            .sftp()
            .map_err(|e| transfer(format!("sftp: {e}")))
            .and_then(|sftp| work(&sftp, &transfer));
        if result.is_err() {
            guard.take();
        }
        result
    }

    /// A failed transfer of `path` on this host.
    fn transfer_error(&self, path: &str, cause: String) -> SshError {
        SshError::Transfer {
            host: self.name(),
            path: path.to_string(),
            cause,
        }
    }

    /// Opens a connection, retrying TCP failures with back-off within the
    /// connect timeout.
    fn open(&self) -> Result<Conn, SshError> {
        let start = Instant::now();
        let deadline = start + self.cfg.connect_timeout;
        let mut attempt = 0u32;
        loop {
            match self.try_open(deadline) {
                Ok(c) => return Ok(c),
                Err(Retry::No(e)) => return Err(e),
                Err(Retry::Yes(cause)) => {
                    let pause = self.cfg.backoff.delay(attempt);
                    attempt += 1;
                    if Instant::now() + pause >= deadline {
                        return Err(SshError::Unreachable {
                            host: self.name(),
                            attempts: attempt,
                            waited_ms: start.elapsed().as_millis() as u64,
                            cause,
                        });
                    }
                    tracing::debug!(host = %self.name(), attempt, %cause, "connect failed; retrying");
                    std::thread::sleep(pause);
                }
            }
        }
    }

    fn try_open(&self, deadline: Instant) -> Result<Conn, Retry> {
        let remaining = || {
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        };
        let mut sess =
            ssh2::Session::new().map_err(|e| Retry::No(self.handshake_err(e.to_string())))?;
        let fd = match self.jump_host() {
            None => {
                let tcp = self.tcp_connect(remaining())?;
                let fd = tcp.as_raw_fd();
                sess.set_tcp_stream(tcp);
                fd
            }
            Some(jump) => {
                let stream = self.tunnel(&jump, deadline)?;
                let fd = stream.as_raw_fd();
                sess.set_tcp_stream(stream);
                fd
            }
        };
        sess.set_timeout(timeout_ms(remaining()));

        let name = lookup_name(&self.addr.host, self.addr.port);
        let known = {
            let _g = self
                .known_hosts_lock
                .lock()
                .expect("known_hosts lock is never poisoned");
            KnownHosts::load(&self.cfg.known_hosts).map_err(|e| {
                Retry::No(SshError::KnownHostsFile {
                    host: self.name(),
                    path: self.cfg.known_hosts.clone(),
                    cause: e.to_string(),
                })
            })?
        };
        // Ask for a host key type we can verify, as OpenSSH does.
        let types = known.key_types_for(&name);
        if !types.is_empty() {
            let mut prefs: Vec<&str> = Vec::new();
            for t in &types {
                match t.as_str() {
                    "ssh-rsa" => prefs.extend(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]),
                    other => prefs.push(other),
                }
            }
            let _ = sess.method_pref(ssh2::MethodType::HostKey, &prefs.join(","));
        }
        // AES-GCM first: with AES-NI it is the cheapest cipher and MAC in
        // one, which matters for deploys of a large executable.
        for dir in [ssh2::MethodType::CryptCs, ssh2::MethodType::CryptSc] {
            let _ = sess.method_pref(dir, CIPHERS);
        }
        sess.handshake().map_err(|e| {
            // A closed or reset socket during the handshake is a network
            // problem (sshd not up yet, MaxStartups); retry it.
            Retry::Yes(format!("SSH handshake: {e}"))
        })?;

        let (key, _) = sess
            .host_key()
            .ok_or_else(|| Retry::No(self.handshake_err("server sent no host key".into())))?;
        let key = key.to_vec();
        self.verify_host_key(&name, &key, known)
            .map_err(Retry::No)?;
        self.authenticate(&sess).map_err(Retry::No)?;
        Ok(Conn { sess, fd })
    }

    /// The jump host (ProxyJump) this host is reached through, if any.
    fn jump_host(&self) -> Option<HostAddr> {
        self.cfg
            .logins
            .get(&self.addr)
            .and_then(|l| l.proxy_jump.clone())
    }

    fn tcp_connect(&self, timeout: Duration) -> Result<TcpStream, Retry> {
        let addrs: Vec<_> = (self.addr.host.as_str(), self.addr.port)
            .to_socket_addrs()
            .map_err(|e| Retry::Yes(format!("cannot resolve: {e}")))?
            .collect();
        let addr = *addrs
            .first()
            .ok_or_else(|| Retry::Yes("name resolves to no address".into()))?;
        let tcp = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| Retry::Yes(format!("TCP connect to {addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// Connects to `jump` (verified and logged in to as any host is) and
    /// opens a channel from it to this host; the socket to run over.
    fn tunnel(&self, jump: &HostAddr, deadline: Instant) -> Result<UnixStream, Retry> {
        let via = Session::new(
            jump.clone(),
            self.cfg.clone(),
            self.known_hosts_lock.clone(),
        );
        let conn = via.try_open(deadline).map_err(|r| match r {
            Retry::Yes(cause) => Retry::Yes(format!("via jump host {}: {cause}", via.name())),
            Retry::No(e) => Retry::No(self.handshake_err(format!("via jump host: {e}"))),
        })?;
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        conn.sess.set_timeout(timeout_ms(remaining));
        let channel = conn
            .sess
            .channel_direct_tcpip(&self.addr.host, self.addr.port, None)
            .map_err(|e| {
                Retry::Yes(format!(
                    "jump host {} could not open a channel to {} ({e}; does its sshd allow TCP forwarding?)",
                    via.name(),
                    self.addr
                ))
            })?;
        tunnel::start(conn.sess, conn.fd, channel)
            .map_err(|e| Retry::No(self.handshake_err(format!("starting the jump pump: {e}"))))
    }

    fn handshake_err(&self, cause: String) -> SshError {
        SshError::Handshake {
            host: self.name(),
            cause,
        }
    }

    fn verify_host_key(&self, name: &str, key: &[u8], known: KnownHosts) -> Result<(), SshError> {
        let fp = format!(
            "{} {}",
            blob_key_type(key).unwrap_or_default(),
            fingerprint(key)
        );
        match known.check(name, key) {
            HostKeyStatus::Match { .. } => Ok(()),
            HostKeyStatus::Changed { line } => Err(SshError::HostKeyChanged {
                host: self.name(),
                known_hosts: self.cfg.known_hosts.clone(),
                line,
                fingerprint: fp,
            }),
            HostKeyStatus::Revoked { line } => Err(SshError::HostKeyRevoked {
                host: self.name(),
                known_hosts: self.cfg.known_hosts.clone(),
                line,
                fingerprint: fp,
            }),
            HostKeyStatus::Unknown if self.cfg.accept_new => {
                let _g = self
                    .known_hosts_lock
                    .lock()
                    .expect("known_hosts lock is never poisoned");
                // Reload under the lock: another session may have just added a line.
                let mut fresh = KnownHosts::load(&self.cfg.known_hosts).map_err(|e| {
                    SshError::KnownHostsFile {
                        host: self.name(),
                        path: self.cfg.known_hosts.clone(),
                        cause: e.to_string(),
                    }
                })?;
                match fresh.check(name, key) {
                    HostKeyStatus::Match { .. } => return Ok(()),
                    HostKeyStatus::Unknown => {}
                    _ => return self.verify_host_key(name, key, fresh),
                }
                fresh
                    .append(name, key)
                    .map_err(|e| SshError::KnownHostsFile {
                        host: self.name(),
                        path: self.cfg.known_hosts.clone(),
                        cause: e.to_string(),
                    })?;
                tracing::info!(host = %self.name(), key = %fp, file = %self.cfg.known_hosts.display(), "recorded new host key");
                Ok(())
            }
            HostKeyStatus::Unknown => Err(SshError::HostKeyUnknown {
                host: self.name(),
                known_hosts: self.cfg.known_hosts.clone(),
                fingerprint: fp,
            }),
        }
    }

    /// Offers, in OpenSSH's order: the agent's keys (unless `--ssh-key`
    /// or IdentitiesOnly), the key files (the flag's, the OpenSSH config's,
    /// or the default ones that exist), then the password if one was given.
    /// The error lists everything tried and why each failed.
    fn authenticate(&self, sess: &ssh2::Session) -> Result<(), SshError> {
        let user = self.user().to_string();
        let login = self.cfg.logins.get(&self.addr);
        let mut tried: Vec<String> = Vec::new();
        let files: Vec<PathBuf> = match &self.cfg.identity {
            Identity::File(path) => vec![path.clone()],
            Identity::Default => {
                let identities_only = login.is_some_and(|l| l.identities_only);
                if !identities_only && std::env::var_os("SSH_AUTH_SOCK").is_some() {
                    match sess.userauth_agent(&user) {
                        Ok(()) if sess.authenticated() => return Ok(()),
                        Ok(()) => tried.push("the SSH agent (no key accepted)".into()),
                        Err(e) => tried.push(format!("the SSH agent ({})", e.message())),
                    }
                }
                match login.map(|l| &l.identity_files) {
                    Some(files) if !files.is_empty() => files.clone(),
                    _ => DEFAULT_IDENTITY_FILES
                        .iter()
                        .map(|name| home_dir().join(".ssh").join(name))
                        .filter(|p| p.exists())
                        .collect(),
                }
            }
        };
        for path in &files {
            if self.try_key(sess, &user, path, &mut tried) {
                return Ok(());
            }
        }
        if let Some(password) = &self.cfg.password {
            match sess.userauth_password(&user, &password.0) {
                Ok(()) if sess.authenticated() => return Ok(()),
                Ok(()) => tried.push("the password (not accepted)".into()),
                Err(e) => tried.push(format!("the password ({})", e.message())),
            }
        }
        if tried.is_empty() {
            tried.push(
                "nothing: no SSH agent, no ~/.ssh/id_ed25519, id_ecdsa or id_rsa (pass --ssh-key, \
                 an IdentityFile in ~/.ssh/config, or --password)"
                    .into(),
            );
        }
        Err(SshError::Auth {
            host: self.name(),
            user,
            tried: format!("tried {}", tried.join(", ")),
        })
    }

    /// Offers one key file; true when it logged us in, else notes why not.
    fn try_key(
        &self,
        sess: &ssh2::Session,
        user: &str,
        path: &Path,
        tried: &mut Vec<String>,
    ) -> bool {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                tried.push(format!("key {} ({e})", path.display()));
                return false;
            }
        };
        let passphrase = if key_file::is_encrypted(&text) {
            match key_file::passphrase_for(path) {
                Some(p) => Some(p),
                None => {
                    tried.push(format!(
                        "key {} (encrypted: add it to the SSH agent, set {}, or run on a terminal to be asked)",
                        path.display(),
                        key_file::PASSPHRASE_ENV
                    ));
                    return false;
                }
            }
        } else {
            None
        };
        match sess.userauth_pubkey_file(user, None, path, passphrase.as_deref()) {
            Ok(()) if sess.authenticated() => true,
            Ok(()) => {
                tried.push(format!("key {} (not accepted)", path.display()));
                false
            }
            Err(e) => {
                let hint = if passphrase.is_some() {
                    ", wrong passphrase?"
                } else {
                    ""
                };
                tried.push(format!("key {} ({}{hint})", path.display(), e.message()));
                false
            }
        }
    }

    fn exec_on(
        &self,
        conn: &Conn,
        command: &str,
        timeout: Duration,
    ) -> Result<CmdOutput, SshError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let lost = |e: ssh2::Error| SshError::Lost {
            host: self.name(),
            cause: e.to_string(),
        };
        let timed_out = || SshError::Timeout {
            host: self.name(),
            command: command.to_string(),
            after: timeout,
        };
        let sess = &conn.sess;
        sess.set_blocking(true);
        sess.set_timeout(timeout_ms(timeout));
        let mut ch =
            sess.channel_session()
                .map_err(|e| if is_timeout(&e) { timed_out() } else { lost(e) })?;
        ch.exec(command)
            .map_err(|e| if is_timeout(&e) { timed_out() } else { lost(e) })?;

        // Read both streams without blocking until EOF or the deadline.
        sess.set_blocking(false);
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let result = loop {
            let mut progressed = false;
            let mut failed = None;
            for stream_id in [0, 1] {
                let mut s = ch.stream(stream_id);
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            progressed = true;
                            if stream_id == 0 {
                                &mut stdout
                            } else {
                                &mut stderr
                            }
                            .extend_from_slice(&buf[..n]);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
            if let Some(e) = failed {
                break Err(SshError::Lost {
                    host: self.name(),
                    cause: e.to_string(),
                });
            }
            if ch.eof() {
                if progressed {
                    continue; // drain what arrived with the EOF before stopping
                }
                break Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(timed_out());
            }
            if !progressed {
                wait_readable(conn.fd, (deadline - now).min(Duration::from_millis(20)));
            }
        };
        sess.set_blocking(true);
        result?;
        sess.set_timeout(timeout_ms(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(500)),
        ));
        ch.wait_close()
            .map_err(|e| if is_timeout(&e) { timed_out() } else { lost(e) })?;
        let status = ch.exit_status().map_err(lost)?;
        // A command killed by a signal has no exit status (0 from libssh2):
        // report 128+n like a shell would.
        let status = match ch.exit_signal() {
            Ok(sig) if sig.exit_signal.is_some() => {
                128 + signal_number(sig.exit_signal.as_deref().unwrap_or(""))
            }
            _ => status,
        };
        Ok(CmdOutput {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}

/// Cipher preference (libssh2 drops the ones it lacks).
const CIPHERS: &str = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-ctr,aes256-ctr,chacha20-poly1305@openssh.com,aes192-ctr";

enum Retry {
    Yes(String),
    No(SshError),
}

fn is_timeout(e: &ssh2::Error) -> bool {
    // LIBSSH2_ERROR_TIMEOUT
    e.code() == ssh2::ErrorCode::Session(-9)
}

fn timeout_ms(d: Duration) -> u32 {
    d.as_millis().clamp(1, u128::from(u32::MAX)) as u32
}

fn signal_number(name: &str) -> i32 {
    match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ABRT" => 6,
        "KILL" => 9,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => 0,
    }
}

/// Waits until the socket has data (or the timeout passes).
fn wait_readable(fd: RawFd, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd on the stack, count 1; the fd belongs to the
    // live session, which outlives this call.
    unsafe {
        libc::poll(&mut pfd, 1, ms);
    }
}

/// The hex SHA-256 of a local file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(user: &str) -> Session {
        let cfg = Arc::new(SshConfig::new(user));
        Session::new(
            HostAddr {
                host: "10.77.0.11".into(),
                port: 22,
            },
            cfg,
            Arc::new(Mutex::new(())),
        )
    }

    #[test]
    fn root_commands_go_through_sudo_only_for_other_users() {
        assert_eq!(
            session("root").root_command("iptables -w -F FL-LOSS"),
            "iptables -w -F FL-LOSS"
        );
        let cmd = session("deploy").root_command("echo 'a b' > /x");
        assert_eq!(cmd, "sudo -n sh -c 'echo '\\''a b'\\'' > /x'");
        // What sudo would run is exactly the original command.
        let inner = cmd.strip_prefix("sudo -n ").unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(inner.replace("sh -c", "printf %s"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "echo 'a b' > /x");
    }

    #[test]
    fn sha256_of_a_file_matches_sha256sum() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"faultline").unwrap();
        let ours = sha256_file(&f).unwrap();
        assert_eq!(ours.len(), 64);
        if let Ok(out) = std::process::Command::new("sha256sum").arg(&f).output() {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .next()
                    .unwrap(),
                ours
            );
        }
    }
}

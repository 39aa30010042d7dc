//! Processes a run starts: tied to the harness's life, marked with the
//! run's id, and recognised again by a later `heal`.
//!
//! - [`spawn`] starts a child that the kernel kills (SIGKILL) when the
//!   harness dies, however it dies (`PR_SET_PDEATHSIG`). The kernel sends
//!   that signal when the *thread* that forked the child ends, so every
//!   child is forked by one thread that lives as long as the process; a
//!   child whose parent was already gone when it armed the signal exits
//!   at once instead of running unwatched.
//! - [`RUN_ID_ENV`] in a child's environment marks it and everything it
//!   starts (a wrapper shell's daemons, an etcd member's helpers) with the
//!   run's id, so [`marked`] finds them all even when no pid was recorded.
//! - [`ProcessIdentity`] is a pid with its start time (clock ticks since
//!   boot, `/proc/PID/stat`): a recycled pid is never mistaken for a node.

use serde::{Deserialize, Serialize};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// The environment variable that carries a run's id into every process
/// the run starts.
pub const RUN_ID_ENV: &str = "FAULTLINE_RUN_ID";

/// A process as the kernel knows it now: its pid and when it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    pub pid: u32,
    /// Field 22 of `/proc/PID/stat`: start time in clock ticks after boot.
    pub start_ticks: u64,
}

/// The state letter and start time in the text of `/proc/PID/stat`. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the name, the state is field 3; the start time is field 22.
    let start_ticks = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start_ticks))
}

impl ProcessIdentity {
    /// The identity of `pid` now, if it exists (a zombie included).
    pub fn of(pid: u32) -> Option<ProcessIdentity> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (_, start_ticks) = parse_stat(&stat)?;
        Some(ProcessIdentity { pid, start_ticks })
    }

    /// Whether this very process still exists and is not a zombie.
    pub fn is_alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| parse_stat(&s))
            .is_some_and(|(state, start)| start == self.start_ticks && state != 'Z')
    }

    /// Whether it is stopped (SIGSTOP): the state letter `T`.
    pub fn is_stopped(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| parse_stat(&s))
            .is_some_and(|(state, start)| start == self.start_ticks && state == 'T')
    }
}

/// Sends SIGKILL to this process, and to its process group when it leads
/// one, only if it is still the same process. Returns whether it was alive.
pub fn kill_identified(identity: ProcessIdentity) -> bool {
    if !identity.is_alive() {
        return false;
    }
    let Ok(pid) = libc::pid_t::try_from(identity.pid) else {
        return false;
    };
    // SAFETY: getpgid and kill have no memory preconditions; the pid was
    // checked to be the recorded process a moment ago (a pid is not reused
    // while the process or its group exists).
    unsafe {
        if libc::getpgid(pid) == pid {
            libc::kill(-pid, libc::SIGKILL);
        }
        libc::kill(pid, libc::SIGKILL);
    }
    true
}

/// Processes marked with `run_id` ([`RUN_ID_ENV`]) that are alive now,
/// with their command lines. Processes whose environment this user may
/// not read are skipped.
pub fn marked(run_id: &str) -> Vec<(ProcessIdentity, String)> {
    let needle = format!("{RUN_ID_ENV}={run_id}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in dir.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let is_marked = environ
            .split(|&b| b == 0)
            .any(|var| var == needle.as_bytes());
        if !is_marked {
            continue;
        }
        if let Some(identity) = ProcessIdentity::of(pid).filter(ProcessIdentity::is_alive) {
            let cmdline = std::fs::read(entry.path().join("cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .split('\0')
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            found.push((identity, cmdline));
        }
    }
    found.sort_by_key(|(id, _)| id.pid);
    found
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// The one thread that forks every child (see the module docs).
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("faultline-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("starting the spawner thread");
        Mutex::new(tx)
    })
}

/// Starts `cmd` as a child the kernel kills when this process dies
/// (see the module docs). Marking it is the caller's choice
/// (`cmd.env(RUN_ID_ENV, run_id)`); [`super::Ledger::spawn`] does both.
pub fn spawn(mut cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let parent = libc::pid_t::try_from(std::process::id()).expect("a pid fits pid_t");
    // SAFETY: the closure runs in the child between fork and exec and calls
    // only prctl and getppid, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The harness died before the signal was armed: do not run.
            if libc::getppid() != parent {
                return Err(std::io::Error::other(
                    "the harness exited while starting it",
                ));
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .expect("spawner lock poisoned")
        .send((cmd, tx))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_parsed_after_the_last_parenthesis() {
        // A command name with spaces and a ')' of its own.
        let stat = "4242 (we ird) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(stat), Some(('S', 987654)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None, "too few fields");
    }

    #[test]
    fn our_own_identity_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessIdentity::of(std::process::id()).expect("this process");
        assert!(me.is_alive());
        let other = ProcessIdentity {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!other.is_alive(), "a recycled pid is another process");
    }

    #[test]
    fn a_spawned_child_is_marked_and_dies_with_the_thread_owner_only_on_exit() {
        let run_id = format!("test{:08x}", rand::random::<u32>());
        let mut cmd = Command::new("sleep");
        cmd.arg("30").env(RUN_ID_ENV, &run_id);
        // Spawned from a short-lived thread: the child must outlive it
        // (the spawner thread, not this one, is its parent thread).
        let mut child = std::thread::spawn(move || spawn(cmd).expect("spawn sleep"))
            .join()
            .expect("thread");
        let id = ProcessIdentity::of(child.id()).expect("alive");
        // The mark and the command line are there once the child has
        // exec'd: wait for that, not for a time.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let found = loop {
            let found = marked(&run_id);
            if !found.is_empty() || std::time::Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(id.is_alive(), "the child outlives the thread that asked");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, id);
        assert!(found[0].1.starts_with("sleep 30"), "{found:?}");
        assert!(kill_identified(id));
        child.wait().expect("reap");
        assert!(!id.is_alive());
        assert!(marked(&run_id).is_empty());
        assert!(!kill_identified(id), "nothing left to kill");
    }

    const HELPER_ENV: &str = "FAULTLINE_TEST_PDEATHSIG_HELPER";
    /// Set: the helper starts its child as cluster/local.rs starts a node
    /// (its own process group and, as root, a uid of its own), the two
    /// changes std makes before `pre_exec` and that a set-uid would clear
    /// the death signal on, were it armed earlier.
    const AS_NODE_ENV: &str = "FAULTLINE_TEST_PDEATHSIG_AS_NODE";

    /// Not a test: the "harness" that `a_child_dies_when_the_harness_is_killed`
    /// runs as a separate process and SIGKILLs. It starts a child through
    /// [`spawn`], prints its pid, and waits to be killed.
    #[test]
    #[ignore = "a fixture run by a_child_dies_when_the_harness_is_killed"]
    fn pdeathsig_helper() {
        let Ok(run_id) = std::env::var(HELPER_ENV) else {
            return;
        };
        let mut cmd = Command::new("sleep");
        cmd.arg("120").env(RUN_ID_ENV, &run_id);
        if std::env::var_os(AS_NODE_ENV).is_some() {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
            // SAFETY: geteuid has no preconditions and cannot fail.
            if unsafe { libc::geteuid() } == 0 {
                let uid = crate::cluster::local::owner_uid(&run_id, 0);
                cmd.uid(uid).gid(uid);
            }
        }
        let child = spawn(cmd).expect("spawn sleep");
        crate::outln!("PDEATHSIG-CHILD {}", child.id());
        std::thread::sleep(std::time::Duration::from_secs(120));
    }

    #[test]
    fn a_child_dies_when_the_harness_is_killed() {
        child_dies_with_the_harness(Spawned::Plain);
    }

    #[test]
    fn a_node_in_its_own_group_and_uid_dies_when_the_harness_is_killed() {
        child_dies_with_the_harness(Spawned::AsNode);
    }

    enum Spawned {
        Plain,
        AsNode,
    }

    fn child_dies_with_the_harness(spawned: Spawned) {
        use std::io::BufRead;
        let run_id = format!("test{:08x}", rand::random::<u32>());
        let mut helper = Command::new(std::env::current_exe().expect("test binary"));
        if matches!(spawned, Spawned::AsNode) {
            helper.env(AS_NODE_ENV, "1");
        }
        let mut harness = helper
            .args([
                "--exact",
                "ledger::process::tests::pdeathsig_helper",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER_ENV, &run_id)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the helper");
        let stdout = harness.stdout.take().expect("piped");
        let pid: u32 = std::io::BufReader::new(stdout)
            .lines()
            .map(|l| l.expect("helper output"))
            // libtest prints the test's name first, on the same line.
            .find_map(|l| l.split_once("PDEATHSIG-CHILD ")?.1.trim().parse().ok())
            .expect("the helper prints its child's pid");
        let child = ProcessIdentity::of(pid).expect("the child runs");
        assert!(child.is_alive());
        if matches!(spawned, Spawned::AsNode) {
            // It really is in a group of its own, under its own uid as root.
            let pid_t = libc::pid_t::try_from(pid).expect("pid fits");
            // SAFETY: getpgid has no memory preconditions.
            assert_eq!(unsafe { libc::getpgid(pid_t) }, pid_t);
            // SAFETY: geteuid has no preconditions and cannot fail.
            if unsafe { libc::geteuid() } == 0 {
                use std::os::unix::fs::MetadataExt;
                let uid = std::fs::metadata(format!("/proc/{pid}"))
                    .expect("its /proc entry")
                    .uid();
                assert_eq!(uid, crate::cluster::local::owner_uid(&run_id, 0));
            }
        }
        harness.kill().expect("SIGKILL the helper");
        harness.wait().expect("reap the helper");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while child.is_alive() {
            assert!(
                std::time::Instant::now() < deadline,
                "pid {pid} outlived the harness that started it"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(marked(&run_id).is_empty(), "nothing of the run is left");
    }
}

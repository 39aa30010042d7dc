//! Node daemons on a remote host: started detached (own session, stdio to
//! its log, nothing left holding the SSH channel), tracked by a pidfile the
//! process itself writes, stopped, killed, paused and resumed by signals to
//! every process of the node: the pidfile's process group (the node is its
//! session's leader, so the group is the node and every child it started
//! that stayed in it: an adapter's node script and its daemons), the
//! leader's descendants that left the group (by parent pid in /proc: a
//! child that called setsid(), as PostgreSQL's backends do), and every
//! process that carries the node's mark ([`NODE_MARK_ENV`] in its
//! environment, inherited from the node: a daemon that double-forked, whose
//! parent exited, is nobody's descendant any more). As in local mode, a
//! signal other than SIGCONT first freezes them all (SIGSTOP, again until
//! no new one appears), so that none escapes between the listing and the
//! signal.
//!
//! Guarantees: a start never launches a second copy while the pidfile names
//! a live process; "alive" means running or stopped, never a zombie (a
//! process SIGKILLed a moment ago is a zombie until reaped, and `kill -0`
//! still succeeds on it); stop sends SIGTERM to the node, waits up to the
//! grace period until no process of it is alive, then SIGKILL, and
//! removes the pidfile; a kill waits until every process of the node is
//! gone, a pause until every one is stopped.

use super::layout::Layout;
use crate::ssh::{sh_join, sh_quote, Session, SshError};
use std::time::Duration;

/// How to start one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonSpec {
    /// Node name (a path part: see [`super::layout::check_node_name`]).
    pub name: String,
    /// Executable on the host.
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Path of libfaketime.so.1 on the host, to make the node's clock
    /// controllable through its timestamp file; `None` for a real clock.
    pub faketime_lib: Option<String>,
    /// With libfaketime: fake the monotonic clocks too (timers speed up
    /// with the rate and jump with the offset). Default: wall clock only.
    pub fake_monotonic: bool,
}

/// A node process as `ps` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    Running,
    /// Stopped by SIGSTOP (paused).
    Stopped,
    /// No pidfile, no process, or a zombie.
    Gone,
}

/// The environment variable every process of a node inherits from it:
/// its value is the node's folder on the host (one node per folder), so a
/// process that left the node's tree is still found as the node's.
pub const NODE_MARK_ENV: &str = "FAULTLINE_NODE";

/// Shell function: `alive PID` succeeds for a running or stopped process,
/// fails for a missing one or a zombie.
const ALIVE_FN: &str = "alive() { s=$(ps -o stat= -p \"$1\" 2>/dev/null) && [ -n \"$s\" ] && [ \"${s#Z}\" = \"$s\" ]; }";

/// Shell functions over the processes of the node whose pidfile names
/// `$1` (see the module docs) and whose mark is `$MARK`: `members PID
/// [awake]` prints their pids (only those not stopped, with `awake`;
/// never a zombie); `group PID` succeeds while any is alive, `awake PID`
/// while any is not stopped; `freeze PID` stops them all (again until no
/// new one appears, at most 16 rounds) and leaves their pids in `$NODE`;
/// `signal_all SIG PID` sends SIG to the group and each of `$NODE`.
const MEMBERS_FN: &str = "members() { \
{ ps -e -o pid=,ppid=,pgid=,stat= 2>/dev/null; echo marked; \
grep -lxzF \"FAULTLINE_NODE=$MARK\" /proc/[0-9]*/environ 2>/dev/null | sed 's|^/proc/\\([0-9]*\\)/environ$|\\1|'; } | \
awk -v root=\"$1\" -v want=\"${2:-}\" '$1 == \"marked\" { m = 1; next } m { mark[$1] = 1; next } \
{ n++; pid[n] = $1; ppid[n] = $2; pgid[n] = $3; st[n] = $4 } \
END { tree[root] = 1; do { grown = 0; for (i = 1; i <= n; i++) if (!(pid[i] in tree) && (ppid[i] in tree)) { tree[pid[i]] = 1; grown = 1 } } while (grown); \
for (i = 1; i <= n; i++) { if (st[i] ~ /^Z/ || (want == \"awake\" && st[i] ~ /^T/)) continue; \
if (pgid[i] == root || (pid[i] in tree) || (pid[i] in mark)) print pid[i] } }'; }; \
group() { [ -n \"$(members \"$1\")\" ]; }; \
awake() { [ -n \"$(members \"$1\" awake)\" ]; }; \
freeze() { kill -STOP -\"$1\" 2>/dev/null; NODE=$(members \"$1\"); r=0; while [ $r -lt 16 ]; do \
for p in $NODE; do kill -STOP \"$p\" 2>/dev/null; done; now=$(members \"$1\"); \
[ \"$now\" = \"$NODE\" ] && break; NODE=$now; r=$((r+1)); done; }; \
signal_all() { kill -\"$1\" -\"$2\" 2>/dev/null; for p in $NODE; do kill -\"$1\" \"$p\" 2>/dev/null; done; }";

/// Shell: the functions the scripts below use, for node `node`.
fn node_fns(layout: &Layout, node: &str) -> String {
    format!(
        "MARK={}; {ALIVE_FN}; {MEMBERS_FN}",
        sh_quote(&layout.node_dir(node))
    )
}

/// The shell script that starts `spec` detached; prints the new pid.
/// Exit 3 if it is already running.
pub fn start_script(layout: &Layout, spec: &DaemonSpec) -> String {
    let dir = layout.node_dir(&spec.name);
    let pidfile = layout.pidfile(&spec.name);
    let log = layout.log(&spec.name);
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("{NODE_MARK_ENV}={dir}"));
    let mut prep = String::new();
    if let Some(lib) = &spec.faketime_lib {
        let ft = layout.faketime(&spec.name);
        env.push(format!("LD_PRELOAD={lib}"));
        env.push(format!("FAKETIME_TIMESTAMP_FILE={ft}"));
        env.push("FAKETIME_CACHE_DURATION=1".into());
        env.push("FAKETIME_NO_CACHE=0".into());
        if !spec.fake_monotonic {
            env.push("FAKETIME_DONT_FAKE_MONOTONIC=1".into());
        }
        let ft_dir = ft.rsplit_once('/').map_or(".", |(d, _)| d);
        // A node starts with its clock true; a clock fault rewrites this file.
        prep = format!(
            "mkdir -p {} && echo +0 > {}.tmp && mv -f {}.tmp {}; ",
            sh_quote(ft_dir),
            sh_quote(&ft),
            sh_quote(&ft),
            sh_quote(&ft)
        );
    }
    let mut exec: Vec<String> = vec!["exec".into(), "env".into()];
    exec.extend(env);
    exec.push(spec.program.clone());
    exec.extend(spec.args.iter().cloned());
    // The inner shell writes its own pid, then becomes the node (exec keeps
    // the pid), so the pidfile names the node itself.
    let inner = format!("echo $$ > {}; {}", sh_quote(&pidfile), sh_join(&exec));
    format!(
        "{fns}; mkdir -p {d} && cd {d} || exit 1; \
         if [ -f {p} ] && alive \"$(cat {p})\"; then echo \"already running as pid $(cat {p})\" >&2; exit 3; fi; \
         rm -f {p}; {prep}\
         setsid nohup sh -c {inner} >>{l} 2>&1 </dev/null & \
         i=0; while [ ! -s {p} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
         [ -s {p} ] || {{ echo 'no pidfile after 5 s' >&2; exit 1; }}; cat {p}",
        fns = node_fns(layout, &spec.name),
        d = sh_quote(&dir),
        p = sh_quote(&pidfile),
        l = sh_quote(&log),
        inner = sh_quote(&inner),
    )
}

/// SIGTERM, wait up to `grace`, SIGKILL, remove the pidfile. Prints
/// `stopped`, `killed` or `gone`.
pub fn stop_script(layout: &Layout, node: &str, grace: Duration) -> String {
    let tries = (grace.as_millis() / 50).max(1);
    format!(
        "{fns}; {read}; \
         if ! alive \"$PID\" && ! group \"$PID\"; then rm -f {p}; echo gone; exit 0; fi; \
         freeze \"$PID\"; signal_all TERM \"$PID\"; signal_all CONT \"$PID\"; \
         i=0; while group \"$PID\" && [ $i -lt {tries} ]; do sleep 0.05; i=$((i+1)); done; \
         if group \"$PID\"; then freeze \"$PID\"; signal_all KILL \"$PID\"; \
           i=0; while group \"$PID\" && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
           group \"$PID\" && {{ echo \"node $PID survives SIGKILL: $(members \"$PID\")\" >&2; exit 1; }}; rm -f {p}; echo killed; \
         else rm -f {p}; echo stopped; fi",
        fns = node_fns(layout, node),
        read = layout.read_pid(node),
        p = sh_quote(&layout.pidfile(node)),
    )
}

/// How a node's own stop command ended ([`stop_command`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// The node was not running: nothing was run.
    Gone,
    /// It succeeded and the node exited within the grace period.
    Stopped,
    /// It succeeded, but the node still runs after the grace period.
    StillRunning,
    /// It failed with this exit status.
    Failed(i32),
    /// It ran past its time and was killed.
    TimedOut,
}

/// Runs the node's stop `command` (an adapter's `node.stop`) under `sh -c`
/// in `dir`, its output appended to the node's log, killed after
/// `timeout`; when it succeeds, waits up to `grace` for every process of
/// the node to exit. Prints `gone`, `stopped`, `running`, `failed N` or
/// `timed-out`. Signals nothing: [`stop_script`] does that after it.
pub fn stop_command_script(
    layout: &Layout,
    node: &str,
    dir: &str,
    command: &str,
    timeout: Duration,
    grace: Duration,
) -> String {
    let tries = (grace.as_millis() / 50).max(1);
    format!(
        "{fns}; {read}; \
         if ! alive \"$PID\"; then echo gone; exit 0; fi; \
         NODE=$(members \"$PID\"); signal_all CONT \"$PID\"; \
         cd {dir} 2>/dev/null || cd {node_dir} || exit 1; \
         echo \"faultline: {node}: node.stop\" >> {log}; \
         timeout -k 1 {secs} sh -c {command} >> {log} 2>&1 < /dev/null; status=$?; \
         [ $status = 124 ] || [ $status = 137 ] && {{ echo timed-out; exit 0; }}; \
         [ $status = 0 ] || {{ echo \"failed $status\"; exit 0; }}; \
         i=0; while group \"$PID\" && [ $i -lt {tries} ]; do sleep 0.05; i=$((i+1)); done; \
         if group \"$PID\"; then echo running; else echo stopped; fi",
        fns = node_fns(layout, node),
        read = layout.read_pid(node),
        dir = sh_quote(dir),
        node_dir = sh_quote(&layout.node_dir(node)),
        log = sh_quote(&layout.log(node)),
        secs = timeout.as_secs().max(1),
        command = sh_quote(command),
    )
}

/// The part of a heal that resumes node `node` should it be paused: every
/// process of it (see the module docs); prints nothing, never exits.
pub fn resume_part(layout: &Layout, node: &str) -> String {
    format!(
        "( {} ) >/dev/null 2>&1; ",
        signal_script(layout, node, "CONT")
    )
}

/// Sends `signal` (KILL, STOP, CONT, TERM) to every process of the node
/// (see the module docs: all but CONT after freezing them); prints `sent`
/// or `gone`. After KILL it waits until no process of the node is alive,
/// after STOP until every one of them is stopped (a pause returns with the
/// whole node frozen), after CONT until the leader runs.
pub fn signal_script(layout: &Layout, node: &str, signal: &str) -> String {
    assert!(
        ["KILL", "STOP", "CONT", "TERM"].contains(&signal),
        "unsupported signal {signal}"
    );
    // Signals are delivered asynchronously: wait (bounded) until the
    // process is in the state the signal asks for, so callers see it.
    let wait = match signal {
        "KILL" => "i=0; while group \"$PID\" && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; ",
        "STOP" => "i=0; while awake \"$PID\" && [ $i -lt 100 ]; do sleep 0.01; i=$((i+1)); done; ",
        "CONT" => "i=0; while ps -o stat= -p \"$PID\" | grep -q '^T' && [ $i -lt 100 ]; do sleep 0.01; i=$((i+1)); done; ",
        _ => "",
    };
    let send = match signal {
        "CONT" => "NODE=$(members \"$PID\"); signal_all CONT \"$PID\"; ",
        "STOP" => "freeze \"$PID\"; ",
        "TERM" => "freeze \"$PID\"; signal_all TERM \"$PID\"; signal_all CONT \"$PID\"; ",
        _ => "freeze \"$PID\"; signal_all KILL \"$PID\"; ",
    };
    format!(
        "{fns}; {read}; if ! alive \"$PID\" && ! group \"$PID\"; then echo gone; exit 0; fi; {send}{wait}echo sent",
        fns = node_fns(layout, node),
        read = layout.read_pid(node),
    )
}

/// Prints `running`, `stopped` or `gone`.
pub fn state_script(layout: &Layout, node: &str) -> String {
    format!(
        "{read}; s=$(ps -o stat= -p \"$PID\" 2>/dev/null) || {{ echo gone; exit 0; }}; \
         case \"$s\" in Z*|'') echo gone;; T*) echo stopped;; *) echo running;; esac",
        read = layout.read_pid(node),
    )
}

/// Kills a node left over from an earlier run (if any: its whole process
/// group, with SIGKILL and never SIGCONT, so a paused leftover never runs
/// again) and removes its data, log and clock file, so a run starts from
/// nothing.
pub fn reset_script(layout: &Layout, node: &str) -> String {
    format!(
        "( {ALIVE_FN}; {read}; \
           if alive \"$PID\" || group \"$PID\"; then kill -KILL -\"$PID\" 2>/dev/null; kill -KILL \"$PID\" 2>/dev/null; \
             i=0; while group \"$PID\" && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
             group \"$PID\" && {{ echo \"process group $PID survives SIGKILL\" >&2; exit 1; }}; fi; \
           rm -f {p} ) >/dev/null || exit 1; \
         rm -rf {data} {log} {ft} || exit 1; echo reset",
        read = layout.read_pid(node),
        p = sh_quote(&layout.pidfile(node)),
        data = sh_quote(&format!("{}/data", layout.node_dir(node))),
        log = sh_quote(&layout.log(node)),
        ft = sh_quote(&layout.faketime(node)),
    )
}

/// Starts `spec` on the host; returns the node's pid.
pub fn start(s: &Session, layout: &Layout, spec: &DaemonSpec) -> Result<u32, SshError> {
    let out = s.run_root(&start_script(layout, spec))?;
    out.trim().parse().map_err(|_| SshError::Command {
        host: s.name(),
        command: format!("start node {}", spec.name),
        status: 0,
        stderr: format!("printed {:?} instead of a pid", out.trim()),
    })
}

/// Stops the node; `true` if it was running.
pub fn stop(s: &Session, layout: &Layout, node: &str, grace: Duration) -> Result<bool, SshError> {
    let timeout = s
        .config()
        .command_timeout
        .max(grace + Duration::from_secs(10));
    let cmd = stop_script(layout, node, grace);
    let out = s.exec_root(&cmd, timeout)?;
    if !out.success() {
        return Err(SshError::Command {
            host: s.name(),
            command: format!("stop node {node}"),
            status: out.status,
            stderr: out.stderr,
        });
    }
    Ok(out.stdout.trim() != "gone")
}

/// Runs the node's own stop command ([`stop_command_script`]).
pub fn stop_command(
    s: &Session,
    layout: &Layout,
    node: &str,
    dir: &str,
    command: &str,
    timeout: Duration,
    grace: Duration,
) -> Result<StopOutcome, SshError> {
    let script = stop_command_script(layout, node, dir, command, timeout, grace);
    let limit = s
        .config()
        .command_timeout
        .max(timeout + grace + Duration::from_secs(10));
    let out = s.exec_root(&script, limit)?;
    let said = out.stdout.trim();
    let outcome = match said {
        "gone" => StopOutcome::Gone,
        "stopped" => StopOutcome::Stopped,
        "running" => StopOutcome::StillRunning,
        "timed-out" => StopOutcome::TimedOut,
        _ => match said.strip_prefix("failed ").and_then(|c| c.parse().ok()) {
            Some(code) => StopOutcome::Failed(code),
            None => {
                return Err(SshError::Command {
                    host: s.name(),
                    command: format!("node.stop of {node}"),
                    status: out.status,
                    stderr: format!("printed {said:?}; {}", out.stderr.trim()),
                })
            }
        },
    };
    Ok(outcome)
}

/// Sends a signal; `true` if the process was there to get it.
pub fn signal(s: &Session, layout: &Layout, node: &str, sig: &str) -> Result<bool, SshError> {
    Ok(s.run_root(&signal_script(layout, node, sig))?.trim() == "sent")
}

pub fn state(s: &Session, layout: &Layout, node: &str) -> Result<ProcState, SshError> {
    let out = s.run_root(&state_script(layout, node))?;
    Ok(match out.trim() {
        "running" => ProcState::Running,
        "stopped" => ProcState::Stopped,
        _ => ProcState::Gone,
    })
}

#[cfg(test)]
mod tests {
    //! The scripts run here against a local `sh`, with a temporary folder
    //! as the remote folder: the same text the hosts run.
    use super::*;
    use std::process::Command;

    fn sh(script: &str) -> (i32, String, String) {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }

    fn spec(name: &str) -> DaemonSpec {
        DaemonSpec {
            name: name.into(),
            program: "sleep".into(),
            args: vec!["30".into()],
            env: vec![("NODE_NAME".into(), "it's n1".into())],
            faketime_lib: None,
            fake_monotonic: false,
        }
    }

    #[test]
    fn start_pause_resume_kill_stop_cycle_by_pidfile() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_str().unwrap());
        let (code, pid, err) = sh(&start_script(&layout, &spec("n1")));
        assert_eq!(code, 0, "{err}");
        let pid: u32 = pid.parse().expect("start prints the pid");
        // The pidfile names the program itself, not a wrapper shell.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim(), "sleep");
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(String::from_utf8_lossy(&env).contains("NODE_NAME=it's n1"));
        assert_eq!(sh(&state_script(&layout, "n1")).1, "running");

        // A second start refuses while the first is alive.
        let (code, _, err) = sh(&start_script(&layout, &spec("n1")));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("already running"));

        assert_eq!(sh(&signal_script(&layout, "n1", "STOP")).1, "sent");
        assert_eq!(sh(&state_script(&layout, "n1")).1, "stopped");
        assert_eq!(sh(&signal_script(&layout, "n1", "CONT")).1, "sent");
        assert_eq!(sh(&state_script(&layout, "n1")).1, "running");

        // Stop: a paused process is resumed so it can take SIGTERM.
        sh(&signal_script(&layout, "n1", "STOP"));
        let (code, out, err) = sh(&stop_script(&layout, "n1", Duration::from_secs(2)));
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "stopped");
        assert!(!std::path::Path::new(&layout.pidfile("n1")).exists());
        assert_eq!(sh(&state_script(&layout, "n1")).1, "gone");
        assert_eq!(
            sh(&stop_script(&layout, "n1", Duration::from_secs(1))).1,
            "gone"
        );
        assert_eq!(sh(&signal_script(&layout, "n1", "KILL")).1, "gone");
    }

    #[test]
    fn kill_then_restart_works_and_stop_escalates_to_sigkill() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_str().unwrap());
        let mut sp = spec("n2");
        // A node that ignores SIGTERM must still be stopped.
        sp.program = "sh".into();
        sp.args = vec![
            "-c".into(),
            "trap '' TERM; while :; do sleep 1; done".into(),
        ];
        let (code, _, err) = sh(&start_script(&layout, &sp));
        assert_eq!(code, 0, "{err}");
        assert_eq!(sh(&signal_script(&layout, "n2", "KILL")).1, "sent");
        assert_eq!(sh(&state_script(&layout, "n2")).1, "gone");
        let (code, _, err) = sh(&start_script(&layout, &sp));
        assert_eq!(code, 0, "restart after kill: {err}");
        let (code, out, err) = sh(&stop_script(&layout, "n2", Duration::from_millis(200)));
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "killed");
        let log = std::fs::read_to_string(layout.log("n2")).unwrap_or_default();
        assert!(!log.contains("not found"), "{log}");
    }

    /// The pids of process group `pgid` that are not zombies.
    fn group_members(pgid: &str) -> Vec<String> {
        let out = sh("ps -e -o pid=,pgid=,stat=").1;
        out.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 3 && f[1] == pgid && !f[2].starts_with('Z')).then(|| f[0].to_string())
            })
            .collect()
    }

    #[test]
    fn signals_reach_every_process_of_the_nodes_group() {
        // An adapter's node: a script whose daemons are its children. A
        // kill that reached only the script would leave them running.
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_str().unwrap());
        let mut sp = spec("n5");
        sp.program = "sh".into();
        sp.args = vec!["-c".into(), "sleep 30 & sleep 31 & wait".into()];
        let (code, pid, err) = sh(&start_script(&layout, &sp));
        assert_eq!(code, 0, "{err}");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while group_members(&pid).len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            group_members(&pid).len(),
            3,
            "the script and its two daemons"
        );
        assert_eq!(sh(&signal_script(&layout, "n5", "STOP")).1, "sent");
        let states = sh("ps -e -o pgid=,stat=").1;
        let frozen = states
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(pid.as_str()))
            .all(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|s| s.starts_with('T'))
            });
        assert!(frozen, "every process of the group is stopped:\n{states}");
        assert_eq!(sh(&signal_script(&layout, "n5", "CONT")).1, "sent");
        assert_eq!(sh(&signal_script(&layout, "n5", "KILL")).1, "sent");
        assert_eq!(
            group_members(&pid),
            Vec::<String>::new(),
            "a kill leaves no daemon"
        );
        // Stop, too, ends the whole group.
        let (code, pid, err) = sh(&start_script(&layout, &sp));
        assert_eq!(code, 0, "{err}");
        while group_members(&pid).len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (code, out, err) = sh(&stop_script(&layout, "n5", Duration::from_secs(2)));
        assert_eq!((code, out.as_str()), (0, "stopped"), "{err}");
        assert_eq!(
            group_members(&pid),
            Vec::<String>::new(),
            "a stop leaves no daemon"
        );
    }

    /// The state letter of `pid` as the script printed it (None: gone or
    /// a zombie).
    fn proc_state(pid: &str) -> Option<char> {
        crate::cluster::procfs::state(pid.trim().parse().ok()?)
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the given pids, whatever the test did.
    struct KillOnDrop(Vec<String>);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            for pid in &self.0 {
                let _ = Command::new("kill").args(["-KILL", pid]).output();
            }
        }
    }

    #[test]
    fn signals_reach_a_node_process_that_left_its_group_and_its_tree() {
        // A daemon that double-forks: the setsid'd sh starts the server
        // and exits, so the server is in a session of its own and nobody's
        // descendant (its parent is init). A signal to the node's group,
        // or a walk down from the node, misses it.
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_str().unwrap());
        let mut sp = spec("n6");
        sp.program = "sh".into();
        sp.args = vec![
            "-c".into(),
            "setsid sh -c 'sleep 600 & echo $! > escaped' & setsid sleep 601 & exec sleep 602"
                .into(),
        ];
        let (code, pid, err) = sh(&start_script(&layout, &sp));
        assert_eq!(code, 0, "{err}");
        let escaped_file = format!("{}/escaped", layout.node_dir("n6"));
        let mut escaped = String::new();
        wait_for("the double-forked server", || {
            escaped = std::fs::read_to_string(&escaped_file)
                .unwrap_or_default()
                .trim()
                .to_string();
            !escaped.is_empty() && proc_state(&escaped).is_some()
        });
        // The setsid'd child that stayed a descendant of the node.
        let mut child = String::new();
        let _guard = KillOnDrop(vec![escaped.clone(), pid.clone()]);
        wait_for("the setsid'd child of the node", || {
            child = sh(&format!(
                "ps -e -o pid=,ppid=,args= | awk '$2 == {pid} && $3 == \"sleep\" && $4 == 601 {{ print $1 }}'"
            ))
            .1;
            !child.is_empty()
        });
        let _child_guard = KillOnDrop(vec![child.clone()]);
        assert!(!group_members(&pid).contains(&escaped), "it left the group");

        assert_eq!(sh(&signal_script(&layout, "n6", "STOP")).1, "sent");
        for p in [&escaped, &child, &pid] {
            assert_eq!(proc_state(p), Some('T'), "{p} is paused with its node");
        }
        assert_eq!(sh(&signal_script(&layout, "n6", "CONT")).1, "sent");
        for p in [&escaped, &child, &pid] {
            wait_for("the node to run again", || {
                proc_state(p).is_some_and(|s| s != 'T')
            });
        }
        assert_eq!(sh(&signal_script(&layout, "n6", "KILL")).1, "sent");
        for p in [&escaped, &child, &pid] {
            assert_eq!(proc_state(p), None, "{p} dies with its node");
        }

        // Stop, and a heal's resume, reach it too.
        std::fs::remove_file(&escaped_file).expect("the first server's pid");
        let (code, _, err) = sh(&start_script(&layout, &sp));
        assert_eq!(code, 0, "{err}");
        wait_for("the double-forked server", || {
            escaped = std::fs::read_to_string(&escaped_file)
                .unwrap_or_default()
                .trim()
                .to_string();
            !escaped.is_empty() && proc_state(&escaped).is_some()
        });
        let _guard = KillOnDrop(vec![escaped.clone()]);
        assert_eq!(sh(&signal_script(&layout, "n6", "STOP")).1, "sent");
        assert_eq!(proc_state(&escaped), Some('T'));
        sh(&resume_part(&layout, "n6"));
        wait_for("the heal to resume it", || {
            proc_state(&escaped).is_some_and(|s| s != 'T')
        });
        let (code, out, err) = sh(&stop_script(&layout, "n6", Duration::from_secs(2)));
        assert_eq!((code, out.as_str()), (0, "stopped"), "{err}");
        assert_eq!(
            proc_state(&escaped),
            None,
            "a stop leaves no process of the node"
        );
    }

    #[test]
    fn the_nodes_own_stop_runs_in_its_folder_and_says_how_it_ended() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_str().unwrap());
        let data = format!("{}/data", layout.node_dir("n7"));
        let mut sp = spec("n7");
        sp.program = "sh".into();
        sp.args = vec!["-c".into(), "mkdir -p data; exec sleep 600".into()];
        let run = |command: &str, timeout_s: u64| {
            let script = stop_command_script(
                &layout,
                "n7",
                &data,
                command,
                Duration::from_secs(timeout_s),
                Duration::from_secs(2),
            );
            let (code, out, err) = sh(&script);
            assert_eq!(code, 0, "{err}");
            out
        };
        assert_eq!(run("touch stopped", 5), "gone", "no node, nothing run");
        assert!(!std::path::Path::new(&format!("{data}/stopped")).exists());
        let (code, pid, err) = sh(&start_script(&layout, &sp));
        assert_eq!(code, 0, "{err}");
        let _guard = KillOnDrop(vec![pid.clone()]);
        wait_for("the data folder", || std::path::Path::new(&data).is_dir());
        assert_eq!(run("echo refusing; exit 3", 5), "failed 3");
        assert_eq!(run("sleep 30", 1), "timed-out");
        assert_eq!(run("true", 5), "running", "a stop that leaves the node up");
        // A stop that works: it runs in the data folder, its output goes
        // to the node's log, and the node is gone when it returns.
        assert_eq!(
            run(&format!("echo bye > stopped; kill {pid}"), 5),
            "stopped"
        );
        assert_eq!(
            std::fs::read_to_string(format!("{data}/stopped")).unwrap(),
            "bye\n"
        );
        let log = std::fs::read_to_string(layout.log("n7")).unwrap();
        assert!(
            log.contains("faultline: n7: node.stop\nrefusing\n"),
            "{log}"
        );
        assert_eq!(proc_state(&pid), None);
    }

    #[test]
    fn reset_stops_a_leftover_node_and_removes_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_str().unwrap());
        let (code, pid, err) = sh(&start_script(&layout, &spec("n4")));
        assert_eq!(code, 0, "{err}");
        std::fs::create_dir_all(format!("{}/data/group-1", layout.node_dir("n4"))).unwrap();
        let (code, out, err) = sh(&reset_script(&layout, "n4"));
        assert_eq!((code, out.as_str()), (0, "reset"), "{err}");
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || sh(&format!("ps -o stat= -p {pid}")).1.starts_with('Z')
        );
        assert!(!std::path::Path::new(&format!("{}/data", layout.node_dir("n4"))).exists());
        assert!(!std::path::Path::new(&layout.log("n4")).exists());
        // On a host that never ran the node: nothing to do, still fine.
        assert_eq!(sh(&reset_script(&layout, "n9")).1, "reset");
        // A paused leftover of a dead run is killed, never woken first.
        assert!(!reset_script(&layout, "n4").contains("CONT"));
    }

    #[test]
    fn faketime_file_is_written_and_the_env_set() {
        let layout = Layout::new("/x");
        let mut sp = spec("n3");
        sp.faketime_lib = Some("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1".into());
        let s = start_script(&layout, &sp);
        assert!(s.contains("echo +0 > /x/nodes/n3/faketime.tmp"), "{s}");
        assert!(
            s.contains("FAKETIME_TIMESTAMP_FILE=/x/nodes/n3/faketime"),
            "{s}"
        );
        assert!(s.contains("FAKETIME_DONT_FAKE_MONOTONIC=1"), "{s}");
        sp.fake_monotonic = true;
        assert!(!start_script(&layout, &sp).contains("DONT_FAKE_MONOTONIC"));
    }
}

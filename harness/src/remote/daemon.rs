//! Node daemons on a remote host: started detached (own session, stdio to
//! its log, nothing left holding the SSH channel), tracked by a pidfile the
//! process itself writes, stopped, killed, paused and resumed by signals to
//! that pid's process group (the node is its session's leader, so the group
//! is the node and every child it started that stayed in it: an adapter's
//! node script and its daemons).
//!
//! Guarantees: a start never launches a second copy while the pidfile names
//! a live process; "alive" means running or stopped, never a zombie (a
//! process SIGKILLed a moment ago is a zombie until reaped, and `kill -0`
//! still succeeds on it); stop sends SIGTERM to the group, waits up to the
//! grace period until no process of the group is alive, then SIGKILL, and
//! removes the pidfile; a kill waits until the whole group is gone.

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

/// Shell function: `alive PID` succeeds for a running or stopped process,
/// fails for a missing one or a zombie.
/// `group PID` succeeds while any process of process group PID is
/// running or stopped (a zombie does not count); `awake PID` while any of
/// them is not stopped.
const ALIVE_FN: &str = "alive() { s=$(ps -o stat= -p \"$1\" 2>/dev/null) && [ -n \"$s\" ] && [ \"${s#Z}\" = \"$s\" ]; }; \
group() { ps -e -o pgid=,stat= | awk -v g=\"$1\" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'; }; \
awake() { ps -e -o pgid=,stat= | awk -v g=\"$1\" '$1 == g && $2 !~ /^[TZ]/ { f = 1 } END { exit !f }'; }";

/// The shell script that starts `spec` detached; prints the new pid.
/// Exit 3 if it is already running.
pub fn start_script(layout: &Layout, spec: &DaemonSpec) -> String {
    let dir = layout.node_dir(&spec.name);
    let pidfile = layout.pidfile(&spec.name);
    let log = layout.log(&spec.name);
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
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
        "{ALIVE_FN}; mkdir -p {d} && cd {d} || exit 1; \
         if [ -f {p} ] && alive \"$(cat {p})\"; then echo \"already running as pid $(cat {p})\" >&2; exit 3; fi; \
         rm -f {p}; {prep}\
         setsid nohup sh -c {inner} >>{l} 2>&1 </dev/null & \
         i=0; while [ ! -s {p} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
         [ -s {p} ] || {{ echo 'no pidfile after 5 s' >&2; exit 1; }}; cat {p}",
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
        "{ALIVE_FN}; {read}; \
         if ! alive \"$PID\" && ! group \"$PID\"; then rm -f {p}; echo gone; exit 0; fi; \
         kill -CONT -\"$PID\" 2>/dev/null; kill -TERM -\"$PID\" 2>/dev/null; \
         i=0; while group \"$PID\" && [ $i -lt {tries} ]; do sleep 0.05; i=$((i+1)); done; \
         if group \"$PID\"; then kill -KILL -\"$PID\" 2>/dev/null; \
           i=0; while group \"$PID\" && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
           group \"$PID\" && {{ echo \"process group $PID survives SIGKILL\" >&2; exit 1; }}; rm -f {p}; echo killed; \
         else rm -f {p}; echo stopped; fi",
        read = layout.read_pid(node),
        p = sh_quote(&layout.pidfile(node)),
    )
}

/// Sends `signal` (KILL, STOP, CONT, TERM) to the node's process group;
/// prints `sent` or `gone`. After KILL it waits until no process of the
/// group is alive, after STOP until every one of them is stopped (a pause
/// returns with the whole node frozen), after CONT until the leader runs.
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
    format!(
        "{ALIVE_FN}; {read}; if ! alive \"$PID\"; then echo gone; exit 0; fi; kill -{signal} -\"$PID\" && {wait}echo sent",
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

//! What a remote run leaves on a host when the harness dies outright
//! (SIGKILL, out of memory), and the script that removes it.
//!
//! Everything a run makes on a host is named by its run id, so a later
//! heal can find it without the dead harness:
//! - its node daemons (and everything they start) carry
//!   `FAULTLINE_RUN_ID=<run id>` in their environment;
//! - its iptables chains are `FL-PART-<run id>` and `FL-LOSS-<run id>`;
//! - its libfaketime files live in `<dir>/runs/<run id>/`.
//!
//! [`heal_run_script`] undoes all of it for one run and prints one line per
//! thing it removed. Guarantees: it kills, never resumes (a paused daemon
//! of a dead run gets SIGKILL, never SIGCONT); it touches only what carries
//! the run id (and the latency qdisc, whose handle only faultline uses);
//! every wait in it is bounded; running it again finds nothing.

use super::faults::{loss_chain, partition_chain, PRIO_HANDLE};
use super::layout::Layout;
use crate::ledger::RUN_ID_ENV;
use crate::ssh::sh_quote;

/// Whether `run_id` is one faultline makes (8 hex digits,
/// [`crate::ledger::new_run_id`]): only such an id goes into a script
/// that deletes things.
pub fn check_run_id(run_id: &str) -> Result<(), String> {
    if run_id.len() == 8 && run_id.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!(
            "run id {run_id:?} is not one faultline makes (8 hex digits)"
        ))
    }
}

/// The script that removes what run `run_id` left on a host whose nodes
/// were `nodes` (their names, for the messages): kills every process
/// marked with the run id (its process group too, when it leads one),
/// unhooks and deletes the run's chains, removes faultline's latency
/// qdisc and the run's folder. Prints one line per thing removed; exits 1
/// (saying what on stderr) if something could not be removed.
pub fn heal_run_script(layout: &Layout, run_id: &str, nodes: &[String]) -> String {
    check_run_id(run_id).expect("heal scripts are only built for run ids faultline made");
    let mark = sh_quote(&format!("{RUN_ID_ENV}={run_id}"));
    let mut names = String::new();
    for n in nodes {
        names.push_str(&format!(
            "[ \"$(cat {} 2>/dev/null)\" = \"$1\" ] && {{ echo {}; return 0; }}; ",
            sh_quote(&layout.pidfile(n)),
            sh_quote(n)
        ));
    }
    let pidfiles: Vec<String> = nodes.iter().map(|n| sh_quote(&layout.pidfile(n))).collect();
    let chains = [partition_chain(run_id), loss_chain(run_id)].join(" ");
    format!(
        "fail=0; \
         name_of() {{ {names}return 1; }}; \
         found=''; \
         for e in /proc/[0-9]*/environ; do p=${{e#/proc/}}; p=${{p%/environ}}; [ \"$p\" = \"$$\" ] && continue; \
           tr '\\0' '\\n' < \"$e\" 2>/dev/null | grep -qxF {mark} || continue; \
           s=$(ps -o stat= -p \"$p\" 2>/dev/null) || continue; case \"$s\" in ''|Z*) continue;; esac; \
           found=\"$found $p:$s\"; done; \
         report=''; \
         for f in $found; do p=${{f%%:*}}; s=${{f#*:}}; \
           if n=$(name_of \"$p\"); then who=\"$n (pid $p)\"; else who=\"pid $p (\\`$(ps -o args= -p \"$p\" 2>/dev/null | cut -c1-80)\\`)\"; fi; \
           case \"$s\" in T*) report=\"$report\nkilled $who, paused by the run; not resumed\";; *) report=\"$report\nkilled $who, still running\";; esac; done; \
         for f in $found; do p=${{f%%:*}}; \
           [ \"$(ps -o pgid= -p \"$p\" 2>/dev/null | tr -d ' ')\" = \"$p\" ] && kill -KILL -\"$p\" 2>/dev/null; kill -KILL \"$p\" 2>/dev/null; done; \
         for f in $found; do p=${{f%%:*}}; i=0; \
           while s=$(ps -o stat= -p \"$p\" 2>/dev/null) && [ -n \"$s\" ] && [ \"${{s#Z}}\" = \"$s\" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
           if s=$(ps -o stat= -p \"$p\" 2>/dev/null) && [ -n \"$s\" ] && [ \"${{s#Z}}\" = \"$s\" ]; then echo \"pid $p survives SIGKILL\" >&2; fail=1; fi; done; \
         [ -n \"$report\" ] && printf '%b\\n' \"$report\" | sed '/^$/d'; \
         for pf in {pidfiles}; do p=$(cat \"$pf\" 2>/dev/null) || continue; \
           s=$(ps -o stat= -p \"$p\" 2>/dev/null) && [ -n \"$s\" ] && [ \"${{s#Z}}\" = \"$s\" ] && continue; rm -f \"$pf\"; done; \
         if command -v iptables >/dev/null 2>&1; then for c in {chains}; do \
           iptables -w -n -L \"$c\" >/dev/null 2>&1 || continue; \
           while iptables -w -D INPUT -j \"$c\" 2>/dev/null; do :; done; \
           if iptables -w -F \"$c\" && iptables -w -X \"$c\"; then echo \"removed iptables chain $c and the jump to it\"; \
           else echo \"could not remove iptables chain $c\" >&2; fail=1; fi; done; fi; \
         if command -v tc >/dev/null 2>&1; then for DEV in $(ls /sys/class/net); do \
           tc qdisc show dev \"$DEV\" root 2>/dev/null | grep -q '^qdisc prio {PRIO_HANDLE}' || continue; \
           if tc qdisc del dev \"$DEV\" root; then echo \"removed the latency qdisc (tc netem) from $DEV\"; \
           else echo \"could not remove the latency qdisc from $DEV\" >&2; fail=1; fi; done; fi; \
         if [ -d {run_dir} ]; then if rm -rf {run_dir}; then echo \"removed the run's folder \"{run_dir}\" (libfaketime files)\"; \
           else echo \"could not remove \"{run_dir} >&2; fail=1; fi; fi; \
         exit $fail",
        pidfiles = if pidfiles.is_empty() {
            "/dev/null/none".to_string()
        } else {
            pidfiles.join(" ")
        },
        run_dir = sh_quote(&layout.run_dir(run_id)),
    )
}

#[cfg(test)]
mod tests {
    //! The script runs here against a local `sh`, with a temporary folder
    //! as the remote folder (and PATH without iptables and tc, so the
    //! machine's own rules are never touched): the same text a host runs.
    use super::*;
    use std::process::Command;

    // Each test marks its processes with a run id of its own: tests run
    // in parallel, and a heal kills every process of its run id.
    const RUN: &str = "1a2b3c4d";
    const RUN_CHILD: &str = "1a2b3c4e";

    fn heal(layout: &Layout, run: &str, nodes: &[&str]) -> (i32, String, String) {
        let nodes: Vec<String> = nodes.iter().map(|s| s.to_string()).collect();
        let out = Command::new("sh")
            .env("PATH", "/usr/bin:/bin")
            .arg("-c")
            .arg(heal_run_script(layout, run, &nodes))
            .output()
            .expect("sh runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }

    fn stat(pid: u32) -> String {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start()[..1].to_string())
            })
            .unwrap_or_default()
    }

    fn start(layout: &Layout, node: &str, run: &str) -> u32 {
        let spec = super::super::DaemonSpec {
            name: node.into(),
            program: "sleep".into(),
            args: vec!["60".into()],
            env: vec![(RUN_ID_ENV.into(), run.into())],
            faketime_lib: None,
            fake_monotonic: false,
        };
        let out = Command::new("sh")
            .arg("-c")
            .arg(super::super::daemon::start_script(layout, &spec))
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a pid")
    }

    #[test]
    fn a_dead_runs_daemons_are_killed_a_paused_one_never_resumed_and_its_folder_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::new(dir.path().to_str().expect("utf-8")).for_run(RUN);
        let running = start(&layout, "n1", RUN);
        let paused = start(&layout, "n2", RUN);
        // Another run's daemon on the same host is not this heal's.
        let other = start(&layout, "n3", "99999999");
        // SAFETY: SIGSTOP to a process this test started.
        unsafe { libc::kill(paused as libc::pid_t, libc::SIGSTOP) };
        while stat(paused) != "T" {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let run_dir = layout.run_dir(RUN);
        std::fs::create_dir_all(&run_dir).expect("mkdir");
        std::fs::write(layout.faketime("n1"), "+5\n").expect("write");

        let (code, out, err) = heal(&layout, RUN, &["n1", "n2"]);
        assert_eq!(code, 0, "{err}");
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            vec![
                format!("killed n1 (pid {running}), still running").as_str(),
                format!("killed n2 (pid {paused}), paused by the run; not resumed").as_str(),
                format!("removed the run's folder {run_dir} (libfaketime files)").as_str(),
            ],
            "{out}"
        );
        for pid in [running, paused] {
            let s = stat(pid);
            assert!(s.is_empty() || s == "Z", "pid {pid} is {s}");
        }
        assert_eq!(stat(other), "S", "another run's daemon is left alone");
        assert!(!std::path::Path::new(&layout.pidfile("n1")).exists());
        assert!(std::path::Path::new(&layout.pidfile("n3")).exists());

        let (code, out, err) = heal(&layout, RUN, &["n1", "n2"]);
        assert_eq!((code, out.as_str()), (0, ""), "nothing twice: {err}");
        // SAFETY: SIGKILL to a process this test started.
        unsafe { libc::kill(other as libc::pid_t, libc::SIGKILL) };
    }

    #[test]
    fn an_unrecorded_child_of_the_run_is_named_by_its_command_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::new(dir.path().to_str().expect("utf-8")).for_run(RUN_CHILD);
        let mut child = Command::new("sleep")
            .arg("61")
            .env(RUN_ID_ENV, RUN_CHILD)
            .spawn()
            .expect("spawn");
        let (code, out, err) = heal(&layout, RUN_CHILD, &["n1"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out,
            format!("killed pid {} (`sleep 61`), still running", child.id())
        );
        child.wait().expect("reap");
    }

    #[test]
    fn the_script_is_valid_sh_and_only_a_faultline_run_id_is_accepted() {
        let layout = Layout::new("/v").for_run(RUN);
        let s = heal_run_script(&layout, RUN, &[]);
        let out = Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&s)
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(s.contains("FL-PART-1a2b3c4d FL-LOSS-1a2b3c4d"), "{s}");
        assert!(!s.contains("-CONT"), "never resumes");
        assert!(check_run_id("1a2b3c4d").is_ok());
        for bad in ["", "1a2b3c4", "../../..", "1a2b3c4d;", "1A2B3C4G"] {
            assert!(check_run_id(bad).is_err(), "{bad:?}");
        }
    }
}

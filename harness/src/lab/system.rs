//! Running the machine's own tools (`ip`, `iptables`, `ssh-keygen`) for the
//! lab, with errors that quote the command and its stderr.

use anyhow::{bail, Context};
use std::process::{Command, Stdio};

/// Runs `prog args...`; its stdout on success, an error quoting the
/// command and its stderr otherwise.
pub fn run(prog: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `{prog}` (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "`{} {}` failed ({}): {}",
            prog,
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs and reports only whether it worked (for clean-up steps that may
/// find nothing to do).
pub fn try_run(prog: &str, args: &[&str]) -> bool {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Names of network namespaces on this machine.
pub fn netns_list() -> Vec<String> {
    let out = run("ip", &["netns", "list"]).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Names of network links in the root namespace.
pub fn link_list() -> Vec<String> {
    let out = run("ip", &["-o", "link", "show"]).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// PIDs of processes in network namespace `ns`.
pub fn netns_pids(ns: &str) -> Vec<i32> {
    run("ip", &["netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether `pid` is alive and not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the ")" that ends the name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|s| s != 'Z'),
        Err(_) => false,
    }
}

/// The command line of `pid`, NULs as spaces ("" if gone).
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_quote_the_command_and_its_stderr() {
        let err = run("sh", &["-c", "echo boom >&2; exit 3"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`sh -c echo boom >&2; exit 3` failed"),
            "{err}"
        );
        assert!(err.contains("boom"), "{err}");
        assert_eq!(run("sh", &["-c", "echo hi"]).unwrap(), "hi\n");
        assert!(run("no-such-program-faultline", &[])
            .unwrap_err()
            .to_string()
            .contains("is it installed"));
    }

    #[test]
    fn alive_sees_this_process_and_not_a_reaped_child() {
        assert!(alive(std::process::id() as i32));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(!alive(pid));
        assert!(!cmdline(std::process::id() as i32).is_empty());
        // An exited child that nobody reaped yet is a zombie: not alive.
        let child = Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let mut zombie = false;
        for _ in 0..500 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            if stat
                .rsplit_once(')')
                .unwrap()
                .1
                .trim_start()
                .starts_with('Z')
            {
                zombie = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(zombie, "child never became a zombie");
        assert!(!alive(pid), "a zombie must not count as alive");
        drop(child);
    }
}

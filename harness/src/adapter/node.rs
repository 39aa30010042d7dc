//! How an adapter node runs: one shell script per node that sets the node
//! up on its first start and then runs its daemons, all in the node's
//! process group, so that one signal to the group kills, pauses or resumes
//! the whole node, as a crash or a frozen machine would.
//!
//! The script (bash, for `wait -n`):
//! - on the first start only (a marker file in the data directory), runs
//!   `node.setup`; a failing setup ends the node with exit status 90 and
//!   says so in the node's log;
//! - starts every daemon in the background, logging each one's pid;
//! - waits for the first daemon to exit, logs which and how, stops the
//!   others and exits with that daemon's status, so the cluster sees a
//!   node whose daemon died as a node that exited.
//!
//! Even a node of one daemon runs under the script, so that its log says
//! when and how the daemon exited (the harness reads that line to fail a
//! start at once, naming the daemon and its status).

/// The marker of a node that was set up, in its data directory.
pub const SETUP_MARKER: &str = ".faultline-setup-done";

/// The exit status of a node whose setup failed.
pub const SETUP_FAILED_STATUS: i32 = 90;

/// The script of node `name`, from its rendered setup and daemon commands
/// (name, start). Runs in the node's data directory.
pub fn node_script(name: &str, setup: Option<&str>, daemons: &[(String, String)]) -> String {
    assert!(
        !daemons.is_empty(),
        "a node has at least one daemon (checked when the file is read)"
    );
    // Any other end of the script (a shell error) says so too; a kill by
    // SIGKILL or SIGTERM says nothing, as a crash would not.
    let mut s = format!(
        "set -u\ntrap 'echo \"faultline: {name}: the node script ended (status $?); stopping the node\" >&2' EXIT\n"
    );
    if let Some(setup) = setup {
        s.push_str(&format!(
            "if [ ! -e {SETUP_MARKER} ]; then\n\
             \x20 echo \"faultline: {name}: setting up\" >&2\n\
             \x20 (\n{setup}\n) || {{ status=$?; echo \"faultline: {name}: node.setup failed (exit status $status)\" >&2; exit {SETUP_FAILED_STATUS}; }}\n\
             \x20 : > {SETUP_MARKER}\n\
             fi\n"
        ));
    }
    s.push_str("declare -A daemon\n");
    for (daemon, start) in daemons {
        s.push_str(&format!(
            "(\n{start}\n) &\ndaemon[$!]={daemon}\necho \"faultline: {name}: daemon {daemon} started, pid $!\" >&2\n"
        ));
    }
    // When a daemon had exited before `wait -n` (bash 5.2, `bash -c`),
    // `wait -n` returns 127 and leaves the `-p` variable unset: then the
    // dead one is found in /proc (gone or a zombie) and its status asked of
    // `wait PID`, which bash keeps.
    s.push_str(&format!(
        "exited=\n\
         wait -n -p exited\n\
         status=$?\n\
         if [ -z \"${{exited:-}}\" ]; then\n\
         \x20 for pid in \"${{!daemon[@]}}\"; do\n\
         \x20   if [ ! -e /proc/$pid ] || grep -q '^State:[[:space:]]*Z' /proc/$pid/status 2>/dev/null; then\n\
         \x20     exited=$pid; wait \"$pid\"; status=$?; break\n\
         \x20   fi\n\
         \x20 done\n\
         fi\n\
         echo \"faultline: {name}: daemon ${{daemon[${{exited:-0}}]:-?}} (pid ${{exited:-?}}) exited with status $status; stopping the node\" >&2\n\
         trap '' TERM\n\
         kill -TERM 0 2>/dev/null\n\
         exit $status\n"
    ));
    s
}

/// The node a `cluster.primary` command's output names: its first
/// non-blank line, as a node name (`n3`), id (`3`), address or `ip:port`
/// of one of the node's ports. `nodes` gives each node's name, id and
/// addresses.
pub fn node_named(output: &str, nodes: &[(String, u32, Vec<std::net::SocketAddr>)]) -> Option<u32> {
    let word = output.lines().map(str::trim).find(|l| !l.is_empty())?;
    let word = word.split_whitespace().next()?;
    for (name, id, addrs) in nodes {
        let by_addr = addrs
            .iter()
            .any(|a| a.to_string() == word || a.ip().to_string() == word);
        if name == word || id.to_string() == word || by_addr {
            return Some(*id);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// Runs a node script as a cluster does: in a process group of its
    /// own (its `kill 0` must reach its daemons, not the test).
    fn bash(script: &str, dir: &std::path::Path) -> std::process::Output {
        Command::new("/bin/bash")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .process_group(0)
            .output()
            .expect("bash runs")
    }

    #[test]
    fn a_lone_daemon_that_exits_at_once_is_named_with_its_status() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = vec![(
            "server".to_string(),
            "echo no such port >&2; exit 3".to_string(),
        )];
        let out = bash(&node_script("n1", None, &d), dir.path());
        assert_eq!(out.status.code(), Some(3));
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains("no such port"), "{log}");
        assert!(log.contains("faultline: n1: daemon server (pid "), "{log}");
        assert!(
            log.contains("exited with status 3; stopping the node"),
            "{log}"
        );
    }

    #[test]
    fn setup_runs_once_and_a_daemon_that_exits_ends_the_node_with_its_status() {
        let dir = tempfile::tempdir().expect("tempdir");
        let daemons = vec![
            ("quick".to_string(), "sleep 0.2; exit 7".to_string()),
            ("slow".to_string(), "exec sleep 30".to_string()),
        ];
        let script = node_script("n2", Some("echo set-up >> setups"), &daemons);
        let started = Instant::now();
        let out = bash(&script, dir.path());
        assert_eq!(
            out.status.code(),
            Some(7),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the slow daemon was stopped"
        );
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains("faultline: n2: daemon quick (pid "), "{log}");
        assert!(
            log.contains("exited with status 7; stopping the node"),
            "{log}"
        );
        // A restart does not run setup again.
        bash(&script, dir.path());
        let setups = std::fs::read_to_string(dir.path().join("setups")).expect("setup ran");
        assert_eq!(setups, "set-up\n");
    }

    #[test]
    fn a_failing_setup_ends_the_node_and_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let daemons = vec![("server".to_string(), "exec sleep 30".to_string())];
        let out = bash(
            &node_script("n3", Some("echo boom >&2; exit 2"), &daemons),
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(SETUP_FAILED_STATUS));
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("boom")
                && log.contains("faultline: n3: node.setup failed (exit status 2)"),
            "{log}"
        );
        assert!(
            !dir.path().join(SETUP_MARKER).exists(),
            "a failed setup is tried again"
        );
    }

    #[test]
    fn the_primary_is_read_by_name_id_or_address() {
        let a = |s: &str| s.parse::<std::net::SocketAddr>().expect("addr");
        let nodes = vec![
            (
                "n1".to_string(),
                1,
                vec![a("127.0.0.11:4001"), a("127.0.0.11:4002")],
            ),
            (
                "n2".to_string(),
                2,
                vec![a("127.0.0.12:4003"), a("127.0.0.12:4004")],
            ),
        ];
        assert_eq!(node_named("n2\n", &nodes), Some(2));
        assert_eq!(node_named("\n 1 \n", &nodes), Some(1));
        assert_eq!(node_named("127.0.0.12", &nodes), Some(2));
        assert_eq!(node_named("127.0.0.11:4002 (primary)", &nodes), Some(1));
        assert_eq!(node_named("127.0.0.13:4002", &nodes), None);
        assert_eq!(node_named("", &nodes), None);
    }
}

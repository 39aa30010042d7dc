//! What /proc says about a node's processes: the members of a process
//! group, the descendants that left it (PostgreSQL's children each call
//! setsid()), their memory (the slow-reader fault), and whether a process has
//! a library mapped (libfaketime only
//! moves the clock of a process it was loaded into: a statically linked
//! program, or a Go program reading the time through the vDSO, ignores it).

use std::path::Path;

/// A process as /proc shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    /// The command name (`comm`).
    pub name: String,
    /// The state letter (`R`, `S`, `T` stopped, `Z` zombie, …).
    pub state: char,
}

/// Parses /proc/PID/stat: (name, state, parent, process group).
fn parse_stat(stat: &str) -> Option<(String, char, i32, i32)> {
    // The name is in parentheses and may itself hold spaces or ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some((name, state, ppid, pgrp))
}

/// The state letter of `pid` (`R`, `S`, `T` stopped, …); None when it is
/// gone or a zombie.
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, state, _, _) = parse_stat(&stat)?;
    (state != 'Z').then_some(state)
}

/// Every live process: (pid, parent, process group).
fn every_process() -> Vec<(i32, i32, i32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (_, state, ppid, pgrp) = parse_stat(&stat)?;
            (state != 'Z').then_some((pid, ppid, pgrp))
        })
        .collect()
}

/// The live descendants of `leader` (children, their children, …) that
/// are not in `leader`'s process group: processes that called setsid() or
/// setpgid(), as every child of PostgreSQL's postmaster does. A signal to
/// the group misses them. Sorted by pid.
pub fn descendants_outside_group(leader: i32) -> Vec<i32> {
    let all = every_process();
    let mut tree = vec![leader];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        next += 1;
        for &(pid, ppid, _) in &all {
            if ppid == parent && !tree.contains(&pid) {
                tree.push(pid);
            }
        }
    }
    let mut outside: Vec<i32> = all
        .iter()
        .filter(|&&(pid, _, pgrp)| pid != leader && pgrp != leader && tree.contains(&pid))
        .map(|&(pid, _, _)| pid)
        .collect();
    outside.sort_unstable();
    outside
}

/// Every live (not zombie) process of process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut members = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((name, state, _, pgrp)) = parse_stat(&stat) {
            if pgrp == pgid && state != 'Z' {
                members.push(ProcInfo { pid, name, state });
            }
        }
    }
    members.sort_by_key(|p| p.pid);
    members
}

/// A field of /proc/PID/status in KiB (`VmRSS:`, `VmHWM:`).
fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
}

/// The memory of process group `pgid`: the sum of its live members'
/// resident sets (VmRSS) and of their peaks (VmHWM; a bound on the group's
/// peak). An error when the group has no member, or /proc says nothing.
pub fn group_memory(pgid: i32) -> anyhow::Result<crate::nemesis::slow_reader::NodeMemory> {
    let members = group_members(pgid);
    anyhow::ensure!(
        !members.is_empty(),
        "process group {pgid} has no live process"
    );
    let mut memory = crate::nemesis::slow_reader::NodeMemory {
        rss_kib: 0,
        peak_rss_kib: 0,
    };
    for member in &members {
        let path = Path::new("/proc")
            .join(member.pid.to_string())
            .join("status");
        // A member that exited since it was listed holds no memory.
        let Ok(status) = std::fs::read_to_string(&path) else {
            continue;
        };
        let (Some(rss), Some(peak)) =
            (status_kib(&status, "VmRSS:"), status_kib(&status, "VmHWM:"))
        else {
            anyhow::bail!("{}: no VmRSS or VmHWM", path.display());
        };
        memory.rss_kib += rss;
        memory.peak_rss_kib += peak;
    }
    Ok(memory)
}

/// Resets the peak resident set (VmHWM) of process group `pgid`'s members
/// to their current one (`5` to /proc/PID/clear_refs, Linux 4.0+), so a
/// later [`group_memory`] peaks over what came after. An error if a
/// member's could not be reset.
pub fn reset_group_peak(pgid: i32) -> anyhow::Result<()> {
    for member in group_members(pgid) {
        let path = Path::new("/proc")
            .join(member.pid.to_string())
            .join("clear_refs");
        match std::fs::write(&path, "5") {
            Ok(()) => {}
            // Exited since it was listed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("writing {}: {e}", path.display()),
        }
    }
    Ok(())
}

/// True when process `pid` has a file whose name contains `library`
/// mapped (None: /proc could not tell).
pub fn maps_library(pid: i32, library: &str) -> Option<bool> {
    let maps =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("maps")).ok()?;
    Some(maps.lines().any(|l| l.contains(library)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let s = "4242 (redis-server *:6379) S 1 4240 4240 0 -1";
        assert_eq!(
            parse_stat(s),
            Some(("redis-server *:6379".into(), 'S', 1, 4240))
        );
        let s = "7 (a) b) T 1 9 9";
        assert_eq!(parse_stat(s), Some(("a) b".into(), 'T', 1, 9)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn descendants_that_left_the_group_are_found_and_members_are_not() {
        // A group leader with a child in its group and a grandchild that
        // made a session of its own (as PostgreSQL's backends do).
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg("sleep 30 & setsid sleep 31 & wait")
            .process_group(0)
            .spawn()
            .expect("sh runs");
        let leader = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut outside = Vec::new();
        while std::time::Instant::now() < deadline {
            outside = descendants_outside_group(leader);
            if outside.len() == 1 && group_members(leader).len() == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(outside.len(), 1, "{outside:?}");
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", outside[0])).expect("cmdline");
        assert_eq!(
            cmdline, b"sleep\x0031\x00",
            "the setsid'd sleep, not the group's"
        );
        // SAFETY: kill(2) on the processes this test created.
        unsafe {
            libc::kill(outside[0], libc::SIGKILL);
            libc::kill(-leader, libc::SIGKILL);
        }
        let _ = child.wait();
    }

    #[test]
    fn status_fields_parse_in_kib() {
        let status = "Name:\tfaultline\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(40960));
        assert_eq!(status_kib(status, "VmHWM:"), Some(51200));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn a_groups_memory_is_read_and_a_missing_group_is_an_error() {
        let mut child = Command::new("/bin/sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("sleep runs");
        let pgid = child.id() as i32;
        let memory = group_memory(pgid).expect("sleep's memory");
        assert!(memory.rss_kib > 0, "{memory:?}");
        assert!(memory.peak_rss_kib >= memory.rss_kib, "{memory:?}");
        reset_group_peak(pgid).expect("our own child's peak resets");
        // SAFETY: kill(2) on the group this test created.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = child.wait();
        assert!(group_memory(pgid).is_err(), "a reaped group has no memory");
    }

    #[test]
    fn a_groups_members_and_their_libraries_are_seen() {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg("sleep 30 & sleep 30")
            .process_group(0)
            .spawn()
            .expect("sh runs");
        let pgid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut members = Vec::new();
        while std::time::Instant::now() < deadline {
            members = group_members(pgid);
            // Three members, and the forked children have exec'd sleep: a
            // child is named sh between its fork and its exec (CI saw it).
            let sleeping = members.iter().filter(|p| p.name == "sleep").count();
            if members.len() == 3 && sleeping == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(members.len(), 3, "{members:?}");
        assert_eq!(
            members.iter().filter(|p| p.name == "sleep").count(),
            2,
            "{members:?}"
        );
        assert_eq!(maps_library(pgid, "libc"), Some(true));
        assert_eq!(maps_library(pgid, "libfaketime"), Some(false));
        // SAFETY: kill(2) on the group this test created.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = child.wait();
    }
}

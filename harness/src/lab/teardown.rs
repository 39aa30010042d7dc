//! `lab down`: remove every namespace, link, rule and process the lab made,
//! also for a half-built lab or a lost `lab.json` (it scans for the lab's
//! names too), and check that nothing is left.

use super::state::{self, LabState, BRIDGE, REMOTE_DIR, RULE_COMMENT};
use super::system::{self, run, try_run};
use anyhow::{bail, Context};
use std::path::Path;
use std::time::{Duration, Instant};

/// What `down` removed.
#[derive(Debug, Default)]
pub struct DownReport {
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
    pub processes: usize,
    pub rules: usize,
}

/// Takes the lab recorded in `dir` (if any) and every lab-named object on
/// the machine down. Fails if anything is left afterwards.
pub fn down(dir: &Path) -> anyhow::Result<DownReport> {
    if !system::is_root() {
        bail!("`faultline lab down` needs root");
    }
    let st = LabState::load(dir)?;
    let mut report = DownReport::default();

    // 1. Processes: the unshare holder of each host first (SIGKILL takes
    //    its whole PID namespace with it), then anything else still in a
    //    lab namespace.
    let mut namespaces: Vec<String> = system::netns_list()
        .into_iter()
        .filter(|n| state::is_lab_name(n))
        .collect();
    if let Some(st) = &st {
        for h in &st.hosts {
            if let Some(pid) = h.pid {
                let pid = pid as i32;
                if system::alive(pid) && system::cmdline(pid).contains("unshare") {
                    kill(pid);
                    report.processes += 1;
                }
            }
        }
    }
    namespaces.sort();
    let deadline = Instant::now() + Duration::from_secs(10);
    for ns in &namespaces {
        loop {
            let pids: Vec<i32> = system::netns_pids(ns)
                .into_iter()
                .filter(|&p| system::alive(p))
                .collect();
            if pids.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                bail!("processes {pids:?} in namespace {ns} survive SIGKILL");
            }
            for p in pids {
                kill(p);
                report.processes += 1;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // 2. Namespaces (their veth ends go with them).
    for ns in &namespaces {
        run("ip", &["netns", "del", ns]).with_context(|| format!("removing namespace {ns}"))?;
        report.namespaces.push(ns.clone());
    }

    // 3. Links: the root ends of veths go away asynchronously; remove any
    //    left, wait for them, then the bridge.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let veths: Vec<String> = system::link_list()
            .into_iter()
            .filter(|l| state::is_lab_name(l) && l != BRIDGE)
            .collect();
        if veths.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!("links {} do not go away", veths.join(", "));
        }
        for l in veths {
            if try_run("ip", &["link", "del", &l]) {
                report.links.push(l);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if system::link_list().iter().any(|l| l == BRIDGE) {
        run("ip", &["link", "del", BRIDGE]).context("removing the lab bridge")?;
        report.links.push(BRIDGE.to_string());
    }

    // 4. The FORWARD rule, found by its comment whatever lab.json says.
    report.rules = remove_forward_rules()?;

    // 5. The mount point we made, if still empty.
    if st.as_ref().is_some_and(|s| s.created_remote_dir) {
        let _ = std::fs::remove_dir(REMOTE_DIR);
    }
    let _ = std::fs::remove_file(LabState::path(dir));

    // 6. Nothing may be left.
    let left = leftovers();
    if !left.is_empty() {
        bail!("after lab down these are still there: {}", left.join(", "));
    }
    Ok(report)
}

/// Every lab object still on the machine, by kind and name ("" if none).
pub fn leftovers() -> Vec<String> {
    let mut left = Vec::new();
    for ns in system::netns_list()
        .into_iter()
        .filter(|n| state::is_lab_name(n))
    {
        left.push(format!("namespace {ns}"));
    }
    for l in system::link_list()
        .into_iter()
        .filter(|n| state::is_lab_name(n))
    {
        left.push(format!("link {l}"));
    }
    if forward_rules().map(|r| !r.is_empty()).unwrap_or(false) {
        left.push(format!("iptables FORWARD rule '{RULE_COMMENT}'"));
    }
    left
}

fn kill(pid: i32) {
    // SAFETY: kill(2) with a concrete pid and SIGKILL; failure (already
    // gone) is harmless and checked by the callers' loops.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// The `-A FORWARD ...` lines of the lab's rule(s).
fn forward_rules() -> anyhow::Result<Vec<String>> {
    if !try_run("sh", &["-c", "command -v iptables"]) {
        return Ok(Vec::new());
    }
    let rules = run("iptables", &["-w", "-S", "FORWARD"])?;
    Ok(rules
        .lines()
        .filter(|l| l.contains(RULE_COMMENT))
        .map(str::to_string)
        .collect())
}

fn remove_forward_rules() -> anyhow::Result<usize> {
    let rules = forward_rules()?;
    for rule in &rules {
        // `-A FORWARD -i ... -m comment --comment faultline-lab -j ACCEPT`
        // becomes the same with -D.
        let args: Vec<&str> = rule.split_whitespace().collect();
        let mut del: Vec<&str> = vec!["-w", "-D"];
        del.extend(args.iter().skip(1));
        run("iptables", &del).with_context(|| format!("removing FORWARD rule `{rule}`"))?;
    }
    Ok(rules.len())
}

//! Faults on a remote host, as shell scripts run as root over SSH.
//!
//! - Partitions: `iptables` DROP rules on INPUT, one per peer address the
//!   host must not hear from, in a chain of the run's own
//!   (`FL-PART-<run id>`), so healing is one flush and never touches
//!   anyone else's rules, and a run that died is found by its id
//!   ([`super::leftovers`]).
//! - Packet loss: the `statistic` match in chain `FL-LOSS-<run id>`, per
//!   peer address (never the controller's, so SSH keeps working).
//! - Latency: `tc netem` on the interface that routes to the peers, for
//!   packets to the peers only; on a kernel without netem the error names
//!   the host (no pretending).
//! - Clock: the node's libfaketime timestamp file (offset and rate).
//!
//! Guarantee: [`heal_script`] undoes every one of these and is idempotent,
//! so it can be retried after a host was unreachable for a while.

use super::layout::Layout;
use crate::ssh::{sh_quote, Session, SshError};

/// The run's partition chain on every host (28 characters at most, as
/// iptables allows: run ids are 8).
pub fn partition_chain(run_id: &str) -> String {
    format!("FL-PART-{run_id}")
}

/// The run's packet-loss chain on every host.
pub fn loss_chain(run_id: &str) -> String {
    format!("FL-LOSS-{run_id}")
}

/// Creates the run's chains and hooks them into INPUT once.
fn ensure_chains(run_id: &str) -> String {
    let mut s = String::new();
    for chain in [partition_chain(run_id), loss_chain(run_id)] {
        s.push_str(&format!(
            "iptables -w -N {chain} 2>/dev/null; iptables -w -C INPUT -j {chain} 2>/dev/null || iptables -w -I INPUT -j {chain} || exit 1; "
        ));
    }
    s
}

/// Drop everything from `peers` (replacing the previous partition rules).
pub fn partition_script(run_id: &str, peers: &[String]) -> String {
    let chain = partition_chain(run_id);
    let mut s = ensure_chains(run_id);
    s.push_str(&format!("iptables -w -F {chain} || exit 1; "));
    for p in peers {
        s.push_str(&format!(
            "iptables -w -A {chain} -s {} -j DROP || exit 1; ",
            sh_quote(p)
        ));
    }
    s.push_str("echo ok");
    s
}

/// Drop each packet from `peers` with `probability` (0..=1).
pub fn loss_script(run_id: &str, peers: &[String], probability: f64) -> String {
    assert!(
        (0.0..=1.0).contains(&probability),
        "loss probability {probability} out of 0..=1"
    );
    let chain = loss_chain(run_id);
    let mut s = ensure_chains(run_id);
    s.push_str(&format!("iptables -w -F {chain} || exit 1; "));
    for p in peers {
        s.push_str(&format!(
            "iptables -w -A {chain} -s {} -m statistic --mode random --probability {probability:.4} -j DROP || exit 1; ",
            sh_quote(p)
        ));
    }
    s.push_str("echo ok");
    s
}

/// Marker a netem failure prints, so the caller can name the cause.
pub const NO_NETEM: &str = "faultline: netem unavailable";

/// The handle of the root `prio` qdisc latency installs (so heal removes
/// only ours).
pub const PRIO_HANDLE: &str = "7f1:";

/// Delay packets this host sends to `peers` by `delay_ms` ± `jitter_ms`,
/// and nothing else (clients and SSH keep their speed): a root `prio`
/// qdisc whose fourth band is netem, and one u32 filter per peer sending
/// its packets there. Replaces any previous latency.
pub fn latency_script(peers: &[String], delay_ms: u32, jitter_ms: u32) -> String {
    let first = peers.first().map(String::as_str).unwrap_or("127.0.0.1");
    let jitter = if jitter_ms > 0 {
        format!(" {jitter_ms}ms")
    } else {
        String::new()
    };
    let mut s = format!(
        "DEV=$(ip -o route get {peer} | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'); [ -n \"$DEV\" ] || {{ echo 'no route to {peer}' >&2; exit 1; }}; \
         tc qdisc show dev \"$DEV\" root | grep -q '^qdisc prio {PRIO_HANDLE}' && tc qdisc del dev \"$DEV\" root; \
         OUT=$( {{ tc qdisc add dev \"$DEV\" root handle {PRIO_HANDLE} prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1 && \
                  tc qdisc add dev \"$DEV\" parent {h}4 handle 7f2: netem delay {delay_ms}ms{jitter}; }} 2>&1) || {{ \
           tc qdisc show dev \"$DEV\" root | grep -q '^qdisc prio {PRIO_HANDLE}' && tc qdisc del dev \"$DEV\" root; \
           case \"$OUT\" in *nknown*|*'not found'*|*'No such file'*) echo \"{NO_NETEM} on $DEV: $OUT\" >&2;; *) echo \"$OUT\" >&2;; esac; exit 1; }}; ",
        peer = sh_quote(first),
        h = PRIO_HANDLE,
    );
    for p in peers {
        s.push_str(&format!(
            "tc filter add dev \"$DEV\" parent {PRIO_HANDLE} protocol ip prio 1 u32 match ip dst {}/32 flowid {PRIO_HANDLE}4 || exit 1; ",
            sh_quote(p)
        ));
    }
    s.push_str("echo ok");
    s
}

/// Removes the latency qdisc (if ours) from every interface.
pub fn latency_off_script() -> String {
    format!(
        "command -v tc >/dev/null 2>&1 || exit 0; for DEV in $(ls /sys/class/net); do \
         tc qdisc show dev \"$DEV\" root 2>/dev/null | grep -q '^qdisc prio {PRIO_HANDLE}' && tc qdisc del dev \"$DEV\" root; done; echo ok"
    )
}

/// Sets `node`'s clock by writing this libfaketime spec
/// ([`crate::cluster::clock_fault::ClockFault::faketime_spec`]).
pub fn clock_script(layout: &Layout, node: &str, spec: &str) -> String {
    let f = sh_quote(&layout.faketime(node));
    format!(
        "printf '%s\\n' {} > {f}.tmp && mv -f {f}.tmp {f} && echo ok",
        sh_quote(spec)
    )
}

/// Undoes every fault of the live run `run_id` on the host: flushes and
/// removes its chains, removes a netem root qdisc, resets the clocks of
/// `nodes` and resumes them (their process groups) if paused. Safe to run
/// again and again. (A dead run's leftovers are killed, never resumed:
/// [`super::leftovers::heal_run_script`].)
pub fn heal_script(layout: &Layout, run_id: &str, nodes: &[String]) -> String {
    let mut s = String::from("command -v iptables >/dev/null 2>&1 && { ");
    for chain in [partition_chain(run_id), loss_chain(run_id)] {
        s.push_str(&format!(
            "while iptables -w -D INPUT -j {chain} 2>/dev/null; do :; done; iptables -w -F {chain} 2>/dev/null; iptables -w -X {chain} 2>/dev/null; "
        ));
    }
    s.push_str("}; ");
    s.push_str(&format!(
        "command -v tc >/dev/null 2>&1 && for DEV in $(ls /sys/class/net); do \
         tc qdisc show dev \"$DEV\" root 2>/dev/null | grep -q '^qdisc prio {PRIO_HANDLE}' && tc qdisc del dev \"$DEV\" root; done; "
    ));
    for n in nodes {
        let f = sh_quote(&layout.faketime(n));
        s.push_str(&format!("[ -f {f} ] && echo +0 > {f}; "));
        s.push_str(&super::daemon::resume_part(layout, n));
    }
    s.push_str("echo healed");
    s
}

/// The rules now in the run's chains (for status and tests).
pub fn rules_script(run_id: &str) -> String {
    format!(
        "iptables -w -S {} 2>/dev/null; iptables -w -S {} 2>/dev/null; true",
        partition_chain(run_id),
        loss_chain(run_id)
    )
}

/// Runs a fault script, turning the netem marker into a clear message.
pub fn apply(s: &Session, script: &str, what: &str) -> Result<(), SshError> {
    match s.run_root(script) {
        Ok(_) => Ok(()),
        Err(SshError::Command {
            host,
            stderr,
            status,
            ..
        }) => {
            let stderr = if let Some(rest) = stderr.find(NO_NETEM).map(|i| &stderr[i..]) {
                format!("the kernel has no netem qdisc (sch_netem), so latency cannot be injected on this host: {rest}")
            } else {
                stderr
            };
            Err(SshError::Command {
                host,
                command: what.to_string(),
                status,
                stderr,
            })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "0000abcd";

    #[test]
    fn partition_rules_are_per_peer_in_our_chain() {
        let s = partition_script(RUN, &["10.77.0.12".into(), "10.77.0.13".into()]);
        assert!(s.contains("iptables -w -A FL-PART-0000abcd -s 10.77.0.12 -j DROP"));
        assert!(s.contains("iptables -w -A FL-PART-0000abcd -s 10.77.0.13 -j DROP"));
        assert!(
            s.contains("iptables -w -F FL-PART-0000abcd"),
            "replaces the previous partition"
        );
        assert!(!s.contains("-A INPUT"), "never appends to INPUT directly");
        let l = loss_script(RUN, &["10.77.0.12".into()], 0.1);
        assert!(
            l.contains("-s 10.77.0.12 -m statistic --mode random --probability 0.1000 -j DROP"),
            "{l}"
        );
    }

    #[test]
    fn heal_removes_chains_netem_clock_and_pause() {
        let layout = Layout::new("/v");
        let s = heal_script(&layout, RUN, &["n1".into()]);
        assert!(
            s.contains("iptables -w -X FL-PART-0000abcd")
                && s.contains("iptables -w -X FL-LOSS-0000abcd")
        );
        assert!(
            s.contains("grep -q '^qdisc prio 7f1:' && tc qdisc del dev \"$DEV\" root"),
            "{s}"
        );
        assert!(s.contains("echo +0 > /v/nodes/n1/faketime"));
        assert!(s.contains("signal_all CONT"), "{s}");
        // The script must be valid sh.
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&s)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for script in [
            partition_script(RUN, &["a".into()]),
            loss_script(RUN, &["a".into()], 0.5),
            latency_script(&["a".into(), "b".into()], 50, 10),
            latency_off_script(),
            clock_script(&layout, "n1", "-5.000 x1.5"),
        ] {
            let out = std::process::Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn clock_script_writes_the_spec_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_str().unwrap());
        std::fs::create_dir_all(layout.node_dir("n1")).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(clock_script(&layout, "n1", "+10.500 x2"))
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            std::fs::read_to_string(layout.faketime("n1")).unwrap(),
            "+10.500 x2\n"
        );
        // PATH without /usr/sbin: the heal must not touch this machine's
        // own iptables or qdiscs when the test runs as root.
        let out = std::process::Command::new("sh")
            .env("PATH", "/usr/bin:/bin")
            .arg("-c")
            .arg(heal_script(&layout, RUN, &["n1".into()]))
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            std::fs::read_to_string(layout.faketime("n1")).unwrap(),
            "+0\n"
        );
    }
}

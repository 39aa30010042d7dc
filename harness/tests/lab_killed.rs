//! A remote `faultline test` killed with SIGKILL (an out-of-memory kill, a
//! CI timeout) cannot clean up its hosts: its node daemons run on, a
//! paused one stays stopped, its iptables chain stays hooked into INPUT.
//! Everything it made there carries its run id and each host is in its
//! ledger, so `faultline heal` (and the next `faultline test`) logs in
//! again and removes it: the daemons killed (the paused one too, never
//! resumed), the chains unhooked and deleted, the run's folder of clock
//! files removed, one line per thing naming the host.
//!
//! Needs root: `FAULTLINE_LAB_TESTS=1 cargo test -p faultline --test lab_killed -- --ignored`
//! (.ci/lab.sh, inside `flock /tmp/faultline-lab.lock`).

mod lab_support;

use faultline::ledger::{ledger_dir, Recorded, Resource};
use lab_support::{enabled, faultline, on_host, text, TestLab};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HOSTS: usize = 3;

/// What run `run_id` has on one host.
#[derive(Debug, Default, PartialEq, Eq)]
struct OnHost {
    /// Live processes marked with the run id.
    marked: usize,
    /// Of those, stopped (SIGSTOP).
    stopped: usize,
    /// The run's iptables chains.
    chains: usize,
    /// Jumps from INPUT to them.
    hooks: usize,
    /// Whether the run's folder (clock files) is there.
    run_dir: bool,
}

fn on_host_state(lab: &TestLab, addr: &str, run_id: &str) -> OnHost {
    let script = format!(
        "R={run_id}; m=0; t=0; \
         for e in /proc/[0-9]*/environ; do tr '\\0' '\\n' < \"$e\" 2>/dev/null | grep -qxF FAULTLINE_RUN_ID=$R || continue; \
           p=${{e#/proc/}}; p=${{p%/environ}}; s=$(ps -o stat= -p \"$p\") || continue; \
           case \"$s\" in Z*|'') continue;; T*) t=$((t+1));; esac; m=$((m+1)); done; \
         c=$(iptables -w -S | grep -c -- \"^-N FL-[A-Z]*-$R\"); \
         j=$(iptables -w -S INPUT | grep -c -- \"-j FL-[A-Z]*-$R\"); \
         d=0; [ -d /var/lib/faultline/runs/$R ] && d=1; echo \"$m $t $c $j $d\""
    );
    let out = on_host(lab, addr, &script);
    let n: Vec<usize> = out
        .split_whitespace()
        .map(|w| w.parse().unwrap_or_else(|_| panic!("{addr} said {out:?}")))
        .collect();
    assert_eq!(n.len(), 5, "{addr} said {out:?}");
    OnHost {
        marked: n[0],
        stopped: n[1],
        chains: n[2],
        hooks: n[3],
        run_dir: n[4] == 1,
    }
}

/// What the run is killed in the middle of.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// A partition is in force: some host's run chain is hooked and has rules.
    Partition,
    /// A node is paused: some host has a stopped daemon of the run.
    Pause,
}

fn start_run(lab: &TestLab, store: &Path, moment: Moment) -> Child {
    let nemesis = match moment {
        Moment::Partition => "partition",
        Moment::Pause => "pause",
    };
    Command::new(faultline())
        .args(["test", "--lab", lab.dir_str(), "--store"])
        .arg(store)
        .args(["--name", "killed", "--workload", "register"])
        .args(["--nemesis", nemesis, "--nemesis-interval", "8s"])
        .args(["--time-limit", "180s", "--seed", "11"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("faultline starts")
}

/// The run's id, once its test.json is written.
fn run_id(store: &Path, child: &mut Child, deadline: Instant) -> String {
    let path = store.join("latest/test.json");
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
                return json["run_id"]
                    .as_str()
                    .expect("test.json has run_id")
                    .into();
            }
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("faultline ended ({status}) before writing test.json");
        }
        assert!(Instant::now() < deadline, "no {} in time", path.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts a remote run, waits for `moment` on the hosts, SIGKILLs it, and
/// checks what it left (so that the heal has something to do): its
/// daemons on every host, its hosts in its ledger, and the partition's
/// chain or the paused daemon. Returns the run id.
fn kill_mid(lab: &TestLab, store: &Path, moment: Moment) -> String {
    let mut child = start_run(lab, store, moment);
    let deadline = Instant::now() + Duration::from_secs(150);
    let run_id = run_id(store, &mut child, deadline);
    loop {
        let states: Vec<OnHost> = (1..=HOSTS)
            .map(|i| on_host_state(lab, &lab.addr(i), &run_id))
            .collect();
        let now = match moment {
            Moment::Partition => states.iter().any(|s| s.hooks > 0 && s.chains > 0),
            Moment::Pause => states.iter().any(|s| s.stopped > 0),
        };
        if now && states.iter().all(|s| s.marked > 0) {
            break;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("faultline ended ({status}) before a {moment:?}: {states:?}");
        }
        assert!(
            Instant::now() < deadline,
            "no {moment:?} within 150 s: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().expect("SIGKILL faultline test");
    child.wait().expect("reap faultline test");

    let states: Vec<OnHost> = (1..=HOSTS)
        .map(|i| on_host_state(lab, &lab.addr(i), &run_id))
        .collect();
    assert!(
        states.iter().all(|s| s.marked > 0),
        "the daemons outlive a SIGKILLed remote run: {states:?}"
    );
    match moment {
        Moment::Partition => assert!(
            states.iter().any(|s| s.chains > 0 && s.hooks > 0),
            "the run's chain is left hooked: {states:?}"
        ),
        Moment::Pause => assert!(
            states.iter().any(|s| s.stopped > 0),
            "the paused daemon is left stopped: {states:?}"
        ),
    }
    let ledger = Recorded::parse(
        &std::fs::read(ledger_dir(store).join(format!("{run_id}.jsonl")))
            .expect("the killed run's ledger"),
    );
    assert!(!ledger.closed, "{ledger:?}");
    let hosts = ledger
        .held
        .values()
        .filter(|r| matches!(r, Resource::RemoteHost { .. }))
        .count();
    assert_eq!(hosts, HOSTS, "every host in the ledger: {ledger:?}");
    run_id
}

/// Nothing of `run_id` is left on any host, and `printed` (the heal's
/// lines, `healed run R: …`) names each host's killed daemon and, for the
/// moment, the chain or the paused daemon; nothing was resumed.
fn check_healed(lab: &TestLab, run_id: &str, moment: Moment, printed: &str) {
    for i in 1..=HOSTS {
        assert_eq!(
            on_host_state(lab, &lab.addr(i), run_id),
            OnHost::default(),
            "host {i} after the heal:\n{printed}"
        );
    }
    let ours: Vec<&str> = printed
        .lines()
        .filter(|l| l.contains(&format!("healed run {run_id}: ")))
        .collect();
    for i in 1..=HOSTS {
        let on = format!("healed run {run_id}: on root@{}:22: killed n", lab.addr(i));
        assert!(
            ours.iter().any(|l| l.contains(&on)),
            "no line {on:?}:\n{printed}"
        );
    }
    match moment {
        Moment::Partition => {
            let chain = format!("removed iptables chain FL-PART-{run_id} and the jump to it");
            assert!(
                ours.iter().any(|l| l.ends_with(&chain)),
                "no {chain:?}:\n{printed}"
            );
        }
        Moment::Pause => assert!(
            ours.iter()
                .any(|l| l.ends_with("paused by the run; not resumed")),
            "no paused daemon named:\n{printed}"
        ),
    }
    assert!(
        !printed.replace("not resumed", "").contains("resumed"),
        "{printed}"
    );
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn sigkill_mid_partition_then_faultline_heal_leaves_nothing_on_any_host() {
    if !enabled("lab_killed_heal") {
        return;
    }
    let lab = TestLab::up(HOSTS);
    let store = tempfile::tempdir().expect("tempdir");
    let run_id = kill_mid(&lab, store.path(), Moment::Partition);
    let heal = Command::new(faultline())
        .args(["heal", "--store"])
        .arg(store.path())
        .output()
        .expect("faultline heal runs");
    assert_eq!(heal.status.code(), Some(0), "{}", text(&heal));
    check_healed(
        &lab,
        &run_id,
        Moment::Partition,
        &String::from_utf8_lossy(&heal.stdout),
    );
    assert!(
        !ledger_dir(store.path())
            .join(format!("{run_id}.jsonl"))
            .exists(),
        "a healed ledger is retired"
    );
    let again = Command::new(faultline())
        .args(["heal", "--store"])
        .arg(store.path())
        .output()
        .expect("faultline heal runs");
    assert!(
        String::from_utf8_lossy(&again.stdout).starts_with("nothing to heal in "),
        "nothing twice: {}",
        text(&again)
    );
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn sigkill_mid_pause_then_the_next_test_kills_the_paused_daemon_and_leaves_nothing() {
    if !enabled("lab_killed_next_test") {
        return;
    }
    let lab = TestLab::up(HOSTS);
    let store = tempfile::tempdir().expect("tempdir");
    let run_id = kill_mid(&lab, store.path(), Moment::Pause);
    let next = Command::new(faultline())
        .args(["test", "--lab", lab.dir_str(), "--store"])
        .arg(store.path())
        .args(["--name", "next", "--workload", "register"])
        .args(["--nemesis", "partition", "--nemesis-interval", "2s"])
        .args(["--time-limit", "4s", "--seed", "3"])
        .stdin(Stdio::null())
        .output()
        .expect("the next faultline test runs");
    let code = next.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 2, "exit {code}:\n{}", text(&next));
    let stderr = String::from_utf8_lossy(&next.stderr);
    let healed: String = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("faultline: "))
        .map(|l| format!("{l}\n"))
        .collect();
    check_healed(&lab, &run_id, Moment::Pause, &healed);
    assert!(
        !ledger_dir(store.path())
            .join(format!("{run_id}.jsonl"))
            .exists(),
        "a healed ledger is retired"
    );
    // The next run cleaned up after itself too.
    let next_id = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(store.path().join("latest/test.json")).expect("test.json"),
    )
    .expect("json")["run_id"]
        .as_str()
        .expect("run_id")
        .to_string();
    for i in 1..=HOSTS {
        assert_eq!(
            on_host_state(&lab, &lab.addr(i), &next_id),
            OnHost::default(),
            "host {i} after the next run"
        );
    }
}

//! Shared by the simulator's seed sweeps (sim.rs for Raft, sim_paxos.rs for
//! Multi-Paxos): run one seed of a core, check the per-step violations the
//! world reports and the clients' history for linearizability (the
//! checker's `cas-register` per key), and print the command that replays a
//! failing seed.
#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use faultline_checker::history::{Event, EventType, Process, Value};
use faultline_checker::linearizable::check_linearizable;
use faultline_checker::{CheckOptions, ModelKind, Operations, Verdict};
use faultline_nodes::bug::Bug;
use faultline_nodes::sim::{self, History, SimCore, SimEventKind, SimOptions, SimOutcome};

pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

pub fn to_events(h: &History) -> Vec<Event> {
    h.events
        .iter()
        .map(|e| Event {
            index: e.index,
            time: e.time_ns,
            process: Process::Client(e.process),
            kind: match e.kind {
                SimEventKind::Invoke => EventType::Invoke,
                SimEventKind::Ok => EventType::Ok,
                SimEventKind::Fail => EventType::Fail,
                SimEventKind::Info => EventType::Info,
            },
            f: e.f.to_string(),
            key: Some(Value::from(e.key)),
            value: e.value.clone(),
            node: e.node.map(|n| n.to_string()),
            error: e.error.clone(),
        })
        .collect()
}

/// Why a seed failed.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub what: String,
}

/// The command that replays `seed` of the test binary `test`.
pub fn replay_command(test: &str, seed: u64, bugs: &[Bug]) -> String {
    let bug = bugs
        .first()
        .map(|b| format!(" FAULTLINE_SIM_BUG={b}"))
        .unwrap_or_default();
    format!("FAULTLINE_SIM_SEED={seed}{bug} FAULTLINE_SIM_TRACE=1 cargo test -p faultline-nodes --release --test {test} -- replay --nocapture")
}

/// Linearizability of the clients' history: Ok(true) valid, Ok(false)
/// unknown (search gave up), Err(why) invalid.
pub fn linearizable(h: &History) -> Result<bool, String> {
    let events = to_events(h);
    let ops = Operations::from_events("sim", &events, &[])
        .map_err(|e| format!("history does not parse: {e}"))?;
    let opts = CheckOptions {
        threads: 1,
        time_limit: Some(std::time::Duration::from_secs(20)),
        ..CheckOptions::default()
    };
    let report = check_linearizable(&ops, ModelKind::CasRegister, &opts)
        .map_err(|e| format!("checker error: {e}"))?;
    match report.verdict {
        Verdict::Valid => Ok(true),
        Verdict::Invalid { witness } => {
            let w = format!("{witness:?}");
            Err(format!(
                "{}: {}",
                sim::check::LINEARIZABILITY,
                w.chars().take(1500).collect::<String>()
            ))
        }
        _ => Ok(false),
    }
}

/// Run one seed and check it; Ok(outcome) when everything holds.
pub fn check_seed<C: SimCore>(opts: &SimOptions) -> Result<SimOutcome, Failure> {
    check_seed_verdict::<C>(opts).map(|(o, _)| o)
}

/// As [`check_seed`], also saying whether the linearizability search decided
/// (false: it gave up, verdict unknown).
pub fn check_seed_verdict<C: SimCore>(opts: &SimOptions) -> Result<(SimOutcome, bool), Failure> {
    let seed = opts.seed;
    let outcome = catch_unwind(AssertUnwindSafe(|| sim::run::<C>(opts))).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Failure {
            seed,
            what: format!("panic: {msg}"),
        }
    })?;
    if let Some(v) = &outcome.violation {
        return Err(Failure {
            seed,
            what: v.to_string(),
        });
    }
    match linearizable(&outcome.history) {
        Ok(decided) => Ok((outcome, decided)),
        Err(what) => Err(Failure { seed, what }),
    }
}

pub fn fail_loudly(test: &str, f: &Failure, bugs: &[Bug]) -> ! {
    panic!(
        "simulation seed {} failed: {}\nreplay: {}",
        f.seed,
        f.what,
        replay_command(test, f.seed, bugs)
    );
}

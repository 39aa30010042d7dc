//! Deterministic simulation of the Multi-Paxos core (nodes/src/sim with
//! nodes/src/paxos): many seeds of faults, each checked after every step for
//! election safety (one leader per ballot), state machine safety (every node
//! applies the same value at a slot), the core's own invariants (no accept
//! above the promise, agreed slots at the promised ballot, ...) and, through
//! the Paxos oracle, at most one value chosen per slot, no broken promise and
//! agreeing learners; and at the end for linearizability (faultline-checker,
//! `cas-register` per key).
//!
//! A failure prints its seed and the command that replays it:
//!     FAULTLINE_SIM_SEED=1234 cargo test -p faultline-nodes --release --test sim_paxos -- replay --nocapture
//! (add FAULTLINE_SIM_TRACE=1 for the event trace, FAULTLINE_SIM_BUG=stale-read for a planted bug).
//! A longer sweep: FAULTLINE_SIM_SEEDS=100000 [FAULTLINE_SIM_SEED_START=N] cargo test -p faultline-nodes --release --test sim_paxos -- paxos_passes_seeds --nocapture
//!
//! `paxos_membership_passes_seeds` runs the same checks with membership
//! changes in the schedule (`SimOptions::with_membership`: voters added,
//! removed and swapped, joining cores, removed nodes wiped), the oracle
//! counting every slot's quorum in the configuration governing it, and
//! asserts that changes complete (replay a seed with FAULTLINE_SIM_MEMBERSHIP=1).
//! `membership_scan` sweeps other seeds with node ids re-used and lists every
//! failing seed (FAULTLINE_SIM_REUSE_IDS=0 turns re-use off).

mod sim_common;

use faultline_nodes::bug::Bug;
use faultline_nodes::paxos::PaxosNode;
use faultline_nodes::sim::{self, SimEventKind, SimOptions, SimOutcome};
use sim_common::{env_u64, Failure};
use std::panic::{catch_unwind, AssertUnwindSafe};

const TEST: &str = "sim_paxos";

fn check_seed(opts: &SimOptions) -> Result<SimOutcome, Failure> {
    sim_common::check_seed::<PaxosNode>(opts)
}

fn fail_loudly(f: &Failure, bugs: &[Bug]) -> ! {
    sim_common::fail_loudly(TEST, f, bugs)
}

#[test]
fn paxos_passes_seeds() {
    let seeds = env_u64("FAULTLINE_SIM_SEEDS", 500);
    let start = env_u64("FAULTLINE_SIM_SEED_START", 0);
    let (mut ok_ops, mut elections, mut crashes, mut snapshots, mut transfers) =
        (0usize, 0u64, 0u64, 0u64, 0u64);
    for seed in start..start + seeds {
        let outcome = check_seed(&SimOptions::new(seed)).unwrap_or_else(|f| fail_loudly(&f, &[]));
        ok_ops += outcome.history.count(SimEventKind::Ok);
        elections += outcome.stats.terms_with_leader;
        crashes += outcome.stats.crashes;
        snapshots += outcome.stats.snapshots_sent;
        transfers += outcome.stats.transfers;
    }
    eprintln!("{seeds} seeds: {ok_ops} ok operations, {elections} terms with a leader, {crashes} crashes, {snapshots} snapshots sent, {transfers} transfers");
    // The runs must have exercised something: faults, elections, work.
    assert!(
        ok_ops as u64 >= seeds * 20,
        "clients got too little done: {ok_ops} ok ops over {seeds} seeds"
    );
    assert!(elections >= seeds, "too few elections: {elections}");
    assert!(crashes >= seeds / 2, "too few crashes: {crashes}");
    assert!(snapshots > 0, "no follower ever needed a snapshot");
}

/// Membership changes in the random schedule (add, remove, swap voters;
/// joining cores on added nodes, removed nodes stopped and wiped), with the
/// oracle counting quorums in the configuration chosen for each slot.
#[test]
fn paxos_membership_passes_seeds() {
    let seeds = env_u64("FAULTLINE_SIM_SEEDS", 500);
    let start = env_u64("FAULTLINE_SIM_SEED_START", 0);
    let (mut ok_ops, mut requested, mut accepted, mut done) = (0usize, 0u64, 0u64, 0u64);
    let (mut joins, mut by_snapshot, mut removals, mut leader_removals) = (0u64, 0u64, 0u64, 0u64);
    let (mut seeds_with_change, mut rejoins) = (0u64, 0u64);
    for seed in start..start + seeds {
        let mut opts = SimOptions::with_membership(seed);
        // Odd seeds also add wiped node ids back (an empty acceptor that
        // was a voter before: see the paxos module docs).
        opts.reuse_ids = seed % 2 == 1;
        let outcome = check_seed(&opts).unwrap_or_else(|f| fail_membership(&f, opts.reuse_ids));
        ok_ops += outcome.history.count(SimEventKind::Ok);
        let st = &outcome.stats;
        requested += st.membership_requested;
        accepted += st.membership_accepted;
        done += st.membership_done;
        joins += st.joins;
        by_snapshot += st.joined_by_snapshot;
        removals += st.removals;
        leader_removals += st.leader_removals;
        rejoins += st.rejoins;
        seeds_with_change += (st.membership_done > 0) as u64;
    }
    eprintln!(
        "{seeds} seeds with membership changes: {ok_ops} ok operations; changes {requested} requested, \
         {accepted} accepted, {done} done (in {seeds_with_change} seeds); {joins} joins \
         ({by_snapshot} by snapshot, {rejoins} of wiped ids), {removals} removals ({leader_removals} leaders)"
    );
    assert!(
        ok_ops as u64 >= seeds * 10,
        "clients got too little done: {ok_ops} ok ops over {seeds} seeds"
    );
    // Changes must actually finish, in most seeds, and exercise the paths
    // that matter: new voters catching up, removed nodes (leaders too) leaving.
    assert!(
        seeds_with_change * 2 >= seeds,
        "changes completed in only {seeds_with_change} of {seeds} seeds"
    );
    assert!(
        done * 2 >= accepted,
        "only {done} of {accepted} accepted changes finished"
    );
    assert!(
        joins > 0 && removals > 0,
        "no node joined ({joins}) or left ({removals})"
    );
    if seeds >= 100 {
        assert!(by_snapshot > 0, "no joining node caught up by snapshot");
        assert!(leader_removals > 0, "no leader ever removed itself");
        assert!(rejoins > 0, "no wiped node id was ever added back");
    }
}

fn fail_membership(f: &Failure, reuse_ids: bool) -> ! {
    let reuse = if reuse_ids {
        " FAULTLINE_SIM_REUSE_IDS=1"
    } else {
        ""
    };
    panic!(
        "simulation seed {} (membership changes on) failed: {}\nreplay: FAULTLINE_SIM_MEMBERSHIP=1{reuse} {}",
        f.seed,
        f.what,
        sim_common::replay_command(TEST, f.seed, &[])
    );
}

/// Replays one seed (FAULTLINE_SIM_SEED, default 1) and prints its trace
/// with FAULTLINE_SIM_TRACE=1 (FAULTLINE_SIM_MEMBERSHIP=1: with membership
/// changes, as `paxos_membership_passes_seeds` runs it).
#[test]
fn replay() {
    let seed = env_u64("FAULTLINE_SIM_SEED", 1);
    let bugs: Vec<Bug> = match std::env::var("FAULTLINE_SIM_BUG") {
        Ok(b) => vec![b
            .parse()
            .unwrap_or_else(|e| panic!("FAULTLINE_SIM_BUG: {e}"))],
        Err(_) => Vec::new(),
    };
    let mut opts = SimOptions::new(seed);
    opts.membership = std::env::var("FAULTLINE_SIM_MEMBERSHIP").is_ok_and(|v| v == "1");
    opts.reuse_ids = std::env::var("FAULTLINE_SIM_REUSE_IDS").is_ok_and(|v| v == "1");
    opts.bugs = bugs.clone();
    opts.trace = std::env::var("FAULTLINE_SIM_TRACE").is_ok_and(|v| v == "1");
    let outcome = catch_unwind(AssertUnwindSafe(|| sim::run::<PaxosNode>(&opts)));
    if let Ok(o) = &outcome {
        for line in &o.trace {
            println!("{line}");
        }
        if opts.trace {
            print!("{}", o.history.to_jsonl());
        }
        eprintln!(
            "seed {seed}: {} nodes, stats {:?}, trace hash {:#x}",
            o.nodes, o.stats, o.trace_hash
        );
    }
    if let Err(f) = check_seed(&opts) {
        fail_loudly(&f, &bugs);
    }
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for seed in [3, 17, 99] {
        let a = sim::run::<PaxosNode>(&SimOptions::new(seed));
        let b = sim::run::<PaxosNode>(&SimOptions::new(seed));
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "seed {seed} replays differently"
        );
        assert_eq!(a.history, b.history, "seed {seed}: histories differ");
        assert_eq!(a.stats, b.stats);
    }
    let a = sim::run::<PaxosNode>(&SimOptions::new(1));
    let b = sim::run::<PaxosNode>(&SimOptions::new(2));
    assert_ne!(
        a.trace_hash, b.trace_hash,
        "different seeds must give different traces"
    );
}

#[test]
fn a_quiet_cluster_completes_every_operation() {
    for seed in 0..20 {
        let mut opts = SimOptions::new(seed);
        opts.faults = false;
        let outcome = check_seed(&opts).unwrap_or_else(|f| fail_loudly(&f, &[]));
        let h = &outcome.history;
        assert_eq!(
            h.count(SimEventKind::Info),
            0,
            "seed {seed}: no operation may time out without faults"
        );
        let bad_fails = h
            .events
            .iter()
            .filter(|e| e.kind == SimEventKind::Fail && e.error.as_deref() != Some("cas-mismatch"))
            .count();
        assert_eq!(
            bad_fails, 0,
            "seed {seed}: only cas mismatches may fail without faults"
        );
        assert!(
            h.count(SimEventKind::Ok) > 50,
            "seed {seed}: a quiet cluster gets work done"
        );
    }
}

#[test]
fn reads_stay_linearizable_with_lease_reads_asked_for() {
    // The Paxos core ignores `lease_reads` (it always confirms reads with a
    // quorum round); the world also forces check-quorum on with it.
    for seed in 0..60 {
        let mut opts = SimOptions::new(seed);
        opts.lease_reads = true;
        check_seed(&opts).unwrap_or_else(|f| panic!("lease reads, seed {}: {}", f.seed, f.what));
    }
}

/// Runs seeds with a planted bug until one fails; returns the first seed found.
fn find_bug(bug: Bug, max_seeds: u64) -> Option<(u64, String)> {
    for seed in 0..max_seeds {
        let mut opts = SimOptions::new(seed);
        opts.bugs = vec![bug];
        if let Err(f) = check_seed(&opts) {
            return Some((f.seed, f.what));
        }
    }
    None
}

#[test]
fn stale_read_bug_is_caught() {
    let found = find_bug(Bug::StaleRead, 50);
    let (seed, what) = found.expect("stale-read went unnoticed for 50 seeds");
    eprintln!("stale-read caught at seed {seed}: {what}");
    assert!(
        what.contains("linearizability"),
        "a stale read is a linearizability violation, got: {what}"
    );
}

#[test]
fn no_fsync_bug_is_caught() {
    let found = find_bug(Bug::NoFsync, 200);
    let (seed, what) = found.expect("no-fsync went unnoticed for 200 seeds");
    eprintln!("no-fsync caught at seed {seed}: {what}");
}

/// A second membership sweep, over seeds the main sweep does not run and
/// with wiped node ids always added back; it lists every failing seed
/// instead of stopping at the first, so it doubles as the triage tool
/// (`FAULTLINE_SIM_SEEDS=10000 FAULTLINE_SIM_SEED_START=N ... -- membership_scan --nocapture`).
#[test]
fn membership_scan() {
    let seeds = env_u64("FAULTLINE_SIM_SEEDS", 200);
    let start = env_u64("FAULTLINE_SIM_SEED_START", 100_000);
    let mut failed = 0;
    for seed in start..start + seeds {
        if std::env::var("FAULTLINE_SIM_PROGRESS").is_ok() {
            eprintln!("seed {seed} ...");
        }
        let mut opts = SimOptions::with_membership(seed);
        opts.reuse_ids = std::env::var("FAULTLINE_SIM_REUSE_IDS").map_or(true, |v| v != "0");
        if let Err(f) = check_seed(&opts) {
            failed += 1;
            eprintln!(
                "seed {seed}: {}\n  replay: FAULTLINE_SIM_MEMBERSHIP=1 FAULTLINE_SIM_REUSE_IDS={} FAULTLINE_SIM_SEED={seed} cargo test -p faultline-nodes --release --test sim_paxos -- replay --nocapture",
                f.what.chars().take(300).collect::<String>(),
                u8::from(opts.reuse_ids)
            );
        }
    }
    eprintln!("{failed} of {seeds} seeds failed");
    assert_eq!(
        failed, 0,
        "{failed} of {seeds} membership seeds failed (listed above)"
    );
}

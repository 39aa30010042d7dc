//! Deterministic simulation of the Raft core (nodes/src/sim): many seeds of
//! faults, each checked step by step for Raft's safety properties and at the
//! end for linearizability (faultline-checker, `cas-register` per key).
//!
//! A failure prints its seed and the command that replays it:
//!     FAULTLINE_SIM_SEED=1234 cargo test -p faultline-nodes --release --test sim -- replay --nocapture
//! (add FAULTLINE_SIM_TRACE=1 for the event trace, FAULTLINE_SIM_BUG=stale-read for a planted bug,
//! FAULTLINE_SIM_MEMBERSHIP=1 for a seed of the membership sweep, FAULTLINE_SIM_MEMBERSHIP_BUG=1
//! for the planted skip-the-joint-phase bug).
//! A longer sweep: FAULTLINE_SIM_SEEDS=100000 [FAULTLINE_SIM_SEED_START=N] cargo test -p faultline-nodes --release --test sim -- raft_passes_seeds --nocapture

mod sim_common;

use faultline_nodes::bug::Bug;
use faultline_nodes::raft::RaftNode;
use faultline_nodes::sim::{self, SimEventKind, SimOptions, SimOutcome};
use sim_common::{env_u64, Failure};
use std::panic::{catch_unwind, AssertUnwindSafe};

const TEST: &str = "sim";

fn check_seed(opts: &SimOptions) -> Result<SimOutcome, Failure> {
    sim_common::check_seed::<RaftNode>(opts)
}

fn check_seed_verdict(opts: &SimOptions) -> Result<(SimOutcome, bool), Failure> {
    sim_common::check_seed_verdict::<RaftNode>(opts)
}

fn fail_loudly(f: &Failure, bugs: &[Bug]) -> ! {
    sim_common::fail_loudly(TEST, f, bugs)
}

#[test]
fn raft_passes_seeds() {
    let seeds = env_u64("FAULTLINE_SIM_SEEDS", 500);
    let start = env_u64("FAULTLINE_SIM_SEED_START", 0);
    let (mut ok_ops, mut elections, mut crashes, mut snapshots, mut transfers) =
        (0usize, 0u64, 0u64, 0u64, 0u64);
    let mut unknown = 0u64;
    for seed in start..start + seeds {
        let (outcome, decided) =
            check_seed_verdict(&SimOptions::new(seed)).unwrap_or_else(|f| fail_loudly(&f, &[]));
        if !decided {
            eprintln!("seed {seed}: linearizability unknown (the search gave up)");
            unknown += 1;
        }
        ok_ops += outcome.history.count(SimEventKind::Ok);
        elections += outcome.stats.terms_with_leader;
        crashes += outcome.stats.crashes;
        snapshots += outcome.stats.snapshots_sent;
        transfers += outcome.stats.transfers;
    }
    eprintln!("{seeds} seeds: {ok_ops} ok operations, {elections} terms with a leader, {crashes} crashes, {snapshots} snapshots sent, {transfers} transfers, {unknown} unknown verdicts");
    assert!(
        unknown * 20 <= seeds,
        "the linearizability search gave up on {unknown} of {seeds} seeds"
    );
    // The runs must have exercised something: faults, elections, work.
    assert!(
        ok_ops as u64 >= seeds * 20,
        "clients got too little done: {ok_ops} ok ops over {seeds} seeds"
    );
    assert!(elections >= seeds, "too few elections: {elections}");
    assert!(crashes >= seeds / 2, "too few crashes: {crashes}");
    assert!(snapshots > 0, "no follower ever needed a snapshot");
}

/// Membership changes under faults: each seed starts 3 to 5 voters out of a
/// pool of 2 more node ids, and the world asks the leader to add, remove or
/// swap voters (joint consensus) while crashes, partitions and loss go on.
#[test]
fn raft_membership_passes_seeds() {
    let seeds = env_u64("FAULTLINE_SIM_SEEDS", 500);
    let start = env_u64("FAULTLINE_SIM_SEED_START", 0);
    let (mut ok_ops, mut unknown) = (0usize, 0u64);
    let mut total = sim::SimStats::default();
    for seed in start..start + seeds {
        let mut opts = SimOptions::with_membership(seed);
        // Raft re-adds wiped node ids safely (a joining core starts at the
        // adding leader's term), as the real runtime does: cover it.
        opts.reuse_ids = true;
        let (outcome, decided) = check_seed_verdict(&opts).unwrap_or_else(|f| {
            panic!(
                "simulation seed {} (membership) failed: {}\nreplay: FAULTLINE_SIM_MEMBERSHIP=1 {}",
                f.seed,
                f.what,
                sim_common::replay_command(TEST, f.seed, &[])
            )
        });
        if !decided {
            eprintln!("seed {seed}: linearizability unknown (the search gave up)");
            unknown += 1;
        }
        ok_ops += outcome.history.count(SimEventKind::Ok);
        let s = &outcome.stats;
        total.membership_requested += s.membership_requested;
        total.membership_accepted += s.membership_accepted;
        total.membership_done += s.membership_done;
        total.joins += s.joins;
        total.joined_by_snapshot += s.joined_by_snapshot;
        total.joined_by_log += s.joined_by_log;
        total.removals += s.removals;
        total.leader_removals += s.leader_removals;
        total.rejoins += s.rejoins;
        total.crashes += s.crashes;
    }
    eprintln!(
        "{seeds} seeds with membership: {ok_ops} ok operations, {} changes requested, {} accepted, {} done, {} joins ({} caught up by snapshot, {} by log), {} removals ({} of a leader), {} wiped ids re-added, {} crashes, {unknown} unknown verdicts",
        total.membership_requested,
        total.membership_accepted,
        total.membership_done,
        total.joins,
        total.joined_by_snapshot,
        total.joined_by_log,
        total.removals,
        total.leader_removals,
        total.rejoins,
        total.crashes
    );
    assert!(
        unknown * 20 <= seeds,
        "the linearizability search gave up on {unknown} of {seeds} seeds"
    );
    assert!(
        ok_ops as u64 >= seeds * 20,
        "clients got too little done: {ok_ops} ok ops over {seeds} seeds"
    );
    assert!(
        total.membership_done >= seeds,
        "too few membership changes finished: {} over {seeds} seeds",
        total.membership_done
    );
    assert!(
        total.joined_by_snapshot > 0,
        "no new node ever caught up by snapshot"
    );
    assert!(total.joined_by_log > 0, "no new node ever caught up by log");
    assert!(total.removals > 0, "no node was ever removed");
    assert!(total.leader_removals > 0, "no leader was ever removed");
    assert!(total.rejoins > 0, "no wiped node id was ever re-added");
    assert!(
        total.crashes >= seeds / 2,
        "too few crashes: {}",
        total.crashes
    );
}

/// Replays one seed (FAULTLINE_SIM_SEED, default 1) and prints its trace
/// with FAULTLINE_SIM_TRACE=1.
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
    opts.membership_bug = std::env::var("FAULTLINE_SIM_MEMBERSHIP_BUG").is_ok_and(|v| v == "1");
    opts.membership |= opts.membership_bug;
    opts.reuse_ids = opts.membership;
    opts.bugs = bugs.clone();
    opts.trace = std::env::var("FAULTLINE_SIM_TRACE").is_ok_and(|v| v == "1");
    let outcome = catch_unwind(AssertUnwindSafe(|| sim::run::<RaftNode>(&opts)));
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
        let a = sim::run::<RaftNode>(&SimOptions::new(seed));
        let b = sim::run::<RaftNode>(&SimOptions::new(seed));
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "seed {seed} replays differently"
        );
        assert_eq!(a.history, b.history, "seed {seed}: histories differ");
        assert_eq!(a.stats, b.stats);
    }
    let a = sim::run::<RaftNode>(&SimOptions::new(1));
    let b = sim::run::<RaftNode>(&SimOptions::new(2));
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
        opts.clock_skew = false;
        let outcome = check_seed(&opts).unwrap_or_else(|f| fail_loudly(&f, &[]));
        let h = &outcome.history;
        assert_eq!(
            h.count(SimEventKind::Info),
            0,
            "seed {seed}: no operation may time out without faults"
        );
        // Once the first leader is up, every operation succeeds (or its cas mismatches).
        let first_ok = h
            .events
            .iter()
            .position(|e| e.kind == SimEventKind::Ok)
            .expect("some operation succeeds");
        let bad_fails: Vec<_> = h.events[first_ok..]
            .iter()
            .filter(|e| e.kind == SimEventKind::Fail && e.error.as_deref() != Some("cas-mismatch"))
            .collect();
        assert!(
            bad_fails.is_empty(),
            "seed {seed}: only cas mismatches may fail without faults: {bad_fails:?}"
        );
        assert!(
            h.count(SimEventKind::Ok) > 50,
            "seed {seed}: a quiet cluster gets work done"
        );
    }
}

#[test]
fn lease_reads_hold_without_clock_drift() {
    for seed in 0..100 {
        let mut opts = SimOptions::new(seed);
        opts.lease_reads = true;
        opts.clock_skew = false;
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

/// Proof of power for the membership sweep: cores that skip the joint phase
/// (C_old straight to C_new) must be caught. A swap of voters then lets a
/// majority of C_old and a majority of C_new decide apart.
#[test]
fn skipping_the_joint_phase_is_caught() {
    let max_seeds = 300;
    let found = (0..max_seeds).find_map(|seed| {
        let mut opts = SimOptions::with_membership(seed);
        opts.reuse_ids = true;
        opts.membership_bug = true;
        check_seed(&opts).err()
    });
    let f = found
        .unwrap_or_else(|| panic!("skipping the joint phase went unnoticed for {max_seeds} seeds"));
    eprintln!(
        "skipping the joint phase caught at seed {}: {} (replay: FAULTLINE_SIM_MEMBERSHIP_BUG=1 FAULTLINE_SIM_SEED={} FAULTLINE_SIM_TRACE=1 cargo test -p faultline-nodes --release --test sim -- replay --nocapture)",
        f.seed, f.what, f.seed
    );
}

#[test]
fn no_fsync_bug_is_caught() {
    let found = find_bug(Bug::NoFsync, 200);
    let (seed, what) = found.expect("no-fsync went unnoticed for 200 seeds");
    eprintln!("no-fsync caught at seed {seed}: {what}");
}

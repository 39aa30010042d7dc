//! Deterministic simulation of the Raft core (nodes/src/sim): many seeds of
//! faults, each checked step by step for Raft's safety properties and at the
//! end for linearizability (faultline-checker, `cas-register` per key) and, on
//! the seeds with lock clients, for the `fencing` and `mutual-exclusion` checkers.
//!
//! A failure prints its seed and the command that replays it, e.g.:
//!     FAULTLINE_SIM_SEED=1234 FAULTLINE_SIM_TRACE=1 cargo test -p faultline-nodes --release --test sim -- replay --nocapture
//! (the command carries the seed's options: FAULTLINE_SIM_BUG=stale-read for a planted bug,
//! FAULTLINE_SIM_MEMBERSHIP=1 FAULTLINE_SIM_REUSE_IDS=1 for a seed of the membership sweep,
//! FAULTLINE_SIM_MEMBERSHIP_BUG=1 for the planted skip-the-joint-phase bug,
//! FAULTLINE_SIM_EARLY_FAIL_BUG=1 for issue 21 finding 1's fix reverted).
//! A longer sweep: FAULTLINE_SIM_SEEDS=100000 [FAULTLINE_SIM_SEED_START=N] cargo test -p faultline-nodes --release --test sim -- raft_passes_seeds --nocapture
mod sim_common;

use faultline_nodes::bug::Bug;
use faultline_nodes::raft::RaftNode;
use faultline_nodes::sim::check::LINEARIZABILITY;
use faultline_nodes::sim::failed_writes::FAILED_WRITE_NEVER_COMMITS;
use faultline_nodes::sim::watchdog::LIVENESS;
use faultline_nodes::sim::{self, SimOptions, SimOutcome, SimStats};
use sim_common::storm::StormCore;
use sim_common::sweep::{sweep, OnFailure};
use sim_common::{Failure, Swept};

impl Swept for RaftNode {
    const TEST: &'static str = "sim";
}

fn check_seed(opts: &SimOptions) -> Result<SimOutcome, Failure> {
    sim_common::check_seed::<RaftNode>(opts)
}

#[test]
fn raft_passes_seeds() {
    // With the leader delivery fault drawn from each seed (a third of them).
    let t = sweep::<RaftNode>("raft_passes_seeds", 0, OnFailure::Stop, |seed| SimOptions {
        delivery_fault: None,
        ..SimOptions::new(seed)
    });
    let (seeds, s) = (t.seeds, &t.stats);
    eprintln!(
        "{seeds} seeds: {} ok operations, {} terms with a leader, {} crashes, {} snapshot chunks sent, {} snapshots installed from several chunks, {} transfers, {} ReadIndex rounds, {} unknown verdicts",
        t.ok_ops, s.terms_with_leader, s.crashes, s.snapshots_sent, s.multi_chunk_installs, s.transfers, s.read_rounds, t.unknown
    );
    t.assert_mostly_decided();
    // The runs must have exercised something: faults, elections, work.
    t.assert_exercised();
}

/// Membership changes under faults: each seed starts 3 to 5 voters out of a
/// pool of 2 more node ids, and the world asks the leader to add, remove or
/// swap voters (joint consensus) while crashes, partitions and loss go on.
/// Raft re-adds wiped node ids safely (a joining core starts at the adding
/// leader's term), as the real runtime does: every seed covers it.
#[test]
fn raft_membership_passes_seeds() {
    let t = sweep::<RaftNode>("raft_membership_passes_seeds", 0, OnFailure::Stop, |seed| {
        SimOptions {
            reuse_ids: true,
            delivery_fault: None,
            ..SimOptions::with_membership(seed)
        }
    });
    let (seeds, s) = (t.seeds, &t.stats);
    eprintln!(
        "{seeds} seeds with membership: {} ok operations, {} changes requested, {} accepted, {} done, {} joins ({} caught up by snapshot, {} by log), {} departures, {} removals wiped after their grace ({} of a leader), {} wiped ids re-added, {} crashes, {} snapshots installed from several chunks, {} unknown verdicts",
        t.ok_ops,
        s.membership_requested,
        s.membership_accepted,
        s.membership_done,
        s.joins,
        s.joined_by_snapshot,
        s.joined_by_log,
        s.departures,
        s.removals,
        s.leader_removals,
        s.rejoins,
        s.crashes,
        s.multi_chunk_installs,
        t.unknown
    );
    t.assert_mostly_decided();
    t.assert_ops_per_seed(20);
    assert!(
        s.membership_done >= seeds,
        "too few membership changes finished: {} over {seeds} seeds",
        s.membership_done
    );
    assert!(
        s.joined_by_snapshot > 0,
        "no new node ever caught up by snapshot"
    );
    assert!(s.joined_by_log > 0, "no new node ever caught up by log");
    assert!(s.removals > 0, "no node was ever removed");
    assert!(s.leader_removals > 0, "no leader was ever removed");
    assert!(s.rejoins > 0, "no wiped node id was ever re-added");
    if seeds >= 100 {
        assert!(
            s.multi_chunk_installs > 0,
            "no snapshot was ever installed from more than one chunk"
        );
    }
    assert!(s.crashes >= seeds / 2, "too few crashes: {}", s.crashes);
}

/// The first seed of the membership sweep (re-used ids) from `start` on
/// whose run re-adds at least `rejoins` wiped ids; every seed on the way
/// must pass. A regression seed's trace changes whenever message timing
/// does (issue 12 batched the appends and sent the leader's early), so the
/// scenario is looked for from the seed that first showed it.
fn first_seed_rejoining(start: u64, rejoins: u64) -> (u64, SimOutcome) {
    const MAX_SEEDS: u64 = 400;
    for seed in start..start + MAX_SEEDS {
        let opts = SimOptions {
            reuse_ids: true,
            // Both regression seeds were found when a snapshot travelled
            // in one message: their scenarios need snapshots in one chunk.
            snapshot_chunk_bytes: Some(1 << 20),
            ..SimOptions::with_membership(seed)
        };
        let outcome = check_seed(&opts).unwrap_or_else(|f| f.fail());
        if outcome.stats.rejoins >= rejoins {
            return (seed, outcome);
        }
    }
    panic!(
        "no seed in {start}..{} re-adds {rejoins} wiped ids",
        start + MAX_SEEDS
    );
}

/// Seed 1015515 of the membership sweep never ended (issue 20): a wiped
/// node id's previous incarnation acknowledged entries that reached the
/// leader after the id was added back, and the leader probed the new, empty
/// node at that index forever (see the core's regression test
/// a_stale_ack_from_a_wiped_incarnation_of_a_reused_node_id_is_ignored).
#[test]
fn seed_1015515_a_stale_ack_from_a_wiped_node_id_no_longer_storms() {
    let (seed, outcome) = first_seed_rejoining(1015515, 1);
    eprintln!("seed {seed} re-adds a wiped id: {:?}", outcome.stats);
}

/// Seed 1055330 of the membership sweep elected a leader without a committed
/// configuration: two wiped, re-added node ids caught up only to an old
/// snapshot and entries whose configuration named their old selves, and
/// counted each other in it (see the core's regression test
/// a_rejoined_node_id_below_its_join_floor_neither_campaigns_nor_votes_in_its_old_configuration).
#[test]
fn seed_1055330_rejoined_node_ids_no_longer_elect_a_leader_in_a_stale_configuration() {
    let (seed, outcome) = first_seed_rejoining(1055330, 2);
    eprintln!("seed {seed} re-adds two wiped ids: {:?}", outcome.stats);
}

/// Replays one seed (FAULTLINE_SIM_SEED, default 1, with the options the
/// failing sweep printed) and prints its trace with FAULTLINE_SIM_TRACE=1.
#[test]
fn replay() {
    sim_common::replay::<RaftNode>();
}

/// The watchdog's proof of power: a core that answers every message with two
/// to every peer would run (and allocate) without end; the seed must fail as
/// a liveness failure that names what grew, with its replay command.
#[test]
fn a_planted_message_storm_fails_the_seed_as_a_liveness_failure() {
    let f = sim_common::check_seed::<StormCore<false>>(&SimOptions::new(7))
        .expect_err("a storm never passes");
    let report = f.report();
    eprintln!("{report}");
    assert!(f.what.starts_with(LIVENESS), "{report}");
    assert!(
        f.what.contains("heartbeat ×"),
        "names the kind that grew: {report}"
    );
    assert!(
        report.contains(
            "replay: FAULTLINE_SIM_SEED=7 FAULTLINE_SIM_TRACE=1 cargo test -p faultline-nodes --release --test sim -- planted_storm_replay"
        ),
        "{report}"
    );
}

/// As above, for a core whose `has_ready` never turns false: the world would
/// spin inside one step.
#[test]
fn a_planted_endless_ready_fails_the_seed_as_a_liveness_failure() {
    let f = sim_common::check_seed::<StormCore<true>>(&SimOptions::new(7))
        .expect_err("a spinning core never passes");
    assert!(f.what.starts_with(LIVENESS), "{}", f.report());
    assert!(f.what.contains("Readys after one input"), "{}", f.report());
    assert!(f.report().contains("planted_spin_replay"), "{}", f.report());
}

/// The replay the storm test prints (ignored: it fails by design).
#[test]
#[ignore]
fn planted_storm_replay() {
    sim_common::replay::<StormCore<false>>();
}

/// The replay the endless-Ready test prints (ignored: it fails by design).
#[test]
#[ignore]
fn planted_spin_replay() {
    sim_common::replay::<StormCore<true>>();
}

#[test]
fn a_quiet_cluster_completes_every_operation() {
    sim_common::a_quiet_cluster_completes_every_operation::<RaftNode>(|seed| SimOptions {
        faults: false,
        clock_skew: false,
        ..SimOptions::new(seed)
    });
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
    eprintln!("skipping the joint phase caught: {}", f.report());
    assert!(
        f.replay.contains("FAULTLINE_SIM_MEMBERSHIP_BUG=1"),
        "the replay command plants the bug: {}",
        f.replay
    );
}

#[test]
fn no_fsync_bug_is_caught() {
    sim_common::bug_is_caught::<RaftNode>(Bug::NoFsync, 200);
}

/// Issue 21, finding 1, in the simulator: a leader that proposes at an
/// index where it still holds an older term's pending write keeps both
/// pending (only the commit there decides); with the planted early-fail bug
/// (the fix reverted) the older write is answered definite fail at once.
/// Over the same seeds: the scenario happens, the bug fails writes early,
/// and without it none is; the world's failed-write check trips on exactly
/// the seeds where such a write committed. (That a client can see it, a
/// linearizability failure, is
/// finding_1_reverted_is_caught_as_a_linearizability_failure.)
#[test]
fn a_write_at_a_reused_index_is_failed_early_only_with_the_planted_bug() {
    let seeds = 0..300;
    let (mut with_bug, mut without) = (SimStats::default(), SimStats::default());
    let mut tripped = 0;
    for seed in seeds.clone() {
        let opts = sim_common::reused_index_options(seed);
        without.add(&check_seed(&opts).unwrap_or_else(|f| f.fail()).stats);
        let buggy = SimOptions {
            early_fail_bug: true,
            ..opts
        };
        let outcome = sim::run::<RaftNode>(&buggy);
        assert!(
            sim_common::only_failed_write_violation(&outcome),
            "seed {seed}: {:?}",
            outcome.violation
        );
        assert_eq!(
            outcome.violation.is_some(),
            outcome.stats.failed_early_committed > 0,
            "seed {seed}: the failed-write check trips iff a write failed early committed"
        );
        tripped += u64::from(outcome.violation.is_some());
        with_bug.add(&outcome.stats);
    }
    eprintln!(
        "seeds {seeds:?}: without the bug {} writes at a reused index, {} failed early; with it {} and {} ({} of those committed)",
        without.writes_at_reused_index,
        without.writes_failed_early,
        with_bug.writes_at_reused_index,
        with_bug.writes_failed_early,
        with_bug.failed_early_committed
    );
    eprintln!("the failed-write check tripped on {tripped} seeds");
    assert!(
        without.writes_at_reused_index > 0,
        "the scenario never happened in {seeds:?}"
    );
    assert_eq!(
        without.writes_failed_early, 0,
        "without the bug no write is failed before the commit at its index"
    );
    assert!(
        with_bug.writes_failed_early > 0,
        "the planted bug failed no write early in {seeds:?}"
    );
}

/// Issue 21, finding 1, caught by the history checker: with the fix
/// reverted (the planted early-fail bug), a seed of
/// [`sim_common::finding1_visible_options`] (fresh register values, the
/// leader delivery fault) records a write as `fail` that a later read
/// sees: not linearizable. The world's failed-write check trips on the same
/// seed, and with the fix every seed up to it passes every check.
#[test]
fn finding_1_reverted_is_caught_as_a_linearizability_failure() {
    const MAX_SEEDS: u64 = 4_000;
    let found = (0..MAX_SEEDS).find_map(|seed| {
        let buggy = SimOptions {
            early_fail_bug: true,
            ..sim_common::finding1_visible_options(seed)
        };
        let v = sim_common::verdicts::<RaftNode>(&buggy);
        assert!(
            sim_common::only_failed_write_violation(&v.outcome),
            "seed {seed}: {:?}\nreplay: {}",
            v.outcome.violation,
            v.replay
        );
        v.linearizability.clone().err().map(|what| (seed, what, v))
    });
    let (seed, what, v) = found.unwrap_or_else(|| {
        panic!("finding 1 reverted: no history of seeds 0..{MAX_SEEDS} fails linearizability")
    });
    eprintln!(
        "finding 1 reverted: first seed not linearizable: {seed}: {what}\nreplay: {}",
        v.replay
    );
    assert!(
        what.starts_with(LINEARIZABILITY),
        "seed {seed}: the checker must decide, not fail: {what}"
    );
    assert!(
        v.replay.contains("FAULTLINE_SIM_EARLY_FAIL_BUG=1")
            && v.replay.contains("FAULTLINE_SIM_FRESH_VALUES=1"),
        "the replay command plants the bug with fresh values: {}",
        v.replay
    );
    let world = v.outcome.violation.as_ref().unwrap_or_else(|| {
        panic!("seed {seed}: a fail write took effect, yet the failed-write check did not trip")
    });
    assert_eq!(world.property, FAILED_WRITE_NEVER_COMMITS, "seed {seed}");
    eprintln!("the world's check on seed {seed}: {world}");
    for clean in 0..=seed {
        check_seed(&sim_common::finding1_visible_options(clean)).unwrap_or_else(|f| f.fail());
    }
    eprintln!("with the fix, seeds 0..={seed} pass");
}

/// Exploration (not in CI): the planted early-fail bug over
/// FAULTLINE_SIM_SEEDS seeds ([`sim_common::hunt_early_fail`]).
#[test]
#[ignore]
fn hunt_early_fail() {
    sim_common::hunt_early_fail::<RaftNode>();
}

sim_common::tests_for_every_core!(RaftNode);

//! A seed sweep: many seeds of one core under one kind of options, each
//! checked, with a progress line now and then (seeds done, seeds per second,
//! the slowest seed so far) and, at the end, how close the healthy seeds
//! came to the watchdog's bounds.

use std::time::{Duration, Instant};

use faultline_nodes::sim::{SimEventKind, SimLimits, SimOptions, SimStats};

use super::{check_seed_verdict, env_u64, Swept};

/// How often a sweep prints its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What a sweep does with a failing seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Panic at once with its replay command.
    Stop,
    /// Print it with its replay command, go on, and panic at the end if
    /// any seed failed (a triage run lists every failing seed).
    ListAndGoOn,
}

/// What a sweep adds up over its seeds.
#[derive(Debug, Default)]
pub struct Totals {
    pub seeds: u64,
    pub ok_ops: u64,
    /// Acquires granted to the lock clients.
    pub granted_acquires: u64,
    /// Seeds whose linearizability search gave up (verdict unknown).
    pub unknown: u64,
    /// Seeds in which at least one membership change finished.
    pub seeds_with_change: u64,
    /// Failing seeds (only with [`OnFailure::ListAndGoOn`]).
    pub failed: u64,
    /// Every seed's counters added up (peaks: the largest).
    pub stats: SimStats,
}

impl Totals {
    /// The linearizability search decided at least 19 seeds in 20.
    pub fn assert_mostly_decided(&self) {
        assert!(
            self.unknown * 20 <= self.seeds,
            "the linearizability search gave up on {} of {} seeds",
            self.unknown,
            self.seeds
        );
    }

    /// Clients completed at least `per_seed` ok operations a seed.
    pub fn assert_ops_per_seed(&self, per_seed: u64) {
        assert!(
            self.ok_ops >= self.seeds * per_seed,
            "clients got too little done: {} ok ops over {} seeds",
            self.ok_ops,
            self.seeds
        );
    }

    /// A sweep without membership changes exercised something: work (20
    /// ok operations a seed), leases for the lock clients (a share of the
    /// seeds), elections, crashes, snapshots sent, and over 100 seeds or
    /// more a snapshot installed from several chunks.
    pub fn assert_exercised(&self) {
        let (seeds, s) = (self.seeds, &self.stats);
        self.assert_ops_per_seed(20);
        assert!(
            self.granted_acquires >= seeds,
            "the lock clients got too few leases: {} over {seeds} seeds",
            self.granted_acquires
        );
        assert!(
            s.terms_with_leader >= seeds,
            "too few elections: {}",
            s.terms_with_leader
        );
        assert!(s.crashes >= seeds / 2, "too few crashes: {}", s.crashes);
        assert!(s.snapshots_sent > 0, "no follower ever needed a snapshot");
        if seeds >= 100 {
            assert!(
                s.multi_chunk_installs > 0,
                "no snapshot was ever installed from more than one chunk"
            );
        }
    }
}

/// The smallest and the largest value one quantity took over the seeds.
#[derive(Clone, Copy, Debug)]
struct Spread {
    least: (u64, u64),
    most: (u64, u64),
}

impl Spread {
    fn new(seed: u64, value: u64) -> Spread {
        Spread {
            least: (value, seed),
            most: (value, seed),
        }
    }

    fn add(&mut self, seed: u64, value: u64) {
        if value < self.least.0 {
            self.least = (value, seed);
        }
        if value > self.most.0 {
            self.most = (value, seed);
        }
    }

    fn line(&self, what: &str, bound: u64) -> String {
        format!(
            "{what}: least {} (seed {}), most {} (seed {}), bound {bound} ({:.1}% of it at most)",
            self.least.0,
            self.least.1,
            self.most.0,
            self.most.1,
            self.most.0 as f64 * 100.0 / bound as f64
        )
    }
}

/// The watchdog's quantities over a sweep.
#[derive(Clone, Copy, Debug)]
struct Headroom {
    events: Spread,
    in_flight: Spread,
    rate: Spread,
    readys: Spread,
}

impl Headroom {
    fn new(seed: u64, s: &SimStats) -> Headroom {
        Headroom {
            events: Spread::new(seed, s.events),
            in_flight: Spread::new(seed, s.peak_messages_in_flight),
            rate: Spread::new(seed, s.peak_events_per_virtual_ms),
            readys: Spread::new(seed, s.peak_readys_per_step),
        }
    }

    fn add(&mut self, seed: u64, s: &SimStats) {
        self.events.add(seed, s.events);
        self.in_flight.add(seed, s.peak_messages_in_flight);
        self.rate.add(seed, s.peak_events_per_virtual_ms);
        self.readys.add(seed, s.peak_readys_per_step);
    }

    fn lines(&self, limits: &SimLimits) -> Vec<String> {
        vec![
            self.events.line("events per run", limits.events),
            self.in_flight
                .line("messages in flight at once", limits.messages_in_flight),
            self.rate.line(
                "events per virtual ms (busiest 100 ms)",
                limits.events_per_virtual_ms,
            ),
            self.readys
                .line("Readys after one input", limits.readys_per_step),
        ]
    }
}

/// Prints where a long sweep is.
struct Progress {
    name: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    last_print: Instant,
    slowest: Option<(Duration, u64)>,
    headroom: Option<Headroom>,
}

impl Progress {
    fn new(name: &'static str, total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            name,
            total,
            done: 0,
            started: now,
            last_print: now,
            slowest: None,
            headroom: None,
        }
    }

    fn seed_done(&mut self, seed: u64, took: Duration, stats: &SimStats) {
        self.done += 1;
        if self.slowest.is_none_or(|(t, _)| took > t) {
            self.slowest = Some((took, seed));
        }
        match &mut self.headroom {
            Some(h) => h.add(seed, stats),
            None => self.headroom = Some(Headroom::new(seed, stats)),
        }
        if self.last_print.elapsed() >= PROGRESS_EVERY {
            self.last_print = Instant::now();
            eprintln!("{}", self.line());
        }
    }

    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let slowest = self
            .slowest
            .map(|(t, seed)| format!("seed {seed} ({:.2} s)", t.as_secs_f64()))
            .unwrap_or_else(|| "none yet".into());
        format!(
            "{}: {}/{} seeds in {secs:.0} s, {:.1} seeds/s, slowest {slowest}",
            self.name,
            self.done,
            self.total,
            self.done as f64 / secs.max(1e-9)
        )
    }

    fn finish(&self, limits: &SimLimits) {
        eprintln!("{}", self.line());
        if let Some(h) = &self.headroom {
            for line in h.lines(limits) {
                eprintln!("{}: watchdog headroom: {line}", self.name);
            }
        }
    }
}

/// Runs FAULTLINE_SIM_SEEDS seeds (default 500) from
/// FAULTLINE_SIM_SEED_START (default `default_start`) of core `C` with the
/// options `options(seed)`; a failing seed is reported with its replay
/// command as `on_failure` says.
pub fn sweep<C: Swept>(
    name: &'static str,
    default_start: u64,
    on_failure: OnFailure,
    options: impl Fn(u64) -> SimOptions,
) -> Totals {
    let seeds = env_u64("FAULTLINE_SIM_SEEDS", 500);
    let start = env_u64("FAULTLINE_SIM_SEED_START", default_start);
    let mut progress = Progress::new(name, seeds);
    let mut totals = Totals::default();
    let mut limits = SimLimits::default();
    let mut with_delivery_fault = false;
    for seed in start..start + seeds {
        let mut opts = options(seed);
        // FAULTLINE_SIM_BUG plants bugs in the sweep (a proof of power).
        opts.bugs.extend(super::bugs_from_env());
        with_delivery_fault |= opts.delivery_fault.is_none();
        limits = opts.limits;
        let began = Instant::now();
        let (outcome, decided) = match check_seed_verdict::<C>(&opts) {
            Ok(checked) => checked,
            Err(f) if on_failure == OnFailure::ListAndGoOn => {
                eprintln!("{name}: {}", f.report());
                totals.failed += 1;
                continue;
            }
            Err(f) => f.fail(),
        };
        progress.seed_done(seed, began.elapsed(), &outcome.stats);
        if !decided {
            eprintln!("{name}: seed {seed}: linearizability unknown (the search gave up)");
            totals.unknown += 1;
        }
        totals.seeds += 1;
        totals.ok_ops += outcome.history.count(SimEventKind::Ok) as u64;
        totals.granted_acquires += outcome
            .history
            .events
            .iter()
            .filter(|e| e.kind == SimEventKind::Ok && e.f == "acquire")
            .count() as u64;
        totals.seeds_with_change += u64::from(outcome.stats.membership_done > 0);
        totals.stats.add(&outcome.stats);
    }
    progress.finish(&limits);
    let d = &totals.stats.delivery;
    eprintln!(
        "{name}: leader delivery fault: {} windows ({} reaching no peer), {} messages withheld, {} leaders crashed at a window's end",
        d.windows, d.windows_reaching_none, d.messages_withheld, d.crashes
    );
    if totals.seeds >= 100 && with_delivery_fault {
        // A third of the seeds draw the fault (sim/delivery_fault.rs).
        assert!(
            d.windows > 0 && d.messages_withheld > 0,
            "{name}: the leader delivery fault never acted in {} seeds",
            totals.seeds
        );
    }
    assert_eq!(
        totals.failed, 0,
        "{name}: {} of {seeds} seeds failed (listed above)",
        totals.failed
    );
    totals
}

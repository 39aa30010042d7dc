//! `--baseline`: two faultline binaries benchmarked side by side on one
//! machine, so that a change's cost can be told from the machine's drift.
//!
//! On a shared 2-core machine ops/s moves by up to 40% over minutes, more
//! than most regressions. So each round runs four clusters in a row,
//! baseline-this-this-baseline (and the next round the reverse), and
//! compares the round's two runs of each binary: a drift that is linear
//! over the round falls on both sides alike. The rounds' ratios are then
//! summed up by their median and by their mean with a 95% bootstrap
//! confidence interval, for throughput and for the servers' CPU per op.
//! The same client (this program) drives both binaries.

use std::path::Path;

use rand::{Rng, SeedableRng};

use super::{bench_cluster, Args, Cluster, PhaseRow, Transport};

/// Which binary a run starts.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Baseline,
    This,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Baseline => "base",
            Side::This => "this",
        }
    }
}

/// One phase's sums over a round's two runs of each side.
#[derive(Clone, Copy, Default)]
struct Sums {
    ops_per_s: f64,
    server_us: Option<f64>,
    client_us: Option<f64>,
    runs: u32,
}

impl Sums {
    fn add(&mut self, row: &PhaseRow) {
        let plus = |sum: Option<f64>, value: Option<f64>| match self.runs {
            0 => value,
            _ => sum.zip(value).map(|(s, v)| s + v),
        };
        self.server_us = plus(self.server_us, row.server_us);
        self.client_us = plus(self.client_us, row.client_us);
        self.ops_per_s += row.ops_per_s;
        self.runs += 1;
    }
}

/// One round: the sums of each phase, baseline and this.
#[derive(Default)]
struct Round {
    /// (phase, baseline, this)
    phases: Vec<(&'static str, Sums, Sums)>,
}

impl Round {
    fn add(&mut self, side: Side, rows: &[PhaseRow]) {
        for row in rows {
            let at = match self.phases.iter().position(|p| p.0 == row.phase) {
                Some(at) => at,
                None => {
                    self.phases
                        .push((row.phase, Sums::default(), Sums::default()));
                    self.phases.len() - 1
                }
            };
            let (_, baseline, this) = &mut self.phases[at];
            match side {
                Side::Baseline => baseline.add(row),
                Side::This => this.add(row),
            }
        }
    }
}

/// Every configured consensus (and transport), `args.rounds` rounds each,
/// then a summary line per phase.
pub(crate) fn compare_binaries(
    rt: &tokio::runtime::Runtime,
    args: &Args,
    baseline: &Path,
    this: &Path,
    runs: &[(String, Option<&str>, Transport)],
) -> anyhow::Result<()> {
    println!(
        "baseline ({}): {}",
        Side::Baseline.name(),
        baseline.display()
    );
    println!("this ({}): {}", Side::This.name(), this.display());
    let mut summaries = Vec::new();
    for (label, consensus, transport) in runs {
        let consensus = consensus.expect("--baseline runs faultline clusters only");
        let binary = |side| match side {
            Side::Baseline => baseline.to_path_buf(),
            Side::This => this.to_path_buf(),
        };
        let mut rounds = Vec::new();
        for round in 0..args.rounds {
            let mut sums = Round::default();
            for side in order(round) {
                let cluster = Cluster::Faultline {
                    binary: binary(side),
                    consensus,
                    transport: *transport,
                };
                let row_label = format!("{label}-{}", side.name());
                let rows = bench_cluster(rt, args, &row_label, &cluster)?;
                sums.add(side, &rows);
            }
            rounds.push(sums);
        }
        for phase in ["write", "mixed"] {
            summaries.push(summarize(label, phase, &rounds));
        }
    }
    println!();
    for line in summaries {
        println!("{line}");
    }
    Ok(())
}

/// Round `round`'s four runs: ABBA, then BAAB.
fn order(round: u32) -> [Side; 4] {
    use Side::{Baseline, This};
    match round % 2 {
        0 => [Baseline, This, This, Baseline],
        _ => [This, Baseline, Baseline, This],
    }
}

/// this/baseline for one phase over the rounds.
fn summarize(label: &str, phase: &str, rounds: &[Round]) -> String {
    let pairs: Vec<(Sums, Sums)> = rounds
        .iter()
        .filter_map(|r| r.phases.iter().find(|p| p.0 == phase))
        .map(|p| (p.1, p.2))
        .collect();
    let ops: Vec<f64> = pairs
        .iter()
        .map(|(b, t)| t.ops_per_s / b.ops_per_s.max(f64::MIN_POSITIVE))
        .collect();
    let ratio_of = |field: fn(&Sums) -> Option<f64>| -> Option<Vec<f64>> {
        pairs
            .iter()
            .map(|(b, t)| {
                field(t)
                    .zip(field(b))
                    .map(|(t, b)| t / b.max(f64::MIN_POSITIVE))
            })
            .collect()
    };
    let per_run = |side: fn(&(Sums, Sums)) -> &Sums| -> Vec<f64> {
        pairs
            .iter()
            .map(|p| side(p).ops_per_s / f64::from(side(p).runs.max(1)))
            .collect()
    };
    let mut line = format!(
        "{label} {phase}: this/baseline over {} rounds of 4 runs: ops/s {}",
        pairs.len(),
        Spread::of(&ops)
    );
    match ratio_of(|s| s.server_us) {
        Some(server) => line += &format!("; server CPU per op {}", Spread::of(&server)),
        None => line += "; server CPU per op not measured",
    }
    if let Some(client) = ratio_of(|s| s.client_us) {
        line += &format!("; client CPU per op {}", Spread::of(&client));
    }
    line += &format!(
        " (median ops/s of a run: baseline {:.0}, this {:.0})",
        median(&per_run(|p| &p.0)),
        median(&per_run(|p| &p.1))
    );
    line
}

/// The median, mean and a 95% bootstrap confidence interval of the mean
/// of per-round ratios.
struct Spread {
    median: f64,
    mean: f64,
    low: f64,
    high: f64,
}

impl Spread {
    fn of(ratios: &[f64]) -> Spread {
        let (low, high) = bootstrap_interval(ratios);
        Spread {
            median: median(ratios),
            mean: mean(ratios),
            low,
            high,
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3}x median, {:.3}x mean (95% CI {:.3}-{:.3})",
            self.median, self.mean, self.low, self.high
        )
    }
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() % 2 {
        1 => sorted[mid],
        _ => (sorted[mid - 1] + sorted[mid]) / 2.0,
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The 2.5th and 97.5th percentiles of the means of 4,000 resamples (with
/// replacement, a fixed seed: the same rounds print the same interval).
fn bootstrap_interval(values: &[f64]) -> (f64, f64) {
    const RESAMPLES: usize = 4000;
    if values.len() < 2 {
        let only = values.first().copied().unwrap_or(f64::NAN);
        return (only, only);
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let sum: f64 = (0..values.len())
                .map(|_| values[rng.gen_range(0..values.len())])
                .sum();
            sum / values.len() as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    (means[RESAMPLES / 40], means[RESAMPLES - 1 - RESAMPLES / 40])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_abba_and_baab_so_each_side_runs_twice_a_round() {
        use Side::{Baseline, This};
        assert_eq!(order(0), [Baseline, This, This, Baseline]);
        assert_eq!(order(1), [This, Baseline, Baseline, This]);
        assert_eq!(order(2), order(0));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[1.0, 4.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[0.9, 1.2, 1.0]), 1.0);
    }

    #[test]
    fn the_interval_brackets_the_mean_and_narrows_with_agreeing_rounds() {
        let spread = [0.90, 1.10, 0.95, 1.05, 1.00, 0.97, 1.03, 0.99];
        let (low, high) = bootstrap_interval(&spread);
        let m = mean(&spread);
        assert!(low < m && m < high, "{low} < {m} < {high}");
        assert!(low > 0.9 && high < 1.1, "within the values: {low}..{high}");
        let agreeing = [1.0, 1.001, 0.999, 1.0, 1.0, 1.002, 0.998, 1.0];
        let (a, b) = bootstrap_interval(&agreeing);
        assert!(
            b - a < (high - low) / 10.0,
            "{a}..{b} against {low}..{high}"
        );
    }

    #[test]
    fn a_round_sums_each_side_and_phase_apart() {
        let row = |phase, ops_per_s, server_us| PhaseRow {
            label: "raft".into(),
            phase,
            ops_per_s,
            p99_ms: 1.0,
            client_us: Some(10.0),
            server_us,
        };
        let mut round = Round::default();
        round.add(Side::Baseline, &[row("write", 100.0, Some(40.0))]);
        round.add(Side::This, &[row("write", 90.0, Some(44.0))]);
        round.add(Side::This, &[row("write", 110.0, None)]);
        round.add(Side::Baseline, &[row("write", 100.0, Some(40.0))]);
        let (phase, baseline, this) = round.phases[0];
        assert_eq!(phase, "write");
        assert_eq!((baseline.ops_per_s, baseline.runs), (200.0, 2));
        assert_eq!(baseline.server_us, Some(80.0));
        assert_eq!((this.ops_per_s, this.runs), (200.0, 2));
        assert_eq!(this.server_us, None, "one run without CPU: not measured");
    }
}

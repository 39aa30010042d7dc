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

/// One round: each phase row of its four runs, with the side that ran it.
type Round = Vec<(Side, PhaseRow)>;

/// `field` summed over `side`'s runs of `phase` in `round`; None when a
/// run did not measure it.
fn sum(round: &Round, side: Side, phase: &str, field: fn(&PhaseRow) -> Option<f64>) -> Option<f64> {
    round
        .iter()
        .filter(|(s, row)| *s == side && row.phase == phase)
        .map(|(_, row)| field(row))
        .sum()
}

/// this/baseline of `field` over one round's runs of `phase`.
fn ratio(round: &Round, phase: &str, field: fn(&PhaseRow) -> Option<f64>) -> Option<f64> {
    let this = sum(round, Side::This, phase, field)?;
    let baseline = sum(round, Side::Baseline, phase, field)?;
    Some(this / baseline.max(f64::MIN_POSITIVE))
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
            let mut rows = Round::new();
            for side in order(round) {
                let cluster = Cluster::Faultline {
                    binary: binary(side),
                    consensus,
                    transport: *transport,
                };
                let row_label = format!("{label}-{}", side.name());
                let phases = bench_cluster(rt, args, &row_label, &cluster)?;
                rows.extend(phases.into_iter().map(|row| (side, row)));
            }
            rounds.push(rows);
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
    let ratios = |field: fn(&PhaseRow) -> Option<f64>| -> Option<Vec<f64>> {
        rounds
            .iter()
            .map(|round| ratio(round, phase, field))
            .collect()
    };
    let ops = ratios(|row| Some(row.ops_per_s)).expect("every run counts its ops");
    let mut line = format!(
        "{label} {phase}: this/baseline over {} rounds of 4 runs: ops/s {}",
        rounds.len(),
        Spread::of(&ops)
    );
    match ratios(|row| row.server_us) {
        Some(server) => line += &format!("; server CPU per op {}", Spread::of(&server)),
        None => line += "; server CPU per op not measured",
    }
    if let Some(client) = ratios(|row| row.client_us) {
        line += &format!("; client CPU per op {}", Spread::of(&client));
    }
    let run_median = |side: Side| -> f64 {
        let runs: Vec<f64> = rounds
            .iter()
            .flatten()
            .filter(|(s, row)| *s == side && row.phase == phase)
            .map(|(_, row)| row.ops_per_s)
            .collect();
        median(&runs)
    };
    line += &format!(
        " (median ops/s of a run: baseline {:.0}, this {:.0})",
        run_median(Side::Baseline),
        run_median(Side::This)
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
        let round: Round = vec![
            (Side::Baseline, row("write", 100.0, Some(40.0))),
            (Side::Baseline, row("mixed", 7.0, Some(1.0))),
            (Side::This, row("write", 90.0, Some(44.0))),
            (Side::This, row("write", 110.0, None)),
            (Side::Baseline, row("write", 100.0, Some(40.0))),
        ];
        let ops = |row: &PhaseRow| Some(row.ops_per_s);
        let server = |row: &PhaseRow| row.server_us;
        assert_eq!(sum(&round, Side::Baseline, "write", ops), Some(200.0));
        assert_eq!(sum(&round, Side::Baseline, "write", server), Some(80.0));
        assert_eq!(sum(&round, Side::This, "write", ops), Some(200.0));
        assert_eq!(ratio(&round, "write", ops), Some(1.0));
        assert_eq!(
            sum(&round, Side::This, "write", server),
            None,
            "one run without CPU: not measured"
        );
        assert_eq!(ratio(&round, "write", server), None);
    }
}

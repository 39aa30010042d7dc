//! `faultline ring`: the quality of a consistent-hash ring on a set of
//! keys — balance, keys moved when a node joins or leaves, lookup time, and
//! optionally bounded load — as a table or JSON. The measuring is
//! `faultline_nodes::ring::quality`; this file parses flags and prints.

use crate::exit::{bad_input, Exit};
use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use faultline_nodes::ring::quality::{
    measure, QualityOptions, QualityReport, Summary, TrialQuality,
};
use faultline_nodes::ring::DEFAULT_VNODES;
use std::io::Write;

const MAX_NODES: u32 = 100_000;
const MAX_KEYS: u64 = 50_000_000;
const MAX_TRIALS: u32 = 1_000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Nodes on the ring (ids 0..N, weight 1); at least 2.
    #[arg(long, default_value_t = 10)]
    nodes: u32,
    /// Virtual nodes per node.
    #[arg(long, default_value_t = DEFAULT_VNODES)]
    vnodes: u32,
    /// Keys to place: 0..K as little-endian u64s.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Rings to measure, with ring seeds SEED, SEED+1, …; trial t removes
    /// node t mod N.
    #[arg(long, default_value_t = 5)]
    trials: u32,
    /// Ring seed of the first trial.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also assign the keys with bounded load ("Consistent Hashing with
    /// Bounded Loads"), capping every node at (1+EPSILON) × the mean.
    #[arg(long, value_name = "EPSILON", allow_hyphen_values = true)]
    epsilon: Option<f64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    if !(2..=MAX_NODES).contains(&args.nodes) {
        return Err(bad_input(format!(
            "--nodes must be between 2 and {MAX_NODES}, got {}",
            args.nodes
        )));
    }
    if args.vnodes == 0
        || u64::from(args.vnodes) * u64::from(args.nodes + 1) > faultline_nodes::ring::MAX_POINTS
    {
        return Err(bad_input(format!(
            "--vnodes must be at least 1 and (--nodes + 1) × --vnodes at most {}, got {} × {}",
            faultline_nodes::ring::MAX_POINTS,
            args.nodes + 1,
            args.vnodes
        )));
    }
    if !(1..=MAX_KEYS).contains(&args.keys) {
        return Err(bad_input(format!(
            "--keys must be between 1 and {MAX_KEYS}, got {}",
            args.keys
        )));
    }
    if !(1..=MAX_TRIALS).contains(&args.trials) {
        return Err(bad_input(format!(
            "--trials must be between 1 and {MAX_TRIALS}, got {}",
            args.trials
        )));
    }
    if let Some(eps) = args.epsilon {
        if !(eps.is_finite() && eps > 0.0 && eps <= 100.0) {
            return Err(bad_input(format!(
                "--epsilon must be a number in (0, 100], got {eps}"
            )));
        }
    }
    let options = QualityOptions {
        nodes: args.nodes,
        vnodes: args.vnodes,
        keys: args.keys,
        seed: args.seed,
        trials: args.trials,
        epsilon: args.epsilon,
    };
    tracing::info!(?options, "measuring ring quality");
    // Every failure left is a flag combination the checks above missed.
    let report = measure(options).map_err(|e| bad_input(e.to_string()))?;
    let text = if args.json {
        serde_json::to_string_pretty(&report).context("serializing the ring report")? + "\n"
    } else {
        render_table(&report)
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A reader that stopped early (`| head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Exit::Valid),
        r => r
            .map(|()| Exit::Valid)
            .context("writing the ring report to stdout"),
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn ratio(x: f64) -> String {
    format!("{x:.3}")
}

fn ns(x: f64) -> String {
    format!("{x:.1} ns")
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "NO" }.to_string()
}

fn render_table(r: &QualityReport) -> String {
    let o = &r.options;
    let first: &TrialQuality = r.trials.first().expect("at least one trial");
    let last_seed = o.seed.wrapping_add(u64::from(o.trials) - 1);
    let heading = format!(
        "ring: {} nodes × {} vnodes = {} points; {} keys; {} trial(s), ring seeds {}..={}",
        o.nodes, o.vnodes, r.points, o.keys, o.trials, o.seed, last_seed
    );
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "metric".to_string(),
        format!("seed {}", first.seed),
        format!("mean of {}", o.trials),
        format!("worst of {}", o.trials),
        "ideal / goal".to_string(),
    ]);
    type Row<'a> = (
        &'a str,
        Box<dyn Fn(&Summary) -> String + 'a>,
        String,
        String,
    );
    let i = &r.ideal;
    let mut rows: Vec<Row> = vec![
        (
            "load std dev / mean (keys)",
            Box::new(|s| pct(s.load_stddev)),
            pct(first.load_stddev),
            format!(
                "1/√{} = {} (goal ≤ {})",
                o.vnodes,
                pct(i.load_stddev),
                pct(i.load_stddev_goal)
            ),
        ),
        (
            "std dev / mean (hash space)",
            Box::new(|s| pct(s.space_stddev)),
            pct(first.space_stddev),
            pct(i.load_stddev),
        ),
        (
            "max / mean",
            Box::new(|s| ratio(s.max_over_mean)),
            ratio(first.max_over_mean),
            ratio(1.0),
        ),
        (
            "min / mean",
            Box::new(|s| ratio(s.min_over_mean)),
            ratio(first.min_over_mean),
            ratio(1.0),
        ),
        (
            "keys moved, one node added",
            Box::new(|s| pct(s.moved_on_add)),
            pct(first.moved_on_add),
            format!("1/(n+1) = {}", pct(i.moved_on_add)),
        ),
        (
            "keys moved, one node removed",
            Box::new(|s| pct(s.moved_on_remove)),
            pct(first.moved_on_remove),
            format!("1/n = {}", pct(i.moved_on_remove)),
        ),
        (
            "lookup (hash + search), median",
            Box::new(|s| ns(s.lookup_ns)),
            ns(first.lookup_ns),
            format!("< {}", ns(i.lookup_ns_goal)),
        ),
        (
            "lookup, fastest 16k-key chunk",
            Box::new(|s| ns(s.lookup_ns_best)),
            ns(first.lookup_ns_best),
            format!("< {}", ns(i.lookup_ns_goal)),
        ),
    ];
    if let (Some(eps), Some(b)) = (o.epsilon, first.bounded.as_ref()) {
        rows.push((
            "bounded load: max / mean",
            Box::new(|s| s.bounded_max_over_mean.map_or_else(String::new, ratio)),
            ratio(b.max_over_mean),
            format!("≤ 1+ε = {}", ratio(1.0 + eps)),
        ));
        rows.push((
            "bounded load: keys moved, added",
            Box::new(|s| s.bounded_moved_on_add.map_or_else(String::new, pct)),
            pct(b.moved_on_add),
            pct(i.moved_on_add),
        ));
        rows.push((
            "bounded load: keys moved, removed",
            Box::new(|s| s.bounded_moved_on_remove.map_or_else(String::new, pct)),
            pct(b.moved_on_remove),
            pct(i.moved_on_remove),
        ));
    }
    for (name, of, first_value, ideal) in &rows {
        table.add_row(vec![
            Cell::new(name),
            Cell::new(first_value).set_alignment(CellAlignment::Right),
            Cell::new(of(&r.mean)).set_alignment(CellAlignment::Right),
            Cell::new(of(&r.worst)).set_alignment(CellAlignment::Right),
            Cell::new(ideal),
        ]);
    }
    table.add_row(vec![
        Cell::new("moved only keys that had to move"),
        Cell::new(yes(first.moves_minimal)).set_alignment(CellAlignment::Right),
        Cell::new(""),
        Cell::new(yes(r.moves_minimal)).set_alignment(CellAlignment::Right),
        Cell::new("yes"),
    ]);
    format!("{heading}\n{table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::code_for;

    fn args(nodes: u32, vnodes: u32, keys: u64, trials: u32, epsilon: Option<f64>) -> Args {
        Args {
            nodes,
            vnodes,
            keys,
            trials,
            seed: 0,
            epsilon,
            json: true,
        }
    }

    #[test]
    fn bad_flags_exit_254() {
        for a in [
            args(1, 128, 1000, 1, None),
            args(10, 0, 1000, 1, None),
            args(10, 1 << 23, 1000, 1, None),
            args(10, 128, 0, 1, None),
            args(10, 128, 1000, 0, None),
            args(10, 128, 1000, 1, Some(0.0)),
            args(10, 128, 1000, 1, Some(f64::NAN)),
        ] {
            let desc = format!("{a:?}");
            assert_eq!(code_for(&run(a)), 254, "{desc}");
        }
    }

    #[test]
    fn negative_epsilon_gets_our_message_not_a_flag_error() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let cli = Cli::try_parse_from(["ring", "--epsilon", "-1"]).expect("-1 is a value");
        let err = run(cli.args).expect_err("negative epsilon");
        assert!(err.to_string().contains("--epsilon must be"), "{err}");
    }

    #[test]
    fn table_names_every_metric() {
        let report = measure(QualityOptions {
            nodes: 3,
            vnodes: 8,
            keys: 500,
            seed: 0,
            trials: 2,
            epsilon: Some(0.2),
        })
        .expect("valid options");
        let text = render_table(&report);
        for needle in [
            "3 nodes × 8 vnodes = 24 points",
            "load std dev",
            "keys moved, one node added",
            "bounded load: max / mean",
            "mean of 2",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }

    #[test]
    fn small_measurement_succeeds() {
        assert_eq!(code_for(&run(args(4, 16, 2000, 2, Some(0.5)))), 0);
    }
}

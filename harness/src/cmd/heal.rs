//! `faultline heal`: undo what runs that died without cleaning up left
//! behind (their ledgers in the store: see [`crate::ledger`]), and say what
//! was undone, one line per thing. `faultline test` does the same first.

use crate::exit::Exit;
use crate::ledger::heal::{heal_store, HealReport};
use anyhow::bail;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store whose unfinished runs to heal.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Print what was done as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints a heal's report: one line per thing undone on `out`, runs left
/// alone and failures as warnings on stderr; each line starts `prefix`.
pub fn print_report(report: &HealReport, prefix: &str, out: &mut dyn std::io::Write) {
    for a in &report.actions {
        let _ = writeln!(out, "{prefix}healed run {}: {}", a.run_id, a.action);
    }
    for warning in &report.warnings {
        crate::errln!("{prefix}warning: {warning}");
    }
    for live in &report.live {
        crate::errln!("{prefix}run {live} is in progress: left alone");
    }
    for e in &report.errors {
        crate::errln!("{prefix}could not heal {e}");
    }
}

/// What `faultline test` does first: heals `store`, printing one line per
/// thing undone on stderr (stdout carries the run's results). A failure
/// is a warning: the run goes on, and the ledger stays for `faultline heal`.
pub fn heal_before_run(store: &std::path::Path) {
    let report = heal_store(store);
    print_report(&report, "faultline: ", &mut std::io::stderr());
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let report = heal_store(&args.store);
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a heal report serializes")
        );
    } else {
        print_report(&report, "", &mut std::io::stdout());
        if report.actions.is_empty() && report.errors.is_empty() {
            crate::outln!("nothing to heal in {}", args.store.display());
        }
    }
    if !report.errors.is_empty() {
        bail!(
            "{} thing(s) could not be healed; their ledgers stay in {}",
            report.errors.len(),
            crate::ledger::ledger_dir(&args.store).display()
        );
    }
    Ok(Exit::Valid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::heal::Action;

    #[test]
    fn one_line_per_thing_undone_with_the_run_and_the_prefix() {
        let report = HealReport {
            actions: vec![
                Action {
                    run_id: "1a2b3c4d".into(),
                    action: "killed n1 (pid 4250), still running".into(),
                },
                Action {
                    run_id: "1a2b3c4d".into(),
                    action: "removed iptables chain FAULTLINE-1a2b3c4d and the jump to it".into(),
                },
            ],
            ..HealReport::default()
        };
        let mut out = Vec::new();
        print_report(&report, "faultline test: ", &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "faultline test: healed run 1a2b3c4d: killed n1 (pid 4250), still running\n\
             faultline test: healed run 1a2b3c4d: removed iptables chain FAULTLINE-1a2b3c4d and the jump to it\n"
        );
    }
}

//! The `faultline` binary: parses the command line, installs logging, runs
//! one subcommand and exits with Jepsen's codes (see `exit`).

use clap::{Parser, Subcommand};
use faultline::cmd;
use faultline::exit::{code_for, Exit};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "faultline",
    version,
    about = "Jepsen-style fault-injection testing: run, break, check, report"
)]
struct Cli {
    /// Log format on stderr (RUST_LOG sets the level).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a test: start a cluster, drive it, break it, heal it, check it.
    Test(cmd::test::Args),
    /// Check history files for linearizability and other invariants.
    Check(cmd::check::Args),
    /// Re-check a stored run.
    Analyze(cmd::analyze::Args),
    /// Run one node of the system under test.
    Node(cmd::node::Args),
    /// Print the quality of a consistent-hash ring.
    Ring(cmd::ring::Args),
    /// Build, inspect or tear down a lab of SSH hosts on this machine.
    Lab(cmd::lab::Args),
    /// Build a run's report.html, plots and histogram logs.
    Report(cmd::report::Args),
    /// Compare two runs (or each test's newest run with a baseline).
    Compare(cmd::compare::Args),
    /// Run a matrix of tests from a TOML file; JUnit output.
    Suite(cmd::suite::Args),
    /// List the stored runs.
    Ls(cmd::ls::Args),
    /// Serve the web UI of the store on localhost.
    Serve(cmd::serve::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => Exit::BAD_INPUT,
            });
        }
    };
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Test(a) => cmd::test::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Node(a) => cmd::node::run(a),
        Command::Ring(a) => cmd::ring::run(a),
        Command::Lab(a) => cmd::lab::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Suite(a) => cmd::suite::run(a),
        Command::Ls(a) => cmd::ls::run(a),
        Command::Serve(a) => cmd::serve::run(a),
    };
    if let Err(e) = &result {
        eprintln!("error: {e:#}");
    }
    ExitCode::from(code_for(&result))
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

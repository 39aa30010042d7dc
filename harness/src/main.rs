//! The `faultline` binary: parses the command line, installs logging, runs
//! one subcommand and exits with Jepsen's codes (see `exit`).
//!
//! Logs go to stderr, coloured only on a terminal and never with NO_COLOR
//! (`--color` overrides); the commands that make runs also write each run's
//! own log, `faultline.log` in its folder (see `runlog`).

use clap::{CommandFactory, Parser, Subcommand};
use faultline::cmd;
use faultline::exit::{code_for, Exit};
use faultline::runlog;
use std::io::IsTerminal;
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
    /// Colour in logs on stderr: auto is on a terminal only, and never when
    /// NO_COLOR is set.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether stderr gets colour.
    fn on_stderr(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                let no_color = matches!(std::env::var_os("NO_COLOR"), Some(v) if !v.is_empty());
                !no_color && std::io::stderr().is_terminal()
            }
        }
    }
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd::completions::Args),
    /// Print the man page, or write one per subcommand into a folder.
    Man(cmd::man::Args),
    /// Undo what runs that died without cleaning up left behind.
    Heal(cmd::heal::Args),
}

impl Command {
    /// Whether the command makes runs in the store (and so a run log).
    fn makes_runs(&self) -> bool {
        matches!(self, Command::Test(_) | Command::Suite(_))
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(usage_error(&e)),
    };
    init_logging(
        cli.log_format,
        cli.color.on_stderr(),
        cli.command.makes_runs(),
    );
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
        Command::Completions(a) => cmd::completions::run(a, Cli::command()),
        Command::Man(a) => cmd::man::run(a, Cli::command()),
        Command::Heal(a) => cmd::heal::run(a),
    };
    if let Err(e) = &result {
        faultline::errln!("error: {e:#}");
        runlog::error(&format!("{e:#}"));
    }
    ExitCode::from(code_for(&result))
}

/// Prints a command-line error (or the help, or the version) and returns
/// the exit code: 0 for help and version, 254 for everything else, usage
/// shown for a missing subcommand included.
fn usage_error(e: &clap::Error) -> u8 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::UnknownArgument {
        if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
            let args: Vec<String> = std::env::args().collect();
            if let Some(message) = negative_value_message(&args, arg) {
                faultline::errln!("error: {message}");
                return Exit::BAD_INPUT;
            }
        }
    }
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        _ => Exit::BAD_INPUT,
    }
}

/// clap reads `--time-limit -5s` as an unknown flag `-5s`; say what it is.
fn negative_value_message(args: &[String], arg: &str) -> Option<String> {
    let looks_negative = arg
        .strip_prefix('-')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == '.'));
    if !looks_negative {
        return None;
    }
    // clap names the first short "flag" of the token: `-5` of `-5s`.
    let at = args
        .iter()
        .position(|a| a == arg)
        .or_else(|| args.iter().position(|a| a.starts_with(arg)))?;
    let arg = args[at].as_str();
    let flag = at
        .checked_sub(1)
        .map(|i| args[i].as_str())
        .filter(|f| f.starts_with('-'));
    Some(match flag {
        Some(flag) => format!(
            "{flag} {arg}: negative values are not accepted (durations, counts, rates and ports are 0 or more)"
        ),
        None => format!("{arg}: negative values are not accepted"),
    })
}

fn init_logging(format: LogFormat, colour: bool, run_log: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    let stderr = match format {
        LogFormat::Pretty => stderr.with_filter(filter).boxed(),
        LogFormat::Json => stderr.json().with_filter(filter).boxed(),
    };
    let registry = tracing_subscriber::registry().with(stderr);
    if run_log {
        registry.with(runlog::layer()).init();
    } else {
        registry.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn negative_values_name_the_flag() {
        let m = negative_value_message(&argv("faultline test --time-limit -5s"), "-5");
        assert_eq!(
            m.as_deref(),
            Some("--time-limit -5s: negative values are not accepted (durations, counts, rates and ports are 0 or more)")
        );
        assert!(negative_value_message(&argv("faultline test -x"), "-x").is_none());
        assert!(negative_value_message(&argv("faultline test --rate -.5"), "-.5").is_some());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}

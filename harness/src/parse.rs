//! Parsers of command-line values: durations with units, concurrency as a
//! number or per node (`3n`), names from a closed set ([`one_of`]), and
//! `--system`'s names or adapter file ([`SystemArg`]).

use std::time::Duration;

/// `60s`, `500ms`, `2m`, `1.5s`, `1h`, or a bare number of seconds.
pub fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("bad duration {text:?}: use a number with a unit, like 60s, 500ms, 2m")
    })?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "bad duration {text:?}: unknown unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    if !seconds.is_finite() || !(0.0..=7.0 * 24.0 * 3600.0).contains(&seconds) {
        return Err(format!(
            "bad duration {text:?}: must be between 0 and 7 days"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// How many client workers: a number (`10`) or a number per node (`3n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concurrency {
    Total(u32),
    PerNode(u32),
}

impl Concurrency {
    pub fn resolve(self, nodes: u32) -> u32 {
        match self {
            Concurrency::Total(n) => n,
            Concurrency::PerNode(k) => k.saturating_mul(nodes),
        }
    }
}

pub fn concurrency(text: &str) -> Result<Concurrency, String> {
    let t = text.trim();
    let bad = || {
        format!("bad concurrency {text:?}: use a number of workers (10) or workers per node (3n)")
    };
    let c = match t.strip_suffix('n') {
        Some(k) => Concurrency::PerNode(if k.is_empty() {
            1
        } else {
            k.parse().map_err(|_| bad())?
        }),
        None => Concurrency::Total(t.parse().map_err(|_| bad())?),
    };
    if matches!(c, Concurrency::Total(0) | Concurrency::PerNode(0)) {
        return Err(format!("bad concurrency {text:?}: at least one worker"));
    }
    Ok(c)
}

/// A clap value parser that accepts only the given names and keeps the
/// text: `--help` and the completions list them, and clap refuses any
/// other name with the list and a "did you mean". For flags whose text the
/// plan reads once below (a comma list, a name another module turns into
/// its type); [`one_of`] when the flag can carry the type itself.
pub fn names<T: std::fmt::Display>(
    all: impl IntoIterator<Item = T>,
) -> clap::builder::PossibleValuesParser {
    let names: Vec<String> = all.into_iter().map(|name| name.to_string()).collect();
    clap::builder::PossibleValuesParser::new(names)
}

/// A clap value parser for a closed set of names, given as the values of a
/// type (`WorkloadKind::ALL`): `--help` and the shell completions list the
/// names, clap refuses any other with its list (and a "did you mean"), and
/// the flag's value is the type itself, so nothing below parses it again.
/// The types stay free of clap: each needs only `Display` (its name) and
/// `FromStr` that reads that name back.
pub fn one_of<T>(
    all: impl IntoIterator<Item = T>,
) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: std::str::FromStr + std::fmt::Display + Clone + Send + Sync + 'static,
{
    use clap::builder::{PossibleValuesParser, TypedValueParser};
    let names: Vec<String> = all.into_iter().map(|value| value.to_string()).collect();
    PossibleValuesParser::new(names).map(|name: String| match name.parse::<T>() {
        Ok(value) => value,
        Err(_) => unreachable!("{name:?} is a listed name, and every listed name reads back"),
    })
}

/// `--system`'s value parser: a built-in system's name (listed in `--help`
/// and the completions, with `PATH.toml` for an adapter file) or the path
/// of an adapter file, which is kept as given (a path is never refused
/// here: the plan reads and checks the file). Any other name is refused by
/// clap with the list of names and a "did you mean".
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemArg;

/// How `--help` and the completions name an adapter file.
pub const ADAPTER_FILE_VALUE: &str = "PATH.toml";

impl clap::builder::TypedValueParser for SystemArg {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        use crate::system::SystemKind;
        if let Some(text) = value.to_str() {
            if SystemKind::is_adapter_file(text) {
                return Ok(text.to_string());
            }
        }
        names(SystemKind::ALL.map(SystemKind::name)).parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        use crate::system::SystemKind;
        use clap::builder::PossibleValue;
        let built_in = SystemKind::ALL.map(|kind| PossibleValue::new(kind.name()));
        // No help text: clap would then print every value on a line of
        // its own, unlike every other flag's `[possible values: …]`.
        let adapter = PossibleValue::new(ADAPTER_FILE_VALUE);
        Some(Box::new(built_in.into_iter().chain([adapter])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units() {
        assert_eq!(duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "10 parsecs", "-1s", "1e400s", "9999999h"] {
            assert!(duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn concurrency_is_a_number_or_per_node() {
        assert_eq!(concurrency("10").map(|c| c.resolve(5)), Ok(10));
        assert_eq!(concurrency("3n").map(|c| c.resolve(5)), Ok(15));
        assert_eq!(concurrency("n").map(|c| c.resolve(5)), Ok(5));
        for bad in ["0", "0n", "x", "3m", "-2"] {
            assert!(concurrency(bad).is_err(), "{bad:?}");
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Colour {
        Red,
        DarkBlue,
    }

    impl std::fmt::Display for Colour {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(match self {
                Colour::Red => "red",
                Colour::DarkBlue => "dark-blue",
            })
        }
    }

    impl std::str::FromStr for Colour {
        type Err = ();
        fn from_str(s: &str) -> Result<Colour, ()> {
            match s {
                "red" => Ok(Colour::Red),
                "dark-blue" => Ok(Colour::DarkBlue),
                _ => Err(()),
            }
        }
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[arg(long, value_parser = one_of([Colour::Red, Colour::DarkBlue]))]
        colour: Colour,
        #[arg(long, value_delimiter = ',', value_parser = names(["red", "dark-blue", "all"]))]
        colours: Vec<String>,
    }

    #[test]
    fn names_keeps_the_text_lists_the_names_and_refuses_others() {
        use clap::Parser;
        let cli = Cli::try_parse_from(["t", "--colour", "red", "--colours", "red,all"])
            .expect("listed names");
        assert_eq!(cli.colours, ["red", "all"]);
        let err = Cli::try_parse_from(["t", "--colour", "red", "--colours", "red,bleu"])
            .expect_err("not a listed name")
            .to_string();
        assert!(
            err.contains("[possible values: red, dark-blue, all]"),
            "{err}"
        );
    }

    #[derive(Debug, clap::Parser)]
    struct SystemCli {
        #[arg(long, default_value = "faultline", value_parser = SystemArg)]
        system: String,
    }

    #[test]
    fn system_lists_the_built_in_names_and_an_adapter_file_and_takes_paths() {
        use clap::{CommandFactory, Parser};
        for given in [
            "faultline",
            "etcd",
            "examples/adapters/redis.toml",
            "mine.toml",
        ] {
            let cli = SystemCli::try_parse_from(["t", "--system", given]).expect(given);
            assert_eq!(cli.system, given);
        }
        let err = SystemCli::try_parse_from(["t", "--system", "etdc"])
            .expect_err("not a system")
            .to_string();
        assert!(err.contains("[possible values: faultline, etcd]"), "{err}");
        assert!(err.contains("'etcd'"), "did you mean: {err}");
        let help = SystemCli::command().render_long_help().to_string();
        assert!(
            help.contains("[possible values: faultline, etcd, PATH.toml]"),
            "{help}"
        );
    }

    #[test]
    fn one_of_gives_the_type_lists_the_names_and_refuses_others() {
        use clap::{CommandFactory, Parser};
        let cli = Cli::try_parse_from(["t", "--colour", "dark-blue"]).expect("a listed name");
        assert_eq!(cli.colour, Colour::DarkBlue);
        let err = Cli::try_parse_from(["t", "--colour", "dark-blu"])
            .expect_err("not a listed name")
            .to_string();
        assert!(err.contains("[possible values: red, dark-blue]"), "{err}");
        assert!(err.contains("'dark-blue'"), "did you mean: {err}");
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("red") && help.contains("dark-blue"), "{help}");
    }
}

/// A size: `900KiB`, `1MiB`, `4096`, `512B` (binary units: KiB = 1024,
/// MiB = 1024²; KB and MB are taken as the same, as most people mean them).
pub fn bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        format!("bad size {text:?}: use a number of bytes with a unit, like 900KiB, 1MiB or 4096")
    };
    let value: usize = num.parse().map_err(|_| bad())?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "KB" | "K" | "k" | "kB" => 1 << 10,
        "MiB" | "MB" | "M" => 1 << 20,
        _ => return Err(bad()),
    };
    value.checked_mul(scale).ok_or_else(bad)
}

#[cfg(test)]
mod bytes_tests {
    use super::bytes;

    #[test]
    fn sizes_take_binary_units_and_refuse_the_rest() {
        assert_eq!(bytes("900KiB"), Ok(900 * 1024));
        assert_eq!(bytes("1MiB"), Ok(1 << 20));
        assert_eq!(bytes("4096"), Ok(4096));
        assert_eq!(bytes(" 12B "), Ok(12));
        for bad in [
            "",
            "KiB",
            "1.5MiB",
            "9GiB",
            "-1",
            "99999999999999999999999MiB",
        ] {
            let err = bytes(bad).expect_err(bad);
            assert!(err.contains("bad size"), "{bad}: {err}");
        }
    }
}

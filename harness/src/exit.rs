//! Exit codes, Jepsen's, so existing CI scripts keep working.
//!
//! 0 valid, 1 invalid, 2 unknown, 254 bad arguments or input, 255 harness
//! failure. A subcommand returns an [`Exit`] for verdicts and an error for
//! failures; an error that is (or wraps) [`BadInput`] exits 254, any other
//! error 255.

use std::fmt;

/// What a subcommand that finished ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    Valid,
    Invalid,
    Unknown,
}

impl Exit {
    pub const BAD_INPUT: u8 = 254;
    pub const HARNESS_FAILURE: u8 = 255;

    pub fn code(self) -> u8 {
        match self {
            Exit::Valid => 0,
            Exit::Invalid => 1,
            Exit::Unknown => 2,
        }
    }
}

/// Bad input from outside: a flag, a file, a request. Exits 254.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Shorthand: `return Err(bad_input(format!(...)))`.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

/// The process exit code for a subcommand's result.
pub fn code_for(result: &anyhow::Result<Exit>) -> u8 {
    match result {
        Ok(exit) => exit.code(),
        Err(e) if e.chain().any(|c| c.is::<BadInput>()) => Exit::BAD_INPUT,
        Err(_) => Exit::HARNESS_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn bad_input_wrapped_in_context_still_exits_254() {
        let r: anyhow::Result<Exit> = Err(bad_input("no such file")).context("reading history");
        assert_eq!(code_for(&r), 254);
        let r: anyhow::Result<Exit> = Err(anyhow::anyhow!("node crashed"));
        assert_eq!(code_for(&r), 255);
        assert_eq!(code_for(&Ok(Exit::Invalid)), 1);
    }
}

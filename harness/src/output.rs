//! Printing for readers that may stop reading (`faultline ls | head`).
//!
//! `println!` panics when stdout is a pipe whose reader has gone. Every
//! print of the binary goes through [`outln!`] / [`out!`] (stdout) and
//! [`errln!`] (stderr) instead: a closed pipe is no failure of the command,
//! whose output was for a reader that no longer wants it. The first write
//! that finds it closed marks the stream closed and every later write is
//! skipped; the command goes on (a test still heals every fault it
//! started) and exits with its own code. Any other write error (a full
//! disk) is said once on stderr, since results were lost.
//!
//! A test in harness/tests/output.rs fails on any `println!`, `print!`,
//! `eprintln!` or `eprint!` in the binary's sources outside this file.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a reader of stdout has gone (or it failed): later output is
/// skipped, and long listings may stop early.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Writes to stdout and flushes, unless it is closed. Used by [`outln!`]
/// and [`out!`].
pub fn write_stdout(args: fmt::Arguments<'_>) {
    if stdout_closed() {
        return;
    }
    let mut stdout = io::stdout().lock();
    let result = stdout.write_fmt(args).and_then(|()| stdout.flush());
    if let Err(e) = result {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            write_stderr(format_args!(
                "error: writing to stdout: {e}; no more output\n"
            ));
        }
    }
}

/// Writes to stderr, unless it is closed. Used by [`errln!`].
pub fn write_stderr(args: fmt::Arguments<'_>) {
    if STDERR_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    if io::stderr().lock().write_fmt(args).is_err() {
        STDERR_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `println!` that never panics: see the module docs.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that never panics: see the module docs.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: see the module docs.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

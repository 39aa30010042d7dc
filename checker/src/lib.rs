//! faultline-checker: histories in, verdicts out.
//!
//! Pure: no async, no network, no clock. Every checker takes a history (a
//! sequence of [`history::Event`]s) and returns a verdict: valid, invalid
//! (with a witness) or unknown (with a reason). "Not linearizable" is a
//! value, never an error; errors are only for input that cannot be read.

pub mod history;

//! Options of a check.

use crate::model::ModelOptions;
use std::time::Duration;

/// How to check. `Default` gives: split by key, no time limit, a 4 GiB
/// memory bound, every core, registers starting empty and nil reads read
/// as "no value".
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Split histories of independent keys and check each key alone
    /// (P-compositionality). `false` checks the whole history as one map.
    pub partition: bool,
    /// Give up with `unknown` after this long (the search's wall time).
    pub time_limit: Option<Duration>,
    /// Give up with `unknown` once the memo of all searches together holds
    /// this many bytes (an estimate of what they allocate).
    pub memory_limit_bytes: usize,
    /// Worker threads for independent keys; 0 means one per core.
    pub threads: usize,
    /// Registers' initial value and the meaning of nil reads.
    pub model_options: ModelOptions,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            partition: true,
            time_limit: None,
            memory_limit_bytes: 4 << 30,
            threads: 0,
            model_options: ModelOptions::default(),
        }
    }
}

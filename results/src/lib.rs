//! faultline-results: everything on disk.
//!
//! The store layout (`store/<test>/<time>/`, see docs/store.md), the history
//! writer (JSON Lines, appended as the run goes and flushed at least every
//! [`history_writer::FLUSH_INTERVAL`], so a crash of the harness still leaves a
//! checkable history) and reader, per-operation statistics with HdrHistogram
//! latency percentiles, `results.json`, and the tables printed at the end of
//! a run. Nothing here knows about networks or clusters.

pub mod audit;
pub mod compare;
pub mod fault_interval;
pub mod histogram_log;
pub mod history_reader;
pub mod history_writer;
pub mod impostor_table;
pub mod junit;
pub mod listing;
pub mod op_span;
pub mod op_stats;
pub mod plot;
pub mod report;
pub mod report_audit;
pub mod run_metrics;
pub mod run_results;
pub mod serve;
pub mod shard_ownership;
pub mod shard_timeline;
pub mod store;
pub mod suite;
pub mod synthetic_run;
pub mod table;
pub mod timeline;

pub use history_reader::{read_history, HistoryReadError};
pub use history_writer::HistoryWriter;
pub use op_stats::{summarize, OpStats, Summary};
pub use run_results::{CheckerOutcome, RunResults, VerdictKind};
pub use store::{RunDir, StoreError};

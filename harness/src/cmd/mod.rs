//! One module per subcommand: each has `Args` (clap) and `run`.

pub mod analyze;
pub mod check;
pub mod check_txn;
pub mod compare;
pub mod completions;
pub mod heal;
pub mod lab;
pub mod ls;
pub mod man;
pub mod node;
pub mod report;
pub mod ring;
pub mod serve;
pub mod suite;
pub mod test;

//! One module per subcommand: each has `Args` (clap) and `run`.

pub mod analyze;
pub mod check;
pub mod lab;
pub mod node;
pub mod ring;
pub mod test;

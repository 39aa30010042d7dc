//! faultline: the controller.
//!
//! Cluster control (local processes, SSH hosts, the lab of network
//! namespaces), the nemesis, the run loop, and every subcommand of the
//! `faultline` binary. This crate uses all the others; none uses it.

pub mod adapter;
pub mod analysis;
pub mod check;
pub mod cluster;
pub mod cmd;
pub mod exit;
pub mod lab;
pub mod ledger;
pub mod nemesis;
pub mod output;
pub mod parse;
pub mod remote;
pub mod run;
pub mod runlog;
pub mod ssh;
pub mod system;

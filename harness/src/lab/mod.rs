//! The lab: N SSH hosts on this machine, for testing remote mode without
//! real machines (`faultline lab up|status|down`).
//!
//! Guarantees: hosts live in network namespaces on a private bridge in
//! 10.77.0.0/24 with no default route, so nothing they send leaves the
//! machine; each has its own sshd, hostname, process list, /run and
//! /var/lib/faultline. `lab up` refuses to build over another lab; `lab down`
//! removes every namespace, link, rule and process the lab made (found from
//! `DIR/lab.json` and by name) and fails if anything is left.

pub mod builder;
pub mod sshd_config;
pub mod state;
pub mod status;
pub mod system;
pub mod teardown;

pub use builder::{up, UpOptions, UpOutcome};
pub use state::{LabHost, LabState};
pub use status::{status, LabStatus};
pub use teardown::{down, leftovers, DownReport};

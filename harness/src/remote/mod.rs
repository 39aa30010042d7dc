//! Remote mode: the nodes run on hosts reached over SSH.
//!
//! [`RemoteArgs`] are the flags (`--nodes`, `--nodes-file`, `--lab`, the
//! `--ssh-*` flags); [`RemoteHosts`] does everything on the hosts: check and
//! install tools, deploy the executable ([`deploy`]), run node daemons by
//! pidfile ([`daemon`]), inject and heal faults ([`faults`]), fetch logs;
//! for an adapter, upload its directory and run its install ([`files`]).
//! Every remote command is a shell script built here from quoted parts;
//! everything a host keeps lives under one folder ([`Layout`]). What a run
//! makes on a host is named by its run id, so the ledger's heal removes
//! what a run that died left there ([`leftovers`]).

pub mod args;
pub mod cluster;
pub mod daemon;
pub mod deploy;
pub mod faults;
pub mod files;
pub mod layout;
pub mod leftovers;
pub mod remote_hosts;

pub use args::{parse_duration, RemoteArgs, RemotePlan};
pub use daemon::{DaemonSpec, ProcState};
pub use deploy::{Deployed, Need};
pub use layout::{check_node_name, Layout};
pub use remote_hosts::RemoteHosts;

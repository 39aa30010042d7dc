//! faultline-workloads: what clients do.
//!
//! Per workload: the operation generator, the client that speaks the node
//! protocol (docs/protocol.md), and which checkers judge its history.

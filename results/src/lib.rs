//! faultline-results: everything on disk.
//!
//! The store layout (`store/<test>/<time>/`), the history writer and reader,
//! latency histograms and the tables printed at the end of a run.

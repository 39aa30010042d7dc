//! The run's own log: `faultline.log` in the run's folder of the store, as
//! Jepsen keeps `jepsen.log`. It holds what the harness did (every `info`
//! and louder event of faultline's crates, whatever RUST_LOG says for
//! stderr), every fault with its mechanism (the nemesis logs each event it
//! records), and every error, the one the run ends with included.
//!
//! The binary installs [`layer`] beside the stderr layer for the commands
//! that make runs. Until the run's folder exists there is no file to write
//! to, so events are kept in memory ([`BUFFER_LIMIT`] at most) and written
//! first when [`start`] opens the file: the plan and the set-up before the
//! folder was made are in the log too. A later [`start`] (a suite runs many
//! tests in one process) switches to the next run's file. Lines are plain
//! text, never coloured, each written with one `write` so a crash loses at
//! most the line being written.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::Layer;

/// The file name in a run's folder (`RunDir::harness_log`).
pub use faultline_results::store::HARNESS_LOG_FILE as FILE_NAME;

/// How much is kept in memory before the run's folder exists.
pub const BUFFER_LIMIT: usize = 1 << 20;

enum Sink {
    /// No run yet: lines wait here; `dropped` counts those past the limit.
    Buffer { bytes: Vec<u8>, dropped: u64 },
    /// The current run's file.
    File { file: File, path: PathBuf },
}

static SINK: Mutex<Sink> = Mutex::new(Sink::Buffer {
    bytes: Vec::new(),
    dropped: 0,
});

fn sink() -> std::sync::MutexGuard<'static, Sink> {
    // A panic while holding the lock leaves whole lines behind; go on.
    SINK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The tracing layer that writes the run log: `info` and louder from the
/// workspace's crates (all named `faultline*`), without colour.
pub fn layer<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(RunLogWriter)
        .with_filter(
            Targets::new()
                .with_target("faultline", LevelFilter::INFO)
                .with_default(LevelFilter::WARN),
        )
}

/// Starts writing the run log to `path` (created or truncated), beginning
/// with what was kept in memory; a previous run's file is closed.
pub fn start(path: &Path) -> io::Result<()> {
    let mut file = File::create(path)?;
    let mut sink = sink();
    if let Sink::Buffer { bytes, dropped } = &mut *sink {
        file.write_all(bytes)?;
        if *dropped > 0 {
            let line = format!(
                "{} WARN faultline::runlog: {dropped} earlier lines were not kept (more than {BUFFER_LIMIT} bytes before the run started)\n",
                now()
            );
            file.write_all(line.as_bytes())?;
        }
    }
    *sink = Sink::File {
        file,
        path: path.to_path_buf(),
    };
    Ok(())
}

/// The file the run log goes to now, if a run has started.
pub fn current_path() -> Option<PathBuf> {
    match &*sink() {
        Sink::File { path, .. } => Some(path.clone()),
        Sink::Buffer { .. } => None,
    }
}

/// Writes the error a command ends with to the run log (not to stderr:
/// the binary prints it there itself).
pub fn error(message: &str) {
    let line = format!("{} ERROR faultline: {message}\n", now());
    let _ = RunLogWriter.write_all(line.as_bytes());
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Writes to wherever the run log goes now.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunLogWriter;

impl Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut *sink() {
            Sink::Buffer { bytes, dropped } => {
                if bytes.len() + buf.len() <= BUFFER_LIMIT {
                    bytes.extend_from_slice(buf);
                } else {
                    *dropped += 1;
                }
            }
            // A full disk must not stop a test: the history is what counts.
            Sink::File { file, .. } => {
                let _ = file.write_all(buf);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for RunLogWriter {
    type Writer = RunLogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RunLogWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    // One test: the sink is process-wide.
    #[test]
    fn keeps_early_lines_then_writes_the_run_file_and_switches_runs() {
        let subscriber = tracing_subscriber::registry().with(layer());
        let dir = tempfile::tempdir().expect("temp dir");
        let first = dir.path().join("one.log");
        let second = dir.path().join("two.log");
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "faultline::run", "planned before the folder exists");
            tracing::debug!(target: "faultline::run", "too quiet for the run log");
            tracing::info!(target: "hyper", "another crate's chatter");
            tracing::warn!(target: "hyper", "another crate's warning");
            assert_eq!(current_path(), None);
            start(&first).expect("start");
            assert_eq!(current_path(), Some(first.clone()));
            tracing::info!(target: "faultline::nemesis", mechanism = "iptables", "start-partition");
            error("the run failed: node n2 unreachable");
            start(&second).expect("switch");
            tracing::info!(target: "faultline::run", "second run");
        });
        let one = std::fs::read_to_string(&first).expect("first log");
        let two = std::fs::read_to_string(&second).expect("second log");
        let lines: Vec<&str> = one.lines().collect();
        assert_eq!(lines.len(), 4, "{one}");
        assert!(
            lines[0].contains("planned before the folder exists"),
            "{one}"
        );
        assert!(lines[1].contains("another crate's warning"), "{one}");
        assert!(
            lines[2].contains("start-partition") && lines[2].contains("mechanism=\"iptables\""),
            "{one}"
        );
        assert!(
            lines[3].contains("ERROR faultline: the run failed: node n2 unreachable"),
            "{one}"
        );
        assert!(
            !one.contains("too quiet") && !one.contains("chatter"),
            "{one}"
        );
        assert!(!one.contains('\u{1b}'), "no colour in the file: {one}");
        assert_eq!(two.lines().count(), 1, "{two}");
        assert!(two.contains("second run"), "{two}");
    }
}

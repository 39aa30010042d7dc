//! The progress bar on stderr while a test runs: elapsed of the time limit,
//! ok/fail/info counts, faults active. Hidden when stderr is no terminal.

use crate::run::recorder::Recorder;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts a bar of `time_limit` that refreshes from the recorder's counts.
    pub fn start(time_limit: Duration, recorder: Arc<Recorder>) -> Progress {
        let bar = ProgressBar::with_draw_target(
            Some(time_limit.as_secs().max(1)),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}s {msg}",
            )
            .expect("constant template parses"),
        );
        let b = bar.clone();
        let task = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            loop {
                let c = &recorder.counts;
                b.set_position(
                    started
                        .elapsed()
                        .as_secs()
                        .min(b.length().unwrap_or(u64::MAX)),
                );
                b.set_message(format!(
                    "ok {} fail {} info {} | faults active {} (started {})",
                    c.ok.load(Ordering::Relaxed),
                    c.fail.load(Ordering::Relaxed),
                    c.info.load(Ordering::Relaxed),
                    c.faults_active.load(Ordering::Relaxed).max(0),
                    c.faults_started.load(Ordering::Relaxed),
                ));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Progress { bar, task }
    }

    pub fn phase(&self, what: &str) {
        tracing::info!("{what}");
        self.bar.println(format!("faultline: {what}"));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

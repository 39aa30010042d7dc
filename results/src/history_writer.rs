//! The history writer: appends events to `history.jsonl` as they happen.
//!
//! Guarantees: every recorded event gets the next `index` and a `time`
//! (nanoseconds since the writer was created, monotonic) taken under the same
//! lock, so index order and time order agree; an event is on disk (flushed to
//! the OS) at most [`FLUSH_INTERVAL`] after it was recorded, by a background
//! thread, so a crash of the harness leaves a checkable history; dropping or
//! [`HistoryWriter::finish`]ing the writer flushes and fsyncs everything.

use faultline_checker::history::Event;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the background thread flushes buffered events to the file.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);

struct Inner {
    out: BufWriter<File>,
    next_index: u64,
    /// The first write or flush error; once set, every later record fails.
    failed: Option<String>,
    /// The time of the last event recorded (0 before any).
    last_time: u64,
}

/// Which time an event gets.
#[derive(Clone, Copy)]
enum Stamp {
    /// Now, since the writer's start.
    Now,
    /// The last recorded event's.
    LastEvent,
}

/// Records events to a JSON Lines file. Cheap to share: `record` takes `&self`.
pub struct HistoryWriter {
    inner: Arc<Mutex<Inner>>,
    start: Instant,
    path: PathBuf,
    stop: Arc<(Mutex<bool>, Condvar)>,
    flusher: Option<JoinHandle<()>>,
    finished: AtomicBool,
}

impl HistoryWriter {
    /// Creates (truncates) `path` and starts the flusher thread. Event times
    /// count from now.
    pub fn create(path: &Path) -> io::Result<HistoryWriter> {
        Self::create_with_start(path, Instant::now())
    }

    /// As [`create`](Self::create), with times counted from `start`.
    pub fn create_with_start(path: &Path, start: Instant) -> io::Result<HistoryWriter> {
        let file = File::create(path)?;
        let inner = Arc::new(Mutex::new(Inner {
            out: BufWriter::with_capacity(256 * 1024, file),
            next_index: 0,
            failed: None,
            last_time: 0,
        }));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flusher = {
            let inner = Arc::clone(&inner);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("history-flush".into())
                .spawn(move || flush_loop(&inner, &stop))?
        };
        Ok(HistoryWriter {
            inner,
            start,
            path: path.to_path_buf(),
            stop,
            flusher: Some(flusher),
            finished: AtomicBool::new(false),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The instant event times count from.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Sets `event.index` and `event.time` and appends it. Returns an error if
    /// this or any earlier write failed (the history is then incomplete).
    pub fn record(&self, event: &mut Event) -> io::Result<()> {
        self.append(event, Stamp::Now)
    }

    /// As [`record`](Self::record), but `event.time` is the time of the
    /// last event recorded so far: for events about the run written after
    /// it ended (the nodes' audit logs), which must not lengthen it.
    pub fn record_at_last_time(&self, event: &mut Event) -> io::Result<()> {
        self.append(event, Stamp::LastEvent)
    }

    fn append(&self, event: &mut Event, stamp: Stamp) -> io::Result<()> {
        let mut inner = self
            .inner
            .lock()
            .expect("history writer lock poisoned by a panic");
        if let Some(e) = &inner.failed {
            return Err(io::Error::other(format!(
                "history writer failed earlier: {e}"
            )));
        }
        event.index = inner.next_index;
        event.time = match stamp {
            Stamp::Now => u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Stamp::LastEvent => inner.last_time,
        };
        inner.last_time = event.time;
        let result = serde_json::to_writer(&mut inner.out, event)
            .map_err(io::Error::from)
            .and_then(|()| inner.out.write_all(b"\n"));
        match result {
            Ok(()) => {
                inner.next_index += 1;
                Ok(())
            }
            Err(e) => {
                inner.failed = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// How many events were recorded.
    pub fn len(&self) -> u64 {
        self.inner
            .lock()
            .expect("history writer lock poisoned by a panic")
            .next_index
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flushes buffered events to the OS now.
    pub fn flush(&self) -> io::Result<()> {
        let mut inner = self
            .inner
            .lock()
            .expect("history writer lock poisoned by a panic");
        inner.out.flush()
    }

    /// Stops the flusher, flushes and fsyncs. Returns the number of events.
    pub fn finish(mut self) -> io::Result<u64> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<u64> {
        if self.finished.swap(true, Ordering::SeqCst) {
            return Ok(self.len());
        }
        {
            let (lock, cv) = &*self.stop;
            *lock.lock().expect("flusher stop lock poisoned") = true;
            cv.notify_all();
        }
        if let Some(h) = self.flusher.take() {
            let _ = h.join();
        }
        let mut inner = self
            .inner
            .lock()
            .expect("history writer lock poisoned by a panic");
        inner.out.flush()?;
        inner.out.get_ref().sync_all()?;
        if let Some(e) = &inner.failed {
            return Err(io::Error::other(format!("history writer failed: {e}")));
        }
        Ok(inner.next_index)
    }
}

impl Drop for HistoryWriter {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(path = %self.path.display(), "history flush at drop failed: {e}");
        }
    }
}

fn flush_loop(inner: &Mutex<Inner>, stop: &(Mutex<bool>, Condvar)) {
    let (lock, cv) = stop;
    let mut stopped = lock.lock().expect("flusher stop lock poisoned");
    loop {
        let (guard, _) = cv
            .wait_timeout(stopped, FLUSH_INTERVAL)
            .expect("flusher stop lock poisoned");
        stopped = guard;
        if *stopped {
            return;
        }
        let mut inner = inner
            .lock()
            .expect("history writer lock poisoned by a panic");
        if inner.failed.is_none() {
            if let Err(e) = inner.out.flush() {
                inner.failed = Some(e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::history::{EventType, Process, Value};

    fn ev(p: u64, kind: EventType) -> Event {
        Event {
            index: 999,
            time: 0,
            process: Process::Client(p),
            kind,
            f: "write".into(),
            key: None,
            value: Value::from(p),
            node: Some("n1".into()),
            error: None,
        }
    }

    #[test]
    fn assigns_increasing_indexes_and_times_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.jsonl");
        let w = HistoryWriter::create(&path).expect("create");
        let mut events = Vec::new();
        for p in 0..100 {
            let mut e = ev(p, EventType::Invoke);
            w.record(&mut e).expect("record");
            events.push(e);
        }
        assert_eq!(w.finish().expect("finish"), 100);
        let back = crate::read_history(&path).expect("read back");
        assert_eq!(back.events, events);
        for (i, e) in back.events.iter().enumerate() {
            assert_eq!(e.index, i as u64);
        }
        assert!(back.events.windows(2).all(|w| w[0].time <= w[1].time));
    }

    #[test]
    fn an_event_at_the_last_time_does_not_lengthen_the_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.jsonl");
        let w = HistoryWriter::create(&path).expect("create");
        let mut first = ev(1, EventType::Invoke);
        w.record(&mut first).expect("record");
        std::thread::sleep(Duration::from_millis(5));
        let mut late = ev(2, EventType::Invoke);
        w.record_at_last_time(&mut late).expect("record");
        assert_eq!(late.time, first.time);
        assert_eq!(late.index, first.index + 1);
        let mut next = ev(3, EventType::Invoke);
        w.record(&mut next).expect("record");
        assert!(next.time > late.time, "{next:?}");
        w.finish().expect("finish");
    }

    #[test]
    fn events_reach_the_file_without_finish() {
        // A crash of the harness must leave a checkable history: the flusher
        // writes buffered events without any call from the recorder.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.jsonl");
        let w = HistoryWriter::create(&path).expect("create");
        let mut e = ev(1, EventType::Invoke);
        w.record(&mut e).expect("record");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&path).expect("read");
            if text.lines().count() == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "flusher never flushed");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::mem::forget(w); // as if the process died
    }
}

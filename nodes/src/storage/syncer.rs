//! The WAL's fsync, off the thread that writes it.
//!
//! The core thread writes a batch to the WAL file (the page cache) and asks
//! the syncer to make it durable; it keeps receiving and proposing
//! meanwhile, so the writes that arrive during one fsync share the next.
//! One thread per WAL: it takes every request queued, fsyncs once for all
//! of them and reports the highest write number that is now durable, then
//! calls the waker so that the core thread looks.
//!
//! Guarantee: a write number is reported durable only after an fsync that
//! began after that write reached the file returned without error. An
//! error is reported once and stops the thread (the node must stop: it
//! cannot promise durability any more).

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::StorageError;

/// Tells the core thread that a sync finished (it then polls).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// One request: make the file durable through write `seq`.
struct Request {
    seq: u64,
    file: Arc<File>,
    path: PathBuf,
}

/// A WAL's background fsync thread and what it reported.
pub struct Syncer {
    requests: Option<Sender<Request>>,
    done: Receiver<Result<u64, StorageError>>,
    thread: Option<JoinHandle<()>>,
    /// The highest write number asked for.
    requested: u64,
    /// The highest write number reported durable.
    durable: u64,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("requested", &self.requested)
            .field("durable", &self.durable)
            .finish()
    }
}

impl Syncer {
    /// Start the thread; `waker` runs after every report.
    pub fn start(waker: Waker) -> Result<Syncer, StorageError> {
        let (requests, inbox) = mpsc::channel::<Request>();
        let (report, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("faultline-wal-sync".into())
            .spawn(move || run(inbox, report, waker))
            .map_err(|e| StorageError::io(&PathBuf::from("faultline-wal-sync thread"), e))?;
        Ok(Syncer {
            requests: Some(requests),
            done,
            thread: Some(thread),
            requested: 0,
            durable: 0,
        })
    }

    /// Ask for write `seq` (already in `file`) to be made durable.
    pub fn request(&mut self, seq: u64, file: Arc<File>, path: PathBuf) {
        assert!(seq > self.requested, "write numbers only grow");
        self.requested = seq;
        let sent = self
            .requests
            .as_ref()
            .expect("the request channel lives as long as the syncer")
            .send(Request { seq, file, path });
        // The thread stops only after reporting an error, which `poll`
        // returns; a request after that is never reported durable.
        let _ = sent;
    }

    /// Take every report so far: the highest write number durable.
    pub fn poll(&mut self) -> Result<u64, StorageError> {
        loop {
            match self.done.try_recv() {
                Ok(report) => self.durable = self.durable.max(report?),
                Err(TryRecvError::Empty) => return Ok(self.durable),
                Err(TryRecvError::Disconnected) => return self.stopped(),
            }
        }
    }

    /// Block until every write asked for is durable.
    pub fn wait_all(&mut self) -> Result<u64, StorageError> {
        while self.durable < self.requested {
            match self.done.recv() {
                Ok(report) => self.durable = self.durable.max(report?),
                Err(_) => return self.stopped(),
            }
        }
        Ok(self.durable)
    }

    /// Everything written so far is durable by other means (a rewrite
    /// fsynced a fresh file): count it so.
    pub fn mark_durable(&mut self, seq: u64) {
        self.durable = self.durable.max(seq);
        self.requested = self.requested.max(seq);
    }

    fn stopped(&self) -> Result<u64, StorageError> {
        Err(StorageError::Contract(
            "the WAL sync thread stopped".to_string(),
        ))
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has done its queue.
        self.requests = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(inbox: Receiver<Request>, report: Sender<Result<u64, StorageError>>, waker: Waker) {
    while let Ok(first) = inbox.recv() {
        // Group commit: every request queued meanwhile shares this fsync.
        let mut last = first;
        while let Ok(next) = inbox.try_recv() {
            last = next;
        }
        let result = last
            .file
            .sync_data()
            .map(|()| last.seq)
            .map_err(|e| StorageError::io(&last.path, e));
        let failed = result.is_err();
        if report.send(result).is_err() {
            return;
        }
        waker();
        if failed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_request_is_reported_durable_and_wakes_the_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let file = Arc::new(File::create(&path).expect("create"));
        // The thread reports, then wakes: `wait_all` may return before the
        // wake has run, so the test waits for the wake itself (it once read
        // a counter right after `wait_all` and failed under load).
        let (woken, wakes) = mpsc::channel::<()>();
        let mut s = Syncer::start(Arc::new(move || {
            let _ = woken.send(());
        }))
        .expect("start");
        for seq in 1..=5 {
            (&*file).write_all(b"x").expect("write");
            s.request(seq, file.clone(), path.clone());
        }
        assert_eq!(s.wait_all().expect("synced"), 5);
        wakes
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the owner is woken after a report");
        assert_eq!(s.poll().expect("no error"), 5);
    }

    #[test]
    fn a_failed_fsync_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A read-only handle on a pipe cannot be fsynced (EINVAL).
        let (reader, _writer) = std::io::pipe().expect("pipe");
        let file = Arc::new(File::from(std::os::fd::OwnedFd::from(reader)));
        let path = dir.path().join("pipe");
        let mut s = Syncer::start(Arc::new(|| {})).expect("start");
        s.request(1, file, path.clone());
        let e = s.wait_all().expect_err("a pipe cannot be fsynced");
        assert!(e.to_string().contains("pipe"), "{e}");
    }
}

//! The ledger: what a run made that must not outlive it, written down as
//! it is made, so that a run that dies without cleaning up (SIGKILL, an
//! out-of-memory kill, a CI timeout, a closed laptop) leaves a list the
//! next `faultline test` or `faultline heal` can undo.
//!
//! A ledger is one file, `STORE/.ledger/<run id>.jsonl` ([`file`] has the
//! format), opened by the run and held under an exclusive `flock` for the
//! run's whole life: the kernel drops the lock when the process dies, so a
//! ledger nobody holds belongs to a run that is over. Whatever creates a
//! resource — any system's node process, an iptables chain, a pause, a
//! libfaketime file, a lab being built — calls [`Ledger::record`] (or
//! [`Ledger::spawn`] for a process) and keeps the [`Held`] it gets; undoing
//! the resource is followed by [`Held::release`]. [`Ledger::close`] at the
//! end of a clean run moves the ledger into the run's directory as a record
//! of what the run made. [`heal::heal_store`] undoes the held resources of
//! every ledger nobody holds.
//!
//! Guarantees:
//! - an entry is durable (written and synced) before `record` returns, and
//!   `record` is called before the resource exists where that is possible;
//! - every process started through [`Ledger::spawn`] dies with the harness
//!   (`PR_SET_PDEATHSIG`) and carries the run's id in its environment, so
//!   a later heal finds its children too ([`process`]);
//! - heal never touches a ledger a live run holds, never resumes a paused
//!   process (it kills it), and acts on a process only if its pid still
//!   names the same process (start time);
//! - a remote run records each SSH host before it makes anything there;
//!   heal logs in again (bounded timeouts) and removes what carries the
//!   run's id ([`remote_host`]); an unreachable host keeps its entry.
//!
//! Without a store (unit tests, tools) [`Ledger::unrecorded`] gives the
//! same process guarantees with nothing written.

pub mod file;
pub mod heal;
pub mod process;
pub mod remote_host;
pub mod resource;

pub use file::{Line, Recorded};
pub use process::{ProcessIdentity, RUN_ID_ENV};
pub use remote_host::RemoteLogin;
pub use resource::Resource;

use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};

/// The folder of a store that holds the ledgers of runs in progress (and
/// of runs that could not clean up).
pub const LEDGER_DIR: &str = ".ledger";
/// A ledger being made, before it has its lock and open line; heal skips
/// these (they do not end in `.jsonl`).
pub const DRAFT_SUFFIX: &str = ".jsonl.draft";
/// A finished run's ledger, in its run directory.
pub const RUN_LEDGER_FILE: &str = "ledger.jsonl";

/// The ledger folder of a store.
pub fn ledger_dir(store: &Path) -> PathBuf {
    store.join(LEDGER_DIR)
}

/// Takes `file`'s exclusive lock without waiting: Ok(false) if another
/// open file (another run, or another heal) holds it.
pub(crate) fn try_lock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a descriptor this File owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

struct State {
    /// The open, locked ledger file; None when unrecorded or closed.
    file: Option<File>,
    next_id: u64,
    held: BTreeMap<u64, Resource>,
}

struct Inner {
    run_id: String,
    path: Option<PathBuf>,
    run_dir: Option<PathBuf>,
    state: Mutex<State>,
}

/// A run's ledger. Cheap to clone; every clone writes to the same file.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("run_id", &self.inner.run_id)
            .field("path", &self.inner.path)
            .finish()
    }
}

/// A resource the ledger holds for the run until [`Held::release`].
/// Dropping it without releasing leaves the entry held: a later heal
/// checks it (and finds nothing to do if it is gone).
#[must_use = "release it once the resource is undone"]
#[derive(Debug)]
pub struct Held {
    id: u64,
    ledger: Ledger,
}

impl Held {
    /// Records that the resource was undone.
    pub fn release(self) -> anyhow::Result<()> {
        self.ledger.release(self.id)
    }
}

/// Whether a child the ledger starts dies with the harness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// Killed by the kernel when the harness dies (`PR_SET_PDEATHSIG`).
    DiesWithHarness,
    /// Left alone when the harness exits (`--leave-db-running`): still
    /// recorded and marked, so a heal of a run that died finds it.
    MayOutliveHarness,
}

/// A fresh run id: 8 hex digits (an iptables chain name has room for it).
pub fn new_run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

impl Ledger {
    /// Opens a new ledger in `store` for a run of `command` with a fresh
    /// run id (`run_dir`: where the ledger goes when the run ends).
    pub fn open(store: &Path, command: &str, run_dir: Option<&Path>) -> anyhow::Result<Ledger> {
        loop {
            // A run id already in the store is drawn again.
            if let Some(ledger) = Self::try_open(store, &new_run_id(), command, run_dir)? {
                return Ok(ledger);
            }
        }
    }

    /// Opens a new ledger for a run whose id was drawn already (it names
    /// things made before the ledger: an etcd cluster token, say). An id
    /// already in the store is an error.
    pub fn open_as(
        store: &Path,
        run_id: &str,
        command: &str,
        run_dir: Option<&Path>,
    ) -> anyhow::Result<Ledger> {
        match Self::try_open(store, run_id, command, run_dir)? {
            Some(ledger) => Ok(ledger),
            None => bail!(
                "run id {run_id} has a ledger in {} already",
                ledger_dir(store).display()
            ),
        }
    }

    /// Opens the ledger of `run_id`; Ok(None) if that run id is taken.
    fn try_open(
        store: &Path,
        run_id: &str,
        command: &str,
        run_dir: Option<&Path>,
    ) -> anyhow::Result<Option<Ledger>> {
        let dir = ledger_dir(store);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the ledger folder {}", dir.display()))?;
        // The ledger is made under a name heal does not look at, locked,
        // given its open line, and only then published under its run id:
        // a heal never sees a ledger that is unlocked or has no owner. A
        // run id already in the store is never reused (hard_link does not
        // overwrite).
        let draft = dir.join(format!("{run_id}{DRAFT_SUFFIX}"));
        let file = match OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&draft)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("creating the ledger {}", draft.display()))
            }
        };
        let path = dir.join(format!("{run_id}.jsonl"));
        let ledger = Ledger {
            inner: Arc::new(Inner {
                run_id: run_id.to_string(),
                path: Some(path),
                run_dir: run_dir.map(Path::to_path_buf),
                state: Mutex::new(State {
                    file: Some(file),
                    next_id: 1,
                    held: BTreeMap::new(),
                }),
            }),
        };
        let published = ledger.start_draft(&draft, command, run_dir);
        let _ = std::fs::remove_file(&draft);
        Ok(published?.then_some(ledger))
    }

    /// Locks the draft ledger, writes its open line, and links it under
    /// its run id: Ok(false) if a ledger of that run id exists already.
    fn start_draft(
        &self,
        draft: &Path,
        command: &str,
        run_dir: Option<&Path>,
    ) -> anyhow::Result<bool> {
        {
            let state = self.state();
            let file = state.file.as_ref().expect("a new ledger has its file");
            if !try_lock(file).with_context(|| format!("locking {}", draft.display()))? {
                bail!("{} is locked by another process", draft.display());
            }
        }
        self.append(&Line::Open {
            version: file::VERSION,
            run_id: self.inner.run_id.clone(),
            command: command.to_string(),
            pid: std::process::id(),
            started_at: chrono::Utc::now().to_rfc3339(),
            run_dir: run_dir.map(Path::to_path_buf),
        })?;
        let path = self
            .inner
            .path
            .as_deref()
            .expect("a recorded ledger has a path");
        match std::fs::hard_link(draft, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e).with_context(|| format!("publishing the ledger {}", path.display())),
        }
    }

    /// A ledger that writes nothing: processes still die with the harness
    /// and carry `run_id`.
    pub fn unrecorded(run_id: &str) -> Ledger {
        Ledger {
            inner: Arc::new(Inner {
                run_id: run_id.to_string(),
                path: None,
                run_dir: None,
                state: Mutex::new(State {
                    file: None,
                    next_id: 1,
                    held: BTreeMap::new(),
                }),
            }),
        }
    }

    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// The ledger file while the run is in progress (None if unrecorded).
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// What is held now.
    pub fn held(&self) -> Vec<Resource> {
        self.state().held.values().cloned().collect()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().expect("ledger lock poisoned")
    }

    fn append(&self, line: &Line) -> anyhow::Result<()> {
        let mut state = self.state();
        Self::append_locked(&mut state, self.inner.path.as_deref(), line)
    }

    fn append_locked(state: &mut State, path: Option<&Path>, line: &Line) -> anyhow::Result<()> {
        let Some(file) = state.file.as_mut() else {
            return Ok(());
        };
        let path = path.expect("a recorded ledger has a path").display();
        file.write_all(&line.encode())
            .and_then(|()| file.sync_data())
            .with_context(|| format!("writing the ledger {path}"))
    }

    /// Writes `resource` down (durably) and holds it for the run.
    pub fn record(&self, resource: Resource) -> anyhow::Result<Held> {
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        let line = Line::Create {
            id,
            resource: resource.clone(),
        };
        Self::append_locked(&mut state, self.inner.path.as_deref(), &line)?;
        state.held.insert(id, resource);
        Ok(Held {
            id,
            ledger: self.clone(),
        })
    }

    fn release(&self, id: u64) -> anyhow::Result<()> {
        let mut state = self.state();
        if state.held.remove(&id).is_none() {
            return Ok(());
        }
        Self::append_locked(
            &mut state,
            self.inner.path.as_deref(),
            &Line::Release { id },
        )
    }

    /// Starts `cmd` as process `name` of the run: marked with the run id,
    /// killed by the kernel if the harness dies, recorded. A child the
    /// ledger could not record is killed before the error returns.
    pub fn spawn(&self, cmd: Command, name: &str) -> anyhow::Result<(Child, Held)> {
        self.spawn_as(cmd, name, Lifetime::DiesWithHarness)
    }

    /// [`Ledger::spawn`], with the child's [`Lifetime`] chosen.
    pub fn spawn_as(
        &self,
        mut cmd: Command,
        name: &str,
        lifetime: Lifetime,
    ) -> anyhow::Result<(Child, Held)> {
        cmd.env(RUN_ID_ENV, self.run_id());
        let mut child = match lifetime {
            Lifetime::DiesWithHarness => process::spawn(cmd),
            Lifetime::MayOutliveHarness => cmd.spawn(),
        }
        .with_context(|| format!("starting {name}"))?;
        let identity = ProcessIdentity::of(child.id()).unwrap_or(ProcessIdentity {
            pid: child.id(),
            // Not found: it already exited. No heal will match it by pid.
            start_ticks: 0,
        });
        match self.record(Resource::Process {
            name: name.to_string(),
            identity,
        }) {
            Ok(held) => Ok((child, held)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e.context(format!("{name} was stopped: it could not be recorded")))
            }
        }
    }

    /// Ends the run's ledger. With nothing held, writes `close` and moves
    /// the file into the run directory (or deletes it, without one); with
    /// something still held, leaves it for the next heal and says what.
    pub fn close(&self) -> anyhow::Result<()> {
        let mut state = self.state();
        if state.file.is_none() {
            return Ok(());
        }
        if !state.held.is_empty() {
            let what: Vec<String> = state.held.values().map(Resource::describe).collect();
            bail!(
                "the run still holds {}; the next `faultline test` or `faultline heal` undoes it",
                what.join(", ")
            );
        }
        let path = self.inner.path.as_deref();
        Self::append_locked(&mut state, path, &Line::Close)?;
        let path = path.expect("a recorded ledger has a path");
        retire(path, self.inner.run_dir.as_deref())?;
        // Unlocks: the file is already out of the ledger folder.
        state.file = None;
        Ok(())
    }
}

/// Moves a finished ledger from the ledger folder to its run directory,
/// or deletes it when there is none (or the run directory is gone).
pub(crate) fn retire(path: &Path, run_dir: Option<&Path>) -> anyhow::Result<()> {
    if let Some(dir) = run_dir.filter(|d| d.is_dir()) {
        let to = dir.join(RUN_LEDGER_FILE);
        if std::fs::rename(path, &to).is_ok() {
            return Ok(());
        }
    }
    std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u32) -> Resource {
        Resource::IptablesChain {
            chain: format!("FAULTLINE-T{n}"),
        }
    }

    #[test]
    fn every_entry_is_on_disk_when_record_returns() {
        let store = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(store.path(), "test", None).expect("open");
        let path = ledger.path().expect("recorded").to_path_buf();
        assert_eq!(path.parent(), Some(ledger_dir(store.path()).as_path()));
        let a = ledger.record(chain(1)).expect("record");
        let _b = ledger.record(chain(2)).expect("record");
        let on_disk = Recorded::parse(&std::fs::read(&path).expect("read"));
        assert_eq!(on_disk.run_id.as_deref(), Some(ledger.run_id()));
        assert_eq!(on_disk.held.len(), 2);
        a.release().expect("release");
        let on_disk = Recorded::parse(&std::fs::read(&path).expect("read"));
        assert_eq!(on_disk.held.values().collect::<Vec<_>>(), vec![&chain(2)]);
    }

    #[test]
    fn a_clean_close_moves_the_ledger_into_the_run_dir() {
        let store = tempfile::tempdir().expect("tempdir");
        let run_dir = store.path().join("t").join("1");
        std::fs::create_dir_all(&run_dir).expect("mkdir");
        let ledger = Ledger::open(store.path(), "test", Some(&run_dir)).expect("open");
        let path = ledger.path().expect("recorded").to_path_buf();
        ledger
            .record(chain(1))
            .expect("record")
            .release()
            .expect("release");
        ledger.close().expect("close");
        assert!(!path.exists(), "no longer among the open ledgers");
        let kept = Recorded::parse(&std::fs::read(run_dir.join(RUN_LEDGER_FILE)).expect("kept"));
        assert!(kept.is_clean());
        assert_eq!(kept.last_id, 1);
        ledger.close().expect("closing twice is fine");
    }

    #[test]
    fn close_with_something_held_keeps_the_ledger_and_names_it() {
        let store = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(store.path(), "test", None).expect("open");
        let _held = ledger.record(chain(7)).expect("record");
        let e = ledger.close().expect_err("still held");
        assert!(format!("{e:#}").contains("FAULTLINE-T7"), "{e:#}");
        assert!(ledger.path().expect("recorded").exists());
    }

    #[test]
    fn a_live_ledger_is_locked_against_everyone_else() {
        let store = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(store.path(), "test", None).expect("open");
        let other = File::open(ledger.path().expect("recorded")).expect("open again");
        assert!(!try_lock(&other).expect("flock"), "held by the run");
        drop(ledger);
        // Free once the run is gone (a moment later if another test
        // thread is forking a child, which shares the descriptor until it
        // execs).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !try_lock(&other).expect("flock") {
            assert!(
                std::time::Instant::now() < deadline,
                "still locked after the run is gone"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn a_published_ledger_is_locked_and_names_its_run_and_no_draft_is_left() {
        let store = tempfile::tempdir().expect("tempdir");
        let run_dir = store.path().join("t").join("1");
        let a = Ledger::open(store.path(), "test", Some(&run_dir)).expect("open");
        let b = Ledger::open(store.path(), "lab up", None).expect("open");
        assert_ne!(a.run_id(), b.run_id());
        let recorded = Recorded::parse(&std::fs::read(a.path().expect("recorded")).expect("read"));
        assert_eq!(recorded.run_id.as_deref(), Some(a.run_id()));
        assert_eq!(recorded.command.as_deref(), Some("test"));
        assert_eq!(recorded.pid, Some(std::process::id()));
        assert_eq!(recorded.run_dir.as_deref(), Some(run_dir.as_path()));
        assert!(recorded.bad_lines.is_empty() && !recorded.closed);
        let mut names: Vec<String> = std::fs::read_dir(ledger_dir(store.path()))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut expected = vec![
            format!("{}.jsonl", a.run_id()),
            format!("{}.jsonl", b.run_id()),
        ];
        expected.sort();
        assert_eq!(names, expected, "no draft left behind");
    }

    #[test]
    fn an_unrecorded_ledger_writes_nothing_but_holds() {
        let l = Ledger::unrecorded("abcd");
        let held = l.record(chain(1)).expect("record");
        assert_eq!(l.held().len(), 1);
        held.release().expect("release");
        assert!(l.held().is_empty());
        l.close().expect("close");
    }
}

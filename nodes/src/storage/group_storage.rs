//! The durable state of one consensus group on one node.
//!
//! Lives in `<data-dir>/group-<id>/`: `wal.log` (records, see
//! [`WalRecord`]) and `snapshot` (the latest state-machine snapshot).
//! [`GroupStorage::open`] replays both into a [`Recovered`] for the core.
//! [`GroupStorage::stage`] buffers what a `Ready` asks to persist;
//! [`GroupStorage::sync`] makes the batch durable with one fsync, and only
//! then may the runtime acknowledge anything that depends on it.
//! [`GroupStorage::start_sync`] does the same off the calling thread: it
//! writes the batch and hands the fsync to the WAL's sync thread
//! ([`super::syncer`]), returning a write number that
//! [`GroupStorage::durable`] reports once it is durable. Writes staged
//! while a sync runs share the next fsync.
//!
//! A new snapshot (installed from the leader, or taken by compaction) is
//! atomic with its WAL record, the commit point: it is first written
//! durably as `snapshot.pending`; the WAL record naming it is made durable;
//! only then is the file renamed to `snapshot`. Recovery trusts the WAL:
//! a pending file the WAL names is renamed into place (the crash came
//! after the commit point), one it does not name is deleted (before it).
//! So a crash at any point recovers the state before the snapshot or the
//! state after it, never the new snapshot over the old log's suffix
//! (issue 21, finding 5). Creating the group's directory fsyncs its parent
//! (finding 7).
//!
//! With `no_fsync` (the planted bug) `sync` returns at once and the batch
//! stays in a user-space buffer that [`GroupStorage::flush_lazily`] writes
//! out every [`LAZY_FLUSH_INTERVAL`]: a SIGKILL loses what was acknowledged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::record::WalRecord;
use super::syncer::{Syncer, Waker};
use super::wal::{create_dir_durably, sync_dir, Wal};
use super::{snapshot_file, StorageError};
use crate::consensus::{Entry, GroupId, HardState, LogIndex, Recovered, Snapshot, Term};

/// How often the `no-fsync` bug writes its buffer out. Long enough that a
/// crash of every node loses seconds of acknowledged writes, so a short
/// `faultline test` with the kill nemesis catches the bug reliably (at
/// 1.5 s a 12 s run missed it in three seeds out of three once).
pub const LAZY_FLUSH_INTERVAL: Duration = Duration::from_millis(5000);

/// One group's WAL and snapshot, plus an in-memory copy of the entries after
/// the snapshot (to rewrite the WAL on compaction).
pub struct GroupStorage {
    dir: PathBuf,
    wal: Wal,
    hard_state: HardState,
    /// (index, term) of the latest stored snapshot; (0, 0) if none.
    snapshot_index: LogIndex,
    snapshot_term: Term,
    /// Entries after the snapshot, contiguous from `snapshot_index + 1`.
    entries: Vec<Entry>,
    /// An installed snapshot staged in `snapshot.pending`, whose WAL record
    /// is not durable yet: `sync` renames it into place once it is.
    snapshot_pending: bool,
    no_fsync: bool,
    last_flush: Instant,
    scratch: Vec<u8>,
    /// The number of the last write handed out (by `start_sync` or `sync`).
    written_seq: u64,
    /// Writes through this number are durable (by `sync` or a rewrite).
    durable_seq: u64,
    /// The sync thread, started by the first `start_sync`.
    syncer: Option<Syncer>,
    /// What the sync thread calls after each fsync.
    waker: Option<Waker>,
    /// Tests: writes are not handed to the sync thread while set.
    #[cfg(test)]
    syncs_paused: bool,
}

impl std::fmt::Debug for GroupStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupStorage")
            .field("dir", &self.dir)
            .field("snapshot_index", &self.snapshot_index)
            .field("entries", &self.entries.len())
            .field("written_seq", &self.written_seq)
            .field("durable_seq", &self.durable_seq)
            .field("syncer", &self.syncer)
            .finish()
    }
}

impl GroupStorage {
    /// The directory of `group` under `data_dir`.
    pub fn group_dir(data_dir: &Path, group: GroupId) -> PathBuf {
        data_dir.join(format!("group-{}", group.0))
    }

    /// Open (or create) a group's storage and recover its durable state.
    pub fn open(
        data_dir: &Path,
        group: GroupId,
        no_fsync: bool,
    ) -> Result<(GroupStorage, Recovered), StorageError> {
        let dir = Self::group_dir(data_dir, group);
        create_dir_durably(&dir)?;
        let wal_path = dir.join("wal.log");
        let (wal, recovery) = Wal::open(&wal_path)?;

        let mut hard_state = HardState::default();
        let mut entries: Vec<Entry> = Vec::new();
        let (mut snap_index, mut snap_term) = (LogIndex(0), Term(0));
        for (i, payload) in recovery.payloads.iter().enumerate() {
            let record = WalRecord::decode(payload).map_err(|e| StorageError::Corrupt {
                file: wal_path.clone(),
                offset: 0,
                reason: format!("record #{i}: {e}"),
            })?;
            match record {
                WalRecord::HardState(hs) => hard_state = hs,
                WalRecord::Entries(new) => {
                    if let Err(reason) = splice(&mut entries, snap_index, new) {
                        return Err(StorageError::Corrupt {
                            file: wal_path.clone(),
                            offset: 0,
                            reason: format!("record #{i}: {reason}"),
                        });
                    }
                }
                WalRecord::Snapshot {
                    index,
                    term,
                    whole_log,
                } => {
                    if whole_log {
                        entries.clear();
                    } else {
                        entries.retain(|e| e.index > index);
                    }
                    snap_index = index;
                    snap_term = term;
                }
            }
        }
        let snapshot = Self::recover_snapshot(&dir, snap_index, snap_term)?;
        let recovered = Recovered {
            hard_state,
            snapshot,
            entries: entries.clone(),
        };
        tracing::info!(
            group = %group,
            term = hard_state.term.0,
            commit = hard_state.commit.0,
            snapshot_index = snap_index.0,
            entries = entries.len(),
            torn_bytes = recovery.truncated_bytes,
            "recovered group storage"
        );
        Ok((
            GroupStorage {
                dir,
                wal,
                hard_state,
                snapshot_index: snap_index,
                snapshot_term: snap_term,
                entries,
                snapshot_pending: false,
                no_fsync,
                last_flush: Instant::now(),
                scratch: Vec::new(),
                written_seq: 0,
                durable_seq: 0,
                syncer: None,
                waker: None,
                #[cfg(test)]
                syncs_paused: false,
            },
            recovered,
        ))
    }

    /// The snapshot the WAL's last snapshot record names, (`index`, `term`),
    /// or none if `index` is 0: from `snapshot`, or from `snapshot.pending`
    /// (renamed into place: the crash came after the record was durable).
    /// A pending file the WAL does not name is deleted.
    fn recover_snapshot(
        dir: &Path,
        index: LogIndex,
        term: Term,
    ) -> Result<Option<Snapshot>, StorageError> {
        let path = dir.join("snapshot");
        let pending_path = dir.join("snapshot.pending");
        let names = |s: &Snapshot| (s.meta.index, s.meta.term) == (index, term);
        let pending = snapshot_file::read(&pending_path)?;
        let snapshot = match snapshot_file::read(&path)? {
            Some(s) if names(&s) => Some(s),
            current => match pending {
                Some(p) if names(&p) => {
                    std::fs::rename(&pending_path, &path)
                        .map_err(|e| StorageError::io(&path, e))?;
                    sync_dir(&path)?;
                    tracing::info!(dir = %dir.display(), index = index.0, "finished installing a snapshot the WAL had committed");
                    return Ok(Some(p));
                }
                _ if index == LogIndex(0) && current.is_none() => None,
                _ => {
                    return Err(StorageError::Corrupt {
                        file: path,
                        offset: 0,
                        reason: format!(
                            "the WAL's last snapshot record names one at {index} (term {}), but the file holds {}",
                            term.0,
                            current.map_or("none".to_string(), |s| format!(
                                "one at {} (term {})",
                                s.meta.index, s.meta.term.0
                            ))
                        ),
                    })
                }
            },
        };
        if pending_path.exists() {
            // Staged by an install or compaction whose record never became durable.
            std::fs::remove_file(&pending_path).map_err(|e| StorageError::io(&pending_path, e))?;
            sync_dir(&pending_path)?;
        }
        Ok(snapshot)
    }

    /// Buffer what a Ready asks to persist, in the contract's order:
    /// snapshot (replaces the whole log), hard state, entries (truncate from
    /// the first one's index, then append). Nothing is durable until
    /// [`GroupStorage::sync`]; a snapshot is written durably here, but to
    /// `snapshot.pending`: it takes effect with its WAL record.
    pub fn stage(
        &mut self,
        snapshot: Option<&Snapshot>,
        hard_state: Option<HardState>,
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        if let Some(snap) = snapshot {
            snapshot_file::write(&self.dir.join("snapshot.pending"), snap)?;
            self.snapshot_pending = true;
            self.snapshot_index = snap.meta.index;
            self.snapshot_term = snap.meta.term;
            self.entries.clear();
            self.append_record(&WalRecord::Snapshot {
                index: snap.meta.index,
                term: snap.meta.term,
                whole_log: true,
            });
        }
        if let Some(hs) = hard_state {
            self.hard_state = hs;
            self.append_record(&WalRecord::HardState(hs));
        }
        if !entries.is_empty() {
            splice(&mut self.entries, self.snapshot_index, entries.to_vec())
                .map_err(StorageError::Contract)?;
            self.append_record(&WalRecord::Entries(entries.to_vec()));
        }
        Ok(())
    }

    fn append_record(&mut self, record: &WalRecord) {
        self.scratch.clear();
        record.encode(&mut self.scratch);
        self.wal.append(&self.scratch);
    }

    /// Make every staged record durable: write and fsync once, on this
    /// thread (after any sync the sync thread still runs). With the
    /// `no-fsync` bug, returns at once and leaves them in memory.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.written_seq += 1;
        if self.no_fsync {
            self.durable_seq = self.written_seq;
            if self.snapshot_pending {
                // Even the bug keeps the files consistent for a SIGKILL:
                // the record reaches the page cache before the rename.
                self.wal.write_pending()?;
                self.install_pending_snapshot()?;
            }
            return Ok(());
        }
        if let Some(syncer) = &mut self.syncer {
            syncer.wait_all()?;
        }
        if self.wal.has_pending() {
            self.wal.sync()?;
        }
        self.durable_seq = self.written_seq;
        self.install_pending_snapshot()
    }

    /// The function the sync thread calls after each fsync (the node
    /// wakes its core thread with it). Without one, nobody is told.
    pub fn set_waker(&mut self, waker: Waker) {
        self.waker = Some(waker);
    }

    /// Write every staged record to the file and hand its fsync to the
    /// sync thread. Returns the write's number: it is durable once
    /// [`GroupStorage::durable`] reaches it. With the `no-fsync` bug the
    /// records stay in memory and the number counts as durable at once.
    /// A staged snapshot is never synced this way (it needs its rename
    /// after the fsync): use [`GroupStorage::sync`].
    pub fn start_sync(&mut self) -> Result<u64, StorageError> {
        if self.snapshot_pending {
            return Err(StorageError::Contract(
                "a staged snapshot is made durable by sync, not start_sync".to_string(),
            ));
        }
        self.written_seq += 1;
        if self.no_fsync {
            self.durable_seq = self.written_seq;
            return Ok(self.written_seq);
        }
        self.wal.write_pending()?;
        #[cfg(test)]
        if self.syncs_paused {
            return Ok(self.written_seq);
        }
        self.request_sync()?;
        Ok(self.written_seq)
    }

    /// Hand the fsync of everything written so far to the sync thread.
    fn request_sync(&mut self) -> Result<(), StorageError> {
        let syncer = match &mut self.syncer {
            Some(s) => s,
            None => {
                let waker = self.waker.clone().unwrap_or_else(|| Arc::new(|| {}));
                self.syncer.insert(Syncer::start(waker)?)
            }
        };
        syncer.request(
            self.written_seq,
            self.wal.file(),
            self.wal.path().to_path_buf(),
        );
        Ok(())
    }

    /// Tests: hold every write back from the sync thread (it stays not
    /// durable) until called with `false`, which hands them all over.
    #[cfg(test)]
    pub(crate) fn pause_syncs(&mut self, paused: bool) -> Result<(), StorageError> {
        self.syncs_paused = paused;
        if !paused && self.written_seq > self.durable_seq {
            self.request_sync()?;
        }
        Ok(())
    }

    /// The number of the last write known durable (never blocks). An
    /// fsync that failed is an error: the node must stop.
    pub fn durable(&mut self) -> Result<u64, StorageError> {
        if let Some(syncer) = &mut self.syncer {
            self.durable_seq = self.durable_seq.max(syncer.poll()?);
        }
        Ok(self.durable_seq)
    }

    /// Block until every write handed to the sync thread is durable.
    pub fn wait_durable(&mut self) -> Result<u64, StorageError> {
        if let Some(syncer) = &mut self.syncer {
            self.durable_seq = self.durable_seq.max(syncer.wait_all()?);
        }
        Ok(self.durable_seq)
    }

    /// The WAL record of a staged snapshot is durable: put the file in place.
    fn install_pending_snapshot(&mut self) -> Result<(), StorageError> {
        if !self.snapshot_pending {
            return Ok(());
        }
        let path = self.dir.join("snapshot");
        std::fs::rename(self.dir.join("snapshot.pending"), &path)
            .map_err(|e| StorageError::io(&path, e))?;
        sync_dir(&path)?;
        self.snapshot_pending = false;
        Ok(())
    }

    /// The `no-fsync` bug's lazy writer: write the buffer out when it is
    /// older than [`LAZY_FLUSH_INTERVAL`]. A no-op without the bug.
    pub fn flush_lazily(&mut self, now: Instant) -> Result<(), StorageError> {
        if self.no_fsync && now.duration_since(self.last_flush) >= LAZY_FLUSH_INTERVAL {
            self.last_flush = now;
            self.wal.write_pending()?;
        }
        Ok(())
    }

    /// Local compaction: store `snap` durably, then drop the entries it
    /// covers by rewriting the WAL (hard state, snapshot marker, the rest).
    pub fn compact(&mut self, snap: &Snapshot) -> Result<(), StorageError> {
        if snap.meta.index <= self.snapshot_index {
            return Ok(());
        }
        // Nothing of the old file may still be in the sync thread's hands.
        self.wait_durable()?;
        snapshot_file::write(&self.dir.join("snapshot.pending"), snap)?;
        self.snapshot_pending = true;
        self.snapshot_index = snap.meta.index;
        self.snapshot_term = snap.meta.term;
        self.entries.retain(|e| e.index > snap.meta.index);
        let mut payloads = Vec::with_capacity(3);
        for record in [
            WalRecord::HardState(self.hard_state),
            WalRecord::Snapshot {
                index: self.snapshot_index,
                term: self.snapshot_term,
                whole_log: false,
            },
            WalRecord::Entries(self.entries.clone()),
        ] {
            let mut buf = Vec::new();
            record.encode(&mut buf);
            payloads.push(buf);
        }
        self.wal.rewrite(&payloads)?;
        // The fresh file holds, fsynced, everything staged so far.
        self.written_seq += 1;
        self.durable_seq = self.written_seq;
        self.install_pending_snapshot()
    }

    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    /// Entries stored after the snapshot.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Size of the WAL file (including anything staged).
    pub fn wal_bytes(&self) -> u64 {
        self.wal.len_bytes()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Truncate `log` from `new[0].index` and append `new`, keeping `log`
/// contiguous after `base` (the snapshot index). Entries at or before `base`
/// are covered by the snapshot and skipped.
fn splice(log: &mut Vec<Entry>, base: LogIndex, new: Vec<Entry>) -> Result<(), String> {
    let new: Vec<Entry> = new.into_iter().filter(|e| e.index > base).collect();
    let Some(first) = new.first() else {
        return Ok(());
    };
    let first = first.index;
    let next = LogIndex(base.0 + log.len() as u64 + 1);
    if first > next {
        return Err(format!(
            "entries from {first} leave a gap after {}",
            next.prev()
        ));
    }
    let keep = (first.0 - base.0 - 1) as usize;
    log.truncate(keep);
    log.extend(new);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{EntryKind, NodeId, SnapshotMeta};

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Normal(format!("cmd{index}").into_bytes()),
        }
    }

    fn hs(term: u64, vote: u64, commit: u64) -> HardState {
        HardState {
            term: Term(term),
            vote: Some(NodeId(vote)),
            commit: LogIndex(commit),
        }
    }

    #[test]
    fn hard_state_and_entries_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = GroupId(3);
        let (mut st, rec) = GroupStorage::open(dir.path(), g, false).expect("open");
        assert_eq!(rec, Recovered::default());
        st.stage(None, Some(hs(1, 1, 0)), &[e(1, 1), e(2, 1), e(3, 1)])
            .expect("stage");
        st.sync().expect("sync");
        // A new leader overwrites a conflicting suffix.
        st.stage(None, Some(hs(2, 2, 1)), &[e(2, 2)])
            .expect("stage");
        st.sync().expect("sync");
        drop(st);
        assert!(
            dir.path().join("group-3").join("wal.log").exists(),
            "group id in the path"
        );
        let (_, rec) = GroupStorage::open(dir.path(), g, false).expect("reopen");
        assert_eq!(rec.hard_state, hs(2, 2, 1));
        assert_eq!(rec.entries, vec![e(1, 1), e(2, 2)]);
        assert_eq!(rec.snapshot, None);
    }

    #[test]
    fn nothing_is_on_disk_before_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut st, _) = GroupStorage::open(dir.path(), GroupId(0), false).expect("open");
        st.stage(None, Some(hs(5, 1, 0)), &[e(1, 5)])
            .expect("stage");
        let (_, rec) = GroupStorage::open(dir.path(), GroupId(0), false).expect("peek");
        assert_eq!(rec, Recovered::default(), "staged is not durable");
        st.sync().expect("sync");
        let (_, rec) = GroupStorage::open(dir.path(), GroupId(0), false).expect("reopen");
        assert_eq!(rec.hard_state.term, Term(5));
    }

    #[test]
    fn no_fsync_bug_loses_acknowledged_entries_on_a_crash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut st, _) = GroupStorage::open(dir.path(), GroupId(0), true).expect("open");
        st.stage(None, Some(hs(1, 1, 0)), &[e(1, 1)])
            .expect("stage");
        st.sync().expect("sync returns at once");
        // A crash now (drop without flush) loses the "synced" entry.
        let (_, rec) = GroupStorage::open(dir.path(), GroupId(0), false).expect("reopen");
        assert!(
            rec.entries.is_empty(),
            "the bug must lose acknowledged writes"
        );
        // The lazy flusher writes it out eventually.
        st.flush_lazily(Instant::now() + LAZY_FLUSH_INTERVAL)
            .expect("flush");
        let (_, rec) = GroupStorage::open(dir.path(), GroupId(0), false).expect("reopen");
        assert_eq!(rec.entries, vec![e(1, 1)]);
    }

    #[test]
    fn compaction_keeps_the_suffix_and_the_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = GroupId(1);
        let (mut st, _) = GroupStorage::open(dir.path(), g, false).expect("open");
        let entries: Vec<Entry> = (1..=10).map(|i| e(i, 1)).collect();
        st.stage(None, Some(hs(1, 1, 8)), &entries).expect("stage");
        st.sync().expect("sync");
        let snap = Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(6),
                term: Term(1),
                voters: vec![NodeId(1)],
                outgoing: Vec::new(),
            },
            data: b"sm".to_vec(),
        };
        let before = st.wal_bytes();
        st.compact(&snap).expect("compact");
        assert!(st.wal_bytes() < before, "the WAL shrinks");
        st.stage(None, None, &[e(11, 2)]).expect("stage");
        st.sync().expect("sync");
        let (_, rec) = GroupStorage::open(dir.path(), g, false).expect("reopen");
        assert_eq!(rec.snapshot, Some(snap));
        assert_eq!(rec.entries.first().map(|e| e.index), Some(LogIndex(7)));
        assert_eq!(rec.entries.last(), Some(&e(11, 2)));
        assert_eq!(rec.hard_state, hs(1, 1, 8));
    }

    #[test]
    fn an_installed_snapshot_replaces_the_whole_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = GroupId(0);
        let (mut st, _) = GroupStorage::open(dir.path(), g, false).expect("open");
        st.stage(None, None, &[e(1, 1), e(2, 1), e(3, 1)])
            .expect("stage");
        let snap = Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(20),
                term: Term(4),
                voters: vec![],
                outgoing: Vec::new(),
            },
            data: vec![1, 2, 3],
        };
        st.stage(Some(&snap), Some(hs(4, 2, 20)), &[e(21, 4)])
            .expect("stage");
        st.sync().expect("sync");
        let (_, rec) = GroupStorage::open(dir.path(), g, false).expect("reopen");
        assert_eq!(rec.snapshot.map(|s| s.meta.index), Some(LogIndex(20)));
        assert_eq!(rec.entries, vec![e(21, 4)]);
    }

    /// A Raft core for node 1 of 3 from what storage recovered.
    fn raft_starts(rec: Recovered) -> Result<crate::raft::RaftNode, crate::consensus::ConfigError> {
        let cfg = crate::consensus::CoreConfig::new(
            NodeId(1),
            GroupId(0),
            vec![NodeId(1), NodeId(2), NodeId(3)],
        );
        crate::raft::RaftNode::new(cfg, rec)
    }

    /// Regression (issue 21, finding 5): an installed snapshot was put in
    /// place durably before its WAL record; a kill in between recovered the
    /// new snapshot over the old log's suffix (a deposed leader's entries),
    /// and the core refused to start ("term decreases").
    #[test]
    fn a_kill_during_snapshot_install_leaves_a_node_that_starts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = GroupId(0);
        // Entries 1..=27 from term 1; 28 and 29 from a deposed leader of term 3.
        let log: Vec<Entry> = (1..=29).map(|i| e(i, if i < 28 { 1 } else { 3 })).collect();
        let before = {
            let (mut st, _) = GroupStorage::open(dir.path(), g, false).expect("open");
            st.stage(None, Some(hs(3, 2, 27)), &log).expect("stage");
            st.sync().expect("sync");
            drop(st);
            let (_, rec) = GroupStorage::open(dir.path(), g, false).expect("reopen");
            rec
        };
        raft_starts(before.clone()).expect("the log before the install is sound");
        // The leader of term 5 installs a snapshot at 28; killed before the
        // WAL record is durable.
        let snap = Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(28),
                term: Term(5),
                voters: vec![NodeId(1), NodeId(2), NodeId(3)],
                outgoing: Vec::new(),
            },
            data: b"sm at 28".to_vec(),
        };
        let (mut st, _) = GroupStorage::open(dir.path(), g, false).expect("open");
        st.stage(Some(&snap), Some(hs(5, 2, 28)), &[])
            .expect("stage");
        drop(st); // killed: nothing synced
        let (_, rec) = GroupStorage::open(dir.path(), g, false).expect("reopen after the kill");
        raft_starts(rec.clone()).expect("a killed install leaves a node that starts");
        assert_eq!(rec, before, "the install never happened");
        assert!(!dir.path().join("group-0").join("snapshot.pending").exists());
        // Killed after the WAL record is durable, before the rename.
        let (mut st, _) = GroupStorage::open(dir.path(), g, false).expect("open");
        st.stage(Some(&snap), Some(hs(5, 2, 28)), &[])
            .expect("stage");
        st.sync().expect("sync");
        drop(st);
        let gdir = dir.path().join("group-0");
        std::fs::rename(gdir.join("snapshot"), gdir.join("snapshot.pending"))
            .expect("undo the rename");
        let (_, rec) = GroupStorage::open(dir.path(), g, false).expect("reopen after the kill");
        raft_starts(rec.clone()).expect("a committed install leaves a node that starts");
        assert_eq!(rec.snapshot, Some(snap), "the install is finished");
        assert!(
            rec.entries.is_empty(),
            "the snapshot replaced the whole log"
        );
        assert_eq!(rec.hard_state, hs(5, 2, 28));
    }

    #[test]
    fn a_kill_during_compaction_recovers_the_log_before_or_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = GroupId(0);
        let (mut st, _) = GroupStorage::open(dir.path(), g, false).expect("open");
        let log: Vec<Entry> = (1..=10).map(|i| e(i, 1)).collect();
        st.stage(None, Some(hs(1, 1, 8)), &log).expect("stage");
        st.sync().expect("sync");
        let snap = Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(6),
                term: Term(1),
                voters: vec![NodeId(1)],
                outgoing: Vec::new(),
            },
            data: b"sm".to_vec(),
        };
        st.compact(&snap).expect("compact");
        drop(st);
        // Killed after the WAL rewrite, before the rename: rolled forward.
        let gdir = dir.path().join("group-0");
        std::fs::rename(gdir.join("snapshot"), gdir.join("snapshot.pending")).expect("undo");
        let (_, rec) = GroupStorage::open(dir.path(), g, false).expect("reopen");
        assert_eq!(rec.snapshot, Some(snap.clone()));
        assert_eq!(rec.entries.first().map(|e| e.index), Some(LogIndex(7)));
        // A pending file the WAL never named is dropped.
        let mut later = snap.clone();
        later.meta.index = LogIndex(9);
        snapshot_file::write(&gdir.join("snapshot.pending"), &later).expect("write");
        let (_, rec) = GroupStorage::open(dir.path(), g, false).expect("reopen");
        assert_eq!(rec.snapshot, Some(snap));
        assert!(!gdir.join("snapshot.pending").exists());
    }

    #[test]
    fn a_missing_snapshot_the_wal_names_refuses_to_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut st, _) = GroupStorage::open(dir.path(), GroupId(0), false).expect("open");
        st.stage(None, None, &[e(1, 1), e(2, 1)]).expect("stage");
        st.sync().expect("sync");
        let snap = Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(2),
                term: Term(1),
                voters: vec![NodeId(1)],
                outgoing: Vec::new(),
            },
            data: b"sm".to_vec(),
        };
        st.compact(&snap).expect("compact");
        drop(st);
        std::fs::remove_file(dir.path().join("group-0").join("snapshot")).expect("rm");
        let err = GroupStorage::open(dir.path(), GroupId(0), false).expect_err("missing");
        assert!(err.to_string().contains("snapshot"), "{err}");
    }

    /// Regression (issue 21, finding 7): a new group's directory was never
    /// fsynced into its parent, so a power loss could take the group's vote,
    /// entries or term floor away with the directory entry.
    #[test]
    fn a_new_group_directory_is_fsynced_into_the_data_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        crate::storage::wal::synced_dirs::take();
        let (mut st, _) = GroupStorage::open(&data_dir, GroupId(4), false).expect("open");
        let synced = crate::storage::wal::synced_dirs::take();
        for parent in [
            dir.path().to_path_buf(),
            data_dir.clone(),
            data_dir.join("group-4"),
        ] {
            assert!(
                synced.contains(&parent),
                "{} not fsynced: {synced:?}",
                parent.display()
            );
        }
        st.stage(None, Some(hs(7, 1, 0)), &[]).expect("stage");
        st.sync().expect("sync");
    }

    #[test]
    fn a_gap_in_the_entries_is_a_contract_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut st, _) = GroupStorage::open(dir.path(), GroupId(0), false).expect("open");
        st.stage(None, None, &[e(1, 1)]).expect("stage");
        assert!(st.stage(None, None, &[e(3, 1)]).is_err());
    }

    #[test]
    fn splice_truncates_then_appends() {
        let mut log = vec![e(5, 1), e(6, 1), e(7, 1)];
        splice(&mut log, LogIndex(4), vec![e(6, 2), e(7, 2), e(8, 2)]).expect("ok");
        assert_eq!(log, vec![e(5, 1), e(6, 2), e(7, 2), e(8, 2)]);
        splice(&mut log, LogIndex(4), vec![e(3, 1), e(4, 1)]).expect("covered by snapshot");
        assert_eq!(log.len(), 4);
        assert!(splice(&mut log, LogIndex(4), vec![e(10, 2)]).is_err());
    }
}

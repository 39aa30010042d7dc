//! The write-ahead log file: framed, checksummed records, group commit.
//!
//! File: `FLWAL002` (8 bytes), then frames. Frame:
//! `len: u32 LE | crc32(payload): u32 LE | crc32(the 8 bytes before): u32 LE | payload`.
//! The header has its own checksum, so a damaged length is known for what
//! it is and never taken for a record cut short by a crash.
//!
//! Appends go to a buffer; [`Wal::sync`] writes the buffer and fsyncs once
//! for the whole batch. Recovery ([`Wal::open`]) reads every frame. A bad
//! frame (header or payload) is a torn tail, a crash mid-write, only if no
//! valid frame starts anywhere after it: then it is truncated away. If one
//! does, acknowledged records follow the damage, and opening fails with the
//! file and the offset, leaving the file untouched (issue 21, finding 6).
//!
//! Creating the file fsyncs its directory, so the new name survives a power
//! loss along with what is written into the file (finding 7).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::StorageError;

/// The first bytes of every WAL file (the format's version is in it).
pub const MAGIC: &[u8; 8] = b"FLWAL002";
/// Frame header: length, payload checksum, header checksum.
pub const HEADER_BYTES: usize = 12;
/// No record is larger (a length above this is corruption, not a torn tail).
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// An open WAL file.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    /// Shared with the sync thread ([`super::syncer`]), which fsyncs it.
    file: Arc<File>,
    /// Frames appended but not yet written to the file.
    pending: Vec<u8>,
    /// Bytes in the file (written, maybe not yet fsynced).
    written_bytes: u64,
}

/// What recovery found.
#[derive(Debug)]
pub struct Recovery {
    pub payloads: Vec<Vec<u8>>,
    /// Bytes of torn tail cut off (0 if the file ended cleanly).
    pub truncated_bytes: u64,
}

impl Wal {
    /// Open (or create) the WAL at `path`, read back every record, and cut a
    /// torn tail. Fails on corruption in the middle, naming file and offset.
    pub fn open(path: &Path) -> Result<(Wal, Recovery), StorageError> {
        let io = |e| StorageError::io(path, e);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io)?;
        if data.len() < MAGIC.len() && MAGIC.starts_with(&data) {
            // New, or a crash while it was being created: start it over.
            file.set_len(0).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.write_all(MAGIC).map_err(io)?;
            file.sync_all().map_err(io)?;
            sync_dir(path)?;
            data = MAGIC.to_vec();
        }
        if !data.starts_with(MAGIC) {
            return Err(StorageError::Corrupt {
                file: path.to_path_buf(),
                offset: 0,
                reason: format!(
                    "not a faultline WAL of this version (it does not start with {:?})",
                    String::from_utf8_lossy(MAGIC)
                ),
            });
        }
        let (payloads, good_len) = scan(path, &data)?;
        let truncated_bytes = (data.len() - good_len) as u64;
        if truncated_bytes > 0 {
            tracing::warn!(
                file = %path.display(),
                offset = good_len,
                bytes = truncated_bytes,
                "WAL ends in a torn record; truncating it"
            );
            file.set_len(good_len as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::Start(good_len as u64)).map_err(io)?;
        Ok((
            Wal {
                path: path.to_path_buf(),
                file: Arc::new(file),
                pending: Vec::new(),
                written_bytes: good_len as u64,
            },
            Recovery {
                payloads,
                truncated_bytes,
            },
        ))
    }

    /// Append one record to the pending batch (not yet written).
    pub fn append(&mut self, payload: &[u8]) {
        assert!(
            payload.len() <= MAX_RECORD_BYTES,
            "record of {} bytes",
            payload.len()
        );
        assert!(!payload.is_empty(), "records are never empty");
        self.pending.extend_from_slice(&frame_header(payload));
        self.pending.extend_from_slice(payload);
    }

    /// Whether appended records wait to be written.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Bytes appended but not yet written to the file.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Write pending records to the file (the OS page cache), no fsync.
    pub fn write_pending(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        (&*self.file)
            .write_all(&self.pending)
            .map_err(|e| StorageError::io(&self.path, e))?;
        self.written_bytes += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Write pending records and make everything written durable: one
    /// fsync for the whole batch.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.write_pending()?;
        self.file
            .sync_data()
            .map_err(|e| StorageError::io(&self.path, e))
    }

    /// Bytes in the file plus pending ones.
    pub fn len_bytes(&self) -> u64 {
        self.written_bytes + self.pending.len() as u64
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, for the sync thread to fsync.
    pub fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// Atomically replace the WAL with one holding exactly `payloads`: write
    /// a temporary file, fsync, rename over the WAL, fsync the directory.
    /// Pending records are discarded: `payloads` must already include them.
    pub fn rewrite(&mut self, payloads: &[Vec<u8>]) -> Result<(), StorageError> {
        let tmp = self.path.with_extension("rewrite.tmp");
        let mut fresh = Wal {
            path: tmp.clone(),
            file: Arc::new(File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?),
            pending: MAGIC.to_vec(),
            written_bytes: 0,
        };
        for p in payloads {
            fresh.append(p);
        }
        fresh.sync()?;
        std::fs::rename(&tmp, &self.path).map_err(|e| StorageError::io(&self.path, e))?;
        sync_dir(&self.path)?;
        fresh.path = self.path.clone();
        *self = fresh;
        Ok(())
    }
}

/// The header of a frame holding `payload`.
fn frame_header(payload: &[u8]) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..8].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let header_crc = crc32fast::hash(&header[0..8]);
    header[8..12].copy_from_slice(&header_crc.to_le_bytes());
    header
}

/// fsync the directory holding `path`, so a create, rename or removal in
/// it is durable.
pub fn sync_dir(path: &Path) -> Result<(), StorageError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    #[cfg(test)]
    synced_dirs::record(dir);
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

/// Create `dir` and any missing parents, fsyncing the parent of each one
/// created so that the new names survive a power loss.
pub fn create_dir_durably(dir: &Path) -> Result<(), StorageError> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => break,
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
    for created in missing.iter().rev() {
        sync_dir(created)?;
    }
    Ok(())
}

/// Remove `dir` and everything in it, if present, and fsync its parent so
/// that the removal is durable before anything replaces it.
pub fn remove_dir_durably(dir: &Path) -> Result<(), StorageError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(dir, e)),
    }
}

/// Tests: which directories this thread fsynced.
#[cfg(test)]
pub(crate) mod synced_dirs {
    use std::cell::RefCell;
    use std::path::{Path, PathBuf};

    thread_local! {
        static SYNCED: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn record(dir: &Path) {
        SYNCED.with(|s| s.borrow_mut().push(dir.to_path_buf()));
    }

    /// Every directory fsynced on this thread since the last call.
    pub(crate) fn take() -> Vec<PathBuf> {
        SYNCED.with(|s| std::mem::take(&mut *s.borrow_mut()))
    }
}

/// A valid frame starts at the beginning of `rest`: its length, if so.
fn valid_frame_at(rest: &[u8]) -> Option<usize> {
    let header = rest.get(..HEADER_BYTES)?;
    let header_crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if crc32fast::hash(&header[0..8]) != header_crc {
        return None;
    }
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_RECORD_BYTES {
        return None;
    }
    let payload = rest.get(HEADER_BYTES..HEADER_BYTES + len)?;
    (crc32fast::hash(payload) == crc).then_some(HEADER_BYTES + len)
}

/// Read frames from `data` (which starts with [`MAGIC`]): the payloads and
/// the length of the good prefix.
fn scan(path: &Path, data: &[u8]) -> Result<(Vec<Vec<u8>>, usize), StorageError> {
    let mut payloads = Vec::new();
    let mut offset = MAGIC.len();
    while offset < data.len() {
        let rest = &data[offset..];
        let Some(frame_len) = valid_frame_at(rest) else {
            // A bad frame: torn only if nothing valid follows it. A valid
            // frame after it means acknowledged records follow the damage.
            let next_valid = (1..rest.len()).find(|&at| valid_frame_at(&rest[at..]).is_some());
            if let Some(at) = next_valid {
                return Err(StorageError::Corrupt {
                    file: path.to_path_buf(),
                    offset: offset as u64,
                    reason: format!(
                        "a damaged record, followed by a valid one at byte offset {}",
                        offset + at
                    ),
                });
            }
            return Ok((payloads, offset));
        };
        payloads.push(rest[HEADER_BYTES..frame_len].to_vec());
        offset += frame_len;
    }
    Ok((payloads, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_records(path: &Path, records: &[&[u8]]) {
        let (mut wal, rec) = Wal::open(path).expect("open");
        assert!(rec.payloads.is_empty());
        for r in records {
            wal.append(r);
        }
        wal.sync().expect("sync");
    }

    #[test]
    fn records_round_trip_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal.log");
        write_records(&path, &[b"one", b"two", b"three"]);
        let (mut wal, rec) = Wal::open(&path).expect("reopen");
        assert_eq!(
            rec.payloads,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        assert_eq!(rec.truncated_bytes, 0);
        wal.append(b"four");
        wal.sync().expect("sync");
        let (_, rec) = Wal::open(&path).expect("reopen again");
        assert_eq!(rec.payloads.len(), 4);
        assert_eq!(rec.payloads[3], b"four");
    }

    #[test]
    fn torn_tail_is_truncated_at_every_cut_point() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal.log");
        write_records(&path, &[b"first", b"second-record"]);
        let full = std::fs::read(&path).expect("read");
        let first_len = MAGIC.len() + HEADER_BYTES + 5;
        for cut in first_len..full.len() {
            std::fs::write(&path, &full[..cut]).expect("write");
            let (wal, rec) = Wal::open(&path).expect("a torn tail is not an error");
            assert_eq!(rec.payloads, vec![b"first".to_vec()], "cut at {cut}");
            assert_eq!(rec.truncated_bytes, (cut - first_len) as u64);
            assert_eq!(wal.len_bytes(), first_len as u64);
            assert_eq!(
                std::fs::metadata(&path).expect("meta").len(),
                first_len as u64
            );
        }
    }

    #[test]
    fn garbage_in_the_last_record_is_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal.log");
        write_records(&path, &[b"first", b"second"]);
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        bytes.extend_from_slice(&[0u8; 64]); // and a zero-filled extension
        std::fs::write(&path, &bytes).expect("write");
        let (_, rec) = Wal::open(&path).expect("torn tail");
        assert_eq!(rec.payloads, vec![b"first".to_vec()]);
    }

    #[test]
    fn corruption_in_the_middle_refuses_to_open_and_names_file_and_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal.log");
        write_records(&path, &[b"first", b"second", b"third"]);
        let mut bytes = std::fs::read(&path).expect("read");
        let second_at = MAGIC.len() + HEADER_BYTES + 5;
        bytes[second_at + HEADER_BYTES + 2] ^= 0x01; // flip a bit in "second"
        std::fs::write(&path, &bytes).expect("write");
        let err = Wal::open(&path).expect_err("corruption in the middle");
        match &err {
            StorageError::Corrupt { file, offset, .. } => {
                assert_eq!(file, &path);
                assert_eq!(*offset, second_at as u64);
            }
            other => panic!("wrong error {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("wal.log") && msg.contains(&second_at.to_string()),
            "{msg}"
        );
        // The file is left alone for a human to inspect.
        assert_eq!(std::fs::read(&path).expect("read"), bytes);
    }

    /// Regression (issue 21, finding 6): a bit flip in a middle record's
    /// length made it run past the end of the file; recovery took it for a
    /// torn tail, dropped it and every acknowledged record after it, and
    /// truncated the file.
    #[test]
    fn a_corrupted_length_mid_wal_refuses_to_open_and_truncates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal.log");
        write_records(&path, &[b"first", b"second", b"third"]);
        let second_at = MAGIC.len() + HEADER_BYTES + 5;
        for bit in [0, 7, 20, 27] {
            let mut bytes = std::fs::read(&path).expect("read");
            bytes[second_at + bit / 8] ^= 1 << (bit % 8); // in the length field
            let damaged = dir.path().join(format!("damaged-{bit}.log"));
            std::fs::write(&damaged, &bytes).expect("write");
            match Wal::open(&damaged) {
                Err(StorageError::Corrupt { offset, .. }) => {
                    assert_eq!(offset, second_at as u64, "length bit {bit}")
                }
                other => panic!("length bit {bit}: {other:?}"),
            }
            assert_eq!(
                std::fs::read(&damaged).expect("read"),
                bytes,
                "length bit {bit}: the evidence is left alone"
            );
        }
    }

    #[test]
    fn a_file_of_another_format_refuses_to_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal.log");
        std::fs::write(&path, b"\x05\0\0\0garbage-from-an-older-format").expect("write");
        let err = Wal::open(&path).expect_err("not ours");
        assert!(err.to_string().contains("FLWAL002"), "{err}");
    }

    /// Regression (issue 21, finding 7): a new WAL file's directory entry
    /// was never fsynced, so a power loss could take the file, and what
    /// was fsynced into it, away.
    #[test]
    fn creating_a_wal_fsyncs_its_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal.log");
        synced_dirs::take();
        let (mut wal, _) = Wal::open(&path).expect("create");
        assert_eq!(synced_dirs::take(), vec![dir.path().to_path_buf()]);
        wal.append(b"x");
        wal.sync().expect("sync");
        drop(wal);
        Wal::open(&path).expect("reopen");
        assert!(
            synced_dirs::take().is_empty(),
            "an existing file needs none"
        );
    }

    #[test]
    fn create_dir_durably_fsyncs_the_parent_of_every_new_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deep = dir.path().join("a").join("b");
        synced_dirs::take();
        create_dir_durably(&deep).expect("create");
        assert_eq!(
            synced_dirs::take(),
            vec![dir.path().to_path_buf(), dir.path().join("a")]
        );
        create_dir_durably(&deep).expect("exists");
        assert!(synced_dirs::take().is_empty());
        remove_dir_durably(&dir.path().join("a")).expect("remove");
        assert_eq!(synced_dirs::take(), vec![dir.path().to_path_buf()]);
        assert!(!deep.exists());
    }

    #[test]
    fn rewrite_replaces_the_contents_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal.log");
        write_records(&path, &[b"a", b"b", b"c"]);
        let (mut wal, _) = Wal::open(&path).expect("open");
        wal.rewrite(&[b"c".to_vec()]).expect("rewrite");
        wal.append(b"d");
        wal.sync().expect("sync");
        let (_, rec) = Wal::open(&path).expect("reopen");
        assert_eq!(rec.payloads, vec![b"c".to_vec(), b"d".to_vec()]);
    }

    proptest::proptest! {
        /// Fuzz: recovery over arbitrary file contents never panics.
        #[test]
        fn scan_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let mut data = MAGIC.to_vec();
            data.extend_from_slice(&bytes);
            let _ = scan(Path::new("fuzz"), &data);
        }
    }
}

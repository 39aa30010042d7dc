//! The write-ahead log file: framed, checksummed records, group commit.
//!
//! Frame: `len: u32 LE | crc32(payload): u32 LE | payload`. Appends go to a
//! buffer; [`Wal::sync`] writes the buffer and fsyncs once for the whole
//! batch. Recovery ([`Wal::open`]) reads every frame: a bad frame that runs
//! to the end of the file is a torn tail (a crash mid-write) and is
//! truncated away; a bad frame followed by more data is corruption in the
//! middle, and opening fails with the file and the offset.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::StorageError;

/// Frame header: length and checksum.
pub const HEADER_BYTES: usize = 8;
/// No record is larger (a length above this is corruption, not a torn tail).
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// An open WAL file.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
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
                file,
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
        self.pending
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.pending
            .extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
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
        self.file
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

    /// Atomically replace the WAL with one holding exactly `payloads`: write
    /// a temporary file, fsync, rename over the WAL, fsync the directory.
    /// Pending records are discarded: `payloads` must already include them.
    pub fn rewrite(&mut self, payloads: &[Vec<u8>]) -> Result<(), StorageError> {
        let tmp = self.path.with_extension("rewrite.tmp");
        let mut fresh = Wal {
            path: tmp.clone(),
            file: File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?,
            pending: Vec::new(),
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

/// fsync the directory holding `path`, so a create or rename in it is durable.
pub fn sync_dir(path: &Path) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

/// Read frames from `data`: the payloads and the length of the good prefix.
fn scan(path: &Path, data: &[u8]) -> Result<(Vec<Vec<u8>>, usize), StorageError> {
    let mut payloads = Vec::new();
    let mut offset = 0usize;
    while offset < data.len() {
        let rest = &data[offset..];
        // A bad frame followed by nothing but zeros (a file extended but
        // never written) is a torn tail; followed by data, it is corruption.
        let torn_or_corrupt = |after: &[u8], reason: &str| -> Result<(), StorageError> {
            if after.iter().all(|&b| b == 0) {
                return Ok(());
            }
            Err(StorageError::Corrupt {
                file: path.to_path_buf(),
                offset: offset as u64,
                reason: reason.to_string(),
            })
        };
        if rest.len() < HEADER_BYTES {
            // A header cut short can only be the last write.
            return Ok((payloads, offset));
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len == 0 {
            torn_or_corrupt(rest, "zero-length record")?;
            return Ok((payloads, offset));
        }
        if len > MAX_RECORD_BYTES {
            torn_or_corrupt(
                rest,
                &format!("record length {len} exceeds {MAX_RECORD_BYTES}"),
            )?;
            return Ok((payloads, offset));
        }
        let end = HEADER_BYTES + len;
        if end > rest.len() {
            // The record runs past the end of the file: torn.
            return Ok((payloads, offset));
        }
        let payload = &rest[HEADER_BYTES..end];
        if crc32fast::hash(payload) != crc {
            if end == rest.len() {
                // The last record, half written: torn.
                return Ok((payloads, offset));
            }
            torn_or_corrupt(&rest[end..], "checksum mismatch")?;
            return Ok((payloads, offset));
        }
        payloads.push(payload.to_vec());
        offset += end;
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
        let first_len = HEADER_BYTES + 5;
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
        let second_at = HEADER_BYTES + 5;
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
            let _ = scan(Path::new("fuzz"), &bytes);
        }
    }
}

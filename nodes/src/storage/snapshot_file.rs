//! The snapshot file of a group: written whole, replaced by atomic rename.
//!
//! Layout: `FLSNAP01 | len: u64 LE | crc32: u32 LE | payload`, where the
//! payload is `index: u64 | term: u64 | voters: u64 count, u64 each |
//! outgoing voters: u64 count, u64 each | data`.
//! A snapshot is written to a temporary file, fsynced, renamed over the old
//! one and the directory fsynced: a crash leaves the old or the new one,
//! never a mix. A snapshot file that fails its checksum refuses to load.

use std::path::Path;

use super::wal::sync_dir;
use super::StorageError;
use crate::consensus::{LogIndex, NodeId, Snapshot, SnapshotMeta, Term};

const MAGIC: &[u8; 8] = b"FLSNAP02";

/// Write `snap` to `path` atomically and durably.
pub fn write(path: &Path, snap: &Snapshot) -> Result<(), StorageError> {
    let mut payload = Vec::with_capacity(24 + snap.data.len());
    payload.extend_from_slice(&snap.meta.index.0.to_le_bytes());
    payload.extend_from_slice(&snap.meta.term.0.to_le_bytes());
    payload.extend_from_slice(&(snap.meta.voters.len() as u64).to_le_bytes());
    for v in &snap.meta.voters {
        payload.extend_from_slice(&v.0.to_le_bytes());
    }
    payload.extend_from_slice(&(snap.meta.outgoing.len() as u64).to_le_bytes());
    for v in &snap.meta.outgoing {
        payload.extend_from_slice(&v.0.to_le_bytes());
    }
    payload.extend_from_slice(&snap.data);
    let mut bytes = Vec::with_capacity(20 + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);

    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| StorageError::io(&tmp, e))?;
        f.sync_all().map_err(|e| StorageError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| StorageError::io(path, e))?;
    sync_dir(path)
}

/// Read the snapshot at `path`; `Ok(None)` if there is none.
pub fn read(path: &Path) -> Result<Option<Snapshot>, StorageError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(path, e)),
    };
    decode(&bytes)
        .map(Some)
        .map_err(|(offset, reason)| StorageError::Corrupt {
            file: path.to_path_buf(),
            offset,
            reason,
        })
}

/// Decode a snapshot file's bytes; on error, the offset and what is wrong.
fn decode(bytes: &[u8]) -> Result<Snapshot, (u64, String)> {
    if bytes.len() < 20 || &bytes[..8] != MAGIC {
        return Err((
            0,
            "not a faultline snapshot (bad magic or too short)".into(),
        ));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let payload = &bytes[20..];
    if payload.len() as u64 != len {
        return Err((
            8,
            format!("length {len} but {} payload bytes", payload.len()),
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err((20, "checksum mismatch".into()));
    }
    let u64_at = |at: usize| -> Result<u64, (u64, String)> {
        payload
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or((20 + at as u64, "truncated".into()))
    };
    let index = u64_at(0)?;
    let term = u64_at(8)?;
    let n = u64_at(16)?;
    if n > (payload.len() as u64) / 8 {
        return Err((36, format!("{n} voters cannot fit")));
    }
    let mut voters = Vec::with_capacity(n as usize);
    for i in 0..n as usize {
        voters.push(NodeId(u64_at(24 + 8 * i)?));
    }
    let out_at = 24 + 8 * n as usize;
    let m = u64_at(out_at)?;
    if m > (payload.len() as u64) / 8 {
        return Err((
            20 + out_at as u64,
            format!("{m} outgoing voters cannot fit"),
        ));
    }
    let mut outgoing = Vec::with_capacity(m as usize);
    for i in 0..m as usize {
        outgoing.push(NodeId(u64_at(out_at + 8 + 8 * i)?));
    }
    let data_at = out_at + 8 + 8 * m as usize;
    Ok(Snapshot {
        meta: SnapshotMeta {
            index: LogIndex(index),
            term: Term(term),
            voters,
            outgoing,
        },
        data: payload[data_at..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(42),
                term: Term(3),
                voters: vec![NodeId(1), NodeId(2), NodeId(3)],
                outgoing: vec![NodeId(4)],
            },
            data: b"state machine bytes".to_vec(),
        }
    }

    #[test]
    fn round_trips_and_replaces_the_previous_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("snapshot");
        assert_eq!(read(&path).expect("none yet"), None);
        write(&path, &snap()).expect("write");
        assert_eq!(read(&path).expect("read"), Some(snap()));
        let mut newer = snap();
        newer.meta.index = LogIndex(50);
        newer.data = b"newer".to_vec();
        write(&path, &newer).expect("write");
        assert_eq!(read(&path).expect("read"), Some(newer));
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn a_flipped_bit_is_refused_with_the_file_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("snapshot");
        write(&path, &snap()).expect("write");
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 4;
        std::fs::write(&path, &bytes).expect("write");
        let err = read(&path).expect_err("corrupt");
        assert!(err.to_string().contains("snapshot"), "{err}");
    }

    proptest::proptest! {
        /// Fuzz: arbitrary snapshot files never panic the decoder.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let _ = decode(&bytes);
        }

        /// Fuzz: a valid header with a random payload (checksum fixed up) never panics.
        #[test]
        fn decode_never_panics_past_the_checksum(payload in proptest::collection::vec(proptest::num::u8::ANY, 0..96)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
            let _ = decode(&bytes);
        }
    }
}

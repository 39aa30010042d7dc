//! WAL records and their binary encoding.
//!
//! A record is one change to a group's durable state. Replaying the records
//! of a WAL in order rebuilds the hard state, the snapshot position and the
//! entries after it. The encoding is little-endian, hand-written (no schema
//! crate), and its decoder rejects every malformed payload with an error.

use crate::consensus::{Entry, EntryKind, HardState, LogIndex, Membership, NodeId, Term};

/// One change to durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalRecord {
    /// Replaces the previous hard state.
    HardState(HardState),
    /// Contiguous entries: delete every stored entry with index ≥ the first
    /// one's, then append these.
    Entries(Vec<Entry>),
    /// The snapshot file now holds a snapshot at (index, term). With
    /// `whole_log`, every stored entry is deleted (a snapshot installed from
    /// the leader); otherwise only entries ≤ index (local compaction).
    Snapshot {
        index: LogIndex,
        term: Term,
        whole_log: bool,
    },
}

const TAG_HARD_STATE: u8 = 1;
const TAG_ENTRIES: u8 = 2;
const TAG_SNAPSHOT: u8 = 3;

const KIND_NORMAL: u8 = 0;
const KIND_NOOP: u8 = 1;
const KIND_CONFIG: u8 = 2;

/// A payload that is not a valid record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed WAL record: {0}")]
pub struct RecordError(pub String);

impl WalRecord {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            WalRecord::HardState(hs) => {
                out.push(TAG_HARD_STATE);
                put_u64(out, hs.term.0);
                match hs.vote {
                    Some(v) => {
                        out.push(1);
                        put_u64(out, v.0);
                    }
                    None => out.push(0),
                }
                put_u64(out, hs.commit.0);
            }
            WalRecord::Entries(entries) => {
                out.push(TAG_ENTRIES);
                put_u64(out, entries.len() as u64);
                for e in entries {
                    put_u64(out, e.index.0);
                    put_u64(out, e.term.0);
                    match &e.kind {
                        EntryKind::Normal(data) => {
                            out.push(KIND_NORMAL);
                            put_u64(out, data.len() as u64);
                            out.extend_from_slice(data);
                        }
                        EntryKind::Noop => out.push(KIND_NOOP),
                        EntryKind::ConfigChange(m) => {
                            out.push(KIND_CONFIG);
                            for set in [&m.voters, &m.outgoing] {
                                put_u64(out, set.len() as u64);
                                for v in set {
                                    put_u64(out, v.0);
                                }
                            }
                        }
                    }
                }
            }
            WalRecord::Snapshot {
                index,
                term,
                whole_log,
            } => {
                out.push(TAG_SNAPSHOT);
                put_u64(out, index.0);
                put_u64(out, term.0);
                out.push(u8::from(*whole_log));
            }
        }
    }

    pub fn decode(payload: &[u8]) -> Result<WalRecord, RecordError> {
        let mut r = Cursor {
            buf: payload,
            pos: 0,
        };
        let record = match r.u8()? {
            TAG_HARD_STATE => {
                let term = Term(r.u64()?);
                let vote = match r.u8()? {
                    0 => None,
                    1 => Some(NodeId(r.u64()?)),
                    b => return Err(RecordError(format!("bad vote flag {b}"))),
                };
                let commit = LogIndex(r.u64()?);
                WalRecord::HardState(HardState { term, vote, commit })
            }
            TAG_ENTRIES => {
                let n = r.len_prefix(17)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let index = LogIndex(r.u64()?);
                    let term = Term(r.u64()?);
                    let kind = match r.u8()? {
                        KIND_NORMAL => {
                            let len = r.len_prefix(1)?;
                            EntryKind::Normal(r.bytes(len)?.to_vec())
                        }
                        KIND_NOOP => EntryKind::Noop,
                        KIND_CONFIG => {
                            let mut sets = [Vec::new(), Vec::new()];
                            for set in &mut sets {
                                let n = r.len_prefix(8)?;
                                set.reserve(n);
                                for _ in 0..n {
                                    set.push(NodeId(r.u64()?));
                                }
                            }
                            let [voters, outgoing] = sets;
                            EntryKind::ConfigChange(Membership { voters, outgoing })
                        }
                        k => return Err(RecordError(format!("bad entry kind {k}"))),
                    };
                    if let Some(prev) = entries.last() {
                        let prev: &Entry = prev;
                        if prev.index.next() != index {
                            return Err(RecordError(format!(
                                "entries not contiguous: {} then {}",
                                prev.index, index
                            )));
                        }
                    }
                    entries.push(Entry { index, term, kind });
                }
                WalRecord::Entries(entries)
            }
            TAG_SNAPSHOT => {
                let index = LogIndex(r.u64()?);
                let term = Term(r.u64()?);
                let whole_log = match r.u8()? {
                    0 => false,
                    1 => true,
                    b => return Err(RecordError(format!("bad snapshot flag {b}"))),
                };
                WalRecord::Snapshot {
                    index,
                    term,
                    whole_log,
                }
            }
            t => return Err(RecordError(format!("unknown record tag {t}"))),
        };
        if r.pos != payload.len() {
            return Err(RecordError(format!(
                "{} trailing bytes",
                payload.len() - r.pos
            )));
        }
        Ok(record)
    }
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| RecordError(format!("truncated at byte {}", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.bytes(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    /// A count of items of at least `min_item_bytes` each: refused when the
    /// rest of the payload cannot hold that many (no allocation from a lie).
    fn len_prefix(&mut self, min_item_bytes: usize) -> Result<usize, RecordError> {
        let n = self.u64()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_item_bytes as u64) > left {
            return Err(RecordError(format!(
                "count {n} cannot fit in the {left} bytes left"
            )));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<WalRecord> {
        vec![
            WalRecord::HardState(HardState {
                term: Term(3),
                vote: Some(NodeId(2)),
                commit: LogIndex(7),
            }),
            WalRecord::HardState(HardState::default()),
            WalRecord::Entries(vec![
                Entry {
                    index: LogIndex(5),
                    term: Term(2),
                    kind: EntryKind::Normal(b"hello".to_vec()),
                },
                Entry {
                    index: LogIndex(6),
                    term: Term(3),
                    kind: EntryKind::Noop,
                },
                Entry {
                    index: LogIndex(7),
                    term: Term(3),
                    kind: EntryKind::ConfigChange(Membership {
                        voters: vec![NodeId(1), NodeId(4)],
                        outgoing: vec![NodeId(2)],
                    }),
                },
            ]),
            WalRecord::Entries(vec![]),
            WalRecord::Snapshot {
                index: LogIndex(9),
                term: Term(4),
                whole_log: true,
            },
        ]
    }

    #[test]
    fn every_record_round_trips() {
        for rec in sample() {
            let mut buf = Vec::new();
            rec.encode(&mut buf);
            assert_eq!(WalRecord::decode(&buf).expect("decodes"), rec);
            // Every strict prefix is refused.
            for cut in 0..buf.len() {
                assert!(
                    WalRecord::decode(&buf[..cut]).is_err(),
                    "prefix {cut} of {rec:?}"
                );
            }
        }
    }

    #[test]
    fn non_contiguous_entries_are_refused() {
        let rec = WalRecord::Entries(vec![
            Entry {
                index: LogIndex(1),
                term: Term(1),
                kind: EntryKind::Noop,
            },
            Entry {
                index: LogIndex(3),
                term: Term(1),
                kind: EntryKind::Noop,
            },
        ]);
        let mut buf = Vec::new();
        rec.encode(&mut buf);
        assert!(WalRecord::decode(&buf).is_err());
    }

    proptest::proptest! {
        /// Fuzz: random payloads never panic nor allocate from a lying count.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let _ = WalRecord::decode(&bytes);
        }

        /// Fuzz: a valid record with one byte flipped never panics.
        #[test]
        fn decode_survives_bit_flips(pos in 0usize..200, bit in 0u8..8) {
            for rec in sample() {
                let mut buf = Vec::new();
                rec.encode(&mut buf);
                let p = pos % buf.len();
                buf[p] ^= 1 << bit;
                let _ = WalRecord::decode(&buf);
            }
        }
    }
}

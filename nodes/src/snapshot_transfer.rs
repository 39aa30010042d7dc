//! snapshot_transfer: a state-machine snapshot sent to a lagging peer in
//! chunks bounded by bytes (Raft §7; Ongaro's thesis §5.4.1: each chunk
//! carries its `offset`, its `data` and whether it is the last, `done`).
//! Both cores' InstallSnapshot carry a [`SnapshotChunk`]; the leader keeps a
//! [`SnapshotSender`] per peer it catches up, the receiver a
//! [`SnapshotAssembly`]. A Paxos Promise's snapshot travels in the same
//! chunks ([`SnapshotChunk::cut`], one a Promise part, asked for by the
//! candidate, see the paxos module docs (f)); the candidate assembles each
//! promiser's with a [`SnapshotAssembly`].
//!
//! Before, InstallSnapshot carried the whole state machine in one message:
//! past about 45 MiB (64 MiB after base64 and framing) it passed the peer
//! line limit and was lost every time, so a follower that needed a snapshot
//! never caught up and membership changes stalled (issue 21, finding 3).
//!
//! What it guarantees:
//! - every chunk carries at most [`crate::consensus::CoreConfig::snapshot_chunk_bytes`]
//!   bytes of data;
//! - the receiver assembles one snapshot from one sender in one term (or
//!   ballot), strictly in order: a chunk that does not continue what it
//!   holds is refused (a gap), a chunk of another snapshot starts over (from
//!   offset 0 only); its buffer never exceeds the snapshot's declared size,
//!   and nothing is handed to the core before the last chunk, so nothing is
//!   applied or made durable before the whole snapshot is there;
//! - the sender keeps at most a window of chunks unanswered (flow control,
//!   like appends), rewinds to what the receiver holds on a refusal (once a
//!   tick: duplicated refusals do not storm), and after a stall resumes
//!   from the last byte the receiver confirmed.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::consensus::{LogIndex, NodeId, Snapshot, SnapshotMeta, Term};

/// One chunk of a snapshot on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// The snapshot's place in the log (every chunk carries it, so a
    /// receiver tells the chunks of two snapshots apart).
    pub meta: SnapshotMeta,
    /// The whole snapshot's size in bytes.
    pub total_bytes: u64,
    /// Where `data` starts in the snapshot.
    pub offset: u64,
    /// The bytes at `offset` (base64 on the wire: [`crate::wire_bytes`]).
    #[serde(with = "crate::wire_bytes")]
    pub data: Vec<u8>,
    /// The last chunk: `offset + data.len() == total_bytes`.
    pub done: bool,
}

impl SnapshotChunk {
    /// The whole of `snapshot` as one chunk (tests, and tiny snapshots).
    pub fn whole(snapshot: Snapshot) -> SnapshotChunk {
        SnapshotChunk {
            total_bytes: snapshot.data.len() as u64,
            meta: snapshot.meta,
            offset: 0,
            data: snapshot.data,
            done: true,
        }
    }

    /// The chunk of `snapshot` that starts at byte `offset`: at most
    /// `chunk_bytes` of data, `done` iff it reaches the end. None if
    /// `offset` is past the end. The one place a snapshot is cut: the
    /// leader's [`SnapshotSender`] and a Paxos acceptor's Promise in parts
    /// (which keeps no sender: each part is cut where the candidate asks).
    pub fn cut(snapshot: &Snapshot, offset: u64, chunk_bytes: usize) -> Option<SnapshotChunk> {
        assert!(chunk_bytes > 0, "a chunk carries at least one byte");
        let total = snapshot.data.len() as u64;
        if offset > total {
            return None;
        }
        let end = total.min(offset.saturating_add(chunk_bytes as u64));
        let chunk = SnapshotChunk {
            meta: snapshot.meta.clone(),
            total_bytes: total,
            offset,
            data: snapshot.data[offset as usize..end as usize].to_vec(),
            done: end == total,
        };
        debug_assert!(chunk.check().is_ok(), "we cut well-formed chunks");
        Some(chunk)
    }

    /// The byte after this chunk's data (where the next chunk starts).
    pub fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }

    /// Whether the chunk is consistent: it lies within the snapshot, and
    /// `done` marks exactly the chunk that reaches its end. A chunk that is
    /// not is bad input from the wire: dropped, never a panic.
    pub fn check(&self) -> Result<(), String> {
        let end = self
            .offset
            .checked_add(self.data.len() as u64)
            .ok_or_else(|| format!("chunk at offset {} overflows", self.offset))?;
        if end > self.total_bytes {
            return Err(format!(
                "chunk [{}, {end}) passes the snapshot's {} bytes",
                self.offset, self.total_bytes
            ));
        }
        if self.done != (end == self.total_bytes) {
            return Err(format!(
                "chunk [{}, {end}) of {} bytes says done={}",
                self.offset, self.total_bytes, self.done
            ));
        }
        if !self.done && self.data.is_empty() {
            return Err(format!(
                "empty chunk at offset {} before the end",
                self.offset
            ));
        }
        Ok(())
    }

    /// The trace line's part: `at=i7/t2 bytes=[0,4096)/9000 done=false`.
    pub fn summary(&self) -> String {
        format!(
            "at={}/{} bytes=[{},{})/{} done={}",
            self.meta.index,
            self.meta.term,
            self.offset,
            self.offset + self.data.len() as u64,
            self.total_bytes,
            self.done
        )
    }
}

/// The leader's side of one snapshot sent to one peer.
#[derive(Clone, Debug)]
pub struct SnapshotSender {
    /// Shared with the core's copy and with other peers' transfers.
    snapshot: Arc<Snapshot>,
    /// The next byte to send.
    next: u64,
    /// The last chunk went out (its answer is the core's own: Raft's
    /// AppendResponse, Paxos's Accepted, sent once the snapshot is durable).
    done_sent: bool,
    /// The receiver confirmed holding the bytes before this one.
    acked: u64,
    /// The end offsets of chunks sent and not answered yet.
    inflight: VecDeque<u64>,
    /// Ticks since the receiver last confirmed progress.
    idle_ticks: u64,
    /// The tick of the last rewind (at most one a tick).
    rewound_tick: Option<u64>,
}

impl SnapshotSender {
    pub fn new(snapshot: Arc<Snapshot>) -> SnapshotSender {
        SnapshotSender {
            snapshot,
            next: 0,
            done_sent: false,
            acked: 0,
            inflight: VecDeque::new(),
            idle_ticks: 0,
            rewound_tick: None,
        }
    }

    /// The index of the snapshot being sent.
    pub fn index(&self) -> LogIndex {
        self.snapshot.meta.index
    }

    /// The bytes the receiver confirmed holding.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The next chunk (at most `chunk_bytes` of data), if fewer than
    /// `window` chunks are unanswered and anything is left to send.
    pub fn next_chunk(&mut self, chunk_bytes: usize, window: usize) -> Option<SnapshotChunk> {
        assert!(chunk_bytes > 0, "a chunk carries at least one byte");
        if self.done_sent || self.inflight.len() >= window.max(1) {
            return None;
        }
        let chunk = SnapshotChunk::cut(&self.snapshot, self.next, chunk_bytes)
            .expect("the next byte is within the snapshot");
        let end = chunk.end();
        self.inflight.push_back(end);
        self.next = end;
        self.done_sent = chunk.done;
        Some(chunk)
    }

    /// The receiver answered the chunk at `offset`: it now holds `received`
    /// bytes. A chunk is taken iff `received > offset` (every chunk but an
    /// empty snapshot's last carries data); a refusal (a gap: an earlier
    /// chunk was lost, or the receiver lost what it held) rewinds to
    /// `received`, at most once per `now_tick`.
    pub fn answered(&mut self, offset: u64, received: u64, now_tick: u64) {
        let total = self.snapshot.data.len() as u64;
        let received = received.min(total);
        if received > self.acked {
            self.acked = received;
            self.idle_ticks = 0;
            while self.inflight.front().is_some_and(|&end| end <= received) {
                self.inflight.pop_front();
            }
            if self.next < received {
                self.next = received;
            }
        }
        if received <= offset && self.rewound_tick != Some(now_tick) {
            self.rewind_to(received);
            self.rewound_tick = Some(now_tick);
        }
    }

    /// A tick passed (counts only while chunks are unanswered).
    pub fn tick(&mut self) {
        if !self.inflight.is_empty() || self.done_sent {
            self.idle_ticks += 1;
        }
    }

    /// After `stall_ticks` without progress (chunks or the last answer
    /// lost), resend from the last byte the receiver confirmed; returns
    /// whether it did (the caller then sends chunks). The cores ask when
    /// the peer shows it is alive (a heartbeat answer), as they resent a
    /// whole snapshot before.
    pub fn resume_if_stalled(&mut self, stall_ticks: u64) -> bool {
        if self.idle_ticks < stall_ticks {
            return false;
        }
        let acked = self.acked;
        self.rewind_to(acked);
        true
    }

    fn rewind_to(&mut self, offset: u64) {
        self.next = offset;
        self.acked = offset;
        self.done_sent = false;
        self.inflight.clear();
        self.idle_ticks = 0;
    }
}

/// The receiver's side: a snapshot being assembled from the chunks of one
/// sender in one term (Raft) or ballot (Paxos, as a [`Term`]).
#[derive(Clone, Debug)]
pub struct SnapshotAssembly {
    from: NodeId,
    term: Term,
    meta: SnapshotMeta,
    total_bytes: u64,
    data: Vec<u8>,
}

/// What a chunk did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// The receiver holds the snapshot's first `received` bytes (if the
    /// chunk did not continue them, it was refused): answer with it.
    Partial { received: u64 },
    /// The last chunk arrived: the whole snapshot, for the core to install.
    Complete(Snapshot),
    /// Malformed (see [`SnapshotChunk::check`]) or too large to hold: dropped.
    Dropped(String),
}

impl SnapshotAssembly {
    /// The index of the snapshot being assembled.
    pub fn index(&self) -> LogIndex {
        self.meta.index
    }

    /// How many bytes are held.
    pub fn held_bytes(&self) -> u64 {
        self.data.len() as u64
    }

    fn same_snapshot(&self, from: NodeId, term: Term, chunk: &SnapshotChunk) -> bool {
        self.from == from
            && self.term == term
            && self.meta == chunk.meta
            && self.total_bytes == chunk.total_bytes
    }

    /// Take `chunk` from `from` (the current leader, at `term`) into
    /// `slot`, the core's assembly in progress. The caller has checked that
    /// `from` leads `term` and that the snapshot is news to it.
    pub fn take(
        slot: &mut Option<SnapshotAssembly>,
        from: NodeId,
        term: Term,
        chunk: SnapshotChunk,
    ) -> ChunkOutcome {
        if let Err(e) = chunk.check() {
            return ChunkOutcome::Dropped(e);
        }
        let same = slot
            .as_ref()
            .is_some_and(|a| a.same_snapshot(from, term, &chunk));
        if !same {
            if chunk.offset != 0 {
                // Another snapshot's chunk, not its first: what we hold is
                // no use to the sender any more; it restarts from 0.
                *slot = None;
                return ChunkOutcome::Partial { received: 0 };
            }
            let mut data = Vec::new();
            if data.try_reserve_exact(chunk.total_bytes as usize).is_err() {
                *slot = None;
                return ChunkOutcome::Dropped(format!(
                    "a snapshot of {} bytes cannot be held",
                    chunk.total_bytes
                ));
            }
            *slot = Some(SnapshotAssembly {
                from,
                term,
                meta: chunk.meta.clone(),
                total_bytes: chunk.total_bytes,
                data,
            });
        }
        let a = slot.as_mut().expect("an assembly for this snapshot");
        if chunk.offset != a.data.len() as u64 {
            // A duplicate (behind) or a gap (ahead): keep what we hold.
            return ChunkOutcome::Partial {
                received: a.data.len() as u64,
            };
        }
        a.data.extend_from_slice(&chunk.data);
        assert!(
            a.data.len() as u64 <= a.total_bytes,
            "a checked chunk stays within the snapshot"
        );
        if !chunk.done {
            return ChunkOutcome::Partial {
                received: a.data.len() as u64,
            };
        }
        let a = slot.take().expect("the assembly just extended");
        assert_eq!(
            a.data.len() as u64,
            a.total_bytes,
            "the last chunk completes the snapshot"
        );
        ChunkOutcome::Complete(Snapshot {
            meta: a.meta,
            data: a.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(bytes: usize) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(9),
                term: Term(2),
                voters: vec![NodeId(1), NodeId(2)],
                outgoing: Vec::new(),
            },
            data: (0..bytes).map(|k| k as u8).collect(),
        })
    }

    #[test]
    fn chunks_in_order_rebuild_the_snapshot_and_nothing_before_the_last() {
        let snap = snapshot(10);
        let mut tx = SnapshotSender::new(snap.clone());
        let mut rx = None;
        let mut outcomes = Vec::new();
        while let Some(chunk) = tx.next_chunk(4, 8) {
            assert!(chunk.data.len() <= 4);
            outcomes.push(SnapshotAssembly::take(&mut rx, NodeId(1), Term(3), chunk));
        }
        assert_eq!(
            outcomes,
            vec![
                ChunkOutcome::Partial { received: 4 },
                ChunkOutcome::Partial { received: 8 },
                ChunkOutcome::Complete((*snap).clone()),
            ]
        );
        assert!(rx.is_none(), "the finished assembly is handed over");
    }

    #[test]
    fn the_window_bounds_unanswered_chunks() {
        let mut tx = SnapshotSender::new(snapshot(100));
        assert!(tx.next_chunk(10, 2).is_some());
        assert!(tx.next_chunk(10, 2).is_some());
        assert!(tx.next_chunk(10, 2).is_none(), "two unanswered fill two");
        tx.answered(0, 10, 1);
        let c = tx.next_chunk(10, 2).expect("room again");
        assert_eq!(c.offset, 20);
    }

    #[test]
    fn a_lost_chunk_is_refused_and_resent_once_per_tick() {
        let snap = snapshot(30);
        let mut tx = SnapshotSender::new(snap.clone());
        let mut rx = None;
        let first = tx.next_chunk(10, 4).expect("chunk 0");
        let _lost = tx.next_chunk(10, 4).expect("chunk 1");
        let third = tx.next_chunk(10, 4).expect("chunk 2");
        assert!(third.done);
        let r = SnapshotAssembly::take(&mut rx, NodeId(1), Term(3), first);
        assert_eq!(r, ChunkOutcome::Partial { received: 10 });
        tx.answered(0, 10, 1);
        let r = SnapshotAssembly::take(&mut rx, NodeId(1), Term(3), third.clone());
        assert_eq!(
            r,
            ChunkOutcome::Partial { received: 10 },
            "a gap is refused"
        );
        tx.answered(20, 10, 1);
        tx.answered(20, 10, 1);
        let again = tx.next_chunk(10, 4).expect("resent after the refusal");
        assert_eq!(again.offset, 10, "from what the receiver holds");
        assert!(tx.next_chunk(10, 4).is_some());
        assert!(
            tx.next_chunk(10, 4).is_none(),
            "the duplicate did not rewind again"
        );
        let r = SnapshotAssembly::take(&mut rx, NodeId(1), Term(3), again);
        assert_eq!(r, ChunkOutcome::Partial { received: 20 });
        let r = SnapshotAssembly::take(&mut rx, NodeId(1), Term(3), third);
        assert_eq!(r, ChunkOutcome::Complete((*snap).clone()));
    }

    #[test]
    fn a_stall_resumes_from_the_last_confirmed_byte() {
        let mut tx = SnapshotSender::new(snapshot(30));
        tx.next_chunk(10, 4).expect("chunk 0");
        tx.answered(0, 10, 1);
        tx.next_chunk(10, 4).expect("chunk 1, lost");
        tx.tick();
        tx.tick();
        assert!(!tx.resume_if_stalled(3), "two idle ticks are not a stall");
        tx.tick();
        assert!(tx.resume_if_stalled(3), "three idle ticks: stalled");
        assert_eq!(tx.next_chunk(10, 4).map(|c| c.offset), Some(10));
    }

    #[test]
    fn another_term_or_sender_or_snapshot_starts_over() {
        let snap = snapshot(20);
        let mut tx = SnapshotSender::new(snap.clone());
        let c0 = tx.next_chunk(10, 4).expect("chunk 0");
        let c1 = tx.next_chunk(10, 4).expect("chunk 1");
        let mut rx = None;
        SnapshotAssembly::take(&mut rx, NodeId(1), Term(3), c0.clone());
        // The same bytes from another leader or term do not continue it.
        let r = SnapshotAssembly::take(&mut rx, NodeId(2), Term(3), c1.clone());
        assert_eq!(r, ChunkOutcome::Partial { received: 0 });
        assert!(rx.is_none(), "the old assembly is dropped");
        SnapshotAssembly::take(&mut rx, NodeId(1), Term(3), c0.clone());
        let r = SnapshotAssembly::take(&mut rx, NodeId(1), Term(4), c1.clone());
        assert_eq!(r, ChunkOutcome::Partial { received: 0 });
        // A newer snapshot's first chunk replaces it.
        SnapshotAssembly::take(&mut rx, NodeId(1), Term(3), c0.clone());
        let mut newer = c0.clone();
        newer.meta.index = LogIndex(12);
        let r = SnapshotAssembly::take(&mut rx, NodeId(1), Term(3), newer);
        assert_eq!(r, ChunkOutcome::Partial { received: 10 });
        assert_eq!(rx.as_ref().map(|a| a.meta.index), Some(LogIndex(12)));
    }

    #[test]
    fn malformed_chunks_are_dropped_naming_why() {
        let mut rx = None;
        let chunk = |offset: u64, len: usize, total: u64, done: bool| SnapshotChunk {
            meta: SnapshotMeta::default(),
            total_bytes: total,
            offset,
            data: vec![0; len],
            done,
        };
        for (bad, why) in [
            (chunk(5, 10, 12, true), "passes"),
            (chunk(0, 4, 12, true), "done=true"),
            (chunk(0, 12, 12, false), "done=false"),
            (chunk(u64::MAX, 2, 12, false), "overflows"),
            (chunk(0, 0, 12, false), "empty"),
        ] {
            match SnapshotAssembly::take(&mut rx, NodeId(1), Term(1), bad) {
                ChunkOutcome::Dropped(e) => assert!(e.contains(why), "{e}"),
                other => panic!("not dropped: {other:?}"),
            }
        }
        assert!(rx.is_none());
        let empty = chunk(0, 0, 0, true);
        assert!(matches!(
            SnapshotAssembly::take(&mut rx, NodeId(1), Term(1), empty),
            ChunkOutcome::Complete(_)
        ));
    }

    #[test]
    fn chunks_round_trip_as_json() {
        let mut tx = SnapshotSender::new(snapshot(10));
        let c = tx.next_chunk(4, 1).expect("a chunk");
        let json = serde_json::to_string(&c).expect("serializes");
        assert!(json.contains("\"offset\":0"), "{json}");
        let back: SnapshotChunk = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, c);
    }
}

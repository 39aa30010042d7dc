//! The linearizability search: Wing & Gong's algorithm with Lowe's
//! memoization, over one (sub-)history and one model.
//!
//! Entries (invokes and completions) sit in a doubly-linked list in
//! real-time order. The search walks the list: at an invoke it tries to
//! linearize that operation now (apply it to the model state); if the
//! (linearized set, state) pair is new it lifts the operation out of the
//! list and starts again from the head; at a completion it has run out of
//! candidates that may precede that completion and backtracks. Memoizing
//! the pairs makes every configuration explored at most once.
//!
//! Guarantees and refinements:
//! - Crashed operations (info, or never completed) complete at +infinity:
//!   they may be linearized at any point after their invoke, or never. The
//!   search reaches a crashed operation's completion only once every
//!   completed operation is linearized, which is success. Crashed
//!   operations are tried only after every completed candidate before the
//!   next completion has failed (the order of tries changes speed, not the
//!   verdict), which keeps an early crashed write from being dragged
//!   through the whole search.
//! - The linearized set is a bitset hashed incrementally (Zobrist: one
//!   random word per operation, xor-ed in and out); memo entries store it
//!   compactly as (number of leading full words, the words after them up to
//!   the last non-zero one), so long histories whose linearized set is
//!   mostly a prefix stay small.
//! - The search never runs past its [`Limits`]: a deadline, a shared stop
//!   flag and a shared memory budget, each ending in [`SearchResult::Unknown`]
//!   (or `Stopped`) with the reason.

use crate::fxhash::{fmix64, splitmix64, FxHasher};
use crate::model::{Ctx, Model};
use crate::operation::Operation;
use hashbrown::HashTable;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

const NONE: u32 = u32::MAX;
const HEAD: u32 = 0;
/// How many steps between looks at the clock and the shared flags.
const CHECK_EVERY: u32 = 1 << 12;

/// Bounds shared by every search of one check.
pub struct Limits<'a> {
    pub deadline: Option<Instant>,
    pub stop: &'a AtomicBool,
    /// Bytes of memo held by all searches together.
    pub memory_used: &'a AtomicUsize,
    pub memory_limit_bytes: usize,
}

/// What one search concludes.
#[derive(Debug)]
pub enum SearchResult {
    Valid,
    /// Not linearizable; the longest linearizable prefix found (indices into
    /// the search's operations, in linearization order).
    Invalid { best_prefix: Vec<usize> },
    Unknown(String),
    /// Another search found the history invalid.
    Stopped,
}

/// Counters, for benchmarks and reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct SearchStats {
    pub steps: u64,
    pub memo_entries: u64,
    pub memo_bytes: u64,
}

struct MemoEntry<S> {
    hash: u64,
    low: u32,
    tail: Box<[u64]>,
    state: S,
}

/// The linearized set, with the first non-full and the last non-zero word
/// tracked so that its compact form is cheap.
struct Bits {
    words: Vec<u64>,
    /// First word that is not all ones.
    low: usize,
    /// One past the last non-zero word; at least `low`.
    high: usize,
}

impl Bits {
    fn new(n: usize) -> Bits {
        Bits { words: vec![0; n.div_ceil(64) + 1], low: 0, high: 0 }
    }
    #[inline]
    fn set(&mut self, i: usize) {
        let w = i / 64;
        self.words[w] |= 1 << (i % 64);
        if w >= self.high {
            self.high = w + 1;
        }
        while self.words[self.low] == u64::MAX {
            self.low += 1;
        }
        if self.high < self.low {
            self.high = self.low;
        }
    }
    #[inline]
    fn clear(&mut self, i: usize) {
        let w = i / 64;
        self.words[w] &= !(1 << (i % 64));
        if w < self.low {
            self.low = w;
        }
        while self.high > self.low && self.words[self.high - 1] == 0 {
            self.high -= 1;
        }
    }
    #[inline]
    fn tail(&self) -> &[u64] {
        &self.words[self.low..self.high]
    }
}

/// The doubly-linked list of entries in real-time order. Entry 0 is the
/// head; every other entry is an invoke or a completion of one operation.
struct Entries {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// For an invoke entry: the operation; completions have the op too.
    op: Vec<u32>,
    is_call: Vec<bool>,
    /// For an invoke entry, its completion entry.
    ret: Vec<u32>,
}

impl Entries {
    fn build(ops: &[&Operation]) -> (Entries, Vec<u32>) {
        // (position, kind: 0 call / 1 return, op)
        let mut evs: Vec<(u64, u8, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            evs.push((op.invoke_pos, 0, i as u32));
            let ret = match op.complete_pos {
                Some(p) if !op.crashed() => p,
                _ => u64::MAX,
            };
            evs.push((ret, 1, i as u32));
        }
        evs.sort_unstable();
        let n = evs.len() + 1;
        let mut e = Entries {
            next: vec![NONE; n],
            prev: vec![NONE; n],
            op: vec![NONE; n],
            is_call: vec![false; n],
            ret: vec![NONE; n],
        };
        let mut call_of = vec![NONE; ops.len()];
        let mut ret_of = vec![NONE; ops.len()];
        for (k, &(_, kind, o)) in evs.iter().enumerate() {
            let id = k as u32 + 1;
            e.op[id as usize] = o;
            e.is_call[id as usize] = kind == 0;
            if kind == 0 {
                call_of[o as usize] = id;
            } else {
                ret_of[o as usize] = id;
            }
        }
        for id in 0..n {
            e.prev[id] = if id == 0 { NONE } else { id as u32 - 1 };
            e.next[id] = if id + 1 < n { id as u32 + 1 } else { NONE };
        }
        for o in 0..ops.len() {
            assert!(call_of[o] < ret_of[o], "an invoke precedes its completion");
            e.ret[call_of[o] as usize] = ret_of[o];
        }
        (e, call_of)
    }

    #[inline]
    fn unlink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = n;
        if n != NONE {
            self.prev[n as usize] = p;
        }
    }

    #[inline]
    fn relink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = x;
        if n != NONE {
            self.prev[n as usize] = x;
        }
    }

    #[inline]
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        self.unlink(self.ret[call as usize]);
    }

    #[inline]
    fn unlift(&mut self, call: u32) {
        self.relink(self.ret[call as usize]);
        self.relink(call);
    }
}

struct Frame<S> {
    entry: u32,
    state: S,
    crashed_phase: bool,
}

#[inline]
fn state_hash<S: Hash>(s: &S) -> u64 {
    let mut h = FxHasher::default();
    s.hash(&mut h);
    h.finish()
}

/// Searches for a linearization of `ops` (already compiled into `cops`).
pub fn search<M: Model>(
    model: &M,
    ctx: &mut Ctx,
    ops: &[&Operation],
    cops: &[M::Op],
    limits: &Limits<'_>,
    stats: &mut SearchStats,
) -> SearchResult {
    assert_eq!(ops.len(), cops.len());
    let n = ops.len();
    if n == 0 {
        return SearchResult::Valid;
    }
    let crashed: Vec<bool> = ops.iter().map(|o| o.crashed()).collect();
    let any_crashed = crashed.iter().any(|&c| c);
    let (mut list, _call_of) = Entries::build(ops);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ n as u64;
    let zob: Vec<u64> = (0..n).map(|_| splitmix64(&mut seed)).collect();

    let mut bits = Bits::new(n);
    let mut zhash: u64 = 0;
    let mut state = model.init(ctx);
    let mut memo: HashTable<MemoEntry<M::State>> = HashTable::new();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut best: Vec<u32> = Vec::new();
    let mut agree: usize = 0;
    let mut local_bytes: usize = 0;
    let entry_overhead = std::mem::size_of::<MemoEntry<M::State>>() * 8 / 7 + 1;

    let mut entry = list.next[HEAD as usize];
    let mut crashed_phase = false;
    let mut countdown = CHECK_EVERY;
    let result = loop {
        countdown -= 1;
        if countdown == 0 {
            countdown = CHECK_EVERY;
            if limits.stop.load(Ordering::Relaxed) {
                break SearchResult::Stopped;
            }
            if limits.deadline.is_some_and(|d| Instant::now() >= d) {
                break SearchResult::Unknown(format!(
                    "time limit reached after {} steps and {} memoized configurations ({} of {} operations linearized at best)",
                    stats.steps,
                    memo.len(),
                    best.len(),
                    n
                ));
            }
            let total = limits.memory_used.fetch_add(local_bytes, Ordering::Relaxed) + local_bytes;
            local_bytes = 0;
            if total > limits.memory_limit_bytes {
                break SearchResult::Unknown(format!(
                    "memory bound of {} MiB reached after {} steps and {} memoized configurations ({} of {} operations linearized at best)",
                    limits.memory_limit_bytes >> 20,
                    stats.steps,
                    memo.len(),
                    best.len(),
                    n
                ));
            }
        }
        stats.steps += 1;
        debug_assert_ne!(entry, NONE, "the list always ends with a completion");
        let e = entry as usize;
        let o = list.op[e] as usize;
        if list.is_call[e] {
            if crashed[o] != crashed_phase {
                entry = list.next[e];
                continue;
            }
            if let Some(next_state) = model.step(ctx, &state, &cops[o]) {
                bits.set(o);
                zhash ^= zob[o];
                let h = fmix64(zhash ^ state_hash(&next_state));
                let tail = bits.tail();
                let low = bits.low as u32;
                let seen = memo
                    .find(h, |m| m.hash == h && m.low == low && &*m.tail == tail && m.state == next_state)
                    .is_some();
                if !seen {
                    local_bytes += entry_overhead + 8 * tail.len() + model.state_bytes(&next_state)
                        - std::mem::size_of::<M::State>();
                    memo.insert_unique(
                        h,
                        MemoEntry { hash: h, low, tail: tail.into(), state: next_state.clone() },
                        |m| m.hash,
                    );
                    let prev_state = std::mem::replace(&mut state, next_state);
                    stack.push(Frame { entry, state: prev_state, crashed_phase });
                    list.lift(entry);
                    // Track the longest prefix without copying it each time.
                    let d = stack.len();
                    if agree == d - 1 && best.get(d - 1) == Some(&(o as u32)) {
                        agree = d;
                    }
                    if d > best.len() {
                        best.truncate(agree);
                        best.extend(stack[agree..].iter().map(|f| list.op[f.entry as usize]));
                        agree = d;
                    }
                    entry = list.next[HEAD as usize];
                    crashed_phase = false;
                    if entry == NONE {
                        break SearchResult::Valid;
                    }
                    continue;
                }
                bits.clear(o);
                zhash ^= zob[o];
            }
            entry = list.next[e];
        } else {
            if crashed[o] {
                // Every completed operation is linearized; the crashed ones
                // left may never have happened.
                break SearchResult::Valid;
            }
            if !crashed_phase && any_crashed {
                crashed_phase = true;
                entry = list.next[HEAD as usize];
                continue;
            }
            let Some(frame) = stack.pop() else {
                break SearchResult::Invalid {
                    best_prefix: best.iter().map(|&o| o as usize).collect(),
                };
            };
            if agree > stack.len() {
                agree = stack.len();
            }
            state = frame.state;
            list.unlift(frame.entry);
            let fo = list.op[frame.entry as usize] as usize;
            bits.clear(fo);
            zhash ^= zob[fo];
            entry = list.next[frame.entry as usize];
            crashed_phase = frame.crashed_phase;
        }
    };
    limits.memory_used.fetch_add(local_bytes, Ordering::Relaxed);
    stats.memo_entries += memo.len() as u64;
    stats.memo_bytes += memo
        .iter()
        .map(|m| (entry_overhead + 8 * m.tail.len()) as u64)
        .sum::<u64>();
    // Give the memory back to the shared budget: this search is done.
    let held: usize = memo
        .iter()
        .map(|m| entry_overhead + 8 * m.tail.len() + model.state_bytes(&m.state) - std::mem::size_of::<M::State>())
        .sum();
    limits.memory_used.fetch_sub(held.min(limits.memory_used.load(Ordering::Relaxed)), Ordering::Relaxed);
    result
}

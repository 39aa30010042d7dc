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
//!   they may be linearized at any point after their invoke, or never. They
//!   live in a list of their own; once every completed operation is
//!   linearized the search succeeds, whatever crashed ones are left. A
//!   crashed candidate is tried only after every completed candidate before
//!   the next completion has failed (the order of tries changes speed, not
//!   the verdict).
//! - Subsumption for crashed operations: a configuration is (state,
//!   completed operations linearized, crashed operations linearized). If
//!   (s, C, K') was explored, then (s, C, K) with K' ⊆ K needs no
//!   exploring: crashed operations never constrain others in real time and
//!   may stay unapplied forever, so every continuation of the latter is one
//!   of the former. The memo keeps, per (s, C), the sets K seen.
//! - Conflict-directed backjumping for maps of independent objects (the
//!   whole-map `kv`), when nothing crashed: a configuration is feasible
//!   exactly when each key's projection (that key's state and linearized
//!   operations) is (Herlihy & Wing's locality, applied to what is left).
//!   When a configuration is exhausted the search names the key to blame:
//!   key j if a child, reached by an operation of another key, failed
//!   because of j (the projection on j is the same); else the key k of the
//!   completion it is stuck at, if every child reached by an operation of
//!   k failed because of k; else no key. Every ancestor reached by an
//!   operation of another key than the blamed one has the same projection
//!   on it, so is infeasible too: the search pops it without trying its
//!   other candidates. This is still one search over whole-map
//!   configurations; it only skips alternatives that cannot succeed.
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
    Invalid {
        best_prefix: Vec<usize>,
    },
    Unknown(String),
    /// Another search found the history invalid.
    Stopped,
    /// The step budget ran out (the caller may retry with a larger one).
    OutOfBudget,
}

/// Counters, for benchmarks and reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct SearchStats {
    pub steps: u64,
    pub memo_entries: u64,
    pub memo_bytes: u64,
}

/// A memo entry: one (state, completed set) with the crashed sets seen.
struct MemoEntry<S> {
    hash: u64,
    /// Index into the blame table.
    id: u32,
    low: u32,
    tail_len: u32,
    /// Completed set's tail words, in the arena.
    tail_at: usize,
    state: S,
    /// Crashed sets seen with it, as arena ranges (trimmed of zero words):
    /// the first inline, the others (rare) in `more`.
    k0: (usize, u32),
    more: Vec<(usize, u32)>,
}

/// A set of operations as a bitset, with the first non-full and the last
/// non-zero word tracked so that its compact form is cheap.
struct Bits {
    words: Vec<u64>,
    /// First word that is not all ones.
    low: usize,
    /// One past the last non-zero word; at least `low`.
    high: usize,
}

impl Bits {
    fn new(n: usize) -> Bits {
        Bits {
            words: vec![0; n.div_ceil(64) + 1],
            low: 0,
            high: 0,
        }
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
    /// The words up to the last non-zero one.
    #[inline]
    fn trimmed(&self) -> &[u64] {
        &self.words[..self.high]
    }
}

/// Entries in real-time order, in two doubly-linked lists: entry 0 heads
/// the completed operations' invokes and completions, entry 1 the crashed
/// operations' invokes.
struct Entries {
    next: Vec<u32>,
    prev: Vec<u32>,
    op: Vec<u32>,
    is_call: Vec<bool>,
    /// For an invoke of a completed operation, its completion entry.
    ret: Vec<u32>,
    /// Event position of the entry.
    pos: Vec<u64>,
}

const CHEAD: u32 = 1;
/// No key to blame (or no component).
const ANY: u32 = u32::MAX;

impl Entries {
    fn build(ops: &[&Operation]) -> Entries {
        // (position, kind: 0 call / 1 return, op)
        let mut main: Vec<(u64, u8, u32)> = Vec::with_capacity(ops.len() * 2);
        let mut crashed: Vec<(u64, u8, u32)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match op.complete_pos {
                Some(p) if !op.crashed() => {
                    main.push((op.invoke_pos, 0, i as u32));
                    main.push((p, 1, i as u32));
                }
                _ => crashed.push((op.invoke_pos, 0, i as u32)),
            }
        }
        main.sort_unstable();
        crashed.sort_unstable();
        let n = 2 + main.len() + crashed.len();
        let mut e = Entries {
            next: vec![NONE; n],
            prev: vec![NONE; n],
            op: vec![NONE; n],
            is_call: vec![false; n],
            ret: vec![NONE; n],
            pos: vec![0; n],
        };
        let mut call_of = vec![NONE; ops.len()];
        let mut id = 2u32;
        for (head, list) in [(HEAD, &main), (CHEAD, &crashed)] {
            let mut last = head;
            for &(pos, kind, o) in list.iter() {
                e.op[id as usize] = o;
                e.pos[id as usize] = pos;
                e.is_call[id as usize] = kind == 0;
                if kind == 0 {
                    call_of[o as usize] = id;
                } else {
                    let call = call_of[o as usize];
                    assert_ne!(call, NONE, "an invoke precedes its completion");
                    e.ret[call as usize] = id;
                }
                e.prev[id as usize] = last;
                e.next[last as usize] = id;
                last = id;
                id += 1;
            }
        }
        e
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
        let r = self.ret[call as usize];
        if r != NONE {
            self.unlink(r);
        }
    }

    #[inline]
    fn unlift(&mut self, call: u32) {
        let r = self.ret[call as usize];
        if r != NONE {
            self.relink(r);
        }
        self.relink(call);
    }
}

struct Frame<S> {
    entry: u32,
    state: S,
    /// Memo id of the configuration this frame's operation led to, and
    /// where that configuration's records of failed children start.
    child_id: u32,
    child_recs: usize,
    /// Were we trying crashed candidates, and up to which position.
    crashed_phase: bool,
    limit_pos: u64,
}

#[inline]
fn state_hash<S: Hash>(s: &S) -> u64 {
    let mut h = FxHasher::default();
    s.hash(&mut h);
    h.finish()
}

#[inline]
fn subset(small: &[u64], big: &[u64]) -> bool {
    small.len() <= big.len() && small.iter().zip(big).all(|(a, b)| a & !b == 0)
}

/// Searches for a linearization of `ops` (already compiled into `cops`).
pub fn search<M: Model>(
    model: &M,
    ctx: &mut Ctx,
    ops: &[&Operation],
    cops: &[M::Op],
    limits: &Limits<'_>,
    step_budget: u64,
    stats: &mut SearchStats,
) -> SearchResult {
    assert_eq!(ops.len(), cops.len());
    let steps_at_start = stats.steps;
    let n = ops.len();
    if n == 0 {
        return SearchResult::Valid;
    }
    // Index of each op among the completed or among the crashed ones.
    let crashed: Vec<bool> = ops
        .iter()
        .map(|o| o.crashed() || o.complete_pos.is_none())
        .collect();
    let mut index = vec![0usize; n];
    let (mut nc, mut nk) = (0, 0);
    for o in 0..n {
        if crashed[o] {
            index[o] = nk;
            nk += 1;
        } else {
            index[o] = nc;
            nc += 1;
        }
    }
    let mut list = Entries::build(ops);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ n as u64;
    let zob: Vec<u64> = (0..n).map(|_| splitmix64(&mut seed)).collect();

    let mut bits = Bits::new(nc);
    let mut kbits = Bits::new(nk);
    let mut zhash: u64 = 0;
    let mut state = model.init(ctx);
    let mut memo: HashTable<MemoEntry<M::State>> = HashTable::new();
    let mut arena: Vec<u64> = Vec::new();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut best: Vec<u32> = Vec::new();
    let mut agree: usize = 0;
    let mut local_bytes: usize = 0;
    let entry_overhead = std::mem::size_of::<MemoEntry<M::State>>() * 8 / 7 + 1;

    // Backjumping (see the module docs): per memo entry, the key blamed
    // for its failure; per configuration on the path, its failed children.
    let comp: Vec<u32> = cops
        .iter()
        .map(|c| model.component(c).unwrap_or(ANY))
        .collect();
    let cbj = !crashed.iter().any(|&c| c)
        && comp.iter().all(|&c| c != ANY)
        && comp.iter().any(|&c| c != comp[0]);
    let mut blame_of: Vec<u32> = Vec::new();
    let mut recs: Vec<(u32, u32)> = Vec::new();

    let mut entry = list.next[HEAD as usize];
    if entry == NONE {
        return SearchResult::Valid;
    }
    let mut crashed_phase = false;
    let mut limit_pos = 0u64;
    let mut countdown = CHECK_EVERY;
    let result = loop {
        countdown -= 1;
        if countdown == 0 {
            countdown = CHECK_EVERY;
            if limits.stop.load(Ordering::Relaxed) {
                break SearchResult::Stopped;
            }
            if stats.steps - steps_at_start > step_budget {
                break SearchResult::OutOfBudget;
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
        let e = entry as usize;
        // Is `entry` a candidate to try now?
        let candidate = if crashed_phase {
            entry != NONE && list.pos[e] < limit_pos
        } else {
            debug_assert_ne!(entry, NONE, "the main list ends with a completion");
            list.is_call[e]
        };
        if candidate {
            let o = list.op[e] as usize;
            if let Some(next_state) = model.step(ctx, &state, &cops[o]) {
                if crashed[o] {
                    kbits.set(index[o]);
                } else {
                    bits.set(index[o]);
                    zhash ^= zob[o];
                }
                let h = fmix64(zhash ^ state_hash(&next_state));
                let tail = bits.tail();
                let low = bits.low as u32;
                let ks = kbits.trimmed();
                let found = memo.find_mut(h, |m| {
                    m.hash == h
                        && m.low == low
                        && &arena[m.tail_at..m.tail_at + m.tail_len as usize] == tail
                        && m.state == next_state
                });
                let new = match found {
                    Some(m) => {
                        let seen =
                            |&(at, len): &(usize, u32)| subset(&arena[at..at + len as usize], ks);
                        if seen(&m.k0) || m.more.iter().any(seen) {
                            if cbj {
                                recs.push((comp[o], blame_of[m.id as usize]));
                            }
                            None
                        } else {
                            m.more.push((arena.len(), ks.len() as u32));
                            arena.extend_from_slice(ks);
                            local_bytes += 16 + 8 * ks.len();
                            Some(m.id)
                        }
                    }
                    None => {
                        let id = blame_of.len() as u32;
                        blame_of.push(ANY);
                        let tail_at = arena.len();
                        arena.extend_from_slice(tail);
                        let ks_at = arena.len();
                        arena.extend_from_slice(ks);
                        local_bytes += entry_overhead
                            + 16
                            + 8 * (tail.len() + ks.len())
                            + model.state_bytes(&next_state)
                            - std::mem::size_of::<M::State>();
                        memo.insert_unique(
                            h,
                            MemoEntry {
                                hash: h,
                                id,
                                low,
                                tail_len: tail.len() as u32,
                                tail_at,
                                state: next_state.clone(),
                                k0: (ks_at, ks.len() as u32),
                                more: Vec::new(),
                            },
                            |m| m.hash,
                        );
                        Some(id)
                    }
                };
                if let Some(child_id) = new {
                    let prev_state = std::mem::replace(&mut state, next_state);
                    stack.push(Frame {
                        entry,
                        state: prev_state,
                        child_id,
                        child_recs: recs.len(),
                        crashed_phase,
                        limit_pos,
                    });
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
                        // Every completed operation is linearized; the
                        // crashed ones left may never have happened.
                        break SearchResult::Valid;
                    }
                    continue;
                }
                if crashed[o] {
                    kbits.clear(index[o]);
                } else {
                    bits.clear(index[o]);
                    zhash ^= zob[o];
                }
            }
            entry = list.next[e];
            continue;
        }
        if !crashed_phase && list.next[CHEAD as usize] != NONE {
            // Out of completed candidates before this completion: try the
            // crashed operations invoked before it.
            crashed_phase = true;
            limit_pos = list.pos[e];
            entry = list.next[CHEAD as usize];
            continue;
        }
        // This configuration is exhausted. Whom to blame?
        let mut blame = ANY;
        if cbj {
            let k = comp[list.op[e] as usize];
            let seg = &recs[stack.last().map_or(0, |f| f.child_recs)..];
            blame = match seg.iter().find(|&&(ck, b)| b != ANY && b != ck) {
                Some(&(_, b)) => b,
                None if seg.iter().all(|&(ck, b)| ck != k || b == k) => k,
                None => ANY,
            };
        }
        let mut invalid = false;
        loop {
            let Some(frame) = stack.pop() else {
                invalid = true;
                break;
            };
            recs.truncate(frame.child_recs);
            if agree > stack.len() {
                agree = stack.len();
            }
            if cbj {
                blame_of[frame.child_id as usize] = blame;
            }
            state = frame.state;
            list.unlift(frame.entry);
            let fo = list.op[frame.entry as usize] as usize;
            if crashed[fo] {
                kbits.clear(index[fo]);
            } else {
                bits.clear(index[fo]);
                zhash ^= zob[fo];
            }
            entry = list.next[frame.entry as usize];
            crashed_phase = frame.crashed_phase;
            limit_pos = frame.limit_pos;
            if blame == ANY || comp[fo] == blame {
                if cbj {
                    recs.push((comp[fo], blame));
                }
                break;
            }
            // The parent has the same projection on the blamed key: it is
            // infeasible too, whatever its other candidates.
        }
        if invalid {
            break SearchResult::Invalid {
                best_prefix: best.iter().map(|&o| o as usize).collect(),
            };
        }
    };
    stats.memo_entries += memo.len() as u64;
    let held: usize = memo
        .iter()
        .map(|m| {
            entry_overhead + 16 * m.more.len() + model.state_bytes(&m.state)
                - std::mem::size_of::<M::State>()
        })
        .sum::<usize>()
        + 8 * arena.len();
    stats.memo_bytes += held as u64;
    // Give the memory back to the shared budget: this search is done.
    limits.memory_used.fetch_add(local_bytes, Ordering::Relaxed);
    let _ = limits
        .memory_used
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
            Some(m.saturating_sub(held))
        });
    result
}

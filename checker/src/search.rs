//! The linearizability search: Wing & Gong's algorithm with Lowe's
//! memoization, over one (sub-)history and one model.
//!
//! Entries (invokes and completions) sit in a doubly-linked list in
//! real-time order. A configuration is (linearized set L, model state s);
//! its candidates are the operations left that were invoked before the
//! first completion left (`stop`): exactly the operations that may come
//! next in a linearization. The search tries each candidate (applies it to
//! the model state); if the new configuration is worth exploring it lifts
//! the operation out of the list and goes on from there; once every
//! candidate failed, the configuration is exhausted and the search
//! backtracks. Memoizing the configurations makes each explored at most
//! once. Every configuration reached satisfies the invariant (I): no
//! operation left completed before an operation of L was invoked.
//!
//! Guarantees and refinements (each changes speed, never the verdict):
//! - Crashed operations (info, or never completed) complete at +infinity:
//!   they may be linearized at any point after their invoke, or never. They
//!   live in a list of their own; once every completed operation is
//!   linearized the search succeeds, whatever crashed ones are left. A
//!   crashed candidate is tried only after every completed candidate has
//!   failed (the order of tries changes speed, not the verdict).
//! - Subsumption for crashed operations: a configuration is (state,
//!   completed operations linearized, crashed operations linearized). If
//!   (s, C, K') was explored, then (s, C, K) with K' ⊆ K needs no
//!   exploring: crashed operations never constrain others in real time and
//!   may stay unapplied forever, so every continuation of the latter is one
//!   of the former. The memo keeps, per (s, C), the sets K seen.
//! - Forced reads. If a candidate r never changes the state when it
//!   succeeds (`Model::read_only`: a read, a renew) and succeeds in s,
//!   then (L, s) is feasible iff (L + r, s) is: take any linearization σ
//!   of what is left and move r to its front. Every operation left
//!   completes no earlier than `stop`, after r's invoke, so none must
//!   precede r in real time; r sees s, which it accepts; every other
//!   operation sees the state it saw in σ, since r changes none. So the
//!   search tries r first and, if that fails, gives up on the
//!   configuration without trying the other candidates.
//! - Look-ahead to the reads left. `Model::reach` says what an operation
//!   may do to any state: grow it (a read leaves it, a kv `append` adds a
//!   suffix to its text, a cas that did not swap leaves it), set it to a
//!   value x (a write; a cas that may swap), or anything. Take the
//!   configuration (L + o, s) that linearizing candidate o leads to, and
//!   a read r left (completed, its value known: `Model::pins`) such that
//!   every operation left invoked before r completed grows or sets. In any
//!   linearization of what is left, the operations before r were invoked
//!   before r completed (real time), so r sees s grown, or one of their
//!   values x grown (the last one set). If neither s nor any such x grows
//!   into a state r accepts (`Model::may_grow_into`: for a kv, the text is
//!   no prefix of the text r read; for a register, it is not the value
//!   read), the configuration is infeasible and is not explored. The
//!   search walks the entries left in real-time order from the first,
//!   collecting the values set and checking reads, up to the first invoke
//!   of an operation that may do anything (crashed operations live in a
//!   list of their own: the walk also stops at the invoke position of the
//!   first crashed one left that may do anything, and a value a crashed
//!   operation may set counts for the reads completed after its invoke),
//!   and within bounds (`LOOKAHEAD_*`). Not used with nogoods (maps checked
//!   whole), whose models name no reads that pin. On Porcupine's kv logs
//!   this refuses a wrong order of concurrent appends at once, rather than
//!   after exploring every state it leads to until a read contradicts it
//!   (c50-ok split by key: 870,000 steps down to 37,000).
//! - Maps of independent objects (the whole-map `kv`, `--no-partition`),
//!   when nothing crashed and at least two keys are touched. The
//!   projection of a configuration on key k is (L_k, s[k]): its linearized
//!   operations of key k and its state of key k. It is feasible when the
//!   operations of k left can be linearized from s[k], respecting real
//!   time among themselves; that depends on (k, L_k, s[k]) and the
//!   history only. By (I) and Herlihy & Wing's locality (a history is
//!   linearizable iff each object's sub-history is), applied to what is
//!   left from s: a configuration is feasible iff each of its projections
//!   is. Three things follow.
//!   * Blame. An exhausted configuration X names a key whose projection
//!     is infeasible. (1) If a child X + o, o of key m, was infeasible
//!     because of key j ≠ m, blame j: o does not touch key j, so X has the
//!     child's projection on j. (2) Else every child failed because of its
//!     own operation's key; blame the key k of `stop`. Proof for (2): the
//!     first completion left of key k is `stop` itself, so the candidates
//!     of X's projection on k (operations of k left invoked before the
//!     first completion of k left) are exactly X's candidates of key k,
//!     and each child projection (L_k + o, s[k]·o) failed: refused by the
//!     model, or blamed on k. Wing & Gong's argument on the projection (the
//!     first operation of any linearization of it is one of its
//!     candidates) makes the projection infeasible. By induction over the
//!     search, blame is always some key here (a child is either refused by
//!     the model, or pruned by a nogood of its key, or explored and
//!     blamed).
//!   * Backjumping. Every ancestor of X reached by an operation of another
//!     key than the blamed j has X's projection on j, so is infeasible:
//!     the search pops it without trying its other candidates, down to the
//!     last configuration reached by an operation of j, which goes on with
//!     its next candidate, a child failed because of j noted. And once all
//!     candidates of `stop`'s key failed because of that key, rule (2)
//!     holds whatever the other keys' candidates do: the search tries the
//!     candidates of `stop`'s key first (then the others, each group
//!     earliest completion first) and stops there.
//!   * Nogoods. When X is exhausted with blame j, (j, L_j, s[j]) is
//!     remembered as infeasible; a child whose projection on the key of
//!     its operation is a nogood is infeasible and not explored. This
//!     replaces the memo, which is not kept in this mode: an exhausted
//!     configuration's projection on its blamed key is a nogood from then
//!     on, so reaching the configuration again is stopped at the last
//!     operation of that key on the new path (if that operation was older
//!     than the nogood, the configuration it led to was an ancestor of the
//!     exhausted one and was popped by backjumping). Dropping a memo never
//!     changes a verdict, only the work (Wing & Gong without one is
//!     complete); the nogoods cut at least what it cut, across different
//!     states of the other keys, which the whole-map memo cannot. This is
//!     still one search over whole-map configurations: it only skips
//!     configurations proven infeasible.
//! - The linearized set is a bitset hashed incrementally (Zobrist: one
//!   random word per operation, xor-ed in and out), per key too for the
//!   nogoods; memo entries and nogoods store it compactly as (number of
//!   leading full words, the words after them up to the last non-zero
//!   one), so long histories whose linearized set is mostly a prefix stay
//!   small. Hash matches are confirmed by comparing sets and states.
//! - The search never runs past its [`Limits`]: a deadline, a shared stop
//!   flag and a shared memory budget, each ending in [`SearchResult::Unknown`]
//!   (or `Stopped`) with the reason.

use crate::fxhash::{fmix64, splitmix64, FxHasher};
use crate::model::{Ctx, Model, Reach};
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

/// Memory one worker keeps from one search to the next, so that the
/// parts of a split history after the first (the largest) find the memo
/// table and its arena already grown: clearing keeps their capacity. Only
/// speed depends on it; every search starts from an empty memo.
pub struct Scratch<S> {
    memo: HashTable<MemoEntry<S>>,
    arena: Vec<u64>,
}

impl<S> Default for Scratch<S> {
    fn default() -> Scratch<S> {
        Scratch {
            memo: HashTable::new(),
            arena: Vec::new(),
        }
    }
}

/// A memo entry: one (state, completed set) with the crashed sets seen.
struct MemoEntry<S> {
    hash: u64,
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

/// A learned nogood: one component's projection (its part of the state
/// and its linearized operations, compact as in [`MemoEntry`]) from which
/// that component's operations left cannot be linearized.
struct Nogood<P> {
    hash: u64,
    comp: u32,
    low: u32,
    tail_len: u32,
    tail_at: usize,
    part: P,
}

#[inline]
fn nogood_hash<P: Hash>(comp: usize, zobrist: u64, part: &P) -> u64 {
    fmix64(zobrist ^ state_hash(part) ^ (comp as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
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
    /// For a completion, its invoke entry.
    call: Vec<u32>,
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
            call: vec![NONE; n],
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
                    e.call[id as usize] = call;
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
    /// Where the records of the failed children of the configuration
    /// this frame's operation led to start.
    child_recs: usize,
    /// Were we trying crashed candidates, and up to which position.
    crashed_phase: bool,
    limit_pos: u64,
    /// The parent's candidates: where they start and end in the candidate
    /// stack, which one this frame tried, and the completion they precede.
    cands_lo: u32,
    cands_hi: u32,
    ci: u32,
    ci_split: u32,
    stop: u32,
    forced: bool,
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

/// Among the candidates `cands[lo..]`, a read (an operation that never
/// changes the state) that succeeds in `state`: moved to the front, and true.
fn forced_read<M: Model>(
    model: &M,
    ctx: &mut Ctx,
    state: &M::State,
    cops: &[M::Op],
    list: &Entries,
    cands: &mut [u32],
    lo: usize,
) -> bool {
    for i in lo..cands.len() {
        let o = &cops[list.op[cands[i] as usize] as usize];
        if model.read_only(o) && model.step(ctx, state, o).is_some_and(|s| s == *state) {
            cands[lo..=i].rotate_right(1);
            return true;
        }
    }
    false
}

/// Bounds of the look-ahead of [`pinned_out`]: entries walked, reads
/// checked, states that operations left may set (each read is checked
/// against every one of them).
const LOOKAHEAD_ENTRIES: u32 = 256;
const LOOKAHEAD_READS: u32 = 4;
const LOOKAHEAD_SETS: usize = 8;

/// Look-ahead to the reads left (module docs): true when the
/// configuration reached by linearizing `o` into `state` is infeasible
/// because a read left sees a state that neither `state` nor any state an
/// operation left may set grows into. `sets` and `crashed_sets` are
/// scratch space.
#[allow(clippy::too_many_arguments)]
fn pinned_out<M: Model>(
    model: &M,
    ctx: &mut Ctx,
    state: &M::State,
    cops: &[M::Op],
    list: &Entries,
    reach: &[Reach<M::State>],
    pins: &[bool],
    o: u32,
    sets: &mut Vec<M::State>,
    crashed_sets: &mut Vec<(u64, M::State)>,
) -> bool {
    // Crashed operations left may take effect before any read completed
    // after their invoke: up to the first that may do anything, collect
    // the states they may set.
    let mut limit = u64::MAX;
    crashed_sets.clear();
    let mut e = list.next[CHEAD as usize];
    while e != NONE {
        let k = list.op[e as usize];
        if k != o {
            match &reach[k as usize] {
                Reach::Grows => {}
                Reach::Sets(x) if crashed_sets.len() < LOOKAHEAD_SETS => {
                    crashed_sets.push((list.pos[e as usize], x.clone()))
                }
                _ => {
                    limit = list.pos[e as usize];
                    break;
                }
            }
        }
        e = list.next[e as usize];
    }
    sets.clear();
    let mut e = list.next[HEAD as usize];
    let (mut entries, mut reads) = (LOOKAHEAD_ENTRIES, LOOKAHEAD_READS);
    while e != NONE && entries > 0 && reads > 0 && list.pos[e as usize] < limit {
        let r = list.op[e as usize];
        if r != o {
            if list.is_call[e as usize] {
                match &reach[r as usize] {
                    Reach::Grows => {}
                    Reach::Sets(x) if sets.len() < LOOKAHEAD_SETS => sets.push(x.clone()),
                    _ => break,
                }
            } else if pins[r as usize] {
                let read = &cops[r as usize];
                let at = list.pos[e as usize];
                let reachable = model.may_grow_into(ctx, state, read)
                    || sets.iter().any(|x| model.may_grow_into(ctx, x, read))
                    || crashed_sets
                        .iter()
                        .any(|(p, x)| *p < at && model.may_grow_into(ctx, x, read));
                if !reachable {
                    return true;
                }
                reads -= 1;
            }
        }
        e = list.next[e as usize];
        entries -= 1;
    }
    false
}

/// Searches for a linearization of `ops` (already compiled into `cops`),
/// in memory kept in `scratch` (emptied first).
pub fn search<M: Model>(
    model: &M,
    ctx: &mut Ctx,
    ops: &[&Operation],
    cops: &[M::Op],
    limits: &Limits<'_>,
    step_budget: u64,
    stats: &mut SearchStats,
    scratch: &mut Scratch<M::State>,
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
    scratch.memo.clear();
    scratch.arena.clear();
    let memo = &mut scratch.memo;
    let arena = &mut scratch.arena;
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
    let mut recs: Vec<(u32, u32)> = Vec::new();
    // Nogoods (see the module docs): per component, its operations'
    // indices among its own, its linearized set and that set's hash.
    let ncomp = if cbj {
        comp.iter().map(|&c| c as usize + 1).max().unwrap_or(0)
    } else {
        0
    };
    let mut cidx = vec![0usize; if cbj { n } else { 0 }];
    let mut ccount = vec![0usize; ncomp];
    for o in 0..cidx.len() {
        cidx[o] = ccount[comp[o] as usize];
        ccount[comp[o] as usize] += 1;
    }
    let mut cbits: Vec<Bits> = ccount.iter().map(|&c| Bits::new(c)).collect();
    let mut cz = vec![0u64; ncomp];
    let mut nogoods: HashTable<Nogood<M::Part>> = HashTable::new();
    let mut nogood_arena: Vec<u64> = Vec::new();
    let nogood_overhead = std::mem::size_of::<Nogood<M::Part>>() * 8 / 7 + 1;

    // Look-ahead (see the module docs), where some read may refuse.
    let pins: Vec<bool> = (0..n)
        .map(|o| !crashed[o] && model.pins(&cops[o]))
        .collect();
    let lookahead = !cbj && pins.iter().any(|&p| p);
    // Only a search that looks ahead reads `reach`: the others (registers,
    // whose models pin no read) do not pay for it.
    let reach: Vec<Reach<M::State>> = if lookahead {
        cops.iter().map(|c| model.reach(c)).collect()
    } else {
        Vec::new()
    };
    let mut sets: Vec<M::State> = Vec::new();
    let mut crashed_sets: Vec<(u64, M::State)> = Vec::new();

    if list.next[HEAD as usize] == NONE {
        return SearchResult::Valid;
    }
    // Candidates of each configuration on the path, stacked: the completed
    // operations invoked before the first completion left (`stop`), earliest
    // completion first (the order changes speed, never the verdict).
    let mut cands: Vec<u32> = Vec::new();
    let comp_of = |o: u32| comp[o as usize];
    // Sort keys: (not of the stop key, completion entry); completion
    // entries are numbered in real-time order.
    let mut keys: Vec<u64> = Vec::new();
    let mut enter = |list: &Entries, cands: &mut Vec<u32>| -> (u32, usize) {
        let lo = cands.len();
        let mut e = list.next[HEAD as usize];
        while list.is_call[e as usize] {
            cands.push(e);
            e = list.next[e as usize];
        }
        if !cbj {
            return (e, cands.len());
        }
        let ks = comp_of(list.op[e as usize]);
        keys.clear();
        keys.extend(cands[lo..].iter().map(|&c| {
            u64::from(comp_of(list.op[c as usize]) != ks) << 32 | u64::from(list.ret[c as usize])
        }));
        keys.sort_unstable();
        let mut same = 0;
        for (slot, &k) in cands[lo..].iter_mut().zip(&keys) {
            *slot = list.call[(k & u64::from(u32::MAX)) as usize];
            same += usize::from(k >> 32 == 0);
        }
        (e, lo + same)
    };
    let mut cands_lo = 0usize;
    let (mut stop, mut ci_split) = enter(&list, &mut cands);
    let mut forced = forced_read(model, ctx, &state, cops, &list, &mut cands, 0);
    let mut ci = 0usize;
    let mut entry = NONE;
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
                    memo.len() + nogoods.len(),
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
                    memo.len() + nogoods.len(),
                    best.len(),
                    n
                ));
            }
        }
        stats.steps += 1;
        if forced && ci > cands_lo {
            // The forced read failed: so does this configuration (module
            // docs), whatever its other candidates.
            ci = cands.len();
        } else if cbj && ci == ci_split && ci < cands.len() {
            // Every candidate of the stop key is tried: if each failed
            // because of that key, so does this configuration (rule 2 in
            // the module docs), whatever the other keys' candidates.
            let ks = comp[list.op[stop as usize] as usize];
            let seg = &recs[stack.last().map_or(0, |f| f.child_recs)..];
            if seg.iter().all(|&(ck, b)| ck != ks || b == ks) {
                ci = cands.len();
            }
        }
        // The next candidate to try, if any.
        let candidate = if crashed_phase {
            entry != NONE && list.pos[entry as usize] < limit_pos
        } else {
            if ci < cands.len() {
                entry = cands[ci];
            }
            ci < cands.len()
        };
        let e = entry as usize;
        if candidate {
            let o = list.op[e] as usize;
            let next = match model.step(ctx, &state, &cops[o]) {
                Some(s)
                    if lookahead
                        && pinned_out(
                            model,
                            ctx,
                            &s,
                            cops,
                            &list,
                            &reach,
                            &pins,
                            o as u32,
                            &mut sets,
                            &mut crashed_sets,
                        ) =>
                {
                    None
                }
                next => next,
            };
            if let Some(next_state) = next {
                if crashed[o] {
                    kbits.set(index[o]);
                } else {
                    bits.set(index[o]);
                    zhash ^= zob[o];
                }
                let k = comp[o] as usize;
                let mut stuck = false;
                if cbj {
                    cbits[k].set(cidx[o]);
                    cz[k] ^= zob[o];
                    let part = model.part(&next_state, k as u32).expect("maps have parts");
                    let hp = nogood_hash(k, cz[k], &part);
                    let (cb, low) = (&cbits[k], cbits[k].low as u32);
                    stuck = nogoods
                        .find(hp, |g| {
                            g.hash == hp
                                && g.comp == k as u32
                                && g.low == low
                                && nogood_arena[g.tail_at..g.tail_at + g.tail_len as usize]
                                    == *cb.tail()
                                && g.part == part
                        })
                        .is_some();
                }
                let h = if cbj {
                    0
                } else {
                    fmix64(zhash ^ state_hash(&next_state))
                };
                let tail = bits.tail();
                let low = bits.low as u32;
                let ks = kbits.trimmed();
                let found = if cbj {
                    None
                } else {
                    memo.find_mut(h, |m| {
                        m.hash == h
                            && m.low == low
                            && &arena[m.tail_at..m.tail_at + m.tail_len as usize] == tail
                            && m.state == next_state
                    })
                };
                let new = match found {
                    _ if stuck => {
                        recs.push((k as u32, k as u32));
                        None
                    }
                    // No memo with nogoods: they subsume it (module docs).
                    _ if cbj => Some(()),
                    Some(m) => {
                        let seen =
                            |&(at, len): &(usize, u32)| subset(&arena[at..at + len as usize], ks);
                        if seen(&m.k0) || m.more.iter().any(seen) {
                            None
                        } else {
                            m.more.push((arena.len(), ks.len() as u32));
                            arena.extend_from_slice(ks);
                            local_bytes += 16 + 8 * ks.len();
                            Some(())
                        }
                    }
                    None => {
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
                                low,
                                tail_len: tail.len() as u32,
                                tail_at,
                                state: next_state.clone(),
                                k0: (ks_at, ks.len() as u32),
                                more: Vec::new(),
                            },
                            |m| m.hash,
                        );
                        Some(())
                    }
                };
                if new.is_some() {
                    let prev_state = std::mem::replace(&mut state, next_state);
                    stack.push(Frame {
                        entry,
                        state: prev_state,
                        child_recs: recs.len(),
                        crashed_phase,
                        limit_pos,
                        cands_lo: cands_lo as u32,
                        cands_hi: cands.len() as u32,
                        ci: ci as u32,
                        ci_split: ci_split as u32,
                        stop,
                        forced,
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
                    crashed_phase = false;
                    if list.next[HEAD as usize] == NONE {
                        // Every completed operation is linearized; the
                        // crashed ones left may never have happened.
                        break SearchResult::Valid;
                    }
                    cands_lo = cands.len();
                    (stop, ci_split) = enter(&list, &mut cands);
                    forced = forced_read(model, ctx, &state, cops, &list, &mut cands, cands_lo);
                    ci = cands_lo;
                    continue;
                }
                if crashed[o] {
                    kbits.clear(index[o]);
                } else {
                    bits.clear(index[o]);
                    zhash ^= zob[o];
                }
                if cbj {
                    cbits[k].clear(cidx[o]);
                    cz[k] ^= zob[o];
                }
            }
            if crashed_phase {
                entry = list.next[e];
            } else {
                ci += 1;
            }
            continue;
        }
        if !crashed_phase && !forced && list.next[CHEAD as usize] != NONE {
            // Out of completed candidates before this completion: try the
            // crashed operations invoked before it.
            crashed_phase = true;
            limit_pos = list.pos[stop as usize];
            entry = list.next[CHEAD as usize];
            continue;
        }
        // This configuration is exhausted. Whom to blame?
        let mut blame = ANY;
        if cbj {
            let k = comp[list.op[stop as usize] as usize];
            let seg = &recs[stack.last().map_or(0, |f| f.child_recs)..];
            blame = match seg.iter().find(|&&(ck, b)| b != ANY && b != ck) {
                _ if forced => seg.first().map_or(ANY, |&(_, b)| b),
                Some(&(_, b)) => b,
                None if seg.iter().all(|&(ck, b)| ck != k || b == k) => k,
                None => ANY,
            };
            if blame != ANY {
                // Remember that this component is stuck from here.
                let b = blame as usize;
                let part = model.part(&state, blame).expect("maps have parts");
                let hp = nogood_hash(b, cz[b], &part);
                let (cb, low) = (&cbits[b], cbits[b].low as u32);
                let known = nogoods
                    .find(hp, |g| {
                        g.hash == hp
                            && g.comp == blame
                            && g.low == low
                            && nogood_arena[g.tail_at..g.tail_at + g.tail_len as usize]
                                == *cb.tail()
                            && g.part == part
                    })
                    .is_some();
                if !known {
                    let tail = cb.tail();
                    let tail_at = nogood_arena.len();
                    nogood_arena.extend_from_slice(tail);
                    local_bytes += nogood_overhead + 8 * tail.len();
                    nogoods.insert_unique(
                        hp,
                        Nogood {
                            hash: hp,
                            comp: blame,
                            low,
                            tail_len: tail.len() as u32,
                            tail_at,
                            part,
                        },
                        |g| g.hash,
                    );
                }
            }
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
            state = frame.state;
            list.unlift(frame.entry);
            let fo = list.op[frame.entry as usize] as usize;
            if crashed[fo] {
                kbits.clear(index[fo]);
            } else {
                bits.clear(index[fo]);
                zhash ^= zob[fo];
            }
            if cbj {
                let k = comp[fo] as usize;
                cbits[k].clear(cidx[fo]);
                cz[k] ^= zob[fo];
            }
            crashed_phase = frame.crashed_phase;
            limit_pos = frame.limit_pos;
            cands.truncate(frame.cands_hi as usize);
            cands_lo = frame.cands_lo as usize;
            stop = frame.stop;
            ci = frame.ci as usize;
            ci_split = frame.ci_split as usize;
            forced = frame.forced;
            if crashed_phase {
                entry = list.next[frame.entry as usize];
            } else {
                ci += 1;
            }
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
    // Nogoods are memoized configurations too (projected on one key).
    stats.memo_entries += (memo.len() + nogoods.len()) as u64;
    let held: usize = memo
        .iter()
        .map(|m| {
            entry_overhead + 16 * m.more.len() + model.state_bytes(&m.state)
                - std::mem::size_of::<M::State>()
        })
        .sum::<usize>()
        + 8 * arena.len()
        + nogoods.len() * nogood_overhead
        + 8 * nogood_arena.len();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::register::{Flavour, Register};
    use crate::model::{compile_all, ModelOptions};
    use crate::testutil::op;
    use serde_json::json;

    /// Searches kv `ops` (one key) and returns the result and the steps.
    fn search_kv(ops: &[Operation]) -> (SearchResult, u64) {
        let model = Register::new(Flavour::Kv, &ModelOptions::default());
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut ctx = Ctx::new();
        let cops = compile_all(&model, &refs, &mut ctx).expect("kv operations");
        let (stop, memory_used) = (AtomicBool::new(false), AtomicUsize::new(0));
        let limits = Limits {
            deadline: None,
            stop: &stop,
            memory_used: &memory_used,
            memory_limit_bytes: usize::MAX,
        };
        let mut stats = SearchStats::default();
        let r = search(
            &model,
            &mut ctx,
            &refs,
            &cops,
            &limits,
            u64::MAX,
            &mut stats,
            &mut Scratch::default(),
        );
        (r, stats.steps)
    }

    fn append(id: usize, piece: &str, invoke: u64, complete: Option<u64>) -> Operation {
        let output = complete.map(|_| json!(piece));
        op(id, "append", piece, output, invoke, complete)
    }

    fn get(id: usize, seen: &str, invoke: u64, complete: u64) -> Operation {
        op(
            id,
            "get",
            json!(null),
            Some(json!(seen)),
            invoke,
            Some(complete),
        )
    }

    /// Eight concurrent appends, then a get that saw them in one order:
    /// without the look-ahead the search builds the text of every order of
    /// every subset of them (about 110,000 configurations) before the get
    /// refuses all but one.
    #[test]
    fn a_wrong_order_of_concurrent_appends_is_refused_by_the_read_after_them() {
        let pieces = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let mut ops: Vec<Operation> = pieces
            .iter()
            .enumerate()
            .map(|(i, p)| append(i, p, i as u64, Some(10 + i as u64)))
            .collect();
        ops.push(get(8, "hgfedcba", 20, 21));
        let (r, steps) = search_kv(&ops);
        assert!(matches!(r, SearchResult::Valid), "{r:?}");
        assert!(steps < 200, "{steps} steps");
        // Missing an append that completed before the get began.
        ops[8] = get(8, "hgfedcb", 20, 21);
        let (r, steps) = search_kv(&ops);
        assert!(matches!(r, SearchResult::Invalid { .. }), "{r:?}");
        assert!(steps < 200, "{steps} steps");
    }

    /// A put between the state and a read may replace the text: the read
    /// pins nothing past it, completed or crashed.
    #[test]
    fn a_read_after_a_put_left_is_not_pinned_to_the_text_before_it() {
        let completed = vec![
            append(0, "a", 0, Some(1)),
            op(1, "put", "z", Some(json!("z")), 2, Some(3)),
            append(2, "b", 4, Some(5)),
            get(3, "zb", 6, 7),
        ];
        let (r, _) = search_kv(&completed);
        assert!(matches!(r, SearchResult::Valid), "{r:?}");
        // The put crashed (never completed): it may still have happened.
        let crashed = vec![
            append(0, "a", 0, Some(1)),
            op(1, "put", "z", None, 2, None),
            append(2, "b", 3, Some(4)),
            get(3, "zb", 5, 6),
        ];
        let (r, _) = search_kv(&crashed);
        assert!(matches!(r, SearchResult::Valid), "{r:?}");
    }

    /// Texts that agree as wholes but split differently ("ab" + "c" and
    /// "a" + "bc") are one value: a prefix is a prefix of the text.
    #[test]
    fn a_prefix_is_one_of_the_text_not_of_the_pieces() {
        let ops = vec![
            append(0, "a", 0, Some(1)),
            append(1, "bc", 2, Some(5)),
            append(2, "d", 3, Some(6)),
            get(3, "abcd", 4, 7),
            op(4, "put", "ab", Some(json!("ab")), 8, Some(9)),
            append(5, "cd", 10, Some(11)),
            get(6, "abcd", 12, 13),
        ];
        let (r, _) = search_kv(&ops);
        assert!(matches!(r, SearchResult::Valid), "{r:?}");
    }
}

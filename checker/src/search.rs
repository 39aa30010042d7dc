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

/// A configuration on the path: the operation (`entry`) that left it, its
/// state, and where its candidates stood.
struct Frame<S> {
    entry: u32,
    state: S,
    /// Where the failed children of the configuration this frame's
    /// operation led to start in `Search::failed_children`.
    failed_children_start: usize,
    /// Were we trying crashed candidates, and up to which position.
    crashed_phase: bool,
    limit_pos: u64,
    /// Its candidates: where they start and end in the candidate stack,
    /// the one this frame tried, the end of those of the stop's key, and
    /// the completion they precede.
    candidates_start: u32,
    candidates_end: u32,
    next: u32,
    stop_key_end: u32,
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
    if ops.is_empty() {
        return SearchResult::Valid;
    }
    let mut search = Search::new(model, ctx, ops, cops, limits, stats, scratch);
    let result = search.run(step_budget);
    search.give_back_memory();
    result
}

/// One search: the configuration on the path, what it remembers (memo or
/// nogoods) and its scratch space. The steps of the module docs are its
/// methods: [`Search::enter`] a configuration, [`Search::try_candidate`],
/// [`Search::blame_exhausted`] and [`Search::backtrack`].
struct Search<'a, 'l, M: Model> {
    model: &'a M,
    ctx: &'a mut Ctx,
    cops: &'a [M::Op],
    limits: &'a Limits<'l>,
    stats: &'a mut SearchStats,
    steps_at_start: u64,

    /// Per operation: crashed (info, or never completed); its index among
    /// the completed or among the crashed ones; its Zobrist word.
    crashed: Vec<bool>,
    index: Vec<usize>,
    zobrist: Vec<u64>,
    list: Entries,

    /// The configuration: the linearized sets, the completed set's hash,
    /// the model state.
    completed_set: Bits,
    crashed_set: Bits,
    completed_hash: u64,
    state: M::State,
    /// The configurations on the path to this one.
    path: Vec<Frame<M::State>>,
    /// The longest linearized prefix seen, and how much of it `path` is.
    best: Vec<u32>,
    best_on_path: usize,

    /// The memo (none with nogoods), and the bytes not yet counted in the
    /// shared budget.
    memo: &'a mut HashTable<MemoEntry<M::State>>,
    arena: &'a mut Vec<u64>,
    memo_entry_bytes: usize,
    uncounted_bytes: usize,

    /// Backjumping and nogoods (module docs): on when nothing crashed and
    /// the operations touch at least two keys (components).
    backjumping: bool,
    component: Vec<u32>,
    /// Per operation, its index among its component's operations; per
    /// component, its linearized set and that set's hash.
    index_in_component: Vec<usize>,
    component_sets: Vec<Bits>,
    component_hashes: Vec<u64>,
    /// Failed children of the configurations on the path, as (key of the
    /// child's operation, key blamed), each configuration's after its
    /// frame's `failed_children_start`.
    failed_children: Vec<(u32, u32)>,
    nogoods: HashTable<Nogood<M::Part>>,
    nogood_arena: Vec<u64>,
    nogood_entry_bytes: usize,

    /// Look-ahead (module docs): which operations are reads that pin, what
    /// each may do to a state, and scratch space.
    lookahead: bool,
    pins: Vec<bool>,
    reach: Vec<Reach<M::State>>,
    sets: Vec<M::State>,
    crashed_sets: Vec<(u64, M::State)>,

    /// Candidates of each configuration on the path, stacked: the
    /// completed operations invoked before the first completion left
    /// (`stop`). This configuration's start at `candidates_start`, those of
    /// the stop's key first (up to `stop_key_end`), each group earliest
    /// completion first (the order changes speed, never the verdict).
    candidates: Vec<u32>,
    sort_keys: Vec<u64>,
    candidates_start: usize,
    stop_key_end: usize,
    stop: u32,
    /// The first candidate is a read forced to the front.
    forced: bool,
    /// The next candidate to try, and the entry it names.
    next: usize,
    entry: u32,
    /// Trying crashed operations invoked before `limit_pos` (the stop's
    /// position), once the completed candidates all failed.
    crashed_phase: bool,
    limit_pos: u64,
}

impl<'a, 'l, M: Model> Search<'a, 'l, M> {
    fn new(
        model: &'a M,
        ctx: &'a mut Ctx,
        ops: &[&Operation],
        cops: &'a [M::Op],
        limits: &'a Limits<'l>,
        stats: &'a mut SearchStats,
        scratch: &'a mut Scratch<M::State>,
    ) -> Self {
        let n = ops.len();
        let crashed: Vec<bool> = ops
            .iter()
            .map(|o| o.crashed() || o.complete_pos.is_none())
            .collect();
        let mut index = vec![0usize; n];
        let (mut completed_count, mut crashed_count) = (0, 0);
        for o in 0..n {
            let count = match crashed[o] {
                true => &mut crashed_count,
                false => &mut completed_count,
            };
            index[o] = *count;
            *count += 1;
        }
        let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ n as u64;
        let zobrist: Vec<u64> = (0..n).map(|_| splitmix64(&mut seed)).collect();
        scratch.memo.clear();
        scratch.arena.clear();

        let component: Vec<u32> = cops
            .iter()
            .map(|c| model.component(c).unwrap_or(ANY))
            .collect();
        let backjumping = !crashed.iter().any(|&c| c)
            && component.iter().all(|&c| c != ANY)
            && component.iter().any(|&c| c != component[0]);
        let components = match backjumping {
            true => component.iter().map(|&c| c as usize + 1).max().unwrap_or(0),
            false => 0,
        };
        let mut index_in_component = vec![0usize; if backjumping { n } else { 0 }];
        let mut component_sizes = vec![0usize; components];
        for o in 0..index_in_component.len() {
            index_in_component[o] = component_sizes[component[o] as usize];
            component_sizes[component[o] as usize] += 1;
        }

        let pins: Vec<bool> = (0..n)
            .map(|o| !crashed[o] && model.pins(&cops[o]))
            .collect();
        let lookahead = !backjumping && pins.iter().any(|&p| p);
        // Only a search that looks ahead reads `reach`: the others
        // (registers, whose models pin no read) do not pay for it.
        let reach: Vec<Reach<M::State>> = match lookahead {
            true => cops.iter().map(|c| model.reach(c)).collect(),
            false => Vec::new(),
        };
        let state = model.init(ctx);
        Search {
            model,
            ctx,
            cops,
            limits,
            steps_at_start: stats.steps,
            stats,
            crashed,
            index,
            zobrist,
            list: Entries::build(ops),
            completed_set: Bits::new(completed_count),
            crashed_set: Bits::new(crashed_count),
            completed_hash: 0,
            state,
            path: Vec::new(),
            best: Vec::new(),
            best_on_path: 0,
            memo: &mut scratch.memo,
            arena: &mut scratch.arena,
            memo_entry_bytes: std::mem::size_of::<MemoEntry<M::State>>() * 8 / 7 + 1,
            uncounted_bytes: 0,
            backjumping,
            component,
            index_in_component,
            component_sets: component_sizes.iter().map(|&c| Bits::new(c)).collect(),
            component_hashes: vec![0u64; components],
            failed_children: Vec::new(),
            nogoods: HashTable::new(),
            nogood_arena: Vec::new(),
            nogood_entry_bytes: std::mem::size_of::<Nogood<M::Part>>() * 8 / 7 + 1,
            lookahead,
            pins,
            reach,
            sets: Vec::new(),
            crashed_sets: Vec::new(),
            candidates: Vec::new(),
            sort_keys: Vec::new(),
            candidates_start: 0,
            stop_key_end: 0,
            stop: NONE,
            forced: false,
            next: 0,
            entry: NONE,
            crashed_phase: false,
            limit_pos: 0,
        }
    }

    /// The search loop: one candidate tried, or one configuration
    /// exhausted, a step.
    fn run(&mut self, step_budget: u64) -> SearchResult {
        if self.list.next[HEAD as usize] == NONE {
            return SearchResult::Valid;
        }
        self.enter();
        let mut countdown = CHECK_EVERY;
        loop {
            countdown -= 1;
            if countdown == 0 {
                countdown = CHECK_EVERY;
                if let Some(end) = self.limit_reached(step_budget) {
                    return end;
                }
            }
            self.stats.steps += 1;
            self.skip_candidates_bound_to_fail();
            if let Some(entry) = self.next_candidate() {
                if !self.try_candidate(entry) {
                    self.advance();
                } else if self.list.next[HEAD as usize] == NONE {
                    // Every completed operation is linearized; the
                    // crashed ones left may never have happened.
                    return SearchResult::Valid;
                } else {
                    self.enter();
                }
                continue;
            }
            if self.start_crashed_phase() {
                continue;
            }
            let blame = self.blame_exhausted();
            if !self.backtrack(blame) {
                return SearchResult::Invalid {
                    best_prefix: self.best.iter().map(|&o| o as usize).collect(),
                };
            }
        }
    }

    /// The end the shared flags, the step budget, the deadline or the
    /// memory bound call for, if any.
    fn limit_reached(&mut self, step_budget: u64) -> Option<SearchResult> {
        let limits = self.limits;
        if limits.stop.load(Ordering::Relaxed) {
            return Some(SearchResult::Stopped);
        }
        if self.stats.steps - self.steps_at_start > step_budget {
            return Some(SearchResult::OutOfBudget);
        }
        let progress = || {
            format!(
                "after {} steps and {} memoized configurations ({} of {} operations linearized at best)",
                self.stats.steps,
                self.memo.len() + self.nogoods.len(),
                self.best.len(),
                self.crashed.len()
            )
        };
        if limits.deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(SearchResult::Unknown(format!(
                "time limit reached {}",
                progress()
            )));
        }
        let total = limits
            .memory_used
            .fetch_add(self.uncounted_bytes, Ordering::Relaxed)
            + self.uncounted_bytes;
        self.uncounted_bytes = 0;
        if total > limits.memory_limit_bytes {
            return Some(SearchResult::Unknown(format!(
                "memory bound of {} MiB reached {}",
                limits.memory_limit_bytes >> 20,
                progress()
            )));
        }
        None
    }

    /// Enters the configuration just reached: stacks its candidates and
    /// puts a forced read first.
    fn enter(&mut self) {
        self.candidates_start = self.candidates.len();
        let mut e = self.list.next[HEAD as usize];
        while self.list.is_call[e as usize] {
            self.candidates.push(e);
            e = self.list.next[e as usize];
        }
        self.stop = e;
        self.stop_key_end = self.candidates.len();
        if self.backjumping {
            self.put_stop_key_first();
        }
        self.forced = forced_read(
            self.model,
            self.ctx,
            &self.state,
            self.cops,
            &self.list,
            &mut self.candidates,
            self.candidates_start,
        );
        self.next = self.candidates_start;
    }

    /// Orders this configuration's candidates: the stop's key first, then
    /// the others, each group earliest completion first.
    fn put_stop_key_first(&mut self) {
        let start = self.candidates_start;
        let stop_key = self.component[self.list.op[self.stop as usize] as usize];
        // Sort keys: (not of the stop key, completion entry); completion
        // entries are numbered in real-time order.
        self.sort_keys.clear();
        self.sort_keys
            .extend(self.candidates[start..].iter().map(|&c| {
                let other_key = self.component[self.list.op[c as usize] as usize] != stop_key;
                u64::from(other_key) << 32 | u64::from(self.list.ret[c as usize])
            }));
        self.sort_keys.sort_unstable();
        let mut of_stop_key = 0;
        for (slot, &k) in self.candidates[start..].iter_mut().zip(&self.sort_keys) {
            *slot = self.list.call[(k & u64::from(u32::MAX)) as usize];
            of_stop_key += usize::from(k >> 32 == 0);
        }
        self.stop_key_end = start + of_stop_key;
    }

    /// The failed children of this configuration.
    fn children_failed(&self) -> &[(u32, u32)] {
        let start = self.path.last().map_or(0, |f| f.failed_children_start);
        &self.failed_children[start..]
    }

    /// Skips this configuration's candidates left when it fails whatever
    /// they do: its forced read failed, or every candidate of the stop's
    /// key failed because of that key (rule 2 in the module docs).
    fn skip_candidates_bound_to_fail(&mut self) {
        if self.forced && self.next > self.candidates_start {
            self.next = self.candidates.len();
        } else if self.backjumping
            && self.next == self.stop_key_end
            && self.next < self.candidates.len()
        {
            let stop_key = self.component[self.list.op[self.stop as usize] as usize];
            if self
                .children_failed()
                .iter()
                .all(|&(child, blamed)| child != stop_key || blamed == stop_key)
            {
                self.next = self.candidates.len();
            }
        }
    }

    /// The next candidate to try, if any.
    fn next_candidate(&mut self) -> Option<u32> {
        if self.crashed_phase {
            let before_stop =
                self.entry != NONE && self.list.pos[self.entry as usize] < self.limit_pos;
            return before_stop.then_some(self.entry);
        }
        self.entry = *self.candidates.get(self.next)?;
        Some(self.entry)
    }

    /// Moves past the candidate just tried.
    fn advance(&mut self) {
        if self.crashed_phase {
            self.entry = self.list.next[self.entry as usize];
        } else {
            self.next += 1;
        }
    }

    /// Out of completed candidates: try the crashed operations invoked
    /// before the stop, if any (and if no forced read failed).
    fn start_crashed_phase(&mut self) -> bool {
        if self.crashed_phase || self.forced || self.list.next[CHEAD as usize] == NONE {
            return false;
        }
        self.crashed_phase = true;
        self.limit_pos = self.list.pos[self.stop as usize];
        self.entry = self.list.next[CHEAD as usize];
        true
    }

    /// Tries the candidate at `entry`: true when it leads to a new
    /// configuration, which is now the search's.
    fn try_candidate(&mut self, entry: u32) -> bool {
        let o = self.list.op[entry as usize] as usize;
        let Some(next_state) = self.apply(o) else {
            return false;
        };
        self.mark(o);
        let new = match self.backjumping {
            // No memo with nogoods: they subsume it (module docs).
            true => !self.refused_by_nogood(o, &next_state),
            false => self.remember(&next_state),
        };
        if !new {
            self.unmark(o);
            return false;
        }
        self.descend(entry, o, next_state);
        true
    }

    /// The state operation `o` leads to, unless the model or the
    /// look-ahead refuses it.
    fn apply(&mut self, o: usize) -> Option<M::State> {
        let next = self.model.step(self.ctx, &self.state, &self.cops[o])?;
        let pinned = self.lookahead
            && pinned_out(
                self.model,
                self.ctx,
                &next,
                self.cops,
                &self.list,
                &self.reach,
                &self.pins,
                o as u32,
                &mut self.sets,
                &mut self.crashed_sets,
            );
        (!pinned).then_some(next)
    }

    /// Adds `o` to the linearized sets and their hashes.
    fn mark(&mut self, o: usize) {
        if self.crashed[o] {
            self.crashed_set.set(self.index[o]);
        } else {
            self.completed_set.set(self.index[o]);
            self.completed_hash ^= self.zobrist[o];
        }
        if self.backjumping {
            let k = self.component[o] as usize;
            self.component_sets[k].set(self.index_in_component[o]);
            self.component_hashes[k] ^= self.zobrist[o];
        }
    }

    /// Takes `o` out of the linearized sets and their hashes.
    fn unmark(&mut self, o: usize) {
        if self.crashed[o] {
            self.crashed_set.clear(self.index[o]);
        } else {
            self.completed_set.clear(self.index[o]);
            self.completed_hash ^= self.zobrist[o];
        }
        if self.backjumping {
            let k = self.component[o] as usize;
            self.component_sets[k].clear(self.index_in_component[o]);
            self.component_hashes[k] ^= self.zobrist[o];
        }
    }

    /// Whether the configuration `o` (marked) led to is a nogood on `o`'s
    /// key; a refused child is noted as failed because of that key.
    fn refused_by_nogood(&mut self, o: usize, next_state: &M::State) -> bool {
        let k = self.component[o];
        let part = self.model.part(next_state, k).expect("maps have parts");
        let (_, known) = self.find_nogood(k, &part);
        if known {
            self.failed_children.push((k, k));
        }
        known
    }

    /// The hash of key `k`'s projection (its linearized set and `part`),
    /// and whether it is a known nogood.
    fn find_nogood(&self, k: u32, part: &M::Part) -> (u64, bool) {
        let set = &self.component_sets[k as usize];
        let hash = nogood_hash(k as usize, self.component_hashes[k as usize], part);
        let low = set.low as u32;
        let known = self
            .nogoods
            .find(hash, |g| {
                g.hash == hash
                    && g.comp == k
                    && g.low == low
                    && self.nogood_arena[g.tail_at..g.tail_at + g.tail_len as usize] == *set.tail()
                    && g.part == *part
            })
            .is_some();
        (hash, known)
    }

    /// Memoizes the configuration (the marked sets, `next_state`): true
    /// when it was not explored before, nor one it subsumes.
    fn remember(&mut self, next_state: &M::State) -> bool {
        let Search {
            memo,
            arena,
            completed_set,
            crashed_set,
            ..
        } = self;
        let hash = fmix64(self.completed_hash ^ state_hash(next_state));
        let tail = completed_set.tail();
        let low = completed_set.low as u32;
        let crashed_words = crashed_set.trimmed();
        let found = memo.find_mut(hash, |m| {
            m.hash == hash
                && m.low == low
                && &arena[m.tail_at..m.tail_at + m.tail_len as usize] == tail
                && m.state == *next_state
        });
        match found {
            Some(m) => {
                let seen = |&(at, len): &(usize, u32)| {
                    subset(&arena[at..at + len as usize], crashed_words)
                };
                if seen(&m.k0) || m.more.iter().any(seen) {
                    return false;
                }
                m.more.push((arena.len(), crashed_words.len() as u32));
                arena.extend_from_slice(crashed_words);
                self.uncounted_bytes += 16 + 8 * crashed_words.len();
            }
            None => {
                let tail_at = arena.len();
                arena.extend_from_slice(tail);
                let crashed_at = arena.len();
                arena.extend_from_slice(crashed_words);
                self.uncounted_bytes += self.memo_entry_bytes
                    + 16
                    + 8 * (tail.len() + crashed_words.len())
                    + self.model.state_bytes(next_state)
                    - std::mem::size_of::<M::State>();
                memo.insert_unique(
                    hash,
                    MemoEntry {
                        hash,
                        low,
                        tail_len: tail.len() as u32,
                        tail_at,
                        state: next_state.clone(),
                        k0: (crashed_at, crashed_words.len() as u32),
                        more: Vec::new(),
                    },
                    |m| m.hash,
                );
            }
        }
        true
    }

    /// Makes the configuration `o` (at `entry`, marked) led to the
    /// search's, the one it left on the path.
    fn descend(&mut self, entry: u32, o: usize, next_state: M::State) {
        let previous = std::mem::replace(&mut self.state, next_state);
        self.path.push(Frame {
            entry,
            state: previous,
            failed_children_start: self.failed_children.len(),
            crashed_phase: self.crashed_phase,
            limit_pos: self.limit_pos,
            candidates_start: self.candidates_start as u32,
            candidates_end: self.candidates.len() as u32,
            next: self.next as u32,
            stop_key_end: self.stop_key_end as u32,
            stop: self.stop,
            forced: self.forced,
        });
        self.list.lift(entry);
        // Track the longest prefix without copying it each time.
        let depth = self.path.len();
        if self.best_on_path == depth - 1 && self.best.get(depth - 1) == Some(&(o as u32)) {
            self.best_on_path = depth;
        }
        if depth > self.best.len() {
            self.best.truncate(self.best_on_path);
            self.best.extend(
                self.path[self.best_on_path..]
                    .iter()
                    .map(|f| self.list.op[f.entry as usize]),
            );
            self.best_on_path = depth;
        }
        self.crashed_phase = false;
    }

    /// The key to blame for this exhausted configuration (module docs), or
    /// ANY; a blamed key's projection is remembered as a nogood.
    fn blame_exhausted(&mut self) -> u32 {
        if !self.backjumping {
            return ANY;
        }
        let stop_key = self.component[self.list.op[self.stop as usize] as usize];
        let failed = self.children_failed();
        let blame = match failed
            .iter()
            .find(|&&(child, blamed)| blamed != ANY && blamed != child)
        {
            _ if self.forced => failed.first().map_or(ANY, |&(_, blamed)| blamed),
            Some(&(_, blamed)) => blamed,
            None if failed
                .iter()
                .all(|&(child, blamed)| child != stop_key || blamed == stop_key) =>
            {
                stop_key
            }
            None => ANY,
        };
        if blame != ANY {
            self.learn_nogood(blame);
        }
        blame
    }

    /// Remembers that key `k` is stuck from its projection here.
    fn learn_nogood(&mut self, k: u32) {
        let part = self.model.part(&self.state, k).expect("maps have parts");
        let (hash, known) = self.find_nogood(k, &part);
        if known {
            return;
        }
        let set = &self.component_sets[k as usize];
        let tail = set.tail();
        let tail_at = self.nogood_arena.len();
        self.nogood_arena.extend_from_slice(tail);
        self.uncounted_bytes += self.nogood_entry_bytes + 8 * tail.len();
        self.nogoods.insert_unique(
            hash,
            Nogood {
                hash,
                comp: k,
                low: set.low as u32,
                tail_len: tail.len() as u32,
                tail_at,
                part,
            },
            |g| g.hash,
        );
    }

    /// Returns to the parent configuration, and on past every ancestor
    /// that has the same projection on the blamed key (infeasible too,
    /// whatever its other candidates); false when there is none left (the
    /// history is not linearizable).
    fn backtrack(&mut self, blame: u32) -> bool {
        loop {
            let Some(frame) = self.path.pop() else {
                return false;
            };
            self.failed_children.truncate(frame.failed_children_start);
            self.best_on_path = self.best_on_path.min(self.path.len());
            self.state = frame.state;
            self.list.unlift(frame.entry);
            let o = self.list.op[frame.entry as usize] as usize;
            self.unmark(o);
            self.crashed_phase = frame.crashed_phase;
            self.limit_pos = frame.limit_pos;
            self.candidates.truncate(frame.candidates_end as usize);
            self.candidates_start = frame.candidates_start as usize;
            self.stop = frame.stop;
            self.next = frame.next as usize;
            self.stop_key_end = frame.stop_key_end as usize;
            self.forced = frame.forced;
            self.entry = frame.entry;
            self.advance();
            if blame == ANY || self.component[o] == blame {
                if self.backjumping {
                    self.failed_children.push((self.component[o], blame));
                }
                return true;
            }
        }
    }

    /// Counts what this search held and gives its memory back to the
    /// shared budget: the search is done.
    fn give_back_memory(self) {
        // Nogoods are memoized configurations too (projected on one key).
        self.stats.memo_entries += (self.memo.len() + self.nogoods.len()) as u64;
        let held: usize = self
            .memo
            .iter()
            .map(|m| {
                self.memo_entry_bytes + 16 * m.more.len() + self.model.state_bytes(&m.state)
                    - std::mem::size_of::<M::State>()
            })
            .sum::<usize>()
            + 8 * self.arena.len()
            + self.nogoods.len() * self.nogood_entry_bytes
            + 8 * self.nogood_arena.len();
        self.stats.memo_bytes += held as u64;
        let memory_used = self.limits.memory_used;
        memory_used.fetch_add(self.uncounted_bytes, Ordering::Relaxed);
        let _ = memory_used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
            Some(m.saturating_sub(held))
        });
    }
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

//! Cycle search inside one strongly connected component, for each cycle
//! anomaly Adya and Elle name:
//!
//! | name          | edges                 | rw edges                         |
//! |---------------|-----------------------|----------------------------------|
//! | G0            | ww                    | none                             |
//! | G1c           | ww, wr (≥ 1 wr)       | none                             |
//! | G-single      | ww, wr, rw            | exactly one                      |
//! | G-nonadjacent | ww, wr, rw            | ≥ 2, no two in a row             |
//! | G2-item       | ww, wr, rw            | ≥ 2, some two in a row           |
//!
//! and each with `-process` (process edges allowed, at least one used) and
//! `-realtime` (real-time edges allowed, at least one used).
//!
//! The search for one type: rotate the cycle to start with its rarest edge
//! (an rw edge when the type has any, else a required wr, process or
//! real-time edge, else any edge), then breadth-first search from that
//! edge's head back to its tail over (vertex, state) pairs, where the state
//! counts rw edges, remembers whether the last edge was rw, whether two rw
//! edges were adjacent, and which required relations were used. Breadth
//! first, so each cycle found is a shortest one of its type from that
//! edge. Only simple cycles are reported (a walk that visits a transaction
//! twice is skipped). Each search has a step budget; when it runs out the
//! type is reported as not fully searched.
//!
//! Every simple cycle is exactly one of the types above, so when no type
//! the models prohibit is found in a component, a shortest cycle through
//! its first vertex (the fallback) is classified: nothing is ever missed
//! for want of a search.

use super::graph::{Graph, Rels};
use std::collections::HashMap;

/// How many rw edges a cycle type has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RwRule {
    None,
    ExactlyOne,
    /// Two or more, none adjacent (cyclically).
    NonAdjacent,
    /// Two or more, at least two adjacent.
    Adjacent,
}

/// One cycle anomaly type to search for.
#[derive(Clone, Copy, Debug)]
pub struct CycleSpec {
    pub name: &'static str,
    pub allowed: Rels,
    pub rw: RwRule,
    /// Each relation here must appear at least once.
    pub required: Rels,
}

/// The cycle types, most severe first (Elle's search order: data cycles,
/// then their process variants, then their real-time variants).
pub fn specs() -> Vec<CycleSpec> {
    let base = [
        ("G0", Rels::WW, RwRule::None, Rels::NONE),
        ("G1c", Rels::WW | Rels::WR, RwRule::None, Rels::WR),
        ("G-single", Rels::DATA, RwRule::ExactlyOne, Rels::NONE),
        ("G-nonadjacent", Rels::DATA, RwRule::NonAdjacent, Rels::NONE),
        ("G2-item", Rels::DATA, RwRule::Adjacent, Rels::NONE),
    ];
    let names = |suffix: &str| -> [&'static str; 5] {
        match suffix {
            "" => ["G0", "G1c", "G-single", "G-nonadjacent", "G2-item"],
            "-process" => [
                "G0-process",
                "G1c-process",
                "G-single-process",
                "G-nonadjacent-process",
                "G2-item-process",
            ],
            _ => [
                "G0-realtime",
                "G1c-realtime",
                "G-single-realtime",
                "G-nonadjacent-realtime",
                "G2-item-realtime",
            ],
        }
    };
    let mut out = Vec::new();
    for (suffix, extra) in [
        ("", Rels::NONE),
        ("-process", Rels::PROCESS),
        ("-realtime", Rels::REALTIME),
    ] {
        for (i, (_, allowed, rw, required)) in base.iter().enumerate() {
            out.push(CycleSpec {
                name: names(suffix)[i],
                allowed: *allowed | extra,
                rw: *rw,
                required: *required | extra,
            });
        }
    }
    out
}

/// A cycle: the transactions in order (the first is not repeated at the
/// end) and the relation used for each step `i → i + 1` (the last step
/// returns to the first transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    pub txns: Vec<usize>,
    pub rels: Vec<Rels>,
}

/// The type of a cycle, by Elle's rules: its rw edges decide the data
/// type, real-time or process edges add a suffix.
pub fn classify(rels: &[Rels]) -> &'static str {
    let n = rels.len();
    let rw = rels.iter().filter(|r| **r == Rels::RW).count();
    let adjacent = (0..n).any(|i| rels[i] == Rels::RW && rels[(i + 1) % n] == Rels::RW);
    let data = if rw == 1 {
        0
    } else if rw > 1 {
        if adjacent {
            2
        } else {
            1
        }
    } else if rels.contains(&Rels::WR) {
        3
    } else {
        4
    };
    let variant = if rels.contains(&Rels::REALTIME) {
        2
    } else if rels.contains(&Rels::PROCESS) {
        1
    } else {
        0
    };
    const NAMES: [[&str; 3]; 5] = [
        ["G-single", "G-single-process", "G-single-realtime"],
        [
            "G-nonadjacent",
            "G-nonadjacent-process",
            "G-nonadjacent-realtime",
        ],
        ["G2-item", "G2-item-process", "G2-item-realtime"],
        ["G1c", "G1c-process", "G1c-realtime"],
        ["G0", "G0-process", "G0-realtime"],
    ];
    NAMES[data][variant]
}

/// What a search for one type in one component ended with.
#[derive(Debug)]
pub enum Found {
    Cycle(Cycle),
    None,
    /// The step budget ran out (or the deadline passed) first.
    OutOfBudget,
}

/// Searches a component (sorted vertex list) of `g`.
pub struct Searcher<'g> {
    g: &'g Graph,
    /// Global vertex → local index, for the component.
    local: HashMap<usize, u32>,
    vertices: Vec<usize>,
    /// Visit stamps, `vertex * STATES + state`.
    stamps: Vec<u32>,
    stamp: u32,
    /// Steps left for the current search.
    budget: u64,
    pub steps: u64,
    deadline: Option<std::time::Instant>,
}

const STATES: usize = 64;

/// The search state after some edges: packed into 6 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    rw: u8, // 0, 1 or 2 (two or more)
    last_rw: bool,
    adjacent: bool,
    required: u8, // which of the (at most two) required relations were used
}

impl State {
    fn pack(self) -> usize {
        (self.rw as usize)
            | (self.last_rw as usize) << 2
            | (self.adjacent as usize) << 3
            | (self.required as usize) << 4
    }
}

impl<'g> Searcher<'g> {
    pub fn new(
        g: &'g Graph,
        component: &[usize],
        deadline: Option<std::time::Instant>,
    ) -> Searcher<'g> {
        Searcher {
            g,
            local: component
                .iter()
                .enumerate()
                .map(|(i, v)| (*v, i as u32))
                .collect(),
            vertices: component.to_vec(),
            stamps: Vec::new(),
            stamp: 0,
            budget: 0,
            steps: 0,
            deadline,
        }
    }

    fn expired(&self) -> bool {
        self.steps % 4096 == 0
            && self
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d)
    }

    /// The required relations as a list of (at most two) single bits.
    fn required_bits(spec: &CycleSpec) -> Vec<Rels> {
        Rels::ALL
            .into_iter()
            .filter(|r| spec.required.contains(*r))
            .collect()
    }

    /// Searches for a simple cycle of `spec` within `members` (a subset of
    /// the component, as local indices marked true), spending at most
    /// `budget` steps.
    pub fn search(&mut self, spec: &CycleSpec, members: &[bool], budget: u64) -> Found {
        self.budget = budget;
        let required = Self::required_bits(spec);
        assert!(required.len() <= 2, "at most two required relations");
        let anchor = if spec.rw != RwRule::None {
            Rels::RW
        } else if let Some(r) = required.first() {
            *r
        } else {
            spec.allowed
        };
        let mut out_of_budget = false;
        for a_local in 0..self.vertices.len() {
            if !members[a_local] {
                continue;
            }
            let a = self.vertices[a_local];
            let anchors: Vec<(usize, Rels)> = self
                .g
                .out(a)
                .filter(|(b, rels)| {
                    rels.intersects(anchor)
                        && self.local.get(b).is_some_and(|l| members[*l as usize])
                })
                .collect();
            for (b, rels) in anchors {
                // The anchor edge's own relation: the anchor when it is a
                // single relation, else the first allowed one it carries.
                let first = if anchor.0.count_ones() == 1 {
                    anchor
                } else {
                    Rels::ALL
                        .into_iter()
                        .find(|r| rels.intersects(*r) && spec.allowed.contains(*r))
                        .expect("anchor")
                };
                let mut start = State {
                    rw: (first == Rels::RW) as u8,
                    last_rw: first == Rels::RW,
                    adjacent: false,
                    required: 0,
                };
                for (i, r) in required.iter().enumerate() {
                    if first == *r {
                        start.required |= 1 << i;
                    }
                }
                match self.bfs(spec, &required, members, a, b, first, start) {
                    Found::Cycle(c) => return Found::Cycle(c),
                    Found::OutOfBudget => {
                        out_of_budget = true;
                        break;
                    }
                    Found::None => {}
                }
            }
            if out_of_budget {
                break;
            }
        }
        if out_of_budget {
            Found::OutOfBudget
        } else {
            Found::None
        }
    }

    /// The state after taking an edge with relation `r`, or None if the
    /// spec forbids it.
    fn step(spec: &CycleSpec, required: &[Rels], s: State, r: Rels) -> Option<State> {
        let mut n = s;
        if r == Rels::RW {
            match spec.rw {
                RwRule::None => return None,
                RwRule::ExactlyOne if s.rw >= 1 => return None,
                RwRule::NonAdjacent if s.last_rw => return None,
                _ => {}
            }
            n.adjacent |= s.last_rw;
            n.rw = (s.rw + 1).min(2);
            n.last_rw = true;
        } else {
            n.last_rw = false;
        }
        for (i, q) in required.iter().enumerate() {
            if r == *q {
                n.required |= 1 << i;
            }
        }
        Some(n)
    }

    /// Does a walk ending in state `s` close a cycle of `spec` (its first
    /// edge being `first`)?
    fn closes(spec: &CycleSpec, required: &[Rels], s: State, first: Rels) -> bool {
        let all_required = s.required == (1u8 << required.len()) - 1;
        all_required
            && match spec.rw {
                RwRule::None => true,
                RwRule::ExactlyOne => s.rw == 1,
                RwRule::NonAdjacent => s.rw == 2 && !(s.last_rw && first == Rels::RW),
                RwRule::Adjacent => s.rw == 2 && (s.adjacent || (s.last_rw && first == Rels::RW)),
            }
    }

    #[allow(clippy::too_many_arguments)]
    fn bfs(
        &mut self,
        spec: &CycleSpec,
        required: &[Rels],
        members: &[bool],
        a: usize,
        b: usize,
        first: Rels,
        start: State,
    ) -> Found {
        let n = self.vertices.len();
        if self.stamps.len() < n * STATES {
            self.stamps = vec![0; n * STATES];
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.stamps.iter_mut().for_each(|s| *s = 0);
            self.stamp = 1;
        }
        // Queue entries: (vertex, state, parent entry, relation taken).
        let mut queue: Vec<(usize, State, u32, Rels)> = vec![(b, start, u32::MAX, first)];
        let b_local = self.local[&b] as usize;
        self.stamps[b_local * STATES + start.pack()] = self.stamp;
        let mut head = 0;
        while head < queue.len() {
            let (v, s, _, _) = queue[head];
            let entry = head as u32;
            head += 1;
            for (w, rels) in self.g.out(v) {
                self.steps += 1;
                if self.budget == 0 || self.expired() {
                    return Found::OutOfBudget;
                }
                self.budget -= 1;
                let Some(&w_local) = self.local.get(&w) else {
                    continue;
                };
                if !members[w_local as usize] {
                    continue;
                }
                for r in Rels::ALL {
                    if !rels.intersects(r) || !spec.allowed.contains(r) {
                        continue;
                    }
                    let Some(next) = Self::step(spec, required, s, r) else {
                        continue;
                    };
                    if w == a {
                        if Self::closes(spec, required, next, first) {
                            // Walk back from v to b: (vertex, relation into it).
                            let mut path: Vec<(usize, Rels)> = Vec::new();
                            let mut e = entry;
                            while e != u32::MAX {
                                let (pv, _, parent, into) = queue[e as usize];
                                path.push((pv, into));
                                e = parent;
                            }
                            path.reverse();
                            let mut cycle = Cycle {
                                txns: vec![a],
                                rels: Vec::new(),
                            };
                            for (pv, into) in path {
                                cycle.txns.push(pv);
                                cycle.rels.push(into);
                            }
                            cycle.rels.push(r);
                            let mut seen = cycle.txns.clone();
                            seen.sort_unstable();
                            seen.dedup();
                            if seen.len() == cycle.txns.len() {
                                return Found::Cycle(cycle);
                            }
                        }
                        continue;
                    }
                    let slot = w_local as usize * STATES + next.pack();
                    if self.stamps[slot] != self.stamp {
                        self.stamps[slot] = self.stamp;
                        queue.push((w, next, entry, r));
                    }
                }
            }
        }
        Found::None
    }

    /// A shortest cycle through the component's first vertex, over edges
    /// in `mask`, each edge labelled with the first relation of `mask` it
    /// carries (data relations before process and real time).
    pub fn fallback(&mut self, mask: Rels) -> Option<Cycle> {
        let a = *self.vertices.first()?;
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([a]);
        while let Some(v) = queue.pop_front() {
            for (w, rels) in self.g.out(v) {
                if !rels.intersects(mask) || !self.local.contains_key(&w) {
                    continue;
                }
                if w == a {
                    let mut txns = vec![v];
                    let mut x = v;
                    while x != a {
                        x = parent[&x];
                        txns.push(x);
                    }
                    txns.reverse();
                    let rels = (0..txns.len())
                        .map(|i| {
                            let e = self.g.edge(txns[i], txns[(i + 1) % txns.len()]);
                            Rels::ALL
                                .into_iter()
                                .find(|r| e.intersects(*r) && mask.contains(*r))
                                .expect("an edge in mask")
                        })
                        .collect();
                    return Some(Cycle { txns, rels });
                }
                if w != a && !parent.contains_key(&w) {
                    parent.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        None
    }
}

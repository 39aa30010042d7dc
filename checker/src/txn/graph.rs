//! The dependency graph: transactions as vertices, edges labelled with a
//! set of relations ([`Rels`]), stored as compressed adjacency arrays, and
//! strongly connected components by an iterative Tarjan (no recursion, so
//! no history overflows the stack).

use std::fmt;

/// A set of relations, one bit each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Rels(pub u8);

impl Rels {
    pub const NONE: Rels = Rels(0);
    /// Write-write: `a` wrote a version `b` overwrote.
    pub const WW: Rels = Rels(1);
    /// Write-read: `b` read a version `a` wrote.
    pub const WR: Rels = Rels(2);
    /// Read-write (anti-dependency): `a` read a version `b` overwrote.
    pub const RW: Rels = Rels(4);
    /// Same process, `a` then `b`.
    pub const PROCESS: Rels = Rels(8);
    /// `a` completed before `b` was invoked.
    pub const REALTIME: Rels = Rels(16);
    pub const DATA: Rels = Rels(1 | 2 | 4);
    pub const ALL: [Rels; 5] = [Rels::WW, Rels::WR, Rels::RW, Rels::PROCESS, Rels::REALTIME];

    pub fn contains(self, other: Rels) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn intersects(self, other: Rels) -> bool {
        self.0 & other.0 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn name(self) -> &'static str {
        match self {
            Rels::WW => "ww",
            Rels::WR => "wr",
            Rels::RW => "rw",
            Rels::PROCESS => "process",
            Rels::REALTIME => "realtime",
            _ => "mixed",
        }
    }
}

impl std::ops::BitOr for Rels {
    type Output = Rels;
    fn bitor(self, o: Rels) -> Rels {
        Rels(self.0 | o.0)
    }
}

impl std::ops::BitAnd for Rels {
    type Output = Rels;
    fn bitand(self, o: Rels) -> Rels {
        Rels(self.0 & o.0)
    }
}

impl fmt::Display for Rels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Rels::ALL
            .iter()
            .filter(|r| self.contains(**r))
            .map(|r| r.name())
            .collect();
        f.write_str(&names.join("+"))
    }
}

/// Edges collected before the graph is built. Self-edges are dropped.
#[derive(Default)]
pub struct EdgeList {
    edges: Vec<(u32, u32, Rels)>,
}

impl EdgeList {
    pub fn add(&mut self, from: usize, to: usize, rel: Rels) {
        // Tarjan follows every edge when its mask covers every relation
        // present, so an edge must carry one.
        debug_assert!(!rel.is_empty(), "an edge carries a relation");
        if from != to {
            self.edges.push((from as u32, to as u32, rel));
        }
    }
    pub fn len(&self) -> usize {
        self.edges.len()
    }
    pub fn reserve(&mut self, more: usize) {
        self.edges.reserve(more);
    }
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }
}

/// A directed graph over `0..vertex_count`, parallel edges merged (their
/// relations or-ed together), each vertex's edges sorted by target.
pub struct Graph {
    offsets: Vec<u32>,
    targets: Vec<u32>,
    rels: Vec<Rels>,
    /// Every relation some edge carries.
    present: Rels,
}

/// Vertices below this many are built on one core.
const PARALLEL_VERTICES: usize = 1 << 16;

impl Graph {
    pub fn build(vertex_count: usize, list: EdgeList) -> Graph {
        Graph::build_from(vertex_count, &[list])
    }

    /// Builds from several edge lists at once (no list is copied into
    /// another first). Large graphs are built in two halves by source
    /// vertex, one per core, each scanning every list for its edges.
    pub fn build_from(vertex_count: usize, lists: &[EdgeList]) -> Graph {
        let (offsets, targets, rels, present) = if vertex_count < PARALLEL_VERTICES {
            Graph::build_range(0..vertex_count, lists)
        } else {
            let middle = vertex_count / 2;
            let (
                (mut offsets, mut targets, mut rels, low_present),
                (high_offsets, high_targets, high_rels, high_present),
            ) = std::thread::scope(|scope| {
                let high = scope.spawn(|| Graph::build_range(middle..vertex_count, lists));
                let low = Graph::build_range(0..middle, lists);
                (low, high.join().expect("building the graph does not panic"))
            });
            let shift = targets.len() as u32;
            offsets.pop();
            offsets.extend(high_offsets.iter().map(|o| o + shift));
            targets.extend_from_slice(&high_targets);
            rels.extend_from_slice(&high_rels);
            (offsets, targets, rels, low_present | high_present)
        };
        Graph {
            offsets,
            targets,
            rels,
            present,
        }
    }

    /// The merged, sorted adjacency of the vertices in `range`: offsets
    /// (from 0, one more than the vertices), targets, relations, and every
    /// relation they carry.
    fn build_range(
        range: std::ops::Range<usize>,
        lists: &[EdgeList],
    ) -> (Vec<u32>, Vec<u32>, Vec<Rels>, Rels) {
        let (low, high) = (range.start as u32, range.end as u32);
        let n = range.len();
        let mut offsets = vec![0u32; n + 1];
        for list in lists {
            for &(from, _, _) in &list.edges {
                if from >= low && from < high {
                    offsets[(from - low) as usize + 1] += 1;
                }
            }
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        // Each edge packed as target << 8 | relations, so sorting a
        // vertex's edges sorts them by target.
        let mut fill = offsets.clone();
        let mut packed = vec![0u64; offsets[n] as usize];
        for list in lists {
            for &(from, to, rel) in &list.edges {
                if from >= low && from < high {
                    let slot = &mut fill[(from - low) as usize];
                    packed[*slot as usize] = (to as u64) << 8 | rel.0 as u64;
                    *slot += 1;
                }
            }
        }
        drop(fill);
        // Merge parallel edges, vertex by vertex.
        let mut targets = Vec::with_capacity(packed.len());
        let mut rels = Vec::with_capacity(packed.len());
        let mut merged_offsets = vec![0u32; n + 1];
        for v in 0..n {
            let edges = &mut packed[offsets[v] as usize..offsets[v + 1] as usize];
            edges.sort_unstable();
            let first = targets.len();
            for &e in edges.iter() {
                let (to, rel) = ((e >> 8) as u32, Rels(e as u8));
                if targets.len() > first && targets.last() == Some(&to) {
                    let last = rels.len() - 1;
                    rels[last] = rels[last] | rel;
                } else {
                    targets.push(to);
                    rels.push(rel);
                }
            }
            merged_offsets[v + 1] = targets.len() as u32;
        }
        let present = rels.iter().fold(Rels::NONE, |acc, r| acc | *r);
        (merged_offsets, targets, rels, present)
    }

    pub fn vertex_count(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// `(target, relations)` of every edge out of `v`.
    pub fn out(&self, v: usize) -> impl Iterator<Item = (usize, Rels)> + '_ {
        let (s, e) = (self.offsets[v] as usize, self.offsets[v + 1] as usize);
        self.targets[s..e]
            .iter()
            .zip(&self.rels[s..e])
            .map(|(t, r)| (*t as usize, *r))
    }

    /// The relations of the edge `a → b`, if any.
    pub fn edge(&self, a: usize, b: usize) -> Rels {
        let (s, e) = (self.offsets[a] as usize, self.offsets[a + 1] as usize);
        match self.targets[s..e].binary_search(&(b as u32)) {
            Ok(i) => self.rels[s + i],
            Err(_) => Rels::NONE,
        }
    }

    /// Strongly connected components of the subgraph of edges that carry
    /// a relation in `mask`, restricted to `vertices` (all when `None`).
    /// Only nontrivial components are returned (a graph without
    /// self-edges has no cycle through a lone vertex), each sorted.
    pub fn sccs(&self, mask: Rels, vertices: Option<&[usize]>) -> Vec<Vec<usize>> {
        let n = self.vertex_count();
        const UNSEEN: u32 = u32::MAX;
        // Local numbering when restricted, so the arrays stay small.
        let (local, order): (Option<std::collections::HashMap<usize, usize>>, Vec<usize>) =
            match vertices {
                Some(vs) => (
                    Some(vs.iter().enumerate().map(|(i, v)| (*v, i)).collect()),
                    vs.to_vec(),
                ),
                None => (None, (0..n).collect()),
            };
        let index_of = |v: usize| -> Option<usize> {
            match &local {
                Some(m) => m.get(&v).copied(),
                None => Some(v),
            }
        };
        let every_edge = mask.contains(self.present);
        let m = order.len();
        let mut index = vec![UNSEEN; m];
        let mut low = vec![0u32; m];
        let mut on_stack = vec![false; m];
        let mut stack: Vec<usize> = Vec::new();
        let mut next_index = 0u32;
        let mut out = Vec::new();
        // (local vertex, position in its adjacency list)
        let mut call: Vec<(usize, usize)> = Vec::new();
        for root in 0..m {
            if index[root] != UNSEEN {
                continue;
            }
            call.push((root, self.offsets[order[root]] as usize));
            index[root] = next_index;
            low[root] = next_index;
            next_index += 1;
            stack.push(root);
            on_stack[root] = true;
            while let Some(&mut (v, ref mut pos)) = call.last_mut() {
                let end = self.offsets[order[v] + 1] as usize;
                let mut descended = false;
                while *pos < end {
                    let i = *pos;
                    *pos += 1;
                    if !every_edge && !self.rels[i].intersects(mask) {
                        continue;
                    }
                    let Some(w) = index_of(self.targets[i] as usize) else {
                        continue;
                    };
                    if index[w] == UNSEEN {
                        index[w] = next_index;
                        low[w] = next_index;
                        next_index += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        call.push((w, self.offsets[order[w]] as usize));
                        descended = true;
                        break;
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                }
                if descended {
                    continue;
                }
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    loop {
                        let w = stack.pop().expect("v is on the stack");
                        on_stack[w] = false;
                        comp.push(order[w]);
                        if w == v {
                            break;
                        }
                    }
                    if comp.len() > 1 {
                        comp.sort_unstable();
                        out.push(comp);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_parallel_edges_and_finds_components_by_relation() {
        let mut e = EdgeList::default();
        e.add(0, 1, Rels::WW);
        e.add(0, 1, Rels::RW);
        e.add(1, 2, Rels::WR);
        e.add(2, 0, Rels::RW);
        e.add(3, 3, Rels::WW); // self-edges are dropped
        e.add(3, 4, Rels::WW);
        e.add(4, 3, Rels::REALTIME);
        let g = Graph::build(5, e);
        assert_eq!(g.edge_count(), 5);
        assert_eq!(g.edge(0, 1), Rels::WW | Rels::RW);
        assert_eq!(g.edge(1, 0), Rels::NONE);
        assert_eq!(g.sccs(Rels::DATA, None), vec![vec![0, 1, 2]]);
        assert!(
            g.sccs(Rels::WW | Rels::WR, None).is_empty(),
            "the cycle needs rw"
        );
        let all = g.sccs(Rels::DATA | Rels::REALTIME, None);
        assert_eq!(all.len(), 2);
        assert_eq!(g.sccs(Rels::DATA, Some(&[0, 1])), Vec::<Vec<usize>>::new());
        assert_eq!(g.sccs(Rels::DATA, Some(&[2, 1, 0])), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        let n = 200_000;
        let mut e = EdgeList::default();
        for i in 0..n {
            e.add(i, (i + 1) % n, Rels::WW);
        }
        let g = Graph::build(n, e);
        let sccs = g.sccs(Rels::WW, None);
        assert_eq!(sccs.len(), 1);
        assert_eq!(sccs[0].len(), n);
    }
}

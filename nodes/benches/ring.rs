//! The ring beside the `hashring` crate and jump hash, on the same keys.
//!
//! `cargo bench -p faultline-nodes --bench ring` first prints a quality
//! table (load standard deviation over the mean, max/mean, keys moved when
//! a node joins or leaves; 10 nodes, 200k keys `0..200k` as u64, mean over
//! 20 node sets, since one ring's spread is itself noisy) and then criterion's lookup timings: key → node, hashing
//! included, for each ring at 100, 128 and 1000 vnodes per node.

use criterion::{black_box, criterion_group, BenchmarkId, Criterion};
use faultline_nodes::ring::hash::key_hash_u64;
use faultline_nodes::ring::{jump_hash, Member, NodeId, Ring, RingConfig};
use hashring::HashRing;
use std::time::Duration;

const NODES: u64 = 10;
const QUALITY_KEYS: u64 = 200_000;
const NODE_SETS: u64 = 20;
const VNODES: [u32; 3] = [100, 128, 1000];
const LOOKUP_KEYS: usize = 1 << 12;

/// A virtual node of the `hashring` crate: it hashes (node, index) with
/// SipHash to place it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct HrVnode {
    node: u64,
    index: u32,
}

fn our_ring(node_set: u64, vnodes: u32) -> Ring {
    let ids = (0..NODES).map(|i| NodeId(node_set * 1000 + i));
    Ring::uniform(RingConfig { vnodes, seed: 0 }, ids).expect("valid ring")
}

fn hash_ring(node_set: u64, vnodes: u32, nodes: u64) -> HashRing<HrVnode> {
    let mut ring = HashRing::new();
    let mut all = Vec::new();
    for i in 0..nodes {
        for index in 0..vnodes {
            all.push(HrVnode {
                node: node_set * 1000 + i,
                index,
            });
        }
    }
    ring.batch_add(all);
    ring
}

/// Sample standard deviation over the mean, and max over mean.
fn spread(loads: &[u64]) -> (f64, f64) {
    let n = loads.len() as f64;
    let mean = loads.iter().sum::<u64>() as f64 / n;
    let var = loads
        .iter()
        .map(|&l| (l as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    let max = *loads.iter().max().expect("nodes") as f64;
    (var.sqrt() / mean, max / mean)
}

#[derive(Default)]
struct Row {
    stddev: f64,
    max_over_mean: f64,
    moved_add: f64,
    moved_remove: f64,
}

impl Row {
    fn add(&mut self, other: Row) {
        self.stddev += other.stddev / NODE_SETS as f64;
        self.max_over_mean += other.max_over_mean / NODE_SETS as f64;
        self.moved_add += other.moved_add / NODE_SETS as f64;
        self.moved_remove += other.moved_remove / NODE_SETS as f64;
    }
}

/// Quality of one ring: `owner` maps a key to a node slot in `0..NODES`
/// (for the base ring), `grown` and `shrunk` to raw node ids.
fn quality(
    owner: impl Fn(u64) -> u64,
    grown: impl Fn(u64) -> u64,
    shrunk: impl Fn(u64) -> u64,
    base_id: u64,
) -> Row {
    let mut loads = vec![0u64; NODES as usize];
    let (mut add, mut remove) = (0u64, 0u64);
    for k in 0..QUALITY_KEYS {
        let o = owner(k);
        loads[(o - base_id) as usize] += 1;
        add += u64::from(grown(k) != o);
        remove += u64::from(shrunk(k) != o);
    }
    let (stddev, max_over_mean) = spread(&loads);
    Row {
        stddev,
        max_over_mean,
        moved_add: add as f64 / QUALITY_KEYS as f64,
        moved_remove: remove as f64 / QUALITY_KEYS as f64,
    }
}

fn print_quality() {
    println!(
        "ring quality: {NODES} nodes, {QUALITY_KEYS} keys (0..{QUALITY_KEYS} as u64), mean over {NODE_SETS} node sets"
    );
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "ring", "stddev", "max/mean", "moved+1", "moved-1", "1/sqrt(v)"
    );
    println!(
        "{:<22} {:>10} {:>10} {:>10.2}% {:>9.2}%",
        "ideal",
        "",
        "1.000",
        100.0 / (NODES + 1) as f64,
        100.0 / NODES as f64
    );
    let line = |name: String, r: &Row, v: Option<u32>| {
        println!(
            "{:<22} {:>9.2}% {:>10.3} {:>9.2}% {:>9.2}% {:>12}",
            name,
            r.stddev * 100.0,
            r.max_over_mean,
            r.moved_add * 100.0,
            r.moved_remove * 100.0,
            v.map_or(String::new(), |v| format!(
                "{:.2}%",
                100.0 / f64::from(v).sqrt()
            ))
        )
    };
    for vnodes in VNODES {
        let mut ours = Row::default();
        let mut theirs = Row::default();
        for set in 0..NODE_SETS {
            let base = set * 1000;
            let ring = our_ring(set, vnodes);
            let mut grown = ring.clone();
            grown
                .add(Member::new(NodeId(base + NODES)))
                .expect("new id");
            let mut shrunk = ring.clone();
            shrunk.remove(NodeId(base + set % NODES)).expect("member");
            ours.add(quality(
                |k| ring.owner(key_hash_u64(k)).0,
                |k| grown.owner(key_hash_u64(k)).0,
                |k| shrunk.owner(key_hash_u64(k)).0,
                base,
            ));

            let hr = hash_ring(set, vnodes, NODES);
            let hr_grown = hash_ring(set, vnodes, NODES + 1);
            let mut hr_shrunk = hr.clone();
            for index in 0..vnodes {
                hr_shrunk.remove(&HrVnode {
                    node: base + set % NODES,
                    index,
                });
            }
            theirs.add(quality(
                |k| hr.get(&k).expect("non-empty").node,
                |k| hr_grown.get(&k).expect("non-empty").node,
                |k| hr_shrunk.get(&k).expect("non-empty").node,
                base,
            ));
        }
        line(format!("faultline v={vnodes}"), &ours, Some(vnodes));
        line(format!("hashring v={vnodes}"), &theirs, Some(vnodes));
    }
    // Jump hash: buckets 0..n; only the last bucket can leave, so "moved-1"
    // removes bucket n-1.
    let jump = quality(
        |k| u64::from(jump_hash(key_hash_u64(k), NODES as u32)),
        |k| u64::from(jump_hash(key_hash_u64(k), NODES as u32 + 1)),
        |k| u64::from(jump_hash(key_hash_u64(k), NODES as u32 - 1)),
        0,
    );
    line("jump hash".to_string(), &jump, None);
    println!();
}

fn lookups(c: &mut Criterion) {
    let keys: Vec<u64> = (0..LOOKUP_KEYS as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let mask = LOOKUP_KEYS - 1;
    let mut group = c.benchmark_group("lookup");
    for vnodes in VNODES {
        let ring = our_ring(0, vnodes);
        group.bench_with_input(BenchmarkId::new("faultline", vnodes), &ring, |b, ring| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & mask;
                ring.owner(key_hash_u64(black_box(keys[i])))
            })
        });
        let hashes: Vec<u64> = keys.iter().map(|&k| key_hash_u64(k)).collect();
        group.bench_with_input(
            BenchmarkId::new("faultline-prehashed", vnodes),
            &ring,
            |b, ring| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) & mask;
                    ring.owner(black_box(hashes[i]))
                })
            },
        );
        let hr = hash_ring(0, vnodes, NODES);
        group.bench_with_input(BenchmarkId::new("hashring", vnodes), &hr, |b, hr| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & mask;
                hr.get(&black_box(keys[i])).map(|v| v.node)
            })
        });
    }
    let ring = our_ring(0, 128);
    group.bench_function("faultline-preference-list-r3/128", |b| {
        let mut i = 0;
        let mut out = Vec::with_capacity(3);
        b.iter(|| {
            i = (i + 1) & mask;
            ring.preference_list_into(key_hash_u64(black_box(keys[i])), 3, &mut out);
            out[0]
        })
    });
    group.bench_function(BenchmarkId::new("jump", NODES), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & mask;
            jump_hash(key_hash_u64(black_box(keys[i])), NODES as u32)
        })
    });
    group.bench_function("xxh64-u64-only", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & mask;
            key_hash_u64(black_box(keys[i]))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = lookups
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not, and
    // then only the criterion smoke run happens.
    if std::env::args().any(|a| a == "--bench") {
        print_quality();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

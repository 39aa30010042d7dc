//! Transactional isolation checking, after Elle (Kingsbury and Alvaro,
//! "Elle: Inferring Isolation Anomalies from Experimental Observations",
//! VLDB 2020) and Adya's dependency graphs.
//!
//! A history of transactions (`:f :txn`, micro-ops `append`/`r` or
//! `w`/`r`) is turned into a graph over transactions whose edges are
//! dependencies: `ww`, `wr` and `rw` inferred from the values (see
//! [`list_append`] and [`rw_register`]), plus `process` or `realtime`
//! order when the consistency models asked for need them. Strongly
//! connected components of that graph hold every cycle; inside each, a
//! search ([`cycle`]) names the worst cycles by Adya's and Elle's names
//! (G0, G1c, G-single, G-nonadjacent, G2-item, and their `-process` and
//! `-realtime` forms). Anomalies that need no cycle (G1a, G1b, garbage
//! reads, duplicates, incompatible orders, dirty updates, internal
//! inconsistency, lost updates) are found directly.
//!
//! The verdict is invalid when an anomaly the requested models prohibit is
//! found ([`consistency`]); the result also names the models the history
//! rules out, weakest first (Elle's `:not`). Every anomaly comes with its
//! transactions and an explanation in words; cycles are drawn by
//! [`html`].
//!
//! Guarantees: no input makes it panic (bad micro-ops are a
//! [`CheckError`]); memory is linear in the history (examples are capped
//! per anomaly type); every cycle search has a step budget, and a time
//! limit ends the search with `unknown`, naming what was and was not
//! searched.

pub mod anomaly;
pub mod brute;
pub mod consistency;
pub mod cycle;
pub mod graph;
pub mod history;
pub mod html;
pub mod list_append;
pub mod rw_register;
#[cfg(test)]
mod tests;

pub use anomaly::{Anomalies, Case, Step};
pub use history::{TxnHistory, TxnHistoryBuilder, TxnModel};
pub use rw_register::Inference;

use crate::error::CheckError;
use crate::operation::{Operations, Outcome};
use crate::verdict::{CheckerResult, Verdict, Witness};
use anomaly::bind;
use cycle::{Cycle, Found, Searcher};
use graph::{EdgeList, Graph, Rels};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

/// How to check a transactional history.
#[derive(Clone, Debug)]
pub struct TxnOptions {
    /// The models the history should satisfy (canonical names, see
    /// [`consistency::canonical_model`]). Elle's default:
    /// strict-serializable.
    pub consistency_models: Vec<&'static str>,
    /// rw-register's version-order inferences.
    pub inference: Inference,
    /// Stop searching for cycles after this long: `unknown` unless an
    /// anomaly was already found.
    pub time_limit: Option<Duration>,
    /// Steps one search for one cycle type in one component may take.
    pub search_budget: u64,
}

impl Default for TxnOptions {
    fn default() -> Self {
        TxnOptions {
            consistency_models: vec!["strict-serializable"],
            inference: Inference::standard(),
            time_limit: None,
            search_budget: 20_000_000,
        }
    }
}

impl TxnOptions {
    /// Parses a comma-separated list of model names (aliases allowed).
    pub fn parse_models(list: &str) -> Result<Vec<&'static str>, String> {
        let models: Result<Vec<_>, _> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(consistency::canonical_model)
            .collect();
        let models = models?;
        if models.is_empty() {
            return Err("no consistency model given".into());
        }
        Ok(models)
    }
}

/// Numbers of one check.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TxnStats {
    pub txns: usize,
    pub ok: usize,
    pub info: usize,
    pub fail: usize,
    pub keys: usize,
    pub edges: usize,
    /// Nontrivial strongly connected components, and the largest.
    pub components: usize,
    pub largest_component: usize,
    pub search_steps: u64,
    /// Wall time of inferring edges and non-cycle anomalies, of building
    /// the graph, and of the component and cycle searches.
    pub analysis_ms: u64,
    pub graph_ms: u64,
    pub search_ms: u64,
}

/// The witness of an invalid transactional history.
#[derive(Clone, Debug, Serialize)]
pub struct TxnWitness {
    pub model: TxnModel,
    pub consistency_models: Vec<&'static str>,
    /// Anomaly types found that the models prohibit.
    pub anomaly_types: Vec<&'static str>,
    pub anomalies: Anomalies,
    /// The weakest models the history rules out (Elle's `:not`), and the
    /// stronger ones (`:also-not`).
    pub not: Vec<&'static str>,
    pub also_not: Vec<&'static str>,
    /// Searches that did not finish (budget or time), if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
}

impl fmt::Display for TxnWitness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "not {} ({}): {}",
            self.consistency_models.join(", "),
            self.model,
            self.anomaly_types.join(", ")
        )?;
        writeln!(f, "  rules out: {}", self.not.join(", "))?;
        if !self.also_not.is_empty() {
            writeln!(f, "  and also: {}", self.also_not.join(", "))?;
        }
        for (name, cases) in &self.anomalies.types {
            if !self.anomaly_types.contains(name) {
                continue;
            }
            let shown = cases.examples.len();
            writeln!(
                f,
                "  {name}: {} case{}{}",
                cases.count,
                if cases.count == 1 { "" } else { "s" },
                if (shown as u64) < cases.count {
                    format!(", first {shown}")
                } else {
                    String::new()
                }
            )?;
            for (i, case) in cases.examples.iter().enumerate().take(3) {
                writeln!(f, "   {}. let", i + 1)?;
                for t in &case.txns {
                    writeln!(f, "        {t}")?;
                }
                for line in case.explanation.lines() {
                    writeln!(f, "      {line}")?;
                }
            }
        }
        for i in &self.incomplete {
            writeln!(f, "  not fully searched: {i}")?;
        }
        Ok(())
    }
}

/// The outcome of one check, with its numbers.
pub struct TxnCheck {
    pub verdict: Verdict,
    pub stats: TxnStats,
    /// Every anomaly found, prohibited or not.
    pub all_anomalies: Vec<&'static str>,
}

/// The analysis a model made, to explain edges.
enum Analysis<'h> {
    ListAppend(list_append::ListAppend<'h>),
    RwRegister(rw_register::RwRegister<'h>),
}

/// Checks a transactional history, in four steps: which anomalies and
/// edges the models ask for ([`Plan`]), the model's analysis beside the
/// order edges ([`analyze`]), the graph, and the cycle search per
/// component ([`search_components`]); then the verdict.
pub fn check(h: &TxnHistory, model: TxnModel, opts: &TxnOptions) -> Result<TxnCheck, CheckError> {
    let started = Instant::now();
    let deadline = opts.time_limit.map(|d| started + d);
    let plan = Plan::new(&opts.consistency_models);
    let Analyzed {
        analysis,
        mut anomalies,
        mut edges,
        order_edges,
        outcome_counts: [ok, info, fail],
    } = analyze(h, model, opts, plan.order)?;
    let analyzed = started.elapsed();
    let mut stats = TxnStats {
        txns: h.txns.len(),
        ok,
        info,
        fail,
        keys: h.key_count(),
        ..TxnStats::default()
    };
    edges.push(order_edges);
    let graph = Graph::build_from(h.txns.len(), &edges);
    drop(edges);
    stats.edges = graph.edge_count();
    let built = started.elapsed();
    let explain = |c: &Cycle| explain_cycle(h, &analysis, c);
    let incomplete = search_components(
        &graph,
        &plan,
        opts.search_budget,
        deadline,
        &mut anomalies,
        &mut stats,
        &explain,
    );
    stats.analysis_ms = analyzed.as_millis() as u64;
    stats.graph_ms = (built - analyzed).as_millis() as u64;
    stats.search_ms = (started.elapsed() - built).as_millis() as u64;
    let all_anomalies = anomalies.names();
    let verdict = verdict(model, opts, &plan.prohibited, anomalies, incomplete);
    Ok(TxnCheck {
        verdict,
        stats,
        all_anomalies,
    })
}

/// What the requested models ask of a check: the anomalies they
/// prohibit, the cycle types to search for, and which order edges
/// (process or real time) the graph needs.
struct Plan {
    prohibited: BTreeSet<&'static str>,
    /// Only the types whose edges the graph has.
    specs: Vec<cycle::CycleSpec>,
    order: Rels,
}

impl Plan {
    fn new(consistency_models: &[&'static str]) -> Plan {
        let prohibited = consistency::prohibited_anomalies(consistency_models);
        let specs: Vec<cycle::CycleSpec> = cycle::specs()
            .into_iter()
            .filter(|s| prohibited.contains(s.name))
            .collect();
        let wants = |r: Rels| specs.iter().any(|s| s.required.contains(r));
        // Real time covers process order (a process's transactions follow
        // each other in real time), so only one of the two is added, as
        // Elle does.
        let order = if wants(Rels::REALTIME) {
            Rels::REALTIME
        } else if wants(Rels::PROCESS) {
            Rels::PROCESS
        } else {
            Rels::NONE
        };
        let specs = specs
            .into_iter()
            .filter(|s| {
                let needs = s.required & (Rels::PROCESS | Rels::REALTIME);
                needs.is_empty() || needs == order
            })
            .collect();
        Plan {
            prohibited,
            specs,
            order,
        }
    }
}

/// What the analysis step found.
struct Analyzed<'h> {
    analysis: Analysis<'h>,
    anomalies: Anomalies,
    /// The data edges, in lists.
    edges: Vec<EdgeList>,
    /// Process or real-time edges, as the plan asks.
    order_edges: EdgeList,
    /// Transactions `ok`, `info`, `fail`.
    outcome_counts: [usize; 3],
}

/// The model's analysis (data edges and non-cycle anomalies) on this
/// core, and on another meanwhile what needs only the history: outcome
/// counts, the order edges and, for list-append, the reads by key and
/// internal consistency, which the analysis takes as they are ready.
fn analyze<'h>(
    h: &'h TxnHistory,
    model: TxnModel,
    opts: &TxnOptions,
    order: Rels,
) -> Result<Analyzed<'h>, CheckError> {
    let mut anomalies = Anomalies::default();
    let mut edges = vec![EdgeList::default()];
    // Sent by the other core as soon as each is ready; a send fails only
    // when the analysis already failed (and dropped its receivers), which
    // the caller reports.
    let (reads_sender, reads) = std::sync::mpsc::sync_channel(1);
    let (candidates_sender, candidates) = std::sync::mpsc::sync_channel(1);
    let (analysis, (order_edges, internal, outcome_counts)) = std::thread::scope(|scope| {
        let beside = scope.spawn(move || {
            let outcome_counts = outcome_counts(h);
            let mut internal = Anomalies::default();
            if model == TxnModel::ListAppend {
                let _ = reads_sender.send(list_append::ListAppend::reads_by_key(h));
                let _ = candidates_sender.send(list_append::ListAppend::internal(h, &mut internal));
            }
            drop((reads_sender, candidates_sender));
            let mut list = EdgeList::default();
            match order {
                Rels::REALTIME => realtime_edges(h, &mut list),
                Rels::PROCESS => process_edges(h, &mut list),
                _ => {}
            }
            (list, internal, outcome_counts)
        });
        let analysis = match model {
            TxnModel::ListAppend => list_append::ListAppend::analyze(
                h,
                || {
                    reads
                        .recv()
                        .expect("the other core sends the reads unless it panicked")
                },
                || {
                    candidates
                        .recv()
                        .expect("the other core sends the candidates unless it panicked")
                },
                &mut anomalies,
                &mut edges,
            )
            .map(Analysis::ListAppend),
            TxnModel::RwRegister => {
                rw_register::RwRegister::analyze(h, opts.inference, &mut anomalies, &mut edges[0])
                    .map(Analysis::RwRegister)
            }
        };
        let beside = beside.join().expect("building order edges does not panic");
        (analysis, beside)
    });
    let analysis = analysis?;
    anomalies.merge(internal);
    Ok(Analyzed {
        analysis,
        anomalies,
        edges,
        order_edges,
        outcome_counts,
    })
}

/// Transactions `ok`, `info`, `fail`.
fn outcome_counts(h: &TxnHistory) -> [usize; 3] {
    let mut counts = [0usize; 3];
    for t in &h.txns {
        counts[match t.outcome {
            Outcome::Ok => 0,
            Outcome::Info => 1,
            Outcome::Fail => 2,
        }] += 1;
    }
    counts
}

/// Searches each cyclic component for the plan's cycle types until the
/// deadline; returns what was not fully searched.
fn search_components(
    graph: &Graph,
    plan: &Plan,
    budget: u64,
    deadline: Option<Instant>,
    anomalies: &mut Anomalies,
    stats: &mut TxnStats,
    explain: &dyn Fn(&Cycle) -> Case,
) -> Vec<String> {
    let mask = plan.specs.iter().fold(Rels::NONE, |m, s| m | s.allowed);
    let mut incomplete = Vec::new();
    if mask.is_empty() {
        return incomplete;
    }
    let components = graph.sccs(mask, None);
    stats.components = components.len();
    stats.largest_component = components.iter().map(Vec::len).max().unwrap_or(0);
    for (i, component) in components.iter().enumerate() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            incomplete.push(format!(
                "time limit reached: {} of {} cyclic components searched; the other {} (largest {} transactions) were not",
                i,
                components.len(),
                components.len() - i,
                components[i..].iter().map(Vec::len).max().unwrap_or(0)
            ));
            break;
        }
        search_component(
            graph,
            component,
            &plan.specs,
            &plan.prohibited,
            mask,
            budget,
            deadline,
            anomalies,
            &mut incomplete,
            stats,
            explain,
        );
    }
    incomplete
}

/// Invalid when an anomaly the models prohibit was found; otherwise
/// unknown when a search did not finish, else valid.
fn verdict(
    model: TxnModel,
    opts: &TxnOptions,
    prohibited: &BTreeSet<&'static str>,
    mut anomalies: Anomalies,
    incomplete: Vec<String>,
) -> Verdict {
    let found: Vec<&'static str> = anomalies.names();
    let bad: Vec<&'static str> = found
        .iter()
        .copied()
        .filter(|a| prohibited.contains(a))
        .collect();
    if !bad.is_empty() {
        let (not, also_not) = consistency::boundary(&found);
        anomalies.types.retain(|k, _| prohibited.contains(k));
        Verdict::Invalid {
            witness: Witness::Txn(Box::new(TxnWitness {
                model,
                consistency_models: opts.consistency_models.clone(),
                anomaly_types: bad,
                anomalies,
                not,
                also_not,
                incomplete,
            })),
        }
    } else if !incomplete.is_empty() {
        Verdict::unknown(format!(
            "no prohibited anomaly found, but {}",
            incomplete.join("; ")
        ))
    } else {
        Verdict::Valid
    }
}

#[allow(clippy::too_many_arguments)]
fn search_component(
    graph: &Graph,
    component: &[usize],
    specs: &[cycle::CycleSpec],
    prohibited: &BTreeSet<&'static str>,
    mask: Rels,
    budget: u64,
    deadline: Option<Instant>,
    anomalies: &mut Anomalies,
    incomplete: &mut Vec<String>,
    stats: &mut TxnStats,
    explain: &dyn Fn(&Cycle) -> Case,
) {
    let mut searcher = Searcher::new(graph, component, deadline);
    let mut implied: BTreeSet<&'static str> = BTreeSet::new();
    let mut found_any = false;
    // Sub-components per relation mask, computed once each.
    let mut by_mask: Vec<(Rels, Vec<Vec<usize>>)> = Vec::new();
    for spec in specs {
        if implied.contains(spec.name) {
            continue;
        }
        if !by_mask.iter().any(|(m, _)| *m == spec.allowed) {
            by_mask.push((spec.allowed, graph.sccs(spec.allowed, Some(component))));
        }
        let subs = &by_mask
            .iter()
            .find(|(m, _)| *m == spec.allowed)
            .expect("just added")
            .1;
        for sub in subs {
            let mut members = vec![false; component.len()];
            for v in sub {
                let i = component
                    .binary_search(v)
                    .expect("a sub-component lies in its component");
                members[i] = true;
            }
            match searcher.search(spec, &members, budget) {
                Found::Cycle(c) => {
                    debug_assert_eq!(cycle::classify(&c.rels), spec.name);
                    anomalies.add(spec.name, || explain(&c));
                    implied.extend(consistency::implied_anomalies(spec.name));
                    found_any = true;
                    break;
                }
                Found::OutOfBudget => {
                    incomplete.push(format!(
                        "{} in a component of {} transactions (search budget or time ran out)",
                        spec.name,
                        component.len()
                    ));
                    break;
                }
                Found::None => {}
            }
        }
    }
    if !found_any {
        if let Some(c) = searcher.fallback(mask) {
            let name = cycle::classify(&c.rels);
            if prohibited.contains(name) {
                anomalies.add(name, || explain(&c));
            }
        }
    }
    stats.search_steps += searcher.steps;
}

/// Process order: each transaction of a process precedes its next
/// (failed transactions did nothing and are skipped).
fn process_edges(h: &TxnHistory, edges: &mut EdgeList) {
    let mut last: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for (t, txn) in h.txns.iter().enumerate() {
        if txn.outcome == Outcome::Fail {
            continue;
        }
        if let Some(prev) = last.insert(txn.process, t) {
            edges.add(prev, t, Rels::PROCESS);
        }
    }
}

/// Real-time order, transitively reduced as Elle does: each invoke gets
/// an edge from every `ok` transaction that completed before it and is not
/// already implied by another such (a completed transaction stops
/// preceding directly once one that began after it completes).
///
/// Transactions are numbered in invoke order, so the transactions an `ok`
/// transaction `b` precedes directly are a range of numbers: those
/// invoked after `b` completed and before the first completion of a
/// transaction invoked after that. Both ends are near `b`, found by
/// galloping; the earliest completion from each transaction on is one
/// suffix minimum. Linear in the history and its edges, no sorting.
fn realtime_edges(h: &TxnHistory, edges: &mut EdgeList) {
    let n = h.txns.len();
    let invoked: Vec<u64> = h.txns.iter().map(|t| t.invoke_pos).collect();
    // earliest[i]: the first completion of an `ok` transaction numbered i
    // or later.
    let mut earliest = vec![u64::MAX; n + 1];
    for (t, txn) in h.txns.iter().enumerate().rev() {
        let done = match (txn.outcome, txn.complete_pos()) {
            (Outcome::Ok, Some(c)) => c,
            _ => u64::MAX,
        };
        earliest[t] = earliest[t + 1].min(done);
    }
    for (b, txn) in h.txns.iter().enumerate() {
        let (Outcome::Ok, Some(done)) = (txn.outcome, txn.complete_pos()) else {
            continue;
        };
        let first = first_invoked_after(&invoked, b + 1, done);
        let cut = earliest[first];
        let end = if cut == u64::MAX {
            n
        } else {
            first_invoked_after(&invoked, first, cut)
        };
        for t in first..end {
            if h.txns[t].outcome != Outcome::Fail {
                edges.add(b, t, Rels::REALTIME);
            }
        }
    }
}

/// The first transaction numbered `from` or later invoked after event
/// position `pos` (`invoked` is increasing), by galloping from `from`.
fn first_invoked_after(invoked: &[u64], from: usize, pos: u64) -> usize {
    let mut low = from;
    let mut step = 1;
    let mut high = from;
    while high < invoked.len() && invoked[high] <= pos {
        low = high + 1;
        high += step;
        step *= 2;
    }
    let high = high.min(invoked.len());
    low + invoked[low..high].partition_point(|p| *p <= pos)
}

/// The real-time edges by the buffer algorithm that [`realtime_edges`]
/// replaced (a completed transaction leaves the buffer once one that
/// began after it completes), to test that both give the same edges.
#[cfg(test)]
fn realtime_edges_by_buffer(h: &TxnHistory) -> Vec<(usize, usize)> {
    let mut completions: Vec<(u64, usize)> = h
        .txns
        .iter()
        .enumerate()
        .filter_map(|(t, x)| match (x.outcome, x.complete_pos()) {
            (Outcome::Ok, Some(c)) => Some((c, t)),
            _ => None,
        })
        .collect();
    completions.sort_unstable();
    let mut out = Vec::new();
    let mut buffer: Vec<(usize, u64)> = Vec::new();
    let mut next = completions.iter().peekable();
    for (t, txn) in h.txns.iter().enumerate() {
        while let Some(&&(c, done)) = next.peek() {
            if c > txn.invoke_pos {
                break;
            }
            next.next();
            let invoked = h.txns[done].invoke_pos;
            buffer.retain(|(_, bc)| *bc > invoked);
            buffer.push((done, c));
        }
        if txn.outcome == Outcome::Fail {
            continue;
        }
        out.extend(buffer.iter().filter(|(b, _)| *b != t).map(|(b, _)| (*b, t)));
    }
    out.sort_unstable();
    out
}

/// A cycle explained step by step, in words.
fn explain_cycle(h: &TxnHistory, analysis: &Analysis, c: &Cycle) -> Case {
    let n = c.txns.len();
    let name = |i: usize| format!("T{}", i % n + 1);
    let mut steps = Vec::new();
    let mut lines = Vec::new();
    for i in 0..n {
        let (a, b, rel) = (c.txns[i], c.txns[(i + 1) % n], c.rels[i]);
        let (an, bn) = (name(i), name(i + 1));
        let why = explain_edge(h, analysis, a, b, rel, &an, &bn)
            .unwrap_or_else(|| format!("{an} precedes {bn} ({})", rel.name()));
        lines.push(format!("{an} {}→ {bn}: {why}.", rel.name()));
        steps.push(Step {
            from: a,
            to: b,
            rel: rel.name(),
            why,
        });
    }
    lines.push(format!(
        "So T1 precedes itself: a {} cycle, which no serial order allows.",
        cycle::classify(&c.rels)
    ));
    Case {
        txns: bind(h, &c.txns),
        txn_ids: c.txns.clone(),
        steps,
        explanation: lines.join("\n"),
    }
}

fn explain_edge(
    h: &TxnHistory,
    analysis: &Analysis,
    a: usize,
    b: usize,
    rel: Rels,
    an: &str,
    bn: &str,
) -> Option<String> {
    let (x, y) = (&h.txns[a], &h.txns[b]);
    match rel {
        Rels::PROCESS => Some(format!("both ran on process {}, {an} first", x.process)),
        Rels::REALTIME => Some(format!(
            "{an} completed (event {}) before {bn} was invoked (event {})",
            x.complete_index()
                .map(|i| i.to_string())
                .unwrap_or_else(|| "?".into()),
            y.invoke_index
        )),
        _ => match analysis {
            Analysis::ListAppend(la) => la.explain(a, b, rel, an, bn),
            Analysis::RwRegister(rr) => rr.explain(a, b, rel, an, bn),
        },
    }
}

/// Checks operations already paired (the harness's path), as a checker
/// result named after the model.
pub fn check_operations(
    ops: &Operations,
    model: TxnModel,
    opts: &TxnOptions,
) -> Result<CheckerResult, CheckError> {
    let h = TxnHistory::from_operations(ops, model)?;
    Ok(result(&h, model, opts)?.0)
}

/// Checks a built history and summarises it as a [`CheckerResult`].
pub fn result(
    h: &TxnHistory,
    model: TxnModel,
    opts: &TxnOptions,
) -> Result<(CheckerResult, TxnStats), CheckError> {
    let c = check(h, model, opts)?;
    let s = &c.stats;
    let summary = format!(
        "{} against {}: {} txns ({} ok, {} info, {} fail) on {} keys, {} edges, {} cyclic component{}{}",
        model,
        opts.consistency_models.join(", "),
        s.txns,
        s.ok,
        s.info,
        s.fail,
        s.keys,
        s.edges,
        s.components,
        if s.components == 1 { "" } else { "s" },
        if c.all_anomalies.is_empty() {
            String::new()
        } else {
            format!("; anomalies: {}", c.all_anomalies.join(", "))
        }
    );
    let details = serde_json::json!({
        "model": model.name(),
        "consistency_models": opts.consistency_models,
        "anomaly_types": c.all_anomalies,
        "stats": s,
    });
    Ok((
        CheckerResult {
            name: model.name().into(),
            verdict: c.verdict,
            summary,
            details,
        },
        c.stats,
    ))
}

//! Consistency models and the anomalies that rule them out.
//!
//! Three small graphs, as in Elle's `consistency-model` (and the papers it
//! cites: Adya's thesis, Adya–Liskov–O'Neil, Bailis et al.'s Highly
//! Available Transactions, Cerone–Bernardi–Gotsman, Daudjee–Salem):
//!
//! - [`MODELS`]: `a → b` when every history that satisfies `a` satisfies
//!   `b` (strict-serializable → serializable → repeatable-read → …);
//! - [`IMPLIED`]: `a → b` when an anomaly `a` is also an anomaly `b`
//!   (G-single is a G-nonadjacent, which is a G2-item; G1c is a G1);
//! - [`PROSCRIBED`]: the anomalies each model forbids directly (those of
//!   weaker models follow from `MODELS`).
//!
//! From them: which anomalies a set of models prohibits
//! ([`prohibited_anomalies`]), and which models a set of anomalies rules
//! out, weakest first (Elle's `:not` and `:also-not`, [`boundary`]).
//!
//! faultline has no predicate reads, so its cycle names are the item
//! forms: `G-single` here is Elle's `G-single-item`, `G-nonadjacent` is
//! `G-nonadjacent-item`; both imply `G2-item`, as in Elle.

use std::collections::{BTreeSet, VecDeque};

/// Aliases: the name a user may give → the name used here.
const ALIASES: &[(&str, &str)] = &[
    ("PL-1", "read-uncommitted"),
    ("PL-2", "read-committed"),
    ("PL-2.99", "repeatable-read"),
    ("PL-3", "serializable"),
    ("conflict-serializable", "serializable"),
    ("PL-SI", "snapshot-isolation"),
    ("si", "snapshot-isolation"),
    ("PL-SS", "strict-serializable"),
    ("strong-serializable", "strict-serializable"),
    ("PL-CS", "cursor-stability"),
    ("PL-2+", "consistent-view"),
    ("PL-FCV", "forward-consistent-view"),
    ("PL-MSR", "monotonic-snapshot-read"),
    ("PL-2L", "monotonic-view"),
    ("PL-3U", "update-serializable"),
    ("strong-session-PL-1", "strong-session-read-uncommitted"),
    ("strong-session-PL-2", "strong-session-read-committed"),
    ("strong-PL-1", "strong-read-uncommitted"),
    ("strong-PL-2", "strong-read-committed"),
];

/// Model `a` implies model `b` (every history valid under `a` is valid
/// under `b`).
pub const MODELS: &[(&str, &[&str])] = &[
    ("causal-cerone", &["read-atomic"]),
    ("consistent-view", &["cursor-stability", "monotonic-view"]),
    (
        "serializable",
        &[
            "repeatable-read",
            "update-serializable",
            "snapshot-isolation",
            "view-serializable",
        ],
    ),
    ("cursor-stability", &["read-committed"]),
    ("forward-consistent-view", &["consistent-view"]),
    ("read-committed", &["read-uncommitted"]),
    ("update-serializable", &["forward-consistent-view"]),
    ("monotonic-atomic-view", &["read-committed"]),
    ("monotonic-view", &["read-committed"]),
    ("monotonic-snapshot-read", &["read-committed"]),
    (
        "parallel-snapshot-isolation",
        &["causal-cerone", "update-atomic"],
    ),
    ("prefix", &["causal-cerone"]),
    ("read-atomic", &["monotonic-atomic-view"]),
    (
        "repeatable-read",
        &["cursor-stability", "monotonic-atomic-view"],
    ),
    ("update-atomic", &["read-atomic"]),
    ("session-serializable", &["1SR"]),
    (
        "snapshot-isolation",
        &[
            "forward-consistent-view",
            "monotonic-atomic-view",
            "monotonic-snapshot-read",
            "parallel-snapshot-isolation",
            "prefix",
        ],
    ),
    (
        "strict-serializable",
        &[
            "serializable",
            "linearizable",
            "snapshot-isolation",
            "strong-snapshot-isolation",
            "strong-session-serializable",
            "session-serializable",
        ],
    ),
    ("strong-session-read-uncommitted", &["read-uncommitted"]),
    (
        "strong-session-read-committed",
        &["read-committed", "strong-session-read-uncommitted"],
    ),
    (
        "strong-read-uncommitted",
        &["strong-session-read-uncommitted"],
    ),
    (
        "strong-read-committed",
        &["strong-session-read-committed", "strong-read-uncommitted"],
    ),
    (
        "strong-session-serializable",
        &["serializable", "strong-session-snapshot-isolation"],
    ),
    (
        "strong-session-snapshot-isolation",
        &["snapshot-isolation", "strong-session-read-committed"],
    ),
    (
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation", "strong-read-committed"],
    ),
    ("linearizable", &["sequential"]),
    ("sequential", &["causal"]),
    ("causal", &["writes-follow-reads", "PRAM"]),
    (
        "PRAM",
        &["monotonic-reads", "monotonic-writes", "read-your-writes"],
    ),
];

/// Anomaly `a` is also anomaly `b`.
pub const IMPLIED: &[(&str, &[&str])] = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    ("G-single", &["G-nonadjacent", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    ("G-nonadjacent", &["G2-item", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-item-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-item-realtime"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-process", &["G2-realtime"]),
    // Two committed reads no single order of appends explains: one of them
    // saw a state that never committed.
    ("incompatible-order", &["G1a"]),
    // Reading a write the transaction makes later is a trivial wr cycle.
    ("future-read", &["G1c"]),
    // A committed write built on an aborted one.
    ("dirty-update", &["G1a"]),
    ("lost-update", &["G2-item"]),
];

/// What each model forbids directly.
pub const PROSCRIBED: &[(&str, &[&str])] = &[
    ("causal-cerone", &["internal", "G1a"]),
    ("cursor-stability", &["G1", "lost-update"]),
    ("monotonic-view", &["G1"]),
    ("monotonic-snapshot-read", &["G1"]),
    ("consistent-view", &["G1", "G-single"]),
    ("forward-consistent-view", &["G1"]),
    ("parallel-snapshot-isolation", &["internal", "G1a"]),
    ("serializable", &["G1", "G2", "internal"]),
    ("read-committed", &["G1"]),
    // Elle: G0, duplicate elements, cyclic versions. faultline adds garbage
    // reads (a value nobody wrote), which no model of anything allows.
    (
        "read-uncommitted",
        &[
            "G0",
            "duplicate-elements",
            "cyclic-versions",
            "garbage-read",
        ],
    ),
    ("prefix", &["internal", "G1a"]),
    ("snapshot-isolation", &["internal", "G1", "G-nonadjacent"]),
    ("read-atomic", &["internal", "G1a", "future-read"]),
    ("repeatable-read", &["G1", "G2-item", "lost-update"]),
    ("update-atomic", &["lost-update"]),
    (
        "strict-serializable",
        &["G1", "G1c-realtime", "G2-realtime"],
    ),
    ("strong-session-read-uncommitted", &["G0-process"]),
    ("strong-session-read-committed", &["G1c-process"]),
    ("strong-read-uncommitted", &["G0-realtime"]),
    ("strong-read-committed", &["G1c-realtime"]),
    (
        "strong-session-snapshot-isolation",
        &["internal", "G1-process", "G-nonadjacent-process"],
    ),
    (
        "strong-snapshot-isolation",
        &["internal", "G1-realtime", "G-nonadjacent-realtime"],
    ),
    ("strong-session-serializable", &["G1-process", "G2-process"]),
    ("update-serializable", &["G1"]),
];

/// Every model name known (canonical names only).
pub fn all_models() -> BTreeSet<&'static str> {
    let mut s = BTreeSet::new();
    for (a, bs) in MODELS {
        s.insert(*a);
        s.extend(bs.iter().copied());
    }
    s
}

/// A model's canonical name, or an error listing the known ones.
pub fn canonical_model(name: &str) -> Result<&'static str, String> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map(|(_, canonical)| *canonical)
        .unwrap_or(name);
    all_models()
        .into_iter()
        .find(|m| *m == name)
        .ok_or_else(|| {
            format!(
                "unknown consistency model {name:?}; known: {}",
                all_models().into_iter().collect::<Vec<_>>().join(", ")
            )
        })
}

fn out<'a>(graph: &'a [(&'static str, &'static [&'static str])], v: &str) -> &'a [&'static str] {
    graph
        .iter()
        .find(|(a, _)| *a == v)
        .map(|(_, bs)| *bs)
        .unwrap_or(&[])
}

fn ins(graph: &[(&'static str, &'static [&'static str])], v: &str) -> Vec<&'static str> {
    graph
        .iter()
        .filter(|(_, bs)| bs.contains(&v))
        .map(|(a, _)| *a)
        .collect()
}

/// Everything reachable from `start` (itself included) by `step`.
fn closure(
    start: impl IntoIterator<Item = &'static str>,
    step: impl Fn(&'static str) -> Vec<&'static str>,
) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<&'static str> = start.into_iter().collect();
    while let Some(v) = queue.pop_front() {
        if seen.insert(v) {
            queue.extend(step(v));
        }
    }
    seen
}

/// The anomalies a history must not show if all of `models` hold: what
/// they and every weaker model forbid, and every anomaly that implies one
/// of those.
pub fn prohibited_anomalies(models: &[&'static str]) -> BTreeSet<&'static str> {
    let implied_models = closure(models.iter().copied(), |m| out(MODELS, m).to_vec());
    let direct = implied_models
        .iter()
        .flat_map(|m| out(PROSCRIBED, m).iter().copied());
    closure(direct, |a| ins(IMPLIED, a))
}

/// Every anomaly `anomaly` implies, itself included.
pub fn implied_anomalies(anomaly: &'static str) -> BTreeSet<&'static str> {
    closure([anomaly], |a| out(IMPLIED, a).to_vec())
}

/// The models these anomalies rule out: `not` the weakest of them (none
/// implies another of the set), `also_not` the rest, each sorted.
pub fn boundary(anomalies: &[&'static str]) -> (Vec<&'static str>, Vec<&'static str>) {
    let implied = closure(anomalies.iter().copied(), |a| out(IMPLIED, a).to_vec());
    let direct: Vec<&'static str> = PROSCRIBED
        .iter()
        .filter(|(_, forbidden)| forbidden.iter().any(|a| implied.contains(a)))
        .map(|(m, _)| *m)
        .collect();
    let impossible = closure(direct, |m| ins(MODELS, m));
    let mut not = Vec::new();
    let mut also_not = Vec::new();
    for m in &impossible {
        let weaker = closure([*m], |x| out(MODELS, x).to_vec());
        if weaker.iter().any(|w| w != m && impossible.contains(w)) {
            also_not.push(*m);
        } else {
            not.push(*m);
        }
    }
    (not, also_not)
}

/// Interns an anomaly name found at run time to the static one.
pub fn anomaly_name(name: &str) -> Option<&'static str> {
    IMPLIED
        .iter()
        .flat_map(|(a, bs)| std::iter::once(*a).chain(bs.iter().copied()))
        .chain(PROSCRIBED.iter().flat_map(|(_, bs)| bs.iter().copied()))
        .find(|a| *a == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_serializable_prohibits_every_cycle_and_serializable_not_realtime_ones() {
        let ss = prohibited_anomalies(&["strict-serializable"]);
        for a in [
            "G0",
            "G1a",
            "G1b",
            "G1c",
            "G-single",
            "G2-item",
            "G-single-realtime",
            "G2-item-realtime",
            "internal",
            "garbage-read",
            "incompatible-order",
        ] {
            assert!(ss.contains(a), "strict-serializable prohibits {a}");
        }
        let s = prohibited_anomalies(&["serializable"]);
        assert!(s.contains("G2-item") && s.contains("G1c") && s.contains("lost-update"));
        assert!(
            !s.contains("G-single-realtime"),
            "serializable says nothing of real time"
        );
        let si = prohibited_anomalies(&["snapshot-isolation"]);
        assert!(si.contains("G-single") && si.contains("G-nonadjacent"));
        assert!(!si.contains("G2-item"), "write skew is allowed under SI");
        let rc = prohibited_anomalies(&["read-committed"]);
        assert!(rc.contains("G1c") && rc.contains("G0") && rc.contains("G1a"));
        assert!(!rc.contains("G-single") && !rc.contains("G2-item"));
    }

    #[test]
    fn boundary_names_the_weakest_models_ruled_out() {
        let (not, also) = boundary(&["G2-item"]);
        assert_eq!(not, vec!["repeatable-read"]);
        assert!(also.contains(&"serializable") && also.contains(&"strict-serializable"));
        assert!(
            !also.contains(&"snapshot-isolation"),
            "G2-item is allowed under SI"
        );
        let (not, _) = boundary(&["G1c"]);
        assert_eq!(not, vec!["read-committed"], "G1c rules out read committed");
        let (not, _) = boundary(&["G0"]);
        assert!(not.contains(&"read-uncommitted"), "{not:?}");
        let (not, also) = boundary(&["G-single-realtime"]);
        assert!(
            not.contains(&"strong-snapshot-isolation")
                || also.contains(&"strong-snapshot-isolation")
        );
        assert!(!not.contains(&"serializable") && !also.contains(&"serializable"));
        let (not, also) = boundary(&["G-single"]);
        assert!(
            not.contains(&"consistent-view") && also.contains(&"snapshot-isolation"),
            "{not:?}"
        );
    }

    #[test]
    fn model_names_and_aliases() {
        assert_eq!(canonical_model("PL-3"), Ok("serializable"));
        assert_eq!(
            canonical_model("strict-serializable"),
            Ok("strict-serializable")
        );
        let e = canonical_model("serialisable").unwrap_err();
        assert!(
            e.contains("serialisable") && e.contains("snapshot-isolation"),
            "{e}"
        );
        assert_eq!(implied_anomalies("G-single").len(), 12);
    }
}

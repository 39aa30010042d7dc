//! Which nodes own which shards over time, derived from the history alone.
//!
//! A sharded run records its initial placement as a nemesis event
//! `placement`, and each ring membership change as `start-membership` /
//! `stop-membership` events whose values carry the member list and the
//! placement after the change (docs/history-format.md, "Shards and
//! membership"). From those, [`ShardOwnership::of_history`] builds:
//! - the placement epochs: consecutive time ranges with one placement each
//!   (a change's placement takes effect when the change ends);
//! - the changes, each with its moved shards and their outcomes.
//!
//! Guarantees: reading is lenient (a report must draw whatever a run left):
//! a malformed membership value is skipped, never a panic; a change with
//! no `stop-membership` stays open to the end of the history and its moves
//! read `unfinished`; a history with no `placement` event but with changes
//! gets its first epoch from the first change's "before" side. Epochs never
//! overlap and are in time order.

use faultline_checker::history::{Event, Process, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What happened to one shard's replica set in one change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMoveOutcome {
    pub shard: u32,
    pub before: Vec<String>,
    pub after: Vec<String>,
    /// `done`, `timeout`, `failed`, or `unfinished` (no stop was recorded).
    pub outcome: String,
    /// Why it is not `done`, when the harness said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One ring membership change: a node added to or removed from the ring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipChange {
    pub start_ns: u64,
    /// None when no `stop-membership` was recorded.
    pub end_ns: Option<u64>,
    /// `add` or `remove`.
    pub action: String,
    pub node: String,
    /// The ring members after the change.
    pub members: Vec<String>,
    pub moves: Vec<ShardMoveOutcome>,
    /// The error the stop event carried, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl std::fmt::Display for ShardMoveOutcome {
    /// `s3 1,2,3 → 1,2,4 done`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "s{} {} → {} {}",
            self.shard,
            self.before.join(","),
            self.after.join(","),
            self.outcome
        )
    }
}

impl MembershipChange {
    /// Moves whose outcome is `done`.
    pub fn done(&self) -> usize {
        self.moves.iter().filter(|m| m.outcome == "done").count()
    }

    /// True when the change ended and every move is `done`.
    pub fn completed(&self) -> bool {
        self.end_ns.is_some() && self.moves.iter().all(|m| m.outcome == "done")
    }

    /// One line for the terminal summary.
    pub fn line(&self) -> String {
        let sign = if self.action == "remove" { "-" } else { "+" };
        let when = match self.end_ns {
            Some(e) => format!("{:.1}s–{:.1}s", self.start_ns as f64 / 1e9, e as f64 / 1e9),
            None => format!("{:.1}s– (never ended)", self.start_ns as f64 / 1e9),
        };
        let moves = if self.moves.is_empty() {
            "no shard moved".to_string()
        } else {
            self.moves
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        format!(
            "membership {when} {sign}{}: members {}; {moves}",
            self.node,
            self.members.join(",")
        )
    }
}

/// A time range with one placement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementEpoch {
    pub start_ns: u64,
    pub end_ns: u64,
    /// Ring members; empty when the history did not say.
    pub members: Vec<String>,
    /// Replicas of each shard, indexed by shard id.
    pub placement: Vec<Vec<String>>,
    /// Shards whose move into this epoch did not finish: their replica set
    /// here is the ring's target, not confirmed by the group.
    pub unconfirmed: BTreeSet<u32>,
}

/// Shard ownership over a run; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardOwnership {
    /// The number of shards (the longest placement seen).
    pub shards: u32,
    pub epochs: Vec<PlacementEpoch>,
    pub changes: Vec<MembershipChange>,
}

fn names(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn placement(v: Option<&Value>) -> Option<Vec<Vec<String>>> {
    v?.as_array()?.iter().map(|r| names(Some(r))).collect()
}

fn moves(v: Option<&Value>, default_outcome: &str) -> Vec<ShardMoveOutcome> {
    let Some(list) = v.and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|m| {
            Some(ShardMoveOutcome {
                shard: u32::try_from(m.get("shard")?.as_u64()?).ok()?,
                before: names(m.get("before"))?,
                after: names(m.get("after"))?,
                outcome: m
                    .get("outcome")
                    .and_then(Value::as_str)
                    .unwrap_or(default_outcome)
                    .to_string(),
                error: m.get("error").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect()
}

impl ShardOwnership {
    /// True when the history says nothing of shards.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty() && self.changes.is_empty()
    }

    /// Derives ownership from a history; `end_ns` closes the last epoch.
    pub fn of_history(events: &[Event], end_ns: u64) -> ShardOwnership {
        let mut o = ShardOwnership::default();
        // The change in progress (index into `changes`) and its placement after.
        let mut open: Option<(usize, Vec<Vec<String>>)> = None;
        for e in events.iter().filter(|e| e.process == Process::Nemesis) {
            match e.f.as_str() {
                "placement" => {
                    let Some(p) = placement(e.value.get("placement")) else {
                        continue;
                    };
                    let members = names(e.value.get("members")).unwrap_or_default();
                    o.begin_epoch(e.time, members, p, BTreeSet::new());
                }
                "start-membership" => {
                    let (Some(action), Some(node), Some(members), Some(after)) = (
                        e.value.get("action").and_then(Value::as_str),
                        e.value.get("node").and_then(Value::as_str),
                        names(e.value.get("members")),
                        placement(e.value.get("placement")),
                    ) else {
                        continue;
                    };
                    let moves = moves(e.value.get("moves"), "unfinished");
                    if o.epochs.is_empty() {
                        // No initial placement recorded: undo this change's moves.
                        let mut before = after.clone();
                        for m in &moves {
                            if let Some(r) = before.get_mut(m.shard as usize) {
                                r.clone_from(&m.before);
                            }
                        }
                        let mut members_before: Vec<String> = members
                            .iter()
                            .filter(|m| action != "add" || *m != node)
                            .cloned()
                            .collect();
                        if action == "remove" && !members_before.iter().any(|m| m == node) {
                            members_before.push(node.to_string());
                            members_before.sort();
                        }
                        o.begin_epoch(0, members_before, before, BTreeSet::new());
                    }
                    o.changes.push(MembershipChange {
                        start_ns: e.time,
                        end_ns: None,
                        action: action.to_string(),
                        node: node.to_string(),
                        members,
                        moves,
                        error: e.error.clone(),
                    });
                    open = Some((o.changes.len() - 1, after));
                }
                "stop-membership" => {
                    let Some((i, planned)) = open.take() else {
                        continue;
                    };
                    let after = placement(e.value.get("placement")).unwrap_or(planned);
                    let c = &mut o.changes[i];
                    c.end_ns = Some(e.time.max(c.start_ns));
                    let outcomes = moves(e.value.get("moves"), "done");
                    if !outcomes.is_empty() {
                        c.moves = outcomes;
                    } else {
                        for m in &mut c.moves {
                            m.outcome = "done".into();
                        }
                    }
                    if let Some(members) = names(e.value.get("members")) {
                        c.members = members;
                    }
                    if e.error.is_some() {
                        c.error.clone_from(&e.error);
                    }
                    let unconfirmed = c
                        .moves
                        .iter()
                        .filter(|m| m.outcome != "done")
                        .map(|m| m.shard)
                        .collect();
                    let members = c.members.clone();
                    let at = c.end_ns.expect("set above");
                    o.begin_epoch(at, members, after, unconfirmed);
                }
                _ => {}
            }
        }
        if let Some(last) = o.epochs.last_mut() {
            last.end_ns = end_ns.max(last.start_ns);
        }
        o
    }

    fn begin_epoch(
        &mut self,
        at_ns: u64,
        members: Vec<String>,
        placement: Vec<Vec<String>>,
        unconfirmed: BTreeSet<u32>,
    ) {
        if let Some(last) = self.epochs.last_mut() {
            last.end_ns = at_ns.max(last.start_ns);
        }
        let start_ns = self.epochs.last().map_or(at_ns, |l| at_ns.max(l.end_ns));
        self.shards = self.shards.max(placement.len() as u32);
        self.epochs.push(PlacementEpoch {
            start_ns,
            end_ns: start_ns,
            members,
            placement,
            unconfirmed,
        });
    }

    /// Lines for the terminal summary: one per change.
    pub fn lines(&self) -> Vec<String> {
        self.changes.iter().map(MembershipChange::line).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op_span::tests::ev;
    use faultline_checker::history::EventType;
    use serde_json::json;

    fn nem(time_ms: u64, f: &str, value: Value) -> Event {
        let mut e = ev(time_ms, None, EventType::Info, f);
        e.value = value;
        e
    }

    fn initial() -> Event {
        nem(
            0,
            "placement",
            json!({"shards": 3, "replicas": 2, "members": ["n1","n2","n3"],
                   "placement": [["n1","n2"],["n2","n3"],["n3","n1"]]}),
        )
    }

    fn start_add(time_ms: u64) -> Event {
        nem(
            time_ms,
            "start-membership",
            json!({"action":"add","node":"n4","members":["n1","n2","n3","n4"],
                   "placement": [["n1","n2"],["n4","n3"],["n3","n4"]],
                   "moves": [{"shard":1,"before":["n2","n3"],"after":["n4","n3"]},
                             {"shard":2,"before":["n3","n1"],"after":["n3","n4"]}],
                   "mechanism":"admin"}),
        )
    }

    #[test]
    fn epochs_change_when_a_change_ends_and_carry_its_outcomes() {
        let stop = nem(
            3000,
            "stop-membership",
            json!({"action":"add","node":"n4","members":["n1","n2","n3","n4"],
                   "placement": [["n1","n2"],["n4","n3"],["n3","n4"]],
                   "moves": [{"shard":1,"before":["n2","n3"],"after":["n4","n3"],"outcome":"done"},
                             {"shard":2,"before":["n3","n1"],"after":["n3","n4"],"outcome":"timeout","error":"no leader"}]}),
        );
        let h = vec![
            initial(),
            ev(100, Some(1), EventType::Invoke, "read"),
            start_add(1000),
            stop,
        ];
        let o = ShardOwnership::of_history(&h, 9_000_000_000);
        assert_eq!(o.shards, 3);
        assert_eq!(o.epochs.len(), 2);
        assert_eq!(
            (o.epochs[0].start_ns, o.epochs[0].end_ns),
            (0, 3_000_000_000)
        );
        assert_eq!(o.epochs[0].placement[1], ["n2", "n3"]);
        assert_eq!(
            (o.epochs[1].start_ns, o.epochs[1].end_ns),
            (3_000_000_000, 9_000_000_000)
        );
        assert_eq!(o.epochs[1].placement[1], ["n4", "n3"]);
        assert_eq!(o.epochs[1].unconfirmed, BTreeSet::from([2]));
        assert_eq!(o.changes.len(), 1);
        let c = &o.changes[0];
        assert_eq!(c.done(), 1);
        assert!(!c.completed(), "one move timed out");
        assert_eq!(c.moves[1].error.as_deref(), Some("no leader"));
        let line = c.line();
        assert!(line.contains("1.0s–3.0s +n4"), "{line}");
        assert!(line.contains("s1 n2,n3 → n4,n3 done"), "{line}");
        assert!(line.contains("s2 n3,n1 → n3,n4 timeout"), "{line}");
    }

    #[test]
    fn a_change_never_stopped_stays_open_and_unfinished() {
        let h = vec![initial(), start_add(1000)];
        let o = ShardOwnership::of_history(&h, 5_000_000_000);
        assert_eq!(o.epochs.len(), 1, "the placement never changed");
        assert_eq!(o.epochs[0].end_ns, 5_000_000_000);
        assert_eq!(o.changes[0].end_ns, None);
        assert!(o.changes[0].moves.iter().all(|m| m.outcome == "unfinished"));
        assert!(o.changes[0].line().contains("never ended"));
    }

    #[test]
    fn without_an_initial_placement_the_first_epoch_undoes_the_first_change() {
        let stop = nem(2000, "stop-membership", json!({}));
        let o = ShardOwnership::of_history(&[start_add(1000), stop], 4_000_000_000);
        assert_eq!(o.epochs.len(), 2);
        assert_eq!(o.epochs[0].members, ["n1", "n2", "n3"]);
        assert_eq!(
            o.epochs[0].placement,
            [vec!["n1", "n2"], vec!["n2", "n3"], vec!["n3", "n1"]]
        );
        assert!(
            o.changes[0].completed(),
            "a bare stop means every move done"
        );
        assert!(o.epochs[1].unconfirmed.is_empty());
    }

    #[test]
    fn malformed_values_are_skipped_and_unsharded_runs_are_empty() {
        let h = vec![
            nem(0, "placement", json!({"placement": "n1"})),
            nem(1, "start-membership", json!({"action": 3})),
            nem(2, "stop-membership", json!(null)),
            nem(3, "start-kill", json!({"nodes": ["n1"]})),
        ];
        let o = ShardOwnership::of_history(&h, 10);
        assert!(o.is_empty(), "{o:?}");
        assert!(o.lines().is_empty());
    }
}

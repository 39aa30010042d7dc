//! The membership nemesis's hands: carries out one ring membership change
//! ([`ring_plan::Step`]) on a running sharded cluster through the nodes'
//! admin operations (docs/protocol.md).
//!
//! Per moved shard, concurrently: `join-group` on every replica of the new
//! set (idempotent, so a node already in the group just says ok), then
//! `change-membership` with the whole new voter set at the group's leader
//! (found with `groups`; `not-leader` and `in-progress` are retried with
//! back-off), then `groups` is polled until the leader reports the group
//! settled on the new voters; a removed replica is then told to
//! `leave-group` (best effort). Then every node gets `set-members`.
//!
//! Guarantees: every shard's outcome is one of `done`, `timeout` (no
//! settled configuration within the change's deadline), `abandoned` (the
//! run ended: the deadline was cut to a short grace), or `failed` (the
//! node refused for good: `unsupported`, or `bad-request` three times, or
//! `bad-request` to `join-group`); none is an error
//! of the harness. A change outlives its deadline by at most the admin
//! requests in flight when it passes (each bounded to 1 s) and the final
//! `set-members` round. Requests are absolute (whole voter sets), so resending
//! after a lost reply, or a later change of a shard whose move timed out,
//! is safe.

use super::ring_plan::{names, Step};
use crate::cluster::admin::{self, AdminError};
use crate::cluster::groups::{self, GroupInfo};
use crate::cluster::NodeInfo;
use crate::run::probe::futures_join_all;
use faultline_nodes::client::Credentials;
use faultline_nodes::protocol::{ErrorCode, Op};
use faultline_nodes::ring::ShardMove;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long one change may take before its unfinished moves time out.
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// Once the run ends, how long an unfinished change still gets.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// One admin request's timeout.
const ADMIN_TIMEOUT: Duration = Duration::from_millis(1000);
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(1000);
/// `bad-request` answers to change-membership before the move counts as failed.
const BAD_REQUEST_TRIES: u32 = 3;

/// What happened to one shard's move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoveOutcome {
    pub shard: u32,
    /// `done`, `timeout`, `abandoned` or `failed`.
    pub outcome: &'static str,
    /// Why not done; for done moves, notes (a `leave-group` that failed).
    pub error: Option<String>,
}

/// What a whole change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeReport {
    pub moves: Vec<MoveOutcome>,
    /// Nodes whose `set-members` failed, with why.
    pub set_members_errors: Vec<String>,
}

impl ChangeReport {
    /// One line naming what did not go through, if anything.
    pub fn error(&self) -> Option<String> {
        let mut parts: Vec<String> = self
            .moves
            .iter()
            .filter(|m| m.outcome != "done")
            .map(|m| {
                format!(
                    "s{} {}: {}",
                    m.shard,
                    m.outcome,
                    m.error.as_deref().unwrap_or("?")
                )
            })
            .collect();
        parts.extend(
            self.set_members_errors
                .iter()
                .map(|e| format!("set-members: {e}")),
        );
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// The `stop-membership` value: the step's value with each move's outcome.
    pub fn stop_value(&self, step: &Step) -> Value {
        let mut v = super::ring_plan::step_value(step);
        v["moves"] = step
            .moves
            .iter()
            .map(|m| {
                let o = self.moves.iter().find(|o| o.shard == m.shard.0);
                let mut mv = json!({
                    "shard": m.shard.0,
                    "before": names(&m.before),
                    "after": names(&m.after),
                    "outcome": o.map_or("unfinished", |o| o.outcome),
                });
                if let Some(e) = o.and_then(|o| o.error.as_ref()) {
                    mv["error"] = json!(e);
                }
                mv
            })
            .collect();
        if !self.set_members_errors.is_empty() {
            v["set_members_errors"] = json!(self.set_members_errors);
        }
        v
    }
}

/// A change's deadline, cut short to a grace once the run stops.
struct Deadline {
    at: Instant,
    stop: watch::Receiver<bool>,
    grace: Duration,
    cut: bool,
}

impl Deadline {
    /// None while time is left; else the outcome to record.
    fn expired(&mut self) -> Option<&'static str> {
        if !self.cut && *self.stop.borrow() {
            self.cut = true;
            self.at = self.at.min(Instant::now() + self.grace);
        }
        if Instant::now() < self.at {
            None
        } else if self.cut {
            Some("abandoned")
        } else {
            Some("timeout")
        }
    }
}

/// The cluster as the driver reaches it, and the change's time limits.
#[derive(Clone, Debug)]
pub struct Admin {
    pub nodes: Vec<NodeInfo>,
    pub bind_ip: Option<IpAddr>,
    /// Presented on every admin connection (`faultline test --auth`,
    /// `--tls`).
    pub credentials: Credentials,
    /// How long one change may take ([`CHANGE_TIMEOUT`]).
    pub change_timeout: Duration,
    /// How long a change still gets once the run stops ([`STOP_GRACE`]).
    pub stop_grace: Duration,
}

impl Admin {
    /// The cluster's nodes with the default time limits.
    pub fn new(nodes: Vec<NodeInfo>, bind_ip: Option<IpAddr>) -> Admin {
        Admin {
            nodes,
            bind_ip,
            credentials: Credentials::none(),
            change_timeout: CHANGE_TIMEOUT,
            stop_grace: STOP_GRACE,
        }
    }

    fn node(&self, id: u64) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| u64::from(n.id.0) == id)
    }

    async fn call(&self, id: u64, op: Op) -> Result<(), AdminError> {
        let Some(n) = self.node(id) else {
            return Err(AdminError::NoAnswer {
                addr: ([0, 0, 0, 0], 0).into(),
                op: op.name(),
                reason: format!("no node n{id} in the cluster"),
            });
        };
        admin::call(
            n.client_addr,
            self.bind_ip,
            &self.credentials,
            op,
            ADMIN_TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    /// The leader's view of `group` (highest term among nodes that say
    /// they lead it), and its node id.
    async fn leader_of(&self, group: u64) -> Option<(u64, GroupInfo)> {
        let asks = self.nodes.iter().map(|n| {
            let (id, addr, bind) = (u64::from(n.id.0), n.client_addr, self.bind_ip);
            let credentials = self.credentials.clone();
            async move {
                let reply = groups::groups(addr, bind, &credentials, ADMIN_TIMEOUT).await;
                (id, reply)
            }
        });
        futures_join_all(asks)
            .await
            .into_iter()
            .filter_map(|(id, r)| Some((id, r.ok()?.group(group)?.clone())))
            .filter(|(_, g)| g.is_leader())
            .max_by_key(|(_, g)| g.term)
    }
}

/// Carries out `step` on the cluster; see the module docs.
pub async fn execute(admin: &Arc<Admin>, step: &Step, stop: watch::Receiver<bool>) -> ChangeReport {
    let at = Instant::now() + admin.change_timeout;
    let moves = step.moves.iter().map(|m| {
        let admin = Arc::clone(admin);
        let m = m.clone();
        let deadline = Deadline {
            at,
            stop: stop.clone(),
            grace: admin.stop_grace,
            cut: false,
        };
        async move { move_shard(&admin, &m, deadline).await }
    });
    let moves = futures_join_all(moves).await;
    let set_members_errors = set_members_everywhere(admin, &step.members).await;
    ChangeReport {
        moves,
        set_members_errors,
    }
}

/// `set-members` on every node, each retried a few times (a node
/// restarting right now); returns the nodes that still refused, with why.
pub async fn set_members_everywhere(admin: &Arc<Admin>, members: &[u64]) -> Vec<String> {
    let sets = admin.nodes.iter().map(|n| {
        let admin = Arc::clone(admin);
        let id = u64::from(n.id.0);
        let members = members.to_vec();
        async move {
            let mut last = None;
            for attempt in 0..10u32 {
                let set = Op::SetMembers {
                    members: members.clone(),
                };
                match admin.call(id, set).await {
                    Ok(_) => return None,
                    Err(e) => last = Some(format!("n{id}: {e}")),
                }
                tokio::time::sleep(MIN_BACKOFF * (attempt + 1)).await;
            }
            last
        }
    });
    futures_join_all(sets).await.into_iter().flatten().collect()
}

fn ids(nodes: &[faultline_nodes::consensus::NodeId]) -> Vec<u64> {
    let mut v: Vec<u64> = nodes.iter().map(|n| n.0).collect();
    v.sort_unstable();
    v
}

/// Moves one shard; see the module docs.
async fn move_shard(admin: &Admin, m: &ShardMove, mut deadline: Deadline) -> MoveOutcome {
    let shard = m.shard.0;
    let group = u64::from(shard);
    let target = ids(&m.after);
    let removed = ids(&m.removed());
    let give_up = |outcome, error: String| MoveOutcome {
        shard,
        outcome,
        error: Some(error),
    };
    // 1. Every replica of the new set hosts the group.
    for &node in &target {
        let mut backoff = MIN_BACKOFF;
        loop {
            let join = Op::JoinGroup { group, term: None };
            match admin.call(node, join).await {
                Ok(()) => break,
                Err(e @ AdminError::Refused { .. })
                    if matches!(
                        e.code(),
                        Some(ErrorCode::BadRequest | ErrorCode::Unsupported)
                    ) =>
                {
                    return give_up("failed", format!("join-group: {e}"));
                }
                Err(e) => {
                    if let Some(o) = deadline.expired() {
                        return give_up(o, format!("join-group: {e}"));
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
    // 2. The leader moves the group; 3. until it reports the new voters.
    let mut backoff = MIN_BACKOFF;
    let mut last = String::from("no leader found");
    let mut bad_requests = 0;
    loop {
        if let Some(o) = deadline.expired() {
            return give_up(o, last);
        }
        let Some((leader, view)) = admin.leader_of(group).await else {
            last = "no leader found".into();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        };
        if view.settled_on(&target) {
            break;
        }
        if view.pending || !view.outgoing.is_empty() {
            last = format!("n{leader} reports the change under way");
            tokio::time::sleep(MIN_BACKOFF * 2).await;
            continue;
        }
        let change = Op::ChangeMembership {
            group,
            voters: target.clone(),
        };
        match admin.call(leader, change).await {
            Ok(_) => {
                last = format!("n{leader} accepted; not settled yet");
                backoff = MIN_BACKOFF;
                tokio::time::sleep(MIN_BACKOFF * 2).await;
                continue;
            }
            Err(e) => {
                // bad-request may be a leader that just gave the group up:
                // a few more tries before it counts as a refusal.
                if e.code() == Some(ErrorCode::BadRequest) {
                    bad_requests += 1;
                }
                if e.code() == Some(ErrorCode::Unsupported) || bad_requests >= BAD_REQUEST_TRIES {
                    return give_up("failed", format!("change-membership: {e}"));
                }
                last = format!("change-membership: {e}");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    // 4. Removed replicas drop the group (they may not have heard the new
    // configuration commit); a refusal is only a note.
    let mut notes = Vec::new();
    for node in removed {
        if let Err(e) = admin.call(node, Op::LeaveGroup { group }).await {
            notes.push(format!("leave-group n{node}: {e}"));
        }
    }
    MoveOutcome {
        shard,
        outcome: "done",
        error: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    //! The driver against fake nodes that speak the admin protocol over
    //! TCP and keep one shared, scripted view of every group.
    use super::*;
    use crate::cluster::NodeId;
    use crate::nemesis::ring_plan::{Action, RingPlan};
    use std::collections::{BTreeMap, BTreeSet};
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    #[derive(Default)]
    struct Group {
        voters: Vec<u64>,
        leader: u64,
        term: u64,
        /// A change in flight: the target and when it settles.
        pending: Option<(Vec<u64>, Instant)>,
    }

    /// How the fake cluster misbehaves.
    #[derive(Clone, Copy, Default)]
    struct Script {
        /// Groups whose cores cannot change membership.
        unsupported: Option<u64>,
        /// Answer the first change-membership of every group `in-progress`.
        busy_first: bool,
        /// Accept changes but never settle them.
        never_settle: bool,
    }

    #[derive(Default)]
    struct State {
        groups: BTreeMap<u64, Group>,
        hosted: BTreeSet<(u64, u64)>,
        members: BTreeMap<u64, Vec<u64>>,
        refused_once: BTreeSet<u64>,
        addrs: BTreeMap<u64, SocketAddr>,
        script: Script,
        /// Change requests that reached a non-leader.
        misdirected: usize,
    }

    impl State {
        fn settle(&mut self) {
            for g in self.groups.values_mut() {
                if let Some((target, at)) = &g.pending {
                    if Instant::now() >= *at && !self.script.never_settle {
                        g.voters = target.clone();
                        g.pending = None;
                        if !g.voters.contains(&g.leader) {
                            g.leader = g.voters[0];
                            g.term += 1;
                        }
                    }
                }
            }
        }

        fn answer(&mut self, node: u64, req: &Value) -> Value {
            self.settle();
            let group = req["group"].as_u64().unwrap_or(0);
            match req["op"].as_str().unwrap_or("") {
                "groups" => {
                    let groups: Vec<Value> = self
                        .groups
                        .iter()
                        .filter(|(g, _)| self.hosted.contains(&(node, **g)))
                        .map(|(g, s)| {
                            json!({"group": g, "role": if s.leader == node {"leader"} else {"follower"},
                               "term": s.term, "leader": s.leader, "voters": s.voters,
                               "outgoing": if s.pending.is_some() { json!(s.voters) } else { json!([]) },
                               "pending": s.pending.is_some()})
                        })
                        .collect();
                    json!({"ok": true, "groups": groups, "members": self.members.get(&node)})
                }
                "join-group" => {
                    self.hosted.insert((node, group));
                    json!({"ok": true})
                }
                "leave-group" => {
                    self.hosted.remove(&(node, group));
                    json!({"ok": true})
                }
                "set-members" => {
                    let m = req["members"]
                        .as_array()
                        .expect("members")
                        .iter()
                        .map(|v| v.as_u64().expect("id"))
                        .collect();
                    self.members.insert(node, m);
                    json!({"ok": true})
                }
                "change-membership" => {
                    let script = self.script;
                    let leader = self.groups[&group].leader;
                    if leader != node {
                        self.misdirected += 1;
                        let l = self.addrs[&leader].to_string();
                        return json!({"ok": false, "error": "not-leader", "leader": l});
                    }
                    if script.unsupported == Some(group) {
                        return json!({"ok": false, "error": "unsupported"});
                    }
                    if script.busy_first && self.refused_once.insert(group) {
                        return json!({"ok": false, "error": "in-progress"});
                    }
                    let g = self.groups.get_mut(&group).expect("group");
                    if g.pending.is_some() {
                        return json!({"ok": false, "error": "in-progress"});
                    }
                    let target: Vec<u64> = req["voters"]
                        .as_array()
                        .expect("voters")
                        .iter()
                        .map(|v| v.as_u64().expect("id"))
                        .collect();
                    g.pending = Some((target, Instant::now() + Duration::from_millis(150)));
                    json!({"ok": true})
                }
                other => json!({"ok": false, "error": format!("bad-request {other}")}),
            }
        }
    }

    /// Fake nodes 1..=n hosting the placement of `plan`; the leader of each
    /// group is its last replica, so the first guess is often wrong.
    async fn fake_cluster(plan: &RingPlan, n: u32, script: Script) -> (Admin, Arc<Mutex<State>>) {
        let state = Arc::new(Mutex::new(State {
            script,
            ..State::default()
        }));
        let placement = plan.placement();
        {
            let mut s = state.lock().expect("state");
            for shard in 0..placement.shard_count() {
                let mut voters = ids(placement.replicas(faultline_nodes::ring::ShardId(shard)));
                let leader = *voters.last().expect("replicas");
                voters.sort_unstable();
                for &v in &voters {
                    s.hosted.insert((v, u64::from(shard)));
                }
                s.groups.insert(
                    u64::from(shard),
                    Group {
                        voters,
                        leader,
                        term: 1,
                        pending: None,
                    },
                );
            }
        }
        let mut nodes = Vec::new();
        for id in 1..=n {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            state
                .lock()
                .expect("state")
                .addrs
                .insert(u64::from(id), addr);
            nodes.push(NodeInfo::one_port(NodeId(id), addr));
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                while let Ok((sock, _)) = listener.accept().await {
                    let state = Arc::clone(&state);
                    tokio::spawn(async move {
                        let (r, mut w) = sock.into_split();
                        let mut lines = BufReader::new(r).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            let req: Value = serde_json::from_str(&line).expect("JSON");
                            let mut rep = state.lock().expect("state").answer(u64::from(id), &req);
                            rep["id"] = req["id"].clone();
                            let _ = w.write_all(format!("{rep}\n").as_bytes()).await;
                        }
                    });
                }
            });
        }
        let admin = Admin {
            change_timeout: Duration::from_secs(10),
            stop_grace: Duration::from_millis(300),
            ..Admin::new(nodes, None)
        };
        (admin, state)
    }

    fn plan() -> RingPlan {
        RingPlan::new(128, 8, 3, 5, &[1, 2, 3, 4]).expect("plan")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_add_moves_every_shard_at_its_leader_and_updates_every_ring_view() {
        let plan = plan();
        let (admin, state) = fake_cluster(
            &plan,
            5,
            Script {
                busy_first: true,
                ..Script::default()
            },
        )
        .await;
        let step = plan.step(Action::Add, 5);
        assert!(!step.moves.is_empty());
        let (_tx, stop) = watch::channel(false);
        let report = execute(&Arc::new(admin), &step, stop).await;
        assert_eq!(report.error(), None, "{report:?}");
        assert_eq!(report.moves.len(), step.moves.len());
        let s = state.lock().expect("state");
        for m in &step.moves {
            let g = u64::from(m.shard.0);
            assert_eq!(s.groups[&g].voters, ids(&m.after), "shard {}", m.shard);
            assert!(s.hosted.contains(&(5, g)), "n5 joined s{g}");
            for r in m.removed() {
                assert!(!s.hosted.contains(&(r.0, g)), "n{} left s{g}", r.0);
            }
        }
        for n in 1..=5 {
            assert_eq!(s.members[&n], [1, 2, 3, 4, 5], "n{n}'s ring view");
        }
        // Unmoved shards were left alone.
        let moved: BTreeSet<u32> = step.moves.iter().map(|m| m.shard.0).collect();
        for shard in (0..8).filter(|s| !moved.contains(s)) {
            assert_eq!(s.groups[&u64::from(shard)].term, 1);
        }
        assert_eq!(s.misdirected, 0, "change-membership goes to the leader");
        let v = report.stop_value(&step);
        assert!(v["moves"]
            .as_array()
            .expect("moves")
            .iter()
            .all(|m| m["outcome"] == "done"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals_fail_a_move_and_a_change_that_never_settles_is_abandoned_at_stop() {
        let plan = plan();
        let step = plan.step(Action::Remove, 2);
        let unsupported = u64::from(step.moves[0].shard.0);
        let (admin, _) = fake_cluster(
            &plan,
            5,
            Script {
                unsupported: Some(unsupported),
                never_settle: true,
                ..Script::default()
            },
        )
        .await;
        let (tx, stop) = watch::channel(false);
        let admin = Arc::new(admin);
        tx.send(true).expect("stop");
        let started = Instant::now();
        let report = execute(&admin, &step, stop).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "cut to the grace"
        );
        let first = &report.moves[0];
        assert_eq!(first.outcome, "failed", "{first:?}");
        assert!(first.error.as_deref().unwrap_or("").contains("unsupported"));
        for m in &report.moves[1..] {
            assert_eq!(m.outcome, "abandoned", "{m:?}");
        }
        let e = report.error().expect("an incomplete change says so");
        assert!(e.contains(&format!("s{unsupported} failed")), "{e}");
        let v = report.stop_value(&step);
        assert_eq!(v["moves"][0]["outcome"], "failed");
        assert_eq!(v["action"], "remove");
        assert_eq!(v["node"], "n2");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_node_is_a_set_members_error_not_a_failure() {
        let plan = plan();
        let (mut admin, _) = fake_cluster(&plan, 5, Script::default()).await;
        // n5 is not listening anywhere.
        let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        admin.nodes[4].client_addr = dead.local_addr().expect("addr");
        drop(dead);
        let step = plan.step(Action::Remove, 1);
        let (_tx, stop) = watch::channel(false);
        let report = execute(&Arc::new(admin), &step, stop).await;
        assert!(
            report.moves.iter().all(|m| m.outcome == "done"),
            "{report:?}"
        );
        assert_eq!(report.set_members_errors.len(), 1, "{report:?}");
        assert!(report.set_members_errors[0].starts_with("n5:"));
    }
}

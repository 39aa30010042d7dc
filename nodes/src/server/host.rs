//! [`Host`]: every group a node hosts, and the requests about the node
//! itself (routing, `groups`, `join-group`, `leave-group`,
//! `change-membership`, `set-members`).
//!
//! Owned by the core thread, like the groups. Guarantees:
//! - A keyed request goes to the group of its shard ([`route`]); a node that
//!   does not host that shard answers `moved` (definite: nothing happened).
//! - The set of hosted groups survives restarts exactly: the initial
//!   placement's groups for this node, minus those recorded as left in
//!   `groups.json`, plus those recorded as joined. `groups.json` is written
//!   (atomically, fsynced) before a join is acknowledged and before a
//!   retiring group's storage is deleted, so a crash never resurrects a
//!   group with a stale configuration.
//! - A group whose last applied committed configuration leaves this node
//!   out is retired after a grace period (so a removed leader can still tell
//!   the others that the change committed): its core is stopped, waiting
//!   requests are answered `shutting-down`, it is recorded as left and its
//!   storage is deleted. It records the term it saw and its (term,
//!   commit index) there: a later `join-group` starts the joining core at
//!   that term and gives it that join floor (`CoreConfig::join_floor`), at
//!   every start, so the wiped node id never counts itself in an old
//!   configuration that meant its previous incarnation. A `leave-group`
//!   before the node applied its removal records what it knew then, which
//!   cannot cover a removal it never saw (like a lost disk, that is the
//!   operator's risk).
//! - Every bad admin request gets `bad-request` with a reason; none panics.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::clock::NodeClock;
use super::config::{check_members, NodeConfig};
use super::group::{ClientOp, Group};
use super::groups_file::GroupsFile;
use super::removal::{retire_grace_ms, Due, Retirement};
use super::shard_map::{route, Route, ShardMap};
use super::NodeError;
use crate::consensus::{
    Consensus, GroupId, LogIndex, MembershipError, Message, NodeId, Recovered, Term,
};
use crate::protocol::{ErrorCode, Op, Reply};
use crate::storage::syncer::Waker;
use crate::storage::{GroupStorage, StorageError};
use crate::transport::Transport;

/// Builds a group's core: (group, seed voters, join floor, recovered
/// state). Empty voters: a joining core; the join floor
/// (`CoreConfig::join_floor`) is the one groups.json records for a group
/// this node left before, at every start of the group.
pub type CoreFactory = Box<
    dyn Fn(
            GroupId,
            Vec<NodeId>,
            Option<(Term, LogIndex)>,
            Recovered,
        ) -> Result<Box<dyn Consensus>, String>
        + Send,
>;

/// The groups of one node and its ring view.
pub struct Host {
    cfg: NodeConfig,
    clock: NodeClock,
    groups: BTreeMap<GroupId, Group>,
    /// Sharded nodes only: the current ring view.
    shard_map: Option<ShardMap>,
    file: GroupsFile,
    make_core: CoreFactory,
    /// Since when each group that has left was seen so (the grace rule
    /// shared with the simulator, server/removal.rs).
    retirements: BTreeMap<GroupId, Retirement<Instant>>,
    retire_grace: Duration,
    /// A storage failure met while answering an admin request: the next
    /// [`Host::drive`] returns it and the node stops.
    fatal: Option<StorageError>,
    /// Given to every group's WAL sync thread: wakes the core thread.
    waker: Option<Waker>,
}

impl Host {
    /// Open every group this node hosts (see the module docs).
    pub fn open(
        cfg: NodeConfig,
        clock: NodeClock,
        make_core: CoreFactory,
    ) -> Result<Host, NodeError> {
        let file = GroupsFile::load(&cfg.data_dir).map_err(NodeError::Config)?;
        let (initial, shard_map) = match &cfg.sharding {
            None => {
                let all: Vec<NodeId> = cfg.peers.keys().copied().collect();
                let initial = cfg.groups.iter().map(|g| (*g, all.clone())).collect();
                (initial, None)
            }
            Some(sh) => {
                let first = ShardMap::new(sh.shards, sh.replicas, sh.vnodes, &sh.members)
                    .map_err(NodeError::Config)?;
                let initial = first.groups_of(cfg.id);
                let view = match &file.members {
                    Some(m) => {
                        check_members("groups.json members", m, &cfg.peers).map_err(|e| {
                            NodeError::Config(format!(
                                "{}: {e}",
                                GroupsFile::path(&cfg.data_dir).display()
                            ))
                        })?;
                        first.with_members(m).map_err(NodeError::Config)?
                    }
                    None => first,
                };
                (initial, Some(view))
            }
        };
        let mut host = Host {
            retire_grace: Duration::from_millis(retire_grace_ms(cfg.election_timeout_ms)),
            cfg,
            clock,
            groups: BTreeMap::new(),
            shard_map,
            file,
            make_core,
            retirements: BTreeMap::new(),
            fatal: None,
            waker: None,
        };
        for (g, voters) in host.file.hosted(&initial) {
            host.check_group_id(g).map_err(|e| {
                NodeError::Config(format!(
                    "{} records a joined group that cannot be hosted: {e}",
                    GroupsFile::path(&host.cfg.data_dir).display()
                ))
            })?;
            let group = host.open_group(g, voters)?;
            host.groups.insert(g, group);
        }
        tracing::info!(
            node = host.cfg.id.0,
            groups = ?host.groups.keys().map(|g| g.0).collect::<Vec<_>>(),
            "hosting groups"
        );
        Ok(host)
    }

    fn open_group(&self, g: GroupId, voters: Vec<NodeId>) -> Result<Group, NodeError> {
        let floor = self.file.join_floor(g);
        let make = |g: GroupId, rec: Recovered| (self.make_core)(g, voters.clone(), floor, rec);
        let mut group = Group::open(&self.cfg, g, self.clock.clone(), &make)
            .map_err(|reason| NodeError::Open { group: g, reason })?;
        if let Some(w) = &self.waker {
            group.set_waker(w.clone());
        }
        Ok(group)
    }

    /// What every group's WAL sync thread calls after an fsync, so that
    /// the core thread drives the group again (now and for groups opened
    /// later).
    pub fn set_waker(&mut self, waker: Waker) {
        for g in self.groups.values_mut() {
            g.set_waker(waker.clone());
        }
        self.waker = Some(waker);
    }

    /// The hosted groups, in order.
    pub fn group_ids(&self) -> Vec<GroupId> {
        self.groups.keys().copied().collect()
    }

    pub fn shard_map(&self) -> Option<&ShardMap> {
        self.shard_map.as_ref()
    }

    fn first_group(&self) -> Option<GroupId> {
        self.groups.keys().next().copied()
    }

    fn addr_of(&self, node: Option<NodeId>) -> Option<String> {
        node.and_then(|n| self.cfg.peers.get(&n))
            .map(|a| a.to_string())
    }

    /// A client or admin request. `group` overrides routing (tests, tools).
    pub fn handle(&mut self, group: Option<GroupId>, op: ClientOp, now: Instant) {
        let target = match group {
            Some(g) => Route::Group(g),
            None => route(
                &op.op,
                self.shard_map.as_ref(),
                self.cfg.id,
                self.first_group(),
                |g| self.groups.contains_key(&g),
            ),
        };
        match target {
            Route::Group(g) => match self.groups.get_mut(&g) {
                Some(group) => group.handle(op, now),
                None => {
                    let _ = op.reply.send(Reply::bad_request(
                        op.id,
                        format!("this node hosts no group {}", g.0),
                    ));
                }
            },
            Route::Moved { shard, to } => {
                let _ = op
                    .reply
                    .send(Reply::moved(op.id, shard.0, self.addr_of(to)));
            }
            Route::CrossShard(reason) => {
                let _ = op.reply.send(Reply::bad_request(op.id, reason));
            }
            Route::Node => self.node_op(op, now),
        }
    }

    /// Ops about the node, answered here or handed to a group (which
    /// answers them).
    fn node_op(&mut self, op: ClientOp, now: Instant) {
        let ClientOp { id, op, reply } = op;
        let answer = match op {
            Op::Status => self.status_reply(id),
            Op::TransferLeader { to, group } => {
                // A group op; `group` picks which (default: the first).
                match group.map(GroupId).or(self.first_group()) {
                    Some(g) if self.groups.contains_key(&g) => {
                        let target = self.groups.get_mut(&g).expect("checked above");
                        let op = Op::TransferLeader { to, group };
                        target.handle(ClientOp { id, op, reply }, now);
                        return;
                    }
                    Some(g) => Reply::bad_request(id, format!("this node hosts no group {}", g.0)),
                    None => Reply::bad_request(id, "this node hosts no group"),
                }
            }
            Op::Groups => self.groups_reply(id),
            Op::JoinGroup { group, term } => match self.join_group(GroupId(group), term) {
                Ok(()) => Reply::ok(id),
                Err(reason) => Reply::bad_request(id, reason),
            },
            Op::LeaveGroup { group } => match self.leave_group(GroupId(group)) {
                Ok(()) => Reply::ok(id),
                Err(reason) => Reply::bad_request(id, reason),
            },
            Op::ChangeMembership { group, voters } => {
                self.change_membership(id, GroupId(group), voters)
            }
            Op::SetMembers { members } => match self.set_members(members) {
                Ok(()) => Reply::ok(id),
                Err(reason) => Reply::bad_request(id, reason),
            },
            // Unsharded, with its only group left: nowhere to run it.
            other if other.routing_key().is_some() => {
                Reply::bad_request(id, "this node hosts no group")
            }
            other => Reply::bad_request(
                id,
                format!("`{}` is not an operation a node runs", other.name()),
            ),
        };
        let _ = reply.send(answer);
    }

    fn status_reply(&self, id: Option<u64>) -> Reply {
        let mut r = match self.first_group().and_then(|g| self.groups.get(&g)) {
            Some(g) => g.status_reply(id),
            None => Reply::ok(id)
                .with("node", self.cfg.id.0)
                .with("group", Value::Null)
                .with("role", Value::Null)
                .with("leader", Value::Null)
                .with("leader_addr", Value::Null)
                .with("consensus", self.cfg.consensus.name()),
        };
        if let Some(m) = &self.shard_map {
            r = r.with("shards", m.shards()).with("replicas", m.replicas());
        }
        r
    }

    fn groups_reply(&self, id: Option<u64>) -> Reply {
        let members: Vec<u64> = match &self.shard_map {
            Some(m) => m.members().iter().map(|n| n.0).collect(),
            None => self.cfg.peers.keys().map(|n| n.0).collect(),
        };
        Reply::ok(id)
            .with("node", self.cfg.id.0)
            .with("shards", json!(self.shard_map.as_ref().map(|m| m.shards())))
            .with(
                "replicas",
                json!(self.shard_map.as_ref().map(|m| m.replicas())),
            )
            .with("members", json!(members))
            .with(
                "groups",
                Value::Array(self.groups.values().map(Group::groups_entry).collect()),
            )
    }

    /// Whether `g` may be hosted at all by this node.
    fn check_group_id(&self, g: GroupId) -> Result<(), String> {
        match &self.shard_map {
            Some(m) if !m.has_group(g) => Err(format!(
                "group {} does not exist: this node has {} shards (groups 0..{})",
                g.0,
                m.shards(),
                m.shards()
            )),
            None if !self.cfg.groups.contains(&g) => Err(format!(
                "group {} does not exist: this unsharded node runs groups {:?}",
                g.0,
                self.cfg.groups.iter().map(|g| g.0).collect::<Vec<_>>()
            )),
            _ => Ok(()),
        }
    }

    fn join_group(&mut self, g: GroupId, term: Option<u64>) -> Result<(), String> {
        self.check_group_id(g)?;
        if self.groups.contains_key(&g) {
            return Ok(());
        }
        // Fresh: whatever an earlier membership left on disk is not ours,
        // but the terms it saw are a floor (never vote twice in a term).
        let dir = GroupStorage::group_dir(&self.cfg.data_dir, g);
        let mut floor = term.unwrap_or(0).max(self.file.term_floor(g));
        if dir.exists() {
            if let Ok((_, rec)) = GroupStorage::open(&self.cfg.data_dir, g, false) {
                floor = floor.max(rec.hard_state.term.0);
            }
        }
        remove_dir_if_present(&dir)?;
        if floor > 0 {
            let (mut storage, _) =
                GroupStorage::open(&self.cfg.data_dir, g, false).map_err(|e| e.to_string())?;
            let hs = crate::consensus::HardState {
                term: crate::consensus::Term(floor),
                vote: None,
                commit: crate::consensus::LogIndex(0),
            };
            storage
                .stage(None, Some(hs), &[])
                .and_then(|()| storage.sync())
                .map_err(|e| e.to_string())?;
        }
        let group = self.open_group(g, Vec::new()).map_err(|e| e.to_string())?;
        let mut file = self.file.clone();
        file.record_join(g);
        file.save(&self.cfg.data_dir)?;
        self.file = file;
        self.groups.insert(g, group);
        self.retirements.remove(&g);
        tracing::info!(group = %g, term_floor = floor, "joined a group (joining core, no voters yet)");
        Ok(())
    }

    fn leave_group(&mut self, g: GroupId) -> Result<(), String> {
        self.check_group_id(g)?;
        let Some(group) = self.groups.get(&g) else {
            return Ok(());
        };
        if group.is_leader() {
            return Err(format!(
                "this node leads group {}: change the group's membership first (its leader steps down once it is removed)",
                g.0
            ));
        }
        self.retire(g).map_err(|e| e.to_string())
    }

    fn change_membership(&mut self, id: Option<u64>, g: GroupId, voters: Vec<u64>) -> Reply {
        let Some(group) = self.groups.get_mut(&g) else {
            return Reply::bad_request(id, format!("this node hosts no group {}", g.0));
        };
        let mut voters: Vec<NodeId> = voters.into_iter().map(NodeId).collect();
        voters.sort();
        voters.dedup();
        if let Err(reason) = check_members("voters", &voters, &self.cfg.peers) {
            return Reply::bad_request(id, reason);
        }
        match group.change_membership(voters.clone()) {
            Err(e) => {
                tracing::error!(group = %g, error = %e, "snapshot before a membership change failed");
                self.fatal = Some(e);
                Reply::error(id, ErrorCode::ShuttingDown)
            }
            Ok(Ok(p)) => {
                tracing::info!(group = %g, voters = ?voters, index = p.index.0, "membership change started");
                Reply::ok(id)
                    .with("index", p.index.0)
                    .with("term", p.term.0)
            }
            Ok(Err(MembershipError::NotLeader(e))) => group.not_leader_reply(id, e),
            Ok(Err(MembershipError::InProgress)) => Reply::error(id, ErrorCode::InProgress),
            Ok(Err(MembershipError::Unsupported)) => Reply::error(id, ErrorCode::Unsupported),
            Ok(Err(MembershipError::Invalid(reason))) => Reply::bad_request(id, reason),
        }
    }

    fn set_members(&mut self, members: Vec<u64>) -> Result<(), String> {
        let Some(map) = &self.shard_map else {
            return Err("this node is not sharded (start it with --shards)".into());
        };
        let members: Vec<NodeId> = members.into_iter().map(NodeId).collect();
        check_members("members", &members, &self.cfg.peers)?;
        let new = map.with_members(&members)?;
        let mut file = self.file.clone();
        file.members = Some(new.members().to_vec());
        file.save(&self.cfg.data_dir)?;
        self.file = file;
        tracing::info!(members = ?new.members(), "ring view changed");
        self.shard_map = Some(new);
        Ok(())
    }

    /// Stop `g`, record it as left, delete its storage. A failure to record
    /// it is a storage failure (the node must stop rather than resurrect
    /// the group after a restart).
    fn retire(&mut self, g: GroupId) -> Result<(), StorageError> {
        let Some(mut group) = self.groups.remove(&g) else {
            return Ok(());
        };
        group.shut_down();
        // The join floor for a later join: once the removal is applied,
        // every log that reaches (term, commit) holds it.
        let status = group.core_status();
        drop(group);
        self.retirements.remove(&g);
        let mut file = self.file.clone();
        file.record_leave(g, status.term.0, status.commit_index.0);
        file.save(&self.cfg.data_dir)
            .map_err(StorageError::Contract)?;
        self.file = file;
        let dir = GroupStorage::group_dir(&self.cfg.data_dir, g);
        if let Err(e) = remove_dir_if_present(&dir) {
            // Recorded as left: the directory is ignored at start and
            // replaced by a later join.
            tracing::warn!(group = %g, error = %e, "could not delete a retired group's storage");
        }
        tracing::info!(group = %g, "retired: no longer a member of the group; storage deleted");
        Ok(())
    }

    /// A message from a peer; dropped for a group not hosted here.
    pub fn step(&mut self, msg: Message) {
        match self.groups.get_mut(&msg.group) {
            Some(group) => group.step(msg),
            None => {
                tracing::debug!(group = %msg.group, "message for a group this node does not host")
            }
        }
    }

    pub fn tick(&mut self, clock: &NodeClock) {
        for g in self.groups.values_mut() {
            g.tick(clock);
        }
    }

    /// Flush reads and handle every Ready of every group.
    pub fn drive(&mut self, transport: &Transport, clock: &NodeClock) -> Result<(), StorageError> {
        if let Some(e) = self.fatal.take() {
            return Err(e);
        }
        for g in self.groups.values_mut() {
            g.flush_reads();
            g.drive(transport, clock)?;
        }
        Ok(())
    }

    /// Timeouts, the lazy flusher, and retirements due.
    pub fn housekeeping(&mut self, now: Instant) -> Result<(), StorageError> {
        for g in self.groups.values_mut() {
            g.expire_requests(now);
            g.flush_lazily(now)?;
        }
        for g in self.retirements_due(now) {
            self.retire(g)?;
        }
        Ok(())
    }

    /// Groups removed for longer than the grace period whose own
    /// configuration still leaves this node out.
    fn retirements_due(&mut self, now: Instant) -> Vec<GroupId> {
        let mut due = Vec::new();
        for (g, group) in &self.groups {
            // The rules shared with the simulator (server/removal.rs).
            if !group.has_left() {
                self.retirements.remove(g);
                continue;
            }
            let retirement = self.retirements.entry(*g).or_default();
            if retirement.left(now, self.retire_grace) == Due::Now {
                due.push(*g);
            }
        }
        due
    }

    /// Answer everything still waiting (the node stops).
    pub fn shut_down(&mut self) {
        for g in self.groups.values_mut() {
            g.shut_down();
        }
    }

    #[cfg(test)]
    pub(crate) fn set_retire_grace(&mut self, grace: Duration) {
        self.retire_grace = grace;
    }
}

/// Remove a group's directory durably: a join that replaces it must not
/// find the old one back after a power loss.
fn remove_dir_if_present(dir: &std::path::Path) -> Result<(), String> {
    crate::storage::wal::remove_dir_durably(dir).map_err(|e| format!("removing: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{
        Entry, EntryKind, LogIndex, Membership, NotLeader, Proposal, Ready, Role, SnapshotError,
        SnapshotMeta, Status, StepError, Term, TransferError,
    };
    use crate::server::config::Sharding;
    use std::collections::VecDeque;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    /// What a fake core records and is told to answer.
    #[derive(Default)]
    struct Script {
        seed_voters: Vec<NodeId>,
        /// The join floor the core was built with.
        join_floor: Option<(Term, LogIndex)>,
        /// The term of the hard state the core was built from.
        recovered_term: u64,
        term: u64,
        membership: Membership,
        leader: Option<NodeId>,
        pending: bool,
        unsupported: bool,
        proposals: usize,
        next_index: u64,
        applied: u64,
        snapshot_index: u64,
        /// "snapshot@i" and "change:[..]" in the order they happened.
        calls: Vec<String>,
        readys: VecDeque<Ready>,
    }

    type Scripts = Arc<Mutex<BTreeMap<GroupId, Arc<Mutex<Script>>>>>;

    struct Fake {
        id: NodeId,
        group: GroupId,
        s: Arc<Mutex<Script>>,
    }

    impl Fake {
        fn s(&self) -> std::sync::MutexGuard<'_, Script> {
            self.s.lock().expect("script")
        }
    }

    impl Consensus for Fake {
        fn id(&self) -> NodeId {
            self.id
        }
        fn group(&self) -> GroupId {
            self.group
        }
        fn tick(&mut self) {}
        fn step(&mut self, _msg: Message) -> Result<(), StepError> {
            Ok(())
        }
        fn propose(&mut self, _command: Vec<u8>) -> Result<Proposal, NotLeader> {
            let mut s = self.s();
            s.proposals += 1;
            s.next_index += 1;
            Ok(Proposal {
                index: LogIndex(s.next_index),
                term: Term(1),
            })
        }
        fn read_index(&mut self, _ctx: u64) -> Result<(), NotLeader> {
            Ok(())
        }
        fn transfer_leader(&mut self, _to: NodeId) -> Result<(), TransferError> {
            Ok(())
        }
        fn change_membership(&mut self, voters: Vec<NodeId>) -> Result<Proposal, MembershipError> {
            let mut s = self.s();
            if s.unsupported {
                return Err(MembershipError::Unsupported);
            }
            s.calls.push(format!(
                "change:{:?}",
                voters.iter().map(|n| n.0).collect::<Vec<_>>()
            ));
            s.pending = true;
            Ok(Proposal {
                index: LogIndex(s.applied + 1),
                term: Term(1),
            })
        }
        fn snapshot_taken(
            &mut self,
            index: LogIndex,
            _data: Vec<u8>,
        ) -> Result<SnapshotMeta, SnapshotError> {
            let mut s = self.s();
            s.calls.push(format!("snapshot@{}", index.0));
            s.snapshot_index = index.0;
            Ok(SnapshotMeta {
                index,
                term: Term(1),
                voters: s.membership.voters.clone(),
                outgoing: Vec::new(),
            })
        }
        fn has_ready(&self) -> bool {
            !self.s().readys.is_empty()
        }
        fn ready(&mut self) -> Ready {
            let mut s = self.s();
            let rd = s.readys.pop_front().unwrap_or_default();
            if let Some(last) = rd.committed.last() {
                s.applied = last.index.0;
            }
            rd
        }
        fn persisted(&mut self, _persist_id: u64) {}
        fn status(&self) -> Status {
            let s = self.s();
            Status {
                id: self.id,
                group: self.group,
                role: if s.leader == Some(self.id) {
                    Role::Leader
                } else {
                    Role::Follower
                },
                term: Term(s.term),
                leader: s.leader,
                commit_index: LogIndex(s.applied),
                applied_index: LogIndex(s.applied),
                last_index: LogIndex(s.next_index.max(s.applied)),
                snapshot_index: LogIndex(s.snapshot_index),
                log_len: 0,
                membership: s.membership.clone(),
                membership_pending: s.pending,
            }
        }
    }

    fn peers(n: u64) -> BTreeMap<NodeId, SocketAddr> {
        (1..=n)
            .map(|i| {
                (
                    NodeId(i),
                    format!("127.0.0.{i}:{}", 7000 + i).parse().expect("addr"),
                )
            })
            .collect()
    }

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().copied().map(NodeId).collect()
    }

    fn config(me: u64, data_dir: &std::path::Path, sharding: Option<Sharding>) -> NodeConfig {
        let p = peers(4);
        let mut cfg = NodeConfig::new(NodeId(me), p[&NodeId(me)], p, data_dir.to_path_buf());
        cfg.sharding = sharding;
        cfg
    }

    fn sharding(shards: u32, replicas: usize, members: &[u64]) -> Option<Sharding> {
        Some(Sharding {
            shards,
            replicas,
            members: ids(members),
            vnodes: 32,
        })
    }

    /// A host whose cores are fakes (registered in the returned map; a
    /// fake is born a follower with its seed voters as its membership).
    fn open(cfg: &NodeConfig) -> Result<(Host, Scripts), NodeError> {
        let scripts: Scripts = Arc::default();
        let reg = scripts.clone();
        let me = cfg.id;
        let factory: CoreFactory =
            Box::new(move |g, voters: Vec<NodeId>, floor, rec: Recovered| {
                let s = Arc::new(Mutex::new(Script {
                    join_floor: floor,
                    recovered_term: rec.hard_state.term.0,
                    term: rec.hard_state.term.0,
                    membership: Membership::simple(voters.clone()),
                    seed_voters: voters,
                    ..Script::default()
                }));
                reg.lock().expect("registry").insert(g, s.clone());
                Ok(Box::new(Fake {
                    id: me,
                    group: g,
                    s,
                }) as Box<dyn Consensus>)
            });
        let host = Host::open(cfg.clone(), NodeClock::new(), factory)?;
        Ok((host, scripts))
    }

    fn script(scripts: &Scripts, g: u64) -> Arc<Mutex<Script>> {
        scripts.lock().expect("registry")[&GroupId(g)].clone()
    }

    struct Caller {
        tx: tokio::sync::mpsc::UnboundedSender<crate::server::reply_sink::OwedReply>,
        rx: tokio::sync::mpsc::UnboundedReceiver<crate::server::reply_sink::OwedReply>,
    }

    impl Caller {
        fn new() -> Caller {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            Caller { tx, rx }
        }
        /// Send `op` to the host; the reply, if one came at once.
        fn call(&mut self, host: &mut Host, op: Op) -> Option<Reply> {
            host.handle(
                None,
                ClientOp {
                    id: Some(1),
                    op,
                    reply: crate::server::group::ReplySink::new(self.tx.clone()),
                },
                Instant::now(),
            );
            self.rx.try_recv().ok().map(|o| o.reply)
        }
        fn expect(&mut self, host: &mut Host, op: Op) -> Reply {
            let what = format!("{op:?}");
            self.call(host, op)
                .unwrap_or_else(|| panic!("no reply to {what}"))
        }
        fn bad(&mut self, host: &mut Host, op: Op, reason: &str) {
            let what = format!("{op:?}");
            let r = self.expect(host, op);
            assert_eq!(r.error, Some(ErrorCode::BadRequest), "{what}: {r:?}");
            let got = r.fields["reason"].as_str().expect("reason");
            assert!(
                got.contains(reason),
                "{what}: {got:?} should say {reason:?}"
            );
        }
    }

    fn key_in(map: &ShardMap, shard: u32) -> String {
        (0..10_000)
            .map(|i| format!("k{i}"))
            .find(|k| map.shard_of(k).0 == shard)
            .expect("every shard gets keys")
    }

    fn drive(host: &mut Host) {
        let transport = Transport::start(
            NodeId(99),
            "127.0.0.1".parse().expect("ip"),
            BTreeMap::new(),
            None,
            None,
            Default::default(),
        );
        host.drive(&transport, &NodeClock::new()).expect("drive");
    }

    fn config_entry(index: u64, voters: &[u64]) -> Entry {
        Entry {
            index: LogIndex(index),
            term: Term(1),
            kind: EntryKind::ConfigChange(Membership::simple(ids(voters))),
        }
    }

    #[test]
    fn a_sharded_node_hosts_its_placement_and_answers_moved_for_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(1, dir.path(), sharding(8, 2, &[1, 2, 3, 4]));
        let (mut host, scripts) = open(&cfg).expect("open");
        let map = host.shard_map().expect("sharded").clone();
        let mine: Vec<GroupId> = map
            .groups_of(NodeId(1))
            .into_iter()
            .map(|(g, _)| g)
            .collect();
        assert_eq!(host.group_ids(), mine);
        assert!(!mine.is_empty() && mine.len() < 8, "{mine:?}");
        for (g, voters) in map.groups_of(NodeId(1)) {
            let s = script(&scripts, g.0);
            assert_eq!(
                s.lock().expect("s").seed_voters,
                voters,
                "group {g}: the placement's voters, not every peer"
            );
            assert_eq!(voters.len(), 2);
        }
        let mut c = Caller::new();
        for shard in 0..8u32 {
            let key = key_in(&map, shard);
            let op = Op::Write {
                key: key.clone(),
                value: serde_json::json!(1),
            };
            if mine.contains(&GroupId(u64::from(shard))) {
                assert!(
                    c.call(&mut host, op).is_none(),
                    "proposed, answered on commit"
                );
                assert_eq!(
                    script(&scripts, u64::from(shard))
                        .lock()
                        .expect("s")
                        .proposals,
                    1
                );
            } else {
                let r = c.expect(&mut host, op);
                assert_eq!(r.error, Some(ErrorCode::Moved), "{key}: {r:?}");
                assert_eq!(r.definite, Some(true));
                assert_eq!(r.fields["shard"], serde_json::json!(shard));
                let to = map
                    .redirect_target(crate::ring::ShardId(shard), NodeId(1))
                    .expect("a replica");
                assert_eq!(r.leader(), Some(cfg.peers[&to].to_string().as_str()));
            }
        }
        // Locks route by name, to the same shard as a key of that name.
        let other = (0..8)
            .find(|s| !mine.contains(&GroupId(u64::from(*s))))
            .expect("a shard elsewhere");
        let r = c.expect(
            &mut host,
            Op::Acquire {
                lock: key_in(&map, other),
                owner: "o".into(),
                ttl_ms: 100,
            },
        );
        assert_eq!(r.error, Some(ErrorCode::Moved));
        // status names the first group and the sharding.
        let r = c.expect(&mut host, Op::Status);
        assert_eq!(r.fields["group"], serde_json::json!(mine[0].0));
        assert_eq!(r.fields["shards"], serde_json::json!(8));
        assert_eq!(r.fields["replicas"], serde_json::json!(2));
    }

    #[test]
    fn bad_admin_requests_get_bad_request_with_a_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(1, dir.path(), sharding(4, 3, &[1, 2, 3]));
        let (mut host, _) = open(&cfg).expect("open");
        let mut c = Caller::new();
        c.bad(
            &mut host,
            Op::JoinGroup {
                group: 4,
                term: None,
            },
            "does not exist",
        );
        c.bad(&mut host, Op::LeaveGroup { group: 77 }, "does not exist");
        c.bad(
            &mut host,
            Op::ChangeMembership {
                group: 9,
                voters: vec![1, 2],
            },
            "hosts no group 9",
        );
        c.bad(
            &mut host,
            Op::ChangeMembership {
                group: 0,
                voters: vec![],
            },
            "voters is empty",
        );
        c.bad(
            &mut host,
            Op::ChangeMembership {
                group: 0,
                voters: vec![1, 9],
            },
            "node 9",
        );
        c.bad(&mut host, Op::SetMembers { members: vec![] }, "empty");
        c.bad(
            &mut host,
            Op::SetMembers {
                members: vec![1, 1],
            },
            "twice",
        );
        c.bad(
            &mut host,
            Op::SetMembers {
                members: vec![0, 1],
            },
            "node 0",
        );
        c.bad(
            &mut host,
            Op::TransferLeader {
                to: 2,
                group: Some(42),
            },
            "hosts no group 42",
        );
        c.bad(
            &mut host,
            Op::Auth { token: "x".into() },
            "not an operation",
        );
        // Nothing was recorded by the refused requests.
        assert!(!GroupsFile::path(dir.path()).exists());
    }

    #[test]
    fn change_membership_snapshots_first_and_maps_every_refusal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(1, dir.path(), sharding(2, 3, &[1, 2, 3]));
        let (mut host, scripts) = open(&cfg).expect("open");
        let s = script(&scripts, 1);
        let mut c = Caller::new();
        let change = |voters: Vec<u64>| Op::ChangeMembership { group: 1, voters };
        // A follower: not-leader, with the leader's address.
        s.lock().expect("s").leader = Some(NodeId(2));
        let r = c.expect(&mut host, change(vec![1, 2, 4]));
        assert_eq!(r.error, Some(ErrorCode::NotLeader));
        assert_eq!(r.leader(), Some(cfg.peers[&NodeId(2)].to_string().as_str()));
        // The leader, with applied entries: snapshot at the applied index, then the change.
        s.lock().expect("s").leader = Some(NodeId(1));
        s.lock().expect("s").readys.push_back(Ready {
            committed: vec![
                Entry {
                    index: LogIndex(1),
                    term: Term(1),
                    kind: EntryKind::Noop,
                },
                config_entry(2, &[1, 2, 3]),
            ],
            ..Ready::default()
        });
        drive(&mut host);
        let r = c.expect(&mut host, change(vec![4, 2, 1, 2]));
        assert!(r.ok, "{r:?}");
        assert_eq!(r.fields["index"], serde_json::json!(3));
        assert_eq!(
            s.lock().expect("s").calls,
            vec!["snapshot@2".to_string(), "change:[1, 2, 4]".to_string()],
            "snapshot first, voters sorted and deduplicated"
        );
        // The snapshot is durable: a reopened storage has it.
        let (_, rec) = GroupStorage::open(dir.path(), GroupId(1), false).expect("reopen");
        assert_eq!(
            rec.snapshot.expect("snapshot stored").meta.index,
            LogIndex(2)
        );
        // A second change while the first runs.
        let r = c.expect(&mut host, change(vec![1, 2]));
        assert_eq!(r.error, Some(ErrorCode::InProgress));
        assert_eq!(r.definite, Some(true));
        // A core without membership changes.
        {
            let mut g = s.lock().expect("s");
            g.pending = false;
            g.unsupported = true;
        }
        let r = c.expect(&mut host, change(vec![1, 2]));
        assert_eq!(r.error, Some(ErrorCode::Unsupported));
        // groups shows the group as the core reports it.
        let r = c.expect(&mut host, Op::Groups);
        assert_eq!(r.fields["members"], serde_json::json!([1, 2, 3]));
        let g1 = r.fields["groups"]
            .as_array()
            .expect("list")
            .iter()
            .find(|g| g["group"] == 1)
            .expect("group 1 listed")
            .clone();
        assert_eq!(g1["role"], "leader");
        assert_eq!(g1["voters"], serde_json::json!([1, 2, 3]));
        assert_eq!(g1["outgoing"], serde_json::json!([]));
        assert_eq!(g1["applied_index"], 2);
        assert_eq!(g1["leader_addr"], cfg.peers[&NodeId(1)].to_string());
    }

    #[test]
    fn a_joined_group_is_fresh_recorded_and_hosted_again_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(4, dir.path(), sharding(4, 3, &[1, 2, 3]));
        let (mut host, scripts) = open(&cfg).expect("open");
        assert!(host.group_ids().is_empty(), "node 4 is not a member yet");
        let mut c = Caller::new();
        let r = c.expect(&mut host, Op::Status);
        assert!(r.ok && r.fields["group"].is_null(), "{r:?}");
        // Leftover storage from an earlier membership is not reused.
        let old = GroupStorage::group_dir(dir.path(), GroupId(2));
        std::fs::create_dir_all(&old).expect("mkdir");
        std::fs::write(old.join("stale"), b"x").expect("write");
        let join2 = Op::JoinGroup {
            group: 2,
            term: Some(4),
        };
        assert!(c.expect(&mut host, join2.clone()).ok);
        assert_eq!(
            script(&scripts, 2).lock().expect("s").recovered_term,
            4,
            "the joining core starts at the given term floor"
        );
        assert!(!old.join("stale").exists(), "joined fresh");
        assert!(c.expect(&mut host, join2).ok, "idempotent");
        assert_eq!(host.group_ids(), vec![GroupId(2)]);
        assert!(
            script(&scripts, 2)
                .lock()
                .expect("s")
                .seed_voters
                .is_empty(),
            "a joining core"
        );
        let r = c.expect(&mut host, Op::Groups);
        assert_eq!(r.fields["groups"][0]["joining"], true);
        assert!(
            c.expect(
                &mut host,
                Op::SetMembers {
                    members: vec![4, 1, 2, 3]
                }
            )
            .ok
        );
        drop(host);
        let (host, scripts) = open(&cfg).expect("reopen");
        assert_eq!(host.group_ids(), vec![GroupId(2)]);
        assert!(script(&scripts, 2)
            .lock()
            .expect("s")
            .seed_voters
            .is_empty());
        assert_eq!(
            host.shard_map().expect("sharded").members(),
            &ids(&[1, 2, 3, 4])[..]
        );
    }

    #[test]
    fn a_group_that_commits_a_config_without_this_node_is_retired_for_good() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(1, dir.path(), sharding(2, 3, &[1, 2, 3]));
        let (mut host, scripts) = open(&cfg).expect("open");
        host.set_retire_grace(Duration::ZERO);
        assert_eq!(host.group_ids(), vec![GroupId(0), GroupId(1)]);
        // A removal cancelled by a later re-add in the same batch: kept.
        let s0 = script(&scripts, 0);
        s0.lock().expect("s").readys.push_back(Ready {
            committed: vec![config_entry(1, &[2, 3]), config_entry(2, &[1, 2, 3])],
            ..Ready::default()
        });
        // Group 1: removed for real (and the core agrees).
        let s1 = script(&scripts, 1);
        s1.lock().expect("s").readys.push_back(Ready {
            committed: vec![config_entry(1, &[2, 3, 4])],
            ..Ready::default()
        });
        s1.lock().expect("s").membership = Membership::simple(ids(&[2, 3, 4]));
        s1.lock().expect("s").term = 5;
        drive(&mut host);
        let later = Instant::now() + Duration::from_millis(1);
        host.housekeeping(Instant::now()).expect("housekeeping");
        host.housekeeping(later).expect("housekeeping");
        assert_eq!(
            host.group_ids(),
            vec![GroupId(0)],
            "group 1 retired, group 0 kept"
        );
        assert!(
            !GroupStorage::group_dir(dir.path(), GroupId(1)).exists(),
            "storage deleted"
        );
        assert!(GroupStorage::group_dir(dir.path(), GroupId(0)).exists());
        let file = GroupsFile::load(dir.path()).expect("recorded");
        assert_eq!(file.left, [GroupId(1)].into_iter().collect());
        // Requests for the retired shard are now moved elsewhere.
        let map = host.shard_map().expect("sharded").clone();
        let mut c = Caller::new();
        let r = c.expect(
            &mut host,
            Op::Read {
                key: key_in(&map, 1),
            },
        );
        assert_eq!(r.error, Some(ErrorCode::Moved));
        // A restart does not resurrect it, though the initial placement has it.
        drop(host);
        let (mut host, scripts) = open(&cfg).expect("reopen");
        assert_eq!(host.group_ids(), vec![GroupId(0)]);
        // Joining again recreates it, fresh.
        assert!(
            c.expect(
                &mut host,
                Op::JoinGroup {
                    group: 1,
                    term: Some(3),
                }
            )
            .ok
        );
        assert_eq!(host.group_ids(), vec![GroupId(0), GroupId(1)]);
        let file = GroupsFile::load(dir.path()).expect("recorded");
        assert!(file.left.is_empty() && file.joined.contains(&GroupId(1)));
        assert_eq!(
            script(&scripts, 1).lock().expect("s").recovered_term,
            5,
            "the term it had seen before it left, above the given 3: it never votes twice in a term"
        );
        let floor = Some((Term(5), LogIndex(1)));
        assert_eq!(
            script(&scripts, 1).lock().expect("s").join_floor,
            floor,
            "its join floor: (term, commit) when it left, after applying its removal at 1"
        );
        assert_eq!(
            script(&scripts, 0).lock().expect("s").join_floor,
            None,
            "a group never left has none"
        );
        // A restarted joining node keeps its floor.
        drop(host);
        let (host, scripts) = open(&cfg).expect("reopen");
        assert_eq!(host.group_ids(), vec![GroupId(0), GroupId(1)]);
        assert_eq!(script(&scripts, 1).lock().expect("s").join_floor, floor);
    }

    #[test]
    fn a_removed_group_waits_for_its_grace_and_the_cores_own_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(1, dir.path(), sharding(1, 3, &[1, 2, 3]));
        let (mut host, scripts) = open(&cfg).expect("open");
        host.set_retire_grace(Duration::from_secs(3600));
        let s = script(&scripts, 0);
        s.lock().expect("s").readys.push_back(Ready {
            committed: vec![config_entry(1, &[2, 3])],
            ..Ready::default()
        });
        drive(&mut host);
        host.housekeeping(Instant::now()).expect("housekeeping");
        assert_eq!(
            host.group_ids(),
            vec![GroupId(0)],
            "core still lists this node"
        );
        s.lock().expect("s").membership = Membership::simple(ids(&[2, 3]));
        host.housekeeping(Instant::now()).expect("housekeeping");
        assert_eq!(
            host.group_ids(),
            vec![GroupId(0)],
            "within the grace period"
        );
        let mut c = Caller::new();
        let r = c.expect(&mut host, Op::Groups);
        assert_eq!(r.fields["groups"][0]["retiring"], true);
        host.housekeeping(Instant::now() + Duration::from_secs(3601))
            .expect("housekeeping");
        assert!(host.group_ids().is_empty());
    }

    #[test]
    fn leave_group_refuses_the_leader_and_retires_a_follower() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(1, dir.path(), sharding(1, 3, &[1, 2, 3]));
        let (mut host, scripts) = open(&cfg).expect("open");
        let mut c = Caller::new();
        script(&scripts, 0).lock().expect("s").leader = Some(NodeId(1));
        c.bad(&mut host, Op::LeaveGroup { group: 0 }, "leads group 0");
        script(&scripts, 0).lock().expect("s").leader = Some(NodeId(2));
        assert!(c.expect(&mut host, Op::LeaveGroup { group: 0 }).ok);
        assert!(host.group_ids().is_empty());
        assert!(
            c.expect(&mut host, Op::LeaveGroup { group: 0 }).ok,
            "idempotent"
        );
        assert!(GroupsFile::load(dir.path())
            .expect("load")
            .left
            .contains(&GroupId(0)));
    }

    #[test]
    fn an_unsharded_node_keeps_its_one_group_of_every_peer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(2, dir.path(), None);
        let (mut host, scripts) = open(&cfg).expect("open");
        assert_eq!(host.group_ids(), vec![GroupId(0)]);
        assert_eq!(
            script(&scripts, 0).lock().expect("s").seed_voters,
            ids(&[1, 2, 3, 4])
        );
        let mut c = Caller::new();
        assert!(
            c.call(&mut host, Op::Read { key: "any".into() }).is_none(),
            "to group 0"
        );
        let r = c.expect(&mut host, Op::Status);
        assert!(r.ok && !r.fields.contains_key("shards"));
        c.bad(
            &mut host,
            Op::SetMembers { members: vec![1] },
            "not sharded",
        );
        c.bad(
            &mut host,
            Op::JoinGroup {
                group: 1,
                term: None,
            },
            "does not exist",
        );
        let r = c.expect(&mut host, Op::Groups);
        assert_eq!(r.fields["shards"], serde_json::Value::Null);
        assert_eq!(r.fields["groups"][0]["group"], 0);
    }

    #[test]
    fn a_corrupt_groups_file_stops_the_start_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("groups.json"), b"{\"version\":1,\"left\":[")
            .expect("write");
        let cfg = config(1, dir.path(), sharding(2, 3, &[1, 2, 3]));
        let Err(NodeError::Config(e)) = open(&cfg).map(|_| ()) else {
            panic!("a corrupt groups.json must not start the node")
        };
        assert!(
            e.contains(&dir.path().join("groups.json").display().to_string()),
            "{e}"
        );
        std::fs::write(
            dir.path().join("groups.json"),
            b"{\"version\":1,\"members\":[1,9]}",
        )
        .expect("write");
        let Err(NodeError::Config(e)) = open(&cfg).map(|_| ()) else {
            panic!("a ring view naming an unknown node must not start the node")
        };
        assert!(e.contains("groups.json") && e.contains("node 9"), "{e}");
        std::fs::write(
            dir.path().join("groups.json"),
            b"{\"version\":1,\"joined\":[7]}",
        )
        .expect("write");
        let Err(NodeError::Config(e)) = open(&cfg).map(|_| ()) else {
            panic!("a joined group beyond --shards must not start the node")
        };
        assert!(e.contains("groups.json") && e.contains("group 7"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Fuzz: any sequence of admin requests with any ids is answered,
        /// with `ok` or a definite error, and never panics; groups.json
        /// always reloads.
        #[test]
        fn random_admin_requests_never_panic(
            ops in proptest::collection::vec((0u8..6, 0u64..6, proptest::collection::vec(0u64..6, 0..5)), 1..24),
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let cfg = config(2, dir.path(), sharding(4, 3, &[1, 2, 3]));
            let (mut host, scripts) = open(&cfg).expect("open");
            host.set_retire_grace(Duration::ZERO);
            let mut c = Caller::new();
            for (kind, n, list) in ops {
                let op = match kind {
                    0 => Op::JoinGroup { group: n, term: list.first().copied() },
                    1 => Op::LeaveGroup { group: n },
                    2 => Op::ChangeMembership { group: n, voters: list },
                    3 => Op::SetMembers { members: list },
                    4 => Op::Groups,
                    _ => {
                        // Make a group's core a leader, or apply a removal.
                        if let Some(s) = scripts.lock().expect("registry").get(&GroupId(n)) {
                            let mut s = s.lock().expect("s");
                            if list.is_empty() {
                                s.leader = Some(NodeId(2));
                            } else {
                                s.membership = Membership::simple(list.iter().copied().map(NodeId).collect());
                                let next = s.applied + 1;
                                s.readys.push_back(Ready {
                                    committed: vec![config_entry(next, &list)],
                                    ..Ready::default()
                                });
                            }
                        }
                        drive(&mut host);
                        host.housekeeping(Instant::now()).expect("housekeeping");
                        continue;
                    }
                };
                let r = c.expect(&mut host, op);
                proptest::prop_assert!(r.ok || r.definite == Some(true), "{r:?}");
            }
            let file = GroupsFile::load(dir.path()).expect("groups.json reloads");
            drop(host);
            let (host, _) = open(&cfg).expect("reopens");
            for g in &file.left {
                proptest::prop_assert!(!host.group_ids().contains(g) || file.joined.contains(g));
            }
        }
    }
}

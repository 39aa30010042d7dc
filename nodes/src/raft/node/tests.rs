//! Unit tests of the Raft core with a tiny synchronous cluster: every Ready
//! is persisted at once and its messages delivered in order unless a link is cut.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::*;
use crate::consensus::{Membership, MembershipError, Snapshot, SnapshotMeta};

struct Cluster {
    nodes: BTreeMap<NodeId, RaftNode>,
    /// Durable storage per node: snapshot + entries + hard state.
    applied: BTreeMap<NodeId, Vec<Entry>>,
    snapshots_installed: BTreeMap<NodeId, usize>,
    reads: BTreeMap<NodeId, Vec<ReadOutcome>>,
    cut: BTreeSet<(NodeId, NodeId)>,
    queue: VecDeque<Message>,
    /// If set, a message whose JSON line is longer is lost, as the real
    /// transport's line reader refuses it; `oversized` counts them.
    line_limit: Option<usize>,
    oversized: usize,
}

fn config(id: u64, n: u64) -> CoreConfig {
    let mut cfg = CoreConfig::new(NodeId(id), GroupId(1), (1..=n).map(NodeId).collect());
    cfg.seed = id * 7919;
    cfg
}

impl Cluster {
    fn new(n: u64) -> Cluster {
        Cluster::with(n, |_| {})
    }

    fn with(n: u64, tweak: impl Fn(&mut CoreConfig)) -> Cluster {
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            let mut cfg = config(id, n);
            tweak(&mut cfg);
            nodes.insert(
                NodeId(id),
                RaftNode::new(cfg, Recovered::default()).expect("valid config"),
            );
        }
        Cluster {
            nodes,
            applied: BTreeMap::new(),
            snapshots_installed: BTreeMap::new(),
            reads: BTreeMap::new(),
            cut: BTreeSet::new(),
            queue: VecDeque::new(),
            line_limit: None,
            oversized: 0,
        }
    }

    fn node(&mut self, id: u64) -> &mut RaftNode {
        self.nodes.get_mut(&NodeId(id)).expect("node exists")
    }

    fn isolate(&mut self, id: u64) {
        for &other in self.nodes.keys() {
            if other != NodeId(id) {
                self.cut.insert((NodeId(id), other));
                self.cut.insert((other, NodeId(id)));
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    /// Drain every Ready and deliver every message until quiet; a cluster
    /// that never goes quiet (a message storm) fails the test instead of
    /// hanging it.
    fn settle(&mut self) {
        let mut delivered = 0u64;
        loop {
            let mut progressed = false;
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                let node = self.nodes.get_mut(&id).expect("node");
                while node.has_ready() {
                    progressed = true;
                    let rd = node.ready();
                    node.persisted(rd.persist_id);
                    if rd.snapshot.is_some() {
                        *self.snapshots_installed.entry(id).or_default() += 1;
                        self.applied.entry(id).or_default().clear();
                    }
                    self.applied.entry(id).or_default().extend(rd.committed);
                    self.reads.entry(id).or_default().extend(rd.reads);
                    self.queue.extend(rd.early_messages);
                    self.queue.extend(rd.messages);
                }
            }
            while let Some(m) = self.queue.pop_front() {
                progressed = true;
                delivered += 1;
                assert!(
                    delivered <= 100_000,
                    "the cluster never goes quiet: a message storm ({m:?})"
                );
                if self.cut.contains(&(m.from, m.to)) {
                    continue;
                }
                if let Some(limit) = self.line_limit {
                    let line = serde_json::to_vec(&m).expect("a message serializes");
                    if line.len() > limit {
                        self.oversized += 1;
                        continue;
                    }
                }
                // A message to a node that does not run (yet) is lost.
                if let Some(to) = self.nodes.get_mut(&m.to) {
                    to.step(m).expect("valid message");
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn tick_all(&mut self, ticks: u64) {
        for _ in 0..ticks {
            for node in self.nodes.values_mut() {
                node.tick();
            }
            self.settle();
        }
    }

    fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|n| n.role() == Role::Leader)
            .map(|n| n.id())
            .collect()
    }

    fn elect(&mut self) -> NodeId {
        for _ in 0..100 {
            self.tick_all(1);
            let leaders = self.leaders();
            if leaders.len() == 1 {
                return leaders[0];
            }
        }
        panic!("no single leader after 100 ticks");
    }

    fn normal_applied(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.applied
            .get(&id)
            .map(|es| {
                es.iter()
                    .filter_map(|e| match &e.kind {
                        EntryKind::Normal(b) => Some(b.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[test]
fn single_node_elects_itself_and_commits_after_persisting() {
    let mut c = Cluster::new(1);
    let leader = c.elect();
    assert_eq!(leader, NodeId(1));
    let p = c.node(1).propose(b"a".to_vec()).expect("leader accepts");
    let rd = c.node(1).ready();
    assert_eq!(rd.entries.len(), 1);
    assert!(
        rd.committed.is_empty(),
        "nothing commits before the leader's own write is durable"
    );
    c.node(1).persisted(rd.persist_id);
    let rd = c.node(1).ready();
    assert_eq!(rd.committed.last().map(|e| e.index), Some(p.index));
}

#[test]
fn three_nodes_elect_one_leader_and_replicate_in_order() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    for k in 0..10u8 {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(vec![k])
            .expect("leader accepts");
    }
    c.settle();
    c.tick_all(10);
    let want: Vec<Vec<u8>> = (0..10u8).map(|k| vec![k]).collect();
    for id in 1..=3 {
        assert_eq!(
            c.normal_applied(NodeId(id)),
            want,
            "node {id} applies every command in order"
        );
    }
    assert_eq!(c.leaders(), vec![leader], "still one leader");
}

/// The entries a Ready's appends to `to` carry, early and late, as
/// (early?, first index, entries).
fn appends_to(rd: &Ready, to: NodeId) -> Vec<(bool, LogIndex, usize)> {
    let early = rd.early_messages.iter().map(|m| (true, m));
    let late = rd.messages.iter().map(|m| (false, m));
    early
        .chain(late)
        .filter(|(_, m)| m.to == to)
        .filter_map(|(e, m)| match &m.payload {
            Payload::Raft(RaftMessage::AppendEntries {
                prev_log_index,
                entries,
                ..
            }) => Some((e, prev_log_index.next(), entries.len())),
            _ => None,
        })
        .collect()
}

/// Regression: every proposal sent its own one-entry append, so a batch
/// of proposals filled the in-flight window (4 appends) and the rest of
/// the batch waited a round trip for an acknowledgement.
#[test]
fn proposals_between_two_readys_travel_in_one_append_per_follower() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    let first = c.nodes[&leader].log().last_index().next();
    for k in 0..10u8 {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(vec![k])
            .expect("leader accepts");
    }
    let rd = c.nodes.get_mut(&leader).expect("leader").ready();
    assert_eq!(rd.entries.len(), 10, "one write for the batch");
    for f in (1..=3).map(NodeId).filter(|&n| n != leader) {
        assert_eq!(
            appends_to(&rd, f),
            vec![(true, first, 10)],
            "one append with the whole batch to {f}"
        );
    }
}

/// Raft thesis §10.2.1: a leader's appends may leave before its own write
/// is durable, but it counts itself toward a commit only after it is.
#[test]
fn a_leader_sends_its_appends_before_its_write_is_durable_and_counts_itself_only_after() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    let followers: Vec<NodeId> = (1..=3).map(NodeId).filter(|&n| n != leader).collect();
    let p = c
        .nodes
        .get_mut(&leader)
        .expect("leader")
        .propose(b"x".to_vec())
        .expect("leader accepts");
    let rd = c.nodes.get_mut(&leader).expect("leader").ready();
    assert_eq!(rd.entries.last().map(|e| e.index), Some(p.index));
    assert!(
        rd.messages
            .iter()
            .all(|m| !matches!(m.payload, Payload::Raft(RaftMessage::AppendEntries { .. }))),
        "no append waits for the write"
    );
    assert_eq!(rd.early_messages.len(), 2, "one early append per follower");
    // One follower acknowledges while the leader's write is still in flight:
    // one durable copy of two is no majority of three.
    let to_f0: Vec<Message> = rd
        .early_messages
        .iter()
        .filter(|m| m.to == followers[0])
        .cloned()
        .collect();
    for m in to_f0 {
        c.nodes
            .get_mut(&followers[0])
            .expect("f0")
            .step(m)
            .expect("valid");
    }
    let f0 = c.nodes.get_mut(&followers[0]).expect("f0");
    let frd = f0.ready();
    assert!(
        frd.early_messages.is_empty(),
        "a follower's acknowledgement is never early"
    );
    f0.persisted(frd.persist_id);
    for m in frd.messages {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .step(m)
            .expect("valid");
    }
    let l = c.nodes.get_mut(&leader).expect("leader");
    assert!(
        l.log().commit() < p.index,
        "the leader does not count its own write before it is durable"
    );
    l.persisted(rd.persist_id);
    assert_eq!(
        l.log().commit(),
        p.index,
        "durable here and on f0: committed"
    );
}

/// A leader whose vote for itself is not durable sends nothing early:
/// were it to crash, it could forget that vote and lead the same term
/// again, with other entries. (A runtime that keeps the ordering rule
/// never gets here, as votes answer requests sent after the write; the
/// core does not rely on it.)
#[test]
fn a_leader_whose_vote_is_not_durable_sends_no_append_early() {
    let mut c = Cluster::new(3);
    // As a transfer would: fresh followers otherwise keep a lease.
    c.node(1).campaign(Campaign::Transfer);
    let rd = c.node(1).ready();
    assert_eq!(
        rd.hard_state.map(|hs| hs.vote),
        Some(Some(NodeId(1))),
        "the campaign's vote is in this Ready"
    );
    // Not persisted; the requests are delivered all the same.
    for m in rd.messages {
        let to = m.to;
        c.node(to.0).step(m).expect("valid");
        let answer = c.node(to.0).ready();
        c.node(to.0).persisted(answer.persist_id);
        for a in answer.messages {
            c.node(1).step(a).expect("valid");
        }
    }
    assert_eq!(c.node(1).role(), Role::Leader);
    let rd = c.node(1).ready();
    assert!(rd.early_messages.is_empty(), "nothing early: {rd:?}");
    assert_eq!(
        appends_to(&rd, NodeId(2)).first().map(|a| a.0),
        Some(false),
        "the append waits for the write"
    );
    c.node(1).persisted(rd.persist_id);
    for m in rd.messages {
        let to = m.to;
        c.node(to.0).step(m).expect("valid");
        let answer = c.node(to.0).ready();
        c.node(to.0).persisted(answer.persist_id);
        for a in answer.messages {
            c.node(1).step(a).expect("valid");
        }
    }
    let p = c.node(1).propose(b"z".to_vec()).expect("leads");
    let rd = c.node(1).ready();
    assert_eq!(
        appends_to(&rd, NodeId(3)),
        vec![(true, p.index, 1)],
        "once the vote is durable, appends go early"
    );
}

#[test]
fn followers_refuse_proposals_and_name_the_leader() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    let follower = (1..=3)
        .map(NodeId)
        .find(|&n| n != leader)
        .expect("a follower");
    let err = c
        .nodes
        .get_mut(&follower)
        .expect("f")
        .propose(vec![1])
        .expect_err("followers refuse");
    assert_eq!(err.leader, Some(leader));
}

#[test]
fn pre_vote_keeps_an_isolated_node_from_inflating_its_term() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    let term = c.nodes[&leader].term();
    let follower = (1..=3)
        .map(NodeId)
        .find(|&n| n != leader)
        .expect("a follower");
    c.isolate(follower.0);
    c.tick_all(200);
    assert_eq!(
        c.nodes[&follower].term(),
        term,
        "pre-vote fails, the term stays"
    );
    c.heal();
    c.tick_all(30);
    assert_eq!(
        c.leaders(),
        vec![leader],
        "the rejoining node does not depose the leader"
    );
    assert_eq!(c.nodes[&leader].term(), term);
}

#[test]
fn without_pre_vote_an_isolated_node_does_inflate_its_term() {
    let mut c = Cluster::with(3, |cfg| cfg.pre_vote = false);
    let leader = c.elect();
    let term = c.nodes[&leader].term();
    let follower = (1..=3)
        .map(NodeId)
        .find(|&n| n != leader)
        .expect("a follower");
    c.isolate(follower.0);
    c.tick_all(200);
    assert!(
        c.nodes[&follower].term() > term,
        "this is what pre-vote prevents"
    );
}

#[test]
fn check_quorum_makes_an_isolated_leader_step_down() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    c.isolate(leader.0);
    c.tick_all(60);
    assert_ne!(
        c.nodes[&leader].role(),
        Role::Leader,
        "no quorum heard, the leader steps down"
    );
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1, "the majority side elects a new leader");
    assert_ne!(leaders[0], leader);
}

#[test]
fn a_divergent_follower_is_repaired_by_conflict_back_off() {
    let mut c = Cluster::new(3);
    let old = c.elect();
    c.isolate(old.0);
    // Uncommitted entries on the isolated old leader.
    for k in 0..20u8 {
        c.nodes
            .get_mut(&old)
            .expect("old")
            .propose(vec![100 + k])
            .expect("still thinks it leads");
    }
    c.settle();
    c.tick_all(60);
    let new = c.leaders()[0];
    assert_ne!(new, old);
    for k in 0..5u8 {
        c.nodes
            .get_mut(&new)
            .expect("new")
            .propose(vec![k])
            .expect("leader accepts");
    }
    c.settle();
    c.heal();
    c.tick_all(40);
    let want: Vec<Vec<u8>> = (0..5u8).map(|k| vec![k]).collect();
    assert_eq!(
        c.normal_applied(old),
        want,
        "the old leader's uncommitted suffix is replaced"
    );
    assert_eq!(
        c.nodes[&old].log().last_index(),
        c.nodes[&new].log().last_index()
    );
}

#[test]
fn a_lagging_follower_catches_up_by_install_snapshot() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    let lagger = (1..=3)
        .map(NodeId)
        .find(|&n| n != leader)
        .expect("a follower");
    c.isolate(lagger.0);
    // Keep the leader alive: the other follower still answers.
    for k in 0..30u8 {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(vec![k])
            .expect("leader accepts");
        c.settle();
    }
    let applied = c.nodes[&leader].log().applied();
    let meta = c
        .nodes
        .get_mut(&leader)
        .expect("leader")
        .snapshot_taken(applied, b"state".to_vec())
        .expect("applied");
    assert_eq!(meta.index, applied);
    assert_eq!(c.nodes[&leader].log().snapshot_index(), applied);
    c.heal();
    c.tick_all(30);
    assert_eq!(
        c.snapshots_installed.get(&lagger).copied(),
        Some(1),
        "exactly one snapshot reached the lagger"
    );
    assert_eq!(c.nodes[&lagger].log().snapshot().data, b"state".to_vec());
    assert_eq!(
        c.nodes[&lagger].log().last_index(),
        c.nodes[&leader].log().last_index()
    );
}

/// Regression (issue 21, finding 3): appends were capped by entry count only
/// and entry data travelled as an array of numbers, so after a partition
/// under 900 KiB writes the catch-up batch passed the 64 MiB peer line limit,
/// was refused, and was resent forever: the follower never caught up.
#[test]
fn a_follower_lagging_behind_large_values_catches_up_under_the_peer_line_limit() {
    use crate::protocol::line::MAX_PEER_LINE_BYTES;
    use crate::server::{NODE_MAX_BATCH_BYTES, NODE_MAX_BATCH_ENTRIES};
    let mut c = Cluster::with(3, |cfg| {
        cfg.max_batch_entries = NODE_MAX_BATCH_ENTRIES;
        cfg.max_batch_bytes = NODE_MAX_BATCH_BYTES;
    });
    c.line_limit = Some(MAX_PEER_LINE_BYTES);
    let leader = c.elect();
    let lagger = (1..=3)
        .map(NodeId)
        .find(|&n| n != leader)
        .expect("a follower");
    c.isolate(lagger.0);
    const VALUE_BYTES: usize = 900 << 10;
    let values = 40u8;
    for k in 0..values {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(vec![k; VALUE_BYTES])
            .expect("leader accepts");
        c.settle();
    }
    c.heal();
    c.tick_all(60);
    assert_eq!(c.oversized, 0, "no message passed the peer line limit");
    let caught_up = c.normal_applied(lagger);
    assert_eq!(
        caught_up.len(),
        values as usize,
        "the lagger applied every value"
    );
    assert!(caught_up
        .iter()
        .enumerate()
        .all(|(k, v)| v.len() == VALUE_BYTES && v[0] == k as u8));
}

#[test]
fn snapshot_beyond_applied_is_refused() {
    let mut c = Cluster::new(1);
    c.elect();
    let applied = c.node(1).log().applied();
    let err = c
        .node(1)
        .snapshot_taken(applied.next(), vec![])
        .expect_err("not applied yet");
    assert!(matches!(err, SnapshotError::NotApplied { .. }));
}

#[test]
fn read_index_waits_for_a_heartbeat_quorum() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    c.tick_all(5);
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .read_index(42)
        .expect("leader reads");
    let rd = c.nodes.get_mut(&leader).expect("leader").ready();
    assert!(
        rd.reads.is_empty(),
        "no answer before a quorum confirmed leadership"
    );
    assert!(rd
        .messages
        .iter()
        .any(|m| matches!(m.payload, Payload::Raft(RaftMessage::Heartbeat { .. }))));
    c.queue.extend(rd.early_messages);
    c.queue.extend(rd.messages);
    c.settle();
    let commit = c.nodes[&leader].log().commit();
    assert_eq!(
        c.reads[&leader],
        vec![ReadOutcome::Ready {
            ctx: 42,
            index: commit
        }]
    );
}

#[test]
fn read_index_on_an_isolated_leader_never_succeeds() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    c.tick_all(5);
    c.isolate(leader.0);
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .read_index(7)
        .expect("still thinks it leads");
    c.tick_all(60);
    let outcomes = c.reads.get(&leader).cloned().unwrap_or_default();
    assert!(
        outcomes
            .iter()
            .all(|r| !matches!(r, ReadOutcome::Ready { ctx: 7, .. })),
        "a deposed leader must not serve the read"
    );
    assert!(
        outcomes
            .iter()
            .any(|r| matches!(r, ReadOutcome::Failed { ctx: 7, .. })),
        "it fails the read when it steps down"
    );
}

#[test]
fn read_index_on_a_follower_is_refused() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    let follower = (1..=3)
        .map(NodeId)
        .find(|&n| n != leader)
        .expect("a follower");
    let err = c
        .nodes
        .get_mut(&follower)
        .expect("f")
        .read_index(1)
        .expect_err("followers refuse");
    assert_eq!(err.leader, Some(leader));
}

#[test]
fn stale_read_bug_answers_on_a_follower_at_once() {
    let mut c = Cluster::with(3, |cfg| cfg.bugs = vec![Bug::StaleRead]);
    let leader = c.elect();
    let follower = (1..=3)
        .map(NodeId)
        .find(|&n| n != leader)
        .expect("a follower");
    c.nodes
        .get_mut(&follower)
        .expect("f")
        .read_index(5)
        .expect("the bug answers anywhere");
    let rd = c.nodes.get_mut(&follower).expect("f").ready();
    assert!(matches!(
        rd.reads.as_slice(),
        [ReadOutcome::Ready { ctx: 5, .. }]
    ));
}

#[test]
fn lease_reads_answer_without_a_round_trip_while_the_lease_holds() {
    let mut c = Cluster::with(3, |cfg| cfg.lease_reads = true);
    let leader = c.elect();
    c.tick_all(6);
    let l = c.nodes.get_mut(&leader).expect("leader");
    l.read_index(9).expect("leader reads");
    let rd = l.ready();
    assert!(
        matches!(rd.reads.as_slice(), [ReadOutcome::Ready { ctx: 9, .. }]),
        "{:?}",
        rd.reads
    );
}

#[test]
fn leadership_transfer_hands_over_to_the_target() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    let target = (1..=3)
        .map(NodeId)
        .find(|&n| n != leader)
        .expect("a follower");
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .transfer_leader(target)
        .expect("leader transfers");
    c.settle();
    assert_eq!(
        c.leaders(),
        vec![target],
        "TimeoutNow makes the target win at once"
    );
    let err = c
        .nodes
        .get_mut(&leader)
        .expect("old")
        .transfer_leader(target)
        .expect_err("no longer leader");
    assert!(matches!(err, TransferError::NotLeader(_)));
}

#[test]
fn messages_for_another_group_are_refused() {
    let mut c = Cluster::new(3);
    let m = Message {
        group: GroupId(9),
        from: NodeId(2),
        to: NodeId(1),
        payload: Payload::Raft(RaftMessage::TimeoutNow { term: Term(1) }),
    };
    assert!(matches!(
        c.node(1).step(m),
        Err(StepError::WrongGroup { .. })
    ));
    let m = Message {
        group: GroupId(1),
        from: NodeId(1),
        to: NodeId(1),
        payload: Payload::Raft(RaftMessage::TimeoutNow { term: Term(1) }),
    };
    assert!(matches!(
        c.node(1).step(m),
        Err(StepError::UnknownPeer { .. })
    ));
    // A node outside the configuration may be a member of one this node has
    // not seen yet: accepted (its vote requests are ignored, see below).
    let m = Message {
        group: GroupId(1),
        from: NodeId(8),
        to: NodeId(1),
        payload: Payload::Raft(RaftMessage::HeartbeatResponse {
            term: Term(0),
            read_seq: 0,
            session: 0,
        }),
    };
    c.node(1)
        .step(m)
        .expect("a message from another node is accepted");
}

/// Figure 8 of the Raft paper: an entry of an older term replicated on a
/// majority must not be committed by counting.
#[test]
fn an_old_term_entry_on_a_majority_is_not_committed_by_counting() {
    let old = |i: u64, t: u64| Entry {
        index: LogIndex(i),
        term: Term(t),
        kind: EntryKind::Normal(vec![i as u8]),
    };
    let recovered = |entries: Vec<Entry>, term: u64| Recovered {
        hard_state: HardState {
            term: Term(term),
            vote: None,
            commit: LogIndex(0),
        },
        snapshot: None,
        entries,
    };
    // Node 1 has (1,t1),(2,t2); node 2 has the same; node 3 has only (1,t1).
    let mut n1 =
        RaftNode::new(config(1, 3), recovered(vec![old(1, 1), old(2, 2)], 3)).expect("valid");
    n1.campaign(Campaign::Election);
    assert_eq!(n1.term(), Term(4));
    let _ = n1.ready();
    for from in [2, 3] {
        n1.step(Message {
            group: GroupId(1),
            from: NodeId(from),
            to: NodeId(1),
            payload: Payload::Raft(RaftMessage::VoteResponse {
                term: Term(4),
                pre_vote: false,
                granted: true,
            }),
        })
        .expect("valid");
    }
    assert_eq!(n1.role(), Role::Leader);
    let rd = n1.ready();
    n1.persisted(rd.persist_id);
    // Node 2 acknowledges index 2 (the term-2 entry) but not the noop at 3.
    let session = n1.progress[&NodeId(2)].session;
    n1.step(Message {
        group: GroupId(1),
        from: NodeId(2),
        to: NodeId(1),
        payload: Payload::Raft(RaftMessage::AppendResponse {
            term: Term(4),
            success: true,
            match_index: LogIndex(2),
            rejected: LogIndex(0),
            conflict_index: LogIndex(0),
            conflict_term: None,
            session,
        }),
    })
    .expect("valid");
    assert_eq!(
        n1.log().commit(),
        LogIndex(0),
        "§5.4.2: an old-term entry is not committed by counting"
    );
    n1.step(Message {
        group: GroupId(1),
        from: NodeId(2),
        to: NodeId(1),
        payload: Payload::Raft(RaftMessage::AppendResponse {
            term: Term(4),
            success: true,
            match_index: LogIndex(3),
            rejected: LogIndex(0),
            conflict_index: LogIndex(0),
            conflict_term: None,
            session,
        }),
    })
    .expect("valid");
    assert_eq!(
        n1.log().commit(),
        LogIndex(3),
        "the current-term noop commits everything before it"
    );
}

#[test]
fn recovery_refuses_a_log_from_a_future_term() {
    let r = Recovered {
        hard_state: HardState {
            term: Term(1),
            vote: None,
            commit: LogIndex(0),
        },
        snapshot: Some(Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(0),
                term: Term(0),
                voters: vec![],
                outgoing: Vec::new(),
            },
            data: vec![],
        }),
        entries: vec![Entry {
            index: LogIndex(1),
            term: Term(2),
            kind: EntryKind::Noop,
        }],
    };
    assert!(matches!(
        RaftNode::new(config(1, 3), r),
        Err(ConfigError::Recovered(_))
    ));
}

#[test]
fn restart_reapplies_committed_entries_from_storage() {
    let entries: Vec<Entry> = (1..=3)
        .map(|i| Entry {
            index: LogIndex(i),
            term: Term(1),
            kind: EntryKind::Normal(vec![i as u8]),
        })
        .collect();
    let r = Recovered {
        hard_state: HardState {
            term: Term(1),
            vote: Some(NodeId(1)),
            commit: LogIndex(2),
        },
        snapshot: None,
        entries,
    };
    let mut n = RaftNode::new(config(1, 3), r).expect("valid");
    let rd = n.ready();
    assert_eq!(
        rd.committed.iter().map(|e| e.index.0).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(
        rd.hard_state.is_none(),
        "nothing new to persist after recovery"
    );
    assert!(rd.entries.is_empty());
}

// ----- membership -----

fn ids(v: &[u64]) -> Vec<NodeId> {
    v.iter().copied().map(NodeId).collect()
}

fn config_entry(index: u64, term: u64, voters: &[u64], outgoing: &[u64]) -> Entry {
    Entry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::ConfigChange(Membership {
            voters: ids(voters),
            outgoing: ids(outgoing),
        }),
    }
}

fn raft_msg(from: u64, to: u64, payload: RaftMessage) -> Message {
    Message {
        group: GroupId(1),
        from: NodeId(from),
        to: NodeId(to),
        payload: Payload::Raft(payload),
    }
}

fn vote_granted(from: u64, term: u64) -> Message {
    raft_msg(
        from,
        1,
        RaftMessage::VoteResponse {
            term: Term(term),
            pre_vote: false,
            granted: true,
        },
    )
}

/// `from` acknowledges `leader`'s log through `index`, in its current session.
fn acked(leader: &RaftNode, from: u64, term: u64, index: u64) -> Message {
    let session = leader.progress[&NodeId(from)].session;
    raft_msg(
        from,
        1,
        RaftMessage::AppendResponse {
            term: Term(term),
            success: true,
            match_index: LogIndex(index),
            rejected: LogIndex(0),
            conflict_index: LogIndex(0),
            conflict_term: None,
            session,
        },
    )
}

impl Cluster {
    /// Start a joining core (no voters) on node `id`.
    fn add_joining(&mut self, id: u64) {
        let mut cfg = CoreConfig::new(NodeId(id), GroupId(1), Vec::new());
        cfg.seed = id * 7919;
        let node = RaftNode::new(cfg, Recovered::default()).expect("a joining core");
        self.nodes.insert(NodeId(id), node);
    }

    fn leader_node(&mut self) -> &mut RaftNode {
        let l = self.leaders();
        assert_eq!(l.len(), 1, "one leader");
        self.nodes.get_mut(&l[0]).expect("leader")
    }

    fn applied_configs(&self, id: u64) -> Vec<Membership> {
        self.applied
            .get(&NodeId(id))
            .map(|es| {
                es.iter()
                    .filter_map(|e| match &e.kind {
                        EntryKind::ConfigChange(m) => Some(m.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Node 1 as a candidate of term 2 in the joint configuration
/// C_old = {1,2,3}, C_new = {1,4,5} (an uncommitted entry at index 1).
fn joint_candidate() -> RaftNode {
    let r = Recovered {
        hard_state: HardState {
            term: Term(1),
            vote: None,
            commit: LogIndex(0),
        },
        snapshot: None,
        entries: vec![config_entry(1, 1, &[1, 4, 5], &[1, 2, 3])],
    };
    let mut n = RaftNode::new(config(1, 3), r).expect("valid");
    assert_eq!(
        n.status().membership,
        Membership {
            voters: ids(&[1, 4, 5]),
            outgoing: ids(&[1, 2, 3])
        },
        "the uncommitted config entry is in force"
    );
    assert!(n.status().membership_pending);
    n.campaign(Campaign::Election);
    assert_eq!(n.term(), Term(2));
    let rd = n.ready();
    let mut asked: Vec<NodeId> = rd.messages.iter().map(|m| m.to).collect();
    asked.sort_unstable();
    assert_eq!(
        asked,
        ids(&[2, 3, 4, 5]),
        "a joint candidate asks both halves"
    );
    n
}

#[test]
fn a_joint_election_needs_a_majority_of_both_halves() {
    let mut n = joint_candidate();
    n.step(vote_granted(2, 2)).expect("valid");
    n.step(vote_granted(3, 2)).expect("valid");
    assert_eq!(
        n.role(),
        Role::Candidate,
        "all of C_old is not enough: C_new has only the candidate"
    );
    n.step(vote_granted(4, 2)).expect("valid");
    assert_eq!(
        n.role(),
        Role::Leader,
        "{{1,2,3}} and {{1,4}} are majorities of both"
    );

    let mut n = joint_candidate();
    n.step(vote_granted(4, 2)).expect("valid");
    n.step(vote_granted(5, 2)).expect("valid");
    assert_eq!(
        n.role(),
        Role::Candidate,
        "all of C_new is not enough: C_old has only the candidate"
    );
    for from in [4, 5] {
        n.step(raft_msg(
            from,
            1,
            RaftMessage::VoteResponse {
                term: Term(2),
                pre_vote: false,
                granted: false,
            },
        ))
        .expect("valid");
    }
    n.step(raft_msg(
        2,
        1,
        RaftMessage::VoteResponse {
            term: Term(2),
            pre_vote: false,
            granted: false,
        },
    ))
    .expect("valid");
    n.step(raft_msg(
        3,
        1,
        RaftMessage::VoteResponse {
            term: Term(2),
            pre_vote: false,
            granted: false,
        },
    ))
    .expect("valid");
    assert_eq!(
        n.role(),
        Role::Follower,
        "C_old refused: the election is lost even though C_new granted"
    );
}

#[test]
fn a_joint_commit_needs_a_majority_of_both_halves_then_c_new_follows() {
    let mut n = joint_candidate();
    for from in [2, 4] {
        n.step(vote_granted(from, 2)).expect("valid");
    }
    assert_eq!(n.role(), Role::Leader);
    let rd = n.ready();
    assert_eq!(
        rd.entries.last().map(|e| e.index),
        Some(LogIndex(2)),
        "the noop"
    );
    n.persisted(rd.persist_id);
    n.step(acked(&n, 2, 2, 2)).expect("valid");
    n.step(acked(&n, 3, 2, 2)).expect("valid");
    assert_eq!(
        n.log().commit(),
        LogIndex(0),
        "a majority of C_old alone commits nothing"
    );
    n.step(acked(&n, 4, 2, 2)).expect("valid");
    assert_eq!(n.log().commit(), LogIndex(2), "now both halves hold it");
    let rd = n.ready();
    let last = rd.entries.last().expect("C_new appended");
    assert_eq!(last.index, LogIndex(3));
    assert_eq!(
        last.kind,
        EntryKind::ConfigChange(Membership::simple(ids(&[1, 4, 5]))),
        "the joint config committed: the leader appends C_new"
    );
    let st = n.status();
    assert_eq!(st.membership, Membership::simple(ids(&[1, 4, 5])));
    assert!(st.membership_pending, "C_new is not committed yet");
    n.persisted(rd.persist_id);
    n.step(acked(&n, 2, 2, 3)).expect("valid");
    n.step(acked(&n, 3, 2, 3)).expect("valid");
    assert_eq!(
        n.log().commit(),
        LogIndex(2),
        "under C_new the old voters count for nothing"
    );
    n.step(acked(&n, 5, 2, 3)).expect("valid");
    assert_eq!(n.log().commit(), LogIndex(3));
    assert!(!n.status().membership_pending);
    assert!(
        n.change_membership(ids(&[1, 2])).is_ok(),
        "the next change may start"
    );
}

#[test]
fn change_membership_validates_and_runs_one_at_a_time() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    c.tick_all(3);
    let follower = (1..=3).map(NodeId).find(|&n| n != leader).expect("f");
    let l = c.nodes.get_mut(&leader).expect("leader");
    assert!(matches!(
        l.change_membership(vec![]),
        Err(MembershipError::Invalid(_))
    ));
    assert!(matches!(
        l.change_membership(ids(&[2, 1])),
        Err(MembershipError::Invalid(_))
    ));
    assert!(matches!(
        l.change_membership(ids(&[1, 1, 2])),
        Err(MembershipError::Invalid(_))
    ));
    l.change_membership(ids(&[1, 2, 3, 4])).expect("accepted");
    assert!(matches!(
        l.change_membership(ids(&[1, 2, 3])),
        Err(MembershipError::InProgress)
    ));
    assert!(matches!(
        c.nodes
            .get_mut(&follower)
            .expect("f")
            .change_membership(ids(&[1, 2])),
        Err(MembershipError::NotLeader(_))
    ));
}

#[test]
fn a_removed_leader_steps_down_once_c_new_commits() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    c.tick_all(3);
    let others: Vec<NodeId> = (1..=3).map(NodeId).filter(|&n| n != leader).collect();
    let term = c.nodes[&leader].term();
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .change_membership(others.clone())
        .expect("accepted");
    c.settle();
    let old = &c.nodes[&leader];
    assert_ne!(old.role(), Role::Leader, "the removed leader stepped down");
    assert_eq!(old.status().membership, Membership::simple(others.clone()));
    assert!(!old.status().membership_pending);
    assert_eq!(
        c.applied_configs(leader.0).last(),
        Some(&Membership::simple(others.clone())),
        "the removed leader applied the committed C_new (its runtime now leaves)"
    );
    c.tick_all(100);
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1, "the remaining voters elect a leader");
    assert!(others.contains(&leaders[0]));
    assert!(c.nodes[&leaders[0]].term() > term);
    assert_ne!(
        c.nodes[&leader].role(),
        Role::Leader,
        "never campaigns again"
    );
    let p = c.leader_node().propose(b"after".to_vec()).expect("leader");
    c.settle();
    c.tick_all(5);
    for &o in &others {
        assert!(
            c.nodes[&o].log().commit() >= p.index,
            "{o}: two voters commit without the removed one"
        );
    }
}

#[test]
fn a_joining_node_catches_up_by_snapshot_and_adopts_the_config() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    for k in 0..20u8 {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(vec![k])
            .expect("leader accepts");
        c.settle();
    }
    let applied = c.nodes[&leader].log().applied();
    let meta = c
        .nodes
        .get_mut(&leader)
        .expect("leader")
        .snapshot_taken(applied, b"state".to_vec())
        .expect("applied");
    assert_eq!(
        meta.voters,
        ids(&[1, 2, 3]),
        "the snapshot records its config"
    );
    c.add_joining(4);
    assert_eq!(
        c.nodes[&NodeId(4)].status().membership,
        Membership::default()
    );
    c.tick_all(50);
    assert_ne!(c.nodes[&NodeId(4)].role(), Role::Leader);
    assert_eq!(
        c.nodes[&NodeId(4)].term(),
        Term(0),
        "a joining node never campaigns"
    );
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .change_membership(ids(&[1, 2, 3, 4]))
        .expect("accepted");
    c.tick_all(30);
    assert_eq!(
        c.snapshots_installed.get(&NodeId(4)).copied(),
        Some(1),
        "the new voter got the snapshot"
    );
    let n4 = &c.nodes[&NodeId(4)];
    assert_eq!(n4.log().snapshot().data, b"state".to_vec());
    assert_eq!(n4.log().last_index(), c.nodes[&leader].log().last_index());
    assert_eq!(
        n4.status().membership,
        Membership::simple(ids(&[1, 2, 3, 4]))
    );
    assert!(
        !c.nodes[&leader].status().membership_pending,
        "the change finished"
    );
    assert_eq!(
        c.applied_configs(4).last(),
        Some(&Membership::simple(ids(&[1, 2, 3, 4])))
    );
}

#[test]
fn a_truncated_config_entry_reverts_the_config() {
    let r = Recovered {
        hard_state: HardState {
            term: Term(1),
            vote: None,
            commit: LogIndex(1),
        },
        snapshot: None,
        entries: vec![Entry {
            index: LogIndex(1),
            term: Term(1),
            kind: EntryKind::Noop,
        }],
    };
    let mut n = RaftNode::new(config(2, 3), r).expect("valid");
    let joint = Membership {
        voters: ids(&[1, 2, 3, 4]),
        outgoing: ids(&[1, 2, 3]),
    };
    n.step(raft_msg(
        1,
        2,
        RaftMessage::AppendEntries {
            term: Term(2),
            prev_log_index: LogIndex(1),
            prev_log_term: Term(1),
            entries: vec![config_entry(2, 2, &[1, 2, 3, 4], &[1, 2, 3])],
            leader_commit: LogIndex(1),
            session: 1,
        },
    ))
    .expect("valid");
    assert_eq!(n.status().membership, joint, "in force once appended");
    assert!(n.status().membership_pending);
    n.step(raft_msg(
        3,
        2,
        RaftMessage::AppendEntries {
            term: Term(3),
            prev_log_index: LogIndex(1),
            prev_log_term: Term(1),
            entries: vec![Entry {
                index: LogIndex(2),
                term: Term(3),
                kind: EntryKind::Normal(vec![7]),
            }],
            leader_commit: LogIndex(1),
            session: 1,
        },
    ))
    .expect("valid");
    assert_eq!(
        n.status().membership,
        Membership::simple(ids(&[1, 2, 3])),
        "the config entry was truncated: back to the previous one"
    );
    assert!(!n.status().membership_pending);
}

#[test]
fn recovery_picks_the_latest_config() {
    let snap = |voters: &[u64]| Snapshot {
        meta: SnapshotMeta {
            index: LogIndex(5),
            term: Term(1),
            voters: ids(voters),
            outgoing: Vec::new(),
        },
        data: vec![],
    };
    let recovered = |snapshot: Option<Snapshot>, entries: Vec<Entry>, commit: u64| Recovered {
        hard_state: HardState {
            term: Term(2),
            vote: None,
            commit: LogIndex(commit),
        },
        snapshot,
        entries,
    };
    // The latest config entry wins over the snapshot and the seed.
    let n = RaftNode::new(
        config(1, 3),
        recovered(
            Some(snap(&[1, 2, 3])),
            vec![
                config_entry(6, 2, &[1, 2, 4], &[1, 2, 3]),
                config_entry(7, 2, &[1, 2, 4], &[]),
            ],
            6,
        ),
    )
    .expect("valid");
    assert_eq!(n.status().membership, Membership::simple(ids(&[1, 2, 4])));
    assert!(n.status().membership_pending, "C_new at 7 is not committed");
    // No config entry: the snapshot's.
    let n =
        RaftNode::new(config(1, 3), recovered(Some(snap(&[1, 3, 5])), vec![], 5)).expect("valid");
    assert_eq!(n.status().membership, Membership::simple(ids(&[1, 3, 5])));
    assert!(!n.status().membership_pending);
    // Neither: the seed.
    let n = RaftNode::new(config(1, 3), recovered(None, vec![], 0)).expect("valid");
    assert_eq!(n.status().membership, Membership::simple(ids(&[1, 2, 3])));
    // A joining node that restarts before it learned anything stays joining.
    let mut cfg = config(4, 3);
    cfg.voters = Vec::new();
    let n = RaftNode::new(cfg, recovered(None, vec![], 0)).expect("valid");
    assert_eq!(n.status().membership, Membership::default());
    // A snapshot records the config as of its index, not the latest one.
    let mut n = RaftNode::new(
        config(1, 3),
        recovered(
            Some(snap(&[1, 2, 3])),
            vec![
                config_entry(6, 2, &[1, 2, 4], &[1, 2, 3]),
                config_entry(7, 2, &[1, 2, 4], &[]),
            ],
            7,
        ),
    )
    .expect("valid");
    let _ = n.ready();
    let meta = n.snapshot_taken(LogIndex(6), vec![]).expect("applied");
    assert_eq!(
        (meta.voters, meta.outgoing),
        (ids(&[1, 2, 4]), ids(&[1, 2, 3])),
        "the joint config as of index 6"
    );
    assert_eq!(n.status().membership, Membership::simple(ids(&[1, 2, 4])));
}

#[test]
fn vote_requests_from_outside_the_config_are_ignored() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    c.tick_all(3);
    let follower = (1..=3).map(NodeId).find(|&n| n != leader).expect("f");
    let term = c.nodes[&follower].term();
    let n = c.nodes.get_mut(&follower).expect("f");
    for pre_vote in [true, false] {
        n.step(raft_msg(
            9,
            follower.0,
            RaftMessage::RequestVote {
                term: Term(term.0 + 5),
                pre_vote,
                transfer: true,
                last_log_index: LogIndex(1000),
                last_log_term: Term(term.0 + 4),
            },
        ))
        .expect("accepted, then ignored");
    }
    assert_eq!(n.term(), term, "a removed node cannot bump our term");
    let rd = n.ready();
    assert!(
        !rd.early_messages
            .iter()
            .chain(&rd.messages)
            .any(|m| m.to == NodeId(9)),
        "and gets no answer"
    );
}

#[test]
fn joining_nodes_vote_only_for_candidates_holding_the_entry_that_added_them() {
    // A blank joining core would grant any vote (its log is empty): without
    // a floor it must not, or a stale candidate counting a re-used node id
    // could win; with one, only candidates that hold that entry.
    let mut n = joint_candidate();
    n.campaign(Campaign::Election);
    let requests = n.ready().messages;
    let mut cfg = CoreConfig::new(NodeId(4), GroupId(1), Vec::new());
    cfg.seed = 4;
    let r = Recovered {
        hard_state: HardState {
            term: Term(1),
            vote: None,
            commit: LogIndex(0),
        },
        ..Recovered::default()
    };
    let req = requests
        .iter()
        .find(|m| m.to == NodeId(4))
        .expect("asked")
        .clone();
    // The candidate's log ends at (index 1, term 1): the joint entry.
    for (floor, grants) in [(None, false), (Some((1, 1)), true), (Some((1, 2)), false)] {
        let mut cfg = cfg.clone();
        cfg.join_floor = floor.map(|(t, i)| (Term(t), LogIndex(i)));
        let mut j = RaftNode::new(cfg, r.clone()).expect("joining core");
        for _ in 0..40 {
            j.tick(); // past a lease it might have promised before a restart
        }
        assert_eq!(j.term(), Term(1), "a joining node never campaigns");
        j.step(req.clone()).expect("accepted");
        let replies = j.ready().messages;
        let granted = replies.iter().any(|m| {
            matches!(
                m.payload,
                Payload::Raft(RaftMessage::VoteResponse { granted: true, .. })
            )
        });
        assert_eq!(granted, grants, "floor {floor:?}");
        if !grants {
            assert_eq!(j.term(), Term(1), "no term bump from an ignored request");
            assert!(replies.is_empty(), "and no answer");
        }
    }
}

/// Seed 1015515 of the membership sweep never ended (issue 20): an
/// acknowledgement sent by the previous incarnation of a node id (removed,
/// wiped, and added again in the same term) reached the leader after the
/// re-add; the leader took it as news about the new, empty node, probed it
/// at that index forever, and the network's duplicates multiplied the probes.
#[test]
fn a_stale_ack_from_a_wiped_incarnation_of_a_reused_node_id_is_ignored() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    let victim = (1..=3)
        .map(NodeId)
        .find(|&n| n != leader)
        .expect("a follower");
    for k in 0..5u8 {
        c.leader_node().propose(vec![k]).expect("leader accepts");
        c.settle();
    }
    let term = c.nodes[&leader].term();
    let old_last = c.nodes[&victim].log().last_index();
    let old_session = c.nodes[&leader].progress[&victim].session;
    let stale_ack = raft_msg(
        victim.0,
        leader.0,
        RaftMessage::AppendResponse {
            term,
            success: true,
            match_index: old_last,
            rejected: LogIndex(0),
            conflict_index: LogIndex(0),
            conflict_term: None,
            session: old_session,
        },
    );
    let all: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let remaining: Vec<NodeId> = all.iter().copied().filter(|&n| n != victim).collect();
    c.leader_node()
        .change_membership(remaining.clone())
        .expect("accepted");
    c.settle();
    assert_eq!(
        c.applied_configs(victim.0).last(),
        Some(&Membership::simple(remaining)),
        "the victim applied the configuration that removed it"
    );
    // Its runtime wipes the group; later the id is added back, empty.
    c.nodes.remove(&victim);
    c.add_joining(victim.0);
    c.leader_node().change_membership(all).expect("accepted");
    assert_eq!(c.nodes[&leader].term(), term, "the same term");
    c.leader_node().step(stale_ack).expect("valid message");
    assert_eq!(
        c.nodes[&leader].progress[&victim].matched,
        LogIndex(0),
        "an answer of an earlier session is no news about the new node"
    );
    c.tick_all(30);
    let last = c.nodes[&leader].log().last_index();
    assert_eq!(
        c.nodes[&victim].log().last_index(),
        last,
        "the re-added node caught up"
    );
    assert!(
        !c.nodes[&leader].status().membership_pending,
        "the change finished"
    );
}

fn votes_granted(messages: &[Message]) -> Vec<(NodeId, bool)> {
    messages
        .iter()
        .filter_map(|m| match m.payload {
            Payload::Raft(RaftMessage::VoteResponse { granted, .. }) => Some((m.to, granted)),
            _ => None,
        })
        .collect()
}

/// Seed 1055330 of the membership sweep elected a leader without a committed
/// configuration: two node ids removed, wiped and added back caught up only
/// to an old snapshot whose configuration named their old selves, and one
/// won an election in it with the other's vote. Below its join floor a
/// joining core neither campaigns nor votes in such a configuration.
/// Steps `m` into `n`, persists the Ready at once and returns what it sends.
fn step_drained(n: &mut RaftNode, m: Message) -> Vec<Message> {
    n.step(m).expect("a valid message");
    let rd = n.ready();
    n.persisted(rd.persist_id);
    rd.early_messages.into_iter().chain(rd.messages).collect()
}

/// Ticks `n` `ticks` times, persisting each Ready at once; what it sent.
fn tick_drained(n: &mut RaftNode, ticks: usize) -> Vec<Message> {
    let mut sent = Vec::new();
    for _ in 0..ticks {
        n.tick();
        let rd = n.ready();
        n.persisted(rd.persist_id);
        sent.extend(rd.early_messages);
        sent.extend(rd.messages);
    }
    sent
}

/// A RequestVote (or pre-vote) from `from` whose log ends at `last`.
fn vote_request(from: u64, to: u64, term: Term, pre_vote: bool, last: (LogIndex, Term)) -> Message {
    raft_msg(
        from,
        to,
        RaftMessage::RequestVote {
            term,
            pre_vote,
            transfer: false,
            last_log_index: last.0,
            last_log_term: last.1,
        },
    )
}

#[test]
fn a_rejoined_node_id_below_its_join_floor_neither_campaigns_nor_votes_in_its_old_configuration() {
    // n3 was added back by [2,3,4] (joint with [1,4,5]) at index 27, term 2.
    let mut cfg = CoreConfig::new(NodeId(3), GroupId(1), Vec::new());
    cfg.seed = 3;
    cfg.join_floor = Some((Term(2), LogIndex(27)));
    let r = Recovered {
        hard_state: HardState {
            term: Term(2),
            vote: None,
            commit: LogIndex(0),
        },
        ..Recovered::default()
    };
    let mut n = RaftNode::new(cfg, r).expect("a joining core");
    let step = step_drained;
    // The leader of term 2 sends an old snapshot (index 25): its voters
    // [2,3,5] are n3's and n2's wiped old selves.
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            index: LogIndex(25),
            term: Term(1),
            voters: ids(&[2, 3, 5]),
            outgoing: Vec::new(),
        },
        data: Vec::new(),
    };
    step(
        &mut n,
        raft_msg(
            5,
            3,
            RaftMessage::InstallSnapshot {
                term: Term(2),
                chunk: crate::snapshot_transfer::SnapshotChunk::whole(snapshot),
                session: 1,
            },
        ),
    );
    assert_eq!(
        n.status().membership,
        Membership::simple(ids(&[2, 3, 5])),
        "it holds the old configuration"
    );
    // The leader dies before n3 gets further: n3 must not campaign in [2,3,5].
    let sent = tick_drained(&mut n, 100);
    assert!(
        !sent
            .iter()
            .any(|m| matches!(m.payload, Payload::Raft(RaftMessage::RequestVote { .. }))),
        "no campaign below the join floor: {sent:?}"
    );
    assert_eq!(n.term(), Term(2), "and no term bump");
    // n2, added back as well and just as stale, campaigns in [2,3,5]: no vote.
    for pre_vote in [true, false] {
        let replies = step(
            &mut n,
            vote_request(2, 3, Term(3), pre_vote, (LogIndex(25), Term(1))),
        );
        assert!(
            votes_granted(&replies).iter().all(|&(_, granted)| !granted),
            "pre-vote {pre_vote}: no vote for a candidate below the floor: {replies:?}"
        );
    }
    assert_eq!(n.term(), Term(2), "an ignored request bumps no term");
    // A candidate past the floor gets the vote (the floor keeps elections
    // live): n4 of [1,4,5], whose log ends at (index 27, term 3).
    let replies = step(
        &mut n,
        vote_request(4, 3, Term(3), false, (LogIndex(27), Term(3))),
    );
    assert_eq!(votes_granted(&replies), vec![(NodeId(4), true)]);
    // n4 leads term 3 without the entry that added n3 (it was truncated):
    // its log holds the removal (26), its no-op (27) and [1,3,4,5] (28).
    // Past the floor, the configuration in n3's log is its own.
    let entries = vec![
        config_entry(26, 1, &[1, 4, 5], &[]),
        Entry {
            index: LogIndex(27),
            term: Term(3),
            kind: EntryKind::Noop,
        },
        config_entry(28, 3, &[1, 3, 4, 5], &[1, 4, 5]),
    ];
    step(
        &mut n,
        raft_msg(
            4,
            3,
            RaftMessage::AppendEntries {
                term: Term(3),
                prev_log_index: LogIndex(25),
                prev_log_term: Term(1),
                entries,
                leader_commit: LogIndex(26),
                session: 1,
            },
        ),
    );
    let sent = tick_drained(&mut n, 100);
    let mut asked: Vec<NodeId> = sent
        .iter()
        .filter(|m| matches!(m.payload, Payload::Raft(RaftMessage::RequestVote { .. })))
        .map(|m| m.to)
        .collect();
    asked.sort_unstable();
    asked.dedup();
    assert_eq!(
        asked,
        ids(&[1, 4, 5]),
        "past its floor, n3 campaigns in [1,3,4,5] joint with [1,4,5]"
    );
}

/// Regression (issue 21, finding 3): InstallSnapshot carried the whole state
/// machine in one message, so a state machine of more than about 45 MiB
/// (64 MiB after base64 and framing) passed the peer line limit, was lost,
/// and was resent forever: a follower that needed it never caught up.
#[test]
fn a_snapshot_larger_than_the_peer_line_limit_reaches_a_lagging_follower() {
    let (c, lagger, leader, state) = large_snapshot_to_a_lagger(NODE_SNAPSHOT_CHUNK_BYTES);
    assert_eq!(c.oversized, 0, "no message passed the peer line limit");
    assert_eq!(
        c.snapshots_installed.get(&lagger).copied(),
        Some(1),
        "the snapshot reached the lagger, once"
    );
    assert!(
        c.nodes[&lagger].log().snapshot().data == state,
        "the lagger holds the whole state, byte for byte"
    );
    assert_eq!(
        c.nodes[&lagger].log().last_index(),
        c.nodes[&leader].log().last_index()
    );
}

/// Proof of power for the test above: with the whole snapshot in one
/// message, as before chunking, the line limit drops it every time.
#[test]
fn a_snapshot_in_one_message_never_reaches_a_lagging_follower() {
    let (c, lagger, _, _) = large_snapshot_to_a_lagger(usize::MAX);
    assert!(c.oversized > 0, "the one message passed the line limit");
    assert_eq!(c.snapshots_installed.get(&lagger), None);
}

use crate::server::NODE_SNAPSHOT_CHUNK_BYTES;

/// A 3-node cluster with the node's batch limits and the peer line limit,
/// a lagging follower, and a 50 MiB snapshot on the leader sent in chunks of
/// `chunk_bytes`: (cluster, lagger, leader, the snapshot's data).
fn large_snapshot_to_a_lagger(chunk_bytes: usize) -> (Cluster, NodeId, NodeId, Vec<u8>) {
    use crate::protocol::line::MAX_PEER_LINE_BYTES;
    use crate::server::{NODE_MAX_BATCH_BYTES, NODE_MAX_BATCH_ENTRIES};
    let mut c = Cluster::with(3, |cfg| {
        cfg.max_batch_entries = NODE_MAX_BATCH_ENTRIES;
        cfg.max_batch_bytes = NODE_MAX_BATCH_BYTES;
        cfg.snapshot_chunk_bytes = chunk_bytes;
    });
    c.line_limit = Some(MAX_PEER_LINE_BYTES);
    let leader = c.elect();
    let lagger = (1..=3)
        .map(NodeId)
        .find(|&n| n != leader)
        .expect("a follower");
    c.isolate(lagger.0);
    for k in 0..5u8 {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(vec![k])
            .expect("leader accepts");
        c.settle();
    }
    // 50 MiB of state: about 67 MiB as one base64 line.
    let state: Vec<u8> = (0..50u32 << 20).map(|k| (k % 251) as u8).collect();
    let applied = c.nodes[&leader].log().applied();
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .snapshot_taken(applied, state.clone())
        .expect("applied");
    c.heal();
    c.tick_all(60);
    (c, lagger, leader, state)
}

// ----- whole Readys pinned for the key transitions -----
//
// Each test states the entire Ready a transition produces (openraft's engine
// tests assert the exact command list): what is written, what waits for the
// write, what may go before it, what is applied. A change to the ordering
// rule shows here as a diff, not as a rare simulator seed.

fn request_vote(to: u64, term: u64, pre_vote: bool) -> Message {
    raft_msg(
        1,
        to,
        RaftMessage::RequestVote {
            term: Term(term),
            pre_vote,
            transfer: false,
            last_log_index: LogIndex(0),
            last_log_term: Term(0),
        },
    )
}

fn noop(index: u64, term: u64) -> Entry {
    Entry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::Noop,
    }
}

fn soft(role: Role, term: u64, leader: Option<u64>) -> Option<SoftState> {
    Some(SoftState {
        role,
        term: Term(term),
        leader: leader.map(NodeId),
    })
}

fn hard(term: u64, vote: Option<u64>, commit: u64) -> Option<HardState> {
    Some(HardState {
        term: Term(term),
        vote: vote.map(NodeId),
        commit: LogIndex(commit),
    })
}

/// Node 1 of three, just elected in term 1: the Ready that made it leader,
/// not yet persisted.
fn elected_leader() -> (RaftNode, Ready) {
    let mut n1 = RaftNode::new(config(1, 3), Recovered::default()).expect("valid config");
    n1.campaign(Campaign::Election);
    let election = n1.ready();
    n1.persisted(election.persist_id);
    n1.step(vote_granted(2, 1)).expect("a vote of term 1");
    let won = n1.ready();
    (n1, won)
}

#[test]
fn a_pre_vote_asks_every_voter_and_writes_nothing() {
    let mut n1 = RaftNode::new(config(1, 3), Recovered::default()).expect("valid config");
    n1.campaign(Campaign::PreVote);
    let rd = n1.ready();
    assert_eq!(
        rd,
        Ready {
            persist_id: rd.persist_id,
            snapshot: None,
            hard_state: None,
            entries: vec![],
            messages: vec![request_vote(2, 1, true), request_vote(3, 1, true)],
            early_messages: vec![],
            committed: vec![],
            reads: vec![],
            soft_state: soft(Role::PreCandidate, 0, None),
        },
        "§9.6: the pre-vote asks about term 1 without anyone taking it"
    );
}

#[test]
fn a_granted_pre_vote_starts_an_election_whose_requests_wait_for_the_vote_to_be_durable() {
    let mut n1 = RaftNode::new(config(1, 3), Recovered::default()).expect("valid config");
    n1.campaign(Campaign::PreVote);
    let pre = n1.ready();
    n1.persisted(pre.persist_id);
    let granted = RaftMessage::VoteResponse {
        term: Term(1),
        pre_vote: true,
        granted: true,
    };
    n1.step(raft_msg(2, 1, granted)).expect("a pre-vote answer");
    let rd = n1.ready();
    assert_eq!(
        rd,
        Ready {
            persist_id: rd.persist_id,
            snapshot: None,
            hard_state: hard(1, Some(1), 0),
            entries: vec![],
            messages: vec![request_vote(2, 1, false), request_vote(3, 1, false)],
            early_messages: vec![],
            committed: vec![],
            reads: vec![],
            soft_state: soft(Role::Candidate, 1, None),
        },
        "§5.2: term and vote for itself written; the requests go in `messages`, after the write"
    );
}

#[test]
fn an_elected_leader_appends_a_noop_and_sends_it_while_its_own_write_is_made_durable() {
    let (n1, rd) = elected_leader();
    let append = |to: u64| {
        raft_msg(
            1,
            to,
            RaftMessage::AppendEntries {
                term: Term(1),
                prev_log_index: LogIndex(0),
                prev_log_term: Term(0),
                entries: vec![noop(1, 1)],
                leader_commit: LogIndex(0),
                session: n1.progress[&NodeId(to)].session,
            },
        )
    };
    assert_eq!(
        rd,
        Ready {
            persist_id: rd.persist_id,
            snapshot: None,
            hard_state: None,
            entries: vec![noop(1, 1)],
            messages: vec![],
            early_messages: vec![append(2), append(3)],
            committed: vec![],
            reads: vec![],
            soft_state: soft(Role::Leader, 1, Some(1)),
        },
        "§5.4.2 no-op; §10.2.1: the appends may leave before the leader's own write is durable"
    );
}

#[test]
fn a_follower_writes_the_leaders_entries_before_it_answers() {
    let (_, won) = elected_leader();
    let mut n2 = RaftNode::new(config(2, 3), Recovered::default()).expect("valid config");
    let to_n2 = won.early_messages.iter().filter(|m| m.to == NodeId(2));
    for m in to_n2 {
        n2.step(m.clone()).expect("the leader's append");
    }
    let rd = n2.ready();
    let answer = RaftMessage::AppendResponse {
        term: Term(1),
        success: true,
        match_index: LogIndex(1),
        rejected: LogIndex(0),
        conflict_index: LogIndex(0),
        conflict_term: None,
        session: 1,
    };
    assert_eq!(
        rd,
        Ready {
            persist_id: rd.persist_id,
            snapshot: None,
            hard_state: hard(1, None, 0),
            entries: vec![noop(1, 1)],
            messages: vec![raft_msg(2, 1, answer)],
            early_messages: vec![],
            committed: vec![],
            reads: vec![],
            soft_state: soft(Role::Follower, 1, Some(1)),
        },
        "§5.3: the new term and the entry are written; the answer waits for the write"
    );
}

#[test]
fn a_quorums_acknowledgement_commits_the_entry_and_hands_it_over_to_apply() {
    let (mut n1, won) = elected_leader();
    n1.persisted(won.persist_id);
    assert!(!n1.has_ready(), "nothing owed until a follower answers");
    let ack = acked(&n1, 2, 1, 1);
    n1.step(ack).expect("an acknowledgement");
    let rd = n1.ready();
    assert_eq!(
        rd,
        Ready {
            persist_id: rd.persist_id,
            snapshot: None,
            hard_state: hard(1, Some(1), 1),
            entries: vec![],
            messages: vec![],
            early_messages: vec![],
            committed: vec![noop(1, 1)],
            reads: vec![],
            soft_state: None,
        },
        "§5.3/§5.4.2: itself and node 2 hold index 1 of its own term: committed, to apply"
    );
}

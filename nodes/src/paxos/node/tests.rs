//! Unit tests of the Multi-Paxos core: a tiny in-memory cluster that
//! persists every Ready at once (through the simulator's storage) and
//! delivers messages in order, with links that can be cut.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::*;
use crate::consensus::Term;
use crate::sim::storage::{SimStorage, Write};

struct Cluster {
    nodes: BTreeMap<NodeId, Option<PaxosNode>>,
    storage: BTreeMap<NodeId, SimStorage>,
    net: VecDeque<Message>,
    cut: BTreeSet<(NodeId, NodeId)>,
    applied: BTreeMap<NodeId, Vec<Entry>>,
    reads: Vec<(NodeId, ReadOutcome)>,
    bugs: Vec<Bug>,
    /// Nodes 1..=n are the seed voters; nodes after them are spares that
    /// start joining (empty voters).
    n: u64,
    /// Nodes restarted as joining cores (empty voters) after a wipe.
    joining: BTreeSet<NodeId>,
    /// (max_batch_entries, max_batch_bytes) for cores started from now on.
    batch_limits: Option<(usize, usize)>,
    /// `snapshot_chunk_bytes` for cores started from now on.
    snapshot_chunk_bytes: Option<usize>,
    /// If set, a message whose JSON line is longer is lost, as the real
    /// transport's line reader refuses it; `oversized` counts them.
    line_limit: Option<usize>,
    oversized: usize,
}

fn cfg(id: u64, n: u64, bugs: &[Bug]) -> CoreConfig {
    let mut c = CoreConfig::new(NodeId(id), GroupId(1), (1..=n).map(NodeId).collect());
    c.seed = id * 7919;
    c.bugs = bugs.to_vec();
    c
}

impl Cluster {
    fn new(n: u64) -> Cluster {
        Cluster::with_bugs(n, &[])
    }

    /// `n` seed voters and `spares` joining nodes (ids n+1 ..= n+spares).
    fn with_spares(n: u64, spares: u64) -> Cluster {
        let mut c = Cluster::new(n);
        for id in n + 1..=n + spares {
            c.storage.insert(NodeId(id), SimStorage::default());
            c.applied.insert(NodeId(id), Vec::new());
            c.nodes.insert(NodeId(id), None);
            c.restart(NodeId(id));
        }
        c
    }

    fn with_bugs(n: u64, bugs: &[Bug]) -> Cluster {
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            storage: BTreeMap::new(),
            net: VecDeque::new(),
            cut: BTreeSet::new(),
            applied: BTreeMap::new(),
            reads: Vec::new(),
            bugs: bugs.to_vec(),
            n,
            joining: BTreeSet::new(),
            batch_limits: None,
            snapshot_chunk_bytes: None,
            line_limit: None,
            oversized: 0,
        };
        for id in 1..=n {
            c.storage.insert(NodeId(id), SimStorage::default());
            c.applied.insert(NodeId(id), Vec::new());
            c.nodes.insert(NodeId(id), None);
            c.restart(NodeId(id));
        }
        c
    }

    fn node(&mut self, id: u64) -> &mut PaxosNode {
        self.nodes
            .get_mut(&NodeId(id))
            .expect("node exists")
            .as_mut()
            .expect("node is up")
    }

    fn crash(&mut self, id: u64) {
        *self.nodes.get_mut(&NodeId(id)).expect("node exists") = None;
        self.storage.get_mut(&NodeId(id)).expect("storage").crash();
    }

    fn restart(&mut self, id: NodeId) {
        let n = self.n;
        let rec = self.storage[&id].recovered();
        let mut c = cfg(id.0, n, &self.bugs);
        if id.0 > n || self.joining.contains(&id) {
            c.voters = Vec::new();
        }
        if let Some((entries, bytes)) = self.batch_limits {
            c.max_batch_entries = entries;
            c.max_batch_bytes = bytes;
        }
        if let Some(bytes) = self.snapshot_chunk_bytes {
            c.snapshot_chunk_bytes = bytes;
        }
        let mut node = PaxosNode::new(c, rec).expect("recovers");
        node.enable_journal();
        // The state machine restarts from the snapshot, so re-applying starts there.
        let snap = self.storage[&id]
            .durable()
            .snapshot
            .as_ref()
            .map_or(LogIndex(0), |s| s.meta.index);
        self.applied
            .get_mut(&id)
            .expect("applied")
            .retain(|e| e.index <= snap);
        self.nodes.insert(id, Some(node));
    }

    fn drain(&mut self, id: NodeId) {
        loop {
            let Some(node) = self.nodes.get_mut(&id).expect("exists").as_mut() else {
                return;
            };
            if !node.has_ready() {
                return;
            }
            let rd = node.ready();
            let st = self.storage.get_mut(&id).expect("storage");
            if rd.must_persist() {
                st.write(Write::Ready {
                    snapshot: rd.snapshot.clone(),
                    hard_state: rd.hard_state,
                    entries: rd.entries.clone(),
                });
                st.sync_all();
            }
            node.persisted(rd.persist_id);
            self.net.extend(rd.messages);
            let applied = self.applied.get_mut(&id).expect("applied");
            if let Some(s) = &rd.snapshot {
                applied.retain(|e| e.index <= s.meta.index);
                applied.truncate(0);
                // Stand-in entries for what the snapshot covers.
                for i in 1..=s.meta.index.0 {
                    applied.push(Entry {
                        index: LogIndex(i),
                        term: Term(0),
                        kind: EntryKind::Noop,
                    });
                }
            }
            for e in rd.committed {
                assert_eq!(e.index.0, applied.len() as u64 + 1, "{id} applies in order");
                applied.push(e);
            }
            self.reads.extend(rd.reads.into_iter().map(|r| (id, r)));
        }
    }

    fn drain_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.drain(id);
        }
    }

    fn deliver_all(&mut self) {
        self.drain_all();
        let mut budget = 100_000;
        while let Some(m) = self.net.pop_front() {
            budget -= 1;
            assert!(budget > 0, "the cluster never quiesces");
            if self.cut.contains(&(m.from, m.to)) || self.oversized(&m) {
                continue;
            }
            let to = m.to;
            if let Some(node) = self.nodes.get_mut(&to).expect("exists").as_mut() {
                node.step(m).expect("a well-addressed message");
                node.invariants().expect("invariants hold");
                self.drain(to);
            }
        }
    }

    /// Whether `m` passes the line limit (and is then lost, and counted).
    fn oversized(&mut self, m: &Message) -> bool {
        let Some(limit) = self.line_limit else {
            return false;
        };
        let line = serde_json::to_vec(m).expect("a message serializes");
        let over = line.len() > limit;
        self.oversized += usize::from(over);
        over
    }

    fn tick_all(&mut self, ticks: u64) {
        for _ in 0..ticks {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                if let Some(n) = self.nodes.get_mut(&id).expect("exists").as_mut() {
                    n.tick();
                }
            }
            self.deliver_all();
        }
    }

    fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.as_ref().is_some_and(|n| n.role() == Role::Leader))
            .map(|(id, _)| *id)
            .collect()
    }

    fn elect(&mut self) -> NodeId {
        for _ in 0..200 {
            self.tick_all(1);
            let l = self.leaders();
            if l.len() == 1 {
                return l[0];
            }
        }
        panic!("no leader after 200 ticks");
    }

    fn isolate(&mut self, id: u64) {
        for other in self.nodes.keys().copied().collect::<Vec<_>>() {
            if other.0 != id {
                self.cut.insert((NodeId(id), other));
                self.cut.insert((other, NodeId(id)));
            }
        }
    }

    /// Deliver messages one by one until `done` holds (or the network is empty).
    fn deliver_until(&mut self, mut done: impl FnMut(&mut Cluster) -> bool) {
        self.drain_all();
        while !done(self) {
            let Some(m) = self.net.pop_front() else {
                return;
            };
            if self.cut.contains(&(m.from, m.to)) {
                continue;
            }
            let to = m.to;
            if let Some(node) = self.nodes.get_mut(&to).expect("exists").as_mut() {
                node.step(m).expect("a well-addressed message");
                node.invariants().expect("invariants hold");
                self.drain(to);
            }
        }
    }

    /// Stop `id`, delete its storage and start it again as a joining core
    /// (what a runtime does to a removed node that is added back later).
    fn wipe_and_join(&mut self, id: u64) {
        self.crash(id);
        self.storage.insert(NodeId(id), SimStorage::default());
        self.applied.insert(NodeId(id), Vec::new());
        self.joining.insert(NodeId(id));
        self.restart(NodeId(id));
    }

    fn cut_both(&mut self, a: u64, b: u64) {
        self.cut.insert((NodeId(a), NodeId(b)));
        self.cut.insert((NodeId(b), NodeId(a)));
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    fn values(&self, id: u64) -> Vec<EntryKind> {
        self.applied[&NodeId(id)]
            .iter()
            .map(|e| e.kind.clone())
            .collect()
    }
}

fn cmd(v: u8) -> EntryKind {
    EntryKind::Normal(vec![v])
}

#[test]
fn a_single_node_leads_itself_and_commits() {
    let mut c = Cluster::new(1);
    let l = c.elect();
    assert_eq!(l, NodeId(1));
    let p = c.node(1).propose(vec![7]).expect("leader accepts");
    c.deliver_all();
    let applied = &c.applied[&NodeId(1)];
    let e = applied
        .iter()
        .find(|e| e.index == p.index)
        .expect("the proposal is applied");
    assert_eq!(
        e.term, p.term,
        "the committed entry carries the proposal's ballot"
    );
    assert_eq!(e.kind, cmd(7));
}

#[test]
fn three_nodes_elect_one_leader_and_replicate_in_order() {
    let mut c = Cluster::new(3);
    let l = c.elect();
    let mut props = Vec::new();
    for v in 1..=20u8 {
        props.push(c.node(l.0).propose(vec![v]).expect("leader accepts"));
    }
    c.tick_all(10);
    assert_eq!(c.leaders(), vec![l], "one stable leader");
    for id in 1..=3 {
        let applied = &c.applied[&NodeId(id)];
        for (v, p) in props.iter().enumerate() {
            let e = &applied[(p.index.0 - 1) as usize];
            assert_eq!(e.kind, cmd(v as u8 + 1), "node {id} slot {}", p.index);
            assert_eq!(e.term, p.term);
        }
    }
    // Followers refuse proposals and name the leader.
    let f = if l.0 == 1 { 2 } else { 1 };
    assert_eq!(
        c.node(f).propose(vec![1]),
        Err(NotLeader { leader: Some(l) })
    );
}

#[test]
fn a_new_leader_reproposes_a_value_one_acceptor_accepted() {
    let mut c = Cluster::new(3);
    let l = c.elect();
    c.tick_all(5);
    let others: Vec<u64> = (1..=3).filter(|&i| i != l.0).collect();
    let (a, b) = (others[0], others[1]);
    // Only `a` hears the Accept for the next value.
    c.cut.insert((l, NodeId(b)));
    let p = c.node(l.0).propose(vec![42]).expect("leader accepts");
    c.deliver_all();
    assert!(
        c.node(a).log().entry(p.index).is_some(),
        "a accepted the value"
    );
    assert!(c.node(b).log().entry(p.index).is_none(), "b never saw it");
    c.crash(l.0);
    c.heal();
    let new = c.elect();
    assert_ne!(new, l);
    c.tick_all(10);
    for id in [a, b] {
        let e = &c.applied[&NodeId(id)][(p.index.0 - 1) as usize];
        assert_eq!(
            e.kind,
            cmd(42),
            "the accepted value is chosen at its slot on {id}"
        );
        assert_eq!(e.term, p.term, "it keeps the ballot that first proposed it");
    }
}

#[test]
fn phase_one_picks_the_value_of_the_highest_ballot_and_fills_gaps_with_noops() {
    // Ballots of round 1: the candidate (node 3) outranks both.
    let b1 = Ballot::new(1, NodeId(1));
    let b2 = Ballot::new(1, NodeId(2));
    let e = |i: u64, acc: Ballot, v: u8| Entry {
        index: LogIndex(i),
        term: Stamp::new(acc, acc).term(),
        kind: cmd(v),
    };
    let mut node = PaxosNode::new(cfg(3, 3, &[]), Recovered::default()).expect("fresh");
    // Candidate 3 runs phase 1 with ballot b3.
    node.campaign(Campaign::Ballot);
    let b3 = node.promised();
    assert_eq!(b3.node(), NodeId(3));
    let rd = node.ready();
    assert!(
        rd.hard_state.is_some_and(|h| h.term == b3.term()),
        "the promise is written before the Prepare goes out"
    );
    assert_eq!(rd.messages.len(), 2);
    node.persisted(rd.persist_id);
    // Acceptor 1 accepted slot 1 = 10 at b1 and slot 3 = 30 at b1; acceptor 2
    // accepted slot 1 = 11 at b2. Nobody accepted slot 2.
    let promise = |from: u64, entries: Vec<Entry>| Message {
        group: GroupId(1),
        from: NodeId(from),
        to: NodeId(3),
        payload: Payload::Paxos(PaxosMessage::Promise {
            ballot: b3,
            commit: LogIndex(0),
            snapshot: None,
            entries,
            resume: None,
            more: false,
        }),
    };
    node.step(promise(1, vec![e(1, b1, 10), e(2, b1, 20), e(3, b1, 30)]))
        .expect("promise");
    assert_eq!(node.role(), Role::Leader, "two of three promised");
    let merged: Vec<(u64, Ballot, EntryKind)> = node
        .log()
        .entries()
        .iter()
        .map(|e| (e.index.0, Stamp::of(e.term).accepted, e.kind.clone()))
        .collect();
    assert_eq!(
        merged,
        vec![(1, b3, cmd(10)), (2, b3, cmd(20)), (3, b3, cmd(30))]
    );

    let mut node = PaxosNode::new(cfg(3, 5, &[]), Recovered::default()).expect("fresh");
    node.campaign(Campaign::Ballot);
    let b3 = node.promised();
    let rd = node.ready();
    node.persisted(rd.persist_id);
    let promise = |from: u64, entries: Vec<Entry>| Message {
        group: GroupId(1),
        from: NodeId(from),
        to: NodeId(3),
        payload: Payload::Paxos(PaxosMessage::Promise {
            ballot: b3,
            commit: LogIndex(0),
            snapshot: None,
            entries,
            resume: None,
            more: false,
        }),
    };
    node.step(promise(1, vec![e(1, b1, 10), e(2, b1, 20), e(3, b1, 30)]))
        .expect("promise");
    let mut e3 = e(3, b2, 33);
    e3.index = LogIndex(3);
    node.step(promise(2, vec![e(1, b2, 11), e(2, b1, 20), e3]))
        .expect("promise");
    assert_eq!(node.role(), Role::Leader, "three of five promised");
    let kinds: Vec<EntryKind> = node
        .log()
        .entries()
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(
        kinds,
        vec![cmd(11), cmd(20), cmd(33)],
        "the highest ballot wins each slot"
    );
    let origin = Stamp::of(node.log().entries()[0].term).origin;
    assert_eq!(origin, b2, "a re-proposed value keeps its origin ballot");
    let _ = b1;
}

#[test]
fn a_slot_nobody_accepted_becomes_a_noop() {
    // With contiguous acceptor logs a hole needs a promise that skips a slot;
    // P2c then leaves the leader free there, and it proposes a no-op.
    let b1 = Ballot::new(1, NodeId(1));
    let mut node = PaxosNode::new(cfg(2, 3, &[]), Recovered::default()).expect("fresh");
    node.campaign(Campaign::Ballot);
    let b = node.promised();
    let rd = node.ready();
    node.persisted(rd.persist_id);
    let entries = vec![Entry {
        index: LogIndex(2),
        term: Stamp::new(b1, b1).term(),
        kind: cmd(2),
    }];
    node.step(Message {
        group: GroupId(1),
        from: NodeId(1),
        to: NodeId(2),
        payload: Payload::Paxos(PaxosMessage::Promise {
            ballot: b,
            commit: LogIndex(0),
            snapshot: None,
            entries,
            resume: None,
            more: false,
        }),
    })
    .expect("promise");
    assert_eq!(node.role(), Role::Leader);
    let e1 = node.log().entry(LogIndex(1)).expect("slot 1 filled");
    assert_eq!(e1.kind, EntryKind::Noop);
    assert_eq!(
        Stamp::of(e1.term).origin,
        b,
        "the no-op is the new leader's own proposal"
    );
    assert_eq!(
        node.log().entry(LogIndex(2)).map(|e| e.kind.clone()),
        Some(cmd(2))
    );
}

#[test]
fn an_acceptor_refuses_a_lower_ballot_and_the_stale_leader_steps_down() {
    let mut c = Cluster::new(3);
    let old = c.elect();
    c.tick_all(3);
    c.isolate(old.0);
    let new = c.elect_excluding(old);
    assert_ne!(new, old);
    let new_ballot = c.node(new.0).promised();
    assert!(new_ballot > c.node(old.0).promised());
    // The old leader still believes it leads; its Accept is refused.
    assert_eq!(c.node(old.0).role(), Role::Leader);
    c.node(old.0)
        .propose(vec![9])
        .expect("it still thinks it leads");
    c.heal();
    c.deliver_all();
    c.tick_all(10);
    assert_eq!(c.leaders(), vec![new], "the Nack deposed the stale leader");
    assert!(
        c.node(old.0).promised() >= new_ballot,
        "it learned the higher ballot"
    );
    // The stale proposal was never applied anywhere.
    for id in 1..=3 {
        assert!(
            !c.values(id).contains(&cmd(9)),
            "node {id} applied a value of a deposed leader"
        );
    }
}

impl Cluster {
    fn elect_excluding(&mut self, old: NodeId) -> NodeId {
        for _ in 0..300 {
            self.tick_all(1);
            let l: Vec<NodeId> = self.leaders().into_iter().filter(|&l| l != old).collect();
            if l.len() == 1 {
                return l[0];
            }
        }
        panic!("no new leader");
    }
}

#[test]
fn an_accept_after_a_gap_is_refused_with_what_the_acceptor_holds() {
    let mut node = PaxosNode::new(cfg(2, 3, &[]), Recovered::default()).expect("fresh");
    let b = Ballot::new(1, NodeId(1));
    let e = Entry {
        index: LogIndex(3),
        term: Stamp::new(b, b).term(),
        kind: cmd(3),
    };
    node.step(Message {
        group: GroupId(1),
        from: NodeId(1),
        to: NodeId(2),
        payload: Payload::Paxos(PaxosMessage::Accept {
            ballot: b,
            entries: vec![e],
            commit: LogIndex(0),
        }),
    })
    .expect("step");
    let rd = node.ready();
    assert!(rd.entries.is_empty(), "nothing accepted across a gap");
    match &rd.messages[..] {
        [Message {
            payload:
                Payload::Paxos(PaxosMessage::Accepted {
                    ok: false, agreed, ..
                }),
            ..
        }] => assert_eq!(*agreed, LogIndex(0)),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        node.promised(),
        b,
        "the Accept still counts as a promise of its ballot"
    );
    assert_eq!(
        rd.hard_state.map(|h| h.term),
        Some(b.term()),
        "and that promise is persisted before the reply"
    );
}

#[test]
fn reads_wait_for_a_quorum_round_and_fail_when_leadership_is_lost() {
    let mut c = Cluster::new(3);
    let l = c.elect();
    c.node(l.0).propose(vec![5]).expect("leader");
    c.deliver_all();
    c.reads.clear();
    // Cut the leader off: the read round cannot complete.
    c.isolate(l.0);
    c.node(l.0)
        .read_index(1)
        .expect("the leader takes the read");
    c.deliver_all();
    assert!(c.reads.is_empty(), "no quorum, no answer");
    // Check-quorum makes it step down; the read fails.
    c.tick_all(40);
    assert!(
        c.reads
            .iter()
            .any(|(n, r)| *n == l && matches!(r, ReadOutcome::Failed { ctx: 1, .. })),
        "{:?}",
        c.reads
    );
    c.heal();
    let l2 = c.elect();
    c.tick_all(5);
    c.reads.clear();
    c.node(l2.0).read_index(2).expect("leader");
    c.deliver_all();
    let commit = c.node(l2.0).log().commit();
    assert!(
        matches!(c.reads[..], [(n, ReadOutcome::Ready { ctx: 2, index })] if n == l2 && index <= commit && index >= LogIndex(1)),
        "{:?}",
        c.reads
    );
    // Followers refuse reads.
    let f = (1..=3).find(|&i| i != l2.0).expect("a follower");
    assert!(c.node(f).read_index(3).is_err());
}

#[test]
fn stale_read_bug_answers_on_a_follower_at_once() {
    let mut c = Cluster::with_bugs(3, &[Bug::StaleRead]);
    let l = c.elect();
    let f = (1..=3).find(|&i| i != l.0).expect("a follower");
    c.reads.clear();
    c.node(f).read_index(9).expect("the bug answers anywhere");
    c.drain_all();
    assert!(
        matches!(c.reads[..], [(n, ReadOutcome::Ready { ctx: 9, .. })] if n == NodeId(f)),
        "{:?}",
        c.reads
    );
}

#[test]
fn a_lagging_acceptor_catches_up_by_snapshot() {
    let mut c = Cluster::new(3);
    let l = c.elect();
    let f = (1..=3).find(|&i| i != l.0).expect("a follower");
    c.isolate(f);
    for v in 0..30u8 {
        c.node(l.0).propose(vec![v]).expect("leader");
        c.deliver_all();
    }
    let applied = c.node(l.0).log().applied();
    let meta = c
        .node(l.0)
        .snapshot_taken(applied, b"sm".to_vec())
        .expect("snapshot");
    assert_eq!(meta.index, applied);
    c.heal();
    c.tick_all(15);
    let fnode = c.node(f);
    assert!(
        fnode.log().snapshot_index() >= meta.index,
        "the follower installed the snapshot"
    );
    assert!(fnode.log().commit() >= applied);
    assert_eq!(
        c.storage[&NodeId(f)]
            .durable()
            .snapshot
            .as_ref()
            .map(|s| s.data.clone()),
        Some(b"sm".to_vec())
    );
}

#[test]
fn a_restarted_acceptor_keeps_its_promise_and_accepted_values() {
    let mut c = Cluster::new(3);
    let l = c.elect();
    for v in 0..5u8 {
        c.node(l.0).propose(vec![v]).expect("leader");
    }
    c.deliver_all();
    let f = (1..=3).find(|&i| i != l.0).expect("a follower");
    let (promised, last, commit) = {
        let n = c.node(f);
        (n.promised(), n.log().last_index(), n.log().commit())
    };
    c.crash(f);
    c.restart(NodeId(f));
    let n = c.node(f);
    assert_eq!(n.promised(), promised);
    assert_eq!(n.log().last_index(), last);
    assert_eq!(n.log().commit(), commit);
    c.tick_all(10);
    assert_eq!(c.values(f), c.values(l.0), "it re-learns the same values");
}

#[test]
fn leadership_transfer_hands_over_to_the_target() {
    let mut c = Cluster::new(3);
    let l = c.elect();
    c.node(l.0).propose(vec![1]).expect("leader");
    c.deliver_all();
    let to = NodeId((1..=3).find(|&i| i != l.0).expect("another"));
    c.node(l.0).transfer_leader(to).expect("leader transfers");
    c.deliver_all();
    c.tick_all(3);
    assert_eq!(c.leaders(), vec![to]);
    assert!(
        c.node(l.0).transfer_leader(to).is_err(),
        "the old leader no longer leads"
    );
}

#[test]
fn recovery_refuses_raft_state_and_bad_configs() {
    let rec = Recovered {
        hard_state: HardState {
            term: Term(3),
            vote: Some(NodeId(1)),
            commit: LogIndex(0),
        },
        ..Recovered::default()
    };
    assert!(matches!(
        PaxosNode::new(cfg(1, 3, &[]), rec),
        Err(ConfigError::Recovered(_))
    ));
    let mut bad = cfg(1, 3, &[]);
    bad.voters = vec![NodeId(1), NodeId(300)];
    assert!(matches!(
        PaxosNode::new(bad, Recovered::default()),
        Err(ConfigError::Invalid(_))
    ));
    let mut node = PaxosNode::new(cfg(1, 3, &[]), Recovered::default()).expect("fresh");
    let raft = Message {
        group: GroupId(1),
        from: NodeId(2),
        to: NodeId(1),
        payload: Payload::Raft(crate::raft::message::RaftMessage::TimeoutNow { term: Term(1) }),
    };
    assert!(matches!(
        node.step(raft),
        Err(StepError::WrongProtocol { .. })
    ));
}

#[test]
fn the_journal_sees_promises_accepts_and_learned_values() {
    let mut c = Cluster::new(3);
    let l = c.elect();
    c.node(l.0).propose(vec![8]).expect("leader");
    c.tick_all(3);
    let j = c.node(l.0).take_journal();
    assert!(j
        .iter()
        .any(|o| matches!(o, Observation::Promised(b) if b.node() == l)));
    assert!(j
        .iter()
        .any(|o| matches!(o, Observation::Accepted(e) if e.kind == cmd(8))));
    assert!(j
        .iter()
        .any(|o| matches!(o, Observation::Learned(e) if e.kind == cmd(8))));
}

#[test]
fn a_candidate_leads_only_once_its_own_promise_is_durable() {
    let mut node = PaxosNode::new(cfg(1, 5, &[]), Recovered::default()).expect("fresh");
    node.campaign(Campaign::Ballot);
    let b = node.promised();
    let rd = node.ready();
    for from in 2..=4 {
        let m = Message {
            group: GroupId(1),
            from: NodeId(from),
            to: NodeId(1),
            payload: Payload::Paxos(PaxosMessage::Promise {
                ballot: b,
                commit: LogIndex(0),
                snapshot: None,
                entries: vec![],
                resume: None,
                more: false,
            }),
        };
        node.step(m).expect("promise");
    }
    assert_eq!(
        node.role(),
        Role::Candidate,
        "three remote promises, but our own is not on disk yet"
    );
    node.persisted(rd.persist_id);
    assert_eq!(node.role(), Role::Leader);
}

// ----- membership -----

fn ids(v: &[u64]) -> Vec<NodeId> {
    v.iter().copied().map(NodeId).collect()
}

fn config(v: &[u64]) -> EntryKind {
    EntryKind::ConfigChange(Membership::simple(ids(v)))
}

#[test]
fn change_membership_refuses_bad_sets_and_followers() {
    let mut c = Cluster::new(3);
    let l = c.elect();
    let f = (1..=3).find(|&i| i != l.0).expect("a follower");
    assert!(matches!(
        c.node(f).change_membership(ids(&[1, 2])),
        Err(MembershipError::NotLeader(NotLeader { leader: Some(x) })) if x == l
    ));
    for bad in [vec![], vec![2, 1], vec![1, 1, 2], vec![0, 1], vec![1, 256]] {
        assert!(
            matches!(
                c.node(l.0).change_membership(ids(&bad)),
                Err(MembershipError::Invalid(_))
            ),
            "{bad:?} is refused"
        );
    }
    assert!(!c.node(l.0).status().membership_pending);
}

#[test]
fn a_leader_proposes_nothing_beyond_an_unchosen_configuration_slot() {
    let mut c = Cluster::with_spares(3, 1);
    let l = c.elect();
    c.node(l.0).propose(vec![1]).expect("leader");
    c.deliver_all();
    // The leader hears nobody: the configuration slot stays unchosen.
    for i in 1..=4 {
        if i != l.0 {
            c.cut.insert((l, NodeId(i)));
        }
    }
    let p = c
        .node(l.0)
        .change_membership(ids(&[1, 2, 3, 4]))
        .expect("leader starts the change");
    c.deliver_all();
    let st = c.node(l.0).status();
    assert!(st.membership_pending, "the change is in flight");
    assert_eq!(
        st.membership.voters,
        ids(&[1, 2, 3]),
        "still the old configuration"
    );
    assert_eq!(
        c.node(l.0).propose(vec![2]),
        Err(NotLeader { leader: Some(l) }),
        "α = 1: no proposal beyond the unchosen configuration slot"
    );
    assert_eq!(
        c.node(l.0).change_membership(ids(&[1, 2, 3])),
        Err(MembershipError::InProgress)
    );
    assert_eq!(c.node(l.0).log().last_index(), p.index, "nothing after it");
    c.heal();
    c.tick_all(10);
    let st = c.node(l.0).status();
    assert!(!st.membership_pending, "the change is done");
    assert_eq!(st.membership.voters, ids(&[1, 2, 3, 4]));
    assert!(c.applied[&l]
        .iter()
        .any(|e| e.index == p.index && e.kind == config(&[1, 2, 3, 4])));
    // Now proposals flow again, decided by a majority of the new voters.
    let q = c.node(l.0).propose(vec![3]).expect("no longer stalled");
    assert_eq!(q.index, p.index.next());
    c.tick_all(10);
    for id in 1..=4 {
        assert!(
            c.applied[&NodeId(id)]
                .iter()
                .any(|e| e.index == q.index && e.kind == cmd(3)),
            "node {id} applied the value after the configuration"
        );
        assert_eq!(c.node(id).status().membership.voters, ids(&[1, 2, 3, 4]));
    }
}

#[test]
fn phase_one_runs_again_in_the_configuration_it_finds() {
    // {1,2,3} -> {1,2,3,4,5}. The old leader gets the configuration chosen
    // (its followers accept it but never hear it is chosen), then gets X
    // chosen after it by {leader, 4, 5} alone, and crashes. A new leader's
    // phase 1 in {1,2,3} finds the configuration unchosen; only phase 1 in
    // {1,..,5} can reveal X.
    let mut c = Cluster::with_spares(3, 2);
    let l = c.elect();
    let others: Vec<u64> = (1..=3).filter(|&i| i != l.0).collect();
    let (a, b) = (others[0], others[1]);
    let p = c
        .node(l.0)
        .change_membership(ids(&[1, 2, 3, 4, 5]))
        .expect("leader");
    let j = p.index;
    c.deliver_until(|c| c.node(l.0).log().commit() >= j);
    for f in [a, b] {
        c.cut.insert((l, NodeId(f)));
    }
    c.deliver_all();
    let x = c
        .node(l.0)
        .propose(vec![42])
        .expect("the configuration is chosen");
    assert_eq!(x.index, j.next());
    c.deliver_all();
    c.tick_all(3);
    assert!(
        c.node(l.0).log().commit() >= x.index,
        "X chosen by {{l, 4, 5}}"
    );
    for f in [a, b] {
        assert!(c.node(f).log().commit() < j, "{f} never learned the commit");
        assert!(c.node(f).log().entry(x.index).is_none(), "{f} never saw X");
    }
    c.crash(l.0);
    c.heal();
    // 4 and 5 cannot reach the old voters yet.
    for f in [a, b] {
        for s in [4, 5] {
            c.cut_both(f, s);
        }
    }
    let new = c.elect();
    assert!(new.0 == a || new.0 == b, "an old voter leads");
    c.tick_all(5);
    let st = c.node(new.0).status();
    assert!(
        st.commit_index >= j,
        "it got the configuration chosen again"
    );
    assert_eq!(st.membership.voters, ids(&[1, 2, 3, 4, 5]));
    assert!(
        st.membership_pending,
        "phase 1 in the new configuration is not done"
    );
    assert!(
        c.node(new.0).log().entry(x.index).is_none(),
        "it proposed nothing after the configuration"
    );
    assert_eq!(
        c.node(new.0).propose(vec![7]),
        Err(NotLeader { leader: Some(new) })
    );
    c.heal();
    c.tick_all(20);
    let leader = c.leaders();
    assert_eq!(leader.len(), 1, "one leader");
    for id in [a, b, 4, 5] {
        let e = c.applied[&NodeId(id)]
            .iter()
            .find(|e| e.index == x.index)
            .unwrap_or_else(|| panic!("{id} applied slot {}", x.index));
        assert_eq!(e.kind, cmd(42), "X survives at its slot on {id}");
        assert_eq!(e.term, x.term);
    }
    assert!(!c.node(leader[0].0).status().membership_pending);
}

#[test]
fn a_joining_node_learns_its_configuration_from_a_snapshot() {
    let mut c = Cluster::with_spares(3, 1);
    // A joining node takes no initiative.
    c.tick_all(1);
    let st = c.node(4).status();
    assert!(st.membership.voters.is_empty(), "it knows no configuration");
    let l = c.elect();
    for _ in 0..100 {
        c.tick_all(1);
        assert_eq!(
            c.node(4).role(),
            Role::Follower,
            "a joining node never campaigns"
        );
    }
    for v in 0..20u8 {
        c.node(l.0).propose(vec![v]).expect("leader");
    }
    c.deliver_all();
    let applied = c.node(l.0).log().applied();
    let meta = c
        .node(l.0)
        .snapshot_taken(applied, b"sm".to_vec())
        .expect("snapshot");
    assert_eq!(
        meta.voters,
        ids(&[1, 2, 3]),
        "the configuration as of the snapshot"
    );
    let p = c
        .node(l.0)
        .change_membership(ids(&[1, 2, 3, 4]))
        .expect("leader");
    c.tick_all(10);
    let n4 = c.node(4);
    assert!(
        n4.log().snapshot_index() >= meta.index,
        "node 4 caught up by snapshot"
    );
    assert!(n4.log().commit() >= p.index);
    assert_eq!(n4.status().membership.voters, ids(&[1, 2, 3, 4]));
    assert!(n4.is_member());
    let durable = c.storage[&NodeId(4)].durable();
    assert_eq!(
        durable.snapshot.as_ref().map(|s| s.meta.voters.clone()),
        Some(ids(&[1, 2, 3]))
    );
    // A snapshot after the change records the new voters.
    let applied = c.node(l.0).log().applied();
    let meta = c
        .node(l.0)
        .snapshot_taken(applied, b"sm2".to_vec())
        .expect("snapshot");
    assert_eq!(meta.voters, ids(&[1, 2, 3, 4]));
}

#[test]
fn recovery_picks_the_latest_configuration() {
    let b = Ballot::new(1, NodeId(1));
    let e = |i: u64, kind: EntryKind| Entry {
        index: LogIndex(i),
        term: Stamp::new(b, b).term(),
        kind,
    };
    let hs = HardState {
        term: b.term(),
        vote: None,
        commit: LogIndex(3),
    };
    // Chosen configurations at 1 and 3, an unchosen one at 4.
    let rec = Recovered {
        hard_state: hs,
        snapshot: None,
        entries: vec![
            e(1, config(&[1, 2, 4])),
            e(2, cmd(1)),
            e(3, config(&[1, 4, 5])),
            e(4, config(&[1, 5])),
        ],
    };
    let node = PaxosNode::new(cfg(1, 3, &[]), rec).expect("recovers");
    let st = node.status();
    assert_eq!(
        st.membership.voters,
        ids(&[1, 4, 5]),
        "the latest chosen one"
    );
    assert!(st.membership_pending, "slot 4 is not known chosen");
    // A snapshot carries the configuration as of its index.
    let rec = Recovered {
        hard_state: HardState {
            commit: LogIndex(9),
            ..hs
        },
        snapshot: Some(Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(9),
                term: Stamp::new(b, b).term(),
                voters: ids(&[2, 3]),
                outgoing: Vec::new(),
            },
            data: vec![],
        }),
        entries: vec![],
    };
    let mut node = PaxosNode::new(cfg(1, 3, &[]), rec).expect("recovers");
    assert_eq!(node.status().membership.voters, ids(&[2, 3]));
    assert!(!node.is_member(), "node 1 is not in it");
    for _ in 0..100 {
        node.tick();
    }
    assert_eq!(
        node.role(),
        Role::Follower,
        "a removed node never campaigns"
    );
    assert!(node.ready().messages.is_empty());
    // And through a whole cluster: a change survives a restart of everyone.
    let mut c = Cluster::with_spares(3, 1);
    let l = c.elect();
    c.node(l.0)
        .change_membership(ids(&[2, 3, 4]))
        .expect("leader");
    c.tick_all(20);
    for id in 1..=4 {
        c.crash(id);
    }
    for id in 1..=4 {
        c.restart(NodeId(id));
        assert_eq!(
            c.node(id).status().membership.voters,
            ids(&[2, 3, 4]),
            "node {id} recovers the new configuration"
        );
    }
    let l2 = c.elect();
    assert_ne!(l2, NodeId(1), "the removed node does not lead");
}

#[test]
fn a_removed_leader_hands_over_and_steps_down() {
    let mut c = Cluster::new(3);
    let l = c.elect();
    let rest: Vec<u64> = (1..=3).filter(|&i| i != l.0).collect();
    let p = c.node(l.0).change_membership(ids(&rest)).expect("leader");
    c.deliver_all();
    c.tick_all(3);
    let old = c.node(l.0).status();
    assert_eq!(old.role, Role::Follower, "the removed leader stepped down");
    assert!(old.commit_index >= p.index, "it knows it was removed");
    assert_eq!(old.membership.voters, ids(&rest));
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1);
    assert!(rest.contains(&leaders[0].0), "a remaining voter took over");
    // The group goes on without the removed node, which stays quiet.
    c.isolate(l.0);
    let q = c.node(leaders[0].0).propose(vec![9]).expect("new leader");
    for _ in 0..50 {
        c.tick_all(1);
        assert_ne!(c.node(l.0).role(), Role::Leader);
        assert_ne!(c.node(l.0).role(), Role::PreCandidate, "no initiative");
    }
    for id in &rest {
        assert!(c.node(*id).log().commit() >= q.index);
    }
    // Members ignore a campaign from outside their configuration.
    let f = rest[0];
    let ballot = Ballot::new(1000, l);
    c.node(f)
        .step(Message {
            group: GroupId(1),
            from: l,
            to: NodeId(f),
            payload: Payload::Paxos(PaxosMessage::Prepare {
                ballot,
                commit: LogIndex(0),
                transfer: true,
                resume: None,
            }),
        })
        .expect("accepted, then ignored");
    assert!(
        c.node(f).promised() < ballot,
        "no promise to a removed node"
    );
}

#[test]
fn a_node_wiped_and_added_again_catches_up_from_scratch() {
    let mut c = Cluster::new(3);
    let l = c.elect();
    let f = (1..=3).find(|&i| i != l.0).expect("a follower");
    let rest: Vec<u64> = (1..=3).filter(|&i| i != f).collect();
    for v in 0..5u8 {
        c.node(l.0).propose(vec![v]).expect("leader");
    }
    c.deliver_all();
    // Remove f; it never hears that the removal is chosen, so the leader
    // still tracks it (departing) with everything it once agreed to.
    c.node(l.0).change_membership(ids(&rest)).expect("leader");
    c.deliver_until(|c| c.node(f).log().last_index() > LogIndex(5));
    c.isolate(f);
    c.tick_all(3);
    assert_eq!(c.node(l.0).status().membership.voters, ids(&rest));
    // Its runtime wipes it; it is added back as an empty joining core.
    c.wipe_and_join(f);
    c.heal();
    let p = c
        .node(l.0)
        .change_membership(ids(&[1, 2, 3]))
        .expect("leader");
    c.tick_all(10);
    assert!(
        c.node(f).log().commit() >= p.index,
        "it caught up from slot 1"
    );
    assert_eq!(c.values(f), c.values(l.0), "with the same values");
    assert!(c.node(f).is_member());
}

#[test]
fn an_empty_joining_acceptor_promises_nothing_until_a_configuration_includes_it() {
    let mut c4 = cfg(4, 3, &[]);
    c4.voters = Vec::new();
    let mut node = PaxosNode::new(c4, Recovered::default()).expect("joining");
    let prepare = |ballot: Ballot| Message {
        group: GroupId(1),
        from: ballot.node(),
        to: NodeId(4),
        payload: Payload::Paxos(PaxosMessage::Prepare {
            ballot,
            commit: LogIndex(0),
            transfer: true,
            resume: None,
        }),
    };
    node.step(prepare(Ballot::new(5, NodeId(1))))
        .expect("accepted, then ignored");
    assert!(
        node.ready().messages.is_empty(),
        "no promise: it may be a wiped voter whose old self accepted values"
    );
    // A snapshot that lists it (maybe its wiped old self) is not enough.
    let mut c4 = cfg(4, 3, &[]);
    c4.voters = Vec::new();
    let b = Ballot::new(1, NodeId(1));
    let rec = Recovered {
        hard_state: HardState {
            term: b.term(),
            vote: None,
            commit: LogIndex(7),
        },
        snapshot: Some(Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(7),
                term: Stamp::new(b, b).term(),
                voters: ids(&[1, 2, 4]),
                outgoing: Vec::new(),
            },
            data: vec![],
        }),
        entries: vec![],
    };
    let mut node = PaxosNode::new(c4, rec).expect("joining, restarted");
    assert!(node.is_member(), "the snapshot lists it");
    node.step(prepare(Ballot::new(5, NodeId(1))))
        .expect("accepted, then ignored");
    assert!(node.ready().messages.is_empty(), "still no promise");
    for _ in 0..100 {
        node.tick();
    }
    assert_eq!(node.role(), Role::Follower, "and no campaign");
    // Once a chosen configuration entry makes it a voter, it promises,
    // also after a restart.
    let mut c = Cluster::with_spares(3, 1);
    let l = c.elect();
    c.node(l.0)
        .change_membership(ids(&[1, 2, 3, 4]))
        .expect("leader");
    c.tick_all(10);
    assert!(c.node(4).is_member());
    let b = Ballot::new(100, NodeId(2));
    c.node(4).step(prepare(b)).expect("prepare");
    let rd = c.node(4).ready();
    assert!(rd.messages.iter().any(|m| matches!(
        m.payload,
        Payload::Paxos(PaxosMessage::Promise { ballot, .. }) if ballot == b
    )));
    c.crash(4);
    c.restart(NodeId(4));
    let b = Ballot::new(200, NodeId(2));
    c.node(4).step(prepare(b)).expect("prepare");
    let rd = c.node(4).ready();
    assert!(rd.messages.iter().any(|m| matches!(
        m.payload,
        Payload::Paxos(PaxosMessage::Promise { ballot, .. }) if ballot == b
    )));
}

#[test]
fn an_idle_leader_catches_up_a_follower_that_lacks_slots() {
    // A new leader starts a peer whose promise it never counted at its own
    // commit, with nothing in flight; the peer may hold less. Heartbeat
    // replies alone must bring it up to date (no new writes).
    let mut c = Cluster::new(3);
    let l = c.elect();
    let f = (1..=3).find(|&i| i != l.0).expect("a follower");
    c.isolate(f);
    for v in 0..3u8 {
        c.node(l.0).propose(vec![v]).expect("leader");
    }
    c.tick_all(3);
    let leader = c.node(l.0);
    let next = leader.log.commit().next();
    let pr = leader.peers.get_mut(&NodeId(f)).expect("a peer");
    *pr = Peer::new(next, LogIndex(0), leader.now_ticks);
    c.heal();
    c.tick_all(30);
    let (lead_commit, f_commit) = (c.node(l.0).log().commit(), c.node(f).log().commit());
    assert_eq!(
        f_commit, lead_commit,
        "f learned every chosen slot without new writes"
    );
    assert_eq!(c.values(f), c.values(l.0));
}

/// Paxos seed 9 of the membership sweep (found by issue 20's watchdog
/// headroom report): every network duplicate of one Accepted reply rewound
/// the leader to the lagging acceptor's agreed slot and resent the window,
/// so its catch-up grew into a storm (895 messages in flight, 191 events per
/// virtual ms). A reply may rewind a peer once a tick.
#[test]
fn duplicated_replies_rewind_a_lagging_acceptor_once_a_tick() {
    let mut c = Cluster::new(3);
    let l = c.elect();
    let f = (1..=3).find(|&i| i != l.0).expect("a follower");
    c.isolate(f);
    for v in 0..10u8 {
        c.node(l.0).propose(vec![v]).expect("leader");
        c.deliver_all();
    }
    c.heal();
    let lagging = c.node(f).agreed;
    let ballot = c.node(l.0).promised();
    let reply = Message {
        group: GroupId(1),
        from: NodeId(f),
        to: l,
        payload: Payload::Paxos(PaxosMessage::Accepted {
            ballot,
            ok: true,
            agreed: lagging,
        }),
    };
    let _ = c.node(l.0).ready();
    for _ in 0..20 {
        c.node(l.0)
            .step(reply.clone())
            .expect("a well-addressed message");
    }
    let resent = c
        .node(l.0)
        .ready()
        .messages
        .iter()
        .filter(|m| {
            m.to == NodeId(f)
                && matches!(&m.payload, Payload::Paxos(PaxosMessage::Accept { entries, .. })
                    if entries.first().map(|e| e.index) == Some(lagging.next()))
        })
        .count();
    assert_eq!(
        resent, 1,
        "twenty copies of one reply resend the lacking slots once"
    );
    c.tick_all(5);
    assert_eq!(c.values(f), c.values(l.0), "and the acceptor catches up");
}

/// Regression (issue 21, finding 3): accepts were capped by entry count only
/// and entry data travelled as an array of numbers, so after a partition
/// under 900 KiB writes the catch-up batch passed the 64 MiB peer line limit,
/// was refused, and was resent forever: the acceptor never caught up.
#[test]
fn an_acceptor_lagging_behind_large_values_catches_up_under_the_peer_line_limit() {
    use crate::protocol::line::MAX_PEER_LINE_BYTES;
    use crate::server::{NODE_MAX_BATCH_BYTES, NODE_MAX_BATCH_ENTRIES};
    let mut c = Cluster::new(3);
    c.batch_limits = Some((NODE_MAX_BATCH_ENTRIES, NODE_MAX_BATCH_BYTES));
    for id in 1..=3 {
        c.restart(NodeId(id));
    }
    c.line_limit = Some(MAX_PEER_LINE_BYTES);
    let l = c.elect();
    let f = (1..=3).find(|&i| i != l.0).expect("a follower");
    c.isolate(f);
    const VALUE_BYTES: usize = 900 << 10;
    let values = 40u8;
    for v in 0..values {
        c.node(l.0).propose(vec![v; VALUE_BYTES]).expect("leader");
        c.deliver_all();
    }
    c.heal();
    c.tick_all(60);
    assert_eq!(c.oversized, 0, "no message passed the peer line limit");
    assert_eq!(c.node(f).log().commit(), c.node(l.0).log().commit());
    let caught_up: Vec<EntryKind> = c
        .values(f)
        .into_iter()
        .filter(|k| matches!(k, EntryKind::Normal(_)))
        .collect();
    assert_eq!(
        caught_up.len(),
        values as usize,
        "the acceptor applied every value"
    );
    for (v, kind) in caught_up.iter().enumerate() {
        assert_eq!(kind, &EntryKind::Normal(vec![v as u8; VALUE_BYTES]));
    }
}

/// Seed 1052535 (membership sweep): a wiped id added back at slot 106
/// promised and accepted at slot 100, where the configuration still named
/// its old self, and two values were chosen there.
/// Slot `i` holding `kind`, proposed and accepted at ballot `b`.
fn stamped(b: Ballot, i: u64, kind: EntryKind) -> Entry {
    Entry {
        index: LogIndex(i),
        term: Stamp::new(b, b).term(),
        kind,
    }
}

/// A message of group 1 from node `from` to node `to`.
fn paxos_msg(from: u64, to: u64, msg: PaxosMessage) -> Message {
    Message {
        group: GroupId(1),
        from: NodeId(from),
        to: NodeId(to),
        payload: Payload::Paxos(msg),
    }
}

#[test]
fn a_joining_acceptor_never_votes_below_its_join_floor() {
    let b = Ballot::new(3, NodeId(1));
    let mut c4 = cfg(4, 3, &[]);
    c4.voters = Vec::new();
    // Added back by the configuration entry at slot 6.
    c4.join_floor = Some((b.term(), LogIndex(6)));
    let mut node = PaxosNode::new(c4, Recovered::default()).expect("joining");
    let entry = |i: u64, kind: EntryKind| stamped(b, i, kind);
    let from_leader = |msg: PaxosMessage| paxos_msg(1, 4, msg);
    // Node 4's answer to the leader (node 1).
    let accepted = |ballot: Ballot, ok: bool, agreed: u64| {
        let agreed = LogIndex(agreed);
        vec![paxos_msg(
            4,
            1,
            PaxosMessage::Accepted { ballot, ok, agreed },
        )]
    };
    // Slot 1 (its old self's configuration) is chosen: learned. Slots 2
    // and 3 are not known chosen and lie below the floor: refused.
    let old_config = entry(1, config(&[1, 2, 4]));
    node.step(from_leader(PaxosMessage::Accept {
        ballot: b,
        entries: vec![old_config.clone(), entry(2, cmd(2)), entry(3, cmd(3))],
        commit: LogIndex(1),
    }))
    .expect("step");
    let rd = node.ready();
    assert_eq!(rd.entries, vec![old_config], "only the chosen slot");
    assert_eq!(rd.messages, accepted(b, false, 1));
    node.persisted(rd.persist_id);
    assert_eq!(node.log().commit(), LogIndex(1));
    assert!(node.is_member(), "the old configuration names its id");
    // A candidate that counts it in that configuration gets no promise:
    // its report would hide what its old self accepted at slots 2 to 5.
    let b2 = Ballot::new(5, NodeId(2));
    node.step(paxos_msg(
        2,
        4,
        PaxosMessage::Prepare {
            ballot: b2,
            commit: LogIndex(1),
            transfer: true,
            resume: None,
        },
    ))
    .expect("step");
    assert!(
        node.ready().messages.is_empty(),
        "no promise below the floor"
    );
    for _ in 0..100 {
        node.tick();
    }
    assert_eq!(node.role(), Role::Follower, "and no campaign");
    let _ = node.ready();
    // Once slots 2 to 5 are chosen it learns them, and votes from the
    // floor on: its own adding entry at 6 and slot 7.
    let b3 = Ballot::new(6, NodeId(1));
    let entry3 = |i: u64, kind: EntryKind| stamped(b3, i, kind);
    let batch: Vec<Entry> = (2..=5)
        .map(|i| entry3(i, cmd(i as u8)))
        .chain([entry3(6, config(&[1, 2, 3, 4])), entry3(7, cmd(7))])
        .collect();
    node.step(paxos_msg(
        1,
        4,
        PaxosMessage::Accept {
            ballot: b3,
            entries: batch.clone(),
            commit: LogIndex(5),
        },
    ))
    .expect("step");
    let rd = node.ready();
    assert_eq!(rd.entries, batch);
    assert_eq!(rd.messages, accepted(b3, true, 7));
    node.persisted(rd.persist_id);
    // Its adding entry chosen, it is a voter of its new self's configuration.
    node.step(paxos_msg(
        1,
        4,
        PaxosMessage::Heartbeat {
            ballot: b3,
            commit: LogIndex(6),
            read_seq: 1,
        },
    ))
    .expect("step");
    let _ = node.ready();
    assert_eq!(node.known_config(), ids(&[1, 2, 3, 4]).as_slice());
    let b4 = Ballot::new(9, NodeId(2));
    node.step(paxos_msg(
        2,
        4,
        PaxosMessage::Prepare {
            ballot: b4,
            commit: LogIndex(6),
            transfer: true,
            resume: None,
        },
    ))
    .expect("step");
    let rd = node.ready();
    assert!(rd.messages.iter().any(|m| matches!(
        m.payload,
        Payload::Paxos(PaxosMessage::Promise { ballot, .. }) if ballot == b4
    )));
}

/// Regression (issue 21, finding 3): InstallSnapshot carried the whole state
/// machine in one message, so a state machine of more than about 45 MiB
/// (64 MiB after base64 and framing) passed the peer line limit, was lost,
/// and was resent forever: an acceptor that needed it never caught up.
#[test]
fn a_snapshot_larger_than_the_peer_line_limit_reaches_a_lagging_acceptor() {
    let (mut c, f, l, meta, state) =
        large_snapshot_to_a_lagger(crate::server::NODE_SNAPSHOT_CHUNK_BYTES);
    assert_eq!(c.oversized, 0, "no message passed the peer line limit");
    assert!(
        c.node(f).log().snapshot_index() >= meta.index,
        "the acceptor installed the snapshot"
    );
    assert!(
        c.storage[&NodeId(f)]
            .durable()
            .snapshot
            .as_ref()
            .is_some_and(|s| s.data == state),
        "the acceptor holds the whole state durably, byte for byte"
    );
    assert_eq!(c.node(f).log().commit(), c.node(l).log().commit());
}

/// Proof of power for the test above: with the whole snapshot in one
/// message, as before chunking, the line limit drops it every time.
#[test]
fn a_snapshot_in_one_message_never_reaches_a_lagging_acceptor() {
    let (mut c, f, _, meta, _) = large_snapshot_to_a_lagger(usize::MAX);
    assert!(c.oversized > 0, "the one message passed the line limit");
    assert!(c.node(f).log().snapshot_index() < meta.index);
}

/// A 3-node cluster with the node's batch limits and the peer line limit,
/// a lagging acceptor, and a 50 MiB snapshot on the leader sent in chunks
/// of `chunk_bytes`: (cluster, lagger, leader, the snapshot's meta, its data).
fn large_snapshot_to_a_lagger(chunk_bytes: usize) -> (Cluster, u64, u64, SnapshotMeta, Vec<u8>) {
    use crate::protocol::line::MAX_PEER_LINE_BYTES;
    use crate::server::{NODE_MAX_BATCH_BYTES, NODE_MAX_BATCH_ENTRIES};
    let mut c = Cluster::new(3);
    c.batch_limits = Some((NODE_MAX_BATCH_ENTRIES, NODE_MAX_BATCH_BYTES));
    c.snapshot_chunk_bytes = Some(chunk_bytes);
    for id in 1..=3 {
        c.restart(NodeId(id));
    }
    c.line_limit = Some(MAX_PEER_LINE_BYTES);
    let l = c.elect();
    let f = (1..=3).find(|&i| i != l.0).expect("a follower");
    c.isolate(f);
    for v in 0..5u8 {
        c.node(l.0).propose(vec![v]).expect("leader");
        c.deliver_all();
    }
    // 50 MiB of state: about 67 MiB as one base64 line.
    let state: Vec<u8> = (0..50u32 << 20).map(|k| (k % 251) as u8).collect();
    let applied = c.node(l.0).log().applied();
    let meta = c
        .node(l.0)
        .snapshot_taken(applied, state.clone())
        .expect("snapshot");
    c.heal();
    c.tick_all(60);
    (c, f, l.0, meta, state)
}

/// Regression (issue 21, finding 3, Paxos's side): a Promise carried the
/// acceptor's whole accepted suffix after the candidate's commit, so after
/// 60 values of 900 KiB the one Promise (about 72 MiB in base64) passed the
/// 64 MiB peer line limit, was lost on every resend, and the candidate never
/// finished phase 1. Now a Promise is bounded like an Accept and says where
/// it stopped; the candidate asks for the rest at the same ballot.
#[test]
fn a_candidate_behind_large_values_finishes_phase_one_under_the_peer_line_limit() {
    use crate::protocol::line::MAX_PEER_LINE_BYTES;
    use crate::server::{NODE_MAX_BATCH_BYTES, NODE_MAX_BATCH_ENTRIES};
    let mut c = Cluster::new(3);
    c.batch_limits = Some((NODE_MAX_BATCH_ENTRIES, NODE_MAX_BATCH_BYTES));
    for id in 1..=3 {
        c.restart(NodeId(id));
    }
    c.line_limit = Some(MAX_PEER_LINE_BYTES);
    let l = c.elect();
    let ballot = c.node(l.0).promised();
    let mut others = (1..=3).filter(|&i| i != l.0);
    let (a, f) = (
        others.next().expect("an acceptor"),
        others.next().expect("a lagging candidate"),
    );
    // The leader and `a` choose 60 large values; `f` hears none of them.
    c.cut_both(l.0, f);
    c.cut_both(a, f);
    const VALUE_BYTES: usize = 900 << 10;
    let values = 60u8;
    for v in 0..values {
        c.node(l.0).propose(vec![v; VALUE_BYTES]).expect("leader");
        c.deliver_all();
    }
    assert_eq!(c.oversized, 0, "the accepts stayed under the line limit");
    c.crash(l.0);
    c.heal();
    // The old leader's hand-over reaches `f`: it campaigns at once, and
    // `a`'s promise must bring it every value.
    c.net.push_back(Message {
        group: GroupId(1),
        from: l,
        to: NodeId(f),
        payload: Payload::Paxos(PaxosMessage::TimeoutNow {
            ballot,
            commit: LogIndex(0),
        }),
    });
    c.deliver_all();
    assert_eq!(
        c.oversized, 0,
        "no Promise passed the peer line limit (it was lost, and phase 1 never ended)"
    );
    assert_eq!(c.leaders(), vec![NodeId(f)], "the candidate leads");
    c.tick_all(5);
    let chosen: Vec<EntryKind> = c
        .values(f)
        .into_iter()
        .filter(|k| matches!(k, EntryKind::Normal(_)))
        .collect();
    assert_eq!(
        chosen.len(),
        values as usize,
        "the new leader applied every value"
    );
    for (v, kind) in chosen.iter().enumerate() {
        assert_eq!(kind, &EntryKind::Normal(vec![v as u8; VALUE_BYTES]));
    }
}

/// A Promise in parts: each part within the byte budget, the rest asked for
/// at the same ballot from where the last part stopped, and a duplicate or
/// stale part changes nothing.
#[test]
fn a_promise_comes_in_parts_each_within_the_byte_budget() {
    let b1 = Ballot::new(1, NodeId(1));
    let mut c2 = cfg(2, 3, &[]);
    c2.max_batch_entries = 100;
    c2.max_batch_bytes = 10;
    let entries: Vec<Entry> = (1..=7)
        .map(|i| Entry {
            index: LogIndex(i),
            term: Stamp::new(b1, b1).term(),
            kind: EntryKind::Normal(vec![i as u8; 4]),
        })
        .collect();
    let mut acceptor = PaxosNode::new(
        c2,
        Recovered {
            hard_state: HardState {
                term: b1.term(),
                vote: None,
                commit: LogIndex(0),
            },
            snapshot: None,
            entries,
        },
    )
    .expect("recovers");
    let b3 = Ballot::new(3, NodeId(3));
    let prepare = |resume: Option<Resume>| Message {
        group: GroupId(1),
        from: NodeId(3),
        to: NodeId(2),
        payload: Payload::Paxos(PaxosMessage::Prepare {
            ballot: b3,
            commit: LogIndex(0),
            transfer: true,
            resume,
        }),
    };
    let mut parts = Vec::new();
    let mut resume = None;
    for _ in 0..10 {
        acceptor.step(prepare(resume)).expect("prepare");
        let rd = acceptor.ready();
        acceptor.persisted(rd.persist_id);
        let msgs: Vec<Message> = rd
            .messages
            .into_iter()
            .chain(acceptor.ready().messages)
            .collect();
        let Some(Payload::Paxos(PaxosMessage::Promise {
            entries,
            more,
            resume: echoed,
            ..
        })) = msgs.into_iter().map(|m| m.payload).last()
        else {
            panic!("a promise");
        };
        assert_eq!(echoed, resume, "a part says which part it is");
        let bytes: usize = entries.iter().map(Entry::payload_bytes).sum();
        assert!(
            entries.len() == 1 || bytes <= 10,
            "a part holds at most the budget (or one entry)"
        );
        resume = entries.last().map(|e| Resume::Slot(e.index.next()));
        parts.push(entries);
        if !more {
            break;
        }
    }
    let slots: Vec<u64> = parts.iter().flatten().map(|e| e.index.0).collect();
    assert_eq!(
        slots,
        (1..=7).collect::<Vec<_>>(),
        "every slot once, in order"
    );
    assert!(
        parts.len() >= 3,
        "4-byte values, 10-byte budget: parts of two"
    );
}

/// Regression (issue 21, finding 3, the Promise's snapshot): a Promise
/// carried the acceptor's whole snapshot in one message when it covered
/// slots the candidate lacked, so with a 50 MiB state machine (about 67 MiB
/// as one base64 line) the Promise passed the 64 MiB peer line limit, was
/// lost on every resend, and a candidate behind a compaction never finished
/// phase 1 (membership changes and recovery stalled). Now the snapshot
/// comes in chunks, one a part, asked for at the same ballot.
#[test]
fn a_candidate_behind_a_snapshot_larger_than_the_peer_line_limit_finishes_phase_one() {
    let (mut c, f, meta, state) =
        large_snapshot_to_a_candidate(crate::server::NODE_SNAPSHOT_CHUNK_BYTES);
    assert_eq!(
        c.oversized, 0,
        "no Promise passed the peer line limit (it was lost, and phase 1 never ended)"
    );
    assert_eq!(c.leaders(), vec![NodeId(f)], "the candidate leads");
    assert!(
        c.node(f).log().snapshot_index() >= meta.index,
        "the candidate installed the promiser's snapshot"
    );
    assert!(
        c.storage[&NodeId(f)]
            .durable()
            .snapshot
            .as_ref()
            .is_some_and(|s| s.data == state),
        "the new leader holds the whole state durably, byte for byte"
    );
    assert!(c.node(f).log().commit() >= meta.index);
}

/// Proof of power for the test above: with the snapshot in one chunk, as
/// the Promise carried it before, the line limit drops it every time.
#[test]
fn a_promise_with_its_snapshot_in_one_message_never_reaches_the_candidate() {
    let (mut c, f, meta, _) = large_snapshot_to_a_candidate(usize::MAX);
    assert!(c.oversized > 0, "the one Promise passed the line limit");
    assert!(c.leaders().is_empty(), "phase 1 never ended");
    assert!(c.node(f).log().snapshot_index() < meta.index);
}

/// A 3-node cluster with the node's batch limits and the peer line limit:
/// the leader and one acceptor choose five values, and the acceptor
/// compacts them into a 50 MiB snapshot; the third node heard none of it.
/// The leader dies, its hand-over makes the third node campaign, and the
/// acceptor's Promise must bring it the snapshot, cut in chunks of
/// `chunk_bytes`: (cluster, the candidate, the snapshot's meta, its data).
fn large_snapshot_to_a_candidate(chunk_bytes: usize) -> (Cluster, u64, SnapshotMeta, Vec<u8>) {
    use crate::protocol::line::MAX_PEER_LINE_BYTES;
    use crate::server::{NODE_MAX_BATCH_BYTES, NODE_MAX_BATCH_ENTRIES};
    let mut c = Cluster::new(3);
    c.batch_limits = Some((NODE_MAX_BATCH_ENTRIES, NODE_MAX_BATCH_BYTES));
    c.snapshot_chunk_bytes = Some(chunk_bytes);
    for id in 1..=3 {
        c.restart(NodeId(id));
    }
    c.line_limit = Some(MAX_PEER_LINE_BYTES);
    let l = c.elect();
    let ballot = c.node(l.0).promised();
    let mut others = (1..=3).filter(|&i| i != l.0);
    let (a, f) = (
        others.next().expect("an acceptor"),
        others.next().expect("a lagging candidate"),
    );
    c.cut_both(l.0, f);
    c.cut_both(a, f);
    for v in 0..5u8 {
        c.node(l.0).propose(vec![v]).expect("leader");
        c.deliver_all();
    }
    // 50 MiB of state: about 67 MiB as one base64 line.
    let state: Vec<u8> = (0..50u32 << 20).map(|k| (k % 251) as u8).collect();
    let applied = c.node(a).log().applied();
    assert!(applied > LogIndex(0), "the acceptor applied chosen values");
    let meta = c
        .node(a)
        .snapshot_taken(applied, state.clone())
        .expect("snapshot");
    c.crash(l.0);
    c.heal();
    c.net.push_back(paxos_msg(
        l.0,
        f,
        PaxosMessage::TimeoutNow {
            ballot,
            commit: LogIndex(0),
        },
    ));
    c.deliver_all();
    (c, f, meta, state)
}

/// A snapshot of slots 1 to 4 chosen at ballot 1, ten bytes of state.
fn ten_byte_snapshot() -> (Ballot, SnapshotMeta, Vec<u8>) {
    let b1 = Ballot::new(1, NodeId(1));
    let meta = SnapshotMeta {
        index: LogIndex(4),
        term: Stamp::new(b1, b1).term(),
        voters: ids(&[1, 2, 3]),
        outgoing: Vec::new(),
    };
    (b1, meta, (0..10).collect())
}

/// Acceptor 2 restarted from that snapshot and slot 5, sending snapshots
/// in chunks of 4 bytes.
fn acceptor_behind(meta: &SnapshotMeta, data: &[u8], b1: Ballot) -> PaxosNode {
    let mut c2 = cfg(2, 3, &[]);
    c2.snapshot_chunk_bytes = 4;
    let recovered = Recovered {
        hard_state: HardState {
            term: b1.term(),
            vote: None,
            commit: LogIndex(4),
        },
        snapshot: Some(Snapshot {
            meta: meta.clone(),
            data: data.to_vec(),
        }),
        entries: vec![stamped(b1, 5, cmd(5))],
    };
    PaxosNode::new(c2, recovered).expect("recovers")
}

/// A fresh node 3 that campaigned (its campaign's Ready persisted).
fn candidate_of(campaign: Campaign) -> (PaxosNode, Ready) {
    let mut candidate = PaxosNode::new(cfg(3, 3, &[]), Recovered::default()).expect("fresh");
    candidate.campaign(campaign);
    let rd = candidate.ready();
    candidate.persisted(rd.persist_id);
    (candidate, rd)
}

/// The Ready of an acceptor that promises `b` (commit 4) and sends
/// `promise` once that is written.
fn a_promise_written(persist_id: u64, b: Ballot, promise: Message) -> Ready {
    Ready {
        persist_id,
        snapshot: None,
        hard_state: Some(HardState {
            term: b.term(),
            vote: None,
            commit: LogIndex(4),
        }),
        entries: vec![],
        messages: vec![promise],
        early_messages: vec![],
        committed: vec![],
        reads: vec![],
        soft_state: Some(SoftState {
            role: Role::Follower,
            term: b.term(),
            leader: None,
        }),
    }
}

/// A Prepare's (or Promise's) place in the snapshot at slot 4.
fn resume_from(offset: u64) -> Option<Resume> {
    Some(Resume::Snapshot {
        index: LogIndex(4),
        offset,
    })
}

/// Pins the Readys of a Promise whose snapshot comes in chunks: the
/// acceptor's first part is the snapshot's first chunk, without entries,
/// written with its new promise; the candidate installs nothing and asks
/// for the next byte at the same ballot; the last chunk brings the
/// entries, and only then does the promise count.
#[test]
fn a_promise_sends_its_snapshot_as_a_first_chunk_and_the_candidate_asks_for_the_rest() {
    let (b1, meta, data) = ten_byte_snapshot();
    let mut acceptor = acceptor_behind(&meta, &data, b1);
    // (A transfer's Prepare passes the freshly restarted acceptor's
    // leader stickiness.)
    let (mut candidate, campaign) = candidate_of(Campaign::Transfer);
    let b = candidate.promised();
    let prepare = |resume: Option<Resume>| {
        paxos_msg(
            3,
            2,
            PaxosMessage::Prepare {
                ballot: b,
                commit: LogIndex(0),
                transfer: true,
                resume,
            },
        )
    };
    assert!(campaign.messages.contains(&prepare(None)));
    let chunk = |offset: usize, end: usize| SnapshotChunk {
        meta: meta.clone(),
        total_bytes: 10,
        offset: offset as u64,
        data: data[offset..end].to_vec(),
        done: end == 10,
    };
    let part = |snapshot: SnapshotChunk, entries: Vec<Entry>, resume: Option<Resume>| {
        let more = !snapshot.done;
        paxos_msg(
            2,
            3,
            PaxosMessage::Promise {
                ballot: b,
                commit: LogIndex(4),
                snapshot: Some(snapshot),
                entries,
                resume,
                more,
            },
        )
    };
    let from = resume_from;

    acceptor.step(prepare(None)).expect("prepare");
    let rd = acceptor.ready();
    assert_eq!(
        rd,
        a_promise_written(rd.persist_id, b, part(chunk(0, 4), vec![], None)),
        "the promise is written; the Promise (after the write) holds the first 4 bytes"
    );
    acceptor.persisted(rd.persist_id);

    candidate.step(rd.messages[0].clone()).expect("first part");
    let rd = candidate.ready();
    assert_eq!(
        rd,
        Ready {
            persist_id: rd.persist_id,
            snapshot: None,
            hard_state: None,
            entries: vec![],
            messages: vec![prepare(from(4))],
            early_messages: vec![],
            committed: vec![],
            reads: vec![],
            soft_state: None,
        },
        "nothing installed or written; the rest asked for at the same ballot"
    );
    assert_eq!(candidate.role(), Role::Candidate);

    acceptor.step(prepare(from(4))).expect("resume");
    let rd = acceptor.ready();
    assert_eq!(
        rd.messages,
        vec![part(chunk(4, 8), vec![], from(4))],
        "no new promise: the next chunk"
    );
    assert!(!rd.must_persist());
    candidate.step(rd.messages[0].clone()).expect("second part");
    let rd = candidate.ready();
    assert_eq!(rd.messages, vec![prepare(from(8))]);
    assert!(!rd.must_persist(), "still nothing installed");

    acceptor.step(prepare(from(8))).expect("resume");
    let rd = acceptor.ready();
    let last = part(chunk(8, 10), vec![stamped(b1, 5, cmd(5))], from(8));
    assert_eq!(rd.messages, vec![last], "the last chunk brings the entries");
    candidate.step(rd.messages[0].clone()).expect("last part");
    assert_eq!(candidate.role(), Role::Leader, "the whole promise counts");
    let rd = candidate.ready();
    assert_eq!(
        rd.snapshot,
        Some(Snapshot {
            meta: meta.clone(),
            data
        }),
        "the promiser's snapshot is installed whole, in the leader's first Ready"
    );
    assert_eq!(
        rd.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![LogIndex(5)],
        "slot 5 re-proposed at the new ballot"
    );
}

/// A duplicated or stale part of a snapshot in chunks changes nothing, a
/// chunk that does not continue the snapshot drops the promise's parts
/// (the next Prepare asks from the start), and a part at an older ballot
/// is ignored.
#[test]
fn stale_duplicate_or_foreign_snapshot_parts_never_complete_a_promise() {
    let (_, meta, data) = ten_byte_snapshot();
    let (mut candidate, _) = candidate_of(Campaign::Ballot);
    let b = candidate.promised();
    let part = |ballot: Ballot, offset: usize, end: usize, resume: Option<Resume>| {
        paxos_msg(
            2,
            3,
            PaxosMessage::Promise {
                ballot,
                commit: LogIndex(4),
                snapshot: Some(SnapshotChunk {
                    meta: meta.clone(),
                    total_bytes: 10,
                    offset: offset as u64,
                    data: data[offset..end].to_vec(),
                    done: end == 10,
                }),
                entries: vec![],
                resume,
                more: end < 10,
            },
        )
    };
    let from = resume_from;
    let asks = |n: &mut PaxosNode| -> Vec<Option<Resume>> {
        n.ready()
            .messages
            .into_iter()
            .filter_map(|m| match m.payload {
                Payload::Paxos(PaxosMessage::Prepare { resume, .. }) => Some(resume),
                _ => None,
            })
            .collect()
    };
    candidate.step(part(b, 0, 4, None)).expect("first");
    assert_eq!(asks(&mut candidate), vec![from(4)]);
    // The same first part again (the network duplicates): no restart.
    candidate.step(part(b, 0, 4, None)).expect("duplicate");
    assert_eq!(asks(&mut candidate), Vec::<Option<Resume>>::new());
    // A part from further on (a gap) or at a ballot not ours: ignored.
    candidate.step(part(b, 8, 10, from(8))).expect("ahead");
    let other = Ballot::new(9, NodeId(1));
    assert_ne!(other, b);
    candidate
        .step(part(other, 4, 8, from(4)))
        .expect("another ballot");
    assert_eq!(asks(&mut candidate), Vec::<Option<Resume>>::new());
    assert_eq!(candidate.role(), Role::Candidate);
    // Where it was asked, but from another snapshot: the parts are dropped.
    let mut foreign = part(b, 4, 8, from(4));
    if let Payload::Paxos(PaxosMessage::Promise {
        snapshot: Some(chunk),
        ..
    }) = &mut foreign.payload
    {
        chunk.total_bytes = 11;
    }
    candidate.step(foreign).expect("foreign");
    assert_eq!(asks(&mut candidate), Vec::<Option<Resume>>::new());
    // So the rest no longer completes it.
    candidate.step(part(b, 4, 8, from(4))).expect("late");
    candidate.step(part(b, 8, 10, from(8))).expect("late");
    assert_eq!(
        candidate.role(),
        Role::Candidate,
        "no promise was put together"
    );
    assert_eq!(candidate.log().snapshot_index(), LogIndex(0));
}

/// A candidate whose promiser's snapshot moved since its last election
/// timeout keeps its ballot and asks again where each promise stopped (a
/// lost part costs a timeout, not the transfer); with no progress since,
/// it campaigns again, as before.
#[test]
fn a_candidate_keeps_its_ballot_while_a_promised_snapshot_arrives() {
    let b1 = Ballot::new(1, NodeId(1));
    let meta = SnapshotMeta {
        index: LogIndex(4),
        term: Stamp::new(b1, b1).term(),
        voters: ids(&[1, 2, 3]),
        outgoing: Vec::new(),
    };
    let mut candidate = PaxosNode::new(cfg(3, 3, &[]), Recovered::default()).expect("fresh");
    candidate.campaign(Campaign::Ballot);
    let b = candidate.promised();
    let campaign = candidate.ready();
    candidate.persisted(campaign.persist_id);
    let first = paxos_msg(
        2,
        3,
        PaxosMessage::Promise {
            ballot: b,
            commit: LogIndex(4),
            snapshot: Some(SnapshotChunk {
                meta,
                total_bytes: 10,
                offset: 0,
                data: vec![7; 4],
                done: false,
            }),
            entries: vec![],
            resume: None,
            more: true,
        },
    );
    candidate.step(first).expect("first part");
    let asked = candidate.ready();
    candidate.persisted(asked.persist_id);
    // The part the candidate asked for is lost. Tick to the next timeout.
    let prepares = |n: &mut PaxosNode| -> Vec<(NodeId, Ballot, Option<Resume>)> {
        for _ in 0..1000 {
            n.tick();
            let rd = n.ready();
            n.persisted(rd.persist_id);
            let sent: Vec<_> = rd
                .messages
                .into_iter()
                .filter_map(|m| match m.payload {
                    Payload::Paxos(PaxosMessage::Prepare { ballot, resume, .. }) => {
                        Some((m.to, ballot, resume))
                    }
                    Payload::Paxos(PaxosMessage::PrePrepare { ballot }) => {
                        Some((m.to, ballot, None))
                    }
                    _ => None,
                })
                .collect();
            if !sent.is_empty() {
                return sent;
            }
        }
        panic!("no timeout in 1000 ticks");
    };
    let resume = Some(Resume::Snapshot {
        index: LogIndex(4),
        offset: 4,
    });
    assert_eq!(
        prepares(&mut candidate),
        vec![(NodeId(1), b, None), (NodeId(2), b, resume)],
        "the same ballot; the promise in parts asked for where it stopped"
    );
    assert_eq!(
        (candidate.role(), candidate.promised()),
        (Role::Candidate, b)
    );
    let again = prepares(&mut candidate);
    assert!(
        again.iter().all(|(_, ballot, _)| *ballot > b),
        "no progress since: a new campaign, at a higher ballot ({again:?})"
    );
}

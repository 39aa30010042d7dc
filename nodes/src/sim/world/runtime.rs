//! The node runtime around each core: after every step, each Ready goes
//! through the node's ordering rule (server/ordering.rs), and its effects
//! (messages, syncs, replies, role and configuration changes) are carried out.

use super::*;
use crate::server::compaction::SnapshotStore;
use crate::server::requests::{self, AppliedEntry};

impl<C: SimCore> World<C> {
    /// Drain the core's Readys, then check safety.
    pub(super) fn post_step(&mut self, id: NodeId) -> Result<(), Violation> {
        let i = Self::idx(id);
        let mut readys = 0u64;
        loop {
            let mut out = Vec::new();
            {
                let host = &mut self.hosts[i];
                let Some(core) = host.core.as_mut() else {
                    return Ok(());
                };
                if !core.has_ready() {
                    break;
                }
                readys += 1;
                self.watchdog.ready_drained(id, readys, self.now_us)?;
                let rd = core.ready();
                if rd.snapshot.is_some() && self.last_chunk_of_many {
                    self.stats.multi_chunk_installs += 1;
                }
                process_ready(
                    host,
                    rd,
                    &mut self.monitor,
                    self.now_us,
                    self.no_fsync,
                    &mut out,
                )?;
            }
            self.apply_effects(id, out)?;
        }
        let host = &self.hosts[i];
        if let Some(core) = host.core.as_ref() {
            let view = core.view();
            self.monitor.after_step(id, &view, self.now_us)?;
            core.check_self().map_err(|detail| Violation {
                property: "protocol invariant",
                detail,
                time_us: self.now_us,
            })?;
        }
        let oracle = self.oracle.as_mut();
        if let Some(core) = self.hosts[i].core.as_mut() {
            core.check_cluster(oracle, id)
                .map_err(|(property, detail)| Violation {
                    property,
                    detail,
                    time_us: self.now_us,
                })?;
        }
        if self.retirement_due(id) == Due::Now {
            self.remove_node(id)?;
        }
        Ok(())
    }

    /// Whether `id` has left the group ([`Removal::has_left`]) for a whole
    /// grace ([`Retirement`]; the node's grace for its election timeout,
    /// in virtual time).
    fn retirement_due(&mut self, id: NodeId) -> Due {
        let host = &mut self.hosts[Self::idx(id)];
        let has_left = match host.core.as_ref() {
            Some(core) => host.removal.has_left(id, &core.status()),
            None => false,
        };
        if !has_left {
            host.retirement.stayed();
            return Due::NotYet;
        }
        if !host.retirement.is_pending() {
            self.stats.departures += 1;
        }
        let election_timeout_ms = self.knobs.election_timeout_ticks * host.tick_us / 1000;
        let grace_us = retire_grace_ms(election_timeout_ms) * 1000;
        host.retirement.left(self.now_us, grace_us)
    }

    pub(super) fn apply_effects(
        &mut self,
        id: NodeId,
        effects: Vec<Effect>,
    ) -> Result<(), Violation> {
        // A new leader's window opens before its first (early) appends go.
        for e in &effects {
            if let Effect::Role(ss) = e {
                self.open_delivery_window(id, ss);
            }
        }
        for e in effects {
            match e {
                Effect::Send(msg) => {
                    self.stats.messages_sent += 1;
                    if msg.payload.is_snapshot() {
                        self.stats.snapshots_sent += 1;
                    }
                    if let Some(c) = msg.payload.promise_snapshot_chunk() {
                        let chunked = c.offset > 0 || !c.done;
                        self.stats.promise_snapshot_chunks += u64::from(chunked);
                        self.stats.chunked_promise_snapshots += u64::from(c.done && c.offset > 0);
                    }
                    if self.delivery.withholds(&msg, self.now_us) {
                        continue;
                    }
                    for d in self.net.plan(&mut self.rng, msg.from, msg.to) {
                        self.watchdog.message_sent(&msg);
                        self.schedule(d, Ev::Deliver(msg.clone()));
                    }
                }
                Effect::Role(ss) => {
                    self.note(11, id.0, ss.term.0, || {
                        format!("{id} is {} in {}, leader {:?}", ss.role, ss.term, ss.leader)
                    });
                    if ss.role == Role::Leader && self.opts.membership {
                        self.check_new_leader_config(id)?;
                    }
                }
                Effect::Config(index, term, m) => self.config_applied(index, term, m),
                Effect::Joined { by_snapshot } => {
                    if by_snapshot {
                        self.stats.joined_by_snapshot += 1;
                    } else {
                        self.stats.joined_by_log += 1;
                    }
                    self.note(15, id.0, by_snapshot as u64, || {
                        format!("{id} learned its configuration (snapshot: {by_snapshot})")
                    });
                }
                Effect::Reply {
                    client,
                    op_id,
                    reply,
                } => {
                    self.note(12, client as u64, op_id, || {
                        format!("{id} answers client {client} op {op_id}: {reply:?}")
                    });
                    let d = self.rng.range(50, 500);
                    self.schedule(
                        d,
                        Ev::Reply {
                            client,
                            op_id,
                            node: id,
                            reply,
                        },
                    );
                }
                Effect::FailedWrite { op_id, at } => self.failed_writes.failed(FailedWrite {
                    index: at.0,
                    term: at.1,
                    node: id,
                    time_us: self.now_us,
                    op_id,
                    early: false,
                }),
                Effect::Sync(seq) => {
                    let host = &mut self.hosts[Self::idx(id)];
                    let at = (self.now_us + self.rng.range(100, 2_000)).max(host.last_sync_us);
                    host.last_sync_us = at;
                    let inc = host.incarnation;
                    self.schedule(at - self.now_us, Ev::Synced(id, inc, seq));
                }
            }
        }
        Ok(())
    }
}

/// One Ready, by the node's ordering rule ([`ordering::process`]), with
/// the simulator's checks and bookkeeping around it: the safety monitor
/// sees what is appended, a joining node notes its first configuration,
/// and the node compacts now and then afterwards.
pub(super) fn process_ready<C: SimCore>(
    host: &mut Host<C>,
    rd: Ready,
    monitor: &mut SafetyMonitor,
    now_us: u64,
    no_fsync: bool,
    out: &mut Vec<Effect>,
) -> Result<(), Violation> {
    let id = host.id;
    let core = host.core.as_ref().expect("processing a live core's Ready");
    if !rd.entries.is_empty() {
        monitor.appended(id, &rd.entries, &core.view(), now_us)?;
    }
    let was_leading = host.leading;
    if let Some(ss) = &rd.soft_state {
        host.leading = ss.role == Role::Leader;
        host.leader = ss.leader;
        out.push(Effect::Role(*ss));
    }
    if host.joining {
        note_joined(host, &rd, out);
    }
    let staged = host.storage.staged_hard_state();
    ordering::process(
        rd,
        staged,
        &mut SimSteps {
            host: &mut *host,
            monitor,
            now_us,
            no_fsync,
            was_leading,
            out: &mut *out,
        },
    )?;
    compact_now_and_then(host, no_fsync, out);
    Ok(())
}

/// The simulator's way of carrying out each step of the ordering rule:
/// writes go to the simulated disk, messages and replies become effects.
struct SimSteps<'a, C> {
    host: &'a mut Host<C>,
    monitor: &'a mut SafetyMonitor,
    now_us: u64,
    no_fsync: bool,
    was_leading: bool,
    out: &'a mut Vec<Effect>,
}

impl<C: SimCore> ReadySteps for SimSteps<'_, C> {
    type Error = Violation;

    fn send(&mut self, message: Message) {
        self.out.push(Effect::Send(message));
    }

    fn persist(&mut self, persist: Persist, ready: Persisted) -> Result<(), Violation> {
        let Persisted {
            persist_id,
            snapshot,
            hard_state,
            entries,
            messages,
        } = ready;
        let host = &mut *self.host;
        let seq = (persist != Persist::Nothing).then(|| {
            host.storage.write(Write::Ready {
                snapshot,
                hard_state,
                entries,
            })
        });
        let release_now = match (seq, persist) {
            // Planted bug: acknowledge before the write is durable.
            (Some(_), _) if self.no_fsync => Some(Release {
                persist_id,
                messages,
            }),
            (Some(seq), Persist::Sync) => {
                host.held.hold(seq, persist_id, messages);
                self.out.push(Effect::Sync(seq));
                None
            }
            _ => host.held.after_the_held(persist_id, messages),
        };
        if let Some(released) = release_now {
            release(host, released, self.out);
        }
        Ok(())
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), Violation> {
        restore(self.host, snapshot)
    }

    fn apply(&mut self, entry: Entry) -> Result<(), Violation> {
        apply_entry(
            self.host,
            &entry,
            self.was_leading,
            self.monitor,
            self.now_us,
            self.out,
        )
    }

    fn reads(&mut self, reads: Vec<ReadOutcome>) {
        answer_reads(self.host, reads, self.out);
    }

    fn role_changed(&mut self, soft_state: SoftState) {
        let core = self.host.core.as_mut().expect("alive");
        self.host
            .applier
            .role_changed(&soft_state, now_ms(self.now_us), |cmd| {
                core.propose(cmd).is_ok()
            });
    }
}

/// Step 2 once a write is durable: acknowledge, then send.
pub(super) fn release<C: SimCore>(host: &mut Host<C>, released: Release, out: &mut Vec<Effect>) {
    let core = host.core.as_mut().expect("releasing a live core's Ready");
    core.persisted(released.persist_id);
    out.extend(released.messages.into_iter().map(Effect::Send));
}

/// A joining node becomes a member once a configuration reaches it, by
/// snapshot or in its log.
pub(super) fn note_joined<C>(host: &mut Host<C>, rd: &Ready, out: &mut Vec<Effect>) {
    let by_snapshot = rd
        .snapshot
        .as_ref()
        .is_some_and(|s| !s.meta.voters.is_empty());
    let by_log = rd
        .entries
        .iter()
        .any(|e| matches!(e.kind, EntryKind::ConfigChange(_)));
    if by_snapshot || by_log {
        host.joining = false;
        out.push(Effect::Joined { by_snapshot });
    }
}

/// Step 3 for one committed entry: in order, checked, applied through the
/// node's applier, and the pending write at its index settled.
pub(super) fn apply_entry<C: SimCore>(
    host: &mut Host<C>,
    e: &Entry,
    was_leading: bool,
    monitor: &mut SafetyMonitor,
    now_us: u64,
    out: &mut Vec<Effect>,
) -> Result<(), Violation> {
    let id = host.id;
    if e.index != host.applier.applied().next() {
        return Err(Violation {
            property: "apply in order",
            detail: format!("{id} applied {} then {}", host.applier.applied(), e.index),
            time_us: now_us,
        });
    }
    monitor.applied(id, e, now_us)?;
    if let EntryKind::ConfigChange(m) = &e.kind {
        out.push(Effect::Config(e.index, e.term, m.clone()));
        host.removal.applied(id, e.index, m);
        host.removed_leader = host.removal.is_removed() && (was_leading || host.leading);
    }
    let AppliedEntry {
        outcome,
        ours,
        lost,
    } = host.requests.apply(&mut host.applier, e, now_ms(now_us));
    if let Some(SimWrite {
        client,
        op_id,
        command_hash,
        ..
    }) = ours
    {
        let EntryKind::Normal(bytes) = &e.kind else {
            panic!("the entry at our proposal's (index, term) is a command");
        };
        assert_eq!(
            hash_bytes(bytes),
            command_hash,
            "the entry at our (index, term) is our command"
        );
        assert!(
            matches!(outcome, Outcome::Applied(_)),
            "our command applies: {outcome:?}"
        );
        let reply = Reply::from_wire(&requests::outcome_reply(None, outcome));
        out.push(Effect::Reply {
            client,
            op_id,
            reply,
        });
    }
    for SimWrite {
        client, op_id, at, ..
    } in lost
    {
        // Another term's entry committed at the index: ours never will
        // (the node answers `not-leader`, definite).
        out.push(Effect::FailedWrite { op_id, at });
        out.push(Effect::Reply {
            client,
            op_id,
            reply: Reply::Fail("not-leader"),
        });
    }
    Ok(())
}

/// Step 4: reads the core confirmed wait until their index is applied;
/// refused ones are redirected.
pub(super) fn answer_reads<C: SimCore>(
    host: &mut Host<C>,
    reads: Vec<ReadOutcome>,
    out: &mut Vec<Effect>,
) {
    let ended = host.requests.reads_ended(reads, host.applier.applied());
    for (batch, error) in ended.failed {
        let hint = host.leader_hint(error);
        for (client, op_id, _) in batch {
            out.push(Effect::Reply {
                client,
                op_id,
                reply: Reply::Redirect(hint),
            });
        }
    }
    for (client, op_id, key) in ended.answerable {
        let value = host.applier.read(&clients::register_name(key));
        out.push(Effect::Reply {
            client,
            op_id,
            reply: Reply::Ok(value),
        });
    }
}

/// After a Ready: compact when the node's policy says so
/// ([`CompactionPolicy`], the threshold drawn per node from the seed),
/// counted from the last snapshot as the node counts it ([`Compaction`]).
pub(super) fn compact_now_and_then<C: SimCore>(
    host: &mut Host<C>,
    no_fsync: bool,
    out: &mut Vec<Effect>,
) {
    let applied = host.applier.applied();
    let Some(core) = host.core.as_mut() else {
        return;
    };
    if !host.compaction.due(applied) {
        return;
    }
    let mut disk = SimSnapshots {
        storage: &mut host.storage,
        no_fsync,
        out,
    };
    match host.compaction.take(core, &host.applier, &mut disk) {
        Ok(taken) => {
            taken.expect("the applied index can be snapshotted");
        }
        Err(never) => match never {},
    }
}

/// The simulated disk keeps a node's snapshot: the compaction is one write,
/// synced like any other (but with the no-fsync bug).
pub(super) struct SimSnapshots<'a> {
    pub(super) storage: &'a mut SimStorage,
    pub(super) no_fsync: bool,
    pub(super) out: &'a mut Vec<Effect>,
}

impl SnapshotStore for SimSnapshots<'_> {
    type Error = std::convert::Infallible;

    fn compact(&mut self, snapshot: Snapshot) -> Result<(), Self::Error> {
        let seq = self.storage.write(Write::Compact(snapshot));
        if !self.no_fsync {
            self.out.push(Effect::Sync(seq));
        }
        Ok(())
    }
}

pub(super) fn restore<C>(host: &mut Host<C>, s: &Snapshot) -> Result<(), Violation> {
    host.applier
        .restore(s)
        .expect("snapshots come from the node's state machine");
    // Proposals the snapshot covers have an unknown outcome here (the node
    // answers them `timeout`).
    host.requests.snapshot_installed(s.meta.index);
    host.compaction.installed(s.meta.index);
    Ok(())
}

/// A node's empty state machine with the run's planted bugs.
pub(super) fn fresh_applier(bugs: &[Bug]) -> Applier {
    Applier::with_bugs(bugs, None).expect("no snapshot to decode")
}

/// Virtual time as the runtime's clock reads it (ms). Lease timers run on
/// true virtual time, not a node's skewed tick rate: the lock checkers
/// assume clocks that keep time, as the harness's runs do.
pub(super) fn now_ms(now_us: u64) -> f64 {
    now_us as f64 / 1000.0
}

pub(super) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = Fnv::new();
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h.u64(u64::from_le_bytes(word));
    }
    h.u64(bytes.len() as u64);
    h.finish()
}

//! Membership changes under faults: asking the leader, starting joining
//! cores, wiping removed nodes a grace after they left (the node's rule,
//! server/removal.rs), and the checks on configurations.

use super::*;

impl<C: SimCore> World<C> {
    /// Ask the leader to move the group to another voter set.
    pub(super) fn membership_change(&mut self) -> Result<(), Violation> {
        if !self.faults_on {
            return Ok(());
        }
        let d = self.rng.range(150_000, 500_000);
        self.schedule(d, Ev::Membership);
        let Some(l) = self.current_leader() else {
            return Ok(());
        };
        let st = self.hosts[Self::idx(l)]
            .core
            .as_ref()
            .expect("the leader is up")
            .status();
        let cur = st.membership.voters.clone();
        let reuse = self.opts.reuse_ids;
        let outside: Vec<NodeId> = self
            .pool
            .iter()
            .copied()
            .filter(|n| !cur.contains(n) && (reuse || !self.wiped.contains(n)))
            .collect();
        let mut new = cur.clone();
        let roll = self.rng.below(10);
        let can_add = !outside.is_empty() && cur.len() < 7;
        let prefer_add = cur.len() < 3 && !self.rng.chance(0.1);
        let prefer_remove = cur.len() > 5;
        if can_add && (prefer_add || (!prefer_remove && roll < 3)) {
            new.push(self.rng.pick(&outside));
        } else if cur.len() > 1 && (prefer_remove || roll < 6 || outside.is_empty()) {
            let k = self.rng.below(cur.len() as u64) as usize;
            new.remove(k);
        } else if !outside.is_empty() {
            // Swap one voter, or two (a change of 2+ voters: the joint
            // phase is what keeps C_old and C_new majorities intersecting).
            let swaps = if roll == 9 { 2 } else { 1 };
            let mut out = outside.clone();
            for _ in 0..swaps.min(out.len()).min(new.len()) {
                let k = self.rng.below(new.len() as u64) as usize;
                new.remove(k);
                let j = self.rng.below(out.len() as u64) as usize;
                new.push(out.remove(j));
            }
        }
        new.sort_unstable();
        if self.rng.chance(0.5) {
            // As the real runtime does half the time here (always, there):
            // snapshot first, so that new voters catch up from a snapshot
            // taken after every earlier configuration.
            self.snapshot_now(l);
        }
        self.stats.membership_requested += 1;
        let result = self.hosts[Self::idx(l)]
            .core
            .as_mut()
            .expect("the leader is up")
            .change_membership(new.clone());
        let text = format!("{l}: change membership {cur:?} -> {new:?}: {result:?}");
        self.note(13, l.0, new.len() as u64, || text);
        if let Ok(p) = result {
            self.stats.membership_accepted += 1;
            let added: Vec<NodeId> = new.iter().copied().filter(|n| !cur.contains(n)).collect();
            for &a in &added {
                let i = Self::idx(a);
                self.hosts[i].removal = Removal::added_at(p.index);
                if !self.hosts[i].hosting {
                    if self.wiped.contains(&a) {
                        self.stats.rejoins += 1;
                    }
                    let (term, floor) = C::joining((p.term, p.index), self.hosts[i].left);
                    self.hosts[i].join_floor = floor;
                    self.start_joining(a, term)?;
                }
            }
            if self.rng.chance(0.3) {
                // Cut the leader and the added nodes off from the rest while
                // the change is young: only joint consensus keeps the two
                // sides from both deciding.
                let mut a = vec![l];
                a.extend(added.iter().copied().filter(|&x| x != l));
                let b: Vec<NodeId> = self
                    .pool
                    .iter()
                    .copied()
                    .filter(|x| !a.contains(x))
                    .collect();
                self.stats.partitions += 1;
                self.note(7, a.len() as u64, b.len() as u64, || {
                    format!("isolate the change: {a:?} | {b:?}")
                });
                self.net.partition(&[a, b]);
            }
        }
        self.post_step(l)
    }

    /// The runtime snapshots `id`'s state machine at its applied index.
    pub(super) fn snapshot_now(&mut self, id: NodeId) {
        let host = &mut self.hosts[Self::idx(id)];
        let Some(core) = host.core.as_mut() else {
            return;
        };
        if !host.compaction.behind(host.applier.applied()) {
            return;
        }
        let mut out = Vec::new();
        let mut disk = SimSnapshots {
            storage: &mut host.storage,
            no_fsync: self.no_fsync,
            out: &mut out,
        };
        match host.compaction.take(core, &host.applier, &mut disk) {
            Ok(taken) => {
                taken.expect("the applied index can be snapshotted");
            }
            Err(never) => match never {},
        }
        let _ = self.apply_effects(id, out);
    }

    /// Host the group on `id` as a joining core (no voters, empty disk but
    /// for the term of the leader that added it). The term matters when `id`
    /// was a voter before, was removed and wiped: a leader of an older term
    /// may still count `id` from back then, and a core that forgot its
    /// votes would follow it (two quorums that no longer intersect).
    pub(super) fn start_joining(&mut self, id: NodeId, term: Term) -> Result<(), Violation> {
        let host = &mut self.hosts[Self::idx(id)];
        assert!(!host.hosting, "{id} joins a group it does not run");
        host.hosting = true;
        host.seed_voters = Vec::new();
        host.joining = true;
        host.storage = SimStorage::default();
        host.storage.write(Write::Ready {
            snapshot: None,
            hard_state: Some(crate::consensus::HardState {
                term,
                vote: None,
                commit: LogIndex(0),
            }),
            entries: Vec::new(),
        });
        host.storage.sync_all();
        self.stats.joins += 1;
        self.start_node(id)
    }

    /// `id` left the group a grace ago: as the real runtime retires a
    /// group, stop the core (after a clean flush) and delete the group's
    /// storage.
    pub(super) fn remove_node(&mut self, id: NodeId) -> Result<(), Violation> {
        let i = Self::idx(id);
        let host = &mut self.hosts[i];
        let Some(mut core) = host.core.take() else {
            return Ok(());
        };
        let was_leader = host.removed_leader;
        // A clean shutdown: the disk is synced, then what waited for it is sent.
        host.storage.sync_all();
        let mut out = Vec::new();
        for released in host.held.release_through(u64::MAX) {
            core.persisted(released.persist_id);
            out.extend(released.messages.into_iter().map(Effect::Send));
        }
        // What the flush made durable (a Paxos accept whose Accepted goes
        // out below) is fact for the cross-node checks too, as after any
        // sync: dropped with the core, the oracle would see a peer count
        // an acceptor it never heard of (seed 463 of the membership sweep).
        core.check_cluster(self.oracle.as_mut(), id)
            .map_err(|(property, detail)| Violation {
                property,
                detail,
                time_us: self.now_us,
            })?;
        let st = core.status();
        host.left = Some(match host.left {
            None => (st.term, st.last_index),
            Some((t, i)) => (t.max(st.term), i.max(st.last_index)),
        });
        host.incarnation += 1;
        host.storage = SimStorage::default();
        host.applier = fresh_applier(&self.opts.bugs);
        // Their clients time out: the outcome is unknown (the node answers
        // `shutting-down`, or its connections drop).
        host.requests.take_all();
        host.hosting = false;
        host.seed_voters = Vec::new();
        host.joining = false;
        host.join_floor = None;
        host.removal = Removal::default();
        host.retirement = Retirement::default();
        host.leading = false;
        host.leader = None;
        host.removed_leader = false;
        self.stats.removals += 1;
        self.wiped.insert(id);
        if was_leader {
            self.stats.leader_removals += 1;
        }
        self.note(14, id.0, was_leader as u64, || {
            format!("{id} left the group: stopped and wiped")
        });
        self.apply_effects(id, out)
    }

    /// A committed configuration was applied at `id`: count finished
    /// changes, and remember it for the leaders to come.
    pub(super) fn config_applied(
        &mut self,
        index: LogIndex,
        term: Term,
        m: crate::consensus::Membership,
    ) {
        if self.configs.contains_key(&index) {
            return;
        }
        let bound = self.monitor.max_term().max(term);
        if !m.is_joint() {
            self.stats.membership_done += 1;
        }
        self.configs.insert(index, (m, bound));
    }

    /// Every committed configuration is seen by all later leaders (else two
    /// disjoint quorums could decide).
    pub(super) fn check_new_leader_config(&self, id: NodeId) -> Result<(), Violation> {
        if !C::CHECKS.leader_completeness {
            return Ok(());
        }
        let Some(core) = self.hosts[Self::idx(id)].core.as_ref() else {
            return Ok(());
        };
        let view = core.view();
        // The latest configuration committed in an earlier term (a leader
        // elected late in a stale term need not hold later commits).
        let Some((&index, (m, _))) = self
            .configs
            .iter()
            .rev()
            .find(|(_, (_, bound))| *bound < view.term)
        else {
            return Ok(());
        };
        if index <= view.snapshot_index {
            return Ok(());
        }
        let held = (index <= view.last_index())
            .then(|| &view.entries[(index.0 - view.snapshot_index.0 - 1) as usize].kind);
        match held {
            Some(EntryKind::ConfigChange(h)) if h == m => Ok(()),
            other => Err(Violation {
                property: "config completeness (every committed configuration reaches later leaders)",
                detail: format!(
                    "new leader {id} of {} lacks the configuration {m:?} committed at {index}; holds {other:?}",
                    view.term
                ),
                time_us: self.now_us,
            }),
        }
    }
}

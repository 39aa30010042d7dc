//! paxos: the Multi-Paxos consensus core, sans-IO, behind the same
//! [`crate::consensus::Consensus`] contract as Raft, so the real node and
//! the simulator run it unchanged (`faultline node --consensus paxos`).
//!
//! # How Multi-Paxos maps onto the contract
//! - **Ballots** are (round, node id), packed in a u64 ([`ballot::Ballot`]).
//!   `HardState::term` is the acceptor's promised ballot; `HardState::vote`
//!   is always None. `Status::term` / `SoftState::term` are the promise.
//! - **Accepted values** are the log. Each acceptor keeps its accepted
//!   values as a *contiguous* log after its snapshot: it accepts slot `i`
//!   only while it holds every slot below `i` (an Accept that skips slots is
//!   refused with what the acceptor holds, and the leader resends from
//!   there). An entry's `term` is a [`ballot::Stamp`]: the ballot that
//!   accepted it and the ballot that first proposed the value (origin).
//! - **Persistence** follows the contract's rule "truncate from the first
//!   entry, then append": a re-accept at a higher ballot of slot `i`
//!   rewrites slot `i` in place and the next Ready carries every slot from
//!   `i` to the end, so storage ends up with exactly the per-slot values and
//!   no accepted value is forgotten. The same holds when a snapshot is
//!   installed: the accepted slots after it come along in the same Ready.
//!   The promise (hard state) and the accepted values are in the Ready whose
//!   messages (Promise, Accepted) may go out only after the fsync.
//! - **Proposals** return (slot, leader's ballot). A value keeps its origin
//!   ballot when a later leader re-proposes it, and committed entries carry
//!   the origin as their term: the runtime's "same (index, term) ⇒ mine"
//!   holds across leader changes, and another origin at the index means the
//!   proposal lost the slot for good.
//! - **Chosen prefix**: `HardState::commit` and `Status::commit_index` are
//!   the slots learned chosen; `Ready::committed` hands them out in order.
//!
//! # The protocol (see [`node`] for the guarantees)
//! A stable leader runs phase 1 once for all slots after its commit
//! (a Prepare asks for the acceptor's whole log suffix; the Promise brings
//! it in parts bounded like an Accept, its snapshot first in chunks, see
//! (e) and (f) below),
//! re-proposes at its ballot the
//! highest-ballot value of every slot the promisers hold, fills slots no
//! promiser holds with no-ops, then runs only phase 2: Accepts batched
//! (`max_batch_entries`) and pipelined (`max_inflight_appends` messages per
//! acceptor), commit notifications piggybacked on Accepts and heartbeats.
//! Lagging acceptors catch up from the leader's log, or by snapshot once the
//! slots they lack were compacted. Because acceptor logs are contiguous, a
//! hole in the merged range arises only from a promise that skips slots.
//!
//! # Reads
//! Linearizable reads use a quorum round confirming leadership
//! (read-index style): the leader notes `max(commit, last slot phase 1
//! re-proposed)`, sends a heartbeat round, and answers `ReadOutcome::Ready`
//! once a quorum acknowledged that round at its ballot and that index is
//! chosen. Leases (`CoreConfig::lease_reads`) are not used by this core.
//! `Bug::StaleRead` answers at once from the local applied index on any node.

//!
//! # Membership (reconfiguration, α = 1)
//! A configuration is a log entry, `EntryKind::ConfigChange(Membership::
//! simple(voters))` (`outgoing` stays empty: Paxos needs no joint phase),
//! proposed by [`crate::consensus::Consensus::change_membership`] like a
//! value. **A configuration chosen at slot k governs every slot after k**;
//! slot k itself, and the slots before, belong to the configuration before
//! it. The voters governing slot s, C(s), are thus a function of the values
//! chosen below s: the seed ([`crate::consensus::CoreConfig::voters`]) for
//! the slots before the first configuration entry, and a snapshot carries
//! the configuration as of its index (`SnapshotMeta::voters`). A node's
//! `Status::membership` is C(commit + 1), the configuration in force for the
//! first slot it does not know chosen; recovery recomputes it from the
//! recovered snapshot and log, never from the seed when they hold one.
//!
//! Rules:
//! 1. **Stall.** A leader sends no slot beyond an unchosen configuration
//!    slot in its log: while a configuration is in flight, `propose` and
//!    `change_membership` are refused (`NotLeader` naming itself, resp.
//!    `InProgress`). So at most one configuration is in flight, and no
//!    acceptor ever accepts a value at ballot b beyond a configuration slot
//!    that the leader of b did not know to be chosen.
//! 2. **Phase 1 per configuration.** A candidate runs phase 1 (Prepare for
//!    every slot after its commit) with a quorum of C(commit + 1). Merging
//!    the promises gives a chosen prefix (promisers' commits, snapshots) and,
//!    after it, the P2c values. If the chosen prefix ends in another
//!    configuration, phase 1 runs again, at the same ballot, in that one
//!    (for the slots after the prefix). Otherwise the merge is kept only up
//!    to the first configuration slot j after the chosen prefix: the leader
//!    re-proposes slots up to j and stalls there (rule 1); once j is
//!    chosen it runs phase 1 again, in C(j + 1), for the slots after j,
//!    before proposing any (values chosen there are only visible to the new
//!    acceptors). Proposals and reads wait meanwhile. Its own older values
//!    after j stay in its log (an acceptor forgets nothing) and join that
//!    second merge.
//! 3. **Phase 2 per slot.** The leader counts slot s as chosen when a
//!    majority of C(s) durably accepted it at its ballot; its commit
//!    advances one configuration range at a time. A read round needs a majority of
//!    every configuration in play (the one in force and an unchosen one).
//! 4. **A fresh configuration** (proposed by `change_membership` at the end
//!    of the log, not found by phase 1) needs no phase 1 in the new
//!    configuration: nobody can have a value chosen after it (rule 1 and
//!    the ballot's phase-1 quorum, see below).
//! 5. **Joining and leaving.** A node started with empty voters ("joining")
//!    and any node not in C(commit + 1) never campaigns; it follows any
//!    leader's Accepts and snapshots and learns the configuration from the
//!    chosen log or an InstallSnapshot. A joining core (empty seed voters)
//!    promises nothing (no Promise, no PrePromise grant) and never
//!    campaigns until a chosen configuration *entry* in its log includes it
//!    (a snapshot's voters do not count: an old snapshot may still list a
//!    wiped node's old self; this is derived from the log, so it survives
//!    restarts): it may be a wiped voter added back,
//!    and its empty report would hide what its old self accepted from a
//!    stale candidate that still counts it (rule 6). Its
//!    promise starts at the ballot floor the runtime persists for it
//!    (`Recovered::hard_state.term`, the adding leader's ballot), if any. Prepares and PrePrepares from nodes
//!    outside every configuration in play are ignored, so a removed node
//!    cannot depose the group. A leader whose node the chosen configuration
//!    drops broadcasts the commit, sends `TimeoutNow` (with the commit) to
//!    the most caught-up new voter and steps down. The leader keeps telling
//!    removed peers the commit until they acknowledge it, so their runtime
//!    sees the configuration without them applied. New voters catch up by
//!    log or InstallSnapshot like any lagging acceptor.
//! 6. **Join floor.** A wiped node added back under its old id starts
//!    empty: it forgot what its old self promised and accepted. Its runtime
//!    gives its core a floor slot f (the index of
//!    [`crate::consensus::CoreConfig::join_floor`]): the simulator the slot
//!    j of the configuration entry that added it or, if later, the slot
//!    after the last one its previous incarnation held (with a ballot no
//!    lower than that incarnation's), as the real runtime records them in
//!    groups.json when a node leaves a group (so a restart keeps them). Below
//!    f the core never votes: it stores a value there only when the
//!    Accept's commit says it is chosen (it learns it), refuses the others
//!    (`Accepted { ok: false }` with what it holds), and it stays
//!    provisional (no Promise, no PrePromise grant, no campaign) until a
//!    chosen configuration entry *at or after f* includes it: an entry
//!    below f may name its old self. Without a floor (None: the id never
//!    ran the group before) nothing changes.
//!
//! Why it is safe (the new thing to show is that two quorums that could
//! choose values at the same slot intersect). Say ballot b *chooses* v at
//! slot s when a majority of C_b(s) durably accepted v at b, where C_b(s)
//! is the configuration governing s in b's log (b's own values, and below
//! them what b knew chosen). That is what b's leader counts, and the
//! simulator's oracle checks exactly this, independently of the cores.
//! (a) b chooses at s ⇒ every slot below s is chosen, with the value in
//! b's log, so C_b(s) is the true C(s): acceptors hold their slots
//! contiguously, so the majority that accepted s at b accepted b's values
//! at every slot after what they knew chosen, and by rule 1 b's log has no
//! configuration below s that b did not know chosen (induction on s).
//! (b) P2c per slot: let b1 choose x at s and b2 > b1 propose at s. By
//! induction on slots and (a), b2's values below s are the chosen ones
//! (a lower slot is covered by a phase-1 round of b2 in its true
//! configuration, or was known chosen), so C_b2(s) = C(s) = C_b1(s); b2
//! proposes at s only after a phase-1 round covering s in that
//! configuration (rule 2), whose majority meets b1's, so the usual argument
//! makes b2 propose x. Supersets of promises are harmless: every value
//! accepted at s at a ballot in [b1, b2) is x.
//! (c) The exception, rule 4: b2 proposes after its fresh configuration
//! slot j without a round in C(j + 1). If b1 < b2 chose x at s > j, by (a)
//! slot j is chosen with b1's value, and b2's own configuration entry (a
//! different value: its origin is b2) gets chosen at j too: impossible by
//! (b) at j. So nothing after j was chosen below b2. (Lower ballots'
//! values after j, accepted before j became a configuration, are not
//! chosen by the new voters: their ballot never counted them there.)
//! (d) Acceptors never forget, except a wiped id added back (rule 6). Let
//! A0 be its old incarnation, removed by the entry chosen at slot r, and A1
//! the new one with floor f. The floor must satisfy one of: (i) f > r (the
//! simulator's j does: the adding leader knew r chosen and proposed j at
//! the end of its log); (ii) f is past every slot A0 accepted and A1's
//! ballot floor is at least every ballot A0 promised (the runtime's). Then
//! A0 followed by A1 is one legal acceptor that stopped voting below f:
//! an acceptor that stops answering is always allowed, and learning a
//! chosen value is not a vote. At a slot s ≥ f: under (ii), A0 accepted
//! nothing there and promised no more than A1 starts at, so A1's state is
//! the one A0 would have. Under (i), no quorum ever counted A0 at s: a
//! ballot counts A0 only in a configuration naming it, and by (a) the
//! configuration governing s > r follows r, so it names the id only through
//! an entry that re-added it, proposed after A0 was wiped, after all of
//! A0's votes (a phase-1 round in a configuration naming A0 covers only
//! slots up to the next configuration slot, so not s either). Reports: A1
//! promises only once a chosen entry at k ≥ f includes it, so its commit
//! is at least k ≥ f and it reports only its own slots after that. If the
//! entry that added A1 is never chosen (another value wins slot j), A1
//! stays provisional until a later entry re-adds it; its floor stays below
//! that entry, so it loses no liveness. A runtime floor above j + 1 (A0
//! held never-chosen values beyond j) costs liveness only: A1 waits to
//! learn those slots before it votes after them. (Before this rule, seed
//! 1052535 of the membership sweep chose two values at one slot: A1 had
//! learned A0's configuration entry chosen and promised as a voter of it.)
//! (e) Promises in parts (issue 21, finding 3: one Promise of a long
//! suffix of large values passed the peer line limit and phase 1 never
//! ended). An acceptor sends at most `max_batch_entries` /
//! `max_batch_bytes` of its suffix (at least one entry) and sets `more`;
//! the candidate asks for the rest with a Prepare at the same ballot and
//! `resume` = the slot after the last part (no new promise: the acceptor
//! has promised that ballot, and answers a resume only at its current
//! promise, else it promises afresh from the candidate's commit). A promise
//! counts towards the quorum only when whole, so the merge, and phase 2,
//! cover exactly the slots an unbounded Promise would have. Its parts are
//! read at different times, which is safe: after promising b the acceptor
//! accepts nothing below b, so each part reports values genuinely accepted
//! below b that no later part contradicts (a slot re-accepted at b itself
//! holds b's own value); (b)'s P2c argument is per slot, and "supersets of
//! promises are harmless". The chosen prefix comes from the first part's
//! commit only: a slot chosen then never changes value, so the later
//! parts report those slots as the first would have, while a commit the
//! acceptor learned between parts could cover a slot an earlier part
//! reported with an older, unchosen value. A promise that skipped a part
//! (duplicate, stale or reordered part) is not put together: the part is
//! dropped; a leader re-running phase 1 resends the Prepare from where the
//! promise stopped every heartbeat interval, a candidate campaigns again at
//! its election timeout (as when a whole Promise was lost).
//! (f) A Promise's snapshot in chunks (issue 21, finding 3's last piece: a
//! Promise carried the acceptor's whole snapshot when it covered slots the
//! candidate lacked, so past the peer line limit it was lost on every
//! resend and a candidate behind a compaction never finished phase 1).
//! The snapshot comes first, one chunk a part, cut by
//! [`crate::snapshot_transfer::SnapshotChunk::cut`] (the chunker Raft's and
//! Paxos's InstallSnapshot use, `snapshot_chunk_bytes`); the candidate asks
//! for the next with a Prepare at the same ballot, `resume` = (the
//! snapshot's index, the next byte), and puts the chunks together with a
//! [`crate::snapshot_transfer::SnapshotAssembly`] per promiser (in order,
//! one sender, one ballot, one snapshot: a chunk that does not continue it
//! drops the promise's parts, and the next Prepare asks from the start).
//! The entries follow in the part with the last chunk and after it, as in
//! (e). The acceptor keeps no state for it: each part is cut where the
//! candidate asks, from the snapshot it holds.
//! - *Nothing before the last chunk.* Until then the promise is partial:
//!   it does not count towards the quorum, and the merge (which installs
//!   the best promiser's snapshot, `restore_best_snapshot`) reads only
//!   whole promises. So a candidate installs, writes and sends nothing
//!   that depends on a snapshot it holds in part; what it holds is in
//!   memory only, and dropped with the round.
//! - *One snapshot, whole.* The chunks put together are all of one
//!   acceptor's snapshot at one index (every chunk names its index and
//!   size; the acceptor cuts a resume only from a snapshot at that index,
//!   else it promises again from the start, which the candidate takes as a
//!   new promise). An acceptor holds at most one snapshot per index (it
//!   compacts and installs only forwards, and recovers the one it made
//!   durable), so the bytes are that snapshot's, and it is the state after
//!   slots that were chosen, whenever it was read: installing it is what
//!   an unbounded Promise's snapshot did. A duplicate first part of the
//!   promise being taken (same commit, same snapshot, bytes already held)
//!   is ignored rather than starting over: continuing reads the same
//!   snapshot.
//! - *A newer ballot.* The acceptor that promised it answers the old
//!   ballot's resumes with a Nack, and the candidate that learns of it
//!   (or promises it) drops its round, assemblies included; parts at any
//!   ballot but the candidate's current one are ignored. Nothing was
//!   installed, so nothing is undone.
//! - *A restart.* The candidate's round is volatile: after a restart it
//!   campaigns afresh. The acceptor's promise is durable and its parts are
//!   stateless, so a resume after its restart continues from the snapshot
//!   it recovered if the index matches, else it promises again from the
//!   start. Either way the argument of (e) applies to the parts.
//! - *Liveness.* A transfer is one chunk a round trip. A candidate whose
//!   promisers' snapshots progressed since its last election timeout keeps
//!   its ballot and resends the Prepares from where each promise stopped
//!   (a lost part costs one timeout, not the transfer); without progress
//!   it campaigns again, as before.
//!
//! # Simulation
//! [`sim`] plugs the core into the deterministic simulator
//! ([`crate::sim::SimCore`]): after every step the world checks the core's
//! own invariants ([`PaxosNode::invariants`]) and feeds what the core
//! journaled (durable promises and accepts, learned values) to the
//! [`sim::PaxosOracle`]: at most one value chosen per slot, one value per
//! (slot, ballot), no acceptor breaks a durable promise, learners agree.
//! nodes/tests/sim_paxos.rs runs the seeds and checks linearizability.

pub mod ballot;
pub mod log;
pub mod message;
pub mod node;
pub mod sim;

pub use ballot::{Ballot, Stamp};
pub use node::PaxosNode;

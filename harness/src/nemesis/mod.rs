//! The nemesis: injects faults on a schedule and heals them.
//!
//! One fault at a time (membership aside, below). Every `interval` it starts a fault (the kinds taken
//! in a seeded shuffled rotation, so every enabled kind comes up), holds it
//! for 40–70 % of the interval, and heals it. Kills hit one node, the
//! leader, a majority or every node, and pauses one node, the leader or a
//! majority, each also in a shuffled rotation (four kills in a row always
//! include killing every node at once, which is what loses unsynced
//! writes). Partition shapes are drawn with [`Shape::WEIGHTS`]. Each start and stop is a
//! history event of process `nemesis` whose value names the targets and the
//! mechanism. Guarantee: when [`Nemesis::run`] returns — stopped, or on
//! error — every fault it started is healed and every node it killed is
//! started again (as far as the cluster lets it; errors are returned).
//!
//! `membership` (sharded clusters only) runs on its own track, alongside
//! the rotation of the other faults (so a change can meet a partition or a
//! kill): every interval it adds a node to the ring or removes one
//! ([`ring_plan`] chooses, with its own seeded generator; [`membership`]
//! carries it out). Its `start-membership` event is recorded when the
//! change begins and its `stop-membership` when every moved shard is done,
//! timed out or abandoned, both carrying the members and the placement
//! after the change. A change is not undone at the end: the other faults
//! are healed at once, the change in flight gets a short grace to finish
//! (or is abandoned), and the ring keeps its last members. `run` returns
//! when both tracks are done.

pub mod impostor;
pub mod membership;
pub mod ring_plan;
pub mod shape;
pub mod slow_reader;

use crate::cluster::{ClockFault, Cluster, Mechanism, NodeId};
use crate::run::recorder::Recorder;
use anyhow::Context;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use shape::Shape;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A kind of fault, as `--nemesis` names it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Partition,
    Kill,
    Pause,
    Clock,
    Loss,
    Latency,
    /// Ring membership changes (needs a sharded cluster).
    Membership,
    /// Clients that write requests and never read the replies, the node's
    /// memory checked ([`slow_reader`]).
    SlowReader,
    /// Connections that try to get in without the right credential, judged
    /// by the `access` checker ([`impostor`]).
    Impostor,
}

impl FaultKind {
    /// Every kind `--nemesis` names.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::Loss,
        FaultKind::Latency,
        FaultKind::Membership,
        FaultKind::SlowReader,
        FaultKind::Impostor,
    ];

    /// What `--nemesis all` means: every kind, but membership only on a
    /// sharded cluster, and never slow-reader (a resource fault, asked for
    /// by name: it is checked by the node's memory, not by the history, and
    /// would take a turn from the faults the existing `all` runs are timed
    /// for) nor impostor (asked for by name too: it needs `--auth` or
    /// `--tls`, and is judged by the `access` checker).
    pub fn all(sharded: bool) -> Vec<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .filter(|&k| sharded || k != FaultKind::Membership)
            .filter(|&k| k != FaultKind::SlowReader && k != FaultKind::Impostor)
            .collect()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Clock => "clock",
            FaultKind::Loss => "loss",
            FaultKind::Latency => "latency",
            FaultKind::Membership => "membership",
            FaultKind::SlowReader => "slow-reader",
            FaultKind::Impostor => "impostor",
        }
    }

    pub fn mechanism(self, cluster: &dyn Cluster) -> Mechanism {
        cluster.mechanisms().get(self)
    }

    /// Parses one kind's name.
    pub fn parse(word: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

/// The kinds as `--nemesis` lists them, for help and errors.
pub const KINDS_HELP: &str =
    "partition, kill, pause, clock, loss, latency, membership (with --shards), slow-reader, \
     impostor (with --auth or --tls)";

/// Parses `--nemesis`: a comma list of kinds, or `all`, or `none`.
/// `membership` needs a sharded cluster; `all` includes it only there.
pub fn parse_kinds(text: &str, sharded: bool) -> Result<Vec<FaultKind>, String> {
    let mut kinds = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "all" => kinds.extend(FaultKind::all(sharded)),
            "none" => {}
            w => match FaultKind::parse(w) {
                Some(FaultKind::Membership) if !sharded => {
                    return Err(
                        "membership changes the ring of a sharded cluster: it needs --shards"
                            .to_string(),
                    )
                }
                Some(k) => kinds.push(k),
                None => {
                    return Err(format!(
                        "unknown nemesis {w:?}; use a comma list of {KINDS_HELP}, or all, or none"
                    ))
                }
            },
        }
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// The membership nemesis's state: the ring it drives and how it reaches
/// the nodes.
pub struct MembershipNemesis {
    pub plan: ring_plan::RingPlan,
    pub admin: Arc<membership::Admin>,
}

impl MembershipNemesis {
    /// The membership track: a change every `interval` (start to start,
    /// the first after half an interval) until `stop`; a change in flight
    /// at `stop` finishes within its grace. Its own seeded random choices,
    /// so the steps depend on the seed alone.
    async fn run(
        mut self,
        recorder: Arc<Recorder>,
        interval: Duration,
        seed: u64,
        mechanism: &'static str,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x6d65_6d62_6572_7321);
        if sleep_or_stop(interval.mul_f64(0.5), &mut stop).await {
            return Ok(());
        }
        let stale_views = loop {
            let started = tokio::time::Instant::now();
            let stale = self
                .change(&recorder, &mut rng, mechanism, stop.clone())
                .await?;
            let rest = interval.saturating_sub(started.elapsed());
            if sleep_or_stop(rest, &mut stop).await {
                break stale;
            }
        };
        if stale_views {
            // A node that was down for the last change's set-members gets
            // the ring view now, once the other faults are healed (they
            // heal at once at the end) and killed nodes are back.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let errors =
                membership::set_members_everywhere(&self.admin, &self.plan.members()).await;
            if !errors.is_empty() {
                tracing::warn!(
                    "ring views still stale after the run: {}",
                    errors.join("; ")
                );
            }
        }
        Ok(())
    }

    /// One ring membership change, start to end (see the module docs);
    /// true when some node's ring view could not be updated.
    async fn change(
        &mut self,
        recorder: &Recorder,
        rng: &mut SmallRng,
        mechanism: &'static str,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<bool> {
        let Some(step) = self.plan.choose(rng) else {
            tracing::info!("membership: no node to add or remove within the bounds");
            return Ok(false);
        };
        let mut value = ring_plan::step_value(&step);
        value["mechanism"] = json!(mechanism);
        record_fault(recorder, "start-membership".into(), value, None)?;
        tracing::info!(
            action = step.action.as_str(),
            node = step.node,
            moves = step.moves.len(),
            "membership change"
        );
        let report = membership::execute(&self.admin, &step, stop).await;
        self.plan.apply(&step);
        let mut value = report.stop_value(&step);
        value["mechanism"] = json!(mechanism);
        let error = report.error();
        if let Some(e) = &error {
            tracing::warn!("membership change incomplete: {e}");
        }
        record_fault(recorder, "stop-membership".into(), value, error)?;
        Ok(!report.set_members_errors.is_empty())
    }
}

/// Finds the current leader (async: it asks the nodes).
pub type LeaderProbe =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<NodeId>> + Send>> + Send + Sync>;

/// What is in effect now, to heal it.
#[derive(Debug)]
enum Active {
    Partition,
    Kill(Vec<NodeId>),
    Pause(Vec<NodeId>),
    Clock,
    Loss,
    Latency,
    SlowReader(SlowReaderWindow),
    Impostor,
}

/// A slow-reader fault in effect: its node, its open connections, and the
/// node's resident set when it started (None: could not be read).
struct SlowReaderWindow {
    node: NodeId,
    readers: Option<slow_reader::SlowReaders>,
    rss_before_kib: Option<u64>,
}

impl std::fmt::Debug for SlowReaderWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowReaderWindow")
            .field("node", &self.node)
            .field("rss_before_kib", &self.rss_before_kib)
            .finish_non_exhaustive()
    }
}

pub struct Nemesis {
    cluster: Arc<dyn Cluster>,
    recorder: Arc<Recorder>,
    probe: LeaderProbe,
    kinds: Vec<FaultKind>,
    interval: Duration,
    seed: u64,
    rng: SmallRng,
    rotation: Vec<FaultKind>,
    kill_modes: Vec<&'static str>,
    pause_modes: Vec<&'static str>,
    active: Option<(FaultKind, Active)>,
    membership: Option<MembershipNemesis>,
    slow_reader: Option<slow_reader::SlowReaderSetup>,
    impostor: Option<impostor::ImpostorSetup>,
}

async fn blocking<T: Send + 'static>(
    cluster: &Arc<dyn Cluster>,
    f: impl FnOnce(&dyn Cluster) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let c = Arc::clone(cluster);
    tokio::task::spawn_blocking(move || f(&*c))
        .await
        .context("a cluster operation panicked")?
}

fn names(nodes: &[NodeId]) -> Vec<String> {
    nodes.iter().map(|n| n.name()).collect()
}

impl Nemesis {
    pub fn new(
        cluster: Arc<dyn Cluster>,
        recorder: Arc<Recorder>,
        probe: LeaderProbe,
        kinds: Vec<FaultKind>,
        interval: Duration,
        seed: u64,
        membership: Option<MembershipNemesis>,
    ) -> Nemesis {
        Nemesis {
            cluster,
            recorder,
            probe,
            kinds,
            interval,
            seed,
            rng: SmallRng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7321),
            rotation: Vec::new(),
            kill_modes: Vec::new(),
            pause_modes: Vec::new(),
            active: None,
            membership,
            slow_reader: None,
            impostor: None,
        }
    }

    /// What the impostor presents (the system's credentials for it);
    /// without it an impostor fault fails to start, recorded as such.
    pub fn with_impostor(mut self, setup: impostor::ImpostorSetup) -> Nemesis {
        self.impostor = Some(setup);
        self
    }

    /// What the slow-reader fault writes (the system's request lines);
    /// without it a slow-reader fault fails to start, recorded as such.
    pub fn with_slow_reader(mut self, setup: slow_reader::SlowReaderSetup) -> Nemesis {
        self.slow_reader = Some(setup);
        self
    }

    /// Runs until `stop` turns true, then heals. See the module docs.
    pub async fn run(mut self, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let track = match self.membership.take() {
            Some(m) if self.kinds.contains(&FaultKind::Membership) => Some(m),
            _ => None,
        };
        self.kinds.retain(|&k| k != FaultKind::Membership);
        let mechanism = FaultKind::Membership.mechanism(&*self.cluster).as_str();
        let (recorder, interval, seed) = (Arc::clone(&self.recorder), self.interval, self.seed);
        let changes = async {
            match track {
                Some(m) => {
                    m.run(recorder, interval, seed, mechanism, stop.clone())
                        .await
                }
                None => Ok(()),
            }
        };
        let mut fault_stop = stop.clone();
        let faults = async {
            if self.kinds.is_empty() {
                return Ok(());
            }
            // Heal as soon as the run stops, while a membership change in
            // flight gets its grace, so the change can finish.
            let result = self.schedule(&mut fault_stop).await;
            let healed = self.heal_everything().await;
            result.and(healed)
        };
        let (faults, changes) = tokio::join!(faults, changes);
        faults.and(changes)
    }

    async fn schedule(&mut self, stop: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
        let quiet_first = self.interval.mul_f64(0.3);
        if sleep_or_stop(quiet_first, stop).await {
            return Ok(());
        }
        loop {
            let kind = self.next_kind();
            let hold = self.interval.mul_f64(self.rng.gen_range(0.4..0.7));
            self.start(kind).await?;
            if sleep_or_stop(hold, stop).await {
                return Ok(());
            }
            self.stop_active().await?;
            if sleep_or_stop(self.interval.saturating_sub(hold), stop).await {
                return Ok(());
            }
        }
    }

    fn next_kind(&mut self) -> FaultKind {
        if self.rotation.is_empty() {
            self.rotation = self.kinds.clone();
            self.rotation.shuffle(&mut self.rng);
        }
        self.rotation.pop().expect("rotation refilled above")
    }

    fn record(&self, f: String, value: Value, error: Option<String>) -> anyhow::Result<()> {
        record_fault(&self.recorder, f, value, error)
    }

    fn nodes(&self) -> Vec<NodeId> {
        self.cluster.nodes().iter().map(|n| n.id).collect()
    }

    /// Picks targets: one, the leader, a majority, or all, taking `modes`
    /// in a seeded shuffled rotation (kept in `rotation`), so every mode
    /// comes up once in each round: k kills with k = modes.len() always
    /// include killing every node at once.
    async fn targets(
        &mut self,
        modes: &[&'static str],
        for_kill: bool,
    ) -> (Vec<NodeId>, &'static str) {
        let mut nodes = self.nodes();
        nodes.shuffle(&mut self.rng);
        let rotation = if for_kill {
            &mut self.kill_modes
        } else {
            &mut self.pause_modes
        };
        if rotation.is_empty() {
            *rotation = modes.to_vec();
            rotation.shuffle(&mut self.rng);
        }
        let mode = rotation.pop().expect("rotation refilled above");
        match mode {
            "leader" => match (self.probe)().await {
                Some(l) => (vec![l], "leader"),
                None => (nodes[..1].to_vec(), "one"),
            },
            "majority" => (nodes[..nodes.len() / 2 + 1].to_vec(), "majority"),
            "all" => (nodes, "all"),
            _ => (nodes[..1].to_vec(), "one"),
        }
    }

    async fn start(&mut self, kind: FaultKind) -> anyhow::Result<()> {
        let mechanism = kind.mechanism(&*self.cluster).as_str();
        if kind == FaultKind::Membership {
            anyhow::bail!("membership changes run on their own track, not in the rotation");
        }
        let f = format!("start-{}", kind.as_str());
        if kind == FaultKind::Impostor {
            return self.start_impostor(f, mechanism).await;
        }
        let (active, mut value, result) = match kind {
            FaultKind::Partition => {
                let shape = Shape::ALL[weighted(&mut self.rng, &Shape::WEIGHTS)];
                let leader = if shape == Shape::LeaderIsolated {
                    (self.probe)().await
                } else {
                    None
                };
                let cuts = shape::cuts(shape, &self.nodes(), leader, &mut self.rng);
                let value = json!({
                    "shape": shape.as_str(),
                    "cuts": cuts.iter().map(|(a, b)| [a.name(), b.name()]).collect::<Vec<_>>(),
                    "leader": leader.map(NodeId::name),
                });
                let r = blocking(&self.cluster, move |c| c.partition(&cuts)).await;
                (Active::Partition, value, r)
            }
            FaultKind::Kill => {
                let (targets, mode) = self
                    .targets(&["one", "leader", "majority", "all"], true)
                    .await;
                let value = json!({"nodes": names(&targets), "mode": mode});
                let t = targets.clone();
                let r = blocking(&self.cluster, move |c| {
                    t.iter().try_for_each(|&n| c.kill(n))
                })
                .await;
                (Active::Kill(targets), value, r)
            }
            FaultKind::Pause => {
                let (targets, mode) = self.targets(&["one", "leader", "majority"], false).await;
                let value = json!({"nodes": names(&targets), "mode": mode});
                let t = targets.clone();
                let r = blocking(&self.cluster, move |c| {
                    t.iter().try_for_each(|&n| c.pause(n))
                })
                .await;
                (Active::Pause(targets), value, r)
            }
            FaultKind::Clock => {
                let mut nodes = self.nodes();
                nodes.shuffle(&mut self.rng);
                let count = self.rng.gen_range(1..=nodes.len());
                let faults: Vec<(NodeId, ClockFault)> = nodes[..count]
                    .iter()
                    .map(|&n| (n, clock_fault(&mut self.rng)))
                    .collect();
                let value = json!({
                    "offsets_ms": faults.iter().map(|(n, c)| (n.name(), json!(c.offset_ms))).collect::<serde_json::Map<_, _>>(),
                    "rates": faults.iter().filter(|(_, c)| c.changes_rate()).map(|(n, c)| (n.name(), json!(c.rate))).collect::<serde_json::Map<_, _>>(),
                });
                let r = blocking(&self.cluster, move |c| {
                    faults.iter().try_for_each(|&(n, f)| c.set_clock(n, f))
                })
                .await;
                (Active::Clock, value, r)
            }
            FaultKind::Loss => {
                let p = (self.rng.gen_range(0.05..0.3f64) * 100.0).round() / 100.0;
                let value = json!({"probability": p});
                let r = blocking(&self.cluster, move |c| c.set_loss(p)).await;
                (Active::Loss, value, r)
            }
            FaultKind::Latency => {
                let ms = self.rng.gen_range(20..=200u64);
                let value = json!({"delay_ms": ms});
                let r = blocking(&self.cluster, move |c| c.set_latency(ms)).await;
                (Active::Latency, value, r)
            }
            FaultKind::SlowReader => {
                let (window, value, r) = self.start_slow_reader().await;
                (Active::SlowReader(window), value, r)
            }
            FaultKind::Membership | FaultKind::Impostor => unreachable!("handled above"),
        };
        value["mechanism"] = json!(mechanism);
        let error = result.as_ref().err().map(|e| format!("{e:#}"));
        self.record(f, value, error)?;
        // Even a failed start may have half-applied: heal it as if active.
        self.active = Some((kind, active));
        Ok(())
    }

    async fn stop_active(&mut self) -> anyhow::Result<()> {
        let Some((kind, active)) = self.active.take() else {
            return Ok(());
        };
        let mechanism = kind.mechanism(&*self.cluster).as_str();
        let f = format!("stop-{}", kind.as_str());
        let (value, result) = match active {
            Active::Partition => (
                json!({}),
                blocking(&self.cluster, |c| c.partition(&[])).await,
            ),
            Active::Kill(nodes) => {
                let value = json!({"nodes": names(&nodes), "action": "restart"});
                (
                    value,
                    blocking(&self.cluster, move |c| {
                        nodes.iter().try_for_each(|&n| c.start(n))
                    })
                    .await,
                )
            }
            Active::Pause(nodes) => {
                let value = json!({"nodes": names(&nodes)});
                (
                    value,
                    blocking(&self.cluster, move |c| {
                        nodes.iter().try_for_each(|&n| c.resume(n))
                    })
                    .await,
                )
            }
            Active::Clock => {
                let nodes = self.nodes();
                (
                    json!({}),
                    blocking(&self.cluster, move |c| {
                        nodes
                            .iter()
                            .try_for_each(|&n| c.set_clock(n, ClockFault::TRUE))
                    })
                    .await,
                )
            }
            Active::Loss => (
                json!({}),
                blocking(&self.cluster, |c| c.set_loss(0.0)).await,
            ),
            Active::Latency => (
                json!({}),
                blocking(&self.cluster, |c| c.set_latency(0)).await,
            ),
            Active::SlowReader(window) => self.stop_slow_reader(window).await,
            Active::Impostor => (json!({}), Ok(())),
        };
        let mut value = value;
        value["mechanism"] = json!(mechanism);
        let error = result.as_ref().err().map(|e| format!("{e:#}"));
        self.record(f, value, error)?;
        if kind == FaultKind::SlowReader {
            // Its connections are closed whatever happened: a node whose
            // memory could not be read is the node-memory check's unknown,
            // not a fault left unhealed.
            return Ok(());
        }
        result
    }

    /// The impostor's turn: `start-impostor`, then one `impostor` event per
    /// attempt on every node, the summary (attempts, accepted) in the
    /// start's value, which is recorded first.
    async fn start_impostor(&mut self, f: String, mechanism: &'static str) -> anyhow::Result<()> {
        let nodes = self.cluster.nodes().to_vec();
        self.active = Some((FaultKind::Impostor, Active::Impostor));
        let value = json!({"nodes": nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>(), "mechanism": mechanism});
        let Some(setup) = &self.impostor else {
            let error = "the system gave no credentials for the impostor".to_string();
            return self.record(f, value, Some(error));
        };
        self.record(f, value, None)?;
        let attempts = impostor::attempt_all(setup, &nodes).await;
        for attempt in &attempts {
            self.record("impostor".into(), attempt.value(), None)?;
        }
        let accepted = attempts
            .iter()
            .filter(|a| matches!(a.outcome, impostor::Outcome::Accepted { .. }))
            .count();
        tracing::info!(attempts = attempts.len(), accepted, "impostor turn done");
        Ok(())
    }

    /// Opens the slow readers on the leader (whose replies carry the
    /// value; a follower answers `not-leader`), or on a node drawn when
    /// there is none, after reading its memory.
    async fn start_slow_reader(&mut self) -> (SlowReaderWindow, Value, anyhow::Result<()>) {
        let leader = (self.probe)().await;
        let node = match leader {
            Some(l) => l,
            None => *self
                .nodes()
                .choose(&mut self.rng)
                .expect("a cluster has nodes"),
        };
        // The peak from here on is the fault's (VmHWM reset to VmRSS).
        let before = blocking(&self.cluster, move |c| {
            c.reset_peak_memory(node)?;
            c.memory(node)
        })
        .await;
        let mut window = SlowReaderWindow {
            node,
            readers: None,
            rss_before_kib: before.as_ref().ok().map(|m| m.rss_kib),
        };
        let mut value = json!({
            "node": node.name(),
            "leader": leader.is_some(),
            "connections": slow_reader::CONNECTIONS,
            "reads_per_connection": slow_reader::READS_PER_CONNECTION,
            "value_bytes": slow_reader::VALUE_BYTES,
            "rss_kib": window.rss_before_kib,
        });
        let addr = self
            .cluster
            .nodes()
            .iter()
            .find(|n| n.id == node)
            .map(|n| n.client_addr);
        let result = match (&self.slow_reader, addr, before) {
            (None, _, _) => Err(anyhow::anyhow!(
                "the system gave no requests for the slow-reader fault"
            )),
            (_, None, _) => Err(anyhow::anyhow!("{node} is not in the cluster")),
            (_, _, Err(e)) => Err(e.context(format!("reading {node}'s memory"))),
            (Some(setup), Some(addr), Ok(_)) => {
                match slow_reader::SlowReaders::open(addr, setup).await {
                    Ok(readers) => {
                        window.readers = Some(readers);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        };
        if result.is_err() {
            value["rss_kib"] = Value::Null;
            window.rss_before_kib = None;
        }
        (window, value, result)
    }

    /// Reads the node's memory (its peak since the fault started) while the
    /// readers are still open, then
    /// closes them: the stop event carries the growth the node-memory
    /// check judges.
    async fn stop_slow_reader(&mut self, window: SlowReaderWindow) -> (Value, anyhow::Result<()>) {
        let node = window.node;
        let after = blocking(&self.cluster, move |c| c.memory(node)).await;
        let written = window.readers.map(slow_reader::SlowReaders::close);
        let mut value = json!({
            "node": node.name(),
            "bytes_written": written,
            "bound_kib": slow_reader::GROWTH_BOUND_KIB,
        });
        let result = match (window.rss_before_kib, after) {
            (Some(before), Ok(after)) => {
                value["rss_before_kib"] = json!(before);
                value["rss_kib"] = json!(after.rss_kib);
                value["peak_rss_kib"] = json!(after.peak_rss_kib);
                value["growth_kib"] = json!(after.peak_rss_kib.saturating_sub(before));
                Ok(())
            }
            (None, Ok(_)) => Err(anyhow::anyhow!(
                "the fault did not start on {node} (its start event says why)"
            )),
            (_, Err(e)) => Err(e.context(format!("reading {node}'s memory"))),
        };
        (value, result)
    }

    /// Stops the active fault, then heals everything and starts every node
    /// that is down, whatever the nemesis thinks is active.
    pub async fn heal_everything(&mut self) -> anyhow::Result<()> {
        let stopped = self.stop_active().await;
        let healed = blocking(&self.cluster, |c| {
            c.heal_all()?;
            for n in c.nodes().to_vec() {
                if !c.is_running(n.id) {
                    c.start(n.id)?;
                }
            }
            Ok(())
        })
        .await;
        stopped.and(healed)
    }
}

/// Writes a nemesis event to the history and logs it (the run log,
/// faultline.log, keeps every fault with its mechanism, which is in `value`).
fn record_fault(
    recorder: &Recorder,
    f: String,
    value: Value,
    error: Option<String>,
) -> anyhow::Result<()> {
    match &error {
        None => tracing::info!("nemesis {f} {value}"),
        Some(e) => tracing::warn!("nemesis {f} {value} failed: {e}"),
    }
    recorder
        .nemesis(f, value, error)
        .context("writing a nemesis event to the history")
}

/// An index drawn with the given weights (not all zero).
fn weighted(rng: &mut impl Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    assert!(total > 0, "weights must not all be zero");
    let mut roll = rng.gen_range(0..total);
    let mut pick = 0;
    while roll >= weights[pick] {
        roll -= weights[pick];
        pick += 1;
    }
    pick
}

/// Sleeps for `d`; returns true if `stop` turned true first.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        r = stop.wait_for(|s| *s) => { let _ = r; true }
    };
    stopped || *stop.borrow()
}

/// Rates a clock fault may run at, besides true speed: half of the faults
/// drift, slow or fast, as far as half or twice true speed.
const CLOCK_RATES: [f64; 4] = [0.5, 0.75, 1.5, 2.0];

/// One node's clock fault: an offset of 1 s to 2 min either way, and on
/// half of them a rate off true speed.
fn clock_fault(rng: &mut SmallRng) -> ClockFault {
    let ms = rng.gen_range(1_000..=120_000i64);
    let offset_ms = if rng.gen_bool(0.5) { ms } else { -ms };
    let rate = if rng.gen_bool(0.5) {
        1.0
    } else {
        *CLOCK_RATES.choose(rng).expect("a rate")
    };
    ClockFault { offset_ms, rate }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_all_and_none() {
        assert_eq!(
            parse_kinds("partition,kill", false).expect("ok"),
            [FaultKind::Partition, FaultKind::Kill]
        );
        assert_eq!(parse_kinds("all", false).expect("ok").len(), 6);
        assert_eq!(
            parse_kinds("all,impostor", false).expect("ok").len(),
            7,
            "impostor is asked for by name"
        );
        assert!(parse_kinds("none", false).expect("ok").is_empty());
        assert_eq!(
            parse_kinds("kill, kill", false).expect("ok"),
            [FaultKind::Kill]
        );
        let e = parse_kinds("partition,flood", false).expect_err("flood is no fault");
        assert!(e.contains("\"flood\""), "{e}");
        assert!(e.contains("membership"), "the list names every kind: {e}");
    }

    #[test]
    fn membership_needs_a_sharded_cluster_and_all_includes_it_there() {
        let e = parse_kinds("membership,kill", false).expect_err("unsharded");
        assert!(e.contains("--shards"), "{e}");
        assert_eq!(
            parse_kinds("membership,partition,kill", true).expect("ok"),
            [FaultKind::Partition, FaultKind::Kill, FaultKind::Membership]
        );
        let all = parse_kinds("all", true).expect("ok");
        assert_eq!(all.len(), 7);
        assert!(all.contains(&FaultKind::Membership));
    }
}

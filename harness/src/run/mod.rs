//! The run loop of `faultline test`: start the cluster, wait until the
//! system under test has elected (sharded faultline: every shard's group)
//! and serves, drive it with the workload's workers (one client per worker,
//! opened by the system) while the nemesis breaks it, heal every fault,
//! wait for recovery, run the final reads, record whether every node caught
//! up (the `caught-up` nemesis event), stop the cluster. With `--auth`,
//! before the first operation, what every node answers a request without
//! the token (the `auth` nemesis event). A sharded run
//! records its initial placement as a `placement` nemesis event before the
//! first operation, and a fault kind the cluster cannot make as an
//! `unsupported-<kind>` nemesis event (docs/history-format.md).
//!
//! Every event goes to the [`recorder::Recorder`] as it happens. This
//! module does not check anything and does not own the cluster's lifetime:
//! the caller tears the cluster down on every path (success, error,
//! interrupt), so a dropped [`execute`] future leaves nothing behind.

pub mod audit;
pub mod generator;
pub mod isolation;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod recorder;
pub mod repeat;

use crate::cluster::Cluster;
use crate::nemesis::membership::Admin;
use crate::nemesis::{slow_reader, FaultKind, LeaderProbe, MembershipNemesis, Nemesis};
use crate::system::System;
use anyhow::{bail, Context};
use faultline_workloads::{Client, ShapedClient, Workload};
use generator::{PhaseConfig, Worker};
use plan::TestPlan;
use recorder::Recorder;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long the cluster may take to elect its first leader.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a run needs, built by `faultline test` from the plan.
pub struct Run<'a> {
    pub plan: &'a TestPlan,
    pub workload: &'a dyn Workload,
    pub system: Arc<dyn System>,
    pub cluster: Arc<dyn Cluster>,
    /// The address clients bind to (local clusters with an address per node).
    pub bind_ip: Option<IpAddr>,
    pub recorder: Arc<Recorder>,
    /// Fault kinds the plan asks for that this cluster cannot make, and
    /// why: recorded in the history, left out of the schedule.
    pub unsupported: &'a [(FaultKind, String)],
    pub show_progress: bool,
}

/// Runs the test described by `run.plan` against `run.cluster`; see the
/// module docs.
pub async fn execute(run: Run<'_>) -> anyhow::Result<()> {
    let Run {
        plan,
        workload,
        system,
        cluster,
        bind_ip,
        recorder,
        unsupported,
        show_progress,
    } = run;
    let nodes = cluster.nodes().to_vec();
    {
        let c = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || c.start_all())
            .await
            .context("starting nodes panicked")?
            .context("starting the nodes")?;
    }
    if let Err(e) = system.await_leader(&nodes, bind_ip, STARTUP_TIMEOUT).await {
        let tails: Vec<String> = nodes
            .iter()
            .filter_map(|n| {
                cluster
                    .log_tail(n.id)
                    .map(|t| format!("  {}:\n{t}", n.name))
            })
            .collect();
        if tails.is_empty() {
            bail!("{e} within {STARTUP_TIMEOUT:?} of starting; see the node logs");
        }
        bail!(
            "{e} within {STARTUP_TIMEOUT:?} of starting; the last lines of each node's log:\n{}",
            tails.join("\n")
        );
    }
    for (kind, why) in unsupported {
        recorder
            .nemesis(
                format!("unsupported-{}", kind.as_str()),
                serde_json::json!({"system": system.kind(), "reason": why}),
                None,
            )
            .context("recording an unsupported fault")?;
    }
    let ring = match &plan.sharding {
        Some(sharding) => {
            let ring = sharding.ring.clone();
            let mut value = ring.placement_value();
            value["mechanism"] = serde_json::json!(cluster.mechanisms().membership.as_str());
            recorder
                .nemesis("placement".into(), value, None)
                .context("recording the initial placement")?;
            Some(ring)
        }
        None => None,
    };
    system
        .await_serving(&nodes, bind_ip, STARTUP_TIMEOUT)
        .await?;
    cluster.verify_running()?;
    if let Some(auth) = system.auth_probe(&nodes, bind_ip).await {
        let value = serde_json::to_value(&auth).context("describing the auth probe")?;
        recorder
            .nemesis("auth".into(), value, None)
            .context("recording the auth probe")?;
    }

    let concurrency = plan.concurrency as usize;
    let workers = (0..concurrency)
        .map(|i| {
            let client = system
                .client(i, &nodes, bind_ip)
                .with_context(|| format!("opening the client of worker {i}"))?;
            Ok(Worker {
                index: i,
                process: i as u64,
                gen: workload.worker(i, concurrency, plan.seed),
                client: match plan.value_shape {
                    Some(shape) => Box::new(ShapedClient {
                        inner: client,
                        shape,
                    }) as Box<dyn Client>,
                    None => client,
                },
            })
        })
        .collect::<anyhow::Result<Vec<Worker<Box<dyn Client>>>>>()?;

    let progress = show_progress.then(|| {
        progress::Progress::start(
            Duration::from_secs_f64(plan.time_limit_s),
            Arc::clone(&recorder),
        )
    });
    let kinds: Vec<FaultKind> = plan
        .nemesis
        .iter()
        .copied()
        .filter(|k| !unsupported.iter().any(|(u, _)| u == k))
        .collect();
    let probe: LeaderProbe = {
        let nodes = nodes.clone();
        let system = Arc::clone(&system);
        Arc::new(move || {
            let nodes = nodes.clone();
            let system = Arc::clone(&system);
            Box::pin(async move { system.leader(&nodes, bind_ip).await })
        })
    };
    let membership = match ring {
        Some(plan) if kinds.contains(&FaultKind::Membership) => Some(MembershipNemesis {
            plan,
            admin: Arc::new(Admin {
                credentials: system.admin_credentials(),
                ..Admin::new(nodes.clone(), bind_ip)
            }),
        }),
        _ => None,
    };
    let slow_reader = kinds
        .contains(&FaultKind::SlowReader)
        .then(|| system.slow_reader_lines(slow_reader::VALUE_BYTES))
        .flatten();
    let mut nemesis = Nemesis::new(
        Arc::clone(&cluster),
        Arc::clone(&recorder),
        probe,
        kinds,
        Duration::from_secs_f64(plan.nemesis_interval_s),
        plan.seed,
        membership,
    );
    if let Some(lines) = slow_reader {
        nemesis = nemesis.with_slow_reader(slow_reader::SlowReaderSetup { lines, bind_ip });
    }
    if plan.nemesis.contains(&FaultKind::Impostor) {
        if let Some(setup) = system
            .impostor(&nodes, bind_ip)
            .context("preparing the impostor's credentials")?
        {
            nemesis = nemesis.with_impostor(setup);
        }
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let nemesis_task = tokio::spawn(nemesis.run(stop_rx));

    let cfg = PhaseConfig {
        deadline: Instant::now() + Duration::from_secs_f64(plan.time_limit_s),
        rate_per_s: plan.rate_per_s,
        op_timeout: Duration::from_millis(plan.op_timeout_ms),
        concurrency: concurrency as u64,
    };
    let main = generator::main_phase(workers, Arc::clone(&recorder), cfg).await;
    // Heal whatever happened to the main phase.
    let _ = stop_tx.send(true);
    if let Some(p) = &progress {
        p.phase("main phase done; healing every fault");
    }
    let healed = nemesis_task.await.context("the nemesis panicked")?;
    let workers = main?;
    healed.context("healing the cluster")?;

    if let Some(p) = &progress {
        p.phase("waiting for the cluster to recover");
    }
    let recovery = Duration::from_secs_f64(plan.recovery_timeout_s);
    match system.await_leader(&nodes, bind_ip, recovery).await {
        Ok(()) => tracing::info!("recovered"),
        Err(e) => tracing::warn!("{e} {recovery:?} after healing; the final reads may fail"),
    }
    if let Some(p) = &progress {
        p.phase("final reads");
    }
    let cfg = PhaseConfig {
        deadline: Instant::now() + Duration::from_secs_f64(plan.final_timeout_s),
        ..cfg
    };
    generator::final_phase(workers, Arc::clone(&recorder), cfg).await?;
    if let Some(p) = &progress {
        p.phase("waiting for every node to catch up");
    }
    // Every run asks (the peer sender that once left a Paxos follower
    // behind after `--nemesis all` is fixed: transport::peer_sender_tests).
    let caught_up = system.await_caught_up(&nodes, bind_ip, recovery).await;
    if let Some(catch_up) = caught_up {
        let value = serde_json::to_value(&catch_up).context("describing the catch-up")?;
        recorder
            .nemesis("caught-up".into(), value, None)
            .context("recording whether every node caught up")?;
    }
    drop(progress);
    Ok(())
}

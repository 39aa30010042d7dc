//! The run loop of `faultline test`: start the cluster, wait for a leader
//! (sharded: until every shard's group has one), drive it with the
//! workload's workers while the nemesis breaks it, heal every fault, wait
//! for recovery, run the final reads, stop the cluster. A sharded run
//! records its initial placement as a `placement` nemesis event before the
//! first operation (docs/history-format.md).
//!
//! Every event goes to the [`recorder::Recorder`] as it happens. This
//! module does not check anything and does not own the cluster's lifetime:
//! the caller tears the cluster down on every path (success, error,
//! interrupt), so a dropped [`execute`] future leaves nothing behind.

pub mod generator;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod recorder;

use crate::cluster::{Cluster, NodeInfo};
use crate::nemesis::membership::Admin;
use crate::nemesis::ring_plan::RingPlan;
use crate::nemesis::{parse_kinds, FaultKind, LeaderProbe, MembershipNemesis, Nemesis};
use anyhow::{bail, Context};
use faultline_workloads::tcp_client::{NodeAddr, TcpClient};
use faultline_workloads::{CallResult, Client, Request, Workload};
use generator::{PhaseConfig, Worker};
use plan::TestPlan;
use recorder::Recorder;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long the cluster may take to elect its first leader.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the test described by `plan` against `cluster`; see the module docs.
pub async fn execute(
    plan: &TestPlan,
    workload: &dyn Workload,
    cluster: Arc<dyn Cluster>,
    bind_ip: Option<IpAddr>,
    recorder: Arc<Recorder>,
    show_progress: bool,
) -> anyhow::Result<()> {
    let nodes = cluster.nodes().to_vec();
    {
        let c = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || c.start_all())
            .await
            .context("starting nodes panicked")?
            .context("starting the nodes")?;
    }
    if let Err(e) = wait_for_leaders(plan, &nodes, bind_ip, STARTUP_TIMEOUT).await {
        bail!("{e} within {STARTUP_TIMEOUT:?} of starting; see the node logs");
    }
    let ring = match plan.shards {
        Some(shards) => {
            let ring = RingPlan::new(
                plan.vnodes,
                shards,
                plan.replicas as usize,
                plan.node_count,
                &plan.members,
            )
            .map_err(anyhow::Error::msg)
            .context("planning the ring")?;
            let mut value = ring.placement_value();
            value["mechanism"] = serde_json::json!(cluster.mechanisms().membership.as_str());
            recorder
                .nemesis("placement".into(), value, None)
                .context("recording the initial placement")?;
            Some(ring)
        }
        None => None,
    };
    let addrs: Vec<NodeAddr> = nodes
        .iter()
        .map(|n| NodeAddr {
            name: n.name.clone(),
            addr: n.client_addr,
        })
        .collect();
    wait_until_serving(&addrs, bind_ip, STARTUP_TIMEOUT).await?;

    let concurrency = plan.concurrency as usize;
    let workers: Vec<Worker<TcpClient>> = (0..concurrency)
        .map(|i| Worker {
            index: i,
            process: i as u64,
            gen: workload.worker(i, concurrency, plan.seed),
            client: TcpClient::new(addrs.clone(), i, bind_ip, None),
        })
        .collect();

    let progress = show_progress.then(|| {
        progress::Progress::start(
            Duration::from_secs_f64(plan.time_limit_s),
            Arc::clone(&recorder),
        )
    });
    let kinds = parse_kinds(&plan.nemesis.join(","), plan.sharded()).map_err(anyhow::Error::msg)?;
    let sharded = plan.sharded();
    let probe: LeaderProbe = {
        let nodes = nodes.clone();
        Arc::new(move || {
            let nodes = nodes.clone();
            Box::pin(async move {
                if sharded {
                    probe::busiest_leader(&nodes, bind_ip).await
                } else {
                    probe::find_leader(&nodes, bind_ip).await
                }
            })
        })
    };
    let membership = match ring {
        Some(plan) if kinds.contains(&FaultKind::Membership) => Some(MembershipNemesis {
            plan,
            admin: Arc::new(Admin::new(nodes.clone(), bind_ip)),
        }),
        _ => None,
    };
    let nemesis = Nemesis::new(
        Arc::clone(&cluster),
        Arc::clone(&recorder),
        probe,
        kinds,
        Duration::from_secs_f64(plan.nemesis_interval_s),
        plan.seed,
        membership,
    );
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
    match wait_for_leaders(plan, &nodes, bind_ip, recovery).await {
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
    drop(progress);
    Ok(())
}

/// Waits until the cluster has a leader: unsharded, some node says it
/// leads; sharded, every shard's group has a leader. The error says what
/// is missing.
async fn wait_for_leaders(
    plan: &TestPlan,
    nodes: &[NodeInfo],
    bind_ip: Option<IpAddr>,
    timeout: Duration,
) -> anyhow::Result<()> {
    match plan.shards {
        None => match probe::wait_for_leader(nodes, bind_ip, timeout).await {
            Some(leader) => {
                tracing::info!(%leader, "leader elected");
                Ok(())
            }
            None => bail!("no node became leader"),
        },
        Some(shards) => {
            match probe::wait_for_group_leaders(nodes, bind_ip, shards, timeout).await {
                Ok(()) => {
                    tracing::info!(shards, "every shard has a leader");
                    Ok(())
                }
                Err(missing) => bail!(
                    "no leader for shard{} {}",
                    if missing.len() == 1 { "" } else { "s" },
                    missing
                        .iter()
                        .map(|s| format!("s{s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    }
}

/// Waits until some node answers a read with `ok` (the cluster serves).
async fn wait_until_serving(
    addrs: &[NodeAddr],
    bind_ip: Option<IpAddr>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut client = TcpClient::new(addrs.to_vec(), 0, bind_ip, None);
    let probe = Request::Read {
        key: "faultline-ready".into(),
    };
    let mut last = String::new();
    while Instant::now() < deadline {
        match client.call(&probe, Duration::from_secs(2)).await {
            CallResult::Replied { reply, .. } if reply.ok => return Ok(()),
            other => last = format!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the cluster elected a leader but served no read within {timeout:?}; last answer: {last}")
}

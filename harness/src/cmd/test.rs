//! `faultline test`: run a Jepsen-style test on this machine.
//!
//! Turns the flags into one typed [`TestPlan`] (the only place a flag's
//! text is parsed), builds the system under test from it, creates the run's
//! directory in the store, starts a local or remote cluster, runs
//! [`crate::run::execute`] under SIGINT/SIGTERM handlers, and tears the
//! cluster down on every path (done, error, interrupt, panic) before
//! checking the history and printing the results.

use crate::adapter::system::{missing_programs, remote_refusal, AdapterRun, AdapterSystem};
use crate::adapter::AdapterFile;
use crate::cluster::local::{LocalCluster, LocalConfig};
use crate::cluster::{Cluster, Mechanism};
use crate::exit::{bad_input, Exit};
use crate::nemesis::FaultKind;
use crate::parse::{self, Concurrency};
use crate::run::isolation::IsolationLevel;
use crate::run::plan::{consensus_kind, Sharding, TestPlan};
use crate::run::recorder::Recorder;
use crate::system::faultline::auth::AuthToken;
use crate::system::faultline::tls::RunTls;
use crate::system::faultline::FaultlineSystem;
use crate::system::{Support, System, SystemKind};
use anyhow::Context;
use faultline_nodes::server::ConsensusKind;
use faultline_results::{HistoryWriter, RunDir, VerdictKind};
use faultline_workloads::{workload_for, ValueShape, WorkloadKind, WorkloadOptions};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The system under test: faultline (its own node, the default), etcd,
    /// or an adapter file (a path ending .toml; docs/adapters.md).
    #[arg(long, default_value = "faultline", value_parser = parse::SystemArg)]
    pub system: String,
    /// An adapter's param (NAME=VALUE, repeatable): overrides the default
    /// its file's [params] gives.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// The system's executable (etcd: default `etcd` on PATH, from Debian's
    /// etcd-server; remote mode uploads it to every host).
    #[arg(long, value_name = "FILE")]
    pub system_bin: Option<PathBuf>,
    /// What clients do: register, kv, lock, set, counter, lock-counter.
    #[arg(short = 'w', long, default_value = "register", value_parser = parse::names(WorkloadKind::ALL))]
    pub workload: String,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 5)]
    pub node_count: u32,
    /// The isolation level the system runs transactions at, for a system
    /// that offers several (an adapter file's [isolation] levels, e.g.
    /// PostgreSQL's); the checker still judges against strict-serializable.
    #[arg(long, value_name = "LEVEL", value_parser = parse::one_of(IsolationLevel::ALL))]
    pub isolation: Option<IsolationLevel>,
    /// Client workers: a number (10) or per node (3n).
    #[arg(long, default_value = "2n", value_parser = parse::concurrency)]
    pub concurrency: Concurrency,
    /// Operations per second over all workers (0: as fast as possible).
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// How long the main phase runs (60s, 2m, 500ms).
    #[arg(long, default_value = "30s", value_parser = parse::duration)]
    pub time_limit: Duration,
    /// Faults: a comma list of partition, kill, pause, clock, loss, latency,
    /// membership (ring changes; needs --shards), slow-reader (clients that
    /// never read; the node's memory checked), impostor (connections with
    /// wrong or missing credentials; needs --auth or --tls; judged by the
    /// access checker); or all (every kind but slow-reader and impostor);
    /// or none.
    #[arg(long, default_value = "partition,kill", value_delimiter = ',', value_parser = nemesis_names())]
    pub nemesis: Vec<String>,
    /// Time between the starts of two faults.
    #[arg(long, default_value = "10s", value_parser = parse::duration)]
    pub nemesis_interval: Duration,
    /// Seed of every random choice (the schedule); random if not given.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Make every node wrong on purpose (`faultline node --list-bugs`).
    #[arg(long)]
    pub bug: Option<String>,
    /// Consensus protocol of the nodes (passed through: raft or paxos).
    #[arg(long, value_parser = parse::names([ConsensusKind::Raft, ConsensusKind::Paxos].map(ConsensusKind::name)))]
    pub consensus: Option<String>,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The test's name in the store (default: workload and nemesis).
    #[arg(long)]
    pub name: Option<String>,
    /// Print results.json on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// A client operation with no reply after this is unknown (info).
    #[arg(long, default_value = "1s", value_parser = parse::duration)]
    pub op_timeout: Duration,
    /// How long to wait for a leader after healing.
    #[arg(long, default_value = "30s", value_parser = parse::duration)]
    pub recovery_timeout: Duration,
    /// How long the final reads may retry.
    #[arg(long, default_value = "15s", value_parser = parse::duration)]
    pub final_timeout: Duration,
    /// Never use iptables; partition with the nodes' own message filter.
    #[arg(long)]
    pub no_iptables: bool,
    /// Lock workload: lease of each acquire, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub lock_ttl_ms: u64,
    /// Lock workloads: lease of each acquire, with a unit (2s, 1500ms);
    /// overrides --lock-ttl-ms. etcd rounds leases up to whole seconds.
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub lock_ttl: Option<Duration>,
    /// Lock holders idle up to this long inside their critical section
    /// (etcd's lock, lock-counter); default: twice the lease.
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub lock_hold: Option<Duration>,
    /// kv workload: number of independent keys.
    #[arg(long, default_value_t = 8)]
    pub kv_keys: usize,
    /// register and kv workloads: send every value padded to about this
    /// size (900KiB, 1MiB, …); the history keeps the small value.
    #[arg(long, value_parser = parse::bytes)]
    pub value_size: Option<usize>,
    /// register and kv workloads: nest every value this many arrays deep
    /// (at most 60: the node refuses requests nested past 64 levels).
    #[arg(long)]
    pub value_depth: Option<usize>,
    /// Split the keyspace into S shards, each its own consensus group placed
    /// on --replicas nodes by the ring (default: unsharded, one group of
    /// every node).
    #[arg(long)]
    pub shards: Option<u32>,
    /// Replicas of every shard (with --shards; default 3, at most the node count).
    #[arg(long)]
    pub replicas: Option<u32>,
    /// Virtual nodes per ring member (with --shards; default 128).
    #[arg(long)]
    pub vnodes: Option<u32>,
    /// Run the test this many times (each its own run in the store, each
    /// with a new seed unless --seed), stop at the first that is not valid,
    /// and exit with the worst result, as Jepsen's --test-count.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub test_count: u32,
    /// Keep the cluster up after the run, every fault healed, and print how
    /// to reach each node and how to stop them (as Jepsen's
    /// --leave-db-running). With --test-count, the last run's cluster.
    #[arg(long)]
    pub leave_db_running: bool,
    /// RUST_LOG of the nodes (their logs go to the run directory).
    #[arg(long, default_value = "info")]
    pub node_log_level: String,
    /// Run the nodes with a token made for this run (in the run's
    /// `.auth-token`, mode 0600) that every client, probe and admin request
    /// sends; a request without it is checked to be refused (the `auth`
    /// check). faultline's own node, local mode.
    #[arg(long)]
    pub auth: bool,
    /// Run the nodes with TLS only, under a CA made for this run (its key
    /// never written): a certificate per node (its id and addresses) and per
    /// role, in the run's `.tls/` (keys mode 0600; copied 0600 to each host
    /// in remote mode). Workers connect with the client role's certificate,
    /// probes and admin requests with the admin role's. faultline's own node.
    #[arg(long)]
    pub tls: bool,
    /// Remote mode (one node per SSH host): --nodes, --nodes-file, --lab and the --ssh-* flags.
    #[command(flatten)]
    pub remote: crate::remote::RemoteArgs,
}

/// `--nemesis`: the fault kinds, `all` and `none`.
fn nemesis_names() -> clap::builder::PossibleValuesParser {
    let kinds = FaultKind::ALL.map(FaultKind::as_str);
    parse::names(kinds.into_iter().chain(["all", "none"]))
}

/// The most shards a test may ask for.
pub const MAX_SHARDS: u32 = 1024;

/// Validates the sharding flags for a cluster of `node_count` nodes
/// (`nodes_flag` names where that count came from); None when unsharded.
pub fn sharding(
    args: &Args,
    node_count: u32,
    nodes_flag: &str,
    membership: bool,
) -> anyhow::Result<Option<Sharding>> {
    let Some(shards) = args.shards else {
        for (given, flag) in [
            (args.replicas.is_some(), "--replicas"),
            (args.vnodes.is_some(), "--vnodes"),
        ] {
            if given {
                return Err(bad_input(format!(
                    "{flag} places shards: it needs --shards"
                )));
            }
        }
        return Ok(None);
    };
    if shards == 0 || shards > MAX_SHARDS {
        return Err(bad_input(format!(
            "--shards {shards}: use 1 to {MAX_SHARDS} shards"
        )));
    }
    let replicas = args.replicas.unwrap_or(3);
    if replicas == 0 {
        return Err(bad_input(
            "--replicas 0: every shard needs at least 1 replica",
        ));
    }
    if replicas > node_count {
        return Err(bad_input(format!(
            "--replicas {replicas}: more replicas than nodes ({nodes_flag} {node_count}); use at most {node_count}"
        )));
    }
    if membership && replicas >= node_count {
        return Err(bad_input(format!(
            "--nemesis membership: adds and removes ring members between --replicas {replicas} and {nodes_flag} {node_count}: it needs more nodes than replicas"
        )));
    }
    let vnodes = args.vnodes.unwrap_or(faultline_nodes::ring::DEFAULT_VNODES);
    if vnodes == 0 || vnodes > 4096 {
        return Err(bad_input(format!(
            "--vnodes {vnodes}: use 1 to 4096 virtual nodes per member"
        )));
    }
    let members = crate::nemesis::ring_plan::RingPlan::initial_members(node_count, membership);
    Sharding::new(shards, replicas, vnodes, node_count, members)
        .map(Some)
        .map_err(|e| bad_input(format!("--shards {shards} --replicas {replicas}: {e}")))
}

/// Resolves and validates the options into a plan.
pub fn plan(args: &Args) -> anyhow::Result<TestPlan> {
    plan_for(args, args.node_count, "--node-count")
}

/// [`plan`] for a cluster of `node_count` nodes (remote mode: the hosts).
pub fn plan_for(args: &Args, node_count: u32, nodes_flag: &str) -> anyhow::Result<TestPlan> {
    let adapter = adapter_file(args)?;
    let system = match &adapter {
        Some(_) => SystemKind::Adapter,
        None => SystemKind::parse(&args.system).map_err(|e| bad_input(format!("--system {e}")))?,
    };
    let workload: WorkloadKind = args.workload.parse().map_err(|_| {
        bad_input(format!(
            "--workload {:?}: unknown workload; use one of {}",
            args.workload,
            WorkloadKind::ALL.map(WorkloadKind::name).join(", ")
        ))
    })?;
    if args.node_count == 0 || args.node_count > 200 {
        return Err(bad_input(format!(
            "--node-count {}: use 1 to 200 nodes",
            args.node_count
        )));
    }
    if let Some(max) = adapter.as_ref().and_then(|f| f.max_nodes) {
        if node_count > max {
            return Err(bad_input(format!(
                "{nodes_flag} {node_count}: {} runs at most {max} node{} (its max_nodes); use {nodes_flag} {max}",
                args.system,
                if max == 1 { "" } else { "s" }
            )));
        }
    }
    let isolation = match &adapter {
        Some(file) => file.isolation_level(args.isolation).map_err(bad_input)?,
        None => match args.isolation {
            Some(level) => {
                return Err(bad_input(format!(
                    "--isolation {level}: --system {system} offers no isolation levels to choose \
                     from; --isolation is for a system that does (an adapter file's [isolation], \
                     docs/adapters.md)"
                )))
            }
            None => None,
        },
    };
    if !args.rate.is_finite() || args.rate < 0.0 {
        return Err(bad_input(format!(
            "--rate {}: use a number of operations per second ≥ 0",
            args.rate
        )));
    }
    if args.kv_keys == 0 || lock_ttl_ms(args) == 0 {
        return Err(bad_input(
            "--kv-keys and --lock-ttl(-ms) must be at least 1",
        ));
    }
    if system == SystemKind::Etcd {
        for (given, flag) in [
            (args.bug.is_some(), "--bug"),
            (args.consensus.is_some(), "--consensus"),
            (args.shards.is_some(), "--shards"),
        ] {
            if given {
                return Err(bad_input(format!(
                    "{flag} configures faultline's own node; --system {system} runs as shipped"
                )));
            }
        }
    }
    if args.auth {
        auth_supported(system)?;
    }
    if args.tls {
        tls_supported(system)?;
    }
    if args.time_limit.is_zero() || args.op_timeout.is_zero() || args.nemesis_interval.is_zero() {
        return Err(bad_input(
            "--time-limit, --op-timeout and --nemesis-interval must be more than 0",
        ));
    }
    let mut kinds = crate::nemesis::parse_kinds(&args.nemesis.join(","), args.shards.is_some())
        .map_err(|e| bad_input(format!("--nemesis: {e}")))?;
    if kinds.contains(&FaultKind::Impostor) && !args.auth && !args.tls {
        return Err(bad_input(
            "--nemesis impostor needs --auth or --tls: without credentials the node admits anyone \
             by design, so there is no impostor to refuse",
        ));
    }
    if let Some(file) = &adapter {
        kinds = adapter_kinds(file, args, workload, kinds)?;
    }
    let membership = kinds.contains(&FaultKind::Membership);
    let sharding = sharding(args, node_count, nodes_flag, membership)?;
    let bug = match &args.bug {
        Some(b) => Some(
            b.parse::<faultline_nodes::bug::Bug>()
                .map_err(|e| bad_input(format!("--bug: {e}")))?,
        ),
        None => None,
    };
    let consensus = match &args.consensus {
        Some(c) => Some(
            consensus_kind(c)
                .ok_or_else(|| bad_input(format!("--consensus {c:?}: use raft or paxos")))?,
        ),
        None => None,
    };
    let name = match &args.name {
        Some(n) => n.clone(),
        None => {
            let nemesis: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            let system_prefix = match system {
                SystemKind::Faultline => String::new(),
                other => format!("{other}-"),
            };
            let mut n = format!(
                "{}{}-{}",
                match &adapter {
                    Some(f) => format!("{}-", f.name),
                    None => system_prefix,
                },
                workload.name(),
                if nemesis.is_empty() {
                    "none".to_string()
                } else {
                    nemesis.join("-")
                }
            );
            if let Some(b) = bug {
                n.push_str("-bug-");
                n.push_str(&b.to_string());
            }
            if let Some(s) = &sharding {
                n.push_str(&format!("-s{}r{}", s.shards, s.replicas));
            }
            if let Some(level) = isolation {
                n.push('-');
                n.push_str(level.name());
            }
            n
        }
    };
    let value_shape = value_shape(args, workload)?;
    let options = workload_options(args, false);
    Ok(TestPlan {
        name,
        system,
        workload,
        checkers: workload_for(workload, &options)
            .checkers()
            .iter()
            .map(|c| c.to_string())
            .collect(),
        node_count,
        concurrency: args.concurrency.resolve(node_count).max(1),
        rate_per_s: args.rate,
        time_limit_s: args.time_limit.as_secs_f64(),
        op_timeout_ms: args.op_timeout.as_millis() as u64,
        nemesis: kinds,
        nemesis_interval_s: args.nemesis_interval.as_secs_f64(),
        seed: args.seed.unwrap_or_else(rand::random),
        bug,
        consensus,
        recovery_timeout_s: args.recovery_timeout.as_secs_f64(),
        final_timeout_s: args.final_timeout.as_secs_f64(),
        lock_ttl_ms: lock_ttl_ms(args),
        kv_keys: args.kv_keys,
        sharding,
        value_shape,
        auth: args.auth,
        tls: args.tls,
        isolation,
    })
}

/// `--auth` runs faultline's own node (local or remote): refused (254)
/// for other systems, naming why.
fn auth_supported(system: SystemKind) -> anyhow::Result<()> {
    if system != SystemKind::Faultline {
        return Err(bad_input(format!(
            "--auth: {system} cannot take the run's token (only faultline's own node reads --auth-token-file); run without --auth"
        )));
    }
    Ok(())
}

/// `--tls` runs faultline's own node (local or remote): refused (254) for
/// other systems, naming why.
fn tls_supported(system: SystemKind) -> anyhow::Result<()> {
    if system != SystemKind::Faultline {
        return Err(bad_input(format!(
            "--tls: {system} cannot be run with the run's certificates (only faultline's own node takes --tls-cert/--tls-key/--tls-ca here); run without --tls"
        )));
    }
    Ok(())
}

/// The adapter file `--system` names, read and checked, with the flags
/// that only an adapter takes checked against it; None for a built-in
/// system. Every refusal is bad input naming the file (and line).
fn adapter_file(args: &Args) -> anyhow::Result<Option<AdapterFile>> {
    if !SystemKind::is_adapter_file(&args.system) {
        if let Some(p) = args.params.first() {
            return Err(bad_input(format!(
                "--param {p}: params belong to an adapter file; --system {} has none",
                args.system
            )));
        }
        return Ok(None);
    }
    let file = AdapterFile::read(std::path::Path::new(&args.system))
        .map_err(|e| bad_input(format!("--system {e}")))?;
    let remote = !args.remote.nodes.is_empty()
        || args.remote.lab.is_some()
        || args.remote.nodes_file.is_some();
    if remote {
        if let Some(why) = remote_refusal(&file) {
            return Err(bad_input(format!(
                "--system {} cannot run in remote mode: {why}",
                args.system
            )));
        }
        crate::remote::files::check_size(&file.dir).map_err(|why| {
            bad_input(format!(
                "--system {} cannot run in remote mode: {why}",
                args.system
            ))
        })?;
    }
    adapter_params(&file, args)?;
    // Remote mode checks them on every host, where the commands run
    // (remote/files.rs), not here.
    let missing = match remote {
        true => Vec::new(),
        false => missing_programs(&file),
    };
    if !missing.is_empty() {
        return Err(bad_input(format!(
            "--system {}: requires {}, not found on PATH{}",
            args.system,
            missing.join(", "),
            match &file.install {
                Some(i) => format!(" (its install command: {})", i.source()),
                None => String::new(),
            }
        )));
    }
    Ok(Some(file))
}

/// `--param NAME=VALUE` flags applied to the file's defaults.
fn adapter_params(file: &AdapterFile, args: &Args) -> anyhow::Result<BTreeMap<String, String>> {
    let pairs = args
        .params
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(bad_input(format!("--param {p:?}: use NAME=VALUE"))),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    file.params_with(&pairs).map_err(bad_input)
}

/// The fault kinds of an adapter run: `--nemesis all` means every kind the
/// file lists; a kind named that it does not list is refused, as is a
/// workload it does not list.
fn adapter_kinds(
    file: &AdapterFile,
    args: &Args,
    workload: WorkloadKind,
    kinds: Vec<FaultKind>,
) -> anyhow::Result<Vec<FaultKind>> {
    if !file.workloads.iter().any(|w| w == workload.name()) {
        return Err(bad_input(format!(
            "--workload {workload}: {} lists workloads = [{}]",
            args.system,
            file.workloads.join(", ")
        )));
    }
    if args.nemesis.iter().any(|w| w == "all") {
        return Ok(kinds
            .into_iter()
            .filter(|k| file.faults.contains(k))
            .collect());
    }
    let refused: Vec<&str> = kinds
        .iter()
        .filter(|k| !file.faults.contains(k))
        .map(|k| k.as_str())
        .collect();
    if !refused.is_empty() {
        return Err(bad_input(format!(
            "--nemesis {}: {} cannot take {} (its faults = [{}])",
            args.nemesis.join(","),
            args.system,
            refused.join(", "),
            file.faults
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(kinds)
}

/// The deepest `--value-depth`: the value sits in a request object and a
/// padded object, and faultline's node refuses requests nested past 64
/// levels; a little margin for a cas's and a system's own wrapping.
pub const MAX_VALUE_DEPTH: usize = 60;

/// The largest `--value-size`: faultline's node reads request lines of at
/// most 1 MiB, and the request around the value needs room.
pub const MAX_VALUE_SIZE_BYTES: usize = (1 << 20) - (16 << 10);

/// `--value-size` and `--value-depth`, validated; None when neither is given.
fn value_shape(args: &Args, workload: WorkloadKind) -> anyhow::Result<Option<ValueShape>> {
    if args.value_size.is_none() && args.value_depth.is_none() {
        return Ok(None);
    }
    if !matches!(workload, WorkloadKind::Register | WorkloadKind::Kv) {
        return Err(bad_input(format!(
            "--value-size and --value-depth shape register and kv values; --workload {workload} has none to shape"
        )));
    }
    let size_bytes = args.value_size.unwrap_or(0);
    if size_bytes > MAX_VALUE_SIZE_BYTES {
        return Err(bad_input(format!(
            "--value-size {size_bytes} bytes: at most {MAX_VALUE_SIZE_BYTES} (a request line is at most 1 MiB)"
        )));
    }
    let depth = args.value_depth.unwrap_or(0);
    if depth > MAX_VALUE_DEPTH {
        return Err(bad_input(format!(
            "--value-depth {depth}: at most {MAX_VALUE_DEPTH} (requests nest at most 64 levels)"
        )));
    }
    Ok(Some(ValueShape { size_bytes, depth }))
}

/// The lease of lock acquires: --lock-ttl, else --lock-ttl-ms.
fn lock_ttl_ms(args: &Args) -> u64 {
    args.lock_ttl
        .map_or(args.lock_ttl_ms, |d| d.as_millis() as u64)
}

/// The workloads' tunables from the flags; `keepalive`: the system keeps
/// lock holders' leases alive.
fn workload_options(args: &Args, keepalive: bool) -> WorkloadOptions {
    let ttl_ms = lock_ttl_ms(args);
    WorkloadOptions {
        kv_keys: args.kv_keys,
        lock_ttl_ms: ttl_ms,
        lock_keepalive: keepalive,
        lock_hold_max_ms: args
            .lock_hold
            .map_or(ttl_ms.saturating_mul(2), |d| d.as_millis() as u64),
        ..WorkloadOptions::default()
    }
}

/// The system under test the plan names, configured from the flags.
/// `binary` is the faultline executable to run (locally) or deploy
/// (remote mode).
pub fn system_for(
    plan: &TestPlan,
    args: &Args,
    binary: std::path::PathBuf,
    run_dir: &RunDir,
    etcd: Option<crate::system::etcd::EtcdSystem>,
    remote_dir: Option<String>,
) -> anyhow::Result<std::sync::Arc<dyn System>> {
    let system: std::sync::Arc<dyn System> = match plan.system {
        SystemKind::Etcd => std::sync::Arc::new(
            etcd.expect("an etcd plan finds etcd before the run directory is made"),
        ),
        SystemKind::Faultline => std::sync::Arc::new(FaultlineSystem {
            binary: args.system_bin.clone().unwrap_or(binary),
            node_args: plan.node_args(),
            node_log_level: args.node_log_level.clone(),
            shards: plan.sharding.as_ref().map(|s| s.shards),
            auth: match plan.auth {
                true => Some(AuthToken::create(&run_dir.auth_token_file())?),
                false => None,
            },
            tls: match plan.tls {
                true => Some(std::sync::Arc::new(RunTls::create(&run_dir.tls_dir())?)),
                false => None,
            },
        }),
        SystemKind::Adapter => {
            let file = adapter_file(args)?.expect("an adapter plan comes from an adapter file");
            let params = adapter_params(&file, args)?;
            std::sync::Arc::new(AdapterSystem::new(
                file,
                AdapterRun {
                    params,
                    workload: plan.workload,
                    run_dir: run_dir.clone(),
                    faultline: binary,
                    op_timeout: Duration::from_millis(plan.op_timeout_ms),
                    concurrency: plan.concurrency,
                    isolation: plan.isolation,
                    remote_dir,
                },
            )?)
        }
    };
    if let Support::Unsupported(why) = system.supports_workload(plan.workload) {
        return Err(bad_input(format!(
            "--workload {}: {} cannot run it: {why}",
            plan.workload, plan.system
        )));
    }
    Ok(system)
}

/// Runs the test `--test-count` times (stopping at the first run that is
/// not valid) and exits with the worst result; with `--leave-db-running`,
/// the last run's cluster stays up.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    let count = args.test_count;
    if count == 0 {
        return Err(bad_input("--test-count 0: run the test at least once"));
    }
    // What runs that died (SIGKILL, out of memory) left behind goes first.
    crate::cmd::heal::heal_before_run(&args.store);
    let (worst, left_running) = crate::run::repeat::repeat(
        count,
        |previous: Arc<dyn Cluster>| {
            previous
                .teardown()
                .context("stopping the previous run's cluster")
        },
        |i| {
            if count > 1 {
                crate::errln!("faultline: test {i} of {count}");
            }
            let (exit, cluster) = run_once(&args)?;
            if exit != Exit::Valid && i < count {
                crate::errln!(
                    "faultline: test {i} of {count} is {exit:?}: stopping there (--test-count)"
                );
            }
            Ok((exit, cluster))
        },
    )?;
    if let Some(cluster) = left_running {
        let how = cluster
            .leave_running()
            .context("leaving the cluster running (--leave-db-running)")?;
        tracing::info!("left running (--leave-db-running):\n{how}");
        crate::errln!(
            "faultline: the cluster is left running (--leave-db-running), every fault healed:\n{}",
            how.trim_end()
        );
    }
    Ok(worst)
}

/// One run of the test: its verdict, and its cluster, healed and still up,
/// when `--leave-db-running` and the run completed. The steps: plan, find
/// what must exist before anything is made, make the run's folder, ledger
/// and system, start the cluster, record test.json, run, then stop (or
/// keep) the cluster and check the history.
fn run_once(args: &Args) -> anyhow::Result<(Exit, Option<Arc<dyn Cluster>>)> {
    let remote = args.remote.resolve()?;
    let plan = match &remote {
        // Remote mode runs one node per host.
        Some(r) => plan_for(args, r.hosts.len() as u32, "--nodes (hosts)")?,
        None => plan(args)?,
    };
    let run_id = format!("{:08x}", rand::random::<u32>());
    // etcd is looked for before anything is created: a missing one is bad
    // input (254) that leaves nothing behind.
    let etcd = match plan.system {
        SystemKind::Etcd => Some(crate::system::etcd::EtcdSystem::find(
            args.system_bin.as_deref(),
            format!("faultline-{run_id}"),
            remote.is_some(),
        )?),
        _ => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Catch signals before anything exists that must be cleaned up.
    let signals = Signals::install(&rt)?;

    let started_at = chrono::Utc::now();
    let run_dir = RunDir::create(&args.store, &plan.name, started_at)
        .with_context(|| format!("creating the run directory in {}", args.store.display()))?;
    // The run's own log (faultline.log), from what was logged so far on.
    crate::runlog::start(&run_dir.harness_log())
        .with_context(|| format!("creating {}", run_dir.harness_log().display()))?;
    let ledger = crate::ledger::Ledger::open_as(&args.store, &run_id, "test", Some(run_dir.path()))
        .context("opening the run's ledger")?;
    let system = system_for(
        &plan,
        args,
        match &remote {
            Some(r) => r.node_bin.clone(),
            None => std::env::current_exe().context("finding the faultline executable")?,
        },
        &run_dir,
        etcd,
        remote.as_ref().map(|r| r.remote_dir.clone()),
    )?;
    let workload = workload_for(
        plan.workload,
        &workload_options(args, system.lock_keepalive()),
    );
    let (cluster, bind_ip) = make_cluster(ClusterSite {
        args,
        plan: &plan,
        system: &system,
        run_dir: &run_dir,
        run_id: &run_id,
        remote: remote.as_ref(),
        ledger: &ledger,
    })?;
    let unsupported = unsupported_faults(&plan, cluster.as_ref());
    write_test_json(
        &run_dir,
        &plan,
        &run_id,
        started_at,
        system.as_ref(),
        cluster.as_ref(),
        &unsupported,
    )?;
    announce(&plan, &run_dir, cluster.mechanisms().partition);

    let writer = HistoryWriter::create(&run_dir.history()).context("creating history.jsonl")?;
    let recorder = Arc::new(Recorder::new(writer));
    let outcome = rt.block_on(async {
        tokio::select! {
            r = crate::run::execute(crate::run::Run {
                plan: &plan,
                workload: workload.as_ref(),
                system: Arc::clone(&system),
                cluster: Arc::clone(&cluster),
                bind_ip,
                recorder: Arc::clone(&recorder),
                unsupported: &unsupported,
                show_progress: !args.json,
            }) => Ok(r),
            s = signals.first() => Err(s),
        }
    });
    // Cancel every task (workers, nemesis) before tearing down, so nothing
    // restarts a node afterwards.
    rt.shutdown_timeout(Duration::from_secs(10));
    let finished = Finished {
        outcome,
        cluster,
        ledger,
        recorder,
    };
    finish(args, &plan, system.as_ref(), &run_dir, finished)
}

/// SIGINT and SIGTERM, caught for the whole run.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install(rt: &tokio::runtime::Runtime) -> anyhow::Result<Signals> {
        let _guard = rt.enter();
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    /// Waits for SIGINT or SIGTERM; returns which.
    async fn first(mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// What a cluster is made from.
struct ClusterSite<'a> {
    args: &'a Args,
    plan: &'a TestPlan,
    system: &'a Arc<dyn System>,
    run_dir: &'a RunDir,
    run_id: &'a str,
    remote: Option<&'a crate::remote::RemotePlan>,
    ledger: &'a crate::ledger::Ledger,
}

/// The run's cluster: SSH hosts in remote mode, else local processes; and
/// the address local clients bind (so partitions can tell them apart).
fn make_cluster(
    site: ClusterSite<'_>,
) -> anyhow::Result<(Arc<dyn Cluster>, Option<std::net::IpAddr>)> {
    let ClusterSite {
        args,
        plan,
        system,
        run_dir,
        run_id,
        remote,
        ledger,
    } = site;
    let names: Vec<String> = (1..=plan.node_count).map(|i| format!("n{i}")).collect();
    // The faults this system can take at all: the remote hosts need tools
    // (and local nodes libfaketime) only for those.
    let wanted: Vec<FaultKind> = plan
        .nemesis
        .iter()
        .copied()
        .filter(|&k| system.fault_support(k) == Support::Supported)
        .collect();
    if let Some(r) = remote {
        use crate::remote::cluster::{needs_for, RemoteCluster, RemoteConfig};
        let c = RemoteCluster::new(RemoteConfig {
            ledger: ledger.clone(),
            plan: r.clone(),
            system: Arc::clone(system),
            logs: names.iter().map(|n| run_dir.node_log(n)).collect(),
            needs: needs_for(&wanted),
        })
        .context("preparing the SSH hosts")?;
        return Ok((Arc::new(c), None));
    }
    let c = LocalCluster::new(LocalConfig {
        system: Arc::clone(system),
        node_count: plan.node_count,
        data_dirs: names.iter().map(|n| run_dir.node_data_dir(n)).collect(),
        logs: names.iter().map(|n| run_dir.node_log(n)).collect(),
        run_id: run_id.to_string(),
        allow_iptables: !args.no_iptables,
        want_faketime: wanted.contains(&FaultKind::Clock),
        ledger: ledger.clone(),
        node_lifetime: if args.leave_db_running {
            crate::ledger::Lifetime::MayOutliveHarness
        } else {
            crate::ledger::Lifetime::DiesWithHarness
        },
    })
    .context("planning the local cluster")?;
    let ip = c.client_bind_ip();
    Ok((Arc::new(c), ip))
}

/// Faults asked for that this system or machine cannot make: said here (in
/// test.json and the history too), and left out of the schedule.
fn unsupported_faults(plan: &TestPlan, cluster: &dyn Cluster) -> Vec<(FaultKind, String)> {
    let mechanisms = cluster.mechanisms();
    let unsupported: Vec<(FaultKind, String)> = plan
        .nemesis
        .iter()
        .filter(|&&k| mechanisms.get(k) == Mechanism::Unsupported)
        .map(|&k| {
            let why = cluster
                .unsupported(k)
                .unwrap_or_else(|| "no mechanism for it here".to_string());
            (k, why)
        })
        .collect();
    for (kind, why) in &unsupported {
        crate::errln!(
            "faultline: {} faults are unsupported for {} here and will not happen: {why}",
            kind.as_str(),
            plan.system
        );
    }
    unsupported
}

/// test.json: the plan, the system and its version, the fault mechanisms.
fn write_test_json(
    run_dir: &RunDir,
    plan: &TestPlan,
    run_id: &str,
    started_at: chrono::DateTime<chrono::Utc>,
    system: &dyn System,
    cluster: &dyn Cluster,
    unsupported: &[(FaultKind, String)],
) -> anyhow::Result<()> {
    let test_json = serde_json::json!({
        "plan": plan,
        "run_id": run_id,
        "started_at": started_at.to_rfc3339(),
        "faultline_version": env!("CARGO_PKG_VERSION"),
        "system": {
            "kind": plan.system,
            "version": cluster.system_version().unwrap_or_else(|| system.version()),
            "settings": system.describe(),
        },
        "unsupported_faults": unsupported
            .iter()
            .map(|(k, why)| (k.as_str().to_string(), serde_json::json!(why)))
            .collect::<serde_json::Map<_, _>>(),
        "command_line": std::env::args().collect::<Vec<_>>(),
        "mechanisms": cluster.mechanisms(),
        "notes": {
            "latency": "the nodes' own delay filter: tc netem on lo would delay the clients too",
            "clock": "libfaketime shifts the wall clock only (FAKETIME_DONT_FAKE_MONOTONIC=1); without libfaketime, the node's own clock offset",
        },
        "cluster": cluster.describe(),
    });
    run_dir
        .write_test_json(&test_json)
        .context("writing test.json")
}

/// The run's one-line summary on stderr, and the same in the run's log.
fn announce(plan: &TestPlan, run_dir: &RunDir, partition: Mechanism) {
    let shards = match &plan.sharding {
        Some(s) => format!(
            ", {} shards × {} replicas (members {})",
            s.shards,
            s.replicas,
            s.members
                .iter()
                .map(|m| format!("n{m}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        None => String::new(),
    };
    let nemesis = plan
        .nemesis
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(",");
    crate::errln!(
        "faultline: {} — {} nodes{shards}, {} workers at {}/s for {:.0}s, nemesis [{}] (partition: {}), seed {}\nfaultline: store {}",
        plan.workload,
        plan.node_count,
        plan.concurrency,
        plan.rate_per_s,
        plan.time_limit_s,
        nemesis,
        partition.as_str(),
        plan.seed,
        run_dir.path().display()
    );
    tracing::info!(
        "test {}: {} on {} ({} nodes), nemesis [{}], seed {}, in {}",
        plan.name,
        plan.workload,
        plan.system,
        plan.node_count,
        nemesis,
        plan.seed,
        run_dir.path().display()
    );
}

/// A run whose workers and nemesis have stopped.
struct Finished {
    /// The run loop's result, or the signal that ended it.
    outcome: Result<anyhow::Result<()>, &'static str>,
    cluster: Arc<dyn Cluster>,
    ledger: crate::ledger::Ledger,
    recorder: Arc<Recorder>,
}

/// Stops the cluster (or, with --leave-db-running after a run that
/// completed, heals it and keeps it), closes the history, checks it and
/// prints the results.
fn finish(
    args: &Args,
    plan: &TestPlan,
    system: &dyn System,
    run_dir: &RunDir,
    run: Finished,
) -> anyhow::Result<(Exit, Option<Arc<dyn Cluster>>)> {
    // --leave-db-running: a run that completed keeps its nodes, healed.
    let keep = args.leave_db_running && matches!(run.outcome, Ok(Ok(())));
    let teardown = if keep {
        run.cluster.heal_all().context("healing every fault")
    } else {
        run.cluster.teardown()
    };
    if !keep {
        // A kept cluster's ledger is closed when it is left running.
        if let Err(e) = run.ledger.close() {
            crate::errln!("faultline: warning: {e:#}");
        }
    }
    if matches!(run.outcome, Ok(Ok(()))) {
        // The nodes have stopped (or, kept, wrote what they have so far):
        // their audit logs into the history before it closes.
        let appended =
            crate::run::audit::append_audit_events(&run.recorder, run_dir, run.cluster.nodes());
        tracing::info!("{appended} audit events appended to the history");
    }
    let history = match Arc::try_unwrap(run.recorder) {
        Ok(r) => r.finish().context("closing the history"),
        Err(_) => Ok(0),
    };
    let run_path = run_dir.path().display().to_string();
    match run.outcome {
        Err(signal) => {
            teardown.context("healing and stopping the cluster after an interrupt")?;
            return Err(anyhow::anyhow!(
                "interrupted by {signal}: every fault healed and every node stopped; \
                 the partial history is in {run_path} (`faultline analyze {run_path}` checks it)"
            ));
        }
        Ok(Err(e)) => {
            if let Err(t) = teardown {
                tracing::error!("tearing down after an error: {t:#}");
            }
            return Err(e.context(format!("test failed; its partial run is in {run_path}")));
        }
        Ok(Ok(())) => {}
    }
    let checked = teardown
        .context("stopping the cluster")
        .and_then(|()| history)
        .and_then(|_| {
            if let Some(note) = system.closing_note() {
                crate::errln!("faultline: {note}");
            }
            crate::analysis::analyze_run(run_dir, plan)
        });
    let results = match checked {
        Ok(results) => results,
        Err(e) => {
            if keep {
                if let Err(t) = run.cluster.teardown() {
                    tracing::error!("tearing down after an error: {t:#}");
                }
            }
            return Err(e);
        }
    };
    tracing::info!("verdict: {:?}", results.verdict);
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&results).expect("results serialize")
        );
    } else {
        crate::out!("{}", faultline_results::table::render(&results));
    }
    let exit = match results.verdict {
        VerdictKind::Valid => Exit::Valid,
        VerdictKind::Invalid => Exit::Invalid,
        VerdictKind::Unknown => Exit::Unknown,
    };
    Ok((exit, keep.then_some(run.cluster)))
}

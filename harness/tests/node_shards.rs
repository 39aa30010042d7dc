//! End to end, sharded: four real `faultline node` processes with
//! `--shards 4 --replicas 3 --members 1,2,3`. Writes go through any node
//! (following `moved` and `not-leader`); node 4, outside the ring, answers
//! `moved`; then node 4 is added to one group by `join-group` +
//! `change-membership`, receives the group's data by snapshot, leads it and
//! serves every key of it; then node 1 is removed from that group and
//! retires (stops hosting it, deletes its storage, stays out after a
//! restart). No acknowledged write is lost at any point.

mod node_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use faultline_nodes::client::{Client, ClientConfig, Outcome};
use faultline_nodes::protocol::{ErrorCode, Op, Reply};
use faultline_nodes::ring::ShardId;
use node_common::*;
use serde_json::{json, Value};

const SHARDS: u32 = 4;
/// Liveness bound for every wait below (a hang fails the test; no
/// assertion is about speed).
const LIMIT: Duration = Duration::from_secs(60);

fn shard_of(key: &str) -> u64 {
    u64::from(ShardId::of_key(key.as_bytes(), SHARDS).0)
}

fn sharded_client(nodes: &[NodeProc]) -> Client {
    let mut cfg = ClientConfig::new(nodes.iter().map(|n| n.addr.to_string()).collect());
    cfg.shards = Some(SHARDS);
    cfg.timeout = Duration::from_secs(10);
    cfg.max_attempts = 40;
    Client::new(cfg)
}

/// One node's `groups` reply, or None if it cannot be reached.
async fn groups(client: &Client, node: &NodeProc) -> Option<Reply> {
    match client.call_node(&node.addr.to_string(), Op::Groups).await {
        Ok(r) if r.ok => Some(r),
        _ => None,
    }
}

/// `group`'s entry in a `groups` reply.
fn entry(reply: &Reply, group: u64) -> Option<Value> {
    reply.fields["groups"]
        .as_array()
        .expect("groups is a list")
        .iter()
        .find(|g| g["group"] == group)
        .cloned()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("a list of node ids")
        .iter()
        .map(|n| n.as_u64().expect("a node id"))
        .collect()
}

/// The node that leads `group`, by its own `groups` report.
async fn leader_of(client: &Client, nodes: &[NodeProc], group: u64) -> usize {
    let start = Instant::now();
    loop {
        for (i, n) in nodes.iter().enumerate().filter(|(_, n)| n.child.is_some()) {
            if let Some(r) = groups(client, n).await {
                if entry(&r, group).is_some_and(|e| e["role"] == "leader") {
                    return i;
                }
            }
        }
        assert!(start.elapsed() < LIMIT, "group {group} has no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Send `op` to one node, retrying while the reply says the change cannot
/// start yet; panics on any other refusal.
async fn admin_ok(client: &Client, node: &NodeProc, op: Op) -> Reply {
    let r = client
        .call_node(&node.addr.to_string(), op.clone())
        .await
        .unwrap_or_else(|e| panic!("{op:?} to node {}: {e}", node.id));
    assert!(r.ok, "{op:?} to node {}: {r:?}", node.id);
    r
}

/// Move `group` to `voters` at its leader, and wait until the leader
/// reports the change done. Returns the leader's index in `nodes`.
async fn change_membership(
    client: &Client,
    nodes: &[NodeProc],
    group: u64,
    voters: &[u64],
) -> usize {
    let start = Instant::now();
    let leader = loop {
        let l = leader_of(client, nodes, group).await;
        let r = client
            .call_node(
                &nodes[l].addr.to_string(),
                Op::ChangeMembership {
                    group,
                    voters: voters.to_vec(),
                },
            )
            .await;
        match r {
            Ok(r) if r.ok => break l,
            // Leadership moved, or a previous change is finishing: retry.
            Ok(r) if matches!(r.error, Some(ErrorCode::NotLeader | ErrorCode::InProgress)) => {}
            other => panic!("change-membership of group {group} to {voters:?}: {other:?}"),
        }
        assert!(start.elapsed() < LIMIT, "change-membership never accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    loop {
        let l = leader_of(client, nodes, group).await;
        if let Some(e) = groups(client, &nodes[l])
            .await
            .and_then(|r| entry(&r, group))
        {
            if ids(&e["voters"]) == voters
                && ids(&e["outgoing"]).is_empty()
                && e["pending"] == false
            {
                return l;
            }
        }
        assert!(
            start.elapsed() < LIMIT,
            "group {group} never reached {voters:?} (leader was node {})",
            nodes[leader].id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn must(client: &Client, op: Op) -> Reply {
    match client.call(op.clone()).await {
        Outcome::Ok(r) => r,
        other => panic!("{op:?} did not succeed: {other:?}"),
    }
}

#[test]
fn raft_shards_move_to_a_new_node_and_a_removed_node_retires() {
    shard_scenario("raft");
}

fn shard_scenario(consensus: &str) {
    let root = tempfile::tempdir().expect("tempdir");
    let args = [
        "--consensus",
        consensus,
        "--shards",
        "4",
        "--replicas",
        "3",
        "--members",
        "1,2,3",
    ];
    let mut nodes = cluster(4, root.path(), &args);
    for n in nodes.iter_mut() {
        n.start();
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = sharded_client(&nodes);
        for g in 0..u64::from(SHARDS) {
            leader_of(&client, &nodes, g).await;
        }

        // Node 4 is outside the ring: it hosts nothing and redirects.
        let r4 = groups(&client, &nodes[3]).await.expect("node 4 answers");
        assert_eq!(r4.fields["groups"], json!([]));
        assert_eq!(r4.fields["members"], json!([1, 2, 3]));
        let r = client
            .call_node(&nodes[3].addr.to_string(), Op::Read { key: "k1".into() })
            .await
            .expect("reply");
        assert_eq!(r.error, Some(ErrorCode::Moved), "{r:?}");
        assert!(r.is_definite_failure());
        assert_eq!(r.fields["shard"], json!(shard_of("k1")));
        let to = r.leader().expect("a replica to try");
        assert!(
            nodes[..3].iter().any(|n| n.addr.to_string() == to),
            "moved points into the ring: {to}"
        );

        // Writes through every node, redirects followed.
        let mut acked: BTreeMap<String, Value> = BTreeMap::new();
        for i in 0..40 {
            let key = format!("k{i}");
            let one = Client::new({
                let mut c = sharded_client(&nodes).config().clone();
                c.nodes = vec![nodes[i % 4].addr.to_string()];
                c.nodes.extend(nodes.iter().map(|n| n.addr.to_string()));
                c
            });
            must(
                &one,
                Op::Write {
                    key: key.clone(),
                    value: json!(i),
                },
            )
            .await;
            acked.insert(key, json!(i));
        }
        assert!(
            (0..u64::from(SHARDS)).all(|s| acked.keys().any(|k| shard_of(k) == s)),
            "every shard holds some keys"
        );
        // Locks are sharded by name too.
        let token = must(
            &client,
            Op::Acquire {
                lock: "L".into(),
                owner: "alice".into(),
                ttl_ms: 600_000,
            },
        )
        .await
        .token()
        .expect("token");
        must(
            &client,
            Op::FencedWrite {
                key: "fenced".into(),
                value: json!("a"),
                token,
            },
        )
        .await;
        acked.insert("fenced".into(), json!("a"));

        // Add node 4 to the group of k0's shard.
        let g = shard_of("k0");
        // The controller passes the leader's term as the new core's floor.
        let l = leader_of(&client, &nodes, g).await;
        let term = groups(&client, &nodes[l])
            .await
            .and_then(|r| entry(&r, g))
            .and_then(|e| e["term"].as_u64());
        let join = Op::JoinGroup { group: g, term };
        admin_ok(&client, &nodes[3], join.clone()).await;
        admin_ok(&client, &nodes[3], join).await; // idempotent
        change_membership(&client, &nodes, g, &[1, 2, 3, 4]).await;
        for n in nodes.iter() {
            admin_ok(
                &client,
                n,
                Op::SetMembers {
                    members: vec![1, 2, 3, 4],
                },
            )
            .await;
        }
        // Node 4 caught up (by snapshot: its log was empty) and agrees.
        let start = Instant::now();
        loop {
            let r4 = groups(&client, &nodes[3]).await.expect("node 4 answers");
            let e = entry(&r4, g).expect("node 4 hosts the group");
            if ids(&e["voters"]) == [1, 2, 3, 4] && e["joining"] == false {
                break;
            }
            assert!(
                start.elapsed() < LIMIT,
                "node 4 never learned the configuration: {e}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Node 4 leads the group and serves every one of its keys.
        let start = Instant::now();
        loop {
            let l = leader_of(&client, &nodes, g).await;
            if l == 3 {
                break;
            }
            let _ = client
                .call_node(
                    &nodes[l].addr.to_string(),
                    Op::TransferLeader {
                        to: 4,
                        group: Some(g),
                    },
                )
                .await;
            assert!(start.elapsed() < LIMIT, "node 4 never led group {g}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let n4 = nodes[3].addr.to_string();
        let mut in_g = 0;
        for (key, value) in acked.iter().filter(|(k, _)| shard_of(k) == g) {
            let r = client
                .call_node(&n4, Op::Read { key: key.clone() })
                .await
                .expect("reply");
            assert!(r.ok, "node 4 reads {key}: {r:?}");
            assert_eq!(r.value(), value, "key {key} at node 4");
            in_g += 1;
        }
        assert!(in_g > 0);
        for (key, value) in &acked {
            assert_eq!(
                must(&client, Op::Read { key: key.clone() }).await.value(),
                value,
                "key {key}"
            );
        }

        // Remove node 1 from the group. It retires on its own when it
        // applies the committed C_new without itself; if it never hears
        // that C_new committed (the leader stops replicating to it), the
        // controller's leave-group retires it: the test waits a little for
        // the first, then does what the controller does.
        change_membership(&client, &nodes, g, &[2, 3, 4]).await;
        let start = Instant::now();
        let mut on_its_own = false;
        while start.elapsed() < Duration::from_secs(3) {
            let r1 = groups(&client, &nodes[0]).await.expect("node 1 answers");
            if entry(&r1, g).is_none() {
                on_its_own = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("node 1 retired from group {g} on its own: {on_its_own}");
        admin_ok(&client, &nodes[0], Op::LeaveGroup { group: g }).await;
        let r1 = groups(&client, &nodes[0]).await.expect("node 1 answers");
        assert!(
            entry(&r1, g).is_none(),
            "node 1 no longer hosts group {g}: {r1:?}"
        );
        assert!(
            !nodes[0].data_dir.join(format!("group-{g}")).exists(),
            "the retired group's storage is deleted"
        );
        let file: Value = serde_json::from_slice(
            &std::fs::read(nodes[0].data_dir.join("groups.json")).expect("groups.json"),
        )
        .expect("groups.json parses");
        assert_eq!(file["left"], json!([g]));
        let key_in_g = acked
            .keys()
            .find(|k| shard_of(k) == g)
            .expect("a key")
            .clone();
        let r = client
            .call_node(&nodes[0].addr.to_string(), Op::Read { key: key_in_g })
            .await
            .expect("reply");
        assert_eq!(r.error, Some(ErrorCode::Moved), "{r:?}");
        // A restart does not resurrect it.
        nodes[0].kill();
        nodes[0].start();
        let r1 = groups(&client, &nodes[0]).await.expect("node 1 answers");
        assert!(
            entry(&r1, g).is_none(),
            "still retired after a restart: {r1:?}"
        );
        assert_eq!(r1.fields["members"], json!([1, 2, 3, 4]), "ring view kept");

        // Replace another group's leader by node 4 in one change (what the
        // membership nemesis does): the leader steps down once C_new
        // commits and retires; the group keeps every key.
        let h = (0..u64::from(SHARDS))
            .find(|&s| s != g)
            .expect("another shard");
        let old = leader_of(&client, &nodes, h).await;
        let old_id = nodes[old].id;
        let mut target: Vec<u64> = vec![1, 2, 3, 4]
            .into_iter()
            .filter(|&n| n != old_id)
            .collect();
        target.sort();
        admin_ok(
            &client,
            &nodes[3],
            Op::JoinGroup {
                group: h,
                term: None,
            },
        )
        .await;
        // Done may be reported by the old leader itself, before it hands
        // over; leave-group is refused until it no longer leads.
        change_membership(&client, &nodes, h, &target).await;
        let start = Instant::now();
        loop {
            let r = client
                .call_node(&nodes[old].addr.to_string(), Op::LeaveGroup { group: h })
                .await
                .expect("reply");
            if r.ok {
                break;
            }
            // Refused only while it still leads: a removed leader steps down.
            assert_eq!(r.error, Some(ErrorCode::BadRequest), "{r:?}");
            assert!(
                start.elapsed() < LIMIT,
                "node {old_id} kept leading group {h}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = groups(&client, &nodes[old]).await.expect("answers");
        assert!(
            entry(&r, h).is_none(),
            "node {old_id} left group {h}: {r:?}"
        );
        for (key, value) in acked.iter().filter(|(k, _)| shard_of(k) == h) {
            assert_eq!(
                must(&client, Op::Read { key: key.clone() }).await.value(),
                value,
                "key {key} after group {h} moved to {target:?}"
            );
        }

        // Node 4 restarts: it hosts the groups it joined again (from
        // groups.json and their storage), with their configurations.
        nodes[3].kill();
        nodes[3].start();
        // A write to each of its groups, so that a leader that only
        // replicates with new entries (Paxos) catches it up too.
        for shard in [g, h] {
            let key = (0..10_000)
                .map(|i| format!("after-restart-{i}"))
                .find(|k| shard_of(k) == shard)
                .expect("a key of the shard");
            must(
                &client,
                Op::Write {
                    key: key.clone(),
                    value: json!(shard),
                },
            )
            .await;
            acked.insert(key, json!(shard));
        }
        let start = Instant::now();
        loop {
            let r4 = groups(&client, &nodes[3]).await.expect("node 4 answers");
            let hosted: Vec<u64> = r4.fields["groups"]
                .as_array()
                .expect("list")
                .iter()
                .map(|e| e["group"].as_u64().expect("id"))
                .collect();
            let mut want = vec![g, h];
            want.sort();
            assert_eq!(hosted, want, "node 4 hosts what it joined");
            let eg = entry(&r4, g).expect("g");
            let eh = entry(&r4, h).expect("h");
            if ids(&eg["voters"]) == [2, 3, 4] && ids(&eh["voters"]) == target {
                break;
            }
            assert!(
                start.elapsed() < LIMIT,
                "node 4 lost its configurations: {r4:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Every acknowledged write is still there.
        for (key, value) in &acked {
            assert_eq!(
                must(&client, Op::Read { key: key.clone() }).await.value(),
                value,
                "key {key}"
            );
        }
    });
}

/// Bad sharding flags and a corrupt groups.json stop the node with exit
/// 254 and a message naming the flag or the file.
#[test]
fn bad_sharding_input_exits_254_naming_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let port = free_ports(1)[0];
    let listen = format!("127.0.0.1:{port}");
    let peers = format!("1={listen},2=127.0.0.2:1,3=127.0.0.3:1");
    let run = |extra: &[&str], data_dir: &std::path::Path| {
        let out = std::process::Command::new(BIN)
            .args(["node", "--id", "1", "--listen", &listen, "--peers", &peers])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .output()
            .expect("run faultline node");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let dir = root.path().join("d");
    for (extra, says) in [
        (&["--shards", "0"][..], "--shards"),
        (&["--shards", "4", "--replicas", "4"], "--replicas 4"),
        (&["--shards", "4", "--members", "1,2,9"], "node 9"),
        (&["--shards", "4", "--members", "1,x"], "--members"),
        (&["--shards", "4", "--vnodes", "0"], "--vnodes"),
        (&["--replicas", "2"], "--shards"),
    ] {
        let (code, stderr) = run(extra, &dir);
        assert_eq!(code, Some(254), "{extra:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{extra:?}: {stderr:?} should name {says:?}"
        );
    }
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("groups.json");
    std::fs::write(&file, b"{\"version\":1,\"joined\":[").expect("write");
    let (code, stderr) = run(&["--shards", "4"], &dir);
    assert_eq!(code, Some(254), "{stderr}");
    assert!(
        stderr.contains(&file.display().to_string()),
        "{stderr:?} names the file"
    );
}

#[test]
fn paxos_shards_move_to_a_new_node_and_a_removed_node_retires() {
    shard_scenario("paxos");
}

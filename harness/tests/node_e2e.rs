//! End to end: three real `faultline node` processes on loopback. Writes,
//! reads, cas, append, add, locks and fenced writes through the protocol;
//! the leader is SIGKILLed and restarted; a new leader is elected and no
//! acknowledged write is lost.

mod node_common;

use std::collections::BTreeMap;
use std::time::Duration;

use faultline_nodes::client::Outcome;
use faultline_nodes::protocol::Op;
use node_common::*;
use serde_json::{json, Value};

fn write(key: &str, value: Value) -> Op {
    Op::Write {
        key: key.into(),
        value,
    }
}

fn read(key: &str) -> Op {
    Op::Read { key: key.into() }
}

#[test]
fn three_raft_nodes_survive_a_leader_kill_without_losing_acknowledged_writes() {
    leader_kill_scenario("raft", &[]);
}

#[test]
fn three_paxos_nodes_survive_a_leader_kill_without_losing_acknowledged_writes() {
    leader_kill_scenario("paxos", &[]);
}

/// Snapshots every 20 entries: the restarted node is behind the leader's
/// compacted log and must catch up from an installed snapshot.
#[test]
fn a_restarted_node_catches_up_from_a_snapshot() {
    leader_kill_scenario("raft", &["--snapshot-every", "20"]);
    leader_kill_scenario("paxos", &["--snapshot-every", "20"]);
}

fn leader_kill_scenario(consensus: &str, extra: &[&str]) {
    let root = tempfile::tempdir().expect("tempdir");
    let mut args = vec!["--consensus", consensus];
    args.extend_from_slice(extra);
    let mut nodes = cluster(3, root.path(), &args);
    for n in nodes.iter_mut() {
        n.start();
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = client_for(&nodes, None);
        let leader = wait_for_leader(&client, &nodes, Duration::from_secs(30)).await;

        // Key-value operations.
        let mut acked: BTreeMap<String, Value> = BTreeMap::new();
        for i in 0..50 {
            let key = format!("k{i}");
            ok(&client, write(&key, json!(i))).await;
            acked.insert(key, json!(i));
        }
        assert_eq!(ok(&client, read("k7")).await.value(), &json!(7));
        assert_eq!(ok(&client, read("absent")).await.value(), &Value::Null);
        ok(
            &client,
            Op::Cas {
                key: "k1".into(),
                from: json!(1),
                to: json!(100),
            },
        )
        .await;
        acked.insert("k1".into(), json!(100));
        let r = fails(
            &client,
            Op::Cas {
                key: "k1".into(),
                from: json!(1),
                to: json!(5),
            },
            "cas-mismatch",
        )
        .await;
        assert_eq!(
            r.value(),
            &json!(100),
            "cas-mismatch carries the current value"
        );
        assert!(r.is_definite_failure());
        ok(
            &client,
            Op::Append {
                key: "list".into(),
                value: json!("a"),
            },
        )
        .await;
        let r = ok(
            &client,
            Op::Append {
                key: "list".into(),
                value: json!("b"),
            },
        )
        .await;
        assert_eq!(r.value(), &json!(["a", "b"]));
        acked.insert("list".into(), json!(["a", "b"]));
        ok(
            &client,
            Op::Add {
                key: "ctr".into(),
                delta: 5,
            },
        )
        .await;
        let r = ok(
            &client,
            Op::Add {
                key: "ctr".into(),
                delta: -2,
            },
        )
        .await;
        assert_eq!(r.value(), &json!(3));
        acked.insert("ctr".into(), json!(3));

        // Locks and fencing.
        let acquire = |owner: &str| Op::Acquire {
            lock: "L".into(),
            owner: owner.into(),
            ttl_ms: 60_000,
        };
        let t1 = ok(&client, acquire("alice")).await.token().expect("token");
        let r = fails(&client, acquire("bob"), "lock-held").await;
        assert_eq!(r.fields.get("holder"), Some(&json!("alice")));
        ok(
            &client,
            Op::FencedWrite {
                key: "res".into(),
                value: json!("alice-1"),
                token: t1,
            },
        )
        .await;
        fails(
            &client,
            Op::Release {
                lock: "L".into(),
                owner: "bob".into(),
                token: t1,
            },
            "not-holder",
        )
        .await;
        ok(
            &client,
            Op::Renew {
                lock: "L".into(),
                owner: "alice".into(),
                token: t1,
                ttl_ms: 60_000,
            },
        )
        .await;
        ok(
            &client,
            Op::Release {
                lock: "L".into(),
                owner: "alice".into(),
                token: t1,
            },
        )
        .await;
        let t2 = ok(&client, acquire("bob")).await.token().expect("token");
        assert!(t2 > t1, "fencing tokens strictly increase: {t1} then {t2}");
        ok(
            &client,
            Op::FencedWrite {
                key: "res".into(),
                value: json!("bob-1"),
                token: t2,
            },
        )
        .await;
        let r = fails(
            &client,
            Op::FencedWrite {
                key: "res".into(),
                value: json!("alice-2"),
                token: t1,
            },
            "stale-token",
        )
        .await;
        assert_eq!(
            r.token(),
            Some(t2),
            "stale-token carries the highest token seen"
        );
        acked.insert("res".into(), json!("bob-1"));

        // A follower redirects to the leader.
        let follower = nodes.iter().find(|n| n.id != leader).expect("a follower");
        let r = client
            .call_node(&follower.addr.to_string(), read("k1"))
            .await
            .expect("reply");
        assert_eq!(r.error.map(|e| e.as_str()), Some("not-leader"));
        let leader_addr = nodes[(leader - 1) as usize].addr.to_string();
        assert_eq!(r.leader(), Some(leader_addr.as_str()));

        // SIGKILL the leader; a new one is elected from the other two.
        nodes[(leader - 1) as usize].kill();
        let new_leader = wait_for_leader(&client, &nodes, Duration::from_secs(30)).await;
        assert_ne!(new_leader, leader);
        // Enough writes that, with --snapshot-every 20, the new leader has
        // compacted its log well past the killed node's last entry.
        for i in 50..150 {
            let key = format!("k{i}");
            // Right after the election a write may come back unknown; retry
            // until one is acknowledged (a retried write of the same value is harmless).
            loop {
                match client.call(write(&key, json!(i))).await {
                    Outcome::Ok(_) => break,
                    Outcome::Fail(_) | Outcome::Unknown(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                }
            }
            acked.insert(key, json!(i));
        }
        // The lock survived the leader change (its lease is 60 s).
        fails(&client, acquire("carol"), "lock-held").await;

        // Restart the old leader from its data directory; it catches up.
        nodes[(leader - 1) as usize].start();
        let status = ok(&client, Op::Status).await;
        let commit = status.fields["commit_index"]
            .as_u64()
            .expect("commit_index");
        let restarted = nodes[(leader - 1) as usize].addr.to_string();
        let mut caught_up = false;
        for _ in 0..600 {
            if let Ok(r) = client.call_node(&restarted, Op::Status).await {
                if r.fields
                    .get("applied_index")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    >= commit
                {
                    caught_up = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(caught_up, "the restarted node never applied up to {commit}");
        if extra.contains(&"--snapshot-every") {
            let log = std::fs::read_to_string(&nodes[(leader - 1) as usize].log).expect("node log");
            assert!(
                log.contains("installed a snapshot from the leader"),
                "{consensus}: the restarted node should have caught up from a snapshot"
            );
        }

        // No acknowledged write is lost.
        for (key, value) in &acked {
            assert_eq!(ok(&client, read(key)).await.value(), value, "key {key}");
        }

        // Hand leadership to the restarted node and read everything there.
        let lead_now = wait_for_leader(&client, &nodes, Duration::from_secs(30)).await;
        if lead_now != leader {
            let r = client
                .call_node(
                    &nodes[(lead_now - 1) as usize].addr.to_string(),
                    Op::TransferLeader {
                        to: leader,
                        group: None,
                    },
                )
                .await
                .expect("transfer reply");
            assert!(r.ok, "transfer-leader refused: {r:?}");
        }
        let mut led = false;
        for _ in 0..200 {
            if let Ok(r) = client.call_node(&restarted, Op::Status).await {
                if r.fields.get("role") == Some(&json!("leader")) {
                    led = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(led, "leadership never moved to the restarted node");
        for (key, value) in &acked {
            let r = client
                .call_node(&restarted, read(key))
                .await
                .expect("reply");
            assert!(r.ok, "read {key} on the restarted leader: {r:?}");
            assert_eq!(r.value(), value, "key {key} on the restarted node");
        }
    });
}

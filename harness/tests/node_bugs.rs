//! The planted bugs make real nodes wrong in their one known way, and the
//! same scenario without the bug stays right. Each test runs the scenario
//! with and without its bug, so neither half can pass vacuously.

mod node_common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_nodes::client::{Client, Outcome};
use faultline_nodes::protocol::Op;
use node_common::*;
use serde_json::{json, Value};

fn start(n: usize, root: &std::path::Path, extra: &[&str]) -> Vec<NodeProc> {
    let mut nodes = cluster(n, root, extra);
    for node in nodes.iter_mut() {
        node.start();
    }
    nodes
}

/// Write continuously; SIGKILL every node at once after `acks` acknowledged
/// writes; restart; return the acknowledged keys that are gone.
fn lost_after_killing_everyone(extra: &[&str], acks: usize) -> Vec<String> {
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = start(3, root.path(), extra);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let acked: Arc<Mutex<BTreeMap<String, Value>>> = Arc::default();
    rt.block_on(async {
        let client = Arc::new(client_for(&nodes, None));
        wait_for_leader(&client, &nodes, Duration::from_secs(30)).await;
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let (client, acked) = (client.clone(), acked.clone());
                tokio::spawn(async move {
                    for i in 0.. {
                        let key = format!("w{w}-{i}");
                        if let Outcome::Ok(_) = client
                            .call(Op::Write {
                                key: key.clone(),
                                value: json!(i),
                            })
                            .await
                        {
                            acked.lock().expect("lock").insert(key, json!(i));
                        }
                    }
                })
            })
            .collect();
        while acked.lock().expect("lock").len() < acks {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for n in nodes.iter_mut() {
            n.kill();
        }
        for w in writers {
            w.abort();
        }
    });
    let acked = acked.lock().expect("lock").clone();
    for n in nodes.iter_mut() {
        n.start();
    }
    rt.block_on(async {
        let client = client_for(&nodes, None);
        wait_for_leader(&client, &nodes, Duration::from_secs(30)).await;
        let mut lost = Vec::new();
        for (key, value) in &acked {
            if ok(&client, Op::Read { key: key.clone() }).await.value() != value {
                lost.push(key.clone());
            }
        }
        lost
    })
}

#[test]
fn killing_every_node_at_once_loses_no_acknowledged_write() {
    let lost = lost_after_killing_everyone(&[], 300);
    assert!(
        lost.is_empty(),
        "acknowledged writes lost without any bug: {lost:?}"
    );
}

#[test]
fn no_fsync_bug_loses_acknowledged_writes_when_every_node_dies() {
    let lost = lost_after_killing_everyone(&["--bug", "no-fsync"], 300);
    assert!(
        !lost.is_empty(),
        "the no-fsync bug must lose acknowledged writes"
    );
}

/// Cut one follower off, write through the leader, read on that follower.
fn read_on_a_cut_off_follower(extra: &[&str]) -> Outcome {
    let root = tempfile::tempdir().expect("tempdir");
    let nodes = start(3, root.path(), extra);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = client_for(&nodes, None);
        let leader = wait_for_leader(&client, &nodes, Duration::from_secs(30)).await;
        ok(
            &client,
            Op::Write {
                key: "x".into(),
                value: json!("old"),
            },
        )
        .await;
        let follower = nodes.iter().find(|n| n.id != leader).expect("a follower");
        let faddr = follower.addr.to_string();
        // Wait until the follower applied "old", then cut it off both ways.
        let commit = ok(&client, Op::Status).await.fields["commit_index"]
            .as_u64()
            .expect("commit");
        loop {
            let s = client.call_node(&faddr, Op::Status).await.expect("status");
            if s.fields["applied_index"].as_u64().unwrap_or(0) >= commit {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let others: Vec<u64> = nodes
            .iter()
            .filter(|n| n.id != follower.id)
            .map(|n| n.id)
            .collect();
        let r = client
            .call_node(
                &faddr,
                Op::Filter {
                    drop: others,
                    delay_ms: 0,
                    loss: 0.0,
                },
            )
            .await
            .expect("filter");
        assert!(r.ok);
        for n in nodes.iter().filter(|n| n.id != follower.id) {
            let r = client
                .call_node(
                    &n.addr.to_string(),
                    Op::Filter {
                        drop: vec![follower.id],
                        delay_ms: 0,
                        loss: 0.0,
                    },
                )
                .await
                .expect("filter");
            assert!(r.ok);
        }
        // The majority moves on.
        loop {
            if let Outcome::Ok(_) = client
                .call(Op::Write {
                    key: "x".into(),
                    value: json!("new"),
                })
                .await
            {
                break;
            }
        }
        let r = client
            .call_node(&faddr, Op::Read { key: "x".into() })
            .await
            .expect("reply");
        if r.ok {
            Outcome::Ok(r)
        } else {
            Outcome::Fail(r)
        }
    })
}

#[test]
fn stale_read_bug_serves_an_old_value_from_a_cut_off_follower() {
    match read_on_a_cut_off_follower(&[]) {
        Outcome::Fail(r) => assert_eq!(r.error.map(|e| e.as_str()), Some("not-leader")),
        other => panic!("without the bug a follower must not answer reads: {other:?}"),
    }
    match read_on_a_cut_off_follower(&["--bug", "stale-read"]) {
        Outcome::Ok(r) => assert_eq!(r.value(), &json!("old"), "the stale value"),
        other => panic!("with stale-read the follower answers from its state: {other:?}"),
    }
}

/// Take a 60 s lease, kill the leader, and see whether another owner can
/// take the lock from the new leader within `patience`.
fn lock_taken_over_after_leader_change(extra: &[&str], patience: Duration) -> bool {
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = start(3, root.path(), extra);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = client_for(&nodes, None);
        let leader = wait_for_leader(&client, &nodes, Duration::from_secs(30)).await;
        ok(
            &client,
            Op::Acquire {
                lock: "L".into(),
                owner: "a".into(),
                ttl_ms: 60_000,
            },
        )
        .await;
        nodes[(leader - 1) as usize].kill();
        wait_for_leader(&client, &nodes, Duration::from_secs(30)).await;
        let until = tokio::time::Instant::now() + patience;
        while tokio::time::Instant::now() < until {
            if let Outcome::Ok(_) = client
                .call(Op::Acquire {
                    lock: "L".into(),
                    owner: "b".into(),
                    ttl_ms: 60_000,
                })
                .await
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    })
}

#[test]
fn lock_early_expiry_bug_frees_a_held_lock_on_leader_change() {
    assert!(
        !lock_taken_over_after_leader_change(&[], Duration::from_secs(2)),
        "a 60 s lease must survive a leader change"
    );
    assert!(
        lock_taken_over_after_leader_change(
            &["--bug", "lock-early-expiry"],
            Duration::from_secs(30)
        ),
        "with lock-early-expiry the new leader frees the lock"
    );
}

async fn stale_fenced_write(client: &Client) -> Outcome {
    ok(
        client,
        Op::FencedWrite {
            key: "r".into(),
            value: json!(1),
            token: 5,
        },
    )
    .await;
    client
        .call(Op::FencedWrite {
            key: "r".into(),
            value: json!(2),
            token: 3,
        })
        .await
}

#[test]
fn no_fence_bug_accepts_a_stale_token() {
    for (extra, accepted) in [(&[][..], false), (&["--bug", "no-fence"][..], true)] {
        let root = tempfile::tempdir().expect("tempdir");
        let nodes = start(1, root.path(), extra);
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let client = client_for(&nodes, None);
            wait_for_leader(&client, &nodes, Duration::from_secs(30)).await;
            let out = stale_fenced_write(&client).await;
            assert_eq!(out.is_ok(), accepted, "{extra:?}: {out:?}");
            let status = ok(&client, Op::Status).await;
            let bugs = status.fields["bugs"].as_array().expect("bugs").len();
            assert_eq!(bugs, extra.len() / 2, "status lists the planted bugs");
        });
    }
}

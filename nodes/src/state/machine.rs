//! The replicated state machine: a key-value map and a lock service.
//!
//! Deterministic: applying the same commands in the same order gives the
//! same state and the same results on every replica (no clock, no
//! randomness, ordered maps). Lease expiry is a command ([`Command::Expire`])
//! that the leader proposes when its own timer fires, so every replica
//! expires a lease at the same log position.
//!
//! Guarantees: fencing tokens strictly increase per lock (a lock's counter
//! only grows, and survives release and expiry); a fenced key accepts a
//! write only with a token at least as large as any it accepted before
//! (unless built with the `no-fence` bug).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::command::Command;
use super::txn;

/// A granted lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub token: u64,
    pub ttl_ms: u64,
    /// How many renews this lease has had (identifies its current timer).
    pub renewals: u64,
}

/// One lock: its holder, and the last token it handed out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub holder: Option<Lease>,
    pub last_token: u64,
}

/// The result of applying one command.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    Ok,
    /// `append` and `add`: the value after the change.
    Value(Value),
    CasMismatch {
        current: Value,
    },
    Token(u64),
    LockHeld {
        holder: String,
    },
    NotHolder,
    StaleToken {
        highest: u64,
    },
    /// The command cannot apply to the current value (e.g. `add` to a string).
    BadRequest(String),
}

/// What the state machine changed that the runtime's lease timers care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseChange {
    /// (Re)start the timer of this lease.
    Started { lock: String, lease: Lease },
    /// The lock is free: stop its timer.
    Ended { lock: String },
}

/// The whole replicated state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StateMachine {
    kv: BTreeMap<String, Value>,
    /// Highest fencing token each fenced key accepted.
    fences: BTreeMap<String, u64>,
    locks: BTreeMap<String, Lock>,
    /// Planted bug `no-fence`: fenced writes ignore the token.
    #[serde(skip)]
    no_fence: bool,
    /// Planted bug `txn-non-atomic`: a transaction's writes to keys other
    /// than the first it writes take effect only after the next command.
    #[serde(skip)]
    non_atomic_txns: bool,
    /// Under `txn-non-atomic`: the held-back writes and appends of the last
    /// transaction, applied right after the next command. In the snapshot,
    /// so every replica holds back the same ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    held_back: Vec<txn::MicroOp>,
}

impl StateMachine {
    pub fn new(no_fence: bool) -> StateMachine {
        StateMachine {
            no_fence,
            ..StateMachine::default()
        }
    }

    /// With the planted bug `txn-non-atomic`: a transaction's micro-ops on
    /// keys other than the first key it writes take effect one command
    /// late, so the next command sees the transaction half applied.
    pub fn with_non_atomic_txns(mut self, on: bool) -> StateMachine {
        self.non_atomic_txns = on;
        self
    }

    /// Read a key (null if absent).
    pub fn read(&self, key: &str) -> Value {
        self.kv.get(key).cloned().unwrap_or(Value::Null)
    }

    /// Every held lease (for a new leader to restart its timers).
    pub fn leases(&self) -> impl Iterator<Item = (&str, &Lease)> {
        self.locks
            .iter()
            .filter_map(|(name, l)| l.holder.as_ref().map(|h| (name.as_str(), h)))
    }

    pub fn lock(&self, name: &str) -> Option<&Lock> {
        self.locks.get(name)
    }

    /// Apply one command; `lease` receives what changed for lease timers.
    pub fn apply(&mut self, cmd: Command, lease: &mut Vec<LeaseChange>) -> Applied {
        let held_back = std::mem::take(&mut self.held_back);
        let applied = self.apply_command(cmd, lease);
        self.apply_held_back(held_back);
        applied
    }

    /// The late half of a transaction under `txn-non-atomic`: each write
    /// or append applied to the state as it is now.
    fn apply_held_back(&mut self, mops: Vec<txn::MicroOp>) {
        for m in mops {
            match m.kind {
                txn::MicroOpKind::Read => {}
                txn::MicroOpKind::Write => {
                    self.kv.insert(m.key, m.value);
                }
                txn::MicroOpKind::Append => match self.kv.get_mut(&m.key) {
                    Some(Value::Array(items)) => items.push(m.value),
                    None | Some(Value::Null) => {
                        self.kv.insert(m.key, Value::Array(vec![m.value]));
                    }
                    Some(_) => {}
                },
            }
        }
    }

    /// One command, by kind: the data commands, then the lock commands.
    fn apply_command(&mut self, cmd: Command, lease: &mut Vec<LeaseChange>) -> Applied {
        match cmd {
            Command::Write { key, value } => {
                self.kv.insert(key, value);
                Applied::Ok
            }
            Command::Cas { key, from, to } => {
                let current = self.read(&key);
                if current == from {
                    self.kv.insert(key, to);
                    Applied::Ok
                } else {
                    Applied::CasMismatch { current }
                }
            }
            Command::Append { key, value } => self.append(key, value),
            Command::Add { key, delta } => self.add(key, delta),
            Command::Txn { mops } => self.txn(mops),
            Command::FencedWrite { key, value, token } => self.fenced_write(key, value, token),
            Command::Acquire {
                lock,
                owner,
                ttl_ms,
            } => self.acquire(lock, owner, ttl_ms, lease),
            Command::Renew {
                lock,
                owner,
                token,
                ttl_ms,
            } => self.renew(lock, owner, token, ttl_ms, lease),
            Command::Release { lock, owner, token } => self.release(lock, owner, token, lease),
            Command::Expire {
                lock,
                token,
                renewals,
            } => self.expire(lock, token, renewals, lease),
        }
    }

    /// Appends `value` to the list at `key` (absent or null: empty).
    fn append(&mut self, key: String, value: Value) -> Applied {
        let mut list = match self.kv.get(&key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(other) => {
                return Applied::BadRequest(format!(
                    "append to {key:?}, which holds {other}, not a list"
                ))
            }
        };
        list.push(value);
        let value = Value::Array(list);
        self.kv.insert(key, value.clone());
        Applied::Value(value)
    }

    /// Adds `delta` to the integer at `key` (absent or null: 0).
    fn add(&mut self, key: String, delta: i64) -> Applied {
        let current = match self.kv.get(&key) {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_i64() {
                Some(n) => n,
                None => {
                    return Applied::BadRequest(format!(
                        "add to {key:?}, which holds {v}, not an integer"
                    ))
                }
            },
        };
        let Some(sum) = current.checked_add(delta) else {
            return Applied::BadRequest(format!("{current} + {delta} overflows"));
        };
        self.kv.insert(key, Value::from(sum));
        Applied::Value(Value::from(sum))
    }

    /// A transaction's micro-ops as one command (under the planted
    /// `txn-non-atomic`, all but the first key's writes held back).
    fn txn(&mut self, mops: Vec<txn::MicroOp>) -> Applied {
        match txn::execute(&self.kv, &mops) {
            Ok((results, writes)) => {
                let first_written = self
                    .non_atomic_txns
                    .then(|| mops.iter().find(|m| m.kind != txn::MicroOpKind::Read))
                    .flatten()
                    .map(|m| m.key.clone());
                match first_written {
                    None => self.kv.extend(writes),
                    Some(first) => {
                        self.kv
                            .extend(writes.into_iter().filter(|(k, _)| *k == first));
                        self.held_back.extend(
                            mops.into_iter()
                                .filter(|m| m.kind != txn::MicroOpKind::Read && m.key != first),
                        );
                    }
                }
                Applied::Value(serde_json::to_value(results).expect("micro-ops always serialize"))
            }
            Err(reason) => Applied::BadRequest(reason),
        }
    }

    /// A write that a token below the highest seen for `key` may not make
    /// (unless the planted `no-fence` is on).
    fn fenced_write(&mut self, key: String, value: Value, token: u64) -> Applied {
        let highest = self.fences.get(&key).copied().unwrap_or(0);
        if token < highest && !self.no_fence {
            return Applied::StaleToken { highest };
        }
        self.fences.insert(key.clone(), highest.max(token));
        self.kv.insert(key, value);
        Applied::Ok
    }

    /// Grants a free lock a lease with the next fencing token.
    fn acquire(
        &mut self,
        lock: String,
        owner: String,
        ttl_ms: u64,
        lease: &mut Vec<LeaseChange>,
    ) -> Applied {
        let l = self.locks.entry(lock.clone()).or_default();
        if let Some(h) = &l.holder {
            return Applied::LockHeld {
                holder: h.owner.clone(),
            };
        }
        l.last_token = l
            .last_token
            .checked_add(1)
            .expect("fencing tokens never reach u64::MAX");
        let granted = Lease {
            owner,
            token: l.last_token,
            ttl_ms,
            renewals: 0,
        };
        l.holder = Some(granted.clone());
        lease.push(LeaseChange::Started {
            lock,
            lease: granted,
        });
        Applied::Token(l.last_token)
    }

    /// Extends the holder's lease (its owner and token must match).
    fn renew(
        &mut self,
        lock: String,
        owner: String,
        token: u64,
        ttl_ms: u64,
        lease: &mut Vec<LeaseChange>,
    ) -> Applied {
        match self.locks.get_mut(&lock).and_then(|l| l.holder.as_mut()) {
            Some(h) if h.owner == owner && h.token == token => {
                h.ttl_ms = ttl_ms;
                h.renewals += 1;
                lease.push(LeaseChange::Started {
                    lock,
                    lease: h.clone(),
                });
                Applied::Ok
            }
            _ => Applied::NotHolder,
        }
    }

    /// Frees the lock if the caller holds it (owner and token).
    fn release(
        &mut self,
        lock: String,
        owner: String,
        token: u64,
        lease: &mut Vec<LeaseChange>,
    ) -> Applied {
        match self.locks.get_mut(&lock) {
            Some(l)
                if l.holder
                    .as_ref()
                    .is_some_and(|h| h.owner == owner && h.token == token) =>
            {
                l.holder = None;
                lease.push(LeaseChange::Ended { lock });
                Applied::Ok
            }
            _ => Applied::NotHolder,
        }
    }

    /// Ends a lease that ran out: only the one it was set for (same token,
    /// not renewed since).
    fn expire(
        &mut self,
        lock: String,
        token: u64,
        renewals: u64,
        lease: &mut Vec<LeaseChange>,
    ) -> Applied {
        if let Some(l) = self.locks.get_mut(&lock) {
            if l.holder
                .as_ref()
                .is_some_and(|h| h.token == token && h.renewals == renewals)
            {
                l.holder = None;
                lease.push(LeaseChange::Ended { lock });
            }
        }
        Applied::Ok
    }

    /// Runs a transaction's micro-ops against the current state without
    /// changing it: what they would read, and the writes they would make.
    pub fn execute_txn(
        &self,
        mops: &[txn::MicroOp],
    ) -> Result<(Vec<txn::MicroOp>, Vec<(String, Value)>), String> {
        txn::execute(&self.kv, mops)
    }

    /// Serialize the whole state.
    pub fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the state machine always serializes")
    }

    /// Replace the whole state with a snapshot's (bugs are kept).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), serde_json::Error> {
        let mut fresh: StateMachine = serde_json::from_slice(bytes)?;
        fresh.no_fence = self.no_fence;
        fresh.non_atomic_txns = self.non_atomic_txns;
        *self = fresh;
        Ok(())
    }

    /// Number of keys (for status).
    pub fn key_count(&self) -> usize {
        self.kv.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(sm: &mut StateMachine, cmd: Command) -> Applied {
        sm.apply(cmd, &mut Vec::new())
    }

    fn acquire(lock: &str, owner: &str) -> Command {
        Command::Acquire {
            lock: lock.into(),
            owner: owner.into(),
            ttl_ms: 1000,
        }
    }

    #[test]
    fn kv_write_read_cas_append_add() {
        let mut sm = StateMachine::new(false);
        assert_eq!(sm.read("x"), Value::Null);
        assert_eq!(
            apply(
                &mut sm,
                Command::Write {
                    key: "x".into(),
                    value: json!(5)
                }
            ),
            Applied::Ok
        );
        assert_eq!(sm.read("x"), json!(5));
        assert_eq!(
            apply(
                &mut sm,
                Command::Cas {
                    key: "x".into(),
                    from: json!(4),
                    to: json!(6)
                }
            ),
            Applied::CasMismatch { current: json!(5) }
        );
        assert_eq!(sm.read("x"), json!(5), "a failed cas changes nothing");
        assert_eq!(
            apply(
                &mut sm,
                Command::Cas {
                    key: "x".into(),
                    from: json!(5),
                    to: json!(6)
                }
            ),
            Applied::Ok
        );
        assert_eq!(sm.read("x"), json!(6));
        assert_eq!(
            apply(
                &mut sm,
                Command::Cas {
                    key: "nope".into(),
                    from: Value::Null,
                    to: json!(1)
                }
            ),
            Applied::Ok,
            "cas from null on an absent key succeeds"
        );
        assert_eq!(
            apply(
                &mut sm,
                Command::Append {
                    key: "l".into(),
                    value: json!(1)
                }
            ),
            Applied::Value(json!([1]))
        );
        assert_eq!(
            apply(
                &mut sm,
                Command::Append {
                    key: "l".into(),
                    value: json!(2)
                }
            ),
            Applied::Value(json!([1, 2]))
        );
        assert!(matches!(
            apply(
                &mut sm,
                Command::Append {
                    key: "x".into(),
                    value: json!(2)
                }
            ),
            Applied::BadRequest(_)
        ));
        assert_eq!(
            apply(
                &mut sm,
                Command::Add {
                    key: "c".into(),
                    delta: 3
                }
            ),
            Applied::Value(json!(3))
        );
        assert_eq!(
            apply(
                &mut sm,
                Command::Add {
                    key: "c".into(),
                    delta: -5
                }
            ),
            Applied::Value(json!(-2))
        );
        assert!(matches!(
            apply(
                &mut sm,
                Command::Add {
                    key: "l".into(),
                    delta: 1
                }
            ),
            Applied::BadRequest(_)
        ));
        assert_eq!(sm.read("l"), json!([1, 2]), "a failed add changes nothing");
    }

    #[test]
    fn a_txn_applies_whole_or_not_at_all() {
        let mut sm = StateMachine::new(false);
        let mops: Vec<txn::MicroOp> =
            serde_json::from_value(json!([["append", "x", 1], ["r", "x", null], ["w", "y", 2]]))
                .expect("micro-ops");
        assert_eq!(
            apply(&mut sm, Command::Txn { mops }),
            Applied::Value(json!([["append", "x", 1], ["r", "x", [1]], ["w", "y", 2]]))
        );
        assert_eq!((sm.read("x"), sm.read("y")), (json!([1]), json!(2)));
        apply(
            &mut sm,
            Command::Write {
                key: "s".into(),
                value: json!("text"),
            },
        );
        let mops: Vec<txn::MicroOp> =
            serde_json::from_value(json!([["append", "x", 2], ["append", "s", 3]]))
                .expect("micro-ops");
        assert!(matches!(
            apply(&mut sm, Command::Txn { mops }),
            Applied::BadRequest(_)
        ));
        assert_eq!(
            sm.read("x"),
            json!([1]),
            "the failed txn's first append did not happen"
        );
    }

    #[test]
    fn txn_non_atomic_lets_the_next_command_see_half_a_txn() {
        let mops = |v| -> Vec<txn::MicroOp> { serde_json::from_value(v).expect("micro-ops") };
        for bug in [false, true] {
            let mut sm = StateMachine::new(false).with_non_atomic_txns(bug);
            let done = apply(
                &mut sm,
                Command::Txn {
                    mops: mops(json!([
                        ["append", "x", 1],
                        ["append", "y", 1],
                        ["r", "y", null]
                    ])),
                },
            );
            assert_eq!(
                done,
                Applied::Value(json!([
                    ["append", "x", 1],
                    ["append", "y", 1],
                    ["r", "y", [1]]
                ])),
                "the txn itself reads its own writes either way"
            );
            let seen = apply(
                &mut sm,
                Command::Txn {
                    mops: mops(json!([["r", "x", null], ["r", "y", null]])),
                },
            );
            let y = if bug { json!(null) } else { json!([1]) };
            assert_eq!(
                seen,
                Applied::Value(json!([["r", "x", [1]], ["r", "y", y]])),
                "bug {bug}"
            );
            assert_eq!(
                sm.read("y"),
                json!([1]),
                "the held-back append lands after the next command"
            );
            let restored = {
                let mut r = StateMachine::new(false).with_non_atomic_txns(bug);
                r.restore(&sm.snapshot()).expect("restores");
                r
            };
            assert_eq!(restored, sm);
        }
    }

    #[test]
    fn fencing_tokens_strictly_increase_per_lock_across_release_and_expiry() {
        let mut sm = StateMachine::new(false);
        let mut tokens = Vec::new();
        for round in 0..6 {
            let Applied::Token(t) = apply(&mut sm, acquire("L", "a")) else {
                panic!("free lock must be granted")
            };
            tokens.push(t);
            assert_eq!(
                apply(&mut sm, acquire("L", "b")),
                Applied::LockHeld { holder: "a".into() }
            );
            if round % 2 == 0 {
                assert_eq!(
                    apply(
                        &mut sm,
                        Command::Release {
                            lock: "L".into(),
                            owner: "a".into(),
                            token: t
                        }
                    ),
                    Applied::Ok
                );
            } else {
                apply(
                    &mut sm,
                    Command::Expire {
                        lock: "L".into(),
                        token: t,
                        renewals: 0,
                    },
                );
            }
        }
        assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
        // Another lock has its own counter.
        assert_eq!(apply(&mut sm, acquire("M", "a")), Applied::Token(1));
    }

    #[test]
    fn renew_and_release_need_the_right_owner_and_token() {
        let mut sm = StateMachine::new(false);
        let Applied::Token(t) = apply(&mut sm, acquire("L", "a")) else {
            panic!("granted")
        };
        let renew = |owner: &str, token| Command::Renew {
            lock: "L".into(),
            owner: owner.into(),
            token,
            ttl_ms: 50,
        };
        assert_eq!(apply(&mut sm, renew("b", t)), Applied::NotHolder);
        assert_eq!(apply(&mut sm, renew("a", t + 1)), Applied::NotHolder);
        let mut changes = Vec::new();
        assert_eq!(sm.apply(renew("a", t), &mut changes), Applied::Ok);
        assert!(
            matches!(&changes[..], [LeaseChange::Started { lease, .. }] if lease.renewals == 1 && lease.ttl_ms == 50)
        );
        assert_eq!(
            apply(
                &mut sm,
                Command::Release {
                    lock: "L".into(),
                    owner: "b".into(),
                    token: t
                }
            ),
            Applied::NotHolder
        );
        assert_eq!(
            apply(
                &mut sm,
                Command::Release {
                    lock: "X".into(),
                    owner: "a".into(),
                    token: t
                }
            ),
            Applied::NotHolder
        );
    }

    #[test]
    fn an_expire_raced_by_a_renew_is_a_no_op() {
        let mut sm = StateMachine::new(false);
        let Applied::Token(t) = apply(&mut sm, acquire("L", "a")) else {
            panic!("granted")
        };
        apply(
            &mut sm,
            Command::Renew {
                lock: "L".into(),
                owner: "a".into(),
                token: t,
                ttl_ms: 1000,
            },
        );
        // The timer of the lease before the renew fires late.
        apply(
            &mut sm,
            Command::Expire {
                lock: "L".into(),
                token: t,
                renewals: 0,
            },
        );
        assert!(
            sm.lock("L").and_then(|l| l.holder.as_ref()).is_some(),
            "renewed lease survives"
        );
        apply(
            &mut sm,
            Command::Expire {
                lock: "L".into(),
                token: t,
                renewals: 1,
            },
        );
        assert!(sm.lock("L").and_then(|l| l.holder.as_ref()).is_none());
    }

    #[test]
    fn fenced_writes_refuse_stale_tokens() {
        let mut sm = StateMachine::new(false);
        let fw = |token, v: i64| Command::FencedWrite {
            key: "r".into(),
            value: json!(v),
            token,
        };
        assert_eq!(apply(&mut sm, fw(3, 1)), Applied::Ok);
        assert_eq!(
            apply(&mut sm, fw(3, 2)),
            Applied::Ok,
            "equal token is accepted"
        );
        assert_eq!(apply(&mut sm, fw(2, 3)), Applied::StaleToken { highest: 3 });
        assert_eq!(sm.read("r"), json!(2));
        assert_eq!(apply(&mut sm, fw(5, 4)), Applied::Ok);
        assert_eq!(apply(&mut sm, fw(4, 5)), Applied::StaleToken { highest: 5 });
    }

    #[test]
    fn no_fence_bug_accepts_stale_tokens() {
        let mut sm = StateMachine::new(true);
        let fw = |token, v: i64| Command::FencedWrite {
            key: "r".into(),
            value: json!(v),
            token,
        };
        apply(&mut sm, fw(5, 1));
        assert_eq!(apply(&mut sm, fw(2, 2)), Applied::Ok);
        assert_eq!(sm.read("r"), json!(2));
    }

    #[test]
    fn snapshot_restore_round_trips_and_keeps_the_bug_setting() {
        let mut sm = StateMachine::new(false);
        apply(
            &mut sm,
            Command::Write {
                key: "x".into(),
                value: json!("v"),
            },
        );
        apply(&mut sm, acquire("L", "a"));
        apply(
            &mut sm,
            Command::FencedWrite {
                key: "r".into(),
                value: json!(1),
                token: 9,
            },
        );
        let bytes = sm.snapshot();
        let mut other = StateMachine::new(false);
        other.restore(&bytes).expect("restore");
        assert_eq!(other, sm);
        assert_eq!(
            apply(&mut other, acquire("L", "b")),
            Applied::LockHeld { holder: "a".into() }
        );
        assert_eq!(
            apply(
                &mut other,
                Command::FencedWrite {
                    key: "r".into(),
                    value: json!(2),
                    token: 8
                }
            ),
            Applied::StaleToken { highest: 9 }
        );
        assert!(other.restore(b"not json").is_err());
    }

    /// A JSON value `depth` arrays deep: `[[...[1]...]]`.
    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    /// Regression (issue 21, finding 2): a write could carry a value nested
    /// 126 deep, which the snapshot wrapped past serde_json's recursion
    /// limit: after the next compaction no node could restart or install it.
    #[test]
    fn the_deepest_value_a_request_may_carry_survives_snapshot_and_restore() {
        use crate::protocol::{Op, Request};
        let accepted = |depth: usize| {
            let line = format!(
                r#"{{"id":1,"op":"write","key":"k","value":{}}}"#,
                nested(depth)
            );
            Request::decode(line.as_bytes()).ok()
        };
        let deepest = (0..200)
            .take_while(|&d| accepted(d).is_some())
            .last()
            .expect("a flat value is accepted");
        let Some(Request {
            op: Op::Write { value, .. },
            ..
        }) = accepted(deepest)
        else {
            panic!("a write decodes as a write");
        };
        let mut sm = StateMachine::new(false);
        let write = |key: &str| Command::Write {
            key: key.into(),
            value: value.clone(),
        };
        let append = Command::Append {
            key: "list".into(),
            value: value.clone(),
        };
        assert_eq!(apply(&mut sm, write("k")), Applied::Ok);
        assert!(matches!(apply(&mut sm, append), Applied::Value(_)));
        let decoded = Command::decode(&write("k").encode()).expect("the command round-trips");
        assert_eq!(decoded, write("k"));
        let mut restored = StateMachine::new(false);
        restored.restore(&sm.snapshot()).unwrap_or_else(|e| {
            panic!("a snapshot holding a value {deepest} deep does not restore: {e}")
        });
        assert_eq!(restored, sm);
    }

    proptest::proptest! {
        /// Fuzz: snapshot bytes from disk or the wire never panic restore.
        #[test]
        fn restore_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let _ = StateMachine::new(false).restore(&bytes);
        }
    }
}

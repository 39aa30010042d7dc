//! Requests: one JSON object a line, `{"id":N,"op":"...",...}`.
//!
//! Decoding never panics and never trusts the input: a line that is not a
//! JSON object, lacks `op`, names an unknown op or misses a field becomes a
//! [`DecodeError`] that still carries the request's `id` when it could be read,
//! so the reply can echo it.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::state::txn::MicroOp;

/// How deep a request line may nest arrays and objects, the request object
/// itself counting as the first level (so a value nests at most 63 deep).
///
/// What a node stores wraps values again (an `append` list, a snapshot's
/// maps), and every reader of those bytes (a restarting node, a follower
/// installing a snapshot, a client reading the key) parses them with
/// serde_json's recursion limit of 128. The limit keeps every one of them
/// far below that: a request deeper than this is refused (`bad-request`),
/// never stored (issue 21, finding 2).
pub const MAX_REQUEST_DEPTH: usize = 64;

/// How deep `value` nests arrays and objects (a scalar is 0). Values come
/// from serde_json, whose parser stops at depth 128, so the recursion is bounded.
pub fn nesting_depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(nesting_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(nesting_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// One request line: an id the reply echoes and an operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Echoed by the reply. Optional only for `auth` and `hello`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(flatten)]
    pub op: Op,
}

/// Every operation of docs/protocol.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// First line of a connection when the node runs with `--auth-token-file`.
    Auth {
        token: String,
    },
    /// First line (after `auth`) of a peer connection: the sender's node id.
    /// Every later line on that connection is a peer frame.
    Hello {
        node: u64,
    },

    Read {
        #[serde(deserialize_with = "string_or_number")]
        key: String,
    },
    Write {
        #[serde(deserialize_with = "string_or_number")]
        key: String,
        value: Value,
    },
    Cas {
        #[serde(deserialize_with = "string_or_number")]
        key: String,
        from: Value,
        to: Value,
    },
    Append {
        #[serde(deserialize_with = "string_or_number")]
        key: String,
        value: Value,
    },
    Add {
        #[serde(deserialize_with = "string_or_number")]
        key: String,
        delta: i64,
    },
    /// Micro-ops `[f, key, value]` (`r`, `w`, `append`) on keys of one
    /// shard, applied atomically as one log entry.
    Txn {
        mops: Vec<MicroOp>,
    },

    Acquire {
        #[serde(deserialize_with = "string_or_number")]
        lock: String,
        #[serde(deserialize_with = "string_or_number")]
        owner: String,
        ttl_ms: u64,
    },
    Renew {
        #[serde(deserialize_with = "string_or_number")]
        lock: String,
        #[serde(deserialize_with = "string_or_number")]
        owner: String,
        token: u64,
        ttl_ms: u64,
    },
    Release {
        #[serde(deserialize_with = "string_or_number")]
        lock: String,
        #[serde(deserialize_with = "string_or_number")]
        owner: String,
        token: u64,
    },
    #[serde(rename = "fenced_write")]
    FencedWrite {
        #[serde(deserialize_with = "string_or_number")]
        key: String,
        value: Value,
        token: u64,
    },

    Status,
    Filter {
        /// Node ids whose messages are dropped, both directions.
        #[serde(default)]
        drop: Vec<u64>,
        /// Extra delay on every outgoing peer message.
        #[serde(default)]
        delay_ms: u64,
        /// Probability of dropping a peer message (each direction).
        #[serde(default)]
        loss: f64,
    },
    Clock {
        #[serde(default)]
        offset_ms: i64,
        #[serde(default = "one")]
        rate: f64,
    },
    TransferLeader {
        to: u64,
        /// Which hosted group (default: the first).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<u64>,
    },

    /// Every group this node hosts, and its ring view.
    Groups,
    /// Host `group` as a joining core (no voters until the leader sends a
    /// configuration). Idempotent.
    JoinGroup {
        group: u64,
        /// A term floor for the new core (the group leader's current term):
        /// a node re-added after it was removed and wiped must not vote
        /// again in a term it already voted in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        term: Option<u64>,
    },
    /// Stop hosting `group` and delete its storage, for a node the
    /// group's leader already reports removed.
    LeaveGroup {
        group: u64,
    },
    /// At `group`'s leader: snapshot, then move the group to `voters`.
    ChangeMembership {
        group: u64,
        voters: Vec<u64>,
    },
    /// Replace this node's ring view (used for `moved` redirects).
    SetMembers {
        members: Vec<u64>,
    },
}

fn one() -> f64 {
    1.0
}

/// Keys, lock names and owners are strings on the wire; integers are
/// accepted too (as their decimal text) since many workloads number keys.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or a number, got {other}"
        ))),
    }
}

impl Op {
    /// True for operations that change replicated state (go through the log).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Op::Write { .. }
                | Op::Cas { .. }
                | Op::Append { .. }
                | Op::Add { .. }
                | Op::Txn { .. }
                | Op::Acquire { .. }
                | Op::Renew { .. }
                | Op::Release { .. }
                | Op::FencedWrite { .. }
        )
    }

    /// The op's wire name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Auth { .. } => "auth",
            Op::Hello { .. } => "hello",
            Op::Read { .. } => "read",
            Op::Write { .. } => "write",
            Op::Cas { .. } => "cas",
            Op::Append { .. } => "append",
            Op::Add { .. } => "add",
            Op::Txn { .. } => "txn",
            Op::Acquire { .. } => "acquire",
            Op::Renew { .. } => "renew",
            Op::Release { .. } => "release",
            Op::FencedWrite { .. } => "fenced_write",
            Op::Status => "status",
            Op::Filter { .. } => "filter",
            Op::Clock { .. } => "clock",
            Op::TransferLeader { .. } => "transfer-leader",
            Op::Groups => "groups",
            Op::JoinGroup { .. } => "join-group",
            Op::LeaveGroup { .. } => "leave-group",
            Op::ChangeMembership { .. } => "change-membership",
            Op::SetMembers { .. } => "set-members",
        }
    }

    /// What a sharded node routes this op by: the key of a key-value op or
    /// of `fenced_write`, the lock name of a lock op; None for admin ops.
    pub fn routing_key(&self) -> Option<&str> {
        match self {
            Op::Read { key }
            | Op::Write { key, .. }
            | Op::Cas { key, .. }
            | Op::Append { key, .. }
            | Op::Add { key, .. }
            | Op::FencedWrite { key, .. } => Some(key),
            Op::Acquire { lock, .. } | Op::Renew { lock, .. } | Op::Release { lock, .. } => {
                Some(lock)
            }
            Op::Txn { mops } => mops.first().map(|m| m.key.as_str()),
            _ => None,
        }
    }

    /// Every key the op touches (a txn's micro-ops may name several).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Op::Txn { mops } => mops.iter().map(|m| m.key.as_str()).collect(),
            other => other.routing_key().into_iter().collect(),
        }
    }
}

/// A line that is not a valid request.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("bad request: {reason}")]
pub struct DecodeError {
    /// The request's id, when it could be read, so the reply can echo it.
    pub id: Option<u64>,
    pub reason: String,
}

impl Request {
    /// Decode one line (without its newline).
    pub fn decode(line: &[u8]) -> Result<Request, DecodeError> {
        let value: Value = serde_json::from_slice(line).map_err(|e| DecodeError {
            id: None,
            reason: format!("malformed JSON: {e}"),
        })?;
        let Value::Object(map) = &value else {
            return Err(DecodeError {
                id: None,
                reason: "a request must be a JSON object".into(),
            });
        };
        let id = match map.get("id") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(id) => Some(id),
                None => {
                    return Err(DecodeError {
                        id: None,
                        reason: format!("`id` must be a non-negative integer, got {v}"),
                    })
                }
            },
        };
        let depth = nesting_depth(&value);
        if depth > MAX_REQUEST_DEPTH {
            return Err(DecodeError {
                id,
                reason: format!(
                    "the request nests {depth} levels of arrays and objects; at most {MAX_REQUEST_DEPTH} (the request object counts as one)"
                ),
            });
        }
        if !map.contains_key("op") {
            return Err(DecodeError {
                id,
                reason: "missing `op`".into(),
            });
        }
        let op = Op::deserialize(value).map_err(|e| DecodeError {
            id,
            reason: e.to_string(),
        })?;
        if id.is_none() && !matches!(op, Op::Auth { .. } | Op::Hello { .. }) {
            return Err(DecodeError {
                id: None,
                reason: format!("`{}` needs an integer `id`", op.name()),
            });
        }
        Ok(Request { id, op })
    }

    /// Encode as one line, newline included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("requests always serialize");
        out.push(b'\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_nested_past_the_limit_is_refused_with_its_id() {
        let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let line = |depth: usize| {
            format!(
                r#"{{"id":7,"op":"write","key":"k","value":{}}}"#,
                nested(depth)
            )
        };
        // The request object is the first level.
        assert!(Request::decode(line(MAX_REQUEST_DEPTH - 1).as_bytes()).is_ok());
        let err = Request::decode(line(MAX_REQUEST_DEPTH).as_bytes()).expect_err("too deep");
        assert_eq!(err.id, Some(7), "the reply can echo the id");
        assert!(err.reason.contains("at most 64"), "{}", err.reason);
        assert_eq!(nesting_depth(&json!({"a": [1, {"b": []}]})), 4);
        assert_eq!(nesting_depth(&json!(5)), 0);
    }

    #[test]
    fn decodes_the_examples_of_the_protocol_doc() {
        let r = Request::decode(br#"{"id":1,"op":"write","key":"x","value":5}"#).expect("valid");
        assert_eq!(r.id, Some(1));
        assert_eq!(
            r.op,
            Op::Write {
                key: "x".into(),
                value: json!(5)
            }
        );
        let r =
            Request::decode(br#"{"id":3,"op":"cas","key":"x","from":4,"to":6}"#).expect("valid");
        assert_eq!(
            r.op,
            Op::Cas {
                key: "x".into(),
                from: json!(4),
                to: json!(6)
            }
        );
        let r = Request::decode(br#"{"id":9,"op":"fenced_write","key":7,"value":[1],"token":3}"#)
            .expect("valid");
        assert_eq!(
            r.op,
            Op::FencedWrite {
                key: "7".into(),
                value: json!([1]),
                token: 3
            }
        );
        let r = Request::decode(br#"{"id":4,"op":"transfer-leader","to":2}"#).expect("valid");
        assert_eq!(r.op, Op::TransferLeader { to: 2, group: None });
        let r =
            Request::decode(br#"{"id":4,"op":"transfer-leader","to":2,"group":3}"#).expect("valid");
        assert_eq!(
            r.op,
            Op::TransferLeader {
                to: 2,
                group: Some(3)
            }
        );
        let r = Request::decode(br#"{"op":"auth","token":"s3cret"}"#).expect("valid");
        assert_eq!(r.id, None);
        let r = Request::decode(br#"{"id":5,"op":"filter","drop":[2,3]}"#).expect("valid");
        assert_eq!(
            r.op,
            Op::Filter {
                drop: vec![2, 3],
                delay_ms: 0,
                loss: 0.0
            }
        );
    }

    #[test]
    fn bad_requests_keep_their_id_when_it_can_be_read() {
        let e = Request::decode(br#"{"id":7,"op":"frobnicate"}"#).expect_err("unknown op");
        assert_eq!(e.id, Some(7));
        let e = Request::decode(br#"{"id":8,"op":"write","key":"x"}"#).expect_err("no value");
        assert_eq!(e.id, Some(8));
        let e = Request::decode(br#"{"id":8,"op":"add","key":"x","delta":"one"}"#)
            .expect_err("delta not a number");
        assert_eq!(e.id, Some(8));
        let e = Request::decode(br#"{"id":-1,"op":"read","key":"x"}"#).expect_err("negative id");
        assert_eq!(e.id, None);
        let e = Request::decode(br#"{"op":"read","key":"x"}"#).expect_err("no id");
        assert_eq!(e.id, None);
        assert!(Request::decode(b"[1,2]").is_err());
        assert!(Request::decode(b"{").is_err());
        assert!(Request::decode(br#"{"id":1,"op":"read","key":null}"#).is_err());
    }

    #[test]
    fn admin_ops_decode_and_bad_ones_are_refused() {
        let r = Request::decode(br#"{"id":1,"op":"groups"}"#).expect("valid");
        assert_eq!(r.op, Op::Groups);
        let r = Request::decode(br#"{"id":2,"op":"join-group","group":5}"#).expect("valid");
        assert_eq!(
            r.op,
            Op::JoinGroup {
                group: 5,
                term: None
            }
        );
        let r =
            Request::decode(br#"{"id":2,"op":"join-group","group":5,"term":9}"#).expect("valid");
        assert_eq!(
            r.op,
            Op::JoinGroup {
                group: 5,
                term: Some(9)
            }
        );
        let r = Request::decode(br#"{"id":3,"op":"change-membership","group":1,"voters":[3,1,2]}"#)
            .expect("valid");
        assert_eq!(
            r.op,
            Op::ChangeMembership {
                group: 1,
                voters: vec![3, 1, 2]
            }
        );
        let r = Request::decode(br#"{"id":4,"op":"set-members","members":[1,2]}"#).expect("valid");
        assert_eq!(
            r.op,
            Op::SetMembers {
                members: vec![1, 2]
            }
        );
        for bad in [
            &br#"{"id":5,"op":"join-group"}"#[..],
            br#"{"id":5,"op":"join-group","group":-1}"#,
            br#"{"id":5,"op":"join-group","group":1,"term":"x"}"#,
            br#"{"id":5,"op":"change-membership","group":1}"#,
            br#"{"id":5,"op":"change-membership","group":1,"voters":"1,2"}"#,
            br#"{"id":5,"op":"set-members","members":[1,"x"]}"#,
        ] {
            let e = Request::decode(bad).expect_err("refused");
            assert_eq!(e.id, Some(5), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn ops_route_by_key_or_lock_name() {
        assert_eq!(Op::Read { key: "k".into() }.routing_key(), Some("k"));
        let fenced = Op::FencedWrite {
            key: "f".into(),
            value: json!(1),
            token: 1,
        };
        assert_eq!(fenced.routing_key(), Some("f"));
        let renew = Op::Renew {
            lock: "L".into(),
            owner: "o".into(),
            token: 1,
            ttl_ms: 1,
        };
        assert_eq!(renew.routing_key(), Some("L"));
        assert_eq!(Op::Groups.routing_key(), None);
        assert_eq!(Op::Status.routing_key(), None);
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let ops = vec![
            Op::Read { key: "k".into() },
            Op::Add {
                key: "c".into(),
                delta: -3,
            },
            Op::Acquire {
                lock: "l".into(),
                owner: "o".into(),
                ttl_ms: 500,
            },
            Op::Status,
            Op::Groups,
            Op::JoinGroup {
                group: 3,
                term: Some(4),
            },
            Op::LeaveGroup { group: 3 },
            Op::ChangeMembership {
                group: 2,
                voters: vec![1, 2, 4],
            },
            Op::SetMembers {
                members: vec![1, 2, 3, 4],
            },
            Op::TransferLeader {
                to: 2,
                group: Some(1),
            },
            Op::Clock {
                offset_ms: -20,
                rate: 1.5,
            },
        ];
        for (i, op) in ops.into_iter().enumerate() {
            let r = Request {
                id: Some(i as u64),
                op,
            };
            let line = r.encode();
            assert_eq!(line.last(), Some(&b'\n'));
            let back = Request::decode(&line[..line.len() - 1]).expect("round trip");
            assert_eq!(back, r);
        }
    }

    proptest::proptest! {
        /// Fuzz: random bytes never panic the decoder.
        #[test]
        fn decode_never_panics_on_random_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = Request::decode(&bytes);
        }

        /// Fuzz: JSON-shaped garbage never panics the decoder either.
        #[test]
        fn decode_never_panics_on_jsonish_strings(s in r#"\{("(id|op|key|value|token|to|from|delta|ttl_ms|lock|owner|drop|loss|rate|group|voters|members|term)":(-?[0-9]{1,20}|"[a-z_\-]{0,12}"|null|true|\[[0-9,]{0,8}\]|\{\}),?){0,6}\}"#) {
            let _ = Request::decode(s.as_bytes());
        }
    }
}

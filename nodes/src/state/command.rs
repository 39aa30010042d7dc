//! Commands: what a log entry asks the state machine to do.
//!
//! Serialized to bytes (JSON) as the opaque payload of an entry. Decoding a
//! command from the log never panics: a payload that is not a command (a
//! bug, or a log written by another version) decodes to an error and is
//! applied as a no-op by the runtime.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::txn::MicroOp;

/// One replicated operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "c", rename_all = "snake_case")]
pub enum Command {
    Write {
        key: String,
        value: Value,
    },
    Cas {
        key: String,
        from: Value,
        to: Value,
    },
    Append {
        key: String,
        value: Value,
    },
    Add {
        key: String,
        delta: i64,
    },
    Acquire {
        lock: String,
        owner: String,
        ttl_ms: u64,
    },
    Renew {
        lock: String,
        owner: String,
        token: u64,
        ttl_ms: u64,
    },
    Release {
        lock: String,
        owner: String,
        token: u64,
    },
    FencedWrite {
        key: String,
        value: Value,
        token: u64,
    },
    /// Proposed by the leader when its lease timer for (`lock`, `token`,
    /// `renewals`) fires. Applied only if that lease is still the one held:
    /// a renew or release that committed first makes it a no-op.
    Expire {
        lock: String,
        token: u64,
        renewals: u64,
    },
    /// A transaction: its micro-ops run in order, atomically, in this one
    /// entry (see [`super::txn`]).
    Txn {
        mops: Vec<MicroOp>,
    },
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("commands always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_round_trip() {
        let cmds = vec![
            Command::Write {
                key: "k".into(),
                value: json!({"a":[1,2]}),
            },
            Command::Expire {
                lock: "l".into(),
                token: 4,
                renewals: 2,
            },
        ];
        for c in cmds {
            assert_eq!(Command::decode(&c.encode()).expect("decodes"), c);
        }
    }

    proptest::proptest! {
        /// Fuzz: entry payloads from the log never panic the decoder.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let _ = Command::decode(&bytes);
        }
    }
}

//! Registers: the simulator's state machine, one integer register per key
//! (write and compare-and-set go through the log; reads use ReadIndex).
//! Commands are JSON bytes, opaque to the consensus core.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A command in the log; `op_id` is unique per client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterCommand {
    pub op_id: u64,
    pub op: RegisterOp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegisterOp {
    Write { key: u64, value: u64 },
    Cas { key: u64, from: u64, to: u64 },
}

/// The result of applying a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Ok,
    /// A cas whose compare failed (changes nothing).
    CasMismatch,
}

impl RegisterCommand {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a register command always serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<RegisterCommand, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registers {
    values: BTreeMap<u64, u64>,
}

impl Registers {
    pub fn get(&self, key: u64) -> Option<u64> {
        self.values.get(&key).copied()
    }

    pub fn apply(&mut self, op: RegisterOp) -> Applied {
        match op {
            RegisterOp::Write { key, value } => {
                self.values.insert(key, value);
                Applied::Ok
            }
            RegisterOp::Cas { key, from, to } => {
                if self.values.get(&key) == Some(&from) {
                    self.values.insert(key, to);
                    Applied::Ok
                } else {
                    Applied::CasMismatch
                }
            }
        }
    }

    pub fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("registers always serialize")
    }

    pub fn restore(bytes: &[u8]) -> Result<Registers, serde_json::Error> {
        if bytes.is_empty() {
            return Ok(Registers::default());
        }
        serde_json::from_slice(bytes)
    }

    /// A digest for cross-node comparisons.
    pub fn digest(&self) -> u64 {
        let mut h = super::fnv::Fnv::new();
        for (k, v) in &self.values {
            h.u64(*k);
            h.u64(*v);
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_only_swaps_on_a_match() {
        let mut r = Registers::default();
        assert_eq!(
            r.apply(RegisterOp::Cas {
                key: 1,
                from: 0,
                to: 2
            }),
            Applied::CasMismatch,
            "absent is not 0"
        );
        r.apply(RegisterOp::Write { key: 1, value: 3 });
        assert_eq!(
            r.apply(RegisterOp::Cas {
                key: 1,
                from: 3,
                to: 4
            }),
            Applied::Ok
        );
        assert_eq!(r.get(1), Some(4));
    }

    #[test]
    fn snapshot_round_trips() {
        let mut r = Registers::default();
        r.apply(RegisterOp::Write { key: 2, value: 9 });
        let back = Registers::restore(&r.snapshot()).expect("own snapshot parses");
        assert_eq!(back, r);
        assert_eq!(back.digest(), r.digest());
        let cmd = RegisterCommand {
            op_id: 5,
            op: RegisterOp::Cas {
                key: 1,
                from: 2,
                to: 3,
            },
        };
        assert_eq!(RegisterCommand::decode(&cmd.encode()).expect("parses"), cmd);
    }
}

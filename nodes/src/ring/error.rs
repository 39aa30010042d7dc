//! Why a ring could not be built or changed.

use super::NodeId;

/// A ring operation that was refused; the ring is left as it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RingError {
    #[error("a ring needs at least one node")]
    NoNodes,
    #[error("vnodes must be between 1 and {max}, got {got}")]
    BadVnodes { got: u32, max: u32 },
    #[error("weight of node {node} must be a finite number in (0, {max}], got {got}")]
    BadWeight { node: NodeId, got: f64, max: f64 },
    #[error("node {0} is already on the ring")]
    DuplicateNode(NodeId),
    #[error("node {0} is not on the ring")]
    UnknownNode(NodeId),
    #[error("cannot remove node {0}: it is the last node of the ring")]
    LastNode(NodeId),
    #[error("the ring would have {got} points, more than the limit of {max}")]
    TooManyPoints { got: u64, max: u64 },
    #[error("epsilon must be a finite number > 0, got {0}")]
    BadEpsilon(f64),
    #[error("replication factor must be at least 1, got {0}")]
    BadReplication(usize),
    #[error("placements have different shard counts ({old} and {new}): resharding is not a move")]
    ShardCountMismatch { old: u32, new: u32 },
}

//! The node's own message filter: the admin `filter` op.
//!
//! Drops every peer message to or from the listed node ids, drops each
//! peer message with probability `loss` (on send and on receive), and
//! delays every outgoing peer message by `delay_ms`. The local mode of the
//! harness uses it to cut or slow links where it cannot use iptables or tc.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::consensus::NodeId;

/// The current filter settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FilterRules {
    pub drop: BTreeSet<NodeId>,
    pub delay_ms: u64,
    /// In [0, 1].
    pub loss: f64,
}

/// Shared, cheap to clone, updated by the admin op.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    rules: Arc<RwLock<FilterRules>>,
}

impl Filter {
    pub fn set(&self, rules: FilterRules) {
        let mut r = rules;
        r.loss = if r.loss.is_finite() {
            r.loss.clamp(0.0, 1.0)
        } else {
            0.0
        };
        *self.rules.write().expect("filter lock") = r;
    }

    pub fn rules(&self) -> FilterRules {
        self.rules.read().expect("filter lock").clone()
    }

    /// Whether a message to or from `peer` passes (consumes one random draw).
    pub fn passes(&self, peer: NodeId) -> bool {
        let r = self.rules.read().expect("filter lock");
        if r.drop.contains(&peer) {
            return false;
        }
        r.loss <= 0.0 || rand::random::<f64>() >= r.loss
    }

    /// Extra delay for outgoing peer messages.
    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.rules.read().expect("filter lock").delay_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_nodes_never_pass_and_loss_one_drops_everything() {
        let f = Filter::default();
        assert!(f.passes(NodeId(2)));
        f.set(FilterRules {
            drop: [NodeId(2)].into_iter().collect(),
            delay_ms: 5,
            loss: 0.0,
        });
        assert!(!f.passes(NodeId(2)));
        assert!(f.passes(NodeId(3)));
        assert_eq!(f.delay(), Duration::from_millis(5));
        f.set(FilterRules {
            loss: 7.0, // clamped to 1
            ..FilterRules::default()
        });
        assert!((0..100).all(|_| !f.passes(NodeId(3))));
        f.set(FilterRules {
            loss: f64::NAN,
            ..FilterRules::default()
        });
        assert!(f.passes(NodeId(3)), "NaN loss means no loss");
    }
}

//! The core controllers of the simulated cluster, in the order they run.

use super::world::Controller;

/// The core controllers (deployments, replicasets, pods and nodes, HPA, ...), in run order.
pub fn core() -> Vec<Box<dyn Controller>> {
    Vec::new()
}

//! The core controllers of the simulated cluster, in the order they run.
//!
//! One file per controller; [`model`] holds the pod behaviour model (the `sim.playbook.dev/*`
//! annotations: resource use, startup, run time, shutdown) that the kubelet, metrics and HPA
//! share, and that later controllers (MLOps platform, Chaos Mesh) write to.

pub mod crd;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod hpa;
mod hpa_calc;
pub mod job;
pub mod kubelet;
pub mod metrics;
pub mod model;
pub mod nodes;
pub mod reconcile;
pub mod replicaset;
pub mod scheduler;
pub mod statefulset;
pub(crate) mod util;

use super::world::Controller;
use reconcile::Reconciler;

/// The core controllers (deployments, replicasets, pods and nodes, HPA, ...), in run order.
pub fn core() -> Vec<Box<dyn Controller>> {
    vec![
        Box::new(nodes::Nodes::default()),
        Box::new(Reconciler::new(deployment::Deployments)),
        Box::new(Reconciler::new(replicaset::ReplicaSets)),
        Box::new(Reconciler::new(statefulset::StatefulSets)),
        Box::new(Reconciler::new(job::Jobs::default())),
        Box::new(scheduler::Scheduler::default()),
        Box::new(Reconciler::new(kubelet::Kubelet::default())),
        Box::new(Reconciler::new(endpoints::Endpoints)),
        Box::new(metrics::Metrics::default()),
        Box::new(Reconciler::new(hpa::Hpa::default())),
        Box::new(Reconciler::new(crd::CrdFinalizer)),
        Box::new(Reconciler::new(disruption::Disruption)),
    ]
}

#[cfg(test)]
mod tests;

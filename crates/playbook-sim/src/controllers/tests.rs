//! In-process tests of the core controllers: a `World` with [`super::core`], virtual time.

use std::sync::Arc;

use serde_json::{Value, json};

use super::util::{pod_ready, s};
pub(super) use crate::testkit::{
    advance_ms, advance_secs, apply, core_world, elapsed_secs, events, get, list, patch,
};
use crate::world::World;

mod jobs;
mod lag;
mod platform;
mod pods;
mod workloads;

/// An instant world (no controller lag) with the core controllers: these tests check
/// each controller's logic; `lag.rs` checks its timing.
pub(super) fn world(seed: u64) -> World {
    core_world(seed, false)
}

/// Pods whose name starts with `prefix`, not being deleted.
pub(super) fn pods(w: &World, prefix: &str) -> Vec<Arc<Value>> {
    list(w, "pods")
        .into_iter()
        .filter(|p| s(p, "/metadata/name").starts_with(prefix))
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .collect()
}

pub(super) fn ready_count(w: &World, prefix: &str) -> usize {
    pods(w, prefix).iter().filter(|p| pod_ready(p)).count()
}

pub(super) fn deployment(name: &str, replicas: i64, annotations: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                  "limits": {"cpu": "1", "memory": "256Mi"}}}]}}}})
}

#[test]
fn nodes_are_seeded() {
    let w = world(1);
    let nodes = list(&w, "nodes");
    assert_eq!(nodes.len(), 3);
    assert_eq!(s(&nodes[0], "/metadata/name"), "sim-worker-1");
    assert_eq!(s(&nodes[0], "/status/allocatable/cpu"), "8");
}

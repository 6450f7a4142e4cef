//! In-process tests of the core controllers: a `World` with [`super::core`], virtual time.

use std::sync::Arc;

use jiff::SignedDuration;
use serde_json::{Value, json};

use super::util::{pod_ready, s};
use crate::world::{World, virtual_epoch};

mod lag;
mod platform;
mod pods;
mod workloads;

pub(super) fn world(seed: u64) -> World {
    let mut w = World::new(seed, virtual_epoch());
    w.set_controller_lag(false);
    for c in super::core() {
        w.add_controller(c);
    }
    w.settle();
    w
}

pub(super) fn advance(w: &mut World, secs: f64) {
    advance_secs(w, secs);
}

pub(super) fn advance_secs(w: &mut World, secs: f64) {
    let t = w.now() + SignedDuration::from_secs_f64(secs);
    w.advance_to(t);
}

pub(super) fn advance_ms(w: &mut World, ms: i64) {
    let t = w.now() + SignedDuration::from_millis(ms);
    w.advance_to(t);
}

pub(super) fn elapsed(w: &World) -> f64 {
    w.now().duration_since(virtual_epoch()).as_secs_f64()
}

pub(super) fn apply(w: &mut World, obj: Value) -> Arc<Value> {
    let o = w.seed(obj).expect("create");
    w.settle();
    o
}

pub(super) fn get(w: &World, res: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
    let id = w.store().registry().lookup(res)?;
    w.store().get(id, ns, name).cloned()
}

pub(super) fn list(w: &World, res: &str) -> Vec<Arc<Value>> {
    let id = w.store().registry().lookup(res).expect("resource");
    w.store().list(
        id,
        None,
        &crate::LabelSelector::everything(),
        &crate::FieldSelector::default(),
    )
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

/// Events with `reason`, oldest first.
pub(super) fn events(w: &World, reason: &str) -> Vec<Arc<Value>> {
    let mut evs: Vec<Arc<Value>> = list(w, "events")
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .collect();
    evs.sort_by_key(|e| {
        s(e, "/metadata/resourceVersion")
            .parse::<u64>()
            .unwrap_or(0)
    });
    evs
}

pub(super) fn patch(w: &mut World, res: &str, ns: &str, name: &str, merge: Value) {
    let id = w.store().registry().lookup(res).expect("resource");
    let cur = w.store().get(id, ns, name).expect("exists").clone();
    let mut v = (*cur).clone();
    crate::patch::merge(&mut v, &merge);
    v["metadata"]["resourceVersion"] = json!("");
    w.store_mut()
        .update(id, ns, name, v, false)
        .expect("update");
    w.settle();
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

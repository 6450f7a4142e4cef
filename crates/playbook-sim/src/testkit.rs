//! The one helper module of the simulator's unit tests: worlds, time, and store access, each unit in its name.

use std::sync::Arc;

use jiff::SignedDuration;
use serde_json::{Value, json};

use crate::resources::ResourceName;
use crate::world::{World, virtual_epoch};

/// A world at [`virtual_epoch`] with the core controllers, settled. `lag`: controller lag
/// on (the default of a `Sim`) or off (an instant world).
pub(crate) fn core_world(seed: u64, lag: bool) -> World {
    let mut w = World::new(seed, virtual_epoch());
    w.set_controller_lag(lag);
    for c in crate::controllers::core() {
        w.add_controller(c);
    }
    w.settle();
    w
}

/// Moves virtual time forward by `secs` seconds.
pub(crate) fn advance_secs(w: &mut World, secs: f64) {
    let t = w.now() + SignedDuration::from_secs_f64(secs);
    w.advance_to(t);
}

/// Moves virtual time forward by `ms` milliseconds.
pub(crate) fn advance_ms(w: &mut World, ms: i64) {
    let t = w.now() + SignedDuration::from_millis(ms);
    w.advance_to(t);
}

/// Seconds of virtual time since [`virtual_epoch`].
pub(crate) fn elapsed_secs(w: &World) -> f64 {
    w.now().duration_since(virtual_epoch()).as_secs_f64()
}

/// Stores an object as is, then settles.
pub(crate) fn apply(w: &mut World, obj: Value) -> Arc<Value> {
    let o = w.seed(obj).expect("create");
    w.settle();
    o
}

/// One object, if it exists.
pub(crate) fn get(w: &World, res: impl ResourceName, ns: &str, name: &str) -> Option<Arc<Value>> {
    let id = w
        .store()
        .registry()
        .lookup(res.resource_key())
        .expect("known resource");
    w.store().get(id, ns, name).cloned()
}

/// Every object of a resource, in every namespace.
pub(crate) fn list(w: &World, res: impl ResourceName) -> Vec<Arc<Value>> {
    let id = w
        .store()
        .registry()
        .lookup(res.resource_key())
        .expect("known resource");
    w.store().list(
        id,
        None,
        &crate::LabelSelector::everything(),
        &crate::FieldSelector::default(),
    )
}

/// Applies a JSON merge patch to an object (as a client would: no resourceVersion), then
/// settles.
pub(crate) fn patch(w: &mut World, res: impl ResourceName, ns: &str, name: &str, merge: Value) {
    let id = w
        .store()
        .registry()
        .lookup(res.resource_key())
        .expect("known resource");
    let cur = w.store().get(id, ns, name).expect("exists").clone();
    let mut v = (*cur).clone();
    crate::patch::merge(&mut v, &merge);
    v["metadata"]["resourceVersion"] = json!("");
    w.store_mut()
        .update(id, ns, name, v, false)
        .expect("update");
    w.settle();
}

/// Events with `reason`, oldest first.
pub(crate) fn events(w: &World, reason: &str) -> Vec<Arc<Value>> {
    let mut evs: Vec<Arc<Value>> = list(w, "events")
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .collect();
    evs.sort_by_key(|e| {
        e.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    });
    evs
}

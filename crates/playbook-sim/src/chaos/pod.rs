//! PodChaos effects: pod-kill deletes the pod, pod-failure swaps its images for the pause image (`controllers/chaosimpl/podchaos/podfailure/impl.go`; the kubelet and the probes do the rest), container-kill asks the kubelet model to restart one container.

use serde_json::{Value, json};

use super::effects::{CONTAINER_KILL, PAUSE_IMAGE, pod_failure_image_key};
use super::kinds::{object_at, split_id};
use super::record::{INJECTED, NOT_INJECTED, Record};
use crate::store::{DeleteOptions, meta_str};
use crate::world::Ctx;
use playbook_model::chaosmesh::{PodChaosAction, PodChaosSpec};

fn spec(chaos: &Value) -> Result<PodChaosSpec, String> {
    serde_json::from_value(chaos.get("spec").cloned().unwrap_or(Value::Null))
        .map_err(|e| format!("invalid spec: {e}"))
}

fn get_pod(ctx: &Ctx<'_>, ns: &str, name: &str) -> Result<Value, String> {
    ctx.get("pods", ns, name)
        .map(|p| (*p).clone())
        .ok_or_else(|| format!("pods \"{name}\" not found"))
}

fn write_pod(ctx: &mut Ctx<'_>, mut pod: Value) -> Result<(), String> {
    pod["metadata"]["resourceVersion"] = json!("");
    ctx.update("pods", pod)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Injects a PodChaos record.
pub fn apply(ctx: &mut Ctx<'_>, chaos: &mut Value, rec: &Record) -> Result<&'static str, String> {
    let s = spec(chaos)?;
    let (ns, name, container) = split_id(&rec.id);
    match s.action {
        PodChaosAction::PodKill => {
            get_pod(ctx, ns, name)?;
            let opts = DeleteOptions {
                grace_period_seconds: Some(s.grace_period.unwrap_or(0)),
                ..Default::default()
            };
            ctx.delete_with("pods", ns, name, &opts)
                .map_err(|e| e.to_string())?;
        }
        PodChaosAction::PodFailure => {
            let mut pod = get_pod(ctx, ns, name)?;
            let chaos_name = meta_str(chaos, "name").to_string();
            let mut swaps = Vec::new();
            let have: Vec<String> = pod
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
                .map(|a| a.keys().cloned().collect())
                .unwrap_or_default();
            for (list, init) in [("containers", false), ("initContainers", true)] {
                if let Some(cs) = pod
                    .pointer_mut(&format!("/spec/{list}"))
                    .and_then(Value::as_array_mut)
                {
                    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                        let cname = c.get("name").and_then(Value::as_str).unwrap_or_default();
                        let key = pod_failure_image_key(&chaos_name, cname, init);
                        // Already swapped by this experiment: the recorded image stays.
                        if have.contains(&key) {
                            continue;
                        }
                        let image = c.get("image").cloned().unwrap_or(json!(""));
                        swaps.push((key, image));
                        c.insert("image".into(), json!(PAUSE_IMAGE));
                    }
                }
            }
            let ann = object_at(&mut pod, &["metadata", "annotations"]);
            for (key, image) in swaps {
                ann.insert(key, image);
            }
            write_pod(ctx, pod)?;
        }
        PodChaosAction::ContainerKill => {
            super::daemon::reach(ctx, ns, name)?;
            let mut pod = get_pod(ctx, ns, name)?;
            let c = container.unwrap_or_default();
            let at = ctx.now().to_string();
            let ann = object_at(&mut pod, &["metadata", "annotations"]);
            let prev = ann
                .get(CONTAINER_KILL)
                .and_then(Value::as_str)
                .unwrap_or("");
            let entry = format!("{c}@{at}");
            let same_instant =
                !prev.is_empty() && prev.split(',').all(|e| e.ends_with(&format!("@{at}")));
            let value = if same_instant {
                format!("{prev},{entry}")
            } else {
                entry
            };
            ann.insert(CONTAINER_KILL.into(), json!(value));
            write_pod(ctx, pod)?;
        }
    }
    Ok(INJECTED)
}

/// Recovers a PodChaos record (pod-kill and container-kill have nothing to undo).
pub fn recover(ctx: &mut Ctx<'_>, chaos: &mut Value, rec: &Record) -> Result<&'static str, String> {
    let s = spec(chaos)?;
    if s.action != PodChaosAction::PodFailure {
        return Ok(NOT_INJECTED);
    }
    let (ns, name, _) = split_id(&rec.id);
    let Some(pod) = ctx.get("pods", ns, name) else {
        return Ok(NOT_INJECTED);
    };
    let mut pod = (*pod).clone();
    let chaos_name = meta_str(chaos, "name").to_string();
    let mut ann = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (list, init) in [("containers", false), ("initContainers", true)] {
        if let Some(cs) = pod
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
        {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                let cname = c.get("name").and_then(Value::as_str).unwrap_or_default();
                let key = pod_failure_image_key(&chaos_name, cname, init);
                if let Some(image) = ann.remove(&key) {
                    c.insert("image".into(), image);
                }
            }
        }
    }
    *object_at(&mut pod, &["metadata", "annotations"]) = ann;
    write_pod(ctx, pod)?;
    Ok(NOT_INJECTED)
}

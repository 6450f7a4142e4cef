//! The StatefulSet controller: pods `<name>-0..N-1` with stable names, created in order and
//! removed from the highest ordinal (OrderedReady waits for each to be Running and Ready;
//! Parallel does not), rolling updates from the highest ordinal, and status.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::replicaset::pod_from_template;
use super::util::{
    Key, controller_of, deleting, i, key_of, pod_ready, pod_terminal, s, template_hash,
    write_status,
};
use crate::store::{DeleteOptions, EventKind};
use crate::world::{Controller, Ctx, Lag};

const SOURCE: &str = "statefulset-controller";
const REVISION: &str = "controller-revision-hash";

/// Keeps StatefulSets' pods. See the module doc.
#[derive(Default)]
pub struct StatefulSets;

fn sync(ctx: &mut Ctx<'_>, key: &Key) {
    let Some(sts) = ctx.get("statefulsets.apps", &key.0, &key.1) else {
        return;
    };
    if deleting(&sts) {
        return;
    }
    let replicas = i(&sts, "/spec/replicas").unwrap_or(1).max(0);
    let ordered = s(&sts, "/spec/podManagementPolicy") != "Parallel";
    let template = &sts["spec"]["template"];
    let update_rev = format!("{}-{}", key.1, template_hash(template));
    let uid = s(&sts, "/metadata/uid").to_string();
    let pods: Vec<Option<Arc<Value>>> = (0..replicas.max(count_existing(ctx, key, &uid)))
        .map(|n| {
            ctx.get("pods", &key.0, &format!("{}-{n}", key.1))
                .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid))
        })
        .collect();
    let healthy = |p: &Value| pod_ready(p) && !deleting(p);
    let mut acted = false;
    // Create missing ordinals (in order), replace failed ones.
    for (n, slot) in pods.iter().enumerate().take(replicas as usize) {
        match slot {
            Some(p) if pod_terminal(p) && !deleting(p) => {
                let name = s(p, "/metadata/name").to_string();
                let _ = ctx.delete("pods", &key.0, &name);
                acted = true;
            }
            Some(p) if ordered && !healthy(p) => {
                acted = true;
            }
            Some(_) => {}
            None => {
                let name = format!("{}-{n}", key.1);
                let mut pod = pod_from_template(&sts, template, &name);
                let labels = &mut pod["metadata"]["labels"];
                if !labels.is_object() {
                    *labels = json!({});
                }
                labels[REVISION] = json!(update_rev);
                labels["statefulset.kubernetes.io/pod-name"] = json!(name);
                labels["apps.kubernetes.io/pod-index"] = json!(n.to_string());
                pod["spec"]["hostname"] = json!(name);
                if let Some(svc) = sts["spec"]["serviceName"]
                    .as_str()
                    .filter(|x| !x.is_empty())
                {
                    pod["spec"]["subdomain"] = json!(svc);
                }
                if ctx.create("pods", pod).is_ok() {
                    ctx.record_event(
                        &sts,
                        "Normal",
                        "SuccessfulCreate",
                        &format!("create Pod {name} in StatefulSet {} successful", key.1),
                        SOURCE,
                    );
                }
                acted = true;
            }
        }
        if acted && ordered {
            break;
        }
    }
    // Scale down from the highest ordinal, one at a time when ordered.
    if !acted || !ordered {
        for p in pods.iter().skip(replicas as usize).rev().flatten() {
            if deleting(p) {
                if ordered {
                    acted = true;
                    break;
                }
                continue;
            }
            let name = s(p, "/metadata/name").to_string();
            let opts = DeleteOptions {
                grace_period_seconds: i(p, "/spec/terminationGracePeriodSeconds"),
                ..Default::default()
            };
            if ctx.delete_with("pods", &key.0, &name, &opts).is_ok() {
                ctx.record_event(
                    &sts,
                    "Normal",
                    "SuccessfulDelete",
                    &format!("delete Pod {name} in StatefulSet {} successful", key.1),
                    SOURCE,
                );
            }
            acted = true;
            if ordered {
                break;
            }
        }
    }
    // Rolling update: replace the highest ordinal not at the update revision, once all are ready.
    let rolling = s(&sts, "/spec/updateStrategy/type") != "OnDelete";
    let partition = i(&sts, "/spec/updateStrategy/rollingUpdate/partition")
        .unwrap_or(0)
        .max(0);
    let all_healthy = pods
        .iter()
        .take(replicas as usize)
        .all(|p| p.as_deref().is_some_and(healthy));
    if rolling && !acted && all_healthy {
        for (n, p) in pods.iter().enumerate().take(replicas as usize).rev() {
            let Some(p) = p else { continue };
            if (n as i64) < partition {
                break;
            }
            if s(p, &format!("/metadata/labels/{REVISION}")) != update_rev {
                let name = s(p, "/metadata/name").to_string();
                let opts = DeleteOptions {
                    grace_period_seconds: i(p, "/spec/terminationGracePeriodSeconds"),
                    ..Default::default()
                };
                if ctx.delete_with("pods", &key.0, &name, &opts).is_ok() {
                    ctx.record_event(
                        &sts,
                        "Normal",
                        "SuccessfulDelete",
                        &format!("delete Pod {name} in StatefulSet {} successful", key.1),
                        SOURCE,
                    );
                }
                break;
            }
        }
    }
    // Status.
    let live: Vec<Arc<Value>> = (0..replicas.max(pods.len() as i64))
        .filter_map(|n| ctx.get("pods", &key.0, &format!("{}-{n}", key.1)))
        .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid))
        .filter(|p| !deleting(p))
        .collect();
    let count = |f: &dyn Fn(&Value) -> bool| live.iter().filter(|p| f(p)).count();
    let ready = count(&|p| pod_ready(p));
    let updated = count(&|p| s(p, &format!("/metadata/labels/{REVISION}")) == update_rev);
    let old_current = s(&sts, "/status/currentRevision").to_string();
    let current_rev =
        if updated == live.len() && live.len() as i64 == replicas || old_current.is_empty() {
            update_rev.clone()
        } else {
            old_current
        };
    let current = count(&|p| s(p, &format!("/metadata/labels/{REVISION}")) == current_rev);
    let mut status = json!({
        "observedGeneration": i(&sts, "/metadata/generation").unwrap_or(0),
        "replicas": live.len(), "readyReplicas": ready, "currentReplicas": current,
        "updatedReplicas": updated, "availableReplicas": ready,
        "currentRevision": current_rev, "updateRevision": update_rev, "collisionCount": 0,
    });
    if let Some(m) = status.as_object_mut() {
        m.retain(|k, v| {
            k == "replicas" || k == "availableReplicas" || *v != json!(0) || k == "collisionCount"
        });
    }
    write_status(ctx, "statefulsets.apps", &sts, status);
}

fn count_existing(ctx: &Ctx<'_>, key: &Key, uid: &str) -> i64 {
    let prefix = format!("{}-", key.1);
    ctx.list("pods", Some(&key.0))
        .iter()
        .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid))
        .filter_map(|p| {
            s(p, "/metadata/name")
                .strip_prefix(&prefix)?
                .parse::<i64>()
                .ok()
        })
        .map(|n| n + 1)
        .max()
        .unwrap_or(0)
}

impl Controller for StatefulSets {
    fn name(&self) -> &'static str {
        "statefulset"
    }
    // pkg/controller/statefulset/stateful_set.go: informer handlers enqueue the owner.
    fn lag(&self) -> Lag {
        Lag::millis(10, 100)
    }
    fn watches(&self) -> &'static [&'static str] {
        &["statefulsets.apps", "pods"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let mut todo: BTreeSet<Key> = BTreeSet::new();
        if ctx.resync() {
            todo.extend(
                ctx.list("statefulsets.apps", None)
                    .iter()
                    .map(|s| key_of(s)),
            );
        }
        for e in ctx.changed("statefulsets.apps") {
            if e.kind != EventKind::Deleted {
                todo.insert((e.namespace.clone(), e.name.clone()));
            }
        }
        for e in ctx.changed("pods") {
            if let Some(("StatefulSet", n, _)) = controller_of(&e.object) {
                todo.insert((e.namespace.clone(), n.to_string()));
            }
        }
        for key in todo {
            sync(ctx, &key);
        }
    }
}

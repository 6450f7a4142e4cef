//! The ReplicaSet controller: keeps `spec.replicas` active pods (owned, labelled from the
//! template, named `<rs>-<5 chars>`), deletes the least valuable ones first, and reports status.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::reconcile::{Action, Reconcile};
use super::util::{
    Key, controller_of, controller_ref, deleting, i, pod_active, pod_available, pod_ready,
    random_suffix, ready_since, s, write_status,
};
use crate::resources::{Res, res};
use crate::selector::LabelSelector;
use crate::store::DeleteOptions;
use crate::world::{Ctx, Lag};

const SOURCE: &str = "replicaset-controller";

/// Creates a pod from a controller's pod template (labels, annotations, spec), owned by `owner`.
pub(crate) fn pod_from_template(owner: &Value, template: &Value, name: &str) -> Value {
    let ns = s(owner, "/metadata/namespace");
    let mut meta =
        json!({"name": name, "namespace": ns, "ownerReferences": [controller_ref(owner)]});
    for k in ["labels", "annotations"] {
        if let Some(m) = template
            .pointer(&format!("/metadata/{k}"))
            .filter(|m| m.is_object())
        {
            meta[k] = m.clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
           "spec": template.get("spec").cloned().unwrap_or_else(|| json!({}))})
}

/// Keeps ReplicaSets' pods. See the module doc.
#[derive(Default)]
pub struct ReplicaSets;

impl ReplicaSets {
    /// Creates `n` pods from the template (`<rs>-<5 chars>`); stops at the first failure.
    fn create_pods(ctx: &mut Ctx<'_>, rs: &Value, key: &Key, n: i64, pods: &mut Vec<Arc<Value>>) {
        let template = rs["spec"]["template"].clone();
        for _ in 0..n.min(500) {
            let name = loop {
                let n = format!("{}-{}", key.name, random_suffix(ctx.rng()));
                if ctx.get(res::PODS, &key.namespace, &n).is_none() {
                    break n;
                }
            };
            let mut pod = pod_from_template(rs, &template, &name);
            pod["metadata"]["generateName"] = json!(format!("{}-", key.name));
            match ctx.create(res::PODS, pod) {
                Ok(p) => {
                    let msg = format!("Created pod: {name}");
                    ctx.record_event(rs, "Normal", "SuccessfulCreate", &msg, SOURCE);
                    pods.push(p);
                }
                Err(e) => {
                    let msg = format!("Error creating: {}", e.message);
                    ctx.record_event(rs, "Warning", "FailedCreate", &msg, SOURCE);
                    break;
                }
            }
        }
    }

    /// Deletes the `n` least valuable pods (see `delete_rank`).
    fn delete_pods(ctx: &mut Ctx<'_>, rs: &Value, key: &Key, n: usize, pods: &mut Vec<Arc<Value>>) {
        pods.sort_by_key(|p| delete_rank(p));
        for p in pods.drain(..n) {
            let name = s(&p, "/metadata/name").to_string();
            let opts = DeleteOptions {
                grace_period_seconds: i(&p, "/spec/terminationGracePeriodSeconds"),
                ..Default::default()
            };
            if ctx
                .delete_with(res::PODS, &key.namespace, &name, &opts)
                .is_ok()
            {
                let msg = format!("Deleted pod: {name}");
                ctx.record_event(rs, "Normal", "SuccessfulDelete", &msg, SOURCE);
            }
        }
    }

    /// The status of `rs` over its active pods, and when a pod becomes available.
    fn status(rs: &Value, pods: &[Arc<Value>], now: Timestamp) -> (Value, Action) {
        let min_ready = i(rs, "/spec/minReadySeconds").unwrap_or(0);
        let tmpl_labels = LabelSelector::from_json(&json!({
            "matchLabels": rs.pointer("/spec/template/metadata/labels").cloned().unwrap_or_else(|| json!({}))
        }))
        .unwrap_or_default();
        let (mut ready, mut available, mut labelled) = (0, 0, 0);
        let mut next = Action::await_change();
        for p in pods {
            labelled += usize::from(tmpl_labels.matches(p));
            if pod_ready(p) {
                ready += 1;
                if pod_available(p, min_ready, now) {
                    available += 1;
                } else if let Some(t) = ready_since(p) {
                    next = next.min(Action::requeue_at(t + SignedDuration::from_secs(min_ready)));
                }
            }
        }
        let mut status = json!({
            "replicas": pods.len(), "fullyLabeledReplicas": labelled, "readyReplicas": ready,
            "availableReplicas": available, "observedGeneration": i(rs, "/metadata/generation").unwrap_or(0),
        });
        if let Some(m) = status.as_object_mut() {
            for k in ["readyReplicas", "availableReplicas", "fullyLabeledReplicas"] {
                if m.get(k) == Some(&json!(0)) {
                    m.remove(k);
                }
            }
        }
        if let Some(c) = rs.pointer("/status/conditions") {
            status["conditions"] = c.clone();
        }
        (status, next)
    }
}

impl Reconcile for ReplicaSets {
    const NAME: &'static str = "replicaset";
    const PRIMARY: Res = res::REPLICASETS;
    const KIND: &'static str = "ReplicaSet";
    const OWNS: &'static [Res] = &[res::PODS];
    const WATCHES: &'static [&'static str] = &["replicasets.apps", "pods"];

    // pkg/controller/replicaset/replica_set.go: informer handlers enqueue the owner; the
    // expectations gate a sync until its own creates and deletes are observed.
    fn lag(&self) -> Lag {
        Lag::millis(10, 80)
    }

    /// pkg/controller/replicaset/replica_set.go `syncReplicaSet`: gather its active pods,
    /// create or delete the difference (`manageReplicas`), write the status.
    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) -> Action {
        let Some(rs) = ctx.get(res::REPLICASETS, &key.namespace, &key.name) else {
            return Action::await_change();
        };
        let uid = s(&rs, "/metadata/uid").to_string();
        let mut pods: Vec<Arc<Value>> = ctx
            .owned_by(res::PODS, &rs)
            .into_iter()
            .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid))
            .filter(|p| pod_active(p))
            .collect();
        pods.sort_by(|a, b| s(a, "/metadata/name").cmp(s(b, "/metadata/name")));
        let want = i(&rs, "/spec/replicas").unwrap_or(1).max(0);
        let have = pods.len() as i64;
        if !deleting(&rs) && want > have {
            Self::create_pods(ctx, &rs, key, want - have, &mut pods);
        } else if !deleting(&rs) && want < have {
            Self::delete_pods(ctx, &rs, key, (have - want) as usize, &mut pods);
        }
        let (status, next) = Self::status(&rs, &pods, ctx.now());
        write_status(ctx, res::REPLICASETS, &rs, status);
        next
    }
}

/// Which pods a scale-down removes first (smallest first): unscheduled, pending, not ready,
/// ready for less time, more restarts, newer.
fn delete_rank(p: &Value) -> (u8, u8, u8, i64, i64, i64, String) {
    let unassigned = u8::from(!s(p, "/spec/nodeName").is_empty());
    let phase = match s(p, "/status/phase") {
        "Pending" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    let ready = u8::from(pod_ready(p));
    let since = ready_since(p).map_or(0, |t: Timestamp| -t.as_second());
    let restarts: i64 = p
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|c| c["restartCount"].as_i64()).sum())
        .unwrap_or(0);
    let created = s(p, "/metadata/creationTimestamp")
        .parse::<Timestamp>()
        .map_or(0, |t| -t.as_second());
    (
        unassigned,
        phase,
        ready,
        since,
        -restarts,
        created,
        s(p, "/metadata/name").to_string(),
    )
}

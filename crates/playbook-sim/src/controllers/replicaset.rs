//! The ReplicaSet controller: keeps `spec.replicas` active pods (owned, labelled from the
//! template, named `<rs>-<5 chars>`), deletes the least valuable ones first, and reports status.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use serde_json::{Value, json};

use super::util::{
    Due, Key, controller_of, controller_ref, deleting, i, key_of, pod_active, pod_available,
    pod_ready, random_suffix, ready_since, s, write_status,
};
use crate::selector::LabelSelector;
use crate::store::{DeleteOptions, EventKind};
use crate::world::{Controller, Ctx, Lag};

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
pub struct ReplicaSets {
    /// Pods by owning ReplicaSet (namespace, rs name) -> pod names.
    owned: HashMap<Key, BTreeSet<String>>,
    /// Pod -> its owning ReplicaSet name.
    owner_of: HashMap<Key, String>,
    due: Due,
}

impl ReplicaSets {
    fn index(&mut self, pod: &Value, present: bool) -> Option<Key> {
        let key = key_of(pod);
        let old = self.owner_of.remove(&key);
        if let Some(o) = &old
            && let Some(set) = self.owned.get_mut(&(key.0.clone(), o.clone()))
        {
            set.remove(&key.1);
        }
        let owner = match controller_of(pod) {
            Some(("ReplicaSet", n, _)) if present => n.to_string(),
            _ => return old.map(|o| (key.0, o)),
        };
        self.owned
            .entry((key.0.clone(), owner.clone()))
            .or_default()
            .insert(key.1.clone());
        self.owner_of.insert(key.clone(), owner.clone());
        Some((key.0, owner))
    }

    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) {
        let Some(rs) = ctx.get("replicasets.apps", &key.0, &key.1) else {
            return;
        };
        let now = ctx.now();
        let uid = s(&rs, "/metadata/uid").to_string();
        let names: Vec<String> = self
            .owned
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let mut pods: Vec<std::sync::Arc<Value>> = names
            .iter()
            .filter_map(|n| ctx.get("pods", &key.0, n))
            .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid))
            .collect();
        pods.retain(|p| pod_active(p));
        let want = i(&rs, "/spec/replicas").unwrap_or(1).max(0);
        let have = pods.len() as i64;
        if !deleting(&rs) && want > have {
            let template = rs["spec"]["template"].clone();
            for _ in 0..(want - have).min(500) {
                let name = loop {
                    let n = format!("{}-{}", key.1, random_suffix(ctx.rng()));
                    if ctx.get("pods", &key.0, &n).is_none() {
                        break n;
                    }
                };
                let mut pod = pod_from_template(&rs, &template, &name);
                pod["metadata"]["generateName"] = json!(format!("{}-", key.1));
                match ctx.create("pods", pod) {
                    Ok(p) => {
                        ctx.record_event(
                            &rs,
                            "Normal",
                            "SuccessfulCreate",
                            &format!("Created pod: {name}"),
                            SOURCE,
                        );
                        self.index(&p, true);
                        pods.push(p);
                    }
                    Err(e) => {
                        ctx.record_event(
                            &rs,
                            "Warning",
                            "FailedCreate",
                            &format!("Error creating: {}", e.message),
                            SOURCE,
                        );
                        break;
                    }
                }
            }
        } else if !deleting(&rs) && want < have {
            pods.sort_by_key(|p| delete_rank(p));
            let doomed: Vec<_> = pods.drain(..(have - want) as usize).collect();
            for p in doomed {
                let name = s(&p, "/metadata/name").to_string();
                let grace = i(&p, "/spec/terminationGracePeriodSeconds");
                let opts = DeleteOptions {
                    grace_period_seconds: grace,
                    ..Default::default()
                };
                if ctx.delete_with("pods", &key.0, &name, &opts).is_ok() {
                    ctx.record_event(
                        &rs,
                        "Normal",
                        "SuccessfulDelete",
                        &format!("Deleted pod: {name}"),
                        SOURCE,
                    );
                }
            }
        }
        // Status.
        let min_ready = i(&rs, "/spec/minReadySeconds").unwrap_or(0);
        let tmpl_labels = LabelSelector::from_json(&json!({
            "matchLabels": rs.pointer("/spec/template/metadata/labels").cloned().unwrap_or_else(|| json!({}))
        }))
        .unwrap_or_default();
        let mut ready = 0;
        let mut available = 0;
        let mut labelled = 0;
        for p in &pods {
            if tmpl_labels.matches(p) {
                labelled += 1;
            }
            if pod_ready(p) {
                ready += 1;
                if pod_available(p, min_ready, now) {
                    available += 1;
                } else if let Some(t) = ready_since(p) {
                    self.due.add(
                        ctx,
                        key.clone(),
                        t + jiff::SignedDuration::from_secs(min_ready),
                    );
                }
            }
        }
        let mut status = json!({
            "replicas": pods.len(), "fullyLabeledReplicas": labelled, "readyReplicas": ready,
            "availableReplicas": available, "observedGeneration": i(&rs, "/metadata/generation").unwrap_or(0),
        });
        let m = status.as_object_mut().expect("object");
        for k in ["readyReplicas", "availableReplicas", "fullyLabeledReplicas"] {
            if m.get(k) == Some(&json!(0)) {
                m.remove(k);
            }
        }
        if let Some(c) = rs.pointer("/status/conditions") {
            status["conditions"] = c.clone();
        }
        write_status(ctx, "replicasets.apps", &rs, status);
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

impl Controller for ReplicaSets {
    fn name(&self) -> &'static str {
        "replicaset"
    }
    // pkg/controller/replicaset/replica_set.go: informer handlers enqueue the owner; the
    // expectations gate a sync until its own creates and deletes are observed.
    fn lag(&self) -> Lag {
        Lag::millis(10, 80)
    }
    fn watches(&self) -> &'static [&'static str] {
        &["replicasets.apps", "pods"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let mut todo: BTreeSet<Key> = BTreeSet::new();
        if ctx.resync() {
            self.owned.clear();
            self.owner_of.clear();
            self.due.clear();
            for p in ctx.list("pods", None) {
                self.index(&p, true);
            }
            for rs in ctx.list("replicasets.apps", None) {
                todo.insert(key_of(&rs));
            }
        }
        let mut pod_changes: BTreeMap<u64, (bool, std::sync::Arc<Value>)> = BTreeMap::new();
        for e in ctx.changed("pods") {
            pod_changes.insert(e.rv, (e.kind != EventKind::Deleted, e.object.clone()));
        }
        for e in ctx.changed("replicasets.apps") {
            if e.kind != EventKind::Deleted {
                todo.insert((e.namespace.clone(), e.name.clone()));
            } else {
                self.owned.remove(&(e.namespace.clone(), e.name.clone()));
            }
        }
        for (present, p) in pod_changes.into_values() {
            if let Some(k) = self.index(&p, present) {
                todo.insert(k);
            }
        }
        todo.extend(self.due.take(ctx.now()));
        for key in todo {
            self.sync(ctx, &key);
        }
    }
}

//! The Deployment controller: one ReplicaSet per pod template (`<name>-<pod-template-hash>`),
//! RollingUpdate (maxSurge/maxUnavailable) and Recreate rollouts, revisions, history cleanup,
//! and the status and conditions `kubectl rollout status` reads.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::util::{
    Due, Key, condition, controller_of, controller_ref, deleting, i, int_or_percent, key_of,
    parse_ts, s, set_condition, template_hash, ts, write_status,
};
use crate::store::EventKind;
use crate::world::{Controller, Ctx, Lag};

const SOURCE: &str = "deployment-controller";
const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH: &str = "pod-template-hash";

/// One ReplicaSet as the rollout sees it.
struct Rs {
    obj: Arc<Value>,
    name: String,
    replicas: i64,
    available: i64,
    ready: i64,
    actual: i64,
}

impl Rs {
    fn new(obj: Arc<Value>) -> Self {
        Rs {
            name: s(&obj, "/metadata/name").to_string(),
            replicas: i(&obj, "/spec/replicas").unwrap_or(0),
            available: i(&obj, "/status/availableReplicas").unwrap_or(0),
            ready: i(&obj, "/status/readyReplicas").unwrap_or(0),
            actual: i(&obj, "/status/replicas").unwrap_or(0),
            obj,
        }
    }
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove(HASH);
    }
    t
}

fn revision(rs: &Value) -> i64 {
    s(
        rs,
        &format!("/metadata/annotations/{}", REVISION.replace('/', "~1")),
    )
    .parse()
    .unwrap_or(0)
}

/// Rolls Deployments out. See the module doc.
#[derive(Default)]
pub struct Deployments {
    due: Due,
}

struct Rollout<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    deploy: Arc<Value>,
    progressed: bool,
}

impl Rollout<'_, '_> {
    fn scale(&mut self, rs: &mut Rs, to: i64, max_surge: i64) {
        if rs.replicas == to {
            return;
        }
        let desired = i(&self.deploy, "/spec/replicas").unwrap_or(1);
        let patch = json!({"metadata": {"annotations": {
            "deployment.kubernetes.io/desired-replicas": desired.to_string(),
            "deployment.kubernetes.io/max-replicas": (desired + max_surge).to_string()}},
            "spec": {"replicas": to}});
        let (ns, _) = key_of(&rs.obj);
        if let Ok(o) = self.ctx.patch("replicasets.apps", &ns, &rs.name, &patch) {
            let dir = if to > rs.replicas { "up" } else { "down" };
            let msg = format!(
                "Scaled {dir} replica set {} from {} to {to}",
                rs.name, rs.replicas
            );
            let d = self.deploy.clone();
            self.ctx
                .record_event(&d, "Normal", "ScalingReplicaSet", &msg, SOURCE);
            rs.replicas = to;
            rs.obj = o;
            self.progressed = true;
        }
    }
}

impl Deployments {
    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) {
        let Some(d) = ctx.get("deployments.apps", &key.0, &key.1) else {
            return;
        };
        if deleting(&d) {
            return;
        }
        let now = ctx.now();
        let uid = s(&d, "/metadata/uid").to_string();
        let mut rss: Vec<Rs> = ctx
            .list("replicasets.apps", Some(&key.0))
            .into_iter()
            .filter(|r| controller_of(r).is_some_and(|(_, _, u)| u == uid))
            .filter(|r| !deleting(r))
            .map(Rs::new)
            .collect();
        rss.sort_by(|a, b| {
            let ca = s(&a.obj, "/metadata/creationTimestamp");
            let cb = s(&b.obj, "/metadata/creationTimestamp");
            (ca, &a.name).cmp(&(cb, &b.name))
        });
        let template = d["spec"]["template"].clone();
        let replicas = i(&d, "/spec/replicas").unwrap_or(1).max(0);
        let rolling = s(&d, "/spec/strategy/type") != "Recreate";
        let ru = &d["spec"]["strategy"]["rollingUpdate"];
        let (max_surge, max_unavailable) = if rolling {
            let surge = int_or_percent(ru.get("maxSurge"), replicas, true, (replicas + 3) / 4);
            let unav = int_or_percent(ru.get("maxUnavailable"), replicas, false, replicas / 4);
            if surge == 0 && unav == 0 {
                (0, 1)
            } else {
                (surge, unav)
            }
        } else {
            (0, 0)
        };
        let bare = without_hash(&template);
        let mut new_idx = rss
            .iter()
            .position(|r| without_hash(&r.obj["spec"]["template"]) == bare);
        let max_rev = rss.iter().map(|r| revision(&r.obj)).max().unwrap_or(0);
        let mut created = None;
        let paused = d["spec"]["paused"] == true;
        let mut ro = Rollout {
            ctx,
            deploy: d.clone(),
            progressed: false,
        };
        if new_idx.is_none() && !paused {
            let hash = template_hash(&template);
            let name = format!("{}-{hash}", key.1);
            let total: i64 = rss.iter().map(|r| r.replicas).sum();
            let initial = if rolling {
                (replicas + max_surge - total).clamp(0, replicas)
            } else if rss.iter().any(|r| r.replicas > 0 || r.actual > 0) {
                0
            } else {
                replicas
            };
            let mut t = template.clone();
            t["metadata"]["labels"][HASH] = json!(hash);
            let mut sel = d["spec"]["selector"].clone();
            sel["matchLabels"][HASH] = json!(hash);
            let mut labels = t["metadata"]["labels"].clone();
            if !labels.is_object() {
                labels = json!({HASH: hash});
            }
            let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": name, "namespace": key.0, "labels": labels,
                    "annotations": {REVISION: (max_rev + 1).to_string(),
                        "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                        "deployment.kubernetes.io/max-replicas": (replicas + max_surge).to_string()},
                    "ownerReferences": [controller_ref(&d)]},
                "spec": {"replicas": initial, "minReadySeconds": i(&d, "/spec/minReadySeconds").unwrap_or(0),
                    "selector": sel, "template": t}});
            match ro.ctx.create("replicasets.apps", rs) {
                Ok(o) => {
                    if initial > 0 {
                        ro.ctx.record_event(
                            &d,
                            "Normal",
                            "ScalingReplicaSet",
                            &format!("Scaled up replica set {name} from 0 to {initial}"),
                            SOURCE,
                        );
                    }
                    rss.push(Rs::new(o));
                    new_idx = Some(rss.len() - 1);
                    created = Some(name);
                    ro.progressed = true;
                }
                Err(_) => return,
            }
        } else if let Some(ni) = new_idx
            && revision(&rss[ni].obj) < max_rev
            && !paused
        {
            // Rolled back to an older template: it becomes the newest revision.
            let patch = json!({"metadata": {"annotations": {REVISION: (max_rev + 1).to_string()}}});
            if let Ok(o) = ro
                .ctx
                .patch("replicasets.apps", &key.0, &rss[ni].name, &patch)
            {
                rss[ni].obj = o;
            }
        }
        if let Some(ni) = new_idx
            && !paused
        {
            let mut new = std::mem::replace(&mut rss[ni], Rs::new(Arc::new(Value::Null)));
            let mut olds: Vec<&mut Rs> = rss
                .iter_mut()
                .enumerate()
                .filter(|(k, _)| *k != ni)
                .map(|(_, r)| r)
                .collect();
            if rolling {
                // Scale up the new ReplicaSet within maxSurge.
                let all: i64 = olds.iter().map(|r| r.replicas).sum::<i64>() + new.replicas;
                if new.replicas > replicas {
                    ro.scale(&mut new, replicas, max_surge);
                } else if new.replicas < replicas {
                    let room = replicas + max_surge - all;
                    if room > 0 {
                        let to = new.replicas + room.min(replicas - new.replicas);
                        ro.scale(&mut new, to, max_surge);
                    }
                }
                // Scale down old ReplicaSets within maxUnavailable.
                let old_total: i64 = olds.iter().map(|r| r.replicas).sum();
                if old_total > 0 {
                    let all: i64 = old_total + new.replicas;
                    let min_available = replicas - max_unavailable;
                    let new_unavailable = (new.replicas - new.available).max(0);
                    let mut budget = all - min_available - new_unavailable;
                    for r in olds.iter_mut() {
                        if budget <= 0 {
                            break;
                        }
                        let unhealthy = (r.replicas - r.available).max(0);
                        if unhealthy == 0 {
                            continue;
                        }
                        let cut = unhealthy.min(budget);
                        ro.scale(r, r.replicas - cut, max_surge);
                        budget -= cut;
                    }
                    let available: i64 = olds
                        .iter()
                        .map(|r| r.available.min(r.replicas))
                        .sum::<i64>()
                        + new.available;
                    let mut total = available - min_available;
                    for r in olds.iter_mut() {
                        if total <= 0 {
                            break;
                        }
                        if r.replicas == 0 {
                            continue;
                        }
                        let cut = r.replicas.min(total);
                        ro.scale(r, r.replicas - cut, max_surge);
                        total -= cut;
                    }
                }
            } else {
                for r in olds.iter_mut() {
                    ro.scale(r, 0, 0);
                }
                let old_running = olds.iter().any(|r| r.actual > 0);
                if !old_running {
                    ro.scale(&mut new, replicas, 0);
                }
            }
            rss[ni] = new;
        }
        let progressed = ro.progressed;
        // History: keep revisionHistoryLimit old, empty ReplicaSets.
        let limit = i(&d, "/spec/revisionHistoryLimit").unwrap_or(10).max(0) as usize;
        let empty_old: Vec<String> = rss
            .iter()
            .enumerate()
            .filter(|(k, r)| Some(*k) != new_idx && r.replicas == 0 && r.actual == 0)
            .map(|(_, r)| r.name.clone())
            .collect();
        if empty_old.len() > limit {
            for name in &empty_old[..empty_old.len() - limit] {
                let _ = ctx.delete("replicasets.apps", &key.0, name);
            }
        }
        // Status.
        let new = new_idx.map(|k| &rss[k]);
        let new_name = new.map(|r| r.name.clone()).unwrap_or_default();
        let total_spec: i64 = rss.iter().map(|r| r.replicas).sum();
        let available: i64 = rss.iter().map(|r| r.available).sum();
        let actual: i64 = rss.iter().map(|r| r.actual).sum();
        let ready: i64 = rss.iter().map(|r| r.ready).sum();
        let updated = new.map_or(0, |r| r.actual);
        let old_status = &d["status"];
        let mut status = json!({
            "observedGeneration": i(&d, "/metadata/generation").unwrap_or(0),
            "replicas": actual, "updatedReplicas": updated, "readyReplicas": ready,
            "availableReplicas": available, "unavailableReplicas": (total_spec - available).max(0),
        });
        if let Some(m) = status.as_object_mut() {
            m.retain(|k, v| k == "observedGeneration" || *v != json!(0));
        }
        if let Some(c) = old_status.get("collisionCount") {
            status["collisionCount"] = c.clone();
        }
        let mut conds: Vec<Value> = old_status["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if available >= replicas - max_unavailable {
            set_condition(
                &mut conds,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
                true,
            );
        } else {
            set_condition(
                &mut conds,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
                true,
            );
        }
        let complete =
            updated == replicas && actual == replicas && available >= replicas && new.is_some();
        let old_field = |k: &str| old_status.get(k).and_then(Value::as_i64).unwrap_or(0);
        let moved = progressed
            || updated > old_field("updatedReplicas")
            || ready > old_field("readyReplicas")
            || available > old_field("availableReplicas")
            || actual - updated < old_field("replicas") - old_field("updatedReplicas");
        let deadline = i(&d, "/spec/progressDeadlineSeconds");
        if let Some(name) = &created {
            set_condition(
                &mut conds,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                &format!("Created new replica set \"{name}\""),
                now,
                true,
            );
        } else if paused {
            set_condition(
                &mut conds,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                now,
                true,
            );
        } else if complete {
            set_condition(
                &mut conds,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
                now,
                true,
            );
        } else if moved || condition(&d, "Progressing").is_none() {
            set_condition(
                &mut conds,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{new_name}\" is progressing."),
                now,
                true,
            );
            if let Some(c) = conds.iter_mut().find(|c| c["type"] == "Progressing") {
                c["lastUpdateTime"] = json!(ts(now));
            }
        } else if let Some(secs) = deadline {
            let last = condition(&d, "Progressing")
                .filter(|c| c["reason"] != "ProgressDeadlineExceeded")
                .and_then(|c| parse_ts(&c["lastUpdateTime"]));
            if let Some(last) = last {
                let at: Timestamp = last + SignedDuration::from_secs(secs);
                if now >= at {
                    set_condition(
                        &mut conds,
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        &format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                        now,
                        true,
                    );
                    ctx.record_event(
                        &d,
                        "Warning",
                        "ProgressDeadlineExceeded",
                        &format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                        SOURCE,
                    );
                } else {
                    self.due.add(ctx, key.clone(), at);
                }
            }
        }
        conds.sort_by_key(|c| match c["type"].as_str() {
            Some("Available") => 0,
            Some("Progressing") => 1,
            _ => 2,
        });
        status["conditions"] = json!(conds);
        if let Some(r) = new {
            let rev = revision(&r.obj).to_string();
            let path = format!("/metadata/annotations/{}", REVISION.replace('/', "~1"));
            if s(&d, &path) != rev {
                let _ = ctx.patch(
                    "deployments.apps",
                    &key.0,
                    &key.1,
                    &json!({"metadata": {"annotations": {REVISION: rev}}}),
                );
            }
        }
        let cur = ctx.get("deployments.apps", &key.0, &key.1).unwrap_or(d);
        write_status(ctx, "deployments.apps", &cur, status);
    }
}

impl Controller for Deployments {
    fn name(&self) -> &'static str {
        "deployment"
    }
    // pkg/controller/deployment/deployment_controller.go: informer handlers enqueue the
    // Deployment (addReplicaSet/updatePod resolve the owner), a worker syncs it.
    fn lag(&self) -> Lag {
        Lag::millis(10, 100)
    }
    fn watches(&self) -> &'static [&'static str] {
        &["deployments.apps", "replicasets.apps"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let mut todo: BTreeSet<Key> = BTreeSet::new();
        if ctx.resync() {
            self.due.clear();
            todo.extend(ctx.list("deployments.apps", None).iter().map(|d| key_of(d)));
        }
        for e in ctx.changed("deployments.apps") {
            if e.kind != EventKind::Deleted {
                todo.insert((e.namespace.clone(), e.name.clone()));
            }
        }
        for e in ctx.changed("replicasets.apps") {
            if let Some(("Deployment", n, _)) = controller_of(&e.object) {
                todo.insert((e.namespace.clone(), n.to_string()));
            }
        }
        todo.extend(self.due.take(ctx.now()));
        for key in todo {
            self.sync(ctx, &key);
        }
    }
}

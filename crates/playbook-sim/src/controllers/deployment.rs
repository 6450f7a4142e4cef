//! The Deployment controller: one ReplicaSet per pod template (`<name>-<pod-template-hash>`),
//! RollingUpdate (maxSurge/maxUnavailable) and Recreate rollouts, revisions, history cleanup,
//! and the status and conditions `kubectl rollout status` reads.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::reconcile::{Action, Reconcile};
use super::util::{
    Key, condition, controller_of, controller_ref, deleting, i, int_or_percent, key_of, parse_ts,
    s, set_condition, template_hash, ts, write_status,
};
use crate::resources::{Res, res};
use crate::world::{Ctx, Lag};

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
pub struct Deployments;

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
        let ns = key_of(&rs.obj).namespace;
        if let Ok(o) = self.ctx.patch(res::REPLICASETS, &ns, &rs.name, &patch) {
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

/// What a sync of one Deployment reads (pkg/controller/deployment/deployment_controller.go
/// `syncDeployment`: the Deployment and the ReplicaSets it controls, oldest first).
struct Seen {
    d: Arc<Value>,
    key: Key,
    rss: Vec<Rs>,
    replicas: i64,
    rolling: bool,
    max_surge: i64,
    max_unavailable: i64,
    paused: bool,
}

impl Seen {
    fn gather(ctx: &Ctx<'_>, key: &Key) -> Option<Seen> {
        let d = ctx.get(res::DEPLOYMENTS, &key.namespace, &key.name)?;
        if deleting(&d) {
            return None;
        }
        let uid = s(&d, "/metadata/uid").to_string();
        let mut rss: Vec<Rs> = ctx
            .owned_by(res::REPLICASETS, &d)
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
        let replicas = i(&d, "/spec/replicas").unwrap_or(1).max(0);
        let rolling = s(&d, "/spec/strategy/type") != "Recreate";
        // pkg/controller/deployment/util/deployment_util.go `ResolveFenceposts`.
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
        let paused = d["spec"]["paused"] == true;
        Some(Seen {
            key: key.clone(),
            rss,
            replicas,
            rolling,
            max_surge,
            max_unavailable,
            paused,
            d,
        })
    }
}

impl Rollout<'_, '_> {
    /// The new ReplicaSet (template without the hash equal to the Deployment's), created if
    /// missing (sync.go `getNewReplicaSet`); a rolled-back one gets the newest revision.
    /// Returns its index and, when it was created now, its name; None when creating failed.
    fn new_rs(&mut self, seen: &mut Seen) -> Option<(Option<usize>, Option<String>)> {
        let template = seen.d["spec"]["template"].clone();
        let bare = without_hash(&template);
        let found = seen
            .rss
            .iter()
            .position(|r| without_hash(&r.obj["spec"]["template"]) == bare);
        let max_rev = seen.rss.iter().map(|r| revision(&r.obj)).max().unwrap_or(0);
        if seen.paused {
            return Some((found, None));
        }
        if let Some(ni) = found {
            if revision(&seen.rss[ni].obj) < max_rev {
                let patch =
                    json!({"metadata": {"annotations": {REVISION: (max_rev + 1).to_string()}}});
                let ns = seen.key.namespace.clone();
                if let Ok(o) = self
                    .ctx
                    .patch(res::REPLICASETS, &ns, &seen.rss[ni].name, &patch)
                {
                    seen.rss[ni].obj = o;
                }
            }
            return Some((found, None));
        }
        let hash = template_hash(&template);
        let name = format!("{}-{hash}", seen.key.name);
        let total: i64 = seen.rss.iter().map(|r| r.replicas).sum();
        let (replicas, max_surge) = (seen.replicas, seen.max_surge);
        let initial = if seen.rolling {
            (replicas + max_surge - total).clamp(0, replicas)
        } else if seen.rss.iter().any(|r| r.replicas > 0 || r.actual > 0) {
            0
        } else {
            replicas
        };
        let mut t = template;
        t["metadata"]["labels"][HASH] = json!(hash);
        let mut sel = seen.d["spec"]["selector"].clone();
        sel["matchLabels"][HASH] = json!(hash);
        let labels = t["metadata"]["labels"].clone();
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": seen.key.namespace, "labels": labels,
                "annotations": {REVISION: (max_rev + 1).to_string(),
                    "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                    "deployment.kubernetes.io/max-replicas": (replicas + max_surge).to_string()},
                "ownerReferences": [controller_ref(&seen.d)]},
            "spec": {"replicas": initial, "minReadySeconds": i(&seen.d, "/spec/minReadySeconds").unwrap_or(0),
                "selector": sel, "template": t}});
        let o = self.ctx.create(res::REPLICASETS, rs).ok()?;
        if initial > 0 {
            let msg = format!("Scaled up replica set {name} from 0 to {initial}");
            let d = self.deploy.clone();
            self.ctx
                .record_event(&d, "Normal", "ScalingReplicaSet", &msg, SOURCE);
        }
        seen.rss.push(Rs::new(o));
        self.progressed = true;
        Some((Some(seen.rss.len() - 1), Some(name)))
    }

    /// RollingUpdate (rolling.go `rolloutRolling`): scale the new ReplicaSet up within
    /// maxSurge (`reconcileNewReplicaSet`), then the old ones down within maxUnavailable,
    /// unhealthy replicas first (`reconcileOldReplicaSets`, `cleanupUnhealthyReplicas`).
    fn rolling(&mut self, seen: &Seen, new: &mut Rs, olds: &mut [&mut Rs]) {
        let (replicas, max_surge) = (seen.replicas, seen.max_surge);
        let all: i64 = olds.iter().map(|r| r.replicas).sum::<i64>() + new.replicas;
        if new.replicas > replicas {
            self.scale(new, replicas, max_surge);
        } else if new.replicas < replicas {
            let room = replicas + max_surge - all;
            if room > 0 {
                let to = new.replicas + room.min(replicas - new.replicas);
                self.scale(new, to, max_surge);
            }
        }
        let old_total: i64 = olds.iter().map(|r| r.replicas).sum();
        if old_total == 0 {
            return;
        }
        let all: i64 = old_total + new.replicas;
        let min_available = replicas - seen.max_unavailable;
        let new_unavailable = (new.replicas - new.available).max(0);
        let mut budget = all - min_available - new_unavailable;
        for r in olds.iter_mut() {
            let unhealthy = (r.replicas - r.available).max(0);
            if budget <= 0 {
                break;
            }
            if unhealthy > 0 {
                let cut = unhealthy.min(budget);
                self.scale(r, r.replicas - cut, max_surge);
                budget -= cut;
            }
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
            if r.replicas > 0 {
                let cut = r.replicas.min(total);
                self.scale(r, r.replicas - cut, max_surge);
                total -= cut;
            }
        }
    }

    /// Recreate (recreate.go `rolloutRecreate`): old ReplicaSets to 0, then the new one up
    /// once no old pod runs.
    fn recreate(&mut self, seen: &Seen, new: &mut Rs, olds: &mut [&mut Rs]) {
        for r in olds.iter_mut() {
            self.scale(r, 0, 0);
        }
        if !olds.iter().any(|r| r.actual > 0) {
            self.scale(new, seen.replicas, 0);
        }
    }
}

/// The Deployment's status over its ReplicaSets (sync.go `calculateStatus`), without the
/// Progressing condition.
fn base_status(seen: &Seen, new: Option<&Rs>, now: Timestamp) -> (Value, Vec<Value>) {
    let rss = &seen.rss;
    let total_spec: i64 = rss.iter().map(|r| r.replicas).sum();
    let available: i64 = rss.iter().map(|r| r.available).sum();
    let actual: i64 = rss.iter().map(|r| r.actual).sum();
    let ready: i64 = rss.iter().map(|r| r.ready).sum();
    let updated = new.map_or(0, |r| r.actual);
    let old_status = &seen.d["status"];
    let mut status = json!({
        "observedGeneration": i(&seen.d, "/metadata/generation").unwrap_or(0),
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
    if available >= seen.replicas - seen.max_unavailable {
        let msg = "Deployment has minimum availability.";
        set_condition(
            &mut conds,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            msg,
            now,
            true,
        );
    } else {
        let msg = "Deployment does not have minimum availability.";
        set_condition(
            &mut conds,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            msg,
            now,
            true,
        );
    }
    (status, conds)
}

/// The Progressing condition (progress.go `syncRolloutStatus`), and when the progress
/// deadline falls if it has not yet.
fn progressing(
    ctx: &mut Ctx<'_>,
    seen: &Seen,
    status: &Value,
    conds: &mut Vec<Value>,
    (created, progressed, new_name): (&Option<String>, bool, &str),
) -> Action {
    let now = ctx.now();
    let d = &seen.d;
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
    let (updated, actual) = (field(status, "updatedReplicas"), field(status, "replicas"));
    let available = field(status, "availableReplicas");
    let replicas = seen.replicas;
    let complete =
        updated == replicas && actual == replicas && available >= replicas && !new_name.is_empty();
    let old = &d["status"];
    let moved = progressed
        || updated > field(old, "updatedReplicas")
        || field(status, "readyReplicas") > field(old, "readyReplicas")
        || available > field(old, "availableReplicas")
        || actual - updated < field(old, "replicas") - field(old, "updatedReplicas");
    let mut set = |st: &str, reason: &str, msg: &str| {
        set_condition(conds, "Progressing", st, reason, msg, now, true)
    };
    if let Some(name) = created {
        set(
            "True",
            "NewReplicaSetCreated",
            &format!("Created new replica set \"{name}\""),
        );
    } else if seen.paused {
        set("Unknown", "DeploymentPaused", "Deployment is paused");
    } else if complete {
        set(
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
        );
    } else if moved || condition(d, "Progressing").is_none() {
        set(
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{new_name}\" is progressing."),
        );
        if let Some(c) = conds.iter_mut().find(|c| c["type"] == "Progressing") {
            c["lastUpdateTime"] = json!(ts(now));
        }
    } else if let Some(secs) = i(d, "/spec/progressDeadlineSeconds") {
        let last = condition(d, "Progressing")
            .filter(|c| c["reason"] != "ProgressDeadlineExceeded")
            .and_then(|c| parse_ts(&c["lastUpdateTime"]));
        if let Some(last) = last {
            let at: Timestamp = last + SignedDuration::from_secs(secs);
            if now < at {
                return Action::requeue_at(at);
            }
            let msg = format!("ReplicaSet \"{new_name}\" has timed out progressing.");
            set("False", "ProgressDeadlineExceeded", &msg);
            ctx.record_event(d, "Warning", "ProgressDeadlineExceeded", &msg, SOURCE);
        }
    }
    Action::await_change()
}

impl Deployments {
    /// Deletes old, empty ReplicaSets beyond `revisionHistoryLimit` (sync.go `cleanupDeployment`).
    fn cleanup(ctx: &mut Ctx<'_>, seen: &Seen, new_idx: Option<usize>) {
        let limit = i(&seen.d, "/spec/revisionHistoryLimit")
            .unwrap_or(10)
            .max(0) as usize;
        let empty_old: Vec<String> = seen
            .rss
            .iter()
            .enumerate()
            .filter(|(k, r)| Some(*k) != new_idx && r.replicas == 0 && r.actual == 0)
            .map(|(_, r)| r.name.clone())
            .collect();
        if empty_old.len() > limit {
            for name in &empty_old[..empty_old.len() - limit] {
                let _ = ctx.delete(res::REPLICASETS, &seen.key.namespace, name);
            }
        }
    }

    /// Write: the revision annotation of the new ReplicaSet, then the status.
    fn write(ctx: &mut Ctx<'_>, seen: &Seen, new: Option<&Rs>, status: Value) {
        let key = &seen.key;
        if let Some(r) = new {
            let rev = revision(&r.obj).to_string();
            let path = format!("/metadata/annotations/{}", REVISION.replace('/', "~1"));
            if s(&seen.d, &path) != rev {
                let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
                let _ = ctx.patch(res::DEPLOYMENTS, &key.namespace, &key.name, &patch);
            }
        }
        let cur = ctx
            .get(res::DEPLOYMENTS, &key.namespace, &key.name)
            .unwrap_or_else(|| seen.d.clone());
        write_status(ctx, res::DEPLOYMENTS, &cur, status);
    }
}

impl Reconcile for Deployments {
    const NAME: &'static str = "deployment";
    const PRIMARY: Res = res::DEPLOYMENTS;
    const KIND: &'static str = "Deployment";
    const OWNS: &'static [Res] = &[res::REPLICASETS];
    const WATCHES: &'static [&'static str] = &["deployments.apps", "replicasets.apps"];

    // pkg/controller/deployment/deployment_controller.go: informer handlers enqueue the
    // Deployment (addReplicaSet/updateReplicaSet resolve the owner), a worker syncs it.
    fn lag(&self) -> Lag {
        Lag::millis(10, 100)
    }

    /// deployment_controller.go `syncDeployment`: gather, roll out (decide and scale),
    /// clean up history, write the status.
    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) -> Action {
        let Some(mut seen) = Seen::gather(ctx, key) else {
            return Action::await_change();
        };
        let mut ro = Rollout {
            ctx,
            deploy: seen.d.clone(),
            progressed: false,
        };
        let Some((new_idx, created)) = ro.new_rs(&mut seen) else {
            return Action::await_change();
        };
        if let Some(ni) = new_idx
            && !seen.paused
        {
            let mut new = std::mem::replace(&mut seen.rss[ni], Rs::new(Arc::new(Value::Null)));
            let mut rss = std::mem::take(&mut seen.rss);
            let mut olds: Vec<&mut Rs> = rss
                .iter_mut()
                .enumerate()
                .filter(|(k, _)| *k != ni)
                .map(|(_, r)| r)
                .collect();
            if seen.rolling {
                ro.rolling(&seen, &mut new, &mut olds);
            } else {
                ro.recreate(&seen, &mut new, &mut olds);
            }
            rss[ni] = new;
            seen.rss = rss;
        }
        let progressed = ro.progressed;
        Self::cleanup(ctx, &seen, new_idx);
        let new = new_idx.map(|k| &seen.rss[k]);
        let new_name = new.map(|r| r.name.clone()).unwrap_or_default();
        let (mut status, mut conds) = base_status(&seen, new, ctx.now());
        let next = progressing(
            ctx,
            &seen,
            &status,
            &mut conds,
            (&created, progressed, &new_name),
        );
        conds.sort_by_key(|c| match c["type"].as_str() {
            Some("Available") => 0,
            Some("Progressing") => 1,
            _ => 2,
        });
        status["conditions"] = json!(conds);
        Self::write(ctx, &seen, new_idx.map(|k| &seen.rss[k]), status);
        next
    }
}

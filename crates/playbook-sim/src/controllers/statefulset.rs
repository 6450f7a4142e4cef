//! The StatefulSet controller: pods `<name>-0..N-1` with stable names, created in order and
//! removed from the highest ordinal (OrderedReady waits for each to be Running and Ready;
//! Parallel does not), rolling updates from the highest ordinal, and status
//! (pkg/controller/statefulset/stateful_set_control.go `updateStatefulSet`).
//!
//! A pod deleted by anyone (pod-kill, a rolling update, a scale-down then up) is created again
//! under its ordinal's name; the scheduler and the kubelet run it as the new pod it is.

use std::sync::Arc;

use serde_json::{Value, json};

use super::reconcile::{Action, Reconcile};
use super::replicaset::pod_from_template;
use super::util::{
    Key, controller_of, deleting, i, pod_ready, pod_terminal, s, template_hash, write_status,
};
use crate::resources::{Res, res};
use crate::store::DeleteOptions;
use crate::world::{Ctx, Lag};

const SOURCE: &str = "statefulset-controller";
const REVISION: &str = "controller-revision-hash";

/// Keeps StatefulSets' pods. See the module doc.
#[derive(Default)]
pub struct StatefulSets;

/// What one sync reads: the set, its pods by ordinal (None: missing) up to the highest
/// existing or wanted one.
struct Seen {
    sts: Arc<Value>,
    key: Key,
    replicas: i64,
    ordered: bool,
    update_rev: String,
    pods: Vec<Option<Arc<Value>>>,
}

fn healthy(p: &Value) -> bool {
    pod_ready(p) && !deleting(p)
}

fn revision_of(p: &Value) -> &str {
    s(p, &format!("/metadata/labels/{REVISION}"))
}

impl Seen {
    fn gather(ctx: &Ctx<'_>, key: &Key) -> Option<Seen> {
        let sts = ctx.get(res::STATEFULSETS, &key.namespace, &key.name)?;
        if deleting(&sts) {
            return None;
        }
        let replicas = i(&sts, "/spec/replicas").unwrap_or(1).max(0);
        let ordered = s(&sts, "/spec/podManagementPolicy") != "Parallel";
        let update_rev = format!("{}-{}", key.name, template_hash(&sts["spec"]["template"]));
        let uid = s(&sts, "/metadata/uid").to_string();
        let prefix = format!("{}-", key.name);
        let owned: Vec<(usize, Arc<Value>)> = ctx
            .owned_by(res::PODS, &sts)
            .into_iter()
            .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid))
            .filter_map(|p| {
                let n = s(&p, "/metadata/name")
                    .strip_prefix(&prefix)?
                    .parse::<usize>()
                    .ok()?;
                Some((n, p))
            })
            .collect();
        let len = owned
            .iter()
            .map(|(n, _)| n + 1)
            .max()
            .unwrap_or(0)
            .max(replicas as usize);
        let mut pods = vec![None; len];
        for (n, p) in owned {
            pods[n] = Some(p);
        }
        Some(Seen {
            sts,
            key: key.clone(),
            replicas,
            ordered,
            update_rev,
            pods,
        })
    }

    fn event(&self, ctx: &mut Ctx<'_>, reason: &str, verb: &str, pod: &str) {
        let msg = format!(
            "{verb} Pod {pod} in StatefulSet {} successful",
            self.key.name
        );
        ctx.record_event(&self.sts, "Normal", reason, &msg, SOURCE);
    }

    fn delete_pod(&self, ctx: &mut Ctx<'_>, p: &Value) -> bool {
        let name = s(p, "/metadata/name").to_string();
        let opts = DeleteOptions {
            grace_period_seconds: i(p, "/spec/terminationGracePeriodSeconds"),
            ..Default::default()
        };
        let ok = ctx
            .delete_with(res::PODS, &self.key.namespace, &name, &opts)
            .is_ok();
        if ok {
            self.event(ctx, "SuccessfulDelete", "delete", &name);
        }
        ok
    }

    /// The pod of ordinal `n` from the template, with its stable identity.
    fn new_pod(&self, n: usize) -> Value {
        let name = format!("{}-{n}", self.key.name);
        let mut pod = pod_from_template(&self.sts, &self.sts["spec"]["template"], &name);
        let labels = &mut pod["metadata"]["labels"];
        if !labels.is_object() {
            *labels = json!({});
        }
        labels[REVISION] = json!(self.update_rev);
        labels["statefulset.kubernetes.io/pod-name"] = json!(name);
        labels["apps.kubernetes.io/pod-index"] = json!(n.to_string());
        pod["spec"]["hostname"] = json!(name);
        if let Some(svc) = self.sts["spec"]["serviceName"]
            .as_str()
            .filter(|x| !x.is_empty())
        {
            pod["spec"]["subdomain"] = json!(svc);
        }
        pod
    }

    /// Creates missing ordinals in order and deletes failed ones (to be created again);
    /// OrderedReady stops at the first pod that is not Running and Ready. True if it acted
    /// or waits.
    fn create_and_replace(&self, ctx: &mut Ctx<'_>) -> bool {
        let mut acted = false;
        for (n, slot) in self.pods.iter().enumerate().take(self.replicas as usize) {
            match slot {
                Some(p) if pod_terminal(p) && !deleting(p) => {
                    self.delete_pod(ctx, p);
                    acted = true;
                }
                Some(p) if self.ordered && !healthy(p) => acted = true,
                Some(_) => {}
                None => {
                    let pod = self.new_pod(n);
                    let name = s(&pod, "/metadata/name").to_string();
                    if ctx.create(res::PODS, pod).is_ok() {
                        self.event(ctx, "SuccessfulCreate", "create", &name);
                    }
                    acted = true;
                }
            }
            if acted && self.ordered {
                break;
            }
        }
        acted
    }

    /// Deletes pods beyond `replicas` from the highest ordinal, one at a time when ordered.
    fn scale_down(&self, ctx: &mut Ctx<'_>) -> bool {
        let mut acted = false;
        for p in self
            .pods
            .iter()
            .skip(self.replicas as usize)
            .rev()
            .flatten()
        {
            if deleting(p) {
                if self.ordered {
                    return true;
                }
                continue;
            }
            self.delete_pod(ctx, p);
            acted = true;
            if self.ordered {
                break;
            }
        }
        acted
    }

    /// RollingUpdate: once every pod is healthy, deletes the highest ordinal (at or above
    /// the partition) not at the update revision; it is created again at the new one.
    fn roll(&self, ctx: &mut Ctx<'_>) {
        if s(&self.sts, "/spec/updateStrategy/type") == "OnDelete" {
            return;
        }
        let partition = i(&self.sts, "/spec/updateStrategy/rollingUpdate/partition")
            .unwrap_or(0)
            .max(0);
        let wanted = &self.pods[..self.replicas as usize];
        if !wanted.iter().all(|p| p.as_deref().is_some_and(healthy)) {
            return;
        }
        for (n, p) in wanted.iter().enumerate().rev() {
            let Some(p) = p else { continue };
            if (n as i64) < partition {
                break;
            }
            if revision_of(p) != self.update_rev {
                self.delete_pod(ctx, p);
                break;
            }
        }
    }

    /// The status over the live pods (stateful_set_status_updater.go).
    fn status(&self, ctx: &Ctx<'_>) -> Value {
        let again = Seen::gather(ctx, &self.key);
        let live: Vec<&Arc<Value>> = again
            .as_ref()
            .map(|s| s.pods.iter().flatten().filter(|p| !deleting(p)).collect())
            .unwrap_or_default();
        let count = |f: &dyn Fn(&Value) -> bool| live.iter().filter(|p| f(p)).count();
        let ready = count(&|p| pod_ready(p));
        let updated = count(&|p| revision_of(p) == self.update_rev);
        let old_current = s(&self.sts, "/status/currentRevision").to_string();
        let all_updated = updated == live.len() && live.len() as i64 == self.replicas;
        let current_rev = if all_updated || old_current.is_empty() {
            self.update_rev.clone()
        } else {
            old_current
        };
        let current = count(&|p| revision_of(p) == current_rev);
        let mut status = json!({
            "observedGeneration": i(&self.sts, "/metadata/generation").unwrap_or(0),
            "replicas": live.len(), "readyReplicas": ready, "currentReplicas": current,
            "updatedReplicas": updated, "availableReplicas": ready,
            "currentRevision": current_rev, "updateRevision": self.update_rev, "collisionCount": 0,
        });
        if let Some(m) = status.as_object_mut() {
            m.retain(|k, v| {
                k == "replicas"
                    || k == "availableReplicas"
                    || *v != json!(0)
                    || k == "collisionCount"
            });
        }
        status
    }
}

impl Reconcile for StatefulSets {
    const NAME: &'static str = "statefulset";
    const PRIMARY: Res = res::STATEFULSETS;
    const KIND: &'static str = "StatefulSet";
    const OWNS: &'static [Res] = &[res::PODS];
    const WATCHES: &'static [&'static str] = &["statefulsets.apps", "pods"];

    // pkg/controller/statefulset/stateful_set.go: informer handlers enqueue the owner.
    fn lag(&self) -> Lag {
        Lag::millis(10, 100)
    }

    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) -> Action {
        let Some(seen) = Seen::gather(ctx, key) else {
            return Action::await_change();
        };
        let mut acted = seen.create_and_replace(ctx);
        if !acted || !seen.ordered {
            acted |= seen.scale_down(ctx);
        }
        if !acted {
            seen.roll(ctx);
        }
        let status = seen.status(ctx);
        write_status(ctx, res::STATEFULSETS, &seen.sts, status);
        Action::await_change()
    }
}

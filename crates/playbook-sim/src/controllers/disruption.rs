//! The disruption controller: the status of every PodDisruptionBudget (policy/v1) —
//! `currentHealthy`, `desiredHealthy`, `disruptionsAllowed`, `expectedPods`,
//! `observedGeneration`, `disruptedPods` and the `DisruptionAllowed` condition.
//!
//! Modelled on pkg/controller/disruption/disruption.go (`trySync`, `getExpectedPodCount`,
//! `countHealthyPods`, `buildDisruptedPodMap`, `updatePdbStatus`), Kubernetes v1.32:
//! - `minAvailable` as a number: expected = the selected pods, desired = minAvailable;
//!   `maxUnavailable` or a percentage `minAvailable`: expected = the scale of the pods'
//!   controllers (Deployment through its ReplicaSet, ReplicaSet, StatefulSet), desired =
//!   expected - maxUnavailable (percentages rounded up) or ceil(minAvailable% x expected).
//! - healthy = Ready, not being deleted, and not in `disruptedPods` (an eviction the API
//!   server granted that has not yet deleted the pod); an entry leaves `disruptedPods` when the
//!   pod is gone or being deleted, or after `DeletionTimeout` (2 min).
//! - `disruptionsAllowed = max(currentHealthy - desiredHealthy, 0)`; the condition is
//!   `DisruptionAllowed` True `SufficientPods` or False `InsufficientPods`.
//!
//! A `maxUnavailable` or percentage PDB over a pod without a known controller allows no
//! disruption (upstream's `NoControllers` failure, which also leaves 0 allowed).

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::reconcile::{Action, ObjectKey, Reconcile};
use super::util::{Key, controller_of, deleting, i, parse_ts, pod_ready, s, set_condition, ts};
use crate::resources::{Res, res};
use crate::selector::LabelSelector;
use crate::store::{Event, Store};
use crate::world::{Ctx, Lag};

/// `DeletionTimeout`: a granted disruption not followed by a deletion within it is dropped.
pub const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

/// The PDB status computer. See the module doc.
#[derive(Default)]
pub struct Disruption;

/// The PDB's label selector: in policy/v1 an empty selector selects every pod of the
/// namespace, an absent (or unparsable) one none (`metav1.LabelSelectorAsSelector(nil)`).
pub fn selector(pdb: &Value) -> Option<LabelSelector> {
    pdb.pointer("/spec/selector")
        .filter(|s| s.is_object())
        .and_then(|s| LabelSelector::from_json(s).ok())
}

fn selects(pdb: &Value, pod: &Value) -> bool {
    selector(pdb).is_some_and(|s| s.matches(pod))
}

/// The PDBs of the pod's namespace whose selector matches it (`getPdbsForPod`).
pub fn pdbs_for_pod(store: &Store, pod: &Value) -> Vec<std::sync::Arc<Value>> {
    let Some(id) = store.registry().lookup(res::PDBS.key()) else {
        return Vec::new();
    };
    let ns = s(pod, "/metadata/namespace");
    store
        .list(
            id,
            Some(ns),
            &LabelSelector::everything(),
            &Default::default(),
        )
        .into_iter()
        .filter(|p| selects(p, pod))
        .collect()
}

/// The scale of the controller that owns `pod` (`getExpectedScale`), keyed by the
/// controller's uid so that pods of one controller count it once.
fn controller_scale(ctx: &Ctx<'_>, pod: &Value) -> Option<(String, i64)> {
    let ns = s(pod, "/metadata/namespace");
    let (kind, name, uid) = controller_of(pod)?;
    match kind {
        "ReplicaSet" => {
            let rs = ctx.get(res::REPLICASETS, ns, name)?;
            if let Some((dk, dn, duid)) = controller_of(&rs)
                && dk == "Deployment"
            {
                let d = ctx.get(res::DEPLOYMENTS, ns, dn)?;
                return Some((duid.to_string(), i(&d, "/spec/replicas").unwrap_or(1)));
            }
            Some((uid.to_string(), i(&rs, "/spec/replicas").unwrap_or(1)))
        }
        "StatefulSet" => {
            let ss = ctx.get(res::STATEFULSETS, ns, name)?;
            Some((uid.to_string(), i(&ss, "/spec/replicas").unwrap_or(1)))
        }
        _ => None,
    }
}

/// A number or a percentage of `total` (`intstr.GetScaledValueFromIntOrPercent`).
fn scaled(v: &Value, total: i64, round_up: bool) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(t) => {
            let p: f64 = t.strip_suffix('%')?.parse().ok()?;
            let x = p * total as f64 / 100.0;
            Some(if round_up { x.ceil() } else { x.floor() } as i64)
        }
        _ => None,
    }
}

impl Disruption {
    /// (expectedCount, desiredHealthy), or None when the controllers' scale is unknown.
    fn expected(ctx: &Ctx<'_>, pdb: &Value, pods: &[std::sync::Arc<Value>]) -> Option<(i64, i64)> {
        let spec = &pdb["spec"];
        let by_scale = |ctx: &Ctx<'_>| -> Option<i64> {
            let mut seen = BTreeSet::new();
            let mut total = 0;
            for p in pods {
                let (uid, n) = controller_scale(ctx, p)?;
                if seen.insert(uid) {
                    total += n;
                }
            }
            Some(total)
        };
        if let Some(mu) = spec.get("maxUnavailable").filter(|v| !v.is_null()) {
            let expected = by_scale(ctx)?;
            let max = scaled(mu, expected, true)?;
            return Some((expected, (expected - max).max(0)));
        }
        match spec.get("minAvailable") {
            Some(Value::Number(n)) => Some((pods.len() as i64, n.as_i64().unwrap_or(0))),
            Some(v @ Value::String(_)) => {
                let expected = by_scale(ctx)?;
                Some((expected, scaled(v, expected, true)?))
            }
            _ => Some((pods.len() as i64, 0)),
        }
    }
}

impl Reconcile for Disruption {
    const NAME: &'static str = "disruption";
    const PRIMARY: Res = res::PDBS;
    const KIND: &'static str = "PodDisruptionBudget";
    const OWNS: &'static [Res] = &[];
    const WATCHES: &'static [&'static str] = &[
        "poddisruptionbudgets.policy",
        "pods",
        "deployments.apps",
        "replicasets.apps",
        "statefulsets.apps",
    ];

    // disruption.go: informer handlers enqueue the PDBs of a changed pod. Simplified: no
    // lag, so that adding it does not move the other controllers' seeded delays.
    fn lag(&self) -> Lag {
        Lag::NONE
    }

    fn map(&mut self, ctx: &Ctx<'_>, e: &Event, out: &mut BTreeSet<ObjectKey>) {
        let pod_res = ctx.store().registry().lookup("pods");
        if Some(e.resource) == pod_res {
            for obj in std::iter::once(&e.object).chain(e.old.iter()) {
                for p in pdbs_for_pod(ctx.store(), obj) {
                    out.insert(ObjectKey::of(&p));
                }
            }
        } else {
            // A controller's scale changed: every PDB of its namespace.
            for p in ctx.list(res::PDBS, Some(&e.namespace)) {
                out.insert(ObjectKey::of(&p));
            }
        }
    }

    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) -> Action {
        let Some(pdb) = ctx.get(res::PDBS, &key.namespace, &key.name) else {
            return Action::await_change();
        };
        let now = ctx.now();
        let pods = match selector(&pdb) {
            Some(sel) => ctx.list_selected(res::PODS, Some(&key.namespace), &sel),
            None => Vec::new(),
        };
        // buildDisruptedPodMap: keep entries whose pod still exists, is not being deleted,
        // and whose grant is younger than DeletionTimeout.
        let mut disrupted = Map::new();
        let mut next = Action::await_change();
        if let Some(m) = pdb
            .pointer("/status/disruptedPods")
            .and_then(Value::as_object)
        {
            for (name, at) in m {
                let Some(t) = parse_ts(at) else { continue };
                let pod = pods.iter().find(|p| s(p, "/metadata/name") == name);
                let Some(pod) = pod else { continue };
                if deleting(pod) || t + DELETION_TIMEOUT <= now {
                    continue;
                }
                next = next.min(Action::requeue_at(t + DELETION_TIMEOUT));
                disrupted.insert(name.clone(), at.clone());
            }
        }
        let healthy = pods
            .iter()
            .filter(|p| pod_ready(p) && !deleting(p))
            .filter(|p| !disrupted.contains_key(s(p, "/metadata/name")))
            .count() as i64;
        let (expected, desired, allowed) = match Self::expected(ctx, &pdb, &pods) {
            Some((e, d)) => (e, d, (healthy - d).max(0)),
            None => (0, 0, 0),
        };
        let mut conds: Vec<Value> = pdb
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (st, reason) = if allowed > 0 {
            ("True", "SufficientPods")
        } else {
            ("False", "InsufficientPods")
        };
        set_condition(&mut conds, "DisruptionAllowed", st, reason, "", now, false);
        // set_condition drops an empty message with an empty reason only; the PDB's
        // condition carries `message: ""` as metav1.Condition requires.
        for c in &mut conds {
            if c.get("message").is_none() {
                c["message"] = json!("");
            }
            c["observedGeneration"] = json!(i(&pdb, "/metadata/generation").unwrap_or(1));
        }
        let mut status = json!({
            "observedGeneration": i(&pdb, "/metadata/generation").unwrap_or(1),
            "currentHealthy": healthy, "desiredHealthy": desired,
            "disruptionsAllowed": allowed, "expectedPods": expected,
            "conditions": conds,
        });
        if !disrupted.is_empty() {
            status["disruptedPods"] = Value::Object(disrupted);
        }
        super::util::write_status(ctx, res::PDBS, &pdb, status);
        next
    }
}

/// A granted disruption recorded at `now` (the eviction's `checkAndDecrement`).
pub fn grant(pdb: &Value, pod: &str, now: Timestamp) -> Value {
    let mut p = pdb.clone();
    let allowed = i(pdb, "/status/disruptionsAllowed").unwrap_or(0);
    p["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if !p["status"]["disruptedPods"].is_object() {
        p["status"]["disruptedPods"] = json!({});
    }
    p["status"]["disruptedPods"][pod] = json!(ts(now));
    p
}

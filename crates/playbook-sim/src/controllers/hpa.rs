//! The HorizontalPodAutoscaler controller (autoscaling/v2): every 15 s, the real replica
//! calculation on Resource metrics (Utilization of requests, or AverageValue) from
//! `metrics.k8s.io` PodMetrics, the 10% tolerance, the handling of unready and missing pods,
//! then (pkg/controller/podautoscaler/horizontal.go) either the legacy normalization when
//! `spec.behavior` is absent (the API server does not default it: a 300 s downscale window,
//! scale-up capped at max(2 x current, 4) per sync) or the scaling behaviors (defaults for
//! unset fields: up by max(4 pods, 100%) per 15 s; down by 100% per 15 s after a 300 s
//! window), min/max, and the status and events of the real one.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::hpa_calc::{Proposal, resource_replicas};
use super::reconcile::{Action, Reconcile};
use super::util::{Key, deleting, i, s, set_condition, ts, write_status};
use crate::resources::{Res, res};
use crate::selector::LabelSelector;
use crate::store::{Event, EventKind};
use crate::world::Ctx;

const SOURCE: &str = "horizontal-pod-autoscaler";
/// The HPA sync period.
pub const SYNC_PERIOD: SignedDuration = SignedDuration::from_secs(15);

/// Autoscales workloads. See the module doc.
#[derive(Default)]
pub struct Hpa {
    recommendations: HashMap<Key, Vec<(Timestamp, i64)>>,
    scale_events: HashMap<Key, Vec<(Timestamp, i64)>>,
}

struct Rules {
    window: i64,
    select: String,
    policies: Vec<(String, i64, i64)>,
}

fn rules(hpa: &Value, dir: &str) -> Rules {
    let b = &hpa["spec"]["behavior"][dir];
    let up = dir == "scaleUp";
    let default_policies = if up {
        vec![("Pods".into(), 4, 15), ("Percent".into(), 100, 15)]
    } else {
        vec![("Percent".into(), 100, 15)]
    };
    let policies = b["policies"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        s(p, "/type").to_string(),
                        i(p, "/value").unwrap_or(0),
                        i(p, "/periodSeconds").unwrap_or(15),
                    )
                })
                .collect()
        })
        .unwrap_or(default_policies);
    Rules {
        window: i(b, "/stabilizationWindowSeconds").unwrap_or(if up { 0 } else { 300 }),
        select: match s(b, "/selectPolicy") {
            "" => "Max".into(),
            x => x.into(),
        },
        policies,
    }
}

fn target_resource(kind: &str) -> Option<Res> {
    match kind {
        "Deployment" => Some(res::DEPLOYMENTS),
        "StatefulSet" => Some(res::STATEFULSETS),
        "ReplicaSet" => Some(res::REPLICASETS),
        _ => None,
    }
}

/// What normalizing a recommendation decided: the replicas, the AbleToScale reason if the
/// stabilization changed it, and the ScalingLimited reason and message.
struct Normalized {
    desired: i64,
    able: Option<(&'static str, &'static str)>,
    limit: (&'static str, &'static str),
}

const WITHIN: (&str, &str) = (
    "DesiredWithinRange",
    "the desired count is within the acceptable range",
);
const UP_LIMIT: (&str, &str) = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
);
const TOO_MANY: (&str, &str) = (
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
);
const DOWN_LIMIT: (&str, &str) = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
);
const TOO_FEW: (&str, &str) = (
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
);

/// `--horizontal-pod-autoscaler-downscale-stabilization` (the legacy path's only window).
const DOWNSCALE_STABILIZATION: SignedDuration = SignedDuration::from_secs(300);

impl Hpa {
    /// The legacy path for an HPA without `spec.behavior`
    /// (pkg/controller/podautoscaler/horizontal.go `normalizeDesiredReplicas`): the highest
    /// recommendation of the downscale stabilization window (`stabilizeRecommendation`),
    /// then `convertDesiredReplicasWithRules`: at most max(2 x current, 4) per sync
    /// (`calculateScaleUpLimit`), within min and max.
    fn normalize_legacy(
        &mut self,
        key: &Key,
        current: i64,
        proposed: i64,
        min: i64,
        max: i64,
        now: Timestamp,
    ) -> Normalized {
        let recs = self.recommendations.entry(key.clone()).or_default();
        let cutoff = now - DOWNSCALE_STABILIZATION;
        let stabilized = recs
            .iter()
            .filter(|(t, _)| *t >= cutoff)
            .map(|r| r.1)
            .fold(proposed, i64::max);
        recs.retain(|(t, _)| *t >= cutoff);
        recs.push((now, proposed));
        let able = (stabilized != proposed).then_some((
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation",
        ));
        let scale_up_limit = (2 * current).max(4);
        let (max_allowed, up_limit) = if max > scale_up_limit {
            (scale_up_limit, UP_LIMIT)
        } else {
            (max, TOO_MANY)
        };
        let (desired, limit) = if stabilized < min {
            (min, TOO_FEW)
        } else if stabilized > max_allowed {
            (max_allowed, up_limit)
        } else {
            (stabilized, WITHIN)
        };
        Normalized {
            desired,
            able,
            limit,
        }
    }

    /// The path with `spec.behavior` (horizontal.go `normalizeDesiredReplicasWithBehaviors`):
    /// per-direction stabilization windows, then the rate-limit policies.
    #[allow(clippy::too_many_arguments)]
    fn normalize_with_behaviors(
        &mut self,
        hpa: &Value,
        key: &Key,
        current: i64,
        proposed: i64,
        min: i64,
        max: i64,
        now: Timestamp,
    ) -> Normalized {
        let up = rules(hpa, "scaleUp");
        let down = rules(hpa, "scaleDown");
        let recs = self.recommendations.entry(key.clone()).or_default();
        recs.push((now, proposed));
        let up_cut = now - SignedDuration::from_secs(up.window);
        let down_cut = now - SignedDuration::from_secs(down.window);
        let up_rec = recs
            .iter()
            .filter(|(t, _)| *t > up_cut || *t == now)
            .map(|r| r.1)
            .min()
            .unwrap_or(proposed);
        let down_rec = recs
            .iter()
            .filter(|(t, _)| *t > down_cut || *t == now)
            .map(|r| r.1)
            .max()
            .unwrap_or(proposed);
        let oldest = up_cut.min(down_cut);
        recs.retain(|(t, _)| *t > oldest);
        let stabilized = current.max(up_rec).min(down_rec);
        let why = if proposed < current || stabilized > proposed {
            (
                "ScaleDownStabilized",
                "recent recommendations were higher than current one, applying the highest recent recommendation",
            )
        } else {
            (
                "ScaleUpStabilized",
                "recent recommendations were lower than current one, applying the lowest recent recommendation",
            )
        };
        let able = (stabilized != proposed).then_some(why);
        let (desired, limit) = if stabilized > current {
            let rate = self.limit(key, &up, current, true, now).max(current);
            let (allowed, why) = if max > rate {
                (rate, UP_LIMIT)
            } else {
                (max, TOO_MANY)
            };
            if stabilized <= allowed {
                (stabilized, WITHIN)
            } else {
                (allowed, why)
            }
        } else if stabilized < current {
            let rate = self.limit(key, &down, current, false, now).min(current);
            let (allowed, why) = if min < rate {
                (rate, DOWN_LIMIT)
            } else {
                (min, TOO_FEW)
            };
            if stabilized >= allowed {
                (stabilized, WITHIN)
            } else {
                (allowed, why)
            }
        } else {
            (stabilized, WITHIN)
        };
        Normalized {
            desired,
            able,
            limit,
        }
    }

    fn limit(&self, key: &Key, r: &Rules, current: i64, up: bool, now: Timestamp) -> i64 {
        let events = self
            .scale_events
            .get(key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut result: Option<i64> = None;
        for (kind, value, period) in &r.policies {
            let since = now - SignedDuration::from_secs(*period);
            let changed: i64 = events
                .iter()
                .filter(|(t, c)| *t > since && (*c > 0) == up)
                .map(|(_, c)| c.abs())
                .sum();
            let proposed = if up {
                let start = current - changed;
                match kind.as_str() {
                    "Pods" => start + value,
                    _ => (start as f64 * (1.0 + *value as f64 / 100.0)).ceil() as i64,
                }
            } else {
                let start = current + changed;
                match kind.as_str() {
                    "Pods" => start - value,
                    _ => (start as f64 * (1.0 - *value as f64 / 100.0)).floor() as i64,
                }
            };
            // "Max" allows the biggest change: highest count up, lowest count down.
            let pick_max = (r.select == "Max") == up;
            result = Some(match result {
                None => proposed,
                Some(x) if pick_max => x.max(proposed),
                Some(x) => x.min(proposed),
            });
        }
        if r.select == "Disabled" {
            return current;
        }
        result.unwrap_or(current)
    }

    /// Decide from the metrics (horizontal.go `computeReplicasForMetrics`): the largest
    /// proposal over the Resource metrics, or the error when none could be computed.
    fn propose(
        ctx: &Ctx<'_>,
        hpa: &Value,
        target: &Value,
        key: &Key,
        current: i64,
    ) -> Result<(Proposal, Vec<Value>), String> {
        let sel = LabelSelector::from_json(&target["spec"]["selector"]).unwrap_or_default();
        let pods = ctx.list_selected(res::PODS, Some(&key.namespace), &sel);
        let mut metrics = hpa["spec"]["metrics"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if metrics.is_empty() {
            metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}));
        }
        let (mut best, mut error, mut current_metrics): (Option<Proposal>, _, _) =
            (None, None, Vec::new());
        for m in metrics.iter().filter(|m| m["type"] == "Resource") {
            match resource_replicas(ctx, &key.namespace, &pods, m, current) {
                Ok(p) => {
                    current_metrics.push(p.current.clone());
                    if best.as_ref().is_none_or(|b| p.replicas > b.replicas) {
                        best = Some(p);
                    }
                }
                Err(e) => error = Some(e),
            }
        }
        best.map(|b| (b, current_metrics))
            .ok_or_else(|| error.unwrap_or_else(|| "no supported metric".into()))
    }

    /// Decide the desired replicas (horizontal.go `reconcileAutoscaler`): the bounds first,
    /// then the metrics and the normalization. Writes the conditions it settles into
    /// `st`; an Err is a status to write as is (no metric).
    fn decide(&mut self, ctx: &mut Ctx<'_>, seen: &Seen, st: &mut Decision) -> Result<(), ()> {
        let (hpa, key, current, now) = (&seen.hpa, &seen.key, seen.current, ctx.now());
        let min = i(hpa, "/spec/minReplicas").unwrap_or(1);
        let max = i(hpa, "/spec/maxReplicas").unwrap_or(min).max(min);
        if current == 0 && min != 0 {
            let msg = "scaling is disabled since the replica count of the target is zero";
            set_condition(
                &mut st.conds,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                msg,
                now,
                false,
            );
            return Ok(());
        }
        if current > max || current < min {
            st.desired = current.clamp(min, max);
            let side = if current > max {
                "above Spec.MaxReplicas"
            } else {
                "below Spec.MinReplicas"
            };
            st.reason = format!("Current number of replicas {side}");
            return Ok(());
        }
        let (best, metrics) = match Self::propose(ctx, hpa, &seen.target, key, current) {
            Ok(x) => x,
            Err(e) => {
                Self::metric_failed(ctx, hpa, &mut st.conds, &e);
                return Err(());
            }
        };
        st.current_metrics = metrics;
        let msg = format!(
            "the HPA was able to successfully calculate a replica count from {}",
            best.label
        );
        set_condition(
            &mut st.conds,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            &msg,
            now,
            false,
        );
        let n = if hpa["spec"]["behavior"].is_null() {
            self.normalize_legacy(key, current, best.replicas, min, max, now)
        } else {
            self.normalize_with_behaviors(hpa, key, current, best.replicas, min, max, now)
        };
        st.desired = n.desired;
        if let Some(a) = n.able {
            st.able = (a.0, a.1.to_string());
        }
        let limited = if n.limit.0 == "DesiredWithinRange" {
            "False"
        } else {
            "True"
        };
        set_condition(
            &mut st.conds,
            "ScalingLimited",
            limited,
            n.limit.0,
            n.limit.1,
            now,
            false,
        );
        st.reason = if st.desired > current {
            format!("{} above target", best.label)
        } else {
            "All metrics below target".into()
        };
        Ok(())
    }

    /// No metric could be computed: ScalingActive False, an event on the first failure.
    fn metric_failed(ctx: &mut Ctx<'_>, hpa: &Value, conds: &mut Vec<Value>, e: &str) {
        let now = ctx.now();
        let msg = format!("the HPA was unable to compute the replica count: {e}");
        let was = super::util::condition(hpa, "ScalingActive")
            .is_some_and(|c| c["reason"] == "FailedGetResourceMetric");
        if !was {
            ctx.record_event(hpa, "Warning", "FailedGetResourceMetric", &msg, SOURCE);
        }
        let ok = "the HPA controller was able to get the target's current scale";
        set_condition(
            conds,
            "AbleToScale",
            "True",
            "SucceededGetScale",
            ok,
            now,
            false,
        );
        set_condition(
            conds,
            "ScalingActive",
            "False",
            "FailedGetResourceMetric",
            &msg,
            now,
            false,
        );
    }

    /// Write: the new scale (horizontal.go `scaleForResourceMappings` then the event), then
    /// the status.
    fn write(&mut self, ctx: &mut Ctx<'_>, seen: &Seen, mut st: Decision) {
        let (key, now, current) = (&seen.key, ctx.now(), seen.current);
        let desired = st.desired;
        if desired != current {
            let patch = json!({"spec": {"replicas": desired}});
            if ctx
                .patch(seen.target_res, &key.namespace, &seen.target_name, &patch)
                .is_ok()
            {
                let msg = format!("New size: {desired}; reason: {}", st.reason);
                ctx.record_event(&seen.hpa, "Normal", "SuccessfulRescale", &msg, SOURCE);
                self.scale_events
                    .entry(key.clone())
                    .or_default()
                    .push((now, desired - current));
                st.status["lastScaleTime"] = json!(ts(now));
                let msg =
                    format!("the HPA controller was able to update the target scale to {desired}");
                st.able = ("SucceededRescale", msg);
            }
        }
        if let Some(ev) = self.scale_events.get_mut(key) {
            let cut = now - SignedDuration::from_secs(1800);
            ev.retain(|(t, _)| *t > cut);
        }
        set_condition(
            &mut st.conds,
            "AbleToScale",
            "True",
            st.able.0,
            &st.able.1,
            now,
            false,
        );
        st.status["desiredReplicas"] = json!(desired);
        if !st.current_metrics.is_empty() {
            st.status["currentMetrics"] = json!(st.current_metrics);
        }
        Self::write_status(ctx, seen, st.status, st.conds);
    }

    fn write_status(ctx: &mut Ctx<'_>, seen: &Seen, mut status: Value, mut conds: Vec<Value>) {
        conds.sort_by_key(|c| match c["type"].as_str() {
            Some("AbleToScale") => 0,
            Some("ScalingActive") => 1,
            _ => 2,
        });
        status["conditions"] = json!(conds);
        let key = &seen.key;
        let cur = ctx
            .get(res::HPAS, &key.namespace, &key.name)
            .unwrap_or_else(|| seen.hpa.clone());
        write_status(ctx, res::HPAS, &cur, status);
    }
}

/// What one sync reads: the HPA and its scale target.
struct Seen {
    hpa: Arc<Value>,
    key: Key,
    target: Arc<Value>,
    target_res: Res,
    target_name: String,
    current: i64,
}

/// The status being decided.
struct Decision {
    status: Value,
    conds: Vec<Value>,
    desired: i64,
    reason: String,
    able: (&'static str, String),
    current_metrics: Vec<Value>,
}

impl Hpa {
    /// Gather: the HPA and its target; a missing target is reported (FailedGetScale).
    fn gather(ctx: &mut Ctx<'_>, key: &Key) -> Option<(Seen, Decision)> {
        let hpa = ctx.get(res::HPAS, &key.namespace, &key.name)?;
        if deleting(&hpa) {
            return None;
        }
        let conds: Vec<Value> = hpa["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut status =
            json!({"observedGeneration": i(&hpa, "/metadata/generation").unwrap_or(0)});
        if let Some(t) = hpa["status"].get("lastScaleTime") {
            status["lastScaleTime"] = t.clone();
        }
        let tref = &hpa["spec"]["scaleTargetRef"];
        let (kind, tname) = (s(tref, "/kind").to_string(), s(tref, "/name").to_string());
        let target =
            target_resource(&kind).and_then(|r| ctx.get(r, &key.namespace, &tname).map(|t| (r, t)));
        let mut d = Decision {
            status,
            conds,
            desired: 0,
            reason: String::new(),
            able: (
                "ReadyForNewScale",
                "recommended size matches current size".to_string(),
            ),
            current_metrics: Vec::new(),
        };
        let Some((target_res, target)) = target else {
            let what = target_resource(&kind).map_or(kind.clone(), |r| r.key().to_string());
            let msg = format!(
                "the HPA controller was unable to get the target's current scale: {what} \"{tname}\" not found"
            );
            if !d.conds.iter().any(|c| c["reason"] == "FailedGetScale") {
                ctx.record_event(&hpa, "Warning", "FailedGetScale", &msg, SOURCE);
            }
            set_condition(
                &mut d.conds,
                "AbleToScale",
                "False",
                "FailedGetScale",
                &msg,
                ctx.now(),
                false,
            );
            d.status["currentReplicas"] = json!(0);
            d.status["desiredReplicas"] = json!(0);
            d.status["conditions"] = json!(d.conds);
            write_status(ctx, res::HPAS, &hpa, d.status);
            return None;
        };
        let current = i(&target, "/spec/replicas").unwrap_or(1);
        d.status["currentReplicas"] = json!(current);
        d.desired = current;
        let seen = Seen {
            hpa,
            key: key.clone(),
            target,
            target_res,
            target_name: tname,
            current,
        };
        Some((seen, d))
    }
}

impl Reconcile for Hpa {
    const NAME: &'static str = "horizontal-pod-autoscaler";
    const PRIMARY: Res = res::HPAS;
    const KIND: &'static str = "HorizontalPodAutoscaler";
    const OWNS: &'static [Res] = &[];
    const WATCHES: &'static [&'static str] = &["horizontalpodautoscalers.autoscaling"];

    /// A new HPA, or a spec change (generation), syncs now; its own status writes do not.
    /// Forgets a deleted HPA's recommendations and scale events.
    fn primary_changed(&mut self, e: &Event) -> bool {
        let key = Key::of_event(e);
        match e.kind {
            EventKind::Deleted => {
                self.recommendations.remove(&key);
                self.scale_events.remove(&key);
                false
            }
            EventKind::Added => true,
            EventKind::Modified => {
                let gen_of = |v: &Value| i(v, "/metadata/generation");
                e.old.as_deref().map(gen_of) != Some(gen_of(&e.object))
            }
        }
    }

    /// One HPA every [`SYNC_PERIOD`] (horizontal.go requeues each key with a fixed-interval
    /// rate limiter of `--horizontal-pod-autoscaler-sync-period`).
    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) -> Action {
        let Some((seen, mut d)) = Self::gather(ctx, key) else {
            return Action::await_change();
        };
        match self.decide(ctx, &seen, &mut d) {
            Ok(()) => self.write(ctx, &seen, d),
            Err(()) => {
                d.status["desiredReplicas"] = json!(seen.current);
                Self::write_status(ctx, &seen, d.status, d.conds);
            }
        }
        Action::requeue(ctx, SYNC_PERIOD)
    }
}

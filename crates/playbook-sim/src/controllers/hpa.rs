//! The HorizontalPodAutoscaler controller (autoscaling/v2): every 15 s, the real replica
//! calculation on Resource metrics (Utilization of requests, or AverageValue) from
//! `metrics.k8s.io` PodMetrics, the 10% tolerance, the handling of unready and missing pods,
//! the scaling behaviors (defaults: up by max(4 pods, 100%) per 15 s; down by 100% per 15 s
//! after a 300 s stabilization window), min/max, and the status and events of the real one.

use std::collections::{BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::hpa_calc::{Proposal, resource_replicas};
use super::util::{Key, deleting, i, key_of, s, set_condition, ts, write_status};
use crate::selector::LabelSelector;
use crate::store::EventKind;
use crate::world::{Controller, Ctx};

const SOURCE: &str = "horizontal-pod-autoscaler";
/// The HPA sync period.
pub const SYNC_PERIOD: SignedDuration = SignedDuration::from_secs(15);

/// Autoscales workloads. See the module doc.
#[derive(Default)]
pub struct Hpa {
    next: Option<Timestamp>,
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

fn target_resource(kind: &str) -> Option<&'static str> {
    match kind {
        "Deployment" => Some("deployments.apps"),
        "StatefulSet" => Some("statefulsets.apps"),
        "ReplicaSet" => Some("replicasets.apps"),
        _ => None,
    }
}

impl Hpa {
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

    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) {
        let Some(hpa) = ctx.get("horizontalpodautoscalers.autoscaling", &key.0, &key.1) else {
            return;
        };
        if deleting(&hpa) {
            return;
        }
        let now = ctx.now();
        let tref = &hpa["spec"]["scaleTargetRef"];
        let (kind, tname) = (s(tref, "/kind"), s(tref, "/name"));
        let mut conds: Vec<Value> = hpa["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut status =
            json!({"observedGeneration": i(&hpa, "/metadata/generation").unwrap_or(0)});
        if let Some(t) = hpa["status"].get("lastScaleTime") {
            status["lastScaleTime"] = t.clone();
        }
        let target = target_resource(kind).and_then(|r| ctx.get(r, &key.0, tname).map(|t| (r, t)));
        let Some((tres, target)) = target else {
            let msg = format!(
                "the HPA controller was unable to get the target's current scale: {} \"{tname}\" not found",
                target_resource(kind).unwrap_or(kind)
            );
            if !conds.iter().any(|c| c["reason"] == "FailedGetScale") {
                ctx.record_event(&hpa, "Warning", "FailedGetScale", &msg, SOURCE);
            }
            set_condition(
                &mut conds,
                "AbleToScale",
                "False",
                "FailedGetScale",
                &msg,
                now,
                false,
            );
            status["currentReplicas"] = json!(0);
            status["desiredReplicas"] = json!(0);
            status["conditions"] = json!(conds);
            write_status(ctx, "horizontalpodautoscalers.autoscaling", &hpa, status);
            return;
        };
        let current = i(&target, "/spec/replicas").unwrap_or(1);
        let min = i(&hpa, "/spec/minReplicas").unwrap_or(1);
        let max = i(&hpa, "/spec/maxReplicas").unwrap_or(min).max(min);
        status["currentReplicas"] = json!(current);
        let mut desired = current;
        let mut reason = String::new();
        let mut current_metrics = Vec::new();
        let mut able = (
            "ReadyForNewScale",
            "recommended size matches current size".to_string(),
        );
        if current == 0 && min != 0 {
            set_condition(
                &mut conds,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                now,
                false,
            );
        } else if current > max {
            desired = max;
            reason = "Current number of replicas above Spec.MaxReplicas".into();
        } else if current < min {
            desired = min;
            reason = "Current number of replicas below Spec.MinReplicas".into();
        } else {
            let sel = LabelSelector::from_json(&target["spec"]["selector"]).unwrap_or_default();
            let pods = ctx.list_selected("pods", Some(&key.0), &sel);
            let mut metrics = hpa["spec"]["metrics"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if metrics.is_empty() {
                metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}));
            }
            let mut best: Option<Proposal> = None;
            let mut error = None;
            for m in metrics.iter().filter(|m| m["type"] == "Resource") {
                match resource_replicas(ctx, &key.0, &pods, m, current) {
                    Ok(p) => {
                        current_metrics.push(p.current.clone());
                        if best.as_ref().is_none_or(|b| p.replicas > b.replicas) {
                            best = Some(p);
                        }
                    }
                    Err(e) => error = Some(e),
                }
            }
            let Some(best) = best else {
                let msg = format!(
                    "the HPA was unable to compute the replica count: {}",
                    error.unwrap_or_else(|| "no supported metric".into())
                );
                let was = super::util::condition(&hpa, "ScalingActive")
                    .is_some_and(|c| c["reason"] == "FailedGetResourceMetric");
                if !was {
                    ctx.record_event(&hpa, "Warning", "FailedGetResourceMetric", &msg, SOURCE);
                }
                set_condition(
                    &mut conds,
                    "AbleToScale",
                    "True",
                    "SucceededGetScale",
                    "the HPA controller was able to get the target's current scale",
                    now,
                    false,
                );
                set_condition(
                    &mut conds,
                    "ScalingActive",
                    "False",
                    "FailedGetResourceMetric",
                    &msg,
                    now,
                    false,
                );
                status["desiredReplicas"] = json!(current);
                status["conditions"] = json!(conds);
                write_status(ctx, "horizontalpodautoscalers.autoscaling", &hpa, status);
                return;
            };
            set_condition(
                &mut conds,
                "ScalingActive",
                "True",
                "ValidMetricFound",
                &format!(
                    "the HPA was able to successfully calculate a replica count from {}",
                    best.label
                ),
                now,
                false,
            );
            // Stabilization.
            let up = rules(&hpa, "scaleUp");
            let down = rules(&hpa, "scaleDown");
            let recs = self.recommendations.entry(key.clone()).or_default();
            recs.push((now, best.replicas));
            let up_cut = now - SignedDuration::from_secs(up.window);
            let down_cut = now - SignedDuration::from_secs(down.window);
            let up_rec = recs
                .iter()
                .filter(|(t, _)| *t > up_cut || *t == now)
                .map(|r| r.1)
                .min()
                .unwrap_or(best.replicas);
            let down_rec = recs
                .iter()
                .filter(|(t, _)| *t > down_cut || *t == now)
                .map(|r| r.1)
                .max()
                .unwrap_or(best.replicas);
            let oldest = up_cut.min(down_cut);
            recs.retain(|(t, _)| *t > oldest);
            let stabilized = current.max(up_rec).min(down_rec);
            if stabilized != best.replicas {
                able = if best.replicas < current || stabilized > best.replicas {
                    ("ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation".into())
                } else {
                    ("ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation".into())
                };
            }
            // Rate limits and bounds.
            let (mut lim_reason, mut lim_msg);
            desired = stabilized;
            if stabilized > current {
                let limit = self.limit(key, &up, current, true, now).max(current);
                let allowed = if max > limit {
                    (lim_reason, lim_msg) = (
                        "ScaleUpLimit",
                        "the desired replica count is increasing faster than the maximum scale rate",
                    );
                    limit
                } else {
                    (lim_reason, lim_msg) = (
                        "TooManyReplicas",
                        "the desired replica count is more than the maximum replica count",
                    );
                    max
                };
                desired = stabilized.min(allowed);
                if stabilized <= allowed {
                    (lim_reason, lim_msg) = (
                        "DesiredWithinRange",
                        "the desired count is within the acceptable range",
                    );
                }
            } else if stabilized < current {
                let limit = self.limit(key, &down, current, false, now).min(current);
                let allowed = if min < limit {
                    (lim_reason, lim_msg) = (
                        "ScaleDownLimit",
                        "the desired replica count is decreasing faster than the maximum scale rate",
                    );
                    limit
                } else {
                    (lim_reason, lim_msg) = (
                        "TooFewReplicas",
                        "the desired replica count is less than the minimum replica count",
                    );
                    min
                };
                desired = stabilized.max(allowed);
                if stabilized >= allowed {
                    (lim_reason, lim_msg) = (
                        "DesiredWithinRange",
                        "the desired count is within the acceptable range",
                    );
                }
            } else {
                (lim_reason, lim_msg) = (
                    "DesiredWithinRange",
                    "the desired count is within the acceptable range",
                );
            }
            let limited = if lim_reason == "DesiredWithinRange" {
                "False"
            } else {
                "True"
            };
            set_condition(
                &mut conds,
                "ScalingLimited",
                limited,
                lim_reason,
                lim_msg,
                now,
                false,
            );
            reason = if desired > current {
                format!("{} above target", best.label)
            } else {
                "All metrics below target".into()
            };
        }
        if desired != current {
            let patch = json!({"spec": {"replicas": desired}});
            if ctx.patch(tres, &key.0, tname, &patch).is_ok() {
                ctx.record_event(
                    &hpa,
                    "Normal",
                    "SuccessfulRescale",
                    &format!("New size: {desired}; reason: {reason}"),
                    SOURCE,
                );
                self.scale_events
                    .entry(key.clone())
                    .or_default()
                    .push((now, desired - current));
                status["lastScaleTime"] = json!(ts(now));
                able = (
                    "SucceededRescale",
                    format!("the HPA controller was able to update the target scale to {desired}"),
                );
            }
        }
        if let Some(ev) = self.scale_events.get_mut(key) {
            let cut = now - SignedDuration::from_secs(1800);
            ev.retain(|(t, _)| *t > cut);
        }
        set_condition(
            &mut conds,
            "AbleToScale",
            "True",
            able.0,
            &able.1,
            now,
            false,
        );
        conds.sort_by_key(|c| match c["type"].as_str() {
            Some("AbleToScale") => 0,
            Some("ScalingActive") => 1,
            _ => 2,
        });
        status["desiredReplicas"] = json!(desired);
        if !current_metrics.is_empty() {
            status["currentMetrics"] = json!(current_metrics);
        }
        status["conditions"] = json!(conds);
        let cur = ctx
            .get("horizontalpodautoscalers.autoscaling", &key.0, &key.1)
            .unwrap_or(hpa);
        write_status(ctx, "horizontalpodautoscalers.autoscaling", &cur, status);
    }
}

impl Controller for Hpa {
    fn name(&self) -> &'static str {
        "horizontal-pod-autoscaler"
    }
    fn watches(&self) -> &'static [&'static str] {
        &["horizontalpodautoscalers.autoscaling"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let mut todo: BTreeSet<Key> = BTreeSet::new();
        if self.next.is_none_or(|n| now >= n) {
            todo.extend(
                ctx.list("horizontalpodautoscalers.autoscaling", None)
                    .iter()
                    .map(|h| key_of(h)),
            );
            self.next = Some(now + SYNC_PERIOD);
        }
        for e in ctx.changed("horizontalpodautoscalers.autoscaling") {
            let key = (e.namespace.clone(), e.name.clone());
            match e.kind {
                EventKind::Deleted => {
                    self.recommendations.remove(&key);
                    self.scale_events.remove(&key);
                }
                EventKind::Added => {
                    todo.insert(key);
                }
                EventKind::Modified => {
                    let gen_of = |v: &Value| i(v, "/metadata/generation");
                    if e.old.as_deref().map(gen_of) != Some(gen_of(&e.object)) {
                        todo.insert(key);
                    }
                }
            }
        }
        for key in todo {
            self.sync(ctx, &key);
        }
        if let Some(n) = self.next {
            ctx.wake_at(n);
        }
    }
}

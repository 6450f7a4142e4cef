//! The HPA's replica calculator: the real `GetResourceReplicas` over PodMetrics, with the 10%
//! tolerance, the CPU initialization period, and the rebalancing of unready and missing pods
//! (pkg/controller/podautoscaler/replica_calculator.go), in integer arithmetic as
//! metrics/utilization.go (the utilization is truncated to a whole percent).

use jiff::SignedDuration;
use serde_json::{Value, json};

use super::util::{cpu_milli, deleting, i, mem_bytes, parse_ts, pod_ready, ready_since, s};
use crate::world::Ctx;

/// `--horizontal-pod-autoscaler-tolerance`.
pub const TOLERANCE: f64 = 0.1;
/// `--horizontal-pod-autoscaler-cpu-initialization-period`.
const CPU_INIT: SignedDuration = SignedDuration::from_secs(300);
/// `--horizontal-pod-autoscaler-initial-readiness-delay`.
const READINESS_DELAY: SignedDuration = SignedDuration::from_secs(30);

/// One metric's result.
pub(crate) struct Proposal {
    pub(crate) replicas: i64,
    pub(crate) current: Value,
    pub(crate) label: String,
}

/// Pods grouped as replica_calculator.go `groupPods` does: ready ones with their (usage,
/// request), and the requests of unready (pending, or CPU still initializing) and missing
/// (no metrics) ones. Failed and deleted pods are ignored.
struct Grouped {
    ready: Vec<(i64, i64)>,
    unready: Vec<i64>,
    missing: Vec<i64>,
}

fn group_pods(
    ctx: &Ctx<'_>,
    ns: &str,
    pods: &[std::sync::Arc<Value>],
    res: &str,
    parse: fn(&Value) -> Option<i64>,
    utilization: Option<i64>,
) -> Result<Grouped, String> {
    let now = ctx.now();
    let mut ready: Vec<(i64, i64)> = Vec::new(); // (usage, request), milli-units or bytes
    let mut unready: Vec<i64> = Vec::new(); // requests
    let mut missing: Vec<i64> = Vec::new(); // requests
    for pod in pods {
        if deleting(pod) || s(pod, "/status/phase") == "Failed" {
            continue;
        }
        let mut request = 0i64;
        for c in super::model::containers(pod) {
            let r = c["resources"]["requests"].get(res).and_then(parse);
            match r {
                Some(r) => request += r,
                None if utilization.is_some() => {
                    return Err(format!(
                        "failed to get {res} utilization: missing request for {res} in container {} of Pod {}",
                        s(c, "/name"),
                        s(pod, "/metadata/name")
                    ));
                }
                None => {}
            }
        }
        if s(pod, "/status/phase") == "Pending" {
            unready.push(request);
            continue;
        }
        let Some(pm) = ctx.get(
            crate::resources::res::POD_METRICS,
            ns,
            s(pod, "/metadata/name"),
        ) else {
            missing.push(request);
            continue;
        };
        let usage: i64 = pm["containers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["usage"].get(res).and_then(parse))
                    .sum()
            })
            .unwrap_or(0);
        if res == "cpu" {
            let start = parse_ts(&pod["status"]["startTime"]).unwrap_or(now);
            let since = ready_since(pod);
            let stamp = parse_ts(&pm["timestamp"]).unwrap_or(now);
            let is_unready = if start + CPU_INIT > now {
                since.is_none_or(|t| stamp < t + SignedDuration::from_secs(30))
            } else {
                !pod_ready(pod)
                    && super::util::condition(pod, "Ready")
                        .and_then(|c| parse_ts(&c["lastTransitionTime"]))
                        .is_some_and(|t| t < start + READINESS_DELAY)
            };
            if is_unready {
                unready.push(request);
                continue;
            }
        }
        ready.push((usage, request));
    }
    Ok(Grouped {
        ready,
        unready,
        missing,
    })
}

/// The replica count one Resource metric asks for (the real `GetResourceReplicas`).
pub(crate) fn resource_replicas(
    ctx: &Ctx<'_>,
    ns: &str,
    pods: &[std::sync::Arc<Value>],
    metric: &Value,
    current: i64,
) -> Result<Proposal, String> {
    let res = s(metric, "/resource/name");
    let parse: fn(&Value) -> Option<i64> = if res == "memory" {
        mem_bytes
    } else {
        cpu_milli
    };
    let target = &metric["resource"]["target"];
    let utilization = i(target, "/averageUtilization");
    let avg_value = target.get("averageValue").and_then(parse);
    if utilization.is_none() && avg_value.is_none() {
        return Err(format!(
            "invalid resource metric source: neither a utilization target nor a value target was set for {res}"
        ));
    }
    let Grouped {
        ready,
        unready,
        missing,
    } = group_pods(ctx, ns, pods, res, parse, utilization)?;
    if ready.is_empty() {
        return Err(format!(
            "failed to get {res} utilization: did not receive metrics for targeted pods (pods might be unready)"
        ));
    }
    let calc = Calc {
        utilization,
        avg_value: avg_value.unwrap_or(1).max(1),
    };
    let (ratio, util) = calc.ratio(&ready)?;
    let n = ready.len() as i64;
    let usage: i64 = ready.iter().map(|x| x.0).sum();
    let current_metric = match util {
        Some(u) => json!({"averageUtilization": u, "averageValue": fmt(res, usage / n)}),
        None => json!({"averageValue": fmt(res, usage / n)}),
    };
    let label = if utilization.is_some() {
        format!("{res} resource utilization (percentage of request)")
    } else {
        format!("{res} resource")
    };
    let current_metric =
        json!({"type": "Resource", "resource": {"name": res, "current": current_metric}});
    let done = |replicas| Proposal {
        replicas,
        current: current_metric.clone(),
        label: label.clone(),
    };
    Ok(done(
        calc.replicas(&ready, &unready, &missing, ratio, current)?,
    ))
}

impl Calc {
    /// The replica count from the grouped pods (replica_calculator.go `GetResourceReplicas`
    /// after `groupPods`): ready (usage, request) pairs, unready and missing pods' requests.
    fn replicas(
        &self,
        ready: &[(i64, i64)],
        unready: &[i64],
        missing: &[i64],
        ratio: f64,
        current: i64,
    ) -> Result<i64, String> {
        let up_with_unready = !unready.is_empty() && ratio > 1.0;
        if !up_with_unready && missing.is_empty() {
            if (1.0 - ratio).abs() <= TOLERANCE {
                return Ok(current);
            }
            return Ok((ratio * ready.len() as f64).ceil() as i64);
        }
        // Rebalance: on a scale-down a missing pod counts as using max(100, target)% of its
        // request (AverageValue: the target); on a scale-up, 0. Unready pods count 0 on a
        // scale-up.
        let mut all = ready.to_vec();
        for req in missing {
            let used = if ratio < 1.0 {
                match self.utilization {
                    Some(t) => req * t.max(100) / 100,
                    None => self.avg_value,
                }
            } else {
                0
            };
            all.push((used, *req));
        }
        if up_with_unready {
            all.extend(unready.iter().map(|req| (0, *req)));
        }
        let (new_ratio, _) = self.ratio(&all)?;
        if (1.0 - new_ratio).abs() <= TOLERANCE
            || (ratio < 1.0 && new_ratio > 1.0)
            || (ratio > 1.0 && new_ratio < 1.0)
        {
            return Ok(current);
        }
        let new = (new_ratio * all.len() as f64).ceil() as i64;
        if (new_ratio < 1.0 && new > current) || (new_ratio > 1.0 && new < current) {
            return Ok(current);
        }
        Ok(new)
    }
}

/// The usage ratio as pkg/controller/podautoscaler/metrics/utilization.go computes it, in
/// integers (milli-units): `GetResourceUtilizationRatio` truncates the utilization to a
/// whole percent before dividing by the target; `GetMetricUsageRatio` truncates the
/// average usage.
struct Calc {
    utilization: Option<i64>,
    avg_value: i64,
}

impl Calc {
    /// (ratio, truncated utilization %) over (usage, request) pairs.
    fn ratio(&self, pods: &[(i64, i64)]) -> Result<(f64, Option<i64>), String> {
        let usage: i64 = pods.iter().map(|p| p.0).sum();
        match self.utilization {
            Some(t) => {
                let requests: i64 = pods.iter().map(|p| p.1).sum();
                if requests <= 0 {
                    return Err(
                        "failed to get utilization: no metrics returned matched known pods".into(),
                    );
                }
                let util = usage * 100 / requests;
                Ok((util as f64 / t.max(1) as f64, Some(util)))
            }
            None => {
                let avg = usage / (pods.len().max(1) as i64);
                Ok((avg as f64 / self.avg_value as f64, None))
            }
        }
    }
}

fn fmt(res: &str, v: i64) -> String {
    if res == "memory" {
        format!("{v}")
    } else {
        format!("{v}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// metrics/utilization.go `GetResourceUtilizationRatio`: (usage x 100) / requests in
    /// integers, so 299m of 500m requested is 59%, not 59.8%.
    #[test]
    fn utilization_is_truncated_to_a_whole_percent() {
        let calc = Calc {
            utilization: Some(60),
            avg_value: 1,
        };
        let (ratio, util) = calc.ratio(&[(299, 500)]).expect("ratio");
        assert_eq!(util, Some(59));
        assert!((ratio - 59.0 / 60.0).abs() < 1e-9);
    }

    /// replica_calculator.go: on a scale-down, a pod without metrics counts as using
    /// max(100, target)% of its request; with a target above 100% that is the target.
    #[test]
    fn missing_pods_on_scale_down_use_max_of_100_and_target() {
        // Target 50%: two ready pods at 10% (ratio 0.2), one missing pod at 100% of its
        // request: (10 + 10 + 100) / 300 = 40% -> ratio 0.8 -> ceil(0.8 x 3) = 3 > 1.
        let calc = Calc {
            utilization: Some(50),
            avg_value: 1,
        };
        let ready = [(50, 500), (50, 500)];
        let (ratio, _) = calc.ratio(&ready).expect("ratio");
        assert_eq!(calc.replicas(&ready, &[], &[500], ratio, 3), Ok(3));
        // Target 200%: the missing pod counts at 200%: (10 + 10 + 200) / 300 = 73% of
        // request -> ratio 0.366 -> ceil(1.1) = 2.
        let calc = Calc {
            utilization: Some(200),
            avg_value: 1,
        };
        let (ratio, _) = calc.ratio(&ready).expect("ratio");
        assert_eq!(calc.replicas(&ready, &[], &[500], ratio, 3), Ok(2));
    }
}

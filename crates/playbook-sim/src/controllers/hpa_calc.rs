//! The HPA's replica calculator: the real `GetResourceReplicas` over PodMetrics, with the 10%
//! tolerance, the CPU initialization period, and the rebalancing of unready and missing pods.

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
    let now = ctx.now();
    let mut ready: Vec<(f64, f64)> = Vec::new(); // (usage, request)
    let mut unready: Vec<f64> = Vec::new(); // requests
    let mut missing: Vec<f64> = Vec::new(); // requests
    for pod in pods {
        if deleting(pod) || s(pod, "/status/phase") == "Failed" {
            continue;
        }
        let mut request = 0f64;
        for c in super::model::containers(pod) {
            let r = c["resources"]["requests"].get(res).and_then(parse);
            match r {
                Some(r) => request += r as f64,
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
        let Some(pm) = ctx.get("pods.metrics.k8s.io", ns, s(pod, "/metadata/name")) else {
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
        ready.push((usage as f64, request));
    }
    if ready.is_empty() {
        return Err(format!(
            "failed to get {res} utilization: did not receive metrics for targeted pods (pods might be unready)"
        ));
    }
    let usage: f64 = ready.iter().map(|x| x.0).sum();
    let requests: f64 = ready.iter().map(|x| x.1).sum();
    let n = ready.len() as f64;
    let (ratio, current_metric, label) = match utilization {
        Some(t) => {
            if requests <= 0.0 {
                return Err(format!(
                    "failed to get {res} utilization: missing request for {res}"
                ));
            }
            let util = usage * 100.0 / requests;
            (
                util / t.max(1) as f64,
                json!({"averageUtilization": util as i64, "averageValue": fmt(res, usage / n)}),
                format!("{res} resource utilization (percentage of request)"),
            )
        }
        None => {
            let t = avg_value.unwrap_or(1).max(1) as f64;
            (
                usage / (t * n),
                json!({"averageValue": fmt(res, usage / n)}),
                format!("{res} resource"),
            )
        }
    };
    let current_metric =
        json!({"type": "Resource", "resource": {"name": res, "current": current_metric}});
    let done = |replicas| Proposal {
        replicas,
        current: current_metric.clone(),
        label: label.clone(),
    };
    let up_with_unready = !unready.is_empty() && ratio > 1.0;
    if !up_with_unready && missing.is_empty() {
        if (1.0 - ratio).abs() <= TOLERANCE {
            return Ok(done(current));
        }
        return Ok(done((ratio * n).ceil() as i64));
    }
    // Rebalance: missing pods use 100% of target when scaling down, 0 when up; unready 0.
    let per_pod_target = |req: f64| match utilization {
        Some(t) => req * t as f64 / 100.0,
        None => avg_value.unwrap_or(0) as f64,
    };
    let (mut u2, mut r2, mut n2) = (usage, requests, n);
    for req in &missing {
        if ratio < 1.0 {
            u2 += per_pod_target(*req);
        }
        r2 += req;
        n2 += 1.0;
    }
    if up_with_unready {
        for req in &unready {
            r2 += req;
            n2 += 1.0;
        }
    }
    let new_ratio = match utilization {
        Some(t) => (u2 * 100.0 / r2.max(1.0)) / t.max(1) as f64,
        None => u2 / (avg_value.unwrap_or(1).max(1) as f64 * n2),
    };
    if (1.0 - new_ratio).abs() <= TOLERANCE
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(done(current));
    }
    let new = (new_ratio * n2).ceil() as i64;
    if (new_ratio < 1.0 && new > current) || (new_ratio > 1.0 && new < current) {
        return Ok(done(current));
    }
    Ok(done(new))
}

fn fmt(res: &str, v: f64) -> String {
    if res == "memory" {
        format!("{}", v.round() as i64)
    } else {
        format!("{}m", v.round() as i64)
    }
}

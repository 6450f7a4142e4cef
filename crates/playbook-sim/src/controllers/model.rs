//! The pod behaviour model: the `sim.playbook.dev/*` annotations and how a simulated container
//! starts, uses CPU and memory, runs and stops.
//!
//! Every annotation is read from the **pod** (workload controllers copy the pod template's
//! annotations onto the pods they create, so put them on the template). A key may be
//! suffixed with `.<container-name>` to apply to one container only (e.g.
//! `sim.playbook.dev/memory.server`); the suffixed key wins over the plain one for base
//! values and is **added** to it for stress values.
//!
//! # Resource use
//! The use of a container at any time is
//! `cpu = min(base_cpu + stress_cpu, cpu limit)` and `memory = base_memory + stress_memory`:
//! - [`CPU`] / [`MEMORY`]: the base use (quantities: `"250m"`, `"300Mi"`). Absent: CPU is 10%
//!   of the container's CPU request (5m without a request); memory is half the memory request,
//!   else half the limit, else 64Mi. Any controller may rewrite them on a pod (the MLOps traffic
//!   model does, to follow load).
//! - [`STRESS_CPU`] / [`STRESS_MEMORY`]: extra load written by chaos controllers (StressChaos)
//!   and removed when the fault ends.
//!
//! Metrics (`metrics.k8s.io`) add a small seeded noise (±3%) to this; the kubelet model does
//! not: when a container's memory use exceeds its memory limit it is **OOMKilled** (exit code
//! 137) once it has run [`MEMORY_RAMP`] (the time it takes to allocate), then restarted per the
//! pod's restartPolicy with the kubelet's back-off (immediately, then 10 s doubling to 5 min).
//! The load stays as long as the annotation does, so a container kept above its limit goes
//! into CrashLoopBackOff, as a real one would.
//!
//! # Life cycle
//! - [`STARTUP`]: time from container start to Ready (default [`DEFAULT_STARTUP`]), plus a
//!   seeded jitter of up to 10% (stable per pod uid, container and restart).
//! - [`RUN_FOR`]: the container exits after running this long, with exit code [`EXIT_CODE`]
//!   (default 0). With restartPolicy Never/OnFailure a pod whose containers all exited 0 is
//!   Succeeded (else Failed); with Always it restarts (a crash loop when the code is not 0).
//! - [`SHUTDOWN`]: how long containers take to stop after SIGTERM (default 1s, at most the
//!   grace period). The kubelet holds bound pods with the [`KUBELET_FINALIZER`] so that a
//!   deleted pod keeps its deletionTimestamp until its containers stopped.

use jiff::SignedDuration;
use serde_json::Value;

use super::util::{cpu_milli, hash_str, mem_bytes};

/// Base CPU use of each container (quantity).
pub const CPU: &str = "sim.playbook.dev/cpu";
/// Base memory use of each container (quantity).
pub const MEMORY: &str = "sim.playbook.dev/memory";
/// Extra CPU load (quantity), added to the base; written by chaos controllers.
pub const STRESS_CPU: &str = "sim.playbook.dev/stress-cpu";
/// Extra memory load (quantity), added to the base; written by chaos controllers.
pub const STRESS_MEMORY: &str = "sim.playbook.dev/stress-memory";
/// Time from container start to Ready (duration, e.g. `"20s"`).
pub const STARTUP: &str = "sim.playbook.dev/startup";
/// The container exits after running this long (duration).
pub const RUN_FOR: &str = "sim.playbook.dev/run-for";
/// Exit code when [`RUN_FOR`] elapses (integer, default 0).
pub const EXIT_CODE: &str = "sim.playbook.dev/exit-code";
/// Time containers take to stop after SIGTERM (duration, default 1s).
pub const SHUTDOWN: &str = "sim.playbook.dev/shutdown";
/// The finalizer the kubelet model puts on bound pods to model graceful termination.
pub const KUBELET_FINALIZER: &str = "sim.playbook.dev/kubelet";

/// Startup time when [`STARTUP`] is absent.
pub const DEFAULT_STARTUP: SignedDuration = SignedDuration::from_secs(3);
/// Shutdown time when [`SHUTDOWN`] is absent.
pub const DEFAULT_SHUTDOWN: SignedDuration = SignedDuration::from_secs(1);
/// Time a container needs to allocate its memory (earliest OOM kill after start).
pub const MEMORY_RAMP: SignedDuration = SignedDuration::from_secs(5);
/// Time from binding to container start (sandbox, image already present).
pub const CREATE_DELAY: SignedDuration = SignedDuration::from_secs(1);

/// The annotation `key` for `container`: `key.<container>` first, then `key`.
pub fn annotation<'a>(pod: &'a Value, key: &str, container: &str) -> Option<&'a str> {
    let anns = pod.pointer("/metadata/annotations")?.as_object()?;
    anns.get(&format!("{key}.{container}"))
        .or_else(|| anns.get(key))
        .and_then(Value::as_str)
}

fn sum_ann(pod: &Value, key: &str, container: &str, parse: fn(&Value) -> Option<i64>) -> i64 {
    let Some(anns) = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    else {
        return 0;
    };
    let a = anns.get(key).and_then(parse).unwrap_or(0);
    let b = anns
        .get(&format!("{key}.{container}"))
        .and_then(parse)
        .unwrap_or(0);
    (a + b).max(0)
}

/// A container's resource requests (CPU millicores, memory bytes); requests default to limits.
pub fn requests(c: &Value) -> (i64, i64) {
    let r = &c["resources"];
    let get = |k: &str, f: fn(&Value) -> Option<i64>| {
        r.get("requests")
            .and_then(|x| x.get(k))
            .and_then(f)
            .or_else(|| r.get("limits").and_then(|x| x.get(k)).and_then(f))
            .unwrap_or(0)
    };
    (get("cpu", cpu_milli), get("memory", mem_bytes))
}

/// A container's limits (CPU millicores, memory bytes), if set.
pub fn limits(c: &Value) -> (Option<i64>, Option<i64>) {
    let l = &c["resources"]["limits"];
    (
        l.get("cpu").and_then(cpu_milli),
        l.get("memory").and_then(mem_bytes),
    )
}

/// The containers of a pod spec (empty if malformed).
pub fn containers(pod: &Value) -> &[Value] {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A pod's requests as the scheduler counts them: sum over containers, at least the largest
/// init container's.
pub fn pod_requests(pod: &Value) -> (i64, i64) {
    let (mut cpu, mut mem) = (0, 0);
    for c in containers(pod) {
        let (a, b) = requests(c);
        cpu += a;
        mem += b;
    }
    if let Some(inits) = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
    {
        for c in inits {
            let (a, b) = requests(c);
            cpu = cpu.max(a);
            mem = mem.max(b);
        }
    }
    (cpu, mem)
}

/// The use of one container (CPU millicores, memory bytes), without noise.
pub fn container_use(pod: &Value, c: &Value) -> (i64, i64) {
    let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
    let (_, req_mem) = requests(c);
    let (lim_cpu, lim_mem) = limits(c);
    let (base_cpu, stress_cpu) = container_cpu_parts(pod, c);
    let base_mem = annotation(pod, MEMORY, name)
        .and_then(|v| mem_bytes(&Value::String(v.to_string())))
        .unwrap_or(if req_mem > 0 {
            req_mem / 2
        } else if let Some(l) = lim_mem {
            l / 2
        } else {
            64 << 20
        });
    let cpu = base_cpu + stress_cpu;
    let mem = base_mem.max(0) + sum_ann(pod, STRESS_MEMORY, name, mem_bytes);
    (lim_cpu.map_or(cpu, |l| cpu.min(l)), mem)
}

/// A container's CPU, apart: (its own use, what stress processes in it ask for), millicores,
/// neither capped by its limit.
pub fn container_cpu_parts(pod: &Value, c: &Value) -> (i64, i64) {
    let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
    let (req_cpu, _) = requests(c);
    let own = annotation(pod, CPU, name)
        .and_then(|v| cpu_milli(&Value::String(v.to_string())))
        .unwrap_or(if req_cpu > 0 { req_cpu / 10 } else { 5 });
    (own.max(0), sum_ann(pod, STRESS_CPU, name, cpu_milli))
}

/// A duration annotation for a container.
pub fn duration(pod: &Value, key: &str, container: &str) -> Option<SignedDuration> {
    annotation(pod, key, container).and_then(super::util::parse_duration)
}

/// Startup time of a container instance: [`STARTUP`] plus up to 10% seeded jitter.
pub fn startup(pod: &Value, container: &str, restarts: i64) -> SignedDuration {
    let base = duration(pod, STARTUP, container).unwrap_or(DEFAULT_STARTUP);
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let h = hash_str(&format!("{uid}/{container}/{restarts}"));
    let frac = f64::from(h % 1000) / 10_000.0;
    base + SignedDuration::from_nanos((base.as_secs_f64() * frac * 1e9) as i64)
}

/// QoS class of a pod (Guaranteed, Burstable or BestEffort).
pub fn qos_class(pod: &Value) -> &'static str {
    let cs = containers(pod);
    let any = cs.iter().any(|c| {
        let r = &c["resources"];
        ["requests", "limits"].iter().any(|k| {
            r.get(*k)
                .and_then(Value::as_object)
                .is_some_and(|m| m.contains_key("cpu") || m.contains_key("memory"))
        })
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = !cs.is_empty()
        && cs.iter().all(|c| {
            let (lc, lm) = limits(c);
            let (rc, rm) = requests(c);
            lc.is_some_and(|l| l == rc) && lm.is_some_and(|l| l == rm)
        });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn use_adds_stress_caps_cpu_and_defaults_from_requests() {
        let pod = json!({"metadata": {"uid": "u", "annotations": {
            CPU: "200m", STRESS_CPU: "1", STRESS_MEMORY: "100Mi", "sim.playbook.dev/stress-memory.b": "1Mi"}},
            "spec": {"containers": [
                {"name": "a", "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}},
                {"name": "b", "resources": {"requests": {"memory": "200Mi"}}}]}});
        let cs = containers(&pod);
        assert_eq!(container_use(&pod, &cs[0]), (500, (512 + 100) << 20));
        assert_eq!(container_use(&pod, &cs[1]), (1200, (100 + 100 + 1) << 20));
        assert_eq!(requests(&cs[0]), (500, 1 << 30));
        assert_eq!(qos_class(&pod), "Burstable");
        let d = startup(&pod, "a", 0);
        assert!(d >= DEFAULT_STARTUP && d < DEFAULT_STARTUP + SignedDuration::from_millis(301));
    }
}

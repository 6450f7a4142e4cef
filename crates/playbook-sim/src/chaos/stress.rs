//! StressChaos effects: the extra CPU and memory each injected stressor burns, summed per pod into the annotations the kubelet/metrics model reads.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::effects::{STRESS_CONTAINERS, STRESS_CPU, STRESS_MEMORY};
use super::kinds::{object_at, split_id};
use super::record::{INJECTED, NOT_INJECTED, Record, seconds};
use crate::store::meta_str;
use crate::world::Ctx;
use playbook_model::chaosmesh::{StressChaosSpec, StressChaosStressors};
use playbook_model::units;

/// The load one stressed container gets: (CPU millicores, memory bytes).
pub fn load_of(
    stressors: &StressChaosStressors,
    pod: &Value,
    container: &str,
    node_memory: Option<f64>,
) -> Result<(u64, u64), String> {
    let c = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            pod.pointer("/spec/initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container));
    let limit = |res: &str| {
        c.and_then(|c| c.pointer(&format!("/resources/limits/{res}")))
            .and_then(Value::as_str)
            .and_then(units::quantity)
    };
    let mut cpu = 0u64;
    if let Some(s) = &stressors.cpu {
        let load = s.load.unwrap_or(100).clamp(0, 100) as u64;
        cpu = s.workers.max(0) as u64 * load * 10;
        if let Some(l) = limit("cpu") {
            cpu = cpu.min((l * 1000.0) as u64);
        }
    }
    let mut mem = 0u64;
    if let Some(s) = &stressors.memory {
        let total = limit("memory").or(node_memory);
        mem = match s.size.as_deref().map(str::trim) {
            Some(p) if p.ends_with('%') => {
                let f = units::percent(p)?;
                let t = total.ok_or("cannot size a percentage: no memory limit nor node memory")?;
                (t * f) as u64
            }
            Some(sz) if !sz.is_empty() => units::byte_size(sz)?,
            _ => total.map(|t| t as u64).unwrap_or(0),
        };
    }
    Ok((cpu, mem))
}

fn stressors_of(chaos: &Value) -> Result<StressChaosStressors, String> {
    let s: StressChaosSpec =
        serde_json::from_value(chaos.get("spec").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("invalid spec: {e}"))?;
    match s.stressors {
        Some(st) if st.cpu.is_some() || st.memory.is_some() => Ok(st),
        _ if s
            .stressng_stressors
            .as_deref()
            .is_some_and(|x| !x.trim().is_empty()) =>
        {
            Ok(StressChaosStressors::default())
        }
        _ => Err("missing stressors".into()),
    }
}

fn node_memory(ctx: &Ctx<'_>, pod: &Value) -> Option<f64> {
    let node = pod.pointer("/spec/nodeName").and_then(Value::as_str)?;
    let n = ctx.get("nodes", "", node)?;
    n.pointer("/status/allocatable/memory")
        .or_else(|| n.pointer("/status/capacity/memory"))
        .and_then(Value::as_str)
        .and_then(units::quantity)
}

/// Injects a StressChaos record: starts its "stress-ng" instance and re-sums the pod's load.
pub fn apply(ctx: &mut Ctx<'_>, chaos: &mut Value, rec: &Record) -> Result<&'static str, String> {
    let stressors = stressors_of(chaos)?;
    let (ns, name, container) = split_id(&rec.id);
    let pod = ctx
        .get("pods", ns, name)
        .ok_or_else(|| format!("pods \"{name}\" not found"))?;
    load_of(
        &stressors,
        &pod,
        container.unwrap_or_default(),
        node_memory(ctx, &pod),
    )?;
    let instances = object_at(chaos, &["status", "instances"]);
    if !instances.contains_key(&rec.id) {
        let now = seconds(ctx.now());
        let uid = format!("{:08x}", rand::Rng::random::<u32>(ctx.rng()));
        let instances = object_at(chaos, &["status", "instances"]);
        instances.insert(
            rec.id.clone(),
            json!({"uid": uid, "startTime": now, "memoryUid": format!("{uid}-mem"), "memoryStartTime": now}),
        );
    }
    sync_pod(ctx, ns, name, chaos)?;
    Ok(INJECTED)
}

/// Recovers a StressChaos record: stops its instance and re-sums the pod's load.
pub fn recover(ctx: &mut Ctx<'_>, chaos: &mut Value, rec: &Record) -> Result<&'static str, String> {
    object_at(chaos, &["status", "instances"]).remove(&rec.id);
    let (ns, name, _) = split_id(&rec.id);
    if ctx.get("pods", ns, name).is_some() {
        sync_pod(ctx, ns, name, chaos)?;
    }
    Ok(NOT_INJECTED)
}

/// Sets the pod's stress annotations to the sum over every StressChaos instance running in it
/// (`current` stands for its own stored version, which may be stale).
pub fn sync_pod(ctx: &mut Ctx<'_>, ns: &str, name: &str, current: &Value) -> Result<(), String> {
    let Some(pod) = ctx.get("pods", ns, name) else {
        return Ok(());
    };
    let node_mem = node_memory(ctx, &pod);
    let uid = meta_str(current, "uid");
    let mut all: Vec<Value> = ctx
        .list("stresschaos.chaos-mesh.org", None)
        .into_iter()
        .filter(|c| meta_str(c, "uid") != uid)
        .map(|c| (*c).clone())
        .collect();
    all.push(current.clone());
    let prefix = format!("{ns}/{name}/");
    let (mut cpu, mut mem) = (0u64, 0u64);
    let mut containers = BTreeSet::new();
    for c in &all {
        let Some(instances) = c.pointer("/status/instances").and_then(Value::as_object) else {
            continue;
        };
        let Ok(stressors) = stressors_of(c) else {
            continue;
        };
        for id in instances.keys() {
            let Some(container) = id.strip_prefix(&prefix) else {
                continue;
            };
            if let Ok((c, m)) = load_of(&stressors, &pod, container, node_mem) {
                cpu += c;
                mem += m;
                if c > 0 || m > 0 {
                    containers.insert(container.to_string());
                }
            }
        }
    }
    let val = |n: u64| {
        if n > 0 {
            json!(n.to_string())
        } else {
            Value::Null
        }
    };
    let names = containers.into_iter().collect::<Vec<_>>().join(",");
    let patch = json!({"metadata": {"annotations": {
        STRESS_CPU: val(cpu),
        STRESS_MEMORY: val(mem),
        STRESS_CONTAINERS: if names.is_empty() { Value::Null } else { json!(names) },
    }}});
    ctx.patch("pods", ns, name, &patch)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

//! StressChaos effects: the extra CPU and memory each injected stressor burns, summed per pod into the annotations the kubelet/metrics model reads; memory grows as memStress allocates it.
//!
//! Memory follows `memStress` (github.com/chaos-mesh/memStress `main.go`, which Chaos Mesh
//! v2.8.1 runs for `stressors.memory`, `controllers/chaosimpl/stresschaos/impl.go` and
//! `api/v1alpha1/stresschaos_types.go` `Normalize`): no memory stress without `workers`; `size`
//! is the total of all workers (0 when absent: memStress' default `0KB`), a percentage is of the
//! **node's** memory (memStress reads `/proc/meminfo`, the host's); the server starts one
//! client per second until `workers` run, each touching its `size / workers` bytes page by page
//! as fast as page faults go ([`FIRST_TOUCH_BYTES_PER_S`]), or linearly over `--time` when the
//! options give it. The stress processes live in the container's cgroup: a restart of the
//! container (an OOM kill, which on cgroup v2 kills the whole group) ends them for good.
//! Chaos Mesh never starts them again: chaos-daemon attaches them to the cgroup of the
//! container *instance* it resolved at injection (`pkg/chaosdaemon/stress_server_linux.go`
//! `ExecMemoryStressors`: `GetPidFromContainerID`, `AttachProcess`), and `Apply`
//! (`controllers/chaosimpl/stresschaos/impl.go`) returns Injected without executing anything
//! while `status.instances` holds the record. So an instance is tied to the containerID that
//! ran at injection, and ends the moment that container stops running (the kill itself, not
//! the later restart that bumps `restartCount`).
//! The annotation is rewritten as the memory grows, every [`RAMP_STEP`] at most.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};

use serde_json::{Value, json};

use super::effects::{STRESS_CONTAINERS, STRESS_CPU, STRESS_MEMORY};
use super::kinds::{object_at, split_id};
use super::record::{INJECTED, NOT_INJECTED, Record, seconds};
use crate::store::meta_str;
use crate::world::Ctx;
use playbook_model::chaosmesh::{StressChaosSpec, StressChaosStressors};
use playbook_model::units;

/// How fast a memStress client makes anonymous memory resident when it touches it page by
/// page with no `--time`: a first-touch page fault (allocate, zero 4 KiB, charge the memory
/// cgroup) takes about 2 µs, so about 2 GiB/s.
pub const FIRST_TOUCH_BYTES_PER_S: f64 = 2.0 * 1024.0 * 1024.0 * 1024.0;

/// The longest time between two rewrites of a growing memory stress.
pub const RAMP_STEP: SignedDuration = SignedDuration::from_millis(50);

/// The memory one memStress instance allocates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemPlan {
    /// Bytes in total (all workers).
    pub total: u64,
    /// Clients, started one per second.
    pub workers: u64,
    /// `--time`: seconds each client takes to reach its size (None: as fast as it can).
    pub grow_s: Option<f64>,
}

impl MemPlan {
    /// Bytes held `elapsed_s` after the instance started, and whether it still grows.
    pub fn at(&self, elapsed_s: f64) -> (u64, bool) {
        if self.total == 0 || self.workers == 0 {
            return (0, false);
        }
        let each = self.total as f64 / self.workers as f64;
        let grow = self
            .grow_s
            .filter(|g| *g > 0.0)
            .unwrap_or(each / FIRST_TOUCH_BYTES_PER_S);
        let (mut held, mut growing) = (0.0, false);
        for k in 0..self.workers.min(8192) {
            let t = elapsed_s - k as f64;
            if t < 0.0 {
                growing = true;
                break;
            }
            let f = if grow <= 0.0 {
                1.0
            } else {
                (t / grow).min(1.0)
            };
            growing |= f < 1.0;
            held += each * f;
        }
        (held as u64, growing)
    }
}

/// The load one stressed container gets: (CPU millicores, the memory plan).
pub fn load_of(
    stressors: &StressChaosStressors,
    node_memory: Option<f64>,
) -> Result<(u64, MemPlan), String> {
    // What the stress-ng CPU workers ask for (each `load` % of one core). Not capped here: the
    // container's limit caps its use (controllers/model.rs `container_use`), and how much of
    // the limit is left to the container's own process depends on this demand
    // (platform/traffic.rs `saturation`).
    let mut cpu = 0u64;
    if let Some(s) = &stressors.cpu {
        let load = s.load.unwrap_or(100).clamp(0, 100) as u64;
        cpu = s.workers.max(0) as u64 * load * 10;
    }
    let mut mem = MemPlan {
        total: 0,
        workers: 0,
        grow_s: None,
    };
    if let Some(s) = stressors.memory.as_ref().filter(|s| s.workers > 0) {
        mem.workers = s.workers as u64;
        mem.total = match s.size.as_deref().map(str::trim) {
            Some(p) if p.ends_with('%') => {
                let f = units::percent(p)?;
                let t =
                    node_memory.ok_or("cannot size a percentage: the node's memory is unknown")?;
                (t * f) as u64
            }
            Some(sz) if !sz.is_empty() => units::byte_size(sz)?,
            _ => 0,
        };
        // `--time` among the options (memStress' flag; Go's flag package takes -time too).
        let opts: Vec<&str> = s
            .options
            .iter()
            .flatten()
            .flat_map(|o| o.split_whitespace())
            .collect();
        for (i, o) in opts.iter().enumerate() {
            let o = o.trim_start_matches('-');
            let v = match o.split_once('=') {
                Some(("time", v)) => Some(v),
                None if o == "time" => opts.get(i + 1).copied(),
                _ => None,
            };
            if let Some(v) = v {
                mem.grow_s = Some(units::go_duration_secs(v)?);
            }
        }
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

/// When each memStress instance started, to the nanosecond (`status.instances` keeps whole
/// seconds), by `<chaos uid>/<record id>`.
/// With the container instance then running (see [`instance_of`]; the stress ends when it does).
pub type Starts = BTreeMap<String, (Timestamp, Option<String>)>;

/// Injects a StressChaos record: starts its "stress-ng" instance and re-sums the pod's load.
pub fn apply(
    ctx: &mut Ctx<'_>,
    chaos: &mut Value,
    rec: &Record,
    starts: &mut Starts,
) -> Result<&'static str, String> {
    let stressors = stressors_of(chaos)?;
    let (ns, name, container) = split_id(&rec.id);
    let pod = ctx
        .get("pods", ns, name)
        .ok_or_else(|| format!("pods \"{name}\" not found"))?;
    super::daemon::reach(ctx, ns, name)?;
    load_of(&stressors, node_memory(ctx, &pod))?;
    let instances = object_at(chaos, &["status", "instances"]);
    if !instances.contains_key(&rec.id) {
        let target = instance_of(&pod, container.unwrap_or_default());
        starts.insert(
            format!("{}/{}", meta_str(chaos, "uid"), rec.id),
            (ctx.now(), target),
        );
        let now = seconds(ctx.now());
        let uid = format!("{:08x}", rand::Rng::random::<u32>(ctx.rng()));
        let instances = object_at(chaos, &["status", "instances"]);
        instances.insert(
            rec.id.clone(),
            json!({"uid": uid, "startTime": now, "memoryUid": format!("{uid}-mem"), "memoryStartTime": now}),
        );
    }
    sync_pod(ctx, ns, name, Some(chaos), starts)?;
    Ok(INJECTED)
}

/// Recovers a StressChaos record: stops its instance and re-sums the pod's load.
pub fn recover(
    ctx: &mut Ctx<'_>,
    chaos: &mut Value,
    rec: &Record,
    starts: &mut Starts,
) -> Result<&'static str, String> {
    object_at(chaos, &["status", "instances"]).remove(&rec.id);
    starts.remove(&format!("{}/{}", meta_str(chaos, "uid"), rec.id));
    let (ns, name, _) = split_id(&rec.id);
    if ctx.get("pods", ns, name).is_some() {
        sync_pod(ctx, ns, name, Some(chaos), starts)?;
    }
    Ok(NOT_INJECTED)
}

/// Rewrites the load of every pod whose memory stress still grows (call on every reconcile;
/// cheap when none does); [`sync_pod`] wakes the world at the next step.
pub fn ramp(ctx: &mut Ctx<'_>, starts: &mut Starts) {
    let now = ctx.now();
    let mut pods: BTreeSet<(String, String)> = BTreeSet::new();
    let mut live = BTreeSet::new();
    for c in ctx.list("stresschaos.chaos-mesh.org", None) {
        let uid = meta_str(&c, "uid");
        let Some(inst) = c.pointer("/status/instances").and_then(Value::as_object) else {
            continue;
        };
        let Ok(stressors) = stressors_of(&c) else {
            continue;
        };
        for id in inst.keys() {
            let key = format!("{uid}/{id}");
            let Some(start) = starts.get(&key).map(|s| s.0) else {
                continue;
            };
            live.insert(key);
            let (ns, name, _) = split_id(id);
            let Some(pod) = ctx.get("pods", ns, name) else {
                continue;
            };
            let node_mem = node_memory(ctx, &pod);
            // Still growing, or it was one step ago (its last rewrite is due).
            let back = now.duration_since(start) - RAMP_STEP - RAMP_STEP;
            let grows =
                load_of(&stressors, node_mem).is_ok_and(|(_, plan)| plan.at(back.as_secs_f64()).1);
            if grows {
                pods.insert((ns.to_string(), name.to_string()));
            }
        }
    }
    starts.retain(|k, _| live.contains(k));
    for (ns, name) in pods {
        let _ = sync_pod(ctx, &ns, &name, None, starts);
    }
}

/// Sets the pod's stress annotations to the sum over every StressChaos instance running in it,
/// each as far as its memory has grown (`current` stands for its own stored version, which may
/// be stale).
pub fn sync_pod(
    ctx: &mut Ctx<'_>,
    ns: &str,
    name: &str,
    current: Option<&Value>,
    starts: &Starts,
) -> Result<(), String> {
    let Some(pod) = ctx.get("pods", ns, name) else {
        return Ok(());
    };
    let node_mem = node_memory(ctx, &pod);
    let uid = current.map(|c| meta_str(c, "uid")).unwrap_or_default();
    let mut all: Vec<Value> = ctx
        .list("stresschaos.chaos-mesh.org", None)
        .into_iter()
        .filter(|c| current.is_none() || meta_str(c, "uid") != uid)
        .map(|c| (*c).clone())
        .collect();
    all.extend(current.cloned());
    let prefix = format!("{ns}/{name}/");
    let now = ctx.now();
    let (mut cpu, mut mem) = (0u64, 0u64);
    let mut containers = BTreeSet::new();
    let mut growing = false;
    for c in &all {
        let Some(instances) = c.pointer("/status/instances").and_then(Value::as_object) else {
            continue;
        };
        let Ok(stressors) = stressors_of(c) else {
            continue;
        };
        for (id, inst) in instances {
            let Some(container) = id.strip_prefix(&prefix) else {
                continue;
            };
            // The stress processes died with the container instance they joined: it stopped
            // running (killed, waiting in CrashLoopBackOff) or another one runs now.
            let start = match starts.get(&format!("{}/{id}", meta_str(c, "uid"))) {
                Some((t, target))
                    if target.is_some() && instance_of(&pod, container) == *target =>
                {
                    *t
                }
                Some(_) => continue,
                None => {
                    let t = inst
                        .get("memoryStartTime")
                        .and_then(Value::as_str)
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(now);
                    if ended_since(&pod, container, t) {
                        continue;
                    }
                    t
                }
            };
            if let Ok((c, plan)) = load_of(&stressors, node_mem) {
                let (m, more) = plan.at(now.duration_since(start).as_secs_f64());
                growing |= more;
                cpu += c;
                mem += m;
                if c > 0 || plan.total > 0 {
                    containers.insert(container.to_string());
                }
            }
        }
    }
    if growing {
        ctx.wake_at(now + RAMP_STEP);
    }
    let val = |n: u64| {
        if n > 0 {
            json!(n.to_string())
        } else {
            Value::Null
        }
    };
    let names = containers.into_iter().collect::<Vec<_>>().join(",");
    let anns = json!({
        // A quantity, as the annotation is read (controllers/model.rs): millicores.
        STRESS_CPU: if cpu > 0 { json!(format!("{cpu}m")) } else { Value::Null },
        STRESS_MEMORY: val(mem),
        STRESS_CONTAINERS: if names.is_empty() { Value::Null } else { json!(names) },
    });
    let have = pod.pointer("/metadata/annotations");
    let same = anns
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| have.and_then(|h| h.get(k)).unwrap_or(&Value::Null) == v);
    if same {
        return Ok(());
    }
    ctx.patch(
        "pods",
        ns,
        name,
        &json!({"metadata": {"annotations": anns}}),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// The status of `container` of `pod`.
fn status_of<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
}

/// The instance of `container` of `pod` the stress joins: its containerID while it runs;
/// None while it does not (terminated, waiting); `""` without a status (no kubelet runs it).
fn instance_of(pod: &Value, container: &str) -> Option<String> {
    let Some(cs) = status_of(pod, container) else {
        return Some(String::new());
    };
    cs.pointer("/state/running")?;
    Some(cs.get("containerID")?.as_str()?.to_string())
}

/// Has the instance of `container` of `pod` that ran at `t` ended: not running now, or
/// (re)started after `t`?
fn ended_since(pod: &Value, container: &str, t: Timestamp) -> bool {
    let started = status_of(pod, container)
        .and_then(|c| c.pointer("/state/running/startedAt")?.as_str())
        .map(|s| s.parse::<Timestamp>().ok());
    match started {
        None => status_of(pod, container).is_some(),
        Some(started) => started.is_some_and(|started| started > t),
    }
}

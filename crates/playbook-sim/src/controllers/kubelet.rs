//! The kubelet model: runs bound pods through ContainerCreating, Running and Ready, restarts
//! failed and OOMKilled containers with the real back-off, completes run-to-completion pods,
//! and holds deleted pods until their containers stopped. The rules are in [`super::model`].
//!
//! It honours the Chaos Mesh marks of `crate::chaos::effects`: a container whose spec
//! image changed (pod-failure's pause image, and back) or that a `container-kill` mark names
//! restarts once (restartCount + 1, lastState terminated Error 137, Ready again after its
//! startup); a container running pod-failure's pause image is Ready or not, and killed or
//! not, as its probes decide (`crate::chaos::effects::pause_container`); an OOM kill
//! ends the StressChaos memory load of the pod (stress-ng dies with the container's cgroup).

use std::collections::{BTreeSet, HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::model::{
    self, CREATE_DELAY, EXIT_CODE, KUBELET_FINALIZER, MEMORY_RAMP, RUN_FOR, SHUTDOWN,
    container_use, containers, limits,
};
use super::nodes::{cidr_octet, internal_ip};
use super::reconcile::{Action, Reconcile};
use super::util::{
    Key, deleting, hash_str, i, key_of, parse_ts, pod_terminal, s, set_condition, ts, write_status,
};
use crate::chaos::effects::{CONTAINER_KILL, PAUSE_IMAGE, STRESS_MEMORY, pause_container};
use crate::resources::{Res, res};
use crate::store::{Event, EventKind, finalizers};
use crate::world::{Ctx, Lag};

const SOURCE: &str = "kubelet";
const CONDITION_ORDER: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// The kubelet back-off before restart number `restarts + 1`: none for the first restart,
/// then 10 s doubling up to 5 min.
pub fn backoff(restarts: i64) -> SignedDuration {
    if restarts <= 0 {
        return SignedDuration::ZERO;
    }
    let secs = 10i64 << (restarts - 1).min(5);
    SignedDuration::from_secs(secs.min(300))
}

/// The kubelet's PLEG relist period (pkg/kubelet/kubelet.go `genericPlegRelistPeriod`).
pub const PLEG_RELIST: SignedDuration = SignedDuration::from_secs(1);

/// The first PLEG relist of `node`'s kubelet at or after `t`: the kubelet sees container
/// starts, exits and probe results only when it relists (pkg/kubelet/pleg/generic.go
/// `Relist`, every [`PLEG_RELIST`]), so its status updates fall on that grid. Each node's
/// kubelet relists on its own phase (from the node name: stable per run). Only with
/// controller lag on ([`Ctx::lagged`]).
fn pleg_tick(ctx: &Ctx<'_>, node: &str, t: Timestamp) -> Timestamp {
    if !ctx.lagged() {
        return t;
    }
    let period = PLEG_RELIST.as_nanos();
    let phase = i128::from(hash_str(node)) % period;
    let n = t.as_nanosecond() - phase;
    let next = n.div_euclid(period) * period + if n.rem_euclid(period) == 0 { 0 } else { period };
    Timestamp::from_nanosecond(next + phase).unwrap_or(t)
}

/// When the container-kill mark of `container` was set (see [`CONTAINER_KILL`]).
fn kill_mark(pod: &Value, container: &str) -> Option<Timestamp> {
    let v = pod
        .pointer("/metadata/annotations")?
        .get(CONTAINER_KILL)?
        .as_str()?;
    v.split(',').find_map(|e| {
        let (c, at) = e.split_once('@')?;
        if c.trim() != container {
            return None;
        }
        let t: Timestamp = at.trim().parse().ok()?;
        Timestamp::from_second(t.as_second()).ok()
    })
}

/// A duration as Go prints it (`10s`, `1m20s`, `5m0s`).
fn go_duration(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

type Ev = (&'static str, &'static str, String);

/// What one step of a pod gives: its next status, the events about it and about its node,
/// when to look again, and whether the StressChaos memory load died with the container.
#[derive(Default)]
struct Step {
    status: Value,
    events: Vec<Ev>,
    node_events: Vec<Ev>,
    next: Option<Timestamp>,
    drop_stress: bool,
}

/// The kubelet of every simulated node. See the module doc.
#[derive(Default)]
pub struct Kubelet {
    ips: HashMap<String, BTreeSet<u32>>,
    ip_of: HashMap<Key, (String, u32)>,
    killing: HashSet<Key>,
}

fn ip_for(octet: u32, idx: u32) -> String {
    if idx < 253 {
        format!("10.244.{octet}.{}", idx + 2)
    } else {
        let k = idx - 253;
        format!("10.{}.{octet}.{}", 245 + k / 253, k % 253 + 2)
    }
}

fn ip_index(ip: &str) -> Option<u32> {
    let o: Vec<u32> = ip.split('.').filter_map(|x| x.parse().ok()).collect();
    match o.as_slice() {
        [10, 244, _, x] if *x >= 2 => Some(x - 2),
        [10, b, _, x] if *b >= 245 && *x >= 2 => Some(253 + (b - 245) * 253 + x - 2),
        _ => None,
    }
}

fn container_id(uid: &str, name: &str, restarts: i64) -> String {
    let a = hash_str(&format!("{uid}/{name}/{restarts}"));
    let b = hash_str(&format!("{name}/{restarts}/{uid}"));
    format!("containerd://{a:08x}{b:08x}{a:08x}{b:08x}")
}

impl Kubelet {
    fn allocate_ip(&mut self, key: &Key, node: &Value) -> String {
        let node_name = s(node, "/metadata/name").to_string();
        let octet = cidr_octet(node);
        if let Some((n, idx)) = self.ip_of.get(key)
            && *n == node_name
        {
            return ip_for(octet, *idx);
        }
        let used = self.ips.entry(node_name.clone()).or_default();
        let idx = (0..).find(|x| !used.contains(x)).unwrap_or(0);
        used.insert(idx);
        self.ip_of.insert(key.clone(), (node_name, idx));
        ip_for(octet, idx)
    }

    fn free_ip(&mut self, key: &Key) {
        if let Some((n, idx)) = self.ip_of.remove(key)
            && let Some(set) = self.ips.get_mut(&n)
        {
            set.remove(&idx);
        }
    }

    fn rebuild(&mut self, ctx: &Ctx<'_>) {
        self.ips.clear();
        self.ip_of.clear();
        for pod in ctx.list(res::PODS, None) {
            let node = s(&pod, "/spec/nodeName");
            if let Some(idx) = ip_index(s(&pod, "/status/podIP"))
                && !node.is_empty()
            {
                self.ips.entry(node.to_string()).or_default().insert(idx);
                self.ip_of.insert(key_of(&pod), (node.to_string(), idx));
            }
        }
    }

    /// pkg/kubelet/kubelet.go `SyncPod` for one pod of any node: hold it with the finalizer,
    /// step its containers, write the status (status_manager.go), record the events.
    fn sync_pod(&mut self, ctx: &mut Ctx<'_>, key: &Key) -> Action {
        let Some(mut pod) = ctx.get(res::PODS, &key.namespace, &key.name) else {
            return Action::await_change();
        };
        let node_name = s(&pod, "/spec/nodeName").to_string();
        let Some(node) = ctx
            .get(res::NODES, "", &node_name)
            .filter(|_| !node_name.is_empty())
        else {
            return Action::await_change();
        };
        let now = ctx.now();
        let fins = finalizers(&pod);
        let has_fin = fins.iter().any(|f| f == KUBELET_FINALIZER);
        if deleting(&pod) {
            return match has_fin {
                true => self.terminate(ctx, key, &pod, fins, now),
                false => Action::await_change(),
            };
        }
        if !has_fin && !pod_terminal(&pod) {
            let mut f = fins;
            f.push(KUBELET_FINALIZER.to_string());
            let patch = json!({"metadata": {"finalizers": f}});
            match ctx.patch(res::PODS, &key.namespace, &key.name, &patch) {
                Ok(p) => pod = p,
                Err(_) => return Action::await_change(),
            }
        }
        let step = self.step(key, &pod, &node, now);
        write_status(ctx, res::PODS, &pod, step.status);
        for (t, reason, msg) in step.node_events {
            ctx.record_event(&node, t, reason, &msg, "kernel-monitor");
        }
        if step.drop_stress {
            drop_memory_stress(ctx, key, &pod);
        }
        for (t, reason, msg) in step.events {
            ctx.record_event(&pod, t, reason, &msg, SOURCE);
        }
        match step.next {
            Some(t) => Action::requeue_at(pleg_tick(ctx, &node_name, t)),
            None => Action::await_change(),
        }
    }

    /// A deleted pod: Killing, then drop the finalizer once its containers stopped.
    fn terminate(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &Key,
        pod: &Value,
        fins: Vec<String>,
        now: Timestamp,
    ) -> Action {
        let terminal = pod_terminal(pod);
        if self.killing.insert(key.clone()) && !terminal {
            for c in containers(pod) {
                let name = s(c, "/name");
                ctx.record_event(
                    pod,
                    "Normal",
                    "Killing",
                    &format!("Stopping container {name}"),
                    SOURCE,
                );
            }
        }
        let grace = i(pod, "/metadata/deletionGracePeriodSeconds")
            .or_else(|| i(pod, "/spec/terminationGracePeriodSeconds"))
            .unwrap_or(30)
            .max(0);
        let shutdown = containers(pod)
            .iter()
            .map(|c| {
                model::duration(pod, SHUTDOWN, s(c, "/name")).unwrap_or(model::DEFAULT_SHUTDOWN)
            })
            .max()
            .unwrap_or(SignedDuration::ZERO);
        let stop = if terminal {
            SignedDuration::ZERO
        } else {
            shutdown.min(SignedDuration::from_secs(grace))
        };
        let from = parse_ts(&pod["metadata"]["deletionTimestamp"]).unwrap_or(now);
        let at = pleg_tick(ctx, s(pod, "/spec/nodeName"), from + stop);
        if now < at {
            return Action::requeue_at(at);
        }
        let rest: Vec<String> = fins
            .into_iter()
            .filter(|f| f != KUBELET_FINALIZER)
            .collect();
        let f = if rest.is_empty() {
            Value::Null
        } else {
            json!(rest)
        };
        let _ = ctx.patch(
            res::PODS,
            &key.namespace,
            &key.name,
            &json!({"metadata": {"finalizers": f}}),
        );
        Action::await_change()
    }

    /// The pod's next status, the events to record, and when to look again.
    /// The first status of a pod the kubelet admits: start time, IPs, QoS class, containers
    /// creating (pkg/kubelet/kubelet_pods.go `generateAPIPodStatus`).
    fn first_status(&mut self, key: &Key, pod: &Value, node: &Value, now: Timestamp) -> Value {
        let ip = self.allocate_ip(key, node);
        let host = internal_ip(node).to_string();
        let css: Vec<Value> = containers(pod).iter().map(creating).collect();
        json!({"startTime": ts(now), "hostIP": host, "hostIPs": [{"ip": host}], "podIP": ip,
            "podIPs": [{"ip": ip}], "qosClass": model::qos_class(pod), "phase": "Pending",
            "containerStatuses": css})
    }

    /// The pod's next status, the events to record, and when to look again.
    fn step(&mut self, key: &Key, pod: &Value, node: &Value, now: Timestamp) -> Step {
        let mut st = pod["status"].clone();
        if parse_ts(&st["startTime"]).is_none() {
            st = self.first_status(key, pod, node, now);
        }
        let start_time = parse_ts(&st["startTime"]).unwrap_or(now);
        let mut run = Run {
            pod,
            now,
            uid: s(pod, "/metadata/uid"),
            key,
            policy: match s(pod, "/spec/restartPolicy") {
                "" => "Always",
                p => p,
            },
            out: Step::default(),
        };
        if pod_terminal(pod) {
            run.out.status = st;
            return run.out;
        }
        let mut css: Vec<Value> = st["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for c in containers(pod) {
            let name = s(c, "/name");
            let idx = match css.iter().position(|x| x["name"] == name) {
                Some(p) => p,
                None => {
                    css.push(creating(c));
                    css.len() - 1
                }
            };
            run.container(&mut css[idx], c, start_time);
        }
        pod_phase_and_conditions(&mut st, &css, now);
        st["containerStatuses"] = json!(css);
        run.out.status = st;
        run.out
    }
}

/// The status of a container being created.
fn creating(c: &Value) -> Value {
    json!({"name": s(c, "/name"), "image": s(c, "/image"), "imageID": "",
        "ready": false, "restartCount": 0, "started": false,
        "state": {"waiting": {"reason": "ContainerCreating"}}})
}

/// One pod's step in progress: what it reads, and what it gives.
struct Run<'a> {
    pod: &'a Value,
    now: Timestamp,
    uid: &'a str,
    key: &'a Key,
    policy: &'a str,
    out: Step,
}

impl Run<'_> {
    fn wake(&mut self, t: Timestamp) {
        self.out.next = Some(self.out.next.map_or(t, |n| n.min(t)));
    }

    /// Starts container `c` as instance `restarts` (kuberuntime_container.go `startContainer`).
    fn start(&mut self, cs: &mut Value, c: &Value, restarts: i64) {
        let (name, image) = (s(c, "/name"), s(c, "/image"));
        cs["state"] = json!({"running": {"startedAt": ts(self.now)}});
        cs["image"] = json!(image);
        cs["started"] = json!(true);
        cs["ready"] = json!(false);
        cs["restartCount"] = json!(restarts);
        cs["containerID"] = json!(container_id(self.uid, name, restarts));
        cs["imageID"] = json!(format!("{image}@sha256:{:08x}", hash_str(image)));
        let evs = &mut self.out.events;
        evs.push((
            "Normal",
            "Pulled",
            format!("Container image \"{image}\" already present on machine"),
        ));
        evs.push(("Normal", "Created", format!("Created container: {name}")));
        evs.push(("Normal", "Started", format!("Started container {name}")));
    }

    /// One container: waiting (creating, back-off), or running (killed, failing, exiting,
    /// becoming ready).
    fn container(&mut self, cs: &mut Value, c: &Value, start_time: Timestamp) {
        let restarts = cs["restartCount"].as_i64().unwrap_or(0);
        let state = cs["state"].clone();
        if let Some(w) = state.get("waiting") {
            let (due, instance) = if w["reason"] == "CrashLoopBackOff" {
                let fin =
                    parse_ts(&cs["lastState"]["terminated"]["finishedAt"]).unwrap_or(self.now);
                // The back-off is keyed by the container's hash (kuberuntime_manager.go
                // `doBackOff`, `getStableKey`): a changed spec (pod-failure's image
                // restored) starts at once.
                let changed = cs["image"].is_string() && cs["image"] != c["image"];
                let due = if changed {
                    self.now
                } else {
                    fin + backoff(restarts)
                };
                (due, restarts + 1)
            } else {
                (start_time + CREATE_DELAY, restarts)
            };
            if self.now >= due {
                self.start(cs, c, instance);
            } else {
                self.wake(due);
            }
            return;
        }
        if let Some(run) = state.get("running") {
            self.running(cs, c, run, restarts);
        }
    }

    /// A running container. Chaos Mesh conventions (see chaos/effects.rs): an image swapped
    /// in the spec (pod-failure's pause image, and back) or a container-kill mark restarts
    /// it once; the pause image serves nothing: its probes decide.
    fn running(&mut self, cs: &mut Value, c: &Value, run: &Value, restarts: i64) {
        let (pod, now, name) = (self.pod, self.now, s(c, "/name"));
        let started_at = parse_ts(&run["startedAt"]).unwrap_or(now);
        let swapped = cs["image"].is_string() && cs["image"] != c["image"];
        let kill = kill_mark(pod, name).is_some_and(|t| {
            started_at < t
                && parse_ts(&cs["lastState"]["terminated"]["finishedAt"]).is_none_or(|f| f < t)
        });
        if swapped || kill {
            let why = if swapped {
                format!("Container {name} definition changed, will be restarted")
            } else {
                format!("Stopping container {name}")
            };
            self.out.events.push(("Normal", "Killing", why));
            cs["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "Error",
                "startedAt": run["startedAt"], "finishedAt": ts(now), "containerID": cs["containerID"]}});
            self.start(cs, c, restarts + 1);
            self.wake(now + model::startup(pod, name, restarts + 1));
            return;
        }
        let pause = (s(c, "/image") == PAUSE_IMAGE).then(|| pause_container(c));
        let (_, mem) = container_use(pod, c);
        let mut ends: Vec<(Timestamp, &'static str, i64)> = Vec::new();
        if let Some((_, Some(kill))) = pause {
            // Killed for failing its liveness/startup probe; pause exits 0 on SIGTERM.
            ends.push((started_at + kill, "Completed", 0));
        }
        if let (_, Some(limit)) = limits(c)
            && mem > limit
        {
            ends.push((started_at + MEMORY_RAMP, "OOMKilled", 137));
        }
        if let Some(d) = model::duration(pod, RUN_FOR, name) {
            let code = model::annotation(pod, EXIT_CODE, name)
                .and_then(|x| x.trim().parse::<i64>().ok())
                .unwrap_or(0);
            ends.push((
                started_at + d,
                if code == 0 { "Completed" } else { "Error" },
                code,
            ));
        }
        match ends.into_iter().min_by_key(|e| e.0) {
            Some((at, reason, code)) if at <= now => {
                self.exited(cs, c, run, restarts, (reason, code, mem))
            }
            other => {
                if let Some((at, _, _)) = other {
                    self.wake(at);
                }
                if let Some((ready, _)) = pause {
                    cs["ready"] = json!(ready);
                    return;
                }
                let ready_at = started_at + model::startup(pod, name, restarts);
                if now >= ready_at {
                    cs["ready"] = json!(true);
                } else {
                    self.wake(ready_at);
                }
            }
        }
    }

    /// A container that exited (or was OOMKilled): terminated for good, restarted at once,
    /// or in CrashLoopBackOff (kuberuntime_manager.go `computePodActions`, the back-off of
    /// pkg/kubelet/kuberuntime `doBackOff`).
    fn exited(
        &mut self,
        cs: &mut Value,
        c: &Value,
        run: &Value,
        restarts: i64,
        (reason, code, mem): (&'static str, i64, i64),
    ) {
        let (name, now) = (s(c, "/name"), self.now);
        if reason == "OOMKilled" {
            self.oom_killed(name, restarts, mem);
        }
        let term = json!({"terminated": {"exitCode": code, "reason": reason,
            "startedAt": run["startedAt"], "finishedAt": ts(now), "containerID": cs["containerID"]}});
        let restart = match self.policy {
            "Never" => false,
            "OnFailure" => code != 0,
            _ => true,
        };
        cs["ready"] = json!(false);
        if !restart {
            cs["state"] = term;
            cs["started"] = json!(false);
            return;
        }
        cs["lastState"] = term;
        let delay = backoff(restarts);
        if delay.is_zero() {
            self.start(cs, c, restarts + 1);
            return;
        }
        let (ns, pname, uid) = (&self.key.namespace, &self.key.name, self.uid);
        cs["started"] = json!(false);
        cs["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!(
            "back-off {} restarting failed container={name} pod={pname}_{ns}({uid})", go_duration(delay))}});
        let msg = format!("Back-off restarting failed container {name} in pod {pname}_{ns}({uid})");
        self.out.events.push(("Warning", "BackOff", msg));
        self.wake(now + delay);
    }

    /// An OOM kill: the StressChaos load in the container's cgroup dies with it, and the
    /// kernel's line is reported on the Node. No pod event: the kubelet only reports
    /// OOMKilled in the status (pkg/kubelet/oom/oom_watcher_linux.go records SystemOOM only
    /// for the root cgroup); node-problem-detector's kernel monitor
    /// (config/kernel-monitor.json) turns the kernel's line into an OOMKilling event.
    fn oom_killed(&mut self, name: &str, restarts: i64, mem: i64) {
        if model::annotation(self.pod, STRESS_MEMORY, name).is_some() {
            self.out.drop_stress = true;
        }
        let pid = 1000 + hash_str(&format!("{}/{name}/{restarts}", self.uid)) % 30000;
        let adj = if model::qos_class(self.pod) == "Guaranteed" {
            -997
        } else {
            999
        };
        self.out.node_events.push(("Warning", "OOMKilling", format!(
            "Memory cgroup out of memory: Killed process {pid} ({name}) total-vm:{}kB, anon-rss:{}kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:{}kB oom_score_adj:{adj}",
            (mem >> 10) + 65536, mem >> 10, (mem >> 20).max(1) * 2)));
    }
}

/// The phase and the pod conditions from the container statuses
/// (pkg/kubelet/kubelet_pods.go `getPhase`, pkg/kubelet/status/generate.go).
fn pod_phase_and_conditions(st: &mut Value, css: &[Value], now: Timestamp) {
    let all_done = !css.is_empty() && css.iter().all(|c| c["state"].get("terminated").is_some());
    let creating = css
        .iter()
        .any(|c| c["state"]["waiting"]["reason"] == "ContainerCreating");
    let phase = if all_done {
        if css
            .iter()
            .all(|c| c["state"]["terminated"]["exitCode"] == 0)
        {
            "Succeeded"
        } else {
            "Failed"
        }
    } else if creating {
        "Pending"
    } else {
        "Running"
    };
    st["phase"] = json!(phase);
    let unready: Vec<&str> = css
        .iter()
        .filter(|c| c["ready"] != true)
        .filter_map(|c| c["name"].as_str())
        .collect();
    let mut conds: Vec<Value> = st["conditions"].as_array().cloned().unwrap_or_default();
    let started = parse_ts(&st["startTime"]).unwrap_or(now);
    set_condition(
        &mut conds,
        "PodReadyToStartContainers",
        "True",
        "",
        "",
        started,
        false,
    );
    set_condition(&mut conds, "Initialized", "True", "", "", started, false);
    let (rs, reason, msg) = match phase {
        "Succeeded" => ("False", "PodCompleted", String::new()),
        "Failed" => ("False", "PodFailed", String::new()),
        _ if unready.is_empty() => ("True", "", String::new()),
        _ => (
            "False",
            "ContainersNotReady",
            format!("containers with unready status: [{}]", unready.join(" ")),
        ),
    };
    set_condition(&mut conds, "Ready", rs, reason, &msg, now, false);
    set_condition(&mut conds, "ContainersReady", rs, reason, &msg, now, false);
    if !conds.iter().any(|c| c["type"] == "PodScheduled") {
        set_condition(&mut conds, "PodScheduled", "True", "", "", started, false);
    }
    for c in &mut conds {
        if c.get("reason").and_then(Value::as_str) == Some("")
            && let Some(m) = c.as_object_mut()
        {
            m.remove("reason");
            m.remove("message");
        }
    }
    conds.sort_by_key(|c| {
        CONDITION_ORDER
            .iter()
            .position(|t| c["type"] == *t)
            .unwrap_or(CONDITION_ORDER.len())
    });
    st["conditions"] = json!(conds);
}

/// Removes the StressChaos memory load of a pod (it died with the OOMKilled container).
fn drop_memory_stress(ctx: &mut Ctx<'_>, key: &Key, pod: &Value) {
    let anns: serde_json::Map<String, Value> = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(STRESS_MEMORY))
        .map(|k| (k.clone(), Value::Null))
        .collect();
    let patch = json!({"metadata": {"annotations": anns}});
    let _ = ctx.patch(res::PODS, &key.namespace, &key.name, &patch);
}

impl Reconcile for Kubelet {
    const NAME: &'static str = "kubelet";
    const PRIMARY: Res = res::PODS;
    const KIND: &'static str = "Pod";
    const OWNS: &'static [Res] = &[];
    const WATCHES: &'static [&'static str] = &["pods"];

    // pkg/kubelet/config/apiserver.go watches the node's pods; pod_workers.go syncs them.
    // Container state changes are seen on the PLEG relist instead (see `pleg_tick`).
    fn lag(&self) -> Lag {
        Lag::millis(10, 100)
    }

    fn reset(&mut self, ctx: &Ctx<'_>) {
        self.rebuild(ctx);
    }

    /// Every change of a pod queues it; a deleted one frees its IP. In order: a pod deleted
    /// and then created again under the same name (a StatefulSet ordinal,
    /// pkg/controller/statefulset/stateful_set_control.go) is a new pod to run.
    fn primary_changed(&mut self, e: &Event) -> bool {
        if e.kind == EventKind::Deleted {
            let key = Key::of_event(e);
            self.free_ip(&key);
            self.killing.remove(&key);
            return false;
        }
        true
    }

    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) -> Action {
        self.sync_pod(ctx, key)
    }
}

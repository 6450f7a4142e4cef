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
use super::util::{
    Due, Key, deleting, hash_str, i, key_of, parse_ts, pod_terminal, s, set_condition, ts,
    write_status,
};
use crate::chaos::effects::{CONTAINER_KILL, PAUSE_IMAGE, STRESS_MEMORY, pause_container};
use crate::store::{EventKind, finalizers};
use crate::world::{Controller, Ctx};

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

/// The kubelet of every simulated node. See the module doc.
#[derive(Default)]
pub struct Kubelet {
    due: Due,
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

    fn rebuild(&mut self, ctx: &Ctx<'_>) -> Vec<Key> {
        self.ips.clear();
        self.ip_of.clear();
        self.due.clear();
        let mut keys = Vec::new();
        for pod in ctx.list("pods", None) {
            let key = key_of(&pod);
            let node = s(&pod, "/spec/nodeName");
            if let Some(idx) = ip_index(s(&pod, "/status/podIP"))
                && !node.is_empty()
            {
                self.ips.entry(node.to_string()).or_default().insert(idx);
                self.ip_of.insert(key.clone(), (node.to_string(), idx));
            }
            keys.push(key);
        }
        keys
    }

    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) {
        let Some(mut pod) = ctx.get("pods", &key.0, &key.1) else {
            return;
        };
        let node_name = s(&pod, "/spec/nodeName").to_string();
        if node_name.is_empty() {
            return;
        }
        let Some(node) = ctx.get("nodes", "", &node_name) else {
            return;
        };
        let now = ctx.now();
        let fins = finalizers(&pod);
        let has_fin = fins.iter().any(|f| f == KUBELET_FINALIZER);
        if deleting(&pod) {
            if has_fin {
                self.terminate(ctx, key, &pod, fins, now);
            }
            return;
        }
        if !has_fin && !pod_terminal(&pod) {
            let mut f = fins;
            f.push(KUBELET_FINALIZER.to_string());
            let patch = json!({"metadata": {"finalizers": f}});
            match ctx.patch("pods", &key.0, &key.1, &patch) {
                Ok(p) => pod = p,
                Err(_) => return,
            }
        }
        let (status, events, next, drop_stress) = self.step(key, &pod, &node, now);
        write_status(ctx, "pods", &pod, status);
        if drop_stress {
            let mut anns = serde_json::Map::new();
            for k in pod
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .filter(|k| k.starts_with(STRESS_MEMORY))
            {
                anns.insert(k.clone(), Value::Null);
            }
            let patch = json!({"metadata": {"annotations": anns}});
            let _ = ctx.patch("pods", &key.0, &key.1, &patch);
        }
        for (t, reason, msg) in events {
            ctx.record_event(&pod, t, reason, &msg, SOURCE);
        }
        if let Some(t) = next {
            self.due.add(ctx, key.clone(), t);
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
    ) {
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
        let at = from + stop;
        if now < at {
            self.due.add(ctx, key.clone(), at);
            return;
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
            "pods",
            &key.0,
            &key.1,
            &json!({"metadata": {"finalizers": f}}),
        );
    }

    /// The pod's next status, the events to record, and when to look again.
    fn step(
        &mut self,
        key: &Key,
        pod: &Value,
        node: &Value,
        now: Timestamp,
    ) -> (Value, Vec<Ev>, Option<Timestamp>, bool) {
        let mut drop_stress = false;
        let mut st = pod["status"].clone();
        if !st.is_object() {
            st = json!({});
        }
        let mut evs: Vec<Ev> = Vec::new();
        let mut next: Option<Timestamp> = None;
        let mut wake = |t: Timestamp| next = Some(next.map_or(t, |n: Timestamp| n.min(t)));
        let specs = containers(pod);
        let start_time = match parse_ts(&st["startTime"]) {
            Some(t) => t,
            None => {
                let ip = self.allocate_ip(key, node);
                let host = internal_ip(node).to_string();
                st["startTime"] = json!(ts(now));
                st["hostIP"] = json!(host);
                st["hostIPs"] = json!([{"ip": host}]);
                st["podIP"] = json!(ip);
                st["podIPs"] = json!([{"ip": ip}]);
                st["qosClass"] = json!(model::qos_class(pod));
                st["phase"] = json!("Pending");
                let css: Vec<Value> = specs
                    .iter()
                    .map(|c| {
                        json!({"name": s(c, "/name"), "image": s(c, "/image"), "imageID": "",
                            "ready": false, "restartCount": 0, "started": false,
                            "state": {"waiting": {"reason": "ContainerCreating"}}})
                    })
                    .collect();
                st["containerStatuses"] = json!(css);
                parse_ts(&st["startTime"]).unwrap_or(now)
            }
        };
        if pod_terminal(pod) {
            return (st, evs, None, false);
        }
        let uid = s(pod, "/metadata/uid");
        let (ns, pname) = (key.0.as_str(), key.1.as_str());
        let policy = match s(pod, "/spec/restartPolicy") {
            "" => "Always",
            p => p,
        };
        let mut css: Vec<Value> = st["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for c in specs {
            let name = s(c, "/name");
            let idx = match css.iter().position(|x| x["name"] == name) {
                Some(p) => p,
                None => {
                    css.push(json!({"name": name, "image": s(c, "/image"), "imageID": "",
                        "ready": false, "restartCount": 0, "started": false,
                        "state": {"waiting": {"reason": "ContainerCreating"}}}));
                    css.len() - 1
                }
            };
            let cs = &mut css[idx];
            let restarts = cs["restartCount"].as_i64().unwrap_or(0);
            let start = |cs: &mut Value, evs: &mut Vec<Ev>, restarts: i64| {
                cs["state"] = json!({"running": {"startedAt": ts(now)}});
                cs["image"] = json!(s(c, "/image"));
                cs["started"] = json!(true);
                cs["ready"] = json!(false);
                cs["restartCount"] = json!(restarts);
                cs["containerID"] = json!(container_id(uid, name, restarts));
                cs["imageID"] = json!(format!(
                    "{}@sha256:{:08x}",
                    s(c, "/image"),
                    hash_str(s(c, "/image"))
                ));
                evs.push((
                    "Normal",
                    "Pulled",
                    format!(
                        "Container image \"{}\" already present on machine",
                        s(c, "/image")
                    ),
                ));
                evs.push(("Normal", "Created", format!("Created container: {name}")));
                evs.push(("Normal", "Started", format!("Started container {name}")));
            };
            let state = cs["state"].clone();
            if let Some(w) = state.get("waiting") {
                if w["reason"] == "CrashLoopBackOff" {
                    let fin = parse_ts(&cs["lastState"]["terminated"]["finishedAt"]).unwrap_or(now);
                    // The back-off is keyed by the container's hash (kuberuntime_manager.go
                    // `doBackOff`, `getStableKey`): a changed spec (pod-failure's image
                    // restored) starts at once.
                    let changed = cs["image"].is_string() && cs["image"] != c["image"];
                    let due = if changed {
                        now
                    } else {
                        fin + backoff(restarts)
                    };
                    if now >= due {
                        start(cs, &mut evs, restarts + 1);
                    } else {
                        wake(due);
                    }
                } else {
                    let due = start_time + CREATE_DELAY;
                    if now >= due {
                        start(cs, &mut evs, restarts);
                    } else {
                        wake(due);
                    }
                }
                continue;
            }
            let Some(run) = state.get("running") else {
                continue;
            };
            let started_at = parse_ts(&run["startedAt"]).unwrap_or(now);
            // Chaos Mesh conventions (see chaos/effects.rs): an image swapped in the spec
            // (pod-failure's pause image, and back) or a container-kill mark restarts the
            // container once; the pause image serves nothing: its probes decide.
            let killed_at = kill_mark(pod, name);
            let swapped = cs["image"].is_string() && cs["image"] != c["image"];
            let kill = killed_at.is_some_and(|t| {
                started_at < t
                    && parse_ts(&cs["lastState"]["terminated"]["finishedAt"]).is_none_or(|f| f < t)
            });
            if swapped || kill {
                let why = if swapped {
                    format!("Container {name} definition changed, will be restarted")
                } else {
                    format!("Stopping container {name}")
                };
                evs.push(("Normal", "Killing", why));
                cs["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "Error",
                    "startedAt": run["startedAt"], "finishedAt": ts(now),
                    "containerID": cs["containerID"]}});
                start(cs, &mut evs, restarts + 1);
                wake(now + model::startup(pod, name, restarts + 1));
                continue;
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
                let reason = if code == 0 { "Completed" } else { "Error" };
                ends.push((started_at + d, reason, code));
            }
            let end = ends.into_iter().min_by_key(|e| e.0);
            match end {
                Some((at, reason, code)) if at <= now => {
                    if reason == "OOMKilled" {
                        // A StressChaos' stress-ng lives in the container's cgroup: it dies
                        // with the container and is not injected again into the new one.
                        if model::annotation(pod, STRESS_MEMORY, name).is_some() {
                            drop_stress = true;
                        }
                        let limit = limits(c).1.unwrap_or(0);
                        evs.push(("Warning", "OOMKilling", format!(
                            "Memory cgroup out of memory: Killed process in container {name} (use {}Mi exceeds limit {}Mi)",
                            mem >> 20, limit >> 20)));
                    }
                    let term = json!({"terminated": {"exitCode": code, "reason": reason,
                        "startedAt": run["startedAt"], "finishedAt": ts(now),
                        "containerID": cs["containerID"]}});
                    let restart = match policy {
                        "Never" => false,
                        "OnFailure" => code != 0,
                        _ => true,
                    };
                    cs["ready"] = json!(false);
                    if !restart {
                        cs["state"] = term;
                        cs["started"] = json!(false);
                        continue;
                    }
                    cs["lastState"] = term;
                    let delay = backoff(restarts);
                    if delay.is_zero() {
                        start(cs, &mut evs, restarts + 1);
                    } else {
                        cs["started"] = json!(false);
                        cs["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!(
                            "back-off {} restarting failed container={name} pod={pname}_{ns}({uid})",
                            go_duration(delay))}});
                        evs.push(("Warning", "BackOff", format!(
                            "Back-off restarting failed container {name} in pod {pname}_{ns}({uid})")));
                        wake(now + delay);
                    }
                }
                other => {
                    if let Some((at, _, _)) = other {
                        wake(at);
                    }
                    if let Some((ready, _)) = pause {
                        cs["ready"] = json!(ready);
                        continue;
                    }
                    let ready_at = started_at + model::startup(pod, name, restarts);
                    if now >= ready_at {
                        cs["ready"] = json!(true);
                    } else {
                        wake(ready_at);
                    }
                }
            }
        }
        let all_done =
            !css.is_empty() && css.iter().all(|c| c["state"].get("terminated").is_some());
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
        st["containerStatuses"] = json!(css);
        (st, evs, next, drop_stress)
    }
}

impl Controller for Kubelet {
    fn name(&self) -> &'static str {
        "kubelet"
    }
    fn watches(&self) -> &'static [&'static str] {
        &["pods"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let mut todo: BTreeSet<Key> = BTreeSet::new();
        if ctx.resync() {
            todo.extend(self.rebuild(ctx));
        }
        let mut gone = Vec::new();
        for e in ctx.changed("pods") {
            let key = (e.namespace.clone(), e.name.clone());
            if e.kind == EventKind::Deleted {
                gone.push(key);
            } else {
                todo.insert(key);
            }
        }
        for key in gone {
            self.free_ip(&key);
            self.killing.remove(&key);
            todo.remove(&key);
        }
        todo.extend(self.due.take(ctx.now()));
        for key in todo {
            self.sync(ctx, &key);
        }
    }
}

//! The scheduler: binds pending pods to the node with the most free CPU and memory that fits
//! their requests (ties by name), and reports unschedulable pods as the real one does.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::model::pod_requests;
use super::util::{Key, condition, cpu_milli, deleting, key_of, mem_bytes, pod_terminal, s, ts};
use crate::resources::res;
use crate::store::EventKind;
use crate::world::{Controller, Ctx, Lag};

const SOURCE: &str = "default-scheduler";

/// What a bound pod takes from its node.
#[derive(Clone, Debug)]
struct Claim {
    node: String,
    cpu: i64,
    mem: i64,
}

/// Binds pods to nodes. See the module doc.
#[derive(Default)]
pub struct Scheduler {
    claims: HashMap<Key, Claim>,
    used: BTreeMap<String, (i64, i64, i64)>,
    pending: BTreeSet<Key>,
    unschedulable: BTreeSet<Key>,
}

struct NodeFit {
    name: String,
    labels: Value,
    taints: Vec<Value>,
    cpu: i64,
    mem: i64,
    pods: i64,
}

impl Scheduler {
    fn release(&mut self, key: &Key) -> bool {
        match self.claims.remove(key) {
            Some(c) => {
                if let Some(u) = self.used.get_mut(&c.node) {
                    u.0 -= c.cpu;
                    u.1 -= c.mem;
                    u.2 -= 1;
                }
                true
            }
            None => false,
        }
    }

    fn claim(&mut self, key: Key, node: &str, pod: &Value) {
        self.release(&key);
        let (cpu, mem) = pod_requests(pod);
        let u = self.used.entry(node.to_string()).or_default();
        u.0 += cpu;
        u.1 += mem;
        u.2 += 1;
        self.claims.insert(
            key,
            Claim {
                node: node.to_string(),
                cpu,
                mem,
            },
        );
    }

    /// Tracks a pod's state; returns true when capacity was freed.
    fn observe(&mut self, pod: &Value) -> bool {
        let key = key_of(pod);
        let node = s(pod, "/spec/nodeName");
        if node.is_empty() {
            let freed = self.release(&key);
            let ours = matches!(s(pod, "/spec/schedulerName"), "" | SOURCE);
            // An unschedulable pod waits in the unschedulable queue until the cluster changes
            // (pkg/scheduler/internal/queue/scheduling_queue.go); its own status update by
            // the scheduler does not move it (eventhandlers.go skips such updates).
            if ours && !deleting(pod) && !pod_terminal(pod) && !self.unschedulable.contains(&key) {
                self.pending.insert(key);
            }
            return freed;
        }
        self.pending.remove(&key);
        self.unschedulable.remove(&key);
        if pod_terminal(pod) {
            return self.release(&key);
        }
        self.claim(key, node, pod);
        false
    }

    fn nodes(ctx: &Ctx<'_>) -> Vec<NodeFit> {
        let mut out = Vec::new();
        for n in ctx.list("nodes", None) {
            let ready = condition(&n, "Ready").is_some_and(|c| c["status"] == "True");
            if !ready || deleting(&n) || n["spec"]["unschedulable"] == true {
                continue;
            }
            let a = &n["status"]["allocatable"];
            out.push(NodeFit {
                name: s(&n, "/metadata/name").to_string(),
                labels: n["metadata"]["labels"].clone(),
                taints: n["spec"]["taints"].as_array().cloned().unwrap_or_default(),
                cpu: a.get("cpu").and_then(cpu_milli).unwrap_or(0),
                mem: a.get("memory").and_then(mem_bytes).unwrap_or(0),
                pods: a.get("pods").and_then(cpu_milli).map_or(110, |p| p / 1000),
            });
        }
        out
    }

    /// Decide: the feasible node with the most free CPU and memory after placing the pod
    /// (pkg/scheduler/framework/plugins: NodeAffinity, TaintToleration, NodeResourcesFit
    /// filters; a LeastAllocated score), or the reasons each node failed.
    fn fit<'n>(&self, pod: &Value, nodes: &'n [NodeFit]) -> Result<&'n NodeFit, String> {
        let (cpu, mem) = pod_requests(pod);
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        let mut best: Option<(f64, &NodeFit)> = None;
        for n in nodes {
            let (ucpu, umem, upods) = self.used.get(&n.name).copied().unwrap_or_default();
            let mut fails = Vec::new();
            if !selector_matches(pod, &n.labels) {
                fails.push("node(s) didn't match Pod's node affinity/selector");
            } else if !tolerates(pod, &n.taints) {
                fails.push("node(s) had untolerated taint(s)");
            } else {
                if upods + 1 > n.pods {
                    fails.push("Too many pods");
                }
                if ucpu + cpu > n.cpu {
                    fails.push("Insufficient cpu");
                }
                if umem + mem > n.mem {
                    fails.push("Insufficient memory");
                }
            }
            if !fails.is_empty() {
                for f in fails {
                    *reasons.entry(f).or_default() += 1;
                }
                continue;
            }
            let free = |cap: i64, used: i64| {
                if cap <= 0 {
                    0.0
                } else {
                    (cap - used) as f64 / cap as f64
                }
            };
            let score = (free(n.cpu, ucpu + cpu) + free(n.mem, umem + mem)) / 2.0;
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, n));
            }
        }
        if let Some((_, n)) = best {
            return Ok(n);
        }
        let total = nodes.len();
        if total == 0 {
            return Err("no nodes available to schedule pods".to_string());
        }
        let detail: Vec<String> = reasons.iter().map(|(r, c)| format!("{c} {r}")).collect();
        Err(format!(
            "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {total} No preemption victims found for incoming pod.",
            detail.join(", ")
        ))
    }

    /// Write: binds the pod to `node` and marks it scheduled (schedule_one.go `bind`).
    fn bind(&mut self, ctx: &mut Ctx<'_>, key: &Key, node: &str) {
        let now = ctx.now();
        let patch = json!({"spec": {"nodeName": node}});
        let Ok(bound) = ctx.patch(res::PODS, &key.namespace, &key.name, &patch) else {
            return;
        };
        let mut status = bound["status"].clone();
        if !status.is_object() {
            status = json!({});
        }
        let mut conds: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
        conds.retain(|c| c["type"] != "PodScheduled");
        conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts(now)}));
        status["conditions"] = json!(conds);
        super::util::write_status(ctx, res::PODS, &bound, status);
        self.claim(key.clone(), node, &bound);
        self.unschedulable.remove(key);
        // pkg/scheduler/schedule_one.go records through the events.k8s.io API.
        let msg = format!(
            "Successfully assigned {}/{} to {node}",
            key.namespace, key.name
        );
        ctx.record_event_v1(&bound, "Normal", "Scheduled", "Binding", &msg, SOURCE);
    }

    /// Write: the pod waits in the unschedulable queue with PodScheduled False.
    fn unschedulable(&mut self, ctx: &mut Ctx<'_>, key: &Key, pod: &Value, msg: &str) {
        self.unschedulable.insert(key.clone());
        // Every failed attempt is recorded; the events library folds repeats into the first
        // event's `series` (client-go tools/events/event_broadcaster.go).
        ctx.record_event_v1(
            pod,
            "Warning",
            "FailedScheduling",
            "Scheduling",
            msg,
            SOURCE,
        );
        let same = condition(pod, "PodScheduled")
            .is_some_and(|c| c["status"] == "False" && c["message"] == msg);
        if same {
            return;
        }
        let mut status = pod["status"].clone();
        if !status.is_object() {
            status = json!({});
        }
        let mut conds: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
        conds.retain(|c| c["type"] != "PodScheduled");
        conds.push(
            json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": msg, "lastProbeTime": null, "lastTransitionTime": ts(ctx.now())}),
        );
        status["conditions"] = json!(conds);
        super::util::write_status(ctx, res::PODS, pod, status);
    }

    fn schedule(&mut self, ctx: &mut Ctx<'_>, pod: &Value, nodes: &[NodeFit]) {
        let key = key_of(pod);
        match self.fit(pod, nodes) {
            Ok(n) => {
                let node = n.name.clone();
                self.bind(ctx, &key, &node);
            }
            Err(msg) => self.unschedulable(ctx, &key, pod, &msg),
        }
    }
}

fn selector_matches(pod: &Value, labels: &Value) -> bool {
    match pod.pointer("/spec/nodeSelector").and_then(Value::as_object) {
        Some(sel) => sel.iter().all(|(k, v)| labels.get(k) == Some(v)),
        None => true,
    }
}

fn tolerates(pod: &Value, taints: &[Value]) -> bool {
    let tols = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    taints
        .iter()
        .filter(|t| matches!(s(t, "/effect"), "NoSchedule" | "NoExecute"))
        .all(|t| {
            tols.iter().any(|tol| {
                let key_ok = s(tol, "/key").is_empty() || tol["key"] == t["key"];
                let eff_ok = s(tol, "/effect").is_empty() || tol["effect"] == t["effect"];
                let val_ok = s(tol, "/operator") == "Exists" || tol["value"] == t["value"];
                key_ok && eff_ok && val_ok
            })
        })
}

impl Controller for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }
    // pkg/scheduler/eventhandlers.go adds the pod to the scheduling queue; schedule_one.go
    // pops it, runs the filters and scores, then binds asynchronously.
    fn lag(&self) -> Lag {
        Lag::millis(5, 50)
    }
    fn watches(&self) -> &'static [&'static str] {
        &["pods", "nodes"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let mut retry = false;
        if ctx.resync() {
            *self = Scheduler::default();
            for pod in ctx.list("pods", None) {
                self.observe(&pod);
            }
            retry = true;
        }
        let mut seen = Vec::new();
        for e in ctx.changed("pods") {
            seen.push((e.kind, e.object.clone()));
        }
        for (kind, pod) in seen {
            if kind == EventKind::Deleted {
                let key = key_of(&pod);
                retry |= self.release(&key);
                self.pending.remove(&key);
                self.unschedulable.remove(&key);
            } else {
                retry |= self.observe(&pod);
            }
        }
        retry |= ctx.changed("nodes").next().is_some();
        if retry {
            let u = std::mem::take(&mut self.unschedulable);
            self.pending.extend(u);
        }
        if self.pending.is_empty() {
            return;
        }
        let nodes = Self::nodes(ctx);
        for key in std::mem::take(&mut self.pending) {
            let Some(pod) = ctx.get("pods", &key.namespace, &key.name) else {
                continue;
            };
            if !s(&pod, "/spec/nodeName").is_empty() || deleting(&pod) || pod_terminal(&pod) {
                continue;
            }
            self.schedule(ctx, &pod, &nodes);
        }
    }
}

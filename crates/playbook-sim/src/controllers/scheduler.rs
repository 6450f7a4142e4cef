//! The scheduler: binds pending pods to the node with the most free CPU and memory that fits
//! their requests (ties by name), and reports unschedulable pods as the real one does.
//!
//! Filters, in the v1.32 default plugin order (pkg/scheduler/apis/config/v1/default_plugins.go):
//! NodeUnschedulable (a cordoned node, unless the pod tolerates
//! `node.kubernetes.io/unschedulable:NoSchedule`), TaintToleration (`NoSchedule`/`NoExecute`
//! taints), NodeAffinity (`nodeSelector` only), NodeResourcesFit (pods, cpu, memory and
//! extended resources such as `nvidia.com/gpu`, counted from requests as `noderesources/fit.go`
//! `fitsRequest` does). Simplified: no affinity terms, no ports, volumes or topology spread;
//! a not-Ready node is skipped without a reason (as if its `not-ready` taint were untolerated).

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
    ext: BTreeMap<String, i64>,
}

/// What the pods bound to a node take: cpu, memory, pods, extended resources.
#[derive(Clone, Debug, Default)]
struct Used {
    cpu: i64,
    mem: i64,
    pods: i64,
    ext: BTreeMap<String, i64>,
}

/// The taint the node lifecycle controller puts on a cordoned node (TaintNodesByCondition).
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// An extended resource name (`pkg/apis/core/v1/helper/helpers.go`
/// `IsExtendedResourceName`): namespaced by a domain other than `kubernetes.io`, not a
/// `requests.` quota name, and not a native resource (hugepages-*, cpu, memory, ...).
pub fn is_extended(name: &str) -> bool {
    name.contains('/')
        && !name.starts_with("requests.")
        && !name.starts_with("kubernetes.io/")
        && !name.contains(".kubernetes.io/")
}

/// A pod's extended resource requests, summed over its containers (an extended resource's
/// request equals its limit: a limit alone is defaulted to the request).
pub fn extended_requests(pod: &Value) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for c in super::model::containers(pod) {
        let r = &c["resources"];
        let mut names: BTreeSet<&String> = BTreeSet::new();
        for k in ["requests", "limits"] {
            if let Some(m) = r.get(k).and_then(Value::as_object) {
                names.extend(m.keys().filter(|n| is_extended(n)));
            }
        }
        for n in names {
            let q = r["requests"]
                .get(n)
                .or_else(|| r["limits"].get(n))
                .and_then(cpu_milli)
                .map_or(0, |m| m / 1000);
            *out.entry(n.clone()).or_default() += q;
        }
    }
    out
}

/// Binds pods to nodes. See the module doc.
#[derive(Default)]
pub struct Scheduler {
    claims: HashMap<Key, Claim>,
    used: BTreeMap<String, Used>,
    pending: BTreeSet<Key>,
    unschedulable: BTreeSet<Key>,
}

struct NodeFit {
    name: String,
    unschedulable: bool,
    labels: Value,
    taints: Vec<Value>,
    cpu: i64,
    mem: i64,
    pods: i64,
    ext: BTreeMap<String, i64>,
}

impl Scheduler {
    fn release(&mut self, key: &Key) -> bool {
        match self.claims.remove(key) {
            Some(c) => {
                if let Some(u) = self.used.get_mut(&c.node) {
                    u.cpu -= c.cpu;
                    u.mem -= c.mem;
                    u.pods -= 1;
                    for (k, v) in &c.ext {
                        *u.ext.entry(k.clone()).or_default() -= v;
                    }
                }
                true
            }
            None => false,
        }
    }

    fn claim(&mut self, key: Key, node: &str, pod: &Value) {
        self.release(&key);
        let (cpu, mem) = pod_requests(pod);
        let ext = extended_requests(pod);
        let u = self.used.entry(node.to_string()).or_default();
        u.cpu += cpu;
        u.mem += mem;
        u.pods += 1;
        for (k, v) in &ext {
            *u.ext.entry(k.clone()).or_default() += v;
        }
        self.claims.insert(
            key,
            Claim {
                node: node.to_string(),
                cpu,
                mem,
                ext,
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
            if !ready || deleting(&n) {
                continue;
            }
            let a = &n["status"]["allocatable"];
            let ext = a
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| is_extended(k))
                        .map(|(k, v)| (k.clone(), cpu_milli(v).map_or(0, |q| q / 1000)))
                        .collect()
                })
                .unwrap_or_default();
            out.push(NodeFit {
                name: s(&n, "/metadata/name").to_string(),
                unschedulable: n["spec"]["unschedulable"] == true,
                ext,
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
        let ext = extended_requests(pod);
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut best: Option<(f64, &NodeFit)> = None;
        let cordon = json!({"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"});
        for n in nodes {
            let u = self.used.get(&n.name).cloned().unwrap_or_default();
            let (ucpu, umem, upods) = (u.cpu, u.mem, u.pods);
            let mut fails: Vec<String> = Vec::new();
            if n.unschedulable && untolerated(pod, std::slice::from_ref(&cordon)).is_some() {
                // plugins/nodeunschedulable/node_unschedulable.go `ErrReasonUnschedulable`.
                fails.push("node(s) were unschedulable".into());
            } else if let Some(t) = untolerated(pod, &n.taints) {
                // plugins/tainttoleration/taint_toleration.go.
                fails.push(format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    s(t, "/key"),
                    s(t, "/value")
                ));
            } else if !selector_matches(pod, &n.labels) {
                fails.push("node(s) didn't match Pod's node affinity/selector".into());
            } else {
                // plugins/noderesources/fit.go `fitsRequest`.
                if upods + 1 > n.pods {
                    fails.push("Too many pods".into());
                }
                if ucpu + cpu > n.cpu {
                    fails.push("Insufficient cpu".into());
                }
                if umem + mem > n.mem {
                    fails.push("Insufficient memory".into());
                }
                for (k, want) in ext.iter().filter(|(_, v)| **v > 0) {
                    let have = n.ext.get(k).copied().unwrap_or(0);
                    if u.ext.get(k).copied().unwrap_or(0) + want > have {
                        fails.push(format!("Insufficient {k}"));
                    }
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

/// The first `NoSchedule`/`NoExecute` taint no toleration of the pod tolerates.
fn untolerated<'t>(pod: &Value, taints: &'t [Value]) -> Option<&'t Value> {
    let tols = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    taints
        .iter()
        .filter(|t| matches!(s(t, "/effect"), "NoSchedule" | "NoExecute"))
        .find(|t| !tols.iter().any(|tol| tolerates(tol, t)))
}

/// staging/src/k8s.io/api/core/v1/toleration.go `ToleratesTaint`: an empty effect matches
/// every effect; an empty key with `Exists` matches every taint; `Exists` ignores the value,
/// `Equal` (the default) compares it.
pub fn tolerates(tol: &Value, taint: &Value) -> bool {
    if !s(tol, "/effect").is_empty() && s(tol, "/effect") != s(taint, "/effect") {
        return false;
    }
    let exists = s(tol, "/operator") == "Exists";
    if s(tol, "/key") != s(taint, "/key") && !(exists && s(tol, "/key").is_empty()) {
        return false;
    }
    match s(tol, "/operator") {
        "Exists" => true,
        "" | "Equal" => s(tol, "/value") == s(taint, "/value"),
        _ => false,
    }
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

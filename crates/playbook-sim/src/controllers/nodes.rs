//! The simulated nodes: three Ready workers (`sim-worker-1..3`, 8 CPU / 32 GiB each), created
//! by the `nodes` controller on its first run when the cluster has no node at all; and the
//! node lifecycle controller's `NoSchedule` tainting of a cordoned node.
//!
//! A node with `spec.unschedulable: true` gets the taint `node.kubernetes.io/unschedulable:
//! NoSchedule`, removed when it is uncordoned (pkg/controller/nodelifecycle/
//! node_lifecycle_controller.go `doNoScheduleTaintingPass`, TaintNodesByCondition).

use serde_json::{Value, json};

use super::util::{s, ts};
use crate::world::{Controller, Ctx};

/// Number of worker nodes seeded.
pub const WORKERS: usize = 3;
/// Kubelet version the nodes report.
pub const KUBELET_VERSION: &str = "v1.34.1";

/// The Node object of worker `n` (1-based).
pub fn worker(n: usize, now: &str) -> Value {
    let name = format!("sim-worker-{n}");
    let zone = ["a", "b", "c"][(n - 1) % 3];
    let ip = format!("172.18.0.{}", n + 1);
    let cond = |t: &str, st: &str, reason: &str, msg: &str| {
        json!({"type": t, "status": st, "reason": reason, "message": msg,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
            "node-role.kubernetes.io/worker": "", "node.kubernetes.io/instance-type": "sim.large",
            "topology.kubernetes.io/region": "sim-region", "topology.kubernetes.io/zone": format!("sim-zone-{zone}"),
        }, "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"podCIDR": format!("10.244.{n}.0/24"), "podCIDRs": [format!("10.244.{n}.0/24")],
                 "providerID": format!("sim://{name}")},
        "status": {
            "capacity": {"cpu": "8", "memory": "34078720Ki", "pods": "110", "ephemeral-storage": "102687672Ki", "hugepages-2Mi": "0"},
            "allocatable": {"cpu": "8", "memory": "33554432Ki", "pods": "110", "ephemeral-storage": "94636137281", "hugepages-2Mi": "0"},
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": format!("{:032x}", n), "systemUUID": format!("00000000-0000-0000-0000-{:012x}", n),
                "bootID": format!("b00700{n:02}-0000-0000-0000-000000000000"),
                "kernelVersion": "6.8.0-sim", "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://2.1.4", "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": "amd64",
            },
        },
    })
}

/// Creates the default workers if the cluster has no node.
pub fn seed(ctx: &mut Ctx<'_>) {
    if !ctx.list("nodes", None).is_empty() {
        return;
    }
    let now = ts(ctx.now());
    for n in 1..=WORKERS {
        let _ = ctx.create("nodes", worker(n, &now));
    }
}

/// A node's InternalIP ("" if none).
pub fn internal_ip(node: &Value) -> &str {
    node.pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .map(|x| s(x, "/address"))
        .unwrap_or_default()
}

/// The third octet of a node's pod CIDR `10.244.N.0/24` (0 if unknown).
pub fn cidr_octet(node: &Value) -> u32 {
    s(node, "/spec/podCIDR")
        .split('.')
        .nth(2)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0)
}

/// Adds or removes the `node.kubernetes.io/unschedulable:NoSchedule` taint to follow
/// `spec.unschedulable`.
fn cordon_taint(ctx: &mut Ctx<'_>, node: &Value) {
    use super::scheduler::UNSCHEDULABLE_TAINT;
    let mut taints: Vec<Value> = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has = taints
        .iter()
        .any(|t| t["key"] == UNSCHEDULABLE_TAINT && t["effect"] == "NoSchedule");
    let want = node["spec"]["unschedulable"] == true;
    if has == want || node.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    if want {
        taints.push(json!({"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}));
    } else {
        taints.retain(|t| !(t["key"] == UNSCHEDULABLE_TAINT && t["effect"] == "NoSchedule"));
    }
    let mut n = node.clone();
    n["spec"]["taints"] = if taints.is_empty() {
        Value::Null
    } else {
        json!(taints)
    };
    if let Some(spec) = n["spec"].as_object_mut() {
        spec.retain(|_, v| !v.is_null());
    }
    n["metadata"]["resourceVersion"] = json!("");
    let _ = ctx.update("nodes", n);
}

/// Seeds the default nodes on its first run.
#[derive(Default)]
pub struct Nodes {
    done: bool,
}

impl Controller for Nodes {
    fn name(&self) -> &'static str {
        "nodes"
    }
    fn watches(&self) -> &'static [&'static str] {
        &["nodes"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        if !self.done {
            self.done = true;
            seed(ctx);
        }
        let names: Vec<String> = if ctx.resync() {
            ctx.list("nodes", None)
                .iter()
                .map(|n| s(n, "/metadata/name").to_string())
                .collect()
        } else {
            ctx.changed("nodes").map(|e| e.name.clone()).collect()
        };
        for name in names {
            if let Some(n) = ctx.get("nodes", "", &name) {
                cordon_taint(ctx, &n);
            }
        }
    }
}

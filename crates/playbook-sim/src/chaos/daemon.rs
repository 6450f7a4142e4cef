//! Where the chaos-daemon runs: a DaemonSet with the Helm chart's default `tolerations: []`, so only on nodes whose taints the DaemonSet controller's automatic tolerations cover; experiments that need the daemon cannot be injected into pods on other nodes.
//!
//! The chaos-daemon DaemonSet (`helm/chaos-mesh/values.yaml` of Chaos Mesh v2.8.1:
//! `chaosDaemon.tolerations: []`) gets only the tolerations the DaemonSet controller adds to
//! every daemon pod (`pkg/controller/daemon/util/daemonset_util.go`
//! `AddOrUpdateDaemonPodTolerations`, Kubernetes v1.32). A node with any other `NoSchedule` or
//! `NoExecute` taint (a GPU node's `nvidia.com/gpu`, a dedicated pool's) has no daemon, and the
//! controller's `FindDaemonIP` (`controllers/utils/chaosdaemon/chaosdaemon.go`) fails with
//! `cannot find daemonIP on node <node>`: container-kill, StressChaos and NetworkChaos records
//! of pods there stay not injected with that error. pod-kill and pod-failure only talk to the
//! API server and are not affected.

use serde_json::Value;

use crate::world::Ctx;

/// The taints every DaemonSet pod tolerates (key, effect).
const DAEMONSET_TOLERATES: [(&str, &str); 7] = [
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ("node.kubernetes.io/network-unavailable", "NoSchedule"),
];

/// True when the chaos-daemon runs on `node` (its taints are all tolerated).
pub fn runs_on(node: &Value) -> bool {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or_default();
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or_default();
            effect == "PreferNoSchedule" || DAEMONSET_TOLERATES.contains(&(key, effect))
        })
}

/// `FindDaemonIP` for the pod `ns/name`: Ok when a chaos-daemon runs on its node, else the
/// controller's error.
pub fn reach(ctx: &Ctx<'_>, ns: &str, name: &str) -> Result<(), String> {
    let Some(pod) = ctx.get("pods", ns, name) else {
        return Err(format!("pods \"{name}\" not found"));
    };
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match ctx.get("nodes", "", node) {
        Some(n) if runs_on(&n) => Ok(()),
        // A node the simulator does not list (hand-made pods in tests): assume a daemon.
        None if !node.is_empty() => Ok(()),
        _ => Err(format!("cannot find daemonIP on node {node}")),
    }
}

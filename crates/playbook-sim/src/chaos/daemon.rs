//! Where the chaos-daemon runs: a DaemonSet with the Helm chart's default `tolerations: []` unless the platform installed it with more, so only on nodes whose taints its tolerations cover; experiments that need the daemon cannot be injected into pods on other nodes.
//!
//! When the cluster runs chaos-daemon pods (the platform scenarios, whose DaemonSet carries
//! the tolerations of `platform::Figures::chaos_daemon_tolerations`), the daemon is on a node
//! exactly when one of those pods is bound there; a bare cluster without them is taken to run
//! the DaemonSet with the chart's defaults.
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

/// True when the chaos-daemon DaemonSet with the chart's default tolerations runs on `node`.
pub fn runs_on(node: &Value) -> bool {
    tolerated(node, &[])
}

/// True when a DaemonSet tolerating `extra` (key, effect; operator Exists) and the DaemonSet
/// controller's own tolerations runs on `node`.
pub fn tolerated(node: &Value, extra: &[(&str, &str)]) -> bool {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or_default();
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or_default();
            effect == "PreferNoSchedule"
                || DAEMONSET_TOLERATES.contains(&(key, effect))
                || extra.contains(&(key, effect))
        })
}

/// The chaos-daemon pods of the cluster, as (node, running) pairs.
fn daemon_pods(ctx: &Ctx<'_>) -> Vec<(String, bool)> {
    let sel = crate::selector::LabelSelector {
        reqs: vec![crate::selector::Requirement::Eq(
            "app.kubernetes.io/component".into(),
            "chaos-daemon".into(),
        )],
    };
    ctx.list_selected("pods", None, &sel)
        .iter()
        .map(|p| {
            let node = p
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (node, p.pointer("/metadata/deletionTimestamp").is_none())
        })
        .collect()
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
    let daemons = daemon_pods(ctx);
    if !daemons.is_empty() && !node.is_empty() {
        return if daemons.iter().any(|(n, up)| n == node && *up) {
            Ok(())
        } else {
            Err(format!("cannot find daemonIP on node {node}"))
        };
    }
    match ctx.get("nodes", "", node) {
        Some(n) if runs_on(&n) => Ok(()),
        // A node the simulator does not list (hand-made pods in tests): assume a daemon.
        None if !node.is_empty() => Ok(()),
        _ => Err(format!("cannot find daemonIP on node {node}")),
    }
}

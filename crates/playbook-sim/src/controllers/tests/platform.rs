//! Services and Endpoints, metrics, the HPA, and determinism of the whole set.

use super::*;
use crate::controllers::util::{condition, cpu_milli, mem_bytes};

fn service(name: &str, target: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": name}, "ports": [{"name": "web", "port": 80, "targetPort": target}]}})
}

fn addresses(w: &World, name: &str, field: &str) -> usize {
    get(w, "endpoints", "default", name)
        .and_then(|e| e["subsets"][0][field].as_array().map(Vec::len))
        .unwrap_or(0)
}

#[test]
fn endpoints_follow_pod_readiness() {
    let mut w = world(21);
    apply(&mut w, service("web", json!("http")));
    apply(
        &mut w,
        deployment("web", 3, json!({"sim.playbook.dev/startup": "20s"})),
    );
    advance_secs(&mut w, 2.0);
    assert_eq!(addresses(&w, "web", "addresses"), 0);
    assert_eq!(addresses(&w, "web", "notReadyAddresses"), 3);
    let ep = get(&w, "endpoints", "default", "web").expect("ep");
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080);
    assert_eq!(ep["subsets"][0]["ports"][0]["name"], "web");
    advance_secs(&mut w, 23.0);
    assert_eq!(addresses(&w, "web", "addresses"), 3);
    assert_eq!(addresses(&w, "web", "notReadyAddresses"), 0);
    let victim = s(&pods(&w, "web-")[0], "/metadata/name").to_string();
    let pid = w.store().registry().lookup("pods").expect("pods");
    let opts = crate::DeleteOptions {
        grace_period_seconds: Some(30),
        ..Default::default()
    };
    w.store_mut()
        .delete(pid, "default", &victim, &opts)
        .expect("delete");
    w.settle();
    assert_eq!(
        addresses(&w, "web", "addresses"),
        2,
        "terminating pod leaves at once"
    );
    assert_eq!(
        addresses(&w, "web", "notReadyAddresses"),
        1,
        "its replacement"
    );
    advance_secs(&mut w, 25.0);
    assert_eq!(addresses(&w, "web", "addresses"), 3);
}

#[test]
fn pod_and_node_metrics_reflect_use() {
    let mut w = world(22);
    apply(
        &mut w,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default",
            "annotations": {"sim.playbook.dev/cpu": "250m", "sim.playbook.dev/memory": "300Mi"}},
            "spec": {"containers": [{"name": "c", "image": "x:1"}]}}),
    );
    advance_secs(&mut w, 16.0);
    let pm = get(&w, "pods.metrics.k8s.io", "default", "p").expect("metrics");
    assert_eq!(pm["window"], "30s");
    let cpu = cpu_milli(&pm["containers"][0]["usage"]["cpu"]).expect("cpu");
    let mem = mem_bytes(&pm["containers"][0]["usage"]["memory"]).expect("mem");
    assert!((242..=258).contains(&cpu), "{cpu}");
    assert!((mem - (300 << 20)).abs() < 4 << 20, "{mem}");
    // Stress adds to the base.
    patch(
        &mut w,
        "pods",
        "default",
        "p",
        json!({"metadata": {"annotations": {"sim.playbook.dev/stress-cpu": "1"}}}),
    );
    advance_secs(&mut w, 15.0);
    let pm = get(&w, "pods.metrics.k8s.io", "default", "p").expect("metrics");
    let cpu = cpu_milli(&pm["containers"][0]["usage"]["cpu"]).expect("cpu");
    assert!((1212..=1288).contains(&cpu), "{cpu}");
    let nodes = list(&w, "nodes.metrics.k8s.io");
    assert_eq!(nodes.len(), 3);
    let node = s(
        &get(&w, "pods", "default", "p").expect("p"),
        "/spec/nodeName",
    )
    .to_string();
    let nm = get(&w, "nodes.metrics.k8s.io", "", &node).expect("node metrics");
    assert!(cpu_milli(&nm["usage"]["cpu"]).expect("cpu") > 1300);
    let pid = w.store().registry().lookup("pods").expect("pods");
    w.store_mut()
        .delete(pid, "default", "p", &Default::default())
        .expect("delete");
    advance_secs(&mut w, 16.0);
    assert!(get(&w, "pods.metrics.k8s.io", "default", "p").is_none());
}

fn hpa(name: &str, min: i64, max: i64, util: i64) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": min, "maxReplicas": max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": util}}}]}})
}

fn load(w: &mut World, prefix: &str, cpu: Option<&str>) {
    for p in pods(w, prefix) {
        let name = s(&p, "/metadata/name").to_string();
        let cur = p["metadata"]["annotations"]["sim.playbook.dev/stress-cpu"].as_str();
        if cur != cpu {
            patch(
                w,
                "pods",
                "default",
                &name,
                json!({"metadata": {"annotations": {"sim.playbook.dev/stress-cpu": cpu}}}),
            );
        }
    }
}

fn replicas(w: &World, name: &str) -> i64 {
    get(w, "deployments.apps", "default", name).expect("d")["spec"]["replicas"]
        .as_i64()
        .unwrap_or(0)
}

/// A world with Deployment `api` of 2 replicas using 20m CPU each.
fn api_of_two(seed: u64) -> World {
    let mut w = world(seed);
    let anns = json!({"sim.playbook.dev/cpu": "20m", "sim.playbook.dev/startup": "5s"});
    apply(&mut w, deployment("api", 2, anns));
    w
}

/// An HPA without `spec.behavior` takes the legacy path of
/// pkg/controller/podautoscaler/horizontal.go: 2 -> 4 (max(2 x 2, 4)) -> 8 -> 10.
#[test]
fn hpa_scales_up_under_load_and_down_after_stabilization() {
    let mut w = api_of_two(23);
    apply(&mut w, hpa("api", 2, 10, 50));
    advance_secs(&mut w, 60.0);
    assert_eq!(replicas(&w, "api"), 2);
    let h = get(&w, "horizontalpodautoscalers.autoscaling", "default", "api").expect("hpa");
    assert_eq!(
        h["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
            .as_i64()
            .map(|u| (15..=25).contains(&u)),
        Some(true),
        "{}",
        h["status"]
    );
    assert_eq!(
        condition(&h, "ScalingActive").expect("c")["reason"],
        "ValidMetricFound"
    );
    // Load: every pod (new ones too) at 200% of its request.
    let mut first_up = None;
    for k in 0..8 {
        load(&mut w, "api-", Some("180m"));
        advance_secs(&mut w, 15.0);
        if first_up.is_none() && replicas(&w, "api") > 2 {
            first_up = Some(k);
        }
    }
    assert!(
        first_up.is_some_and(|k| k <= 2),
        "scaled up within two sync periods: {first_up:?}"
    );
    let ups = events(&w, "SuccessfulRescale");
    assert_eq!(
        s(&ups[0], "/message"),
        "New size: 4; reason: cpu resource utilization (percentage of request) above target"
    );
    let sizes: Vec<String> = ups
        .iter()
        .map(|e| s(e, "/message")[..12].to_string())
        .collect();
    assert_eq!(sizes, ["New size: 4;", "New size: 8;", "New size: 10"]);
    assert_eq!(replicas(&w, "api"), 10);
    let h = get(&w, "horizontalpodautoscalers.autoscaling", "default", "api").expect("hpa");
    assert_eq!(
        condition(&h, "ScalingLimited").expect("c")["reason"],
        "TooManyReplicas"
    );
    // Load gone: nothing happens for the 300 s stabilization window, then back to min.
    load(&mut w, "api-", None);
    let removed = elapsed_secs(&w);
    while elapsed_secs(&w) < removed + 280.0 {
        advance_secs(&mut w, 15.0);
        assert_eq!(
            replicas(&w, "api"),
            10,
            "scaled down at {}",
            elapsed_secs(&w) - removed
        );
    }
    let h = get(&w, "horizontalpodautoscalers.autoscaling", "default", "api").expect("hpa");
    assert_eq!(
        condition(&h, "AbleToScale").expect("c")["reason"],
        "ScaleDownStabilized"
    );
    advance_secs(&mut w, 30.0);
    // 20% of request on 10 pods (with noise): ceil(10 * 0.2 / 0.5) = 4 or 5.
    let down = replicas(&w, "api");
    assert!((4..=5).contains(&down), "{down}");
    let last = events(&w, "SuccessfulRescale");
    let msg = format!("New size: {down}; reason: All metrics below target");
    assert_eq!(last.last().map(|e| s(e, "/message").to_string()), Some(msg));
}

fn history(seed: u64) -> Vec<(String, String, String)> {
    let mut w = world(seed);
    apply(&mut w, service("web", json!(8080)));
    apply(
        &mut w,
        deployment("web", 3, json!({"sim.playbook.dev/startup": "4s"})),
    );
    apply(&mut w, hpa("web", 1, 5, 50));
    let crash = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c", "namespace": "default",
        "annotations": {"sim.playbook.dev/run-for": "3s", "sim.playbook.dev/exit-code": "1"}},
        "spec": {"containers": [{"name": "c", "image": "x:1"}]}});
    apply(&mut w, crash);
    advance_secs(&mut w, 50.0);
    patch(
        &mut w,
        "deployments.apps",
        "default",
        "web",
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}}),
    );
    advance_secs(&mut w, 100.0);
    list(&w, "events")
        .iter()
        .map(|e| {
            (
                s(e, "/metadata/name").to_string(),
                s(e, "/reason").to_string(),
                s(e, "/message").to_string(),
            )
        })
        .collect()
}

#[test]
fn same_seed_same_event_history() {
    let a = history(99);
    assert!(a.len() > 40, "{}", a.len());
    assert_eq!(a, history(99));
    assert_ne!(a, history(100));
}

/// With `spec.behavior` set (even empty: horizontal.go `normalizeDesiredReplicasWithBehaviors`
/// with the defaults of pkg/apis/autoscaling/v2/defaults.go), the first scale-up is
/// max(4 pods, 100%) per 15 s: 2 -> 6.
#[test]
fn hpa_with_behavior_scales_by_its_policies() {
    let mut w = api_of_two(23);
    let mut h = hpa("api", 2, 10, 50);
    h["spec"]["behavior"] = json!({"scaleUp": {"stabilizationWindowSeconds": 0}});
    apply(&mut w, h);
    advance_secs(&mut w, 60.0);
    for _ in 0..3 {
        load(&mut w, "api-", Some("180m"));
        advance_secs(&mut w, 15.0);
    }
    let ups = events(&w, "SuccessfulRescale");
    assert_eq!(
        s(&ups[0], "/message"),
        "New size: 6; reason: cpu resource utilization (percentage of request) above target"
    );
}

//! The Job controller and the scheduler's GPU, taint and cordon filters.

use serde_json::{Value, json};

use super::*;
use crate::controllers::job::TRACKING_FINALIZER;
use crate::controllers::util::s;

fn job(name: &str, annotations: Value, backoff_limit: i64) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"backoffLimit": backoff_limit, "template": {
            "metadata": {"labels": {"app": name}, "annotations": annotations},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}})
}

fn delete_pod(w: &mut World, name: &str) {
    let id = w.store().registry().lookup("pods").expect("pods");
    w.store_mut()
        .delete(id, "default", name, &Default::default())
        .expect("delete");
    w.settle();
}

#[test]
fn a_job_labels_its_pods_and_completes() {
    let mut w = world(3);
    apply(
        &mut w,
        job("once", json!({"sim.playbook.dev/run-for": "10s"}), 6),
    );
    let j = get(&w, "jobs.batch", "default", "once").expect("job");
    let uid = s(&j, "/metadata/uid").to_string();
    assert_eq!(
        j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        json!(uid)
    );
    assert_eq!(j["spec"]["podReplacementPolicy"], "TerminatingOrFailed");
    let ps = pods(&w, "once-");
    assert_eq!(ps.len(), 1);
    let l = &ps[0]["metadata"]["labels"];
    assert_eq!(l["job-name"], "once");
    assert_eq!(l["batch.kubernetes.io/job-name"], "once");
    assert_eq!(l["controller-uid"], json!(uid));
    assert_eq!(l["app"], "once");
    assert!(
        ps[0]["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.contains(&json!(TRACKING_FINALIZER)))
    );
    advance_secs(&mut w, 6.0);
    let j = get(&w, "jobs.batch", "default", "once").expect("job");
    assert_eq!(j["status"]["active"], 1);
    assert_eq!(j["status"]["ready"], 1);
    advance_secs(&mut w, 20.0);
    let j = get(&w, "jobs.batch", "default", "once").expect("job");
    assert_eq!(j["status"]["succeeded"], 1, "{}", j["status"]);
    assert!(j["status"].get("active").is_none());
    let types: Vec<&str> = j["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .map(|c| s(c, "/type"))
        .collect();
    assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
    assert!(j["status"]["completionTime"].is_string());
    // The counted pod lost the tracking finalizer, and no second pod was made.
    let all = list(&w, "pods");
    let mine: Vec<_> = all
        .iter()
        .filter(|p| s(p, "/metadata/name").starts_with("once-"))
        .collect();
    assert_eq!(mine.len(), 1);
    assert!(
        !mine[0]["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.contains(&json!(TRACKING_FINALIZER)))
    );
}

#[test]
fn a_deleted_pod_counts_as_failed_and_is_replaced_after_the_backoff() {
    let mut w = world(4);
    apply(&mut w, job("long", json!({}), 1));
    advance_secs(&mut w, 5.0);
    let first = s(&pods(&w, "long-")[0], "/metadata/name").to_string();
    delete_pod(&mut w, &first);
    let j = get(&w, "jobs.batch", "default", "long").expect("job");
    assert_eq!(j["status"]["failed"], 1);
    // The first failure's back-off is 10 s: no replacement yet.
    assert!(pods(&w, "long-").is_empty());
    advance_secs(&mut w, 11.0);
    let now = pods(&w, "long-");
    assert_eq!(now.len(), 1);
    assert_ne!(s(&now[0], "/metadata/name"), first);
    // A second failure exceeds backoffLimit 1: FailureTarget, then Failed.
    let second = s(&now[0], "/metadata/name").to_string();
    delete_pod(&mut w, &second);
    advance_secs(&mut w, 60.0);
    let j = get(&w, "jobs.batch", "default", "long").expect("job");
    assert_eq!(j["status"]["failed"], 2);
    let failed = condition_of(&j, "Failed");
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(
        failed["message"],
        "Job has reached the specified backoff limit"
    );
    assert!(pods(&w, "long-").is_empty());
}

fn condition_of(o: &Value, t: &str) -> Value {
    o["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == t))
        .cloned()
        .unwrap_or(Value::Null)
}

fn gpu_node(name: &str) -> Value {
    let mut n = crate::controllers::nodes::worker(9, "2026-01-01T00:00:00Z");
    n["metadata"]["name"] = json!(name);
    n["metadata"]["labels"]["nvidia.com/gpu.present"] = json!("true");
    n["spec"]["taints"] =
        json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]);
    n["status"]["capacity"]["nvidia.com/gpu"] = json!("1");
    n["status"]["allocatable"]["nvidia.com/gpu"] = json!("1");
    n
}

fn gpu_pod(name: &str, tolerate: bool) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "trainer:1",
            "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}});
    if tolerate {
        p["spec"]["tolerations"] =
            json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]);
    }
    p
}

fn scheduled_message(w: &World, name: &str) -> String {
    let p = get(w, "pods", "default", name).expect("pod");
    s(&condition_of(&p, "PodScheduled"), "/message").to_string()
}

#[test]
fn gpus_are_counted_taints_tolerated_and_cordoned_nodes_skipped() {
    let mut w = world(5);
    apply(&mut w, gpu_node("gpu-a"));
    apply(&mut w, gpu_pod("no-toleration", false));
    assert_eq!(
        scheduled_message(&w, "no-toleration"),
        "0/4 nodes are available: 3 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: 0/4 nodes are available: 4 No preemption victims found for incoming pod."
    );
    apply(&mut w, gpu_pod("first", true));
    let p = get(&w, "pods", "default", "first").expect("pod");
    assert_eq!(s(&p, "/spec/nodeName"), "gpu-a");
    // The one GPU is taken: the next pod waits.
    apply(&mut w, gpu_pod("second", true));
    let msg = scheduled_message(&w, "second");
    assert!(msg.contains("4 Insufficient nvidia.com/gpu"), "{msg}");
    // Cordon: the lifecycle taint appears, and a new pod is not placed there.
    patch(
        &mut w,
        "nodes",
        "",
        "sim-worker-1",
        json!({"spec": {"unschedulable": true}}),
    );
    let n = get(&w, "nodes", "", "sim-worker-1").expect("node");
    assert_eq!(
        n["spec"]["taints"],
        json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])
    );
    let mut plain = gpu_pod("plain", false);
    plain["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "7"}});
    plain["spec"]["nodeSelector"] = json!({"kubernetes.io/hostname": "sim-worker-1"});
    apply(&mut w, plain);
    assert!(
        scheduled_message(&w, "plain").contains("1 node(s) were unschedulable"),
        "{}",
        scheduled_message(&w, "plain")
    );
    patch(
        &mut w,
        "nodes",
        "",
        "sim-worker-1",
        json!({"spec": {"unschedulable": null}}),
    );
    let n = get(&w, "nodes", "", "sim-worker-1").expect("node");
    assert!(n["spec"].get("taints").is_none(), "{}", n["spec"]);
    let p = get(&w, "pods", "default", "plain").expect("pod");
    assert_eq!(s(&p, "/spec/nodeName"), "sim-worker-1");
}

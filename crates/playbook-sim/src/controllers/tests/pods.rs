//! The scheduler and the kubelet model: binding, readiness, restarts, OOM, completion.

use super::*;
use crate::controllers::util::condition;

fn pod(name: &str, annotations: Value, policy: &str, resources: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}, "annotations": annotations},
        "spec": {"restartPolicy": policy, "containers": [{"name": "main", "image": "busybox:1.36", "resources": resources}]}})
}

fn cs(w: &World, name: &str) -> Value {
    get(w, "pods", "default", name).expect("pod")["status"]["containerStatuses"][0].clone()
}

#[test]
fn unschedulable_pod_waits_and_is_scheduled_when_room_appears() {
    let mut w = world(2);
    apply(
        &mut w,
        pod(
            "huge",
            json!({}),
            "Always",
            json!({"requests": {"cpu": "100"}}),
        ),
    );
    let p = get(&w, "pods", "default", "huge").expect("pod");
    let c = condition(&p, "PodScheduled").expect("cond");
    assert_eq!(c["status"], "False");
    assert_eq!(c["reason"], "Unschedulable");
    let ev = events(&w, "FailedScheduling");
    assert_eq!(ev.len(), 1);
    assert!(
        s(&ev[0], "/message").starts_with("0/3 nodes are available: 3 Insufficient cpu."),
        "{}",
        ev[0]["message"]
    );
    // Three CPU per pod: two fit per 8-CPU node, so 6 of 8 are bound.
    let mut d = deployment("big", 8, json!({}));
    d["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "3", "memory": "1Gi"}});
    apply(&mut w, d);
    let bound = pods(&w, "big-")
        .iter()
        .filter(|p| !s(p, "/spec/nodeName").is_empty())
        .count();
    assert_eq!(bound, 6);
    let per_node: std::collections::BTreeMap<String, usize> =
        pods(&w, "big-")
            .iter()
            .fold(Default::default(), |mut m, p| {
                *m.entry(s(p, "/spec/nodeName").to_string()).or_default() += 1;
                m
            });
    assert_eq!(per_node.get("sim-worker-1"), Some(&2), "{per_node:?}");
    patch(
        &mut w,
        "deployments.apps",
        "default",
        "big",
        json!({"spec": {"replicas": 7}}),
    );
    advance_secs(&mut w, 5.0);
    let bound = pods(&w, "big-")
        .iter()
        .filter(|p| !s(p, "/spec/nodeName").is_empty())
        .count();
    assert_eq!(bound, 6, "pending pods go first on scale down");
    assert_eq!(pods(&w, "big-").len(), 7);
    patch(
        &mut w,
        "deployments.apps",
        "default",
        "big",
        json!({"spec": {"replicas": 5}}),
    );
    advance_secs(&mut w, 5.0);
    assert!(
        pods(&w, "big-")
            .iter()
            .all(|p| !s(p, "/spec/nodeName").is_empty())
    );
    assert!(
        s(
            &get(&w, "pods", "default", "huge").expect("p"),
            "/spec/nodeName"
        )
        .is_empty()
    );
}

#[test]
fn memory_above_limit_is_oomkilled_and_comes_back() {
    let mut w = world(4);
    let res = json!({"requests": {"memory": "128Mi"}, "limits": {"memory": "256Mi"}});
    apply(
        &mut w,
        pod(
            "m",
            json!({"sim.playbook.dev/memory": "100Mi"}),
            "Always",
            res,
        ),
    );
    advance_secs(&mut w, 10.0);
    assert!(pod_ready(&get(&w, "pods", "default", "m").expect("p")));
    patch(
        &mut w,
        "pods",
        "default",
        "m",
        json!({"metadata": {"annotations": {"sim.playbook.dev/stress-memory": "200Mi"}}}),
    );
    let c = cs(&w, "m");
    assert_eq!(c["restartCount"], 1);
    assert_eq!(c["lastState"]["terminated"]["reason"], "OOMKilled");
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 137);
    assert!(c["state"]["running"].is_object());
    assert_eq!(c["ready"], false);
    // The kubelet emits no OOMKilling pod event; node-problem-detector's kernel monitor
    // reports the kernel's line on the Node (config/kernel-monitor.json).
    let oom = events(&w, "OOMKilling");
    assert_eq!(oom.len(), 1);
    assert_eq!(oom[0]["involvedObject"]["kind"], "Node");
    assert_eq!(oom[0]["source"]["component"], "kernel-monitor");
    assert!(
        events(&w, "OOMKilling")
            .iter()
            .all(|e| e["involvedObject"]["kind"] != "Pod")
    );
    // The fault ends before the container fills its memory again.
    advance_secs(&mut w, 2.0);
    patch(
        &mut w,
        "pods",
        "default",
        "m",
        json!({"metadata": {"annotations": {"sim.playbook.dev/stress-memory": null}}}),
    );
    advance_secs(&mut w, 10.0);
    let p = get(&w, "pods", "default", "m").expect("p");
    assert!(pod_ready(&p));
    assert_eq!(cs(&w, "m")["restartCount"], 1);
    assert_eq!(s(&p, "/status/phase"), "Running");
}

#[test]
fn crash_loop_back_off_doubles_from_ten_seconds() {
    let mut w = world(6);
    let anns = json!({"sim.playbook.dev/run-for": "5s", "sim.playbook.dev/exit-code": "1", "sim.playbook.dev/startup": "0s"});
    apply(&mut w, pod("crash", anns, "Always", json!({})));
    // start 1, exit 6 -> restart at once; exit 11 -> back-off 10 s -> start 21; exit 26 -> 20 s -> 46.
    advance_secs(&mut w, 7.0);
    assert_eq!(cs(&w, "crash")["restartCount"], 1);
    assert!(cs(&w, "crash")["state"]["running"].is_object());
    advance_secs(&mut w, 13.0); // t = 20
    let c = cs(&w, "crash");
    assert_eq!(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert!(s(&c, "/state/waiting/message").starts_with("back-off 10s"));
    assert_eq!(c["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(c["restartCount"], 1);
    advance_secs(&mut w, 2.0); // t = 22
    assert_eq!(cs(&w, "crash")["restartCount"], 2);
    advance_secs(&mut w, 23.0); // t = 45
    let c = cs(&w, "crash");
    assert_eq!(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert!(s(&c, "/state/waiting/message").starts_with("back-off 20s"));
    advance_secs(&mut w, 2.0); // t = 47
    assert_eq!(cs(&w, "crash")["restartCount"], 3);
    assert!(events(&w, "BackOff").len() >= 2);
    let p = get(&w, "pods", "default", "crash").expect("p");
    assert_eq!(s(&p, "/status/phase"), "Running");
}

#[test]
fn run_to_completion_pods_succeed_or_fail() {
    let mut w = world(8);
    apply(
        &mut w,
        pod(
            "job",
            json!({"sim.playbook.dev/run-for": "45s"}),
            "Never",
            json!({}),
        ),
    );
    apply(
        &mut w,
        pod(
            "bad",
            json!({"sim.playbook.dev/run-for": "10s", "sim.playbook.dev/exit-code": "2"}),
            "Never",
            json!({}),
        ),
    );
    advance_secs(&mut w, 20.0);
    let p = get(&w, "pods", "default", "job").expect("p");
    assert_eq!(s(&p, "/status/phase"), "Running");
    assert_eq!(
        s(
            &get(&w, "pods", "default", "bad").expect("p"),
            "/status/phase"
        ),
        "Failed"
    );
    advance_secs(&mut w, 30.0);
    let p = get(&w, "pods", "default", "job").expect("p");
    assert_eq!(s(&p, "/status/phase"), "Succeeded");
    assert_eq!(condition(&p, "Ready").expect("r")["reason"], "PodCompleted");
    let c = cs(&w, "job");
    assert_eq!(c["state"]["terminated"]["reason"], "Completed");
    assert_eq!(c["state"]["terminated"]["exitCode"], 0);
    assert_eq!(c["restartCount"], 0);
    // A completed pod is deleted at once (its containers are already stopped).
    let pid = w.store().registry().lookup("pods").expect("pods");
    w.store_mut()
        .delete(pid, "default", "job", &Default::default())
        .expect("delete");
    w.settle();
    assert!(get(&w, "pods", "default", "job").is_none());
}

#[test]
fn pod_status_looks_real() {
    let mut w = world(9);
    let res =
        json!({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}});
    apply(&mut w, pod("g", json!({}), "Always", res));
    advance_secs(&mut w, 10.0);
    let p = get(&w, "pods", "default", "g").expect("p");
    assert_eq!(s(&p, "/status/qosClass"), "Guaranteed");
    assert_eq!(s(&p, "/status/hostIP"), "172.18.0.2");
    assert_eq!(s(&p, "/status/podIP"), "10.244.1.2");
    let types: Vec<&str> = p["status"]["conditions"]
        .as_array()
        .expect("c")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled"
        ]
    );
    let c = cs(&w, "g");
    assert_eq!(c["started"], true);
    assert!(s(&c, "/containerID").starts_with("containerd://"));
    for r in ["Scheduled", "Pulled", "Created", "Started"] {
        assert_eq!(events(&w, r).len(), 1, "{r}");
    }
    assert!(elapsed_secs(&w) >= 10.0);
}

/// The scheduler records through events.k8s.io (pkg/scheduler/schedule_one.go with
/// client-go tools/events): `eventTime`, `action`, null `firstTimestamp`/`lastTimestamp`,
/// and a repeated failure folds into the first event's `series`
/// (tools/events/event_broadcaster.go).
#[test]
fn scheduler_events_use_the_events_api_with_a_series() {
    let mut w = world(2);
    let big = json!({"requests": {"cpu": "100", "memory": "1Gi"}});
    apply(&mut w, pod("huge", json!({}), "Always", big));
    let fs = events(&w, "FailedScheduling");
    assert_eq!(fs.len(), 1);
    assert!(fs[0]["lastTimestamp"].is_null() && fs[0]["firstTimestamp"].is_null());
    assert!(fs[0]["eventTime"].is_string());
    assert_eq!(fs[0]["action"], "Scheduling");
    assert!(fs[0].get("series").is_none(), "{}", fs[0]);
    // The cluster changes (a node update): the pod is tried again and fails the same way.
    patch(
        &mut w,
        "nodes",
        "",
        "sim-worker-1",
        json!({"metadata": {"labels": {"x": "y"}}}),
    );
    let fs = events(&w, "FailedScheduling");
    assert_eq!(fs.len(), 1);
    assert_eq!(fs[0]["series"]["count"], 2);
    let ok = events(&w, "Scheduled");
    assert!(ok.is_empty());
    apply(&mut w, pod("small", json!({}), "Always", json!({})));
    let ok = events(&w, "Scheduled");
    assert_eq!(ok[0]["action"], "Binding");
    assert!(ok[0]["lastTimestamp"].is_null());
}

//! Deployments, ReplicaSets, StatefulSets: creation, replacement, rollout, scaling.

use super::*;
use crate::controllers::util::pod_ready;
use crate::store::DeleteOptions;

#[test]
fn deployment_of_three_comes_up_ready_after_startup() {
    let mut w = world(7);
    apply(
        &mut w,
        deployment("web", 3, json!({"sim.playbook.dev/startup": "20s"})),
    );
    let ps = pods(&w, "web-");
    assert_eq!(ps.len(), 3);
    let rs = list(&w, "replicasets.apps");
    assert_eq!(rs.len(), 1);
    let hash = s(&rs[0], "/metadata/labels/pod-template-hash").to_string();
    assert!(!hash.is_empty());
    for p in &ps {
        assert_eq!(s(p, "/metadata/labels/pod-template-hash"), hash);
        assert!(s(p, "/metadata/name").starts_with(&format!("web-{hash}-")));
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        assert!(!s(p, "/spec/nodeName").is_empty());
        assert_eq!(
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ContainerCreating"
        );
    }
    advance_secs(&mut w, 2.0);
    let p = &pods(&w, "web-")[0];
    assert_eq!(s(p, "/status/phase"), "Running");
    assert!(s(p, "/status/podIP").starts_with("10.244."));
    assert_eq!(ready_count(&w, "web-"), 0);
    advance_secs(&mut w, 19.0); // t = 21 s: started at 1 s, ready at 21..23 s
    assert!(ready_count(&w, "web-") < 3);
    advance_secs(&mut w, 3.0);
    assert_eq!(ready_count(&w, "web-"), 3);
    let d = get(&w, "deployments.apps", "default", "web").expect("d");
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["observedGeneration"], 1);
    let reasons: Vec<&str> = d["status"]["conditions"]
        .as_array()
        .expect("conds")
        .iter()
        .filter_map(|c| c["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        ["MinimumReplicasAvailable", "NewReplicaSetAvailable"]
    );
    assert_eq!(events(&w, "Scheduled").len(), 3);
    assert_eq!(events(&w, "SuccessfulCreate").len(), 3);
    assert_eq!(events(&w, "ScalingReplicaSet").len(), 1);
}

#[test]
fn deleted_pod_is_replaced_and_replacement_ready_after_startup() {
    let mut w = world(3);
    apply(
        &mut w,
        deployment("api", 2, json!({"sim.playbook.dev/startup": "10s"})),
    );
    advance_secs(&mut w, 30.0);
    assert_eq!(ready_count(&w, "api-"), 2);
    let victim = s(&pods(&w, "api-")[0], "/metadata/name").to_string();
    let pid = w.store().registry().lookup("pods").expect("pods");
    let opts = DeleteOptions {
        grace_period_seconds: Some(30),
        ..Default::default()
    };
    w.store_mut()
        .delete(pid, "default", &victim, &opts)
        .expect("delete");
    w.settle();
    // Terminating for the shutdown time (1 s), replaced at once.
    let old = get(&w, "pods", "default", &victim).expect("still terminating");
    assert!(old["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(events(&w, "Killing").len(), 1);
    let now = pods(&w, "api-");
    assert_eq!(now.len(), 2);
    assert_eq!(ready_count(&w, "api-"), 1);
    advance_secs(&mut w, 1.5);
    assert!(get(&w, "pods", "default", &victim).is_none());
    advance_secs(&mut w, 9.0);
    assert_eq!(ready_count(&w, "api-"), 1, "not ready before startup");
    advance_secs(&mut w, 3.0);
    assert_eq!(ready_count(&w, "api-"), 2);
}

#[test]
fn rollout_restart_replaces_all_pods_within_surge_limits() {
    let mut w = world(11);
    apply(
        &mut w,
        deployment("web", 4, json!({"sim.playbook.dev/startup": "5s"})),
    );
    advance_secs(&mut w, 20.0);
    let before: Vec<String> = pods(&w, "web-")
        .iter()
        .map(|p| s(p, "/metadata/name").to_string())
        .collect();
    patch(
        &mut w,
        "deployments.apps",
        "default",
        "web",
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:20Z"}}}}}),
    );
    // 4 replicas: maxSurge 1, maxUnavailable 1.
    for _ in 0..120 {
        let active = pods(&w, "web-").len();
        assert!(active <= 5, "surge exceeded: {active}");
        assert!(ready_count(&w, "web-") >= 3, "unavailable exceeded");
        advance_secs(&mut w, 0.5);
    }
    let after = pods(&w, "web-");
    assert_eq!(after.len(), 4);
    assert!(
        after
            .iter()
            .all(|p| !before.contains(&s(p, "/metadata/name").to_string()))
    );
    assert_eq!(list(&w, "replicasets.apps").len(), 2);
    let d = get(&w, "deployments.apps", "default", "web").expect("d");
    assert_eq!(d["status"]["updatedReplicas"], 4);
    assert_eq!(d["status"]["replicas"], 4);
    assert_eq!(d["status"]["observedGeneration"], 2);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(
        super::super::util::condition(&d, "Progressing").expect("p")["reason"],
        "NewReplicaSetAvailable"
    );
}

#[test]
fn scale_up_and_down() {
    let mut w = world(5);
    apply(&mut w, deployment("web", 2, json!({})));
    advance_secs(&mut w, 10.0);
    patch(
        &mut w,
        "deployments.apps",
        "default",
        "web",
        json!({"spec": {"replicas": 5}}),
    );
    advance_secs(&mut w, 10.0);
    assert_eq!(ready_count(&w, "web-"), 5);
    patch(
        &mut w,
        "deployments.apps",
        "default",
        "web",
        json!({"spec": {"replicas": 1}}),
    );
    assert_eq!(pods(&w, "web-").len(), 1);
    assert_eq!(events(&w, "SuccessfulDelete").len(), 4);
    advance_secs(&mut w, 5.0);
    let d = get(&w, "deployments.apps", "default", "web").expect("d");
    assert_eq!(d["status"]["replicas"], 1);
    assert_eq!(d["status"]["availableReplicas"], 1);
}

#[test]
fn statefulset_creates_pods_in_order_and_scales_down_from_the_top() {
    let mut w = world(12);
    apply(
        &mut w,
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}, "annotations": {"sim.playbook.dev/startup": "5s"}},
                    "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}}),
    );
    let names = |w: &World| -> Vec<String> {
        pods(w, "db-")
            .iter()
            .map(|p| s(p, "/metadata/name").to_string())
            .collect()
    };
    assert_eq!(names(&w), ["db-0"]);
    advance_secs(&mut w, 7.0);
    assert_eq!(names(&w), ["db-0", "db-1"]);
    advance_secs(&mut w, 7.0);
    assert_eq!(names(&w), ["db-0", "db-1", "db-2"]);
    advance_secs(&mut w, 7.0);
    assert_eq!(ready_count(&w, "db-"), 3);
    let sts = get(&w, "statefulsets.apps", "default", "db").expect("sts");
    assert_eq!(sts["status"]["readyReplicas"], 3);
    assert_eq!(sts["status"]["currentReplicas"], 3);
    assert_eq!(sts["status"]["updatedReplicas"], 3);
    let p0 = get(&w, "pods", "default", "db-0").expect("p");
    assert_eq!(s(&p0, "/spec/hostname"), "db-0");
    assert_eq!(
        s(&p0, "/metadata/labels/apps.kubernetes.io~1pod-index"),
        "0"
    );
    patch(
        &mut w,
        "statefulsets.apps",
        "default",
        "db",
        json!({"spec": {"replicas": 1}}),
    );
    assert_eq!(names(&w), ["db-0", "db-1"], "db-2 goes first");
    advance_secs(&mut w, 2.0);
    assert_eq!(names(&w), ["db-0"]);
    let dels: Vec<String> = events(&w, "SuccessfulDelete")
        .iter()
        .map(|e| s(e, "/message").to_string())
        .collect();
    assert_eq!(
        dels,
        [
            "delete Pod db-2 in StatefulSet db successful",
            "delete Pod db-1 in StatefulSet db successful"
        ]
        .map(String::from)
        .to_vec()
        .into_iter()
        .filter(|d| dels.contains(d))
        .collect::<Vec<_>>()
    );
    assert_eq!(dels.len(), 2);
}

fn postgres(w: &mut World, replicas: i64) {
    apply(
        w,
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "pg", "namespace": "default"},
            "spec": {"replicas": replicas, "serviceName": "pg", "selector": {"matchLabels": {"app": "pg"}},
                "template": {"metadata": {"labels": {"app": "pg"}, "annotations": {"sim.playbook.dev/startup": "5s"}},
                    "spec": {"containers": [{"name": "pg", "image": "postgres:16"}]}}}}),
    );
}

fn uid(w: &World, name: &str) -> String {
    get(w, "pods", "default", name)
        .map(|p| s(&p, "/metadata/uid").to_string())
        .unwrap_or_default()
}

/// A StatefulSet pod deleted (pod-kill, grace 0 or not), recreated under the same name,
/// is scheduled, started and Ready again: pkg/controller/statefulset/stateful_set_control.go
/// recreates a missing ordinal under its stable name, the scheduler binds it
/// (pkg/scheduler/eventhandlers.go: a new pod object, whatever its name) and the kubelet
/// runs it as a new pod (its uid differs).
#[test]
fn statefulset_pod_recreated_under_the_same_name_becomes_ready() {
    for lag in [false, true] {
        for grace in [0, 30] {
            let mut w = world(5);
            w.set_controller_lag(lag);
            postgres(&mut w, 1);
            advance_secs(&mut w, 10.0);
            assert_eq!(ready_count(&w, "pg-"), 1, "lag {lag}");
            let old = uid(&w, "pg-0");
            let pid = w.store().registry().lookup("pods").expect("pods");
            let opts = DeleteOptions {
                grace_period_seconds: Some(grace),
                ..Default::default()
            };
            w.store_mut()
                .delete(pid, "default", "pg-0", &opts)
                .expect("delete");
            w.settle();
            advance_secs(&mut w, 15.0);
            let p = get(&w, "pods", "default", "pg-0").expect("recreated");
            assert_ne!(s(&p, "/metadata/uid"), old, "lag {lag} grace {grace}");
            assert_eq!(
                s(&p, "/status/phase"),
                "Running",
                "lag {lag} grace {grace}: {p}"
            );
            assert!(pod_ready(&p), "lag {lag} grace {grace}");
        }
    }
}

/// Scaling down then up recreates `pg-1` under its old name; a rolling restart replaces
/// each ordinal from the highest (stateful_set_control.go `updateStatefulSet`).
#[test]
fn statefulset_scale_up_again_and_rollout_restart_come_back_ready() {
    for lag in [false, true] {
        let mut w = world(6);
        w.set_controller_lag(lag);
        postgres(&mut w, 2);
        advance_secs(&mut w, 20.0);
        assert_eq!(ready_count(&w, "pg-"), 2);
        patch(
            &mut w,
            "statefulsets.apps",
            "default",
            "pg",
            json!({"spec": {"replicas": 1}}),
        );
        advance_secs(&mut w, 5.0);
        assert_eq!(pods(&w, "pg-").len(), 1);
        patch(
            &mut w,
            "statefulsets.apps",
            "default",
            "pg",
            json!({"spec": {"replicas": 2}}),
        );
        advance_secs(&mut w, 10.0);
        assert_eq!(ready_count(&w, "pg-"), 2, "lag {lag}: scaled up again");
        let before = (uid(&w, "pg-0"), uid(&w, "pg-1"));
        patch(
            &mut w,
            "statefulsets.apps",
            "default",
            "pg",
            json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:01:00Z"}}}}}),
        );
        advance_secs(&mut w, 40.0);
        assert_eq!(ready_count(&w, "pg-"), 2, "lag {lag}: restarted");
        assert_ne!(uid(&w, "pg-0"), before.0);
        assert_ne!(uid(&w, "pg-1"), before.1);
    }
}

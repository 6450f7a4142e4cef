//! Controller lag: each controller sees a change after its informer delivery and work-queue
//! delay (client-go tools/cache/shared_informer.go, util/workqueue/queue.go), seeded; the
//! kubelet reports container state on its PLEG relist (pkg/kubelet/pleg/generic.go).

use super::*;
use crate::store::DeleteOptions;

/// The first instants (ms after the write) at which a ReplicaSet, then pods, then a bound
/// pod exist for a new Deployment, stepping 1 ms at a time.
fn first_seen(seed: u64) -> (i64, i64, i64) {
    let mut w = world(seed);
    w.set_controller_lag(true);
    let t0 = w.now();
    apply(&mut w, deployment("web", 2, json!({})));
    let (mut rs, mut pod, mut bound) = (None, None, None);
    let ms = |w: &World| w.now().duration_since(t0).as_millis() as i64;
    for _ in 0..2000 {
        if rs.is_none() && !list(&w, "replicasets.apps").is_empty() {
            rs = Some(ms(&w));
        }
        let ps = pods(&w, "web-");
        if pod.is_none() && !ps.is_empty() {
            pod = Some(ms(&w));
        }
        if bound.is_none() && ps.iter().any(|p| !s(p, "/spec/nodeName").is_empty()) {
            bound = Some(ms(&w));
            break;
        }
        advance_ms(&mut w, 1);
    }
    (
        rs.expect("replicaset"),
        pod.expect("pod"),
        bound.expect("bound"),
    )
}

#[test]
fn each_controller_reacts_after_its_own_seeded_lag() {
    let (rs, pod, bound) = first_seen(1);
    // deployment_controller.go: 10..100 ms; replica_set.go: 10..80 ms; scheduler: 5..50 ms.
    assert!((10..=100).contains(&rs), "replicaset at {rs} ms");
    assert!((rs + 10..=rs + 80).contains(&pod), "pod at {pod} ms");
    assert!((pod + 5..=pod + 50).contains(&bound), "bound at {bound} ms");
    assert_eq!(first_seen(1), (rs, pod, bound), "same seed, same run");
    let others: Vec<_> = (2..6).map(first_seen).collect();
    assert!(
        others.iter().any(|o| *o != (rs, pod, bound)),
        "seeds differ: {others:?}"
    );
}

#[test]
fn without_lag_the_world_is_instant() {
    let mut w = world(1);
    apply(&mut w, deployment("web", 2, json!({})));
    let ps = pods(&w, "web-");
    assert_eq!(ps.len(), 2);
    assert!(ps.iter().all(|p| !s(p, "/spec/nodeName").is_empty()));
}

/// Status lags: right after a ready pod is killed the Deployment still counts it
/// (deployment/sync.go computes status only when the controller syncs), and the kubelet's
/// container start lands on its node's 1 s relist grid.
#[test]
fn deployment_status_is_stale_for_a_moment_after_a_pod_dies() {
    let mut w = world(9);
    w.set_controller_lag(true);
    apply(
        &mut w,
        deployment("api", 3, json!({"sim.playbook.dev/startup": "5s"})),
    );
    advance_secs(&mut w, 20.0);
    let d = get(&w, "deployments.apps", "default", "api").expect("d");
    assert_eq!(d["status"]["readyReplicas"], 3);
    let victim = s(&pods(&w, "api-")[0], "/metadata/name").to_string();
    let pid = w.store().registry().lookup("pods").expect("pods");
    let opts = DeleteOptions {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    w.store_mut()
        .delete(pid, "default", &victim, &opts)
        .expect("delete");
    w.settle();
    let d = get(&w, "deployments.apps", "default", "api").expect("d");
    assert_eq!(d["status"]["readyReplicas"], 3, "stale in the same instant");
    advance_secs(&mut w, 1.0);
    let d = get(&w, "deployments.apps", "default", "api").expect("d");
    assert_eq!(d["status"]["readyReplicas"], 2, "caught up within a second");
    // The replacement's container started on a relist tick of its node.
    advance_secs(&mut w, 3.0);
    let fresh: Vec<_> = pods(&w, "api-")
        .into_iter()
        .filter(|p| s(p, "/metadata/name") != victim)
        .filter(|p| p["status"]["containerStatuses"][0]["state"]["running"].is_object())
        .collect();
    assert!(!fresh.is_empty());
}

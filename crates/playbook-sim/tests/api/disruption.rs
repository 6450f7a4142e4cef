//! PodDisruptionBudgets and the Eviction API through `kube::Client`: the disruption
//! controller's status, a refused eviction's 429, a granted one's deletion.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams, PostParams};
use playbook_sim::{ClockMode, ControllerLag, Sim, SimConfig};
use serde_json::json;

fn sim() -> Sim {
    Sim::new(SimConfig {
        seed: 11,
        clock: ClockMode::Virtual,
        lag: ControllerLag::Off,
        ..Default::default()
    })
}

async fn ready_pods(pods: &Api<Pod>) -> Vec<String> {
    pods.list(&ListParams::default().labels("app=web"))
        .await
        .expect("list")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| p.metadata.name)
        .collect()
}

#[tokio::test]
async fn evictions_honour_the_budget_and_are_recorded() {
    let sim = sim();
    sim.seed(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}))
        .expect("deployment");
    sim.advance_by(jiff::SignedDuration::from_secs(10));
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(sim.client(), "default");
    let pdb = serde_json::from_value(
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}),
    )
    .expect("pdb");
    pdbs.create(&PostParams::default(), &pdb)
        .await
        .expect("create");
    let st = pdbs.get("web").await.expect("get").status.expect("status");
    assert_eq!(
        (
            st.current_healthy,
            st.desired_healthy,
            st.disruptions_allowed,
            st.expected_pods
        ),
        (Some(2), Some(2), Some(0), Some(2))
    );
    assert_eq!(st.observed_generation, Some(1));
    let cond = &st.conditions.expect("conditions")[0];
    assert_eq!(
        (
            cond.type_.as_str(),
            cond.status.as_str(),
            cond.reason.as_str()
        ),
        ("DisruptionAllowed", "False", "InsufficientPods")
    );

    let pods: Api<Pod> = Api::namespaced(sim.client(), "default");
    let names = ready_pods(&pods).await;
    assert_eq!(names.len(), 2);
    let err = pods
        .evict(&names[0], &EvictParams::default())
        .await
        .expect_err("the budget refuses");
    let kube::Error::Api(e) = err else {
        panic!("not an API error: {err}")
    };
    assert_eq!(e.code, 429);
    assert_eq!(e.reason, "TooManyRequests");
    assert_eq!(
        e.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(ready_pods(&pods).await.len(), 2, "nothing was deleted");

    // maxUnavailable 1 over the Deployment's scale: one eviction is granted, a second waits.
    pdbs.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"minAvailable": null, "maxUnavailable": 1}})),
    )
    .await
    .expect("patch");
    let st = pdbs.get("web").await.expect("get").status.expect("status");
    assert_eq!(
        (
            st.disruptions_allowed,
            st.desired_healthy,
            st.observed_generation
        ),
        (Some(1), Some(1), Some(2))
    );
    pods.evict(&names[0], &EvictParams::default())
        .await
        .expect("granted");
    let evicted = pods.get(&names[0]).await.expect("still terminating");
    assert!(evicted.metadata.deletion_timestamp.is_some());
    let target = evicted
        .status
        .and_then(|s| s.conditions)
        .and_then(|cs| cs.into_iter().find(|c| c.type_ == "DisruptionTarget"))
        .expect("DisruptionTarget");
    assert_eq!(target.reason.as_deref(), Some("EvictionByEvictionAPI"));
    let err = pods
        .evict(&names[1], &EvictParams::default())
        .await
        .expect_err("no more disruptions allowed");
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 429),
        "{err}"
    );
    // The replacement becomes Ready: the budget allows one again.
    sim.advance_by(jiff::SignedDuration::from_secs(15));
    let st = pdbs.get("web").await.expect("get").status.expect("status");
    assert_eq!(
        (st.current_healthy, st.disruptions_allowed),
        (Some(2), Some(1))
    );
}

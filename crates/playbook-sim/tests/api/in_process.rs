//! The simulator in process: `kube::Client` over `Sim::router()`, virtual time, watcher relists.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use playbook_sim::{ClockMode, Controller, ControllerLag, Ctx, Sim, SimConfig, virtual_epoch};
use serde_json::json;

fn pod(name: &str, labels: serde_json::Value) -> Pod {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}))
    .expect("pod")
}

/// An instant world (no controller lag): these tests check API semantics step by step.
fn sim() -> Sim {
    Sim::new(SimConfig {
        seed: 7,
        clock: ClockMode::Virtual,
        lag: ControllerLag::Off,
        ..Default::default()
    })
}

#[tokio::test]
async fn kube_client_crud_through_the_router() {
    let sim = sim();
    let pods: Api<Pod> = Api::namespaced(sim.client(), "default");
    let p = pods
        .create(&PostParams::default(), &pod("a", json!({"app": "x"})))
        .await
        .expect("create");
    assert_eq!(
        p.metadata.creation_timestamp.map(|t| t.0.to_string()),
        Some("2026-01-01T00:00:00Z".to_string())
    );
    assert_eq!(p.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    let err = pods
        .create(&PostParams::default(), &pod("a", json!({})))
        .await
        .expect_err("dup");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "AlreadyExists");
        }
        other => panic!("unexpected {other:?}"),
    }
    pods.create(&PostParams::default(), &pod("b", json!({"app": "y"})))
        .await
        .expect("create b");
    let list = pods
        .list(&ListParams::default().labels("app=x"))
        .await
        .expect("list");
    assert_eq!(list.items.len(), 1);
    let patched = pods
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"p": "1"}}})),
        )
        .await
        .expect("patch");
    assert_eq!(
        patched
            .metadata
            .labels
            .and_then(|l| l.get("p").cloned())
            .as_deref(),
        Some("1")
    );
    let applied = pods
        .patch(
            "c",
            &PatchParams::apply("test"),
            &Patch::Apply(pod("c", json!({"app": "z"}))),
        )
        .await
        .expect("apply creates");
    assert_eq!(applied.metadata.name.as_deref(), Some("c"));
    pods.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    // A bound pod terminates first (its grace period recorded, as the API server does), and
    // goes once the kubelet stopped its container.
    let a = pods.get("a").await.expect("terminating");
    assert!(a.metadata.deletion_timestamp.is_some(), "{a:?}");
    assert_eq!(a.metadata.deletion_grace_period_seconds, Some(30));
    sim.advance_by(jiff::SignedDuration::from_secs(5));
    let err = pods.get("a").await.expect_err("gone");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.message == "pods \"a\" not found"),
        "{err:?}"
    );
    let err = pods
        .list(&ListParams::default().labels("in in in"))
        .await
        .expect_err("bad selector");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 400),
        "{err:?}"
    );
    // scale subresource
    let deploys: Api<Deployment> = Api::namespaced(sim.client(), "default");
    let d: Deployment = serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}))
    .expect("deploy");
    deploys
        .create(&PostParams::default(), &d)
        .await
        .expect("create deploy");
    let sc = deploys
        .patch_scale(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .expect("scale");
    assert_eq!(sc.spec.and_then(|s| s.replicas), Some(4));
    assert_eq!(deploys.get("d").await.expect("get").spec.replicas, Some(4));
}

/// How long after a pod's creation [`Marker`] marks it.
const MARK_AFTER: jiff::SignedDuration = jiff::SignedDuration::from_secs(2);

/// The example of the Controller API: [`MARK_AFTER`] simulated seconds after a pod is created,
/// labels it `marked=yes` and records a `Marked` event. The core controllers schedule and start
/// the pod meanwhile; none of them sets this label or records this event.
struct Marker;

fn marked(p: &Pod) -> bool {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("marked"))
        .is_some_and(|v| v == "yes")
}

impl Controller for Marker {
    fn name(&self) -> &'static str {
        "marker"
    }
    fn watches(&self) -> &'static [&'static str] {
        &["pods"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        for p in ctx.list("pods", None) {
            if p["metadata"]["labels"]["marked"] == "yes"
                || p["metadata"]["deletionTimestamp"].is_string()
            {
                continue;
            }
            let created: jiff::Timestamp = p["metadata"]["creationTimestamp"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(now);
            let due = created + MARK_AFTER;
            if now < due {
                ctx.wake_at(due);
                continue;
            }
            let ns = p["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let name = p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mark = json!({"metadata": {"labels": {"marked": "yes"}}});
            let _ = ctx.patch("pods", &ns, &name, &mark);
            ctx.record_event(&p, "Normal", "Marked", "pod marked", "marker");
        }
    }
}

#[tokio::test]
async fn controllers_run_in_virtual_time() {
    let sim = sim();
    sim.add_controller(Box::new(Marker));
    let pods: Api<Pod> = Api::namespaced(sim.client(), "default");
    pods.create(&PostParams::default(), &pod("v", json!({})))
        .await
        .expect("create");
    let phase = |p: Pod| p.status.and_then(|s| s.phase).unwrap_or_default();
    let v = pods.get("v").await.expect("get");
    assert!(!marked(&v));
    assert_eq!(phase(v), "Pending");
    assert_eq!(sim.now(), virtual_epoch(), "time moves only when asked");
    // The core controllers bound the pod at once; the kubelet starts it after one second.
    let first = sim.next_event_at().expect("a timer is pending");
    assert_eq!(first, virtual_epoch() + jiff::SignedDuration::from_secs(1));
    sim.advance_to(first);
    let v = pods.get("v").await.expect("get");
    assert!(!marked(&v), "not before its time");
    assert_eq!(phase(v), "Running");
    // The added controller's timer is the next one, and fires when time reaches it.
    let due = sim.next_event_at().expect("the marker's timer is pending");
    assert_eq!(due, virtual_epoch() + MARK_AFTER);
    sim.advance_to(due);
    assert!(marked(&pods.get("v").await.expect("get")));
    assert_eq!(sim.now(), due);
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(sim.client(), "default");
    let evs = events
        .list(&ListParams::default().fields("involvedObject.name=v,reason=Marked"))
        .await
        .expect("events");
    assert_eq!(evs.items.len(), 1);
    let scheduled = events
        .list(&ListParams::default().fields("involvedObject.name=v,reason=Scheduled"))
        .await
        .expect("events");
    assert_eq!(scheduled.items.len(), 1, "the core controllers ran too");
}

/// Applies watcher events to a local cache; returns (name -> resourceVersion) and counts.
#[derive(Default)]
struct Cache {
    objects: BTreeMap<String, String>,
    init_buffer: Option<BTreeMap<String, String>>,
    applies: Vec<(String, String)>,
    inits: usize,
}

impl Cache {
    fn apply(&mut self, ev: watcher::Event<Pod>) {
        let key = |p: &Pod| {
            (
                p.metadata.name.clone().unwrap_or_default(),
                p.metadata.resource_version.clone().unwrap_or_default(),
            )
        };
        match ev {
            watcher::Event::Init => {
                self.inits += 1;
                self.init_buffer = Some(BTreeMap::new());
            }
            watcher::Event::InitApply(p) => {
                let (n, rv) = key(&p);
                if let Some(b) = self.init_buffer.as_mut() {
                    b.insert(n, rv);
                }
            }
            watcher::Event::InitDone => {
                self.objects = self.init_buffer.take().unwrap_or_default();
            }
            watcher::Event::Apply(p) => {
                let (n, rv) = key(&p);
                self.applies.push((n.clone(), rv.clone()));
                self.objects.insert(n, rv);
            }
            watcher::Event::Delete(p) => {
                self.objects.remove(&key(&p).0);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_each_change_once_across_a_forced_relist() {
    let sim = sim();
    sim.with_world(|w| w.store_mut().set_history_capacity(8));
    let pods: Api<Pod> = Api::namespaced(sim.client(), "default");
    for i in 0..3 {
        pods.create(&PostParams::default(), &pod(&format!("w{i}"), json!({})))
            .await
            .expect("create");
    }
    let mut stream = watcher(pods.clone(), watcher::Config::default()).boxed();
    let mut cache = Cache::default();
    // Initial list.
    while cache.inits == 0 || cache.init_buffer.is_some() {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("init")
            .expect("stream");
        cache.apply(ev.expect("event"));
    }
    assert_eq!(cache.objects.len(), 3);
    // One change, seen exactly once.
    pods.patch(
        "w0",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
    )
    .await
    .expect("patch");
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("apply")
        .expect("stream");
    cache.apply(ev.expect("event"));
    assert_eq!(cache.applies.len(), 1);
    // While the watcher does not read, make more changes than the history holds: its watch
    // is ended, re-watching from its resourceVersion gets 410 Expired, and it relists.
    for i in 3..20 {
        pods.create(&PostParams::default(), &pod(&format!("w{i}"), json!({})))
            .await
            .expect("create");
    }
    pods.delete("w1", &DeleteParams::default())
        .await
        .expect("delete");
    let mut expired = 0;
    while cache.inits < 2 || cache.init_buffer.is_some() {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("relist")
            .expect("stream");
        match ev {
            Ok(e) => cache.apply(e),
            // The watcher reports the 410 once, then relists.
            Err(e) if e.to_string().contains("too old resource version") => expired += 1,
            Err(e) => panic!("watcher error: {e}"),
        }
    }
    assert_eq!(expired, 1, "the re-watch got 410 Expired");
    let truth: BTreeMap<String, String> = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|p| {
            (
                p.metadata.name.clone().unwrap_or_default(),
                p.metadata.resource_version.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        cache.objects, truth,
        "after the relist the cache equals the store"
    );
    // Moving time lets the controllers make many changes at once (containers start, deleted
    // pods go): give the history room, so the watch goes on without another relist.
    sim.with_world(|w| w.store_mut().set_history_capacity(10_000));
    // And watching goes on from the relist. As on a real cluster, a deleted pod stays
    // Terminating while the kubelet stops its containers, then goes.
    pods.delete("w2", &DeleteParams::default())
        .await
        .expect("delete");
    let w2 = pods.get("w2").await.expect("terminating, not gone yet");
    assert!(w2.metadata.deletion_timestamp.is_some(), "{w2:?}");
    sim.advance_by(jiff::SignedDuration::from_secs(5));
    while cache.objects.contains_key("w2") {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("delete ev")
            .expect("stream");
        cache.apply(ev.expect("event"));
    }
    pods.get("w2").await.expect_err("gone");
    assert_eq!(cache.inits, 2, "no further relist");
    let mut seen = cache.applies.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), cache.applies.len(), "no change delivered twice");
}

#[tokio::test]
async fn watch_from_compacted_version_is_410_expired() {
    let sim = sim();
    sim.with_world(|w| w.store_mut().set_history_capacity(2));
    let pods: Api<Pod> = Api::namespaced(sim.client(), "default");
    for i in 0..5 {
        pods.create(&PostParams::default(), &pod(&format!("e{i}"), json!({})))
            .await
            .expect("create");
    }
    let mut s = pods
        .watch(&kube::api::WatchParams::default(), "1")
        .await
        .expect("watch")
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("ev")
        .expect("item");
    match first {
        Ok(kube::api::WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_fires_timers_by_itself() {
    let sim = Sim::new(SimConfig {
        seed: 1,
        clock: ClockMode::Wall,
        ..Default::default()
    });
    sim.add_controller(Box::new(Marker));
    let pods: Api<Pod> = Api::namespaced(sim.client(), "default");
    let created = pods
        .create(&PostParams::default(), &pod("t", json!({})))
        .await
        .expect("create");
    assert!(!marked(&created));
    let created_at = created
        .metadata
        .creation_timestamp
        .expect("creationTimestamp")
        .0;
    let start = std::time::Instant::now();
    while !marked(&pods.get("t").await.expect("get")) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timer did not fire in wall time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // creationTimestamp has whole seconds; the controller's timer is MARK_AFTER after it.
    let due = created_at + MARK_AFTER;
    assert!(jiff::Timestamp::now() >= due, "not before its time");
}

#[test]
fn same_seed_same_names_and_uids() {
    let run = || {
        let sim = sim();
        let o = sim
            .seed(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "c-", "namespace": "default"}}))
            .expect("seed");
        (o["metadata"]["name"].clone(), o["metadata"]["uid"].clone())
    };
    assert_eq!(run(), run());
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_and_bookmark() {
    let sim = sim();
    let pods: Api<Pod> = Api::namespaced(sim.client(), "default");
    for i in 0..3 {
        pods.create(&PostParams::default(), &pod(&format!("s{i}"), json!({})))
            .await
            .expect("create");
    }
    let mut stream = watcher(pods.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut cache = Cache::default();
    while cache.inits == 0 || cache.init_buffer.is_some() {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("init")
            .expect("stream");
        cache.apply(ev.expect("event"));
    }
    assert_eq!(
        cache.objects.keys().cloned().collect::<Vec<_>>(),
        vec!["s0", "s1", "s2"]
    );
    pods.delete("s1", &DeleteParams::default())
        .await
        .expect("delete");
    // Terminating while the kubelet stops its containers, then gone.
    let s1 = pods.get("s1").await.expect("terminating, not gone yet");
    assert!(s1.metadata.deletion_timestamp.is_some(), "{s1:?}");
    sim.advance_by(jiff::SignedDuration::from_secs(5));
    while cache.objects.contains_key("s1") {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("ev")
            .expect("stream");
        cache.apply(ev.expect("event"));
    }
    pods.get("s1").await.expect_err("gone");
}

#[tokio::test]
async fn watch_timeout_ends_the_stream() {
    let sim = sim();
    let pods: Api<Pod> = Api::namespaced(sim.client(), "default");
    let wp = kube::api::WatchParams::default().timeout(1);
    let mut s = pods.watch(&wp, "0").await.expect("watch").boxed();
    let start = std::time::Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("stream ends in time");
    assert!(end.is_none(), "no event, then the end: {end:?}");
    assert!(start.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn metrics_are_ordinary_read_only_objects() {
    let sim = sim();
    sim.seed(json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
        "metadata": {"name": "p", "namespace": "default"}, "timestamp": "2026-01-01T00:00:00Z", "window": "30s",
        "containers": [{"name": "c", "usage": {"cpu": "250m", "memory": "64Mi"}}]}))
    .expect("seed metrics");
    let ar = kube::api::ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    };
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(sim.client(), "default", &ar);
    let list = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].data["containers"][0]["usage"]["cpu"], "250m");
    let obj: kube::api::DynamicObject =
        serde_json::from_value(json!({"apiVersion": "metrics.k8s.io/v1beta1",
        "kind": "PodMetrics", "metadata": {"name": "q"}}))
        .expect("obj");
    let err = api
        .create(&PostParams::default(), &obj)
        .await
        .expect_err("read-only");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 405),
        "{err:?}"
    );
}

/// A CRD being deleted is emptied first (its instances' own finalizers still run), refuses
/// new instances meanwhile, and once gone its kind is no longer served
/// (apiextensions-apiserver `crd_finalizer.go`, `customresource_handler.go`).
#[tokio::test]
async fn a_deleted_crd_is_emptied_then_its_kind_is_no_longer_served() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    let sim = sim();
    let client = sim.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}))
    .expect("crd");
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create crd");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let widget = |name: &str| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name, "finalizers": ["example.com/hold"]}}))
        .expect("widget")
    };
    widgets
        .create(&PostParams::default(), &widget("a"))
        .await
        .expect("create a");

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .expect("delete crd");
    sim.advance_by(jiff::SignedDuration::from_secs(1));
    let held = crds.get("widgets.example.com").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    let terminating = held
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Terminating")
        .expect("Terminating condition");
    assert_eq!(
        (terminating.status.as_str(), terminating.reason.as_deref()),
        ("True", Some("InstanceDeletionInProgress"))
    );
    let a = widgets.get("a").await.expect("a is held by its finalizer");
    assert!(
        a.metadata.deletion_timestamp.is_some(),
        "the instance is being deleted"
    );
    match widgets.create(&PostParams::default(), &widget("b")).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 405);
            assert_eq!(
                s.message,
                "create not allowed while custom resource definition is terminating"
            );
        }
        other => panic!("create during termination: {other:?}"),
    }

    // The instance's own finalizer goes; the CRD finalizer's next check (every 5 s) releases
    // the CRD, and the kind is no longer served.
    widgets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("release a");
    sim.advance_by(jiff::SignedDuration::from_secs(6));
    match crds.get("widgets.example.com").await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("the CRD should be gone: {other:?}"),
    }
    match widgets.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404, "{s:?}"),
        other => panic!("the kind should not be served: {other:?}"),
    }
    let groups = client.list_api_groups().await.expect("groups");
    assert!(
        !groups.groups.iter().any(|g| g.name == "example.com"),
        "discovery still lists example.com"
    );

    // Created again, the kind is served again, empty.
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create crd again");
    let list = widgets
        .list(&ListParams::default())
        .await
        .expect("served again");
    assert!(list.items.is_empty());
}

//! Unit tests of the world: controller scheduling, change feeds, timers, determinism.

use super::*;
use jiff::SignedDuration;

/// Marks pending pods Running one second after it first sees them; counts its calls.
struct Starter {
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Controller for Starter {
    fn name(&self) -> &'static str {
        "starter"
    }
    fn watches(&self) -> &'static [&'static str] {
        &["pods"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let now = ctx.now();
        for pod in ctx.list("pods", None) {
            if pod["status"]["phase"] != "Pending" {
                continue;
            }
            let created: Timestamp = pod["metadata"]["creationTimestamp"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(now);
            let due = created + SignedDuration::from_secs(1);
            if now >= due {
                let ns = meta_str(&pod, "namespace").to_string();
                let name = meta_str(&pod, "name").to_string();
                ctx.patch_status("pods", &ns, &name, &json!({"status": {"phase": "Running"}}))
                    .expect("patch");
            } else {
                ctx.wake_at(due);
            }
        }
    }
}

fn world() -> (World, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let mut w = World::new(42, virtual_epoch());
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    w.add_controller(Box::new(Starter {
        calls: calls.clone(),
    }));
    w.settle();
    (w, calls)
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": {"containers": []}})
}

#[test]
fn fresh_world_has_the_standard_namespaces() {
    let (w, _) = world();
    let ns = w.store().registry().lookup("namespaces").expect("ns");
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(w.store().get(ns, "", n).is_some(), "{n}");
    }
}

#[test]
fn timers_drive_controllers_in_virtual_time() {
    let (mut w, _) = world();
    w.seed(pod("p")).expect("seed");
    w.settle();
    let pods = w.store().registry().lookup("pods").expect("pods");
    assert_eq!(
        w.store().get(pods, "default", "p").expect("p")["status"]["phase"],
        "Pending"
    );
    let due = virtual_epoch() + SignedDuration::from_secs(1);
    assert_eq!(w.next_event_at(), Some(due));
    w.advance_to(virtual_epoch() + SignedDuration::from_millis(500));
    assert_eq!(
        w.store().get(pods, "default", "p").expect("p")["status"]["phase"],
        "Pending"
    );
    w.advance_to(virtual_epoch() + SignedDuration::from_secs(10));
    assert_eq!(
        w.store().get(pods, "default", "p").expect("p")["status"]["phase"],
        "Running"
    );
    assert_eq!(w.now(), virtual_epoch() + SignedDuration::from_secs(10));
    assert_eq!(w.next_event_at(), None);
}

#[test]
fn unrelated_changes_do_not_call_the_controller() {
    let (mut w, calls) = world();
    let before = calls.load(std::sync::atomic::Ordering::SeqCst);
    w.seed(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}))
        .expect("seed");
    w.settle();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), before);
    w.seed(pod("q")).expect("seed");
    w.settle();
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) > before);
}

/// Records what its change feed showed.
type Log = std::sync::Arc<std::sync::Mutex<Vec<(bool, Vec<String>)>>>;

struct Recorder(Log);

impl Controller for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let names = ctx
            .changed("pods")
            .map(|e| format!("{}:{}", e.kind.as_str(), e.name))
            .collect();
        self.0.lock().expect("lock").push((ctx.resync(), names));
    }
}

#[test]
fn change_feed_reports_each_change_once() {
    let mut w = World::new(1, virtual_epoch());
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    w.add_controller(Box::new(Recorder(log.clone())));
    w.settle();
    w.seed(pod("a")).expect("a");
    w.seed(pod("b")).expect("b");
    w.settle();
    let pods = w.store().registry().lookup("pods").expect("pods");
    w.store_mut()
        .delete(pods, "default", "a", &DeleteOptions::default())
        .expect("delete");
    w.settle();
    let log = log.lock().expect("lock");
    assert!(log[0].0, "first run is a resync");
    assert_eq!(
        log[1],
        (false, vec!["ADDED:a".to_string(), "ADDED:b".to_string()])
    );
    assert_eq!(log[2], (false, vec!["DELETED:a".to_string()]));
    assert_eq!(log.len(), 3);
}

#[test]
fn same_seed_same_world() {
    let run = |seed| {
        let mut w = World::new(seed, virtual_epoch());
        let pods = w.store().registry().lookup("pods").expect("pods");
        let p = w
            .store_mut()
            .create(
                pods,
                "default",
                json!({"metadata": {"generateName": "x-"}, "spec": {}}),
                false,
            )
            .expect("create");
        (
            meta_str(&p, "name").to_string(),
            meta_str(&p, "uid").to_string(),
        )
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

/// Watches a resource that does not exist: must never be called for store changes.
struct Typo(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Controller for Typo {
    fn name(&self) -> &'static str {
        "typo"
    }
    fn watches(&self) -> &'static [&'static str] {
        &["podz"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // owned_by uses the owner index
        if let Some(rs) = ctx.get("replicasets.apps", "default", "rs") {
            assert_eq!(ctx.owned_by("pods", &rs).len(), 2);
        }
    }
}

#[test]
fn unknown_watched_resource_means_no_calls_and_owned_by_works() {
    let mut w = World::new(3, virtual_epoch());
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    w.add_controller(Box::new(Typo(calls.clone())));
    w.settle();
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "first run only"
    );
    let rs = w
        .seed(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs", "namespace": "default"}, "spec": {}}))
        .expect("rs");
    for n in ["a", "b"] {
        let mut p = pod(n);
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": rs["metadata"]["uid"]}]);
        w.seed(p).expect("pod");
    }
    w.settle();
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "not called for other resources"
    );
    // a timer still calls it, and then owned_by is checked inside
    w.slots_mut_for_test(0).woken = true;
    w.settle();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

//! Unit tests of the store: create/update/delete semantics, watch history, GC, finalizers.

use super::*;
use crate::Reason;
use crate::resources::Registry;
use crate::world::virtual_epoch;

fn store() -> (Store, ResId, ResId, ResId) {
    let mut s = Store::new(Registry::standard(), 7, virtual_epoch());
    let ns = s.registry().lookup("namespaces").expect("ns");
    for n in ["default", "a", "b"] {
        s.create(ns, "", json!({"metadata": {"name": n}}), false)
            .expect("ns create");
    }
    let pods = s.registry().lookup("pods").expect("pods");
    let rs = s.registry().lookup("replicasets.apps").expect("rs");
    (s, ns, pods, rs)
}

fn pod(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}})
}

#[test]
fn create_sets_metadata_and_defaults() {
    let (mut s, _, pods, _) = store();
    let p = s
        .create(pods, "default", pod("p1", json!({"app": "web"})), false)
        .expect("create");
    assert_eq!(p["metadata"]["namespace"], "default");
    assert_eq!(p["metadata"]["creationTimestamp"], "2026-01-01T00:00:00Z");
    assert_eq!(p["metadata"]["uid"].as_str().map(str::len), Some(36));
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(p["spec"]["restartPolicy"], "Always");
    assert_eq!(
        p["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    let rv: u64 = p["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("rv");
    assert_eq!(rv, s.resource_version());
    let e = s
        .create(pods, "default", pod("p1", json!({})), false)
        .expect_err("dup");
    assert_eq!(e.reason, Reason::AlreadyExists);
    assert_eq!(e.message, "pods \"p1\" already exists");
    let e = s
        .create(pods, "nope", pod("p2", json!({})), false)
        .expect_err("no ns");
    assert_eq!(e.message, "namespaces \"nope\" not found");
    let g = s
        .create(
            pods,
            "default",
            json!({"metadata": {"generateName": "web-"}, "spec": {}}),
            false,
        )
        .expect("gen");
    assert!(meta_str(&g, "name").starts_with("web-") && meta_str(&g, "name").len() == 9);
    let e = s
        .create(
            pods,
            "default",
            json!({"metadata": {"name": "Bad_Name"}}),
            false,
        )
        .expect_err("bad name");
    assert_eq!(e.code(), 422);
}

#[test]
fn update_conflicts_and_noop() {
    let (mut s, _, pods, rs) = store();
    let p = s
        .create(pods, "default", pod("p", json!({})), false)
        .expect("create");
    let mut stale = (*p).clone();
    stale["metadata"]["labels"] = json!({"x": "1"});
    let p2 = s
        .update(pods, "default", "p", stale.clone(), false)
        .expect("update");
    assert_ne!(
        p2["metadata"]["resourceVersion"],
        p["metadata"]["resourceVersion"]
    );
    let e = s
        .update(pods, "default", "p", stale, false)
        .expect_err("stale");
    assert_eq!(e.reason, Reason::Conflict);
    let rv = s.resource_version();
    let same = s
        .update(pods, "default", "p", (*p2).clone(), false)
        .expect("noop");
    assert_eq!(s.resource_version(), rv, "no-op update must not bump rv");
    assert_eq!(same, p2);
    // status is kept on main update, replaced on status update
    let mut st = (*p2).clone();
    st["status"]["phase"] = json!("Running");
    let kept = s
        .update(pods, "default", "p", st.clone(), false)
        .expect("main");
    assert_eq!(kept["status"]["phase"], "Pending");
    let run = s.update(pods, "default", "p", st, true).expect("status");
    assert_eq!(run["status"]["phase"], "Running");
    // generation bumps on spec change only
    let r = s
        .create(rs, "default", json!({"metadata": {"name": "r"}, "spec": {"replicas": 1, "selector": {}, "template": {}}}), false)
        .expect("rs");
    assert_eq!(r["metadata"]["generation"], 1);
    let mut r2 = (*r).clone();
    r2["metadata"]["labels"] = json!({"l": "1"});
    let r2 = s.update(rs, "default", "r", r2, false).expect("label");
    assert_eq!(r2["metadata"]["generation"], 1);
    let mut r3 = (*r2).clone();
    r3["spec"]["replicas"] = json!(3);
    assert_eq!(
        s.update(rs, "default", "r", r3, false).expect("spec")["metadata"]["generation"],
        2
    );
}

#[test]
fn finalizers_hold_objects() {
    let (mut s, _, pods, _) = store();
    let mut p = pod("f", json!({}));
    p["metadata"]["finalizers"] = json!(["example.com/hold"]);
    s.create(pods, "default", p, false).expect("create");
    let d = s
        .delete(pods, "default", "f", &DeleteOptions::default())
        .expect("delete");
    assert!(d.pointer("/metadata/deletionTimestamp").is_some());
    assert!(s.get(pods, "default", "f").is_some());
    let mut cur = (*d).clone();
    cur["metadata"]["finalizers"] = json!([]);
    s.update(pods, "default", "f", cur, false)
        .expect("remove finalizer");
    assert!(s.get(pods, "default", "f").is_none());
}

fn owned_pod(name: &str, owner: &Value) -> Value {
    let mut p = pod(name, json!({"app": "x"}));
    p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": meta_str(owner, "name"), "uid": meta_str(owner, "uid"), "controller": true}]);
    p
}

#[test]
fn garbage_collection_background_foreground_orphan() {
    let (mut s, _, pods, rs) = store();
    for (name, prop) in [
        ("bg", Propagation::Background),
        ("fg", Propagation::Foreground),
        ("or", Propagation::Orphan),
    ] {
        let owner = s
            .create(
                rs,
                "default",
                json!({"metadata": {"name": name}, "spec": {}}),
                false,
            )
            .expect("rs");
        for i in 0..3 {
            s.create(
                pods,
                "default",
                owned_pod(&format!("{name}-{i}"), &owner),
                false,
            )
            .expect("pod");
        }
        s.delete(
            rs,
            "default",
            name,
            &DeleteOptions {
                propagation: prop,
                ..Default::default()
            },
        )
        .expect("delete");
        assert!(s.get(rs, "default", name).is_none(), "{name}: owner gone");
        let left = (0..3)
            .filter(|i| s.get(pods, "default", &format!("{name}-{i}")).is_some())
            .count();
        if prop == Propagation::Orphan {
            assert_eq!(left, 3);
            let p = s.get(pods, "default", "or-0").expect("orphan");
            assert!(p.pointer("/metadata/ownerReferences").is_none());
        } else {
            assert_eq!(left, 0, "{name}");
        }
    }
}

#[test]
fn foreground_waits_for_finalized_dependents() {
    let (mut s, _, pods, rs) = store();
    let owner = s
        .create(
            rs,
            "default",
            json!({"metadata": {"name": "o"}, "spec": {}}),
            false,
        )
        .expect("rs");
    let mut p = owned_pod("held", &owner);
    p["metadata"]["finalizers"] = json!(["hold"]);
    s.create(pods, "default", p, false).expect("pod");
    let opts = DeleteOptions {
        propagation: Propagation::Foreground,
        ..Default::default()
    };
    let o = s.delete(rs, "default", "o", &opts).expect("delete");
    assert_eq!(finalizers(&o), vec!["foregroundDeletion".to_string()]);
    let mut held: Value = (**s.get(pods, "default", "held").expect("held")).clone();
    held["metadata"]["finalizers"] = json!([]);
    s.update(pods, "default", "held", held, false)
        .expect("release");
    assert!(s.get(pods, "default", "held").is_none());
    assert!(
        s.get(rs, "default", "o").is_none(),
        "owner goes after its last dependent"
    );
}

#[test]
fn namespace_deletion_removes_content() {
    let (mut s, ns, pods, _) = store();
    for i in 0..5 {
        s.create(pods, "a", pod(&format!("p{i}"), json!({})), false)
            .expect("pod");
    }
    s.delete(ns, "", "a", &DeleteOptions::default())
        .expect("delete ns");
    assert_eq!(
        s.list(
            pods,
            Some("a"),
            &LabelSelector::everything(),
            &FieldSelector::default()
        )
        .len(),
        0
    );
    assert!(s.get(ns, "", "a").is_none());
}

#[test]
fn list_selectors_and_pages() {
    let (mut s, _, pods, _) = store();
    for ns in ["a", "b"] {
        for i in 0..10 {
            let tier = if i % 2 == 0 { "even" } else { "odd" };
            s.create(
                pods,
                ns,
                pod(&format!("p{i:02}"), json!({"tier": tier})),
                false,
            )
            .expect("pod");
        }
    }
    let all = LabelSelector::everything();
    let none = FieldSelector::default();
    assert_eq!(s.list(pods, None, &all, &none).len(), 20);
    let even = LabelSelector::parse("tier=even").expect("sel");
    assert_eq!(s.list(pods, None, &even, &none).len(), 10);
    assert_eq!(s.list(pods, Some("a"), &even, &none).len(), 5);
    let f = FieldSelector::parse("metadata.namespace=b,metadata.name=p03").expect("f");
    assert_eq!(s.list(pods, None, &all, &f).len(), 1);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = s
            .list_page(pods, None, &even, &none, Some(3), token.as_deref())
            .expect("page");
        seen.extend(
            page.items
                .iter()
                .map(|p| format!("{}/{}", meta_str(p, "namespace"), meta_str(p, "name"))),
        );
        match page.continue_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10);
    assert_eq!(seen[0], "a/p00");
    assert_eq!(seen[9], "b/p08");
    assert!(
        s.list_page(pods, None, &all, &none, Some(1), Some("zz"))
            .is_err()
    );
}

#[test]
fn history_replay_and_compaction() {
    let (mut s, _, pods, _) = store();
    let start = s.resource_version();
    for i in 0..10 {
        s.create(pods, "default", pod(&format!("h{i}"), json!({})), false)
            .expect("pod");
    }
    assert_eq!(s.events_since(start).map(|it| it.count()).ok(), Some(10));
    s.set_history_capacity(4);
    assert!(s.events_since(start).is_err(), "compacted");
    let head = s.resource_version();
    assert_eq!(s.events_since(head - 4).map(|it| it.count()).ok(), Some(4));
    assert!(s.watch_since(start).is_err(), "watch history compacted too");
    assert_eq!(s.watch_since(head - 4).map(|it| it.count()).ok(), Some(4));
    let line = s
        .watch_since(head - 1)
        .ok()
        .and_then(|mut it| it.next().map(|e| e.line()))
        .expect("line");
    let v: Value = serde_json::from_slice(&line).expect("json line");
    assert_eq!(v["type"], "ADDED");
    assert_eq!(v["object"]["metadata"]["name"], "h9");
}

#[test]
fn custom_kinds_store_like_builtins() {
    let (mut s, _, _, _) = store();
    let pc = s
        .registry()
        .lookup("podchaos.chaos-mesh.org")
        .expect("podchaos");
    let o = s
        .create(pc, "default", json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos",
            "metadata": {"name": "kill"}, "spec": {"action": "pod-kill", "mode": "one", "selector": {}}}), false)
        .expect("create");
    assert_eq!(o["metadata"]["generation"], 1);
}

#[test]
fn graceful_pod_deletion_when_enabled() {
    let (mut s, _, pods, _) = store();
    let mut p = pod("g", json!({}));
    p["spec"]["nodeName"] = json!("node-1");
    s.create(pods, "default", p.clone(), false).expect("create");
    s.set_graceful_pod_deletion(true);
    let d = s
        .delete(pods, "default", "g", &DeleteOptions::default())
        .expect("delete");
    assert_eq!(d["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(d["metadata"]["deletionTimestamp"], "2026-01-01T00:00:30Z");
    // a status update by the kubelet does not remove it
    let mut st = (*d).clone();
    st["status"]["phase"] = json!("Running");
    s.update(pods, "default", "g", st, true).expect("status");
    assert!(s.get(pods, "default", "g").is_some());
    let opts = DeleteOptions {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    s.delete(pods, "default", "g", &opts).expect("confirm");
    assert!(s.get(pods, "default", "g").is_none());
    // an unbound pod goes at once
    s.create(pods, "default", pod("u", json!({})), false)
        .expect("create");
    s.delete(pods, "default", "u", &DeleteOptions::default())
        .expect("delete");
    assert!(s.get(pods, "default", "u").is_none());
}

#[test]
fn finalizer_held_pod_records_its_grace_period() {
    let (mut s, _, pods, _) = store();
    let mut p = pod("f", json!({}));
    p["spec"]["nodeName"] = json!("node-1");
    p["spec"]["terminationGracePeriodSeconds"] = json!(20);
    p["metadata"]["finalizers"] = json!(["sim.playbook.dev/kubelet"]);
    s.create(pods, "default", p, false).expect("create");
    let d = s
        .delete(pods, "default", "f", &DeleteOptions::default())
        .expect("delete");
    // none asked for: the pod's own, as the API server records it (the kubelet reads it)
    assert_eq!(d["metadata"]["deletionGracePeriodSeconds"], 20);
    assert_eq!(d["metadata"]["deletionTimestamp"], "2026-01-01T00:00:00Z");
}

#[test]
fn dry_run_changes_nothing() {
    let (mut s, _, pods, _) = store();
    s.create(pods, "default", pod("keep", json!({})), false)
        .expect("create");
    let rv = s.resource_version();
    s.set_dry_run(true);
    let p = s
        .create(pods, "default", pod("dry", json!({})), false)
        .expect("dry create");
    assert_eq!(p["status"]["phase"], "Pending");
    s.delete(pods, "default", "keep", &DeleteOptions::default())
        .expect("dry delete");
    s.set_dry_run(false);
    assert_eq!(s.resource_version(), rv);
    assert!(s.get(pods, "default", "dry").is_none());
    assert!(s.get(pods, "default", "keep").is_some());
    // generated uids are not consumed by a dry run
    let a = s
        .create(pods, "default", pod("after", json!({})), false)
        .expect("create");
    let (mut s2, _, pods2, _) = store();
    s2.create(pods2, "default", pod("keep", json!({})), false)
        .expect("create");
    let b = s2
        .create(pods2, "default", pod("after", json!({})), false)
        .expect("create");
    assert_eq!(a["metadata"]["uid"], b["metadata"]["uid"]);
}

#[test]
fn superseded_versions_are_freed_once_seen() {
    let (mut s, _, pods, _) = store();
    let first = s
        .create(pods, "default", pod("v", json!({})), false)
        .expect("create");
    let mut next = (*first).clone();
    next["metadata"]["labels"] = json!({"a": "b"});
    s.update(pods, "default", "v", next, false).expect("update");
    assert!(
        Arc::strong_count(&first) > 1,
        "kept while controllers may not have seen it"
    );
    s.forget_events_upto(s.resource_version());
    assert_eq!(
        Arc::strong_count(&first),
        1,
        "only this test holds the old version now"
    );
    assert!(s.events_since(0).is_err());
    // watches still replay it from the compact history
    assert_eq!(s.watch_since(0).map(|it| it.count()).ok(), Some(5));
}

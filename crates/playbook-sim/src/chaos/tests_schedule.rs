//! Tests of the `Schedule` controllers (controllers/schedule/cron, active, gc of Chaos Mesh v2.8.1).

use serde_json::{Value, json};

use super::tests::*;
use super::*;
use crate::world::World;

fn sched_world() -> World {
    let mut w = world(4);
    w.add_controller(Box::new(schedule::Schedules));
    for i in 0..5 {
        pod(&mut w, &format!("w-{i}"), "w", "Running");
    }
    w
}

fn schedule(name: &str, every: &str, policy: &str, history: i64, kind: &str, spec: Value) -> Value {
    let field = format!("{}{}", kind[..1].to_lowercase(), &kind[1..]);
    let mut s = json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "Schedule",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"schedule": every, "concurrencyPolicy": policy, "historyLimit": history, "type": kind}});
    s["spec"][field] = spec;
    s
}

fn managed(w: &World, kind: &str, name: &str) -> Vec<String> {
    let r = res(w, kind);
    let mut v: Vec<String> = w
        .store()
        .list(r, Some(NS), &Default::default(), &Default::default())
        .iter()
        .filter(|o| o["metadata"]["labels"]["managed-by"] == name)
        .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

fn count(w: &World, name: &str, reason: &str) -> usize {
    reasons(w, name).iter().filter(|r| *r == reason).count()
}

/// controllers/schedule/cron/controller.go spawns a pod-kill each minute; the spawned objects
/// are owned and labelled `managed-by`; schedule/active keeps `status.active` sorted by name;
/// schedule/gc deletes finished ones beyond `historyLimit`.
#[test]
fn schedule_spawns_on_its_cron_and_keeps_its_history() {
    let mut w = sched_world();
    let spec =
        json!({"action": "pod-kill", "mode": "one", "selector": {"labelSelectors": {"app": "w"}}});
    create(
        &mut w,
        schedule("kill", "*/1 * * * *", "Forbid", 2, "PodChaos", spec),
    );
    advance_ms(&mut w, 30_000);
    assert!(
        managed(&w, "podchaos", "kill").is_empty(),
        "nothing before the first minute"
    );
    advance_ms(&mut w, 3 * 60_000);
    assert_eq!(count(&w, "kill", "Spawned"), 3);
    let pods = w.store().list(
        res(&w, "pods"),
        Some(NS),
        &Default::default(),
        &Default::default(),
    );
    assert_eq!(pods.len(), 2, "three pods killed");
    let kept = managed(&w, "podchaos", "kill");
    assert_eq!(kept.len(), 2, "historyLimit 2: {kept:?}");
    let s = get(&w, "schedules", "kill").expect("schedule");
    let active: Vec<&str> = s["status"]["active"]
        .as_array()
        .expect("active")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(active, kept);
    assert!(
        kept.iter()
            .all(|n| n.starts_with("kill-") && n.len() == "kill-".len() + 5)
    );
    // The last schedule time is `status.time` (ScheduleStatus.LastScheduleTime's JSON name).
    assert_eq!(s["status"]["time"], "2026-01-01T00:03:00Z");
    let c = get(&w, "podchaos", &kept[0]).expect("spawned");
    assert_eq!(c["metadata"]["ownerReferences"][0]["kind"], "Schedule");
    assert_eq!(c["metadata"]["ownerReferences"][0]["controller"], true);
}

/// concurrencyPolicy Forbid (the default) holds a run while the last spawned chaos has not
/// finished (controllers/utils/controller/finished.go); Allow does not.
#[test]
fn forbid_waits_for_the_running_chaos_allow_does_not() {
    for (policy, at_150s) in [("Forbid", 1), ("Allow", 2)] {
        let mut w = sched_world();
        let spec = json!({"action": "delay", "mode": "all", "selector": {"labelSelectors": {"app": "w"}},
            "delay": {"latency": "10ms"}, "duration": "90s"});
        create(
            &mut w,
            schedule("d", "@every 1m", policy, 5, "NetworkChaos", spec),
        );
        advance_ms(&mut w, 150_000);
        assert_eq!(managed(&w, "networkchaos", "d").len(), at_150s, "{policy}");
        if policy == "Forbid" {
            assert!(count(&w, "d", "Forbid") >= 1);
            let ev = w
                .store()
                .list(
                    res(&w, "events"),
                    Some(NS),
                    &Default::default(),
                    &Default::default(),
                )
                .into_iter()
                .find(|e| e["reason"] == "Forbid")
                .expect("forbid event");
            assert!(
                ev["message"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("Forbid spawning new job because: d-")
            );
            // The first ends at 2m30s; the run missed at 2m spawns once it has recovered.
            advance_ms(&mut w, 5_000);
            assert_eq!(managed(&w, "networkchaos", "d").len(), 2);
        }
    }
}

/// A paused schedule spawns nothing; a bad cron is a `Failed` event (cron/utils.go).
#[test]
fn paused_and_unparseable_schedules() {
    let mut w = sched_world();
    let spec =
        json!({"action": "pod-kill", "mode": "one", "selector": {"labelSelectors": {"app": "w"}}});
    let mut s = schedule("p", "@every 30s", "Forbid", 1, "PodChaos", spec.clone());
    s["metadata"]["annotations"] = json!({effects::PAUSE_ANNOTATION: "true"});
    create(&mut w, s);
    create(
        &mut w,
        schedule("bad", "every minute", "Forbid", 1, "PodChaos", spec),
    );
    advance_ms(&mut w, 120_000);
    assert!(managed(&w, "podchaos", "p").is_empty());
    assert!(managed(&w, "podchaos", "bad").is_empty());
    assert!(count(&w, "bad", "Failed") >= 1);
}

//! Tests of the simulated Chaos Mesh lifecycle: the upstream examples injected, status shape, duration, pause, deletion, effects.

use std::sync::Arc;

use serde_json::{Value, json};

use super::effects::*;
use super::*;
use crate::world::{World, virtual_epoch};

pub(super) const NS: &str = "ml";

/// An instant world (no controller lag: the timings below are the controller's own) with the
/// Chaos Mesh controller and namespace `ml`.
pub(super) fn world(seed: u64) -> World {
    let mut w = World::new(seed, virtual_epoch());
    w.set_controller_lag(false);
    w.add_controller(Box::new(ChaosMesh::default()));
    w.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .expect("ns");
    w.settle();
    w
}

/// A pod with one container `app` (limits: 2 CPU, 1Gi), labelled `app=<app>`.
pub(super) fn pod(w: &mut World, name: &str, app: &str, phase: &str) {
    w.seed(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "app:1",
            "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}]},
        "status": {"phase": phase},
    }))
    .expect("pod");
    w.settle();
}

/// An upstream example, moved to namespace `ml` and pointed at pods `app=<app>` (also its target).
pub(super) fn example(file: &str, app: &str) -> Value {
    let path = format!(
        "{}/../../crds/chaos-mesh/examples/{file}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("example");
    let mut v: Value = serde_saphyr::from_str(&text).expect("yaml");
    v["metadata"]["namespace"] = json!(NS);
    v["spec"]["selector"] = json!({"labelSelectors": {"app": app}});
    if v["spec"].get("target").is_some() {
        v["spec"]["target"]["selector"] = json!({"labelSelectors": {"app": app}});
    }
    v
}

pub(super) fn create(w: &mut World, obj: Value) -> String {
    let name = obj["metadata"]["name"].as_str().expect("name").to_string();
    w.seed(obj).expect("create chaos");
    w.settle();
    name
}

pub(super) fn res(w: &World, kind: &str) -> usize {
    w.store().registry().lookup(kind).expect("kind")
}

pub(super) fn get(w: &World, kind: &str, name: &str) -> Option<Arc<Value>> {
    w.store().get(res(w, kind), NS, name).cloned()
}

pub(super) use crate::testkit::advance_ms;

pub(super) fn cond(obj: &Value, t: &str) -> String {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == t))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("?")
        .to_string()
}

pub(super) fn records(obj: &Value) -> Vec<Value> {
    obj.pointer("/status/experiment/containerRecords")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub(super) fn phase(obj: &Value) -> String {
    obj.pointer("/status/experiment/desiredPhase")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Reasons of the Events about `name`, oldest first.
pub(super) fn reasons(w: &World, name: &str) -> Vec<String> {
    let ev = res(w, "events");
    let fs = Default::default();
    w.store()
        .list(ev, Some(NS), &Default::default(), &fs)
        .iter()
        .filter(|e| e["involvedObject"]["name"] == name)
        .map(|e| {
            (
                e["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0),
                e["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .collect()
}

pub(super) fn messages(w: &World, name: &str) -> Vec<String> {
    let ev = res(w, "events");
    w.store()
        .list(ev, Some(NS), &Default::default(), &Default::default())
        .iter()
        .filter(|e| e["involvedObject"]["name"] == name)
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect()
}

fn annotation(w: &World, pod: &str, key: &str) -> Option<String> {
    get(w, "pods", pod)?
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

const POD: &str = "podchaos";

/// With controller lag, the chaos-controller-manager sees a new experiment 50..300 ms after
/// it is written (controller-runtime's informer and work queue), then acts after its
/// [`ACTION_LATENCY`]: injected between 550 and 800 ms, the same instant for the same seed.
#[test]
fn the_controller_sees_an_experiment_after_its_informer_lag() {
    let injected_at = |seed: u64| {
        let mut w = world(seed);
        w.set_controller_lag(true);
        pod(&mut w, "tikv-0", "tikv", "Running");
        let name = create(&mut w, example("pod-failure-example", "tikv"));
        for ms in 0..2000 {
            let c = get(&w, POD, &name).expect("chaos");
            if cond(&c, "AllInjected") == "True" {
                return ms;
            }
            advance_ms(&mut w, 1);
        }
        panic!("not injected within 2 s");
    };
    let at = injected_at(3);
    assert!((550..=800).contains(&at), "injected at {at} ms");
    assert_eq!(injected_at(3), at, "same seed, same instant");
}

#[test]
fn pod_failure_example_injects_then_recovers_at_the_end_of_its_duration() {
    let mut w = world(1);
    for i in 0..3 {
        pod(&mut w, &format!("tikv-{i}"), "tikv", "Running");
    }
    let name = create(&mut w, example("pod-failure-example", "tikv"));
    let c = get(&w, POD, &name).expect("chaos");
    assert_eq!(c["metadata"]["finalizers"], json!([FINALIZER]));
    assert_eq!(phase(&c), "Run");
    assert_eq!(
        cond(&c, "Selected"),
        "False",
        "injection takes simulated time"
    );

    advance_ms(&mut w, 500);
    let c = get(&w, POD, &name).expect("chaos");
    let recs = records(&c);
    assert_eq!(recs.len(), 1, "mode one");
    let r = &recs[0];
    assert_eq!(
        (r["phase"].as_str(), r["selectorKey"].as_str()),
        (Some("Injected"), Some("."))
    );
    assert_eq!(
        (r["injectedCount"].as_i64(), r["recoveredCount"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(r["events"][0]["type"], "Succeeded");
    assert_eq!(r["events"][0]["operation"], "Apply");
    for (t, s) in [
        ("Selected", "True"),
        ("AllInjected", "True"),
        ("AllRecovered", "False"),
        ("Paused", "False"),
    ] {
        assert_eq!(cond(&c, t), s, "{t}");
    }
    let id = r["id"].as_str().expect("id").to_string();
    let victim = id.strip_prefix("ml/").expect("ns/pod").to_string();
    let key = pod_failure_image_key(&name, "app", false);
    assert_eq!(
        key,
        "chaos-mesh-pod-failure-example-pod-failure-app-normal-image"
    );
    assert_eq!(annotation(&w, &victim, &key).as_deref(), Some("app:1"));
    let p = get(&w, "pods", &victim).expect("pod");
    assert_eq!(p["spec"]["containers"][0]["image"], PAUSE_IMAGE);

    advance_ms(&mut w, 30_000);
    let c = get(&w, POD, &name).expect("chaos");
    assert_eq!(phase(&c), "Stop");
    assert_eq!(cond(&c, "AllRecovered"), "True");
    assert_eq!(cond(&c, "AllInjected"), "False");
    assert_eq!(records(&c)[0]["recoveredCount"], 1);
    assert_eq!(annotation(&w, &victim, &key), None);
    let p = get(&w, "pods", &victim).expect("pod");
    assert_eq!(p["spec"]["containers"][0]["image"], "app:1");
    let r = reasons(&w, &name);
    for want in [
        "FinalizerInited",
        "Updated",
        "Started",
        "Applied",
        "TimeUp",
        "Recovered",
    ] {
        assert!(r.iter().any(|x| x == want), "{want} in {r:?}");
    }
    assert!(
        messages(&w, &name)
            .iter()
            .any(|m| m == &format!("Successfully apply chaos for {id}"))
    );
}

#[test]
fn pod_kill_deletes_the_pod_once_and_stays_run() {
    let mut w = world(2);
    for i in 0..3 {
        pod(&mut w, &format!("web-{i}"), "web", "Running");
    }
    let name = create(&mut w, example("pod-kill-example", "web"));
    advance_ms(&mut w, 500);
    let left = (0..3)
        .filter(|i| get(&w, "pods", &format!("web-{i}")).is_some())
        .count();
    assert_eq!(left, 2, "one pod killed");
    advance_ms(&mut w, 600_000);
    let c = get(&w, POD, &name).expect("chaos");
    assert_eq!(phase(&c), "Run", "one-shot");
    assert_eq!(records(&c)[0]["phase"], "Injected");
    assert_eq!(records(&c)[0]["injectedCount"], 1);
    assert_eq!(cond(&c, "AllInjected"), "True");
    // Deleting it: recover (nothing to undo), then the finalizer goes and so does the object.
    let r = res(&w, POD);
    w.store_mut()
        .delete(r, NS, &name, &Default::default())
        .expect("delete");
    w.settle();
    assert!(
        get(&w, POD, &name).is_some(),
        "held by its finalizer while recovering"
    );
    advance_ms(&mut w, 500);
    assert!(get(&w, POD, &name).is_none());
    let rs = reasons(&w, &name);
    assert!(
        rs.iter().any(|x| x == "Deleted") && rs.iter().any(|x| x == "Recovered"),
        "{rs:?}"
    );
    assert!(
        messages(&w, &name)
            .iter()
            .any(|m| m == "Finalizer has been removed")
    );
}

#[test]
fn container_kill_marks_the_container() {
    let mut w = world(3);
    pod(&mut w, "api-0", "api", "Running");
    let mut c = example("pod-kill-example", "api");
    c["metadata"]["name"] = json!("ck");
    c["spec"]["action"] = json!("container-kill");
    c["spec"]["containerNames"] = json!(["app"]);
    create(&mut w, c);
    advance_ms(&mut w, 500);
    let c = get(&w, POD, "ck").expect("chaos");
    assert_eq!(records(&c)[0]["id"], "ml/api-0/app");
    let mark = annotation(&w, "api-0", CONTAINER_KILL).expect("mark");
    assert!(mark.starts_with("app@2026-01-01T00:00:00.5"), "{mark}");
}

#[test]
fn burn_cpu_raises_and_then_restores_cpu_use() {
    let mut w = world(4);
    pod(&mut w, "train-0", "train", "Running");
    let name = create(&mut w, example("burn-cpu", "train"));
    advance_ms(&mut w, 500);
    let c = get(&w, "stresschaos", &name).expect("chaos");
    assert_eq!(
        records(&c)[0]["id"],
        "ml/train-0/app",
        "container-level record"
    );
    assert!(
        c.pointer("/status/instances/ml~1train-0~1app/uid")
            .is_some()
    );
    // The workers' demand, in millicores (not capped: the limit caps the container's use).
    assert_eq!(
        annotation(&w, "train-0", STRESS_CPU).as_deref(),
        Some("1000m")
    );
    assert_eq!(
        annotation(&w, "train-0", STRESS_CONTAINERS).as_deref(),
        Some("app")
    );
    advance_ms(&mut w, 30_000);
    assert_eq!(annotation(&w, "train-0", STRESS_CPU), None);
    assert_eq!(
        cond(&get(&w, "stresschaos", &name).expect("c"), "AllRecovered"),
        "True"
    );

    // Four workers at 100% ask for 4 cores; the 2-CPU limit caps the container's use.
    let mut c = example("burn-cpu", "train");
    c["metadata"]["name"] = json!("burn-4");
    c["spec"]["stressors"]["cpu"]["workers"] = json!(4);
    create(&mut w, c);
    advance_ms(&mut w, 500);
    assert_eq!(
        annotation(&w, "train-0", STRESS_CPU).as_deref(),
        Some("4000m")
    );
    let pod = get(&w, "pods", "train-0").expect("pod");
    let used = crate::controllers::model::container_use(&pod, &pod["spec"]["containers"][0]).0;
    assert_eq!(used, 2000);
}

/// memStress (github.com/chaos-mesh/memStress main.go) touches its memory page by page: the
/// stress grows at about 2 GiB/s from the injection; a percentage is of the node's memory.
#[test]
fn cause_pod_oom_grows_memory_to_its_size() {
    let mut w = world(5);
    w.seed(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
        "status": {"capacity": {"memory": "16Gi"}, "allocatable": {"memory": "16Gi"}}}),
    )
    .expect("node");
    pod(&mut w, "infer-0", "infer", "Running");
    let name = create(&mut w, example("cause-pod-oom", "infer"));
    advance_ms(&mut w, 500);
    assert_eq!(
        annotation(&w, "infer-0", STRESS_MEMORY),
        None,
        "nothing yet"
    );
    advance_ms(&mut w, 1_000);
    let held: u64 = annotation(&w, "infer-0", STRESS_MEMORY)
        .and_then(|v| v.parse().ok())
        .expect("growing");
    let rate = super::stress::FIRST_TOUCH_BYTES_PER_S as u64;
    assert!(held <= rate && held >= rate * 9 / 10, "{held} after 1 s");
    advance_ms(&mut w, 10_000);
    assert_eq!(
        annotation(&w, "infer-0", STRESS_MEMORY).as_deref(),
        Some("10000000000")
    );
    let mut half = example("cause-pod-oom", "infer");
    half["metadata"]["name"] = json!("half");
    half["spec"]["stressors"]["memory"]["size"] = json!("50%");
    create(&mut w, half);
    advance_ms(&mut w, 10_000);
    let want = 10_000_000_000u64 + (8u64 << 30);
    assert_eq!(
        annotation(&w, "infer-0", STRESS_MEMORY),
        Some(want.to_string()),
        "sum of both; 50% of the node's 16Gi"
    );
    // Deleting one recovers its share only.
    let r = res(&w, "stresschaos");
    w.store_mut()
        .delete(r, NS, &name, &Default::default())
        .expect("delete");
    w.settle();
    advance_ms(&mut w, 500);
    assert!(get(&w, "stresschaos", &name).is_none());
    assert_eq!(
        annotation(&w, "infer-0", STRESS_MEMORY),
        Some((8u64 << 30).to_string())
    );
}

fn image(w: &World, pod: &str) -> String {
    get(w, "pods", pod).expect("pod")["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn pause_recovers_and_resume_reinjects() {
    let mut w = world(6);
    pod(&mut w, "db-0", "db", "Running");
    let mut c = example("pod-failure-example", "db");
    c["spec"].as_object_mut().expect("spec").remove("duration");
    let name = create(&mut w, c);
    advance_ms(&mut w, 500);
    assert_eq!(image(&w, "db-0"), PAUSE_IMAGE);
    let r = res(&w, POD);
    let pause = |w: &mut World, v: Value| {
        let mut o = (*get(w, POD, &name).expect("c")).clone();
        o["metadata"]["annotations"] = json!({PAUSE_ANNOTATION: v});
        o["metadata"]["resourceVersion"] = json!("");
        w.store_mut()
            .update(r, NS, &name, o, false)
            .expect("update");
        w.settle();
    };
    pause(&mut w, json!("true"));
    advance_ms(&mut w, 500);
    let c = get(&w, POD, &name).expect("c");
    assert_eq!(
        (phase(&c).as_str(), cond(&c, "Paused").as_str()),
        ("Stop", "True")
    );
    assert_eq!(cond(&c, "AllRecovered"), "True");
    assert_eq!(image(&w, "db-0"), "app:1");
    assert!(reasons(&w, &name).iter().any(|x| x == "Paused"));
    pause(&mut w, json!("false"));
    advance_ms(&mut w, 500);
    let c = get(&w, POD, &name).expect("c");
    assert_eq!(
        (phase(&c).as_str(), cond(&c, "Paused").as_str()),
        ("Run", "False")
    );
    assert_eq!(records(&c)[0]["injectedCount"], 2);
    assert_eq!(records(&c)[0]["recoveredCount"], 1);
    assert_eq!(image(&w, "db-0"), PAUSE_IMAGE);
}

#[test]
fn nothing_selected_or_bad_value_is_reported_like_chaos_mesh() {
    let mut w = world(7);
    pod(&mut w, "a-0", "a", "Running");
    let name = create(&mut w, example("pod-failure-example", "nobody"));
    advance_ms(&mut w, 500);
    let c = get(&w, POD, &name).expect("c");
    assert_eq!(cond(&c, "Selected"), "False");
    assert!(records(&c).is_empty());
    let msgs = messages(&w, &name);
    assert_eq!(
        msgs.iter()
            .filter(|m| *m == "Failed to select targets: no pod is selected")
            .count(),
        1,
        "{msgs:?}"
    );
    for (n, mode, value, err) in [
        (
            "bad-pct",
            "fixed-percent",
            "150",
            "fixed percentage value of 150 is invalid, Must be (0,100]",
        ),
        (
            "bad-int",
            "fixed",
            "x",
            "strconv.Atoi: parsing \"x\": invalid syntax",
        ),
    ] {
        let mut c = example("pod-failure-example", "a");
        c["metadata"]["name"] = json!(n);
        c["spec"]["mode"] = json!(mode);
        c["spec"]["value"] = json!(value);
        create(&mut w, c);
        advance_ms(&mut w, 500);
        let c = get(&w, POD, n).expect("c");
        assert_eq!(cond(&c, "Selected"), "False");
        assert!(
            messages(&w, n).contains(&format!("Failed to select targets: {err}")),
            "{n}"
        );
        assert!(reasons(&w, n).iter().any(|r| r == "Failed"));
    }
    // Deleting a never-selected experiment drops its finalizer at once.
    let r = res(&w, POD);
    w.store_mut()
        .delete(r, NS, "bad-pct", &Default::default())
        .expect("delete");
    w.settle();
    assert!(get(&w, POD, "bad-pct").is_none());
}

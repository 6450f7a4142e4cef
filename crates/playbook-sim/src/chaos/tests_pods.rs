//! Tests of PodChaos and StressChaos effects through the kubelet model: pod-failure's pause image and its probes, memory stress ramping to an OOM kill.

use std::sync::Arc;

use serde_json::{Value, json};

use super::effects::{PAUSE_IMAGE, refuses_connections};
use crate::testkit::{advance_ms, advance_secs, core_world};
use crate::world::World;

fn world(seed: u64) -> World {
    // Instant: the timings asserted below are the kubelet's and Chaos Mesh's own.
    let mut w = core_world(seed, false);
    for c in super::controllers() {
        w.add_controller(c);
    }
    w.settle();
    w
}

fn seed(w: &mut World, obj: Value) {
    w.seed(obj).expect("create");
    w.settle();
}

/// A one-replica Deployment `name` (container `app`, 256Mi limit) with `probes` merged into
/// its container.
fn deployment(name: &str, probes: Value, annotations: Value) -> Value {
    let mut c = json!({"name": "app", "image": "nginx:1.27",
        "ports": [{"containerPort": 8080}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}});
    for (k, v) in probes.as_object().into_iter().flatten() {
        c[k] = v.clone();
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {"containers": [c]}}}})
}

fn the_pod(w: &World, app: &str) -> Arc<Value> {
    let res = w.store().registry().lookup("pods").expect("pods");
    w.store()
        .list(
            res,
            Some("default"),
            &Default::default(),
            &Default::default(),
        )
        .into_iter()
        .find(|p| {
            p["metadata"]["labels"]["app"] == app && p["metadata"]["deletionTimestamp"].is_null()
        })
        .expect("pod")
}

fn ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn restarts(p: &Value) -> i64 {
    p["status"]["containerStatuses"][0]["restartCount"]
        .as_i64()
        .unwrap_or(-1)
}

fn chaos(kind: &str, name: &str, app: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["mode"] = json!("all");
    spec["selector"] = json!({"labelSelectors": {"app": app}});
    json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": kind,
        "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

/// controllers/chaosimpl/podchaos/podfailure/impl.go only swaps the images for the pause
/// image: the kubelet restarts the container with it, and the probes decide the rest
/// (pkg/kubelet/prober): no probe, Ready but refusing connections; a readiness probe, not
/// Ready; a liveness probe, killed and restarted again and again.
#[test]
fn pod_failure_is_the_pause_image_and_the_probes_decide() {
    let mut w = world(3);
    let http = json!({"httpGet": {"path": "/", "port": 8080}});
    seed(&mut w, deployment("plain", json!({}), json!({})));
    seed(
        &mut w,
        deployment("probed", json!({"readinessProbe": http}), json!({})),
    );
    seed(
        &mut w,
        deployment("live", json!({"livenessProbe": http}), json!({})),
    );
    advance_secs(&mut w, 10.0);
    for app in ["plain", "probed", "live"] {
        assert!(ready(&the_pod(&w, app)), "{app} ready before");
        assert!(!refuses_connections(&the_pod(&w, app)));
        seed(
            &mut w,
            chaos(
                "PodChaos",
                &format!("pf-{app}"),
                app,
                json!({"action": "pod-failure", "duration": "2m"}),
            ),
        );
    }
    advance_secs(&mut w, 5.0);
    let plain = the_pod(&w, "plain");
    assert_eq!(
        plain["status"]["containerStatuses"][0]["image"],
        PAUSE_IMAGE
    );
    assert_eq!(restarts(&plain), 1);
    assert!(ready(&plain), "no probe: Ready");
    assert!(refuses_connections(&plain));
    assert!(!ready(&the_pod(&w, "probed")), "readiness probe fails");
    assert!(ready(&the_pod(&w, "live")), "no readiness probe");
    // The liveness probe fails 3 x 10 s after each start, then the back-off grows.
    advance_secs(&mut w, 60.0);
    let live = the_pod(&w, "live");
    assert!(restarts(&live) >= 2, "{:#}", live["status"]);
    let last = &live["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 0, "pause exits 0 on SIGTERM");
    // Started with the pause image at 10 s, killed 3 x 10 s later.
    assert_eq!(
        (last["startedAt"].as_str(), last["finishedAt"].as_str()),
        (Some("2026-01-01T00:00:10Z"), Some("2026-01-01T00:00:40Z"))
    );
    assert_eq!(
        restarts(&the_pod(&w, "plain")),
        1,
        "nothing kills a probe-less pause"
    );
    // Recovery restores the images: restarted once more, serving again.
    advance_secs(&mut w, 90.0);
    for app in ["plain", "probed", "live"] {
        let p = the_pod(&w, app);
        assert_eq!(p["spec"]["containers"][0]["image"], "nginx:1.27", "{app}");
        assert!(ready(&p), "{app} ready after: {:#}", p["status"]);
        assert!(!refuses_connections(&p), "{app}");
    }
}

fn stress_memory(p: &Value) -> Option<u64> {
    p["metadata"]["annotations"][super::effects::STRESS_MEMORY]
        .as_str()
        .and_then(|v| v.parse().ok())
}

/// memStress grows its memory at page-fault speed (github.com/chaos-mesh/memStress main.go),
/// so the container passes its limit some time after the injection, is OOM-killed (the whole
/// cgroup on cgroup v2, stress included) and restarted by the kubelet with its back-off, Ready
/// again after its startup; the stress does not come back (the record stays Injected).
#[test]
fn memory_stress_ramps_to_an_oom_kill_and_the_kubelet_restarts_the_container() {
    let mut w = world(8);
    seed(
        &mut w,
        deployment("mem", json!({}), json!({"sim.playbook.dev/startup": "20s"})),
    );
    advance_secs(&mut w, 30.0);
    assert!(ready(&the_pod(&w, "mem")));
    seed(
        &mut w,
        chaos(
            "StressChaos",
            "oom",
            "mem",
            json!({"stressors": {"memory": {"workers": 1, "size": "1GiB"}}, "duration": "5m"}),
        ),
    );
    // Injected after the controller's 500 ms; 50 ms later about 100 MiB are resident.
    advance_ms(&mut w, 550);
    let p = the_pod(&w, "mem");
    let held = stress_memory(&p).expect("growing");
    assert!(held > 80 << 20 && held < 128 << 20, "{held}");
    assert_eq!(restarts(&p), 0, "not yet over the 256Mi limit");
    // (256Mi - 64Mi base) / 2 GiB/s = ~94 ms after the injection.
    advance_ms(&mut w, 100);
    let p = the_pod(&w, "mem");
    assert_eq!(restarts(&p), 1, "{:#}", p["status"]);
    let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(
        (last["reason"].as_str(), last["exitCode"].as_i64()),
        (Some("OOMKilled"), Some(137))
    );
    assert_eq!(stress_memory(&p), None, "the stress died with the cgroup");
    assert!(!ready(&p), "restarting: not Ready before its startup");
    advance_secs(&mut w, 25.0);
    let p = the_pod(&w, "mem");
    assert!(ready(&p), "Ready again after its 20 s startup");
    advance_secs(&mut w, 60.0);
    let p = the_pod(&w, "mem");
    assert_eq!(restarts(&p), 1, "the stress is not injected again");
    assert_eq!(stress_memory(&p), None);
}

/// The chaos-daemon DaemonSet tolerates only the DaemonSet controller's automatic taints
/// (helm/chaos-mesh/values.yaml `tolerations: []`): on a GPU node tainted `nvidia.com/gpu`
/// there is none, and FindDaemonIP (controllers/utils/chaosdaemon/chaosdaemon.go) fails, so
/// StressChaos and NetworkChaos stay not injected there; pod-kill needs no daemon.
/// A container that restarted before goes into CrashLoopBackOff after the OOM kill (restartCount
/// only moves when the kubelet starts it again, 10 s later) while memStress would still be
/// growing: the stress died with the killed container instance all the same
/// (pkg/chaosdaemon/stress_server_linux.go attaches it to that instance's cgroup;
/// controllers/chaosimpl/stresschaos/impl.go never executes it again while the record has an
/// instance), so the container is OOM-killed exactly once.
#[test]
fn memory_stress_kills_a_backing_off_container_exactly_once() {
    let mut w = world(9);
    seed(&mut w, deployment("mem", json!({}), json!({})));
    advance_secs(&mut w, 10.0);
    seed(
        &mut w,
        chaos(
            "PodChaos",
            "kill",
            "mem",
            json!({"action": "container-kill", "containerNames": ["app"]}),
        ),
    );
    advance_secs(&mut w, 30.0);
    let p = the_pod(&w, "mem");
    assert_eq!(restarts(&p), 1, "{:#}", p["status"]);
    assert!(ready(&p));
    // 2 GiB at 2 GiB/s: the kill (~100 ms in) comes long before memStress would be done.
    seed(
        &mut w,
        chaos(
            "StressChaos",
            "oom",
            "mem",
            json!({"stressors": {"memory": {"workers": 1, "size": "2GiB"}}, "duration": "5m"}),
        ),
    );
    advance_ms(&mut w, 2_000);
    let p = the_pod(&w, "mem");
    let cs = &p["status"]["containerStatuses"][0];
    assert_eq!(cs["lastState"]["terminated"]["reason"], "OOMKilled");
    assert_eq!(
        cs["state"]["waiting"]["reason"], "CrashLoopBackOff",
        "{cs:#}"
    );
    assert_eq!(
        stress_memory(&p),
        None,
        "the stress died with the killed instance"
    );
    advance_secs(&mut w, 120.0);
    let p = the_pod(&w, "mem");
    assert_eq!(restarts(&p), 2, "one OOM kill only: {:#}", p["status"]);
    assert!(ready(&p));
    assert_eq!(stress_memory(&p), None);
    let res = w.store().registry().lookup("stresschaos").expect("kind");
    let c = w.store().get(res, "default", "oom").expect("chaos");
    assert!(
        c["status"]["instances"]
            .as_object()
            .is_some_and(|i| i.len() == 1),
        "the record keeps its (dead) instance: {:#}",
        c["status"]
    );
}

#[test]
fn no_chaos_daemon_on_a_tainted_node() {
    let mut w = world(9);
    let nodes = w.store().registry().lookup("nodes").expect("nodes");
    let mut gpu = (*w
        .store()
        .list(nodes, None, &Default::default(), &Default::default())[0])
        .clone();
    gpu["metadata"] =
        json!({"name": "gpu-1", "labels": {"kubernetes.io/hostname": "gpu-1", "gpu": "true"}});
    gpu["spec"]["taints"] =
        json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]);
    seed(&mut w, gpu);
    let mut d = deployment("train", json!({}), json!({}));
    d["spec"]["template"]["spec"]["nodeSelector"] = json!({"gpu": "true"});
    d["spec"]["template"]["spec"]["tolerations"] =
        json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]);
    seed(&mut w, d);
    advance_secs(&mut w, 10.0);
    assert_eq!(the_pod(&w, "train")["spec"]["nodeName"], "gpu-1");
    seed(
        &mut w,
        chaos(
            "StressChaos",
            "cpu",
            "train",
            json!({"stressors": {"cpu": {"workers": 1}}}),
        ),
    );
    seed(
        &mut w,
        chaos(
            "NetworkChaos",
            "lag",
            "train",
            json!({"action": "delay", "delay": {"latency": "10ms"}}),
        ),
    );
    advance_secs(&mut w, 5.0);
    let res = |w: &World, k: &str| w.store().registry().lookup(k).expect("kind");
    for (kind, name) in [
        ("stresschaos.chaos-mesh.org", "cpu"),
        ("networkchaos.chaos-mesh.org", "lag"),
    ] {
        let c = w
            .store()
            .get(res(&w, kind), "default", name)
            .expect("chaos");
        let r = &c["status"]["experiment"]["containerRecords"][0];
        assert_eq!(r["phase"], "Not Injected", "{kind}");
        let events = r["events"].as_array().expect("events");
        assert!(
            events
                .iter()
                .any(|e| e["message"] == "cannot find daemonIP on node gpu-1"),
            "{kind}: {events:?}"
        );
    }
    seed(
        &mut w,
        chaos("PodChaos", "kill", "train", json!({"action": "pod-kill"})),
    );
    advance_secs(&mut w, 2.0);
    let c = w
        .store()
        .get(res(&w, "podchaos.chaos-mesh.org"), "default", "kill")
        .expect("chaos");
    assert_eq!(
        c["status"]["experiment"]["containerRecords"][0]["phase"],
        "Injected"
    );
}

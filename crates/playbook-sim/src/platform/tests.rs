//! Tests of the platform in virtual time: steady state, the five seed experiments (each holds on
//! `mlops` and fails on `mlops-fragile`), the proxy, determinism.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{BreakerState, Scenario};
use crate::{ClockMode, Sim, SimConfig};

fn sim(scenario: Scenario, seed: u64) -> Sim {
    Sim::new(SimConfig {
        seed,
        clock: ClockMode::Virtual,
        scenario,
        ..Default::default()
    })
}

fn get(sim: &Sim, res: &str, ns: &str, name: &str) -> Option<Value> {
    let w = sim.lock();
    let id = w.store().registry().lookup(res)?;
    w.store().get(id, ns, name).map(|v| (**v).clone())
}

fn list(sim: &Sim, res: &str, ns: &str) -> Vec<Value> {
    let w = sim.lock();
    let Some(id) = w.store().registry().lookup(res) else {
        return Vec::new();
    };
    w.store()
        .list(id, Some(ns), &Default::default(), &Default::default())
        .iter()
        .map(|v| (**v).clone())
        .collect()
}

fn cond(obj: &Value, t: &str) -> String {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|c| c["type"] == t))
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn isvc_ready(s: &Sim) -> bool {
    get(
        s,
        "inferenceservices.serving.kserve.io",
        "kserve-inference",
        "sklearn-iris",
    )
    .is_some_and(|i| cond(&i, "Ready") == "True")
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

/// Creates a chaos object through the store, as the API would.
fn apply(s: &Sim, obj: Value) {
    s.with_world(|w| {
        let av = obj["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let id = w.store().registry().by_kind(&av, &kind).expect("kind");
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        w.store_mut().create(id, &ns, obj, false).expect("create");
    });
}

fn chaos(kind: &str, name: &str, ns: &str, spec: Value) -> Value {
    json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": kind,
        "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

fn predictor_selector() -> Value {
    json!({"namespaces": ["kserve-inference"], "labelSelectors": {
        "serving.kserve.io/inferenceservice": "sklearn-iris", "component": "predictor"}})
}

/// Steps virtual time by 1 s until `f` holds (Some(elapsed)) or `limit` passes (None).
fn until(
    s: &Sim,
    limit: SignedDuration,
    mut f: impl FnMut(&Sim) -> bool,
) -> Option<SignedDuration> {
    let t0 = s.now();
    while s.now().duration_since(t0) <= limit {
        if f(s) {
            return Some(s.now().duration_since(t0));
        }
        s.advance_by(secs(1));
    }
    None
}

/// Calls a Service through the API server's proxy in process; (status, virtual seconds).
fn call(
    s: &Sim,
    rt: &tokio::runtime::Runtime,
    path: &str,
    body: Option<&str>,
) -> (u16, f64, String) {
    let client = rt.block_on(async { s.client() });
    let b = http::Request::builder().uri(path);
    let req = match body {
        Some(x) => b
            .method("POST")
            .header("content-type", "application/json")
            .body(x.as_bytes().to_vec()),
        None => b.method("GET").body(Vec::new()),
    }
    .expect("request");
    let t0 = s.now();
    let r = rt.block_on(client.request_text(req));
    let dt = s.now().duration_since(t0).as_secs_f64();
    match r {
        Ok(text) => (200, dt, text),
        Err(kube::Error::Api(st)) => (st.code, dt, st.message),
        Err(e) => (0, dt, e.to_string()),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

const SEARCH: &str =
    "/api/v1/namespaces/mlflow/services/mlflow:5000/proxy/api/2.0/mlflow/experiments/search";

/// Mean latency (ms) and successes of `n` MLflow searches, one per second.
fn mlflow_probe(s: &Sim, rt: &tokio::runtime::Runtime, n: usize) -> (f64, usize) {
    let (mut sum, mut ok) = (0.0, 0);
    for _ in 0..n {
        let (code, dt, _) = call(s, rt, SEARCH, None);
        sum += dt;
        ok += usize::from(code == 200);
        s.advance_by(secs(1));
    }
    (sum * 1000.0 / n as f64, ok)
}

#[test]
fn starts_in_steady_state_with_the_platform_ready() {
    for sc in [Scenario::Mlops, Scenario::MlopsFragile] {
        let s = sim(sc, 1);
        assert_eq!(s.now(), crate::virtual_epoch());
        assert!(isvc_ready(&s), "{sc:?}");
        let isvc = get(
            &s,
            "inferenceservices.serving.kserve.io",
            "kserve-inference",
            "sklearn-iris",
        )
        .expect("isvc");
        assert_eq!(
            isvc["status"]["url"],
            "http://sklearn-iris-kserve-inference.example.com"
        );
        assert_eq!(
            isvc["status"]["address"]["url"],
            "http://sklearn-iris-predictor.kserve-inference.svc.cluster.local"
        );
        for ns in [
            "kserve-inference",
            "mlflow",
            "argo",
            "training",
            "chaos-testing",
        ] {
            for p in list(&s, "pods", ns) {
                let wf = p["metadata"]["labels"]["workflows.argoproj.io/workflow"].is_string();
                if !wf {
                    assert_eq!(
                        cond(&p, "Ready"),
                        "True",
                        "{sc:?} {ns}/{}",
                        p["metadata"]["name"]
                    );
                }
            }
        }
        let wfs = list(&s, "workflows.argoproj.io", "argo");
        assert!(
            wfs.iter()
                .filter(|w| w["status"]["phase"] == "Succeeded")
                .count()
                >= 3,
            "{wfs:#?}"
        );
        let preds = list(&s, "pods", "kserve-inference").len();
        assert_eq!(preds, if sc == Scenario::Mlops { 3 } else { 1 });
    }
}

#[test]
fn empty_scenario_has_no_platform() {
    let s = sim(Scenario::Empty, 1);
    assert!(list(&s, "pods", "kserve-inference").is_empty());
    assert!(s.platform().is_none());
}

#[test]
fn proxy_speaks_kserve_v1_mlflow_runner_health_and_metrics() {
    let s = sim(Scenario::Mlops, 3);
    let rt = runtime();
    let base = "/api/v1/namespaces/kserve-inference/services/sklearn-iris-predictor:80/proxy";
    let (code, dt, body) = call(&s, &rt, &format!("{base}/v1/models/sklearn-iris"), None);
    assert_eq!(code, 200, "{body}");
    assert!(dt > 0.0 && dt < 0.2, "{dt}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["ready"],
        true
    );
    let (code, _, body) = call(
        &s,
        &rt,
        &format!("{base}/v1/models/sklearn-iris:predict"),
        Some(
            r#"{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]]}"#,
        ),
    );
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json"),
        json!({"predictions": [1, 1, 0]})
    );
    let (code, _, msg) = call(
        &s,
        &rt,
        &format!("{base}/v1/models/sklearn-iris:predict"),
        Some("{}"),
    );
    // kube reports a non-Status error body without its code.
    assert_ne!(code, 200, "{msg}");
    let (code, _, body) = call(
        &s,
        &rt,
        "/api/v1/namespaces/mlflow/services/mlflow:5000/proxy/health",
        None,
    );
    assert_eq!((code, body.as_str()), (200, "OK"));
    let (code, _, body) = call(&s, &rt, SEARCH, None);
    assert_eq!(code, 200);
    assert!(body.contains("training-pipeline"));
    let (code, _, body) = call(
        &s,
        &rt,
        "/api/v1/namespaces/argo/services/pipeline-runner:8080/proxy/health",
        None,
    );
    assert_eq!(code, 200);
    let h: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(h["mlflow"]["circuitBreaker"]["state"], "closed");
    let (code, _, body) = call(&s, &rt, &format!("{base}/metrics"), None);
    assert_eq!(code, 200);
    assert!(
        body.contains("# TYPE http_request_duration_seconds histogram"),
        "{body}"
    );
    assert!(body.contains("http_requests_total{app=\"predictor\",code=\"200\"}"));
    assert!(body.contains("pod_cpu_usage_cores{namespace=\"kserve-inference\""));
    let (_, _, body) = call(
        &s,
        &rt,
        "/api/v1/namespaces/argo/services/pipeline-runner:8080/proxy/metrics",
        None,
    );
    assert!(
        body.contains("mlflow_client_circuit_breaker_state 0"),
        "{body}"
    );
    // No ready endpoint: the API server's 503.
    s.with_world(|w| {
        let id = w
            .store()
            .registry()
            .lookup("deployments.apps")
            .expect("deployments");
        let mut d = (**w.store().get(id, "mlflow", "mlflow").expect("mlflow")).clone();
        d["spec"]["replicas"] = json!(0);
        d["metadata"]["resourceVersion"] = json!("");
        w.store_mut()
            .update(id, "mlflow", "mlflow", d, false)
            .expect("scale");
    });
    s.advance_by(secs(5));
    let (code, _, msg) = call(&s, &rt, SEARCH, None);
    assert_eq!(code, 503, "{msg}");
    assert!(
        msg.contains("no endpoints available for service \"mlflow:5000\""),
        "{msg}"
    );
}

/// A PodChaos pod-kill of one predictor pod (with `gracePeriod` if given).
fn kill_one_predictor(s: &Sim, grace: Option<i64>) {
    let mut spec = json!({"action": "pod-kill", "mode": "one", "selector": predictor_selector()});
    if let Some(g) = grace {
        spec["gracePeriod"] = json!(g);
    }
    apply(s, chaos("PodChaos", "kill", "kserve-inference", spec));
}

/// Pod kill on one predictor pod: seconds until the InferenceService is Ready again.
fn pod_kill_recovery(sc: Scenario) -> Option<SignedDuration> {
    let s = sim(sc, 7);
    kill_one_predictor(&s, None);
    until(&s, secs(10), |s| !isvc_ready(s))?;
    until(&s, secs(120), isvc_ready)
}

#[test]
fn pod_kill_isvc_ready_again_within_30s_on_mlops_and_on_fragile_before_its_model_loaded() {
    let ok = pod_kill_recovery(Scenario::Mlops).expect("recovers");
    assert!(ok <= secs(30), "{ok:?}");
    // The fragile predictor is Ready before its model loaded (its single replica answers
    // 503 ModelNotReady meanwhile, see tests/ml.rs): Ready says nothing there.
    let fast = pod_kill_recovery(Scenario::MlopsFragile).expect("Ready again");
    assert!(fast <= secs(30), "{fast:?}");
}

/// MLflow latency (ms) before, during and after a 100 ms delay between mlflow (the source) and
/// postgresql (the target) in `direction`, and the successes during.
fn network_delay(sc: Scenario, direction: &str) -> (f64, f64, f64, usize) {
    let s = sim(sc, 11);
    let rt = runtime();
    let (before, _) = mlflow_probe(&s, &rt, 20);
    apply(
        &s,
        chaos(
            "NetworkChaos",
            "delay",
            "mlflow",
            json!({"action": "delay", "mode": "all",
        "selector": {"namespaces": ["mlflow"], "labelSelectors": {"app": "mlflow"}},
        "target": {"mode": "all", "selector": {"namespaces": ["mlflow"], "labelSelectors": {"app": "postgresql"}}},
        "direction": direction, "delay": {"latency": "100ms"}, "duration": "60s"}),
        ),
    );
    s.advance_by(secs(20));
    let (during, ok) = mlflow_probe(&s, &rt, 20);
    s.advance_by(secs(40));
    let (after, _) = mlflow_probe(&s, &rt, 20);
    (before, during, after, ok)
}

/// `direction: to` with a target filters on the target pods' IPs inside the source pod's netns
/// (controllers/chaosimpl/networkchaos/trafficcontrol/impl.go, pkg/chaosdaemon/tc_server.go):
/// MLflow reaches PostgreSQL by its ClusterIP Service, so nothing MLflow sends matches and
/// nothing is delayed. `from` puts the qdisc on PostgreSQL filtered on MLflow's pod IPs, which
/// its answers carry: one delay per query.
#[test]
fn network_delay_to_a_service_is_not_delayed_from_is_on_mlops_not_on_fragile() {
    let (b, d, _, ok) = network_delay(Scenario::Mlops, "to");
    assert_eq!(ok, 20);
    assert!((d - b).abs() < 10.0, "to: before {b} during {d}");
    let (b, d, a, ok) = network_delay(Scenario::Mlops, "from");
    assert_eq!(ok, 20);
    assert!((d - b - 100.0).abs() < 25.0, "from: before {b} during {d}");
    assert!((a - b).abs() < 10.0, "from: before {b} after {a}");
    let (b, d, _a, ok) = network_delay(Scenario::MlopsFragile, "from");
    assert!(
        ok < 20 || (d - b) > 200.0,
        "fragile: before {b} during {d} ok {ok}"
    );
}

/// Partition argo -> mlflow for 90 s: (breaker opened, state at the end, workflows failed,
/// workflows succeeded during the partition).
fn partition(sc: Scenario) -> (bool, Option<BreakerState>, usize, usize) {
    let s = sim(sc, 5);
    let t0 = s.now();
    apply(
        &s,
        chaos(
            "NetworkChaos",
            "partition",
            "argo",
            json!({"action": "partition", "mode": "all",
        "selector": {"namespaces": ["argo"]}, "direction": "to",
        "target": {"mode": "all", "selector": {"namespaces": ["mlflow"], "labelSelectors": {"app": "mlflow"}}},
        "duration": "90s"}),
        ),
    );
    let state = |s: &Sim| {
        s.platform().and_then(|p| {
            p.lock()
                .ok()
                .and_then(|g| g.breaker.as_ref().map(|b| b.state))
        })
    };
    let opened = until(&s, secs(90), |s| state(s) == Some(BreakerState::Open)).is_some();
    s.advance_to(t0 + secs(200));
    let after = |w: &Value| {
        w["status"]["finishedAt"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .is_some_and(|t| t > t0)
    };
    let wfs: Vec<Value> = list(&s, "workflows.argoproj.io", "argo")
        .into_iter()
        .filter(after)
        .collect();
    let failed = wfs
        .iter()
        .filter(|w| w["status"]["phase"] != "Succeeded")
        .count();
    let succeeded = wfs.len() - failed;
    (opened, state(&s), failed, succeeded)
}

#[test]
fn partition_opens_the_breaker_pipelines_succeed_and_it_closes_on_mlops_not_on_fragile() {
    let (opened, end, failed, succeeded) = partition(Scenario::Mlops);
    assert!(opened);
    assert_eq!(end, Some(BreakerState::Closed));
    assert_eq!(failed, 0);
    assert!(succeeded >= 2, "{succeeded}");
    let (opened, end, failed, _) = partition(Scenario::MlopsFragile);
    assert!(!opened && end.is_none());
    assert!(failed >= 1, "{failed}");
}

fn cpu_stress_max_replicas(sc: Scenario) -> i64 {
    let s = sim(sc, 9);
    apply(
        &s,
        chaos(
            "StressChaos",
            "burn",
            "training",
            json!({"mode": "all",
        "selector": {"namespaces": ["training"], "labelSelectors": {"app": "trainer"}},
        "stressors": {"cpu": {"workers": 2, "load": 100}}, "duration": "180s"}),
        ),
    );
    let mut max = 0;
    until(&s, secs(180), |s| {
        let r = get(s, "deployments.apps", "training", "trainer")
            .and_then(|d| d["spec"]["replicas"].as_i64())
            .unwrap_or(0);
        max = max.max(r);
        false
    });
    max
}

#[test]
fn cpu_stress_scales_the_trainer_up_on_mlops_not_on_fragile() {
    assert!(cpu_stress_max_replicas(Scenario::Mlops) >= 2);
    assert_eq!(cpu_stress_max_replicas(Scenario::MlopsFragile), 1);
}

/// Memory stress on one predictor pod: (the pod was OOMKilled, it is Ready again with one
/// restart, the others were untouched, share of inference requests that failed).
fn memory_stress(sc: Scenario) -> (bool, bool, bool, f64) {
    let s = sim(sc, 13);
    let errors = |s: &Sim| {
        let p = s.platform().expect("platform");
        let g = p.lock().expect("lock");
        let f = g.flows.get("predictor").cloned().unwrap_or_default();
        (f.count, f.count - f.by_code.get(&200).copied().unwrap_or(0))
    };
    let (n0, e0) = errors(&s);
    let before_restarts: Vec<(String, i64)> = list(&s, "pods", "kserve-inference")
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p["status"]["containerStatuses"][0]["restartCount"]
                    .as_i64()
                    .unwrap_or(0),
            )
        })
        .collect();
    apply(
        &s,
        chaos(
            "StressChaos",
            "oom",
            "kserve-inference",
            json!({"mode": "one",
        "selector": predictor_selector(),
        "stressors": {"memory": {"workers": 1, "size": "10GB", "oomScoreAdj": -1000}}, "duration": "30s"}),
        ),
    );
    s.advance_by(secs(120));
    let (n1, e1) = errors(&s);
    let pods = list(&s, "pods", "kserve-inference");
    let status = |p: &Value| p["status"]["containerStatuses"][0].clone();
    // The platform has a past (an old OOM kill, platform/history.rs): count what changed.
    let restarts = |p: &Value| status(p)["restartCount"].as_i64().unwrap_or(0);
    let before = |p: &Value| {
        before_restarts
            .iter()
            .find(|(n, _)| p["metadata"]["name"] == n.as_str())
            .map_or(0, |(_, r)| *r)
    };
    let killed: Vec<&Value> = pods
        .iter()
        .filter(|p| restarts(p) > before(p))
        .filter(|p| status(p)["lastState"]["terminated"]["reason"] == "OOMKilled")
        .collect();
    let clean = killed.len() == 1
        && restarts(killed[0]) == before(killed[0]) + 1
        && cond(killed[0], "Ready") == "True";
    let others = pods
        .iter()
        .filter(|p| {
            killed
                .iter()
                .all(|k| k["metadata"]["name"] != p["metadata"]["name"])
        })
        .all(|p| restarts(p) == before(p) && cond(p, "Ready") == "True");
    let failed = (e1 - e0) as f64 / (n1 - n0).max(1) as f64;
    (!killed.is_empty(), clean, others, failed)
}

#[test]
fn memory_stress_oomkills_one_pod_that_restarts_cleanly_on_mlops_and_hurts_on_fragile() {
    let (killed, clean, others, failed) = memory_stress(Scenario::Mlops);
    assert!(killed && clean && others, "{killed} {clean} {others}");
    assert!(failed < 0.01, "{failed}");
    let (killed, _, _, failed) = memory_stress(Scenario::MlopsFragile);
    assert!(killed);
    assert!(failed > 0.2, "fragile: {failed}");
}

/// Records every change the store makes, as controllers see them.
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl crate::Controller for Recorder {
    fn name(&self) -> &'static str {
        "history-recorder"
    }
    fn reconcile(&mut self, ctx: &mut crate::Ctx<'_>) {
        let mut log = self.0.lock().expect("log");
        for e in ctx.changes() {
            log.push(format!(
                "{} {:?} {} {}/{} {}",
                e.rv, e.kind, e.key, e.namespace, e.name, e.object["metadata"]["resourceVersion"]
            ));
        }
    }
}

fn history(seed: u64) -> Vec<String> {
    let s = sim(Scenario::Mlops, seed);
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    s.add_controller(Box::new(Recorder(log.clone())));
    kill_one_predictor(&s, None);
    s.advance_by(secs(300));
    log.lock().map(|l| l.clone()).unwrap_or_default()
}

#[test]
fn same_seed_same_history_different_seed_differs() {
    let a = history(21);
    assert!(a.len() > 100, "{}", a.len());
    assert_eq!(a, history(21));
    assert_ne!(a, history(22));
}

#[test]
fn container_kill_restarts_once_and_pod_failure_recovers_after_a_model_load() {
    let s = sim(Scenario::Mlops, 17);
    apply(
        &s,
        chaos(
            "PodChaos",
            "ck",
            "training",
            json!({"action": "container-kill", "mode": "one",
        "containerNames": ["trainer"], "selector": {"namespaces": ["training"], "labelSelectors": {"app": "trainer"}}}),
        ),
    );
    s.advance_by(secs(40));
    let pod = list(&s, "pods", "training").pop().expect("trainer");
    let cs = &pod["status"]["containerStatuses"][0];
    assert_eq!(cs["restartCount"], 1, "{cs:#}");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 137);
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(cond(&pod, "Ready"), "True");

    apply(
        &s,
        chaos(
            "PodChaos",
            "pf",
            "kserve-inference",
            json!({"action": "pod-failure", "mode": "one",
        "duration": "20s", "selector": predictor_selector()}),
        ),
    );
    s.advance_by(secs(5));
    let not_ready = |s: &Sim| {
        list(s, "pods", "kserve-inference")
            .iter()
            .filter(|p| cond(p, "Ready") != "True")
            .count()
    };
    assert_eq!(not_ready(&s), 1);
    assert!(!isvc_ready(&s));
    // Recovery at 20 s restores the image: the container restarts and loads the model again.
    s.advance_by(secs(20));
    assert_eq!(not_ready(&s), 1);
    let back = until(&s, secs(40), |s| not_ready(s) == 0).expect("ready again");
    assert!(back > secs(10), "{back:?}");
    assert!(isvc_ready(&s));
}

/// The predictor pods carry KServe's RawDeployment labels (kserve
/// pkg/controller/v1beta1/inferenceservice/components/predictor.go `buildObjectMeta`,
/// reconcilers/deployment/deployment_reconciler.go `createRawDeployment`), and the
/// InferenceService's conditions follow the Deployment's Available condition, with Ready
/// needing IngressReady too (pkg/apis/serving/v1beta1/inference_service_status.go,
/// reconcilers/ingress/kube_ingress_reconciler.go).
#[test]
fn kserve_labels_and_conditions_follow_upstream() {
    let s = sim(Scenario::MlopsFragile, 4);
    let pods = list(&s, "pods", "kserve-inference");
    assert_eq!(pods.len(), 1);
    let labels = &pods[0]["metadata"]["labels"];
    assert_eq!(labels["app"], "isvc.sklearn-iris-predictor");
    assert_eq!(labels["component"], "predictor");
    assert_eq!(labels["serving.kserve.io/inferenceservice"], "sklearn-iris");
    let svc = get(&s, "services", "kserve-inference", "sklearn-iris-predictor").expect("svc");
    assert_eq!(
        svc["spec"]["selector"],
        json!({"app": "isvc.sklearn-iris-predictor"})
    );
    let isvc = || {
        get(
            &s,
            "inferenceservices.serving.kserve.io",
            "kserve-inference",
            "sklearn-iris",
        )
        .expect("isvc")
    };
    let i = isvc();
    for c in ["IngressReady", "PredictorReady", "Ready"] {
        assert_eq!(cond(&i, c), "True", "{c}");
    }
    assert_eq!(
        i["status"]["modelStatus"]["states"]["activeModelState"],
        "Loaded"
    );
    // Kill the only predictor: the Deployment loses availability, then KServe follows.
    kill_one_predictor(&s, Some(0));
    until(&s, secs(10), |_| cond(&isvc(), "Ready") == "False").expect("Ready goes False");
    let i = isvc();
    let d = get(
        &s,
        "deployments.apps",
        "kserve-inference",
        "sklearn-iris-predictor",
    )
    .expect("d");
    let avail = d["status"]["conditions"]
        .as_array()
        .expect("conds")
        .iter()
        .find(|c| c["type"] == "Available")
        .cloned()
        .expect("Available");
    assert_eq!(avail["status"], "False");
    let pr = i["status"]["conditions"]
        .as_array()
        .expect("conds")
        .iter()
        .find(|c| c["type"] == "PredictorReady")
        .cloned()
        .expect("PredictorReady");
    assert_eq!(pr["reason"], avail["reason"]);
    assert_eq!(pr["message"], avail["message"]);
    assert_eq!(cond(&i, "IngressReady"), "False");
    assert_eq!(
        i["status"]["modelStatus"]["states"]["targetModelState"],
        "Pending"
    );
    assert_eq!(
        i["status"]["modelStatus"]["states"]["activeModelState"],
        "Loaded"
    );
    // The fragile replacement reports Ready when its server is up (a TCP probe), long before
    // its model loaded (predictor_startup_s of the fragile figures: 45 s): see tests/ml.rs.
    let back = until(&s, secs(120), |_| cond(&isvc(), "Ready") == "True").expect("Ready again");
    assert!(back < secs(20), "{back:?}");
}

/// The workflow status and progress of every pipeline, by name.
fn workflow_states(s: &Sim) -> Vec<(String, String, String)> {
    list(s, "workflows.argoproj.io", "argo")
        .iter()
        .map(|w| {
            (
                w["metadata"]["name"].as_str().unwrap_or("").to_string(),
                w["status"]["phase"].as_str().unwrap_or("").to_string(),
                w["status"]["progress"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// While the workflow-controller is down (pod-failure for 90 s), no Workflow makes progress
/// and no scheduled run starts (argo-workflows workflow/controller/controller.go runs every
/// reconciliation in that process; workflow/cron/operator.go skips missed schedules); once
/// it is Ready again, the pipelines move on.
#[test]
fn workflows_wait_while_the_workflow_controller_is_down() {
    let s = sim(Scenario::Mlops, 8);
    apply(
        &s,
        chaos(
            "PodChaos",
            "wc-down",
            "argo",
            json!({"action": "pod-failure", "mode": "all", "duration": "90s",
                "selector": {"namespaces": ["argo"], "labelSelectors": {"app": "workflow-controller"}}}),
        ),
    );
    // The workflow-controller has no readiness probe: under pod-failure its pod may stay
    // Ready while the pause image runs in place of the controller.
    let controller_ready = |s: &Sim| {
        list(s, "pods", "argo").iter().any(|p| {
            p["metadata"]["labels"]["app"] == "workflow-controller"
                && cond(p, "Ready") == "True"
                && !crate::chaos::effects::refuses_connections(p)
        })
    };
    until(&s, secs(5), |s| !controller_ready(s)).expect("controller down");
    let frozen = workflow_states(&s);
    let pods_before = list(&s, "pods", "argo").len();
    while !controller_ready(&s) && s.now().duration_since(crate::virtual_epoch()) < secs(88) {
        s.advance_by(secs(1));
        assert_eq!(
            workflow_states(&s),
            frozen,
            "no progress while the controller is down"
        );
    }
    assert_eq!(
        list(&s, "pods", "argo").len(),
        pods_before,
        "no step pod created"
    );
    until(&s, secs(60), controller_ready).expect("controller back");
    let moved = until(&s, secs(120), |s| workflow_states(s) != frozen);
    assert!(
        moved.is_some(),
        "pipelines move on once the controller is back"
    );
}

/// The platform starts with a past (platform/history.rs): MLflow restarted once (exit 1,
/// no database yet) and one predictor OOMKilled once (lastState OOMKilled, exit 137), all
/// through the kubelet model (pkg/kubelet/kuberuntime/kuberuntime_container.go keeps the
/// last termination in `lastState`); everything is Ready when the run starts.
#[test]
fn the_platform_starts_with_a_history() {
    for sc in [Scenario::Mlops, Scenario::MlopsFragile] {
        let s = sim(sc, 3);
        let mlflow = list(&s, "pods", "mlflow")
            .into_iter()
            .find(|p| p["metadata"]["labels"]["app"] == "mlflow")
            .expect("mlflow");
        let cs = &mlflow["status"]["containerStatuses"][0];
        assert_eq!(cs["restartCount"], 1, "{sc:?} {cs:#}");
        assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
        assert_eq!(cs["lastState"]["terminated"]["reason"], "Error");
        let preds = list(&s, "pods", "kserve-inference");
        let oomed: Vec<_> = preds
            .iter()
            .filter(|p| {
                p["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"]
                    == "OOMKilled"
            })
            .collect();
        assert_eq!(oomed.len(), 1, "{sc:?}");
        assert_eq!(
            oomed[0]["status"]["containerStatuses"][0]["restartCount"],
            1
        );
        assert!(preds.iter().all(|p| cond(p, "Ready") == "True"), "{sc:?}");
        assert!(isvc_ready(&s), "{sc:?}");
    }
}

/// `n` predictions through the API server's service proxy, one per second: (successes, p50
/// ms, the last error).
fn predictor_probe(s: &Sim, rt: &tokio::runtime::Runtime, n: usize) -> (usize, f64, String) {
    let url = "/api/v1/namespaces/kserve-inference/services/sklearn-iris-predictor:80/proxy/v1/models/sklearn-iris:predict";
    let body = r#"{"instances": [[6.8, 2.8, 4.8, 1.4]]}"#;
    let (mut ok, mut ms, mut last) = (0, Vec::new(), String::new());
    for _ in 0..n {
        let (code, dt, text) = call(s, rt, url, Some(body));
        ms.push(dt * 1000.0);
        if code == 200 {
            ok += 1;
        } else {
            last = format!("{code} {text}");
        }
        s.advance_by(secs(1));
    }
    ms.sort_by(f64::total_cmp);
    (ok, ms[ms.len() / 2], last)
}

/// A target-less NetworkChaos on every predictor pod (by KServe's own label).
fn predictor_fault(s: &Sim, name: &str, spec: Value) {
    let mut spec = spec;
    spec["mode"] = json!("all");
    spec["selector"] = json!({"namespaces": ["kserve-inference"],
        "labelSelectors": {"serving.kserve.io/inferenceservice": "sklearn-iris"}});
    apply(s, chaos("NetworkChaos", name, "kserve-inference", spec));
    s.advance_by(secs(2));
}

/// A NetworkChaos without a target puts its qdisc (or iptables rule) on the selected pods'
/// device with no filter (controllers/chaosimpl/networkchaos/trafficcontrol/impl.go `ApplyTc`
/// with no targets; partition/impl.go `SetDrop`), so the pods' answers to the API server's
/// proxy are delayed, lost and retransmitted, or never come (its dialer gives up after 30 s:
/// k8s.io/apimachinery/pkg/util/net/http.go).
#[test]
fn targetless_network_chaos_reaches_probes_through_the_service_proxy() {
    let rt = runtime();
    let s = sim(Scenario::Mlops, 21);
    let (ok, base, last) = predictor_probe(&s, &rt, 20);
    assert_eq!(ok, 20, "{last}");
    assert!(base < 100.0, "baseline p50 {base}");

    // 500 ms on every packet the predictor sends: the SYN-ACK and the answer.
    predictor_fault(
        &s,
        "delay",
        json!({"action": "delay", "delay": {"latency": "500ms"}}),
    );
    let (ok, p50, last) = predictor_probe(&s, &rt, 20);
    assert_eq!(ok, 20, "{last}");
    assert!(
        p50 >= base + 950.0 && p50 <= base + 1100.0,
        "delay p50 {p50}"
    );
    apply_delete(&s, "delay");

    // 30% loss: most calls succeed after retransmissions, the median pays at least one RTO.
    predictor_fault(
        &s,
        "loss30",
        json!({"action": "loss", "loss": {"loss": "30"}}),
    );
    let (ok, p50, last) = predictor_probe(&s, &rt, 40);
    assert!(ok >= 36, "30% loss: {ok}/40 {last}");
    assert!(p50 >= base + 150.0, "30% loss p50 {p50}");
    apply_delete(&s, "loss30");

    // 100% loss and a partition: nothing comes back; the API server answers 503 after 30 s.
    for (name, spec) in [
        (
            "loss100",
            json!({"action": "loss", "loss": {"loss": "100"}}),
        ),
        ("part", json!({"action": "partition"})),
    ] {
        predictor_fault(&s, name, spec);
        let (ok, p50, last) = predictor_probe(&s, &rt, 5);
        assert_eq!(ok, 0, "{name}");
        assert!((p50 - 30_000.0).abs() < 1.0, "{name} p50 {p50}");
        assert!(
            last.starts_with("503 error trying to reach service: dial tcp 10.")
                && last.ends_with(": i/o timeout"),
            "{name}: {last}"
        );
        apply_delete(&s, name);
    }
    let (ok, p50, _) = predictor_probe(&s, &rt, 10);
    assert_eq!(ok, 10);
    assert!(p50 < 100.0, "recovered p50 {p50}");
}

/// Deletes the NetworkChaos `name` of the predictor's namespace and lets it recover.
fn apply_delete(s: &Sim, name: &str) {
    s.with_world(|w| {
        let res = w
            .store()
            .registry()
            .lookup("networkchaos.chaos-mesh.org")
            .expect("res");
        w.store_mut()
            .delete(res, "kserve-inference", name, &Default::default())
            .expect("delete");
    });
    s.advance_by(secs(2));
}

mod ml;

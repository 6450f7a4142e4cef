//! The ML platform of issue 18: GPU nodes, the `finetune` Job's checkpoints and MLflow
//! logging, the predictor's model load, PodDisruptionBudgets, the chaos-daemon on GPU nodes.

use super::*;

const TRAIN_METRICS: &str = "/api/v1/namespaces/training/services/finetune:metrics/proxy/metrics";
const HISTORY: &str = "/api/v1/namespaces/mlflow/services/mlflow:5000/proxy/api/2.0/mlflow/metrics/get-history?run_id=finetune&metric_key=loss";
const PREDICT: &str = "/api/v1/namespaces/kserve-inference/services/sklearn-iris-predictor:80/proxy/v1/models/sklearn-iris:predict";

/// A gauge or counter of a `/metrics` text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

fn training_metric(s: &Sim, rt: &tokio::runtime::Runtime, name: &str) -> Option<f64> {
    let (code, _, text) = call(s, rt, TRAIN_METRICS, None);
    if code != 200 {
        return None;
    }
    metric(&text, name)
}

fn finetune_pods(s: &Sim) -> Vec<Value> {
    list(s, "pods", "training")
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "finetune")
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Failed" | "Succeeded")))
        .collect()
}

#[test]
fn gpu_nodes_the_training_job_and_budgets_are_installed() {
    let s = sim(Scenario::Mlops, 3);
    for n in ["sim-gpu-1", "sim-gpu-2"] {
        let node = get(&s, "nodes", "", n).expect("gpu node");
        assert_eq!(node["status"]["allocatable"]["nvidia.com/gpu"], "4");
        assert_eq!(node["metadata"]["labels"]["nvidia.com/gpu.present"], "true");
        assert_eq!(
            node["spec"]["taints"],
            json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}])
        );
    }
    assert!(get(&s, "nodes", "", "sim-worker-3").is_some());
    let job = get(&s, "jobs.batch", "training", "finetune").expect("job");
    assert_eq!(job["status"]["active"], 1, "{}", job["status"]);
    assert_eq!(job["status"]["ready"], 1);
    let pods = finetune_pods(&s);
    assert_eq!(pods.len(), 1);
    let p = &pods[0];
    assert!(
        p["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sim-gpu-")
    );
    assert_eq!(p["metadata"]["labels"]["job-name"], "finetune");
    assert_eq!(
        p["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
        "1"
    );
    // No other workload landed on a GPU node.
    let on_gpu = list(&s, "pods", "kserve-inference")
        .into_iter()
        .chain(list(&s, "pods", "mlflow"))
        .filter(|p| {
            p["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .starts_with("sim-gpu-")
        })
        .count();
    assert_eq!(on_gpu, 0);
    let pred = get(
        &s,
        "poddisruptionbudgets.policy",
        "kserve-inference",
        "sklearn-iris-predictor",
    )
    .expect("predictor pdb");
    assert_eq!(
        (
            &pred["status"]["currentHealthy"],
            &pred["status"]["desiredHealthy"],
            &pred["status"]["disruptionsAllowed"],
            &pred["status"]["expectedPods"]
        ),
        (&json!(3), &json!(1), &json!(2), &json!(3))
    );
    let ml = get(&s, "poddisruptionbudgets.policy", "mlflow", "mlflow").expect("mlflow pdb");
    assert_eq!(ml["status"]["disruptionsAllowed"], 1);
    assert_eq!(ml["status"]["desiredHealthy"], 0);
    let fragile = sim(Scenario::MlopsFragile, 3);
    assert!(list(&fragile, "poddisruptionbudgets.policy", "kserve-inference").is_empty());
    assert!(get(&fragile, "nodes", "", "sim-gpu-2").is_some());
    // The chaos-daemon runs on the GPU nodes only where the platform team tolerated them.
    let daemons_on_gpu = |s: &Sim| {
        list(s, "pods", "chaos-testing")
            .iter()
            .filter(|p| {
                p["spec"]["nodeName"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("sim-gpu-")
            })
            .count()
    };
    assert_eq!(daemons_on_gpu(&s), 2);
    assert_eq!(daemons_on_gpu(&fragile), 0);
}

/// Kills the training pod mid-run: (step at the kill, checkpoint at the kill, step the new
/// pod resumed from as its `/metrics` says, seconds until the step moved again).
fn resume(sc: Scenario) -> (f64, f64, f64, i64) {
    let s = sim(sc, 21);
    let rt = runtime();
    s.advance_by(secs(120));
    let step = training_metric(&s, &rt, "training_step").expect("step");
    let ckpt = training_metric(&s, &rt, "training_checkpoint_step").expect("checkpoint");
    apply(
        &s,
        chaos(
            "PodChaos",
            "kill-trainer",
            "training",
            json!({"action": "pod-kill", "mode": "one",
                "selector": {"namespaces": ["training"], "labelSelectors": {"app": "finetune"}}}),
        ),
    );
    let took = until(&s, secs(300), |s| {
        training_metric(s, &rt, "training_step").is_some_and(|x| x > 0.0 && x < step)
    })
    .expect("the new pod trains");
    let resumed = training_metric(&s, &rt, "training_resumed_from_step").expect("resumed from");
    (step, ckpt, resumed, took.as_secs())
}

#[test]
fn training_resumes_from_its_checkpoint_on_mlops_and_starts_over_on_fragile() {
    let (step, ckpt, resumed, took) = resume(Scenario::Mlops);
    assert!(step > ckpt && ckpt > 0.0, "step {step} checkpoint {ckpt}");
    assert!(step - ckpt < 100.0);
    assert_eq!(resumed, ckpt, "resumed from the last checkpoint");
    // The failure back-off (10 s) and the start-up (30 s) before the first step again.
    assert!((35..=90).contains(&took), "{took}");
    let (step, ckpt, resumed, _) = resume(Scenario::MlopsFragile);
    assert!(step > 300.0);
    assert_eq!((ckpt, resumed), (0.0, 0.0));
    let job = {
        let s = sim(Scenario::MlopsFragile, 21);
        s.advance_by(secs(5));
        get(&s, "jobs.batch", "training", "finetune").expect("job")
    };
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
}

/// Partitions training from MLflow for 60 s: (buffered during, dropped, steps logged
/// between the partition's start and 30 s after it healed, steps expected).
fn outage(sc: Scenario) -> (f64, f64, usize, usize) {
    let s = sim(sc, 9);
    let rt = runtime();
    let from = training_metric(&s, &rt, "training_step").expect("step") as u64;
    apply(
        &s,
        chaos(
            "NetworkChaos",
            "cut",
            "training",
            json!({"action": "partition", "mode": "all", "direction": "to",
                "selector": {"namespaces": ["training"], "labelSelectors": {"app": "finetune"}},
                "target": {"mode": "all", "selector": {"namespaces": ["mlflow"], "labelSelectors": {"app": "mlflow"}}},
                "duration": "60s"}),
        ),
    );
    s.advance_by(secs(45));
    let buffered = training_metric(&s, &rt, "training_mlflow_buffered_metrics").expect("buffered");
    s.advance_by(secs(45));
    let to = training_metric(&s, &rt, "training_step").expect("step") as u64;
    let dropped =
        training_metric(&s, &rt, "training_mlflow_dropped_metrics_total").expect("dropped");
    let (code, _, body) = call(&s, &rt, HISTORY, None);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    let steps: std::collections::BTreeSet<u64> = v["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .inspect(|m| assert_eq!(m["key"], "loss"))
        .filter_map(|m| m["step"].as_u64())
        .filter(|st| (from + 1..=to).contains(st))
        .collect();
    let want = (from + 1..=to).filter(|st| st % 10 == 0).count();
    (buffered, dropped, steps.len(), want)
}

#[test]
fn an_mlflow_partition_is_buffered_on_mlops_and_loses_metrics_on_fragile() {
    let (buffered, dropped, got, want) = outage(Scenario::Mlops);
    assert!(buffered >= 3.0, "{buffered}");
    assert_eq!(dropped, 0.0);
    assert_eq!(
        got, want,
        "every metric reached MLflow after the partition healed"
    );
    let (buffered, dropped, got, want) = outage(Scenario::MlopsFragile);
    assert_eq!(buffered, 0.0);
    assert!(dropped >= 3.0, "{dropped}");
    assert!(got + 3 <= want, "{got} of {want}");
}

/// POSTs through the router as is (the kube client turns a non-Status error body into no
/// code): (status, body).
fn raw(s: &Sim, rt: &tokio::runtime::Runtime, path: &str, body: &str) -> (u16, String) {
    use tower::ServiceExt;
    let req = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .expect("request");
    rt.block_on(async {
        let resp = s.router().oneshot(req).await.expect("answer");
        let code = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        (code, String::from_utf8_lossy(&bytes).into_owned())
    })
}

/// Kills the predictor pods: (answers from Ready pods that were ModelNotReady, correct
/// answers) over the next 90 s.
fn cold_start(sc: Scenario) -> (usize, usize, String) {
    let s = sim(sc, 4);
    let rt = runtime();
    let (code, _, body) = call(
        &s,
        &rt,
        PREDICT,
        Some(
            r#"{"instances": [[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6],[5.1,3.5,1.4,0.2],[6.9,3.1,5.4,2.1]]}"#,
        ),
    );
    assert_eq!((code, body.as_str()), (200, r#"{"predictions":[1,1,0,2]}"#));
    apply(
        &s,
        chaos(
            "PodChaos",
            "kill-all",
            "kserve-inference",
            json!({"action": "pod-kill", "mode": "all", "selector": predictor_selector()}),
        ),
    );
    let (mut not_ready, mut correct, mut last) = (0, 0, String::new());
    for _ in 0..90 {
        let (code, body) = raw(&s, &rt, PREDICT, r#"{"instances": [[6.8,2.8,4.8,1.4]]}"#);
        if code == 503 && body.contains("is not ready") {
            not_ready += 1;
            last = body;
        } else if code == 200 && body == r#"{"predictions":[1]}"# {
            correct += 1;
        }
        s.advance_by(secs(1));
    }
    (not_ready, correct, last)
}

#[test]
fn a_ready_predictor_serves_on_mlops_and_fails_before_its_model_loaded_on_fragile() {
    let (not_ready, correct, _) = cold_start(Scenario::Mlops);
    assert_eq!(not_ready, 0);
    assert!(correct > 30, "{correct}");
    let (not_ready, correct, body) = cold_start(Scenario::MlopsFragile);
    assert!(not_ready >= 20, "{not_ready}");
    assert!(
        body.contains("Model with name sklearn-iris is not ready."),
        "{body}"
    );
    assert!(correct > 0);
}

/// A StressChaos on the training pod: the record's phase and its last event.
fn stress_trainer(sc: Scenario) -> (String, String) {
    let s = sim(sc, 6);
    apply(
        &s,
        chaos(
            "StressChaos",
            "gpu-cpu",
            "training",
            json!({"mode": "one", "selector": {"namespaces": ["training"], "labelSelectors": {"app": "finetune"}},
                "stressors": {"cpu": {"workers": 2, "load": 100}}, "duration": "60s"}),
        ),
    );
    s.advance_by(secs(5));
    let c = get(&s, "stresschaos.chaos-mesh.org", "training", "gpu-cpu").expect("chaos");
    let r = &c["status"]["experiment"]["containerRecords"][0];
    let last = r["events"]
        .as_array()
        .and_then(|e| e.last())
        .and_then(|e| e["message"].as_str())
        .unwrap_or_default()
        .to_string();
    (r["phase"].as_str().unwrap_or_default().to_string(), last)
}

#[test]
fn chaos_reaches_gpu_pods_on_mlops_not_on_fragile() {
    let (phase, _) = stress_trainer(Scenario::Mlops);
    assert_eq!(phase, "Injected");
    let (phase, msg) = stress_trainer(Scenario::MlopsFragile);
    assert_eq!(phase, "Not Injected");
    assert!(
        msg.starts_with("cannot find daemonIP on node sim-gpu-"),
        "{msg}"
    );
}

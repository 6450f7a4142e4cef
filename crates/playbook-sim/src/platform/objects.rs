//! The platform's objects as a team would apply them: namespaces, Deployments, the PostgreSQL StatefulSet, Services, HPAs and the InferenceService.
//!
//! Exact names, labels and ports are listed in the README ("The simulated MLOps platform").
//! Every number comes from [`Figures`].

use serde_json::{Value, json};

use super::scenario::Figures;
use crate::controllers::model;

/// Namespace of KServe's InferenceService.
pub const KSERVE_NS: &str = "kserve-inference";
/// Namespace of MLflow and PostgreSQL.
pub const MLFLOW_NS: &str = "mlflow";
/// Namespace of Argo Workflows and the pipeline runner.
pub const ARGO_NS: &str = "argo";
/// Namespace of the trainer.
pub const TRAINING_NS: &str = "training";
/// Namespace of Chaos Mesh.
pub const CHAOS_NS: &str = "chaos-testing";

/// The InferenceService.
pub const ISVC: &str = "sklearn-iris";
/// The predictor Deployment and Service KServe derives from it.
pub const PREDICTOR: &str = "sklearn-iris-predictor";
/// MLflow's port.
pub const MLFLOW_PORT: i64 = 5000;
/// PostgreSQL's port.
pub const POSTGRES_PORT: i64 = 5432;
/// The pipeline runner's port.
pub const RUNNER_PORT: i64 = 8080;
/// The predictor Service's port.
pub const PREDICTOR_PORT: i64 = 80;
/// The predictor container's port.
pub const CONTAINER_PORT: i64 = 8080;
/// The training Job, its Service and its pods' `app` label.
pub const FINETUNE: &str = "finetune";
/// The training Job's metrics port.
pub const FINETUNE_PORT: i64 = 8080;
/// The GPU resource the NVIDIA device plugin advertises.
pub const GPU: &str = "nvidia.com/gpu";
/// The label GPU nodes carry (NVIDIA GPU feature discovery / GKE).
pub const GPU_PRESENT: &str = "nvidia.com/gpu.present";
/// Time from container start to the model loaded (duration): the predictor answers
/// predictions only after it (read by the proxy, see `proxy.rs`).
pub const MODEL_LOAD: &str = "sim.playbook.dev/model-load";

fn secs(s: i64) -> String {
    format!("{s}s")
}

fn ns(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name,
        "labels": {"kubernetes.io/metadata.name": name}}})
}

/// A container with resources and one named port.
pub fn container(
    name: &str,
    image: &str,
    port: (&str, i64),
    req: (&str, &str),
    lim: (Option<&str>, &str),
) -> Value {
    let mut limits = json!({"memory": lim.1});
    if let Some(c) = lim.0 {
        limits["cpu"] = json!(c);
    }
    json!({"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": port.0, "containerPort": port.1, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": req.0, "memory": req.1}, "limits": limits}})
}

fn deployment(ns: &str, name: &str, labels: Value, replicas: i64, anns: Value, c: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels.clone()},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels.clone()},
            "template": {"metadata": {"labels": labels, "annotations": anns},
                "spec": {"containers": [c], "terminationGracePeriodSeconds": 30}}}})
}

fn service(ns: &str, name: &str, selector: Value, port: (&str, i64, i64)) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": selector.clone()},
        "spec": {"type": "ClusterIP", "selector": selector,
            "ports": [{"name": port.0, "port": port.1, "targetPort": port.2, "protocol": "TCP"}]}})
}

fn hpa(ns: &str, name: &str, min: i64, max: i64, target: i64) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": min, "maxReplicas": max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": target}}}]}})
}

/// The sklearn-iris InferenceService (RawDeployment mode), as validated by KServe's CRD.
pub fn inference_service(f: &Figures) -> Value {
    json!({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": ISVC, "namespace": KSERVE_NS,
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment",
                "serving.kserve.io/autoscalerClass": "hpa"}},
        "spec": {"predictor": {
            "minReplicas": f.predictor_min_replicas, "maxReplicas": f.predictor_max_replicas,
            "scaleMetric": "cpu", "scaleTarget": f.predictor_cpu_target,
            "model": {"modelFormat": {"name": "sklearn"}, "protocolVersion": "v1",
                "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
                "resources": {
                    "requests": {"cpu": f.predictor_cpu_request, "memory": f.predictor_mem_request},
                    "limits": {"cpu": f.predictor_cpu_limit, "memory": f.predictor_mem_limit}}}}}})
}

/// Every object of the platform except what controllers derive (pods, the predictor).
pub fn all(f: &Figures) -> Vec<Value> {
    let mut out: Vec<Value> = [KSERVE_NS, MLFLOW_NS, ARGO_NS, TRAINING_NS, CHAOS_NS]
        .iter()
        .map(|n| ns(n))
        .collect();
    out.push(inference_service(f));
    out.extend(mlflow(f));
    out.extend(argo(f));
    out.extend(training(f));
    out.extend(chaos_mesh());
    out.extend(finetune(f));
    if f.pdbs {
        out.extend(pdbs());
    }
    out
}

/// GPU node `n` (1-based): a worker with `nvidia.com/gpu` capacity, the label and the
/// `NoSchedule` taint GKE and the NVIDIA GPU operator put on GPU nodes.
pub fn gpu_node(n: usize, f: &Figures, now: &str) -> Value {
    let mut node = crate::controllers::nodes::worker(n, now);
    let name = format!("sim-gpu-{n}");
    let idx = 10 + n;
    node["metadata"]["name"] = json!(name);
    let l = &mut node["metadata"]["labels"];
    l["kubernetes.io/hostname"] = json!(name);
    l["node.kubernetes.io/instance-type"] = json!("sim.gpu-a100x4");
    l[GPU_PRESENT] = json!("true");
    l["nvidia.com/gpu.product"] = json!("NVIDIA-A100-SXM4-40GB");
    l["nvidia.com/gpu.count"] = json!(f.gpus_per_node.to_string());
    node["spec"]["podCIDR"] = json!(format!("10.244.{idx}.0/24"));
    node["spec"]["podCIDRs"] = json!([format!("10.244.{idx}.0/24")]);
    node["spec"]["providerID"] = json!(format!("sim://{name}"));
    node["spec"]["taints"] = json!([{"key": GPU, "value": "present", "effect": "NoSchedule"}]);
    let gpus = f.gpus_per_node.to_string();
    for k in ["capacity", "allocatable"] {
        node["status"][k]["cpu"] = json!("16");
        node["status"][k][GPU] = json!(gpus);
    }
    node["status"]["capacity"]["memory"] = json!("132030720Ki");
    node["status"]["allocatable"]["memory"] = json!("131506432Ki");
    node["status"]["addresses"] = json!([{"type": "InternalIP", "address": format!("172.18.0.{}", idx + 1)},
        {"type": "Hostname", "address": name}]);
    node["status"]["nodeInfo"]["machineID"] = json!(format!("{idx:032x}"));
    node["status"]["nodeInfo"]["systemUUID"] = json!(format!("00000000-0000-0000-0000-{idx:012x}"));
    node
}

/// The `finetune` training Job (batch/v1) on a GPU, and its metrics Service.
fn finetune(f: &Figures) -> Vec<Value> {
    let labels = json!({"app": FINETUNE, "app.kubernetes.io/name": FINETUNE});
    let mut c = container(
        "trainer",
        "ghcr.io/mlops/finetune:1.0.0",
        ("metrics", FINETUNE_PORT),
        ("4", "16Gi"),
        (None, "32Gi"),
    );
    c["resources"]["requests"][GPU] = json!("1");
    c["resources"]["limits"][GPU] = json!("1");
    c["env"] = json!([
        {"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow.mlflow.svc.cluster.local:5000"},
        {"name": "MLFLOW_RUN_ID", "value": FINETUNE},
        {"name": "TOTAL_STEPS", "value": f.training_total_steps.to_string()},
        {"name": "CHECKPOINT_EVERY_STEPS", "value": f.training_checkpoint_every.to_string()},
        {"name": "CHECKPOINT_DIR", "value": if f.training_checkpoint_every > 0 { "/checkpoints" } else { "" }},
        {"name": "LOG_EVERY_STEPS", "value": f.training_log_every.to_string()},
        {"name": "MLFLOW_BUFFER_WHEN_UNREACHABLE", "value": f.training_buffer_metrics.to_string()}]);
    let job = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": FINETUNE, "namespace": TRAINING_NS, "labels": labels.clone()},
        "spec": {"backoffLimit": f.training_backoff_limit,
            "template": {"metadata": {"labels": labels.clone(), "annotations": {
                    model::STARTUP: secs(f.training_startup_s), model::CPU: "3", model::MEMORY: "12Gi"}},
                "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 30,
                    "nodeSelector": {GPU_PRESENT: "true"},
                    "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [c]}}}});
    let svc = service(
        TRAINING_NS,
        FINETUNE,
        json!({"app": FINETUNE}),
        ("metrics", FINETUNE_PORT, FINETUNE_PORT),
    );
    vec![job, svc]
}

/// The PodDisruptionBudgets a platform team sets: the predictor keeps one pod, MLflow loses
/// at most one at a time.
fn pdbs() -> Vec<Value> {
    vec![
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": PREDICTOR, "namespace": KSERVE_NS},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": raw_app_label(PREDICTOR)}}}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "mlflow", "namespace": MLFLOW_NS},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "mlflow"}}}}),
    ]
}

/// MLflow and its PostgreSQL (a StatefulSet with a headless Service).
fn mlflow(f: &Figures) -> Vec<Value> {
    let mut out = Vec::new();
    let ml = json!({"app": "mlflow", "app.kubernetes.io/name": "mlflow", "app.kubernetes.io/component": "tracking-server"});
    let mut c = container(
        "mlflow",
        "ghcr.io/mlflow/mlflow:v2.22.0",
        ("http", MLFLOW_PORT),
        (f.mlflow_cpu_request, f.mlflow_mem_request),
        (None, f.mlflow_mem_limit),
    );
    c["args"] = json!([
        "mlflow",
        "server",
        "--host",
        "0.0.0.0",
        "--port",
        "5000",
        "--backend-store-uri",
        "postgresql://mlflow@postgresql.mlflow.svc.cluster.local:5432/mlflow",
        "--default-artifact-root",
        "s3://mlflow-artifacts/"
    ]);
    let anns = json!({model::STARTUP: secs(f.mlflow_startup_s), model::MEMORY: "380Mi", model::CPU: "60m"});
    out.push(deployment(
        MLFLOW_NS,
        "mlflow",
        ml.clone(),
        f.mlflow_replicas,
        anns,
        c,
    ));
    out.push(service(
        MLFLOW_NS,
        "mlflow",
        ml,
        ("http", MLFLOW_PORT, MLFLOW_PORT),
    ));
    let pg = json!({"app": "postgresql", "app.kubernetes.io/name": "postgresql", "app.kubernetes.io/component": "primary"});
    let mut c = container(
        "postgresql",
        "docker.io/bitnami/postgresql:16.4.0",
        ("tcp-postgresql", POSTGRES_PORT),
        (f.postgres_cpu_request, f.postgres_mem_request),
        (None, f.postgres_mem_limit),
    );
    c["env"] = json!([{"name": "POSTGRES_DB", "value": "mlflow"}, {"name": "POSTGRES_USER", "value": "mlflow"}]);
    out.push(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "postgresql", "namespace": MLFLOW_NS, "labels": pg.clone()},
        "spec": {"replicas": 1, "serviceName": "postgresql-hl", "selector": {"matchLabels": pg.clone()},
            "template": {"metadata": {"labels": pg.clone(), "annotations": {
                model::STARTUP: secs(f.postgres_startup_s), model::MEMORY: "180Mi", model::CPU: "30m"}},
                "spec": {"containers": [c], "terminationGracePeriodSeconds": 30}}}}));
    out.push(service(
        MLFLOW_NS,
        "postgresql",
        pg.clone(),
        ("tcp-postgresql", POSTGRES_PORT, POSTGRES_PORT),
    ));
    let mut hl = service(
        MLFLOW_NS,
        "postgresql-hl",
        pg,
        ("tcp-postgresql", POSTGRES_PORT, POSTGRES_PORT),
    );
    hl["spec"]["clusterIP"] = json!("None");
    hl["spec"]["publishNotReadyAddresses"] = json!(true);
    out.push(hl);
    out
}

/// Argo: the workflow controller and the pipeline runner (the steps' MLflow client).
fn argo(f: &Figures) -> Vec<Value> {
    let mut out = Vec::new();
    let wc = json!({"app": "workflow-controller", "app.kubernetes.io/part-of": "argo-workflows"});
    let mut c = container(
        "workflow-controller",
        "quay.io/argoproj/workflow-controller:v3.6.4",
        ("metrics", 9090),
        ("100m", "128Mi"),
        (None, "512Mi"),
    );
    c["args"] = json!(["--configmap", "workflow-controller-configmap"]);
    out.push(deployment(
        ARGO_NS,
        "workflow-controller",
        wc.clone(),
        1,
        json!({model::CPU: "20m"}),
        c,
    ));
    out.push(service(
        ARGO_NS,
        "workflow-controller-metrics",
        wc,
        ("metrics", 9090, 9090),
    ));
    let pr = json!({"app": "pipeline-runner", "app.kubernetes.io/part-of": "argo-workflows"});
    let mut c = container(
        "pipeline-runner",
        "ghcr.io/mlops/pipeline-runner:1.4.2",
        ("http", RUNNER_PORT),
        ("100m", "256Mi"),
        (None, "512Mi"),
    );
    c["env"] = json!([{"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow.mlflow.svc.cluster.local:5000"},
        {"name": "MLFLOW_CIRCUIT_BREAKER", "value": if f.breaker { "enabled" } else { "disabled" }},
        {"name": "BREAKER_FAILURE_THRESHOLD", "value": f.breaker_failures.to_string()},
        {"name": "BREAKER_COOLDOWN_SECONDS", "value": f.breaker_cooldown_s.to_string()}]);
    out.push(deployment(
        ARGO_NS,
        "pipeline-runner",
        pr.clone(),
        1,
        json!({model::CPU: "15m"}),
        c,
    ));
    out.push(service(
        ARGO_NS,
        "pipeline-runner",
        pr,
        ("http", RUNNER_PORT, RUNNER_PORT),
    ));
    out
}

/// The trainer and its HPA.
fn training(f: &Figures) -> Vec<Value> {
    let mut out = Vec::new();
    let tr = json!({"app": "trainer", "app.kubernetes.io/name": "trainer"});
    let c = container(
        "trainer",
        "ghcr.io/mlops/trainer:2.3.0",
        ("metrics", 8080),
        (f.trainer_cpu_request, f.trainer_mem_request),
        (Some(f.trainer_cpu_limit), f.trainer_mem_limit),
    );
    out.push(deployment(
        TRAINING_NS,
        "trainer",
        tr.clone(),
        f.trainer_replicas,
        json!({model::CPU: f.trainer_cpu_use, model::MEMORY: "900Mi", model::STARTUP: "10s"}),
        c,
    ));
    out.push(service(TRAINING_NS, "trainer", tr, ("metrics", 8080, 8080)));
    if let Some((min, max, target)) = f.trainer_hpa {
        out.push(hpa(TRAINING_NS, "trainer", min, max, target));
    }
    out
}

/// Chaos Mesh (cosmetic): the controller manager; chaos-daemon pods are added per node.
fn chaos_mesh() -> Vec<Value> {
    let mut out = Vec::new();
    let cm = json!({"app.kubernetes.io/name": "chaos-mesh", "app.kubernetes.io/instance": "chaos-mesh",
        "app.kubernetes.io/component": "controller-manager"});
    let c = container(
        "chaos-mesh",
        "ghcr.io/chaos-mesh/chaos-mesh:v2.8.1",
        ("http", 10080),
        ("25m", "256Mi"),
        (None, "1Gi"),
    );
    out.push(deployment(
        CHAOS_NS,
        "chaos-controller-manager",
        cm.clone(),
        1,
        json!({model::CPU: "10m"}),
        c,
    ));
    out.push(service(
        CHAOS_NS,
        "chaos-mesh-controller-manager",
        cm,
        ("http", 10080, 10080),
    ));
    out
}

/// A chaos-daemon pod pinned to `node` (what the chaos-daemon DaemonSet would run), with
/// the DaemonSet's `tolerations` (key, effect).
pub fn chaos_daemon(node: &str, suffix: &str, tolerations: &[(&str, &str)]) -> Value {
    let labels = json!({"app.kubernetes.io/name": "chaos-mesh", "app.kubernetes.io/instance": "chaos-mesh",
        "app.kubernetes.io/component": "chaos-daemon"});
    let mut c = container(
        "chaos-daemon",
        "ghcr.io/chaos-mesh/chaos-daemon:v2.8.1",
        ("grpc", 31767),
        ("25m", "64Mi"),
        (None, "256Mi"),
    );
    c["securityContext"] = json!({"privileged": true});
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("chaos-daemon-{suffix}"), "namespace": CHAOS_NS, "labels": labels,
            "annotations": {model::CPU: "5m"}},
        "spec": {"nodeName": node, "hostPID": true, "containers": [c],
            "tolerations": tolerations.iter().map(|(k, e)| json!({"key": k, "operator": "Exists", "effect": e})).collect::<Vec<_>>()}})
}

/// The label KServe's RawDeployment puts on the predictor's pods (and selects them by):
/// `app: isvc.<isvc>-predictor` (kserve pkg/constants `GetRawServiceLabel`).
pub fn raw_app_label(predictor: &str) -> String {
    format!("isvc.{predictor}")
}

/// The predictor Deployment KServe derives from the InferenceService, labelled as in kserve
/// pkg/controller/v1beta1/inferenceservice/components/predictor.go (`buildObjectMeta`:
/// `serving.kserve.io/inferenceservice`, `component: predictor`) and
/// reconcilers/deployment/deployment_reconciler.go (`createRawDeployment`: `app:
/// isvc.<name>` on the pod template, which shares the labels map with the Deployment, and
/// the selector on `app` alone).
pub fn predictor(isvc: &Value, f: &Figures) -> Value {
    let isvc_name = isvc["metadata"]["name"].as_str().unwrap_or(ISVC);
    let name = format!("{isvc_name}-predictor");
    let ns = isvc["metadata"]["namespace"].as_str().unwrap_or(KSERVE_NS);
    let m = &isvc["spec"]["predictor"]["model"];
    let res = m
        .get("resources")
        .cloned()
        .unwrap_or_else(|| json!({"requests": {"cpu": "1", "memory": "2Gi"}}));
    let min = isvc["spec"]["predictor"]["minReplicas"]
        .as_i64()
        .unwrap_or(1);
    let labels = json!({"serving.kserve.io/inferenceservice": isvc_name,
        "component": "predictor", "app": raw_app_label(&name)});
    // Ready when the model answers `/v1/models/NAME` (loaded), or — built badly — when
    // the server's port accepts connections, before the model loaded.
    let (probe, ready_after) = if f.predictor_ready_before_load {
        (
            json!({"tcpSocket": {"port": CONTAINER_PORT}, "periodSeconds": 2, "failureThreshold": 3}),
            f.predictor_server_start_s,
        )
    } else {
        (
            json!({"httpGet": {"path": format!("/v1/models/{isvc_name}"), "port": CONTAINER_PORT},
                "periodSeconds": 2, "failureThreshold": 3}),
            f.predictor_startup_s,
        )
    };
    let c = json!({"name": "kserve-container", "image": "kserve/sklearnserver:v0.15.2",
        "args": [format!("--model_name={isvc_name}"), "--model_dir=/mnt/models", "--http_port=8080"],
        "env": [{"name": "STORAGE_URI", "value": m["storageUri"]}],
        "ports": [{"name": "http1", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "resources": res});
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels.clone(),
            "ownerReferences": [{"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                "name": isvc_name, "uid": isvc["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"replicas": min, "selector": {"matchLabels": {"app": raw_app_label(&name)}},
            "template": {"metadata": {"labels": labels, "annotations": {
                    "serving.kserve.io/inferenceservice": isvc_name,
                    model::STARTUP: secs(ready_after), MODEL_LOAD: secs(f.predictor_startup_s),
                    model::MEMORY: f.predictor_mem_use}},
                "spec": {"containers": [c], "terminationGracePeriodSeconds": 30}}}})
}

//! Answers calls made through the API server's service proxy: KServe's v1 protocol on the predictor, MLflow's REST API, the pipeline runner's health, and every workload's `/metrics`.
//!
//! A call picks a ready endpoint of the Service (none: the API server's 503). The API server
//! dials that endpoint's pod IP from outside the pod network (`pkg/registry/core/service/proxy.go`
//! resolves a random ready endpoint), so the pod's own NetworkChaos rules act on the exchange:
//! a target-less delay, loss or partition on the pod delays its answers, makes TCP retransmit,
//! or leaves the API server's dial to time out after 30 s (its proxy transport's dialer,
//! `k8s.io/apimachinery/pkg/util/net/http.go` `SetTransportDefaults`), answered as 503
//! `error trying to reach service: dial tcp IP:PORT: i/o timeout`. The service's own
//! downstream hops (MLflow to PostgreSQL) go through the rules too. The answer takes its
//! simulated latency: in virtual time the call moves the simulator's clock forward by it, in
//! wall time it really waits.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::SignedDuration;
use rand::Rng;
use serde_json::{Value, json};

use super::exposition;
use super::objects;
use super::traffic::{Caller, Shared, SharedRef, Via};
use crate::chaos::effects::refuses_connections;
use crate::controllers::util::{deleting, pod_ready};
use crate::error::{ApiError, Reason};
use crate::selector::{FieldSelector, LabelSelector, Requirement};
use crate::store::Store;
use crate::{ClockMode, ProxyRequest, ProxyResponse, ServiceProxy, Sim};

/// The platform's [`ServiceProxy`].
pub struct PlatformProxy {
    shared: SharedRef,
}

impl PlatformProxy {
    /// A proxy answering from `shared`.
    pub fn new(shared: SharedRef) -> Self {
        PlatformProxy { shared }
    }
}

fn reply(status: u16, ctype: &str, body: String) -> ProxyResponse {
    ProxyResponse {
        status,
        headers: vec![("content-type".into(), ctype.into())],
        body: body.into(),
    }
}

fn json_reply(status: u16, v: Value) -> ProxyResponse {
    reply(status, "application/json", v.to_string())
}

/// The ready endpoints of a Service (pods matching its selector).
fn endpoints(store: &Store, svc: &Value) -> Vec<Arc<Value>> {
    let Some(sel) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
        return Vec::new();
    };
    if sel.is_empty() {
        return Vec::new();
    }
    let reqs = sel
        .iter()
        .map(|(k, v)| Requirement::Eq(k.clone(), v.as_str().unwrap_or_default().into()))
        .collect();
    let ns = svc["metadata"]["namespace"].as_str().unwrap_or_default();
    let Some(res) = store.registry().lookup("pods") else {
        return Vec::new();
    };
    store
        .list(
            res,
            Some(ns),
            &LabelSelector { reqs },
            &FieldSelector::default(),
        )
        .into_iter()
        .filter(|p| pod_ready(p) && !deleting(p))
        .collect()
}

/// The iris classifier: setosa (0), versicolor (1), virginica (2). A small deterministic
/// rule set, the classic decision tree over the iris data (petal length <= 2.45: setosa;
/// else petal width <= 1.75 and petal length <= 4.95: versicolor; else virginica), standing
/// for the model at `gs://kfserving-examples/models/sklearn/1.0/model`: it answers KServe's
/// sklearn-iris example `[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]` with `[1,1]`, a setosa
/// `[5.1,3.5,1.4,0.2]` with 0, a virginica `[6.9,3.1,5.4,2.1]` with 2.
fn classify(instance: &Value) -> Option<i64> {
    let xs: Vec<f64> = instance
        .as_array()?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    if xs.len() != 4 {
        return None;
    }
    let (petal_length, petal_width) = (xs[2], xs[3]);
    Some(if petal_length <= 2.45 {
        0
    } else if petal_width <= 1.75 && petal_length <= 4.95 {
        1
    } else {
        2
    })
}

/// True once the predictor's kserve-container has loaded its model: its container has run
/// for the pod's [`objects::MODEL_LOAD`] (when absent: loaded once Ready).
pub(super) fn model_loaded(pod: &Value, now: jiff::Timestamp) -> bool {
    let Some(load) =
        crate::controllers::model::duration(pod, objects::MODEL_LOAD, "kserve-container")
    else {
        return true;
    };
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|c| c["name"] == "kserve-container"))
        .and_then(|c| c.pointer("/state/running/startedAt"))
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .is_some_and(|started| started + load <= now)
}

fn predictor(
    sh: &mut Shared,
    pod: &Value,
    model: &str,
    req: &ProxyRequest,
    now: jiff::Timestamp,
) -> (ProxyResponse, f64) {
    let path = req.path.as_str();
    let (code, secs) = sh.predict(super::traffic::saturation(pod));
    let base = format!("/v1/models/{model}");
    // The server is up but the model is still loading: kserve python/kserve/kserve/errors.py
    // `ModelNotReady` ("Model with name NAME is not ready."), answered 503 by its handler,
    // for the model's readiness and for predictions alike.
    let not_ready = || {
        json_reply(
            503,
            json!({"error": format!("Model with name {model} is not ready.")}),
        )
    };
    let model_path =
        path == base || path == format!("{base}/") || path == format!("{base}:predict");
    let resp = if model_path && !model_loaded(pod, now) {
        not_ready()
    } else if path == base || path == format!("{base}/") {
        json_reply(200, json!({"name": model, "ready": true}))
    } else if path == format!("{base}:predict") && req.method == "POST" {
        let body: Option<Value> = serde_json::from_slice(&req.body).ok();
        match body
            .as_ref()
            .and_then(|b| b.get("instances"))
            .and_then(Value::as_array)
        {
            Some(inst) => match inst.iter().map(classify).collect::<Option<Vec<i64>>>() {
                Some(p) => json_reply(code, json!({"predictions": p})),
                None => json_reply(
                    400,
                    json!({"error": "Expected each instance to have 4 numeric features"}),
                ),
            },
            None => json_reply(400, json!({"error": "Expected \"instances\" to be a list"})),
        }
    } else if path.starts_with("/v1/models/") {
        json_reply(
            404,
            json!({"error": format!("Model with name {} does not exist.", path.trim_start_matches("/v1/models/").split(':').next().unwrap_or_default())}),
        )
    } else if path == "/" {
        json_reply(200, json!({"status": "alive"}))
    } else {
        json_reply(404, json!({"detail": "Not Found"}))
    };
    sh.flows
        .entry("predictor")
        .or_default()
        .record(resp.status, secs);
    (resp, secs)
}

fn mlflow(sh: &mut Shared, store: &Store, req: &ProxyRequest) -> (ProxyResponse, f64) {
    let path = req.path.trim_end_matches('/');
    let f = sh.figures.clone();
    let (trips, body) = match path {
        "/health" => (0, None),
        "/api/2.0/mlflow/experiments/search" => (
            f.db_round_trips_search,
            Some(json!({"experiments": [
                {"experiment_id": "0", "name": "Default", "artifact_location": "s3://mlflow-artifacts/0", "lifecycle_stage": "active"},
                {"experiment_id": "1", "name": "training-pipeline", "artifact_location": "s3://mlflow-artifacts/1", "lifecycle_stage": "active"}]})),
        ),
        "/api/2.0/mlflow/runs/search" => (
            f.db_round_trips_search,
            Some(
                json!({"runs": [{"info": {"run_id": "5f1c0ffee", "experiment_id": "1", "status": "FINISHED",
                "lifecycle_stage": "active"}, "data": {"metrics": [{"key": "accuracy", "value": 0.967, "step": 0}]}}]}),
            ),
        ),
        "/api/2.0/mlflow/runs/log-metric" if req.method == "POST" => {
            (f.db_round_trips_log, Some(json!({})))
        }
        // mlflow/server/handlers.py `get_metric_history` (GET, run_id and metric_key).
        "/api/2.0/mlflow/metrics/get-history" => {
            let q = query(req);
            let run = q.iter().find(|(k, _)| k == "run_id" || k == "run_uuid");
            let key = q.iter().find(|(k, _)| k == "metric_key");
            let (Some((_, run)), Some((_, key))) = (run, key) else {
                let missing = if key.is_none() {
                    "metric_key"
                } else {
                    "run_id"
                };
                return (
                    json_reply(
                        400,
                        json!({"error_code": "INVALID_PARAMETER_VALUE",
                        "message": format!("Missing value for required parameter '{missing}'. See the API docs for more information about request parameters.")}),
                    ),
                    0.002,
                );
            };
            match super::training::history(&sh.training, run, key) {
                Some(b) => (f.db_round_trips_search, Some(b)),
                None => {
                    return (
                        json_reply(
                            404,
                            json!({"error_code": "RESOURCE_DOES_NOT_EXIST",
                            "message": format!("Run with id={run} not found")}),
                        ),
                        0.002,
                    );
                }
            }
        }
        _ => {
            return (
                json_reply(
                    404,
                    json!({"error_code": "ENDPOINT_NOT_FOUND",
                    "message": format!("No API endpoint found for {}", req.path)}),
                ),
                0.002,
            );
        }
    };
    let view = sh.view(store);
    let (code, secs) = sh.mlflow_call(store, &view, Caller::Reached, trips);
    let resp = match (code, body) {
        (200, None) => reply(200, "text/plain; charset=utf-8", "OK".into()),
        (200, Some(b)) => json_reply(200, b),
        (504, _) => reply(504, "text/plain", "upstream request timeout".into()),
        (503, _) => json_reply(
            503,
            json!({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "MLflow is unavailable"}),
        ),
        _ => json_reply(
            500,
            json!({"error_code": "INTERNAL_ERROR",
            "message": "(psycopg2.OperationalError) connection to server at \"postgresql.mlflow.svc.cluster.local\" (5432) failed: timeout expired"}),
        ),
    };
    (resp, secs)
}

/// The query's parameters, percent-decoded.
fn query(req: &ProxyRequest) -> Vec<(String, String)> {
    let decode = |s: &str| crate::api::percent_decode(&s.replace('+', " "));
    req.query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn runner_health(sh: &Shared) -> ProxyResponse {
    let breaker = match &sh.breaker {
        Some(b) => json!({"state": b.state.name(), "consecutiveFailures": b.consecutive,
            "failureThreshold": b.threshold, "cooldownSeconds": b.cooldown.as_secs(),
            "failuresTotal": b.failures_total, "successesTotal": b.successes_total,
            "rejectedTotal": b.rejected_total, "openedTotal": b.opened_total,
            "lastTransitionTime": b.last_transition.map(|t| t.to_string())}),
        None => json!({"state": "disabled", "failuresTotal": sh.log_failures}),
    };
    json_reply(
        200,
        json!({"status": "ok",
        "mlflow": {"trackingUri": "http://mlflow.mlflow.svc.cluster.local:5000", "circuitBreaker": breaker},
        "fallback": {"enabled": sh.breaker.is_some(), "bufferedRuns": sh.buffer.runs.len(),
            "bufferedMetrics": sh.buffer.metrics(), "flushedRuns": sh.buffer.flushed_runs,
            "droppedRuns": sh.buffer.dropped_runs},
        "loggedMetrics": sh.logged_metrics}),
    )
}

/// The answer to one proxied call and its simulated latency (None: no ready endpoint).
fn answer(sh: &mut Shared, store: &Store, req: &ProxyRequest) -> Option<(ProxyResponse, f64)> {
    let svc_res = store.registry().lookup("services")?;
    let svc = store.get(svc_res, &req.namespace, &req.service)?.clone();
    let eps = endpoints(store, &svc);
    if eps.is_empty() {
        return None;
    }
    let pod = eps[sh.rng.random_range(0..eps.len())].clone();
    if refuses_connections(&pod) {
        return Some((
            unreachable(&svc, &pod, req, "connect: connection refused"),
            0.001,
        ));
    }
    let net = match sh.call(store, None, &pod, Via::PodIp, DIAL_TIMEOUT_S) {
        Ok(s) => s,
        Err(g) => return Some((unreachable(&svc, &pod, req, "i/o timeout"), g.waited_s)),
    };
    let (resp, secs) = serve(sh, store, req, &pod)?;
    Some((resp, secs + net))
}

/// The API server proxy dialer's timeout, seconds.
pub const DIAL_TIMEOUT_S: f64 = 30.0;

/// The API server's answer when the endpoint it dialled did not answer (`why`: `i/o timeout`,
/// `connect: connection refused`).
fn unreachable(svc: &Value, pod: &Value, req: &ProxyRequest, why: &str) -> ProxyResponse {
    let ip = pod["status"]["podIP"].as_str().unwrap_or_default();
    let port = target_port(svc, req.port.as_deref());
    let e = ApiError::new(
        Reason::ServiceUnavailable,
        format!("error trying to reach service: dial tcp {ip}:{port}: {why}"),
    );
    json_reply(503, e.status())
}

/// The target port of the Service port `port` names (its first port when None).
fn target_port(svc: &Value, port: Option<&str>) -> String {
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let p = ports
        .iter()
        .find(|p| {
            port.is_none_or(|want| {
                p["name"].as_str() == Some(want)
                    || p["port"].as_i64().is_some_and(|n| n.to_string() == want)
            })
        })
        .or(ports.first());
    match p {
        Some(p) if !p["targetPort"].is_null() => match &p["targetPort"] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        },
        Some(p) => p["port"].to_string(),
        None => "80".into(),
    }
}

/// What the pod answers once the call reached it, and its latency.
fn serve(
    sh: &mut Shared,
    store: &Store,
    req: &ProxyRequest,
    pod: &Value,
) -> Option<(ProxyResponse, f64)> {
    let pod = pod.clone();
    let app = pod["metadata"]["labels"]["app"]
        .as_str()
        .or_else(|| pod["metadata"]["labels"]["app.kubernetes.io/component"].as_str())
        .unwrap_or_default()
        .to_string();
    if req.path == "/metrics" {
        let text = exposition::render(sh, store, &req.namespace, &app, &pod);
        return Some(match text {
            Some(t) => (reply(200, exposition::CONTENT_TYPE, t), 0.003),
            None => (
                reply(404, "text/plain", "404 page not found\n".into()),
                0.001,
            ),
        });
    }
    let isvc = pod["metadata"]["labels"]["serving.kserve.io/inferenceservice"]
        .as_str()
        .map(str::to_string);
    Some(match (isvc, app.as_str()) {
        (Some(model), _) => predictor(sh, &pod, &model, req, store.now()),
        (None, "mlflow") => mlflow(sh, store, req),
        (None, "pipeline-runner") if req.path.trim_end_matches('/') == "/health" => {
            (runner_health(sh), 0.002)
        }
        (None, "postgresql") => (
            reply(
                502,
                "text/plain",
                "Error trying to reach service: 'EOF'".into(),
            ),
            0.001,
        ),
        _ => (
            reply(404, "text/plain", "404 page not found\n".into()),
            0.001,
        ),
    })
}

impl ServiceProxy for PlatformProxy {
    fn handle(&self, sim: &Sim, req: ProxyRequest) -> BoxFuture<'static, Option<ProxyResponse>> {
        let wall = sim.config().clock == ClockMode::Wall;
        let out = {
            let mut w = sim.lock();
            let out = {
                let mut sh = self.shared.lock().unwrap_or_else(|e| e.into_inner());
                answer(&mut sh, w.store(), &req)
            };
            if let (Some((_, secs)), false) = (&out, wall) {
                let d = SignedDuration::from_secs_f64(secs.clamp(0.0, 3600.0));
                let t = w.now().checked_add(d).unwrap_or(w.now());
                w.advance_to(t);
            }
            out
        };
        Box::pin(async move {
            let (resp, secs) = out?;
            if wall {
                tokio::time::sleep(Duration::from_secs_f64(secs.clamp(0.0, 3600.0))).await;
            }
            Some(resp)
        })
    }
}

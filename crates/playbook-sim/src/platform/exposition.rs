//! The platform's Prometheus metrics in the text exposition format (version 0.0.4), served at `/metrics` through the service proxy.

use std::fmt::Write;

use serde_json::Value;

use super::traffic::{BUCKETS, Shared, ready_pods};
use crate::controllers::model;
use crate::store::Store;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

fn requests(out: &mut String, sh: &Shared, flow: &str) {
    let f = sh.flows.get(flow).cloned().unwrap_or_default();
    help(
        out,
        "http_requests_total",
        "counter",
        "Requests served, by status code.",
    );
    if f.by_code.is_empty() {
        let _ = writeln!(out, "http_requests_total{{app=\"{flow}\",code=\"200\"}} 0");
    }
    for (code, n) in &f.by_code {
        let _ = writeln!(
            out,
            "http_requests_total{{app=\"{flow}\",code=\"{code}\"}} {n}"
        );
    }
    help(
        out,
        "http_request_duration_seconds",
        "histogram",
        "Request latency as the server measures it.",
    );
    let mut cum = 0;
    for (i, b) in BUCKETS.iter().enumerate() {
        cum += f.buckets[i];
        let _ = writeln!(
            out,
            "http_request_duration_seconds_bucket{{app=\"{flow}\",le=\"{b}\"}} {cum}"
        );
    }
    let _ = writeln!(
        out,
        "http_request_duration_seconds_bucket{{app=\"{flow}\",le=\"+Inf\"}} {}",
        f.count
    );
    let _ = writeln!(
        out,
        "http_request_duration_seconds_sum{{app=\"{flow}\"}} {:.6}",
        f.sum_s
    );
    let _ = writeln!(
        out,
        "http_request_duration_seconds_count{{app=\"{flow}\"}} {}",
        f.count
    );
}

fn resources(out: &mut String, store: &Store, ns: &str, app: &str) {
    help(
        out,
        "pod_cpu_usage_cores",
        "gauge",
        "CPU used by each ready pod.",
    );
    let pods = ready_pods(store, ns, app);
    let mut mem = String::new();
    for p in &pods {
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        let (mut cpu, mut bytes) = (0, 0);
        for c in model::containers(p) {
            let (a, b) = model::container_use(p, c);
            cpu += a;
            bytes += b;
        }
        let _ = writeln!(
            out,
            "pod_cpu_usage_cores{{namespace=\"{ns}\",pod=\"{name}\"}} {:.3}",
            cpu as f64 / 1000.0
        );
        let _ = writeln!(
            mem,
            "pod_memory_working_set_bytes{{namespace=\"{ns}\",pod=\"{name}\"}} {bytes}"
        );
    }
    help(
        out,
        "pod_memory_working_set_bytes",
        "gauge",
        "Memory working set of each ready pod.",
    );
    out.push_str(&mem);
}

/// The `/metrics` text of the workload `app` in `ns` (None: it exports none).
pub fn render(sh: &Shared, store: &Store, ns: &str, app: &str, pod: &Value) -> Option<String> {
    let mut out = String::new();
    match app {
        "mlflow" => mlflow(&mut out, sh),
        "pipeline-runner" => pipeline_runner(&mut out, sh),
        "workflow-controller" => workflow_controller(&mut out, store),
        "trainer" => {}
        super::objects::FINETUNE => training(&mut out, sh, pod),
        a if a.ends_with("-predictor") => requests(&mut out, sh, "predictor"),
        _ => return None,
    }
    resources(&mut out, store, ns, app);
    Some(out)
}

/// MLflow's request, database and backlog metrics.
fn mlflow(out: &mut String, sh: &Shared) {
    requests(out, sh, "mlflow");
    help(
        out,
        "mlflow_db_queries_total",
        "counter",
        "Queries sent to PostgreSQL.",
    );
    let q = sh.flows.get("postgresql").map_or(0, |f| f.count);
    let _ = writeln!(out, "mlflow_db_queries_total {q}");
    help(
        out,
        "mlflow_request_backlog",
        "gauge",
        "Requests waiting for a worker.",
    );
    let _ = writeln!(out, "mlflow_request_backlog {:.1}", sh.backlog);
}

/// The pipeline runner's MLflow client: breaker, failures, buffer.
fn pipeline_runner(out: &mut String, sh: &Shared) {
    requests(out, sh, "pipeline-runner");
    let b = sh.breaker.as_ref();
    help(
        out,
        "mlflow_client_circuit_breaker_state",
        "gauge",
        "The MLflow client's circuit breaker: 0 closed, 1 open, 2 half-open (absent: no breaker).",
    );
    if let Some(b) = b {
        let _ = writeln!(
            out,
            "mlflow_client_circuit_breaker_state {}",
            b.state.gauge()
        );
        let rows = [
            (
                "mlflow_client_consecutive_failures",
                "gauge",
                u64::from(b.consecutive),
            ),
            (
                "mlflow_client_breaker_opened_total",
                "counter",
                b.opened_total,
            ),
            (
                "mlflow_client_rejected_calls_total",
                "counter",
                b.rejected_total,
            ),
        ];
        for (n, k, v) in rows {
            help(out, n, k, "See the pipeline runner's /health.");
            let _ = writeln!(out, "{n} {v}");
        }
    }
    let rows = [
        ("mlflow_client_failures_total", "counter", sh.log_failures),
        (
            "mlflow_client_logged_metrics_total",
            "counter",
            sh.logged_metrics,
        ),
        (
            "mlflow_client_buffered_runs",
            "gauge",
            sh.buffer.runs.len() as u64,
        ),
        (
            "mlflow_client_buffered_metrics",
            "gauge",
            sh.buffer.metrics(),
        ),
        (
            "mlflow_client_flushed_runs_total",
            "counter",
            sh.buffer.flushed_runs,
        ),
    ];
    for (n, k, v) in rows {
        help(out, n, k, "See the pipeline runner's /health.");
        let _ = writeln!(out, "{n} {v}");
    }
}

/// Argo's workflow count by phase.
fn workflow_controller(out: &mut String, store: &Store) {
    help(out, "argo_workflows_count", "gauge", "Workflows by phase.");
    let mut by: std::collections::BTreeMap<String, u64> = Default::default();
    if let Some(res) = store.registry().lookup("workflows.argoproj.io") {
        for w in store.list(res, None, &Default::default(), &Default::default()) {
            let p = w
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Pending");
            *by.entry(p.to_string()).or_default() += 1;
        }
    }
    for p in ["Pending", "Running", "Succeeded", "Failed", "Error"] {
        let _ = writeln!(
            out,
            "argo_workflows_count{{status=\"{p}\"}} {}",
            by.get(p).copied().unwrap_or(0)
        );
    }
}

/// The training loop's gauges and counters as the process in `pod` exports them (see
/// `training.rs`).
fn training(out: &mut String, sh: &Shared, pod: &Value) {
    let t = &sh.training;
    let f = &sh.figures;
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let (step, resumed_from) = t.seen_by(uid, f.training_checkpoint_every);
    let gauges: [(&str, &str, String); 7] = [
        (
            "training_step",
            "The step the training loop reached.",
            step.to_string(),
        ),
        (
            "training_resumed_from_step",
            "The step the current pod started from: the checkpoint it restored (0: it started over).",
            resumed_from.to_string(),
        ),
        (
            "training_checkpoint_step",
            "The step of the last checkpoint written to the volume (0: none).",
            t.checkpoint_step.to_string(),
        ),
        (
            "training_checkpoint_interval_steps",
            "Steps between checkpoints (0: checkpointing is off).",
            f.training_checkpoint_every.to_string(),
        ),
        (
            "training_samples_per_second",
            "Training throughput.",
            format!("{:.1}", t.steps_per_s * f.training_batch_size as f64),
        ),
        (
            "training_total_steps",
            "Steps of the whole run.",
            f.training_total_steps.to_string(),
        ),
        (
            "training_mlflow_buffered_metrics",
            "Metrics held while MLflow is unreachable.",
            t.buffered.len().to_string(),
        ),
    ];
    for (n, h, v) in gauges {
        help(out, n, "gauge", h);
        let _ = writeln!(out, "{n} {v}");
    }
    let counters = [
        (
            "training_mlflow_logged_metrics_total",
            "Metrics MLflow accepted.",
            t.logged_total,
        ),
        (
            "training_mlflow_dropped_metrics_total",
            "Metrics lost while MLflow was unreachable.",
            t.dropped_total,
        ),
    ];
    for (n, h, v) in counters {
        help(out, n, "counter", h);
        let _ = writeln!(out, "{n} {v}");
    }
}

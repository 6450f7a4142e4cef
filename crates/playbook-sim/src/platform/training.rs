//! The `finetune` training loop: steps on a GPU, checkpoints to a volume every N steps, resumes from the last checkpoint in a new pod (or starts over without one), and logs its loss to MLflow through the traffic model, buffering or dropping while MLflow is unreachable.
//!
//! The Job controller (`crate::controllers::job`) replaces a killed, evicted or failed pod;
//! this model is what runs inside: once the pod is Ready (its container started and spent
//! [`Figures::training_startup_s`] loading data, the model and the checkpoint), it makes
//! [`Figures::training_steps_per_s`] steps per second, slowed by CPU saturation of the pod
//! (a StressChaos on it), and stops when its container stops. The checkpoint volume's
//! content (the last checkpointed step) is kept by the simulator per Job uid, standing for a
//! PersistentVolumeClaim the simulator does not model: a new pod of the same Job reads it,
//! a new Job starts from nothing. Without checkpoints ([`Figures::training_checkpoint_every`]
//! 0, the fragile platform) a new pod starts over from step 0.
//!
//! Every [`Figures::training_log_every`] steps it logs `loss` (a deterministic decreasing
//! function of the step) with `runs/log-metric` from its pod through MLflow's Service, so
//! NetworkChaos between `training` and `mlflow`, or MLflow being down, makes the call fail.
//! Its client then keeps the metric in memory and sends the backlog with the next call that
//! succeeds (`training_buffer_metrics`), or drops it and counts it. The buffer lives in the
//! process: a killed pod loses it (counted as dropped). What MLflow stored is answered by
//! `metrics/get-history` (see `proxy.rs`). When the last step is done the container exits 0
//! and the Job completes.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::objects::{FINETUNE, TRAINING_NS};
use super::scenario::Figures;
use super::traffic::{Caller, Shared, View, saturation};
use crate::controllers::util::{deleting, pod_ready, s};
use crate::store::Store;
use crate::world::Ctx;

/// One metric as MLflow stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The step it was logged at.
    pub step: u64,
    /// Its value.
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
}

/// The training state of the `finetune` Job (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct Training {
    /// The Job uid this state belongs to.
    pub job_uid: String,
    /// The pod (uid) training now.
    pub pod_uid: String,
    /// Progress of the current pod, in steps (fractional between ticks).
    pub progress: f64,
    /// The step the current pod resumed from.
    pub resumed_from: u64,
    /// The last checkpointed step on the volume (0: none).
    pub checkpoint_step: u64,
    /// Steps per second now (0 when not training).
    pub steps_per_s: f64,
    /// Metrics the client holds while MLflow is unreachable.
    pub buffered: Vec<Metric>,
    /// Metrics MLflow stored, in the order they arrived.
    pub history: Vec<Metric>,
    /// Metrics that reached MLflow.
    pub logged_total: u64,
    /// Metrics lost (not buffered, or in the buffer of a killed pod).
    pub dropped_total: u64,
    /// The training pod was told to exit (the last step is done).
    pub finished: bool,
}

impl Training {
    /// The current step.
    pub fn step(&self) -> u64 {
        self.progress.floor().max(0.0) as u64
    }

    /// (step, step resumed from) as the process in the pod `pod_uid` reports them: a pod the
    /// loop has not ticked yet has just restored the checkpoint (or started over) and made no
    /// step since.
    pub fn seen_by(&self, pod_uid: &str, checkpoint_every: u64) -> (u64, u64) {
        if pod_uid == self.pod_uid {
            return (self.step(), self.resumed_from);
        }
        let from = if checkpoint_every > 0 {
            self.checkpoint_step
        } else {
            0
        };
        (from, from)
    }
}

/// The loss at `step`: a deterministic decreasing curve.
pub fn loss(step: u64) -> f64 {
    let x = 2.3 * (-(step as f64) / 900.0).exp() + 0.12;
    (x * 10_000.0).round() / 10_000.0
}

/// The training pod running now: labelled `app=finetune`, Ready, not being deleted.
fn running_pod(store: &Store) -> Option<std::sync::Arc<Value>> {
    super::traffic::ready_pods(store, TRAINING_NS, FINETUNE)
        .into_iter()
        .find(|p| p["status"]["phase"] == "Running" && !deleting(p))
}

/// One second of training (called by the traffic model's tick). Returns the pod to stop
/// when the last step is done.
pub fn tick(
    sh: &mut Shared,
    store: &Store,
    view: &View,
    now: Timestamp,
) -> Option<std::sync::Arc<Value>> {
    let f: Figures = sh.figures.clone();
    let job_uid = store
        .registry()
        .lookup("jobs.batch")
        .and_then(|id| store.get(id, TRAINING_NS, FINETUNE))
        .map(|j| s(j, "/metadata/uid").to_string())?;
    if sh.training.job_uid != job_uid {
        sh.training = Training {
            job_uid,
            ..Training::default()
        };
    }
    let Some(pod) = running_pod(store).filter(|p| pod_ready(p)) else {
        sh.training.steps_per_s = 0.0;
        return None;
    };
    let uid = s(&pod, "/metadata/uid").to_string();
    if sh.training.pod_uid != uid {
        // A new pod: the old one's in-memory buffer is gone; resume from the checkpoint.
        let t = &mut sh.training;
        t.dropped_total += t.buffered.len() as u64;
        t.buffered.clear();
        t.pod_uid = uid;
        t.resumed_from = if f.training_checkpoint_every > 0 {
            t.checkpoint_step
        } else {
            0
        };
        t.progress = t.resumed_from as f64;
        t.finished = false;
    }
    if sh.training.finished {
        sh.training.steps_per_s = 0.0;
        return None;
    }
    let rate = f.training_steps_per_s / saturation(&pod);
    let before = sh.training.step();
    let total = f.training_total_steps;
    sh.training.progress = (sh.training.progress + rate).min(total as f64);
    sh.training.steps_per_s = rate;
    let after = sh.training.step();
    for step in before + 1..=after {
        if f.training_checkpoint_every > 0 && step % f.training_checkpoint_every == 0 {
            sh.training.checkpoint_step = step;
        }
        if f.training_log_every > 0 && step % f.training_log_every == 0 {
            let m = Metric {
                step,
                value: loss(step),
                timestamp_ms: now.as_millisecond(),
            };
            log(sh, store, view, &pod, m);
        }
    }
    if after >= total {
        if f.training_checkpoint_every > 0 {
            sh.training.checkpoint_step = total;
        }
        sh.training.finished = true;
        sh.training.steps_per_s = 0.0;
        return Some(pod);
    }
    None
}

/// Logs one metric (and, when the call succeeds, the buffered backlog first, as a batch).
fn log(sh: &mut Shared, store: &Store, view: &View, pod: &Value, m: Metric) {
    let trips = sh.figures.db_round_trips_log;
    let (code, _) = sh.mlflow_call(store, view, Caller::Pod(pod), trips);
    let t = &mut sh.training;
    if code == 200 {
        let backlog = std::mem::take(&mut t.buffered);
        t.logged_total += backlog.len() as u64 + 1;
        t.history.extend(backlog);
        t.history.push(m);
    } else if sh.figures.training_buffer_metrics {
        t.buffered.push(m);
    } else {
        t.dropped_total += 1;
    }
}

/// Stops the training container: it exits 0 now (the last step is done).
pub fn finish(ctx: &mut Ctx<'_>, pod: &Value, now: Timestamp) {
    super::traffic::stop_container(ctx, pod, now, 0);
}

/// MLflow's `metrics/get-history` answer for `run_id` and `key` (None: unknown run).
pub fn history(t: &Training, run_id: &str, key: &str) -> Option<Value> {
    if run_id != FINETUNE || t.job_uid.is_empty() {
        return None;
    }
    let metrics: Vec<Value> = if key == "loss" {
        t.history
            .iter()
            .map(|m| json!({"key": "loss", "value": m.value, "timestamp": m.timestamp_ms, "step": m.step}))
            .collect()
    } else {
        Vec::new()
    };
    Some(json!({"metrics": metrics}))
}

//! The platform's past: what happened to it during the warm-up, so that a run meets pods with a history, as on a cluster that has been up for a while.
//!
//! Two things that happen on real installs, each through the ordinary pod model (nothing is
//! written into a status by hand; the kubelet model does the rest):
//! - **MLflow started before PostgreSQL accepted connections**: the first MLflow container
//!   exits with code 1 after a few seconds (`sqlalchemy ... could not connect to server`),
//!   and the kubelet restarts it (restartCount 1, `lastState.terminated` Error, exit 1).
//! - **A predictor OOMKilled once while loading its model**: one predictor pod (chosen with
//!   the seed) briefly needs more memory than its limit; the kubelet OOMKills it (exit 137,
//!   `lastState.terminated.reason` OOMKilled), restarts it, and it loads the model again.
//!
//! Both happen only before the run starts ([`History::new`]'s `until`); afterwards the
//! controller does nothing. The fragile platform gets the same history: it stays fragile
//! for the reasons of [`super::Figures::fragile`], and is Ready when the run starts.

use jiff::{SignedDuration, Timestamp};
use rand::Rng;
use serde_json::{Value, json};

use super::objects::{KSERVE_NS, MLFLOW_NS, PREDICTOR, raw_app_label};
use crate::controllers::model::{self, STRESS_MEMORY};
use crate::controllers::util::{pod_ready, s};
use crate::selector::LabelSelector;
use crate::world::{Controller, Ctx};

/// Plays the platform's past during the warm-up. See the module doc.
pub struct History {
    until: Timestamp,
    mlflow_done: bool,
    oom_at: Option<Timestamp>,
    oom_done: bool,
}

impl History {
    /// A history that ends at `until` (the start of the run).
    pub fn new(until: Timestamp) -> Self {
        History {
            until,
            mlflow_done: false,
            oom_at: None,
            oom_done: false,
        }
    }

    fn pods(ctx: &Ctx<'_>, ns: &str, app: &str) -> Vec<std::sync::Arc<Value>> {
        let sel =
            LabelSelector::from_json(&json!({"matchLabels": {"app": app}})).unwrap_or_default();
        ctx.list_selected("pods", Some(ns), &sel)
    }

    /// MLflow's first container exits with code 1 (no database yet); once it has restarted,
    /// the annotations go and it runs for good.
    fn mlflow(&mut self, ctx: &mut Ctx<'_>) {
        for p in Self::pods(ctx, MLFLOW_NS, "mlflow") {
            let name = s(&p, "/metadata/name").to_string();
            let restarts = p
                .pointer("/status/containerStatuses/0/restartCount")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let marked = model::annotation(&p, model::RUN_FOR, "mlflow").is_some();
            let patch = if restarts >= 1 && marked {
                self.mlflow_done = true;
                json!({"metadata": {"annotations": {model::RUN_FOR: null, model::EXIT_CODE: null}}})
            } else if restarts == 0 && !marked && !self.mlflow_done {
                json!({"metadata": {"annotations": {model::RUN_FOR: "4s", model::EXIT_CODE: "1"}}})
            } else {
                continue;
            };
            let _ = ctx.patch("pods", MLFLOW_NS, &name, &patch);
        }
    }

    /// Once the predictors are Ready, one of them (seeded) gets a memory spike above its
    /// limit at a seeded time; the kubelet OOMKills it and drops the load with it.
    fn predictor_oom(&mut self, ctx: &mut Ctx<'_>) {
        let pods = Self::pods(ctx, KSERVE_NS, &raw_app_label(PREDICTOR));
        if pods.is_empty() || !pods.iter().all(|p| pod_ready(p)) {
            return;
        }
        let now = ctx.now();
        let at = match self.oom_at {
            Some(t) => t,
            None => {
                let delay = SignedDuration::from_secs(ctx.rng().random_range(10..40));
                let t = now + delay;
                self.oom_at = Some(t);
                ctx.wake_at(t);
                return;
            }
        };
        if now < at {
            ctx.wake_at(at);
            return;
        }
        self.oom_done = true;
        let victim = &pods[ctx.rng().random_range(0..pods.len())];
        let name = s(victim, "/metadata/name").to_string();
        let patch = json!({"metadata": {"annotations": {STRESS_MEMORY: "2Gi"}}});
        let _ = ctx.patch("pods", KSERVE_NS, &name, &patch);
    }
}

impl Controller for History {
    fn name(&self) -> &'static str {
        "platform-history"
    }
    fn watches(&self) -> &'static [&'static str] {
        &["pods"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        if ctx.now() >= self.until {
            return;
        }
        self.mlflow(ctx);
        if !self.oom_done {
            self.predictor_oom(ctx);
        }
    }
}

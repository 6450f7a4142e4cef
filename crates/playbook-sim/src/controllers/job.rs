//! The Job controller (batch/v1): pods from the template until `completions` succeed, a
//! replacement for each failed or deleted pod after the failure back-off, `backoffLimit`, and
//! the status a v1.32 cluster shows (active, ready, terminating, succeeded, failed, conditions).
//!
//! Modelled on pkg/controller/job/job_controller.go (`syncJob`, `manageJob`,
//! `trackJobStatusAndRemoveFinalizers`) for NonIndexed Jobs:
//! - Every pod it creates (`<job>-<5 chars>`, owned by the Job, labels from the template that
//!   the API server completed with `batch.kubernetes.io/job-name`, `job-name` and the
//!   controller-uid labels) carries the `batch.kubernetes.io/job-tracking` finalizer; a pod is
//!   counted once, when it finished, and the finalizer is then removed (a pod without it was
//!   counted already). The `uncountedTerminatedPods` hand-off is done in the same write
//!   (simplified: one status write instead of two).
//! - `podReplacementPolicy` as v1.32 defaults it (`TerminatingOrFailed`, JobPodReplacementPolicy
//!   beta): a pod being deleted counts as failed at once (`isPodFailed`) and its replacement
//!   does not wait for it to terminate; `Failed` waits until it is terminal. `status.terminating`
//!   counts the pods being deleted.
//! - The failure back-off (`DefaultJobPodFailureBackOff` 10 s, doubling per consecutive
//!   failure, at most `MaxJobPodFailureBackOff` 6 min, from the last failure) delays a
//!   replacement, as `getNewFinishedPods`/`newBackoffRecord` do.
//! - `failed > backoffLimit`: `FailureTarget` (reason `BackoffLimitExceeded`, "Job has reached
//!   the specified backoff limit"), the active pods are deleted, then `Failed` once none is
//!   terminating. `succeeded >= completions`: `SuccessCriteriaMet` then `Complete` and
//!   `completionTime` (the delayed terminal conditions of v1.31+).
//!
//! Not modelled: Indexed completion, podFailurePolicy, successPolicy, suspend,
//! activeDeadlineSeconds, ttlSecondsAfterFinished, backoffLimitPerIndex.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::reconcile::{Action, Reconcile};
use super::replicaset::pod_from_template;
use super::util::{
    Key, condition, controller_of, deleting, i, pod_ready, pod_terminal, random_suffix, s,
    set_condition, ts, write_status,
};
use crate::resources::{Res, res};
use crate::store::DeleteOptions;
use crate::world::{Ctx, Lag};

const SOURCE: &str = "job-controller";
/// The finalizer that keeps a Job's pod until the controller counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// `DefaultJobPodFailureBackOff`.
const BACKOFF_BASE: SignedDuration = SignedDuration::from_secs(10);
/// `MaxJobPodFailureBackOff`.
const BACKOFF_MAX: SignedDuration = SignedDuration::from_secs(360);

/// Keeps Jobs' pods. See the module doc.
#[derive(Default)]
pub struct Jobs {
    /// The failure back-off record per Job uid: last failure, consecutive failures
    /// (job_controller.go `podBackoffStore`, in memory as upstream).
    backoff: std::collections::HashMap<String, (Timestamp, i64)>,
}

/// A pod's outcome as the Job controller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Active,
    Succeeded,
    Failed,
}

/// `isPodFailed` / succeeded, with the v1.32 default `TerminatingOrFailed`.
fn outcome(pod: &Value, only_failed: bool) -> Outcome {
    match s(pod, "/status/phase") {
        "Succeeded" => Outcome::Succeeded,
        "Failed" => Outcome::Failed,
        _ if deleting(pod) && !only_failed => Outcome::Failed,
        _ => Outcome::Active,
    }
}

fn has_finalizer(pod: &Value) -> bool {
    pod.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == TRACKING_FINALIZER))
}

fn finished(job: &Value) -> bool {
    ["Complete", "Failed"]
        .iter()
        .any(|t| condition(job, t).is_some_and(|c| c["status"] == "True"))
}

/// The back-off before the next pod after `consecutive` failures.
fn backoff(consecutive: i64) -> SignedDuration {
    if consecutive <= 0 {
        return SignedDuration::ZERO;
    }
    let exp = (consecutive - 1).min(10) as i32;
    let d = BACKOFF_BASE.as_secs() * 2_i64.pow(exp as u32);
    SignedDuration::from_secs(d).min(BACKOFF_MAX)
}

impl Jobs {
    /// Removes the tracking finalizer of a counted pod.
    fn release(ctx: &mut Ctx<'_>, pod: &Value) {
        let mut p = pod.clone();
        if let Some(f) = p["metadata"]["finalizers"].as_array_mut() {
            f.retain(|x| x != TRACKING_FINALIZER);
        }
        p["metadata"]["resourceVersion"] = json!("");
        let _ = ctx.update(res::PODS, p);
    }

    fn create_pod(ctx: &mut Ctx<'_>, job: &Value, key: &Key) -> bool {
        let name = loop {
            let n = format!("{}-{}", key.name, random_suffix(ctx.rng()));
            if ctx.get(res::PODS, &key.namespace, &n).is_none() {
                break n;
            }
        };
        let mut pod = pod_from_template(job, &job["spec"]["template"], &name);
        pod["metadata"]["generateName"] = json!(format!("{}-", key.name));
        pod["metadata"]["finalizers"] = json!([TRACKING_FINALIZER]);
        match ctx.create(res::PODS, pod) {
            Ok(_) => {
                let msg = format!("Created pod: {name}");
                ctx.record_event(job, "Normal", "SuccessfulCreate", &msg, SOURCE);
                true
            }
            Err(e) => {
                let msg = format!("Error creating: {}", e.message);
                ctx.record_event(job, "Warning", "FailedCreate", &msg, SOURCE);
                false
            }
        }
    }
}

impl Reconcile for Jobs {
    const NAME: &'static str = "job";
    const PRIMARY: Res = res::JOBS;
    const KIND: &'static str = "Job";
    const OWNS: &'static [Res] = &[res::PODS];
    const WATCHES: &'static [&'static str] = &["jobs.batch", "pods"];

    // job_controller.go: informer handlers enqueue the Job. Simplified: no lag, so that
    // adding this controller does not move the seeded delays of the others (the world draws
    // one per delivery from a shared RNG).
    fn lag(&self) -> Lag {
        Lag::NONE
    }

    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) -> Action {
        let Some(job) = ctx.get(res::JOBS, &key.namespace, &key.name) else {
            return Action::await_change();
        };
        let now = ctx.now();
        let uid = s(&job, "/metadata/uid").to_string();
        let only_failed = s(&job, "/spec/podReplacementPolicy") == "Failed";
        let pods: Vec<Arc<Value>> = ctx
            .owned_by(res::PODS, &job)
            .into_iter()
            .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid))
            .collect();

        // trackJobStatusAndRemoveFinalizers: count the newly finished pods once.
        let mut succeeded = i(&job, "/status/succeeded").unwrap_or(0);
        let mut failed = i(&job, "/status/failed").unwrap_or(0);
        let (mut last_failure, mut consecutive) = match self.backoff.get(&uid) {
            Some(&(t, n)) => (Some(t), n),
            None => (None, 0),
        };
        let mut counted_any = false;
        let (mut active, mut ready, mut terminating) = (Vec::new(), 0, 0);
        for p in &pods {
            if deleting(p) && !pod_terminal(p) {
                terminating += 1;
            }
            match outcome(p, only_failed) {
                Outcome::Active if !deleting(p) => {
                    ready += i64::from(pod_ready(p));
                    active.push(p.clone());
                }
                Outcome::Active => {}
                o if has_finalizer(p) => {
                    if o == Outcome::Succeeded {
                        succeeded += 1;
                        consecutive = 0;
                    } else {
                        failed += 1;
                        consecutive += 1;
                        last_failure = Some(now);
                    }
                    counted_any = true;
                    Self::release(ctx, p);
                }
                _ => {}
            }
        }
        if counted_any && let Some(t) = last_failure {
            self.backoff.insert(uid.clone(), (t, consecutive));
        }
        let Some(job) = ctx.get(res::JOBS, &key.namespace, &key.name) else {
            return Action::await_change();
        };

        let completions = i(&job, "/spec/completions").unwrap_or(1);
        let parallelism = i(&job, "/spec/parallelism").unwrap_or(1);
        let backoff_limit = i(&job, "/spec/backoffLimit").unwrap_or(6);
        let mut status = job.get("status").cloned().unwrap_or_else(|| json!({}));
        if !status.is_object() {
            status = json!({});
        }
        let mut conds: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
        let was_finished = finished(&job);
        let mut next = Action::await_change();
        if status.get("startTime").is_none_or(Value::is_null) {
            status["startTime"] = json!(ts(now));
        }

        let failure_target = condition(&job, "FailureTarget")
            .is_some_and(|c| c["status"] == "True")
            || (!was_finished && failed > backoff_limit);
        let success = !failure_target && succeeded >= completions;
        if failure_target {
            if condition(&job, "FailureTarget").is_none() {
                set_condition(
                    &mut conds,
                    "FailureTarget",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    now,
                    false,
                );
                ctx.record_event(
                    &job,
                    "Warning",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    SOURCE,
                );
            }
            for p in active.drain(..) {
                let opts = DeleteOptions {
                    grace_period_seconds: i(&p, "/spec/terminationGracePeriodSeconds"),
                    ..Default::default()
                };
                let name = s(&p, "/metadata/name").to_string();
                if ctx
                    .delete_with(res::PODS, &key.namespace, &name, &opts)
                    .is_ok()
                {
                    terminating += 1;
                    let msg = format!("Deleted pod: {name}");
                    ctx.record_event(&job, "Normal", "SuccessfulDelete", &msg, SOURCE);
                }
            }
            ready = 0;
            if terminating == 0 && condition(&job, "Failed").is_none() {
                set_condition(
                    &mut conds,
                    "Failed",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    now,
                    false,
                );
            }
        } else if success {
            if condition(&job, "SuccessCriteriaMet").is_none() {
                set_condition(
                    &mut conds,
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                    false,
                );
            }
            if terminating == 0 && active.is_empty() && condition(&job, "Complete").is_none() {
                set_condition(
                    &mut conds,
                    "Complete",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                    false,
                );
                status["completionTime"] = json!(ts(now));
                ctx.record_event(&job, "Normal", "Completed", "Job completed", SOURCE);
            }
        } else if !was_finished && !deleting(&job) {
            // manageJob: as many active pods as parallelism allows and completions need.
            let want = parallelism.min(completions - succeeded).max(0);
            let have = active.len() as i64;
            if want > have {
                let due = last_failure.map(|t| t + backoff(consecutive));
                match due {
                    Some(t) if t > now => next = Action::requeue_at(t),
                    _ => {
                        for _ in 0..(want - have).min(500) {
                            if !Self::create_pod(ctx, &job, key) {
                                break;
                            }
                        }
                    }
                }
            }
        }
        let active_n = ctx
            .owned_by(res::PODS, &job)
            .iter()
            .filter(|p| controller_of(p).is_some_and(|(_, _, u)| u == uid))
            .filter(|p| outcome(p, only_failed) == Outcome::Active && !deleting(p))
            .count() as i64;
        let m = status.as_object_mut();
        if let Some(m) = m {
            for (k, v) in [
                ("active", active_n),
                ("succeeded", succeeded),
                ("failed", failed),
            ] {
                if v > 0 {
                    m.insert(k.into(), json!(v));
                } else {
                    m.remove(k);
                }
            }
            m.insert("ready".into(), json!(ready));
            m.insert("terminating".into(), json!(terminating));
            m.insert("uncountedTerminatedPods".into(), json!({}));
            if conds.is_empty() {
                m.remove("conditions");
            } else {
                m.insert("conditions".into(), json!(conds));
            }
        }
        write_status(ctx, res::JOBS, &job, status);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_to_six_minutes() {
        assert_eq!(backoff(0), SignedDuration::ZERO);
        assert_eq!(backoff(1).as_secs(), 10);
        assert_eq!(backoff(2).as_secs(), 20);
        assert_eq!(backoff(4).as_secs(), 80);
        assert_eq!(backoff(9).as_secs(), 360);
    }
}

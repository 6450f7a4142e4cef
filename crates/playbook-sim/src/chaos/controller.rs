//! The simulated chaos-controller-manager: Chaos Mesh's common pipeline (finalizer, desired phase, records, conditions) for PodChaos, NetworkChaos and StressChaos.
//!
//! Each experiment goes through the same steps as in Chaos Mesh v2.8.1 (`controllers/common`),
//! with the same Kubernetes Events (reasons, messages, components):
//! 1. `initFinalizers`: add `chaos-mesh/records` (`FinalizerInited`, `Updated`).
//! 2. `desiredphase`: `Stop` when deleted (`Deleted`), when `duration` has passed since
//!    creation (`TimeUp`) or when paused (`Paused`); else `Run` (`Started`). One-shot actions
//!    (pod-kill, container-kill) stay `Run`.
//! 3. `records`: select targets once (`Failed` "select targets" when none), then apply or
//!    recover each record towards the desired phase (`Applied`, `Recovered`, `Failed`), after
//!    [`ACTION_LATENCY`] of simulated time (the daemon's work is not instant).
//! 4. `finalizers`: once deleted and every record recovered, drop the finalizers.
//! 5. `condition`: `Selected`, `AllInjected`, `AllRecovered`, `Paused`.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::effects::{CLEAN_FINALIZER_ANNOTATION, FINALIZER, PAUSE_ANNOTATION};
use super::kinds::{self, Common, Kind, object_at};
use super::record::{self, INJECTED, KubeEvent, NOT_INJECTED, Record};
use super::select;
use crate::store::{finalizers, meta_str};
use crate::world::{Controller, Ctx, Lag};

/// Simulated time between deciding to apply or recover and the fault being in place or gone.
pub const ACTION_LATENCY: SignedDuration = SignedDuration::from_millis(500);

/// Longest wait between retries of a failed apply or recover.
pub const MAX_BACKOFF: SignedDuration = SignedDuration::from_secs(300);

/// The controller (add it to a `World` after the core controllers).
#[derive(Default)]
pub struct ChaosMesh {
    /// uid -> when the pending records work runs.
    due: BTreeMap<String, Timestamp>,
    /// uid -> failed attempts in a row (backoff).
    failures: BTreeMap<String, u32>,
    /// uid -> resourceVersion at which selection last failed (retried when the object changes).
    select_failed: BTreeMap<String, String>,
    /// When each memStress instance started (its memory grows from then).
    starts: super::stress::Starts,
}

impl Controller for ChaosMesh {
    fn name(&self) -> &'static str {
        "chaos-mesh"
    }

    fn watches(&self) -> &'static [&'static str] {
        &[
            "podchaos.chaos-mesh.org",
            "networkchaos.chaos-mesh.org",
            "stresschaos.chaos-mesh.org",
        ]
    }

    /// chaos-controller-manager's reconcilers are controller-runtime controllers
    /// (controllers/common/fx.go and pipeline/pipeline.go build them with
    /// `ctrl.NewControllerManagedBy`): an informer delivers
    /// the change and a work-queue worker picks the key up (controller-runtime
    /// pkg/internal/controller/controller.go `processNextWorkItem`), as KServe's.
    fn lag(&self) -> Lag {
        Lag::millis(50, 300)
    }

    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let mut seen = Vec::new();
        for kind in Kind::ALL {
            for obj in ctx.list(kind.resource(), None) {
                seen.push(meta_str(&obj, "uid").to_string());
                self.reconcile_one(ctx, kind, &obj);
            }
        }
        seen.sort();
        let live = |uid: &String| seen.binary_search(uid).is_ok();
        self.due.retain(|k, _| live(k));
        self.failures.retain(|k, _| live(k));
        self.select_failed.retain(|k, _| live(k));
        super::stress::ramp(ctx, &mut self.starts);
    }
}

fn is_true(obj: &Value, annotation: &str, want: &str) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(annotation))
        .and_then(Value::as_str)
        == Some(want)
}

fn created(obj: &Value, now: Timestamp) -> Timestamp {
    meta_str(obj, "creationTimestamp").parse().unwrap_or(now)
}

impl ChaosMesh {
    fn reconcile_one(&mut self, ctx: &mut Ctx<'_>, kind: Kind, obj: &Value) {
        let uid = meta_str(obj, "uid").to_string();
        let mut o = obj.clone();
        let mut events: Vec<KubeEvent> = Vec::new();
        let deleted = obj.pointer("/metadata/deletionTimestamp").is_some();
        let paused = is_true(obj, PAUSE_ANNOTATION, "true");
        let common = kinds::common(kind, obj);

        // 1. initFinalizers
        let mut fins = finalizers(obj);
        if !deleted && !fins.iter().any(|f| f == FINALIZER) {
            fins.push(FINALIZER.into());
            o["metadata"]["finalizers"] = json!(fins);
            events.push(KubeEvent::finalizer_inited());
            events.push(KubeEvent::updated("finalizer", "initFinalizers"));
        }

        // 2. desiredphase
        let current = o
            .pointer("/status/experiment/desiredPhase")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let (phase, why) = self.desired_phase(ctx, obj, common.as_ref().ok(), deleted, paused);
        if current != phase {
            if let Some(reason) = why {
                events.push(KubeEvent::phase(reason));
            }
            object_at(&mut o, &["status", "experiment"])
                .insert("desiredPhase".into(), json!(phase));
            events.push(KubeEvent::updated("desiredPhase", "desiredphase"));
        }

        // 3. records
        let mut mark_select_failed = false;
        match &common {
            Ok(c) => self.records_step(ctx, c, &mut o, phase, &mut events, &mut mark_select_failed),
            Err(e) if record::records_of(&o).is_none() => {
                if self.select_failed.get(&uid).map(String::as_str)
                    != Some(meta_str(obj, "resourceVersion"))
                {
                    events.push(KubeEvent::failed("select targets", e, "records"));
                    mark_select_failed = true;
                }
            }
            Err(_) => {}
        }

        // 4. finalizers
        let records = record::records_of(&o);
        if deleted {
            let resumed = records
                .as_deref()
                .unwrap_or_default()
                .iter()
                .all(|r| r.phase == NOT_INJECTED);
            let fins = finalizers(&o);
            if is_true(&o, CLEAN_FINALIZER_ANNOTATION, "forced") || (resumed && !fins.is_empty()) {
                events.push(KubeEvent::finalizer_removed());
                o["metadata"]["finalizers"] = json!([]);
                events.push(KubeEvent::updated("finalizer", "finalizers"));
            }
        }

        // 5. condition
        let conds = record::conditions(records.as_deref(), paused);
        if o.pointer("/status/conditions") != Some(&conds) {
            object_at(&mut o, &["status"]).insert("conditions".into(), conds);
        }
        if !o
            .pointer("/status/experiment")
            .is_some_and(Value::is_object)
        {
            object_at(&mut o, &["status", "experiment"]);
        }

        let mut written = obj.clone();
        if o != *obj {
            o["metadata"]["resourceVersion"] = json!("");
            match ctx.update(kind.resource(), o.clone()) {
                Ok(v) => written = (*v).clone(),
                Err(e) => events.push(KubeEvent::failed(
                    "update records",
                    &e.to_string(),
                    "records",
                )),
            }
        }
        if mark_select_failed {
            self.select_failed
                .insert(uid, meta_str(&written, "resourceVersion").to_string());
        }
        for ev in events {
            ctx.record_event(&written, ev.type_, ev.reason, &ev.message, ev.component);
        }
    }

    /// Chaos Mesh's `CalcDesiredPhase`: the phase and the event reason explaining it.
    fn desired_phase(
        &self,
        ctx: &mut Ctx<'_>,
        obj: &Value,
        common: Option<&Common>,
        deleted: bool,
        paused: bool,
    ) -> (&'static str, Option<&'static str>) {
        if deleted {
            return ("Stop", Some("Deleted"));
        }
        if common.is_some_and(|c| c.one_shot) {
            return ("Run", None);
        }
        if let Some(Some(Ok(d))) = common.map(|c| c.duration.clone()) {
            let stop = created(obj, ctx.now())
                .checked_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
                .unwrap_or(Timestamp::MAX);
            if ctx.now() >= stop {
                return ("Stop", Some("TimeUp"));
            }
            ctx.wake_at(stop);
        }
        if paused {
            return ("Stop", Some("Paused"));
        }
        ("Run", Some("Started"))
    }

    /// The records reconciler: select once, then move every record towards `phase`.
    fn records_step(
        &mut self,
        ctx: &mut Ctx<'_>,
        common: &Common,
        o: &mut Value,
        phase: &str,
        events: &mut Vec<KubeEvent>,
        mark_select_failed: &mut bool,
    ) {
        let uid = meta_str(o, "uid").to_string();
        let records = record::records_of(o);
        let need_select = records.is_none();
        if need_select
            && self.select_failed.get(&uid).map(String::as_str)
                == Some(meta_str(o, "resourceVersion"))
        {
            return;
        }
        let wants = |r: &Record| match phase {
            "Run" => r.phase != INJECTED,
            "Stop" => r.phase != NOT_INJECTED,
            _ => false,
        };
        if !need_select && !records.as_deref().unwrap_or_default().iter().any(wants) {
            self.due.remove(&uid);
            self.failures.remove(&uid);
            return;
        }
        let now = ctx.now();
        match self.due.get(&uid) {
            None => {
                let at = now.checked_add(ACTION_LATENCY).unwrap_or(now);
                self.due.insert(uid, at);
                ctx.wake_at(at);
                return;
            }
            Some(at) if *at > now => {
                ctx.wake_at(*at);
                return;
            }
            Some(_) => {
                self.due.remove(&uid);
            }
        }

        let mut records = match records {
            Some(r) => r,
            None => match self.select(ctx, common, o) {
                Ok(r) => r,
                Err(e) => {
                    events.push(KubeEvent::failed("select targets", &e, "records"));
                    *mark_select_failed = true;
                    return;
                }
            },
        };
        let mut changed = need_select;
        let mut retry = false;
        for rec in records.iter_mut() {
            if !wants(rec) {
                continue;
            }
            let apply = phase == "Run";
            let snapshot = rec.clone();
            let result = if apply {
                kinds::apply(ctx, common.kind, o, &snapshot, &mut self.starts)
            } else {
                kinds::recover(ctx, common.kind, o, &snapshot, &mut self.starts)
            };
            changed = true;
            match result {
                Ok(p) => {
                    rec.phase = p.to_string();
                    rec.push_event(true, apply, None, now);
                    if apply {
                        rec.injected_count += 1;
                        events.push(KubeEvent::applied(&rec.id));
                    } else {
                        rec.recovered_count += 1;
                        events.push(KubeEvent::recovered(&rec.id));
                    }
                }
                Err(e) => {
                    rec.push_event(false, apply, Some(e.clone()), now);
                    let activity = if apply {
                        "apply chaos"
                    } else {
                        "recover chaos"
                    };
                    events.push(KubeEvent::failed(activity, &e, "records"));
                    retry = true;
                }
            }
        }
        if retry {
            let n = self.failures.entry(uid.clone()).or_insert(0);
            *n += 1;
            let wait = SignedDuration::from_secs(1i64 << (*n).min(9)).min(MAX_BACKOFF);
            let at = now.checked_add(wait).unwrap_or(now);
            self.due.insert(uid, at);
            ctx.wake_at(at);
        } else {
            self.failures.remove(&uid);
        }
        if changed {
            object_at(o, &["status", "experiment"]).insert(
                "containerRecords".into(),
                serde_json::to_value(&records).unwrap_or(json!([])),
            );
            events.push(KubeEvent::updated("records", "records"));
        }
    }

    /// Selects the targets of every selector (`.` then `.Target`), as new records.
    fn select(
        &mut self,
        ctx: &mut Ctx<'_>,
        common: &Common,
        o: &Value,
    ) -> Result<Vec<Record>, String> {
        let ns = meta_str(o, "namespace").to_string();
        let mut out = Vec::new();
        for sel in &common.selectors {
            let pods = select::candidates(ctx.store(), &sel.selector, &ns)?;
            if pods.is_empty() {
                return Err("no pod is selected".into());
            }
            let idx = select::filter_by_mode(&sel.mode, &sel.value, pods.len(), ctx.rng())?;
            let mut ids = Vec::new();
            for i in idx {
                let Some(pod) = pods.get(i) else { continue };
                if common.container_level {
                    for c in select::containers_of(pod, &common.container_names) {
                        ids.push(format!("{}/{c}", select::pod_id(pod)));
                    }
                } else {
                    ids.push(select::pod_id(pod));
                }
            }
            if ids.is_empty() {
                return Err("no target has been selected".into());
            }
            out.extend(ids.into_iter().map(|id| Record::new(id, sel.key)));
        }
        Ok(out)
    }
}

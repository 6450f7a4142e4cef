//! The Chaos Mesh `Schedule` controllers: `schedule-cron` spawns the chaos on its cron schedule, `schedule-active` keeps `status.active`, `schedule-gc` deletes finished chaos beyond `historyLimit`.
//!
//! Follows Chaos Mesh v2.8.1:
//! - `controllers/schedule/cron/controller.go` and `cron/utils.go`: the most recent unmet run
//!   since `status.time` (the last schedule time; the creation time before the first run),
//!   no earlier than now - `startingDeadlineSeconds`; more than 100 missed runs is an error;
//!   a run older than the starting deadline is a `MissSchedule` warning. With
//!   `concurrencyPolicy: Forbid` (the webhook's default) a spawned object that has not
//!   finished blocks the run (`Forbid` warning; it is retried when anything it owns changes).
//!   The spawned object is `spec.type` with the spec of the matching field (`podChaos`,
//!   `networkChaos`, `stressChaos`), named `<schedule>-<5 random characters>`, labelled
//!   `managed-by: <schedule>`, owned by the schedule; `Spawned` event, then `status.time`.
//!   A paused schedule (`experiment.chaos-mesh.org/pause: "true"`) spawns nothing.
//! - `controllers/schedule/active/controller.go`: `status.active` lists references to every
//!   object labelled `managed-by: <schedule>`, sorted by name.
//! - `controllers/schedule/gc/controller.go`: beyond `historyLimit` (0 when absent) the oldest
//!   objects are deleted once finished (`controllers/utils/controller/finished.go`).
//!
//! Not modelled: `type: Workflow` (the simulator has no Workflow controller; such a schedule
//! gets a `Failed` event, as Chaos Mesh gives for a kind it cannot create).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::cron;
use super::effects::PAUSE_ANNOTATION;
use super::kinds::object_at;
use super::record::{INJECTED, KubeEvent, NOT_INJECTED, records_of};
use crate::store::meta_str;
use crate::world::{Controller, Ctx, Lag};
use playbook_model::units;

/// The label Chaos Mesh puts on what a schedule spawns (`LabelManagedBy`).
pub const MANAGED_BY: &str = "managed-by";

const RESOURCE: &str = "schedules.chaos-mesh.org";

/// The kinds a schedule can spawn here: (spec.type, the spec field, the resource).
const KINDS: [(&str, &str, &str); 3] = [
    ("PodChaos", "podChaos", "podchaos.chaos-mesh.org"),
    (
        "NetworkChaos",
        "networkChaos",
        "networkchaos.chaos-mesh.org",
    ),
    ("StressChaos", "stressChaos", "stresschaos.chaos-mesh.org"),
];

/// The three schedule controllers, run as one.
#[derive(Default)]
pub struct Schedules;

impl Controller for Schedules {
    fn name(&self) -> &'static str {
        "chaos-mesh-schedule"
    }

    fn watches(&self) -> &'static [&'static str] {
        &[
            RESOURCE,
            "podchaos.chaos-mesh.org",
            "networkchaos.chaos-mesh.org",
            "stresschaos.chaos-mesh.org",
        ]
    }

    /// Controller-runtime controllers too (controllers/schedule/{cron,active,gc}), with the
    /// same informer and work-queue delay as the chaos reconcilers.
    fn lag(&self) -> Lag {
        Lag::millis(50, 300)
    }

    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        for s in ctx.list(RESOURCE, None) {
            if s.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let s = cron_step(ctx, &s);
            let s = active_step(ctx, &s);
            gc_step(ctx, &s);
        }
    }
}

fn paused(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(PAUSE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true")
}

fn ts(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str)?.parse().ok()
}

fn kind_of(schedule: &Value) -> Option<(&'static str, &'static str, &'static str)> {
    let t = schedule.pointer("/spec/type").and_then(Value::as_str)?;
    KINDS.into_iter().find(|k| k.0 == t)
}

/// The objects the schedule spawned (labelled `managed-by: <name>`), oldest first.
fn spawned(ctx: &Ctx<'_>, schedule: &Value) -> Vec<Value> {
    let Some((_, _, res)) = kind_of(schedule) else {
        return Vec::new();
    };
    let name = meta_str(schedule, "name");
    let mut out: Vec<Value> = ctx
        .list(res, Some(meta_str(schedule, "namespace")))
        .into_iter()
        .filter(|o| {
            o.pointer(&format!("/metadata/labels/{MANAGED_BY}"))
                .and_then(Value::as_str)
                == Some(name)
        })
        .map(|o| (*o).clone())
        .collect();
    out.sort_by_key(|o| {
        (
            meta_str(o, "creationTimestamp").to_string(),
            meta_str(o, "name").to_string(),
        )
    });
    out
}

/// `IsChaosFinishedWithUntilStop`: finished?, and how long until its duration ends.
fn finished(obj: &Value, now: Timestamp) -> (bool, SignedDuration) {
    let records = records_of(obj).unwrap_or_default();
    let action = obj
        .pointer("/spec/action")
        .and_then(Value::as_str)
        .unwrap_or("");
    let one_shot = obj["kind"] == "PodChaos" && matches!(action, "pod-kill" | "container-kill");
    if one_shot {
        let done = !records.is_empty() && records.iter().all(|r| r.phase == INJECTED);
        return (done, SignedDuration::from_secs(1));
    }
    let stopped = obj
        .pointer("/status/experiment/desiredPhase")
        .and_then(Value::as_str)
        != Some("Run")
        && records.iter().all(|r| r.phase == NOT_INJECTED);
    let duration = obj
        .pointer("/spec/duration")
        .and_then(Value::as_str)
        .and_then(|d| units::go_duration(d).ok())
        .and_then(|d| SignedDuration::try_from(d).ok());
    let Some(d) = duration else {
        return (false, SignedDuration::ZERO);
    };
    let end = ts(obj.pointer("/metadata/creationTimestamp"))
        .and_then(|c| c.checked_add(d).ok())
        .unwrap_or(now);
    let until = end.duration_since(now).max(SignedDuration::ZERO);
    (stopped && now >= end, until)
}

/// `getRecentUnmetScheduleTime`: (the most recent missed run, the next run).
fn unmet(
    schedule: &Value,
    now: Timestamp,
) -> Result<(Option<Timestamp>, Option<Timestamp>), String> {
    let spec = schedule
        .pointer("/spec/schedule")
        .and_then(Value::as_str)
        .unwrap_or("");
    let sched = cron::parse(spec).map_err(|e| format!("unparseable schedule: {spec} : {e}"))?;
    let mut earliest = ts(schedule.pointer("/status/time"))
        .or_else(|| ts(schedule.pointer("/metadata/creationTimestamp")))
        .unwrap_or(now);
    if let Some(d) = schedule
        .pointer("/spec/startingDeadlineSeconds")
        .and_then(Value::as_i64)
    {
        let deadline = now - SignedDuration::from_secs(d);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    if earliest > now {
        return Err(format!(
            "earliestTime is later than now: earliestTime: {earliest}, now: {now}"
        ));
    }
    let mut missed = None;
    let mut next = sched.next(earliest);
    let mut n = 0;
    while let Some(t) = next.filter(|t| *t <= now) {
        missed = Some(t);
        next = sched.next(t);
        n += 1;
        if n > 100 {
            return Err("too many missed start time (> 100). Set or decrease .spec.startingDeadlineSeconds or check clock skew".into());
        }
    }
    Ok((missed, next))
}

fn event(ctx: &mut Ctx<'_>, obj: &Value, ev: KubeEvent) {
    ctx.record_event(obj, ev.type_, ev.reason, &ev.message, ev.component);
}

fn warn(reason: &'static str, message: String) -> KubeEvent {
    KubeEvent {
        type_: "Warning",
        reason,
        message,
        component: "schedule-cron",
    }
}

/// `schedule-cron`; returns the schedule as stored after it.
fn cron_step(ctx: &mut Ctx<'_>, schedule: &Value) -> Value {
    let mut s = schedule.clone();
    if paused(&s) {
        return s;
    }
    let now = ctx.now();
    let (missed, next) = match unmet(&s, now) {
        Ok(x) => x,
        Err(e) => {
            event(
                ctx,
                &s,
                KubeEvent::failed("get run time", &e, "schedule-cron"),
            );
            return s;
        }
    };
    let Some(missed) = missed else {
        if let Some(n) = next {
            ctx.wake_at(n);
        }
        return s;
    };
    if let Some(d) = s
        .pointer("/spec/startingDeadlineSeconds")
        .and_then(Value::as_i64)
        && missed + SignedDuration::from_secs(d) < now
    {
        let when = missed.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string();
        event(
            ctx,
            &s,
            warn(
                "MissSchedule",
                format!("Missed scheduled time to start a job: {when}"),
            ),
        );
        return s;
    }
    let forbid = s
        .pointer("/spec/concurrencyPolicy")
        .and_then(Value::as_str)
        .unwrap_or("")
        != "Allow";
    if forbid && let Some(running) = spawned(ctx, &s).into_iter().find(|o| !finished(o, now).0) {
        let name = meta_str(&running, "name").to_string();
        event(
            ctx,
            &s,
            warn(
                "Forbid",
                format!("Forbid spawning new job because: {name} is still running"),
            ),
        );
        return s;
    }
    let Some((kind, field, res)) = kind_of(&s) else {
        let t = s
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("");
        event(
            ctx,
            &s,
            KubeEvent::failed(
                "generate new object",
                &format!("unsupported type {t} in the simulator"),
                "schedule-cron",
            ),
        );
        return s;
    };
    let name = meta_str(&s, "name").to_string();
    let obj = json!({
        "apiVersion": "chaos-mesh.org/v1alpha1",
        "kind": kind,
        "metadata": {
            "generateName": format!("{name}-"),
            "namespace": meta_str(&s, "namespace"),
            "labels": {MANAGED_BY: name},
            "ownerReferences": [{"apiVersion": s["apiVersion"], "kind": s["kind"], "name": name,
                "uid": meta_str(&s, "uid"), "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": s.pointer(&format!("/spec/{field}")).cloned().unwrap_or(json!({})),
    });
    match ctx.create(res, obj) {
        Ok(o) => {
            let msg = format!("Create new object: {}", meta_str(&o, "name"));
            event(
                ctx,
                &s,
                KubeEvent {
                    type_: "Normal",
                    reason: "Spawned",
                    message: msg,
                    component: "schedule-cron",
                },
            );
        }
        Err(e) => {
            event(
                ctx,
                &s,
                KubeEvent::failed("create new object", &e.to_string(), "schedule-cron"),
            );
            return s;
        }
    }
    let t = Timestamp::from_second(now.as_second()).unwrap_or(now);
    object_at(&mut s, &["status"]).insert("time".into(), json!(t.to_string()));
    s["metadata"]["resourceVersion"] = json!("");
    match ctx.update(RESOURCE, s.clone()) {
        Ok(v) => {
            s = (*v).clone();
            event(
                ctx,
                &s,
                KubeEvent::updated("lastScheduleTime", "schedule-cron"),
            );
        }
        Err(e) => event(
            ctx,
            schedule,
            KubeEvent::failed("update lastScheduleTime", &e.to_string(), "schedule-cron"),
        ),
    }
    if let Some(n) = next {
        ctx.wake_at(n);
    }
    s
}

/// `schedule-active`.
fn active_step(ctx: &mut Ctx<'_>, schedule: &Value) -> Value {
    let mut refs: BTreeMap<String, Value> = BTreeMap::new();
    for o in spawned(ctx, schedule) {
        refs.insert(
            meta_str(&o, "name").to_string(),
            json!({"apiVersion": o["apiVersion"], "kind": o["kind"], "name": meta_str(&o, "name"),
                "namespace": meta_str(&o, "namespace"), "resourceVersion": meta_str(&o, "resourceVersion"),
                "uid": meta_str(&o, "uid")}),
        );
    }
    let active: Vec<Value> = refs.into_values().collect();
    let have = schedule
        .pointer("/status/active")
        .cloned()
        .unwrap_or(json!([]));
    if have == json!(active) || (active.is_empty() && have.is_null()) {
        return schedule.clone();
    }
    let mut s = schedule.clone();
    let status = object_at(&mut s, &["status"]);
    if active.is_empty() {
        status.remove("active");
    } else {
        status.insert("active".into(), json!(active));
    }
    s["metadata"]["resourceVersion"] = json!("");
    match ctx.update(RESOURCE, s) {
        Ok(v) => (*v).clone(),
        Err(e) => {
            event(
                ctx,
                schedule,
                KubeEvent::failed("update active", &e.to_string(), "schedule-active"),
            );
            schedule.clone()
        }
    }
}

/// `schedule-gc`.
fn gc_step(ctx: &mut Ctx<'_>, schedule: &Value) {
    let Some((_, _, res)) = kind_of(schedule) else {
        return;
    };
    let limit = schedule
        .pointer("/spec/historyLimit")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .max(0) as usize;
    let items = spawned(ctx, schedule);
    let now = ctx.now();
    let exceeded = items.len().saturating_sub(limit);
    for o in items.iter().take(exceeded) {
        let (done, until) = finished(o, now);
        if !done {
            if !until.is_zero() {
                ctx.wake_at(now + until);
            }
            continue;
        }
        if let Err(e) = ctx.delete(res, meta_str(o, "namespace"), meta_str(o, "name"))
            && e.code() != 404
        {
            let what = format!(
                "delete {}/{}",
                meta_str(o, "namespace"),
                meta_str(o, "name")
            );
            event(
                ctx,
                schedule,
                KubeEvent::failed(&what, &e.to_string(), "schedule-gc"),
            );
        }
    }
}

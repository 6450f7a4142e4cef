//! Argo Workflows: the `training-pipeline` schedule (like a CronWorkflow) and a workflow controller that runs steps as pods, with real phases and `status.nodes`.
//!
//! Every `pipeline_every_s` a Workflow `training-pipeline-xxxxx` is created in `argo`: steps
//! `prepare-data`, `train` (which logs metrics to MLflow through the pipeline runner, see
//! `traffic.rs`) and `evaluate`, run one after another. The controller runs any Workflow
//! whose entrypoint is a `steps` template (groups run in order, steps of a group in
//! parallel), a `dag` (tasks in listed order) or a `container`: each step is a pod
//! (restartPolicy Never, the template's `metadata` copied on it; `sim.playbook.dev/run-for`
//! says how long it runs, default 2 s). A failed pod fails the Workflow (Failed), a deleted
//! one errors it (Error). Only the last `pipeline_history` finished pipelines are kept.
//!
//! The controller lives in the `workflow-controller` pods: while none is Ready and running
//! the controller (pod-failure's pause image runs nothing), no Workflow
//! makes progress (no step pod is created, no status changes, no scheduled run starts) —
//! argo-workflows workflow/controller/controller.go runs every reconciliation in that process.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::objects::ARGO_NS;
use super::scenario::Figures;
use super::traffic::{NODE_NAME, WORKFLOW_LABEL};
use crate::controllers::model;
use crate::controllers::util::{Key, deleting, hash_str, key_of, s, ts};
use crate::resources::res;
use crate::world::{Controller, Ctx, Lag};

const WF: &str = "workflows.argoproj.io";
const CRON: &str = "training-pipeline";
const CRON_LABEL: &str = "workflows.argoproj.io/cron-workflow";
const PHASE_LABEL: &str = "workflows.argoproj.io/phase";
const COMPLETED_LABEL: &str = "workflows.argoproj.io/completed";

/// The training pipeline Workflow, as the CronWorkflow would create it.
pub fn pipeline(f: &Figures) -> Value {
    let steps: Vec<Value> = f
        .pipeline_steps
        .iter()
        .map(|(n, _)| json!([{"name": n, "template": n}]))
        .collect();
    let mut templates = vec![json!({"name": "pipeline", "steps": steps})];
    for (n, secs) in f.pipeline_steps {
        templates.push(json!({"name": n,
            "metadata": {"annotations": {model::RUN_FOR: format!("{secs}s"), model::STARTUP: "1s",
                model::CPU: "500m", model::MEMORY: "600Mi"}},
            "container": {"image": "ghcr.io/mlops/pipeline:1.4.2", "command": ["python", "-m", format!("pipeline.{}", n.replace('-', "_"))],
                "env": [{"name": "PIPELINE_RUNNER_URL", "value": "http://pipeline-runner.argo.svc.cluster.local:8080"}],
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}}}));
    }
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": format!("{CRON}-"), "namespace": ARGO_NS,
            "labels": {CRON_LABEL: CRON}, "annotations": {"workflows.argoproj.io/scheduled-time": ""}},
        "spec": {"entrypoint": "pipeline", "serviceAccountName": "argo-workflow", "templates": templates}})
}

/// The schedule and the workflow controller.
pub struct Argo {
    figures: Figures,
    next_run: Option<Timestamp>,
    /// The controller had no Ready pod when last called.
    was_down: bool,
}

/// The label of the workflow-controller's pods (see `objects::all`).
const CONTROLLER_APP: &str = "workflow-controller";

/// True when a workflow-controller pod is Ready, not being deleted, and runs the controller
/// (not pod-failure's pause image: the pod may stay Ready without a readiness probe while no
/// controller process runs, see `crate::chaos::effects::pause_container`). Before its
/// Deployment exists (the first instants of an install) the controller counts as up, so
/// that a world without the platform's objects still runs Workflows.
fn controller_up(ctx: &Ctx<'_>) -> bool {
    if ctx
        .get("deployments.apps", ARGO_NS, CONTROLLER_APP)
        .is_none()
    {
        return true;
    }
    let sel =
        crate::selector::LabelSelector::from_json(&json!({"matchLabels": {"app": CONTROLLER_APP}}))
            .unwrap_or_default();
    ctx.list_selected("pods", Some(ARGO_NS), &sel)
        .iter()
        .any(|p| {
            crate::controllers::util::pod_ready(p)
                && !deleting(p)
                && !crate::chaos::effects::refuses_connections(p)
        })
}

impl Argo {
    /// A controller with the pipeline of `figures`.
    pub fn new(figures: Figures) -> Self {
        Argo {
            figures,
            next_run: None,
            was_down: false,
        }
    }

    /// The CronWorkflow: a run at each scheduled time while the controller is up. A time
    /// missed while it is down is skipped, not caught up (workflow/cron/operator.go runs
    /// missed schedules only with `startingDeadlineSeconds`, which the pipeline does not set).
    fn schedule(&mut self, ctx: &mut Ctx<'_>, up: bool) {
        let now = ctx.now();
        let every = SignedDuration::from_secs(self.figures.pipeline_every_s.max(1));
        let due = *self.next_run.get_or_insert(now);
        if now >= due {
            if up && now == due {
                let mut wf = pipeline(&self.figures);
                wf["metadata"]["annotations"]["workflows.argoproj.io/scheduled-time"] =
                    json!(ts(now));
                let _ = ctx.create(WF, wf);
                self.prune(ctx);
            }
            let mut next = due + every;
            while next <= now {
                next += every;
            }
            self.next_run = Some(next);
        }
        if let Some(n) = self.next_run {
            ctx.wake_at(n);
        }
    }

    /// Deletes finished pipelines beyond the history limit (their pods go with them).
    fn prune(&self, ctx: &mut Ctx<'_>) {
        let mut done: Vec<(String, String)> = ctx
            .list(WF, Some(ARGO_NS))
            .iter()
            .filter(|w| w["metadata"]["labels"][CRON_LABEL] == CRON)
            .filter(|w| w["metadata"]["labels"][COMPLETED_LABEL] == "true")
            .map(|w| {
                (
                    s(w, "/status/finishedAt").to_string(),
                    s(w, "/metadata/name").to_string(),
                )
            })
            .collect();
        done.sort();
        let extra = done.len().saturating_sub(self.figures.pipeline_history);
        for (_, name) in done.into_iter().take(extra) {
            let _ = ctx.delete(WF, ARGO_NS, &name);
        }
    }
}

fn template<'a>(wf: &'a Value, name: &str) -> Option<&'a Value> {
    wf.pointer("/spec/templates")?
        .as_array()?
        .iter()
        .find(|t| t["name"] == name)
}

/// The groups of leaf steps of the entrypoint: (node name suffix, template name) per step.
fn plan(wf: &Value) -> Vec<Vec<(String, String)>> {
    let entry = s(wf, "/spec/entrypoint");
    let Some(t) = template(wf, entry) else {
        return Vec::new();
    };
    if let Some(groups) = t.get("steps").and_then(Value::as_array) {
        return groups
            .iter()
            .map(|g| {
                g.as_array()
                    .into_iter()
                    .flatten()
                    .map(|st| (s(st, "/name").to_string(), s(st, "/template").to_string()))
                    .collect()
            })
            .collect();
    }
    if let Some(tasks) = t.pointer("/dag/tasks").and_then(Value::as_array) {
        return tasks
            .iter()
            .map(|st| vec![(s(st, "/name").to_string(), s(st, "/template").to_string())])
            .collect();
    }
    if t.get("container").is_some() {
        return vec![vec![(String::new(), entry.to_string())]];
    }
    Vec::new()
}

fn node_id(wf: &str, node_name: &str) -> String {
    format!("{wf}-{}", hash_str(node_name) % 4_000_000_000)
}

fn pod_name(wf: &str, tmpl: &str, id: &str) -> String {
    let h = id.rsplit('-').next().unwrap_or_default();
    let mut base = format!("{wf}-{tmpl}");
    base.truncate(63 - h.len() - 1);
    format!("{}-{h}", base.trim_end_matches('-'))
}

impl Argo {
    /// One step of a Workflow: its pod, created when its group's turn comes
    /// (workflow/controller/operator.go `executeTemplate`), and its node in `status.nodes`.
    fn step(
        &self,
        ctx: &mut Ctx<'_>,
        wf: &Value,
        (step, tmpl): (&str, &str),
        walk: &mut Walk,
    ) -> &'static str {
        let name = s(wf, "/metadata/name").to_string();
        let ns = s(wf, "/metadata/namespace").to_string();
        let (now, leaf) = (ctx.now(), step.is_empty());
        let node_name = if leaf {
            name.clone()
        } else {
            format!("{name}.{step}")
        };
        let id = if leaf {
            name.clone()
        } else {
            node_id(&name, &node_name)
        };
        let pname = pod_name(&name, tmpl, &id);
        let pod = match ctx.get(res::PODS, &ns, &pname) {
            Some(p) => Some(p),
            None if walk.failed.is_none() && walk.errored.is_none() => {
                if wf.pointer(&format!("/status/nodes/{id}")).is_some() {
                    // Its pod is gone before it finished.
                    walk.errored = Some(format!("pod deleted: {pname}"));
                    None
                } else {
                    let pod = self.step_pod(wf, tmpl, &node_name, &id, &pname);
                    ctx.create(res::PODS, pod).ok()
                }
            }
            None => None,
        };
        let phase = pod
            .as_deref()
            .map_or("Error", |p| match s(p, "/status/phase") {
                "Succeeded" => "Succeeded",
                "Failed" => "Failed",
                "Running" => "Running",
                _ => "Pending",
            });
        match phase {
            "Succeeded" => walk.succeeded += 1,
            "Failed" => walk.failed = Some(format!("child '{id}' failed")),
            _ => {}
        }
        let mut node = json!({"id": id, "name": node_name,
            "displayName": if leaf { name.as_str() } else { step },
            "type": "Pod", "templateName": tmpl, "phase": phase,
            "boundaryID": if leaf { Value::Null } else { json!(name) },
            "startedAt": pod.as_deref().map(|p| s(p, "/metadata/creationTimestamp").to_string()),
            "hostNodeName": pod.as_deref().map(|p| s(p, "/spec/nodeName").to_string()),
            "progress": if phase == "Succeeded" { "1/1" } else { "0/1" }});
        if matches!(phase, "Succeeded" | "Failed" | "Error") {
            finish_node(&mut node, wf, &id, pod.as_deref(), phase, now);
        }
        walk.children.push(json!(id));
        walk.nodes.insert(id, node);
        phase
    }

    /// Walks the plan group by group (a group starts once the previous one succeeded) and
    /// writes the Workflow's phase, progress and nodes (operator.go `operate`).
    fn sync(&self, ctx: &mut Ctx<'_>, key: &Key) {
        let Some(wf) = ctx.get(WF, &key.namespace, &key.name) else {
            return;
        };
        if deleting(&wf) || wf["metadata"]["labels"][COMPLETED_LABEL] == "true" {
            return;
        }
        let groups = plan(&wf);
        let total: usize = groups.iter().map(Vec::len).sum();
        let mut walk = Walk::default();
        for group in &groups {
            let mut group_done = true;
            for (step, tmpl) in group {
                let phase = self.step(ctx, &wf, (step, tmpl), &mut walk);
                group_done &= phase == "Succeeded";
            }
            if !group_done {
                break;
            }
        }
        let phase = if walk.errored.is_some() {
            "Error"
        } else if walk.failed.is_some() {
            "Failed"
        } else if total > 0 && walk.succeeded == total {
            "Succeeded"
        } else {
            "Running"
        };
        let is_leaf_entry = groups.len() == 1 && groups[0].len() == 1 && groups[0][0].0.is_empty();
        let status = workflow_status(&wf, walk, phase, total, is_leaf_entry, ctx.now());
        write(ctx, &wf, status, phase);
    }

    fn step_pod(&self, wf: &Value, tmpl: &str, node_name: &str, id: &str, pname: &str) -> Value {
        let t = template(wf, tmpl).cloned().unwrap_or(json!({}));
        let mut anns = t
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        anns.entry(model::RUN_FOR).or_insert(json!("2s"));
        anns.entry(model::STARTUP).or_insert(json!("1s"));
        anns.insert(NODE_NAME.into(), json!(node_name));
        anns.insert("workflows.argoproj.io/node-id".into(), json!(id));
        let mut labels = t
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let wname = s(wf, "/metadata/name");
        labels.insert(WORKFLOW_LABEL.into(), json!(wname));
        labels.insert(COMPLETED_LABEL.into(), json!("false"));
        let mut c = t
            .get("container")
            .cloned()
            .unwrap_or(json!({"image": "busybox"}));
        c["name"] = json!("main");
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pname, "namespace": s(wf, "/metadata/namespace"),
                "labels": labels, "annotations": anns,
                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                    "name": wname, "uid": wf["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"restartPolicy": "Never", "serviceAccountName": wf["spec"]["serviceAccountName"].as_str().unwrap_or("default"),
                "containers": [c]}})
    }
}

/// What walking a Workflow's steps found.
#[derive(Default)]
struct Walk {
    nodes: Map<String, Value>,
    children: Vec<Value>,
    succeeded: usize,
    failed: Option<String>,
    errored: Option<String>,
}

/// A finished node: its finish time (kept once set), exit code and message.
fn finish_node(
    node: &mut Value,
    wf: &Value,
    id: &str,
    pod: Option<&Value>,
    phase: &str,
    now: Timestamp,
) {
    node["finishedAt"] = wf
        .pointer(&format!("/status/nodes/{id}/finishedAt"))
        .filter(|v| v.is_string())
        .cloned()
        .unwrap_or_else(|| json!(ts(now)));
    if let Some(p) = pod {
        let code = p
            .pointer("/status/containerStatuses/0/state/terminated/exitCode")
            .cloned();
        if phase == "Failed" {
            node["message"] = json!(format!(
                "Error (exit code {})",
                code.clone().unwrap_or(json!(1))
            ));
        }
        node["outputs"] = json!({"exitCode": code.map(|c| c.to_string()).unwrap_or_default()});
    }
}

/// The Workflow's status from the walk.
fn workflow_status(
    wf: &Value,
    walk: Walk,
    phase: &str,
    total: usize,
    leaf_entry: bool,
    now: Timestamp,
) -> Value {
    let name = s(wf, "/metadata/name");
    let done = phase != "Running";
    let started = wf
        .pointer("/status/startedAt")
        .filter(|v| v.is_string())
        .cloned()
        .unwrap_or_else(|| json!(ts(now)));
    let finished = if done {
        wf.pointer("/status/finishedAt")
            .filter(|v| v.is_string())
            .cloned()
            .unwrap_or_else(|| json!(ts(now)))
    } else {
        Value::Null
    };
    let mut nodes = walk.nodes;
    let progress = format!("{}/{total}", walk.succeeded);
    if !leaf_entry {
        nodes.insert(name.to_string(), json!({"id": name, "name": name, "displayName": name, "type": "Steps",
            "templateName": s(wf, "/spec/entrypoint"), "phase": phase, "startedAt": started, "finishedAt": finished,
            "children": walk.children, "progress": progress}));
    }
    let mut status = json!({"phase": phase, "startedAt": started, "finishedAt": finished,
        "progress": progress, "nodes": nodes,
        "artifactRepositoryRef": {"default": true, "artifactRepository": {}}});
    if let Some(m) = walk.errored.or(walk.failed) {
        status["message"] = json!(m);
    }
    status
}

/// Writes the Workflow's status and phase labels, and the event when it finished.
fn write(ctx: &mut Ctx<'_>, wf: &Value, status: Value, phase: &str) {
    if wf.get("status") == Some(&status) && wf["metadata"]["labels"][PHASE_LABEL] == phase {
        return;
    }
    let done = phase != "Running";
    let mut o = wf.clone();
    o["status"] = status;
    o["metadata"]["labels"][PHASE_LABEL] = json!(phase);
    if done {
        o["metadata"]["labels"][COMPLETED_LABEL] = json!("true");
    }
    o["metadata"]["resourceVersion"] = json!("");
    if ctx.update(WF, o).is_ok() && done {
        let (kind, reason, msg) = if phase == "Succeeded" {
            (
                "Normal",
                "WorkflowSucceeded",
                "Workflow completed".to_string(),
            )
        } else {
            ("Warning", "WorkflowFailed", phase.to_string())
        };
        ctx.record_event(wf, kind, reason, &msg, "workflow-controller");
    }
}

impl Controller for Argo {
    fn name(&self) -> &'static str {
        "argo-workflows"
    }
    // argo-workflows workflow/controller/controller.go: the pod informer feeds podQueue;
    // enqueueWfFromPodLabel puts the Workflow on wfQueue with AddRateLimited.
    fn lag(&self) -> Lag {
        Lag::millis(100, 1000)
    }
    fn watches(&self) -> &'static [&'static str] {
        &[WF, "pods"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        // The workflow controller runs in its own pods: while none is Ready nothing is
        // scheduled, started or observed; when one is back it lists every Workflow again
        // (its informers start from a fresh list).
        let up = controller_up(ctx);
        self.schedule(ctx, up);
        if !up {
            self.was_down = true;
            return;
        }
        let mut todo: BTreeSet<Key> = BTreeSet::new();
        if ctx.resync() || std::mem::take(&mut self.was_down) {
            todo.extend(ctx.list(WF, None).iter().map(|w| key_of(w)));
        }
        for e in ctx.changed(WF) {
            todo.insert(Key::new(e.namespace.clone(), e.name.clone()));
        }
        let from_pods: Vec<Key> = ctx
            .changed("pods")
            .filter_map(|e| {
                let w = e.object["metadata"]["labels"][WORKFLOW_LABEL].as_str()?;
                Some(Key::new(e.namespace.clone(), w))
            })
            .collect();
        todo.extend(from_pods);
        for key in todo {
            self.sync(ctx, &key);
        }
    }
}

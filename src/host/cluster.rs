//! `cluster::` — what a playbook reads and changes in the cluster: pods and workloads,
//! readiness, restarts and termination reasons, InferenceServices, HPAs, Argo workflows,
//! events; scale and rollout restart. Everything through the Kubernetes API.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use rhai::{Array, Dynamic, Map, NativeCallContext};
use serde_json::Value;

pub(crate) use crate::connection::api_resource;
use crate::host::{RhaiResultOf, error, session};
use crate::session::Session;

/// A workload reference as kubectl writes it: `deployment/name`, `sts/name`, `rs/name`.
pub(crate) struct Workload {
    pub kind: &'static str,
    pub plural: &'static str,
    pub name: String,
}

pub(crate) fn workload(ctx: &NativeCallContext, text: &str) -> RhaiResultOf<Workload> {
    let (kind, name) = text.split_once('/').ok_or_else(|| {
        error(ctx, format!("workload {text:?}: write it as kind/name, e.g. \"deployment/sklearn-iris-predictor\""))
    })?;
    let (kind, plural) = match kind.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" => ("Deployment", "deployments"),
        "statefulset" | "statefulsets" | "sts" => ("StatefulSet", "statefulsets"),
        "replicaset" | "replicasets" | "rs" => ("ReplicaSet", "replicasets"),
        other => {
            return Err(error(
                ctx,
                format!(
                    "workload {text:?}: unknown kind {other:?} (deployment, statefulset or replicaset)"
                ),
            ));
        }
    };
    Ok(Workload {
        kind,
        plural,
        name: name.to_string(),
    })
}

/// The dynamic API of a workload kind in `ns`.
fn workload_api(s: &Session, ns: &str, w: &Workload) -> Api<DynamicObject> {
    let ar = api_resource("apps", "v1", w.kind, w.plural);
    Api::namespaced_with(s.target.client.clone(), ns, &ar)
}

/// Every write a playbook makes outside Chaos Mesh goes through here: protected namespaces
/// (the cluster's own, Chaos Mesh's) are refused unless `options` says
/// `allow_protected_namespaces: true`.
pub(crate) fn guard_write(
    ctx: &NativeCallContext,
    s: &Session,
    what: &str,
    namespace: &str,
    options: &Map,
) -> RhaiResultOf<()> {
    if let Some(k) = options
        .keys()
        .find(|k| k.as_str() != "allow_protected_namespaces")
    {
        return Err(error(
            ctx,
            format!("{what}: unknown option `{k}` (allow_protected_namespaces)"),
        ));
    }
    let allowed = options
        .get("allow_protected_namespaces")
        .and_then(|v| v.as_bool().ok())
        .unwrap_or(false);
    let ns = namespace.to_string();
    if !allowed && crate::host::chaos::protected(s, [&ns]).is_some() {
        return Err(error(
            ctx,
            format!(
                "refusing to {what} in namespace {namespace:?}: it is protected (pass #{{ allow_protected_namespaces: true }} if you mean it)"
            ),
        ));
    }
    Ok(())
}

fn scale_with(
    ctx: &NativeCallContext,
    namespace: &str,
    workload: &str,
    replicas: i64,
    options: &Map,
) -> RhaiResultOf<()> {
    let s = session(ctx)?;
    let w = self::workload(ctx, workload)?;
    if !(0..=1000).contains(&replicas) {
        return Err(error(
            ctx,
            format!("scale {workload}: replicas must be 0..1000, not {replicas}"),
        ));
    }
    guard_write(ctx, &s, &format!("scale {workload}"), namespace, options)?;
    if s.dry_run {
        (s.output)(crate::session::Line::Print(format!(
            "dry run: would scale {workload} in {namespace} to {replicas}"
        )));
        return Ok(());
    }
    let api = workload_api(&s, namespace, &w);
    let before = s.rt.block_on(api.get_scale(&w.name)).map_err(|e| {
        api_error(
            ctx,
            &format!("reading the scale of {workload} in {namespace}"),
            e,
        )
    })?;
    let restore = crate::session::Restore {
        workload: crate::session::ObjectRef::new("apps/v1", w.kind, Some(namespace), &w.name),
        plural: w.plural.to_string(),
        replicas: before.spec.and_then(|sp| sp.replicas).unwrap_or(0).into(),
    };
    s.will_scale(restore).map_err(|e| error(ctx, e))?;
    let patch = serde_json::json!({ "spec": { "replicas": replicas } });
    s.rt.block_on(api.patch_scale(
        &w.name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    ))
    .map_err(|e| api_error(ctx, &format!("scaling {workload} in {namespace}"), e))?;
    Ok(())
}

fn rollout_restart_with(
    ctx: &NativeCallContext,
    namespace: &str,
    workload: &str,
    options: &Map,
) -> RhaiResultOf<()> {
    let s = session(ctx)?;
    let w = self::workload(ctx, workload)?;
    guard_write(ctx, &s, &format!("restart {workload}"), namespace, options)?;
    if s.dry_run {
        (s.output)(crate::session::Line::Print(format!(
            "dry run: would restart {workload} in {namespace}"
        )));
        return Ok(());
    }
    let patch = serde_json::json!({ "spec": { "template": { "metadata": { "annotations": {
        "kubectl.kubernetes.io/restartedAt": s.now().to_string()
    }}}}});
    s.rt.block_on(workload_api(&s, namespace, &w).patch(
        &w.name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    ))
    .map_err(|e| api_error(ctx, &format!("restarting {workload} in {namespace}"), e))?;
    Ok(())
}

/// A Kubernetes API error as a script error that keeps the server's reason; a request ended
/// by Ctrl-C or `--timeout` is the run's stop, and a 403 names the permission that is missing.
pub(crate) fn api_error(
    ctx: &NativeCallContext,
    what: &str,
    e: kube::Error,
) -> Box<rhai::EvalAltResult> {
    if let Ok(s) = session(ctx) {
        if let Some(reason) = s.stop.check() {
            return crate::host::expect::terminated(reason, ctx.call_position());
        }
    }
    match e {
        kube::Error::Api(s) if s.code == 403 => error(
            ctx,
            format!(
                "{what}: {} (the playbook's account lacks this permission; `playbook rbac` prints the rules playbooks need)",
                crate::connection::forbidden(&s.message)
            ),
        ),
        kube::Error::Api(s) => error(
            ctx,
            format!("{what}: {} ({}, {})", s.message, s.reason, s.code),
        ),
        other => error(ctx, format!("{what}: {other}")),
    }
}

/// JSON to a Rhai value (maps and arrays as Rhai maps and arrays).
pub(crate) fn to_dynamic(ctx: &NativeCallContext, v: &Value) -> RhaiResultOf<Dynamic> {
    rhai::serde::to_dynamic(v).map_err(|e| error(ctx, format!("cannot convert {v}: {e}")))
}

/// A pod as a playbook sees it.
pub(crate) fn pod_summary(p: &Pod) -> Value {
    let status = p.status.clone().unwrap_or_default();
    let containers = status.container_statuses.unwrap_or_default();
    let restarts: i32 = containers.iter().map(|c| c.restart_count).sum();
    let ready = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let last_reason = containers
        .iter()
        .filter_map(|c| c.last_state.as_ref()?.terminated.as_ref()?.reason.clone())
        .next()
        .unwrap_or_default();
    let waiting = containers
        .iter()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .next()
        .unwrap_or_default();
    serde_json::json!({
        "name": p.metadata.name.clone().unwrap_or_default(),
        "namespace": p.metadata.namespace.clone().unwrap_or_default(),
        "phase": status.phase.unwrap_or_default(),
        "ready": ready,
        "restarts": restarts,
        "last_termination": last_reason,
        "waiting": waiting,
        "node": p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "ip": status.pod_ip.unwrap_or_default(),
        "deleting": p.metadata.deletion_timestamp.is_some(),
    })
}

/// Lists pods in `ns` matching a label selector ("" for all).
pub(crate) fn list_pods(
    ctx: &NativeCallContext,
    s: &Session,
    ns: &str,
    selector: &str,
) -> RhaiResultOf<Vec<Pod>> {
    let ar = api_resource("", "v1", "Pod", "pods");
    let list =
        s.rt.block_on(s.target.list(&ar, Some(ns), selector))
            .map_err(|e| api_error(ctx, &format!("listing pods in {ns}"), e))?;
    list.into_iter()
        .map(|o| {
            serde_json::from_value::<Pod>(json(o))
                .map_err(|e| error(ctx, format!("a pod in {ns}: {e}")))
        })
        .collect()
}

/// An object as JSON, as the API server serves it: its fields moved, not serialized again
/// (only the metadata is), since conditions read objects many times a second.
pub(crate) fn json(o: kube::api::DynamicObject) -> Value {
    let mut v = match o.data {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    if let Some(t) = o.types {
        v.insert("apiVersion".into(), t.api_version.into());
        v.insert("kind".into(), t.kind.into());
    }
    v.insert(
        "metadata".into(),
        serde_json::to_value(o.metadata).unwrap_or_default(),
    );
    Value::Object(v)
}

/// One object by kind and name through the target's cache; a missing one is an error that
/// says so as the API server would.
fn get_through(
    ctx: &NativeCallContext,
    s: &Session,
    ar: &kube::discovery::ApiResource,
    ns: Option<&str>,
    name: &str,
    what: &str,
) -> RhaiResultOf<Value> {
    let got =
        s.rt.block_on(s.target.get_opt(ar, ns, name))
            .map_err(|e| api_error(ctx, what, e))?;
    match got {
        Some(o) => Ok(json(o)),
        // Worded as the API server's NotFound (the group-qualified resource).
        None => {
            let resource = if ar.group.is_empty() {
                ar.plural.clone()
            } else {
                format!("{}.{}", ar.plural, ar.group)
            };
            Err(error(
                ctx,
                format!("{what}: {resource} {name:?} not found (NotFound, 404)"),
            ))
        }
    }
}

/// Gets one object through discovery: `kind/name` in `ns`, as JSON.
fn get_object(ctx: &NativeCallContext, s: &Session, ns: &str, what: &str) -> RhaiResultOf<Value> {
    let (kind, name) = kind_name(ctx, what)?;
    let k = resolve(ctx, s, kind)?;
    let ns = k.namespaced.then_some(ns);
    get_through(ctx, s, &k.resource, ns, name, &format!("getting {what}"))
}

/// A kind as kubectl names it (`po`, `deploy`, `isvc`, `pod.v1`, `workflow.argoproj.io`).
fn resolve(
    ctx: &NativeCallContext,
    s: &Session,
    kind: &str,
) -> RhaiResultOf<crate::connection::Kind> {
    match s.rt.block_on(s.target.kind(kind)) {
        Ok(k) => Ok(k),
        Err(crate::connection::KindError::Api(e)) => {
            Err(api_error(ctx, "discovering the cluster's kinds", e))
        }
        Err(e) => Err(error(ctx, e.to_string())),
    }
}

/// `kind/name` split, or a script error showing how to write it.
fn kind_name<'a>(ctx: &NativeCallContext, what: &'a str) -> RhaiResultOf<(&'a str, &'a str)> {
    what.split_once('/').ok_or_else(|| {
        error(
            ctx,
            format!("{what:?}: write it as kind/name, e.g. \"inferenceservice/sklearn-iris\""),
        )
    })
}

/// Whether an object's `status.conditions` has `kind` with status "True".
pub(crate) fn condition_true(obj: &Value, kind: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == kind && c["status"] == "True")
        })
}

fn int(v: &Value, path: &str) -> i64 {
    v.pointer(path).and_then(Value::as_i64).unwrap_or(0)
}

/// What each string argument of these functions names (see [`Arg`](super::Arg)).
pub(crate) const ARGUMENTS: &[(&str, &[super::Arg])] = {
    use super::Arg::*;
    &[
        ("pods", &[Namespace, Labels]),
        ("readiness", &[Namespace, Workload]),
        ("inference_service", &[Namespace, Other]),
        ("hpa", &[Namespace, Other]),
        ("workflows", &[Namespace, Labels]),
        ("events", &[Namespace, Other]),
        ("get", &[Namespace, Object]),
        ("exists", &[Namespace, Object]),
        ("scale", &[Namespace, Workload]),
        ("rollout_restart", &[Namespace, Workload]),
        ("proxy_get", &[Namespace, Service, Other]),
        ("delete_pod", &[Namespace, Other]),
    ]
};

#[rhai::export_module]
pub mod api {
    use super::*;

    /// The pods in `namespace` matching a label `selector` ("" for all), each a map: name,
    /// namespace, phase, ready, restarts, last_termination (e.g. "OOMKilled"), waiting (e.g.
    /// "CrashLoopBackOff"), node, ip, deleting.
    ///
    /// ```rhai
    /// for p in cluster::pods("kserve-inference", "app=sklearn-iris-predictor") { print(`${p.name} ${p.phase}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn pods(ctx: NativeCallContext, namespace: &str, selector: &str) -> RhaiResultOf<Array> {
        let s = session(&ctx)?;
        let pods = list_pods(&ctx, &s, namespace, selector)?;
        pods.iter()
            .map(|p| to_dynamic(&ctx, &pod_summary(p)))
            .collect()
    }

    /// Readiness of a workload (`deployment/NAME`, `statefulset/NAME`, `replicaset/NAME`):
    /// a map with desired, ready, available, updated.
    ///
    /// ```rhai
    /// let r = cluster::readiness("mlflow", "deployment/mlflow");
    /// if r.ready < r.desired { log("degraded"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn readiness(ctx: NativeCallContext, namespace: &str, workload: &str) -> RhaiResultOf<Map> {
        let s = session(&ctx)?;
        let w = super::workload(&ctx, workload)?;
        let ar = api_resource("apps", "v1", w.kind, w.plural);
        let what = format!("reading {workload} in {namespace}");
        let v = get_through(&ctx, &s, &ar, Some(namespace), &w.name, &what)?;
        let mut m = Map::new();
        m.insert("desired".into(), int(&v, "/spec/replicas").into());
        m.insert("ready".into(), int(&v, "/status/readyReplicas").into());
        m.insert(
            "available".into(),
            int(&v, "/status/availableReplicas").into(),
        );
        m.insert("updated".into(), int(&v, "/status/updatedReplicas").into());
        crate::session::sample_map(&s, "readiness", &format!("{namespace}/{workload}"), &m);
        Ok(m)
    }

    /// A KServe InferenceService's readiness: a map with ready, predictor_ready, url.
    ///
    /// ```rhai
    /// let isvc = cluster::inference_service("kserve-inference", "sklearn-iris");
    /// if !isvc.ready { log("not ready"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn inference_service(
        ctx: NativeCallContext,
        namespace: &str,
        name: &str,
    ) -> RhaiResultOf<Map> {
        let s = session(&ctx)?;
        let v = get_object(&ctx, &s, namespace, &format!("inferenceservice/{name}"))?;
        let mut m = Map::new();
        m.insert("ready".into(), condition_true(&v, "Ready").into());
        m.insert(
            "predictor_ready".into(),
            condition_true(&v, "PredictorReady").into(),
        );
        let url = v
            .pointer("/status/url")
            .and_then(Value::as_str)
            .unwrap_or_default();
        m.insert("url".into(), url.into());
        Ok(m)
    }

    /// A HorizontalPodAutoscaler's state: a map with current, desired, min, max, and
    /// cpu_utilization (percent of requests, -1 when unknown).
    ///
    /// ```rhai
    /// let h = cluster::hpa("training", "trainer");
    /// if h.desired > h.current { log("scaling up"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn hpa(ctx: NativeCallContext, namespace: &str, name: &str) -> RhaiResultOf<Map> {
        let s = session(&ctx)?;
        let v = get_object(
            &ctx,
            &s,
            namespace,
            &format!("horizontalpodautoscaler/{name}"),
        )?;
        let util = v
            .pointer("/status/currentMetrics")
            .and_then(Value::as_array)
            .and_then(|ms| {
                ms.iter().find_map(|m| {
                    m.pointer("/resource/current/averageUtilization")
                        .and_then(Value::as_i64)
                })
            })
            .unwrap_or(-1);
        let mut m = Map::new();
        m.insert("current".into(), int(&v, "/status/currentReplicas").into());
        m.insert("desired".into(), int(&v, "/status/desiredReplicas").into());
        m.insert(
            "min".into(),
            v.pointer("/spec/minReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)
                .into(),
        );
        m.insert("max".into(), int(&v, "/spec/maxReplicas").into());
        m.insert("cpu_utilization".into(), util.into());
        crate::session::sample_map(&s, "hpa", &format!("{namespace}/{name}"), &m);
        Ok(m)
    }

    /// Argo Workflows in `namespace` matching a label `selector` ("" for all), oldest first:
    /// each a map with name, phase (Pending, Running, Succeeded, Failed, Error), started,
    /// finished, finished_ago_s (seconds on the run's clock; -1 while running), message.
    ///
    /// ```rhai
    /// let failed = cluster::workflows("argo", "").filter(|w| w.phase == "Failed");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn workflows(
        ctx: NativeCallContext,
        namespace: &str,
        selector: &str,
    ) -> RhaiResultOf<Array> {
        let s = session(&ctx)?;
        let ar = api_resource("argoproj.io", "v1alpha1", "Workflow", "workflows");
        let list =
            s.rt.block_on(s.target.list(&ar, Some(namespace), selector))
                .map_err(|e| api_error(&ctx, &format!("listing workflows in {namespace}"), e))?;
        let now = s.target.clock.time_read();
        let mut out: Vec<Value> = list
            .iter()
            .map(|w| {
                let v = serde_json::to_value(w).unwrap_or_default();
                let get = |p: &str| {
                    v.pointer(p)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let finished = get("/status/finishedAt");
                let ago = finished
                    .parse::<jiff::Timestamp>()
                    .map(|t| now.duration_since(t).as_secs_f64())
                    .unwrap_or(-1.0);
                serde_json::json!({
                    "name": get("/metadata/name"),
                    "created": get("/metadata/creationTimestamp"),
                    "phase": get("/status/phase"),
                    "started": get("/status/startedAt"),
                    "finished": finished,
                    "finished_ago_s": ago,
                    "message": get("/status/message"),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (a["created"].as_str(), a["name"].as_str())
                .cmp(&(b["created"].as_str(), b["name"].as_str()))
        });
        out.iter().map(|v| to_dynamic(&ctx, v)).collect()
    }

    /// Events in `namespace` from the last `window` (e.g. "5m"), oldest first: each a map with
    /// type, reason, object (kind/name), message, count, seconds_ago.
    ///
    /// ```rhai
    /// let kills = cluster::events("kserve-inference", "2m").filter(|e| e.reason == "Killing");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn events(ctx: NativeCallContext, namespace: &str, window: &str) -> RhaiResultOf<Array> {
        let s = session(&ctx)?;
        let window = crate::host::expect::duration_arg(&ctx, "events window", window)?;
        let api: Api<k8s_openapi::api::core::v1::Event> =
            Api::namespaced(s.target.client.clone(), namespace);
        let list =
            s.rt.block_on(api.list(&ListParams::default()))
                .map_err(|e| api_error(&ctx, &format!("listing events in {namespace}"), e))?;
        let now = s.now();
        let mut out: Vec<(f64, Value)> = list
            .items
            .iter()
            .filter_map(|e| {
                let when = e
                    .last_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .or(e.event_time.as_ref().map(|t| t.0))
                    .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))?;
                let ago = now.duration_since(when).as_secs_f64();
                (ago <= window.as_secs_f64()).then(|| {
                    (ago, serde_json::json!({
                        "type": e.type_.clone().unwrap_or_default(),
                        "reason": e.reason.clone().unwrap_or_default(),
                        "object": format!("{}/{}",
                            e.involved_object.kind.clone().unwrap_or_default().to_ascii_lowercase(),
                            e.involved_object.name.clone().unwrap_or_default()),
                        "message": e.message.clone().unwrap_or_default(),
                        "count": e.count.unwrap_or(1),
                        "seconds_ago": ago,
                    }))
                })
            })
            .collect();
        out.sort_by(|a, b| b.0.total_cmp(&a.0));
        out.iter().map(|(_, v)| to_dynamic(&ctx, v)).collect()
    }

    /// Any object as a map, by `kind/name`. Kinds as kubectl names them, found by discovery:
    /// plural, singular or short name (`po`, `deploy`, `sts`, `svc`, `hpa`, `isvc`), or with
    /// its group (`workflow.argoproj.io`); the core group and `apps` come first. A missing
    /// object is an error: ask `cluster::exists` first when it may be absent.
    ///
    /// ```rhai
    /// let isvc = cluster::get("kserve-inference", "isvc/sklearn-iris");
    /// print(isvc.status.url);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn get(ctx: NativeCallContext, namespace: &str, what: &str) -> RhaiResultOf<Dynamic> {
        let s = session(&ctx)?;
        let v = get_object(&ctx, &s, namespace, what)?;
        to_dynamic(&ctx, &v)
    }

    /// Whether an object exists, by `kind/name` (kinds as for `cluster::get`): false when it
    /// does not, never an error for that.
    ///
    /// ```rhai
    /// if cluster::exists("argo", "workflow/nightly") { log("still there"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn exists(ctx: NativeCallContext, namespace: &str, what: &str) -> RhaiResultOf<bool> {
        let s = session(&ctx)?;
        let (kind, name) = kind_name(&ctx, what)?;
        let k = resolve(&ctx, &s, kind)?;
        let ns = k.namespaced.then_some(namespace);
        let got =
            s.rt.block_on(s.target.get_opt(&k.resource, ns, name))
                .map_err(|e| api_error(&ctx, &format!("looking for {what} in {namespace}"), e))?;
        Ok(got.is_some())
    }

    /// Sets a workload's replicas (through its scale subresource, as `kubectl scale` does).
    /// Cleanup scales it back to the replicas it had before the playbook first scaled it.
    /// Protected namespaces (kube-system, chaos-testing, ...) are refused.
    ///
    /// ```rhai
    /// cluster::scale("training", "deployment/trainer", 2);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn scale(
        ctx: NativeCallContext,
        namespace: &str,
        workload: &str,
        replicas: i64,
    ) -> RhaiResultOf<()> {
        super::scale_with(&ctx, namespace, workload, replicas, &Map::new())
    }

    /// `cluster::scale` with options: `#{ allow_protected_namespaces: true }` to scale in a
    /// protected namespace.
    ///
    /// ```rhai
    /// cluster::scale("kube-system", "deployment/coredns", 2, #{ allow_protected_namespaces: true });
    /// ```
    #[rhai_fn(name = "scale", return_raw)]
    pub fn scale_opts(
        ctx: NativeCallContext,
        namespace: &str,
        workload: &str,
        replicas: i64,
        options: Map,
    ) -> RhaiResultOf<()> {
        super::scale_with(&ctx, namespace, workload, replicas, &options)
    }

    /// Restarts a workload's pods the way `kubectl rollout restart` does (a new template
    /// annotation, so the controller replaces pods within its surge limits). Protected
    /// namespaces are refused.
    ///
    /// ```rhai
    /// cluster::rollout_restart("mlflow", "deployment/mlflow");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn rollout_restart(
        ctx: NativeCallContext,
        namespace: &str,
        workload: &str,
    ) -> RhaiResultOf<()> {
        super::rollout_restart_with(&ctx, namespace, workload, &Map::new())
    }

    /// `cluster::rollout_restart` with options: `#{ allow_protected_namespaces: true }`.
    ///
    /// ```rhai
    /// cluster::rollout_restart("kube-system", "deployment/coredns", #{ allow_protected_namespaces: true });
    /// ```
    #[rhai_fn(name = "rollout_restart", return_raw)]
    pub fn rollout_restart_opts(
        ctx: NativeCallContext,
        namespace: &str,
        workload: &str,
        options: Map,
    ) -> RhaiResultOf<()> {
        super::rollout_restart_with(&ctx, namespace, workload, &options)
    }

    /// GETs `path` from a Service through the API server's proxy (as `kubectl get --raw` does)
    /// and returns its answer: a map or array when it is JSON, else the text. `service` is
    /// `name` or `name:port`. An error answer (4xx, 5xx) is a script error with its message.
    ///
    /// ```rhai
    /// let health = cluster::proxy_get("argo", "pipeline-runner:8080", "/health");
    /// print(health.breaker);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn proxy_get(
        ctx: NativeCallContext,
        namespace: &str,
        service: &str,
        path: &str,
    ) -> RhaiResultOf<Dynamic> {
        let s = session(&ctx)?;
        let url = format!(
            "/api/v1/namespaces/{namespace}/services/{service}/proxy/{}",
            path.trim_start_matches('/')
        );
        let req = http::Request::get(&url)
            .body(Vec::new())
            .map_err(|e| error(&ctx, e.to_string()))?;
        let text =
            s.rt.block_on(s.target.client.request_text(req))
                .map_err(|e| {
                    api_error(
                        &ctx,
                        &format!("GET {path} from service {namespace}/{service}"),
                        e,
                    )
                })?;
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => to_dynamic(&ctx, &v),
            Err(_) => Ok(text.into()),
        }
    }

    /// The nodes matching a label `selector` ("" for all), by name: each a map with name,
    /// ready, unschedulable, labels, taints (`key=value:Effect`), capacity and allocatable
    /// (resource → quantity, e.g. `nvidia.com/gpu` → "4"). Which node a pod is on:
    /// `cluster::pods(...)`'s `node`.
    ///
    /// ```rhai
    /// let gpus = cluster::nodes("nvidia.com/gpu.present=true");
    /// print(gpus.map(|n| n.name));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn nodes(ctx: NativeCallContext, selector: &str) -> RhaiResultOf<Array> {
        super::super::nodes::nodes(&ctx, selector)
    }

    /// Cordons a node (`spec.unschedulable`, as `kubectl cordon`): no new pod is scheduled
    /// there; pods on it keep running. Undone at cleanup — and by `playbook cleanup` after a
    /// crash — through the journal. A node already cordoned by someone else is left as it is.
    ///
    /// ```rhai
    /// cluster::cordon("sim-gpu-1");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn cordon(ctx: NativeCallContext, node: &str) -> RhaiResultOf<()> {
        super::super::nodes::cordon(&ctx, node)
    }

    /// Uncordons a node this run cordoned (or drained) now, rather than at cleanup.
    ///
    /// ```rhai
    /// cluster::uncordon("sim-gpu-1");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn uncordon(ctx: NativeCallContext, node: &str) -> RhaiResultOf<()> {
        super::super::nodes::uncordon(&ctx, node)
    }

    /// Drains a node as `kubectl drain --ignore-daemonsets` does: cordons it (undone at
    /// cleanup), then evicts its pods through the Eviction API, so PodDisruptionBudgets are
    /// honoured — an eviction refused (429) is asked again every 5 s until the timeout (2 min),
    /// then reported — and waits for the evicted pods to be gone. DaemonSet and mirror pods,
    /// finished pods and those of protected namespaces are skipped. More than 5 pods to evict
    /// needs `allow_large_blast_radius: true`. Returns a map: evicted (`ns/name`), refused
    /// (each `#{ pod, reason }`), skipped (each `#{ pod, reason }`), remaining (evicted but not
    /// gone by the timeout), took_ms.
    ///
    /// ```rhai
    /// let d = cluster::drain("sim-gpu-1");
    /// if d.refused.len() > 0 { log(`refused: ${d.refused}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn drain(ctx: NativeCallContext, node: &str) -> RhaiResultOf<Map> {
        super::super::nodes::drain(&ctx, node, &Map::new())
    }

    /// `cluster::drain` with options: `timeout` (how long refused evictions are retried and
    /// evicted pods awaited, e.g. "30s"), `allow_large_blast_radius`.
    ///
    /// ```rhai
    /// let d = cluster::drain("sim-gpu-1", #{ timeout: "30s" });
    /// ```
    #[rhai_fn(name = "drain", return_raw)]
    pub fn drain_opts(ctx: NativeCallContext, node: &str, options: Map) -> RhaiResultOf<Map> {
        super::super::nodes::drain(&ctx, node, &options)
    }

    /// Deletes one pod (as Chaos Toolkit's `delete_pods` does; its controller replaces it).
    /// Protected namespaces are refused; a missing pod is an error.
    ///
    /// ```rhai
    /// let victim = cluster::pods("training", "app=finetune")[0];
    /// cluster::delete_pod("training", victim.name);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn delete_pod(ctx: NativeCallContext, namespace: &str, name: &str) -> RhaiResultOf<()> {
        super::super::nodes::delete_pod(&ctx, namespace, name, &Map::new())
    }

    /// `cluster::delete_pod` with options: `#{ allow_protected_namespaces: true }`.
    ///
    /// ```rhai
    /// cluster::delete_pod("kube-system", "coredns-0", #{ allow_protected_namespaces: true });
    /// ```
    #[rhai_fn(name = "delete_pod", return_raw)]
    pub fn delete_pod_opts(
        ctx: NativeCallContext,
        namespace: &str,
        name: &str,
        options: Map,
    ) -> RhaiResultOf<()> {
        super::super::nodes::delete_pod(&ctx, namespace, name, &options)
    }

    /// The names of the cluster's namespaces.
    ///
    /// ```rhai
    /// print(cluster::namespaces());
    /// ```
    #[rhai_fn(return_raw)]
    pub fn namespaces(ctx: NativeCallContext) -> RhaiResultOf<Array> {
        let s = session(&ctx)?;
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(s.target.client.clone());
        let list =
            s.rt.block_on(api.list(&ListParams::default()))
                .map_err(|e| api_error(&ctx, "listing namespaces", e))?;
        Ok(list
            .items
            .iter()
            .map(|n| n.metadata.name.clone().unwrap_or_default().into())
            .collect())
    }
}

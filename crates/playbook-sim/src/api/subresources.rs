//! Subresources: `scale` (autoscaling/v1 Scale over `spec.replicas`), pods' `log` and `eviction`, services' `proxy`.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::Sim;
use super::super::error::{ApiError, Reason};
use super::super::resources::ResourceDef;
use super::super::selector::LabelSelector;
use super::super::store::meta_str;
use super::proxy::ProxyRequest;
use super::verbs::{apply_patch, mutate, parse_body};
use super::{Req, Target, error, json as json_resp};

fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .and_then(|s| LabelSelector::from_json(s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta_str(obj, "name"), "namespace": meta_str(obj, "namespace"), "uid": meta_str(obj, "uid"),
            "resourceVersion": meta_str(obj, "resourceVersion"), "creationTimestamp": meta_str(obj, "creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {"replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector},
    })
}

pub(crate) fn scale(
    sim: &Sim,
    r: &Req,
    t: &Target,
    def: &ResourceDef,
    m: &Method,
) -> Result<Response, ApiError> {
    let name = t.name.as_deref().unwrap_or_default();
    let ns = t.ns.as_deref().unwrap_or_default();
    let scale = mutate(sim, r, |w| {
        let cur = w
            .store()
            .get(t.res, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&def.key(), name))?;
        let mut sc = scale_of(&cur);
        match *m {
            Method::GET => return Ok(sc),
            Method::PUT => sc = parse_body(r)?,
            Method::PATCH => apply_patch(r, def, &mut sc)?,
            _ => return Err(ApiError::method_not_allowed()),
        }
        let replicas = sc
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .ok_or_else(|| {
                ApiError::invalid(
                    "Scale",
                    "autoscaling",
                    name,
                    &[("spec.replicas".into(), "Required value".into())],
                )
            })?;
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                "autoscaling",
                name,
                &[(
                    "spec.replicas".into(),
                    format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                )],
            ));
        }
        let mut v = (*cur).clone();
        v["spec"]["replicas"] = json!(replicas);
        v["metadata"]["resourceVersion"] = sc
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(json!(""));
        let o = w.store_mut().update(t.res, ns, name, v, false)?;
        Ok(scale_of(&o))
    })?;
    Ok(json_resp(StatusCode::OK, &scale))
}

pub(crate) fn log(sim: &Sim, r: &Req, t: &Target) -> Result<Response, ApiError> {
    let name = t.name.as_deref().unwrap_or_default();
    let pod = sim
        .lock()
        .store()
        .get(t.res, t.ns.as_deref().unwrap_or_default(), name)
        .cloned()
        .ok_or_else(|| ApiError::not_found("pods", name))?;
    let container = container_of(&pod, r.q("container"))?;
    let handler = sim
        .inner
        .logs
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let text = match handler {
        Some(h) => h.logs(sim, &pod, Some(container.as_str())),
        None => kubelet_log(&pod, &container),
    };
    Ok((StatusCode::OK, [("content-type", "text/plain")], text).into_response())
}

/// The container a log or exec request means: the one named, or with `container` absent or
/// empty the pod's only container; else 400 as pkg/registry/core/pod/rest/log.go
/// (`podutil.GetContainerName` via `pod.LogLocation`) answers.
fn container_of(pod: &Value, asked: Option<&str>) -> Result<String, ApiError> {
    let name = meta_str(pod, "name");
    let names = |key: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    let init = names("initContainers");
    match asked.filter(|c| !c.is_empty()) {
        Some(c) if containers.iter().chain(&init).any(|x| x == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

/// The log a container's process would have written, as far as the kubelet's view of it goes
/// (used when no platform registered its own logs): its start, the image it runs, its
/// readiness and restarts, from the pod's status. A container not yet started has no log:
/// 400 `container "c" in pod "p" is waiting to start: ContainerCreating`, as the kubelet answers.
pub(crate) fn kubelet_log(pod: &Value, container: &str) -> String {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let st = statuses
        .iter()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(container));
    let spec = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        })
        .cloned()
        .unwrap_or(Value::Null);
    let image = spec.get("image").and_then(Value::as_str).unwrap_or("");
    let mut out = String::new();
    let Some(st) = st else { return out };
    let started = st
        .pointer("/state/running/startedAt")
        .and_then(Value::as_str)
        .unwrap_or("");
    if started.is_empty() {
        return out;
    }
    out.push_str(&format!("{started} starting {container} ({image})\n"));
    for p in spec
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = p.get("containerPort").and_then(Value::as_i64) {
            out.push_str(&format!("{started} listening on 0.0.0.0:{n}\n"));
        }
    }
    if st.get("ready").and_then(Value::as_bool) == Some(true) {
        out.push_str(&format!("{started} ready to serve requests\n"));
    }
    let restarts = st.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
    if restarts > 0 {
        out.push_str(&format!(
            "{started} restarted {restarts} time(s) before; last state: {}\n",
            st.pointer("/lastState/terminated/reason")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
        ));
    }
    out
}

/// `pods/NAME/exec` (and `attach`, `portforward`): these stream over a SPDY or WebSocket
/// upgrade, which this server does not offer; a request without the upgrade gets what a real
/// API server answers it (apimachinery/pkg/util/httpstream/httpstream.go `IsUpgradeRequest`,
/// apiserver/pkg/util/proxy/upgradeaware.go): 400 `Upgrade request required`. With the
/// upgrade headers it is refused the same way, so a client is never told a command ran.
pub(crate) fn exec(sim: &Sim, r: &Req, t: &Target) -> Result<Response, ApiError> {
    let name = t.name.as_deref().unwrap_or_default();
    let pod = sim
        .lock()
        .store()
        .get(t.res, t.ns.as_deref().unwrap_or_default(), name)
        .cloned()
        .ok_or_else(|| ApiError::not_found("pods", name))?;
    if t.sub.as_deref() == Some("exec") && r.q("command").is_none_or(str::is_empty) {
        // pkg/registry/core/pod/rest/subresources.go: ExecOptions need a command.
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    container_of(&pod, r.q("container"))?;
    Err(ApiError::bad_request("Upgrade request required"))
}

pub(crate) async fn proxy(sim: &Sim, r: Req, t: &Target) -> Result<Response, ApiError> {
    let full = t.name.clone().unwrap_or_default();
    let (svc, port) = match full.split_once(':') {
        Some((s, p)) => (s.to_string(), Some(p.to_string())),
        None => (full.clone(), None),
    };
    let ns = t.ns.clone().unwrap_or_default();
    if sim.lock().store().get(t.res, &ns, &svc).is_none() {
        return Err(ApiError::not_found("services", &svc));
    }
    let handler = sim
        .inner
        .proxy
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let unavailable = || {
        error(&ApiError::new(
            Reason::ServiceUnavailable,
            format!("no endpoints available for service \"{full}\""),
        ))
    };
    let Some(h) = handler else {
        return Ok(unavailable());
    };
    let req = ProxyRequest {
        method: r.method.to_string(),
        namespace: ns,
        service: svc,
        port,
        path: format!("/{}", t.rest),
        query: r.raw_query.clone(),
        headers: r.headers.clone(),
        body: r.body.clone(),
    };
    match h.handle(sim, req).await {
        None => Ok(unavailable()),
        Some(resp) => {
            let mut out = Response::new(axum::body::Body::from(resp.body));
            *out.status_mut() =
                StatusCode::from_u16(resp.status).unwrap_or(StatusCode::BAD_GATEWAY);
            for (k, v) in resp.headers {
                if let (Ok(k), Ok(v)) = (
                    axum::http::HeaderName::try_from(k),
                    axum::http::HeaderValue::try_from(v),
                ) {
                    out.headers_mut().insert(k, v);
                }
            }
            Ok(out)
        }
    }
}

/// `POST pods/NAME/eviction` (policy/v1 Eviction), as pkg/registry/core/pod/storage/eviction.go
/// `EvictionREST.Create`: a pod that is terminal, Pending or already being deleted is deleted
/// without a budget check (`canIgnorePDB`); more than one matching PodDisruptionBudget is a
/// 500; with one, a status not yet observed or `disruptionsAllowed` 0 is a 429
/// TooManyRequests with the `DisruptionBudget` cause, otherwise the grant is recorded in its
/// `status.disruptedPods` (`checkAndDecrement`) and the pod gets the `DisruptionTarget`
/// condition and is deleted gracefully (the Eviction's `deleteOptions`). A not-Ready pod
/// under a budget that is met is evicted without a grant (the default
/// `unhealthyPodEvictionPolicy` IfHealthyBudget). Answers 201 with a Success `Status`.
pub(crate) fn evict(sim: &Sim, r: &Req, t: &Target) -> Result<Response, ApiError> {
    use crate::controllers::disruption::{grant, pdbs_for_pod};
    use crate::controllers::util::{deleting, i, pod_ready, ts};
    use crate::store::DeleteOptions;
    let name = t.name.as_deref().unwrap_or_default().to_string();
    let ns = t.ns.as_deref().unwrap_or_default().to_string();
    let body = parse_body(r)?;
    if let Some(n) = body.pointer("/metadata/name").and_then(Value::as_str)
        && n != name
    {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let opts = &body["deleteOptions"];
    mutate(sim, r, |w| {
        let now = w.now();
        let reg = w.store().registry();
        let (Some(pods), Some(pdbs)) = (
            reg.lookup("pods"),
            reg.lookup("poddisruptionbudgets.policy"),
        ) else {
            return Err(ApiError::no_resource());
        };
        let pod = w
            .store()
            .get(pods, &ns, &name)
            .cloned()
            .ok_or_else(|| ApiError::not_found("pods", &name))?;
        let delete = DeleteOptions {
            grace_period_seconds: opts
                .get("gracePeriodSeconds")
                .and_then(Value::as_i64)
                .or_else(|| i(&pod, "/spec/terminationGracePeriodSeconds")),
            uid: opts
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string),
            resource_version: opts
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..Default::default()
        };
        let phase = pod["status"]["phase"].as_str().unwrap_or_default();
        let ignore_pdb = matches!(phase, "Succeeded" | "Failed" | "Pending") || deleting(&pod);
        if !ignore_pdb {
            let matching = pdbs_for_pod(w.store(), &pod);
            if matching.len() > 1 {
                return Err(ApiError::new(
                    Reason::InternalError,
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
            if let Some(pdb) = matching.first() {
                let pdb_name = meta_str(pdb, "name").to_string();
                let refuse = |detail: String| {
                    let mut e = ApiError::new(
                        Reason::TooManyRequests,
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                    );
                    e.details = Some(
                        json!({"causes": [{"reason": "DisruptionBudget", "message": detail}]}),
                    );
                    e
                };
                let observed = i(pdb, "/status/observedGeneration").unwrap_or(0);
                if observed < i(pdb, "/metadata/generation").unwrap_or(1) {
                    return Err(refuse(format!(
                        "The disruption budget {pdb_name} is still being processed by the server."
                    )));
                }
                let healthy = i(pdb, "/status/currentHealthy").unwrap_or(0);
                let desired = i(pdb, "/status/desiredHealthy").unwrap_or(0);
                let unhealthy_ok = !pod_ready(&pod) && healthy >= desired;
                if !unhealthy_ok {
                    let allowed = i(pdb, "/status/disruptionsAllowed").unwrap_or(0);
                    if allowed < 0 {
                        return Err(ApiError::new(
                            Reason::Forbidden,
                            "pdb disruptions allowed is negative",
                        ));
                    }
                    if allowed == 0 {
                        return Err(refuse(format!(
                            "The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently"
                        )));
                    }
                    let mut g = grant(pdb, &name, now);
                    g["metadata"]["resourceVersion"] = json!(meta_str(pdb, "resourceVersion"));
                    w.store_mut().update(pdbs, &ns, &pdb_name, g, true)?;
                }
            }
        }
        // addConditionAndDeletePod: the DisruptionTarget condition, then the deletion.
        if !deleting(&pod) && !matches!(phase, "Succeeded" | "Failed") {
            let mut p = (*pod).clone();
            let mut conds: Vec<Value> = p["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            conds.retain(|c| c["type"] != "DisruptionTarget");
            conds.push(json!({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting", "lastProbeTime": null, "lastTransitionTime": ts(now)}));
            p["status"]["conditions"] = json!(conds);
            p["metadata"]["resourceVersion"] = json!("");
            w.store_mut().update(pods, &ns, &name, p, true)?;
        }
        w.store_mut().delete(pods, &ns, &name, &delete)?;
        Ok(())
    })?;
    Ok(json_resp(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

//! Subresources: `scale` (autoscaling/v1 Scale over `spec.replicas`), pods' `log`, services' `proxy`.

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
    let container = r.q("container");
    if let Some(c) = container {
        let known = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|x| x.get("name").and_then(Value::as_str) == Some(c))
            });
        if !known {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
    }
    let handler = sim
        .inner
        .logs
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let text = handler
        .map(|h| h.logs(sim, &pod, container))
        .unwrap_or_default();
    Ok((StatusCode::OK, [("content-type", "text/plain")], text).into_response())
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

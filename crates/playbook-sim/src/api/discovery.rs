//! Discovery (`/version`, `/api`, `/apis`, resource lists) and the OpenAPI v3 documents kubectl needs.

use serde_json::{Value, json};

use super::super::Sim;
use super::super::error::ApiError;
use super::super::resources::ResourceDef;

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-playbook-sim", "gitCommit": "playbook-sim",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0",
        "compiler": "gc", "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]})
}

/// The (group, version) pairs served, core first, in registration order.
fn group_versions(sim: &Sim) -> Vec<(String, String)> {
    let w = sim.lock();
    let mut out: Vec<(String, String)> = Vec::new();
    for d in w.store().registry().defs() {
        let gv = (d.group.clone(), d.version.clone());
        if !out.contains(&gv) {
            out.push(gv);
        }
    }
    out
}

fn group_json(g: &str, v: &str) -> Value {
    let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `/apis`.
pub fn group_list(sim: &Sim) -> Value {
    let groups: Vec<Value> = group_versions(sim)
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, v)| group_json(&g, &v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`.
pub fn group(sim: &Sim, g: &str) -> Result<Value, ApiError> {
    let (g, v) = group_versions(sim)
        .into_iter()
        .find(|(x, _)| x == g)
        .ok_or_else(ApiError::no_resource)?;
    let mut out = group_json(&g, &v);
    out["kind"] = json!("APIGroup");
    out["apiVersion"] = json!("v1");
    Ok(out)
}

fn resource_entries(d: &ResourceDef) -> Vec<Value> {
    let mut main = json!({
        "name": d.plural, "singularName": d.singular, "namespaced": d.namespaced, "kind": d.kind, "verbs": d.verbs,
    });
    if !d.short_names.is_empty() {
        main["shortNames"] = json!(d.short_names);
    }
    if !d.categories.is_empty() {
        main["categories"] = json!(d.categories);
    }
    let mut out = vec![main];
    let sub = |name: &str, kind: &str, verbs: &[&str]| json!({"name": format!("{}/{name}", d.plural), "singularName": "", "namespaced": d.namespaced, "kind": kind, "verbs": verbs});
    if d.status {
        out.push(sub("status", &d.kind, &["get", "patch", "update"]));
    }
    if d.scale {
        let mut s = sub("scale", "Scale", &["get", "patch", "update"]);
        s["group"] = json!("autoscaling");
        s["version"] = json!("v1");
        out.push(s);
    }
    if d.log {
        out.push(sub("log", "Pod", &["get"]));
    }
    if d.group.is_empty() && d.kind == "Service" {
        out.push(sub(
            "proxy",
            "ServiceProxyOptions",
            &["create", "delete", "get", "patch", "update"],
        ));
    }
    out
}

/// `/api/v1` and `/apis/GROUP/VERSION`.
pub fn resource_list(sim: &Sim, g: &str, v: &str) -> Result<Value, ApiError> {
    let w = sim.lock();
    let defs: Vec<&ResourceDef> = w
        .store()
        .registry()
        .defs()
        .iter()
        .filter(|d| d.group == g && d.version == v)
        .collect();
    if defs.is_empty() {
        return Err(ApiError::no_resource());
    }
    let resources: Vec<Value> = defs.iter().flat_map(|d| resource_entries(d)).collect();
    let gv = if g.is_empty() {
        v.to_string()
    } else {
        format!("{g}/{v}")
    };
    Ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn gv_path(g: &str, v: &str) -> String {
    if g.is_empty() {
        format!("api/{v}")
    } else {
        format!("apis/{g}/{v}")
    }
}

/// `/openapi/v3`: the index of group-version documents.
pub fn openapi_v3_index(sim: &Sim) -> Value {
    let mut paths = serde_json::Map::new();
    let hash = format!(
        "playbook-sim-{}",
        sim.lock().store().registry().defs().len()
    );
    for (g, v) in group_versions(sim) {
        let p = gv_path(&g, &v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/G/V`: one PATCH operation per kind, declaring the
/// `fieldValidation` parameter, so kubectl validates on the server (which accepts the objects)
/// instead of downloading full schemas.
pub fn openapi_v3_doc(sim: &Sim, gv: &str) -> Result<Value, ApiError> {
    let (g, v) = match gv.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), v.to_string()),
        ["apis", g, v] => (g.to_string(), v.to_string()),
        _ => return Err(ApiError::no_resource()),
    };
    let w = sim.lock();
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let mut found = false;
    for d in w
        .store()
        .registry()
        .defs()
        .iter()
        .filter(|d| d.group == g && d.version == v)
    {
        found = true;
        let base = format!("/{}", gv_path(&g, &v));
        let item = if d.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", d.plural)
        } else {
            format!("{base}/{}/{{name}}", d.plural)
        };
        let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
        if let Some(mut schema) = d.crd.as_ref().and_then(|c| c.schema(&d.version)) {
            // The CRD's schema, so `kubectl explain` works for custom kinds.
            schema["x-kubernetes-group-version-kind"] = json!([gvk]);
            let rev: Vec<&str> = d.group.split('.').rev().collect();
            schemas.insert(
                format!("{}.{}.{}", rev.join("."), d.version, d.kind),
                schema,
            );
        }
        let params = json!([
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        ]);
        let op = |verb: &str| {
            json!({"operationId": format!("{verb}{}", d.kind), "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk, "parameters": params,
                "responses": {"200": {"description": "OK"}}})
        };
        if d.has_verb("patch") {
            paths.insert(item, json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
        } else {
            paths.insert(item, json!({"get": op("get")}));
        }
    }
    if !found {
        return Err(ApiError::no_resource());
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

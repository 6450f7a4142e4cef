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

/// (group priority, version priority) of a served group-version, which order `/apis`, a
/// group's versions and its preferred version. Built-in groups as the aggregator registers
/// them (pkg/controlplane/apiserver/aggregator.go `DefaultGenericAPIServicePriorities`,
/// cmd/kube-apiserver/app/aggregator.go `apiVersionPriorities`); metrics-server's APIService
/// asks for 100/100 (metrics-server manifests/base/apiservice.yaml); CRD groups get 1000 with
/// versions in kube-aware order (apiextensions-apiserver crdregistration_controller.go).
fn priority(group: &str, version: &str) -> (i32, i32) {
    match (group, version) {
        ("", _) => (18000, 1),
        ("apps", "v1") => (17800, 15),
        ("events.k8s.io", "v1") => (17750, 15),
        ("autoscaling", "v2") => (17500, 30),
        ("autoscaling", "v1") => (17500, 15),
        ("apiextensions.k8s.io", "v1") => (16700, 15),
        ("coordination.k8s.io", "v1") => (16500, 15),
        ("metrics.k8s.io", _) => (100, 100),
        _ => (1000, 15),
    }
}

/// apimachinery/pkg/version/helpers.go `CompareKubeAwareVersionStrings`: GA before beta
/// before alpha, higher numbers first; versions not of the `vN[alpha|betaM]` form after
/// those, alphabetically.
fn kube_aware_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u32, u8, u32)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u32 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (kind, num) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else {
            (0, tail.strip_prefix("alpha")?)
        };
        Some((major, kind, num.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, ka, na)), Some((mb, kb, nb))) => kb.cmp(&ka).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The groups served (core as ""), each with its versions, preferred first: groups by
/// priority then name, as the aggregator sorts them
/// (kube-aggregator/pkg/apis/apiregistration/v1/helper/helpers.go `SortedByGroupAndVersion`).
fn groups(sim: &Sim) -> Vec<(String, Vec<String>)> {
    let w = sim.lock();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (d, _) in w.store().registry().served_defs() {
        match out.iter_mut().find(|(g, _)| *g == d.group) {
            Some((_, vs)) if vs.contains(&d.version) => {}
            Some((_, vs)) => vs.push(d.version.clone()),
            None => out.push((d.group.clone(), vec![d.version.clone()])),
        }
    }
    for (g, vs) in &mut out {
        vs.sort_by(|a, b| {
            priority(g, b)
                .1
                .cmp(&priority(g, a).1)
                .then_with(|| kube_aware_cmp(a, b))
        });
    }
    out.sort_by(|(a, av), (b, bv)| {
        let pa = av.iter().map(|v| priority(a, v).0).max().unwrap_or(0);
        let pb = bv.iter().map(|v| priority(b, v).0).max().unwrap_or(0);
        pb.cmp(&pa).then_with(|| a.cmp(b))
    });
    out
}

fn group_json(g: &str, versions: &[String]) -> Value {
    let gvs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({"name": g, "versions": gvs, "preferredVersion": gvs[0]})
}

/// `/apis`.
pub fn group_list(sim: &Sim) -> Value {
    let groups: Vec<Value> = groups(sim)
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_json(&g, &vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`.
pub fn group(sim: &Sim, g: &str) -> Result<Value, ApiError> {
    let (g, vs) = groups(sim)
        .into_iter()
        .find(|(x, _)| !x.is_empty() && x == g)
        .ok_or_else(ApiError::no_resource)?;
    let mut out = group_json(&g, &vs);
    out["kind"] = json!("APIGroup");
    out["apiVersion"] = json!("v1");
    Ok(out)
}

/// A kind's subresources as (name, group, version, kind, verbs).
fn subresources(
    d: &ResourceDef,
) -> Vec<(
    &'static str,
    String,
    String,
    String,
    &'static [&'static str],
)> {
    const GPU: &[&str] = &["get", "patch", "update"];
    let mut out = Vec::new();
    if d.status {
        out.push((
            "status",
            d.group.clone(),
            d.version.clone(),
            d.kind.clone(),
            GPU,
        ));
    }
    if d.scale {
        out.push((
            "scale",
            "autoscaling".into(),
            "v1".into(),
            "Scale".into(),
            GPU,
        ));
    }
    if d.log {
        out.push((
            "log",
            String::new(),
            "v1".into(),
            "Pod".into(),
            &["get"][..],
        ));
    }
    if d.group.is_empty() && d.kind == "Pod" {
        // pkg/registry/core/pod/storage/eviction.go: `pods/eviction`, policy/v1 Eviction.
        out.push((
            "eviction",
            "policy".into(),
            "v1".into(),
            "Eviction".into(),
            &["create"][..],
        ));
    }
    if d.group.is_empty() && d.kind == "Service" {
        out.push((
            "proxy",
            String::new(),
            "v1".into(),
            "ServiceProxyOptions".into(),
            &["create", "delete", "get", "patch", "update"][..],
        ));
    }
    out
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
    for (name, g, v, kind, verbs) in subresources(d) {
        let mut e = json!({"name": format!("{}/{name}", d.plural), "singularName": "",
            "namespaced": d.namespaced, "kind": kind, "verbs": verbs});
        if g != d.group || v != d.version {
            e["group"] = json!(g);
            e["version"] = json!(v);
        }
        out.push(e);
    }
    out
}

/// The definitions served at (group, version).
fn served_at(sim: &Sim, g: &str, v: &str) -> Vec<ResourceDef> {
    sim.lock()
        .store()
        .registry()
        .served_defs()
        .filter(|(d, _)| d.group == g && d.version == v)
        .map(|(d, _)| d.clone())
        .collect()
}

/// `/api/v1` and `/apis/GROUP/VERSION`.
pub fn resource_list(sim: &Sim, g: &str, v: &str) -> Result<Value, ApiError> {
    let defs = served_at(sim, g, v);
    if defs.is_empty() {
        return Err(ApiError::no_resource());
    }
    let resources: Vec<Value> = defs.iter().flat_map(resource_entries).collect();
    let gv = if g.is_empty() {
        v.to_string()
    } else {
        format!("{g}/{v}")
    };
    Ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// The aggregated-discovery version an `Accept` header asks for (`v2` or `v2beta1`), if it
/// prefers one to plain JSON (apiserver/pkg/endpoints/discovery/aggregated/wrapper.go,
/// negotiation.go): media ranges by `q`, the first of equal `q` winning.
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    let mut best: Option<(f32, Option<&'static str>)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let base = parts.next().unwrap_or("");
        let (mut g, mut v, mut as_, mut q) = ("", "", "", 1.0f32);
        for p in parts {
            match p.split_once('=') {
                Some(("g", x)) => g = x,
                Some(("v", x)) => v = x,
                Some(("as", x)) => as_ = x,
                Some(("q", x)) => q = x.parse().unwrap_or(0.0),
                _ => {}
            }
        }
        let choice = match (base, g, v, as_) {
            ("application/json", "apidiscovery.k8s.io", "v2", "APIGroupDiscoveryList") => {
                Some("v2")
            }
            ("application/json", "apidiscovery.k8s.io", "v2beta1", "APIGroupDiscoveryList") => {
                Some("v2beta1")
            }
            ("application/json" | "*/*" | "application/*", "", "", "") => None,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, choice));
        }
    }
    best.and_then(|(_, c)| c)
}

fn scope(d: &ResourceDef) -> &'static str {
    if d.namespaced {
        "Namespaced"
    } else {
        "Cluster"
    }
}

/// One `APIResourceDiscovery` (staging/src/k8s.io/api/apidiscovery/v2/types.go).
fn resource_discovery(d: &ResourceDef) -> Value {
    let mut r = json!({
        "resource": d.plural,
        "responseKind": {"group": d.group, "version": d.version, "kind": d.kind},
        "scope": scope(d),
        "singularResource": d.singular,
        "verbs": d.verbs,
    });
    if !d.short_names.is_empty() {
        r["shortNames"] = json!(d.short_names);
    }
    if !d.categories.is_empty() {
        r["categories"] = json!(d.categories);
    }
    let subs: Vec<Value> = subresources(d)
        .into_iter()
        .map(|(name, g, v, kind, verbs)| {
            json!({"subresource": name, "responseKind": {"group": g, "version": v, "kind": kind},
                "verbs": verbs})
        })
        .collect();
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}

/// Aggregated discovery of `/api` (`core`) or `/apis`: an `APIGroupDiscoveryList` of every
/// group with all its versions and their resources, in one document
/// (apiserver/pkg/endpoints/discovery/aggregated/handler.go). `version` is `v2` or `v2beta1`
/// (same shape). The groups and versions in the order legacy discovery lists them.
pub fn aggregated(sim: &Sim, core: bool, version: &str) -> Value {
    let items: Vec<Value> = groups(sim)
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = served_at(sim, &g, v)
                        .iter()
                        .map(resource_discovery)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut meta = json!({"creationTimestamp": null});
            if !g.is_empty() {
                meta["name"] = json!(g);
            }
            json!({"metadata": meta, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {}, "items": items})
}

/// The ETag of a discovery document: a hash of its JSON, quoted (aggregated/etag.go hashes
/// with SHA-512; any stable hash serves a client's `If-None-Match`).
pub fn etag(body: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:016X}\"", h.finish())
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
    for (g, vs) in groups(sim) {
        for v in vs {
            let p = gv_path(&g, &v);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            );
        }
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
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let mut found = false;
    for d in &served_at(sim, &g, &v) {
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

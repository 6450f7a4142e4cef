//! The Endpoints controller: keeps one Endpoints object per Service with a selector, listing
//! the IPs of matching pods (ready in `addresses`, not ready in `notReadyAddresses`) and the
//! ports their `targetPort`s resolve to.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use super::util::{Key, deleting, key_of, pod_ready, pod_terminal, s};
use crate::selector::{LabelSelector, Requirement};
use crate::world::{Controller, Ctx, Lag};

/// Keeps Endpoints in line with Services and pods. See the module doc.
#[derive(Default)]
pub struct Endpoints;

fn selector(svc: &Value) -> Option<LabelSelector> {
    let m = svc.pointer("/spec/selector")?.as_object()?;
    if m.is_empty() {
        return None;
    }
    let reqs = m
        .iter()
        .map(|(k, v)| Requirement::Eq(k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    Some(LabelSelector { reqs })
}

/// The port a Service port reaches on a pod (a number, or a named container port).
fn target_port(sp: &Value, pod: &Value) -> Option<i64> {
    let t = sp.get("targetPort").or_else(|| sp.get("port"))?;
    if let Some(n) = t.as_i64() {
        return Some(n);
    }
    let name = t.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    pod.pointer("/spec/containers")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("ports").and_then(Value::as_array))
        .flatten()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|p| p.get("containerPort").and_then(Value::as_i64))
}

fn sync(ctx: &mut Ctx<'_>, key: &Key) {
    let svc = ctx.get("services", &key.0, &key.1);
    let Some(sel) = svc.as_deref().filter(|s| !deleting(s)).and_then(selector) else {
        if svc.is_none() && ctx.get("endpoints", &key.0, &key.1).is_some() {
            let _ = ctx.delete("endpoints", &key.0, &key.1);
        }
        return;
    };
    let svc = svc.unwrap_or_default();
    let publish = svc["spec"]["publishNotReadyAddresses"] == true;
    let sports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    type Subset = (BTreeMap<String, Value>, BTreeMap<String, Value>);
    let mut subsets: BTreeMap<String, (Vec<Value>, Subset)> = BTreeMap::new();
    for pod in ctx.list_selected("pods", Some(&key.0), &sel) {
        let ip = s(&pod, "/status/podIP");
        if ip.is_empty() || pod_terminal(&pod) || deleting(&pod) {
            continue;
        }
        let ports: Vec<Value> = sports
            .iter()
            .filter_map(|sp| {
                let port = target_port(sp, &pod)?;
                let mut p = json!({"port": port, "protocol": sp.get("protocol").cloned().unwrap_or(json!("TCP"))});
                if let Some(n) = sp.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                    p["name"] = json!(n);
                }
                Some(p)
            })
            .collect();
        let addr = json!({"ip": ip, "nodeName": s(&pod, "/spec/nodeName"),
            "targetRef": {"kind": "Pod", "namespace": key.0, "name": s(&pod, "/metadata/name"),
                          "uid": s(&pod, "/metadata/uid")}});
        let entry = subsets
            .entry(Value::Array(ports.clone()).to_string())
            .or_insert_with(|| (ports, Default::default()));
        if publish || pod_ready(&pod) {
            entry.1.0.insert(ip.to_string(), addr);
        } else {
            entry.1.1.insert(ip.to_string(), addr);
        }
    }
    let subsets: Vec<Value> = subsets
        .into_values()
        .map(|(ports, (ready, not_ready))| {
            let mut sub = json!({});
            if !ready.is_empty() {
                sub["addresses"] = json!(ready.into_values().collect::<Vec<_>>());
            }
            if !not_ready.is_empty() {
                sub["notReadyAddresses"] = json!(not_ready.into_values().collect::<Vec<_>>());
            }
            if !ports.is_empty() {
                sub["ports"] = json!(ports);
            }
            sub
        })
        .collect();
    let labels = svc["metadata"]["labels"].clone();
    match ctx.get("endpoints", &key.0, &key.1) {
        Some(cur) => {
            let want_subsets = if subsets.is_empty() {
                Value::Null
            } else {
                json!(subsets)
            };
            let cur_subsets = cur.get("subsets").cloned().unwrap_or(Value::Null);
            if cur_subsets == want_subsets && cur["metadata"]["labels"] == labels {
                return;
            }
            let mut o = (*cur).clone();
            o["metadata"]["resourceVersion"] = json!("");
            o["metadata"]["labels"] = labels;
            match o.as_object_mut() {
                Some(m) if want_subsets.is_null() => {
                    m.remove("subsets");
                }
                _ => o["subsets"] = want_subsets,
            }
            let _ = ctx.update("endpoints", o);
        }
        None => {
            let mut ep = json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": key.1, "namespace": key.0}});
            if labels.is_object() {
                ep["metadata"]["labels"] = labels;
            }
            if !subsets.is_empty() {
                ep["subsets"] = json!(subsets);
            }
            let _ = ctx.create("endpoints", ep);
        }
    }
}

impl Controller for Endpoints {
    fn name(&self) -> &'static str {
        "endpoints"
    }
    // pkg/controller/endpoint/endpoints_controller.go and endpointslice/: pod and service
    // handlers enqueue the Service; a worker rewrites Endpoints and EndpointSlices.
    fn lag(&self) -> Lag {
        Lag::millis(20, 200)
    }
    fn watches(&self) -> &'static [&'static str] {
        &["services", "pods"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let mut todo: BTreeSet<Key> = BTreeSet::new();
        if ctx.resync() {
            todo.extend(ctx.list("services", None).iter().map(|s| key_of(s)));
        }
        for e in ctx.changed("services") {
            todo.insert((e.namespace.clone(), e.name.clone()));
        }
        let pod_events: Vec<(String, Arc<Value>, Option<Arc<Value>>)> = ctx
            .changed("pods")
            .map(|e| (e.namespace.clone(), e.object.clone(), e.old.clone()))
            .collect();
        let mut by_ns: HashMap<String, Vec<(String, LabelSelector)>> = HashMap::new();
        for (ns, obj, old) in pod_events {
            let svcs = by_ns.entry(ns.clone()).or_insert_with(|| {
                ctx.list("services", Some(&ns))
                    .iter()
                    .filter_map(|s| selector(s).map(|sel| (key_of(s).1, sel)))
                    .collect()
            });
            for (name, sel) in svcs.iter() {
                if sel.matches(&obj) || old.as_deref().is_some_and(|o| sel.matches(o)) {
                    todo.insert((ns.clone(), name.clone()));
                }
            }
        }
        for key in todo {
            sync(ctx, &key);
        }
    }
}

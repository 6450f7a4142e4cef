//! The Endpoints controller: keeps one Endpoints object per Service with a selector, listing
//! the IPs of matching pods (ready in `addresses`, not ready in `notReadyAddresses`) and the
//! ports their `targetPort`s resolve to.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::reconcile::{Action, Reconcile};
use super::util::{Key, deleting, key_of, pod_ready, pod_terminal, s};
use crate::resources::{Res, res};
use crate::selector::{LabelSelector, Requirement};
use crate::store::Event;
use crate::world::{Ctx, Lag};

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

/// The subsets of a Service's Endpoints: matching pods with an IP grouped by their ports,
/// ready ones (or all with `publishNotReadyAddresses`) in `addresses`
/// (pkg/controller/endpoint/endpoints_controller.go `syncService`).
fn subsets(ctx: &Ctx<'_>, key: &Key, svc: &Value, sel: &LabelSelector) -> Vec<Value> {
    let publish = svc["spec"]["publishNotReadyAddresses"] == true;
    let sports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    type Subset = (BTreeMap<String, Value>, BTreeMap<String, Value>);
    let mut subsets: BTreeMap<String, (Vec<Value>, Subset)> = BTreeMap::new();
    for pod in ctx.list_selected(res::PODS, Some(&key.namespace), sel) {
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
            "targetRef": {"kind": "Pod", "namespace": key.namespace, "name": s(&pod, "/metadata/name"),
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
    subsets
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
        .collect()
}

/// Writes the Endpoints object when it differs.
fn write(ctx: &mut Ctx<'_>, key: &Key, labels: Value, subsets: Vec<Value>) {
    let Some(cur) = ctx.get(res::ENDPOINTS, &key.namespace, &key.name) else {
        let mut ep = json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": key.name, "namespace": key.namespace}});
        if labels.is_object() {
            ep["metadata"]["labels"] = labels;
        }
        if !subsets.is_empty() {
            ep["subsets"] = json!(subsets);
        }
        let _ = ctx.create(res::ENDPOINTS, ep);
        return;
    };
    let want = if subsets.is_empty() {
        Value::Null
    } else {
        json!(subsets)
    };
    let have = cur.get("subsets").cloned().unwrap_or(Value::Null);
    if have == want && cur["metadata"]["labels"] == labels {
        return;
    }
    let mut o = (*cur).clone();
    o["metadata"]["resourceVersion"] = json!("");
    o["metadata"]["labels"] = labels;
    match o.as_object_mut() {
        Some(m) if want.is_null() => {
            m.remove("subsets");
        }
        _ => o["subsets"] = want,
    }
    let _ = ctx.update(res::ENDPOINTS, o);
}

impl Reconcile for Endpoints {
    const NAME: &'static str = "endpoints";
    const PRIMARY: Res = res::SERVICES;
    const KIND: &'static str = "Service";
    const OWNS: &'static [Res] = &[];
    const WATCHES: &'static [&'static str] = &["services", "pods"];

    // pkg/controller/endpoint/endpoints_controller.go and endpointslice/: pod and service
    // handlers enqueue the Service; a worker rewrites Endpoints and EndpointSlices.
    fn lag(&self) -> Lag {
        Lag::millis(20, 200)
    }

    fn primary_changed(&mut self, _e: &Event) -> bool {
        true
    }

    /// A pod change queues every Service whose selector matches it now or matched it before
    /// (endpoints_controller.go `updatePod` / `getPodServiceMemberships`).
    fn map(&mut self, ctx: &Ctx<'_>, e: &Event, out: &mut BTreeSet<Key>) {
        for svc in ctx.list(res::SERVICES, Some(&e.namespace)) {
            let Some(sel) = selector(&svc) else { continue };
            if sel.matches(&e.object) || e.old.as_deref().is_some_and(|o| sel.matches(o)) {
                out.insert(key_of(&svc));
            }
        }
    }

    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) -> Action {
        let svc = ctx.get(res::SERVICES, &key.namespace, &key.name);
        let Some(sel) = svc.as_deref().filter(|s| !deleting(s)).and_then(selector) else {
            if svc.is_none() && ctx.get(res::ENDPOINTS, &key.namespace, &key.name).is_some() {
                let _ = ctx.delete(res::ENDPOINTS, &key.namespace, &key.name);
            }
            return Action::await_change();
        };
        let svc = svc.unwrap_or_default();
        let subsets = subsets(ctx, key, &svc, &sel);
        write(ctx, key, svc["metadata"]["labels"].clone(), subsets);
        Action::await_change()
    }
}

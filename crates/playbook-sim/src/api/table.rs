//! `meta.k8s.io/v1` Table answers: the default columns of built-in kinds, CRD printer columns.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::super::resources::ResourceDef;
use super::super::selector::LabelSelector;
pub use super::format::{age, human_duration, jsonpath};

/// (name, type, priority, description)
type Col = (&'static str, &'static str, i64, &'static str);

const NAME: Col = (
    "Name",
    "string",
    0,
    "Name must be unique within a namespace.",
);
const AGE: Col = (
    "Age",
    "string",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);

fn builtin_columns(def: &ResourceDef) -> Option<Vec<Col>> {
    let s = |n: &'static str, p: i64| (n, "string", p, "");
    let i = |n: &'static str, p: i64| (n, "integer", p, "");
    Some(match (def.group.as_str(), def.kind.as_str()) {
        ("", "Pod") => vec![
            NAME,
            s("Ready", 0),
            s("Status", 0),
            s("Restarts", 0),
            AGE,
            s("IP", 1),
            s("Node", 1),
            s("Nominated Node", 1),
            s("Readiness Gates", 1),
        ],
        ("apps", "Deployment") => vec![
            NAME,
            s("Ready", 0),
            i("Up-to-date", 0),
            i("Available", 0),
            AGE,
            s("Containers", 1),
            s("Images", 1),
            s("Selector", 1),
        ],
        ("apps", "ReplicaSet") => vec![
            NAME,
            i("Desired", 0),
            i("Current", 0),
            i("Ready", 0),
            AGE,
            s("Containers", 1),
            s("Images", 1),
            s("Selector", 1),
        ],
        ("apps", "StatefulSet") => {
            vec![NAME, s("Ready", 0), AGE, s("Containers", 1), s("Images", 1)]
        }
        ("", "Service") => vec![
            NAME,
            s("Type", 0),
            s("Cluster-IP", 0),
            s("External-IP", 0),
            s("Port(s)", 0),
            AGE,
            s("Selector", 1),
        ],
        ("", "Node") => vec![
            NAME,
            s("Status", 0),
            s("Roles", 0),
            AGE,
            s("Version", 0),
            s("Internal-IP", 1),
            s("External-IP", 1),
            s("OS-Image", 1),
            s("Kernel-Version", 1),
            s("Container-Runtime", 1),
        ],
        ("", "Namespace") => vec![NAME, s("Status", 0), AGE],
        ("", "Event") => vec![
            s("Last Seen", 0),
            s("Type", 0),
            s("Reason", 0),
            s("Object", 0),
            s("Subobject", 1),
            s("Source", 1),
            s("Message", 0),
            s("First Seen", 1),
            i("Count", 1),
            (
                "Name",
                "string",
                1,
                "Name must be unique within a namespace.",
            ),
        ],
        ("autoscaling", "HorizontalPodAutoscaler") => vec![
            NAME,
            s("Reference", 0),
            s("Targets", 0),
            i("MinPods", 0),
            i("MaxPods", 0),
            i("Replicas", 0),
            AGE,
        ],
        // pkg/printers/internalversion/printers.go `jobColumnDefinitions`.
        ("batch", "Job") => vec![
            NAME,
            s("Status", 0),
            s("Completions", 0),
            s("Duration", 0),
            AGE,
            s("Containers", 1),
            s("Images", 1),
            s("Selector", 1),
        ],
        // printers.go `podDisruptionBudgetColumnDefinitions`.
        ("policy", "PodDisruptionBudget") => vec![
            NAME,
            s("Min Available", 0),
            s("Max Unavailable", 0),
            i("Allowed Disruptions", 0),
            AGE,
        ],
        ("", "ConfigMap") => vec![NAME, i("Data", 0), AGE],
        // pkg/printers/internalversion/printers.go leaseColumnDefinitions.
        ("coordination.k8s.io", "Lease") => vec![NAME, s("Holder", 0), AGE],
        ("", "Endpoints") => vec![NAME, s("Endpoints", 0), AGE],
        ("apiextensions.k8s.io", _) => vec![NAME, ("Created At", "date", 0, "")],
        _ => return None,
    })
}

/// Renders `objs` as a Table with the kind's default columns. `include_object` is the
/// `includeObject` parameter (`None`, `Metadata` (default) or `Object`).
pub fn render(
    def: &ResourceDef,
    objs: &[Arc<Value>],
    now: Timestamp,
    include_object: Option<&str>,
    _: Option<()>,
) -> Value {
    let (defs, rows): (Vec<Value>, Vec<Value>) = match builtin_columns(def) {
        Some(cols) => {
            let defs = cols
                .iter()
                .map(|(n, t, p, d)| {
                    let fmt = if *n == "Name" { "name" } else { "" };
                    json!({"name": n, "type": t, "format": fmt, "description": d, "priority": p})
                })
                .collect();
            let rows = objs
                .iter()
                .map(|o| row(builtin_cells(def, o, now), o, include_object))
                .collect();
            (defs, rows)
        }
        None => {
            let printer: Vec<Value> = def.printer_columns.as_array().cloned().unwrap_or_default();
            let mut defs = vec![
                json!({"name": "Name", "type": "string", "format": "name", "description": NAME.3, "priority": 0}),
            ];
            if printer.is_empty() {
                defs.push(json!({"name": "Age", "type": "date", "format": "", "description": AGE.3, "priority": 0}));
            }
            for c in &printer {
                defs.push(json!({
                    "name": c.get("name").cloned().unwrap_or(json!("")),
                    "type": c.get("type").cloned().unwrap_or(json!("string")),
                    "format": c.get("format").cloned().unwrap_or(json!("")),
                    "description": c.get("description").cloned().unwrap_or(json!("")),
                    "priority": c.get("priority").cloned().unwrap_or(json!(0)),
                }));
            }
            let rows = objs
                .iter()
                .map(|o| {
                    let mut cells = vec![json!(meta(o, "name"))];
                    if printer.is_empty() {
                        cells.push(json!(age(o.pointer("/metadata/creationTimestamp"), now)));
                    }
                    for c in &printer {
                        let path = c.get("jsonPath").and_then(Value::as_str).unwrap_or("");
                        let ty = c.get("type").and_then(Value::as_str).unwrap_or("string");
                        let found = jsonpath(o, path);
                        cells.push(match found.as_slice() {
                            [] => Value::Null,
                            [one] if ty == "date" => json!(age(Some(one), now)),
                            [one] => (*one).clone(),
                            many => json!(
                                many.iter()
                                    .map(|v| cell_text(v))
                                    .collect::<Vec<_>>()
                                    .join(",")
                            ),
                        });
                    }
                    row(cells, o, include_object)
                })
                .collect();
            (defs, rows)
        }
    };
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": defs, "rows": rows})
}

fn row(cells: Vec<Value>, obj: &Value, include: Option<&str>) -> Value {
    let object = match include {
        Some("None") => Value::Null,
        Some("Object") => obj.clone(),
        _ => {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata")})
        }
    };
    json!({"cells": cells, "object": object})
}

fn meta<'a>(o: &'a Value, f: &str) -> &'a str {
    o.pointer(&format!("/metadata/{f}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

fn str_at<'a>(o: &'a Value, p: &str) -> &'a str {
    o.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn int_at(o: &Value, p: &str) -> i64 {
    o.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.to_string()
    }
}

fn containers(o: &Value, field: &str) -> String {
    o.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get(field).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn selector(o: &Value) -> String {
    o.pointer("/spec/selector")
        .and_then(|s| LabelSelector::from_json(s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default()
}

fn builtin_cells(def: &ResourceDef, o: &Value, now: Timestamp) -> Vec<Value> {
    let name = json!(meta(o, "name"));
    let age_v = json!(age(o.pointer("/metadata/creationTimestamp"), now));
    match def.kind.as_str() {
        "Pod" => {
            let total = o
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let statuses = o
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let ready = statuses
                .iter()
                .filter(|c| c.get("ready") == Some(&json!(true)))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts.to_string()),
                age_v,
                json!(or_none(str_at(o, "/status/podIP"))),
                json!(or_none(str_at(o, "/spec/nodeName"))),
                json!(or_none(str_at(o, "/status/nominatedNodeName"))),
                json!("<none>"),
            ]
        }
        "Deployment" => vec![
            name,
            json!(format!(
                "{}/{}",
                int_at(o, "/status/readyReplicas"),
                int_at(o, "/spec/replicas")
            )),
            json!(int_at(o, "/status/updatedReplicas")),
            json!(int_at(o, "/status/availableReplicas")),
            age_v,
            json!(containers(o, "name")),
            json!(containers(o, "image")),
            json!(selector(o)),
        ],
        "ReplicaSet" => vec![
            name,
            json!(int_at(o, "/spec/replicas")),
            json!(int_at(o, "/status/replicas")),
            json!(int_at(o, "/status/readyReplicas")),
            age_v,
            json!(containers(o, "name")),
            json!(containers(o, "image")),
            json!(selector(o)),
        ],
        "StatefulSet" => vec![
            name,
            json!(format!(
                "{}/{}",
                int_at(o, "/status/readyReplicas"),
                int_at(o, "/spec/replicas")
            )),
            age_v,
            json!(containers(o, "name")),
            json!(containers(o, "image")),
        ],
        "Service" => {
            let ports = o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                            let port = p.get("port").map(cell_text).unwrap_or_default();
                            match p.get("nodePort") {
                                Some(np) => format!("{port}:{}/{proto}", cell_text(np)),
                                None => format!("{port}/{proto}"),
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let sel = o
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", cell_text(v)))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let ext = if str_at(o, "/spec/type") == "LoadBalancer" {
                "<pending>"
            } else {
                "<none>"
            };
            vec![
                name,
                json!(str_at(o, "/spec/type")),
                json!(or_none(str_at(o, "/spec/clusterIP"))),
                json!(ext),
                json!(or_none(&ports)),
                age_v,
                json!(or_none(&sel)),
            ]
        }
        "Node" => {
            let conds = o
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let ready = conds
                .iter()
                .find(|c| c.get("type") == Some(&json!("Ready")));
            let mut status = match ready.and_then(|c| c.get("status")).and_then(Value::as_str) {
                Some("True") => "Ready".to_string(),
                Some("False") => "NotReady".to_string(),
                _ => "Unknown".to_string(),
            };
            if o.pointer("/spec/unschedulable") == Some(&json!(true)) {
                status.push_str(",SchedulingDisabled");
            }
            let roles: Vec<String> = o
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.keys()
                        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let addr = |t: &str| {
                o.pointer("/status/addresses")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|x| x.get("type") == Some(&json!(t))))
                    .and_then(|x| x.get("address"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            vec![
                name,
                json!(status),
                json!(or_none(&roles.join(","))),
                age_v,
                json!(str_at(o, "/status/nodeInfo/kubeletVersion")),
                json!(or_none(&addr("InternalIP"))),
                json!(or_none(&addr("ExternalIP"))),
                json!(or_none(str_at(o, "/status/nodeInfo/osImage"))),
                json!(or_none(str_at(o, "/status/nodeInfo/kernelVersion"))),
                json!(or_none(str_at(
                    o,
                    "/status/nodeInfo/containerRuntimeVersion"
                ))),
            ]
        }
        "Namespace" => vec![name, json!(str_at(o, "/status/phase")), age_v],
        "Event" => {
            let last = o
                .get("lastTimestamp")
                .filter(|v| !v.is_null())
                .or_else(|| o.get("eventTime").filter(|v| !v.is_null()))
                .or_else(|| o.pointer("/metadata/creationTimestamp"));
            let first = o.get("firstTimestamp").filter(|v| !v.is_null()).or(last);
            let kind = str_at(o, "/involvedObject/kind").to_lowercase();
            vec![
                json!(age(last, now)),
                json!(str_at(o, "/type")),
                json!(str_at(o, "/reason")),
                json!(format!("{kind}/{}", str_at(o, "/involvedObject/name"))),
                json!(str_at(o, "/involvedObject/fieldPath")),
                json!(str_at(o, "/source/component")),
                json!(str_at(o, "/message")),
                json!(age(first, now)),
                json!(o.get("count").and_then(Value::as_i64).unwrap_or(1)),
                name,
            ]
        }
        "Lease" => vec![name, json!(str_at(o, "/spec/holderIdentity")), age_v],
        "HorizontalPodAutoscaler" => vec![
            name,
            json!(format!(
                "{}/{}",
                str_at(o, "/spec/scaleTargetRef/kind"),
                str_at(o, "/spec/scaleTargetRef/name")
            )),
            json!(hpa_targets(o)),
            json!(
                o.pointer("/spec/minReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)
            ),
            json!(int_at(o, "/spec/maxReplicas")),
            json!(int_at(o, "/status/currentReplicas")),
            age_v,
        ],
        "Job" => vec![
            name,
            json!(job_status(o)),
            json!(job_completions(o)),
            json!(job_duration(o, now)),
            age_v,
            json!(containers(o, "name")),
            json!(containers(o, "image")),
            json!(selector(o)),
        ],
        "PodDisruptionBudget" => {
            let field = |p: &str| match o.pointer(p) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ Value::Number(_)) => v.to_string(),
                _ => "N/A".into(),
            };
            vec![
                name,
                json!(field("/spec/minAvailable")),
                json!(field("/spec/maxUnavailable")),
                json!(int_at(o, "/status/disruptionsAllowed")),
                age_v,
            ]
        }
        "ConfigMap" => {
            let n = o
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + o.get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, json!(n), age_v]
        }
        "Endpoints" => {
            let mut eps = Vec::new();
            for s in o
                .get("subsets")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let ports: Vec<String> = s
                    .get("ports")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .filter_map(|p| p.get("port"))
                            .map(cell_text)
                            .collect()
                    })
                    .unwrap_or_default();
                for a in s
                    .get("addresses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    let ip = a.get("ip").map(cell_text).unwrap_or_default();
                    if ports.is_empty() {
                        eps.push(ip);
                    } else {
                        eps.extend(ports.iter().map(|p| format!("{ip}:{p}")));
                    }
                }
            }
            vec![name, json!(or_none(&eps.join(","))), age_v]
        }
        _ => vec![
            name,
            json!(age(o.pointer("/metadata/creationTimestamp"), now)),
        ],
    }
}

/// printers.go `printJob`: the Status column from the Job's terminal conditions.
fn job_status(o: &Value) -> &'static str {
    let has = |ty: &str| {
        o.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
    };
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if o.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if has("Suspended") {
        "Suspended"
    } else {
        "Running"
    }
}

/// printers.go `printJob`: `succeeded/completions` (`/1` when completions is unset).
fn job_completions(o: &Value) -> String {
    let succeeded = int_at(o, "/status/succeeded");
    match o.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match o.pointer("/spec/parallelism").and_then(Value::as_i64) {
            Some(p) if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    }
}

/// printers.go `printJob`: start to completion, or to now while it runs.
fn job_duration(o: &Value, now: Timestamp) -> String {
    let t = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Timestamp>().ok())
    };
    match t("/status/startTime") {
        None => String::new(),
        Some(start) => {
            let end = t("/status/completionTime").unwrap_or(now);
            human_duration(end.duration_since(start).as_secs())
        }
    }
}

fn pod_status(o: &Value) -> String {
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let mut reason = str_at(o, "/status/reason").to_string();
    if reason.is_empty() {
        reason = str_at(o, "/status/phase").to_string();
    }
    for c in o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        if let Some(w) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            reason = w.to_string();
        } else if let Some(t) = c
            .pointer("/state/terminated/reason")
            .and_then(Value::as_str)
        {
            reason = t.to_string();
        }
    }
    reason
}

fn hpa_targets(o: &Value) -> String {
    let metrics = o
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let current = o
        .pointer("/status/currentMetrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let parts: Vec<String> = metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let name = m
                .pointer("/resource/name")
                .and_then(Value::as_str)
                .unwrap_or("metric");
            let target = m
                .pointer("/resource/target/averageUtilization")
                .map(|v| format!("{}%", cell_text(v)));
            let cur = current
                .get(i)
                .and_then(|c| c.pointer("/resource/current/averageUtilization"))
                .map(|v| format!("{}%", cell_text(v)))
                .unwrap_or_else(|| "<unknown>".into());
            format!(
                "{name}: {cur}/{}",
                target.unwrap_or_else(|| "<unknown>".into())
            )
        })
        .collect();
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(", ")
    }
}

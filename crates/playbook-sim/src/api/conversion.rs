//! Conversion between a kind's storage version and the other versions a real server serves it
//! in: autoscaling/v1 HorizontalPodAutoscalers over autoscaling/v2, events.k8s.io/v1 Events over
//! core v1 Events. Objects are stored once; requests in another version are converted on the
//! way in (to storage) and on the way out (to the request's version), as the API server's
//! handlers do through the internal hub version.
//!
//! Upstream: pkg/apis/autoscaling/v1/conversion.go (+ zz_generated.conversion.go),
//! pkg/apis/autoscaling/annotations.go, pkg/apis/events/v1/conversion.go
//! (+ zz_generated.conversion.go), JSON field names and `omitempty` from
//! staging/src/k8s.io/api/{autoscaling/v1,events/v1,core/v1}/types.go.

use serde_json::{Map, Value, json};

use super::super::error::ApiError;
use super::super::resources::Conversion;

/// pkg/apis/autoscaling/annotations.go: the v2 fields v1 cannot hold travel in annotations.
const METRIC_SPECS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const METRIC_STATUSES: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// `autoscaling.DefaultCPUUtilization`: the target v1's conversion fills in when none is given.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// The stored object `obj` as the view's version serves it.
pub(crate) fn to_view(conv: Conversion, obj: &Value) -> Value {
    match conv {
        Conversion::HpaV1 => hpa_v2_to_v1(obj),
        Conversion::EventsV1 => event_core_to_v1(obj),
    }
}

/// An object written in the view's version, as it is stored. A malformed conversion
/// annotation fails the request, as the Go conversion's `json.Unmarshal` error does.
pub(crate) fn to_storage(conv: Conversion, obj: &Value) -> Result<Value, ApiError> {
    match conv {
        Conversion::HpaV1 => hpa_v1_to_v2(obj),
        Conversion::EventsV1 => Ok(event_v1_to_core(obj)),
    }
}

/// Copies `keys` of `from` present (and not null) into `to`.
fn copy(from: &Value, to: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if let Some(v) = from.get(*k).filter(|v| !v.is_null()) {
            to.insert((*k).to_string(), v.clone());
        }
    }
}

/// Copies `from[src]` to `to[dst]` when present and not null.
fn rename(from: &Value, src: &str, to: &mut Map<String, Value>, dst: &str) {
    if let Some(v) = from.get(src).filter(|v| !v.is_null()) {
        to.insert(dst.to_string(), v.clone());
    }
}

/// `apiVersion`, `kind` and `metadata` of `obj` under a new apiVersion.
fn envelope(obj: &Value, api_version: &str, kind: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!(kind));
    if let Some(m) = obj.get("metadata") {
        out.insert("metadata".into(), m.clone());
    }
    out
}

fn annotations_mut(out: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let meta = out.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let ann = meta
        .as_object_mut()
        .expect("object")
        .entry("annotations")
        .or_insert_with(|| json!({}));
    if !ann.is_object() {
        *ann = json!({});
    }
    ann.as_object_mut().expect("object")
}

// ---- autoscaling v2 (storage) <-> v1 ----

fn is_cpu_resource(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("Resource")
        && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
}

/// `Convert_autoscaling_HorizontalPodAutoscaler_To_v1_HorizontalPodAutoscaler`.
fn hpa_v2_to_v1(obj: &Value) -> Value {
    let mut out = envelope(obj, "autoscaling/v1", "HorizontalPodAutoscaler");
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let status = obj.get("status").cloned().unwrap_or(json!({}));
    let metrics = spec
        .get("metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let mut v1spec = Map::new();
    copy(&spec, &mut v1spec, &["scaleTargetRef", "minReplicas"]);
    v1spec.insert(
        "maxReplicas".into(),
        spec.get("maxReplicas").cloned().unwrap_or(json!(0)),
    );
    // The first cpu Resource metric decides; only a utilization target maps.
    if let Some(m) = metrics.iter().find(|m| is_cpu_resource(m))
        && let Some(u) = m
            .pointer("/resource/target/averageUtilization")
            .filter(|v| !v.is_null())
    {
        v1spec.insert("targetCPUUtilizationPercentage".into(), u.clone());
    }
    out.insert("spec".into(), Value::Object(v1spec));

    let mut v1status = Map::new();
    copy(
        &status,
        &mut v1status,
        &["observedGeneration", "lastScaleTime"],
    );
    for k in ["currentReplicas", "desiredReplicas"] {
        v1status.insert(k.into(), status.get(k).cloned().unwrap_or(json!(0)));
    }
    let current = status
        .get("currentMetrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // No break upstream: the last cpu utilization wins.
    for m in current.iter().filter(|m| is_cpu_resource(m)) {
        if let Some(u) = m
            .pointer("/resource/current/averageUtilization")
            .filter(|v| !v.is_null())
        {
            v1status.insert("currentCPUUtilizationPercentage".into(), u.clone());
        }
    }
    out.insert("status".into(), Value::Object(v1status));

    let others: Vec<Value> = metrics
        .iter()
        .filter(|m| {
            !(is_cpu_resource(m)
                && m.pointer("/resource/target/averageUtilization")
                    .is_some_and(|v| !v.is_null()))
        })
        .map(|m| metric_v2_to_v1(m, Half::Spec))
        .collect();
    let conditions = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !others.is_empty() {
        let enc = Value::Array(others).to_string();
        annotations_mut(&mut out).insert(METRIC_SPECS.into(), json!(enc));
    }
    if !current.is_empty() {
        let enc = Value::Array(
            current
                .iter()
                .map(|m| metric_v2_to_v1(m, Half::Status))
                .collect(),
        )
        .to_string();
        annotations_mut(&mut out).insert(METRIC_STATUSES.into(), json!(enc));
    }
    if !conditions.is_empty() {
        let enc = Value::Array(conditions).to_string();
        annotations_mut(&mut out).insert(CONDITIONS.into(), json!(enc));
    }
    Value::Object(out)
}

/// `Convert_v1_HorizontalPodAutoscaler_To_autoscaling_HorizontalPodAutoscaler`.
fn hpa_v1_to_v2(obj: &Value) -> Result<Value, ApiError> {
    let mut out = envelope(obj, "autoscaling/v2", "HorizontalPodAutoscaler");
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let status = obj.get("status").cloned().unwrap_or(Value::Null);

    let mut v2spec = Map::new();
    copy(
        &spec,
        &mut v2spec,
        &["scaleTargetRef", "minReplicas", "maxReplicas"],
    );
    let cpu = spec
        .get("targetCPUUtilizationPercentage")
        .filter(|v| !v.is_null())
        .map(|u| cpu_utilization_metric(u.clone()));

    let mut ann = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let decode =
        |ann: &mut Map<String, Value>, key: &str| -> Result<Option<Vec<Value>>, ApiError> {
            let Some(raw) = ann.remove(key) else {
                return Ok(None);
            };
            let text = raw.as_str().unwrap_or_default();
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Array(a)) => Ok(Some(a)),
                Ok(Value::Null) => Ok(Some(Vec::new())),
                Ok(_) | Err(_) => Err(ApiError::bad_request(format!(
                    "annotation {key}: cannot unmarshal into []v1.{}",
                    match key {
                        METRIC_SPECS => "MetricSpec",
                        METRIC_STATUSES => "MetricStatus",
                        _ => "HorizontalPodAutoscalerCondition",
                    }
                ))),
            }
        };
    let mut metrics: Vec<Value> = Vec::new();
    let others = decode(&mut ann, METRIC_SPECS)?;
    if let Some(others) = &others {
        metrics.extend(others.iter().map(|m| metric_v1_to_v2(m, Half::Spec)));
    }
    // The cpu target comes after the annotation's metrics.
    metrics.extend(cpu);
    if metrics.is_empty() {
        // "autoscaling/v1 formerly had an implicit default applied in the controller."
        metrics.push(cpu_utilization_metric(json!(DEFAULT_CPU_UTILIZATION)));
    }
    v2spec.insert("metrics".into(), Value::Array(metrics));
    out.insert("spec".into(), Value::Object(v2spec));

    let mut v2status = Map::new();
    if status.is_object() {
        copy(
            &status,
            &mut v2status,
            &[
                "observedGeneration",
                "lastScaleTime",
                "currentReplicas",
                "desiredReplicas",
            ],
        );
        if let Some(u) = status
            .get("currentCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
        {
            v2status.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": u}}}]),
            );
        }
    }
    // The annotation's statuses have more information: they replace the cpu one.
    if let Some(current) = decode(&mut ann, METRIC_STATUSES)? {
        v2status.insert(
            "currentMetrics".into(),
            Value::Array(
                current
                    .iter()
                    .map(|m| metric_v1_to_v2(m, Half::Status))
                    .collect(),
            ),
        );
    }
    if let Some(conds) = decode(&mut ann, CONDITIONS)? {
        v2status.insert("conditions".into(), Value::Array(conds));
    }
    if status.is_object() || !v2status.is_empty() {
        out.insert("status".into(), Value::Object(v2status));
    }
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        if ann.is_empty() {
            meta.remove("annotations");
        } else {
            meta.insert("annotations".into(), Value::Object(ann));
        }
    }
    Ok(Value::Object(out))
}

fn cpu_utilization_metric(u: Value) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": u}}})
}

/// Which half of an HPA a metric belongs to: a spec's `MetricSpec` (a `target`, v1 fields
/// named `target*`) or a status's `MetricStatus` (`current`, `current*`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Half {
    Spec,
    Status,
}

impl Half {
    /// The v2 member holding the values.
    fn inner(self) -> &'static str {
        match self {
            Half::Spec => "target",
            Half::Status => "current",
        }
    }

    /// A v1 field name: `targetValue`, `currentAverageValue`...
    fn v1(self, field: &str) -> String {
        format!("{}{field}", self.inner())
    }
}

/// Quantities v1 holds as required (non-pointer) fields: zero when v2 has none.
fn quantity_or_zero(v: &Value, key: &str) -> Value {
    v.get(key)
        .filter(|x| !x.is_null())
        .cloned()
        .unwrap_or(json!("0"))
}

/// v2 `MetricSpec`/`MetricStatus` -> v1 (the v2beta1 shape the annotations carry).
fn metric_v2_to_v1(m: &Value, half: Half) -> Value {
    let mut out = Map::new();
    copy(m, &mut out, &["type"]);
    let vals = |s: &Value| s.get(half.inner()).cloned().unwrap_or(json!({}));
    for key in ["resource", "containerResource"] {
        if let Some(r) = m.get(key).filter(|v| v.is_object()) {
            let t = vals(r);
            let mut o = Map::new();
            copy(r, &mut o, &["name", "container"]);
            rename(
                &t,
                "averageUtilization",
                &mut o,
                &half.v1("AverageUtilization"),
            );
            if half == Half::Status {
                o.insert(
                    half.v1("AverageValue"),
                    quantity_or_zero(&t, "averageValue"),
                );
            } else {
                rename(&t, "averageValue", &mut o, &half.v1("AverageValue"));
            }
            out.insert(key.into(), Value::Object(o));
        }
    }
    if let Some(p) = m.get("pods").filter(|v| v.is_object()) {
        let mut o = Map::new();
        rename(&p["metric"], "name", &mut o, "metricName");
        o.insert(
            half.v1("AverageValue"),
            quantity_or_zero(&vals(p), "averageValue"),
        );
        rename(&p["metric"], "selector", &mut o, "selector");
        out.insert("pods".into(), Value::Object(o));
    }
    if let Some(x) = m.get("object").filter(|v| v.is_object()) {
        let t = vals(x);
        let mut o = Map::new();
        o.insert(
            "target".into(),
            x.get("describedObject").cloned().unwrap_or(json!({})),
        );
        rename(&x["metric"], "name", &mut o, "metricName");
        o.insert(half.v1("Value"), quantity_or_zero(&t, "value"));
        rename(&x["metric"], "selector", &mut o, "selector");
        rename(&t, "averageValue", &mut o, "averageValue");
        out.insert("object".into(), Value::Object(o));
    }
    if let Some(x) = m.get("external").filter(|v| v.is_object()) {
        let t = vals(x);
        let mut o = Map::new();
        rename(&x["metric"], "name", &mut o, "metricName");
        rename(&x["metric"], "selector", &mut o, "metricSelector");
        if half == Half::Status {
            o.insert(half.v1("Value"), quantity_or_zero(&t, "value"));
        } else {
            rename(&t, "value", &mut o, &half.v1("Value"));
        }
        rename(&t, "averageValue", &mut o, &half.v1("AverageValue"));
        out.insert("external".into(), Value::Object(o));
    }
    Value::Object(out)
}

/// A v2 `MetricIdentifier` from v1's name and selector fields.
fn metric_id(name: &Value, selector: Option<&Value>) -> Value {
    let mut id = Map::new();
    if !name.is_null() {
        id.insert("name".into(), name.clone());
    }
    if let Some(s) = selector.filter(|s| !s.is_null()) {
        id.insert("selector".into(), s.clone());
    }
    Value::Object(id)
}

/// v1 `MetricSpec`/`MetricStatus` -> v2. A spec's target gets the `type` upstream infers from
/// which fields are set.
fn metric_v1_to_v2(m: &Value, half: Half) -> Value {
    let mut out = Map::new();
    copy(m, &mut out, &["type"]);
    let spec = half == Half::Spec;
    let typed = |mut t: Map<String, Value>, ty: &str| {
        if spec {
            t.insert("type".into(), json!(ty));
        }
        Value::Object(t)
    };
    for key in ["resource", "containerResource"] {
        if let Some(r) = m.get(key).filter(|v| v.is_object()) {
            let util = r
                .get(half.v1("AverageUtilization"))
                .filter(|v| !v.is_null());
            let mut t = Map::new();
            if spec {
                rename(r, &half.v1("AverageValue"), &mut t, "averageValue");
            } else {
                // Upstream takes the address of v1's required currentAverageValue.
                t.insert(
                    "averageValue".into(),
                    quantity_or_zero(r, &half.v1("AverageValue")),
                );
            }
            if let Some(u) = util {
                t.insert("averageUtilization".into(), u.clone());
            }
            let ty = if util.is_some() {
                "Utilization"
            } else {
                "AverageValue"
            };
            let mut o = Map::new();
            copy(r, &mut o, &["name", "container"]);
            o.insert(half.inner().into(), typed(t, ty));
            out.insert(key.into(), Value::Object(o));
        }
    }
    if let Some(p) = m.get("pods").filter(|v| v.is_object()) {
        let mut t = Map::new();
        t.insert(
            "averageValue".into(),
            quantity_or_zero(p, &half.v1("AverageValue")),
        );
        let mut o = Map::new();
        o.insert(
            "metric".into(),
            metric_id(&p["metricName"], p.get("selector")),
        );
        o.insert(half.inner().into(), typed(t, "AverageValue"));
        out.insert("pods".into(), Value::Object(o));
    }
    if let Some(x) = m.get("object").filter(|v| v.is_object()) {
        let avg = x.get("averageValue").filter(|v| !v.is_null());
        let mut t = Map::new();
        t.insert("value".into(), quantity_or_zero(x, &half.v1("Value")));
        if let Some(a) = avg {
            t.insert("averageValue".into(), a.clone());
        }
        let ty = if avg.is_none() {
            "Value"
        } else {
            "AverageValue"
        };
        let mut o = Map::new();
        o.insert(
            "describedObject".into(),
            x.get("target").cloned().unwrap_or(json!({})),
        );
        o.insert(
            "metric".into(),
            metric_id(&x["metricName"], x.get("selector")),
        );
        o.insert(half.inner().into(), typed(t, ty));
        out.insert("object".into(), Value::Object(o));
    }
    if let Some(x) = m.get("external").filter(|v| v.is_object()) {
        let value = x.get(half.v1("Value")).filter(|v| !v.is_null());
        let mut t = Map::new();
        if spec {
            if let Some(v) = value {
                t.insert("value".into(), v.clone());
            }
        } else {
            t.insert("value".into(), quantity_or_zero(x, &half.v1("Value")));
        }
        rename(x, &half.v1("AverageValue"), &mut t, "averageValue");
        let ty = if value.is_none() {
            "AverageValue"
        } else {
            "Value"
        };
        let mut o = Map::new();
        o.insert(
            "metric".into(),
            metric_id(&x["metricName"], x.get("metricSelector")),
        );
        o.insert(half.inner().into(), typed(t, ty));
        out.insert("external".into(), Value::Object(o));
    }
    Value::Object(out)
}

// ---- core v1 Event (storage) <-> events.k8s.io/v1 Event ----

/// `Convert_core_Event_To_v1_Event` with events/v1's JSON tags: `regarding` and
/// `deprecatedSource` are structs (always written), the deprecated timestamps and `eventTime`
/// are written as `null` when unset, the rest is `omitempty`.
fn event_core_to_v1(obj: &Value) -> Value {
    let mut out = envelope(obj, "events.k8s.io/v1", "Event");
    let or_null = |k: &str| obj.get(k).cloned().unwrap_or(Value::Null);
    out.insert("eventTime".into(), or_null("eventTime"));
    copy(obj, &mut out, &["series"]);
    for (src, dst) in [
        ("reportingComponent", "reportingController"),
        ("reportingInstance", "reportingInstance"),
        ("action", "action"),
        ("reason", "reason"),
    ] {
        if let Some(s) = obj
            .get(src)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            out.insert(dst.into(), s.clone());
        }
    }
    out.insert(
        "regarding".into(),
        obj.get("involvedObject")
            .filter(|v| v.is_object())
            .cloned()
            .unwrap_or(json!({})),
    );
    copy(obj, &mut out, &["related"]);
    if let Some(s) = obj
        .get("message")
        .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    {
        out.insert("note".into(), s.clone());
    }
    if let Some(s) = obj
        .get("type")
        .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    {
        out.insert("type".into(), s.clone());
    }
    out.insert(
        "deprecatedSource".into(),
        obj.get("source")
            .filter(|v| v.is_object())
            .cloned()
            .unwrap_or(json!({})),
    );
    out.insert("deprecatedFirstTimestamp".into(), or_null("firstTimestamp"));
    out.insert("deprecatedLastTimestamp".into(), or_null("lastTimestamp"));
    if let Some(c) = obj
        .get("count")
        .filter(|v| v.as_i64().is_some_and(|c| c != 0))
    {
        out.insert("deprecatedCount".into(), c.clone());
    }
    Value::Object(out)
}

/// `Convert_v1_Event_To_core_Event`, written with core v1's JSON tags (`involvedObject` and
/// `source` always, `reportingComponent`/`reportingInstance` always, timestamps `null` when
/// unset).
fn event_v1_to_core(obj: &Value) -> Value {
    let mut out = envelope(obj, "v1", "Event");
    let or_null = |k: &str| obj.get(k).cloned().unwrap_or(Value::Null);
    out.insert(
        "involvedObject".into(),
        obj.get("regarding")
            .filter(|v| v.is_object())
            .cloned()
            .unwrap_or(json!({})),
    );
    rename(obj, "reason", &mut out, "reason");
    rename(obj, "note", &mut out, "message");
    out.insert(
        "source".into(),
        obj.get("deprecatedSource")
            .filter(|v| v.is_object())
            .cloned()
            .unwrap_or(json!({})),
    );
    out.insert("firstTimestamp".into(), or_null("deprecatedFirstTimestamp"));
    out.insert("lastTimestamp".into(), or_null("deprecatedLastTimestamp"));
    rename(obj, "deprecatedCount", &mut out, "count");
    rename(obj, "type", &mut out, "type");
    out.insert("eventTime".into(), or_null("eventTime"));
    copy(obj, &mut out, &["series", "action", "related"]);
    out.insert(
        "reportingComponent".into(),
        obj.get("reportingController").cloned().unwrap_or(json!("")),
    );
    out.insert(
        "reportingInstance".into(),
        obj.get("reportingInstance").cloned().unwrap_or(json!("")),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa_v2() -> Value {
        json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                ],
            },
            "status": {
                "currentReplicas": 2, "desiredReplicas": 3,
                "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 75, "averageValue": "150m"}}},
                ],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}],
            },
        })
    }

    // pkg/apis/autoscaling/v1/conversion.go: the cpu target becomes
    // targetCPUUtilizationPercentage, the rest travels in annotations.
    #[test]
    fn hpa_v2_to_v1_keeps_what_v1_cannot_hold_in_annotations() {
        let v1 = hpa_v2_to_v1(&hpa_v2());
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["spec"]["maxReplicas"], 5);
        assert!(v1["spec"].get("metrics").is_none());
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 75);
        assert_eq!(v1["status"]["desiredReplicas"], 3);
        let ann = &v1["metadata"]["annotations"];
        assert_eq!(ann["team"], "a");
        let others: Value = serde_json::from_str(ann[METRIC_SPECS].as_str().unwrap()).unwrap();
        assert_eq!(
            others,
            json!([{"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "500Mi"}}])
        );
        let cur: Value = serde_json::from_str(ann[METRIC_STATUSES].as_str().unwrap()).unwrap();
        assert_eq!(
            cur[0]["resource"],
            json!({"name": "cpu", "currentAverageUtilization": 75, "currentAverageValue": "150m"})
        );
        assert!(
            ann[CONDITIONS]
                .as_str()
                .unwrap()
                .contains("ReadyForNewScale")
        );
    }

    #[test]
    fn hpa_round_trip_through_v1_is_lossless_for_metrics_and_status() {
        let back = hpa_v1_to_v2(&hpa_v2_to_v1(&hpa_v2())).unwrap();
        let orig = hpa_v2();
        // Upstream puts the annotation's metrics first, the cpu target last: same order here.
        assert_eq!(back["spec"]["metrics"], orig["spec"]["metrics"]);
        assert_eq!(
            back["status"]["currentMetrics"],
            orig["status"]["currentMetrics"]
        );
        assert_eq!(back["status"]["conditions"], orig["status"]["conditions"]);
        assert_eq!(back["metadata"]["annotations"], json!({"team": "a"}));
    }

    #[test]
    fn pods_object_and_external_metrics_survive_v1() {
        let mut v2 = hpa_v2();
        v2["spec"]["metrics"] = json!([
            {"type": "Pods", "pods": {"metric": {"name": "rps"},
                "target": {"type": "AverageValue", "averageValue": "1k"}}},
            {"type": "Object", "object": {"metric": {"name": "queue"},
                "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "q"},
                "target": {"type": "Value", "value": "10"}}},
            {"type": "External", "external": {"metric": {"name": "lag",
                "selector": {"matchLabels": {"topic": "a"}}},
                "target": {"type": "AverageValue", "averageValue": "30"}}},
        ]);
        v2["status"]["currentMetrics"] = json!([
            {"type": "Pods", "pods": {"metric": {"name": "rps"}, "current": {"averageValue": "900"}}},
        ]);
        let v1 = hpa_v2_to_v1(&v2);
        assert!(v1["spec"].get("targetCPUUtilizationPercentage").is_none());
        let ann: Value = serde_json::from_str(
            v1["metadata"]["annotations"][METRIC_SPECS]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            ann[2]["external"],
            json!({"metricName": "lag", "metricSelector": {"matchLabels": {"topic": "a"}},
                "targetAverageValue": "30"})
        );
        assert_eq!(ann[1]["object"]["targetValue"], "10");
        let back = hpa_v1_to_v2(&v1).unwrap();
        assert_eq!(back["spec"]["metrics"], v2["spec"]["metrics"]);
        assert_eq!(
            back["status"]["currentMetrics"],
            v2["status"]["currentMetrics"]
        );
    }

    #[test]
    fn hpa_v1_without_target_gets_the_80_percent_cpu_default() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"}, "spec": {"maxReplicas": 3,
            "scaleTargetRef": {"kind": "Deployment", "name": "d"}}});
        let v2 = hpa_v1_to_v2(&v1).unwrap();
        assert_eq!(
            v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
        );
        assert!(v2.get("status").is_none());
        assert!(v2["metadata"].get("annotations").is_none());
    }

    #[test]
    fn hpa_v1_with_a_broken_annotation_is_refused() {
        let v1 = json!({"metadata": {"name": "h", "annotations": {METRIC_SPECS: "{not json"}},
            "spec": {"maxReplicas": 3}});
        assert!(hpa_v1_to_v2(&v1).is_err());
    }

    // pkg/apis/events/v1/conversion.go: message <-> note, involvedObject <-> regarding,
    // the legacy timestamps and count as deprecated*.
    #[test]
    fn core_event_as_events_v1_and_back() {
        let core = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default"},
            "reason": "Killing", "message": "Stopping container nginx",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:05Z",
            "count": 2, "type": "Normal", "eventTime": null,
            "reportingComponent": "kubelet", "reportingInstance": "node-1",
        });
        let v1 = event_core_to_v1(&core);
        assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
        assert_eq!(v1["note"], "Stopping container nginx");
        assert_eq!(v1["regarding"]["name"], "web-0");
        assert_eq!(v1["reportingController"], "kubelet");
        assert_eq!(v1["deprecatedCount"], 2);
        assert_eq!(v1["deprecatedLastTimestamp"], "2026-01-01T00:00:05Z");
        assert_eq!(v1["deprecatedSource"]["component"], "kubelet");
        assert!(v1["eventTime"].is_null() && v1.get("message").is_none());
        assert_eq!(event_v1_to_core(&v1), core);
    }

    #[test]
    fn events_v1_event_stored_with_null_legacy_timestamps() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "series": {"count": 3, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
            "reportingController": "default-scheduler", "reportingInstance": "sched-1",
            "action": "Scheduling", "reason": "FailedScheduling", "type": "Warning",
            "regarding": {"kind": "Pod", "name": "p"}, "note": "0/3 nodes are available",
        });
        let core = event_v1_to_core(&v1);
        assert!(core["lastTimestamp"].is_null() && core["firstTimestamp"].is_null());
        assert!(core.get("count").is_none());
        assert_eq!(core["series"]["count"], 3);
        assert_eq!(core["message"], "0/3 nodes are available");
        assert_eq!(core["reportingComponent"], "default-scheduler");
        assert_eq!(core["source"], json!({}));
    }
}

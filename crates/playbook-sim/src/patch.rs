//! Patches: JSON merge patch, strategic merge patch (common cases), JSON patch, server-side apply.

use serde_json::{Map, Value};

use super::error::ApiError;

/// RFC 7386 JSON merge patch.
pub fn merge(doc: &mut Value, patch: &Value) {
    json_patch::merge(doc, patch);
}

/// RFC 6902 JSON patch.
pub fn json(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "the server rejected our request due to an error in our request: {e}"
        ))
    })?;
    json_patch::patch(doc, &ops)
        .map_err(|e| ApiError::new(super::error::Reason::Invalid, e.to_string()))
}

/// The merge key of a list field in built-in kinds, if the list is merged by key.
fn merge_key(field: &str, sample: Option<&Value>) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ports" => {
            if sample.is_some_and(|s| s.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    })
}

/// Primitive lists merged as sets in strategic merge patch.
fn primitive_merge(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Strategic merge patch for built-in kinds: maps merge recursively (null deletes), lists of
/// known fields merge by key (`containers` by `name`, ...), `$patch: delete|replace`,
/// `$deleteFromPrimitiveList/...`, and `$setElementOrder/...`/`$retainKeys` are accepted.
pub fn strategic(doc: &mut Value, patch: &Value) {
    smp_map(doc, patch);
}

fn smp_map(doc: &mut Value, patch: &Value) {
    let Some(pm) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = pm.clone();
        p.remove("$patch");
        *doc = Value::Object(strip_directives(&p));
        return;
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Some(dm) = doc.as_object_mut() else {
        return;
    };
    for (k, v) in pm {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(del)) = (
                dm.get_mut(field).and_then(Value::as_array_mut),
                v.as_array(),
            ) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            dm.remove(k);
            continue;
        }
        if v.get("$patch").and_then(Value::as_str) == Some("delete") {
            dm.remove(k);
            continue;
        }
        match v {
            Value::Object(_) => smp_map(dm.entry(k.clone()).or_insert(Value::Null), v),
            Value::Array(items) => {
                let cur = dm.entry(k.clone()).or_insert(Value::Null);
                smp_list(k, cur, items);
            }
            _ => {
                dm.insert(k.clone(), v.clone());
            }
        }
    }
}

fn strip_directives(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn smp_list(field: &str, cur: &mut Value, items: &[Value]) {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *cur = Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .cloned()
                .collect(),
        );
        return;
    }
    if primitive_merge(field) && items.iter().all(|i| !i.is_object()) {
        let mut list = cur.as_array().cloned().unwrap_or_default();
        for i in items {
            if !list.contains(i) {
                list.push(i.clone());
            }
        }
        *cur = Value::Array(list);
        return;
    }
    let Some(key) = merge_key(field, items.first()) else {
        *cur = Value::Array(items.to_vec());
        return;
    };
    if !items.iter().all(Value::is_object) {
        *cur = Value::Array(items.to_vec());
        return;
    }
    let mut list = cur.as_array().cloned().unwrap_or_default();
    for item in items {
        let kv = item.get(key);
        let pos = list.iter().position(|x| kv.is_some() && x.get(key) == kv);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(p), true) => {
                list.remove(p);
            }
            (None, true) => {}
            (Some(p), false) => smp_map(&mut list[p], item),
            (None, false) => {
                let mut fresh = Value::Object(Map::new());
                smp_map(&mut fresh, item);
                list.push(fresh);
            }
        }
    }
    *cur = Value::Array(list);
}

/// Server-side apply (simplified, no managedFields): the applied configuration is merged into
/// the live object, maps recursively and keyed lists by key, other lists replaced. With
/// `custom` (CRDs) lists are always replaced, as for `atomic` lists.
pub fn apply(live: &mut Value, applied: &Value, custom: bool) {
    if custom {
        apply_custom(live, applied);
    } else {
        let mut a = applied.clone();
        remove_nulls(&mut a);
        smp_map(live, &a);
    }
}

fn apply_custom(live: &mut Value, applied: &Value) {
    match (live.as_object_mut(), applied.as_object()) {
        (Some(l), Some(a)) => {
            for (k, v) in a {
                if v.is_object() && l.get(k).is_some_and(Value::is_object) {
                    if let Some(slot) = l.get_mut(k) {
                        apply_custom(slot, v);
                    }
                } else {
                    l.insert(k.clone(), v.clone());
                }
            }
        }
        _ => *live = applied.clone(),
    }
}

fn remove_nulls(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !x.is_null());
        for x in m.values_mut() {
            remove_nulls(x);
        }
    } else if let Some(a) = v.as_array_mut() {
        for x in a {
            remove_nulls(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut d = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        strategic(
            &mut d,
            &json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}]}}),
        );
        assert_eq!(
            d["spec"]["containers"],
            json!([{"name": "a", "image": "x"}, {"name": "b", "image": "z"}, {"name": "c", "image": "w"}])
        );
        strategic(
            &mut d,
            &json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
        );
        assert_eq!(d["spec"]["containers"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn strategic_labels_nulls_and_directives() {
        let mut d = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]}, "spec": {"args": ["1"]}});
        strategic(
            &mut d,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}, "finalizers": ["y"],
                "$setElementOrder/finalizers": ["x", "y"]}, "spec": {"args": ["2"]}}),
        );
        assert_eq!(d["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        assert_eq!(d["metadata"]["finalizers"], json!(["x", "y"]));
        assert_eq!(d["spec"]["args"], json!(["2"]));
        strategic(
            &mut d,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
        );
        assert_eq!(d["metadata"]["finalizers"], json!(["y"]));
        strategic(&mut d, &json!({"spec": {"$patch": "replace", "z": 1}}));
        assert_eq!(d["spec"], json!({"z": 1}));
    }

    #[test]
    fn json_patch_and_merge() {
        let mut d = json!({"a": {"b": 1}});
        json(&mut d, &json!([{"op": "replace", "path": "/a/b", "value": 2}, {"op": "add", "path": "/c", "value": 3}]))
            .expect("patch");
        assert_eq!(d, json!({"a": {"b": 2}, "c": 3}));
        assert!(json(&mut d, &json!([{"op": "test", "path": "/a/b", "value": 9}])).is_err());
        assert_eq!(
            json(&mut d, &json!({"not": "a list"})).map_err(|e| e.code()),
            Err(400)
        );
        merge(&mut d, &json!({"a": null, "d": 4}));
        assert_eq!(d, json!({"c": 3, "d": 4}));
    }

    #[test]
    fn apply_merges() {
        let mut live = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x", "imagePullPolicy": "Always"}]}}}});
        apply(
            &mut live,
            &json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "a", "image": "y"}]}}}}),
            false,
        );
        assert_eq!(live["spec"]["replicas"], 3);
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][0]["image"],
            "y"
        );
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
        let mut c = json!({"spec": {"list": [1, 2], "m": {"a": 1}}});
        apply(&mut c, &json!({"spec": {"list": [3], "m": {"b": 2}}}), true);
        assert_eq!(c, json!({"spec": {"list": [3], "m": {"a": 1, "b": 2}}}));
    }
}

//! Small helpers the core controllers share: JSON access, quantities, durations, hashes, conditions.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::store::meta_str;
use crate::world::Ctx;

/// A namespaced object's key (see [`super::reconcile::ObjectKey`]).
pub(crate) type Key = super::reconcile::ObjectKey;

/// The key of an object.
pub(crate) fn key_of(obj: &Value) -> Key {
    Key::new(meta_str(obj, "namespace"), meta_str(obj, "name"))
}

/// A string at a JSON pointer ("" if absent or not a string).
pub(crate) fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// An integer at a JSON pointer.
pub(crate) fn i(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

/// A timestamp as the API writes it (RFC 3339, whole seconds).
pub(crate) fn ts(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// Parses an RFC 3339 timestamp string.
pub(crate) fn parse_ts(v: &Value) -> Option<Timestamp> {
    v.as_str()?.parse().ok()
}

/// True when the object carries a deletionTimestamp.
pub(crate) fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Parses a Go-style duration ("20s", "1m30s", "500ms", "2h") or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Option<SignedDuration> {
    let t = text.trim();
    let secs = match t.parse::<f64>() {
        Ok(secs) => secs,
        Err(_) => playbook_model::units::go_duration_secs(t).ok()?,
    };
    if secs.is_finite() && (0.0..1e9).contains(&secs) {
        Some(SignedDuration::from_nanos((secs * 1e9) as i64))
    } else {
        None
    }
}

/// Parses a Kubernetes quantity ("250m", "1.5", "300Mi", "1G", "2e3") into its value.
pub(crate) fn quantity(v: &Value) -> Option<f64> {
    match v.as_f64() {
        Some(n) => Some(n),
        None => playbook_model::units::quantity(v.as_str()?),
    }
}

/// A CPU quantity in millicores.
pub(crate) fn cpu_milli(v: &Value) -> Option<i64> {
    quantity(v).map(|q| (q * 1000.0).round() as i64)
}

/// A memory quantity in bytes.
pub(crate) fn mem_bytes(v: &Value) -> Option<i64> {
    quantity(v).map(|q| q.round() as i64)
}

/// Resolves an int-or-percent (`maxSurge: "25%"`) against `total`, rounding up or down.
pub(crate) fn int_or_percent(v: Option<&Value>, total: i64, round_up: bool, default: i64) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(default).max(0),
        Some(Value::String(p)) => match p.strip_suffix('%').and_then(|x| x.parse::<i64>().ok()) {
            Some(pct) => {
                let x = total * pct.max(0);
                if round_up { (x + 99) / 100 } else { x / 100 }
            }
            None => p.parse().unwrap_or(default).max(0),
        },
        _ => default,
    }
}

/// FNV-1a over a JSON value with object keys in sorted order (stable across runs).
pub(crate) fn hash_value(v: &Value) -> u32 {
    fn feed(h: &mut u32, bytes: &[u8]) {
        for b in bytes {
            *h ^= u32::from(*b);
            *h = h.wrapping_mul(0x0100_0193);
        }
    }
    fn walk(h: &mut u32, v: &Value) {
        match v {
            Value::Object(m) => {
                feed(h, b"{");
                let keys: BTreeSet<&String> = m.keys().collect();
                for k in keys {
                    feed(h, k.as_bytes());
                    feed(h, b":");
                    walk(h, &m[k]);
                    feed(h, b",");
                }
                feed(h, b"}");
            }
            Value::Array(a) => {
                feed(h, b"[");
                for x in a {
                    walk(h, x);
                    feed(h, b",");
                }
                feed(h, b"]");
            }
            other => feed(h, other.to_string().as_bytes()),
        }
    }
    let mut h = 0x811c_9dc5u32;
    walk(&mut h, v);
    h
}

/// FNV-1a over a string.
pub(crate) fn hash_str(text: &str) -> u32 {
    hash_value(&Value::String(text.to_string()))
}

const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The `pod-template-hash` of a pod template, as Kubernetes renders it (safe-encoded FNV-32a).
pub(crate) fn template_hash(template: &Value) -> String {
    let mut t = template.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove("pod-template-hash");
        l.remove("controller-revision-hash");
    }
    hash_value(&t)
        .to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// Five random characters from the alphabet Kubernetes uses for generated names.
pub(crate) fn random_suffix(rng: &mut ChaCha8Rng) -> String {
    (0..5)
        .map(|_| ALPHANUMS[rng.random_range(0..ALPHANUMS.len())] as char)
        .collect()
}

/// An ownerReference to `owner` marking it as the controller.
pub(crate) fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"),
        "name": meta_str(owner, "name"), "uid": meta_str(owner, "uid"),
        "controller": true, "blockOwnerDeletion": true,
    })
}

/// The (kind, name, uid) of an object's controller ownerReference.
pub(crate) fn controller_of(obj: &Value) -> Option<(&str, &str, &str)> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| (s(r, "/kind"), s(r, "/name"), s(r, "/uid")))
}

/// A condition of `status.conditions` by type.
pub(crate) fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// True when the pod's Ready condition is True.
pub(crate) fn pod_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

/// When the pod became Ready (if it is).
pub(crate) fn ready_since(pod: &Value) -> Option<Timestamp> {
    condition(pod, "Ready")
        .filter(|c| c["status"] == "True")
        .and_then(|c| parse_ts(&c["lastTransitionTime"]))
}

/// True when the pod is Ready and has been for `min_ready` seconds (at `now`).
pub(crate) fn pod_available(pod: &Value, min_ready: i64, now: Timestamp) -> bool {
    match ready_since(pod) {
        Some(t) => min_ready <= 0 || t + SignedDuration::from_secs(min_ready) <= now,
        None => false,
    }
}

/// Succeeded or Failed.
pub(crate) fn pod_terminal(pod: &Value) -> bool {
    matches!(s(pod, "/status/phase"), "Succeeded" | "Failed")
}

/// Not terminal and not being deleted: what ReplicaSets and StatefulSets count.
pub(crate) fn pod_active(pod: &Value) -> bool {
    !pod_terminal(pod) && !deleting(pod)
}

/// Sets a condition in a list, keeping `lastTransitionTime` when the status did not change.
/// `with_update` adds `lastUpdateTime` (Deployments) refreshed when reason or message change.
pub(crate) fn set_condition(
    conds: &mut Vec<Value>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
    with_update: bool,
) {
    let now_s = ts(now);
    let pos = conds.iter().position(|c| c["type"] == type_);
    let mut c = json!({"type": type_, "status": status, "reason": reason, "message": message});
    if reason.is_empty() {
        if let Some(m) = c.as_object_mut() {
            m.remove("reason");
            m.remove("message");
        }
    }
    let (transition, update) = match pos.map(|p| &conds[p]) {
        Some(old) if old["status"] == status => {
            let same = old["reason"] == c["reason"] && old["message"] == c["message"];
            (
                old["lastTransitionTime"].clone(),
                if same {
                    old["lastUpdateTime"].clone()
                } else {
                    json!(now_s)
                },
            )
        }
        _ => (json!(now_s), json!(now_s)),
    };
    if with_update {
        c["lastUpdateTime"] = if update.is_null() {
            json!(now_s)
        } else {
            update
        };
    }
    c["lastTransitionTime"] = if transition.is_null() {
        json!(now_s)
    } else {
        transition
    };
    match pos {
        Some(p) => conds[p] = c,
        None => conds.push(c),
    }
}

/// Pending per-object wake-ups of a controller, by time.
#[derive(Default)]
pub(crate) struct Due {
    at: BTreeMap<Timestamp, BTreeSet<Key>>,
}

impl Due {
    /// Remembers to look at `key` again at `t` (and asks the world to wake us).
    pub(crate) fn add(&mut self, ctx: &mut Ctx<'_>, key: Key, t: Timestamp) {
        self.at.entry(t).or_default().insert(key);
        ctx.wake_at(t);
    }

    /// Takes every key due at or before `now`.
    pub(crate) fn take(&mut self, now: Timestamp) -> BTreeSet<Key> {
        let mut out = BTreeSet::new();
        while let Some(entry) = self.at.first_entry() {
            if *entry.key() > now {
                break;
            }
            out.extend(entry.remove());
        }
        out
    }

    /// Forgets everything (on resync).
    pub(crate) fn clear(&mut self) {
        self.at.clear();
    }
}

/// Replaces an object's status (the status subresource), ignoring conflicts; true if written.
pub(crate) fn write_status(
    ctx: &mut Ctx<'_>,
    resource: impl crate::resources::ResourceName,
    obj: &Value,
    status: Value,
) -> bool {
    if obj.get("status") == Some(&status) {
        return false;
    }
    let mut o = obj.clone();
    o["status"] = status;
    o["metadata"]["resourceVersion"] = json!("");
    ctx.update_status(resource, o).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_durations_parse() {
        assert_eq!(cpu_milli(&json!("250m")), Some(250));
        assert_eq!(cpu_milli(&json!("1.5")), Some(1500));
        assert_eq!(cpu_milli(&json!(2)), Some(2000));
        assert_eq!(cpu_milli(&json!("1500000n")), Some(2));
        assert_eq!(mem_bytes(&json!("300Mi")), Some(300 * 1024 * 1024));
        assert_eq!(mem_bytes(&json!("1G")), Some(1_000_000_000));
        assert_eq!(mem_bytes(&json!("bogus")), None);
        assert_eq!(parse_duration("1m30s"), Some(SignedDuration::from_secs(90)));
        assert_eq!(parse_duration("20"), Some(SignedDuration::from_secs(20)));
        assert_eq!(
            parse_duration("500ms"),
            Some(SignedDuration::from_millis(500))
        );
        assert_eq!(parse_duration("x"), None);
        assert_eq!(int_or_percent(Some(&json!("25%")), 3, true, 0), 1);
        assert_eq!(int_or_percent(Some(&json!("25%")), 3, false, 0), 0);
        assert_eq!(int_or_percent(Some(&json!(2)), 3, false, 0), 2);
    }

    #[test]
    fn template_hash_is_stable_and_ignores_key_order_and_hash_label() {
        let a = json!({"metadata": {"labels": {"app": "x", "pod-template-hash": "zz"}}, "spec": {"a": 1, "b": 2}});
        let b = json!({"spec": {"b": 2, "a": 1}, "metadata": {"labels": {"app": "x"}}});
        assert_eq!(template_hash(&a), template_hash(&b));
        let c = json!({"spec": {"b": 3, "a": 1}, "metadata": {"labels": {"app": "x"}}});
        assert_ne!(template_hash(&a), template_hash(&c));
        assert!(
            template_hash(&a)
                .chars()
                .all(|c| ALPHANUMS.contains(&(c as u8)))
        );
    }
}

//! The store's writes: create, update, delete, and what follows them (finalizers, garbage
//! collection, namespace deletion).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::super::defaults;
use super::super::error::{ApiError, Reason};
use super::super::resources::ResId;
use jiff::Timestamp;

use crate::controllers::crd::CLEANUP_FINALIZER;

use super::{
    DeleteOptions, EventKind, ObjKey, Propagation, Store, finalizers, meta_str, owner_uids, str_at,
};

impl Store {
    /// Creates an object in namespace `ns` ("" for cluster-scoped). `keep_status` keeps a
    /// `status` given on create (seeding, controllers); the API drops it as a real server does.
    pub fn create(
        &mut self,
        res: ResId,
        ns: &str,
        obj: Value,
        keep_status: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let saved_rng = self.dry_run.then(|| self.rng.clone());
        let out = self.create_inner(res, ns, obj, keep_status);
        if let Some(r) = saved_rng {
            self.rng = r;
        }
        out
    }

    fn create_inner(
        &mut self,
        res: ResId,
        ns: &str,
        obj: Value,
        keep_status: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let def = self.registry.def(res).clone();
        let Value::Object(mut map) = obj else {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format",
            ));
        };
        check_shape(&mut map)?;
        map.insert("apiVersion".into(), Value::String(def.api_version()));
        map.insert("kind".into(), Value::String(def.kind.clone()));
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        if !meta.is_object() {
            return Err(ApiError::bad_request("metadata must be an object"));
        }
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            match meta.get("generateName").and_then(Value::as_str) {
                Some(g) if !g.is_empty() => {
                    let g = g.to_string();
                    name = format!("{g}{}", self.generated_suffix());
                }
                _ => {
                    return Err(ApiError::invalid(
                        &def.kind,
                        &def.group,
                        "",
                        &[(
                            "metadata.name".into(),
                            "Required value: name or generateName is required".into(),
                        )],
                    ));
                }
            }
        }
        // With admission on, the kind's own name rule reports it (api/validation.rs).
        if let Some(msg) = invalid_name(&name).filter(|_| !self.admission) {
            return Err(ApiError::invalid(
                &def.kind,
                &def.group,
                &name,
                &[(
                    "metadata.name".into(),
                    format!("Invalid value: \"{name}\": {msg}"),
                )],
            ));
        }
        let ns = if def.namespaced {
            let body_ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !body_ns.is_empty() && !ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            let ns = if ns.is_empty() {
                body_ns.to_string()
            } else {
                ns.to_string()
            };
            if ns.is_empty() {
                return Err(ApiError::bad_request(
                    "namespace is required for a namespaced resource",
                ));
            }
            ns
        } else {
            String::new()
        };
        if def.namespaced {
            let nsres = self.registry.lookup("namespaces").unwrap_or(0);
            match self.get(nsres, "", &ns) {
                None => return Err(ApiError::not_found("namespaces", &ns)),
                Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => {
                    return Err(ApiError::new(
                        Reason::Forbidden,
                        format!(
                            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                            self.qualified(res)
                        ),
                    ));
                }
                _ => {}
            }
        }
        if self.get(res, &ns, &name).is_some() {
            return Err(ApiError::already_exists(&self.qualified(res), &name));
        }
        let uid = self.uid();
        let ts = self.timestamp();
        let m = meta.as_object_mut().expect("checked object");
        m.insert("name".into(), Value::String(name.clone()));
        if def.namespaced {
            m.insert("namespace".into(), Value::String(ns.clone()));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), Value::String(uid.clone()));
        m.insert("creationTimestamp".into(), Value::String(ts));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("managedFields");
        if def.generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        if def.status && !keep_status {
            map.remove("status");
        }
        let mut obj = Value::Object(map);
        defaults::apply(&def, &mut obj, &mut self.rng);
        self.admit(res, &obj, None)?;
        self.validate_custom(res, &obj)?;
        if self.dry_run {
            return Ok(Arc::new(obj));
        }
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let obj = Arc::new(obj);
        let key = (res, ns.clone(), name.clone());
        self.uids.insert(uid, key.clone());
        self.index_owners(&key, &obj, true);
        self.insert(res, &ns, &name, obj.clone());
        self.push_event(res, &ns, &name, EventKind::Added, obj.clone(), None);
        Ok(obj)
    }

    /// Replaces an object (PUT). With `status_only`, only `status` is taken from `obj` (the
    /// `/status` subresource); otherwise a kind with a status subresource keeps its status.
    /// A stale `metadata.resourceVersion` in `obj` is a 409 Conflict; an empty one skips the check.
    /// An update that changes nothing does not bump the resourceVersion nor make an event.
    pub fn update(
        &mut self,
        res: ResId,
        ns: &str,
        name: &str,
        obj: Value,
        status_only: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let def = self.registry.def(res).clone();
        let ns = if def.namespaced { ns } else { "" };
        let old = self
            .get(res, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&self.qualified(res), name))?;
        let Value::Object(mut map) = obj else {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format",
            ));
        };
        check_shape(&mut map)?;
        let body_name = map
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or(name);
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let want_rv = map
            .get("metadata")
            .and_then(|m| m.get("resourceVersion"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !want_rv.is_empty() && want_rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::conflict(&self.qualified(res), name));
        }
        let mut new = if status_only {
            let mut n = (*old).clone();
            match map.remove("status") {
                Some(s) => n["status"] = s,
                None => {
                    if let Some(o) = n.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            n
        } else {
            if def.status {
                match old.get("status") {
                    Some(s) => {
                        map.insert("status".into(), s.clone());
                    }
                    None => {
                        map.remove("status");
                    }
                }
            }
            map.insert("apiVersion".into(), Value::String(def.api_version()));
            map.insert("kind".into(), Value::String(def.kind.clone()));
            let mut n = Value::Object(map);
            if !n.get("metadata").is_some_and(Value::is_object) {
                n["metadata"] = json!({});
            }
            let nm = n["metadata"].as_object_mut().expect("object");
            let om = old["metadata"].as_object().cloned().unwrap_or_default();
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ] {
                match om.get(k) {
                    Some(v) => {
                        nm.insert(k.into(), v.clone());
                    }
                    None => {
                        nm.remove(k);
                    }
                }
            }
            nm.remove("managedFields");
            defaults::apply(&def, &mut n, &mut self.rng);
            self.admit(res, &n, Some(old.as_ref()))?;
            self.validate_custom(res, &n)?;
            if def.generation && spec_part(&n) != spec_part(&old) {
                let g = old
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                n["metadata"]["generation"] = json!(g + 1);
            }
            n
        };
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if new == *old {
            return Ok(old);
        }
        if self.dry_run {
            return Ok(Arc::new(new));
        }
        let rv = self.next_rv();
        new["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let new = Arc::new(new);
        let key = (res, ns.to_string(), name.to_string());
        self.index_owners(&key, &old, false);
        self.index_owners(&key, &new, true);
        self.insert(res, ns, name, new.clone());
        self.push_event(res, ns, name, EventKind::Modified, new.clone(), Some(old));
        // A graceful pod deletion (when turned on) waits for the kubelet's second delete;
        // otherwise the last finalizer gone ends the deletion.
        let held_gracefully = self.graceful_pods
            && new
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                != 0;
        if new.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers(&new).is_empty()
            && !held_gracefully
        {
            return self.remove(res, ns, name);
        }
        Ok(new)
    }

    /// Deletes an object: removed at once, or marked with `deletionTimestamp` while finalizers
    /// (or a foreground deletion) hold it. Dependents are collected per `opts.propagation`.
    /// Deleting a namespace deletes everything in it.
    pub fn delete(
        &mut self,
        res: ResId,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        let def = self.registry.def(res).clone();
        let ns = if def.namespaced { ns } else { "" };
        let cur = self
            .get(res, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&self.qualified(res), name))?;
        if let Some(u) = &opts.uid
            && u != meta_str(&cur, "uid")
        {
            return Err(ApiError::new(
                Reason::Conflict,
                format!(
                    "Precondition failed: UID in precondition: {u}, UID in object meta: {}",
                    meta_str(&cur, "uid")
                ),
            ));
        }
        if let Some(r) = &opts.resource_version
            && r != meta_str(&cur, "resourceVersion")
        {
            return Err(ApiError::conflict(&self.qualified(res), name));
        }
        if self.dry_run {
            return Ok(cur);
        }
        let is_pod = def.group.is_empty() && def.kind == "Pod";
        if cur.pointer("/metadata/deletionTimestamp").is_some() {
            // Deleting again with grace 0 ends a graceful deletion (the kubelet's confirmation).
            let held = cur
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if opts.grace_period_seconds == Some(0) && held != 0 && finalizers(&cur).is_empty() {
                return self.remove(res, ns, name);
            }
            return Ok(cur);
        }
        let grace = opts.grace_period_seconds.unwrap_or_else(|| {
            cur.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30)
        });
        let graceful =
            is_pod && self.graceful_pods && grace > 0 && !str_at(&cur, "/spec/nodeName").is_empty();
        let uid = meta_str(&cur, "uid").to_string();
        let is_namespace = def.group.is_empty() && def.kind == "Namespace";
        let has_dependents = self.dependents.get(&uid).is_some_and(|s| !s.is_empty());
        if opts.propagation == Propagation::Orphan {
            self.orphan_dependents(&uid);
        }
        let mut fins = finalizers(&cur);
        // A CRD keeps its finalizer until every instance is gone (CRD registry `Delete` in
        // apiextensions-apiserver; the rest is controllers/crd.rs).
        let is_crd = Some(res) == self.registry.id(crate::resources::res::CRDS);
        if is_crd && !fins.iter().any(|f| f == CLEANUP_FINALIZER) {
            fins.push(CLEANUP_FINALIZER.into());
        }
        if opts.propagation == Propagation::Foreground
            && has_dependents
            && !fins.iter().any(|f| f == "foregroundDeletion")
        {
            fins.push("foregroundDeletion".into());
        }
        if fins.is_empty() && !is_namespace && !graceful {
            return self.remove(res, ns, name);
        }
        // Mark for deletion.
        let mut marked = (*cur).clone();
        let at = if graceful {
            let t = self
                .now
                .checked_add(jiff::SignedDuration::from_secs(grace))
                .unwrap_or(self.now);
            Timestamp::from_second(t.as_second())
                .unwrap_or(t)
                .to_string()
        } else {
            self.timestamp()
        };
        marked["metadata"]["deletionTimestamp"] = Value::String(at);
        // The grace period is recorded as the API server does: for a bound pod the one asked
        // for, else its terminationGracePeriodSeconds (the kubelet model reads it to bound the
        // pod's shutdown); for anything else the one asked for, else 0.
        let bound_pod = is_pod && !str_at(&cur, "/spec/nodeName").is_empty();
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(if graceful || bound_pod {
            grace
        } else {
            opts.grace_period_seconds.unwrap_or(0)
        });
        if !fins.is_empty() {
            marked["metadata"]["finalizers"] = json!(fins);
        }
        if is_namespace {
            marked["status"]["phase"] = json!("Terminating");
        }
        if is_crd {
            crate::controllers::crd::set_terminating(
                &mut marked,
                "True",
                "InstanceDeletionPending",
                "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
                self.now,
            );
        }
        let rv = self.next_rv();
        marked["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let marked = Arc::new(marked);
        self.insert(res, ns, name, marked.clone());
        self.push_event(
            res,
            ns,
            name,
            EventKind::Modified,
            marked.clone(),
            Some(cur),
        );
        if opts.propagation == Propagation::Foreground {
            self.delete_dependents(&uid);
            self.check_foreground(&uid);
        }
        if is_namespace {
            self.empty_namespace(name);
            self.check_namespace_gone(name);
        }
        Ok(self.get(res, ns, name).cloned().unwrap_or(marked))
    }

    /// Removes an object for good, then collects what depended on it.
    fn remove(&mut self, res: ResId, ns: &str, name: &str) -> Result<Arc<Value>, ApiError> {
        let t = &mut self.tables[res];
        let Some(objs) = t.by_ns.get_mut(ns) else {
            return Err(ApiError::not_found(&self.qualified(res), name));
        };
        let Some(old) = objs.remove(name) else {
            return Err(ApiError::not_found(&self.qualified(res), name));
        };
        if objs.is_empty() {
            t.by_ns.remove(ns);
        }
        t.len -= 1;
        let key = (res, ns.to_string(), name.to_string());
        let uid = meta_str(&old, "uid").to_string();
        self.uids.remove(&uid);
        self.index_owners(&key, &old, false);
        let rv = self.next_rv();
        let mut last = (*old).clone();
        last["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let last = Arc::new(last);
        self.push_event(
            res,
            ns,
            name,
            EventKind::Deleted,
            last.clone(),
            Some(old.clone()),
        );
        // Garbage-collect dependents whose owners are all gone.
        self.delete_dependents(&uid);
        // An owner in foreground deletion may now be free to go.
        for owner in owner_uids(&old) {
            self.check_foreground(&owner);
        }
        if !ns.is_empty() {
            self.check_namespace_gone(ns);
        }
        if Some(res) == self.registry.id(crate::resources::res::CRDS) {
            self.withdraw_custom_kind(&old);
        }
        Ok(last)
    }

    /// A CRD is gone: its kind is no longer served (controllers/crd.rs emptied it first).
    fn withdraw_custom_kind(&mut self, crd: &Value) {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let key = format!("{plural}.{group}");
        if let Some(id) = self.registry.lookup(&key)
            && self.registry.def(id).is_custom()
        {
            self.registry.withdraw(id);
        }
    }

    /// The objects whose ownerReferences name `owner_uid`.
    fn dependent_keys(&self, owner_uid: &str) -> Vec<ObjKey> {
        self.dependents
            .get(owner_uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn delete_dependents(&mut self, owner_uid: &str) {
        let deps = self.dependent_keys(owner_uid);
        for (r, n, m) in deps {
            let Some(obj) = self.get(r, &n, &m).cloned() else {
                continue;
            };
            let alive_owner = owner_uids(&obj)
                .iter()
                .any(|u| u != owner_uid && self.uids.contains_key(u));
            if !alive_owner {
                let _ = self.delete(r, &n, &m, &DeleteOptions::default());
            }
        }
    }

    fn orphan_dependents(&mut self, owner_uid: &str) {
        let deps = self.dependent_keys(owner_uid);
        for (r, n, m) in deps {
            let Some(obj) = self.get(r, &n, &m).cloned() else {
                continue;
            };
            let mut o = (*obj).clone();
            if let Some(refs) = o
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|x| x.get("uid").and_then(Value::as_str) != Some(owner_uid));
            }
            if let Some(m2) = o["metadata"].as_object_mut()
                && m2
                    .get("ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty)
            {
                m2.remove("ownerReferences");
            }
            o["metadata"]["resourceVersion"] = json!("");
            let _ = self.update(r, &n, &m, o, false);
        }
    }

    fn check_foreground(&mut self, owner_uid: &str) {
        let Some((r, n, m)) = self.uids.get(owner_uid).cloned() else {
            return;
        };
        let Some(owner) = self.get(r, &n, &m).cloned() else {
            return;
        };
        if owner.pointer("/metadata/deletionTimestamp").is_none() {
            return;
        }
        let fins = finalizers(&owner);
        if !fins.iter().any(|f| f == "foregroundDeletion") {
            return;
        }
        if self
            .dependents
            .get(owner_uid)
            .is_some_and(|s| !s.is_empty())
        {
            return;
        }
        let mut o = (*owner).clone();
        let rest: Vec<String> = fins
            .into_iter()
            .filter(|f| f != "foregroundDeletion")
            .collect();
        o["metadata"]["finalizers"] = json!(rest);
        if rest.is_empty()
            && let Some(mm) = o["metadata"].as_object_mut()
        {
            mm.remove("finalizers");
        }
        o["metadata"]["resourceVersion"] = json!("");
        let _ = self.update(r, &n, &m, o, false);
    }

    fn empty_namespace(&mut self, ns: &str) {
        for res in 0..self.tables.len() {
            let names: Vec<String> = self.tables[res]
                .by_ns
                .get(ns)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for name in names {
                let _ = self.delete(res, ns, &name, &DeleteOptions::default());
            }
        }
    }

    fn check_namespace_gone(&mut self, ns: &str) {
        let Some(nsres) = self.registry.lookup("namespaces") else {
            return;
        };
        let Some(n) = self.get(nsres, "", ns) else {
            return;
        };
        if n.pointer("/metadata/deletionTimestamp").is_none() {
            return;
        }
        if !finalizers(n).is_empty() {
            return;
        }
        if self
            .tables
            .iter()
            .any(|t| t.by_ns.get(ns).is_some_and(|m| !m.is_empty()))
        {
            return;
        }
        let _ = self.remove(nsres, "", ns);
    }
}

/// `spec` and `status`, when present, must be objects (null ones are dropped).
fn check_shape(map: &mut Map<String, Value>) -> Result<(), ApiError> {
    for k in ["metadata", "spec", "status"] {
        match map.get(k) {
            Some(Value::Null) => {
                map.remove(k);
            }
            Some(v) if !v.is_object() => {
                return Err(ApiError::bad_request(format!(
                    "the body of the request was in an unknown format: {k} must be an object"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Everything but metadata and status: what a generation counts.
fn spec_part(obj: &Value) -> Map<String, Value> {
    let mut m = obj.as_object().cloned().unwrap_or_default();
    m.remove("metadata");
    m.remove("status");
    m
}

fn invalid_name(name: &str) -> Option<&'static str> {
    let ok = name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        None
    } else {
        Some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )
    }
}

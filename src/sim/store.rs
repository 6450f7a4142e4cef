//! The object store: JSON objects by resource, namespace and name; resourceVersion; watch history; GC.
//!
//! Every write (from the HTTP API or from a controller through [`super::world::Ctx`]) goes
//! through [`Store::create`], [`Store::update`] and [`Store::delete`], so both get the same
//! semantics: uid, resourceVersion, generation, defaulting, CRD schema validation,
//! finalizers, ownerReference garbage collection, namespace deletion, and one [`Event`]
//! per change in a bounded history that watches replay from.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::defaults;
use super::error::{ApiError, Reason};
use super::resources::{Registry, ResId};
use super::selector::{FieldSelector, LabelSelector};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created.
    Added,
    /// Changed (including gaining a deletionTimestamp).
    Modified,
    /// Removed from the store.
    Deleted,
}

impl EventKind {
    /// `ADDED`, `MODIFIED` or `DELETED`, as in a watch stream.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// One change in the store, kept in the history for watch replay and controller change feeds.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion this change produced (global, increasing).
    pub rv: u64,
    /// The resource's id in the registry.
    pub resource: ResId,
    /// The resource's key, e.g. `pods`, `deployments.apps`.
    pub key: Arc<str>,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// What happened.
    pub kind: EventKind,
    /// The object after the change (for Deleted: its last state, with the deletion's rv).
    pub object: Arc<Value>,
    /// The object before the change (Modified and Deleted).
    pub old: Option<Arc<Value>>,
    line: OnceLock<bytes::Bytes>,
}

impl Event {
    /// The watch-stream line `{"type":"ADDED","object":{...}}\n`, serialized once for all watchers.
    pub fn json_line(&self) -> bytes::Bytes {
        self.line
            .get_or_init(|| {
                let mut v = serde_json::to_vec(
                    &json!({"type": self.kind.as_str(), "object": &*self.object}),
                )
                .unwrap_or_default();
                v.push(b'\n');
                bytes::Bytes::from(v)
            })
            .clone()
    }
}

/// How a delete should treat the object's dependents (ownerReferences pointing at it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Delete the owner now, then its dependents.
    #[default]
    Background,
    /// Delete dependents first; the owner stays (with `foregroundDeletion`) until they are gone.
    Foreground,
    /// Keep dependents, removing their ownerReference to the owner.
    Orphan,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Dependents policy.
    pub propagation: Propagation,
    /// `gracePeriodSeconds` (recorded in `deletionGracePeriodSeconds` when finalizers hold the object).
    pub grace_period_seconds: Option<i64>,
    /// Precondition on the uid.
    pub uid: Option<String>,
    /// Precondition on the resourceVersion.
    pub resource_version: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Table {
    by_ns: BTreeMap<String, BTreeMap<String, Arc<Value>>>,
    len: usize,
}

type ObjKey = (ResId, String, String);
type NsMap = BTreeMap<String, Arc<Value>>;

/// A page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// The objects, ordered by namespace then name.
    pub items: Vec<Arc<Value>>,
    /// The token for the next page, if any.
    pub continue_token: Option<String>,
    /// The store's resourceVersion when listed.
    pub resource_version: u64,
}

/// The object store. See the module doc.
#[derive(Debug)]
pub struct Store {
    registry: Registry,
    tables: Vec<Table>,
    keys: Vec<Arc<str>>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    history_cap: usize,
    compacted: u64,
    tx: broadcast::Sender<Arc<Event>>,
    uids: HashMap<String, ObjKey>,
    dependents: HashMap<String, BTreeSet<ObjKey>>,
    rng: ChaCha8Rng,
    now: Timestamp,
}

/// Default number of events kept for watch replay.
pub const DEFAULT_HISTORY: usize = 10_000;

impl Store {
    /// An empty store over `registry`, seeded for deterministic uids and generated names.
    pub fn new(registry: Registry, seed: u64, now: Timestamp) -> Self {
        let (tx, _) = broadcast::channel(16_384);
        let mut s = Store {
            registry,
            tables: Vec::new(),
            keys: Vec::new(),
            rv: 1,
            history: VecDeque::new(),
            history_cap: DEFAULT_HISTORY,
            compacted: 0,
            tx,
            uids: HashMap::new(),
            dependents: HashMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5157_0b1e_c7a1_u64),
            now,
        };
        s.sync_registry();
        s
    }

    /// The registry of kinds.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Mutable registry (register kinds at runtime); tables grow to match.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Call after adding kinds to the registry.
    pub fn sync_registry(&mut self) {
        while self.tables.len() < self.registry.defs().len() {
            self.tables.push(Table::default());
        }
        self.keys = self
            .registry
            .defs()
            .iter()
            .map(|d| Arc::from(d.key().as_str()))
            .collect();
    }

    /// Sets the clock used for timestamps.
    pub fn set_now(&mut self, now: Timestamp) {
        self.now = now;
    }

    /// The current clock.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Sets how many events the history keeps (older ones are compacted away: 410 on watch).
    pub fn set_history_capacity(&mut self, cap: usize) {
        self.history_cap = cap.max(1);
        self.trim_history();
    }

    /// Subscribes to every future event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Events with rv > `rv`, or `Err(compacted_rv)` when some of them were compacted away.
    pub fn events_since(&self, rv: u64) -> Result<impl Iterator<Item = &Arc<Event>>, u64> {
        if rv < self.compacted {
            return Err(self.compacted);
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        Ok(self.history.range(start..))
    }

    /// Number of objects of a resource.
    pub fn count(&self, res: ResId) -> usize {
        self.tables.get(res).map_or(0, |t| t.len)
    }

    /// Gets one object.
    pub fn get(&self, res: ResId, ns: &str, name: &str) -> Option<&Arc<Value>> {
        self.tables.get(res)?.by_ns.get(ns)?.get(name)
    }

    /// Lists every matching object (ordered by namespace, then name).
    pub fn list(
        &self,
        res: ResId,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Arc<Value>> {
        self.list_page(res, ns, labels, fields, None, None)
            .map(|p| p.items)
            .unwrap_or_default()
    }

    /// Lists one page; `continue_token` comes from a previous page.
    pub fn list_page(
        &self,
        res: ResId,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<Page, ApiError> {
        let mut items = Vec::new();
        let mut next = None;
        let limit = limit.filter(|&l| l > 0);
        let Some(table) = self.tables.get(res) else {
            return Ok(Page {
                items,
                continue_token: None,
                resource_version: self.rv,
            });
        };
        let ns = ns.or_else(|| fields.namespace());
        let after = match continue_token {
            Some(t) if !t.is_empty() => Some(decode_continue(t)?),
            _ => None,
        };
        let ns_iter: Box<dyn Iterator<Item = (&String, &NsMap)>> = match (ns, &after) {
            (Some(n), _) => Box::new(table.by_ns.get_key_value(n).into_iter()),
            (None, Some((an, _))) => Box::new(
                table
                    .by_ns
                    .range::<String, _>((Bound::Included(an), Bound::Unbounded)),
            ),
            (None, None) => Box::new(table.by_ns.iter()),
        };
        'outer: for (n, objs) in ns_iter {
            let range: Box<dyn Iterator<Item = (&String, &Arc<Value>)>> = match &after {
                Some((an, aname)) if an == n => {
                    Box::new(objs.range::<String, _>((Bound::Excluded(aname), Bound::Unbounded)))
                }
                Some((an, _)) if n < an => continue,
                _ => Box::new(objs.iter()),
            };
            for (name, obj) in range {
                if !labels.matches(obj) || !fields.matches(obj) {
                    continue;
                }
                if limit.is_some_and(|l| items.len() >= l) {
                    let _ = name;
                    let last: &Arc<Value> = items.last().unwrap_or(obj);
                    next = Some(encode_continue(
                        meta_str(last, "namespace"),
                        meta_str(last, "name"),
                    ));
                    break 'outer;
                }
                items.push(obj.clone());
            }
        }
        Ok(Page {
            items,
            continue_token: next,
            resource_version: self.rv,
        })
    }

    fn qualified(&self, res: ResId) -> String {
        let d = self.registry.def(res);
        if d.group.is_empty() {
            d.plural.clone()
        } else {
            format!("{}.{}", d.plural, d.group)
        }
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn timestamp(&self) -> String {
        Timestamp::from_second(self.now.as_second())
            .unwrap_or(self.now)
            .to_string()
    }

    fn uid(&mut self) -> String {
        let b: [u8; 16] = self.rng.random();
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    fn generated_suffix(&mut self) -> String {
        const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| ALPHA[self.rng.random_range(0..ALPHA.len())] as char)
            .collect()
    }

    fn push_event(
        &mut self,
        res: ResId,
        ns: &str,
        name: &str,
        kind: EventKind,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) {
        let ev = Arc::new(Event {
            rv: self.rv,
            resource: res,
            key: self.keys[res].clone(),
            namespace: ns.to_string(),
            name: name.to_string(),
            kind,
            object,
            old,
            line: OnceLock::new(),
        });
        self.history.push_back(ev.clone());
        self.trim_history();
        let _ = self.tx.send(ev);
    }

    fn trim_history(&mut self) {
        while self.history.len() > self.history_cap {
            if let Some(e) = self.history.pop_front() {
                self.compacted = e.rv;
            }
        }
    }

    fn index_owners(&mut self, key: &ObjKey, obj: &Value, add: bool) {
        for uid in owner_uids(obj) {
            if add {
                self.dependents.entry(uid).or_default().insert(key.clone());
            } else if let Some(set) = self.dependents.get_mut(&uid) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(&uid);
                }
            }
        }
    }

    fn insert(&mut self, res: ResId, ns: &str, name: &str, obj: Arc<Value>) -> Option<Arc<Value>> {
        let t = &mut self.tables[res];
        let old = t
            .by_ns
            .entry(ns.to_string())
            .or_default()
            .insert(name.to_string(), obj);
        if old.is_none() {
            t.len += 1;
        }
        old
    }

    fn validate_custom(&self, res: ResId, obj: &Value) -> Result<(), ApiError> {
        let def = self.registry.def(res);
        let Some(crd) = &def.crd else { return Ok(()) };
        let Some(schema) = crd.schema_shared(&def.version) else {
            return Ok(());
        };
        let violations = super::schema::validate(&schema, obj);
        if violations.is_empty() {
            return Ok(());
        }
        let causes: Vec<(String, String)> = violations
            .iter()
            .map(|v| (v.path.clone(), v.message.clone()))
            .collect();
        Err(ApiError::invalid(
            &def.kind,
            &def.group,
            meta_str(obj, "name"),
            &causes,
        ))
    }

    /// Creates an object in namespace `ns` ("" for cluster-scoped). `keep_status` keeps a
    /// `status` given on create (seeding, controllers); the API drops it as a real server does.
    pub fn create(
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
        if let Some(msg) = invalid_name(&name) {
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
        self.validate_custom(res, &obj)?;
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
        let rv = self.next_rv();
        new["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let new = Arc::new(new);
        let key = (res, ns.to_string(), name.to_string());
        self.index_owners(&key, &old, false);
        self.index_owners(&key, &new, true);
        self.insert(res, ns, name, new.clone());
        self.push_event(res, ns, name, EventKind::Modified, new.clone(), Some(old));
        if new.pointer("/metadata/deletionTimestamp").is_some() && finalizers(&new).is_empty() {
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
        if cur.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(cur);
        }
        let uid = meta_str(&cur, "uid").to_string();
        let is_namespace = def.group.is_empty() && def.kind == "Namespace";
        let has_dependents = self.dependents.get(&uid).is_some_and(|s| !s.is_empty());
        if opts.propagation == Propagation::Orphan {
            self.orphan_dependents(&uid);
        }
        let mut fins = finalizers(&cur);
        if opts.propagation == Propagation::Foreground
            && has_dependents
            && !fins.iter().any(|f| f == "foregroundDeletion")
        {
            fins.push("foregroundDeletion".into());
        }
        if fins.is_empty() && !is_namespace {
            return self.remove(res, ns, name);
        }
        // Mark for deletion.
        let mut marked = (*cur).clone();
        marked["metadata"]["deletionTimestamp"] = Value::String(self.timestamp());
        marked["metadata"]["deletionGracePeriodSeconds"] =
            json!(opts.grace_period_seconds.unwrap_or(0));
        if !fins.is_empty() {
            marked["metadata"]["finalizers"] = json!(fins);
        }
        if is_namespace {
            marked["status"]["phase"] = json!("Terminating");
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
        Ok(last)
    }

    fn delete_dependents(&mut self, owner_uid: &str) {
        let deps: Vec<ObjKey> = self
            .dependents
            .get(owner_uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
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
        let deps: Vec<ObjKey> = self
            .dependents
            .get(owner_uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
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

/// `metadata.<field>` as a string ("" if absent).
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
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

fn encode_continue(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(t: &str) -> Result<(String, String), ApiError> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion")
    };
    if t.len() % 2 != 0 {
        return Err(bad());
    }
    let bytes: Result<Vec<u8>, _> = (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16))
        .collect();
    let s = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let (ns, name) = s.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;

//! The object store: JSON objects by resource, namespace and name; resourceVersion; watch history; GC.
//!
//! Every write (from the HTTP API or from a controller through [`super::world::Ctx`]) goes
//! through [`Store::create`], [`Store::update`] and [`Store::delete`], so both get the same
//! semantics: uid, resourceVersion, generation, defaulting, CRD schema validation,
//! finalizers, ownerReference garbage collection, namespace deletion, and one [`Event`]
//! per change. Controllers read full [`Event`]s (kept until every controller has seen them);
//! watches replay from a bounded history of compact [`WatchEvent`]s (the encoded JSON line,
//! not the object), so superseded versions of objects are not kept alive.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::error::ApiError;
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

/// One change in the store, as controllers see it (see [`super::world::Ctx::changes`]).
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
}

/// One change as watches see it: the object while it is the live version (shared with the
/// store, no copy), its encoded watch line once superseded or deleted (so old versions are
/// not kept as JSON trees), and just enough of the previous version to tell a
/// selector-filtered watcher whether the object left its selection.
#[derive(Debug)]
pub struct WatchEvent {
    /// The resourceVersion this change produced.
    pub rv: u64,
    /// The resource's id in the registry.
    pub resource: ResId,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// What happened.
    pub kind: EventKind,
    payload: std::sync::Mutex<Payload>,
    /// JSON of the selectable fields (metadata name/namespace/labels and the fields field
    /// selectors use) of the previous version, for Modified and Deleted.
    pub old_slim: Option<bytes::Bytes>,
}

#[derive(Debug)]
enum Payload {
    Live(Arc<Value>),
    Encoded(bytes::Bytes),
}

fn encode_line(kind: EventKind, object: &Value) -> bytes::Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": kind.as_str(), "object": object})).unwrap_or_default();
    line.push(b'\n');
    bytes::Bytes::from(line)
}

impl WatchEvent {
    fn payload(&self) -> std::sync::MutexGuard<'_, Payload> {
        self.payload.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The watch-stream line `{"type":"ADDED","object":{...}}\n`.
    pub fn line(&self) -> bytes::Bytes {
        match &*self.payload() {
            Payload::Live(o) => encode_line(self.kind, o),
            Payload::Encoded(b) => b.clone(),
        }
    }

    /// The object of the event.
    pub fn object(&self) -> Arc<Value> {
        match &*self.payload() {
            Payload::Live(o) => o.clone(),
            Payload::Encoded(b) => Arc::new(
                serde_json::from_slice::<Value>(b)
                    .ok()
                    .and_then(|mut v| v.get_mut("object").map(Value::take))
                    .unwrap_or(Value::Null),
            ),
        }
    }

    /// Keeps only the encoded line (the object is no longer the live version).
    fn freeze(&self) {
        let mut p = self.payload();
        if let Payload::Live(o) = &*p {
            *p = Payload::Encoded(encode_line(self.kind, o));
        }
    }
}

/// The parts of an object that label and field selectors look at.
pub fn selectable(obj: &Value) -> Value {
    let mut out = json!({"metadata": {
        "name": obj.pointer("/metadata/name"),
        "namespace": obj.pointer("/metadata/namespace"),
        "labels": obj.pointer("/metadata/labels"),
    }});
    for (top, fields) in [
        (
            "spec",
            &[
                "nodeName",
                "restartPolicy",
                "schedulerName",
                "serviceAccountName",
                "unschedulable",
            ][..],
        ),
        ("status", &["phase", "podIP", "nominatedNodeName"][..]),
    ] {
        for f in fields {
            if let Some(v) = obj.get(top).and_then(|t| t.get(*f)) {
                out[top][*f] = v.clone();
            }
        }
    }
    for f in [
        "involvedObject",
        "reason",
        "type",
        "source",
        "reportingComponent",
    ] {
        if let Some(v) = obj.get(f) {
            out[f] = v.clone();
        }
    }
    out
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
    recent: VecDeque<Arc<Event>>,
    recent_dropped: u64,
    history: VecDeque<Arc<WatchEvent>>,
    latest: HashMap<ObjKey, Arc<WatchEvent>>,
    history_cap: usize,
    compacted: u64,
    tx: broadcast::Sender<Arc<WatchEvent>>,
    uids: HashMap<String, ObjKey>,
    dependents: HashMap<String, BTreeSet<ObjKey>>,
    rng: ChaCha8Rng,
    now: Timestamp,
    dry_run: bool,
    graceful_pods: bool,
    admission: bool,
    /// When the next time-driven compaction runs, and the revision seen at the previous one.
    compaction: Option<(Timestamp, u64)>,
}

/// Default number of events kept for watch replay.
pub const DEFAULT_HISTORY: usize = 10_000;

impl Store {
    /// An empty store over `registry`, seeded for deterministic uids and generated names.
    pub fn new(registry: Registry, seed: u64, now: Timestamp) -> Self {
        let (tx, _) = broadcast::channel(DEFAULT_HISTORY);
        let mut s = Store {
            registry,
            tables: Vec::new(),
            keys: Vec::new(),
            rv: 1,
            recent: VecDeque::new(),
            recent_dropped: 0,
            history: VecDeque::new(),
            latest: HashMap::new(),
            history_cap: DEFAULT_HISTORY,
            compacted: 0,
            tx,
            uids: HashMap::new(),
            dependents: HashMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5157_0b1e_c7a1_u64),
            now,
            dry_run: false,
            graceful_pods: false,
            admission: false,
            compaction: None,
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
        self.compact_by_time();
    }

    /// etcd is compacted by time, as the API server drives it
    /// (apiserver/pkg/storage/storagebackend/factory/etcd3.go `startCompactorOnce`,
    /// apiserver/pkg/storage/etcd3/compact.go): every `--etcd-compaction-interval` (5 min) it
    /// compacts to the revision it saw at the previous tick, so a watch from a resourceVersion
    /// older than 5 to 10 minutes gets 410 Expired instead of a replay.
    fn compact_by_time(&mut self) {
        const INTERVAL: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);
        let (mut next, mut seen) = self
            .compaction
            .unwrap_or((self.now.checked_add(INTERVAL).unwrap_or(self.now), 0));
        while self.now >= next {
            if seen > self.compacted {
                self.compacted = seen;
                let keep_from = self.history.partition_point(|e| e.rv <= seen);
                self.history.drain(..keep_from);
            }
            seen = self.rv;
            next = next.checked_add(INTERVAL).unwrap_or(self.now);
            if seen == self.compacted {
                // Nothing new since: later ticks change nothing until the next write.
                next = next.max(self.now.checked_add(INTERVAL).unwrap_or(self.now));
            }
        }
        self.compaction = Some((next, seen));
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
    /// A watcher may fall behind by at most this many events; one further behind has its
    /// watch ended, and re-watching from its old resourceVersion answers 410 Expired, as a
    /// real API server does with slow watchers. Open watches end when this is called.
    pub fn set_history_capacity(&mut self, cap: usize) {
        self.history_cap = cap.max(1);
        self.tx = broadcast::channel(self.history_cap).0;
        self.trim_history();
        while self.recent.len() > self.history_cap {
            if let Some(e) = self.recent.pop_front() {
                self.recent_dropped = e.rv;
            }
        }
    }

    /// While set, create/update/delete check and compute their result but change nothing
    /// (the API's `dryRun=All`).
    pub fn set_dry_run(&mut self, on: bool) {
        self.dry_run = on;
    }

    /// While set, creates and updates of built-in kinds are validated as the API server's
    /// strategies do (api/validation.rs): the API turns it on for clients' writes; the
    /// simulator's own controllers write without it.
    pub fn set_admission(&mut self, on: bool) {
        self.admission = on;
    }

    /// Validates a defaulted built-in object when admission is on (422 `Invalid`).
    fn admit(&self, res: ResId, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
        if !self.admission {
            return Ok(());
        }
        let def = self.registry.def(res);
        let errs = super::api::validation::validate(def, obj, old);
        if errs.is_empty() {
            return Ok(());
        }
        Err(ApiError::invalid(
            &def.kind,
            &def.group,
            meta_str(obj, "name"),
            &errs,
        ))
    }

    /// True during a dry run.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Graceful pod deletion, for the kubelet simulation to turn on: deleting a pod bound to
    /// a node (`spec.nodeName`) with a non-zero grace period then only marks it Terminating
    /// (`deletionTimestamp` = now + grace, `deletionGracePeriodSeconds` = grace); it goes
    /// when deleted again with grace period 0 (what a kubelet does once containers stopped).
    /// Off by default: pods are removed at once.
    pub fn set_graceful_pod_deletion(&mut self, on: bool) {
        self.graceful_pods = on;
    }

    /// Subscribes to every future event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.tx.subscribe()
    }

    /// Watch events with rv > `rv`, or `Err(compacted_rv)` when some were compacted away.
    pub fn watch_since(&self, rv: u64) -> Result<impl Iterator<Item = &Arc<WatchEvent>>, u64> {
        if rv < self.compacted {
            return Err(self.compacted);
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        Ok(self.history.range(start..))
    }

    /// Full events with rv > `rv` (for controllers), or `Err` when some were already dropped
    /// (see [`Store::forget_events_upto`]).
    pub fn events_since(&self, rv: u64) -> Result<impl Iterator<Item = &Arc<Event>>, u64> {
        if rv < self.recent_dropped {
            return Err(self.recent_dropped);
        }
        let start = self.recent.partition_point(|e| e.rv <= rv);
        Ok(self.recent.range(start..))
    }

    /// Drops full events with rv <= `rv` (every controller has seen them), so old versions
    /// of objects are freed. At most the history capacity of them is kept in any case.
    pub fn forget_events_upto(&mut self, rv: u64) {
        while self.recent.front().is_some_and(|e| e.rv <= rv) {
            if let Some(e) = self.recent.pop_front() {
                self.recent_dropped = e.rv;
            }
        }
    }

    /// The objects whose ownerReferences name `owner_uid`, as (resource, object).
    pub fn dependents_of(&self, owner_uid: &str) -> impl Iterator<Item = (ResId, Arc<Value>)> + '_ {
        self.dependents
            .get(owner_uid)
            .into_iter()
            .flatten()
            .filter_map(|(r, n, m)| self.get(*r, n, m).map(|o| (*r, o.clone())))
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
        let payload = if kind == EventKind::Deleted {
            Payload::Encoded(encode_line(kind, &object))
        } else {
            Payload::Live(object.clone())
        };
        let slim =
            |o: &Value| bytes::Bytes::from(serde_json::to_vec(&selectable(o)).unwrap_or_default());
        let wev = Arc::new(WatchEvent {
            rv: self.rv,
            resource: res,
            namespace: ns.to_string(),
            kind,
            payload: std::sync::Mutex::new(payload),
            old_slim: old.as_deref().map(slim),
        });
        let okey = (res, ns.to_string(), name.to_string());
        let superseded = if kind == EventKind::Deleted {
            self.latest.remove(&okey)
        } else {
            self.latest.insert(okey, wev.clone())
        };
        if let Some(prev) = superseded {
            prev.freeze();
        }
        let ev = Arc::new(Event {
            rv: self.rv,
            resource: res,
            key: self.keys[res].clone(),
            namespace: ns.to_string(),
            name: name.to_string(),
            kind,
            object,
            old,
        });
        self.recent.push_back(ev);
        while self.recent.len() > self.history_cap {
            if let Some(e) = self.recent.pop_front() {
                self.recent_dropped = e.rv;
            }
        }
        self.history.push_back(wev.clone());
        self.trim_history();
        let _ = self.tx.send(wev);
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
        let violations = playbook_model::schema::validate(&schema, obj);
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
}

/// Sets `metadata.<field>`, making `metadata` an object first if it is not one.
pub fn set_meta(obj: &mut Value, field: &str, v: Value) {
    if !obj.is_object() {
        *obj = json!({});
    }
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert(field.to_string(), v);
    }
}

/// `metadata.<field>` as a string ("" if absent).
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
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
        .map(|i| {
            t.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(())
        })
        .collect();
    let s = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let (ns, name) = s.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

mod write;

#[cfg(test)]
mod tests;

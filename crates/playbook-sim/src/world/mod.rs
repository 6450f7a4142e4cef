//! The simulated world: the store, the clock, the seeded RNG, timers, and the Controller API.
//!
//! # The Controller API
//! A [`Controller`] is level-triggered code that reacts to the store, like a Kubernetes
//! controller. The [`World`] runs every controller in a fixed order (the order they were
//! added) after each write made through the HTTP API, after each seed, and after each timer
//! fires, repeating rounds until no controller has anything new to look at (quiescence,
//! at most [`MAX_ROUNDS`] rounds). So a given seed and sequence of API calls always gives the
//! same result.
//!
//! A controller is called when (a) it has never run, (b) an object of a resource it
//! [watches](Controller::watches) changed since it last ran, or (c) a timer it set with
//! [`Ctx::wake_at`] fired. [`Ctx::changes`] lists what changed since it last ran (including
//! its own writes), so it need not rescan 10,000 pods on every write; when [`Ctx::resync`]
//! is true (first run, or the change history was compacted past it) it must rescan.
//!
//! Writes made through [`Ctx`] go through the same [`Store`] semantics as the API: uid,
//! resourceVersion, watch events, defaulting, finalizers, garbage collection.
//!
//! # Controller lag
//! A real controller does not see a write the instant it is made: the API server sends it
//! on the watch, the informer puts it in its cache and calls the handler
//! (client-go `tools/cache/shared_informer.go`), the handler queues the key and a worker
//! takes it off the queue (client-go `util/workqueue/queue.go`). So each controller
//! declares its [`Controller::lag`]: when a change it watches arrives, the world delivers
//! it after a delay drawn (seeded, per delivery) from that range, with every other change
//! that arrives meanwhile — the informer's cache is current when the worker runs. First
//! runs and timers ([`Ctx::wake_at`]) are not delayed. This is the default, so that status
//! lags as on a real cluster and races exist (the same seed gives the same run);
//! [`World::set_controller_lag`] (`SimConfig::lag`) turns it off for an instant world.
//!
//! # Example
//!
//! ```
//! use playbook_sim::resources::res;
//! use playbook_sim::{Controller, Ctx};
//! use serde_json::json;
//!
//! /// Sets `status.phase: Running` on every pending pod.
//! struct Starter;
//! impl Controller for Starter {
//!     fn name(&self) -> &'static str { "starter" }
//!     fn watches(&self) -> &'static [&'static str] { &["pods"] }
//!     fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
//!         for pod in ctx.list(res::PODS, None) {
//!             if pod["status"]["phase"] == "Pending" {
//!                 let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
//!                 let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
//!                 let _ = ctx.patch_status(res::PODS, &ns, &name, &json!({"status": {"phase": "Running"}}));
//!             }
//!         }
//!     }
//! }
//! ```
//!
//! The core controllers use the helper of `crate::controllers::reconcile` instead (one
//! primary kind, owned kinds, requeue), in the shape of kube-runtime's `Controller`.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::error::ApiError;
use super::patch;
use super::resources::{Registry, ResId, ResourceName};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{DeleteOptions, Event, Store, meta_str};

/// Upper bound on controller rounds per settle; reaching it means controllers keep changing things.
pub const MAX_ROUNDS: usize = 64;

/// Where virtual time starts: 2026-01-01T00:00:00Z.
pub fn virtual_epoch() -> Timestamp {
    Timestamp::from_second(1_767_225_600).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The delay between a change and the run of a controller that watches it (see the module
/// documentation): uniform in `min..=max`, drawn per delivery from the world's lag RNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// The shortest delay.
    pub min: SignedDuration,
    /// The longest delay.
    pub max: SignedDuration,
}

impl Lag {
    /// No lag: the controller runs in the same instant as the change.
    pub const NONE: Lag = Lag {
        min: SignedDuration::ZERO,
        max: SignedDuration::ZERO,
    };

    /// A delay between `min` and `max` milliseconds.
    pub const fn millis(min: i64, max: i64) -> Lag {
        Lag {
            min: SignedDuration::from_millis(min),
            max: SignedDuration::from_millis(max),
        }
    }

    fn sample(self, rng: &mut ChaCha8Rng) -> SignedDuration {
        let (lo, hi) = (
            self.min.as_nanos(),
            self.max.as_nanos().max(self.min.as_nanos()),
        );
        let n = if hi > lo {
            rng.random_range(lo..=hi)
        } else {
            lo
        };
        SignedDuration::from_nanos(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// A simulated controller. See the module documentation.
pub trait Controller: Send {
    /// A short stable name (logs, diagnostics).
    fn name(&self) -> &'static str;

    /// The resources (keys as in [`Registry::lookup`]: `pods`, `deployments.apps`,
    /// `podchaos.chaos-mesh.org`) whose changes should call this controller. Empty (the
    /// default) means every resource.
    fn watches(&self) -> &'static [&'static str] {
        &[]
    }

    /// How long it takes to react to a change it watches (see "Controller lag" in the module
    /// documentation). [`Lag::NONE`] (the default) reacts in the same instant.
    fn lag(&self) -> Lag {
        Lag::NONE
    }

    /// Called after store changes (and when a timer it set fires); must be idempotent
    /// (level-triggered): look at the state, make it right, and do nothing when it is.
    fn reconcile(&mut self, ctx: &mut Ctx<'_>);
}

/// What a controller sees and may do during one [`Controller::reconcile`].
pub struct Ctx<'a> {
    store: &'a mut Store,
    rng: &'a mut ChaCha8Rng,
    now: Timestamp,
    changes: &'a [Arc<Event>],
    resync: bool,
    woken: bool,
    lagged: bool,
    wakes: &'a mut Vec<Timestamp>,
}

impl<'a> Ctx<'a> {
    /// The simulated time now.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The world's seeded RNG (deterministic for a seed and a sequence of events).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng
    }

    /// Store changes since this controller last ran (for the resources it watches), oldest first.
    pub fn changes(&self) -> &[Arc<Event>] {
        self.changes
    }

    /// The changes of one resource (`pods`, `deployments.apps`, ...).
    pub fn changed<'b>(
        &'b self,
        resource: impl ResourceName,
    ) -> impl Iterator<Item = &'b Arc<Event>> + 'b {
        let id = self.id(&resource);
        self.changes.iter().filter(move |e| Some(e.resource) == id)
    }

    /// True when [`Ctx::changes`] is not the whole story (first run, or history compacted):
    /// rescan everything you care about.
    pub fn resync(&self) -> bool {
        self.resync
    }

    /// True when a timer set by this controller fired.
    pub fn woken(&self) -> bool {
        self.woken
    }

    /// True when the world models controller lag (the default; see the module
    /// documentation): controllers that poll on a period of their own (the kubelet's PLEG)
    /// then round their timers to it.
    pub fn lagged(&self) -> bool {
        self.lagged
    }

    /// Asks to be called again at `at` (simulated time). Timers are deduplicated.
    pub fn wake_at(&mut self, at: Timestamp) {
        self.wakes.push(at);
    }

    /// Asks to be called again after `d` of simulated time.
    pub fn wake_after(&mut self, d: SignedDuration) {
        let at = self.now.checked_add(d).unwrap_or(self.now);
        self.wakes.push(at);
    }

    /// Read access to the whole store.
    pub fn store(&self) -> &Store {
        self.store
    }

    fn res(&self, resource: impl ResourceName) -> Result<ResId, ApiError> {
        self.id(&resource).ok_or_else(ApiError::no_resource)
    }

    /// The id of a resource; an unknown name is a bug in the caller (a typo would otherwise
    /// silently list nothing), so debug builds panic on it.
    fn id(&self, resource: &impl ResourceName) -> Option<ResId> {
        let key = resource.resource_key();
        let id = self.store.registry().lookup(key);
        debug_assert!(id.is_some(), "unknown resource {key:?}");
        id
    }

    /// Gets one object (`ns` is "" for cluster-scoped kinds).
    pub fn get(&self, resource: impl ResourceName, ns: &str, name: &str) -> Option<Arc<Value>> {
        let id = self.id(&resource)?;
        self.store.get(id, ns, name).cloned()
    }

    /// Lists a resource in one namespace (`Some`) or all (`None`).
    pub fn list(&self, resource: impl ResourceName, ns: Option<&str>) -> Vec<Arc<Value>> {
        self.list_selected(resource, ns, &LabelSelector::everything())
    }

    /// Lists objects matching a label selector (see [`LabelSelector::from_json`] for `spec.selector`).
    pub fn list_selected(
        &self,
        resource: impl ResourceName,
        ns: Option<&str>,
        sel: &LabelSelector,
    ) -> Vec<Arc<Value>> {
        self.list_fields(resource, ns, sel, &FieldSelector::default())
    }

    /// Lists objects matching label and field selectors.
    pub fn list_fields(
        &self,
        resource: impl ResourceName,
        ns: Option<&str>,
        sel: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Arc<Value>> {
        match self.id(&resource) {
            Some(id) => self.store.list(id, ns, sel, fields),
            None => Vec::new(),
        }
    }

    /// The objects of `resource` that `owner` owns (their `ownerReferences` name its uid),
    /// from the store's owner index: no scan.
    pub fn owned_by(&self, resource: impl ResourceName, owner: &Value) -> Vec<Arc<Value>> {
        let Some(id) = self.id(&resource) else {
            return Vec::new();
        };
        self.store
            .dependents_of(meta_str(owner, "uid"))
            .filter(|(r, _)| *r == id)
            .map(|(_, o)| o)
            .collect()
    }

    /// Creates an object; its namespace comes from `metadata.namespace`. Unlike the API, a
    /// `status` given here is kept.
    pub fn create(
        &mut self,
        resource: impl ResourceName,
        obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let id = self.res(resource)?;
        let ns = meta_str(&obj, "namespace").to_string();
        self.store.create(id, &ns, obj, true)
    }

    /// Replaces an object (namespace and name from its metadata). A set
    /// `metadata.resourceVersion` must be current (else 409 Conflict); clear it to force.
    pub fn update(
        &mut self,
        resource: impl ResourceName,
        obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        self.replace(resource, obj, false)
    }

    /// Replaces an object's `status` (the status subresource).
    pub fn update_status(
        &mut self,
        resource: impl ResourceName,
        obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        self.replace(resource, obj, true)
    }

    fn replace(
        &mut self,
        resource: impl ResourceName,
        obj: Value,
        status: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let id = self.res(resource)?;
        let (ns, name) = (
            meta_str(&obj, "namespace").to_string(),
            meta_str(&obj, "name").to_string(),
        );
        self.store.update(id, &ns, &name, obj, status)
    }

    /// Applies a JSON merge patch (RFC 7386) to an object.
    pub fn patch(
        &mut self,
        resource: impl ResourceName,
        ns: &str,
        name: &str,
        merge: &Value,
    ) -> Result<Arc<Value>, ApiError> {
        self.patch_inner(resource, ns, name, merge, false)
    }

    /// Applies a JSON merge patch to an object's status (e.g. `{"status": {"phase": "Running"}}`).
    pub fn patch_status(
        &mut self,
        resource: impl ResourceName,
        ns: &str,
        name: &str,
        merge: &Value,
    ) -> Result<Arc<Value>, ApiError> {
        self.patch_inner(resource, ns, name, merge, true)
    }

    fn patch_inner(
        &mut self,
        resource: impl ResourceName,
        ns: &str,
        name: &str,
        merge: &Value,
        status: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let id = self.res(resource)?;
        let cur = self
            .store
            .get(id, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&self.store.registry().def(id).key(), name))?;
        let mut v = (*cur).clone();
        patch::merge(&mut v, merge);
        super::store::set_meta(&mut v, "resourceVersion", json!(""));
        self.store.update(id, ns, name, v, status)
    }

    /// Deletes an object (background propagation).
    pub fn delete(
        &mut self,
        resource: impl ResourceName,
        ns: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.delete_with(resource, ns, name, &DeleteOptions::default())
    }

    /// Deletes an object with options.
    pub fn delete_with(
        &mut self,
        resource: impl ResourceName,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        let id = self.res(resource)?;
        self.store.delete(id, ns, name, opts)
    }

    /// Records a core/v1 Event about `involved` (shown by `kubectl describe` and `get events`).
    pub fn record_event(
        &mut self,
        involved: &Value,
        type_: &str,
        reason: &str,
        message: &str,
        source: &str,
    ) {
        let ns = meta_str(involved, "namespace");
        let ns = if ns.is_empty() { "default" } else { ns }.to_string();
        let ts = Timestamp::from_second(self.now.as_second())
            .unwrap_or(self.now)
            .to_string();
        let ev = json!({
            "metadata": {"generateName": format!("{}.", meta_str(involved, "name")), "namespace": ns},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
                "name": meta_str(involved, "name"), "namespace": meta_str(involved, "namespace"),
                "uid": meta_str(involved, "uid"), "resourceVersion": meta_str(involved, "resourceVersion"),
            },
            "type": type_, "reason": reason, "message": message,
            "source": {"component": source},
            "firstTimestamp": ts, "lastTimestamp": ts, "count": 1,
            "reportingComponent": source, "reportingInstance": "",
        });
        let _ = self.create("events", ev);
    }
}

impl Ctx<'_> {
    /// Records an Event as the events.k8s.io/v1 library does (client-go `tools/events`, used
    /// by the scheduler): `eventTime` (micro-time), `action`, `reportingController` and
    /// `reportingInstance`, no `firstTimestamp`/`lastTimestamp`/`count` (null in the core/v1
    /// view), `source` empty. An isomorphic event (same object, type, reason, action, note
    /// and reporter) within 6 minutes is not recorded again: the first one gets a `series`
    /// (`count`, `lastObservedTime`), as tools/events/event_broadcaster.go does.
    pub fn record_event_v1(
        &mut self,
        involved: &Value,
        type_: &str,
        reason: &str,
        action: &str,
        note: &str,
        controller: &str,
    ) {
        let ns = meta_str(involved, "namespace");
        let ns = if ns.is_empty() { "default" } else { ns }.to_string();
        let micro = self.now.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let uid = meta_str(involved, "uid").to_string();
        let window = self.now - SignedDuration::from_secs(6 * 60);
        let same = self.list("events", Some(&ns)).into_iter().find(|e| {
            e["involvedObject"]["uid"] == uid.as_str()
                && e["reason"] == reason
                && e["type"] == type_
                && e["action"] == action
                && e["message"] == note
                && e["reportingComponent"] == controller
                && e["eventTime"]
                    .as_str()
                    .and_then(|t| t.parse::<Timestamp>().ok())
                    .is_some_and(|t| t >= window)
        });
        if let Some(e) = same {
            let count = e["series"]["count"].as_i64().unwrap_or(1) + 1;
            let patch = json!({"series": {"count": count, "lastObservedTime": micro}});
            let (ens, name) = (
                meta_str(&e, "namespace").to_string(),
                meta_str(&e, "name").to_string(),
            );
            let _ = self.patch("events", &ens, &name, &patch);
            return;
        }
        let ev = json!({
            "metadata": {"generateName": format!("{}.", meta_str(involved, "name")), "namespace": ns},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
                "name": meta_str(involved, "name"), "namespace": meta_str(involved, "namespace"),
                "uid": uid, "resourceVersion": meta_str(involved, "resourceVersion"),
            },
            "type": type_, "reason": reason, "message": note, "action": action,
            "source": {}, "eventTime": micro,
            "firstTimestamp": null, "lastTimestamp": null,
            "reportingComponent": controller, "reportingInstance": format!("{controller}-sim-control-plane"),
        });
        let _ = self.create("events", ev);
    }
}

struct Slot {
    ctrl: Box<dyn Controller>,
    cursor: u64,
    started: bool,
    woken: bool,
    /// None: every resource.
    watches: Option<Vec<ResId>>,
    lag: Lag,
    /// When the changes waiting for it are delivered (see "Controller lag").
    delivery: Option<Timestamp>,
}

/// The simulated cluster state: store, clock, RNG, controllers, timers.
pub struct World {
    store: Store,
    now: Timestamp,
    rng: ChaCha8Rng,
    slots: Vec<Slot>,
    timers: BTreeSet<(Timestamp, usize)>,
    crds_stored: bool,
    lag_on: bool,
    lag_rng: ChaCha8Rng,
}

impl World {
    /// A world with the standard kinds and the namespaces a fresh cluster has
    /// (`default`, `kube-system`, `kube-public`, `kube-node-lease`), clock at `now`.
    pub fn new(seed: u64, now: Timestamp) -> Self {
        let mut w = World {
            store: Store::new(Registry::standard(), seed, now),
            now,
            rng: ChaCha8Rng::seed_from_u64(seed),
            slots: Vec::new(),
            timers: BTreeSet::new(),
            crds_stored: false,
            lag_on: true,
            // Its own stream, so that turning lag on or off leaves every other draw alone.
            lag_rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6c61_675f_7365_6564),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let _ =
                w.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        }
        w
    }

    /// The store (read).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store (write). Call [`World::settle`] afterwards so controllers react.
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// The simulated time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The world's RNG (the same one controllers get).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Turns controller lag on (the default) or off (every controller reacts in the same
    /// instant, as in a world without informers). See the module documentation.
    pub fn set_controller_lag(&mut self, on: bool) {
        self.lag_on = on;
    }

    /// True when controllers lag (see [`World::set_controller_lag`]).
    pub fn controller_lag(&self) -> bool {
        self.lag_on
    }

    /// Adds a controller; it runs after those added before it.
    pub fn add_controller(&mut self, ctrl: Box<dyn Controller>) {
        let names = ctrl.watches();
        let mut ids = Vec::new();
        for r in names {
            match self.store.registry().lookup(r) {
                Some(id) => ids.push(id),
                None => eprintln!(
                    "playbook sim: controller {} watches unknown resource {r:?}",
                    ctrl.name()
                ),
            }
        }
        let watches = if names.is_empty() { None } else { Some(ids) };
        let lag = ctrl.lag();
        self.slots.push(Slot {
            ctrl,
            cursor: 0,
            started: false,
            woken: false,
            watches,
            lag,
            delivery: None,
        });
    }

    #[cfg(test)]
    fn slots_mut_for_test(&mut self, i: usize) -> &mut Slot {
        &mut self.slots[i]
    }

    /// Names of the controllers, in run order.
    pub fn controller_names(&self) -> Vec<&'static str> {
        self.slots.iter().map(|s| s.ctrl.name()).collect()
    }

    /// Stores an object as is (kind from `apiVersion`/`kind`, status kept), e.g. nodes at
    /// start. Does not run controllers: call [`World::settle`] (the `Sim` does).
    pub fn seed(&mut self, obj: Value) -> Result<Arc<Value>, ApiError> {
        let av = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let id = self.store.registry().by_kind(av, kind).ok_or_else(|| {
            ApiError::bad_request(format!(
                "no matches for kind \"{kind}\" in version \"{av}\""
            ))
        })?;
        let ns = meta_str(&obj, "namespace").to_string();
        self.store.create(id, &ns, obj, true)
    }

    /// Stores the CustomResourceDefinition objects of the embedded kinds. They are parsed
    /// only now (the first time the CRD API is used), never at startup.
    pub fn materialize_crds(&mut self) {
        if self.crds_stored {
            return;
        }
        self.crds_stored = true;
        let Some(crd_res) = self
            .store
            .registry()
            .lookup("customresourcedefinitions.apiextensions.k8s.io")
        else {
            return;
        };
        let ts = Timestamp::from_second(self.now.as_second())
            .unwrap_or(self.now)
            .to_string();
        let handles: Vec<_> = self
            .store
            .registry()
            .defs()
            .iter()
            .filter_map(|d| d.crd.clone())
            .collect();
        for h in handles {
            let Ok(obj) = h.object() else { continue };
            let name = meta_str(&obj, "name").to_string();
            if self.store.get(crd_res, "", &name).is_some() {
                continue;
            }
            let mut o = (*obj).clone();
            let names = o.pointer("/spec/names").cloned().unwrap_or(json!({}));
            let versions: Vec<Value> = o
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.get("name").cloned()).collect())
                .unwrap_or_default();
            o["status"] = json!({
                "acceptedNames": names,
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": ts},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": ts},
                ],
                "storedVersions": versions,
            });
            let _ = self.store.create(crd_res, "", o, true);
        }
    }

    /// The time of the earliest pending timer.
    pub fn next_event_at(&self) -> Option<Timestamp> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Moves the clock to `t`, firing every timer due on the way in order (running the
    /// controllers after each). Never moves backwards.
    pub fn advance_to(&mut self, t: Timestamp) {
        while let Some(&(at, _)) = self.timers.first() {
            if at > t {
                break;
            }
            self.set_now(at.max(self.now));
            while let Some(&(at2, i)) = self.timers.first() {
                if at2 > self.now {
                    break;
                }
                self.timers.pop_first();
                if let Some(s) = self.slots.get_mut(i) {
                    s.woken = true;
                }
            }
            self.settle();
        }
        self.set_now(t.max(self.now));
        self.settle();
    }

    fn set_now(&mut self, t: Timestamp) {
        self.now = t;
        self.store.set_now(t);
    }

    /// Runs controllers in order until none has anything new (at most [`MAX_ROUNDS`] rounds).
    pub fn settle(&mut self) {
        let World {
            store,
            now,
            rng,
            slots,
            timers,
            lag_on,
            lag_rng,
            ..
        } = self;
        for _round in 0..MAX_ROUNDS {
            let mut ran = false;
            for (i, slot) in slots.iter_mut().enumerate() {
                let head = store.resource_version();
                let (changes, resync): (Vec<Arc<Event>>, bool) =
                    match store.events_since(slot.cursor) {
                        Ok(it) => (
                            it.filter(|e| {
                                slot.watches
                                    .as_ref()
                                    .is_none_or(|w| w.contains(&e.resource))
                            })
                            .cloned()
                            .collect(),
                            !slot.started,
                        ),
                        Err(_) => (Vec::new(), true),
                    };
                if slot.started && !slot.woken && !resync && changes.is_empty() {
                    slot.cursor = head;
                    continue;
                }
                // Controller lag: changes wait (cursor kept) until their delivery time.
                if *lag_on && slot.started && !slot.woken && !resync && slot.lag != Lag::NONE {
                    if slot.delivery.is_none() {
                        let at = now.checked_add(slot.lag.sample(lag_rng)).unwrap_or(*now);
                        slot.delivery = Some(at);
                        timers.insert((at, i));
                    }
                    continue;
                }
                slot.delivery = None;
                slot.cursor = head;
                let woken = std::mem::take(&mut slot.woken);
                slot.started = true;
                let mut wakes = Vec::new();
                let mut ctx = Ctx {
                    store,
                    rng,
                    now: *now,
                    changes: &changes,
                    resync,
                    woken,
                    lagged: *lag_on,
                    wakes: &mut wakes,
                };
                slot.ctrl.reconcile(&mut ctx);
                for at in wakes {
                    if at <= *now {
                        slot.woken = true;
                    } else {
                        timers.insert((at, i));
                    }
                }
                ran = true;
            }
            if !ran {
                let seen = slots
                    .iter()
                    .map(|s| s.cursor)
                    .min()
                    .unwrap_or(store.resource_version());
                store.forget_events_upto(seen);
                return;
            }
        }
        eprintln!("playbook sim: controllers did not settle after {MAX_ROUNDS} rounds");
    }
}

#[cfg(test)]
mod tests;

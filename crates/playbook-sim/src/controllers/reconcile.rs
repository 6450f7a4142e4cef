//! The reconcile helper the controllers share, in the shape of kube-runtime's `Controller`:
//! one primary kind, owned kinds mapped to their owner, other watched kinds mapped by the
//! controller, timers, and requeue.
//!
//! A controller implements [`Reconcile`]: which resource is primary, which are owned (a
//! change of an owned object queues its controller owner, read from its `ownerReferences`,
//! as `Controller::owns` does), how other changes map to primaries ([`Reconcile::map`], as
//! `Controller::watches` with a mapper does), and `sync` for one key, which returns an
//! [`Action`] (`Action::requeue` after a delay, or `Action::await_change`). The
//! [`Reconciler`] wrapper turns it into a [`Controller`] of the world: it collects the keys
//! to sync (every primary on a resync, the changed ones, the owners of changed owned
//! objects, the mapped ones, the due timers), in key order, and keeps the timers.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use super::util::{Due, controller_of};
use crate::resources::Res;
use crate::store::{Event, EventKind};
use crate::world::{Controller, Ctx, Lag};

/// The key of a namespaced (or cluster-scoped, namespace "") object: what the controllers
/// queue, instead of a `(String, String)` whose halves are easy to swap.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjectKey {
    /// The namespace ("" for cluster-scoped kinds).
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// A key from its parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a stored object.
    pub fn of(obj: &serde_json::Value) -> Self {
        let m = |k: &str| {
            obj.pointer(&format!("/metadata/{k}"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        ObjectKey::new(m("namespace"), m("name"))
    }

    /// The key of the object a change is about.
    pub fn of_event(e: &Event) -> Self {
        ObjectKey::new(e.namespace.clone(), e.name.clone())
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// What a sync asks for next (kube-runtime's `Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Action(Option<Timestamp>);

impl Action {
    /// Nothing until something it watches changes.
    pub fn await_change() -> Action {
        Action(None)
    }

    /// Sync this key again after `d` (or earlier if something changes).
    pub fn requeue(ctx: &Ctx<'_>, d: SignedDuration) -> Action {
        Action(Some(ctx.now() + d))
    }

    /// Sync this key again at `t`.
    pub fn requeue_at(t: Timestamp) -> Action {
        Action(Some(t))
    }

    /// The earlier of two requests (none wins over nothing).
    pub fn min(self, other: Action) -> Action {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Action(Some(a.min(b))),
            (a, b) => Action(a.or(b)),
        }
    }
}

/// A controller with one primary kind. See the module documentation.
pub trait Reconcile: Send {
    /// A short stable name.
    const NAME: &'static str;
    /// The primary resource.
    const PRIMARY: Res;
    /// The primary's kind, as owned objects' `ownerReferences` name it.
    const KIND: &'static str;
    /// Resources whose objects are owned by a primary (a change queues the owner).
    const OWNS: &'static [Res];
    /// Every resource whose changes call it (the primary, the owned, the mapped), as keys.
    const WATCHES: &'static [&'static str];

    /// Its reaction delay (see "Controller lag" in `crate::world`).
    fn lag(&self) -> Lag {
        Lag::NONE
    }

    /// Called on a resync (first run, history compacted) before any sync: rebuild caches.
    fn reset(&mut self, _ctx: &Ctx<'_>) {}

    /// Whether a change of a primary object queues it (default: every change but deletes).
    fn primary_changed(&mut self, e: &Event) -> bool {
        e.kind != EventKind::Deleted
    }

    /// The primaries a change of another watched resource (not primary, not owned) queues.
    fn map(&mut self, _ctx: &Ctx<'_>, _e: &Event, _out: &mut BTreeSet<ObjectKey>) {}

    /// Brings one primary to its desired state; `key` may name an object that is gone.
    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &ObjectKey) -> Action;
}

/// Runs a [`Reconcile`] as a world [`Controller`].
pub struct Reconciler<R> {
    inner: R,
    due: Due,
}

impl<R: Reconcile> Reconciler<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Reconciler {
            inner,
            due: Due::default(),
        }
    }

    /// The keys to sync now: see the module documentation.
    fn queue(&mut self, ctx: &Ctx<'_>) -> BTreeSet<ObjectKey> {
        let mut todo = BTreeSet::new();
        if ctx.resync() {
            self.due.clear();
            self.inner.reset(ctx);
            todo.extend(ctx.list(R::PRIMARY, None).iter().map(|o| ObjectKey::of(o)));
        }
        let primary = ctx.store().registry().id(R::PRIMARY);
        let owned: Vec<_> = R::OWNS
            .iter()
            .filter_map(|r| ctx.store().registry().id(*r))
            .collect();
        for e in ctx.changes() {
            if Some(e.resource) == primary {
                if self.inner.primary_changed(e) {
                    todo.insert(ObjectKey::of_event(e));
                }
            } else if owned.contains(&e.resource) {
                // The owner now and before (an ownerReference can be added or removed).
                for obj in std::iter::once(&e.object).chain(e.old.iter()) {
                    if let Some((kind, name, _)) = controller_of(obj)
                        && kind == R::KIND
                    {
                        todo.insert(ObjectKey::new(e.namespace.clone(), name));
                    }
                }
            } else {
                self.inner.map(ctx, e, &mut todo);
            }
        }
        todo.extend(self.due.take(ctx.now()));
        todo
    }
}

impl<R: Reconcile> Controller for Reconciler<R> {
    fn name(&self) -> &'static str {
        R::NAME
    }
    fn lag(&self) -> Lag {
        self.inner.lag()
    }
    fn watches(&self) -> &'static [&'static str] {
        R::WATCHES
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        for key in self.queue(ctx) {
            if let Action(Some(at)) = self.inner.sync(ctx, &key) {
                self.due.add(ctx, key, at);
            }
        }
    }
}

//! The cleanup ledger: what a run must undo, last-in first-out, each step exactly once; and the
//! removal of one object — delete, then wait until it is gone (so Chaos Mesh has recovered),
//! retrying transient API errors.

use std::time::Duration;

use jiff::SignedDuration;
use kube::api::{Api, DeleteParams, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde::{Deserialize, Serialize};

use crate::connection::Target;

/// An object a run created: enough to find it again, even from another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        }
    }

    fn gvk(&self) -> GroupVersionKind {
        let (group, version) = match self.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version.as_str()),
        };
        GroupVersionKind::gvk(group, version, &self.kind)
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One thing to undo.
#[derive(Clone)]
pub enum Step {
    /// Delete an object the run created and wait until it is gone.
    Delete(ObjectRef),
    /// Call a closure the playbook registered with `on_cleanup`.
    Script { label: String, f: rhai::FnPtr },
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::Delete(o) => format!("delete {o}"),
            Step::Script { label, .. } => label.clone(),
        }
    }
}

/// The steps of one run, in the order they were added.
#[derive(Default)]
pub struct Ledger {
    steps: Vec<(Step, bool)>,
}

impl Ledger {
    /// Adds a step; returns its id.
    pub fn push(&mut self, step: Step) -> usize {
        self.steps.push((step, false));
        self.steps.len() - 1
    }

    /// Marks the step for `object` as done (it was removed early, e.g. by `handle.delete()`).
    pub fn done(&mut self, object: &ObjectRef) {
        for (step, done) in &mut self.steps {
            if matches!(step, Step::Delete(o) if o == object) {
                *done = true;
            }
        }
    }

    /// Takes every step not yet run, last-in first-out, and marks them run: each runs once.
    pub fn take(&mut self) -> Vec<Step> {
        let mut out = Vec::new();
        for (step, done) in self.steps.iter_mut().rev() {
            if !*done {
                *done = true;
                out.push(step.clone());
            }
        }
        out
    }

    /// Objects created and not yet removed, oldest first.
    pub fn live_objects(&self) -> Vec<ObjectRef> {
        self.steps
            .iter()
            .filter_map(|(s, done)| match s {
                Step::Delete(o) if !done => Some(o.clone()),
                _ => None,
            })
            .collect()
    }
}

/// How long cleanup waits for one object to be gone.
pub const REMOVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Transient API errors are retried this many times.
const RETRIES: u32 = 5;

/// The API of `object`'s kind, found by discovery (so plurals are never guessed).
pub fn api_for(
    target: &Target,
    rt: &tokio::runtime::Handle,
    object: &ObjectRef,
) -> Result<Api<DynamicObject>, String> {
    let gvk = object.gvk();
    let ar = retry(|| rt.block_on(target.resource(&gvk))).map_err(|e| {
        format!(
            "cannot find kind {} {}: {}",
            object.api_version, object.kind, e
        )
    })?;
    Ok(api_in(target, &ar, object.namespace.as_deref()))
}

/// The API of a resource, in a namespace or cluster-wide.
pub fn api_in(target: &Target, ar: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(target.client.clone(), ns, ar),
        None => Api::all_with(target.client.clone(), ar),
    }
}

/// Deletes `object` and waits until it is gone; what happened, in words.
pub fn remove(
    target: &Target,
    rt: &tokio::runtime::Handle,
    object: &ObjectRef,
) -> Result<String, String> {
    let api = api_for(target, rt, object)?;
    let deleted = retry(|| rt.block_on(api.delete(&object.name, &DeleteParams::background())));
    match deleted {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Ok(format!("{object} was already gone"));
        }
        Err(e) => return Err(format!("cannot delete {object}: {e}")),
    }
    let start = target.clock.now();
    let limit = start
        .checked_add(SignedDuration::try_from(REMOVE_TIMEOUT).unwrap_or_default())
        .unwrap_or(start);
    // A stop that never fires: cleanup must finish even after Ctrl-C or a timeout.
    let never = crate::session::Stop::unbounded();
    loop {
        match retry(|| rt.block_on(api.get_opt(&object.name))) {
            Ok(None) => {
                let took = target.clock.now().duration_since(start);
                return Ok(format!("removed {object} (gone after {})", show(took)));
            }
            Ok(Some(_)) if target.clock.now() >= limit => {
                return Err(format!(
                    "{object} is still there {} after deletion (a finalizer not removed?)",
                    crate::duration::format(REMOVE_TIMEOUT)
                ));
            }
            Ok(Some(_)) => {
                let _ = target.clock.step(limit, &never);
            }
            Err(e) => return Err(format!("cannot check that {object} is gone: {e}")),
        }
    }
}

fn show(d: SignedDuration) -> String {
    crate::duration::format(d.unsigned_abs())
}

/// Runs `f` again on transient errors (5xx, 429, connection problems), with a short back-off.
pub fn retry<T>(mut f: impl FnMut() -> Result<T, kube::Error>) -> Result<T, kube::Error> {
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if attempt < RETRIES && transient(&e) => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(100 << attempt));
            }
            other => return other,
        }
    }
}

fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_last_in_first_out_and_once() {
        let a = ObjectRef::new("v1", "ConfigMap", Some("ns"), "a");
        let b = ObjectRef::new("v1", "ConfigMap", Some("ns"), "b");
        let c = ObjectRef::new("v1", "ConfigMap", Some("ns"), "c");
        let mut l = Ledger::default();
        for o in [&a, &b, &c] {
            l.push(Step::Delete(o.clone()));
        }
        l.done(&b);
        assert_eq!(l.live_objects(), vec![a.clone(), c.clone()]);
        let order: Vec<String> = l.take().iter().map(Step::describe).collect();
        assert_eq!(order, ["delete ConfigMap ns/c", "delete ConfigMap ns/a"]);
        assert!(l.take().is_empty());
        assert!(l.live_objects().is_empty());
    }
}
